//! `qu init`, `qu serve` and the CLI as a user runs them: real processes,
//! real files, a real control socket.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{stderr, stdout, Node};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_creates_identity_files_with_safe_modes() {
    let node = Node::init(&[]);
    for f in [
        "node.yaml",
        "trust.yaml",
        "keys/private.pem",
        "keys/public.pem",
        "keys/cert.pem",
    ] {
        assert!(node.path(f).is_file(), "{f} missing");
    }
    assert_eq!(mode(&node.dir), 0o700);
    assert_eq!(mode(&node.path("keys")), 0o700);
    assert_eq!(mode(&node.path("keys/private.pem")), 0o600);
    let yaml = std::fs::read_to_string(node.path("node.yaml")).unwrap();
    assert!(
        yaml.contains(&format!("advertise: {}", node.advertise())),
        "{yaml}"
    );
    assert!(
        yaml.contains(&format!("bind_port: {}", node.port)),
        "{yaml}"
    );
    // The key is RSA-3072: a PKCS#8 RSA-3072 key is about 2.4 KB of PEM.
    let key = std::fs::read_to_string(node.path("keys/private.pem")).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(
        key.len() > 2300 && key.len() < 2600,
        "unexpected key size {}",
        key.len()
    );
}

#[test]
fn init_prints_node_id_and_fingerprint_consistent_with_node_yaml() {
    let node = Node::new();
    let out = node.qu(&["init", "--advertise", "alpha.example.com:9001"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let id_line = text.lines().find(|l| l.starts_with("node id")).unwrap();
    let id = id_line.split_whitespace().last().unwrap();
    assert_eq!(id.len(), 16);
    assert!(id
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    let fp_line = text.lines().find(|l| l.starts_with("fingerprint")).unwrap();
    let fp = fp_line.split_whitespace().last().unwrap();
    assert!(fp.starts_with("SHA256:") && fp.len() == 50, "{fp}");
    let yaml = std::fs::read_to_string(node.path("node.yaml")).unwrap();
    assert!(yaml.contains(&format!("node_id: {id}")));
    assert!(
        yaml.contains("bind_addr: 0.0.0.0"),
        "default bind address: {yaml}"
    );
    assert!(yaml.contains("bind_port: 9001"), "default port: {yaml}");
}

#[test]
fn init_refuses_to_overwrite_and_names_the_way_out() {
    let node = Node::init(&[]);
    let before = std::fs::read(node.path("keys/private.pem")).unwrap();
    let out = node.qu(&["init", "--advertise", "127.0.0.1:9999"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert!(err.contains("run 'qu init' again"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err}");
    assert_eq!(
        std::fs::read(node.path("keys/private.pem")).unwrap(),
        before
    );
}

#[test]
fn init_pins_a_node_id_when_asked() {
    let node = Node::init(&["--node-id", "00000000000000a1"]);
    let yaml = std::fs::read_to_string(node.path("node.yaml")).unwrap();
    assert!(yaml.contains("node_id: 00000000000000a1"), "{yaml}");
}

#[test]
fn init_with_bad_input_fails_clearly_and_creates_nothing() {
    let cases: &[(&[&str], &str)] = &[
        (&["init", "--advertise", "no-port-here"], "--advertise"),
        (
            &["init", "--advertise", "h:1", "--node-id", "not-hex"],
            "node-id",
        ),
        (
            &["init", "--advertise", "h:1", "--join-from", "SHA256:short"],
            "join-from",
        ),
        (&["init", "--advertise", "h:1", "--port", "0"], "port"),
    ];
    for (args, needle) in cases {
        let node = Node::new();
        let out = node.qu(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr(&out);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!node.path("node.yaml").exists(), "{args:?} left node.yaml");
        assert!(
            !node.path("keys/private.pem").exists(),
            "{args:?} left a key"
        );
    }
}

#[test]
fn dir_flag_overrides_the_environment() {
    let node = Node::new();
    let other = node.root.path().join("elsewhere");
    let out = node.qu(&[
        "--dir",
        other.to_str().unwrap(),
        "init",
        "--advertise",
        "h:1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(other.join("node.yaml").is_file());
    assert!(!node.path("node.yaml").exists());
}

#[test]
fn cli_without_a_daemon_says_how_to_fix_it() {
    let node = Node::init(&[]);
    for args in [&["status"][..], &["trust", "list"][..]] {
        let out = node.qu(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            stderr(&out).trim(),
            format!(
                "qu: cannot reach the qu daemon at {} (no socket there: is 'qu serve' running? It may use another --socket / QUPTIME_SOCKET)",
                node.socket.display()
            )
        );
    } // A socket left behind by a daemon that died: the cause is named.
    drop(std::os::unix::net::UnixListener::bind(&node.socket).unwrap());
    let out = node.qu(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "qu: cannot reach the qu daemon at {} (nothing listens on the socket: is 'qu serve' running?)",
            node.socket.display()
        )
    );
}

#[test]
fn serve_answers_the_cli_and_shuts_down_cleanly_on_sigterm() {
    let mut node = Node::init(&[]);
    node.start();

    let out = node.qu(&["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let yaml = std::fs::read_to_string(node.path("node.yaml")).unwrap();
    let id = yaml
        .lines()
        .find_map(|l| l.strip_prefix("node_id: "))
        .unwrap();
    assert!(
        text.contains(&format!("node        {}…", &id[..4])),
        "{text}"
    );
    assert!(text.contains("fingerprint SHA256:"), "{text}");
    assert!(text.contains("fresh"), "{text}");
    assert!(
        text.contains(&format!("listen      {}", node.advertise())),
        "{text}"
    );

    let json: serde_json::Value =
        serde_json::from_slice(&node.qu(&["status", "--json"]).stdout).unwrap();
    assert_eq!(json["node_id"], id);
    assert_eq!(json["listen"], node.advertise());

    let list = node.qu(&["trust", "list", "--json"]);
    assert!(list.status.success());
    let entries: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(entries, serde_json::json!([]));

    assert_eq!(mode(&node.socket), 0o600);
    let status = node.stop();
    assert!(status.success(), "exit status {status}: {}", node.log());
    assert!(!node.socket.exists(), "control socket left behind");
}

#[test]
fn serve_fails_clearly_without_state_or_when_it_cannot_bind() {
    let mut fresh = Node::new();
    fresh.spawn_serve(&[]);
    let status = fresh.wait_exit(Duration::from_secs(10));
    assert!(!status.success());
    assert!(fresh.log().contains("run 'qu init"), "{}", fresh.log());

    let mut node = Node::init(&[]);
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", node.port)).unwrap();
    node.spawn_serve(&[]);
    let status = node.wait_exit(Duration::from_secs(10));
    assert!(!status.success());
    assert!(
        node.log()
            .contains(&format!("cannot listen on 127.0.0.1:{}", node.port)),
        "{}",
        node.log()
    );
}

#[test]
fn a_second_daemon_on_the_same_socket_is_refused() {
    let mut first = Node::init(&[]);
    first.start();
    let mut second = Node::init(&[]);
    second.socket = first.socket.clone();
    second.spawn_serve(&[]);
    let status = second.wait_exit(Duration::from_secs(10));
    assert!(!status.success());
    assert!(second.log().contains("already serving"), "{}", second.log());
    // The first daemon is unharmed.
    assert!(first.qu(&["status"]).status.success());
}

#[test]
fn json_log_format_writes_json_lines() {
    let mut node = Node::init(&[]);
    node.spawn_serve(&["--log-format", "json"]);
    node.wait_ready();
    node.stop();
    let log = node.log();
    let first = log.lines().next().expect("no log line");
    let v: serde_json::Value =
        serde_json::from_str(first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert!(v["fields"]["message"].is_string(), "{first}");
}

#[test]
fn trust_list_and_remove_by_unique_prefix() {
    let mut node = Node::init(&[]);
    let fp = "SHA256:".to_string() + &"A".repeat(42) + "E";
    std::fs::write(
        node.path("trust.yaml"),
        format!(
            "entries:\n- node_id: 00ab000000000001\n  fingerprint: {fp}\n  advertise: peer.example:9001\n  added_at: 2026-11-24T00:00:00Z\n  source: tofu\n"
        ),
    )
    .unwrap();
    node.start();
    let list = stdout(&node.qu(&["trust", "list"]));
    assert!(list.starts_with("NODE_ID"), "{list}");
    assert!(
        list.contains("00ab000000000001")
            && list.contains("peer.example:9001")
            && list.contains(&fp),
        "{list}"
    );

    let bad = node.qu(&["trust", "remove", "ffff"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("no node id starts with"),
        "{}",
        stderr(&bad)
    );

    let out = node.qu(&["trust", "remove", "00ab"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("removed node 00ab000000000001"),
        "{}",
        stdout(&out)
    );
    let after: serde_json::Value =
        serde_json::from_slice(&node.qu(&["trust", "list", "--json"]).stdout).unwrap();
    assert_eq!(after, serde_json::json!([]));
    let on_disk = std::fs::read_to_string(node.path("trust.yaml")).unwrap();
    assert!(!on_disk.contains("00ab000000000001"), "{on_disk}");
}

#[test]
fn help_explains_every_command_and_its_defaults() {
    let node = Node::new();
    let top = stdout(&node.qu(&["--help"]));
    for cmd in ["init", "serve", "status", "trust"] {
        assert!(top.contains(cmd), "{top}");
    }
    let init = stdout(&node.qu(&["init", "--help"]));
    assert!(
        init.contains("--advertise")
            && init.contains("[default: the port of --advertise]")
            && init.contains("[default: 0.0.0.0]"),
        "{init}"
    );
    let serve = stdout(&node.qu(&["serve", "--help"]));
    assert!(
        serve.contains("--log-format") && serve.contains("RUST_LOG"),
        "{serve}"
    );
    let trust = stdout(&node.qu(&["trust", "remove", "--help"]));
    assert!(trust.contains("prefix"), "{trust}");
}

#[test]
fn a_duty_that_panics_is_restarted_and_shown_in_status() {
    let mut node = Node::init(&[]);
    node.spawn_serve_env(&["--timing", "fast"], &[("QU_FAILPOINT", "panic-dispatch")]);
    node.wait_ready();
    // Dispatch is a leader duty: form the one-node cluster so it starts.
    let out = node.qu(&["check", "add", "tcp", "db", "127.0.0.1:9"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let duty = common::wait_for(
        "the dispatch duty to be restarted",
        Duration::from_secs(10),
        || {
            let s = node.status()?;
            let d = s["duties"]
                .as_array()?
                .iter()
                .find(|d| d["name"] == "dispatch")?
                .clone();
            (d["restarts"] == 1 && d["running"] == true).then_some(d)
        },
    );
    assert!(
        duty["last_failure"]
            .as_str()
            .unwrap_or_default()
            .contains("failpoint panic-dispatch"),
        "{duty}"
    );
    let text = stdout(&node.qu(&["status"]));
    assert!(text.contains("dispatch running (1 restarts"), "{text}");
    assert!(node.log().contains("restarting"), "{}", node.log());
}

#[test]
fn a_duty_that_cannot_live_ends_the_daemon_with_a_non_zero_exit() {
    let mut node = Node::init(&[]);
    node.spawn_serve_env(
        &["--timing", "fast"],
        &[("QU_FAILPOINT", "panic-dispatch-always")],
    );
    node.wait_ready();
    // Dispatch is a leader duty: it starts once the node leads.
    let _ = node.qu(&["check", "add", "tcp", "db", "127.0.0.1:9"]);
    let status = node.wait_exit(Duration::from_secs(30));
    assert!(!status.success());
    assert!(node.log().contains("failed repeatedly"), "{}", node.log());
}
