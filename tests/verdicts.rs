//! Quorum verdicts end to end (SPEC §8, §9): three `qu serve` processes on
//! 127.0.0.2/.3/.4, each probing from its own address, against a real HTTP
//! target that the test makes fail for everyone or for one node only.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::target::{Mode, Target};
use common::{master, probing_cluster, stderr, wait_for, Node};

static SERIAL: Mutex<()> = Mutex::new(());

/// (state, votes, flips) of check `name` as `node` sees it.
fn check(node: &Node, name: &str) -> Option<(String, String, u64)> {
    let out = node.qu(&["check", "show", name, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((
        v["check"]["state"].as_str()?.to_string(),
        v["check"]["votes"].as_str().unwrap_or("-").to_string(),
        v["flips"].as_u64()?,
    ))
}

fn wait_state(nodes: &[Node], name: &str, state: &str, within: Duration) -> (String, u64) {
    let mut last = (String::new(), 0);
    for n in nodes {
        last = wait_for(
            &format!("{name} to be {state} on every node"),
            within,
            || {
                check(n, name)
                    .filter(|(s, _, _)| s == state)
                    .map(|(_, v, f)| (v, f))
            },
        );
    }
    last
}

fn add_web_check(nodes: &[Node], target: &Target) {
    let out = nodes[0].qu(&[
        "check",
        "add",
        "http",
        "web",
        &target.url(),
        "--interval",
        "1s",
        "--timeout",
        "500ms",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_majority_failing_flips_to_down_after_two_rounds_and_one_node_alone_never_does() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let nodes = probing_cluster();
    let target = Target::start("127.0.0.1");
    add_web_check(&nodes, &target);
    let (votes, flips_up) = wait_state(&nodes, "web", "up", Duration::from_secs(15));
    assert_eq!(votes, "3/3 ok");

    target.set(Mode::Status(503));
    let broke = Instant::now();
    let (votes, flips_down) = wait_state(&nodes, "web", "down", Duration::from_secs(10));
    let took = broke.elapsed();
    eprintln!("target broken → DOWN on every node in {took:?} (interval 1s, timeout 500ms)");
    assert_eq!(votes, "3/3 down: HTTP 503");
    assert_eq!(flips_down, flips_up + 1);
    // Two full rounds must have failed: never faster than one interval.
    assert!(
        took >= Duration::from_millis(1000),
        "flipped after {took:?}: a single round decided"
    );

    target.set(Mode::Up);
    let (_, flips_back) = wait_state(&nodes, "web", "up", Duration::from_secs(10));
    assert_eq!(flips_back, flips_down + 1);

    // The target fails for node 127.0.0.3 only: nothing changes, ever.
    let only: BTreeSet<IpAddr> = ["127.0.0.3".parse().unwrap()].into();
    target.set(Mode::FailFor(only));
    let until = Instant::now() + Duration::from_secs(6);
    let mut saw_the_lone_failure = false;
    while Instant::now() < until {
        for n in &nodes {
            let (state, _, flips) = check(n, "web").expect("check show");
            assert_eq!(state, "up", "one node's failure changed the state");
            assert_eq!(flips, flips_back, "one node's failure caused a flip");
        }
        let out = nodes[1].qu(&["check", "show", "web", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if let Some(votes) = v["last_round"]["votes"].as_array() {
            saw_the_lone_failure |= votes.iter().filter(|e| e["ok"] == false).count() == 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        saw_the_lone_failure,
        "the lone node's failures never reached the leader"
    );
}

#[test]
fn a_new_leader_keeps_the_committed_down_state_without_a_new_transition() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut nodes = probing_cluster();
    let target = Target::start("127.0.0.1");
    target.set(Mode::Status(503));
    add_web_check(&nodes, &target);
    let (_, flips) = wait_state(&nodes, "web", "down", Duration::from_secs(15));
    assert_eq!(flips, 1, "unknown → down is the first flip");

    let old = master(&nodes[0]).unwrap();
    let li = nodes.iter().position(|n| n.node_id() == old).unwrap();
    nodes[li].kill();
    let other = (li + 1) % 3;
    wait_for("a new master", Duration::from_secs(10), || {
        master(&nodes[other]).filter(|m| *m != old)
    });
    // Several rounds under the new leader: still down, still one flip.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        for (i, n) in nodes.iter().enumerate().filter(|(i, _)| *i != li) {
            let (state, _, f) = check(n, "web").expect("check show");
            assert_eq!(state, "down", "node {i} lost the committed state");
            assert_eq!(f, 1, "the new leader re-committed a transition");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // And it still decides: the target recovers → up.
    target.set(Mode::Up);
    let survivors: Vec<Node> = nodes
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != li)
        .map(|(_, n)| n)
        .collect();
    let (_, f) = wait_state(&survivors, "web", "up", Duration::from_secs(10));
    assert_eq!(f, 2);
}
