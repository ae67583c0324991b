//! The leader's aggregator (SPEC §9): collects each round's probe reports,
//! reaches a quorum verdict once the round is over, and applies hysteresis.
//!
//! Invariants (pure; explicit timestamps, no clock):
//! - A report counts only for a round not yet evaluated and not in the
//!   future: a paused or partitioned node cannot deliver an old result into
//!   a new round.
//! - Verdict with N voters and Q = ⌊N/2⌋+1: DOWN when ≥ Q voters reported
//!   failure, UP when ≥ Q reported success, otherwise none. Only voters'
//!   reports count.
//! - The committed state flips only after 2 consecutive rounds give the same
//!   new verdict; a round with no verdict breaks the streak; at most one
//!   proposal per check is in flight.
//! - A new leader starts from the committed states (no reset to unknown).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::rounds::Schedule;
use qu_raft::model::{Check, CheckState, Evidence, Health, TransitionRecord};
use qu_raft::NodeId;

/// Rounds that must agree before the committed state flips.
pub const CONFIRMING_ROUNDS: u8 = 2;
/// How far ahead of the leader's clock a round may start and still count.
const MAX_SKEW_MS: u64 = 2_000;

/// One probe's outcome as a node reports it (the sender is the TLS peer,
/// never a field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub check_id: String,
    pub round: u64,
    pub ok: bool,
    pub latency_ms: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// TLS and HTTPS checks: the leaf certificate's notAfter (ms since the
    /// epoch). Older nodes ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_not_after_ms: Option<u64>,
    /// Local only (never sent): the wall-clock ms by which the reporter
    /// must have sent this result for it to reach the round's evaluation.
    #[serde(skip)]
    pub send_by_ms: u64,
}

/// A round's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Up,
    Down,
    None,
}

/// The quorum rule.
pub fn verdict(voters: &BTreeSet<NodeId>, votes: &BTreeMap<NodeId, ProbeReport>) -> Verdict {
    let q = voters.len() / 2 + 1;
    let counted = votes.iter().filter(|(n, _)| voters.contains(n));
    let (oks, fails) = counted.fold(
        (0, 0),
        |(o, f), (_, r)| if r.ok { (o + 1, f) } else { (o, f + 1) },
    );
    if voters.is_empty() {
        Verdict::None
    } else if fails >= q {
        Verdict::Down
    } else if oks >= q {
        Verdict::Up
    } else {
        Verdict::None
    }
}

/// The last evaluated round of a check, for `qu check show`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoundOutcome {
    pub round: u64,
    pub started_ms: u64,
    pub verdict: Verdict,
    pub voters: usize,
    pub votes: Vec<Evidence>,
    /// Consecutive rounds agreeing on a new state, not yet committed.
    pub streak: u8,
}

/// A flip the leader should commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub check_id: String,
    pub record: TransitionRecord,
}

#[derive(Debug)]
struct CheckAgg {
    schedule: Schedule,
    /// What is probed: a new target starts over (its state restarts too).
    target: [String; 2],
    next_eval: u64,
    rounds: BTreeMap<u64, BTreeMap<NodeId, ProbeReport>>,
    streak: Option<(Health, u8)>,
    in_flight: bool,
    last: Option<RoundOutcome>,
}

impl CheckAgg {
    /// A leader that stalled does not replay a backlog of rounds; one whose
    /// clock stepped back (NTP, a corrected skew) does not wait for its old
    /// future: both restart at the round in progress.
    fn realign(&mut self, now_ms: u64) {
        let current = self.schedule.round_at(now_ms);
        if current > self.next_eval + 3 {
            self.next_eval = current.saturating_sub(1);
            self.streak = None;
        } else if current + 1 < self.next_eval {
            self.next_eval = current;
            self.streak = None;
            self.rounds.clear();
        }
    }
}

/// What the leader's evaluations saw (since it became leader): how many
/// of the votes it could have counted arrived in their round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundCounters {
    pub rounds_evaluated: u64,
    /// Rounds in which every voter's result arrived in time.
    pub complete_rounds: u64,
    /// Voters' results counted, and rounds × voters.
    pub votes_counted: u64,
    pub votes_expected: u64,
    /// Reports dropped because their round was over or not begun.
    pub stale_reports: u64,
}

/// Per-check round state on the leader.
#[derive(Debug, Default)]
pub struct Aggregator {
    checks: BTreeMap<String, CheckAgg>,
    pub counters: RoundCounters,
}

