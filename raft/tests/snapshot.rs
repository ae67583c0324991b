//! Snapshots of the sled state machine: what is built from one node's
//! applied state installs into an empty node and reproduces it exactly,
//! across a reopen of the database too.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use std::collections::{BTreeMap, BTreeSet};

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::testing::log_id;
use openraft::{EntryPayload, Membership};
use qu_raft::model::{
    Alert, AlertKind, Check, CheckKind, Evidence, Health, Peer, TransitionRecord,
};
use qu_raft::state::{Command, ConfigCommand, RecordCommand, Request};
use qu_raft::store;
use qu_raft::types::Entry;
use qu_raft::{NodeId, RaftNode, TypeConfig};

fn peer(n: u64) -> Peer {
    Peer {
        node_id: NodeId(n),
        advertise: format!("127.0.0.1:{}", 9000 + n),
        fingerprint: format!("SHA256:fp{n}"),
        cert: String::new(),
    }
}

fn entries() -> Vec<Entry> {
    let mut out = Vec::new();
    let mut nodes = BTreeMap::new();
    nodes.insert(NodeId(1), RaftNode::default());
    let membership = Membership::new(vec![BTreeSet::from([NodeId(1)])], nodes).unwrap();
    out.push(Entry {
        log_id: log_id::<TypeConfig>(1, NodeId(1), 1),
        payload: EntryPayload::Membership(membership),
    });
    let cmds = [
        Command::from(ConfigCommand::Bootstrap {
            cluster_id: "c1".into(),
            founder: peer(1),
        }),
        Command::from(ConfigCommand::AddPeer { peer: peer(2) }),
        Command::from(ConfigCommand::AddAlert {
            alert: Alert {
                id: "a1".into(),
                name: "pager".into(),
                kind: AlertKind::Webhook {
                    url: "http://127.0.0.1:9/hook".into(),
                    headers: vec![],
                },
                disabled: false,
                default: true,
                repeat_ms: Some(60_000),
                title: None,
                body: None,
                on: None,
                after_ms: None,
            },
        }),
        Command::from(ConfigCommand::AddCheck {
            check: Check {
                id: "k1".into(),
                name: "db".into(),
                kind: CheckKind::tcp("db.internal:5432"),
                interval_ms: 30_000,
                timeout_ms: 10_000,
                alerts: vec!["a1".into()],
                paused: false,
            },
        }),
        // Day two: a silence over the check and a maintenance window.
        Command::from(ConfigCommand::AddSilence {
            silence: qu_raft::mute::Silence {
                id: "s1".into(),
                checks: vec!["k1".into()],
                all: false,
                start_ms: 500,
                end_ms: 5_000,
                reason: "deploy".into(),
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
        // A paging flip, silenced: a check state and a settled delivery.
        Command::from(RecordCommand::Transition {
            check_id: "k1".into(),
            record: TransitionRecord {
                round: 7,
                from: Health::Unknown,
                to: Health::Down,
                at_ms: 1_000,
                voters: 1,
                evidence: vec![Evidence {
                    node: NodeId(1),
                    ok: false,
                    reason: "connection refused".into(),
                    latency_ms: Some(1),
                    cert_not_after_ms: None,
                }],
            },
        }),
        // The silence ends early: its real span is kept for uptime.
        Command::from(ConfigCommand::RemoveSilence {
            id: "s1".into(),
            at_ms: 2_000,
        }),
    ];
    for (i, c) in cmds.into_iter().enumerate() {
        out.push(Entry {
            log_id: log_id::<TypeConfig>(1, NodeId(1), 2 + i as u64),
            payload: EntryPayload::Normal(Request {
                at_ms: Some(100 + i as u64),
                ..Request::new(c)
            }),
        });
    }
    out
}

#[tokio::test]
async fn snapshot_built_on_one_node_installs_identically_on_another() {
    let a_dir = tempfile::tempdir().unwrap();
    let (a_log, mut a, _) = store::open(a_dir.path()).unwrap();
    let stream = futures_util::stream::iter(entries().into_iter().map(|e| Ok((e, None))));
    a.apply(stream).await.unwrap();
    let applied = a.current();
    assert_eq!(applied.state.version, 7);
    assert_eq!(applied.last_applied.map(|l| l.index), Some(9));
    assert_eq!(applied.state.silences.len(), 0);
    let events: Vec<&str> = applied.state.history["k1"]
        .events
        .iter()
        .map(|e| match e.what {
            qu_raft::history::HistoryKind::Added => "added",
            qu_raft::history::HistoryKind::Flip { .. } => "flip",
            _ => "other",
        })
        .collect();
    assert_eq!(events, ["added", "flip"], "history of k1");
    assert_eq!(applied.state.past_silences.len(), 1);
    assert_eq!(applied.state.past_silences[&0].end_ms, 2_000);
    assert_eq!(applied.state.windows.len(), 1);
    assert_eq!(applied.state.check_states.len(), 1);
    assert_eq!(
        applied.state.deliveries.len(),
        2,
        "the flip queued a delivery (silenced), and the silence's end one more"
    );

    let snap = a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(snap.meta.last_log_id.map(|l| l.index), Some(9));

    let b_dir = tempfile::tempdir().unwrap();
    {
        let (_log, mut b, _) = store::open(b_dir.path()).unwrap();
        b.install_snapshot(&snap.meta, snap.snapshot.clone())
            .await
            .unwrap();
        assert_eq!(*b.current(), *applied);
        let current = b
            .get_current_snapshot()
            .await
            .unwrap()
            .expect("installed snapshot kept");
        assert_eq!(current.meta, snap.meta);
    }
    // Reopened from disk, b still holds exactly that state, delivery ledger
    // included.
    let (_log, mut b, _) = store::open(b_dir.path()).unwrap();
    assert_eq!(*b.current(), *applied);
    let (last, membership) = b.applied_state().await.unwrap();
    assert_eq!(last, applied.last_applied);
    assert_eq!(membership, applied.membership);
    // And a, reopened, holds what its record writes persisted (history and
    // ended silences included), without any snapshot.
    drop(a);
    drop(a_log);
    let (_log_a, a, _) = store::open(a_dir.path()).unwrap();
    assert_eq!(*a.current(), *applied);
}
