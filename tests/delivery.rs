//! The delivery ledger end to end (SPEC §10): real `qu serve` processes, a
//! local receiver standing in for Discord, a real SMTP server, a target the
//! test breaks and repairs.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::smtp::SmtpServer;
use common::target::{Mode, Target};
use common::{master, stdout, wait_for, Node};

static SERIAL: Mutex<()> = Mutex::new(());

/// The `content` of every Discord message the receiver accepted.
fn discord_pages(r: &Receiver) -> Vec<String> {
    r.delivered()
        .iter()
        .filter_map(|c| c.json()["content"].as_str().map(str::to_string))
        .collect()
}

fn count(pages: &[String], word: &str) -> usize {
    pages
        .iter()
        .filter(|p| p.contains(&format!("[qu] {word}: web")))
        .count()
}

fn add_web(node: &Node, target: &Target, alerts: &str) {
    common::add_web(node, &target.url(), alerts);
}

#[test]
fn one_down_and_one_recovered_on_each_channel_also_when_the_leader_dies_in_between() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut nodes = common::cluster(3);
    let discord = Receiver::start();
    let smtp = SmtpServer::start(&[]);
    let target = Target::start("127.0.0.1");
    nodes[0].ok(&[
        "alert",
        "add",
        "discord",
        "oncall",
        "--webhook",
        &discord.url("/api/webhooks/1/TOKEN"),
    ]);
    let port = smtp.port.to_string();
    nodes[1].ok(&[
        "alert",
        "add",
        "smtp",
        "ops",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--from",
        "qu@example.com",
        "--to",
        "ops@example.com",
        "--starttls=false",
    ]);
    assert!(nodes[2]
        .ok(&["alert", "test", "oncall"])
        .contains("test page sent"));
    assert!(nodes[2]
        .ok(&["alert", "test", "ops"])
        .contains("test page sent"));
    wait_for("both test pages", Duration::from_secs(5), || {
        (discord_pages(&discord).len() == 1 && smtp.mails().len() == 1).then_some(())
    });
    add_web(&nodes[0], &target, "oncall,ops");
    wait_for("web up", Duration::from_secs(15), || {
        (stdout(&nodes[0].qu(&["check", "list"])).contains(" up ")).then_some(())
    });

    target.set(Mode::Status(503));
    wait_for("one DOWN on each channel", Duration::from_secs(20), || {
        let mails = smtp.mails();
        (count(&discord_pages(&discord), "DOWN") == 1
            && mails
                .iter()
                .filter(|m| m.contains("[qu] DOWN: web"))
                .count()
                == 1)
            .then_some(())
    });
    let page = discord_pages(&discord)
        .into_iter()
        .find(|p| p.contains("DOWN"))
        .unwrap();
    assert!(
        page.contains("3/3 down: HTTP 503") && page.contains("master:"),
        "{page}"
    );

    // Kill the leader between DOWN and RECOVERED.
    let old = master(&nodes[0]).unwrap();
    let li = nodes.iter().position(|n| n.node_id() == old).unwrap();
    nodes[li].kill();
    let other = (li + 1) % 3;
    wait_for("a new master", Duration::from_secs(10), || {
        master(&nodes[other]).filter(|m| *m != old)
    });

    target.set(Mode::Up);
    wait_for(
        "one RECOVERED on each channel",
        Duration::from_secs(20),
        || {
            let mails = smtp.mails();
            (count(&discord_pages(&discord), "RECOVERED") == 1
                && mails
                    .iter()
                    .filter(|m| m.contains("[qu] RECOVERED: web"))
                    .count()
                    == 1)
                .then_some(())
        },
    );
    // Nothing more arrives: exactly one of each.
    std::thread::sleep(Duration::from_secs(3));
    let pages = discord_pages(&discord);
    assert_eq!(
        (count(&pages, "DOWN"), count(&pages, "RECOVERED")),
        (1, 1),
        "{pages:#?}"
    );
    let mails = smtp.mails();
    assert_eq!(mails.len(), 3, "test + DOWN + RECOVERED");
    let log = nodes[other].ok(&["alert", "log", "--json"]);
    let log: serde_json::Value = serde_json::from_str(&log).unwrap();
    assert_eq!(
        log.as_array().unwrap().len(),
        4,
        "2 transitions × 2 alerts: {log:#}"
    );
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "delivered"),
        "{log:#}"
    );
}

#[test]
fn a_page_the_receiver_refused_for_a_while_is_delivered_once_it_is_back() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let nodes = common::cluster(3);
    let hook = Receiver::start();
    hook.set_default(500);
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
    add_web(&nodes[0], &target, "hook");
    wait_for("a few failed attempts", Duration::from_secs(20), || {
        (hook.requests().len() >= 2).then_some(())
    });
    let log: serde_json::Value =
        serde_json::from_str(&nodes[1].ok(&["alert", "log", "--json"])).unwrap();
    assert_eq!(log[0]["status"], "pending", "{log:#}");
    hook.set_default(204);
    wait_for("the delivery", Duration::from_secs(20), || {
        (hook.delivered().len() == 1).then_some(())
    });
    let d = &hook.delivered()[0];
    assert_eq!(d.json()["event"], "down");
    wait_for(
        "the ledger to say delivered",
        Duration::from_secs(10),
        || {
            let log: serde_json::Value =
                serde_json::from_str(&nodes[2].ok(&["alert", "log", "--json"])).ok()?;
            (log[0]["status"] == "delivered" && log[0]["attempts"].as_u64()? >= 3).then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(hook.delivered().len(), 1);
}

#[test]
fn a_leader_that_dies_before_sending_leaves_the_page_to_the_next_leader() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // B (smallest id, so the master) aborts right before its first send.
    let mut nodes = common::failing_master_cluster("before-send");
    let hook = Receiver::start();
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
    add_web(&nodes[0], &target, "hook");
    let status = nodes[1].wait_exit(Duration::from_secs(20));
    assert!(!status.success(), "B should have crashed at the failpoint");
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
    assert_eq!(hook.delivered()[0].json()["event"], "down");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(hook.requests().len(), 1, "exactly one send: B never sent");
}

