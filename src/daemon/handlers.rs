//! Control-socket request handlers: turn CLI requests into cluster
//! operations and replies.
//!
//! Invariant: bad input is refused here or by validation before anything
//! reaches the Raft log; errors carry the field and the fix.

use std::sync::Arc;

use super::control::{AlertSpec, CheckSpec, ControlError, ControlReply, ControlRequest};
use super::routing::{LeaderOp, LeaderReply};
use super::rpc::ClusterFailure;
use super::Daemon;
use qu_raft::model::{Alert, Check};
use qu_raft::state::{Command, ConfigCommand, Request, Response};
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
        if self.membership.is_removed() && !matches!(req, ControlRequest::Status) {
            return Err(cerr(
                "this node was removed from its cluster and serves none of its state; to use it again, stop qu, move the state directory aside, run 'qu init' and 'qu node add' it from a member (see 'qu status')",
            ));
        }
        match req {
            ControlRequest::Status => Ok(ControlReply::Status(Box::new(self.status()))),
            ControlRequest::TrustList => {
                let entries = self.trust.current().entries().to_vec();
                Ok(ControlReply::TrustList { entries })
            }
            ControlRequest::TrustRemove { node, force } => self.trust_remove(&node, force).await,
            ControlRequest::NodeHello { addr } => {
                crate::config::node::validate_advertise(&addr).map_err(|_| {
                    cerr(format!("{addr:?} is not HOST:PORT (the address the node advertises, e.g. bravo.example.com:9001)"))
                })?;
                let (node_id, fp, advertise) = self.node_hello(&addr).await.map_err(cerr)?;
                let voter = self.voters().contains(&node_id)
                    && self
                        .state()
                        .state
                        .peers
                        .get(&node_id)
                        .is_some_and(|p| p.fingerprint == fp.to_string());
                Ok(ControlReply::Hello {
                    node_id,
                    fingerprint: fp.to_string(),
                    advertise,
                    voter,
                })
            }
            ControlRequest::NodeAdd { addr, fingerprint } => {
                let (summary, version) = self.add_node(addr, fingerprint).await.map_err(cerr)?;
                // Re-adding a member restores a pin dropped here by hand.
                self.sync_trust().await;
                Ok(ControlReply::Mutated { summary, version })
            }
            ControlRequest::NodeList => Ok(ControlReply::NodeList {
                nodes: self.peer_rows(),
            }),
            ControlRequest::NodeRemove { node, if_version } => {
                if node.trim().len() < 4 {
                    return Err(cerr(format!(
                        "{node:?} is too short to name the node to remove: give at least 4 characters of its id (see 'qu node list')"
                    )));
                }
                let node = self.resolve_member(&node)?;
                let (summary, version) = self.remove_node(node, if_version).await.map_err(cerr)?;
                Ok(ControlReply::Mutated { summary, version })
            }
            ControlRequest::CheckAdd { spec, if_version } => {
                let check = self.check_from_spec(spec)?;
                mutated(
                    self.propose(Request {
                        if_version,
                        request_id: None,
                        at_ms: None,
                        command: Command::Config(ConfigCommand::AddCheck { check }),
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
                    checks: self.check_rows_marked(&state.state),
                })
            }
            ControlRequest::CheckList { linearizable: true } => {
                match self.on_leader(LeaderOp::ReadChecks).await.map_err(cerr)? {
                    LeaderReply::Checks { version, checks } => {
                        Ok(ControlReply::CheckList { version, checks })
                    }
                    other => Err(cerr(format!("unexpected reply from the leader: {other:?}"))),
                }
            }

            ControlRequest::CheckShow { id_or_name } => self.check_show(&id_or_name).await,
            ControlRequest::CheckPause {
                id_or_name,
                paused,
                if_version,
            } => mutated(
                self.propose(Request {
                    if_version,
                    request_id: None,
                    at_ms: None,
                    command: Command::Config(ConfigCommand::SetPaused { id_or_name, paused }),
                })
                .await,
            ),
            ControlRequest::CheckRemove {
                id_or_name,
                if_version,
            } => mutated(
                self.propose(Request {
                    if_version,
                    request_id: None,
                    at_ms: None,
                    command: Command::Config(ConfigCommand::RemoveCheck { id_or_name }),
                })
                .await,
            ),
            ControlRequest::AlertAdd { spec, if_version } => {
                let alert = alert_from_spec(spec)?;
                mutated(
                    self.propose(Request {
                        if_version,
                        request_id: None,
                        at_ms: None,
                        command: Command::Config(ConfigCommand::AddAlert { alert }),
                    })
                    .await,
                )
            }
            ControlRequest::AlertTest { id_or_name } => {
                match self
                    .on_leader(LeaderOp::AlertTest { id_or_name })
                    .await
                    .map_err(cerr)?
                {
                    LeaderReply::AlertTested { message } => {
                        Ok(ControlReply::AlertTested { message })
                    }
                    other => Err(cerr(format!("unexpected reply from the leader: {other:?}"))),
                }
            }
            ControlRequest::AlertLog => Ok(ControlReply::AlertLog {
                deliveries: self.alert_log().await,
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
                    request_id: None,
                    at_ms: None,
                    command: Command::Config(ConfigCommand::RemoveAlert { id_or_name, force }),
                })
                .await,
            ),
            ControlRequest::CheckEdit {
                id_or_name,
                patch,
                if_version,
            } => {
                admit_check_patch(&patch)?;
                self.admit_edited_check(&id_or_name, &patch)?;
                self.config(if_version, ConfigCommand::EditCheck { id_or_name, patch })
                    .await
            }
            ControlRequest::CheckTest { subject } => self.check_test(subject).await,
            ControlRequest::AlertEdit {
                id_or_name,
                patch,
                if_version,
            } => {
                admit_alert_patch(&patch)?;
                self.config(if_version, ConfigCommand::EditAlert { id_or_name, patch })
                    .await
            }
            ControlRequest::SilenceAdd { spec, if_version } => {
                let silence = silence_from_spec(spec, now_ms())?;
                let until = super::view::rfc3339(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(silence.end_ms),
                );
                match self
                    .config(if_version, ConfigCommand::AddSilence { silence })
                    .await?
                {
                    ControlReply::Mutated { summary, version } => Ok(ControlReply::Mutated {
                        summary: format!("{summary} until {until}"),
                        version,
                    }),
                    other => Ok(other),
                }
            }
            ControlRequest::ResolversSet {
                resolvers,
                if_version,
            } => {
                let resolvers: Vec<String> =
                    resolvers.iter().map(|r| r.trim().to_string()).collect();
                qu_raft::kinds::validate_resolvers(&resolvers).map_err(cerr)?;
                self.config(if_version, ConfigCommand::SetResolvers { resolvers })
                    .await
            }
            ControlRequest::RetentionSet {
                retention_ms,
                if_version,
            } => {
                qu_raft::history::validate_retention(retention_ms).map_err(cerr)?;
                self.config(if_version, ConfigCommand::SetRetention { retention_ms })
                    .await
            }
            ControlRequest::RetentionShow => {
                let state = self.state();
                Ok(ControlReply::Retention {
                    version: state.state.version,
                    retention_ms: state.state.retention(),
                    default: state.state.retention_ms == 0,
                })
            }
            ControlRequest::CheckHistory {
                id_or_name,
                since_ms,
            } => {
                let state = self.state();
                let from = now_ms().saturating_sub(since_ms);
                let (id, name, events) =
                    super::history::history_rows(&state.state, &id_or_name, from)?;
                Ok(ControlReply::CheckHistory {
                    id,
                    name,
                    since_ms: from,
                    events,
                })
            }
            ControlRequest::Report { since_ms, checks } => {
                let state = self.state();
                let to = now_ms();
                let report =
                    super::history::report(&state.state, &checks, to.saturating_sub(since_ms), to)?;
                Ok(ControlReply::Report(Box::new(report)))
            }
            ControlRequest::ResolversShow => {
                let state = self.state();
                Ok(ControlReply::Resolvers {
                    version: state.state.version,
                    resolvers: state.state.resolvers.clone(),
                })
            }
            ControlRequest::SilenceList => Ok(ControlReply::SilenceList {
                silences: super::view::silence_rows(&self.state().state),
            }),
            ControlRequest::SilenceRemove { id, if_version } => {
                self.config(
                    if_version,
                    ConfigCommand::RemoveSilence {
                        id,
                        at_ms: now_ms(),
                    },
                )
                .await
            }
            ControlRequest::MaintenanceAdd { spec, if_version } => {
                let window = window_from_spec(spec, now_ms())?;
                self.config(if_version, ConfigCommand::AddWindow { window })
                    .await
            }
            ControlRequest::MaintenanceList => Ok(ControlReply::MaintenanceList {
                windows: super::view::window_rows(&self.state().state, now_ms()),
            }),
            ControlRequest::MaintenanceRemove {
                id_or_name,
                if_version,
            } => {
                self.config(
                    if_version,
                    ConfigCommand::RemoveWindow {
                        id_or_name,
                        at_ms: now_ms(),
                    },
                )
                .await
            }
        }
    }

    /// Proposes a configuration change through the leader and answers
    /// with what it did.
    async fn config(
        &self,
        if_version: Option<u64>,
        command: ConfigCommand,
    ) -> Result<ControlReply, ControlError> {
        mutated(
            self.propose(Request {
                if_version,
                request_id: None,
                at_ms: None,
                command: Command::Config(command),
            })
            .await,
        )
    }

    async fn check_show(&self, key: &str) -> Result<ControlReply, ControlError> {
        let state = self.state();
        let check =
            qu_raft::model::lookup_by_id_or_name(&state.state.checks, key, "check", |c| &c.name)
                .cloned()
                .map_err(|e| cerr(e.message))?;
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
        // The leader's last round and every member's rollups, asked at once.
        let last_round = async {
            match self.leader() {
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
            }
        };
        let (last_round, latency) = tokio::join!(last_round, self.latency_rows(&check.id));
        let schedule = crate::checks::rounds::Schedule::for_check(&check);
        Ok(ControlReply::CheckShow(Box::new(
            super::control::CheckDetail {
                check: row,
                last_transition: cs.last,
                flips: cs.flips,
                last_round,
                missed_rounds: self.scheduler_stats.missed(&check.id),
                local_probe: self.scheduler_stats.last_probe(&check.id),
                latency,
                round_offset_ms: schedule.offset_ms,
                interval_ms: schedule.interval_ms,
                timeout_ms: schedule.timeout_ms,
            },
        )))
    }

    /// The replicated ledger, with what the leader knows of the pending
    /// deliveries (attempts, last error, next retry) and its test pages.
    /// Without an answer from the leader within 2 s, the ledger alone.
    async fn alert_log(&self) -> Vec<super::control::DeliveryRow> {
        let mut rows = self.delivery_rows();
        let progress = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            self.on_leader(LeaderOp::DeliveryProgress),
        )
        .await;
        let Ok(Ok(LeaderReply::Progress { deliveries, tests })) = progress else {
            return rows;
        };
        let at = |ms: u64| {
            super::view::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        };
        for row in rows.iter_mut().filter(|r| r.status == "pending") {
            if let Some(p) = deliveries.get(&row.id) {
                row.attempts = p.attempts;
                row.reason = p.last_error.clone();
                row.next_retry = p.next_retry_ms.map(at);
            }
        }
        let mut tested: Vec<super::control::DeliveryRow> = tests
            .into_iter()
            .rev()
            .map(|t| super::control::DeliveryRow {
                id: format!("test-{}", t.at_ms),
                check: "-".into(),
                event: "TEST".into(),
                alert: t.alert,
                status: if t.ok { "delivered" } else { "failed" }.into(),
                created: at(t.at_ms),
                settled: Some(at(t.at_ms)),
                attempts: 1,
                reason: t.reason,
                next_retry: None,
            })
            .collect();
        // Newest first, as the ledger rows are.
        tested.append(&mut rows);
        tested.sort_by(|a, b| b.created.cmp(&a.created));
        tested
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

    /// The check as proposed: alert *names* (or ids) as given; the leader
    /// resolves them against its own state (a name just added on this
    /// node may not have reached this node's state yet).
    fn check_from_spec(&self, spec: CheckSpec) -> Result<Check, ControlError> {
        let mut alerts = alert_names(&spec.alerts)?;
        if spec.default_alerts && alerts.is_empty() {
            alerts.push(super::cluster::DEFAULT_ALERTS.to_string());
        }
        let check = Check {
            id: super::cluster::random_hex(4),
            name: spec.name,
            kind: spec.kind,
            interval_ms: spec.interval_ms,
            timeout_ms: spec.timeout_ms,
            alerts,
            paused: false,
        };
        crate::checks::admit::admit_kind(&check.kind).map_err(cerr)?;
        check.validate().map_err(cerr)?;
        Ok(check)
    }

    /// The entry rules (patterns, PEM) of the check an edit would make,
    /// judged on this node's copy; a check this node does not know yet is
    /// left to the state machine to refuse or apply.
    fn admit_edited_check(
        &self,
        id_or_name: &str,
        patch: &qu_raft::patch::Patch,
    ) -> Result<(), ControlError> {
        let state = self.state();
        let Ok(before) =
            qu_raft::model::lookup_by_id_or_name(&state.state.checks, id_or_name, "check", |c| {
                &c.name
            })
        else {
            return Ok(());
        };
        let what = format!("{} check", before.kind.type_name());
        let Ok(after) = qu_raft::patch::patched(before, patch, &what, qu_raft::state::CHECK_FIXED)
        else {
            return Ok(());
        };
        crate::checks::admit::admit_kind(&after.kind).map_err(cerr)
    }

    async fn trust_remove(
        self: &Arc<Self>,
        text: &str,
        force: bool,
    ) -> Result<ControlReply, ControlError> {
        let node = NodeId::resolve(text, self.trust.current().node_ids().iter())
            .map_err(|e| cerr(format!("{e} (see 'qu trust list')")))?;
        if !force && self.state().state.peers.contains_key(&node) {
            return Err(cerr(format!(
                "node {node} is a current cluster member: dropping its pin would only cut it off from this node (until the membership changes or qu restarts) while it stays a voter. To take it out of the cluster, run 'qu node remove {node}'; to drop the pin anyway, add --force"
            )));
        }
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

fn now_ms() -> u64 {
    crate::checks::scheduler::now_ms()
}

/// `--alerts` as given: trimmed, valid names, each once.
fn alert_names(given: &[String]) -> Result<Vec<String>, ControlError> {
    let mut alerts: Vec<String> = Vec::new();
    for name in given.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        qu_raft::model::validate_name("--alerts", name).map_err(cerr)?;
        if !alerts.iter().any(|a| a == name) {
            alerts.push(name.to_string());
        }
    }
    Ok(alerts)
}

