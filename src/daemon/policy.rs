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
        let smaller: Vec<NodeId> = o.voters.iter().copied().filter(|v| *v < o.me).collect();
        let live_smaller: Vec<NodeId> = smaller
            .iter()
            .copied()
            .filter(|v| o.live_since.contains_key(v))
            .collect();
        let Some(&preferred) = live_smaller.first() else {
            self.attempts.clear();
            return Decision::Settled;
        };
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
        }
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
