//! The one way to the leader. Every operation that must run on the leader
//! — configuration proposals, node add and remove, alert tests,
//! linearizable reads — is a `LeaderOp` handed to `Daemon::on_leader`,
//! which runs it here when this node leads and forwards it otherwise
//! (`MemberRequest::OnLeader`), under one retry policy and one set of
//! error messages. (openraft's `examples/client-http`
//! `send_with_forwarding` is the model.)
//!
//! Invariants:
//! - Bounded: every operation answers within its deadline, committed or
//!   refused; without any leader, within `MUTATION_TIMEOUT`.
//! - Retries are safe: an attempt that may have reached the leader is
//!   sent again only for operations where that is harmless — a proposal
//!   carries a request id the state machine remembers, so a replay is
//!   answered with the original outcome, never applied twice.
//! - Read your own writes: the node that took a mutation from the CLI
//!   answers only once it has applied the entry itself (within the
//!   deadline), so the next command on the same node sees it.
//! - References (alert names in a check) are resolved on the leader,
//!   against the state the entry is validated and applied on.
//! - A peer may route configuration commands only: records (flips,
//!   delivery outcomes, pruning) are proposed by the leader's own duties.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::cluster::{MUTATION_TIMEOUT, NODE_ADD_TIMEOUT};
use super::control::CheckRow;
use super::rpc::{ClusterFailure, MemberRequest, MemberResponse};
use super::Daemon;
use crate::transport::TransportError;
use qu_raft::state::{Request, Response};
use qu_raft::NodeId;

/// An operation that must run on the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LeaderOp {
    /// A configuration mutation (with its request id).
    Propose { request: Box<Request> },
    /// `qu node add`: join, learner, voter.
    AddNode { addr: String, fingerprint: String },
    /// `qu node remove`.
    RemoveNode {
        node: NodeId,
        if_version: Option<u64>,
    },
    /// `qu alert test`: a page sent by the confirmed leader.
    AlertTest { id_or_name: String },
    /// A linearizable read of the checks.
    ReadChecks,
    /// What the leader's dispatcher is sending now, and its test pages
    /// (`qu alert log`). A leader one release older cannot decode it; the
    /// log then shows the replicated ledger alone.
    DeliveryProgress,
}

/// What the leader answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LeaderReply {
    /// `index` is the log index the caller must have applied to see it.
    Proposed {
        response: Response,
        index: u64,
    },
    Mutated {
        summary: String,
        version: u64,
        index: u64,
    },
    AlertTested {
        message: String,
    },
    Checks {
        version: u64,
        checks: Vec<CheckRow>,
    },
    Progress {
        deliveries: std::collections::BTreeMap<String, super::alerting::Progress>,
        tests: Vec<super::alerting::TestSend>,
    },
}

impl LeaderReply {
    fn index(&self) -> Option<u64> {
        match self {
            LeaderReply::Proposed { index, .. } | LeaderReply::Mutated { index, .. } => {
                Some(*index)
            }
            _ => None,
        }
    }
}

/// Who handed the leader an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// This node's own CLI or duties.
    Local,
    /// Another member forwarded it.
    Peer(NodeId),
}

impl LeaderOp {
    fn what(&self) -> &'static str {
        match self {
            LeaderOp::Propose { .. } => "mutation",
            LeaderOp::AddNode { .. } => "node add",
            LeaderOp::RemoveNode { .. } => "node removal",
            LeaderOp::AlertTest { .. } => "alert test",
            LeaderOp::ReadChecks => "read",
            LeaderOp::DeliveryProgress => "delivery progress",
        }
    }

    /// Whether sending it again, after an attempt that may have reached
    /// the leader, is harmless.
    fn retry_is_safe(&self) -> bool {
        match self {
            LeaderOp::Propose { request } => request.request_id.is_some(),
            LeaderOp::ReadChecks | LeaderOp::DeliveryProgress => true,
            // A second removal or test page is not the same as the first;
            // an add cut short is left to the operator (re-running it
            // continues) or rolled back by reconciliation.
            LeaderOp::AddNode { .. } | LeaderOp::RemoveNode { .. } | LeaderOp::AlertTest { .. } => {
                false
            }
        }
    }

    /// The whole operation's deadline.
    fn budget(&self) -> Duration {
        match self {
            LeaderOp::AddNode { .. } => NODE_ADD_TIMEOUT,
            LeaderOp::RemoveNode { .. } => MUTATION_TIMEOUT * 3,
            // A provider may take its own timeouts (SMTP: 30 s) to answer.
            LeaderOp::AlertTest { .. } => Duration::from_secs(40),
            _ => MUTATION_TIMEOUT,
        }
    }

    /// One forwarded attempt's deadline: short where a retry is safe, so
    /// a lost answer leaves time to ask again.
    fn attempt(&self) -> Duration {
        match self {
            LeaderOp::Propose { .. } | LeaderOp::ReadChecks | LeaderOp::DeliveryProgress => {
                Duration::from_secs(2)
            }
            _ => self.budget(),
        }
    }
}

