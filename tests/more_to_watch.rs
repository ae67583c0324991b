//! TLS, DNS and richer HTTP checks on a real three-node cluster (issue
//! 16): they vote and page like the other kinds. Real `qu serve`
//! processes on loopback, a real TLS server whose certificate the test
//! swaps, and a local webhook receiver.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::receiver::Receiver;
use common::tls_target::{TestCa, TlsTarget};
use common::{probing_cluster, stderr, wait_for, Node};

fn check_json(node: &Node, name: &str) -> Option<serde_json::Value> {
    let list: serde_json::Value =
        serde_json::from_str(&node.ok(&["check", "list", "--json"])).ok()?;
    list["checks"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
}

/// Runs a command that must fail; its stderr.
fn fails(node: &Node, args: &[&str]) -> String {
    let out = node.qu(args);
    assert!(!out.status.success(), "{args:?} succeeded");
    stderr(&out)
}

fn pages(hook: &Receiver) -> Vec<serde_json::Value> {
    hook.delivered().iter().map(|c| c.json()).collect()
}

#[test]
fn a_certificate_swapped_for_one_expiring_in_3_days_goes_down_on_every_node_and_pages_once() {
    let nodes = probing_cluster();
    let ca = TestCa::new("qu cluster test CA");
    let server = TlsTarget::start("127.0.0.1", &ca.leaf(&["127.0.0.1"], 30));
    let ca_file = nodes[0].path("test-ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let hook = Receiver::start();
    hook.set_default(204);
    nodes[0].ok(&[
        "alert",
        "add",
        "webhook",
        "hook",
        "--url",
        &hook.url("/hook"),
    ]);
    nodes[0].ok(&[
        "check",
        "add",
        "tls",
        "cert",
        &server.target(),
        "--ca",
        ca_file.to_str().unwrap(),
        "--warn-days",
        "7",
        "--interval",
        "1s",
        "--timeout",
        "800ms",
        "--alerts",
        "hook",
    ]);
    for n in &nodes {
        wait_for("cert up everywhere", Duration::from_secs(30), || {
            (check_json(n, "cert")?["state"] == "up").then_some(())
        });
    }
    // check show: days left as each node saw them.
    let show = nodes[1].ok(&["check", "show", "cert"]);
    assert!(
        show.contains("CERTIFICATE") && show.contains("expires in 30 days"),
        "{show}"
    );

    server.swap(&ca.leaf(&["127.0.0.1"], 3));
    for n in &nodes {
        wait_for("cert down everywhere", Duration::from_secs(30), || {
            let c = check_json(n, "cert")?;
            (c["state"] == "down").then_some(())
        });
        let c = check_json(n, "cert").unwrap();
        let votes = c["votes"].as_str().unwrap_or_default();
        assert!(
            votes.contains("down: certificate expires in 3 days ("),
            "{votes}"
        );
    }
    let detail: serde_json::Value =
        serde_json::from_str(&nodes[2].ok(&["check", "show", "cert", "--json"])).unwrap();
    let evidence = detail["last_transition"]["evidence"].as_array().unwrap();
    assert_eq!(evidence.len(), 3, "{detail}");
    for e in evidence {
        assert_eq!(e["ok"], false, "{e}");
        assert!(e["reason"]
            .as_str()
            .unwrap()
            .starts_with("certificate expires in 3 days"));
        assert!(e["cert_not_after_ms"].as_u64().is_some(), "{e}");
    }
    wait_for("the DOWN page", Duration::from_secs(20), || {
        (!pages(&hook).is_empty()).then_some(())
    });
    // Paged once: swap back, wait for the recovery page (a later event),
    // and count what came before it.
    server.swap(&ca.leaf(&["127.0.0.1"], 60));
    wait_for("the RECOVERED page", Duration::from_secs(30), || {
        pages(&hook)
            .iter()
            .any(|p| p["event"] == "recovered")
            .then_some(())
    });
    let events: Vec<String> = pages(&hook)
        .iter()
        .map(|p| p["event"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(events, vec!["down", "recovered"], "{events:?}");
}

#[test]
fn level_3_kinds_are_validated_at_add_time_and_listed() {
    // A fresh node: it forms a one-node cluster at the first change.
    let mut node = Node::init(&[]);
    node.start();
    let n = &node;
    let bad = |args: &[&str], want: &str| {
        let out = fails(n, args);
        assert!(out.contains(want), "{args:?}: {out}");
    };
    bad(
        &[
            "check",
            "add",
            "dns",
            "d",
            "example.com",
            "--record",
            "AXFR",
        ],
        "is not a record type",
    );
    bad(
        &[
            "check",
            "add",
            "tls",
            "t",
            "example.com",
            "--warn-days",
            "400",
        ],
        "--warn-days",
    );
    bad(
        &[
            "check",
            "add",
            "http",
            "h",
            "https://example.com/",
            "--regex",
            "--body-match",
            "(x",
        ],
        "--body-match",
    );
    bad(
        &[
            "check",
            "add",
            "http",
            "h",
            "https://example.com/",
            "--json-path",
            "$.a[",
        ],
        "--json-path",
    );
    bad(
        &[
            "check",
            "add",
            "dns",
            "d",
            "example.com",
            "--resolver",
            "dns.google",
        ],
        "--resolver",
    );
    let list = n.ok(&["check", "list", "--json"]);
    assert!(
        !list.contains("\"name\": \"d\""),
        "nothing was added: {list}"
    );
    n.ok(&[
        "check",
        "add",
        "dns",
        "d",
        "example.com",
        "--record",
        "mx",
        "--expect",
        "10 mail.example.com",
        "--resolver",
        "127.0.0.1:5353",
    ]);
    n.ok(&[
        "check",
        "add",
        "http",
        "api",
        "https://example.com/health",
        "--method",
        "post",
        "--header",
        "Authorization: Bearer hunter2",
        "--expect",
        "2xx,301",
        "--json-path",
        "$.status",
        "--json-expect",
        "ok",
    ]);
    let d = check_json(n, "d").unwrap();
    assert_eq!(d["type"], "dns");
    assert_eq!(d["target"], "example.com MX");
    assert_eq!(d["spec"]["record"], "MX");
    let api = check_json(n, "api").unwrap();
    assert_eq!(api["spec"]["method"], "POST");
    assert_eq!(api["spec"]["expect"], "2xx,301");
    let text = n.ok(&["check", "list", "--json"]) + &n.ok(&["check", "show", "api"]);
    assert!(!text.contains("hunter2"), "a secret header leaked: {text}");
    assert!(text.contains("Bearer ****"), "{text}");
    n.ok(&["cluster", "resolvers", "set", "127.0.0.1:5353", "9.9.9.9"]);
    let r: serde_json::Value =
        serde_json::from_str(&n.ok(&["cluster", "resolvers", "show", "--json"])).unwrap();
    assert_eq!(
        r["resolvers"],
        serde_json::json!(["127.0.0.1:5353", "9.9.9.9"])
    );
    fails(n, &["cluster", "resolvers", "set", "resolver.example"]);
    n.ok(&["cluster", "resolvers", "clear"]);
    assert!(n
        .ok(&["cluster", "resolvers", "show"])
        .contains("no cluster DNS servers"));
}
