//! What listings and `qu status` show, assembled from Raft metrics, the
//! applied state and peer liveness.

use std::collections::BTreeSet;
use std::time::{Duration, UNIX_EPOCH};

use openraft::async_runtime::WatchReceiver;

use super::control::{AlertRow, CheckRow, PeerRow, RaftInfo, StatusReport};
use super::Daemon;
use crate::config::duration;
use qu_raft::model::Health;
use qu_raft::NodeId;

/// RFC 3339 UTC, second precision.
pub use crate::ids::rfc3339;

impl Daemon {
    pub(super) fn membership_word(&self) -> &'static str {
        match self.membership.standing() {
            super::claims::Standing::Fresh if self.state().state.cluster_id.is_some() => "member",
            standing => standing.word(),
        }
    }

    pub(super) fn peer_rows(&self) -> Vec<PeerRow> {
        let m = self.raft.metrics().borrow_watched().clone();
        let state = self.state();
        let voters: BTreeSet<NodeId> = m.membership_config.voter_ids().collect();
        let learners: BTreeSet<NodeId> = m.membership_config.membership().learner_ids().collect();
        let clocks = self.clock_assessment(&voters);
        let mut ids: BTreeSet<NodeId> = state.state.peers.keys().copied().collect();
        ids.extend(m.membership_config.nodes().map(|(id, _)| *id));
        ids.into_iter()
            .map(|id| {
                let advertise = state
                    .state
                    .peers
                    .get(&id)
                    .map(|p| p.advertise.clone())
                    .or_else(|| {
                        m.membership_config
                            .get_node(&id)
                            .map(|n| n.advertise.clone())
                    })
                    .unwrap_or_default();
                let role = if m.current_leader == Some(id) {
                    "leader"
                } else if voters.contains(&id) {
                    "follower"
                } else if learners.contains(&id) {
                    "learner"
                } else {
                    "-"
                };
                let matched = if id == self.me() && m.current_leader == Some(id) {
                    m.last_log_index
                } else {
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(&id))
                        .map(|l| l.as_ref().map(|l| l.index).unwrap_or(0))
                };
                let lag = matched.map(|mi| m.last_log_index.unwrap_or(0).saturating_sub(mi));
                PeerRow {
                    node_id: id,
                    advertise,
                    role: role.into(),
                    live: self.liveness.is_live(id),
                    last_seen: self.liveness.last_seen(id).map(rfc3339),
                    matched,
                    lag,
                    version: self.liveness.version(id),
                    clock_offset_ms: clocks.voters.get(&id).map(|c| c.deviation_ms),
                    clock_off: clocks.is_off(id),
                }
            })
            .collect()
    }

    /// The check rows of `state`, marked stale when this node sees no
    /// quorum (no verdict can be reached).
    pub(super) fn check_rows_marked(&self, state: &qu_raft::state::ClusterState) -> Vec<CheckRow> {
        let stale = !self.sees_quorum();
        let mut rows = check_rows_of(state);
        for r in &mut rows {
            r.stale = stale;
        }
        rows
    }

    pub(super) fn check_rows(&self) -> Vec<CheckRow> {
        self.check_rows_marked(&self.state().state)
    }

    /// A fresh node that never formed a cluster (it forms one on the
    /// first change).
    fn is_fresh(&self) -> bool {
        self.membership_word() == "fresh"
    }

    /// Whether this node sees a leader with a live majority of voters
    /// behind it (a fresh node counts as a one-node cluster).
    pub(super) fn sees_quorum(&self) -> bool {
        if self.is_fresh() {
            return true;
        }
        let m = self.raft.metrics().borrow_watched().clone();
        let voters: BTreeSet<NodeId> = m.membership_config.voter_ids().collect();
        let live = self.liveness.count_live(&voters);
        !voters.is_empty() && m.current_leader.is_some() && live > voters.len() / 2
    }

    pub(super) fn alert_rows(&self) -> Vec<AlertRow> {
        let state = self.state();
        let s = &state.state;
        let mut rows: Vec<AlertRow> = s
            .alerts
            .values()
            .map(|a| {
                let masked = a.kind.masked();
                let target = match &masked {
                    qu_raft::model::AlertKind::Webhook { url, .. } => url.clone(),
                    qu_raft::model::AlertKind::Discord { webhook } => webhook.clone(),
                    qu_raft::model::AlertKind::Smtp {
                        host,
                        port,
                        to,
                        starttls,
                        tls,
                        ..
                    } => {
                        let plain = if !starttls && !tls {
                            " (PLAIN TEXT: no TLS)"
                        } else {
                            ""
                        };
                        format!("{} via {host}:{port}{plain}", to.join(","))
                    }
                    qu_raft::model::AlertKind::Slack { webhook }
                    | qu_raft::model::AlertKind::Teams { webhook } => webhook.clone(),
                    qu_raft::model::AlertKind::Telegram { chat_id, .. } => {
                        format!("chat {chat_id}")
                    }
                    qu_raft::model::AlertKind::Pagerduty { severity, .. } => {
                        format!("Events API v2 ({severity})")
                    }
                    qu_raft::model::AlertKind::Opsgenie { region, .. } => {
                        format!("Alert API ({})", region.to_uppercase())
                    }
                    qu_raft::model::AlertKind::Ntfy { url, .. }
                    | qu_raft::model::AlertKind::Gotify { url, .. } => url.clone(),
                    qu_raft::model::AlertKind::Matrix {
                        homeserver, room, ..
                    } => format!("{room} on {homeserver}"),
                    qu_raft::model::AlertKind::Pushover { device, .. } => match device {
                        Some(d) => format!("device {d}"),
                        None => "all devices".into(),
                    },
                };
                AlertRow {
                    id: a.id.clone(),
                    name: a.name.clone(),
                    kind: a.kind.type_name().into(),
                    target,
                    used_by: s
                        .checks
                        .values()
                        .filter(|c| c.alerts.contains(&a.id))
                        .map(|c| c.name.clone())
                        .collect(),
                    spec: masked,
                    disabled: a.disabled,
                    default: a.default,
                    repeat: a
                        .repeat_ms
                        .map(|ms| duration::format(Duration::from_millis(ms))),
                    on: a
                        .on
                        .as_ref()
                        .map(|on| on.iter().map(|e| e.word()).collect::<Vec<_>>().join(",")),
                    after: a
                        .after_ms
                        .map(|ms| duration::format(Duration::from_millis(ms))),
                    title: a.title.clone(),
                    body: a.body.clone(),
                }
            })
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        rows
    }

    pub(super) fn delivery_rows(&self) -> Vec<super::control::DeliveryRow> {
        use qu_raft::model::DeliveryStatus;
        let state = self.state();
        let s = &state.state;
        let at = |ms: u64| rfc3339(UNIX_EPOCH + Duration::from_millis(ms));
        let mut rows: Vec<(u64, super::control::DeliveryRow)> = s
            .deliveries
            .values()
            .map(|d| {
                let (status, settled, attempts, reason) = match &d.status {
                    DeliveryStatus::Pending if d.awaits_release() => (
                        format!(
                            "delayed (--after; due {})",
                            at(d.not_before_ms.unwrap_or(d.created_ms))
                        ),
                        None,
                        0,
                        None,
                    ),
                    DeliveryStatus::Pending => ("pending".into(), None, 0, None),
                    DeliveryStatus::Delivered { at_ms, attempts } => {
                        ("delivered".into(), Some(at(*at_ms)), *attempts, None)
                    }
                    DeliveryStatus::Failed {
                        at_ms,
                        attempts,
                        reason,
                    } => (
                        "failed".into(),
                        Some(at(*at_ms)),
                        *attempts,
                        Some(reason.clone()),
                    ),
                    DeliveryStatus::Skipped { at_ms, reason } => {
                        (format!("skipped ({reason})"), Some(at(*at_ms)), 0, None)
                    }
                    DeliveryStatus::Silenced { at_ms, silence } => {
                        (format!("silenced ({silence})"), Some(at(*at_ms)), 0, None)
                    }
                };
                let event = if d.transition.to == Health::Down {
                    "DOWN"
                } else {
                    "RECOVERED"
                };
                let event = if d.note.is_empty() {
                    event.to_string()
                } else {
                    format!("{event} ({})", d.note)
                };
                (
                    d.created_ms,
                    super::control::DeliveryRow {
                        id: d.id.clone(),
                        check: d.check_name.clone(),
                        event,
                        alert: s
                            .alerts
                            .get(&d.alert_id)
                            .map(|a| a.name.clone())
                            .or_else(|| (!d.alert_name.is_empty()).then(|| d.alert_name.clone()))
                            .unwrap_or_else(|| d.alert_id.clone()),
                        status,
                        created: at(d.created_ms),
                        settled,
                        attempts,
                        reason,
                        next_retry: None,
                    },
                )
            })
            .collect();
        rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
        rows.into_iter().map(|(_, r)| r).collect()
    }

    /// Checks as of a state at least as new as anything committed before
    /// the call (ReadIndex confirmed by a quorum, then applied).
    pub(super) async fn read_checks_as_leader(&self) -> Result<(u64, Vec<CheckRow>), String> {
        use openraft::raft::ReadPolicy;
        if self.leader() != Some(self.me()) {
            return Err("not the leader".into());
        }
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            self.raft.ensure_linearizable(ReadPolicy::ReadIndex),
        )
        .await
        .map_err(|_| "no quorum confirmed the read in time".to_string())?
        .map_err(|e| format!("cannot read linearizably: {e}"))?;
        let _ = read;
        let state = self.state();
        Ok((state.state.version, check_rows_of(&state.state)))
    }

    pub(super) fn status(&self) -> StatusReport {
        let m = self.raft.metrics().borrow_watched().clone();
        let state = self.state();
        let voters: BTreeSet<NodeId> = m.membership_config.voter_ids().collect();
        let fresh = self.is_fresh();
        let (need, voter_count) = if fresh {
            (1, 1)
        } else {
            (voters.len() / 2 + 1, voters.len())
        };
        let quorum = self.sees_quorum();
        // Without quorum the leader openraft remembers may be long gone
        // (pre-vote keeps the term, so nothing clears it): say so.
        let (master, last_master) = if quorum {
            (m.current_leader, None)
        } else {
            (None, m.current_leader)
        };
        let last_master_seen_secs = last_master.and_then(|n| {
            if n == self.me() {
                Some(0)
            } else {
                self.liveness.seen_ago(n).map(|d| d.as_secs())
            }
        });
        let mut checks = check_rows_of(&state.state);
        for c in &mut checks {
            c.stale = !quorum;
        }
        StatusReport {
            node_id: self.me(),
            fingerprint: self.identity.fingerprint.to_string(),
            advertise: self.node.advertise.clone(),
            listen: self.listen.clone(),
            version: crate::version::LONG.to_string(),
            uptime_secs: self.started.elapsed().as_secs(),
            membership: self.membership_word().into(),
            cluster_id: state.state.cluster_id.clone(),
            term: m.current_term,
            master,
            last_master,
            last_master_seen_secs,
            quorum,
            need,
            voters: voter_count,
            config_version: state.state.version,
            peers: self.peer_rows(),
            checks,
            raft: RaftInfo {
                last_log_index: m.last_log_index,
                committed: m.local_committed.as_ref().map(|l| l.index),
                applied: m.last_applied.as_ref().map(|l| l.index),
                snapshot: m.snapshot.as_ref().map(|l| l.index),
                purged: m.purged.as_ref().map(|l| l.index),
            },
            policy: self.leadership.view(),
            probing: self.probing_info(m.current_leader == Some(self.me())),
            duties: self.supervisor.health(),
            alerting: super::control::AlertingInfo {
                sends_in_flight: self.alerting.sends_in_flight(),
                confirmation_rounds: self.confirmation_rounds(),
            },
            log_level: state.state.log_level,
            reads_log_level: super::reported_level(),
            clock_disagree: self
                .clock_assessment(&m.membership_config.voter_ids().collect())
                .disagree,
        }
    }

    fn probing_info(&self, leading: bool) -> super::control::ProbingInfo {
        use std::sync::atomic::Ordering::Relaxed;
        let st = &self.scheduler_stats;
        super::control::ProbingInfo {
            checks: st.scheduled.load(Relaxed),
            probes: st.probes.load(Relaxed),
            missed_rounds: st.missed_total.load(Relaxed),
            dropped_results: st.dropped_results.load(Relaxed),
            results_reported: st.results_reported.load(Relaxed),
            reports: st.reports.load(Relaxed),
            rounds: if leading {
                self.aggregator.lock().ok().map(|a| a.counters)
            } else {
                None
            },
        }
    }
}

