//! The operator's first hour (issue 14): the mistakes a new user makes get
//! a refusal or a message that names the cause and the fix, and nothing is
//! deleted or silently changed. Real `qu serve` processes on loopback.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::{cluster, master, stderr, stdout, version, wait_for, Node};

/// Clusters one at a time: election timers are not starved.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `qu ARGS`, which must fail (1, or clap's 2 for a bad argument);
/// its stderr.
fn refused(node: &Node, args: &[&str]) -> String {
    let out = node.qu(args);
    assert!(
        matches!(out.status.code(), Some(1 | 2)),
        "qu {args:?} should be refused: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stderr(&out)
}

#[test]
fn names_that_look_like_ids_are_refused_and_nothing_is_removed_by_mistake() {
    let _g = serial();
    let mut node = Node::init(&[]);
    node.start();
    node.ok(&["check", "add", "tcp", "db", "127.0.0.1:9"]);
    let list: serde_json::Value =
        serde_json::from_str(&node.ok(&["check", "list", "--json"])).unwrap();
    let db_id = list["checks"][0]["id"].as_str().unwrap().to_string();
    // A new check named like the existing check's id: refused, so the
    // later `check remove <that>` cannot hit the wrong check.
    let err = refused(&node, &["check", "add", "tcp", &db_id, "127.0.0.1:10"]);
    assert!(err.contains("looks like an id"), "{err}");
    let err = refused(
        &node,
        &[
            "alert",
            "add",
            "webhook",
            "0badcafe",
            "--url",
            "http://127.0.0.1:9/x",
        ],
    );
    assert!(err.contains("looks like an id"), "{err}");
    let before = version(&node);
    // Removing by the id still removes exactly that check.
    let out = node.ok(&["check", "remove", &db_id]);
    assert!(out.contains("db"), "{out}");
    assert_eq!(version(&node), before.map(|v| v + 1));
}

#[test]
fn input_mistakes_are_refused_with_the_cause_and_change_nothing() {
    let _g = serial();
    let mut node = Node::init(&[]);
    node.start();
    node.ok(&[
        "alert",
        "add",
        "webhook",
        "pager",
        "--url",
        "http://127.0.0.1:9/x",
    ]);
    let before = version(&node);
    // Durations: exactly Go's grammar.
    let err = refused(
        &node,
        &[
            "check",
            "add",
            "tcp",
            "a",
            "127.0.0.1:9",
            "--interval",
            "5sec",
        ],
    );
    assert!(err.contains("not one of ns, us, ms, s, m, h"), "{err}");
    for bad in ["5min", "1d"] {
        refused(
            &node,
            &["check", "add", "tcp", "a", "127.0.0.1:9", "--interval", bad],
        );
    }
    // A URL with one slash, and a TCP target written as a URL.
    let err = refused(
        &node,
        &["check", "add", "http", "web", "http:/127.0.0.1:18080/"],
    );
    assert!(err.contains("must start with http:// or https://"), "{err}");
    let err = refused(
        &node,
        &["check", "add", "tcp", "web", "http://127.0.0.1:18080"],
    );
    assert!(
        err.contains("drop the http:// and give e.g. 127.0.0.1:18080"),
        "{err}"
    );
    // --expect takes codes and classes (200,204 or 2xx,301), nothing else.
    let err = refused(
        &node,
        &[
            "check",
            "add",
            "http",
            "web",
            "http://127.0.0.1:1/",
            "--expect",
            "2xx,7xx",
        ],
    );
    assert!(
        err.contains("\"7xx\" is not a status code (100-599) or class (1xx-5xx)"),
        "{err}"
    );
    // Every missing alert named at once.
    let err = refused(
        &node,
        &[
            "check",
            "add",
            "tcp",
            "a",
            "127.0.0.1:9",
            "--alerts",
            "pager,nope,gone",
        ],
    );
    assert!(err.contains("\"nope\", \"gone\""), "{err}");
    assert_eq!(version(&node), before, "nothing changed");

    // What is right is accepted: a fraction, spaces and repeats in --alerts.
    let out = node.ok(&[
        "check",
        "add",
        "tcp",
        "a",
        "127.0.0.1:9",
        "--interval",
        "1.5s",
        "--alerts",
        "pager, pager",
    ]);
    assert!(out.contains("added tcp check a"), "{out}");
    let list: serde_json::Value =
        serde_json::from_str(&node.ok(&["check", "list", "--json"])).unwrap();
    assert_eq!(list["checks"][0]["interval"], "1s500ms");
    assert_eq!(list["checks"][0]["alerts"], serde_json::json!(["pager"]));
}

#[test]
fn init_listens_on_the_advertised_port_refuses_unreachable_advertise_and_echoes_dir() {
    let root = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .unwrap();
    let dir = root.path().join("state");
    let run = |args: &[&str]| {
        std::process::Command::new(common::qu_bin())
            .arg("--dir")
            .arg(&dir)
            .args(args)
            .env_remove("QUPTIME_DIR")
            .output()
            .unwrap()
    };
    let out = run(&["init", "--advertise", "0.0.0.0:19201"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not an address other nodes can dial"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.exists(), "a refused init creates nothing");
    let out = run(&["init", "--advertise", "[::]:19201"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    let out = run(&["init", "--advertise", "127.0.0.1:19201"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("listen       0.0.0.0:19201"), "{text}");
    assert!(
        text.contains(&format!("next: run 'qu serve --dir {}'", dir.display())),
        "{text}"
    );
    let yaml = std::fs::read_to_string(dir.join("node.yaml")).unwrap();
    assert!(yaml.contains("bind_port: 19201"), "{yaml}");
}

#[test]
fn a_second_serve_on_the_same_state_directory_names_the_first() {
    let _g = serial();
    let mut node = Node::init(&[]);
    node.start();
    let pid = node.child.as_ref().unwrap().id();
    let other_socket = node.root.path().join("other.sock");
    let out = node
        .command()
        .env("QUPTIME_SOCKET", &other_socket)
        .args(["serve", "--timing", "fast"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "another qu serve (pid {pid}) already uses {}",
            node.dir.display()
        )),
        "{}",
        stderr(&out)
    );
    // The first one is untouched.
    assert!(node.status().is_some());
}

#[test]
fn a_fresh_node_is_a_working_one_node_cluster_in_text_json_and_exit_code() {
    let _g = serial();
    let mut node = Node::init(&[]);
    node.start();
    let out = node.qu(&["status"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("quorum      true"),
        "{}",
        stdout(&out)
    );
    let s = node.status().unwrap();
    assert_eq!(s["membership"], "fresh");
    assert_eq!(s["quorum"], true);
    assert_eq!(
        (s["need"].as_u64(), s["voters"].as_u64()),
        (Some(1), Some(1))
    );
}

#[test]
fn trust_remove_of_a_member_needs_force_and_node_add_restores_the_pin() {
    let _g = serial();
    let nodes = cluster(3);
    let peer = nodes[1].node_id();
    let err = refused(&nodes[0], &["trust", "remove", &peer]);
    assert!(
        err.contains("is a current cluster member") && err.contains("qu node remove"),
        "{err}"
    );
    assert!(nodes[0].ok(&["trust", "list"]).contains(&peer));
    let out = nodes[0].qu(&["trust", "remove", &peer, "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!nodes[0].ok(&["trust", "list"]).contains(&peer));
    // Re-adding the voter says so at once and re-pins it, without a prompt.
    let out = nodes[0].ok(&["node", "add", &nodes[1].advertise()]);
    assert!(
        out.contains("is already a voter of this cluster") && !out.contains("joining it"),
        "{out}"
    );
    assert!(nodes[0].ok(&["trust", "list"]).contains(&peer));
}

#[test]
fn node_add_without_a_terminal_says_how_to_proceed() {
    let _g = serial();
    let mut a = Node::init(&[]);
    a.start();
    let mut b = Node::init(&[]);
    b.start();
    let out = a.qu(&["node", "add", &b.advertise()]);
    assert_eq!(out.status.code(), Some(1));
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(
        text.contains("Trust this node and add it to the cluster? [y/N]"),
        "{text}"
    );
    assert!(err.contains("--fingerprint SHA256:"), "{err}");
    assert_eq!(b.status().unwrap()["membership"], "fresh", "nothing joined");
}

#[test]
fn removals_need_four_characters_and_a_removed_node_answers_nothing_as_a_member() {
    let _g = serial();
    let nodes = cluster(3);
    nodes[0].ok(&["check", "add", "tcp", "db", "127.0.0.1:9"]);
    let m = master(&nodes[0]).unwrap();
    let victim = nodes.iter().position(|n| n.node_id() != m).unwrap();
    let id = nodes[victim].node_id();
    let other = (0..3).find(|i| *i != victim).unwrap();
    let err = refused(&nodes[other], &["node", "remove", &id[..1]]);
    assert!(err.contains("at least 4 characters"), "{err}");
    assert_eq!(nodes[other].status().unwrap()["voters"], 3);
    nodes[other].ok(&["node", "remove", &id[..4]]);
    wait_for("the removed node to know", Duration::from_secs(10), || {
        (nodes[victim].status()?["membership"] == "removed").then_some(())
    });
    for args in [
        &["check", "list"][..],
        &["node", "list"],
        &["alert", "list"],
    ] {
        let err = refused(&nodes[victim], args);
        assert!(
            err.contains("was removed from its cluster"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn without_quorum_status_names_the_last_master_and_marks_states_stale() {
    let _g = serial();
    let mut nodes = cluster(3);
    nodes[0].ok(&["check", "add", "tcp", "db", "127.0.0.1:9"]);
    let m = master(&nodes[0]).unwrap();
    let keep = nodes.iter().position(|n| n.node_id() != m).unwrap();
    for (i, n) in nodes.iter_mut().enumerate() {
        if i != keep {
            n.kill();
        }
    }
    let s = wait_for(
        "the survivor to see no quorum",
        Duration::from_secs(15),
        || {
            let s = nodes[keep].status()?;
            (s["quorum"] == false).then_some(s)
        },
    );
    assert!(s["master"].is_null(), "{s}");
    assert_eq!(s["checks"][0]["stale"], true, "{s}");
    let out = nodes[keep].qu(&["status"]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    let short = &m[..4];
    assert!(
        text.contains("none (no quorum; last known") && text.contains(short),
        "{text}"
    );
    assert!(text.contains("(stale)"), "{text}");
    let list = nodes[keep].ok(&["check", "list"]);
    assert!(list.contains("(stale)"), "{list}");
}

#[test]
fn a_new_check_is_probed_at_once_and_show_prints_settings_and_times() {
    let _g = serial();
    let mut node = Node::init(&[]);
    node.start();
    let port = common::free_port();
    let target = format!("127.0.0.1:{port}");
    // An hour between rounds: without the probe at once, nothing for an hour.
    node.ok(&["check", "add", "tcp", "slow", &target, "--interval", "1h"]);
    let text = wait_for("the first probe", Duration::from_secs(10), || {
        let text = node.ok(&["check", "show", "slow"]);
        text.contains("this node   ").then_some(text)
    });
    assert!(
        text.contains("this node   fail in ")
            && text.contains(&format!("connection refused by {target}")),
        "{text}"
    );
    assert!(
        text.contains("probed at once when added; counts toward no verdict"),
        "{text}"
    );
    assert!(text.contains("interval    1h (timeout 10s)"), "{text}");
    assert!(text.contains("LAST FLIP   none yet"), "{text}");
    // No verdict came of it: the state is still unknown.
    assert!(text.contains("state       unknown"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&node.ok(&["check", "show", "slow", "--json"])).unwrap();
    assert_eq!(json["local_probe"]["counted"], false);

    // A fast check that goes down: show prints the flip's evidence with
    // its time, and rounds as times, not round numbers.
    node.ok(&["check", "add", "tcp", "fast", &target, "--interval", "1s"]);
    let text = wait_for("fast to go down", Duration::from_secs(20), || {
        let text = node.ok(&["check", "show", "fast"]);
        text.contains("state       down").then_some(text)
    });
    assert!(text.contains("LAST FLIP   Unknown → Down at 20"), "{text}");
    assert!(text.contains("LAST ROUND  started 20"), "{text}");
    assert!(
        text.contains(&format!("connection refused by {target}")),
        "{text}"
    );
}

#[test]
fn alert_log_shows_attempts_errors_retries_tests_and_removed_alerts_by_name() {
    let _g = serial();
    let receiver = common::receiver::Receiver::start();
    receiver.set_default(503);
    let mut node = Node::init(&[]);
    node.start();
    node.ok(&[
        "alert",
        "add",
        "webhook",
        "hook",
        "--url",
        &receiver.url("/hook"),
    ]);
    let target = format!("127.0.0.1:{}", common::free_port());
    node.ok(&[
        "check",
        "add",
        "tcp",
        "db",
        &target,
        "--interval",
        "1s",
        "--alerts",
        "hook",
    ]);
    let row = wait_for(
        "a failing attempt in the log",
        Duration::from_secs(20),
        || {
            let log: serde_json::Value =
                serde_json::from_str(&node.ok(&["alert", "log", "--json"])).ok()?;
            let row = log.as_array()?.first()?.clone();
            (row["status"] == "pending" && row["attempts"].as_u64() >= Some(1)).then_some(row)
        },
    );
    let reason = row["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("HTTP 503"), "{row}");
    assert!(row["next_retry"].is_string(), "{row}");
    let text = node.ok(&["alert", "log"]);
    assert!(
        text.contains("NEXT_RETRY") && text.contains("HTTP 503"),
        "{text}"
    );

    // A test page shows up in the log, marked as a test.
    receiver.set_default(204);
    node.ok(&["alert", "test", "hook"]);
    let log: serde_json::Value =
        serde_json::from_str(&node.ok(&["alert", "log", "--json"])).unwrap();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|r| r["event"] == "TEST" && r["alert"] == "hook" && r["status"] == "delivered"),
        "{log}"
    );
    wait_for("the page delivered", Duration::from_secs(20), || {
        let log: serde_json::Value =
            serde_json::from_str(&node.ok(&["alert", "log", "--json"])).ok()?;
        log.as_array()?
            .iter()
            .any(|r| r["event"] == "DOWN" && r["status"] == "delivered")
            .then_some(())
    });
    // The alert removed, its deliveries keep its name.
    node.ok(&["alert", "remove", "hook", "--force"]);
    let log: serde_json::Value =
        serde_json::from_str(&node.ok(&["alert", "log", "--json"])).unwrap();
    let down = log
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["event"] == "DOWN")
        .unwrap();
    assert_eq!(down["alert"], "hook", "{log}");
}

#[test]
fn secrets_come_from_files_or_stdin_and_plain_smtp_is_marked() {
    let _g = serial();
    let mut node = Node::init(&[]);
    node.start();
    let secret_file = node.root.path().join("smtp-password");
    std::fs::write(&secret_file, "s3cret-pass\n").unwrap();
    node.ok(&[
        "alert",
        "add",
        "smtp",
        "mail",
        "--host",
        "127.0.0.1",
        "--port",
        "2525",
        "--from",
        "qu@example.com",
        "--to",
        "ops@example.com",
        "--user",
        "qu",
        "--password-file",
        secret_file.to_str().unwrap(),
        "--starttls=false",
    ]);
    // The Discord URL from stdin.
    let mut child = node
        .command()
        .args(["alert", "add", "discord", "chat", "--webhook", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"https://discord.com/api/webhooks/1/TOKEN-from-stdin\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value =
        serde_json::from_str(&node.ok(&["alert", "list", "--json"])).unwrap();
    let by_name = |n: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == n)
            .unwrap()
            .clone()
    };
    let mail = by_name("mail");
    assert_eq!(mail["spec"]["password"], "****", "{mail}");
    assert!(
        mail["target"].as_str().unwrap().contains("PLAIN TEXT"),
        "{mail}"
    );
    let chat = by_name("chat");
    assert_eq!(chat["target"], "https://discord.com/api/webhooks/1/****");
    let text = node.ok(&["alert", "list"]);
    assert!(
        text.contains("PLAIN TEXT") && !text.contains("s3cret"),
        "{text}"
    );
    // An unreadable file is named, and nothing is added.
    let before = version(&node);
    let out = node.qu(&[
        "alert",
        "add",
        "discord",
        "other",
        "--webhook-file",
        "/nonexistent/hook",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--webhook-file /nonexistent/hook: cannot read it"),
        "{}",
        stderr(&out)
    );
    assert_eq!(version(&node), before);
}
