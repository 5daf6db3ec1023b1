//! What the caps of [`crate::Limits`] share: counting breaches, measuring header sections, and
//! recognising a breach in the error a guest's instance ended with.

use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderMap;
use wasmtime::component::ResourceTableError;
use wasmtime_wasi_http::FieldMapError;

use crate::config::Limits;
use crate::error::Cap;

/// How many times each cap was hit, for metrics.
#[derive(Debug, Default)]
pub(crate) struct Breaches {
    counts: [AtomicU64; Cap::ALL.len()],
}

impl Breaches {
    /// Counts one breach of `cap`.
    pub(crate) fn record(&self, cap: Cap) {
        self.counts[index(cap)].fetch_add(1, Ordering::Relaxed);
    }

    /// Every cap with its count.
    pub(crate) fn counts(&self) -> Vec<(Cap, u64)> {
        Cap::ALL
            .iter()
            .map(|&cap| (cap, self.counts[index(cap)].load(Ordering::Relaxed)))
            .collect()
    }
}

fn index(cap: Cap) -> usize {
    Cap::ALL.iter().position(|&known| known == cap).unwrap_or(0)
}

/// [`Limits::max_host_call_bytes`] as host calls check it.
#[derive(Debug, Clone)]
pub(crate) struct CallBudget {
    limit: u64,
    breaches: std::sync::Arc<Breaches>,
}

impl CallBudget {
    pub(crate) fn new(limits: &Limits, breaches: std::sync::Arc<Breaches>) -> Self {
        Self {
            limit: limits.max_host_call_bytes,
            breaches,
        }
    }

    /// Refuses moving `bytes` in one call when that is over the cap, counting the breach; the
    /// message is what the guest sees.
    pub(crate) fn check(&self, bytes: usize) -> Result<(), String> {
        if bytes as u64 <= self.limit {
            return Ok(());
        }
        self.breaches.record(Cap::HostCallBytes);
        Err(format!(
            "{bytes} bytes exceed the {} cap of {} bytes per host call",
            Cap::HostCallBytes.setting(),
            self.limit
        ))
    }
}

/// The cap's value in `limits`, as a number for messages.
pub(crate) fn value(limits: &Limits, cap: Cap) -> u64 {
    match cap {
        Cap::ComponentBytes => limits.max_component_bytes,
        Cap::CompileTime => u64::try_from(limits.compile_timeout.as_millis()).unwrap_or(u64::MAX),
        Cap::Resources => u64::from(limits.max_resources),
        Cap::HostCallBytes => limits.max_host_call_bytes,
        Cap::OutboundRequests => u64::from(limits.max_outbound_requests),
        Cap::HeaderCount => u64::from(limits.max_header_count),
        Cap::HeaderBytes => limits.max_header_bytes,
    }
}

/// Bytes of a header section as it travels: every name and value, once per value.
pub(crate) fn header_bytes(headers: &HeaderMap) -> u64 {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().len() + value.len()) as u64)
        .sum()
}

/// The header cap `headers` breaks, if any: more fields than `max_header_count`, or more bytes
/// than `max_header_bytes`.
pub(crate) fn check_headers(headers: &HeaderMap, limits: &Limits) -> Result<(), Cap> {
    if headers.len() as u64 > u64::from(limits.max_header_count) {
        return Err(Cap::HeaderCount);
    }
    if header_bytes(headers) > limits.max_header_bytes {
        return Err(Cap::HeaderBytes);
    }
    Ok(())
}

/// What a guest may put into one wasi:http `fields`: wasmtime counts the in-memory size of
/// each entry, so the wire budget gets each field's bookkeeping on top.
pub(crate) fn field_size_limit(limits: &Limits) -> usize {
    let per_field = size_of::<http::HeaderName>() + size_of::<http::HeaderValue>();
    let count = usize::try_from(limits.max_header_count).unwrap_or(usize::MAX);
    usize::try_from(limits.max_header_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(count.saturating_mul(per_field))
}

/// The cap a guest broke, when `error` (what its instance ended with) is the host refusing it
/// one resource too many or a header section too large.
pub(crate) fn breached_by(error: &wasmtime::Error) -> Option<Cap> {
    if let Some(ResourceTableError::Full) = error.downcast_ref::<ResourceTableError>() {
        return Some(Cap::Resources);
    }
    match error.downcast_ref::<FieldMapError>() {
        Some(FieldMapError::TotalSizeTooBig | FieldMapError::TooManyFields) => {
            Some(Cap::HeaderBytes)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_measured_by_count_and_bytes() {
        let limits = Limits {
            max_header_count: 2,
            max_header_bytes: 10,
            ..Limits::default()
        };
        let mut headers = HeaderMap::new();
        headers.append("a", "1".parse().unwrap());
        headers.append("a", "2".parse().unwrap());
        assert_eq!(header_bytes(&headers), 4);
        assert_eq!(check_headers(&headers, &limits), Ok(()));
        headers.append("b", "3".parse().unwrap());
        assert_eq!(check_headers(&headers, &limits), Err(Cap::HeaderCount));
        let mut long = HeaderMap::new();
        long.append("name", "1234567".parse().unwrap());
        assert_eq!(check_headers(&long, &limits), Err(Cap::HeaderBytes));
    }

    #[test]
    fn breaches_are_counted_per_cap() {
        let breaches = Breaches::default();
        breaches.record(Cap::OutboundRequests);
        breaches.record(Cap::OutboundRequests);
        let counts = breaches.counts();
        assert!(counts.contains(&(Cap::OutboundRequests, 2)));
        assert!(counts.contains(&(Cap::Resources, 0)));
    }

    #[test]
    fn a_full_table_and_oversized_fields_are_recognised() {
        let full = wasmtime::Error::from(ResourceTableError::Full).context("pushing fields");
        assert_eq!(breached_by(&full), Some(Cap::Resources));
        let fields = wasmtime::Error::from(FieldMapError::TotalSizeTooBig);
        assert_eq!(breached_by(&fields), Some(Cap::HeaderBytes));
        let other = wasmtime::Error::from(ResourceTableError::NotPresent);
        assert_eq!(breached_by(&other), None);
    }
}
