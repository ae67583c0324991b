//! Routing in the ledger (level 5): `--on` picks the events an alert gets;
//! `--after` delays a DOWN until the leader commits its release, and a
//! RECOVERED goes out only if its DOWN did.

use super::day_two_tests::{alert, cluster, flip, ledger, ok, patch, refused_naming};
use super::*;
use crate::model::Health;

fn edit_alert(id: &str, fields: &[(&str, serde_json::Value)]) -> ConfigCommand {
    ConfigCommand::EditAlert {
        id_or_name: id.into(),
        patch: patch(fields),
    }
}

fn release(id: &str, at_ms: u64) -> RecordCommand {
    RecordCommand::ReleaseDelivery {
        id: id.into(),
        at_ms,
    }
}

fn ids(s: &ClusterState) -> Vec<String> {
    ledger(s).into_iter().map(|(id, _)| id).collect()
}

fn status(s: &ClusterState, id: &str) -> String {
    ledger(s)
        .into_iter()
        .find(|(i, _)| i == id)
        .map(|(_, w)| w)
        .unwrap_or_else(|| panic!("no delivery {id} in {:?}", ledger(s)))
}

#[test]
fn on_picks_the_events_each_alert_gets() {
    let mut s = cluster();
    ok(
        &mut s,
        edit_alert("a1", &[("on", serde_json::json!(["recovered"]))]),
    );
    ok(
        &mut s,
        edit_alert("a2", &[("on", serde_json::json!(["down", "repeat"]))]),
    );
    flip(&mut s, Health::Unknown, Health::Down, 10_000);
    assert_eq!(ids(&s), vec!["c1-1-a2"]);
    ok(
        &mut s,
        RecordCommand::Repeat {
            check_id: "c1".into(),
            alert_id: "a2".into(),
            n: 1,
            at_ms: 70_000,
        },
    );
    flip(&mut s, Health::Down, Health::Up, 80_000);
    assert_eq!(ids(&s), vec!["c1-1-a2", "c1-1-a2-r1", "c1-2-a1"]);
    // An alert that does not get repeats is refused a --repeat.
    refused_naming(
        &mut s,
        edit_alert("a2", &[("on", serde_json::json!(["down"]))]),
        "--repeat",
    );
    refused_naming(
        &mut s,
        edit_alert("a1", &[("on", serde_json::json!([]))]),
        "--on",
    );
}

#[test]
fn a_delayed_down_that_recovers_in_time_pages_nothing() {
    let mut s = cluster();
    ok(&mut s, edit_alert("a1", &[("after_ms", 3_000.into())]));
    flip(&mut s, Health::Unknown, Health::Down, 10_000);
    let d = &s.deliveries["c1-1-a1"];
    assert_eq!(d.not_before_ms, Some(13_000));
    assert!(d.is_pending() && d.awaits_release());
    // a2 has no --after: its DOWN is due at once.
    assert!(!s.deliveries["c1-1-a2"].awaits_release());
    flip(&mut s, Health::Down, Health::Up, 12_000);
    assert_eq!(
        status(&s, "c1-1-a1"),
        "skipped: recovered after 2s, within --after 3s"
    );
    assert!(!s.deliveries.contains_key("c1-2-a1"), "{:?}", ledger(&s));
    assert_eq!(status(&s, "c1-2-a2"), "pending");
    // The release that lost the race to the recovery is refused.
    refused_naming(&mut s, release("c1-1-a1", 13_000), "delivery");
}

#[test]
fn a_released_down_gets_its_recovered_with_the_outage() {
    let mut s = cluster();
    ok(&mut s, edit_alert("a1", &[("after_ms", 3_000.into())]));
    flip(&mut s, Health::Unknown, Health::Down, 10_000);
    ok(&mut s, release("c1-1-a1", 13_000));
    assert!(s.deliveries["c1-1-a1"].released);
    assert!(!s.deliveries["c1-1-a1"].awaits_release());
    // Released once: a second release is refused.
    refused_naming(&mut s, release("c1-1-a1", 13_100), "delivery");
    flip(&mut s, Health::Down, Health::Up, 16_000);
    let up = &s.deliveries["c1-2-a1"];
    assert!(up.is_pending() && up.not_before_ms.is_none());
    assert_eq!(up.down_since_ms, Some(10_000));
    // Only a delayed page is released.
    refused_naming(&mut s, release("c1-2-a1", 16_000), "delivery");
}

#[test]
fn a_release_for_an_outage_that_ended_is_refused() {
    let mut s = cluster();
    ok(&mut s, edit_alert("a1", &[("after_ms", 3_000.into())]));
    flip(&mut s, Health::Unknown, Health::Down, 10_000);
    // The leader's view: still pending; the state says the check flipped
    // up and down again since (a new outage, a new delivery).
    let pending = s.deliveries["c1-1-a1"].clone();
    flip(&mut s, Health::Down, Health::Up, 11_000);
    flip(&mut s, Health::Up, Health::Down, 12_000);
    s.deliveries.insert(pending.id.clone(), pending);
    refused_naming(&mut s, release("c1-1-a1", 13_000), "delivery");
    assert!(s.deliveries["c1-3-a1"].awaits_release());
}

#[test]
fn repeats_of_a_delayed_alert_wait_for_its_down() {
    let mut s = cluster();
    ok(&mut s, edit_alert("a2", &[("after_ms", 120_000.into())]));
    flip(&mut s, Health::Unknown, Health::Down, 0);
    let repeat = |n, at_ms| RecordCommand::Repeat {
        check_id: "c1".into(),
        alert_id: "a2".into(),
        n,
        at_ms,
    };
    assert!(!s.repeat_allowed("c1", "a2", 60_000));
    refused_naming(&mut s, repeat(1, 60_000), "repeat");
    ok(&mut s, release("c1-1-a2", 120_000));
    assert!(s.repeat_allowed("c1", "a2", 121_000));
    ok(&mut s, repeat(2, 121_000));
}

#[test]
fn routing_fields_and_releases_need_level_5() {
    let plain = Command::from(ConfigCommand::AddAlert {
        alert: alert("a9", None),
    });
    assert_eq!(plain.level(), 1);
    for a in [
        Alert {
            after_ms: Some(5_000),
            ..alert("a9", None)
        },
        Alert {
            title: Some("{{ check.name }}".into()),
            ..alert("a9", None)
        },
        Alert {
            on: Some(vec![crate::alert_kinds::PageEvent::Down]),
            ..alert("a9", None)
        },
        Alert {
            kind: crate::model::AlertKind::Slack {
                webhook: "https://hooks.slack.com/services/T/B/X".into(),
            },
            ..alert("a9", None)
        },
    ] {
        assert_eq!(
            Command::from(ConfigCommand::AddAlert { alert: a }).level(),
            crate::alert_kinds::LEVEL
        );
    }
    for field in crate::alert_kinds::ALERT_FIELDS {
        let cmd = Command::from(edit_alert("a1", &[(field, serde_json::Value::Null)]));
        assert_eq!(cmd.level(), crate::alert_kinds::LEVEL, "{field}");
    }
    assert_eq!(
        Command::from(edit_alert("a1", &[("repeat_ms", 5_000.into())])).level(),
        2
    );
    assert_eq!(
        Command::from(release("x", 1)).level(),
        crate::alert_kinds::LEVEL
    );
    assert_eq!(LOG_LEVEL, crate::alert_kinds::LEVEL);
}
