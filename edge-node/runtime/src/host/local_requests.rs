//! Requests a component makes to its own app, handled in process as Spin handles them:
//! - a relative URL (`/other/route`), allowed by `http://self` (or `*`) in
//!   `allowed_outbound_hosts`, is routed by the app's router;
//! - `http://<component>.spin.internal/…` (service chaining), allowed like any host, goes
//!   straight to that component.
//!
//! wasi:http refuses to build a URL without an authority before any hook runs, so the
//! outgoing-request entry points of both HTTP worlds are wrapped: a request without an
//! authority gets [`SELF_AUTHORITY`], which the outbound hook recognises.
//!
//! The runtime does not route; the edge does. It registers itself as the app's
//! [`LocalDispatch`] once it serves the app (see `LoadedApp::set_local_dispatch`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};

use http::uri::Authority;
use wasmtime::component::{Accessor, HasData, Linker, Resource};
use wasmtime_wasi::TrappableError;
use wasmtime_wasi_http::p2::bindings::LinkOptions;
use wasmtime_wasi_http::p2::bindings::http::{outgoing_handler, types as p2_types};
use wasmtime_wasi_http::p2::types::{HostFutureIncomingResponse, HostOutgoingRequest};
use wasmtime_wasi_http::p3::Request;
use wasmtime_wasi_http::p3::bindings::http::client::HostWithStore as P3ClientWithStore;
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode as P3ErrorCode;
use wasmtime_wasi_http::p3::bindings::http::types::{Request as P3Request, Response as P3Response};
use wasmtime_wasi_http::{WasiHttp, WasiHttpCtxView, WasiHttpView};

use crate::invoke::{GuestBody, GuestResponse};
use crate::state::HostState;

/// The authority given to requests without one: the app itself. `.invalid` can never resolve.
pub const SELF_AUTHORITY: &str = "self.nexus.invalid";
/// Hosts under this domain name components of the same app (Spin's service chaining).
pub const SERVICE_CHAINING_SUFFIX: &str = ".spin.internal";

/// Where a local request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalTarget {
    /// Through the app's router, like a request from outside.
    App,
    /// Straight to this component.
    Component(String),
}

/// The response of a local request, or why there is none.
pub type LocalResult = Result<GuestResponse, wasmtime_wasi_http::Error>;

/// Serves requests a component makes to its own app.
pub trait LocalDispatch: Send + Sync {
    /// Runs `request` for `target`.
    fn dispatch(
        self: Arc<Self>,
        target: LocalTarget,
        request: http::Request<GuestBody>,
    ) -> Pin<Box<dyn Future<Output = LocalResult> + Send>>;
}

/// The app's dispatcher, shared by all of its components; empty until the app is served.
/// Weak, because the dispatcher owns the app.
#[derive(Default, Clone)]
pub struct LocalDispatchSlot(Arc<OnceLock<Weak<dyn LocalDispatch>>>);

impl LocalDispatchSlot {
    /// Sets the dispatcher; later calls are ignored (an app is served by one edge).
    pub fn set(&self, dispatcher: Weak<dyn LocalDispatch>) {
        let _ = self.0.set(dispatcher);
    }

    /// The dispatcher, if the app is being served.
    pub fn get(&self) -> Option<Arc<dyn LocalDispatch>> {
        self.0.get().and_then(Weak::upgrade)
    }
}

/// Whether an authority names no host: empty, or only a port. spin-sdk 2–5 send relative
/// URLs with authority `:80` or `:443`, because wasi:http 0.2 insists on one.
fn names_no_host(authority: &str) -> bool {
    authority.is_empty() || authority.starts_with(':')
}

/// Which local target, if any, a request URL names.
pub fn local_target(uri: &http::Uri) -> Option<LocalTarget> {
    let host = uri.authority()?.host();
    if host == SELF_AUTHORITY {
        return Some(LocalTarget::App);
    }
    let component = host.strip_suffix(SERVICE_CHAINING_SUFFIX)?;
    (!component.is_empty() && !component.contains('.'))
        .then(|| LocalTarget::Component(component.to_owned()))
}

/// Adds `wasi:http` p2 `outgoing-handler`/`types` and p3 `client`/`types`, with the
/// outgoing entry points wrapped to mark relative URLs.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let options = LinkOptions::default();
    p2_types::add_to_linker::<HostState, WasiHttp>(linker, &options.into(), HostState::http)?;
    p2::wasi::http::outgoing_handler::add_to_linker::<HostState, SelfAwareP2>(
        linker,
        HostState::http,
    )?;
    wasmtime_wasi_http::p3::bindings::http::types::add_to_linker::<HostState, WasiHttp>(
        linker,
        HostState::http,
    )?;
    wasmtime_wasi_http::p3::bindings::http::client::add_to_linker::<HostState, SelfAwareP3>(
        linker,
        HostState::http,
    )?;
    Ok(())
}