/// The entry-only rules for a check edit (as for a new check).
fn admit_check_patch(patch: &qu_raft::patch::Patch) -> Result<(), ControlError> {
    if let Some(serde_json::Value::String(url)) = patch.0.get("url") {
        qu_raft::model::admit_url("--url", url).map_err(cerr)?;
    }
    if let Some(serde_json::Value::String(name)) = patch.0.get("name") {
        qu_raft::model::validate_name("--name", name).map_err(cerr)?;
    }
    if let Some(serde_json::Value::Array(names)) = patch.0.get("alerts") {
        let names: Vec<String> = names
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        alert_names(&names)?;
    }
    Ok(())
}

/// The entry-only rules for an alert edit (as for a new alert).
fn admit_alert_patch(patch: &qu_raft::patch::Patch) -> Result<(), ControlError> {
    for field in ["url", "webhook", "homeserver", "api_url"] {
        if let Some(serde_json::Value::String(url)) = patch.0.get(field) {
            qu_raft::model::admit_url(&format!("--{}", field.replace('_', "-")), url)
                .map_err(cerr)?;
        }
    }
    let template = |field: &str| match patch.0.get(field) {
        Some(serde_json::Value::String(t)) => Some(t.as_str()),
        _ => None,
    };
    check_templates(template("title"), template("body"))
}