/// Whether the request certainly never reached the other side.
fn never_sent(e: &TransportError) -> bool {
    match e {
        TransportError::Connect { .. } | TransportError::Handshake { .. } => true,
        TransportError::Timeout { what, .. } => {
            what.starts_with("connecting") || what.starts_with("TLS handshake")
        }
        _ => false,
    }
}

fn sleep_ms(ms: u64) -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_millis(ms))
}

impl Daemon {
    /// Runs `op` on the leader, wherever that is (see the module doc).
    pub(super) async fn on_leader(&self, op: LeaderOp) -> Result<LeaderReply, ClusterFailure> {
        let started = Instant::now();
        let deadline = started + op.budget();
        let no_leader_deadline = started + MUTATION_TIMEOUT;
        let mut maybe_sent = false;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(self.unanswered(&op, maybe_sent));
            }
            // No leader reached at all (none known, or the one known is
            // unreachable): give up as fast as any mutation does.
            if !maybe_sent && now >= no_leader_deadline {
                return Err(self.no_quorum());
            }
            match self.leader() {
                Some(l) if l == self.me() => {
                    match self
                        .run_as_leader(op.clone(), deadline, Origin::Local)
                        .await
                    {
                        Err(ClusterFailure::NotLeader { .. }) => sleep_ms(50).await,
                        other => return self.settle(other, deadline).await,
                    }
                }
                Some(l) => {
                    let Some(addr) = self.peer_addr(l) else {
                        sleep_ms(100).await;
                        continue;
                    };
                    let attempt = op.attempt().min(deadline.saturating_duration_since(now));
                    let req = MemberRequest::OnLeader { op: op.clone() };
                    match self
                        .pool
                        .call_within::<_, MemberResponse>(&addr, &req, attempt)
                        .await
                    {
                        Ok(MemberResponse::OnLeader(Err(ClusterFailure::NotLeader { .. }))) => {
                            sleep_ms(100).await
                        }
                        Ok(MemberResponse::OnLeader(r)) => return self.settle(r, deadline).await,
                        Ok(other) => {
                            return Err(ClusterFailure::Failed(format!(
                                "unexpected reply from the leader: {other:?}"
                            )))
                        }
                        Err(TransportError::Remote(e)) => {
                            if let Some(refusal) = self.older_leader(&op, l, &addr, &e).await {
                                return Err(refusal);
                            }
                            return Err(ClusterFailure::Failed(format!(
                                "the leader {l} refused the {}: {}",
                                op.what(),
                                e.message
                            )));
                        }
                        Err(e) if never_sent(&e) => sleep_ms(200).await,
                        Err(e) if op.retry_is_safe() => {
                            tracing::debug!(leader = %l, "no answer to a forwarded {} ({e}); asking again", op.what());
                            maybe_sent = true;
                            sleep_ms(100).await
                        }
                        Err(e) => {
                            return Err(ClusterFailure::Failed(format!(
                                "the leader {l} did not answer the {} ({e}); it may or may not have happened: check 'qu status' before retrying",
                                op.what()
                            )))
                        }
                    }
                }
                None => sleep_ms(100).await,
            }
        }
    }

    /// A leader of an older release cannot decode a proposal of a newer
    /// log level, and answers `bad_request` (in a rolling upgrade that
    /// keeps the leader for last). Asks it which level it reads, and if
    /// that is below the proposal's, says so in the words of the upgrade
    /// gate (`ensure_level`) instead of passing on a decoding error.
    async fn older_leader(
        &self,
        op: &LeaderOp,
        leader: NodeId,
        addr: &crate::transport::client::PeerAddr,
        e: &crate::transport::RpcError,
    ) -> Option<ClusterFailure> {
        let LeaderOp::Propose { request } = op else {
            return None;
        };
        let level = request.command.level();
        if e.code != crate::transport::RpcErrorCode::BadRequest
            || level <= self.state().state.log_level
        {
            return None;
        }
        let answer = self
            .pool
            .call_within::<_, MemberResponse>(addr, &MemberRequest::Level, Duration::from_secs(2))
            .await;
        let read = match answer {
            Ok(MemberResponse::Level(l)) if l < level => format!("runs log level {l}"),
            Ok(MemberResponse::Level(_)) => return None,
            // It did not say (gone meanwhile): it could not decode the
            // proposal, which only an older release does.
            _ => "could not decode it (an older release)".to_string(),
        };
        Some(ClusterFailure::Refused(format!(
            "this change needs every member on a qu that reads log level {level}, and node {leader} (the leader) {read}; upgrade (or start) them first, then retry"
        )))
    }

    fn unanswered(&self, op: &LeaderOp, maybe_sent: bool) -> ClusterFailure {
        match (maybe_sent, self.no_quorum()) {
            (_, q @ ClusterFailure::NoQuorum { .. }) => q,
            (true, _) => ClusterFailure::Failed(format!(
                "the {} was not confirmed in time; it may still be applied: check 'qu status' before retrying",
                op.what()
            )),
            (false, other) => other,
        }
    }

    /// Read your own writes: waits, within `deadline`, until this node
    /// has applied what the leader answered.
    async fn settle(
        &self,
        reply: Result<LeaderReply, ClusterFailure>,
        deadline: Instant,
    ) -> Result<LeaderReply, ClusterFailure> {
        if let Some(index) = reply.as_ref().ok().and_then(LeaderReply::index) {
            if !self.wait_applied(index, deadline).await {
                // Committed on a majority: still a success, but say so.
                tracing::warn!(
                    index,
                    "acknowledging a committed mutation this node has not applied yet"
                );
            }
        }
        reply
    }

    /// Waits until this node's state machine applied `index`; false at
    /// the deadline.
    pub(super) async fn wait_applied(&self, index: u64, deadline: Instant) -> bool {
        let mut applied = self.applied.clone();
        loop {
            let at = applied.borrow_and_update().last_applied.map(|l| l.index);
            if at.is_some_and(|a| a >= index) {
                return true;
            }
            match tokio::time::timeout_at(deadline, applied.changed()).await {
                Ok(Ok(())) => {}
                _ => return false,
            }
        }
    }

    /// The log index this node has applied.
    pub(super) fn applied_index(&self) -> u64 {
        self.state().last_applied.map(|l| l.index).unwrap_or(0)
    }

    /// Runs `op` on this node, which believes it leads.
    pub(super) async fn run_as_leader(
        &self,
        op: LeaderOp,
        deadline: Instant,
        origin: Origin,
    ) -> Result<LeaderReply, ClusterFailure> {
        if self.leader() != Some(self.me()) {
            return Err(ClusterFailure::NotLeader {
                leader: self.leader(),
            });
        }
        match op {
            LeaderOp::Propose { request } => {
                if let Origin::Peer(from) = origin {
                    if !request.command.is_configuration() {
                        tracing::warn!(%from, "refused a peer's proposal of a record: only the leader's own duties write those");
                        return Err(ClusterFailure::Refused(
                            "a peer may propose configuration changes only; check states and delivery records are written by the leader itself".into(),
                        ));
                    }
                }
                let (response, index) = self.propose_as_leader(*request, deadline).await?;
                Ok(LeaderReply::Proposed { response, index })
            }
            LeaderOp::AddNode { addr, fingerprint } => {
                let (summary, version) = self.add_node_as_leader(&addr, &fingerprint).await?;
                Ok(LeaderReply::Mutated {
                    summary,
                    version,
                    index: self.applied_index(),
                })
            }
            LeaderOp::RemoveNode { node, if_version } => {
                let (summary, version) = self.remove_node_as_leader(node, if_version).await?;
                Ok(LeaderReply::Mutated {
                    summary,
                    version,
                    index: self.applied_index(),
                })
            }
            LeaderOp::AlertTest { id_or_name } => self
                .alert_test_as_leader(&id_or_name)
                .await
                .map(|message| LeaderReply::AlertTested { message })
                .map_err(ClusterFailure::Failed),
            LeaderOp::ReadChecks => self
                .read_checks_as_leader()
                .await
                .map(|(version, checks)| LeaderReply::Checks { version, checks })
                .map_err(ClusterFailure::Failed),
            LeaderOp::DeliveryProgress => {
                let (deliveries, tests) = self.alerting.progress();
                Ok(LeaderReply::Progress { deliveries, tests })
            }
        }
    }
}
