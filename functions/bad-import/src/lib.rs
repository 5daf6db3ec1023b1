//! `bad-import`: imports an interface the platform does not provide (test fixture,
//! spin-sdk 5.2).
//!
//! Calling `spin_sdk::llm::infer` makes the component import `fermyon:spin/llm@2.0.0`. A host
//! without that interface must refuse the component when it links it, with a readable error;
//! the handler should never run there.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::llm::{InferencingModel, infer};

/// Answers `200 <inferred text>`, or `500` with the inferencing error's `Debug` text.
#[http_component]
fn handle_bad_import(_request: Request) -> Response {
    match infer(InferencingModel::Llama2Chat, "Say hello") {
        Ok(result) => Response::new(200, result.text),
        Err(error) => Response::new(500, format!("{error:?}")),
    }
}
