//! `wasi:http@0.2.0-rc-2023-10-18`, forwarded to wasmtime's WASI 0.2 `wasi:http` (see the
//! parent module for what differs).

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable};
use wasmtime_wasi_http::FieldMap;
use wasmtime_wasi_http::p2::bindings::http::types as release;
use wasmtime_wasi_http::p2::body::{HostFutureTrailers, HostIncomingBody, HostOutgoingBody};
use wasmtime_wasi_http::p2::types::{
    HostFutureIncomingResponse, HostIncomingRequest, HostIncomingResponse, HostOutgoingRequest,
    HostOutgoingResponse, HostResponseOutparam,
};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView as _};

use super::RcHttp;
use super::wasi::http::{outgoing_handler, types};
use crate::host::local_requests::OutgoingHandlerP2 as _;
use crate::state::HostState;

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    types::add_to_linker::<HostState, RcHttp>(linker, HostState::http)?;
    outgoing_handler::add_to_linker::<HostState, RcHttp>(linker, HostState::http)
}

type Result<T> = wasmtime::Result<T>;

/// A release result whose error the candidate has no way to report: a trap, as for any
/// argument the host refuses.
fn refused<T, E: std::fmt::Debug>(result: std::result::Result<T, E>, what: &str) -> Result<T> {
    result.map_err(|error| wasmtime::format_err!("{what}: {error:?}"))
}

fn method_to_release(method: types::Method) -> release::Method {
    match method {
        types::Method::Get => release::Method::Get,
        types::Method::Head => release::Method::Head,
        types::Method::Post => release::Method::Post,
        types::Method::Put => release::Method::Put,
        types::Method::Delete => release::Method::Delete,
        types::Method::Connect => release::Method::Connect,
        types::Method::Options => release::Method::Options,
        types::Method::Trace => release::Method::Trace,
        types::Method::Patch => release::Method::Patch,
        types::Method::Other(other) => release::Method::Other(other),
    }
}

fn method_from_release(method: release::Method) -> types::Method {
    match method {
        release::Method::Get => types::Method::Get,
        release::Method::Head => types::Method::Head,
        release::Method::Post => types::Method::Post,
        release::Method::Put => types::Method::Put,
        release::Method::Delete => types::Method::Delete,
        release::Method::Connect => types::Method::Connect,
        release::Method::Options => types::Method::Options,
        release::Method::Trace => types::Method::Trace,
        release::Method::Patch => types::Method::Patch,
        release::Method::Other(other) => types::Method::Other(other),
    }
}

fn scheme_to_release(scheme: types::Scheme) -> release::Scheme {
    match scheme {
        types::Scheme::Http => release::Scheme::Http,
        types::Scheme::Https => release::Scheme::Https,
        types::Scheme::Other(other) => release::Scheme::Other(other),
    }
}

fn scheme_from_release(scheme: release::Scheme) -> types::Scheme {
    match scheme {
        release::Scheme::Http => types::Scheme::Http,
        release::Scheme::Https => types::Scheme::Https,
        release::Scheme::Other(other) => types::Scheme::Other(other),
    }
}

/// The candidate's four error strings, from the release's error codes.
fn error_from_release(code: release::ErrorCode) -> types::Error {
    use release::ErrorCode as Code;
    let text = format!("{code:?}");
    match code {
        Code::HttpRequestUriInvalid | Code::HttpRequestUriTooLong => types::Error::InvalidUrl(text),
        Code::DnsTimeout
        | Code::ConnectionTimeout
        | Code::ConnectionReadTimeout
        | Code::ConnectionWriteTimeout
        | Code::HttpResponseTimeout => types::Error::TimeoutError(text),
        Code::HttpProtocolError
        | Code::HttpResponseIncomplete
        | Code::HttpResponseHeaderSectionSize(_)
        | Code::HttpResponseHeaderSize(_)
        | Code::HttpResponseBodySize(_)
        | Code::HttpResponseTrailerSectionSize(_)
        | Code::HttpResponseTrailerSize(_)
        | Code::HttpResponseTransferCoding(_)
        | Code::HttpResponseContentCoding(_)
        | Code::HttpUpgradeFailed => types::Error::ProtocolError(text),
        _ => types::Error::UnexpectedError(text),
    }
}

