//! The leader's silence duty: ends silences whose time is up, opens
//! maintenance windows when their occurrence begins, and re-pages checks
//! that stay DOWN (`--repeat`), each by committing a record.
//!
//! Invariants: what is due is a pure function of (committed state, now)
//! (`due`), and every record it proposes is refused by the state machine
//! once done (an ended silence, an opened occurrence, a repeat number
//! already recorded), so a new leader that re-plans after a failover
//! neither loses nor doubles one. Only the leader decides; followers learn
//! the outcome from the log.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::Daemon;
use crate::alerts::maintenance::{zone, Recurrence};
use crate::checks::scheduler::now_ms;
use qu_raft::model::Health;
use qu_raft::mute::muted_by;
use qu_raft::state::{ClusterState, RecordCommand, Request};

/// How often the leader looks at what is due.
const TICK: Duration = Duration::from_millis(250);

/// The records due at `now_ms`.
pub(super) fn due(s: &ClusterState, now_ms: u64) -> Vec<RecordCommand> {
    let mut out = Vec::new();
    let ended: Vec<String> = s
        .silences
        .values()
        .filter(|m| m.end_ms <= now_ms)
        .map(|m| m.id.clone())
        .collect();
    if !ended.is_empty() {
        out.push(RecordCommand::EndSilences {
            ids: ended,
            at_ms: now_ms,
        });
    }
    for w in s.windows.values() {
        let (Ok(r), Ok(tz)) = (Recurrence::parse(&w.every), zone(&w.tz)) else {
            continue;
        };
        if let Some((start, end)) = r.current_or_next(&tz, w.duration_ms, now_ms) {
            let open_now = start <= now_ms && now_ms < end;
            if open_now && w.last_opened_ms.is_none_or(|last| last < start) {
                out.push(RecordCommand::OpenWindow {
                    window_id: w.id.clone(),
                    start_ms: start,
                });
            }
        }
    }
    for (check_id, st) in s.check_states.iter() {
        if st.health != Health::Down {
            continue;
        }
        let (Some(check), Some(since)) = (s.checks.get(check_id), st.since_ms) else {
            continue;
        };
        if check.paused || muted_by(&s.silences, check_id).is_some() {
            continue;
        }
        for alert_id in &check.alerts {
            let Some(every) = s
                .alerts
                .get(alert_id)
                .filter(|a| !a.disabled)
                .and_then(|a| a.repeat_ms)
                .filter(|r| *r > 0)
            else {
                continue;
            };
            let n = now_ms.saturating_sub(since) / every;
            if n > st.repeats.get(alert_id).copied().unwrap_or(0)
                && s.repeat_allowed(check_id, alert_id, now_ms)
            {
                out.push(RecordCommand::Repeat {
                    check_id: check_id.clone(),
                    alert_id: alert_id.clone(),
                    n,
                    at_ms: now_ms,
                });
            }
        }
    }
    out
}

