//! The one path to the leader, with real processes: a node answers a
//! mutation only once it applied it (read your own writes), a retried
//! write whose answer was lost is applied once and reported once, a peer
//! cannot propose records, and an operation with no leader to go to fails
//! fast.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::time::{Duration, Instant};

use common::{stderr, stdout, version, wait_for, Node};

fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A 3-node cluster with the smallest id leading (the cooldown is short),
/// and the index of a follower.
fn cluster_with_follower() -> (Vec<Node>, usize) {
    let nodes = common::cluster(3);
    let master = common::master(&nodes[0]).unwrap();
    let follower = nodes.iter().position(|n| n.node_id() != master).unwrap();
    (nodes, follower)
}

fn restart_with(node: &mut Node, env: &[(&str, &str)]) {
    node.stop();
    node.spawn_serve_env(&["--timing", "fast"], env);
    node.wait_ready();
}

#[test]
fn a_follower_that_applies_late_still_reads_its_own_writes() {
    let _g = serial();
    let (mut nodes, f) = cluster_with_follower();
    // This follower applies every entry a second late.
    restart_with(
        &mut nodes[f],
        &[
            ("QU_FAILPOINT", "slow-apply"),
            ("QU_FAILPOINT_HOLD_MS", "1000"),
        ],
    );
    wait_for("the follower to rejoin", Duration::from_secs(20), || {
        (nodes[f].status()?["quorum"] == true).then_some(())
    });
    let follower = &nodes[f];
    follower.ok(&[
        "alert",
        "add",
        "webhook",
        "hook",
        "--url",
        "http://127.0.0.1:9/hook",
    ]);
    // Acknowledged on this node: this node shows it at once...
    let list = follower.ok(&["alert", "list"]);
    assert!(list.contains("hook"), "own write not visible: {list}");
    // ...and a check naming it is accepted (names resolve on the leader).
    follower.ok(&[
        "check",
        "add",
        "tcp",
        "db",
        "127.0.0.1:9",
        "--alerts",
        "hook",
    ]);
    let checks = follower.ok(&["check", "list"]);
    assert!(checks.contains("db") && checks.contains("hook"), "{checks}");
    // A name nobody has is still refused, naming the field.
    let out = follower.qu(&[
        "check",
        "add",
        "tcp",
        "db2",
        "127.0.0.1:9",
        "--alerts",
        "ghost",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--alerts"), "{}", stderr(&out));
}

#[test]
fn a_forwarded_write_whose_answer_is_lost_is_applied_once_and_reported_once() {
    let _g = serial();
    let (mut nodes, f) = cluster_with_follower();
    let master = common::master(&nodes[0]).unwrap();
    let l = nodes.iter().position(|n| n.node_id() == master).unwrap();
    // The leader drops its answer to the first forwarded proposal.
    restart_with(&mut nodes[l], &[("QU_FAILPOINT", "drop-propose-reply")]);
    wait_for("the leader to lead again", Duration::from_secs(30), || {
        (common::master(&nodes[f])? == master && nodes[f].status()?["quorum"] == true).then_some(())
    });
    let before = version(&nodes[f]).unwrap();
    let out = nodes[f].ok(&["check", "add", "tcp", "once", "127.0.0.1:9"]);
    assert!(out.contains("added tcp check once"), "{out}");
    assert!(
        out.contains(&format!("config version {}", before + 1)),
        "{out}"
    );
    assert!(
        nodes[l].log().contains("failpoint") || nodes[l].log().contains("drop"),
        "the failpoint never fired, so the retry was not exercised"
    );
    for n in &nodes {
        wait_for("every node to apply it", Duration::from_secs(10), || {
            (version(n)? == before + 1).then_some(())
        });
        let list = n.ok(&["check", "list", "--json"]);
        assert_eq!(list.matches("\"once\"").count(), 1, "{list}");
    }
}

#[test]
fn a_peer_may_not_propose_a_check_state_flip() {
    use qu::daemon::routing::{LeaderOp, LeaderReply};
    use qu::daemon::rpc::{ClusterFailure, MemberRequest, MemberResponse};
    use qu::transport::client::PeerAddr;
    use qu::transport::{Pool, TransportConfig};
    let _g = serial();
    let (nodes, f) = cluster_with_follower();
    nodes[0].ok(&["check", "add", "tcp", "db", "127.0.0.1:9"]);
    let master = common::master(&nodes[0]).unwrap();
    let l = nodes.iter().position(|n| n.node_id() == master).unwrap();
    let s = nodes[l].status().unwrap();
    let leader = PeerAddr {
        node_id: master.parse().unwrap(),
        fingerprint: s["fingerprint"].as_str().unwrap().parse().unwrap(),
        advertise: nodes[l].advertise(),
    };
    let check_id = nodes[0].ok(&["check", "list", "--json"]);
    let check_id: serde_json::Value = serde_json::from_str(&check_id).unwrap();
    let check_id = check_id["checks"][0]["id"].as_str().unwrap().to_string();
    // A member (the follower, with its own key) forges a DOWN flip.
    let me =
        qu::crypto::Identity::load(&nodes[f].path("keys"), nodes[f].node_id().parse().unwrap())
            .unwrap();
    let flip = qu_raft::state::Flip {
        check_id,
        record: serde_json::from_value(serde_json::json!({
            "from": "unknown", "to": "down", "at_ms": 1, "round": 1, "voters": 3, "evidence": []
        }))
        .unwrap(),
    };
    let op = LeaderOp::Propose {
        request: Box::new(qu_raft::state::Request::new(
            qu_raft::state::RecordCommand::Transitions { flips: vec![flip] },
        )),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pool = Pool::new(me, TransportConfig::default());
    let r: MemberResponse = rt
        .block_on(pool.call_within(
            &leader,
            &MemberRequest::OnLeader { op },
            Duration::from_secs(5),
        ))
        .unwrap();
    match r {
        MemberResponse::OnLeader(Err(ClusterFailure::Refused(why))) => {
            assert!(why.contains("configuration changes only"), "{why}")
        }
        MemberResponse::OnLeader(Ok(LeaderReply::Proposed { response, .. })) => {
            panic!("a peer's flip was committed: {response:?}")
        }
        other => panic!("unexpected: {other:?}"),
    }
    let list = nodes[0].ok(&["check", "list"]);
    assert!(!list.contains("down"), "{list}");
}

#[test]
fn node_add_with_no_leader_fails_within_six_seconds() {
    let _g = serial();
    let mut nodes = common::cluster(3);
    let mut extra = Node::init(&[]);
    extra.start();
    nodes[1].kill();
    nodes[2].kill();
    let started = Instant::now();
    let out = nodes[0].qu(&["node", "add", &extra.advertise(), "--yes"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("no quorum") || stderr(&out).contains("no leader"),
        "{}",
        stderr(&out)
    );
    assert!(took < Duration::from_secs(6), "took {took:?}");
}
