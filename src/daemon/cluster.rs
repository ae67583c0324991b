//! Raft-facing basics every component shares: who leads, the voters and
//! learners, quorum checks, where to reach a member, proposing a
//! configuration mutation (through `routing`) and, on the leader, writing
//! it; plus the liveness pings.
//!
//! Invariants:
//! - A mutation is acknowledged only with the state machine's response to
//!   its committed entry (openraft commits on a majority after our storage
//!   fsynced it).
//! - Without quorum a mutation is refused before it reaches the log, and in
//!   every case the answer comes within `MUTATION_TIMEOUT`.
//! - A request id the state machine already applied gets its original
//!   answer, never a second entry.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ClientWriteError, RaftError};
use tokio::sync::watch;
use tokio::time::Instant;

use super::routing::{LeaderOp, LeaderReply};
use super::rpc::{ClusterFailure, MemberRequest, MemberResponse};
use super::Daemon;
use crate::crypto::cert::der_b64_string;
use crate::crypto::Fingerprint;
use crate::transport::client::PeerAddr;
use qu_raft::model::Peer;
use qu_raft::state::{Command, ConfigCommand, Request, Response};
use qu_raft::{NodeId, RaftNode};

/// A mutation is answered within this time, committed or refused.
pub const MUTATION_TIMEOUT: Duration = Duration::from_millis(4500);
/// Adding a node includes catching it up.
pub(super) const NODE_ADD_TIMEOUT: Duration = Duration::from_secs(60);
/// Deadline of the hello and join calls.
pub(super) const STRANGER_TIMEOUT: Duration = Duration::from_secs(10);

pub use crate::ids::random_hex;

impl Daemon {
    /// This node as a replicated peer.
    pub(super) fn self_peer(&self) -> Peer {
        Peer {
            node_id: self.me(),
            advertise: self.node.advertise.clone(),
            fingerprint: self.identity.fingerprint.to_string(),
            cert: der_b64_string(&self.identity.cert),
        }
    }

    pub(super) fn voters(&self) -> BTreeSet<NodeId> {
        self.raft
            .metrics()
            .borrow_watched()
            .membership_config
            .voter_ids()
            .collect()
    }

    pub(super) fn learners(&self) -> BTreeSet<NodeId> {
        self.raft
            .metrics()
            .borrow_watched()
            .membership_config
            .membership()
            .learner_ids()
            .collect()
    }