mod p2 {
    //! Our own binding of `wasi:http/outgoing-handler@0.2`, over wasmtime's `types`, so
    //! that its `handle` can be wrapped (wasmtime's is implemented on its view type).

    wasmtime::component::bindgen!({
        path: "wit",
        world: "nexus:host/outgoing-handler-p2",
        imports: { default: trappable },
        with: {
            "wasi:http/types": wasmtime_wasi_http::p2::bindings::http::types,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
        require_store_data_send: true,
    });
}

/// p2 `outgoing-handler` whose requests may be relative.
pub struct SelfAwareP2;

impl HasData for SelfAwareP2 {
    type Data<'a> = WasiHttpCtxView<'a>;
}

/// p3 `client` whose requests may be relative.
pub struct SelfAwareP3;

impl HasData for SelfAwareP3 {
    type Data<'a> = WasiHttpCtxView<'a>;
}

impl p2::wasi::http::outgoing_handler::Host for WasiHttpCtxView<'_> {
    fn handle(
        &mut self,
        request: Resource<HostOutgoingRequest>,
        options: Option<Resource<p2_types::RequestOptions>>,
    ) -> wasmtime::Result<Result<Resource<HostFutureIncomingResponse>, p2_types::ErrorCode>> {
        let outgoing = self.table.get_mut(&request)?;
        if outgoing.authority.as_deref().is_none_or(names_no_host) {
            outgoing.authority = Some(SELF_AUTHORITY.to_owned());
        }
        match outgoing_handler::Host::handle(self, request, options) {
            Ok(response) => Ok(Ok(response)),
            Err(error) => error.downcast().map(Err),
        }
    }
}

/// The p2 `outgoing-handler` with relative URLs, for other bindings of `wasi:http` (the
/// WASI release candidates) to send through.
pub(crate) trait OutgoingHandlerP2 {
    /// Sends `request` as p2's `handle` does, relative URLs included.
    fn handle_p2(
        &mut self,
        request: Resource<HostOutgoingRequest>,
        options: Option<Resource<p2_types::RequestOptions>>,
    ) -> wasmtime::Result<Result<Resource<HostFutureIncomingResponse>, p2_types::ErrorCode>>;
}

impl OutgoingHandlerP2 for WasiHttpCtxView<'_> {
    fn handle_p2(
        &mut self,
        request: Resource<HostOutgoingRequest>,
        options: Option<Resource<p2_types::RequestOptions>>,
    ) -> wasmtime::Result<Result<Resource<HostFutureIncomingResponse>, p2_types::ErrorCode>> {
        p2::wasi::http::outgoing_handler::Host::handle(self, request, options)
    }
}

/// p3 results with the trappable error wasmtime uses for `wasi:http`.
type P3Result<T> = Result<T, TrappableError<P3ErrorCode>>;

impl<T> P3ClientWithStore<T> for SelfAwareP3 {
    async fn send(
        store: &Accessor<T, Self>,
        request: Resource<P3Request>,
    ) -> P3Result<Resource<P3Response>> {
        store
            .with(|mut access| -> wasmtime::Result<()> {
                let outgoing: &mut Request = access.get().table.get_mut(&request)?;
                if outgoing
                    .authority
                    .as_ref()
                    .is_none_or(|authority| names_no_host(authority.as_str()))
                {
                    outgoing.authority = Some(Authority::from_static(SELF_AUTHORITY));
                }
                Ok(())
            })
            .map_err(TrappableError::trap)?;
        let inner = store.with_getter::<WasiHttp>(store.getter());
        <WasiHttp as P3ClientWithStore<T>>::send(&inner, request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_local_targets() {
        let target = |uri: &str| local_target(&uri.parse::<http::Uri>().unwrap());
        assert_eq!(
            target(&format!("http://{SELF_AUTHORITY}/x")),
            Some(LocalTarget::App)
        );
        assert_eq!(
            target("http://users.spin.internal/x"),
            Some(LocalTarget::Component("users".to_owned()))
        );
        assert_eq!(target("http://a.b.spin.internal/"), None);
        assert_eq!(target("http://spin.internal/"), None);
        assert_eq!(target("https://example.com/"), None);
    }

    #[test]
    fn an_authority_without_a_host_is_relative() {
        for relative in ["", ":80", ":443"] {
            assert!(names_no_host(relative), "{relative:?}");
        }
        assert!(!names_no_host("example.com:80"));
    }
}
