//! Clock health: how far each member's wall clock is from this node's, and
//! whether this node's own clock (or a member's) is off from the voters'
//! common time.
//!
//! Every ping is followed by `MemberRequest::Clock`; the answer carries the
//! peer's wall clock, and with the local wall clock before and after the
//! call gives one sample: offset = remote − midpoint, known to within half
//! the round trip (`Sample::uncertainty_ms`). The estimate per peer is the
//! recent sample with the smallest round trip (the least uncertain, as NTP
//! does).
//!
//! Judgement (`assess`, pure, unit-tested): over the voters with a fresh
//! estimate (this node included, at offset 0), the median is the common
//! time; a voter farther than `LIMIT_MS` from it, beyond its uncertainty,
//! is **off**. Only when a majority of all voters agree with the median
//! (are within the limit of it) is anyone judged; otherwise the
//! assessment says the voters disagree and judges nobody, rather than
//! guessing which clock is right.
//!
//! Why half the grace: the leader evaluates round k `grace` after the
//! probes' timeout by its own clock (`checks::rounds::Schedule::eval_at`),
//! and members send by `send_by`, half a grace before. A leader whose clock
//! is ahead by more than half the grace evaluates before the reports are
//! due, and reaches no verdict. The grace is at most 1.5 s, so the limit is
//! 750 ms.
//!
//! Invariants: `Clocks` is written only by the ping loop; samples older
//! than `FRESH` are not used; a node with no fresh sample is not judged.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use qu_raft::NodeId;

/// Farther than this from the voters' common time, a clock is off.
pub const LIMIT_MS: u64 = 750;
/// Past this, a node logs a warning about a clock (before it is off).
pub const WARN_MS: u64 = 250;
/// Samples older than this are not used.
pub const FRESH: Duration = Duration::from_secs(30);
/// Samples kept per peer; the estimate is the least uncertain of the last
/// `RECENT` (few, so a clock that jumps is seen within a few pings).
const KEPT: usize = 8;
const RECENT: usize = 3;

/// One exchange with a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Peer's wall clock minus this node's, in ms.
    pub offset_ms: i64,
    /// Half the round trip: the estimate's error bound.
    pub uncertainty_ms: u64,
    pub at: Instant,
}

impl Sample {
    /// From this node's wall clock before (`sent_ms`) and after
    /// (`received_ms`) the call and the peer's answer (`remote_ms`).
    pub fn of(sent_ms: u64, remote_ms: u64, received_ms: u64, at: Instant) -> Sample {
        let rtt = received_ms.saturating_sub(sent_ms);
        let mid = sent_ms as i64 + (rtt / 2) as i64;
        Sample {
            offset_ms: remote_ms as i64 - mid,
            uncertainty_ms: rtt.div_ceil(2),
            at,
        }
    }
}

/// Recent samples per peer, and what each peer says of its own clock.
#[derive(Debug, Default)]
pub struct Clocks {
    samples: Mutex<HashMap<NodeId, VecDeque<Sample>>>,
    /// Peers' own judgement of their clocks (`MemberRequest::Clock::off`).
    reports: Mutex<HashMap<NodeId, (bool, Instant)>>,
}

impl Clocks {
    pub fn record(&self, node: NodeId, s: Sample) {
        if let Ok(mut m) = self.samples.lock() {
            let q = m.entry(node).or_default();
            if q.len() >= KEPT {
                q.pop_front();
            }
            q.push_back(s);
        }
    }

    /// Records what `node` says of its own clock.
    pub fn reported(&self, node: NodeId, off: bool, at: Instant) {
        if let Ok(mut m) = self.reports.lock() {
            m.insert(node, (off, at));
        }
    }

    pub fn forget(&self, node: NodeId) {
        if let Ok(mut m) = self.samples.lock() {
            m.remove(&node);
        }
        if let Ok(mut m) = self.reports.lock() {
            m.remove(&node);
        }
    }

    /// The best fresh estimate of each peer's offset at `now`: the least
    /// uncertain of its last few samples.
    pub fn estimates(&self, now: Instant) -> BTreeMap<NodeId, Sample> {
        let Ok(m) = self.samples.lock() else {
            return BTreeMap::new();
        };
        m.iter()
            .filter_map(|(n, q)| {
                q.iter()
                    .rev()
                    .take(RECENT)
                    .filter(|s| now.saturating_duration_since(s.at) <= FRESH)
                    .min_by_key(|s| s.uncertainty_ms)
                    .map(|s| (*n, *s))
            })
            .collect()
    }