/// The duty: while leading, commit what is due.
pub(super) async fn muting_loop(daemon: Arc<Daemon>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        let state = daemon.state();
        for record in due(&state.state, now_ms()) {
            let what = Request::new(record.clone()).to_string();
            let deadline = Instant::now() + super::cluster::MUTATION_TIMEOUT;
            match daemon
                .propose_as_leader(Request::new(record), deadline)
                .await
            {
                Ok(_) => {}
                // Done meanwhile (or no longer due): the others still are.
                Err(super::rpc::ClusterFailure::Refused(why)) => {
                    tracing::debug!(%what, %why, "not due any more");
                }
                Err(e) => {
                    tracing::debug!(%what, error = %e, "could not commit; retrying at the next tick");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qu_raft::model::{Alert, AlertKind, Check, CheckKind, TransitionRecord};
    use qu_raft::mute::{Maintenance, Silence};
    use qu_raft::state::{ConfigCommand, Response};
    use qu_raft::NodeId;

    fn cluster(repeat_ms: Option<u64>) -> ClusterState {
        let mut s = ClusterState::default();
        let mut ok = |cmd: ConfigCommand| {
            let r = s.apply(&Request::new(cmd)).0;
            assert!(matches!(r, Response::Applied { .. }), "{r:?}");
        };
        ok(ConfigCommand::Bootstrap {
            cluster_id: "c".into(),
            founder: qu_raft::model::Peer {
                node_id: NodeId(1),
                advertise: "127.0.0.1:9001".into(),
                fingerprint: "SHA256:x".into(),
                cert: String::new(),
            },
        });
        ok(ConfigCommand::AddAlert {
            alert: Alert {
                id: "a1".into(),
                name: "pager".into(),
                kind: AlertKind::Webhook {
                    url: "https://hooks.example.com/x".into(),
                    headers: vec![],
                },
                disabled: false,
                default: false,
                repeat_ms,
                title: None,
                body: None,
                on: None,
                after_ms: None,
            },
        });
        ok(ConfigCommand::AddCheck {
            check: Check {
                id: "c1".into(),
                name: "web".into(),
                kind: CheckKind::tcp("db:5432"),
                interval_ms: 1_000,
                timeout_ms: 500,
                alerts: vec!["a1".into()],
                paused: false,
            },
        });
        s
    }

    fn flip(s: &mut ClusterState, from: Health, to: Health, at_ms: u64) {
        let r = s
            .apply(&Request::new(RecordCommand::Transition {
                check_id: "c1".into(),
                record: TransitionRecord {
                    round: at_ms / 1000,
                    from,
                    to,
                    at_ms,
                    voters: 1,
                    evidence: vec![],
                },
            }))
            .0;
        assert!(matches!(r, Response::Applied { .. }), "{r:?}");
    }

    /// Something that happens to the state at an instant (a flip).
    type Event = (u64, Box<dyn FnOnce(&mut ClusterState)>);

    /// Runs the duty's plan-and-commit on tokio's paused clock from
    /// `base_ms` until `until_ms`, with `events` applied at their instant.
    async fn run(s: &mut ClusterState, base_ms: u64, until_ms: u64, mut events: Vec<Event>) {
        let start = Instant::now();
        events.sort_by_key(|(at, _)| *at);
        let mut events = events.into_iter().peekable();
        loop {
            let now = base_ms + start.elapsed().as_millis() as u64;
            while events.peek().is_some_and(|(at, _)| *at <= now) {
                if let Some((_, e)) = events.next() {
                    e(s);
                }
            }
            if now >= until_ms {
                return;
            }
            for record in due(s, now) {
                s.apply(&Request::new(record));
            }
            tokio::time::sleep(TICK).await;
        }
    }

    fn repeats(s: &ClusterState) -> Vec<String> {
        s.deliveries
            .values()
            .filter(|d| d.note.starts_with("repeat"))
            .map(|d| d.id.clone())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn repeat_every_2s_over_a_7s_outage_pages_3_times_and_none_after() {
        let mut s = cluster(Some(2_000));
        let t0 = 1_000_000;
        flip(&mut s, Health::Unknown, Health::Down, t0);
        run(
            &mut s,
            t0,
            t0 + 20_000,
            vec![(
                t0 + 7_000,
                Box::new(move |s: &mut ClusterState| flip(s, Health::Down, Health::Up, t0 + 7_000)),
            )],
        )
        .await;
        assert_eq!(
            repeats(&s),
            vec!["c1-1-a1-r1", "c1-1-a1-r2", "c1-1-a1-r3"],
            "at 2 s, 4 s and 6 s of the outage, none after"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_repeat_without_repeat_or_while_silenced() {
        let mut s = cluster(None);
        let t0 = 1_000_000;
        flip(&mut s, Health::Unknown, Health::Down, t0);
        run(&mut s, t0, t0 + 10_000, vec![]).await;
        assert!(repeats(&s).is_empty());

        let mut s = cluster(Some(2_000));
        flip(&mut s, Health::Unknown, Health::Up, t0 - 1);
        let r = s.apply(&Request::new(ConfigCommand::AddSilence {
            silence: Silence {
                id: "s1".into(),
                checks: vec!["c1".into()],
                all: false,
                start_ms: t0,
                end_ms: t0 + 5_000,
                reason: String::new(),
                window: None,
            },
        }));
        assert!(matches!(r.0, Response::Applied { .. }));
        flip(&mut s, Health::Up, Health::Down, t0 + 100);
        run(&mut s, t0 + 100, t0 + 4_900, vec![]).await;
        assert!(repeats(&s).is_empty(), "silenced: no repeats");
        assert!(s.silences.contains_key("s1"));
        // The silence ends (committed by the duty), the DOWN page owed goes
        // out once, and repeats go on from the outage's own schedule.
        run(&mut s, t0 + 4_900, t0 + 7_000, vec![]).await;
        assert!(s.silences.is_empty());
        let owed: Vec<_> = s
            .deliveries
            .values()
            .filter(|d| d.note == "silence ended")
            .collect();
        assert_eq!(owed.len(), 1);
        assert!(owed[0].is_pending());
        assert_eq!(repeats(&s).len(), 1, "{:?}", repeats(&s));
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_opens_at_its_start_and_ends_after_its_duration() {
        let mut s = cluster(None);
        let r = s.apply(&Request::new(ConfigCommand::AddWindow {
            window: Maintenance {
                id: "w1".into(),
                name: "nightly".into(),
                every: "daily 02:00".into(),
                duration_ms: 60_000,
                tz: "UTC".into(),
                checks: vec![],
                all: true,
                last_opened_ms: None,
            },
        }));
        assert!(matches!(r.0, Response::Applied { .. }));
        // 2026-12-02T01:59:50Z
        let before = 1_796_176_790_000;
        let start = before + 10_000;
        run(&mut s, before, start - 1, vec![]).await;
        assert!(s.silences.is_empty(), "not open before its start");
        run(&mut s, start - 1, start + 500, vec![]).await;
        let id = format!("w1@{start}");
        assert!(s.silences.contains_key(&id), "{:?}", s.silences.keys());
        assert_eq!(s.windows["w1"].last_opened_ms, Some(start));
        run(&mut s, start + 500, start + 61_000, vec![]).await;
        assert!(s.silences.is_empty(), "ended after its duration");
        // Not reopened later the same day.
        run(&mut s, start + 61_000, start + 70_000, vec![]).await;
        assert!(s.silences.is_empty());
    }
}
