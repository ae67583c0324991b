//! Per-node latency rollups end to end: three `qu serve` processes probe a
//! real HTTP target; `qu check show` on one node lists every node's own
//! probes (1h: probes > 0, 100 % success, percentiles), fetched from the
//! others over the transport; a killed node is then listed as not
//! answering while the other two still answer.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::target::Target;
use common::{cluster, stderr, stdout, wait_for, Node};

fn show(node: &Node) -> Option<serde_json::Value> {
    let out = node.qu(&["check", "show", "web", "--json"]);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// The 1h window of one row of `latency`.
fn hour(row: &serde_json::Value) -> Option<&serde_json::Value> {
    row["windows"]
        .as_array()?
        .iter()
        .find(|w| w["window"] == "1h")
}

/// Answered, with probes in the last hour, all of them successful.
fn healthy(row: &serde_json::Value) -> bool {
    row["answered"] == true
        && hour(row).is_some_and(|w| {
            w["probes"].as_u64().unwrap_or(0) > 0
                && w["success_pct"].as_f64() == Some(100.0)
                && w["p50_ms"].as_f64().is_some()
                && w["p99_ms"].as_f64().is_some()
        })
}

fn rows_by_node(v: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    v["latency"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| (r["node"].as_str().unwrap_or("").to_string(), r.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn check_show_lists_each_nodes_own_latency_and_marks_a_dead_node() {
    let mut nodes = cluster(3);
    let target = Target::start("127.0.0.1");
    nodes[0].ok(&[
        "check",
        "add",
        "http",
        "web",
        &target.url(),
        "--interval",
        "2s",
        "--timeout",
        "1s",
    ]);
    let ids: BTreeSet<String> = nodes.iter().map(|n| n.node_id()).collect();

    // Every node's own probes, as node 0 shows them.
    let v = wait_for(
        "node 0 to show probes of web by all three nodes",
        Duration::from_secs(40),
        || {
            let v = show(&nodes[0])?;
            let rows = rows_by_node(&v);
            let seen: BTreeSet<String> = rows.iter().map(|(n, _)| n.clone()).collect();
            (seen == ids && rows.iter().all(|(_, r)| healthy(r))).then_some(v)
        },
    );
    // The round timetable, as the fault-injection harness reads it: the
    // leader's last round started where the timetable says.
    assert_eq!(v["interval_ms"], 2000, "{v}");
    assert_eq!(v["timeout_ms"], 1000, "{v}");
    let offset = v["round_offset_ms"].as_u64().unwrap();
    assert!(offset < 2000 && offset % 100 == 0, "{v}");
    if let Some(round) = v["last_round"]["round"].as_u64() {
        assert_eq!(v["last_round"]["started_ms"], round * 2000 + offset, "{v}");
    }

    let rows = rows_by_node(&v);
    assert_eq!(rows[0].0, nodes[0].node_id(), "this node first: {v}");
    assert_eq!(rows[0].1["this_node"], true, "{v}");
    for (_, r) in &rows {
        let names: Vec<&str> = r["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["window"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["1h", "24h", "7d"], "{v}");
    }

    // The table, as people read it.
    let out = nodes[0].qu(&["check", "show", "web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("LATENCY"), "{text}");
    assert!(text.contains("SUCCESS %") && text.contains("P99"), "{text}");

    // This node's rollups are its own files, closed to others.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(nodes[1].path("rollups"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    // A clean restart keeps what node 1 counted (flushed at shutdown).
    let own_probes = |n: &Node| -> Option<u64> {
        let v = show(n)?;
        let rows = rows_by_node(&v);
        let (_, r) = rows.iter().find(|(_, r)| r["this_node"] == true)?;
        hour(r)?["probes"].as_u64()
    };
    let before = wait_for("node 1 to count 3 probes", Duration::from_secs(30), || {
        own_probes(&nodes[1]).filter(|&p| p >= 3)
    });
    let status = nodes[1].stop();
    assert!(status.success(), "{status:?}");
    nodes[1].start();
    let after = own_probes(&nodes[1]).unwrap();
    assert!(
        after >= before,
        "{after} probes after the restart, {before} before"
    );

    // Kill node 2: node 0 lists it as not answering, the other two still
    // answer with their probes.
    let dead = nodes[2].node_id();
    nodes[2].kill();
    let v = wait_for(
        "node 0 to mark the killed node as not answering",
        Duration::from_secs(30),
        || {
            let v = show(&nodes[0])?;
            let rows = rows_by_node(&v);
            let ok = rows.len() == 3
                && rows.iter().all(|(n, r)| {
                    if *n == dead {
                        r["answered"] == false
                            && r["note"]
                                .as_str()
                                .is_some_and(|s| s.starts_with("no answer"))
                    } else {
                        healthy(r)
                    }
                });
            ok.then_some(v)
        },
    );
    let out = nodes[0].qu(&["check", "show", "web"]);
    let text = stdout(&out);
    let dead_line = text
        .lines()
        .skip_while(|l| !l.starts_with("LATENCY"))
        .find(|l| l.starts_with(&dead))
        .unwrap_or_else(|| panic!("no row for {dead}: {text}\n{v}"));
    assert!(dead_line.contains("no answer"), "{text}");
    // Node 1 answers node 1's own numbers too, over the same transport.
    let v1 = show(&nodes[1]).unwrap();
    let r1 = rows_by_node(&v1);
    assert!(
        r1.iter()
            .any(|(n, r)| *n == nodes[0].node_id() && healthy(r)),
        "{v1}"
    );
}
