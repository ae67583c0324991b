//! A fixed log-scale latency histogram: 24 `u32` counts, from which
//! p50/p95/p99 are estimated.
//!
//! Buckets: index 0 holds latencies under 1 ms, index 23 those of 60 s or
//! more, and indexes 1..=22 split [1 ms, 60 s) into 22 buckets of equal
//! ratio `R = 60000^(1/22)` (≈ 1.649). A percentile is reported as the
//! geometric midpoint of the bucket holding it, so within [1 ms, 60 s) the
//! estimate is within a factor `sqrt(R)` (≈ 1.284) of the exact order
//! statistic: at most +28.4 % / −22.1 %. Under 1 ms it reports 0.5 ms; at
//! or over 60 s it reports 60 s (a lower bound).
//!
//! Invariant: the size is fixed (`BYTES` encoded), whatever was observed;
//! counts saturate rather than wrap.

use std::time::Duration;

/// Number of latency buckets.
pub const BUCKETS: usize = 24;
/// Encoded size: one little-endian `u32` per bucket.
pub const BYTES: usize = BUCKETS * 4;
/// The lowest and highest edges, in milliseconds.
const LOW_MS: f64 = 1.0;
const HIGH_MS: f64 = 60_000.0;
/// Buckets between the edges.
const INNER: usize = BUCKETS - 2;

/// The ratio between consecutive bucket edges.
pub fn ratio() -> f64 {
    (HIGH_MS / LOW_MS).powf(1.0 / INNER as f64)
}

/// The worst relative error of an estimate in [1 ms, 60 s), above the
/// exact value (below it, `1 - 1/(1 + this)`).
pub fn max_relative_error() -> f64 {
    ratio().sqrt() - 1.0
}

/// Counts of latencies per log-scale bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Histogram {
    pub counts: [u32; BUCKETS],
}

/// The bucket a latency falls in.
pub fn bucket_of(latency: Duration) -> usize {
    let ms = latency.as_secs_f64() * 1000.0;
    if ms < LOW_MS {
        0
    } else if ms >= HIGH_MS {
        BUCKETS - 1
    } else {
        let i = ((ms / LOW_MS).ln() / ratio().ln()).floor() as usize;
        1 + i.min(INNER - 1)
    }
}

/// The value a bucket stands for, in milliseconds.
fn representative_ms(bucket: usize) -> f64 {
    match bucket {
        0 => LOW_MS / 2.0,
        b if b >= BUCKETS - 1 => HIGH_MS,
        b => LOW_MS * ratio().powf(b as f64 - 0.5),
    }
}

impl Histogram {
    pub fn observe(&mut self, latency: Duration) {
        let b = bucket_of(latency);
        self.counts[b] = self.counts[b].saturating_add(1);
    }

    pub fn add(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    /// The estimated `q`-quantile (0 < q ≤ 1) in milliseconds; None when
    /// empty. Nearest rank: the smallest value with at least `q` of the
    /// observations at or below it.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let n = self.total();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0u64;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return Some(representative_ms(b));
            }
        }
        Some(representative_ms(BUCKETS - 1))
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        for c in &self.counts {
            out.extend_from_slice(&c.to_le_bytes());
        }
    }

    /// Reads `BYTES` bytes; None when `b` is not that long.
    pub fn decode(b: &[u8]) -> Option<Histogram> {
        if b.len() != BYTES {
            return None;
        }
        let mut h = Histogram::default();
        for (c, chunk) in h.counts.iter_mut().zip(b.chunks_exact(4)) {
            *c = u32::from_le_bytes(chunk.try_into().ok()?);
        }
        Some(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: f64) -> Duration {
        Duration::from_secs_f64(v / 1000.0)
    }

    /// The exact nearest-rank quantile of `values`.
    fn exact(values: &mut [f64], q: f64) -> f64 {
        values.sort_by(|a, b| a.total_cmp(b));
        let n = values.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        values[rank - 1]
    }

    fn assert_close(est: f64, truth: f64) {
        let bound = 1.0 + max_relative_error() + 1e-9;
        assert!(
            est <= truth * bound && est >= truth / bound,
            "estimate {est} ms is not within a factor {bound} of {truth} ms"
        );
    }

    #[test]
    fn the_error_bound_is_what_the_module_doc_states() {
        assert!((max_relative_error() - 0.284).abs() < 0.001);
        assert!((1.0 - 1.0 / (1.0 + max_relative_error()) - 0.221).abs() < 0.001);
    }

    #[test]
    fn edges_land_in_the_right_buckets() {
        assert_eq!(bucket_of(Duration::ZERO), 0);
        assert_eq!(bucket_of(ms(0.999)), 0);
        assert_eq!(bucket_of(ms(1.0)), 1);
        assert_eq!(bucket_of(ms(59_999.0)), BUCKETS - 2);
        assert_eq!(bucket_of(ms(60_000.0)), BUCKETS - 1);
        assert_eq!(bucket_of(Duration::from_secs(3600)), BUCKETS - 1);
        // Monotone.
        let mut last = 0;
        for i in 0..10_000 {
            let b = bucket_of(ms(i as f64 * 7.0));
            assert!(b >= last);
            last = b;
        }
    }

    fn check_distribution(mut values: Vec<f64>) {
        let mut h = Histogram::default();
        for v in &values {
            h.observe(ms(*v));
        }
        for q in [0.5, 0.95, 0.99] {
            let est = h.quantile_ms(q).unwrap();
            assert_close(est, exact(&mut values, q));
        }
    }

    #[test]
    fn percentiles_of_known_distributions_are_within_the_bound() {
        // Constant.
        check_distribution(vec![100.0; 500]);
        // Uniform 1..=1000 ms.
        check_distribution((1..=1000).map(f64::from).collect());
        // Bimodal: mostly fast, a slow tail of 5 %.
        let mut bi: Vec<f64> = (0..950).map(|i| 20.0 + f64::from(i % 10)).collect();
        bi.extend((0..50).map(|i| 2_000.0 + f64::from(i) * 10.0));
        check_distribution(bi);
        // Exponential-like, spanning decades (deterministic).
        check_distribution(
            (1..=2000)
                .map(|i| 5.0 * (1.0 / (1.0 - f64::from(i) / 2001.0)).ln() * 40.0 + 1.0)
                .collect(),
        );
    }

    #[test]
    fn empty_has_no_percentile_and_extremes_are_clamped() {
        assert_eq!(Histogram::default().quantile_ms(0.5), None);
        let mut h = Histogram::default();
        h.observe(Duration::from_secs(120));
        assert_eq!(h.quantile_ms(0.99), Some(60_000.0));
        let mut h = Histogram::default();
        h.observe(Duration::from_micros(200));
        assert_eq!(h.quantile_ms(0.5), Some(0.5));
    }

    #[test]
    fn encoding_round_trips_at_a_fixed_size() {
        let mut h = Histogram::default();
        for i in 0..100 {
            h.observe(ms(f64::from(i) * 31.0));
        }
        h.counts[bucket_of(ms(2.5))] = u32::MAX;
        h.observe(ms(2.5)); // saturates, does not wrap
        let mut b = Vec::new();
        h.encode(&mut b);
        assert_eq!(b.len(), BYTES);
        assert_eq!(Histogram::decode(&b), Some(h));
        assert_eq!(Histogram::decode(&b[1..]), None);
    }
}
