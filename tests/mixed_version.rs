//! A rolling upgrade, end to end: a cluster of the previous release's
//! `qu` (the commit in scripts/previous-release, built by
//! scripts/build-previous.sh and named by `QU_PREVIOUS_BIN`) is moved to
//! this build one node at a time, each restarted with SIGTERM on its own
//! state directory. Between the steps the cluster keeps a master and its
//! rounds, both builds' probes count, an outage in the mixed phase pages
//! once each way, and a command of this release's new log level is refused
//! (changing nothing) until the last member is upgraded, then accepted and
//! the level committed.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::receiver::Receiver;
use common::target::{Mode, Target};
use common::{stderr, stdout, wait_for, Node};

/// The log level this test's newer command needs (`NEWER`): this
/// release's. A release that raises the level again moves it, and the
/// command, to what that release adds.
const NEW_LEVEL: u32 = 5;

/// A command of level `NEW_LEVEL` (the Slack provider, a level-5 kind).
const NEWER: [&str; 6] = [
    "alert",
    "add",
    "slack",
    "chat",
    "--webhook",
    "https://hooks.slack.com/services/T0/B0/XYZ",
];

/// Node ids: A (index 0) is the smallest, so the master when it is live.
const IDS: [&str; 3] = ["0000000000000010", "0000000000000020", "0000000000000030"];

/// Fast Raft timing; leadership goes back to A 2 s after it returns.
const SERVE: [&str; 4] = ["--timing", "fast", "--leader-cooldown", "2s"];

/// Deadlines: generous, the test must pass on a loaded 2-core machine.
const SETTLE: Duration = Duration::from_secs(60);

/// One build of qu: where it is, what it says it is, which level it reads.
struct Build {
    bin: PathBuf,
    /// `qu --version` without the leading `qu `: what `qu node list`
    /// shows in VERSION.
    version: String,
    level: u32,
}

fn version_of(bin: &Path) -> String {
    let out = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("run {} --version: {e}", bin.display()));
    assert!(
        out.status.success(),
        "{} --version: {}",
        bin.display(),
        stderr(&out)
    );
    let v = stdout(&out);
    v.trim().strip_prefix("qu ").unwrap_or(v.trim()).to_string()
}

/// The previous release, from `QU_PREVIOUS_BIN` and scripts/previous-release.
fn previous() -> Build {
    let bin = std::env::var_os("QU_PREVIOUS_BIN")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "QU_PREVIOUS_BIN is not set: this test runs the previous release's qu beside this \
                 one. Build it with scripts/build-previous.sh, which prints its path: \
                 QU_PREVIOUS_BIN=\"$(scripts/build-previous.sh)\" cargo test --test mixed_version \
                 (scripts/test.sh does both)"
            )
        });
    assert!(
        bin.is_file(),
        "QU_PREVIOUS_BIN={} is not a file: run scripts/build-previous.sh",
        bin.display()
    );
    let record = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/previous-release"
    ))
    .unwrap();
    let line = record
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .expect("a '<commit> <level>' line in scripts/previous-release");
    let (commit, level) = line.split_once(' ').unwrap();
    let name = bin.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        !name.starts_with("qu-") || name == format!("qu-{commit}"),
        "QU_PREVIOUS_BIN={} is not the release scripts/previous-release names ({commit}): run \
         scripts/build-previous.sh again",
        bin.display()
    );
    Build {
        version: version_of(&bin),
        bin,
        level: level.trim().parse().unwrap(),
    }
}

fn current() -> Build {
    let bin = PathBuf::from(common::qu_bin());
    Build {
        version: version_of(&bin),
        bin,
        level: qu_raft::state::LOG_LEVEL,
    }
}

fn start(node: &mut Node) {
    node.spawn_serve(&SERVE);
    node.wait_ready();
}

