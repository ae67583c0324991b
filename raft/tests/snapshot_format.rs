//! The snapshot format, byte for byte: a state built by applying a fixed
//! log serializes to exactly the bytes in `fixtures/snapshot-format.json`,
//! which the release before `Records` (the state's maps as `BTreeMap`s
//! behind `Arc`) wrote from the same log. A node one release older
//! therefore reads our snapshots, and we read its (installed here).
//!
//! To re-create the fixture (only when the format is meant to change):
//! `QU_BLESS=1 cargo test -p qu-raft --test snapshot_format`.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use std::collections::{BTreeMap, BTreeSet};

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::testing::log_id;
use openraft::{EntryPayload, Membership};
use qu_raft::model::{
    Alert, AlertKind, Check, CheckKind, DeliveryStatus, Evidence, Health, Peer, TransitionRecord,
};
use qu_raft::state::{Command, ConfigCommand, RecordCommand, Request};
use qu_raft::store;
use qu_raft::types::Entry;
use qu_raft::{NodeId, RaftNode, TypeConfig};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/snapshot-format.json"
);

fn peer(n: u64) -> Peer {
    Peer {
        node_id: NodeId(n),
        advertise: format!("127.0.0.1:{}", 9000 + n),
        fingerprint: format!("SHA256:fp{n}"),
        cert: String::new(),
    }
}

fn check(id: &str, name: &str, alerts: &[&str]) -> Check {
    Check {
        id: id.into(),
        name: name.into(),
        kind: CheckKind::tcp("db.internal:5432"),
        interval_ms: 30_000,
        timeout_ms: 10_000,
        alerts: alerts.iter().map(|a| a.to_string()).collect(),
        paused: false,
    }
}

fn flip(id: &str, from: Health, to: Health, at_ms: u64) -> Command {
    Command::from(RecordCommand::Transition {
        check_id: id.into(),
        record: TransitionRecord {
            round: at_ms / 1_000,
            from,
            to,
            at_ms,
            voters: 1,
            evidence: vec![Evidence {
                node: NodeId(1),
                ok: to == Health::Up,
                reason: "connection refused".into(),
                latency_ms: Some(1),
                cert_not_after_ms: None,
            }],
        },
    })
}

