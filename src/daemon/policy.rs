//! The leadership policy (SPEC §7): the master is the live voter with the
//! smallest NodeID. This module is the pure decision; `policy_loop` in
//! `cluster.rs` feeds it observations and carries out its transfers.
//!
//! Rules, evaluated on the leader only:
//! - A voter smaller than the leader becomes the target once it has been
//!   live without a gap for the cooldown and its log has caught up with the
//!   committed index. Among eligible voters the smallest wins.
//! - A transfer that did not make the target leader is retried only after a
//!   backoff (cooldown × 2^(failures−1), capped), so a flaky or paused target
//!   never causes a tight loop; a target that lost liveness must serve a new
//!   full cooldown.
//! - Clocks (`daemon::clock`): a voter whose clock is judged off is never
//!   the target; a leader whose own clock is off hands leadership to the
//!   smallest live voter with a sound clock whose log has caught up, at
//!   once (no cooldown: while it leads, rounds are evaluated at the wrong
//!   time and no verdict is reached).
//!
//! Invariant: the policy only ever asks openraft to hand leadership to a
//! voter heard from within the liveness window; if that node cannot take
//! over, the current leader simply stays (openraft re-elects within one
//! election timeout if the hand-over stalls).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use qu_raft::NodeId;

/// Tunables of the policy.
#[derive(Debug, Clone, Copy)]
pub struct PolicyConfig {
    /// How long a smaller voter must be live before it takes over.
    pub cooldown: Duration,
    /// Longest wait between retries of a failed transfer.
    pub max_backoff: Duration,
}

/// What the policy sees at one moment.
#[derive(Debug, Clone)]
pub struct Observation {
    pub now: Instant,
    pub me: NodeId,
    pub leader: Option<NodeId>,
    pub voters: BTreeSet<NodeId>,
    /// Since when each currently live peer has been live without a gap.
    pub live_since: BTreeMap<NodeId, Instant>,
    /// Highest log index known replicated to each voter (leader's view).
    pub matched: BTreeMap<NodeId, u64>,
    /// The leader's committed index.
    pub committed: u64,
    /// What this node makes of the voters' clocks.
    pub clock: crate::daemon::clock::Assessment,
}

/// The policy's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// This node does not lead; the leader decides.
    NotLeader,
    /// This node is the smallest live voter: nothing to do.
    Settled,
    /// A smaller voter exists but may not take over yet.
    Wait {
        preferred: NodeId,
        reason: String,
        remaining: Option<Duration>,
    },
    /// Hand leadership to `to` now.
    Transfer { to: NodeId },
}

#[derive(Debug, Clone, Copy)]
struct Attempt {
    at: Instant,
    failures: u32,
}

/// The policy's memory between evaluations.
#[derive(Debug)]
pub struct Policy {
    cfg: PolicyConfig,
    attempts: BTreeMap<NodeId, Attempt>,
    total_attempts: u64,
}

/// What `qu status` shows about the policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PolicyView {
    /// The live voter with the smallest id (the master the policy wants).
    pub preferred: Option<NodeId>,
    /// Why the preferred node is not master yet (empty when it is).
    pub reason: String,
    pub cooldown_secs: u64,
    pub cooldown_remaining_secs: Option<u64>,
    /// Transfers this node has started while leading.
    pub transfer_attempts: u64,
}

impl Policy {
    pub fn new(cfg: PolicyConfig) -> Policy {
        Policy {
            cfg,
            attempts: BTreeMap::new(),
            total_attempts: 0,
        }
    }

    pub fn total_attempts(&self) -> u64 {
        self.total_attempts
    }

    pub fn cooldown(&self) -> Duration {
        self.cfg.cooldown
    }

    fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        (self.cfg.cooldown * factor).min(self.cfg.max_backoff)
    }

    /// Decides what the leader should do now; records a transfer attempt
    /// when it returns `Transfer`.
    pub fn decide(&mut self, o: &Observation) -> Decision {
        if let Some(l) = o.leader {
            // A node that took over after our attempt: that attempt worked.
            if l != o.me {
                self.attempts.remove(&l);
            }
        }
        if o.leader != Some(o.me) {
            return Decision::NotLeader;
        }
        if o.clock.is_off(o.me) {
            return self.leave_for_a_sound_clock(o);
        }
        let smaller: Vec<NodeId> = o.voters.iter().copied().filter(|v| *v < o.me).collect();
        let live_smaller: Vec<NodeId> = smaller
            .iter()
            .copied()
            .filter(|v| o.live_since.contains_key(v))
            .collect();
        let Some(&preferred) = live_smaller.iter().find(|v| !o.clock.is_off(**v)) else {
            self.attempts.clear();
            // The smallest live voter's clock is off: say so; stay.
            return match live_smaller.first() {
                Some(&skewed) => Decision::Wait {
                    preferred: o.me,
                    reason: format!(
                        "node {skewed} is not made master: {}",
                        o.clock.reason(skewed).unwrap_or_default()
                    ),
                    remaining: None,
                },
                None => Decision::Settled,
            };
        };
        let live_smaller: Vec<NodeId> = live_smaller
            .into_iter()
            .filter(|v| !o.clock.is_off(*v))
            .collect();
        let mut first_wait: Option<Decision> = None;
        for target in live_smaller {
            let since = o.live_since[&target];
            let live_for = o.now.saturating_duration_since(since);
            let wait = |reason: String, remaining: Option<Duration>| Decision::Wait {
                preferred,
                reason,
                remaining,
            };
            let verdict = if live_for < self.cfg.cooldown {
                let left = self.cfg.cooldown - live_for;
                Some(wait(
                    format!(
                        "node {target} has been live for {}s of the {}s cooldown",
                        live_for.as_secs(),
                        self.cfg.cooldown.as_secs()
                    ),
                    Some(left),
                ))
            } else if o.matched.get(&target).copied().unwrap_or(0) < o.committed {
                let behind = o.committed - o.matched.get(&target).copied().unwrap_or(0);
                Some(wait(
                    format!("node {target}'s log is {behind} entries behind"),
                    None,
                ))
            } else if let Some(a) = self.attempts.get(&target) {
                let next = a.at + self.backoff(a.failures);
                (o.now < next).then(|| {
                    wait(
                        format!(
                            "a transfer to node {target} did not take; retrying in {}s",
                            next.saturating_duration_since(o.now).as_secs()
                        ),
                        Some(next.saturating_duration_since(o.now)),
                    )
                })
            } else {
                None
            };
            match verdict {
                None => {
                    let failures = self
                        .attempts
                        .get(&target)
                        .map(|a| a.failures + 1)
                        .unwrap_or(1);
                    self.attempts.insert(
                        target,
                        Attempt {
                            at: o.now,
                            failures,
                        },
                    );
                    self.total_attempts += 1;
                    return Decision::Transfer { to: target };
                }
                Some(w) => {
                    if first_wait.is_none() {
                        first_wait = Some(w);
                    }
                }
            }
        }
        first_wait.unwrap_or(Decision::Settled)
    }

    /// This leader's clock is off: the smallest live voter with a sound
    /// clock and a caught-up log takes over now (failed attempts back off
    /// as usual).
    fn leave_for_a_sound_clock(&mut self, o: &Observation) -> Decision {
        let why = o.clock.reason(o.me).unwrap_or_default();
        let mut blocked = Vec::new();
        for target in o.voters.iter().copied().filter(|v| *v != o.me) {
            if !o.live_since.contains_key(&target) {
                continue;
            }
            if o.clock.is_off(target) {
                blocked.push(format!("node {target}'s clock is off too"));
                continue;
            }
            let matched = o.matched.get(&target).copied().unwrap_or(0);
            if matched < o.committed {
                blocked.push(format!(
                    "node {target}'s log is {} entries behind",
                    o.committed - matched
                ));
                continue;
            }
            if let Some(a) = self.attempts.get(&target) {
                let next = a.at + self.backoff(a.failures);
                if o.now < next {
                    blocked.push(format!(
                        "a transfer to node {target} did not take; retrying in {}s",
                        next.saturating_duration_since(o.now).as_secs()
                    ));
                    continue;
                }
            }
            let failures = self.attempts.get(&target).map_or(1, |a| a.failures + 1);
            self.attempts.insert(
                target,
                Attempt {
                    at: o.now,
                    failures,
                },
            );
            self.total_attempts += 1;
            return Decision::Transfer { to: target };
        }
        Decision::Wait {
            preferred: o.me,
            reason: format!(
                "this node should hand over ({why}) but no live voter can take over: {}",
                if blocked.is_empty() {
                    "none is live".to_string()
                } else {
                    blocked.join("; ")
                }
            ),
            remaining: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(30);

    fn policy() -> Policy {
        Policy::new(PolicyConfig {
            cooldown: COOLDOWN,
            max_backoff: Duration::from_secs(600),
        })
    }

    fn obs(me: u64, leader: u64, live: &[(u64, Instant)], matched: u64) -> Observation {
        let voters: BTreeSet<NodeId> = [1, 2, 3].into_iter().map(NodeId).collect();
        Observation {
            now: Instant::now(),
            me: NodeId(me),
            leader: Some(NodeId(leader)),
            voters: voters.clone(),
            live_since: live.iter().map(|(n, t)| (NodeId(*n), *t)).collect(),
            matched: voters.iter().map(|v| (*v, matched)).collect(),
            committed: 10,
            clock: Default::default(),
        }
    }

    /// `obs` with the clocks as node `me` judges them from these offsets.
    fn with_clocks(mut o: Observation, offsets: &[(u64, i64)]) -> Observation {
        let at = Instant::now();
        let est = offsets
            .iter()
            .map(|(n, off)| {
                (
                    NodeId(*n),
                    crate::daemon::clock::Sample {
                        offset_ms: *off,
                        uncertainty_ms: 1,
                        at,
                    },
                )
            })
            .collect();
        o.clock = crate::daemon::clock::assess(o.me, &o.voters, &est, &BTreeSet::new());
        o
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_whose_clock_is_off_hands_over_at_once_to_a_sound_voter() {
        let mut p = policy();
        let since = Instant::now();
        // Node 1 leads, 4 s ahead of nodes 2 and 3 (live just now).
        let o = with_clocks(
            obs(1, 1, &[(2, since), (3, since)], 10),
            &[(2, -4_000), (3, -4_000)],
        );
        assert_eq!(p.decide(&o), Decision::Transfer { to: NodeId(2) });
        // Node 2 lagging: node 3 instead.
        let mut o = with_clocks(
            obs(1, 1, &[(2, since), (3, since)], 10),
            &[(2, -4_000), (3, -4_000)],
        );
        o.matched.insert(NodeId(2), 3);
        let mut p = policy();
        assert_eq!(p.decide(&o), Decision::Transfer { to: NodeId(3) });
        // Nobody can take over: stay, and say why.
        let o = with_clocks(obs(1, 1, &[], 10), &[]);
        assert_eq!(p.decide(&o), Decision::Settled, "alone, nothing is judged");
    }

    #[tokio::test(start_paused = true)]
    async fn a_voter_whose_clock_is_off_is_never_made_master() {
        let mut p = policy();
        let since = Instant::now();
        tokio::time::advance(COOLDOWN * 2).await;
        // Node 3 leads; node 1 (the smallest) is 4 s ahead: node 2 instead.
        let o = with_clocks(
            obs(3, 3, &[(1, since), (2, since)], 10),
            &[(1, 4_000), (2, 5)],
        );
        assert_eq!(p.decide(&o), Decision::Transfer { to: NodeId(2) });
        // Node 2 leads: node 1 stays out, and the reason says why.
        let mut p = policy();
        let o = with_clocks(
            obs(2, 2, &[(1, since), (3, since)], 10),
            &[(1, 4_000), (3, 5)],
        );
        match p.decide(&o) {
            Decision::Wait { reason, .. } => {
                assert!(
                    reason.contains("node 0000000000000001 is not made master"),
                    "{reason}"
                );
                assert!(reason.contains("4.0s ahead of"), "{reason}");
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(p.total_attempts(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn smallest_live_voter_takes_over_only_after_the_cooldown() {
        let mut p = policy();
        let since = Instant::now();
        assert!(matches!(
            p.decide(&obs(3, 3, &[(1, since), (2, since)], 10)),
            Decision::Wait {
                preferred: NodeId(1),
                ..
            }
        ));
        tokio::time::advance(COOLDOWN - Duration::from_secs(1)).await;
        match p.decide(&obs(3, 3, &[(1, since), (2, since)], 10)) {
            Decision::Wait { remaining, .. } => assert_eq!(remaining, Some(Duration::from_secs(1))),
            d => panic!("{d:?}"),
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            p.decide(&obs(3, 3, &[(1, since), (2, since)], 10)),
            Decision::Transfer { to: NodeId(1) }
        );
        assert_eq!(p.total_attempts(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_smallest_node_leading_is_settled_and_followers_do_nothing() {
        let mut p = policy();
        let since = Instant::now();
        assert_eq!(
            p.decide(&obs(1, 1, &[(2, since), (3, since)], 10)),
            Decision::Settled
        );
        assert_eq!(
            p.decide(&obs(2, 1, &[(1, since), (3, since)], 10)),
            Decision::NotLeader
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lagging_node_is_never_the_target() {
        let mut p = policy();
        let since = Instant::now();
        tokio::time::advance(COOLDOWN * 2).await;
        match p.decide(&obs(3, 3, &[(1, since)], 7)) {
            Decision::Wait { reason, .. } => {
                assert!(reason.contains("3 entries behind"), "{reason}")
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(p.total_attempts(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_smaller_node_does_not_block_the_next_smallest() {
        let mut p = policy();
        let since = Instant::now();
        tokio::time::advance(COOLDOWN).await;
        // Node 1 is not live at all: node 2 is the one to lead.
        assert_eq!(
            p.decide(&obs(3, 3, &[(2, since)], 10)),
            Decision::Transfer { to: NodeId(2) }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failed_transfers_back_off_and_stay_bounded_over_a_minute() {
        let mut p = Policy::new(PolicyConfig {
            cooldown: Duration::from_secs(2),
            max_backoff: Duration::from_secs(600),
        });
        let since = Instant::now();
        tokio::time::advance(Duration::from_secs(2)).await;
        // The target stays live but never becomes leader: evaluate every 100ms for a minute.
        let start = Instant::now();
        while Instant::now() - start < Duration::from_secs(60) {
            p.decide(&obs(3, 3, &[(1, since)], 10));
            tokio::time::advance(Duration::from_millis(100)).await;
        }
        // 2s, 4s, 8s, 16s, 32s backoffs: at most 6 attempts in 60s.
        assert!(
            p.total_attempts() <= 6,
            "{} attempts in a minute",
            p.total_attempts()
        );
        assert!(
            p.total_attempts() >= 3,
            "{} attempts: the policy gave up",
            p.total_attempts()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_successful_transfer_resets_the_backoff() {
        let mut p = policy();
        let since = Instant::now();
        tokio::time::advance(COOLDOWN).await;
        assert_eq!(
            p.decide(&obs(3, 3, &[(1, since)], 10)),
            Decision::Transfer { to: NodeId(1) }
        );
        // Node 1 led for a while, then we lead again and 1 is live again.
        assert_eq!(p.decide(&obs(3, 1, &[(1, since)], 10)), Decision::NotLeader);
        assert_eq!(
            p.decide(&obs(3, 3, &[(1, since)], 10)),
            Decision::Transfer { to: NodeId(1) }
        );
    }
}
