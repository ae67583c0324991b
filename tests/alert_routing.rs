//! Routing through the ledger, end to end: real `qu serve` processes, a
//! target the test breaks and repairs, local receivers standing in for a
//! webhook, Slack and PagerDuty. `--after` holds a DOWN until the leader
//! commits its release; `--on` picks the events per alert; templates make
//! the text.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::receiver::Receiver;
use common::target::{Mode, Target};
use common::{master, stdout, wait_for, Node};

static SERIAL: Mutex<()> = Mutex::new(());

/// The webhook payloads a receiver accepted, as JSON.
fn pages(r: &Receiver) -> Vec<serde_json::Value> {
    r.delivered().iter().map(|c| c.json()).collect()
}

fn events(r: &Receiver) -> Vec<String> {
    pages(r)
        .iter()
        .map(|p| p["event"].as_str().unwrap_or("?").to_string())
        .collect()
}

fn log(node: &Node) -> Vec<serde_json::Value> {
    let out = node.ok(&["alert", "log", "--json"]);
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The ledger's rows for alert `alert`.
fn rows_of(node: &Node, alert: &str) -> Vec<serde_json::Value> {
    log(node)
        .into_iter()
        .filter(|d| d["alert"] == alert)
        .collect()
}

fn hook(node: &Node, name: &str, r: &Receiver, extra: &[&str]) {
    let url = r.url(&format!("/{name}"));
    let mut args = vec!["alert", "add", "webhook", name, "--url", &url];
    args.extend_from_slice(extra);
    node.ok(&args);
}

fn up(node: &Node) {
    wait_for("web up", Duration::from_secs(20), || {
        stdout(&node.qu(&["check", "list"]))
            .contains(" up ")
            .then_some(())
    });
}

#[test]
fn after_holds_a_short_outage_back_and_pages_a_long_one_once_each_way() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let nodes = common::cluster(3);
    let target = Target::start("127.0.0.1");
    let now = Receiver::start();
    let late = Receiver::start();
    hook(&nodes[0], "now", &now, &[]);
    hook(&nodes[1], "late", &late, &["--after", "3s"]);
    let list = nodes[2].ok(&["alert", "list"]);
    assert!(list.contains("AFTER") && list.contains("3s"), "{list}");
    common::add_web(&nodes[0], &target.url(), "now,late");
    up(&nodes[0]);

    // A short outage: repaired as soon as it is DOWN. Its length is what
    // the cluster recorded (the witness's RECOVERED says, in outage_ms);
    // on a loaded machine it may come out at 3 s or more, and then --after
    // rightly pages: try again.
    let mut outages = vec![];
    for attempt in 1..=3 {
        let before = now.delivered().len();
        target.set(Mode::Status(503));
        wait_for("the witness's DOWN", Duration::from_secs(20), || {
            (now.delivered().len() > before).then_some(())
        });
        target.set(Mode::Up);
        let recovered = wait_for("the witness's RECOVERED", Duration::from_secs(20), || {
            pages(&now)
                .into_iter()
                .skip(before)
                .find(|p| p["event"] == "recovered")
        });
        let outage_ms = recovered["outage_ms"].as_u64().unwrap();
        outages.push(outage_ms);
        // The RECOVERED is committed after the DOWN was settled one way or
        // the other: the ledger now says which, for good.
        let rows = rows_of(&nodes[2], "late");
        let down = rows
            .iter()
            .find(|d| d["event"] == "DOWN" && d["status"] != "delivered")
            .cloned();
        if outage_ms < 3_000 {
            let down = down.unwrap_or_else(|| panic!("attempt {attempt}: {rows:#?}"));
            let status = down["status"].as_str().unwrap();
            assert!(
                status.starts_with("skipped (recovered after ")
                    && status.ends_with("within --after 3s)"),
                "{status}"
            );
            assert!(
                !rows.iter().any(|d| d["event"] == "RECOVERED"),
                "no RECOVERED for a DOWN never sent: {rows:#?}"
            );
            assert!(late.requests().is_empty(), "{:?}", events(&late));
            break;
        }
        eprintln!("attempt {attempt}: the outage lasted {outage_ms} ms (>= --after); again");
        assert!(
            attempt < 3,
            "no outage under 3 s in three tries: {outages:?}"
        );
        // Settled: sent, or skipped (at the 3 s boundary the ledger's own
        // measure of the outage may fall just under --after while the
        // witness's outage_ms rounds to 3 s or more); nothing still held.
        wait_for("the late pages to settle", Duration::from_secs(20), || {
            (rows_of(&nodes[2], "late").iter().all(|d| {
                d["status"] == "delivered"
                    || d["status"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("skipped"))
            }))
            .then_some(())
        });
    }
    let sent_before = late.delivered().len();

    // A long outage: the DOWN goes out once the delay ran out, not before.
    target.set(Mode::Status(503));
    let down = wait_for("the witness's DOWN", Duration::from_secs(20), || {
        pages(&now)
            .into_iter()
            .filter(|p| p["event"] == "down")
            .nth(outages.len())
    });
    // `since` has second precision: before since + 3 s the delay has
    // surely not run out, so the page must still be held.
    let since = rfc3339_ms(down["since"].as_str().unwrap());
    let rows = rows_of(&nodes[1], "late");
    if now_ms() < since + 3_000 {
        let pending = rows
            .iter()
            .find(|d| d["status"].as_str().unwrap_or("").starts_with("delayed"))
            .unwrap_or_else(|| panic!("the late DOWN waits: {rows:#?}"));
        assert_eq!(pending["event"], "DOWN");
        assert_eq!(late.delivered().len(), sent_before);
    } else {
        eprintln!("read the ledger too late to see the held page (loaded machine)");
    }
    let late_down = wait_for("the late DOWN", Duration::from_secs(20), || {
        pages(&late).into_iter().nth(sent_before)
    });
    assert_eq!(late_down["event"], "down");
    assert_eq!(late_down["since"], down["since"], "the same outage");
    // Held past 6 s in all (since + 7 s: `since` is rounded down), then
    // repaired.
    wait_for("six seconds of outage", Duration::from_secs(20), || {
        (now_ms() >= since + 7_000).then_some(())
    });
    target.set(Mode::Up);
    let late_up = wait_for("the late RECOVERED", Duration::from_secs(20), || {
        pages(&late).into_iter().nth(sent_before + 1)
    });
    assert_eq!(late_up["event"], "recovered");
    assert!(late_up["outage_ms"].as_u64().unwrap() >= 6_000, "{late_up}");
    // Every late page of that outage is settled and the check is UP: the
    // ledger makes no more, so exactly one of each arrived.
    wait_for("the ledger to settle", Duration::from_secs(10), || {
        rows_of(&nodes[0], "late")
            .iter()
            .all(|d| {
                let s = d["status"].as_str().unwrap_or("");
                s == "delivered" || s.starts_with("skipped")
            })
            .then_some(())
    });
    let ids: Vec<String> = pages(&late)
        .iter()
        .skip(sent_before)
        .map(|p| p["delivery_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "one DOWN and one RECOVERED: {ids:?}");
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn a_delayed_page_pending_when_the_master_dies_is_sent_once_by_the_next() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut nodes = common::cluster(3);
    let target = Target::start("127.0.0.1");
    let late = Receiver::start();
    // Long enough to read the ledger and kill the master before it runs out.
    hook(&nodes[0], "late", &late, &["--after", "8s"]);
    common::add_web(&nodes[0], &target.url(), "late");
    up(&nodes[0]);
    target.set(Mode::Status(503));
    wait_for(
        "the delayed DOWN in the ledger",
        Duration::from_secs(20),
        || {
            log(&nodes[1])
                .iter()
                .any(|d| d["status"].as_str().unwrap_or("").starts_with("delayed"))
                .then_some(())
        },
    );
    assert!(late.requests().is_empty());
    let old = master(&nodes[0]).unwrap();
    let li = nodes.iter().position(|n| n.node_id() == old).unwrap();
    nodes[li].kill();
    let other = (li + 1) % 3;
    wait_for("a new master", Duration::from_secs(15), || {
        master(&nodes[other]).filter(|m| *m != old)
    });
    let page = wait_for(
        "the DOWN from the new master",
        Duration::from_secs(30),
        || pages(&late).into_iter().next(),
    );
    assert_eq!(page["event"], "down");
    assert_ne!(page["master"].as_str(), Some(old.as_str()));
    // The old master comes back; repair; the RECOVERED follows, once.
    nodes[li].start();
    target.set(Mode::Up);
    wait_for("the RECOVERED", Duration::from_secs(30), || {
        (events(&late) == ["down", "recovered"]).then_some(())
    });
    wait_for("the ledger to settle", Duration::from_secs(10), || {
        log(&nodes[other])
            .iter()
            .all(|d| d["status"] == "delivered")
            .then_some(())
    });
    let ids: Vec<String> = pages(&late)
        .iter()
        .map(|p| p["delivery_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(log(&nodes[other]).len(), 2);
}

#[test]
fn down_to_pagerduty_and_slack_recovered_to_slack_only_in_their_own_words() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let nodes = common::cluster(3);
    let target = Target::start("127.0.0.1");
    let pd = Receiver::start();
    pd.set_default(202);
    let slack = Receiver::start();
    let key = "0123456789abcdef0123456789abcdef";
    nodes[0].ok(&[
        "alert",
        "add",
        "pagerduty",
        "pd",
        "--routing-key",
        key,
        "--api-url",
        &pd.url(""),
        "--on",
        "down",
        "--title",
        "{{ check.name }} is {{ state }} ({{ votes }})",
    ]);
    nodes[1].ok(&[
        "alert",
        "add",
        "slack",
        "chat",
        "--webhook",
        &slack.url("/services/T0/B0/SECRET"),
        "--title",
        "{{ state }}: {{ check.name }}",
        "--body",
        "{% if outage %}back after {{ outage }}{% else %}down since {{ since }}{% endif %}",
    ]);
    // A broken template is refused with its place, and changes nothing.
    let bad = nodes[2].qu(&["alert", "edit", "chat", "--body", "{% if %}"]);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr).to_string();
    assert!(
        err.contains("--body: the template does not work at line 1, column"),
        "{err}"
    );
    let listed = nodes[2].ok(&["alert", "list", "--json"]);
    assert!(
        !listed.contains("SECRET") && !listed.contains(key),
        "{listed}"
    );
    assert!(listed.contains("back after {{ outage }}"), "{listed}");
    // `qu alert test` sends and shows the rendered text.
    let tested = nodes[2].ok(&["alert", "test", "chat"]);
    assert!(
        tested.contains("\"TEST: test of alert chat\"") && tested.contains("\ndown since "),
        "{tested}"
    );
    assert_eq!(slack.delivered().len(), 1);
    common::add_web(&nodes[0], &target.url(), "pd,chat");
    up(&nodes[0]);

    target.set(Mode::Status(503));
    wait_for("DOWN to both", Duration::from_secs(20), || {
        (pd.delivered().len() == 1 && slack.delivered().len() == 2).then_some(())
    });
    let trigger = pd.delivered()[0].json();
    assert_eq!(pd.delivered()[0].path, "/v2/enqueue");
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], key);
    let summary = trigger["payload"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("web is DOWN (") && summary.contains(" down: HTTP 503"),
        "{trigger}"
    );
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert!(trigger["dedup_key"].as_str().unwrap().starts_with("qu-"));
    let down = slack.delivered()[1].json();
    assert_eq!(down["blocks"][0]["text"]["text"], "DOWN: web");
    assert!(down["blocks"][1]["text"]["text"]
        .as_str()
        .unwrap()
        .starts_with("down since "));

    target.set(Mode::Up);
    wait_for("RECOVERED to Slack", Duration::from_secs(20), || {
        (slack.delivered().len() == 3).then_some(())
    });
    let back = slack.delivered()[2].json();
    assert_eq!(back["blocks"][0]["text"]["text"], "RECOVERED: web");
    assert!(back["blocks"][1]["text"]["text"]
        .as_str()
        .unwrap()
        .starts_with("back after "));
    // The ledger holds three pages, all delivered, and made none for the
    // RECOVERED PagerDuty does not get: nothing more can come.
    wait_for("the ledger to settle", Duration::from_secs(10), || {
        let rows: Vec<_> = log(&nodes[2])
            .into_iter()
            .filter(|d| d["event"] != "TEST")
            .collect();
        (rows.len() == 3 && rows.iter().all(|d| d["status"] == "delivered")).then_some(())
    });
    assert_eq!(pd.requests().len(), 1);
    assert_eq!(slack.requests().len(), 3);
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Milliseconds since the epoch of an RFC 3339 UTC time.
fn rfc3339_ms(s: &str) -> u64 {
    humantime::parse_rfc3339(s)
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `qu alert add` for every new provider on a one-node cluster: good
/// settings are taken and listed with their secrets masked; bad ones are
/// refused naming the flag, without echoing the secret, changing nothing.
#[test]
fn every_new_provider_is_added_validated_and_masked() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut node = Node::init(&[]);
    node.start();
    let secret = "S3CRETs3cret0123456789abcdefXY";
    let pd_key = "S3CRET456789abcdef0123456789abcd";
    let good: Vec<Vec<&str>> = vec![
        vec![
            "slack",
            "s1",
            "--webhook",
            "https://hooks.slack.com/services/T0/B0/S3CRET",
        ],
        vec![
            "telegram",
            "t1",
            "--token",
            "123:S3CRET",
            "--chat-id",
            "-1001234567890",
        ],
        vec![
            "pagerduty",
            "p1",
            "--routing-key",
            pd_key,
            "--severity",
            "warning",
        ],
        vec![
            "opsgenie",
            "o1",
            "--api-key",
            secret,
            "--region",
            "eu",
            "--priority",
            "p2",
        ],
        vec![
            "ntfy",
            "n1",
            "--url",
            "https://ntfy.sh/qu-test",
            "--token",
            secret,
            "--priority",
            "4",
            "--tags",
            "warning,prod",
        ],
        vec![
            "teams",
            "m1",
            "--webhook",
            "https://x.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sig=S3CRET",
        ],
        vec![
            "matrix",
            "x1",
            "--homeserver",
            "https://matrix.example.org",
            "--room",
            "#ops:example.org",
            "--token",
            secret,
        ],
        vec![
            "pushover",
            "u1",
            "--token",
            secret,
            "--user",
            secret,
            "--priority",
            "-1",
        ],
        vec![
            "gotify",
            "g1",
            "--url",
            "https://gotify.example.org",
            "--token",
            secret,
            "--priority",
            "8",
        ],
    ];
    for args in &good {
        let mut full = vec!["alert", "add"];
        full.extend_from_slice(args);
        node.ok(&full);
    }
    let listed = node.ok(&["alert", "list", "--json"]);
    assert!(!listed.contains("S3CRET"), "{listed}");
    let rows: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let kinds: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    for k in [
        "slack",
        "telegram",
        "pagerduty",
        "opsgenie",
        "ntfy",
        "teams",
        "matrix",
        "pushover",
        "gotify",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    let table = node.ok(&["alert", "list"]);
    assert!(!table.contains("S3CRET"), "{table}");
    let version = common::version(&node);
    let bad: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["telegram", "t2", "--token", "S3CRET", "--chat-id", "1"],
            "--token",
        ),
        (
            vec!["telegram", "t2", "--token", "1:S3CRET", "--chat-id", "ops"],
            "--chat-id",
        ),
        (
            vec!["pagerduty", "p2", "--routing-key", "S3CRET"],
            "--routing-key",
        ),
        (
            vec![
                "pagerduty",
                "p2",
                "--routing-key",
                pd_key,
                "--severity",
                "fatal",
            ],
            "--severity",
        ),
        (
            vec!["opsgenie", "o2", "--api-key", secret, "--region", "asia"],
            "--region",
        ),
        (vec!["ntfy", "n2", "--url", "https://ntfy.sh/"], "--url"),
        (
            vec![
                "matrix",
                "x2",
                "--homeserver",
                "https://m.org",
                "--room",
                "ops",
                "--token",
                secret,
            ],
            "--room",
        ),
        (
            vec!["pushover", "u2", "--token", "S3CRET", "--user", secret],
            "--token",
        ),
        (
            vec![
                "gotify",
                "g2",
                "--url",
                "gotify.example.org",
                "--token",
                secret,
            ],
            "--url",
        ),
        (
            vec![
                "slack",
                "s2",
                "--webhook",
                "https://hooks.slack.com/x",
                "--after",
                "25h",
            ],
            "--after",
        ),
        (
            vec![
                "slack",
                "s2",
                "--webhook",
                "https://hooks.slack.com/x",
                "--on",
                "down",
                "--repeat",
                "1h",
            ],
            "--repeat",
        ),
        (
            vec![
                "slack",
                "s2",
                "--webhook",
                "https://hooks.slack.com/x",
                "--title",
                "{{ chek.name }}",
            ],
            "--title",
        ),
    ];
    for (args, flag) in &bad {
        let mut full = vec!["alert", "add"];
        full.extend_from_slice(args);
        let out = node.qu(&full);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?} should name {flag}: {err}");
        assert!(!err.contains("S3CRET"), "{err}");
    }
    // clap refuses an unknown event before anything is sent.
    let out = node.qu(&[
        "alert",
        "add",
        "slack",
        "s3",
        "--webhook",
        "https://hooks.slack.com/x",
        "--on",
        "flapping",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"flapping\" is not an event"));
    assert_eq!(common::version(&node), version, "refusals changed nothing");
    // Every new kind explains itself.
    for k in [
        "slack",
        "telegram",
        "pagerduty",
        "opsgenie",
        "ntfy",
        "teams",
        "matrix",
        "pushover",
        "gotify",
    ] {
        let help = node.ok(&["alert", "add", k, "--help"]);
        assert!(
            help.contains("--after") && help.contains("--title"),
            "{k}: {help}"
        );
    }
    // An edit of a new kind's secret and routing keeps the rest.
    node.ok(&[
        "alert",
        "edit",
        "t1",
        "--token",
        "456:S3CRET",
        "--on",
        "down,recovered",
        "--after",
        "1m",
    ]);
    let listed = node.ok(&["alert", "list", "--json"]);
    let t1 = serde_json::from_str::<serde_json::Value>(&listed)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "t1")
        .cloned()
        .unwrap();
    assert_eq!(t1["on"], "down,recovered");
    assert_eq!(t1["after"], "1m");
    assert_eq!(t1["spec"]["chat_id"], "-1001234567890");
    assert!(!listed.contains("S3CRET"));
}

