//! The WASI 0.2.0 release candidate of 2023-10-18 that spin-sdk 2.x components speak
//! (`wasi:io@0.2.0-rc-2023-10-18`, `wasi:http@0.2.0-rc-2023-10-18`), served by the same
//! resources as WASI 0.2: every handle a release-candidate function takes or returns is the
//! resource wasmtime's 0.2 implementation keeps (streams, pollables, fields, requests,
//! bodies…), and every function forwards to that implementation. What the candidate spells
//! differently is converted here:
//!
//! - `fields` is built from a list and its setters cannot fail (a header the release refuses
//!   traps, as an invalid argument);
//! - `outgoing-request` and `outgoing-response` are built whole, from a borrowed `headers`
//!   (copied, as the release takes them owned);
//! - `request-options` is a record of milliseconds, not a resource of nanoseconds;
//! - errors are four strings (`invalid-url`, `timeout-error`, `protocol-error`,
//!   `unexpected-error`) rather than `error-code`;
//! - `splice` and `forward` take their source stream owned; `poll-one` blocks on one pollable.
//!
//! Outgoing requests go through the same path as WASI 0.2's (`allowed_outbound_hosts`,
//! relative URLs to the app itself). The candidate's `incoming-handler` export is run by
//! [`crate::invoke`].

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::io::{error as io_error, poll as io_poll, streams as io_streams};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, IoError, StreamError};
use wasmtime_wasi_http::WasiHttpCtxView;

use crate::state::HostState;

mod http;

wasmtime::component::bindgen!({
    path: "wit-rc-2023-10-18",
    world: "nexus:host-rc/wasi-http-rc-2023-10-18",
    imports: {
        "wasi:io/poll.poll-list": async | trappable,
        "wasi:io/poll.poll-one": async | trappable,
        "wasi:io/streams.[method]input-stream.blocking-read": async | trappable,
        "wasi:io/streams.[method]input-stream.blocking-skip": async | trappable,
        "wasi:io/streams.[drop]input-stream": async | trappable,
        "wasi:io/streams.[method]output-stream.blocking-write-and-flush": async | trappable,
        "wasi:io/streams.[method]output-stream.blocking-flush": async | trappable,
        "wasi:io/streams.[method]output-stream.blocking-write-zeroes-and-flush": async | trappable,
        "wasi:io/streams.[method]output-stream.blocking-splice": async | trappable,
        "wasi:io/streams.[method]output-stream.forward": async | trappable,
        "wasi:io/streams.[drop]output-stream": async | trappable,
        default: trappable,
    },
    exports: { default: async },
    with: {
        "wasi:io/poll.pollable": wasmtime_wasi::p2::DynPollable,
        "wasi:io/streams.input-stream": wasmtime_wasi::p2::DynInputStream,
        "wasi:io/streams.output-stream": wasmtime_wasi::p2::DynOutputStream,
        "wasi:io/streams.error": wasmtime_wasi::p2::IoError,
        "wasi:http/types.fields": wasmtime_wasi_http::FieldMap,
        "wasi:http/types.incoming-request": wasmtime_wasi_http::p2::types::HostIncomingRequest,
        "wasi:http/types.outgoing-request": wasmtime_wasi_http::p2::types::HostOutgoingRequest,
        "wasi:http/types.response-outparam": wasmtime_wasi_http::p2::types::HostResponseOutparam,
        "wasi:http/types.incoming-response": wasmtime_wasi_http::p2::types::HostIncomingResponse,
        "wasi:http/types.outgoing-response": wasmtime_wasi_http::p2::types::HostOutgoingResponse,
        "wasi:http/types.incoming-body": wasmtime_wasi_http::p2::body::HostIncomingBody,
        "wasi:http/types.outgoing-body": wasmtime_wasi_http::p2::body::HostOutgoingBody,
        "wasi:http/types.future-trailers": wasmtime_wasi_http::p2::body::HostFutureTrailers,
        "wasi:http/types.future-incoming-response": wasmtime_wasi_http::p2::types::HostFutureIncomingResponse,
    },
    trappable_error_type: {
        "wasi:io/streams.stream-error" => wasmtime_wasi::p2::StreamError,
    },
    require_store_data_send: true,
});

pub use exports::wasi::http::incoming_handler::Guest as IncomingHandler;

use wasi::io::{poll, streams};

/// Adds the release candidate's `wasi:io` and `wasi:http` imports to `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    poll::add_to_linker::<HostState, RcIo>(linker, |state| &mut state.table)?;
    streams::add_to_linker::<HostState, RcIo>(linker, |state| &mut state.table)?;
    http::add_to_linker(linker)
}

/// [`HasData`] marker for the release candidate's `wasi:io`, served from the resource table.
struct RcIo;

impl HasData for RcIo {
    type Data<'a> = &'a mut ResourceTable;
}

type StreamResult<T> = Result<T, StreamError>;