    /// The peers that said, recently, that their own clock is off.
    pub fn reported_off(&self, now: Instant) -> BTreeSet<NodeId> {
        let Ok(m) = self.reports.lock() else {
            return BTreeSet::new();
        };
        m.iter()
            .filter(|(_, (off, at))| *off && now.saturating_duration_since(*at) <= FRESH)
            .map(|(n, _)| *n)
            .collect()
    }
}

/// One voter's clock as judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoterClock {
    /// Its clock minus the voters' common time, in ms.
    pub deviation_ms: i64,
    pub uncertainty_ms: u64,
    /// Farther than `LIMIT_MS` from the common time, beyond doubt; or the
    /// voter said so of itself.
    pub off: bool,
}

/// What this node makes of the voters' clocks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    /// Per voter with a fresh estimate (this node included).
    pub voters: BTreeMap<NodeId, VoterClock>,
    /// Set when no majority of voters agree on the time: then nobody is
    /// judged off.
    pub disagree: Option<String>,
}

impl Assessment {
    /// Whether `node`'s clock is judged off.
    pub fn is_off(&self, node: NodeId) -> bool {
        self.voters.get(&node).is_some_and(|c| c.off)
    }

    /// `clock 4.0s ahead of the other voters` for an off node.
    pub fn reason(&self, node: NodeId) -> Option<String> {
        let c = self.voters.get(&node).filter(|c| c.off)?;
        if c.deviation_ms.unsigned_abs() <= LIMIT_MS + c.uncertainty_ms {
            return Some("it reports its own clock off from the other voters'".into());
        }
        let dir = if c.deviation_ms > 0 {
            "ahead of"
        } else {
            "behind"
        };
        Some(format!(
            "its clock is {:.1}s {dir} the other voters' (more than {}ms off)",
            c.deviation_ms.unsigned_abs() as f64 / 1000.0,
            LIMIT_MS
        ))
    }
}