impl Aggregator {
    /// Follows the replicated check list: new checks start with the round in
    /// progress, changed timetables restart, removed checks leave nothing.
    pub fn sync(&mut self, checks: &BTreeMap<String, Check>, now_ms: u64) {
        self.checks.retain(|id, _| checks.contains_key(id));
        for (id, c) in checks {
            let schedule = Schedule::for_check(c);
            let target = c.kind.probed();
            let fresh = || CheckAgg {
                schedule,
                target: target.map(str::to_string),
                next_eval: schedule.round_at(now_ms),
                rounds: BTreeMap::new(),
                streak: None,
                in_flight: false,
                last: None,
            };
            match self.checks.get_mut(id) {
                Some(a) if a.schedule == schedule && a.target == target => {}
                Some(a) => *a = fresh(),
                None => {
                    self.checks.insert(id.clone(), fresh());
                }
            }
        }
    }

    /// Takes one report from `from`; false when it was stale or unknown.
    pub fn ingest(&mut self, from: NodeId, r: ProbeReport, now_ms: u64) -> bool {
        let Some(a) = self.checks.get_mut(&r.check_id) else {
            self.counters.stale_reports += 1;
            return false;
        };
        a.realign(now_ms);
        if r.round < a.next_eval || a.schedule.start_of(r.round) > now_ms + MAX_SKEW_MS {
            self.counters.stale_reports += 1;
            return false;
        }
        a.rounds.entry(r.round).or_default().insert(from, r);
        true
    }

    /// Evaluates every round whose time has come; returns the flips to commit.
    pub fn evaluate(
        &mut self,
        now_ms: u64,
        voters: &BTreeSet<NodeId>,
        committed: &qu_raft::state::Records<String, CheckState>,
    ) -> Vec<Proposal> {
        let mut out = Vec::new();
        let counters = &mut self.counters;
        for (id, a) in self.checks.iter_mut() {
            a.realign(now_ms);
            while a.schedule.eval_at(a.next_eval) <= now_ms {
                let k = a.next_eval;
                a.next_eval += 1;
                let votes = a.rounds.remove(&k).unwrap_or_default();
                let v = verdict(voters, &votes);
                let counted = votes.keys().filter(|n| voters.contains(n)).count() as u64;
                counters.rounds_evaluated += 1;
                counters.votes_counted += counted;
                counters.votes_expected += voters.len() as u64;
                if counted == voters.len() as u64 {
                    counters.complete_rounds += 1;
                }
                let state = committed.get(id).map(|s| s.health).unwrap_or_default();
                let evidence: Vec<Evidence> = votes
                    .iter()
                    .filter(|(n, _)| voters.contains(n))
                    .map(|(n, r)| Evidence {
                        node: *n,
                        ok: r.ok,
                        reason: r.reason.clone(),
                        latency_ms: Some(r.latency_ms),
                        cert_not_after_ms: r.cert_not_after_ms,
                    })
                    .collect();
                let new = match v {
                    Verdict::Up => Some(Health::Up),
                    Verdict::Down => Some(Health::Down),
                    Verdict::None => None,
                };
                a.streak = match (new, a.streak) {
                    (Some(h), _) if h == state => None,
                    (Some(h), Some((s, n))) if s == h => Some((h, n.saturating_add(1))),
                    (Some(h), _) => Some((h, 1)),
                    (None, _) => None,
                };
                if let Some((to, n)) = a.streak {
                    if n >= CONFIRMING_ROUNDS && !a.in_flight {
                        a.in_flight = true;
                        a.streak = None;
                        out.push(Proposal {
                            check_id: id.clone(),
                            record: TransitionRecord {
                                round: k,
                                from: state,
                                to,
                                at_ms: now_ms,
                                voters: voters.len(),
                                evidence: evidence.clone(),
                            },
                        });
                    }
                }
                a.last = Some(RoundOutcome {
                    round: k,
                    started_ms: a.schedule.start_of(k),
                    verdict: v,
                    voters: voters.len(),
                    votes: evidence,
                    streak: a.streak.map(|(_, n)| n).unwrap_or(0),
                });
            }
            a.rounds.retain(|k, _| *k >= a.next_eval);
        }
        out
    }

    /// A proposal for `check_id` finished (committed or not).
    pub fn settle(&mut self, check_id: &str) {
        if let Some(a) = self.checks.get_mut(check_id) {
            a.in_flight = false;
        }
    }