#[test]
fn a_leader_cut_off_from_the_majority_never_sends() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let nodes = common::cluster(3);
    let hook = Receiver::start();
    hook.set_default(500);
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
    add_web(&nodes[0], &target, "hook");
    wait_for(
        "the leader to be retrying the page",
        Duration::from_secs(20),
        || (!hook.requests().is_empty()).then_some(()),
    );
    let leader = master(&nodes[0]).unwrap();
    let followers: Vec<&Node> = nodes.iter().filter(|n| n.node_id() != leader).collect();
    for f in &followers {
        f.pause();
    }
    // Let any attempt that was already past its check finish, then accept pages.
    std::thread::sleep(Duration::from_millis(500));
    hook.set_default(204);
    let cut_off = Instant::now();
    while cut_off.elapsed() < Duration::from_secs(6) {
        assert!(
            hook.delivered().is_empty(),
            "a leader without a majority sent a page"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for f in &followers {
        f.resume();
    }
    wait_for(
        "the page once the majority is back",
        Duration::from_secs(20),
        || (hook.delivered().len() == 1).then_some(()),
    );
}

/// A TCP target nobody listens on: every probe is refused.
fn closed_port() -> String {
    format!("127.0.0.1:{}", common::free_port())
}

#[test]
fn a_failed_delivered_record_is_retried_and_the_page_is_not_sent_twice() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let hook = Receiver::start();
    let mut node = Node::init(&[]);
    node.spawn_serve_env(
        &["--timing", "fast"],
        &[("QU_FAILPOINT", "fail-record-outcome")],
    );
    node.wait_ready();
    node.ok(&[
        "alert",
        "add",
        "webhook",
        "hook",
        "--url",
        &hook.url("/hook"),
    ]);
    node.ok(&[
        "check",
        "add",
        "tcp",
        "db",
        &closed_port(),
        "--interval",
        "1s",
        "--alerts",
        "hook",
    ]);
    wait_for(
        "the ledger to say delivered",
        Duration::from_secs(30),
        || {
            let log: serde_json::Value =
                serde_json::from_str(&node.ok(&["alert", "log", "--json"])).ok()?;
            (log[0]["status"] == "delivered").then_some(())
        },
    );
    assert!(
        node.log().contains("retrying the record, not the send"),
        "the failpoint never fired: {}",
        node.log()
    );
    // Recorded only after the first record failed: one send all the same.
    assert_eq!(hook.delivered().len(), 1, "{:?}", hook.requests());
}

#[test]
fn a_thousand_checks_flipping_at_once_are_all_paged_with_at_most_64_sends_in_flight() {
    use qu::daemon::control::{request, CheckSpec, ControlRequest};
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let hook = Receiver::start();
    hook.set_delay(100);
    let mut node = Node::init(&[]);
    node.start();
    node.ok(&[
        "alert",
        "add",
        "webhook",
        "hook",
        "--url",
        &hook.url("/hook"),
    ]);
    let target = closed_port();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let n = 1000;
    for i in 0..n {
        let spec = CheckSpec {
            name: format!("c{i}"),
            kind: qu_raft::model::CheckKind::tcp(target.clone()),
            interval_ms: 2000,
            timeout_ms: 1000,
            alerts: vec!["hook".into()],
            default_alerts: false,
        };
        rt.block_on(request(
            &node.socket,
            &ControlRequest::CheckAdd {
                spec,
                if_version: None,
            },
            Duration::from_secs(10),
        ))
        .unwrap_or_else(|e| panic!("adding check {i}: {e}"));
    }
    let started = Instant::now();
    let ids = wait_for("every page", Duration::from_secs(120), || {
        let ids: std::collections::BTreeSet<String> = hook
            .delivered()
            .iter()
            .filter_map(|c| c.json()["delivery_id"].as_str().map(str::to_string))
            .collect();
        (ids.len() >= n).then_some(ids)
    });
    println!(
        "{n} pages in {:?}, at most {} at once",
        started.elapsed(),
        hook.max_in_flight()
    );
    assert_eq!(ids.len(), n);
    assert!(
        hook.max_in_flight() <= 64,
        "{} sends at once",
        hook.max_in_flight()
    );
    assert!(hook.max_in_flight() > 1, "sends were never concurrent");
    let rounds = node.status().unwrap()["alerting"]["confirmation_rounds"]
        .as_u64()
        .unwrap();
    println!("leadership confirmations: {rounds}");
    assert!(
        rounds < n as u64 / 4,
        "{rounds} quorum rounds for {n} pages"
    );
}