/// A silence from `now_ms` to its end; checks still by name.
fn silence_from_spec(
    spec: super::control::SilenceSpec,
    now_ms: u64,
) -> Result<qu_raft::mute::Silence, ControlError> {
    let end_ms = match (spec.for_ms, spec.until_ms) {
        (Some(0), None) => {
            return Err(cerr(
                "--for: must be a positive duration, e.g. --for 2h",
            ))
        }
        (Some(f), None) => now_ms.saturating_add(f),
        (None, Some(u)) if u <= now_ms => {
            return Err(cerr(
                "--until: that time has passed; give a time in the future (RFC 3339, e.g. 2026-12-24T18:00:00Z)",
            ))
        }
        (None, Some(u)) => u,
        _ => return Err(cerr("give exactly one of --for DURATION or --until TIME")),
    };
    if spec.all != spec.checks.is_empty() {
        return Err(cerr("name the checks to silence, or --all (not both)"));
    }
    let silence = qu_raft::mute::Silence {
        id: super::cluster::random_hex(4),
        checks: spec.checks,
        all: spec.all,
        start_ms: now_ms,
        end_ms,
        reason: spec.reason,
        window: None,
    };
    silence.validate().map_err(cerr)?;
    Ok(silence)
}

/// A maintenance window, its schedule and zone checked; checks by name.
fn window_from_spec(
    spec: super::control::WindowSpec,
    now_ms: u64,
) -> Result<qu_raft::mute::Maintenance, ControlError> {
    crate::alerts::maintenance::admit(&spec.every, &spec.tz, now_ms).map_err(cerr)?;
    if spec.all != spec.checks.is_empty() {
        return Err(cerr(
            "name the checks the window covers, or --all (not both)",
        ));
    }
    let window = qu_raft::mute::Maintenance {
        id: super::cluster::random_hex(4),
        name: spec.name,
        every: spec.every.trim().to_string(),
        duration_ms: spec.duration_ms,
        tz: spec.tz,
        checks: spec.checks,
        all: spec.all,
        last_opened_ms: None,
    };
    window.validate().map_err(cerr)?;
    Ok(window)
}

