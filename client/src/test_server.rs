//! A tiny HTTP server on `127.0.0.1:0` for the unit tests: it records each request and answers
//! with what the test says.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A request the server received.
#[derive(Debug)]
pub(crate) struct Seen {
    pub(crate) method: http::Method,
    /// Path and query, as sent.
    pub(crate) uri: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

pub(crate) type Answer = Response<BoxBody<Bytes, Infallible>>;

/// An answer of `status` with `headers` and `body`, its length announced.
pub(crate) fn answer(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Answer {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    for (name, value) in headers {
        response.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

/// A 200 whose body comes in `chunks` chunks of `size` bytes, its length not announced.
pub(crate) fn chunked(chunks: usize, size: usize) -> Answer {
    let frames = (0..chunks).map(move |_| Ok(Frame::data(Bytes::from(vec![b'x'; size]))));
    Response::new(StreamBody::new(stream::iter(frames)).boxed())
}

/// A JSON answer.
pub(crate) fn json(status: u16, value: serde_json::Value) -> Answer {
    answer(
        status,
        &[("content-type", "application/json")],
        value.to_string(),
    )
}

/// Serves `respond` on `127.0.0.1:0`: the base URL, and the requests as they come.
pub(crate) async fn serve(
    respond: impl Fn(&Seen) -> Answer + Send + Sync + 'static,
) -> (String, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    let respond = Arc::new(respond);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let respond = Arc::clone(&respond);
            let seen_tx = seen_tx.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let respond = Arc::clone(&respond);
                    let seen_tx = seen_tx.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        let seen = Seen {
                            method: parts.method,
                            uri: parts.uri.to_string(),
                            headers: parts.headers,
                            body,
                        };
                        let response = respond(&seen);
                        let _ = seen_tx.send(seen);
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (base, seen_rx)
}

/// A server that accepts connections and never answers: the base URL.
pub(crate) async fn silent() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    base
}

/// A base URL where nothing listens.
pub(crate) async fn closed() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    base
}
