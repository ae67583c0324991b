//! Level 4: each check's history as `apply` writes it (added, flips,
//! pauses, restarts, removal), ended silences, retention and its pruning.

use super::*;
use crate::history::{uptime, HistoryKind};
use crate::model::CheckKind;
use crate::mute::Silence;
use crate::patch::Patch;

const M: u64 = 60_000;

fn at(at_ms: u64, cmd: impl Into<Command>) -> Request {
    Request {
        at_ms: Some(at_ms),
        ..Request::new(cmd)
    }
}

fn ok(s: &mut ClusterState, req: Request) {
    let (r, _) = s.apply(&req);
    assert!(matches!(r, Response::Applied { .. }), "{req}: {r:?}");
}

fn cluster_with_check() -> ClusterState {
    let mut s = ClusterState::default();
    ok(
        &mut s,
        Request::new(ConfigCommand::Bootstrap {
            cluster_id: "c".into(),
            founder: Peer {
                node_id: NodeId(1),
                advertise: "127.0.0.1:9001".into(),
                fingerprint: "SHA256:fp1".into(),
                cert: String::new(),
            },
        }),
    );
    ok(
        &mut s,
        at(
            0,
            ConfigCommand::AddCheck {
                check: Check {
                    id: "k1".into(),
                    name: "db".into(),
                    kind: CheckKind::tcp("db:5432"),
                    interval_ms: 30_000,
                    timeout_ms: 10_000,
                    alerts: vec![],
                    paused: false,
                },
            },
        ),
    );
    s
}

fn flip(at_ms: u64, from: Health, to: Health) -> Request {
    Request::new(RecordCommand::Transition {
        check_id: "k1".into(),
        record: TransitionRecord {
            round: at_ms / 30_000,
            from,
            to,
            at_ms,
            voters: 3,
            evidence: vec![],
        },
    })
}

fn kinds(s: &ClusterState) -> Vec<&'static str> {
    s.history["k1"]
        .events
        .iter()
        .map(|e| match e.what {
            HistoryKind::Added => "added",
            HistoryKind::Flip { .. } => "flip",
            HistoryKind::Paused => "paused",
            HistoryKind::Resumed => "resumed",
            HistoryKind::Restarted { .. } => "restarted",
            HistoryKind::Baseline { .. } => "baseline",
        })
        .collect()
}

#[test]
fn apply_writes_each_change_of_state_into_the_history_and_touches_its_records() {
    let mut s = cluster_with_check();
    ok(&mut s, flip(M, Health::Unknown, Health::Up));
    let (_, touched) = s.apply(&flip(10 * M, Health::Up, Health::Down));
    assert!(touched.contains(&RecordKey::History("k1".into(), 2)));
    ok(
        &mut s,
        at(
            20 * M,
            ConfigCommand::SetPaused {
                id_or_name: "db".into(),
                paused: true,
            },
        ),
    );
    ok(
        &mut s,
        at(
            30 * M,
            ConfigCommand::SetPaused {
                id_or_name: "db".into(),
                paused: false,
            },
        ),
    );
    let mut patch = Patch::default();
    patch.set("target", "db2:5432");
    ok(
        &mut s,
        at(
            40 * M,
            ConfigCommand::EditCheck {
                id_or_name: "k1".into(),
                patch,
            },
        ),
    );
    // An edit that keeps the target leaves no event.
    let mut patch = Patch::default();
    patch.set("interval_ms", 60_000);
    ok(
        &mut s,
        at(
            41 * M,
            ConfigCommand::EditCheck {
                id_or_name: "k1".into(),
                patch,
            },
        ),
    );
    assert_eq!(
        kinds(&s),
        ["added", "flip", "flip", "paused", "resumed", "restarted"]
    );
    let u = uptime(&s.history["k1"].events, &[], 0, 60 * M);
    assert_eq!(u.up_ms, 9 * M);
    assert_eq!(u.down_ms, 10 * M);
    assert_eq!(u.paused_ms, 10 * M);
    assert_eq!(u.unknown_ms, M + 30 * M);
    // Removing the check removes its history, record by record.
    let (_, touched) = s.apply(&Request::new(ConfigCommand::RemoveCheck {
        id_or_name: "k1".into(),
    }));
    assert!(!s.history.contains_key("k1"));
    for seq in 0..6 {
        assert!(touched.contains(&RecordKey::History("k1".into(), seq)));
    }
}

