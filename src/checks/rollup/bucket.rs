//! One rollup bucket: how many probes a check had in a minute (or hour),
//! how many succeeded, and the latency histogram of the successful ones.
//!
//! Invariant: encoded, a bucket is always `BYTES` (104) bytes: probes and
//! ok as little-endian `u32`, then the histogram's 24 `u32` counts. Adding
//! buckets saturates.

use std::time::Duration;

use super::histogram::{self, Histogram};

/// Encoded size of a bucket.
pub const BYTES: usize = 8 + histogram::BYTES;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bucket {
    pub probes: u32,
    pub ok: u32,
    /// Latencies of the successful probes only: a refused connection in
    /// 0 ms or a timeout would say nothing about how fast the target is.
    pub latency: Histogram,
}

impl Bucket {
    pub fn observe(&mut self, ok: bool, latency: Duration) {
        self.probes = self.probes.saturating_add(1);
        if ok {
            self.ok = self.ok.saturating_add(1);
            self.latency.observe(latency);
        }
    }

    pub fn add(&mut self, other: &Bucket) {
        self.probes = self.probes.saturating_add(other.probes);
        self.ok = self.ok.saturating_add(other.ok);
        self.latency.add(&other.latency);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(BYTES);
        out.extend_from_slice(&self.probes.to_le_bytes());
        out.extend_from_slice(&self.ok.to_le_bytes());
        self.latency.encode(&mut out);
        out
    }

    /// None when `b` is not an encoded bucket.
    pub fn decode(b: &[u8]) -> Option<Bucket> {
        if b.len() != BYTES {
            return None;
        }
        let (head, hist) = b.split_at(8);
        Some(Bucket {
            probes: u32::from_le_bytes(head[..4].try_into().ok()?),
            ok: u32::from_le_bytes(head[4..].try_into().ok()?),
            latency: Histogram::decode(hist)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_probes_successes_and_successful_latencies() {
        let mut b = Bucket::default();
        b.observe(true, Duration::from_millis(12));
        b.observe(false, Duration::from_secs(10));
        b.observe(true, Duration::from_millis(14));
        assert_eq!((b.probes, b.ok, b.latency.total()), (3, 2, 2));
        let mut sum = b;
        sum.add(&b);
        assert_eq!((sum.probes, sum.ok, sum.latency.total()), (6, 4, 4));
    }

    #[test]
    fn encodes_to_a_fixed_size_and_back() {
        let mut b = Bucket::default();
        assert_eq!(b.encode().len(), BYTES);
        for i in 0..1000 {
            b.observe(i % 3 != 0, Duration::from_millis(i));
        }
        let e = b.encode();
        assert_eq!(e.len(), BYTES);
        assert_eq!(BYTES, 104);
        assert_eq!(Bucket::decode(&e), Some(b));
        assert_eq!(Bucket::decode(&e[..BYTES - 1]), None);
    }
}
