//! Day-two operations (issue 15), the parts built so far: pausing and
//! resuming a check, and the log-level gate that keeps a command a node
//! one release older cannot decode away from it. Real `qu serve`
//! processes on loopback, a real HTTP target.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use common::target::Target;
use common::{cluster, stderr, stdout, version, wait_for, Node};

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