/// Check rows from one state snapshot.
pub(super) fn check_rows_of(s: &qu_raft::state::ClusterState) -> Vec<CheckRow> {
    let now = crate::checks::scheduler::now_ms();
    let mut rows: Vec<CheckRow> = s
        .checks
        .values()
        .map(|c| {
            let cs = s.check_states.get(&c.id).cloned().unwrap_or_default();
            CheckRow {
                id: c.id.clone(),
                name: c.name.clone(),
                kind: c.kind.type_name().into(),
                target: c.kind.target(),
                interval: duration::format(Duration::from_millis(c.interval_ms)),
                timeout: duration::format(Duration::from_millis(c.timeout_ms)),
                state: match cs.health {
                    _ if c.paused => "paused",
                    Health::Unknown => "unknown",
                    Health::Up => "up",
                    Health::Down => "down",
                }
                .into(),
                since: cs
                    .since_ms
                    .map(|ms| rfc3339(UNIX_EPOCH + Duration::from_millis(ms))),
                votes: cs.last.as_ref().map(|t| t.votes()),
                alerts: c
                    .alerts
                    .iter()
                    .map(|a| {
                        s.alerts
                            .get(a)
                            .map(|a| a.name.clone())
                            .unwrap_or_else(|| a.clone())
                    })
                    .collect(),
                spec: c.kind.masked(),
                stale: false,
                paused: c.paused,
                muted: qu_raft::mute::muted_by(&s.silences, &c.id).map(|m| {
                    format!(
                        "{} until {}",
                        m.id,
                        rfc3339(UNIX_EPOCH + Duration::from_millis(m.end_ms))
                    )
                }),
                note: cs.note.clone(),
                uptime: super::history::uptime_cols(s, &c.id, now),
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

/// The names of checks `ids` (`*` for all), a removed one by its id.
fn check_names(s: &qu_raft::state::ClusterState, ids: &[String], all: bool) -> Vec<String> {
    if all {
        return vec!["*".to_string()];
    }
    ids.iter()
        .map(|id| {
            s.checks
                .get(id)
                .map(|c| c.name.clone())
                .unwrap_or_else(|| format!("{id} (removed)"))
        })
        .collect()
}

/// The active silences, soonest end first.
pub(super) fn silence_rows(s: &qu_raft::state::ClusterState) -> Vec<super::control::SilenceRow> {
    let at = |ms: u64| rfc3339(UNIX_EPOCH + Duration::from_millis(ms));
    let mut rows: Vec<(u64, super::control::SilenceRow)> = s
        .silences
        .values()
        .map(|m| {
            let checks = check_names(s, &m.checks, m.all);
            (
                m.end_ms,
                super::control::SilenceRow {
                    id: m.id.clone(),
                    checks,
                    all: m.all,
                    start: at(m.start_ms),
                    end: at(m.end_ms),
                    reason: m.reason.clone(),
                    window: m.window.as_ref().map(|w| {
                        s.windows
                            .get(w)
                            .map(|w| w.name.clone())
                            .unwrap_or_else(|| w.clone())
                    }),
                },
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    rows.into_iter().map(|(_, r)| r).collect()
}

/// The maintenance windows, with their current or next occurrence.
pub(super) fn window_rows(
    s: &qu_raft::state::ClusterState,
    now_ms: u64,
) -> Vec<super::control::WindowRow> {
    use crate::alerts::maintenance::{local, zone, Recurrence};
    let at = |ms: u64| rfc3339(UNIX_EPOCH + Duration::from_millis(ms));
    let mut rows: Vec<super::control::WindowRow> = s
        .windows
        .values()
        .map(|w| {
            let tz = zone(&w.tz).ok();
            let next = match (Recurrence::parse(&w.every), &tz) {
                (Ok(r), Some(tz)) => r.current_or_next(tz, w.duration_ms, now_ms),
                _ => None,
            };
            super::control::WindowRow {
                id: w.id.clone(),
                name: w.name.clone(),
                every: w.every.clone(),
                duration: duration::format(Duration::from_millis(w.duration_ms)),
                tz: w.tz.clone(),
                checks: check_names(s, &w.checks, w.all),
                all: w.all,
                open: s
                    .silences
                    .values()
                    .any(|m| m.window.as_deref() == Some(w.id.as_str())),
                next_start: next.map(|(a, _)| at(a)),
                next_end: next.map(|(_, b)| at(b)),
                next_local: match (next, &tz) {
                    (Some((a, _)), Some(tz)) => local(tz, a),
                    _ => None,
                },
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}