fn error_to_release(error: types::Error) -> release::ErrorCode {
    let text = match error {
        types::Error::InvalidUrl(text)
        | types::Error::TimeoutError(text)
        | types::Error::ProtocolError(text)
        | types::Error::UnexpectedError(text) => text,
    };
    release::ErrorCode::InternalError(Some(text))
}

/// A copy of `headers` the release can take ownership of.
fn owned_copy(
    view: &mut WasiHttpCtxView<'_>,
    headers: &Resource<FieldMap>,
) -> Result<Resource<FieldMap>> {
    release::HostFields::clone(view, Resource::new_borrow(headers.rep()))
}

impl types::Host for WasiHttpCtxView<'_> {}

impl types::HostFields for WasiHttpCtxView<'_> {
    fn new(&mut self, entries: Vec<(String, Vec<u8>)>) -> Result<Resource<FieldMap>> {
        let fields = release::HostFields::from_list(self, entries);
        refused(
            fields.map_err(|error| format!("{error:?}")),
            "invalid header",
        )
    }

    fn get(&mut self, fields: Resource<FieldMap>, name: String) -> Result<Vec<Vec<u8>>> {
        release::HostFields::get(self, fields, name)
    }

    fn set(
        &mut self,
        fields: Resource<FieldMap>,
        name: String,
        values: Vec<Vec<u8>>,
    ) -> Result<()> {
        let set = release::HostFields::set(self, fields, name, values);
        refused(set.map_err(|error| format!("{error:?}")), "invalid header")
    }

    fn delete(&mut self, fields: Resource<FieldMap>, name: String) -> Result<()> {
        let deleted = release::HostFields::delete(self, fields, name);
        refused(
            deleted.map_err(|error| format!("{error:?}")),
            "invalid header",
        )
    }

    fn append(&mut self, fields: Resource<FieldMap>, name: String, value: Vec<u8>) -> Result<()> {
        let appended = release::HostFields::append(self, fields, name, value);
        refused(
            appended.map_err(|error| format!("{error:?}")),
            "invalid header",
        )
    }

    fn entries(&mut self, fields: Resource<FieldMap>) -> Result<Vec<(String, Vec<u8>)>> {
        release::HostFields::entries(self, fields)
    }

    fn clone(&mut self, fields: Resource<FieldMap>) -> Result<Resource<FieldMap>> {
        release::HostFields::clone(self, fields)
    }

    fn drop(&mut self, fields: Resource<FieldMap>) -> Result<()> {
        release::HostFields::drop(self, fields)
    }
}

impl types::HostIncomingRequest for WasiHttpCtxView<'_> {
    fn method(&mut self, request: Resource<HostIncomingRequest>) -> Result<types::Method> {
        release::HostIncomingRequest::method(self, request).map(method_from_release)
    }

    fn path_with_query(
        &mut self,
        request: Resource<HostIncomingRequest>,
    ) -> Result<Option<String>> {
        release::HostIncomingRequest::path_with_query(self, request)
    }

    fn scheme(&mut self, request: Resource<HostIncomingRequest>) -> Result<Option<types::Scheme>> {
        Ok(release::HostIncomingRequest::scheme(self, request)?.map(scheme_from_release))
    }

    fn authority(&mut self, request: Resource<HostIncomingRequest>) -> Result<Option<String>> {
        release::HostIncomingRequest::authority(self, request)
    }

    fn headers(&mut self, request: Resource<HostIncomingRequest>) -> Result<Resource<FieldMap>> {
        release::HostIncomingRequest::headers(self, request)
    }

    fn consume(
        &mut self,
        request: Resource<HostIncomingRequest>,
    ) -> Result<std::result::Result<Resource<HostIncomingBody>, ()>> {
        release::HostIncomingRequest::consume(self, request)
    }

    fn drop(&mut self, request: Resource<HostIncomingRequest>) -> Result<()> {
        release::HostIncomingRequest::drop(self, request)
    }
}

