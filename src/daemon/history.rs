//! The replicated history as operators read it: `qu check history`, the
//! uptime columns of `qu check list`, `qu report`; and the leader's duty of
//! pruning it past the retention.
//!
//! Everything here reads the applied state only (never a node's own
//! probes), so every node answers the same for the same window.

use std::time::{Duration, UNIX_EPOCH};

use super::control::{ControlError, HistoryRow, Report, ReportRow, UptimeCols};
use super::Daemon;
use crate::ids::rfc3339;
use qu_raft::history::{HistoryEvent, HistoryKind};
use qu_raft::model::lookup_by_id_or_name;
use qu_raft::state::{ClusterState, RecordCommand, Request};

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// On the leader, about hourly: drops history past the retention when any
/// is due. Deterministic on every node: the cut is in the entry.
pub(super) async fn prune_due(daemon: &Daemon, state: &ClusterState) {
    let before_ms = crate::checks::scheduler::now_ms().saturating_sub(state.retention());
    if !state.history_needs_prune(before_ms) {
        return;
    }
    let deadline = tokio::time::Instant::now() + super::cluster::MUTATION_TIMEOUT;
    let req = Request::new(RecordCommand::PruneHistory { before_ms });
    if let Err(e) = daemon.propose_as_leader(req, deadline).await {
        tracing::debug!(error = %e, "could not prune the history yet");
    }
}

/// Uptime over the last 24 h, 7 d and 30 d, ending `now_ms`.
pub(super) fn uptime_cols(state: &ClusterState, check_id: &str, now_ms: u64) -> UptimeCols {
    let pct = |days: u64| {
        state
            .uptime_of(check_id, now_ms.saturating_sub(days * DAY_MS), now_ms)
            .percent()
    };
    UptimeCols {
        day: pct(1),
        week: pct(7),
        month: pct(30),
    }
}

/// A check's events since `since_ms`, oldest first.
pub(super) fn history_rows(
    state: &ClusterState,
    id_or_name: &str,
    since_ms: u64,
) -> Result<(String, String, Vec<HistoryRow>), ControlError> {
    let check = lookup_by_id_or_name(&state.checks, id_or_name, "check", |c| &c.name)
        .map_err(|e| ControlError::new(e.to_string()))?;
    let rows = state
        .history
        .get(&check.id)
        .map(|h| h.since(since_ms).map(history_row).collect())
        .unwrap_or_default();
    Ok((check.id.clone(), check.name.clone(), rows))
}

fn history_row(e: &HistoryEvent) -> HistoryRow {
    let at = rfc3339(UNIX_EPOCH + Duration::from_millis(e.at_ms));
    let row = |event: &str, state: String, detail: String| HistoryRow {
        at_ms: e.at_ms,
        at: at.clone(),
        event: event.into(),
        state,
        detail,
        round: None,
        evidence: vec![],
    };
    match &e.what {
        HistoryKind::Added => row("added", "unknown".into(), String::new()),
        HistoryKind::Flip {
            round,
            from,
            to,
            evidence,
            ..
        } => {
            let votes = e.transition().map(|t| t.votes()).unwrap_or_default();
            HistoryRow {
                round: Some(*round),
                evidence: evidence.clone(),
                ..row("flip", format!("{from} -> {to}"), votes)
            }
        }
        HistoryKind::Paused => row("paused", "paused".into(), String::new()),
        HistoryKind::Resumed => row("resumed", "unknown".into(), String::new()),
        HistoryKind::Restarted { note } => row("restarted", "unknown".into(), note.clone()),
        HistoryKind::Baseline { health, paused } => row(
            "baseline",
            if *paused {
                "paused".into()
            } else {
                health.to_string()
            },
            "older events pruned; the state they left".into(),
        ),
    }
}

/// `qu report`: every named check (all when none), by name.
pub(super) fn report(
    state: &ClusterState,
    names: &[String],
    from_ms: u64,
    to_ms: u64,
) -> Result<Report, ControlError> {
    let mut ids: Vec<String> = Vec::new();
    for n in names {
        let c = lookup_by_id_or_name(&state.checks, n, "check", |c| &c.name)
            .map_err(|e| ControlError::new(e.to_string()))?;
        if !ids.contains(&c.id) {
            ids.push(c.id.clone());
        }
    }
    let mut checks: Vec<ReportRow> = state
        .checks
        .values()
        .filter(|c| ids.is_empty() || ids.contains(&c.id))
        .map(|c| {
            let figures = state.uptime_of(&c.id, from_ms, to_ms);
            ReportRow {
                id: c.id.clone(),
                name: c.name.clone(),
                kind: c.kind.type_name().into(),
                uptime_percent: figures.percent(),
                figures,
            }
        })
        .collect();
    checks.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Report {
        from_ms,
        to_ms,
        checks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use qu_raft::model::Health;

    #[test]
    fn a_flip_row_names_the_states_votes_and_round() {
        let e = HistoryEvent {
            seq: 3,
            at_ms: 1_700_000_000_000,
            what: HistoryKind::Flip {
                round: 42,
                from: Health::Up,
                to: Health::Down,
                voters: 3,
                evidence: vec![qu_raft::model::Evidence {
                    node: qu_raft::NodeId(1),
                    ok: false,
                    reason: "connection refused".into(),
                    latency_ms: Some(1),
                    cert_not_after_ms: None,
                }],
            },
        };
        let r = history_row(&e);
        assert_eq!(r.event, "flip");
        assert_eq!(r.state, "up -> down");
        assert_eq!(r.detail, "1/3 down: connection refused");
        assert_eq!(r.round, Some(42));
        assert_eq!(r.at, "2023-11-14T22:13:20Z");
    }
}
