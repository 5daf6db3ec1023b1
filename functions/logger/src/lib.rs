//! `logger`: writes to stdout and stderr as the query asks (test fixture, spin-sdk 5.2, WASIp2).
//!
//! `?out=<text>` prints a line to stdout, `?err=<text>` to stderr (each repeatable, in query
//! order; `+` is a space, no other decoding), `?flood=<n>` writes `n` bytes of `x` to stdout,
//! and `?panic` panics afterwards (Rust's panic message goes to stderr). Answers
//! `200 logged`.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use std::io::Write as _;

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle_logger(request: Request) -> Response {
    let query = request.query().to_owned();
    let mut panics = false;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = value.replace('+', " ");
        match name {
            "out" => println!("{value}"),
            "err" => eprintln!("{value}"),
            "flood" => {
                let bytes = value.parse::<usize>().unwrap_or(0);
                let _ = std::io::stdout().write_all(&vec![b'x'; bytes]);
            }
            "panic" => panics = true,
            _ => {}
        }
    }
    assert!(!panics, "asked to panic");
    Response::new(200, "logged")
}