    pub fn last_round(&self, check_id: &str) -> Option<&RoundOutcome> {
        self.checks.get(check_id).and_then(|a| a.last.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u64) -> BTreeSet<NodeId> {
        (1..=n).map(NodeId).collect()
    }

    fn report(check: &str, round: u64, ok: bool) -> ProbeReport {
        ProbeReport {
            send_by_ms: 0,
            cert_not_after_ms: None,
            check_id: check.into(),
            round,
            ok,
            latency_ms: 1,
            reason: if ok {
                String::new()
            } else {
                "connection refused".into()
            },
        }
    }

    /// Every mix of ok / fail / missing for N = 1, 2, 3, 5 against the
    /// majority rule written independently: more than half agree.
    #[test]
    fn verdict_table_for_every_mix() {
        for n in [1u64, 2, 3, 5] {
            let voters = ids(n);
            let combos = 3u64.pow(n as u32);
            for mut c in 0..combos {
                let mut votes = BTreeMap::new();
                let (mut oks, mut fails) = (0u64, 0u64);
                for node in 1..=n {
                    match c % 3 {
                        0 => {
                            votes.insert(NodeId(node), report("c", 0, true));
                            oks += 1;
                        }
                        1 => {
                            votes.insert(NodeId(node), report("c", 0, false));
                            fails += 1;
                        }
                        _ => {}
                    }
                    c /= 3;
                }
                let expected = if fails * 2 > n {
                    Verdict::Down
                } else if oks * 2 > n {
                    Verdict::Up
                } else {
                    Verdict::None
                };
                assert_eq!(
                    verdict(&voters, &votes),
                    expected,
                    "n={n} oks={oks} fails={fails}"
                );
            }
        }
    }

    #[test]
    fn non_voters_do_not_count() {
        let mut votes = BTreeMap::new();
        votes.insert(NodeId(9), report("c", 0, false));
        votes.insert(NodeId(8), report("c", 0, false));
        votes.insert(NodeId(1), report("c", 0, true));
        assert_eq!(verdict(&ids(3), &votes), Verdict::None);
    }

    struct Sim {
        agg: Aggregator,
        checks: BTreeMap<String, Check>,
        committed: qu_raft::state::Records<String, CheckState>,
        voters: BTreeSet<NodeId>,
        sched: Schedule,
    }

    fn sim(n: u64) -> Sim {
        let check = Check {
            id: "c".into(),
            name: "c".into(),
            kind: qu_raft::model::CheckKind::tcp("h:1"),
            interval_ms: 1_000,
            timeout_ms: 500,
            alerts: vec![],
            paused: false,
        };
        let sched = Schedule::for_check(&check);
        let mut checks = BTreeMap::new();
        checks.insert("c".to_string(), check);
        let mut agg = Aggregator::default();
        agg.sync(&checks, sched.start_of(10));
        Sim {
            agg,
            checks,
            committed: Default::default(),
            voters: ids(n),
            sched,
        }
    }

    impl Sim {
        /// Plays round `k` with the given per-node outcomes (None = no report),
        /// evaluates at its evaluation time, commits any proposal.
        fn round(&mut self, k: u64, outcomes: &[Option<bool>]) -> Vec<Proposal> {
            let t = self.sched.start_of(k) + 100;
            for (i, o) in outcomes.iter().enumerate() {
                if let Some(ok) = o {
                    assert!(self
                        .agg
                        .ingest(NodeId(i as u64 + 1), report("c", k, *ok), t));
                }
            }
            let props = self
                .agg
                .evaluate(self.sched.eval_at(k), &self.voters, &self.committed);
            for p in &props {
                let st = self.committed.entry(p.check_id.clone()).or_default();
                assert_eq!(st.health, p.record.from);
                st.health = p.record.to;
                self.agg.settle(&p.check_id);
            }
            let _ = &self.checks;
            props
        }
    }

    const F: Option<bool> = Some(false);
    const T: Option<bool> = Some(true);
    const M: Option<bool> = None;

    #[test]
    fn a_flip_needs_two_consecutive_rounds() {
        let mut s = sim(3);
        assert!(
            s.round(10, &[F, F, F]).is_empty(),
            "one round is not enough"
        );
        let p = s.round(11, &[F, F, T]);
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].record.from, p[0].record.to),
            (Health::Unknown, Health::Down)
        );
        assert_eq!(p[0].record.votes(), "2/3 down: connection refused");
        assert!(
            s.round(12, &[F, F, F]).is_empty(),
            "already down: no repeat"
        );
        assert!(s.round(13, &[T, T, F]).is_empty());
        let p = s.round(14, &[T, T, T]);
        assert_eq!(
            (p[0].record.from, p[0].record.to),
            (Health::Down, Health::Up)
        );
    }

    #[test]
    fn a_blip_in_one_round_never_flips_the_state() {
        let mut s = sim(3);
        s.round(10, &[T, T, T]);
        s.round(11, &[T, T, T]);
        assert_eq!(s.committed["c"].health, Health::Up);
        for k in 12..40 {
            let outcome = if k % 2 == 0 { [F, F, F] } else { [T, T, T] };
            assert!(
                s.round(k, &outcome).is_empty(),
                "round {k} flipped on a blip"
            );
        }
    }

    #[test]
    fn one_node_failing_alone_never_flips() {
        let mut s = sim(3);
        s.round(10, &[T, T, T]);
        s.round(11, &[T, T, T]);
        for k in 12..30 {
            assert!(s.round(k, &[F, T, T]).is_empty());
        }
        assert_eq!(s.committed["c"].health, Health::Up);
    }

    #[test]
    fn no_verdict_breaks_the_streak() {
        let mut s = sim(3);
        s.round(10, &[F, F, F]);
        s.round(11, &[F, M, M]);
        assert!(
            s.round(12, &[F, F, F]).is_empty(),
            "the streak restarted after a no-verdict round"
        );
        assert_eq!(s.round(13, &[F, F, F]).len(), 1);
    }

    #[test]
    fn reports_for_a_finished_or_future_round_are_ignored() {
        let mut s = sim(3);
        s.round(10, &[F, F, F]);
        // A node that was paused delivers round 10 late, into round 11's time.
        assert!(!s
            .agg
            .ingest(NodeId(1), report("c", 10, false), s.sched.start_of(11)));
        // A result claiming a round far in the future is refused.
        assert!(!s
            .agg
            .ingest(NodeId(1), report("c", 50, false), s.sched.start_of(11)));
        assert_eq!(s.agg.counters.stale_reports, 2);
        // Round 11 with only one fresh failure is no verdict: no flip.
        assert!(s.round(11, &[F, M, M]).is_empty());
    }

    #[test]
    fn a_new_leader_continues_from_the_committed_state() {
        let mut s = sim(3);
        s.committed.insert(
            "c".into(),
            CheckState {
                health: Health::Down,
                ..Default::default()
            },
        );
        // Fresh aggregator (new leader): still down rounds produce nothing.
        assert!(s.round(10, &[F, F, F]).is_empty());
        assert!(s.round(11, &[F, F, F]).is_empty());
        assert!(s.round(12, &[T, T, T]).is_empty());
        assert_eq!(s.round(13, &[T, T, T])[0].record.to, Health::Up);
    }

    #[test]
    fn quorum_sizes_for_two_and_five_nodes() {
        let mut two = sim(2);
        assert!(two.round(10, &[F, T]).is_empty());
        assert!(
            two.round(11, &[F, T]).is_empty(),
            "1 of 2 is not a majority"
        );
        let mut five = sim(5);
        five.round(10, &[F, F, F, T, T]);
        assert_eq!(
            five.round(11, &[F, F, F, M, M]).len(),
            1,
            "3 of 5 fail: down"
        );
    }

    #[test]
    fn removed_checks_leave_no_state_and_changed_ones_restart() {
        let mut s = sim(3);
        s.round(10, &[F, F, F]);
        let mut changed = s.checks.clone();
        changed.get_mut("c").unwrap().interval_ms = 2_000;
        s.agg.sync(&changed, s.sched.start_of(11));
        assert!(
            s.agg.last_round("c").is_none(),
            "a changed timetable restarts the check"
        );
        s.agg.sync(&BTreeMap::new(), s.sched.start_of(12));
        assert!(s.agg.last_round("c").is_none());
        assert!(!s
            .agg
            .ingest(NodeId(1), report("c", 12, false), s.sched.start_of(12)));
    }

    #[test]
    fn a_leader_clock_stepping_back_resumes_evaluating_at_once() {
        let mut s = sim(3);
        s.round(10, &[T, T, T]);
        s.round(11, &[T, T, T]);
        assert_eq!(s.committed["c"].health, Health::Up);
        // The leader's clock runs 30 s ahead for a while (it evaluates
        // rounds nobody else has reached), then is corrected.
        assert!(s
            .agg
            .evaluate(s.sched.eval_at(41), &s.voters, &s.committed)
            .is_empty());
        // Back on time: the very next rounds count again.
        assert!(s.round(12, &[F, F, F]).is_empty());
        let p = s.round(13, &[F, F, F]);
        assert_eq!(p.len(), 1, "the outage was not seen after the clock step");
        assert_eq!(p[0].record.to, Health::Down);
    }

    #[test]
    fn round_counters_tell_complete_rounds_from_missing_votes() {
        let mut s = sim(3);
        s.round(10, &[T, T, T]);
        s.round(11, &[T, M, T]);
        s.round(12, &[M, M, M]);
        let c = s.agg.counters;
        assert_eq!(
            (
                c.rounds_evaluated,
                c.complete_rounds,
                c.votes_counted,
                c.votes_expected
            ),
            (3, 1, 5, 9)
        );
    }

    #[test]
    fn only_one_proposal_in_flight_per_check() {
        let mut s = sim(3);
        s.agg.ingest(NodeId(1), report("c", 10, false), 0);
        let mut props = Vec::new();
        for k in 10..14 {
            for n in 1..=3 {
                s.agg
                    .ingest(NodeId(n), report("c", k, false), s.sched.start_of(k));
            }
            props.extend(s.agg.evaluate(s.sched.eval_at(k), &s.voters, &s.committed));
        }
        assert_eq!(
            props.len(),
            1,
            "proposals while one was in flight: {props:?}"
        );
    }
}
