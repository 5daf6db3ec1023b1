//! What the benches share: percentiles, and a figure printed next to its peer.

use std::time::Duration;

/// The `percent` percentile of `samples` (sorted in place).
pub fn percentile(samples: &mut [Duration], percent: usize) -> Duration {
    samples.sort_unstable();
    let index = (samples.len() * percent / 100).min(samples.len() - 1);
    samples[index]
}

/// `what`'s p50 and p99 next to `peer`'s p50, and their ratio.
pub fn print_row(what: &str, samples: &mut [Duration], peer: &str, peer_samples: &mut [Duration]) {
    let (p50, p99) = (percentile(samples, 50), percentile(samples, 99));
    let peer_p50 = percentile(peer_samples, 50);
    println!(
        "{what}: p50 {:.3} ms, p99 {:.3} ms | {peer}: p50 {:.3} ms | ratio {:.2}",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        peer_p50.as_secs_f64() * 1e3,
        p50.as_secs_f64() / peer_p50.as_secs_f64()
    );
}
