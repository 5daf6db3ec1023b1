//! Requests an app makes to itself (relative URLs, `http://<component>.spin.internal`), served
//! in process by the same [`ServedApp`] that serves the outside.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use http::HeaderValue;
use http::uri::{Authority, Scheme, Uri};
use http_body_util::{BodyExt as _, Full};
use nexus_runtime::{GuestBody, LocalDispatch, LocalResult, LocalTarget};

use crate::errors::EdgeError;
use crate::ingress::ServedApp;

/// The client address guests see in `spin-client-addr` for requests from their own app.
const LOCAL_CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

impl LocalDispatch for ServedApp {
    fn dispatch(
        self: Arc<Self>,
        target: LocalTarget,
        mut request: http::Request<GuestBody>,
    ) -> Pin<Box<dyn Future<Output = LocalResult> + Send>> {
        Box::pin(async move {
            if let Some(origin) = self.origin.get() {
                readdress(&mut request, origin);
            }
            let outcome = match target {
                LocalTarget::App => self.route_and_run(request, LOCAL_CLIENT, "").await,
                LocalTarget::Component(id) => match self.app.component(&id) {
                    Some(handler) => handler.handle(request).await.map_err(EdgeError::from),
                    None => Err(EdgeError::not_found(&format!("component `{id}`"))),
                },
            };
            Ok(match outcome {
                Ok(response) => response,
                // The calling guest gets what an outside client would: the error document.
                Err(error) => error.logged_response().map(|body| {
                    Full::new(body)
                        .map_err(|never: std::convert::Infallible| match never {})
                        .boxed_unsync()
                }),
            })
        })
    }
}

/// Points a local request at the app's own origin, as Spin does for self requests.
fn readdress(request: &mut http::Request<GuestBody>, origin: &Authority) {
    let path_and_query = request.uri().path_and_query().cloned();
    let mut uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(origin.clone());
    if let Some(path_and_query) = path_and_query {
        uri = uri.path_and_query(path_and_query);
    }
    if let Ok(uri) = uri.build() {
        *request.uri_mut() = uri;
    }
    if let Ok(host) = HeaderValue::from_str(origin.as_str()) {
        request.headers_mut().insert(http::header::HOST, host);
    }
}