/// The upgrade of node `i`: SIGTERM and a clean exit; while it is down the
/// other two keep a master (one of them); then this build on the same
/// state directory.
fn upgrade(nodes: &mut [Node], i: usize, to: &Build, what: &str) {
    let exit = nodes[i].stop();
    assert!(
        exit.success(),
        "{what}: qu serve exited with {exit}: {}",
        nodes[i].log()
    );
    for (j, n) in nodes.iter().enumerate().filter(|(j, _)| *j != i) {
        wait_for(
            &format!(
                "{what}: a master while {} is down, as {} sees",
                NAMES[i], NAMES[j]
            ),
            SETTLE,
            || {
                let s = n.status()?;
                (s["quorum"] == true && s["master"].is_string() && s["master"] != IDS[i])
                    .then_some(())
            },
        );
    }
    let node = &mut nodes[i];
    node.bin = to.bin.clone();
    start(node);
}

/// `qu node list --json` of `node`: node id → VERSION.
fn versions(node: &Node) -> Option<Vec<(String, Option<String>)>> {
    let out = node.qu(&["node", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(
        v.as_array()?
            .iter()
            .map(|r| {
                (
                    r["node_id"].as_str().unwrap_or("?").to_string(),
                    r["version"].as_str().map(str::to_string),
                )
            })
            .collect(),
    )
}

/// The leader's last evaluated round of check `web` as `node` reports it:
/// (round, the nodes whose probes it counted).
fn last_round(node: &Node) -> Option<(u64, Vec<String>)> {
    let out = node.qu(&["check", "show", "web", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let r = &v["last_round"];
    let votes = r["votes"]
        .as_array()?
        .iter()
        .filter_map(|e| e["node"].as_str().map(str::to_string))
        .collect();
    Some((r["round"].as_u64()?, votes))
}

/// What must hold after every step (`fresh`: the node just started): A
/// leads (the smallest live voter, whichever build each runs); the fresh
/// node lists each member with the build it runs (`builds[i]` for node i:
/// it asked every member at its start; the others ask a peer again only
/// every 30 s), every node lists itself with its own, and this build says
/// which log level it reads; the leader's rounds go on, each counting all
/// three voters' probes, whichever build made them.
fn steady(nodes: &[Node], builds: &[&Build], fresh: usize, what: &str) {
    let started = std::time::Instant::now();
    wait_for(&format!("{what}: A leads, as all see"), SETTLE, || {
        nodes
            .iter()
            .all(|n| {
                n.status().is_some_and(|s| {
                    s["quorum"] == true && s["voters"] == 3 && s["master"] == IDS[0]
                })
            })
            .then_some(())
    });
    let want: Vec<(String, Option<String>)> = IDS
        .iter()
        .zip(builds)
        .map(|(id, b)| (id.to_string(), Some(b.version.clone())))
        .collect();
    for (i, (n, b)) in nodes.iter().zip(builds).enumerate() {
        wait_for(
            &format!("{what}: node list on {} shows the builds", NAMES[i]),
            SETTLE,
            || {
                let mut v = versions(n)?;
                v.sort();
                (if i == fresh {
                    v == want
                } else {
                    v.contains(&want[i])
                })
                .then_some(())
            },
        );
        if b.level >= NEW_LEVEL {
            // This build says which level it reads (the previous does not).
            let s = n.status().unwrap();
            assert_eq!(s["reads_log_level"], b.level, "{what}: {s:#}");
        }
    }
    let (first, _) = wait_for(&format!("{what}: a round of web"), SETTLE, || {
        last_round(&nodes[0])
    });
    wait_for(
        &format!("{what}: two more rounds of web, counting every voter"),
        SETTLE,
        || {
            let (round, mut votes) = last_round(&nodes[0])?;
            votes.sort();
            (round >= first + 2 && votes == IDS).then_some(())
        },
    );
    eprintln!("{what}: steady after {:?}", started.elapsed());
}

/// `NEWER` on node `via` is refused in the upgrade gate's words, naming a
/// member of the previous release, and nothing reaches the log.
fn newer_refused(nodes: &[Node], via: usize, builds: &[&Build], what: &str) {
    let before = common::version(&nodes[via]).unwrap();
    let out = nodes[via].qu(&NEWER);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: {NEWER:?} was not refused: {}{err}",
        stdout(&out)
    );
    assert!(
        err.contains(&format!(
            "this change needs every member on a qu that reads log level {NEW_LEVEL}"
        )),
        "{what}: the refusal does not say which level it needs: {err}"
    );
    let named_old = IDS.iter().zip(builds).any(|(id, b)| {
        b.level < NEW_LEVEL
            && err.contains(&format!("node {id}"))
            && err.contains(&format!("runs log level {}", b.level))
    });
    assert!(
        named_old,
        "{what}: the refusal names no member of the previous release: {err}"
    );
    eprintln!("{what}: refused: {}", err.trim());
    for n in nodes {
        assert_eq!(
            common::version(n),
            Some(before),
            "{what}: the refused command changed the config"
        );
        let alerts = n.ok(&["alert", "list", "--json"]);
        assert!(!alerts.contains("\"chat\""), "{what}: {alerts}");
        let s = n.status().unwrap();
        assert!(
            s["log_level"].as_u64().unwrap_or(0) < u64::from(NEW_LEVEL),
            "{what}: {s:#}"
        );
    }
}

/// A command both releases know, through node `via`, is applied everywhere.
fn common_command(nodes: &[Node], via: usize, name: &str, r: &Receiver, what: &str) {
    nodes[via].ok(&["alert", "add", "webhook", name, "--url", &r.url("/spare")]);
    for n in nodes {
        wait_for(
            &format!("{what}: alert {name} on {}", n.node_id()),
            SETTLE,
            || {
                n.ok(&["alert", "list", "--json"])
                    .contains(&format!("\"{name}\""))
                    .then_some(())
            },
        );
    }
}

/// The DOWN and RECOVERED pages the receiver accepted for check web.
fn pages(r: &Receiver) -> Vec<serde_json::Value> {
    r.delivered()
        .iter()
        .map(|c| c.json())
        .filter(|p| p["check_name"] == "web")
        .collect()
}

fn events(r: &Receiver) -> Vec<String> {
    pages(r)
        .iter()
        .map(|p| p["event"].as_str().unwrap_or("?").to_string())
        .collect()
}

fn state_everywhere(nodes: &[Node], state: &str, what: &str) {
    for n in nodes {
        wait_for(
            &format!("{what}: web {state} on {}", n.node_id()),
            SETTLE,
            || {
                let out = n.qu(&["check", "list", "--json"]);
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
                v["checks"]
                    .as_array()?
                    .iter()
                    .any(|c| c["name"] == "web" && c["state"] == state)
                    .then_some(())
            },
        );
    }
}

/// The names of the nodes, for messages.
const NAMES: [&str; 3] = ["A", "B", "C"];

/// Upgrades the nodes in `order` (indexes into `IDS`; A leads whenever it
/// is live) and checks every step.
fn rolling_upgrade(order: [usize; 3]) {
    let prev = previous();
    let cur = current();
    assert_eq!(
        cur.level, NEW_LEVEL,
        "this release reads log level {}: move NEW_LEVEL and NEWER to a command of that level",
        cur.level
    );
    assert!(
        prev.level < cur.level,
        "the previous release reads log level {}, this one {}: nothing to gate",
        prev.level,
        cur.level
    );
    assert_ne!(
        prev.version, cur.version,
        "both builds call themselves the same; a mixed cluster could not be told from its listing"
    );

    // The previous release: three nodes, a webhook, an HTTP check.
    let target = Target::start("127.0.0.1");
    let hook = Receiver::start();
    let spare = Receiver::start();
    let mut nodes: Vec<Node> = IDS
        .iter()
        .map(|id| Node::init_with(&prev.bin, "127.0.0.1", &["--node-id", id]))
        .collect();
    for n in nodes.iter_mut() {
        start(n);
    }
    let mut nodes = common::form(nodes);
    nodes[0].ok(&[
        "alert",
        "add",
        "webhook",
        "hook",
        "--url",
        &hook.url("/hook"),
    ]);
    common::add_web(&nodes[0], &target.url(), "hook");
    state_everywhere(&nodes, "up", "all old");
    let mut builds = vec![&prev, &prev, &prev];
    steady(&nodes, &builds, 0, "all old");

    for (step, &i) in order.iter().enumerate() {
        let what = format!("{} upgraded ({} of 3)", NAMES[i], step + 1);
        upgrade(&mut nodes, i, &cur, &what);
        builds[i] = &cur;
        steady(&nodes, &builds, i, &what);
        if step == 2 {
            break;
        }
        // Mixed: the newer command is refused, commands both know are not.
        newer_refused(&nodes, i, &builds, &what);
        common_command(&nodes, i, &format!("spare-{}", step + 1), &spare, &what);
        if step == 1 {
            // An outage while mixed: one DOWN, then one RECOVERED, sent by
            // the master (A) on whichever build it runs.
            assert!(pages(&hook).is_empty(), "{:?}", events(&hook));
            target.set(Mode::Status(503));
            wait_for(&format!("{what}: the DOWN page"), SETTLE, || {
                (!pages(&hook).is_empty()).then_some(())
            });
            state_everywhere(&nodes, "down", &format!("{what}, target failing"));
            target.set(Mode::Up);
            wait_for(&format!("{what}: the RECOVERED page"), SETTLE, || {
                (pages(&hook).len() >= 2).then_some(())
            });
            state_everywhere(&nodes, "up", &format!("{what}, target repaired"));
            let sent = pages(&hook);
            assert_eq!(events(&hook), ["down", "recovered"], "{sent:#?}");
            for p in &sent {
                assert_eq!(p["master"], IDS[0], "paged by the master: {p:#}");
            }
        }
    }

    // Every member runs this build, and nothing has raised the level yet.
    for n in &nodes {
        let s = n.status().unwrap();
        assert!(
            s["log_level"].as_u64().unwrap() < u64::from(NEW_LEVEL),
            "{s:#}"
        );
    }
    // The newer command is accepted now, and the cluster commits the
    // level with it.
    let via = &nodes[order[0]];
    let out = via.qu(&NEWER);
    assert!(
        out.status.success(),
        "{NEWER:?} refused with every member upgraded: {}{}",
        stdout(&out),
        stderr(&out)
    );
    for n in &nodes {
        wait_for(
            &format!("log level {NEW_LEVEL} committed on {}", n.node_id()),
            SETTLE,
            || (n.status()?["log_level"] == NEW_LEVEL).then_some(()),
        );
        wait_for(&format!("the new alert on {}", n.node_id()), SETTLE, || {
            n.ok(&["alert", "list", "--json"])
                .contains("\"chat\"")
                .then_some(())
        });
    }
    steady(&nodes, &builds, order[2], "level committed");

    // No page more than the outage's two, whatever led meanwhile.
    assert_eq!(events(&hook), ["down", "recovered"], "{:#?}", pages(&hook));
}

/// The two tests run one at a time (each is three nodes on a machine that
/// may be small).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Followers first, the master last: the previous release leads while the
/// cluster is mixed, and a follower of this build forwards the newer
/// command to it.
#[test]
fn a_rolling_upgrade_with_the_master_last_keeps_watching_and_gates_the_new_level() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    rolling_upgrade([2, 1, 0]);
}

/// The master first: it comes back on this build and leads again (after
/// its cooldown) a cluster of the previous release, whose members it asks
/// for their level.
#[test]
fn a_rolling_upgrade_with_the_master_first_keeps_watching_and_gates_the_new_level() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    rolling_upgrade([0, 1, 2]);
}
