//! The leadership policy and membership hardening (SPEC §5, §7), with real
//! `qu serve` processes on loopback and short cooldowns.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{form, master, stderr, stdout, wait_for, Node};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const A: &str = "0000000000000030"; // founder, largest
const B: &str = "0000000000000010"; // smallest: the preferred master
const C: &str = "0000000000000020";

/// Three nodes with pinned ids, the founder the largest, all with `cooldown`.
fn pinned_cluster(cooldown: &str, env_b: &[(&str, &str)]) -> Vec<Node> {
    let mut nodes: Vec<Node> = [A, B, C]
        .iter()
        .map(|id| Node::init(&["--node-id", id]))
        .collect();
    for (i, n) in nodes.iter_mut().enumerate() {
        let env: &[(&str, &str)] = if i == 1 { env_b } else { &[] };
        n.spawn_serve_env(&["--timing", "fast", "--leader-cooldown", cooldown], env);
        n.wait_ready();
    }
    form(nodes)
}

fn masters(nodes: &[&Node]) -> Vec<Option<String>> {
    nodes.iter().map(|n| master(n)).collect()
}

fn restart(node: &mut Node, cooldown: &str) {
    node.start_with(&["--leader-cooldown", cooldown]);
}

#[test]
fn leadership_moves_to_the_smallest_node_only_after_the_cooldown_and_stays() {
    let _g = serial();
    let mut nodes: Vec<Node> = [A, B, C]
        .iter()
        .map(|id| Node::init(&["--node-id", id]))
        .collect();
    for n in nodes.iter_mut() {
        n.start_with(&["--leader-cooldown", "2s"]);
    }
    let add_started = Instant::now();
    let nodes = form(nodes);
    wait_for(
        "node B (smallest id) to become master",
        Duration::from_secs(20),
        || (master(&nodes[0]).as_deref() == Some(B)).then_some(()),
    );
    let took = add_started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "leadership moved after {took:?}, before the 2s cooldown"
    );
    // No flapping: every node sees B as master for the next 4 seconds.
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let ms = masters(&[&nodes[0], &nodes[1], &nodes[2]]);
        assert!(
            ms.iter().all(|m| m.as_deref() == Some(B)),
            "master flapped: {ms:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let s = nodes[2].status().unwrap();
    assert_eq!(s["policy"]["preferred"], B);
    assert!(stdout(&nodes[2].qu(&["status"])).contains("(is master)"));
}

