//! The leadership policy's runtime (SPEC §7): observes the cluster on every
//! tick, asks `policy::Policy` what to do, acts while this node leads, and
//! keeps what `qu status` shows of it.
//!
//! `Leadership` owns the policy's state and its status view; the policy
//! loop is their only writer.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use tokio::sync::watch;
use tokio::time::Instant;

use super::policy::{Decision, Observation, Policy, PolicyConfig, PolicyView};
use super::Daemon;
use qu_raft::NodeId;

/// The leadership policy and what status shows of it.
pub(super) struct Leadership {
    policy: std::sync::Mutex<Policy>,
    view: std::sync::Mutex<PolicyView>,
}

impl Leadership {
    pub(super) fn new(cooldown: Duration) -> Leadership {
        Leadership {
            policy: std::sync::Mutex::new(Policy::new(PolicyConfig {
                cooldown,
                max_backoff: Duration::from_secs(600).max(cooldown),
            })),
            view: Default::default(),
        }
    }

    pub(super) fn cooldown(&self) -> Duration {
        self.policy.lock().map(|p| p.cooldown()).unwrap_or_default()
    }

    /// What `qu status` shows of the policy.
    pub(super) fn view(&self) -> PolicyView {
        self.view.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Daemon {
    /// This node's judgement of the voters' clocks, now.
    pub(super) fn clock_assessment(&self, voters: &BTreeSet<NodeId>) -> super::clock::Assessment {
        let now = Instant::now();
        super::clock::assess(
            self.me(),
            voters,
            &self.clocks.estimates(now),
            &self.clocks.reported_off(now),
        )
    }

    /// Whether this node judges its own clock off (told to peers with
    /// every ping).
    pub(super) fn own_clock_off(&self) -> bool {
        let m = self.raft.metrics().borrow_watched().clone();
        let voters: BTreeSet<NodeId> = m.membership_config.voter_ids().collect();
        self.clock_assessment(&voters).is_off(self.me())
    }

    /// What the leadership policy sees now.
    fn observe(&self) -> Observation {
        let m = self.raft.metrics().borrow_watched().clone();
        let voters: BTreeSet<NodeId> = m.membership_config.voter_ids().collect();
        let live_since = voters
            .iter()
            .filter(|v| **v != self.me())
            .filter_map(|v| self.liveness.live_since(*v).map(|t| (*v, t)))
            .collect();
        let matched = m
            .replication
            .as_ref()
            .map(|r| {
                r.iter()
                    .map(|(k, v)| (*k, v.map(|l| l.index).unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        let now = Instant::now();
        let clock = self.clock_assessment(&voters);
        Observation {
            now,
            me: self.me(),
            leader: m.current_leader,
            voters,
            live_since,
            matched,
            committed: m.local_committed.map(|l| l.index).unwrap_or(0),
            clock,
        }
    }

    fn policy_view_of(
        &self,
        o: &Observation,
        d: &Decision,
        attempts: u64,
        cooldown: Duration,
    ) -> PolicyView {
        let preferred = o
            .voters
            .iter()
            .copied()
            .find(|v| (*v == o.me || o.live_since.contains_key(v)) && !o.clock.is_off(*v));
        let remaining_for = |n: NodeId| {
            o.live_since
                .get(&n)
                .map(|since| cooldown.saturating_sub(o.now.saturating_duration_since(*since)))
        };
        let (reason, remaining) = match d {
            Decision::Settled => (String::new(), None),
            Decision::Transfer { to } => (format!("transferring leadership to node {to}"), None),
            Decision::Wait { reason, remaining, .. } => (reason.clone(), *remaining),
            Decision::NotLeader => match (preferred, o.leader) {
                (p, l) if p == l => (String::new(), None),
                (_, None) => ("no master: election in progress or no quorum".into(), None),
                (Some(p), Some(_)) => (
                    format!("the master hands over to node {p} once it has been live for the cooldown and caught up"),
                    remaining_for(p).filter(|r| !r.is_zero()),
                ),
                (None, Some(_)) => (String::new(), None),
            },
        };
        PolicyView {
            preferred,
            reason,
            cooldown_secs: cooldown.as_secs(),
            cooldown_remaining_secs: remaining.map(|r| r.as_secs_f64().ceil() as u64),
            transfer_attempts: attempts,
        }
    }
}

impl Daemon {
    /// A planned leadership transfer to `to`: first lets every send that is
    /// between its leadership check and the record of its outcome finish
    /// (and starts no new one), so a handover never pages twice; then
    /// transfers, and reopens sends once leadership moved (or in 5 s).
    pub(super) async fn hand_over(&self, to: NodeId) -> Result<(), String> {
        let handover = self.alerting.handover();
        if !handover.close(Duration::from_secs(10)).await {
            tracing::warn!(%to, "sends still recording after 10 s; handing over anyway (a page may repeat)");
        }
        let result = self
            .raft
            .trigger()
            .transfer_leader(to)
            .await
            .map_err(|e| e.to_string());
        if result.is_ok() {
            let me = self.me();
            let _ = self
                .raft
                .wait(Some(Duration::from_secs(5)))
                .metrics(|m| m.current_leader != Some(me), "leadership moved")
                .await;
        }
        handover.open();
        result
    }
}

/// Acts on this node's view of the clocks: a node whose own clock is off
/// does not stand for election (openraft's `elect`; the voters with sound
/// clocks are a live majority, so one of them can), and a clock past
/// `clock::WARN_MS` is logged once per change of what is said.
fn clock_duties(daemon: &Daemon, obs: &Observation, said: &mut String) {
    let me_off = obs.clock.is_off(obs.me);
    daemon.raft.runtime_config().elect(!me_off);
    let mut lines: Vec<String> = Vec::new();
    for (node, c) in &obs.clock.voters {
        if c.deviation_ms.unsigned_abs() > super::clock::WARN_MS + c.uncertainty_ms {
            let who = if *node == obs.me {
                "this node".to_string()
            } else {
                format!("node {node}")
            };
            let state = if c.off {
                "off: it is kept from leading"
            } else {
                "drifting"
            };
            // Rounded to the half second, so a warning is not repeated as
            // the estimate jitters.
            let secs = (c.deviation_ms as f64 / 500.0).round() / 2.0;
            lines.push(format!(
                "{who}'s clock is {secs:+.1}s from the voters' ({state})"
            ));
        }
    }
    if let Some(d) = &obs.clock.disagree {
        lines.push(d.clone());
    }
    let now_said = lines.join("; ");
    if now_said != *said {
        if now_said.is_empty() {
            tracing::info!("clocks: every voter's clock agrees again");
        } else {
            tracing::warn!("clocks: {now_said}");
        }
        *said = now_said;
    }
}

/// Runs the leadership policy (SPEC §7) on every tick; acts only while
/// this node leads.
pub(super) async fn policy_loop(daemon: Arc<Daemon>, mut shutdown: watch::Receiver<bool>) {
    let interval = daemon.timing.ping_interval();
    let mut last_reason = String::new();
    let mut clock_said = String::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if daemon.membership.is_removed() {
            continue;
        }
        let obs = daemon.observe();
        clock_duties(&daemon, &obs, &mut clock_said);
        let (decision, attempts, cooldown) = match daemon.leadership.policy.lock() {
            Ok(mut p) => {
                let d = p.decide(&obs);
                (d, p.total_attempts(), p.cooldown())
            }
            Err(_) => continue,
        };
        let view = daemon.policy_view_of(&obs, &decision, attempts, cooldown);
        if let Ok(mut v) = daemon.leadership.view.lock() {
            *v = view;
        }
        match decision {
            Decision::Transfer { to } if obs.clock.is_off(obs.me) => {
                tracing::warn!(%to, "leadership policy: handing leadership over: this node's {}", obs.clock.reason(obs.me).unwrap_or_default());
                // Tell the target first, so it never hands leadership back
                // before its own estimates see this clock as off.
                if let Some(addr) = daemon.peer_addr(to) {
                    let _ = daemon
                        .pool
                        .call_within::<_, super::rpc::MemberResponse>(
                            &addr,
                            &super::rpc::MemberRequest::Clock { off: true },
                            interval * 2,
                        )
                        .await;
                }
                if let Err(e) = daemon.hand_over(to).await {
                    tracing::warn!(%to, "leadership transfer could not start: {e}");
                }
            }
            Decision::Transfer { to } => {
                tracing::info!(%to, "leadership policy: transferring leadership to the smallest live voter (live for the cooldown, log caught up)");
                if let Err(e) = daemon.hand_over(to).await {
                    tracing::warn!(%to, "leadership transfer could not start: {e}");
                }
            }
            Decision::Wait { reason, .. } => {
                // Log when the reason changes in kind, not as its seconds tick.
                let kind: String = reason.chars().filter(|c| !c.is_ascii_digit()).collect();
                if kind != last_reason {
                    tracing::info!("leadership policy: staying master for now: {reason}");
                    last_reason = kind;
                }
            }
            _ => {}
        }
    }
}