fn alert_from_spec(spec: AlertSpec) -> Result<Alert, ControlError> {
    let alert = Alert {
        id: super::cluster::random_hex(4),
        name: spec.name,
        kind: spec.kind,
        disabled: false,
        default: spec.default,
        repeat_ms: spec.repeat_ms,
        title: spec.title,
        body: spec.body,
        on: spec.on,
        after_ms: spec.after_ms,
    };
    use qu_raft::model::AlertKind;
    let urls: Vec<(&str, &str)> = match &alert.kind {
        AlertKind::Webhook { url, .. } => vec![("--url", url)],
        AlertKind::Discord { webhook }
        | AlertKind::Slack { webhook }
        | AlertKind::Teams { webhook } => vec![("--webhook", webhook)],
        AlertKind::Ntfy { url, .. } | AlertKind::Gotify { url, .. } => vec![("--url", url)],
        AlertKind::Matrix { homeserver, .. } => vec![("--homeserver", homeserver)],
        AlertKind::Telegram { api_url, .. }
        | AlertKind::Pagerduty { api_url, .. }
        | AlertKind::Opsgenie { api_url, .. }
        | AlertKind::Pushover { api_url, .. } => {
            api_url.iter().map(|u| ("--api-url", u.as_str())).collect()
        }
        AlertKind::Smtp { .. } => vec![],
    };
    for (flag, url) in urls {
        qu_raft::model::admit_url(flag, url).map_err(cerr)?;
    }
    alert.validate().map_err(cerr)?;
    check_templates(alert.title.as_deref(), alert.body.as_deref())?;
    Ok(alert)
}

/// Refuses a `--title` / `--body` template that does not render (syntax,
/// unknown filter or field), with its line and column.
fn check_templates(title: Option<&str>, body: Option<&str>) -> Result<(), ControlError> {
    for (flag, t) in [("--title", title), ("--body", body)] {
        if let Some(t) = t {
            crate::alerts::template::check(flag, t).map_err(|e| cerr(e.to_string()))?;
        }
    }
    Ok(())
}
