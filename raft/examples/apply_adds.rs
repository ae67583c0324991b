//! Micro-benchmark of the state machine alone: the cost of applying one
//! `AddCheck` as the number of checks grows, the way the store applies it
//! (each apply starts from a clone of the published state, which is still
//! held, so whatever a change touches is copied unless shared). Prints
//! figures; asserts nothing. Run:
//! `cargo run --release -p qu-raft --example apply_adds -- 10000`.

use std::time::Instant;

use qu_raft::model::{Check, CheckKind, Peer};
use qu_raft::state::{ClusterState, ConfigCommand, Request};
use qu_raft::NodeId;

fn check(i: usize) -> Check {
    Check {
        id: format!("{i:08x}"),
        name: format!("c{i}"),
        kind: CheckKind::tcp("10.0.0.1:22"),
        interval_ms: 30_000,
        timeout_ms: 10_000,
        alerts: vec![],
        paused: false,
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let mut published = ClusterState::default();
    published.apply(&Request::new(ConfigCommand::Bootstrap {
        cluster_id: "bench".into(),
        founder: Peer {
            node_id: NodeId(1),
            advertise: "127.0.0.1:1".into(),
            fingerprint: "SHA256:x".into(),
            cert: String::new(),
        },
    }));
    let step = (n / 5).max(1);
    let started = Instant::now();
    let mut last = Instant::now();
    for i in 0..n {
        let mut r = Request::new(ConfigCommand::AddCheck { check: check(i) });
        r.at_ms = Some(1_800_000_000_000 + i as u64);
        let mut next = published.clone();
        next.apply(&r);
        published = next;
        if (i + 1) % step == 0 {
            let per = last.elapsed() / step as u32;
            println!("{:>7} checks: {per:?} per AddCheck", i + 1);
            last = Instant::now();
        }
    }
    println!("{n} adds in {:?}", started.elapsed());
    // What an apply pays to change one map of a published state: a clone
    // of the map (O(1): `Records` share their nodes), then one insert into
    // it, which copies the nodes on that key's path.
    let t = Instant::now();
    let mut checks = published.checks.clone();
    let cloned = t.elapsed();
    let t = Instant::now();
    checks.insert("ffffffff".into(), check(n));
    println!(
        "checks map ({} checks): clone {cloned:?}, then one insert {:?}",
        published.checks.len(),
        t.elapsed()
    );
    let t = Instant::now();
    let mut history = published.history.clone();
    let cloned = t.elapsed();
    let t = Instant::now();
    history.insert("ffffffff".into(), Default::default());
    println!(
        "history map ({} checks): clone {cloned:?}, then one insert {:?}",
        published.history.len(),
        t.elapsed()
    );
}
