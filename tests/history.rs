//! History, uptime and the SLA report end to end: three `qu serve`
//! processes watch a real HTTP target that the test breaks for a measured
//! span; every node then reports the same committed history and the same
//! downtime, within one interval of the span the target really failed, and
//! keeps it across a restart.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::target::{Mode, Target};
use common::{cluster, stderr, stdout, wait_for, Node};

const INTERVAL: Duration = Duration::from_secs(2);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn json(node: &Node, args: &[&str]) -> serde_json::Value {
    let out = node.qu(args);
    assert!(out.status.success(), "qu {args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn state(node: &Node, name: &str) -> Option<String> {
    let out = node.qu(&["check", "show", name, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["check"]["state"].as_str().map(str::to_string)
}

fn wait_state(nodes: &[Node], name: &str, want: &str) {
    for n in nodes {
        wait_for(
            &format!("{name} to be {want} on every node"),
            Duration::from_secs(30),
            || (state(n, name).as_deref() == Some(want)).then_some(()),
        );
    }
}

/// (event, state) of each history row.
fn events(node: &Node, name: &str) -> Vec<(String, String)> {
    let v = json(node, &["check", "history", name, "--since", "1d", "--json"]);
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The report's figures for `name` with these fields, as numbers.
fn figures(node: &Node, name: &str) -> serde_json::Value {
    let v = json(
        node,
        &["report", "--since", "1h", "--check", name, "--json"],
    );
    let rows = v["checks"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v}");
    rows[0].clone()
}

#[test]
fn a_measured_outage_is_in_every_nodes_history_and_report_within_one_interval() {
    let mut nodes = cluster(3);
    let target = Target::start("127.0.0.1");
    let interval = format!("{}s", INTERVAL.as_secs());
    nodes[0].ok(&[
        "check",
        "add",
        "http",
        "web",
        &target.url(),
        "--interval",
        &interval,
        "--timeout",
        "1s",
    ]);
    wait_state(&nodes, "web", "up");

    target.set(Mode::Status(503));
    let broke_ms = now_ms();
    wait_state(&nodes, "web", "down");
    // Hold the outage for a few rounds past the verdict, then mend it.
    let held = std::time::Instant::now();
    wait_for("the outage to last 4 intervals", INTERVAL * 6, || {
        (held.elapsed() >= INTERVAL * 4).then_some(())
    });
    target.set(Mode::Up);
    let fixed_ms = now_ms();
    wait_state(&nodes, "web", "up");
    let real_ms = fixed_ms - broke_ms;

    // The same committed history on every node: added, then three flips,
    // the down flip with each voter's evidence.
    let want: Vec<(String, String)> = [
        ("added", "unknown"),
        ("flip", "unknown -> up"),
        ("flip", "up -> down"),
        ("flip", "down -> up"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let full = json(&nodes[0], &["check", "history", "web", "--json"]);
    let down = &full["events"][2];
    assert_eq!(down["detail"], "3/3 down: HTTP 503", "{full}");
    assert_eq!(down["evidence"].as_array().unwrap().len(), 3, "{full}");
    for n in &nodes {
        assert_eq!(events(n, "web"), want);
    }

    // The report: one outage whose length is the real one within one
    // interval, and the same figures on every node.
    let first = figures(&nodes[0], "web");
    let down_ms = first["down_ms"].as_u64().unwrap();
    eprintln!(
        "target failed for {real_ms} ms; report: {down_ms} ms down (interval {INTERVAL:?}): {first}"
    );
    assert_eq!(first["outages"], 1, "{first}");
    assert_eq!(first["longest_down_ms"], first["down_ms"]);
    assert_eq!(first["mttr_ms"], first["down_ms"]);
    assert!(
        down_ms.abs_diff(real_ms) <= INTERVAL.as_millis() as u64,
        "reported {down_ms} ms down, the target failed for {real_ms} ms"
    );
    let uptime = first["uptime_percent"].as_f64().unwrap();
    assert!(uptime > 0.0 && uptime < 100.0, "{first}");
    for n in &nodes[1..] {
        let f = figures(n, "web");
        for field in ["down_ms", "outages", "longest_down_ms", "mttr_ms"] {
            assert_eq!(f[field], first[field], "{field} on another node: {f}");
        }
    }
    // The list shows the same uptime, over its three windows.
    let list = json(&nodes[1], &["check", "list", "--json"]);
    let day = list["checks"][0]["uptime"]["24h"].as_f64().unwrap();
    assert!(day > 0.0 && day < 100.0, "{list}");
    let text = stdout(&nodes[1].qu(&["check", "list"]));
    assert!(text.contains("UPTIME 24H/7D/30D"), "{text}");
    // CSV: a header and one line, downtime in seconds.
    let csv = stdout(&nodes[2].qu(&["report", "--since", "1h", "--csv"]));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("id,name,type,from,to,uptime_percent,outages,downtime_s"));
    assert!(lines[1].contains(",web,http,"), "{csv}");

    // History is on disk: a node restarted keeps it.
    nodes[2].stop();
    nodes[2].start();
    assert_eq!(events(&nodes[2], "web"), want);

    // Pausing leaves an event on every node.
    nodes[0].ok(&["check", "pause", "web"]);
    for n in &nodes {
        wait_for("the pause in the history", Duration::from_secs(10), || {
            (events(n, "web").last().map(|e| e.0.as_str()) == Some("paused")).then_some(())
        });
    }
}

#[test]
fn retention_is_replicated_and_validated_and_bad_spans_change_nothing() {
    let nodes = cluster(3);
    let shown = json(&nodes[1], &["cluster", "retention", "--json"]);
    assert_eq!(shown["retention_ms"], 90 * 86_400_000u64);
    assert_eq!(shown["default"], true);
    let version = shown["version"].as_u64().unwrap();

    for (bad, says) in [
        ("12h", "retention: must be between 1d and 1095d"),
        ("4000d", "retention: must be between 1d and 1095d"),
        ("ninety", "is not a span"),
    ] {
        let out = nodes[0].qu(&["cluster", "retention", bad]);
        assert!(!out.status.success(), "{bad} accepted");
        assert!(stderr(&out).contains(says), "{bad}: {}", stderr(&out));
    }
    let out = nodes[0].qu(&["check", "history", "nope"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
    assert_eq!(
        json(&nodes[2], &["cluster", "retention", "--json"])["version"],
        version,
        "a refused change changed the version"
    );

    let said = nodes[0].ok(&["cluster", "retention", "30d"]);
    assert!(said.contains("kept 30d"), "{said}");
    for n in &nodes {
        wait_for(
            "the retention on every node",
            Duration::from_secs(10),
            || {
                let v = json(n, &["cluster", "retention", "--json"]);
                (v["retention_ms"] == 30 * 86_400_000u64 && v["default"] == false).then_some(())
            },
        );
    }
    let text = nodes[2].ok(&["cluster", "retention"]);
    assert_eq!(text.trim(), "check history is kept 30d");
}