impl types::HostOutgoingRequest for WasiHttpCtxView<'_> {
    fn new(
        &mut self,
        method: types::Method,
        path_with_query: Option<String>,
        scheme: Option<types::Scheme>,
        authority: Option<String>,
        headers: Resource<FieldMap>,
    ) -> Result<Resource<HostOutgoingRequest>> {
        let headers = owned_copy(self, &headers)?;
        let request = release::HostOutgoingRequest::new(self, headers)?;
        let borrow = || Resource::new_borrow(request.rep());
        refused(
            release::HostOutgoingRequest::set_method(self, borrow(), method_to_release(method))?,
            "invalid method",
        )?;
        refused(
            release::HostOutgoingRequest::set_path_with_query(self, borrow(), path_with_query)?,
            "invalid path",
        )?;
        refused(
            release::HostOutgoingRequest::set_scheme(
                self,
                borrow(),
                scheme.map(scheme_to_release),
            )?,
            "invalid scheme",
        )?;
        refused(
            release::HostOutgoingRequest::set_authority(self, borrow(), authority)?,
            "invalid authority",
        )?;
        Ok(request)
    }

    fn write(
        &mut self,
        request: Resource<HostOutgoingRequest>,
    ) -> Result<std::result::Result<Resource<HostOutgoingBody>, ()>> {
        release::HostOutgoingRequest::body(self, request)
    }

    fn drop(&mut self, request: Resource<HostOutgoingRequest>) -> Result<()> {
        release::HostOutgoingRequest::drop(self, request)
    }
}

impl types::HostResponseOutparam for WasiHttpCtxView<'_> {
    fn set(
        &mut self,
        param: Resource<HostResponseOutparam>,
        response: std::result::Result<Resource<HostOutgoingResponse>, types::Error>,
    ) -> Result<()> {
        release::HostResponseOutparam::set(self, param, response.map_err(error_to_release))
    }

    fn drop(&mut self, param: Resource<HostResponseOutparam>) -> Result<()> {
        release::HostResponseOutparam::drop(self, param)
    }
}

impl types::HostIncomingResponse for WasiHttpCtxView<'_> {
    fn status(&mut self, response: Resource<HostIncomingResponse>) -> Result<u16> {
        release::HostIncomingResponse::status(self, response)
    }

    fn headers(&mut self, response: Resource<HostIncomingResponse>) -> Result<Resource<FieldMap>> {
        release::HostIncomingResponse::headers(self, response)
    }

    fn consume(
        &mut self,
        response: Resource<HostIncomingResponse>,
    ) -> Result<std::result::Result<Resource<HostIncomingBody>, ()>> {
        release::HostIncomingResponse::consume(self, response)
    }

    fn drop(&mut self, response: Resource<HostIncomingResponse>) -> Result<()> {
        release::HostIncomingResponse::drop(self, response)
    }
}

impl types::HostIncomingBody for WasiHttpCtxView<'_> {
    fn stream(
        &mut self,
        body: Resource<HostIncomingBody>,
    ) -> Result<std::result::Result<Resource<DynInputStream>, ()>> {
        release::HostIncomingBody::stream(self, body)
    }

    fn finish(&mut self, body: Resource<HostIncomingBody>) -> Result<Resource<HostFutureTrailers>> {
        release::HostIncomingBody::finish(self, body)
    }

    fn drop(&mut self, body: Resource<HostIncomingBody>) -> Result<()> {
        release::HostIncomingBody::drop(self, body)
    }
}

impl types::HostFutureTrailers for WasiHttpCtxView<'_> {
    fn subscribe(
        &mut self,
        trailers: Resource<HostFutureTrailers>,
    ) -> Result<Resource<DynPollable>> {
        release::HostFutureTrailers::subscribe(self, trailers)
    }

    fn get(
        &mut self,
        trailers: Resource<HostFutureTrailers>,
    ) -> Result<Option<std::result::Result<Resource<FieldMap>, types::Error>>> {
        Ok(match release::HostFutureTrailers::get(self, trailers)? {
            None => None,
            Some(Err(())) => {
                return Err(wasmtime::format_err!("trailers were already taken"));
            }
            Some(Ok(Ok(Some(trailers)))) => Some(Ok(trailers)),
            // The candidate has no "no trailers": an empty set says the same.
            Some(Ok(Ok(None))) => Some(Ok(release::HostFields::new(self)?)),
            Some(Ok(Err(code))) => Some(Err(error_from_release(code))),
        })
    }

    fn drop(&mut self, trailers: Resource<HostFutureTrailers>) -> Result<()> {
        release::HostFutureTrailers::drop(self, trailers)
    }
}

