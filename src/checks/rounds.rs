//! Wall-clock aligned rounds (SPEC §8): round `k` of a check starts at
//! `k·interval + offset` milliseconds since the Unix epoch, where the offset
//! is derived from the check's id. Every node computes the same rounds, so
//! each evaluation compares probes taken at the same moments. Offsets fall
//! on 100 ms slots, so checks spread over the interval still start in small
//! groups: one timer wake-up starts several probes.
//!
//! Invariant: pure arithmetic on explicit timestamps; nothing here reads a
//! clock.

use qu_raft::model::Check;

/// The round timetable of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub interval_ms: u64,
    pub offset_ms: u64,
    pub timeout_ms: u64,
}

/// FNV-1a: a stable hash (the same on every node and build).
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Granularity of round offsets.
pub const SLOT_MS: u64 = 100;

impl Schedule {
    pub fn for_check(c: &Check) -> Schedule {
        let interval_ms = c.interval_ms.max(1);
        let slots = (interval_ms / SLOT_MS).max(1);
        Schedule {
            interval_ms,
            offset_ms: (fnv1a(&c.id) % slots) * SLOT_MS % interval_ms,
            timeout_ms: c.timeout_ms,
        }
    }

    /// Start of round `k`.
    pub fn start_of(&self, k: u64) -> u64 {
        k.saturating_mul(self.interval_ms)
            .saturating_add(self.offset_ms)
    }

    /// The round in progress at `now_ms` (the last one that started).
    pub fn round_at(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.offset_ms) / self.interval_ms
    }

    /// The first round starting strictly after `now_ms`.
    pub fn next_round(&self, now_ms: u64) -> u64 {
        if now_ms < self.offset_ms {
            0
        } else {
            self.round_at(now_ms) + 1
        }
    }

    /// Time after a round's start that reports may still arrive: batching
    /// and the network, but never into the next round.
    pub fn grace_ms(&self) -> u64 {
        let slack = self.interval_ms.saturating_sub(self.timeout_ms);
        (slack * 3 / 4).min(1500)
    }

    /// When the leader evaluates round `k`: its probes have timed out and
    /// their reports had time to arrive.
    pub fn eval_at(&self, k: u64) -> u64 {
        self.start_of(k) + self.timeout_ms + self.grace_ms()
    }

    /// By when a node must send its result for round `k`: half the grace
    /// before the evaluation, the other half for the trip to the leader.
    pub fn send_by(&self, k: u64) -> u64 {
        self.eval_at(k) - self.grace_ms() / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(interval: u64, timeout: u64, offset: u64) -> Schedule {
        Schedule {
            interval_ms: interval,
            offset_ms: offset,
            timeout_ms: timeout,
        }
    }

    #[test]
    fn rounds_are_aligned_to_the_wall_clock_plus_offset() {
        let s = sched(30_000, 10_000, 1_234);
        assert_eq!(s.start_of(0), 1_234);
        assert_eq!(s.start_of(2), 61_234);
        assert_eq!(s.round_at(61_233), 1);
        assert_eq!(s.round_at(61_234), 2);
        assert_eq!(s.next_round(61_234), 3);
        assert_eq!(s.next_round(0), 0);
    }

    #[test]
    fn evaluation_waits_for_the_timeout_and_ends_before_the_next_round() {
        for (interval, timeout) in [(30_000, 10_000), (1_000, 500), (1_000, 900), (5_000, 4_999)] {
            let s = sched(interval, timeout, 7);
            for k in [0, 1, 1_000_000] {
                assert!(s.eval_at(k) >= s.start_of(k) + timeout);
                assert!(s.eval_at(k) <= s.start_of(k + 1), "{interval}/{timeout}");
            }
        }
    }

    #[test]
    fn results_are_due_between_the_timeout_and_the_evaluation() {
        for (interval, timeout) in [(30_000, 10_000), (1_000, 500), (1_000, 950)] {
            let s = sched(interval, timeout, 300);
            for k in [0, 5] {
                assert!(s.send_by(k) >= s.start_of(k) + timeout);
                assert!(s.send_by(k) <= s.eval_at(k));
            }
        }
    }

    #[test]
    fn the_offset_is_the_same_for_the_same_check_everywhere() {
        let mk = |id: &str| Check {
            id: id.into(),
            name: "n".into(),
            kind: qu_raft::model::CheckKind::tcp("h:1"),
            interval_ms: 30_000,
            timeout_ms: 10_000,
            alerts: vec![],
            paused: false,
        };
        assert_eq!(
            Schedule::for_check(&mk("abc")),
            Schedule::for_check(&mk("abc"))
        );
        assert!(Schedule::for_check(&mk("abc")).offset_ms < 30_000);
        // Offsets spread over the interval, on slot boundaries.
        let offsets: std::collections::BTreeSet<u64> = (0..1000)
            .map(|i| Schedule::for_check(&mk(&format!("{i:08x}"))).offset_ms)
            .collect();
        assert!(offsets.len() > 200, "{} distinct offsets", offsets.len());
        assert!(offsets.iter().all(|o| o % SLOT_MS == 0 && *o < 30_000));
    }

    #[test]
    fn short_intervals_still_get_an_offset_inside_the_interval() {
        for interval in [1, 50, 100, 150, 1_000] {
            let c = Check {
                id: "abc".into(),
                name: "n".into(),
                kind: qu_raft::model::CheckKind::tcp("h:1"),
                interval_ms: interval,
                timeout_ms: 0,
                alerts: vec![],
                paused: false,
            };
            assert!(Schedule::for_check(&c).offset_ms < interval.max(1));
        }
    }
}
