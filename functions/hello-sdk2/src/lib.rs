//! `hello-sdk2`: a spin-sdk 2.2 component, as Spin 2.x apps were built: a `wasm32-wasip1` core
//! module importing the WASI 0.2.0 release candidate of 2023-10-18.
//!
//! `GET` answers `Hello from spin-sdk 2 (<method> <path and query>, <n> body bytes)`; with
//! header `x-fetch: <url>` it fetches the URL with the SDK's outbound HTTP and answers
//! `fetched <status>: <body>`, or `500` with the error.

extern crate spin_sdk_2 as spin_sdk;

use spin_sdk::http::{IncomingRequest, Method, Request, Response};
use spin_sdk::http_component;

/// Answers as the crate docs say.
#[http_component]
async fn handle_hello_sdk2(request: IncomingRequest) -> Response {
    let method = request.method();
    let path = request.path_with_query().unwrap_or_default();
    let fetch = request
        .headers()
        .get("x-fetch")
        .first()
        .map(|value| String::from_utf8_lossy(value).into_owned());
    let body = match request.into_body().await {
        Ok(body) => body,
        Err(error) => return Response::new(500, format!("reading the body failed: {error:?}")),
    };
    let Some(url) = fetch else {
        let text = format!(
            "Hello from spin-sdk 2 ({} {path}, {} body bytes)",
            name(&method),
            body.len()
        );
        return Response::new(200, text);
    };
    let outbound = Request::builder().method(Method::Get).uri(url).build();
    match spin_sdk::http::send::<_, Response>(outbound).await {
        Ok(response) => {
            let text = String::from_utf8_lossy(response.body()).into_owned();
            Response::new(200, format!("fetched {}: {text}", response.status()))
        }
        Err(error) => Response::new(500, format!("fetch failed: {error:?}")),
    }
}

fn name(method: &Method) -> String {
    match method {
        Method::Get => "GET".to_owned(),
        Method::Post => "POST".to_owned(),
        Method::Put => "PUT".to_owned(),
        Method::Delete => "DELETE".to_owned(),
        other => format!("{other:?}"),
    }
}
