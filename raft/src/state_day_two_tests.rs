//! Day-two commands of the state machine: edits, disabled alerts,
//! silences, maintenance windows and repeats.

use super::*;
use crate::model::HttpCheck;
use crate::model::{AlertKind, CheckKind, Evidence, Health};
use crate::mute::{Maintenance, Silence};
use crate::patch::Patch;

pub(super) fn peer() -> Peer {
    Peer {
        node_id: NodeId(1),
        advertise: "127.0.0.1:9001".into(),
        fingerprint: "SHA256:fp1".into(),
        cert: String::new(),
    }
}

pub(super) fn http_check(alerts: &[&str]) -> Check {
    Check {
        id: "c1".into(),
        name: "web".into(),
        kind: CheckKind::Http(Box::new(HttpCheck {
            url: "https://example.com/".into(),
            expect: None,
            body_match: None,
            insecure: false,
            ..HttpCheck::default()
        })),
        interval_ms: 30_000,
        timeout_ms: 10_000,
        alerts: alerts.iter().map(|a| a.to_string()).collect(),
        paused: false,
    }
}

pub(super) fn alert(id: &str, repeat_ms: Option<u64>) -> Alert {
    Alert {
        id: id.into(),
        name: format!("alert-{id}"),
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
    }
}

pub(super) fn apply(s: &mut ClusterState, cmd: impl Into<Command>) -> Response {
    s.apply(&Request::new(cmd)).0
}

pub(super) fn ok(s: &mut ClusterState, cmd: impl Into<Command>) {
    let cmd = cmd.into();
    let r = apply(s, cmd.clone());
    assert!(
        matches!(r, Response::Applied { .. }),
        "{} not applied: {r:?}",
        cmd.describe()
    );
}

