//! Multi-process cluster tests: real `qu serve` processes on loopback,
//! formed exactly as a user would (SPEC §3, §5, §6, §11).
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{cluster, master, stderr, stdout, version, wait_for, Node};

/// Cluster tests run one at a time: several 3-node clusters of debug
/// builds on two cores would starve each other's election timers.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn check_names(node: &Node) -> Vec<String> {
    let out = node.qu(&["check", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["checks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn index_of(nodes: &[Node], id: &str) -> usize {
    nodes
        .iter()
        .position(|n| n.node_id() == id)
        .expect("master is one of the nodes")
}

#[test]
fn three_nodes_formed_with_node_add_agree_on_peers_master_and_version() {
    let _g = serial();
    let nodes = cluster(3);
    let ids: Vec<String> = nodes.iter().map(Node::node_id).collect();
    let statuses: Vec<serde_json::Value> = nodes.iter().map(|n| n.status().unwrap()).collect();
    for s in &statuses {
        let mut peers: Vec<String> = s["peers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["node_id"].as_str().unwrap().to_string())
            .collect();
        peers.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(peers, expected);
        assert_eq!(s["master"], statuses[0]["master"]);
        assert_eq!(s["config_version"], statuses[0]["config_version"]);
        assert_eq!(s["need"], 2);
        assert_eq!(s["membership"], "member");
    }
    // Every node pins exactly the other members.
    for (i, n) in nodes.iter().enumerate() {
        let list: serde_json::Value =
            serde_json::from_str(&n.ok(&["trust", "list", "--json"])).unwrap();
        let mut pinned: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node_id"].as_str().unwrap())
            .collect();
        pinned.sort();
        let mut others: Vec<&str> = ids
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, s)| s.as_str())
            .collect();
        others.sort();
        assert_eq!(pinned, others, "trust store of node {i}");
    }
    // The text status carries the SPEC §11 fields.
    let text = nodes[1].ok(&["status"]);
    for field in [
        "term",
        "master",
        "quorum      true (need 2 of 3)",
        "config ver",
        "PEERS",
        "RAFT",
        "last log",
    ] {
        assert!(text.contains(field), "{field} missing from:\n{text}");
    }
    let list: serde_json::Value =
        serde_json::from_str(&nodes[2].ok(&["node", "list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["role"] == "leader"));
}

#[test]
fn a_mutation_on_a_follower_is_visible_on_every_node_with_one_version() {
    let _g = serial();
    let nodes = cluster(3);
    let m = master(&nodes[0]).unwrap();
    let follower = nodes.iter().find(|n| n.node_id() != m).unwrap();
    let before = version(follower).unwrap();
    let out = follower.ok(&[
        "check",
        "add",
        "tcp",
        "db",
        "db.internal:5432",
        "--interval",
        "15s",
    ]);
    assert!(
        out.contains(&format!("config version {}", before + 1)),
        "{out}"
    );
    for n in &nodes {
        wait_for("the check on every node", Duration::from_secs(10), || {
            (check_names(n) == ["db"] && version(n) == Some(before + 1)).then_some(())
        });
    }
    // cluster.yaml mirrors it, privately.
    let yaml_path = nodes[2].path("cluster.yaml");
    wait_for(
        "cluster.yaml to mirror the check",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&yaml_path)
                .ok()
                .filter(|y| y.contains("db.internal:5432"))
                .map(|_| ())
        },
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&yaml_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn killing_the_leader_elects_another_and_writes_continue() {
    let _g = serial();
    let mut nodes = cluster(3);
    nodes[0].ok(&["check", "add", "tcp", "before", "10.0.0.1:22"]);
    let old = master(&nodes[0]).unwrap();
    let li = index_of(&nodes, &old);
    nodes[li].kill();
    let killed = Instant::now();
    let survivor = (li + 1) % 3;
    let new = wait_for("a new master", Duration::from_secs(10), || {
        master(&nodes[survivor]).filter(|m| *m != old)
    });
    let out = wait_for(
        "a write to succeed after the leader died",
        Duration::from_secs(15),
        || {
            let o = nodes[survivor].qu(&["check", "add", "tcp", "after", "10.0.0.2:22"]);
            o.status.success().then(|| stdout(&o))
        },
    );
    eprintln!(
        "leader kill → new master {new} and acknowledged write in {:?}",
        killed.elapsed()
    );
    assert!(out.contains("added tcp check after"), "{out}");
    // The old leader comes back and catches up.
    nodes[li].start();
    wait_for(
        "the restarted node to catch up",
        Duration::from_secs(15),
        || {
            let names = check_names(&nodes[li]);
            (names.contains(&"after".to_string()) && names.contains(&"before".to_string()))
                .then_some(())
        },
    );
    let v = version(&nodes[survivor]);
    wait_for("one version everywhere", Duration::from_secs(10), || {
        nodes.iter().all(|n| version(n) == v).then_some(())
    });
}

#[test]
fn losing_quorum_fails_within_five_seconds_changes_nothing_and_recovers() {
    let _g = serial();
    let mut nodes = cluster(3);
    nodes[0].ok(&["check", "add", "tcp", "kept", "10.0.0.1:22"]);
    let keep = 2;
    // The add is acknowledged once a majority has it; the survivor may
    // apply it a moment later. Read its version once it has.
    let before = wait_for(
        "the survivor to apply the add",
        Duration::from_secs(10),
        || {
            let v = version(&nodes[0])?;
            (check_names(&nodes[keep]).contains(&"kept".to_string())
                && version(&nodes[keep]) == Some(v))
            .then_some(v)
        },
    );
    nodes[0].kill();
    nodes[1].kill();
    let started = Instant::now();
    let out = nodes[keep].qu(&["check", "add", "tcp", "lost", "10.0.0.9:22"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        took < Duration::from_secs(6),
        "no-quorum refusal took {took:?}"
    );
    assert_eq!(
        stderr(&out).trim(),
        "qu: no quorum: 1 of 3 nodes reachable (need 2); refusing mutation"
    );
    assert_eq!(version(&nodes[keep]), Some(before));
    assert!(!check_names(&nodes[keep]).contains(&"lost".to_string()));
    // `qu status` says so with exit code 2.
    let st = nodes[keep].qu(&["status"]);
    assert_eq!(st.status.code(), Some(2), "{}", stdout(&st));

    nodes[0].start();
    nodes[1].start();
    let out = wait_for(
        "a mutation after quorum returns",
        Duration::from_secs(20),
        || {
            let o = nodes[keep].qu(&["check", "add", "tcp", "back", "10.0.0.3:22"]);
            o.status.success().then(|| stdout(&o))
        },
    );
    assert!(out.contains("added tcp check back"), "{out}");
    wait_for("all nodes to converge", Duration::from_secs(15), || {
        let v = version(&nodes[keep]);
        let same = nodes.iter().all(|n| version(n) == v);
        let names_ok = nodes.iter().all(|n| {
            let names = check_names(n);
            names.contains(&"back".to_string()) && !names.contains(&"lost".to_string())
        });
        (same && names_ok).then_some(())
    });
}

#[test]
fn acknowledged_writes_survive_kill_9_of_every_node() {
    let _g = serial();
    let mut nodes = cluster(3);
    let mut last = String::new();
    for i in 0..5 {
        last = nodes[i % 3].ok(&["check", "add", "tcp", &format!("c{i}"), "10.0.0.1:22"]);
    }
    let acked: u64 = last.trim().rsplit(' ').next().unwrap().parse().unwrap();
    for n in nodes.iter_mut() {
        n.kill();
    }
    for n in nodes.iter_mut() {
        n.start();
    }
    for n in &nodes {
        wait_for(
            "every acknowledged write after restart",
            Duration::from_secs(20),
            || {
                let names = check_names(n);
                let all = (0..5).all(|i| names.contains(&format!("c{i}")));
                (all && version(n).is_some_and(|v| v >= acked)).then_some(())
            },
        );
    }
}

#[test]
fn a_fresh_node_forms_a_one_node_cluster_on_first_mutation_and_keeps_it() {
    let _g = serial();
    let mut node = Node::init(&[]);
    node.start();
    assert_eq!(node.status().unwrap()["membership"], "fresh");
    let out = node.ok(&[
        "alert",
        "add",
        "webhook",
        "hook",
        "--url",
        "http://127.0.0.1:9/x",
    ]);
    assert!(
        out.contains("config version 2"),
        "bootstrap is version 1: {out}"
    );
    let s = node.status().unwrap();
    assert_eq!(s["membership"], "member");
    assert_eq!(s["quorum"], true);
    assert_eq!(s["need"], 1);
    node.kill();
    node.start();
    wait_for(
        "the cluster to come back with its state",
        Duration::from_secs(10),
        || {
            let s = node.status()?;
            (s["config_version"] == 2 && s["quorum"] == true).then_some(())
        },
    );
    assert!(node.ok(&["alert", "list"]).contains("hook"));
}

#[test]
fn invalid_mutations_are_refused_with_the_field_and_change_nothing() {
    let _g = serial();
    let mut node = Node::init(&[]);
    node.start();
    node.ok(&[
        "alert",
        "add",
        "discord",
        "oncall",
        "--webhook",
        "https://discord.com/api/webhooks/1/SECRET",
    ]);
    node.ok(&[
        "check",
        "add",
        "http",
        "home",
        "https://example.com",
        "--alerts",
        "oncall",
    ]);
    let v = version(&node).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["check", "add", "http", "home", "https://example.org"],
            "name",
        ),
        (
            &[
                "check",
                "add",
                "http",
                "x",
                "https://example.org",
                "--alerts",
                "nobody",
            ],
            "--alerts",
        ),
        (&["check", "add", "http", "y", "not a url"], "url"),
        (
            &[
                "check",
                "add",
                "tcp",
                "z",
                "db:5432",
                "--interval",
                "5s",
                "--timeout",
                "5s",
            ],
            "--timeout",
        ),
        (
            &["check", "add", "tcp", "w", "db:5432", "--interval", "soon"],
            "--interval",
        ),
        (
            &[
                "alert",
                "add",
                "discord",
                "oncall",
                "--webhook",
                "https://discord.com/api/webhooks/2/X",
            ],
            "name",
        ),
        (&["alert", "remove", "oncall"], "--force"),
        (
            &["check", "add", "tcp", "cas", "db:5432", "--if-version", "1"],
            "--if-version",
        ),
        (&["check", "remove", "ghost"], "qu check list"),
        (
            &[
                "check",
                "add",
                "icmp",
                "gw",
                "10.0.0.1",
                "--interval",
                "5s",
                "--timeout",
                "10s",
            ],
            "--timeout",
        ),
    ];
    for (args, needle) in cases {
        let out = node.qu(args);
        assert!(
            !out.status.success(),
            "{args:?} was accepted: {}",
            stdout(&out)
        );
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
        assert_eq!(version(&node), Some(v), "{args:?} changed the version");
    }
    // Compare-and-set succeeds with the right version.
    let out = node.ok(&[
        "check",
        "add",
        "tcp",
        "cas",
        "db:5432",
        "--if-version",
        &v.to_string(),
    ]);
    assert!(out.contains(&format!("config version {}", v + 1)), "{out}");
    // The seed README's own line: --interval 5s without --timeout.
    node.ok(&[
        "check",
        "add",
        "icmp",
        "gateway",
        "10.0.0.1",
        "--interval",
        "5s",
    ]);
    let shown = node.ok(&["check", "show", "gateway"]);
    assert!(shown.contains("timeout 2s500ms"), "{shown}");
    // Secrets never appear in listings.
    let listing = node.ok(&["alert", "list", "--json"]);
    assert!(!listing.contains("SECRET"), "{listing}");
}

#[test]
fn node_add_refuses_wrong_fingerprints_dead_addresses_and_claimed_nodes() {
    let _g = serial();
    let mut a = Node::init(&[]);
    let mut b = Node::init(&[]);
    a.start();
    b.start();
    let wrong = "SHA256:".to_string() + &"A".repeat(42) + "E";
    let out = a.qu(&["node", "add", &b.advertise(), "--fingerprint", &wrong]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("FINGERPRINT MISMATCH"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        b.status().unwrap()["membership"],
        "fresh",
        "a refused add must not claim the node"
    );

    let dead = format!("127.0.0.1:{}", common::free_port());
    let started = Instant::now();
    let out = a.qu(&["node", "add", &dead, "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        stderr(&out).contains("cannot fetch the identity"),
        "{}",
        stderr(&out)
    );

    // Non-interactive without --yes/--fingerprint is refused, not hung.
    let out = a.qu(&["node", "add", &b.advertise()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--fingerprint"), "{}", stderr(&out));

    // b forms its own cluster; a cannot take it.
    b.ok(&["check", "add", "tcp", "mine", "10.0.0.1:22"]);
    let out = a.qu(&["node", "add", &b.advertise(), "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refuses to join another"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn removing_a_node_shrinks_the_quorum_unpins_it_and_tells_it() {
    let _g = serial();
    let nodes = cluster(3);
    let m = master(&nodes[0]).unwrap();
    let victim = nodes.iter().position(|n| n.node_id() != m).unwrap();
    let victim_id = nodes[victim].node_id();
    let other = (0..3)
        .find(|i| *i != victim && nodes[*i].node_id() != m)
        .unwrap();
    let out = nodes[other].ok(&["node", "remove", &victim_id[..6]]);
    assert!(out.contains(&format!("removed node {victim_id}")), "{out}");
    for (i, n) in nodes.iter().enumerate().filter(|(i, _)| *i != victim) {
        wait_for(
            "quorum of 2 and the victim unpinned",
            Duration::from_secs(10),
            || {
                let s = n.status()?;
                let trust = n.ok(&["trust", "list"]);
                (s["voters"] == 2 && s["need"] == 2 && !trust.contains(&victim_id)).then_some(())
            },
        );
        assert!(i != victim);
    }
    wait_for(
        "the removed node to say so",
        Duration::from_secs(10),
        || {
            let out = nodes[victim].qu(&["status"]);
            (out.status.code() == Some(2) && stdout(&out).contains("REMOVED")).then_some(())
        },
    );
    // The cluster keeps working, and refuses to remove its last nodes' quorum.
    nodes[other].ok(&["check", "add", "tcp", "still", "10.0.0.1:22"]);
}

#[test]
fn linearizable_reads_go_through_the_leader_and_refuse_without_quorum() {
    let _g = serial();
    let mut nodes = cluster(3);
    let m = master(&nodes[0]).unwrap();
    let follower = nodes.iter().position(|n| n.node_id() != m).unwrap();
    let out = nodes[follower].ok(&["check", "add", "tcp", "lin", "10.0.0.1:22"]);
    let v: u64 = out.trim().rsplit(' ').next().unwrap().parse().unwrap();
    let read: serde_json::Value =
        serde_json::from_str(&nodes[follower].ok(&["check", "list", "--json", "--linearizable"]))
            .unwrap();
    assert_eq!(read["version"], v);
    assert_eq!(read["checks"][0]["name"], "lin");
    // Without a quorum, a linearizable read fails while a local one answers.
    let keep = follower;
    for (i, n) in nodes.iter_mut().enumerate() {
        if i != keep {
            n.kill();
        }
    }
    let out = nodes[keep].qu(&["check", "list", "--json", "--linearizable"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(nodes[keep]
        .qu(&["check", "list", "--json"])
        .status
        .success());
}
