//! What SirsiNexus processes tell their operators: metrics in the Prometheus text format
//! ([`metrics`]), and traces exported over OTLP with W3C trace context carried across every
//! hop ([`trace`]).

pub mod metrics;
pub mod trace;