impl poll::Host for ResourceTable {
    async fn poll_list(
        &mut self,
        pollables: Vec<Resource<DynPollable>>,
    ) -> wasmtime::Result<Vec<u32>> {
        io_poll::Host::poll(self, pollables).await
    }

    async fn poll_one(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        io_poll::HostPollable::block(self, pollable).await
    }
}

impl poll::HostPollable for ResourceTable {
    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        io_poll::HostPollable::drop(self, pollable)
    }
}

impl streams::Host for ResourceTable {
    fn convert_stream_error(
        &mut self,
        error: StreamError,
    ) -> wasmtime::Result<streams::StreamError> {
        match error {
            StreamError::Closed => Ok(streams::StreamError::Closed),
            StreamError::LastOperationFailed(error) => Ok(
                streams::StreamError::LastOperationFailed(self.push(IoError::from(error))?),
            ),
            StreamError::Trap(error) => Err(error),
        }
    }
}

impl streams::HostError for ResourceTable {
    fn to_debug_string(&mut self, error: Resource<IoError>) -> wasmtime::Result<String> {
        io_error::HostError::to_debug_string(self, error)
    }

    fn drop(&mut self, error: Resource<IoError>) -> wasmtime::Result<()> {
        io_error::HostError::drop(self, error)
    }
}

impl streams::HostInputStream for ResourceTable {
    fn read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        io_streams::HostInputStream::read(self, stream, len)
    }

    async fn blocking_read(
        &mut self,
        stream: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<Vec<u8>> {
        io_streams::HostInputStream::blocking_read(self, stream, len).await
    }

    fn skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        io_streams::HostInputStream::skip(self, stream, len)
    }

    async fn blocking_skip(
        &mut self,
        stream: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        io_streams::HostInputStream::blocking_skip(self, stream, len).await
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynInputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        io_streams::HostInputStream::subscribe(self, stream)
    }

    async fn drop(&mut self, stream: Resource<DynInputStream>) -> wasmtime::Result<()> {
        io_streams::HostInputStream::drop(self, stream).await
    }
}

impl streams::HostOutputStream for ResourceTable {
    fn check_write(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<u64> {
        io_streams::HostOutputStream::check_write(self, stream)
    }

    fn write(&mut self, stream: Resource<DynOutputStream>, contents: Vec<u8>) -> StreamResult<()> {
        io_streams::HostOutputStream::write(self, stream, contents)
    }

    async fn blocking_write_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        contents: Vec<u8>,
    ) -> StreamResult<()> {
        io_streams::HostOutputStream::blocking_write_and_flush(self, stream, contents).await
    }

    fn flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        io_streams::HostOutputStream::flush(self, stream)
    }

    async fn blocking_flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        io_streams::HostOutputStream::blocking_flush(self, stream).await
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        io_streams::HostOutputStream::subscribe(self, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        io_streams::HostOutputStream::write_zeroes(self, stream, len)
    }

    async fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        io_streams::HostOutputStream::blocking_write_zeroes_and_flush(self, stream, len).await
    }

    fn splice(
        &mut self,
        stream: Resource<DynOutputStream>,
        source: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        // The candidate hands the source over; the release only borrows it.
        let borrowed = Resource::new_borrow(source.rep());
        let spliced = io_streams::HostOutputStream::splice(self, stream, borrowed, len);
        self.delete(source)
            .map_err(|error| StreamError::Trap(error.into()))?;
        spliced
    }

    async fn blocking_splice(
        &mut self,
        stream: Resource<DynOutputStream>,
        source: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        let borrowed = Resource::new_borrow(source.rep());
        let spliced =
            io_streams::HostOutputStream::blocking_splice(self, stream, borrowed, len).await;
        self.delete(source)
            .map_err(|error| StreamError::Trap(error.into()))?;
        spliced
    }

    async fn forward(
        &mut self,
        stream: Resource<DynOutputStream>,
        source: Resource<DynInputStream>,
    ) -> StreamResult<u64> {
        // Splices until the source ends: the candidate's `forward`, gone from the release.
        let mut total = 0u64;
        let outcome = loop {
            let to = Resource::new_borrow(stream.rep());
            let from = Resource::new_borrow(source.rep());
            match io_streams::HostOutputStream::blocking_splice(self, to, from, 64 * 1024).await {
                Ok(spliced) => total += spliced,
                Err(StreamError::Closed) => break Ok(total),
                Err(error) => break Err(error),
            }
        };
        self.delete(source)
            .map_err(|error| StreamError::Trap(error.into()))?;
        outcome
    }

    async fn drop(&mut self, stream: Resource<DynOutputStream>) -> wasmtime::Result<()> {
        io_streams::HostOutputStream::drop(self, stream).await
    }
}

/// [`HasData`] marker for the release candidate's `wasi:http`, served by wasmtime's view.
struct RcHttp;

impl HasData for RcHttp {
    type Data<'a> = WasiHttpCtxView<'a>;
}