    pub(super) fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow_watched().current_leader
    }

    /// The no-quorum failure as of now.
    pub(super) fn no_quorum(&self) -> ClusterFailure {
        let voters = self.voters();
        let live = self.liveness.count_live(&voters);
        let need = voters.len() / 2 + 1;
        if voters.is_empty() || live >= need {
            ClusterFailure::Failed(format!(
                "no leader could be reached within {}s ({live} of {} nodes reachable); try again shortly",
                MUTATION_TIMEOUT.as_secs_f32().ceil(),
                voters.len()
            ))
        } else {
            ClusterFailure::NoQuorum {
                live,
                voters: voters.len(),
                need,
            }
        }
    }

    pub(super) fn quorum_precheck(&self) -> Result<(), ClusterFailure> {
        let voters = self.voters();
        let need = voters.len() / 2 + 1;
        let live = self.liveness.count_live(&voters);
        if live < need {
            return Err(ClusterFailure::NoQuorum {
                live,
                voters: voters.len(),
                need,
            });
        }
        Ok(())
    }

    pub(super) fn raft_node(&self) -> RaftNode {
        RaftNode {
            advertise: self.node.advertise.clone(),
            fingerprint: self.identity.fingerprint.to_string(),
        }
    }

    /// Where to reach a member, from the Raft membership or the peers.
    pub(super) fn peer_addr(&self, node: NodeId) -> Option<PeerAddr> {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let (advertise, fp) = match metrics.membership_config.get_node(&node) {
            Some(n) => (n.advertise.clone(), n.fingerprint.clone()),
            None => {
                let state = self.state();
                let p = state.state.peers.get(&node)?;
                (p.advertise.clone(), p.fingerprint.clone())
            }
        };
        Some(PeerAddr {
            node_id: node,
            fingerprint: fp.parse::<Fingerprint>().ok()?,
            advertise,
        })
    }

    /// Proposes a configuration mutation wherever the leader is, under a
    /// request id chosen here (so retries are safe); answers within
    /// `MUTATION_TIMEOUT`, once this node applied it too.
    pub(super) async fn propose(&self, mut req: Request) -> Result<Response, ClusterFailure> {
        self.ensure_formed().await?;
        if req.request_id.is_none() {
            req.request_id = Some(random_hex(8));
        }
        match self
            .on_leader(LeaderOp::Propose {
                request: Box::new(req),
            })
            .await?
        {
            LeaderReply::Proposed { response, .. } => Ok(response),
            other => Err(ClusterFailure::Failed(format!(
                "unexpected reply from the leader: {other:?}"
            ))),
        }
    }

    /// Proposes on this node, which believes it leads. A request id it
    /// already applied gets the original answer; alert names in a check
    /// are resolved here, against the state the entry will meet. Returns
    /// the response and the entry's log index.
    pub(super) async fn propose_as_leader(
        &self,
        req: Request,
        deadline: Instant,
    ) -> Result<(Response, u64), ClusterFailure> {
        if self.leader() != Some(self.me()) {
            return Err(ClusterFailure::NotLeader {
                leader: self.leader(),
            });
        }
        let state = self.state();
        if let Some(seen) = req
            .request_id
            .as_deref()
            .and_then(|id| state.state.seen(id))
        {
            return Ok((seen.clone(), self.applied_index()));
        }
        let mut req = resolve_references(&state.state, req)?;
        // Dates the history event a configuration change leaves (added,
        // paused, resumed, restarted): one clock, the leader's, in the log.
        if req.command.is_configuration() && req.at_ms.is_none() {
            req.at_ms = Some(crate::checks::scheduler::now_ms());
        }
        self.quorum_precheck()?;
        let level = req.command.level();
        if level > 1 && state.state.log_level < level {
            self.ensure_level(level).await?;
            // Commit that every member reads it, so a member down later
            // does not block commands of this level.
            if !matches!(
                req.command,
                Command::Record(qu_raft::state::RecordCommand::RaiseLevel { .. })
            ) {
                let raise = Request::new(qu_raft::state::RecordCommand::RaiseLevel { level });
                if let Err(e) = Box::pin(self.propose_as_leader(raise, deadline)).await {
                    tracing::debug!(error = %e, "could not commit the log level yet");
                }
            }
        }
        if let Err(refusal) = state.state.validate(&req) {
            return Err(ClusterFailure::Refused(refusal.to_string()));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.raft.client_write(req)).await {
            Err(_) => Err(match self.no_quorum() {
                ClusterFailure::NoQuorum { live, voters, need } => ClusterFailure::NoQuorum { live, voters, need },
                _ => ClusterFailure::Failed(
                    "the mutation was not confirmed in time; it may still be applied: check 'qu status' before retrying".into(),
                ),
            }),
            Ok(Ok(resp)) => match resp.data {
                Response::Refused { refusal, .. } => Err(ClusterFailure::Refused(refusal.to_string())),
                other => Ok((other, resp.log_id.index)),
            },
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(ClusterFailure::NotLeader { leader: f.leader_id })
            }
            Ok(Err(e)) => Err(ClusterFailure::Failed(e.to_string())),
        }
    }
}