impl types::HostOutgoingResponse for WasiHttpCtxView<'_> {
    fn new(
        &mut self,
        status: u16,
        headers: Resource<FieldMap>,
    ) -> Result<Resource<HostOutgoingResponse>> {
        let headers = owned_copy(self, &headers)?;
        let response = release::HostOutgoingResponse::new(self, headers)?;
        let set = release::HostOutgoingResponse::set_status_code(
            self,
            Resource::new_borrow(response.rep()),
            status,
        )?;
        refused(set, "invalid status code")?;
        Ok(response)
    }

    fn write(
        &mut self,
        response: Resource<HostOutgoingResponse>,
    ) -> Result<std::result::Result<Resource<HostOutgoingBody>, ()>> {
        release::HostOutgoingResponse::body(self, response)
    }

    fn drop(&mut self, response: Resource<HostOutgoingResponse>) -> Result<()> {
        release::HostOutgoingResponse::drop(self, response)
    }
}

impl types::HostOutgoingBody for WasiHttpCtxView<'_> {
    fn write(
        &mut self,
        body: Resource<HostOutgoingBody>,
    ) -> Result<std::result::Result<Resource<DynOutputStream>, ()>> {
        release::HostOutgoingBody::write(self, body)
    }

    fn finish(
        &mut self,
        body: Resource<HostOutgoingBody>,
        trailers: Option<Resource<FieldMap>>,
    ) -> Result<()> {
        let finished = release::HostOutgoingBody::finish(self, body, trailers);
        refused(
            finished.map_err(|error| format!("{error:?}")),
            "the body could not be finished",
        )
    }

    fn drop(&mut self, body: Resource<HostOutgoingBody>) -> Result<()> {
        release::HostOutgoingBody::drop(self, body)
    }
}

impl types::HostFutureIncomingResponse for WasiHttpCtxView<'_> {
    fn get(
        &mut self,
        response: Resource<HostFutureIncomingResponse>,
    ) -> Result<
        Option<
            std::result::Result<
                std::result::Result<Resource<HostIncomingResponse>, types::Error>,
                (),
            >,
        >,
    > {
        Ok(release::HostFutureIncomingResponse::get(self, response)?
            .map(|taken| taken.map(|response| response.map_err(error_from_release))))
    }

    fn subscribe(
        &mut self,
        response: Resource<HostFutureIncomingResponse>,
    ) -> Result<Resource<DynPollable>> {
        release::HostFutureIncomingResponse::subscribe(self, response)
    }

    fn drop(&mut self, response: Resource<HostFutureIncomingResponse>) -> Result<()> {
        release::HostFutureIncomingResponse::drop(self, response)
    }
}

impl outgoing_handler::Host for WasiHttpCtxView<'_> {
    fn handle(
        &mut self,
        request: Resource<HostOutgoingRequest>,
        options: Option<types::RequestOptions>,
    ) -> Result<std::result::Result<Resource<HostFutureIncomingResponse>, types::Error>> {
        let options = match options {
            None => None,
            Some(options) => Some(self.request_options(options)?),
        };
        Ok(self
            .handle_p2(request, options)?
            .map_err(error_from_release))
    }
}

/// The release's `request-options` resource for the candidate's record.
trait RequestOptionsExt {
    fn request_options(
        &mut self,
        options: types::RequestOptions,
    ) -> Result<Resource<release::RequestOptions>>;
}

impl RequestOptionsExt for WasiHttpCtxView<'_> {
    fn request_options(
        &mut self,
        options: types::RequestOptions,
    ) -> Result<Resource<release::RequestOptions>> {
        let resource = release::HostRequestOptions::new(self)?;
        let nanos = |millis: Option<u32>| millis.map(|millis| u64::from(millis) * 1_000_000);
        let borrow = || Resource::new_borrow(resource.rep());
        refused(
            release::HostRequestOptions::set_connect_timeout(
                self,
                borrow(),
                nanos(options.connect_timeout_ms),
            )?,
            "invalid connect timeout",
        )?;
        refused(
            release::HostRequestOptions::set_first_byte_timeout(
                self,
                borrow(),
                nanos(options.first_byte_timeout_ms),
            )?,
            "invalid first-byte timeout",
        )?;
        refused(
            release::HostRequestOptions::set_between_bytes_timeout(
                self,
                borrow(),
                nanos(options.between_bytes_timeout_ms),
            )?,
            "invalid between-bytes timeout",
        )?;
        Ok(resource)
    }
}
