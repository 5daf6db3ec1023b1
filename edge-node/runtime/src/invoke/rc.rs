//! Running the `incoming-handler` export of the WASI 0.2.0 release candidate of 2023-10-18
//! (spin-sdk 2.x), which wasmtime's handler does not know, the way that handler runs the 0.2
//! export: a fresh instance on a task of its own, bound to the request's invocation (deadline,
//! slots), its CPU slot given up whenever it waits, and stopped at the deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

use super::{Admitted, BACKSTOP_GRACE, GuestResponse, Instantiator, end_instance};
use crate::cpu_gate::CpuRelease;
use crate::host::wasi_rc::WasiHttpRc20231018Pre;
use crate::state::{HostState, Invocation};

/// Runs `request` on a fresh instance of `pre` and returns the guest's response head; the body
/// streams from the instance's task.
pub(super) async fn handle(
    instantiator: &Instantiator,
    engine: &wasmtime::Engine,
    pre: &WasiHttpRc20231018Pre<HostState>,
    admitted: Admitted,
    request: http::Request<wasmtime_wasi_http::WasiBody>,
) -> wasmtime::Result<GuestResponse> {
    let mut store = instantiator.new_store(engine);
    let guest = pre.instantiate_async(&mut store).await?;
    let cpu = store.data().cpu.release_handle();
    let deadline = admitted.deadline;
    store.data_mut().begin(Invocation {
        deadline,
        agent: admitted.agent,
        slot: admitted.slot,
        ended: admitted.ended,
        span: admitted.span,
        log_sink: admitted.log_sink,
        variables: admitted.variables,
    });
    let (respond, response) = oneshot::channel();
    let request = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, request)?;
    let outparam = store.data_mut().http().new_response_outparam(respond)?;
    tokio::spawn(async move {
        let call = Box::pin(
            guest
                .wasi_http_incoming_handler()
                .call_handle(&mut store, request, outparam),
        );
        // The epoch policy interrupts a guest that computes past the deadline; this bound stops
        // one that waits past it.
        let result = tokio::time::timeout_at(deadline + BACKSTOP_GRACE, ReleasingCpu { call, cpu })
            .await
            .unwrap_or_else(|_| Err(wasmtime::Error::from(wasmtime::Trap::Interrupt)));
        end_instance(store, result);
    });
    match response.await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(code)) => Err(wasmtime::format_err!(
            "the guest answered with an error: {code:?}"
        )),
        Err(_) => Err(wasmtime::format_err!(
            "the guest returned without setting a response"
        )),
    }
}

/// The guest's call, giving its CPU slot up each time it waits (see `super::Backstop`).
struct ReleasingCpu<F> {
    call: F,
    cpu: CpuRelease,
}

impl<F: Future + Unpin> Future for ReleasingCpu<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let polled = Pin::new(&mut self.call).poll(context);
        if polled.is_pending() {
            self.cpu.release();
        }
        polled
    }
}
