//! Control-socket request handlers: turn CLI requests into cluster
//! operations and replies.
//!
//! Invariant: bad input is refused here or by validation before anything
//! reaches the Raft log; errors carry the field and the fix.

use std::sync::Arc;

use super::control::{AlertSpec, CheckSpec, ControlError, ControlReply, ControlRequest};
use super::rpc::ClusterFailure;
use super::Daemon;
use qu_raft::model::{Alert, Check};
use qu_raft::state::{Command, Request, Response};
use qu_raft::NodeId;

fn cerr(e: impl std::fmt::Display) -> ControlError {
    ControlError::new(e.to_string())
}

fn mutated(r: Result<Response, ClusterFailure>) -> Result<ControlReply, ControlError> {
    match r.map_err(cerr)? {
        Response::Applied { version, summary } | Response::Unchanged { version, summary } => {
            Ok(ControlReply::Mutated { summary, version })
        }
        Response::Refused { refusal, .. } => Err(cerr(refusal)),
        Response::Internal => Err(cerr("unexpected internal response")),
    }
}

impl Daemon {
    pub(super) async fn handle(
        self: &Arc<Self>,
        req: ControlRequest,
    ) -> Result<ControlReply, ControlError> {
        match req {
            ControlRequest::Status => Ok(ControlReply::Status(Box::new(self.status()))),
            ControlRequest::TrustList => {
                let entries = self.trust.current().entries().to_vec();
                Ok(ControlReply::TrustList { entries })
            }
            ControlRequest::TrustRemove { node } => self.trust_remove(&node).await,
            ControlRequest::NodeHello { addr } => {
                crate::config::node::validate_advertise(&addr).map_err(|_| {
                    cerr(format!("{addr:?} is not HOST:PORT (the address the node advertises, e.g. bravo.example.com:9001)"))
                })?;
                let (node_id, fp, advertise) = self.node_hello(&addr).await.map_err(cerr)?;
                Ok(ControlReply::Hello {
                    node_id,
                    fingerprint: fp.to_string(),
                    advertise,
                })
            }
            ControlRequest::NodeAdd { addr, fingerprint } => {
                let (summary, version) = self.add_node(addr, fingerprint).await.map_err(cerr)?;
                Ok(ControlReply::Mutated { summary, version })
            }
            ControlRequest::NodeList => Ok(ControlReply::NodeList {
                nodes: self.peer_rows(),
            }),
            ControlRequest::NodeRemove { node, if_version } => {
                let node = self.resolve_member(&node)?;
                let (summary, version) = self.remove_node(node, if_version).await.map_err(cerr)?;
                Ok(ControlReply::Mutated { summary, version })
            }
            ControlRequest::CheckAdd { spec, if_version } => {
                let check = self.check_from_spec(spec)?;
                mutated(
                    self.propose(Request {
                        if_version,
                        command: Command::AddCheck { check },
                    })
                    .await,
                )
            }
            ControlRequest::CheckList {
                linearizable: false,
            } => {
                let state = self.state();
                Ok(ControlReply::CheckList {
                    version: state.state.version,
                    checks: super::view::check_rows_of(&state.state),
                })
            }
            ControlRequest::CheckList { linearizable: true } => {
                let (version, checks) = match self.leader() {
                    Some(l) if l == self.me() => self.read_checks_as_leader().await,
                    Some(l) => match self.peer_addr(l) {
                        Some(addr) => match self
                            .pool
                            .call_within::<_, super::rpc::MemberResponse>(
                                &addr,
                                &super::rpc::MemberRequest::ReadChecks,
                                std::time::Duration::from_secs(5),
                            )
                            .await
                        {
                            Ok(super::rpc::MemberResponse::Checks(r)) => r,
                            Ok(_) => Err("unexpected reply from the leader".into()),
                            Err(e) => Err(format!("cannot reach the leader {l}: {e}")),
                        },
                        None => Err("the leader's address is unknown".into()),
                    },
                    None => Err("no leader: cannot read linearizably without quorum".into()),
                }
                .map_err(cerr)?;
                Ok(ControlReply::CheckList { version, checks })
            }

            ControlRequest::CheckShow { id_or_name } => self.check_show(&id_or_name).await,
            ControlRequest::CheckRemove {
                id_or_name,
                if_version,
            } => mutated(
                self.propose(Request {
                    if_version,
                    command: Command::RemoveCheck { id_or_name },
                })
                .await,
            ),
            ControlRequest::AlertAdd { spec, if_version } => {
                let alert = alert_from_spec(spec)?;
                mutated(
                    self.propose(Request {
                        if_version,
                        command: Command::AddAlert { alert },
                    })
                    .await,
                )
            }
            ControlRequest::AlertTest { id_or_name } => {
                let result = match self.leader() {
                    Some(l) if l == self.me() => self.alert_test_as_leader(&id_or_name).await,
                    Some(l) => match self.peer_addr(l) {
                        Some(addr) => match self
                            .pool
                            .call_within::<_, super::rpc::MemberResponse>(
                                &addr,
                                &super::rpc::MemberRequest::AlertTest { id_or_name },
                                std::time::Duration::from_secs(40),
                            )
                            .await
                        {
                            Ok(super::rpc::MemberResponse::AlertTested(r)) => r,
                            Ok(_) => Err("unexpected reply from the leader".into()),
                            Err(e) => Err(format!("cannot reach the leader {l}: {e}")),
                        },
                        None => Err("the leader's address is unknown".into()),
                    },
                    None => Err("no leader: the cluster has no quorum; not sending".into()),
                };
                result
                    .map(|message| ControlReply::AlertTested { message })
                    .map_err(cerr)
            }
            ControlRequest::AlertLog => Ok(ControlReply::AlertLog {
                deliveries: self.delivery_rows(),
            }),
            ControlRequest::AlertList => Ok(ControlReply::AlertList {
                alerts: self.alert_rows(),
            }),
            ControlRequest::AlertRemove {
                id_or_name,
                force,
                if_version,
            } => mutated(
                self.propose(Request {
                    if_version,
                    command: Command::RemoveAlert { id_or_name, force },
                })
                .await,
            ),
        }
    }