#[test]
fn after_the_leader_dies_a_new_one_leads_and_the_old_one_returns_only_after_the_cooldown() {
    let _g = serial();
    let mut nodes = pinned_cluster("3s", &[]);
    wait_for("B to lead", Duration::from_secs(20), || {
        (master(&nodes[0]).as_deref() == Some(B)).then_some(())
    });
    nodes[1].kill();
    let killed = Instant::now();
    let new = wait_for("a new master", Duration::from_secs(10), || {
        master(&nodes[2]).filter(|m| m != B && master(&nodes[0]).as_deref() == Some(m.as_str()))
    });
    let took = killed.elapsed();
    eprintln!("leader killed → new master {new} in {took:?}");
    assert!(took < Duration::from_secs(5), "no leader for {took:?}");

    nodes[1].spawn_serve(&["--timing", "fast", "--leader-cooldown", "3s"]);
    let restarted = Instant::now();
    // Until the cooldown has passed since it came back, B must not lead.
    while restarted.elapsed() < Duration::from_millis(2700) {
        let m = master(&nodes[2]);
        assert_ne!(
            m.as_deref(),
            Some(B),
            "B took over {:?} after restarting, before its 3s cooldown",
            restarted.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    nodes[1].wait_ready();
    wait_for(
        "B to lead again after its cooldown",
        Duration::from_secs(20),
        || (master(&nodes[2]).as_deref() == Some(B)).then_some(()),
    );
}

#[test]
fn pausing_the_preferred_node_during_its_cooldown_leaves_a_leader_and_no_retry_storm() {
    let _g = serial();
    let mut nodes = pinned_cluster("3s", &[]);
    wait_for("B to lead", Duration::from_secs(20), || {
        (master(&nodes[0]).as_deref() == Some(B)).then_some(())
    });
    nodes[1].kill();
    wait_for("C to lead (smallest live)", Duration::from_secs(20), || {
        (master(&nodes[0]).as_deref() == Some(C)).then_some(())
    });
    let attempts_before = nodes[2].status().unwrap()["policy"]["transfer_attempts"]
        .as_u64()
        .unwrap();
    restart(&mut nodes[1], "3s");
    // Right before it would take over, freeze it.
    std::thread::sleep(Duration::from_millis(2000));
    nodes[1].pause();
    let paused = Instant::now();
    let mut leaderless_since: Option<Instant> = None;
    while paused.elapsed() < Duration::from_secs(8) {
        let m = master(&nodes[2]);
        match (&m, leaderless_since) {
            (Some(x), _) if x == B => panic!("the paused node is reported master"),
            (Some(_), _) => leaderless_since = None,
            (None, None) => leaderless_since = Some(Instant::now()),
            (None, Some(t)) => assert!(
                t.elapsed() < Duration::from_secs(2),
                "leaderless for {:?}",
                t.elapsed()
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let leader = master(&nodes[2]).expect("a master while B is paused");
    assert_ne!(leader, B, "the paused node is reported master");
    let holder = nodes.iter().find(|n| n.node_id() == leader).unwrap();
    eprintln!(
        "master while B is paused: {leader}; status: {:?}",
        holder.status().map(|s| s["policy"].clone())
    );
    let attempts_after = holder.status().unwrap()["policy"]["transfer_attempts"]
        .as_u64()
        .unwrap();
    assert!(
        attempts_after.saturating_sub(if holder.node_id() == C {
            attempts_before
        } else {
            0
        }) <= 2,
        "{attempts_after} transfer attempts while the preferred node was paused"
    );
    nodes[1].resume();
    wait_for(
        "B to lead once it is back for a full cooldown",
        Duration::from_secs(20),
        || (master(&nodes[0]).as_deref() == Some(B)).then_some(()),
    );
}

#[test]
fn a_removed_nodes_rpcs_are_refused_by_every_remaining_node() {
    use qu::daemon::rpc::{MemberRequest, MemberResponse};
    use qu::transport::client::PeerAddr;
    use qu::transport::{Pool, TransportConfig};

    let _g = serial();
    let nodes = common::cluster(3);
    let victim = 2;
    let victim_id: qu_raft::NodeId = nodes[victim].node_id().parse().unwrap();
    let identity = qu::crypto::Identity::load(&nodes[victim].path("keys"), victim_id).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ping_all = |pool: &Pool| -> Vec<bool> {
        nodes[..2]
            .iter()
            .map(|n| {
                let s = n.status().unwrap();
                let peer = PeerAddr {
                    node_id: s["node_id"].as_str().unwrap().parse().unwrap(),
                    fingerprint: s["fingerprint"].as_str().unwrap().parse().unwrap(),
                    advertise: n.advertise(),
                };
                rt.block_on(pool.call_within::<_, MemberResponse>(
                    &peer,
                    &MemberRequest::Ping,
                    Duration::from_secs(3),
                ))
                .is_ok()
            })
            .collect()
    };
    assert_eq!(
        ping_all(&Pool::new(identity.clone(), TransportConfig::default())),
        vec![true, true]
    );

    let out = nodes[0].qu(&["node", "remove", &nodes[victim].node_id()]);
    assert!(out.status.success(), "{}", stderr(&out));
    for n in &nodes[..2] {
        wait_for("quorum to shrink to 2", Duration::from_secs(10), || {
            (n.status()?["voters"] == 2).then_some(())
        });
    }
    let refused = wait_for(
        "every remaining node to refuse the removed node",
        Duration::from_secs(10),
        || {
            let r = ping_all(&Pool::new(identity.clone(), TransportConfig::default()));
            (r == vec![false, false]).then_some(r)
        },
    );
    assert_eq!(refused, vec![false, false]);
    let out = nodes[victim].qu(&["status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("REMOVED"), "{}", stdout(&out));
}

#[test]
fn a_node_whose_data_was_wiped_cannot_vote_until_removed_and_re_added() {
    let _g = serial();
    let mut nodes = common::cluster(3);
    let wiped = 2;
    nodes[wiped].kill();
    std::fs::remove_dir_all(nodes[wiped].path("raft")).unwrap();
    nodes[wiped].start();
    let out = nodes[0].qu(&["check", "add", "tcp", "while-wiped", "10.0.0.1:22"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // For a while the wiped node takes no log: it refuses the leader's entries.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let s = nodes[wiped].status().unwrap();
        assert!(
            s["raft"]["last_log_index"].is_null(),
            "the wiped node accepted entries: {s}"
        );
        // Its claim outlives raft/: it is no one's to take.
        assert_eq!(s["membership"], "wiped");
        std::thread::sleep(Duration::from_millis(200));
    }
    // It will not quietly found a cluster of its own either.
    let out = nodes[wiped].qu(&["check", "add", "tcp", "split", "10.0.0.2:22"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("data was probably wiped"),
        "{}",
        stderr(&out)
    );
    // Nor can another cluster claim it: its claim lives outside raft/.
    let mut intruder = Node::init(&[]);
    intruder.start();
    let out = intruder.qu(&["node", "add", &nodes[wiped].advertise(), "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("already belongs to a cluster"),
        "{}",
        stderr(&out)
    );
    drop(intruder);
    // The documented recovery.
    let id = nodes[wiped].node_id();
    let out = nodes[0].qu(&["node", "remove", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = nodes[0].qu(&["node", "add", &nodes[wiped].advertise(), "--yes"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    wait_for(
        "the re-added node to catch up",
        Duration::from_secs(15),
        || {
            let list = stdout(&nodes[wiped].qu(&["check", "list"]));
            (list.contains("while-wiped") && nodes[wiped].status()?["voters"] == 3).then_some(())
        },
    );
}

#[test]
fn join_from_limits_who_may_claim_a_fresh_node() {
    let _g = serial();
    let mut a = Node::init(&[]);
    let mut intruder = Node::init(&[]);
    a.start();
    intruder.start();
    let a_fp = a.status().unwrap()["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let mut b = Node::init(&["--join-from", &a_fp]);
    b.start();
    let out = intruder.qu(&["node", "add", &b.advertise(), "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("accepts joins only from"),
        "{}",
        stderr(&out)
    );
    assert_eq!(b.status().unwrap()["membership"], "fresh");
    let out = a.qu(&["node", "add", &b.advertise(), "--yes"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    wait_for("b to be a member", Duration::from_secs(10), || {
        (b.status()?["membership"] == "member").then_some(())
    });
}

#[test]
fn a_half_done_node_add_is_rolled_back_by_the_next_leader_and_can_be_retried() {
    let _g = serial();
    // B (the preferred master) crashes right after committing AddPeer.
    let mut nodes = pinned_cluster("1s", &[("QU_FAILPOINT", "after-add-peer")]);
    wait_for("B to lead", Duration::from_secs(20), || {
        (master(&nodes[0]).as_deref() == Some(B)).then_some(())
    });
    let mut extra = Node::init(&[]);
    extra.start();
    let out = nodes[2].qu(&["node", "add", &extra.advertise(), "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the add should fail when the leader crashes: {}",
        stdout(&out)
    );
    let extra_id = extra.node_id();
    // The next leader rolls the peer back: nobody pins it after the grace period.
    wait_for(
        "the half-done add to be rolled back",
        Duration::from_secs(20),
        || {
            let t0 = stdout(&nodes[0].qu(&["trust", "list"]));
            let t2 = stdout(&nodes[2].qu(&["trust", "list"]));
            (!t0.contains(&extra_id) && !t2.contains(&extra_id)).then_some(())
        },
    );
    // Retrying works (B back, without the failpoint).
    nodes[1].kill();
    restart(&mut nodes[1], "1s");
    let out = wait_for(
        "the retried add to succeed",
        Duration::from_secs(20),
        || {
            let o = nodes[0].qu(&["node", "add", &extra.advertise(), "--yes"]);
            o.status.success().then(|| stdout(&o))
        },
    );
    assert!(out.contains("as a voter"), "{out}");
    wait_for("four voters everywhere", Duration::from_secs(15), || {
        nodes
            .iter()
            .chain([&extra])
            .all(|n| n.status().is_some_and(|s| s["voters"] == 4))
            .then_some(())
    });
}

#[test]
fn a_wiped_node_re_added_under_its_old_id_catches_up_from_a_leader_that_joined_after_it() {
    // Found by `qu-jepsen soak`: the wiped node replays the log from the
    // start, meets itself among the founding peers, and must not drop the
    // pin of its leader, which joined later.
    let _g = serial();
    const LATE: &str = "0000000000000005"; // smallest: it will lead
    const W: &str = "0000000000000040";
    let mut nodes: Vec<Node> = [A, C, W]
        .iter()
        .map(|id| Node::init(&["--node-id", id]))
        .collect();
    for n in nodes.iter_mut() {
        n.start_with(&["--leader-cooldown", "1s"]);
    }
    let mut nodes = form(nodes);
    let mut late = Node::init(&["--node-id", LATE]);
    late.start_with(&["--leader-cooldown", "1s"]);
    let out = nodes[0].qu(&["node", "add", &late.advertise(), "--yes"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    wait_for("the late node to lead", Duration::from_secs(30), || {
        (master(&nodes[0]).as_deref() == Some(LATE)).then_some(())
    });
    let w = 2;
    nodes[w].kill();
    std::fs::remove_dir_all(nodes[w].path("raft")).unwrap();
    nodes[w].start_with(&["--leader-cooldown", "1s"]);
    let out = late.qu(&["check", "add", "tcp", "after-the-late-join", "10.0.0.1:22"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = late.qu(&["node", "remove", W]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = late.qu(&["node", "add", &nodes[w].advertise(), "--yes"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    wait_for(
        "the re-added node to catch up from the late leader",
        Duration::from_secs(30),
        || {
            let list = stdout(&nodes[w].qu(&["check", "list"]));
            (list.contains("after-the-late-join") && nodes[w].status()?["voters"] == 4)
                .then_some(())
        },
    );
    assert_eq!(master(&nodes[w]).as_deref(), Some(LATE));
}
