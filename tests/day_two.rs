//! Day-two operations (issue 15): pausing, editing and testing checks,
//! disabled and default alerts, silences, maintenance windows, repeats,
//! and the log-level gate that keeps a command a node one release older
//! cannot decode away from it. Real `qu serve` processes on loopback, real
//! HTTP targets and a local webhook receiver.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use common::receiver::Receiver;
use common::target::{Mode, Target};
use common::{add_web, cluster, master, probing_cluster, stderr, stdout, version, wait_for, Node};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn state_of(node: &Node, name: &str) -> Option<String> {
    let list: serde_json::Value =
        serde_json::from_str(&node.ok(&["check", "list", "--json"])).ok()?;
    list["checks"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
        .map(|c| c["state"].as_str().unwrap_or_default().to_string())
}

#[test]
fn a_paused_check_is_probed_nowhere_and_resumes_from_unknown() {
    let _g = serial();
    let nodes = cluster(3);
    let paused_target = Target::start("127.0.0.1");
    let other_target = Target::start("127.0.0.1");
    nodes[0].ok(&[
        "check",
        "add",
        "http",
        "web",
        &paused_target.url(),
        "--interval",
        "1s",
    ]);
    nodes[0].ok(&[
        "check",
        "add",
        "http",
        "other",
        &other_target.url(),
        "--interval",
        "1s",
    ]);
    for n in &nodes {
        wait_for("web up everywhere", Duration::from_secs(20), || {
            (state_of(n, "web")? == "up").then_some(())
        });
    }
    // Paused from a follower (the leader path carries it).
    let out = nodes[2].ok(&["check", "pause", "web"]);
    assert!(out.contains("paused check web"), "{out}");
    let v = version(&nodes[2]).unwrap();
    for n in &nodes {
        wait_for("the pause everywhere", Duration::from_secs(10), || {
            (version(n)? >= v && state_of(n, "web")? == "paused").then_some(())
        });
    }
    // Probes already on their way may still land; from now on none may.
    let other_before = other_target.requests.load(Ordering::SeqCst);
    wait_for(
        "one more round of the other check",
        Duration::from_secs(10),
        || (other_target.requests.load(Ordering::SeqCst) >= other_before + 3).then_some(()),
    );
    let paused_before = paused_target.requests.load(Ordering::SeqCst);
    // Three more rounds on every node prove the window passed.
    let other_mark = other_target.requests.load(Ordering::SeqCst);
    wait_for(
        "three rounds of the other check",
        Duration::from_secs(15),
        || (other_target.requests.load(Ordering::SeqCst) >= other_mark + 9).then_some(()),
    );
    assert_eq!(
        paused_target.requests.load(Ordering::SeqCst),
        paused_before,
        "a paused check was probed"
    );
    let text = nodes[1].ok(&["status"]);
    assert!(text.contains("paused"), "{text}");

    // `enable` is `resume`: probes come back, from unknown to up.
    let out = nodes[1].ok(&["check", "enable", "web"]);
    assert!(
        out.contains("resumed check web") && out.contains("from unknown"),
        "{out}"
    );
    wait_for("probes again", Duration::from_secs(10), || {
        (paused_target.requests.load(Ordering::SeqCst) >= paused_before + 3).then_some(())
    });
    wait_for("web up again", Duration::from_secs(20), || {
        (state_of(&nodes[0], "web")? == "up").then_some(())
    });

    // Bad input names the field and changes nothing.
    let before = version(&nodes[0]);
    let out = nodes[0].qu(&["check", "pause", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no check with id or name \"nope\""),
        "{}",
        stderr(&out)
    );
    assert_eq!(version(&nodes[0]), before);
}

#[test]
fn a_new_command_is_refused_while_a_member_runs_an_older_log_level() {
    let _g = serial();
    let mut a = Node::init(&[]);
    a.start();
    let mut old = Node::init(&[]);
    old.spawn_serve_env(&["--timing", "fast"], &[("QU_FAILPOINT", "report-level-1")]);
    old.wait_ready();
    // Adding a node that cannot read this release's log is refused.
    let out = a.qu(&["node", "add", &old.advertise(), "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("runs an older qu (log level 1"),
        "{}",
        stderr(&out)
    );

    // A member that (poses as one that) runs level 1 — restarted after
    // joining — keeps level-2 commands out of the log.
    old.stop();
    old.start();
    a.ok(&["node", "add", &old.advertise(), "--yes"]);
    old.stop();
    old.spawn_serve_env(&["--timing", "fast"], &[("QU_FAILPOINT", "report-level-1")]);
    old.wait_ready();
    wait_for("both voters live again", Duration::from_secs(15), || {
        let s = a.status()?;
        (s["voters"] == 2 && s["quorum"] == true).then_some(())
    });
    a.ok(&["check", "add", "tcp", "db", "127.0.0.1:9"]);
    let before = version(&a);
    let out = a.qu(&["check", "pause", "db"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("node {} runs log level 1", old.node_id())),
        "{}",
        stderr(&out)
    );
    assert_eq!(version(&a), before, "nothing reached the log");
    // Level-1 commands still work.
    a.ok(&["check", "remove", "db"]);
}

const IPS: [&str; 3] = common::PROBE_IPS;

fn show(node: &Node, name: &str) -> Option<serde_json::Value> {
    serde_json::from_str(&node.ok(&["check", "show", name, "--json"])).ok()
}

/// Waits until every node has applied what `from` has.
fn synced(nodes: &[Node], from: &Node) {
    let v = version(from).unwrap();
    for n in nodes {
        wait_for(
            "every node to apply the change",
            Duration::from_secs(10),
            || (version(n)? >= v).then_some(()),
        );
    }
}

/// Refused with exit 1, the message naming `field`, the version unchanged.
fn refused(node: &Node, args: &[&str], field: &str) {
    let before = version(node);
    let out = node.qu(args);
    // 1: the daemon refused it; 2: the command line did.
    assert!(
        matches!(out.status.code(), Some(1) | Some(2)),
        "{args:?}: {}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains(field),
        "{args:?} should name {field}: {}",
        stderr(&out)
    );
    assert_eq!(version(node), before, "{args:?} changed something");
}

#[test]
fn edits_keep_state_unless_the_target_changes_and_tests_commit_nothing() {
    let _g = serial();
    let nodes = probing_cluster();
    let target = Target::start("127.0.0.1");
    let second = Target::start("127.0.0.1");
    nodes[0].ok(&[
        "check",
        "add",
        "http",
        "web",
        &target.url(),
        "--interval",
        "1s",
    ]);
    for n in &nodes {
        wait_for("web up everywhere", Duration::from_secs(20), || {
            (state_of(n, "web")? == "up").then_some(())
        });
    }
    let before = show(&nodes[0], "web").unwrap();

    // Interval edited on a follower: every node follows within a round.
    let leader = master(&nodes[0]).unwrap();
    let follower = nodes.iter().find(|n| n.node_id() != leader).unwrap();
    let out = follower.ok(&["check", "edit", "web", "--interval", "3s"]);
    assert!(
        out.contains("edited check web") && out.contains("interval"),
        "{out}"
    );
    let v = version(follower).unwrap();
    for n in &nodes {
        wait_for("the edit everywhere", Duration::from_secs(10), || {
            (version(n)? >= v).then_some(())
        });
    }
    let edited = std::time::Instant::now();
    // Within one new round every node probes at the new interval: three
    // more probes from each, spaced by the interval, not by the old 1 s.
    for ip in IPS {
        let probes = wait_for("three probes at 3s", Duration::from_secs(20), || {
            let after: Vec<_> = target
                .probes_from(ip)
                .into_iter()
                .filter(|t| *t > edited + Duration::from_millis(3_200))
                .collect();
            (after.len() >= 3).then_some(after)
        });
        for pair in probes.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= Duration::from_millis(2_400),
                "node {ip} probed {gap:?} apart after the edit to 3s"
            );
        }
    }
    let after = show(&nodes[2], "web").unwrap();
    assert_eq!(after["check"]["interval"], "3s");
    assert_eq!(after["check"]["state"], "up");
    assert_eq!(after["flips"], before["flips"], "history kept");
    assert_eq!(
        after["check"]["since"], before["check"]["since"],
        "since kept"
    );

    // A new target: the state restarts at unknown, and says why.
    let out = nodes[0].ok(&["check", "edit", "web", "--url", &second.url()]);
    assert!(out.contains("restarted at unknown"), "{out}");
    let v = version(&nodes[0]).unwrap();
    wait_for("the new target on node 1", Duration::from_secs(10), || {
        (version(&nodes[1])? >= v).then_some(())
    });
    let text = nodes[1].ok(&["check", "show", "web"]);
    assert!(
        text.contains("the target changed from") && text.contains(&second.url()),
        "{text}"
    );
    assert_eq!(state_of(&nodes[1], "web").as_deref(), Some("unknown"));
    wait_for("web up on the new target", Duration::from_secs(30), || {
        (state_of(&nodes[0], "web")? == "up").then_some(())
    });
    assert!(second.requests.load(Ordering::SeqCst) > 0);

    // Bad edits name the field and change nothing.
    refused(
        &nodes[0],
        &["check", "edit", "nope", "--interval", "5s"],
        "no check with id or name \"nope\"",
    );
    refused(
        &nodes[0],
        &["check", "edit", "web", "--timeout", "5s"],
        "--timeout",
    );
    refused(
        &nodes[0],
        &["check", "edit", "web", "--target", "db:5432"],
        "--target",
    );
    refused(&nodes[0], &["check", "edit", "web"], "nothing to change");

    // `check test` on a target that fails for one node only: every node
    // probes at once, that node fails, the quorum says UP; nothing commits.
    second.set(Mode::FailFor([IPS[1].parse().unwrap()].into()));
    let v = version(&nodes[0]);
    let out = nodes[2].qu(&["check", "test", "http", &second.url(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "up", "{report}");
    let rows = report["nodes"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{report}");
    let failing: Vec<&serde_json::Value> = rows.iter().filter(|r| r["ok"] == false).collect();
    assert_eq!(failing.len(), 1, "{report}");
    assert_eq!(
        failing[0]["node_id"],
        serde_json::json!(nodes[1].node_id()),
        "{report}"
    );
    assert!(
        failing[0]["reason"].as_str().unwrap().contains("503"),
        "{report}"
    );
    // Everyone failing: DOWN, exit status 1; by name for an added check.
    second.set(Mode::Status(500));
    let out = nodes[0].qu(&["check", "test", "web"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("verdict: DOWN") && text.matches("fail").count() >= 3,
        "{text}"
    );
    // A node that does not answer is listed as such, within the bound.
    nodes[0].pause();
    second.set(Mode::Up);
    let asked = std::time::Instant::now();
    let out = nodes[2].qu(&[
        "check",
        "test",
        "http",
        &second.url(),
        "--timeout",
        "1s",
        "--json",
    ]);
    let took = asked.elapsed();
    nodes[0].resume();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let silent: Vec<&serde_json::Value> = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["answered"] == false)
        .collect();
    assert_eq!(silent.len(), 1, "{report}");
    assert_eq!(silent[0]["node_id"], serde_json::json!(nodes[0].node_id()));
    assert_eq!(
        report["verdict"], "up",
        "two of three answered ok: {report}"
    );
    assert!(took < Duration::from_secs(8), "the test took {took:?}");
    assert_eq!(version(&nodes[2]), v, "a test committed something");
    assert_eq!(
        state_of(&nodes[0], "web").as_deref(),
        Some("up"),
        "a test flipped the state"
    );
    refused(
        &nodes[0],
        &["check", "test", "http", "ftp://x"],
        "http:// or https://",
    );
}

/// Deliveries the receiver accepted, as their JSON.
fn pages(hook: &Receiver) -> Vec<serde_json::Value> {
    hook.delivered().iter().map(|c| c.json()).collect()
}

fn alert_log(node: &Node) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(&node.ok(&["alert", "log", "--json"]))
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

fn silences(node: &Node) -> usize {
    serde_json::from_str::<serde_json::Value>(&node.ok(&["silence", "list", "--json"]))
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(usize::MAX)
}

#[test]
fn silences_hold_pages_and_their_end_pages_the_current_state_once() {
    let _g = serial();
    let nodes = cluster(3);
    let hook = Receiver::start();
    hook.set_default(204);
    let target = Target::start("127.0.0.1");
    let url = hook.url("/hook");
    nodes[0].ok(&[
        "alert",
        "add",
        "webhook",
        "hook",
        "--url",
        &url,
        "--default",
    ]);
    // Added without --alerts: gets the default alert; 'none' opts out.
    nodes[0].ok(&[
        "check",
        "add",
        "http",
        "web",
        &target.url(),
        "--interval",
        "1s",
    ]);
    nodes[0].ok(&[
        "check",
        "add",
        "tcp",
        "quiet",
        "127.0.0.1:9",
        "--alerts",
        "none",
    ]);
    synced(&nodes, &nodes[0]);
    let list = nodes[1].ok(&["check", "list"]);
    let web_line = list.lines().find(|l| l.contains(" web ")).unwrap();
    let quiet_line = list.lines().find(|l| l.contains(" quiet ")).unwrap();
    assert!(web_line.contains("hook"), "{list}");
    assert!(quiet_line.contains("(none)"), "{list}");
    // No longer a default: a new check without --alerts gets none.
    let out = nodes[0].ok(&["alert", "default", "hook", "off"]);
    assert!(out.contains("edited alert hook"), "{out}");
    nodes[0].ok(&["check", "add", "tcp", "later", "127.0.0.1:9"]);
    let later = show(&nodes[0], "later").unwrap();
    assert_eq!(later["check"]["alerts"], serde_json::json!([]), "{later}");
    nodes[0].ok(&["alert", "default", "hook", "on"]);
    nodes[0].ok(&["check", "remove", "later"]);
    wait_for("web up", Duration::from_secs(20), || {
        (state_of(&nodes[0], "web")? == "up").then_some(())
    });

    // A silence over an outage still down at its end: no page during it,
    // one DOWN page at its end.
    let out = nodes[2].ok(&["silence", "add", "web", "--for", "8s", "--reason", "deploy"]);
    assert!(
        out.contains("added silence") && out.contains("until"),
        "{out}"
    );
    synced(&nodes, &nodes[2]);
    let status = nodes[0].ok(&["status"]);
    assert!(
        status.contains("MUTED") && status.contains(" until "),
        "{status}"
    );
    target.set(Mode::Status(503));
    wait_for("web down while silenced", Duration::from_secs(20), || {
        (state_of(&nodes[1], "web")? == "down").then_some(())
    });
    let log = alert_log(&nodes[1]);
    assert!(
        log.iter()
            .any(|d| d["status"].as_str().unwrap_or("").starts_with("silenced (")),
        "{log:?}"
    );
    assert!(hook.requests().is_empty(), "paged while silenced");
    wait_for("the silence to end", Duration::from_secs(20), || {
        (silences(&nodes[0]) == 0).then_some(())
    });
    wait_for("the page owed", Duration::from_secs(20), || {
        (pages(&hook).len() == 1).then_some(())
    });
    assert_eq!(pages(&hook)[0]["event"], "down", "{:?}", pages(&hook));
    // The recovery pages as usual.
    target.set(Mode::Up);
    wait_for("the recovery page", Duration::from_secs(20), || {
        (pages(&hook).len() == 2).then_some(())
    });

    // An outage that begins and ends inside a silence pages nothing, also
    // at its end.
    nodes[0].ok(&["silence", "add", "--all", "--for", "10s"]);
    target.set(Mode::Status(503));
    wait_for("down inside the silence", Duration::from_secs(20), || {
        (state_of(&nodes[0], "web")? == "down").then_some(())
    });
    target.set(Mode::Up);
    wait_for("up inside the silence", Duration::from_secs(20), || {
        (state_of(&nodes[0], "web")? == "up").then_some(())
    });
    assert!(
        silences(&nodes[0]) > 0,
        "the silence ended too early for this test"
    );
    wait_for("the silence to end", Duration::from_secs(20), || {
        (silences(&nodes[0]) == 0).then_some(())
    });
    // A later event: three more rounds of web after the end.
    let mark = target.requests.load(Ordering::SeqCst);
    wait_for("three more rounds", Duration::from_secs(15), || {
        (target.requests.load(Ordering::SeqCst) >= mark + 9).then_some(())
    });
    assert_eq!(pages(&hook).len(), 2, "an outage inside a silence paged");

    // A disabled alert sends nothing and says so in the log.
    nodes[1].ok(&["alert", "disable", "hook"]);
    synced(&nodes, &nodes[1]);
    let alerts = nodes[0].ok(&["alert", "list"]);
    assert!(alerts.contains("DISABLED"), "{alerts}");
    target.set(Mode::Status(503));
    wait_for("a skipped delivery", Duration::from_secs(20), || {
        alert_log(&nodes[2])
            .iter()
            .any(|d| d["status"] == "skipped (alert disabled)")
            .then_some(())
    });
    nodes[1].ok(&["alert", "enable", "hook"]);
    target.set(Mode::Up);
    wait_for(
        "the recovery page once enabled",
        Duration::from_secs(20),
        || (pages(&hook).len() == 3).then_some(()),
    );
    assert_eq!(pages(&hook)[2]["event"], "recovered");

    // Maintenance windows: listed with their next opening.
    nodes[0].ok(&[
        "maintenance",
        "add",
        "sunday",
        "--every",
        "sun 02:00",
        "--duration",
        "2h",
        "--tz",
        "Europe/Berlin",
        "web",
    ]);
    synced(&nodes, &nodes[0]);
    let list = nodes[2].ok(&["maintenance", "list"]);
    assert!(
        list.contains("sunday") && list.contains("Sun ") && list.contains("CET"),
        "{list}"
    );

    // Bad input names the field and changes nothing.
    refused(
        &nodes[0],
        &["silence", "add", "web", "--for", "0s"],
        "--for",
    );
    refused(
        &nodes[0],
        &["silence", "add", "web", "--for", "-5m"],
        "--for",
    );
    refused(
        &nodes[0],
        &["silence", "add", "nope", "--for", "1h"],
        "no check named \"nope\"",
    );
    refused(
        &nodes[0],
        &["silence", "add", "web", "--until", "2020-01-01T00:00:00Z"],
        "--until",
    );
    refused(
        &nodes[0],
        &[
            "maintenance",
            "add",
            "w2",
            "--every",
            "sun 02:00",
            "--duration",
            "1h",
            "--tz",
            "Mars/Olympus",
            "web",
        ],
        "--tz",
    );
    refused(
        &nodes[0],
        &[
            "maintenance",
            "add",
            "w3",
            "--every",
            "feb 30 02:00",
            "--duration",
            "1h",
            "web",
        ],
        "never occurs",
    );
    refused(
        &nodes[0],
        &["alert", "edit", "hook", "--host", "smtp.example.com"],
        "--host",
    );
    refused(
        &nodes[0],
        &["alert", "edit", "hook", "--repeat", "10ms"],
        "--repeat",
    );
}

#[test]
fn a_master_killed_as_a_silence_ends_leaves_its_page_to_the_next_exactly_once() {
    let _g = serial();
    // B (smallest id, so the master) aborts right before its first send,
    // which is the page owed at the silence's end.
    let mut nodes = common::failing_master_cluster("before-send");
    let hook = Receiver::start();
    hook.set_default(204);
    let target = Target::start("127.0.0.1");
    target.set(Mode::Status(503));
    nodes[0].ok(&[
        "alert",
        "add",
        "webhook",
        "hook",
        "--url",
        &hook.url("/hook"),
    ]);
    nodes[0].ok(&["silence", "add", "--all", "--for", "6s"]);
    add_web(&nodes[0], &target.url(), "hook");
    wait_for("down while silenced", Duration::from_secs(20), || {
        (state_of(&nodes[0], "web")? == "down").then_some(())
    });
    assert!(
        silences(&nodes[0]) > 0,
        "the silence ended too early for this test"
    );
    let status = nodes[1].wait_exit(Duration::from_secs(30));
    assert!(!status.success(), "B should have crashed at its first send");
    assert!(
        nodes[1].log().contains("failpoint before-send"),
        "{}",
        nodes[1].log()
    );
    wait_for(
        "the next leader to deliver",
        Duration::from_secs(20),
        || (hook.delivered().len() == 1).then_some(()),
    );
    assert_eq!(pages(&hook)[0]["event"], "down");
    // A later event: the new leader commits three more rounds' worth.
    let mark = target.requests.load(Ordering::SeqCst);
    wait_for("three more rounds", Duration::from_secs(15), || {
        (target.requests.load(Ordering::SeqCst) >= mark + 6).then_some(())
    });
    assert_eq!(hook.requests().len(), 1, "exactly one send");
    nodes[1].start();
}

/// The deliveries of the replicated state, as cluster.yaml mirrors them.
fn mirrored_deliveries(node: &Node) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(node.path("cluster.yaml")).unwrap_or_default();
    let state: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap_or_default();
    state["deliveries"]
        .as_object()
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn repeat_every_2s_over_a_7s_outage_pages_three_repeats_and_none_after() {
    let _g = serial();
    let nodes = cluster(3);
    let hook = Receiver::start();
    hook.set_default(204);
    let target = Target::start("127.0.0.1");
    nodes[0].ok(&[
        "alert",
        "add",
        "webhook",
        "hook",
        "--url",
        &hook.url("/hook"),
        "--repeat",
        "2s",
    ]);
    add_web(&nodes[0], &target.url(), "hook");
    wait_for("web up", Duration::from_secs(20), || {
        (state_of(&nodes[0], "web")? == "up").then_some(())
    });
    target.set(Mode::Status(503));
    std::thread::sleep(Duration::from_secs(7));
    target.set(Mode::Up);
    wait_for("the recovery page", Duration::from_secs(20), || {
        pages(&hook)
            .iter()
            .any(|p| p["event"] == "recovered")
            .then_some(())
    });
    // A later event: three more rounds past two repeat periods.
    let mark = target.requests.load(Ordering::SeqCst);
    wait_for("more rounds", Duration::from_secs(20), || {
        (target.requests.load(Ordering::SeqCst) >= mark + 12).then_some(())
    });
    // The ledger to the millisecond (listings show seconds): cluster.yaml
    // mirrors the replicated state, deliveries included.
    let ledger = wait_for("the mirror of the ledger", Duration::from_secs(10), || {
        let d = mirrored_deliveries(&nodes[1]);
        d.iter().any(|d| d["transition"]["to"] == "up").then_some(d)
    });
    let at = |d: &serde_json::Value| d["transition"]["at_ms"].as_u64().unwrap();
    let plain = |d: &&serde_json::Value| d["note"].as_str().unwrap_or("").is_empty();
    let down = at(ledger
        .iter()
        .filter(plain)
        .find(|d| d["transition"]["to"] == "down")
        .unwrap());
    let up = at(ledger
        .iter()
        .filter(plain)
        .find(|d| d["transition"]["to"] == "up")
        .unwrap());
    let repeats: Vec<&serde_json::Value> = ledger
        .iter()
        .filter(|d| d["note"].as_str().unwrap_or("").starts_with("repeat "))
        .collect();
    let spell = up - down;
    println!("DOWN for {spell} ms, {} repeats", repeats.len());
    // Repeat n is due 2n s after the DOWN was committed and is recorded
    // only while the check is still down. Those due well inside the spell
    // must all be there, none due well after it; one due within the 300 ms
    // around the recovery (the leader ticks every 250 ms, and the UP flip
    // is dated when evaluated, a few ms before it commits) may go either way.
    let band = 300;
    let must = (1..).take_while(|n| down + 2_000 * n + band < up).count();
    let may = (1..).take_while(|n| down + 2_000 * n < up + band).count();
    assert!(
        (must..=may).contains(&repeats.len()),
        "{} repeats over a {spell} ms DOWN spell (expected {must}..={may}): {ledger:?}",
        repeats.len()
    );
    assert!(repeats.len() >= 2, "{ledger:?}");
    for r in &repeats {
        assert!(
            r["created_ms"].as_u64().unwrap() < up + band,
            "a repeat after the recovery: {r}"
        );
        assert_eq!(r["status"], "delivered", "{r}");
    }
    let log = alert_log(&nodes[1]);
    assert_eq!(
        log.iter()
            .filter(|d| d["event"]
                .as_str()
                .unwrap_or("")
                .starts_with("DOWN (repeat "))
            .count(),
        repeats.len(),
        "qu alert log shows the repeats: {log:?}"
    );
    let sent = pages(&hook);
    let noted = sent
        .iter()
        .filter(|p| p["note"].as_str().unwrap_or("").starts_with("repeat "))
        .count();
    assert_eq!(noted, repeats.len(), "repeat pages say so: {sent:?}");
    let downs = sent.iter().filter(|p| p["event"] == "down").count();
    assert_eq!(
        downs,
        1 + repeats.len(),
        "one page per repeat record: {sent:?}"
    );
    assert_eq!(sent.iter().filter(|p| p["event"] == "recovered").count(), 1);
}