/// The leader's gate for what a proposal refers to, against the state the
/// entry will meet: alert names in a check become ids (a name that matches
/// no alert is refused, naming the field); a removal's reference becomes the
/// one id it names (refused when it names one thing by id and another by
/// name); new names shaped like ids are refused. `apply` stays as
/// permissive as the release before, so entries it accepted replay alike.
fn resolve_references(
    state: &qu_raft::state::ClusterState,
    mut req: Request,
) -> Result<Request, ClusterFailure> {
    use qu_raft::model::{lookup_by_id_or_name, refuse_id_like_name};
    let refused = |e: qu_raft::model::ValidationError| ClusterFailure::Refused(e.to_string());
    let check_id = |key: &str| {
        lookup_by_id_or_name(&state.checks, key, "check", |c| &c.name)
            .map(|c| c.id.clone())
            .map_err(refused)
    };
    match &mut req.command {
        Command::Config(ConfigCommand::AddCheck { check }) => {
            refuse_id_like_name("name", "check", &check.name).map_err(refused)?;
            if check.alerts == [DEFAULT_ALERTS] {
                check.alerts = state
                    .alerts
                    .values()
                    .filter(|a| a.default)
                    .map(|a| a.id.clone())
                    .collect();
            } else {
                check.alerts = alert_ids(state, &check.alerts)?;
            }
        }
        Command::Config(ConfigCommand::EditCheck { id_or_name, patch }) => {
            *id_or_name = check_id(id_or_name)?;
            if let Some(serde_json::Value::String(name)) = patch.0.get("name") {
                refuse_id_like_name("--name", "check", name).map_err(refused)?;
            }
            if let Some(serde_json::Value::Array(given)) = patch.0.get("alerts") {
                let names: Vec<String> = given
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                let ids = alert_ids(state, &names)?;
                patch.set("alerts", ids);
            }
        }
        Command::Config(ConfigCommand::EditAlert { id_or_name, patch }) => {
            let found = lookup_by_id_or_name(&state.alerts, id_or_name, "alert", |a| &a.name)
                .map_err(refused)?;
            *id_or_name = found.id.clone();
            if let Some(serde_json::Value::String(name)) = patch.0.get("name") {
                refuse_id_like_name("--name", "alert", name).map_err(refused)?;
            }
        }
        Command::Config(ConfigCommand::AddSilence { silence }) => {
            silence.checks = check_ids(state, &silence.checks)?;
        }
        Command::Config(ConfigCommand::AddWindow { window }) => {
            refuse_id_like_name("name", "maintenance window", &window.name).map_err(refused)?;
            window.checks = check_ids(state, &window.checks)?;
        }
        Command::Config(ConfigCommand::RemoveWindow { id_or_name, .. }) => {
            let found =
                lookup_by_id_or_name(&state.windows, id_or_name, "maintenance", |w| &w.name)
                    .map_err(refused)?;
            *id_or_name = found.id.clone();
        }
        Command::Config(ConfigCommand::AddAlert { alert }) => {
            refuse_id_like_name("name", "alert", &alert.name).map_err(refused)?;
        }
        Command::Config(ConfigCommand::RemoveCheck { id_or_name }) => {
            let found = lookup_by_id_or_name(&state.checks, id_or_name, "check", |c| &c.name)
                .map_err(refused)?;
            *id_or_name = found.id.clone();
        }
        Command::Config(ConfigCommand::SetPaused { id_or_name, .. }) => {
            let found = lookup_by_id_or_name(&state.checks, id_or_name, "check", |c| &c.name)
                .map_err(refused)?;
            *id_or_name = found.id.clone();
        }
        Command::Config(ConfigCommand::RemoveAlert { id_or_name, .. }) => {
            let found = lookup_by_id_or_name(&state.alerts, id_or_name, "alert", |a| &a.name)
                .map_err(refused)?;
            *id_or_name = found.id.clone();
        }
        _ => {}
    }
    Ok(req)
}

/// What a new check's alerts say when no `--alerts` was given: the leader
/// replaces it with the default alerts. Never stored (`@` is no name).
pub(super) const DEFAULT_ALERTS: &str = "@default";