/// Every map of the state gets several entries, inserted out of key order
/// (`c…` before `a…`, peer 3 before 2), and one is removed again.
fn entries() -> Vec<Entry> {
    let mut out = Vec::new();
    let mut nodes = BTreeMap::new();
    nodes.insert(NodeId(1), RaftNode::default());
    let membership = Membership::new(vec![BTreeSet::from([NodeId(1)])], nodes).unwrap();
    out.push(Entry {
        log_id: log_id::<TypeConfig>(1, NodeId(1), 1),
        payload: EntryPayload::Membership(membership),
    });
    let alert = |id: &str, name: &str| Alert {
        id: id.into(),
        name: name.into(),
        kind: AlertKind::Webhook {
            url: "http://127.0.0.1:9/hook".into(),
            headers: vec![],
        },
        disabled: false,
        default: false,
        repeat_ms: None,
        title: None,
        body: None,
        on: None,
        after_ms: None,
    };
    let cmds = [
        Command::from(ConfigCommand::Bootstrap {
            cluster_id: "c1".into(),
            founder: peer(1),
        }),
        Command::from(ConfigCommand::AddPeer { peer: peer(3) }),
        Command::from(ConfigCommand::AddPeer { peer: peer(2) }),
        Command::from(ConfigCommand::AddAlert {
            alert: alert("b0000001", "pager"),
        }),
        Command::from(ConfigCommand::AddAlert {
            alert: alert("a0000001", "chat"),
        }),
        Command::from(ConfigCommand::AddCheck {
            check: check("c0000001", "web", &["b0000001", "a0000001"]),
        }),
        Command::from(ConfigCommand::AddCheck {
            check: check("a0000001", "db", &["b0000001"]),
        }),
        Command::from(ConfigCommand::AddCheck {
            check: check("b0000001", "cache", &[]),
        }),
        Command::from(ConfigCommand::AddCheck {
            check: check("d0000001", "gone", &[]),
        }),
        Command::from(ConfigCommand::AddSilence {
            silence: qu_raft::mute::Silence {
                id: "s2".into(),
                checks: vec!["c0000001".into()],
                all: false,
                start_ms: 500,
                end_ms: 5_000,
                reason: "deploy".into(),
                window: None,
            },
        }),
        Command::from(ConfigCommand::AddSilence {
            silence: qu_raft::mute::Silence {
                id: "s1".into(),
                checks: vec!["b0000001".into()],
                all: false,
                start_ms: 500,
                end_ms: 9_000,
                reason: "move".into(),
                window: None,
            },
        }),
        Command::from(ConfigCommand::AddWindow {
            window: qu_raft::mute::Maintenance {
                id: "w1".into(),
                name: "sunday".into(),
                every: "sun 02:00".into(),
                duration_ms: 3_600_000,
                tz: "Europe/Berlin".into(),
                checks: vec![],
                all: true,
                last_opened_ms: None,
            },
        }),
        flip("c0000001", Health::Unknown, Health::Down, 1_000),
        flip("a0000001", Health::Unknown, Health::Down, 1_100),
        flip("b0000001", Health::Unknown, Health::Up, 1_200),
        Command::from(ConfigCommand::RemoveSilence {
            id: "s2".into(),
            at_ms: 2_000,
        }),
        Command::from(RecordCommand::EndSilences {
            ids: vec!["s1".into()],
            at_ms: 9_000,
        }),
        flip("a0000001", Health::Down, Health::Up, 3_000),
        Command::from(ConfigCommand::RemoveCheck {
            id_or_name: "gone".into(),
        }),
    ];
    let n = cmds.len();
    for (i, c) in cmds.into_iter().enumerate() {
        // Request ids (remembered for configuration commands), out of
        // key order too.
        let request_id = Some(format!("r{:02}", n - i));
        out.push(Entry {
            log_id: log_id::<TypeConfig>(1, NodeId(1), 2 + i as u64),
            payload: EntryPayload::Normal(Request {
                at_ms: Some(100 + i as u64),
                request_id,
                ..Request::new(c)
            }),
        });
    }
    out
}

#[tokio::test]
async fn the_snapshot_of_a_fixed_log_is_the_older_releases_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut sm, _) = store::open(dir.path()).unwrap();
    let stream = futures_util::stream::iter(entries().into_iter().map(|e| Ok((e, None))));
    sm.apply(stream).await.unwrap();
    let applied = sm.current();
    // Every map holds something, so the comparison covers each of them.
    let s = &applied.state;
    assert_eq!(s.peers.len(), 3);
    assert_eq!(s.alerts.len(), 2);
    assert_eq!(s.checks.len(), 3, "d0000001 removed");
    assert_eq!(s.check_states.len(), 3);
    assert!(s.deliveries.len() >= 3, "{:?}", s.deliveries.len());
    assert!(s.requests.len() >= 10);
    assert_eq!(s.windows.len(), 1);
    assert_eq!(s.history.len(), 3);
    assert_eq!(s.past_silences.len(), 2);
    assert!(s
        .deliveries
        .values()
        .any(|d| d.status == DeliveryStatus::Pending));
    let snap = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let bytes = snap.snapshot;
    if std::env::var_os("QU_BLESS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(FIXTURE).parent().unwrap()).unwrap();
        std::fs::write(FIXTURE, &bytes).unwrap();
    }
    let want = std::fs::read(FIXTURE).unwrap();
    assert!(
        bytes == want,
        "the snapshot differs from the older release's:\nnow:  {}\nwant: {}",
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(&want)
    );

    // And the older release's snapshot installs into a fresh node as the
    // same state.
    let other = tempfile::tempdir().unwrap();
    let (_log, mut b, _) = store::open(other.path()).unwrap();
    b.install_snapshot(&snap.meta, want).await.unwrap();
    assert_eq!(*b.current(), *applied);
}