/// Judges the clocks of `voters` from this node's estimates (`me` at 0);
/// a voter in `reported_off` said its own clock is off, and is taken at
/// its word (it knows first: it hands over on its own judgement, and the
/// voter it hands over to must not hand leadership back before its own
/// estimates catch up).
pub fn assess(
    me: NodeId,
    voters: &BTreeSet<NodeId>,
    estimates: &BTreeMap<NodeId, Sample>,
    reported_off: &BTreeSet<NodeId>,
) -> Assessment {
    let mut known: BTreeMap<NodeId, (i64, u64)> = BTreeMap::new();
    for v in voters {
        if *v == me {
            known.insert(me, (0, 0));
        } else if let Some(s) = estimates.get(v) {
            known.insert(*v, (s.offset_ms, s.uncertainty_ms));
        }
    }
    if known.is_empty() {
        return Assessment::default();
    }
    let mut offsets: Vec<i64> = known.values().map(|(o, _)| *o).collect();
    offsets.sort_unstable();
    let median = offsets[(offsets.len() - 1) / 2];
    let quorum = voters.len() / 2 + 1;
    let agreeing = known
        .values()
        .filter(|(o, u)| (o - median).unsigned_abs() <= LIMIT_MS + u)
        .count();
    let judge = agreeing >= quorum;
    let voters_out = known
        .iter()
        .map(|(n, (o, u))| {
            let deviation_ms = o - median;
            (
                *n,
                VoterClock {
                    deviation_ms,
                    uncertainty_ms: *u,
                    off: (judge && deviation_ms.unsigned_abs() > LIMIT_MS + u)
                        || (*n != me && reported_off.contains(n)),
                },
            )
        })
        .collect();
    Assessment {
        voters: voters_out,
        disagree: (!judge && known.len() > 1).then(|| {
            format!(
                "no majority of the {} voters agree on the time (within {LIMIT_MS}ms of each other); not judging any clock",
                voters.len()
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voters(n: u64) -> BTreeSet<NodeId> {
        (1..=n).map(NodeId).collect()
    }

    fn none() -> BTreeSet<NodeId> {
        BTreeSet::new()
    }

    fn judged(me: NodeId, v: &BTreeSet<NodeId>, e: &BTreeMap<NodeId, Sample>) -> Assessment {
        assess(me, v, e, &none())
    }

    fn est(pairs: &[(u64, i64)]) -> BTreeMap<NodeId, Sample> {
        let at = Instant::now();
        pairs
            .iter()
            .map(|(n, o)| {
                (
                    NodeId(*n),
                    Sample {
                        offset_ms: *o,
                        uncertainty_ms: 2,
                        at,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_sample_is_the_offset_from_the_midpoint_within_half_the_round_trip() {
        let s = Sample::of(1_000, 5_010, 1_020, Instant::now());
        assert_eq!((s.offset_ms, s.uncertainty_ms), (4_000, 10));
        let s = Sample::of(1_000, 900, 1_001, Instant::now());
        assert_eq!((s.offset_ms, s.uncertainty_ms), (-100, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_best_fresh_sample_is_the_estimate() {
        let c = Clocks::default();
        let t0 = Instant::now();
        c.record(NodeId(2), Sample::of(0, 500, 100, t0)); // rtt 100: 450 ± 50
        c.record(NodeId(2), Sample::of(0, 405, 10, t0)); // rtt 10: 400 ± 5
        assert_eq!(c.estimates(t0)[&NodeId(2)].offset_ms, 400);
        tokio::time::advance(FRESH + Duration::from_secs(1)).await;
        assert!(
            c.estimates(Instant::now()).is_empty(),
            "stale samples are not used"
        );
    }

    #[test]
    fn a_leader_four_seconds_ahead_sees_itself_off() {
        // Node 1 (me) is 4 s ahead: the others look 4 s behind.
        let a = judged(NodeId(1), &voters(3), &est(&[(2, -4_000), (3, -4_010)]));
        assert!(a.is_off(NodeId(1)), "{a:?}");
        assert!(!a.is_off(NodeId(2)) && !a.is_off(NodeId(3)));
        assert_eq!(a.voters[&NodeId(1)].deviation_ms, 4_000);
        assert!(a.reason(NodeId(1)).unwrap().contains("4.0s ahead of"));
        assert_eq!(a.disagree, None);
    }

    #[test]
    fn a_skewed_follower_is_off_and_the_rest_are_fine() {
        let a = judged(
            NodeId(1),
            &voters(5),
            &est(&[(2, 3), (3, -5), (4, 4_000), (5, 1)]),
        );
        assert!(a.is_off(NodeId(4)));
        assert_eq!(a.voters.values().filter(|c| c.off).count(), 1, "{a:?}");
        assert!(a.reason(NodeId(4)).unwrap().contains("ahead of"));
        assert_eq!(a.reason(NodeId(1)), None);
    }

    #[test]
    fn small_offsets_and_uncertain_estimates_are_not_off() {
        let a = judged(NodeId(1), &voters(3), &est(&[(2, 700), (3, -20)]));
        assert!(a.voters.values().all(|c| !c.off), "{a:?}");
        // 800 ms away but only known to ±100: not beyond doubt.
        let mut e = est(&[(2, 800), (3, 0)]);
        e.get_mut(&NodeId(2)).unwrap().uncertainty_ms = 100;
        assert!(!assess(NodeId(1), &voters(3), &e, &none()).is_off(NodeId(2)));
    }

    #[test]
    fn a_voter_that_reports_its_own_clock_off_is_taken_at_its_word() {
        let reported: BTreeSet<NodeId> = [NodeId(2)].into();
        let a = assess(NodeId(1), &voters(3), &est(&[(2, 10), (3, 5)]), &reported);
        assert!(a.is_off(NodeId(2)) && !a.is_off(NodeId(3)));
        assert!(a
            .reason(NodeId(2))
            .unwrap()
            .contains("reports its own clock off"));
        // What others report of me is not a report: only my estimates judge me.
        let me: BTreeSet<NodeId> = [NodeId(1)].into();
        assert!(!assess(NodeId(1), &voters(3), &est(&[(2, 10)]), &me).is_off(NodeId(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_clock_that_jumps_is_seen_within_a_few_samples() {
        let c = Clocks::default();
        for _ in 0..8 {
            c.record(NodeId(2), Sample::of(0, 0, 1, Instant::now())); // ±1, offset 0
        }
        for _ in 0..3 {
            c.record(NodeId(2), Sample::of(0, 4_002, 4, Instant::now())); // ±2, +4 s
        }
        assert_eq!(c.estimates(Instant::now())[&NodeId(2)].offset_ms, 4_000);
    }

    #[test]
    fn voters_that_disagree_are_not_judged() {
        // Three clocks, each seconds from the others.
        let a = judged(NodeId(1), &voters(3), &est(&[(2, 3_000), (3, -3_000)]));
        assert!(a.voters.values().all(|c| !c.off), "{a:?}");
        assert!(a.disagree.unwrap().contains("no majority"));
        // Two live of three, four seconds apart: no majority agrees.
        let a = judged(NodeId(1), &voters(3), &est(&[(2, 4_000)]));
        assert!(!a.is_off(NodeId(1)) && !a.is_off(NodeId(2)));
        assert!(a.disagree.is_some());
        // Nothing known: nothing judged, nothing said.
        assert_eq!(
            assess(NodeId(1), &voters(3), &BTreeMap::new(), &none()).disagree,
            None
        );
    }
}