/// Alert names (or ids) as ids, each once; every missing one named.
fn alert_ids(
    state: &qu_raft::state::ClusterState,
    keys: &[String],
) -> Result<Vec<String>, ClusterFailure> {
    ids_of(&state.alerts, keys, "alert", "--alerts", |a| {
        (&a.id, &a.name)
    })
}

/// Check names (or ids) as ids, each once; every missing one named.
fn check_ids(
    state: &qu_raft::state::ClusterState,
    keys: &[String],
) -> Result<Vec<String>, ClusterFailure> {
    ids_of(&state.checks, keys, "check", "checks", |c| (&c.id, &c.name))
}

fn ids_of<M: qu_raft::model::ById>(
    map: &M,
    keys: &[String],
    what: &str,
    field: &str,
    id_name: impl Fn(&M::Item) -> (&String, &String),
) -> Result<Vec<String>, ClusterFailure> {
    use qu_raft::model::lookup_by_id_or_name;
    let mut ids: Vec<String> = Vec::with_capacity(keys.len());
    let mut missing = Vec::new();
    for key in keys {
        match lookup_by_id_or_name(map, key, what, |v| id_name(v).1) {
            Ok(found) => {
                let id = id_name(found).0;
                if !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
            Err(_) if map.by_id(key).is_none() && !map.each().any(|v| id_name(v).1 == key) => {
                missing.push(format!("{key:?}"));
            }
            Err(e) => return Err(ClusterFailure::Refused(e.to_string())),
        }
    }
    if !missing.is_empty() {
        return Err(ClusterFailure::Refused(format!(
            "{field}: no {what} named {} (see 'qu {what} list'{})",
            missing.join(", "),
            if what == "alert" {
                "; add it first with 'qu alert add'"
            } else {
                ""
            }
        )));
    }
    Ok(ids)
}

/// Pings every member periodically to keep liveness fresh.
pub(super) async fn ping_loop(daemon: Arc<Daemon>, mut shutdown: watch::Receiver<bool>) {
    let interval = daemon.timing.ping_interval();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if daemon.membership.is_removed() {
            continue;
        }
        let peers: Vec<NodeId> = daemon
            .state()
            .state
            .peers
            .keys()
            .copied()
            .filter(|p| *p != daemon.me())
            .collect();
        for node in peers {
            let Some(addr) = daemon.peer_addr(node) else {
                continue;
            };
            let d = daemon.clone();
            tokio::spawn(async move {
                let r = d
                    .pool
                    .call_within::<_, MemberResponse>(&addr, &MemberRequest::Ping, interval * 2)
                    .await;
                if r.is_ok() {
                    d.liveness.heard(node);
                    let off = d.own_clock_off();
                    let sent_ms = crate::checks::scheduler::now_ms();
                    let c = d
                        .pool
                        .call_within::<_, MemberResponse>(
                            &addr,
                            &MemberRequest::Clock { off },
                            interval * 2,
                        )
                        .await;
                    if let Ok(MemberResponse::Clock { wall_ms }) = c {
                        let received_ms = crate::checks::scheduler::now_ms();
                        d.clocks.record(
                            node,
                            super::clock::Sample::of(sent_ms, wall_ms, received_ms, Instant::now()),
                        );
                    }
                    if d.liveness.version_due(node) {
                        let v = d
                            .pool
                            .call_within::<_, MemberResponse>(
                                &addr,
                                &MemberRequest::Version,
                                interval * 2,
                            )
                            .await;
                        match v {
                            Ok(MemberResponse::Version(v)) => d.liveness.set_version(node, Some(v)),
                            // A node older than the question answers bad_request.
                            Ok(_) | Err(crate::transport::client::TransportError::Remote(_)) => {
                                d.liveness.set_version(node, None)
                            }
                            Err(_) => {}
                        }
                    }
                }
            });
        }
    }
}