    async fn check_show(&self, key: &str) -> Result<ControlReply, ControlError> {
        let state = self.state();
        let check = qu_raft::model::find_by_id_or_name(&state.state.checks, key, |c| &c.name)
            .cloned()
            .ok_or_else(|| {
                cerr(format!(
                    "no check with id or name {key:?} (see 'qu check list')"
                ))
            })?;
        let row = self
            .check_rows()
            .into_iter()
            .find(|r| r.id == check.id)
            .ok_or_else(|| cerr("the check disappeared"))?;
        let cs = state
            .state
            .check_states
            .get(&check.id)
            .cloned()
            .unwrap_or_default();
        let last_round = match self.leader() {
            Some(l) if l == self.me() => self
                .aggregator
                .lock()
                .ok()
                .and_then(|a| a.last_round(&check.id).cloned()),
            Some(l) => match self.peer_addr(l) {
                Some(addr) => match self
                    .pool
                    .call_within::<_, super::rpc::MemberResponse>(
                        &addr,
                        &super::rpc::MemberRequest::LastRound {
                            check_id: check.id.clone(),
                        },
                        std::time::Duration::from_secs(3),
                    )
                    .await
                {
                    Ok(super::rpc::MemberResponse::LastRound(r)) => r,
                    _ => None,
                },
                None => None,
            },
            None => None,
        };
        Ok(ControlReply::CheckShow(Box::new(
            super::control::CheckDetail {
                check: row,
                last_transition: cs.last,
                flips: cs.flips,
                last_round,
                missed_rounds: self.scheduler_stats.missed(&check.id),
            },
        )))
    }

    fn resolve_member(&self, text: &str) -> Result<NodeId, ControlError> {
        let state = self.state();
        let mut known: Vec<NodeId> = state.state.peers.keys().copied().collect();
        known.extend(self.voters());
        known.extend(self.learners());
        known.sort();
        known.dedup();
        NodeId::resolve(text, known.iter()).map_err(|e| cerr(format!("{e} (see 'qu node list')")))
    }

    fn check_from_spec(&self, spec: CheckSpec) -> Result<Check, ControlError> {
        let state = self.state();
        let mut alerts = Vec::new();
        for name in spec.alerts.iter().filter(|n| !n.trim().is_empty()) {
            let found = state
                .state
                .alerts
                .values()
                .find(|a| a.name == *name || a.id == *name)
                .ok_or_else(|| cerr(format!("--alerts: no alert named {name:?} (see 'qu alert list'; add alerts before the checks that use them)")))?;
            alerts.push(found.id.clone());
        }
        let check = Check {
            id: super::cluster::random_hex(4),
            name: spec.name,
            kind: spec.kind,
            interval_ms: spec.interval_ms,
            timeout_ms: spec.timeout_ms,
            alerts,
        };
        check.validate().map_err(cerr)?;
        Ok(check)
    }

    async fn trust_remove(self: &Arc<Self>, text: &str) -> Result<ControlReply, ControlError> {
        let node = NodeId::resolve(text, self.trust.current().node_ids().iter())
            .map_err(|e| cerr(format!("{e} (see 'qu trust list')")))?;
        // The trust service persists, publishes, then closes the peer's
        // connections; a failed write changes nothing.
        let closed_before = self.registry.open_counts().get(&node).copied().unwrap_or(0);
        let entry = self
            .trust
            .update(|store| Ok(store.remove(node)))
            .await
            .map_err(cerr)?
            .ok_or_else(|| cerr(format!("node {node} is not in the trust store")))?;
        let closed_connections = closed_before;
        let still_member = self.state().state.peers.contains_key(&node);
        tracing::warn!(%node, fingerprint = %entry.fingerprint, closed_connections, still_member, "removed from the trust store; its connections are refused from now on");
        Ok(ControlReply::TrustRemoved {
            entry,
            closed_connections,
            still_member,
        })
    }
}

fn alert_from_spec(spec: AlertSpec) -> Result<Alert, ControlError> {
    let alert = Alert {
        id: super::cluster::random_hex(4),
        name: spec.name,
        kind: spec.kind,
    };
    alert.validate().map_err(cerr)?;
    Ok(alert)
}