/// Level 5 (the new providers, templates, routing) never reaches the log
/// while a member reads only level 4; level-1 alerts still go in.
#[test]
fn level_5_alerts_are_refused_while_a_member_runs_level_4() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut a = Node::init(&[]);
    a.start();
    let mut old = Node::init(&[]);
    old.start();
    a.ok(&["node", "add", &old.advertise(), "--yes"]);
    old.stop();
    old.spawn_serve_env(&["--timing", "fast"], &[("QU_FAILPOINT", "report-level-4")]);
    old.wait_ready();
    wait_for("both voters live again", Duration::from_secs(15), || {
        let s = a.status()?;
        (s["voters"] == 2 && s["quorum"] == true).then_some(())
    });
    a.ok(&[
        "alert",
        "add",
        "webhook",
        "plain",
        "--url",
        "https://hooks.example.com/x",
    ]);
    let before = common::version(&a);
    for args in [
        vec![
            "alert",
            "add",
            "slack",
            "s",
            "--webhook",
            "https://hooks.slack.com/services/T/B/X",
        ],
        vec![
            "alert",
            "add",
            "webhook",
            "w",
            "--url",
            "https://hooks.example.com/y",
            "--after",
            "5s",
        ],
        vec!["alert", "edit", "plain", "--title", "{{ check.name }}"],
        vec!["alert", "edit", "plain", "--on", "down"],
    ] {
        let out = a.qu(&args);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!("node {} runs log level 4", old.node_id())),
            "{args:?}: {err}"
        );
    }
    assert_eq!(common::version(&a), before, "nothing reached the log");
    let st = a.status().unwrap();
    assert_eq!(st["reads_log_level"], 5, "{st:#}");
    assert!(st["log_level"].as_u64().unwrap() <= 4, "{st:#}");
    a.ok(&["alert", "edit", "plain", "--repeat", "1h"]);

    // The member is upgraded (restarted on this release): the same
    // command is accepted, and the cluster commits level 5.
    old.stop();
    old.start();
    wait_for("both voters live again", Duration::from_secs(15), || {
        let s = a.status()?;
        (s["voters"] == 2 && s["quorum"] == true).then_some(())
    });
    a.ok(&[
        "alert",
        "add",
        "slack",
        "s",
        "--webhook",
        "https://hooks.slack.com/services/T/B/X",
    ]);
    wait_for("log level 5 committed", Duration::from_secs(10), || {
        (a.status()?["log_level"] == 5).then_some(())
    });
    wait_for(
        "the upgraded member to apply it",
        Duration::from_secs(10),
        || {
            old.ok(&["alert", "list", "--json"])
                .contains("\"slack\"")
                .then_some(())
        },
    );
}