/// Refused, naming `field`, and nothing changed.
pub(super) fn refused_naming(s: &mut ClusterState, cmd: impl Into<Command>, field: &str) {
    let before = s.clone();
    match apply(s, cmd) {
        Response::Refused {
            refusal: Refusal::Invalid(e),
            ..
        } => assert_eq!(e.field, field, "{e}"),
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(*s, before, "a refused command changed the state");
}

/// A cluster with check c1 (alerts a1, a2) and the two alerts.
pub(super) fn cluster() -> ClusterState {
    let mut s = ClusterState::default();
    ok(
        &mut s,
        ConfigCommand::Bootstrap {
            cluster_id: "c".into(),
            founder: peer(),
        },
    );
    ok(
        &mut s,
        ConfigCommand::AddAlert {
            alert: alert("a1", None),
        },
    );
    ok(
        &mut s,
        ConfigCommand::AddAlert {
            alert: alert("a2", Some(60_000)),
        },
    );
    ok(
        &mut s,
        ConfigCommand::AddCheck {
            check: http_check(&["a1", "a2"]),
        },
    );
    s
}

pub(super) fn flip(s: &mut ClusterState, from: Health, to: Health, at_ms: u64) {
    ok(
        s,
        RecordCommand::Transition {
            check_id: "c1".into(),
            record: TransitionRecord {
                round: at_ms / 1000,
                from,
                to,
                at_ms,
                voters: 3,
                evidence: vec![Evidence {
                    node: NodeId(1),
                    ok: to == Health::Up,
                    reason: String::new(),
                    latency_ms: None,
                    cert_not_after_ms: None,
                }],
            },
        },
    );
}

pub(super) fn health(s: &ClusterState) -> Health {
    s.check_states
        .get("c1")
        .map(|c| c.health)
        .unwrap_or_default()
}

/// (id, status word) of every delivery, sorted by id.
pub(super) fn ledger(s: &ClusterState) -> Vec<(String, String)> {
    s.deliveries
        .values()
        .map(|d| {
            let word = match &d.status {
                DeliveryStatus::Pending => "pending".to_string(),
                DeliveryStatus::Delivered { .. } => "delivered".into(),
                DeliveryStatus::Failed { .. } => "failed".into(),
                DeliveryStatus::Skipped { reason, .. } => format!("skipped: {reason}"),
                DeliveryStatus::Silenced { silence, .. } => format!("silenced: {silence}"),
            };
            (d.id.clone(), word)
        })
        .collect()
}

pub(super) fn patch(fields: &[(&str, serde_json::Value)]) -> Patch {
    let mut p = Patch::default();
    for (k, v) in fields {
        p.0.insert(k.to_string(), v.clone());
    }
    p
}

fn edit_check(fields: &[(&str, serde_json::Value)]) -> ConfigCommand {
    ConfigCommand::EditCheck {
        id_or_name: "web".into(),
        patch: patch(fields),
    }
}

fn silence(id: &str, end_ms: u64) -> ConfigCommand {
    ConfigCommand::AddSilence {
        silence: Silence {
            id: id.into(),
            checks: vec!["c1".into()],
            all: false,
            start_ms: 1_000,
            end_ms,
            reason: "deploy".into(),
            window: None,
        },
    }
}

fn end(ids: &[&str], at_ms: u64) -> RecordCommand {
    RecordCommand::EndSilences {
        ids: ids.iter().map(|i| i.to_string()).collect(),
        at_ms,
    }
}

use serde_json::json;

#[test]
fn an_edit_of_timing_keeps_state_and_history_and_bumps_the_version_once() {
    let mut s = cluster();
    flip(&mut s, Health::Unknown, Health::Down, 10_000);
    let before = s.check_states["c1"].clone();
    let v = s.version;
    ok(
        &mut s,
        edit_check(&[
            ("interval_ms", json!(5_000)),
            ("timeout_ms", json!(2_000)),
            ("name", json!("web2")),
        ]),
    );
    assert_eq!(s.version, v + 1);
    let c = &s.checks["c1"];
    assert_eq!(
        (c.interval_ms, c.timeout_ms, c.name.as_str()),
        (5_000, 2_000, "web2")
    );
    assert_eq!(c.kind.target(), "https://example.com/");
    assert_eq!(s.check_states["c1"], before, "state and history kept");
    // The same edit again changes nothing.
    assert!(matches!(
        apply(
            &mut s,
            ConfigCommand::EditCheck {
                id_or_name: "c1".into(),
                patch: patch(&[("interval_ms", json!(5_000))]),
            }
        ),
        Response::Unchanged { .. }
    ));
    assert_eq!(s.version, v + 1);
}

#[test]
fn an_edit_of_the_target_restarts_at_unknown_and_says_why() {
    let mut s = cluster();
    flip(&mut s, Health::Unknown, Health::Down, 10_000);
    let flips = s.check_states["c1"].flips;
    ok(
        &mut s,
        edit_check(&[("url", json!("https://example.org/health"))]),
    );
    let st = &s.check_states["c1"];
    assert_eq!(st.health, Health::Unknown);
    assert_eq!(
        st.flips, flips,
        "the flip count stays (delivery ids stay unique)"
    );
    let note = st.note.as_deref().unwrap_or_default();
    assert!(
        note.contains("https://example.com/") && note.contains("https://example.org/health"),
        "{note}"
    );
    // The next flip pages under a new id and clears the note.
    flip(&mut s, Health::Unknown, Health::Down, 20_000);
    assert!(s.check_states["c1"].note.is_none());
    assert!(s.deliveries.contains_key(&format!("c1-{}-a1", flips + 1)));
}

#[test]
fn bad_edits_are_refused_naming_the_field_and_change_nothing() {
    let mut s = cluster();
    refused_naming(
        &mut s,
        edit_check(&[("interval_ms", json!(5_000))]),
        "--timeout",
    );
    refused_naming(
        &mut s,
        ConfigCommand::EditCheck {
            id_or_name: "nope".into(),
            patch: patch(&[("interval_ms", json!(60_000))]),
        },
        "check",
    );
    refused_naming(
        &mut s,
        edit_check(&[("target", json!("db:5432"))]),
        "--target",
    );
    refused_naming(&mut s, edit_check(&[("id", json!("zz"))]), "--id");
    refused_naming(&mut s, edit_check(&[("paused", json!(true))]), "--paused");
    refused_naming(&mut s, edit_check(&[("alerts", json!(["a9"]))]), "--alerts");
    refused_naming(&mut s, edit_check(&[]), "edit");
    refused_naming(
        &mut s,
        ConfigCommand::EditAlert {
            id_or_name: "a1".into(),
            patch: patch(&[("repeat_ms", json!(10))]),
        },
        "--repeat",
    );
    refused_naming(
        &mut s,
        ConfigCommand::EditAlert {
            id_or_name: "a1".into(),
            patch: patch(&[("host", json!("smtp.example.com"))]),
        },
        "--host",
    );
}

#[test]
fn a_disabled_alert_records_skipped_and_the_others_still_page() {
    let mut s = cluster();
    ok(
        &mut s,
        ConfigCommand::EditAlert {
            id_or_name: "alert-a1".into(),
            patch: patch(&[("disabled", json!(true))]),
        },
    );
    flip(&mut s, Health::Unknown, Health::Down, 10_000);
    assert_eq!(
        ledger(&s),
        vec![
            ("c1-1-a1".to_string(), "skipped: alert disabled".to_string()),
            ("c1-1-a2".to_string(), "pending".to_string()),
        ]
    );
    ok(
        &mut s,
        ConfigCommand::EditAlert {
            id_or_name: "a1".into(),
            patch: patch(&[("disabled", json!(false))]),
        },
    );
    flip(&mut s, Health::Down, Health::Up, 20_000);
    assert_eq!(ledger(&s)[2], ("c1-2-a1".into(), "pending".into()));
    // Secrets edited are never echoed in the summary.
    let r = apply(
        &mut s,
        ConfigCommand::EditAlert {
            id_or_name: "a1".into(),
            patch: patch(&[("url", json!("https://hooks.example.com/SECRET"))]),
        },
    );
    match r {
        Response::Applied { summary, .. } => assert!(!summary.contains("SECRET"), "{summary}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_silence_records_silenced_and_its_end_pages_the_current_state_once() {
    // Still down at the end: one DOWN page.
    let mut s = cluster();
    flip(&mut s, Health::Unknown, Health::Up, 5_000);
    ok(&mut s, silence("s1", 100_000));
    flip(&mut s, Health::Up, Health::Down, 10_000);
    assert_eq!(health(&s), Health::Down, "verdicts continue while silenced");
    assert!(ledger(&s).iter().all(|(_, w)| w == "silenced: s1"));
    assert_eq!(ledger(&s).len(), 2);
    ok(&mut s, end(&["s1"], 100_000));
    let pages: Vec<_> = s.deliveries.values().filter(|d| d.is_pending()).collect();
    assert_eq!(pages.len(), 2, "one page per alert at the end");
    assert!(pages.iter().all(|d| d.transition.to == Health::Down
        && d.note == "silence ended"
        && d.created_ms == 100_000));
    // Ending again (a second leader's retry) is refused and pages nothing.
    let before = s.clone();
    assert!(matches!(
        apply(&mut s, end(&["s1"], 100_500)),
        Response::Refused { .. }
    ));
    assert_eq!(s, before);

    // Began and ended inside the silence: nothing.
    let mut s = cluster();
    flip(&mut s, Health::Unknown, Health::Up, 5_000);
    ok(&mut s, silence("s1", 100_000));
    flip(&mut s, Health::Up, Health::Down, 10_000);
    flip(&mut s, Health::Down, Health::Up, 20_000);
    ok(&mut s, end(&["s1"], 100_000));
    assert!(s.deliveries.values().all(|d| !d.is_pending()));

    // Down before, recovered inside: the recovery is owed, once.
    let mut s = cluster();
    flip(&mut s, Health::Unknown, Health::Down, 5_000);
    ok(&mut s, silence("s1", 100_000));
    flip(&mut s, Health::Down, Health::Up, 20_000);
    ok(
        &mut s,
        ConfigCommand::RemoveSilence {
            id: "s1".into(),
            at_ms: 30_000,
        },
    );
    let owed: Vec<_> = s
        .deliveries
        .values()
        .filter(|d| d.note == "silence ended")
        .collect();
    assert_eq!(owed.len(), 2);
    assert!(owed
        .iter()
        .all(|d| d.transition.to == Health::Up && d.transition.from == Health::Down));
}

#[test]
fn overlapping_silences_page_only_when_the_last_one_ends() {
    let mut s = cluster();
    flip(&mut s, Health::Unknown, Health::Up, 5_000);
    ok(&mut s, silence("s1", 50_000));
    ok(&mut s, silence("s2", 90_000));
    flip(&mut s, Health::Up, Health::Down, 10_000);
    ok(&mut s, end(&["s1"], 50_000));
    assert!(
        s.deliveries.values().all(|d| !d.is_pending()),
        "s2 still mutes"
    );
    ok(&mut s, end(&["s2"], 90_000));
    assert_eq!(s.deliveries.values().filter(|d| d.is_pending()).count(), 2);
}

#[test]
fn bad_silences_are_refused() {
    let mut s = cluster();
    refused_naming(&mut s, silence("s1", 1_000), "--for");
    refused_naming(&mut s, silence("s1", 500), "--for");
    refused_naming(
        &mut s,
        ConfigCommand::AddSilence {
            silence: Silence {
                id: "s1".into(),
                checks: vec!["nope".into()],
                all: false,
                start_ms: 0,
                end_ms: 10,
                reason: String::new(),
                window: None,
            },
        },
        "checks",
    );
    refused_naming(
        &mut s,
        ConfigCommand::RemoveSilence {
            id: "nope".into(),
            at_ms: 0,
        },
        "silence",
    );
}

fn window() -> Maintenance {
    Maintenance {
        id: "w1".into(),
        name: "sunday".into(),
        every: "sun 02:00".into(),
        duration_ms: 7_200_000,
        tz: "Europe/Berlin".into(),
        checks: vec![],
        all: true,
        last_opened_ms: None,
    }
}

#[test]
fn a_window_opens_each_occurrence_once_as_a_silence() {
    let mut s = cluster();
    ok(&mut s, ConfigCommand::AddWindow { window: window() });
    let open = |start_ms| RecordCommand::OpenWindow {
        window_id: "w1".into(),
        start_ms,
    };
    ok(&mut s, open(1_000_000));
    let id = "w1@1000000";
    assert_eq!(s.silences[id].end_ms, 1_000_000 + 7_200_000);
    assert!(s.silences[id].all);
    let before = s.clone();
    assert!(matches!(
        apply(&mut s, open(1_000_000)),
        Response::Refused { .. }
    ));
    assert_eq!(s, before);
    flip(&mut s, Health::Unknown, Health::Down, 1_100_000);
    assert!(ledger(&s)
        .iter()
        .all(|(_, w)| w == &format!("silenced: {id}")));
    // Removing the window ends its open occurrence (and pages what is owed).
    ok(
        &mut s,
        ConfigCommand::RemoveWindow {
            id_or_name: "sunday".into(),
            at_ms: 1_200_000,
        },
    );
    assert!(s.silences.is_empty() && s.windows.is_empty());
    assert_eq!(s.deliveries.values().filter(|d| d.is_pending()).count(), 2);
    let mut w = window();
    w.duration_ms = 0;
    refused_naming(&mut s, ConfigCommand::AddWindow { window: w }, "--duration");
}

#[test]
fn repeats_are_one_record_each_only_while_down_and_stop_at_recovery() {
    let mut s = cluster();
    flip(&mut s, Health::Unknown, Health::Down, 10_000);
    let repeat = |n, at_ms| RecordCommand::Repeat {
        check_id: "c1".into(),
        alert_id: "a2".into(),
        n,
        at_ms,
    };
    ok(&mut s, repeat(1, 70_000));
    // A failover retry of the same repeat is refused: never doubled.
    let before = s.clone();
    assert!(matches!(
        apply(&mut s, repeat(1, 70_100)),
        Response::Refused { .. }
    ));
    assert_eq!(s, before);
    ok(&mut s, repeat(2, 130_000));
    assert!(s.deliveries.contains_key("c1-1-a2-r1") && s.deliveries.contains_key("c1-1-a2-r2"));
    assert_eq!(s.deliveries["c1-1-a2-r2"].note, "repeat 2");
    // a1 has no --repeat.
    assert!(matches!(
        apply(
            &mut s,
            RecordCommand::Repeat {
                check_id: "c1".into(),
                alert_id: "a1".into(),
                n: 1,
                at_ms: 70_000
            }
        ),
        Response::Refused { .. }
    ));
    flip(&mut s, Health::Down, Health::Up, 150_000);
    assert!(matches!(
        apply(&mut s, repeat(3, 190_000)),
        Response::Refused { .. }
    ));
    // The next outage counts from 1 again.
    flip(&mut s, Health::Up, Health::Down, 200_000);
    ok(&mut s, repeat(1, 260_000));
    assert!(s.deliveries.contains_key("c1-3-a2-r1"));
}

#[test]
fn every_new_command_needs_level_2_and_old_ones_stay_level_1() {
    let level2: Vec<Command> = vec![
        edit_check(&[("name", json!("x"))]).into(),
        ConfigCommand::EditAlert {
            id_or_name: "a1".into(),
            patch: Patch::default(),
        }
        .into(),
        silence("s", 2).into(),
        ConfigCommand::RemoveSilence {
            id: "s".into(),
            at_ms: 0,
        }
        .into(),
        ConfigCommand::AddWindow { window: window() }.into(),
        ConfigCommand::RemoveWindow {
            id_or_name: "w".into(),
            at_ms: 0,
        }
        .into(),
        end(&["s"], 0).into(),
        RecordCommand::OpenWindow {
            window_id: "w".into(),
            start_ms: 0,
        }
        .into(),
        RecordCommand::Repeat {
            check_id: "c".into(),
            alert_id: "a".into(),
            n: 1,
            at_ms: 0,
        }
        .into(),
        ConfigCommand::AddAlert {
            alert: alert("a", Some(60_000)),
        }
        .into(),
    ];
    for c in level2 {
        assert_eq!(c.level(), 2, "{}", c.describe());
    }
    let plain = Command::from(ConfigCommand::AddAlert {
        alert: alert("a", None),
    });
    assert_eq!(plain.level(), 1);
    // A level-1 alert serialises exactly as the release before wrote it.
    let json = serde_json::to_string(&alert("a", None)).unwrap();
    assert!(!json.contains("disabled") && !json.contains("default") && !json.contains("repeat"));
}

#[test]
fn the_log_level_is_raised_once_and_never_lowered() {
    let mut s = cluster();
    assert_eq!(s.log_level, 0);
    ok(&mut s, RecordCommand::RaiseLevel { level: 2 });
    assert_eq!(s.log_level, 2);
    let before = s.clone();
    for level in [1, 2, LOG_LEVEL + 1] {
        assert!(matches!(
            apply(&mut s, RecordCommand::RaiseLevel { level }),
            Response::Refused { .. }
        ));
    }
    assert_eq!(s, before);
    assert_eq!(
        Command::from(RecordCommand::RaiseLevel { level: 2 }).level(),
        2
    );
}
