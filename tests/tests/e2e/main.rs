//! End-to-end tests of the edge runtime: real guests built from `functions/`, served by the
//! platform in-process, called over real HTTP.

mod http_functions;
mod key_value;
mod limits;
mod outbound;