#[test]
fn an_entry_without_a_time_leaves_no_event() {
    let mut s = cluster_with_check();
    ok(
        &mut s,
        Request::new(ConfigCommand::SetPaused {
            id_or_name: "db".into(),
            paused: true,
        }),
    );
    assert_eq!(kinds(&s), ["added"]);
}

#[test]
fn ended_silences_are_kept_with_their_real_span() {
    let mut s = cluster_with_check();
    ok(
        &mut s,
        Request::new(ConfigCommand::AddSilence {
            silence: Silence {
                id: "s1".into(),
                checks: vec!["k1".into()],
                all: false,
                start_ms: 10 * M,
                end_ms: 50 * M,
                reason: String::new(),
                window: None,
            },
        }),
    );
    ok(
        &mut s,
        Request::new(ConfigCommand::RemoveSilence {
            id: "s1".into(),
            at_ms: 20 * M,
        }),
    );
    let past: Vec<_> = s.past_silences.values().collect();
    assert_eq!(past.len(), 1);
    assert_eq!((past[0].start_ms, past[0].end_ms), (10 * M, 20 * M));
    let spans =
        crate::history::silenced_spans(s.past_silences.values(), s.silences.values(), "k1", 60 * M);
    assert_eq!(spans, vec![(10 * M, 20 * M)]);
    assert!(crate::history::silenced_spans(
        s.past_silences.values(),
        s.silences.values(),
        "other",
        60 * M
    )
    .is_empty());
}

#[test]
fn retention_is_validated_and_pruning_is_deterministic() {
    let mut s = cluster_with_check();
    assert_eq!(s.retention(), crate::history::DEFAULT_RETENTION_MS);
    let (r, _) = s.apply(&Request::new(ConfigCommand::SetRetention {
        retention_ms: 1000,
    }));
    let Response::Refused { refusal, .. } = r else {
        panic!("{r:?}");
    };
    assert!(refusal.to_string().contains("retention"), "{refusal}");
    let v = s.version;
    ok(
        &mut s,
        Request::new(ConfigCommand::SetRetention {
            retention_ms: 7 * 86_400_000,
        }),
    );
    assert_eq!((s.retention(), s.version), (7 * 86_400_000, v + 1));
    let (r, _) = s.apply(&Request::new(ConfigCommand::SetRetention {
        retention_ms: 7 * 86_400_000,
    }));
    assert!(matches!(r, Response::Unchanged { .. }), "{r:?}");

    ok(&mut s, flip(M, Health::Unknown, Health::Down));
    ok(&mut s, flip(10 * M, Health::Down, Health::Up));
    let mut twin = s.clone();
    assert!(s.history_needs_prune(5 * M));
    ok(
        &mut s,
        Request::new(RecordCommand::PruneHistory { before_ms: 5 * M }),
    );
    ok(
        &mut twin,
        Request::new(RecordCommand::PruneHistory { before_ms: 5 * M }),
    );
    assert_eq!(s, twin, "the same log gives the same state");
    assert_eq!(kinds(&s), ["baseline", "flip"]);
    assert!(!s.history_needs_prune(5 * M));
    assert_eq!(
        Command::from(RecordCommand::PruneHistory { before_ms: 0 }).level(),
        4
    );
    assert_eq!(
        Command::from(ConfigCommand::SetRetention { retention_ms: 0 }).level(),
        4
    );
}
