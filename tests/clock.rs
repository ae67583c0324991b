//! Clock health end to end: three real `qu serve` processes, each under
//! libfaketime with a clock file of its own (Debian's `faketime`, installed
//! by scripts/test.sh), so the test shifts one node's wall clock while it
//! runs (monotonic clocks stay true). A leader 4 s ahead hands leadership
//! to a sound voter, is not made master again while skewed, and an outage
//! during the fault is paged; a skewed follower is shown with its offset.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::target::{Mode, Target};
use common::{master, wait_for, Node};

fn libfaketime() -> PathBuf {
    let found = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists());
    found.expect(
        "libfaketime is not installed: apt-get install faketime (scripts/test.sh does, as root)",
    )
}

/// A node whose wall clock the test can shift (`skew`).
struct Skewable {
    node: Node,
    clock: PathBuf,
}

impl Skewable {
    fn start(lib: &std::path::Path) -> Skewable {
        let mut node = Node::init(&[]);
        let clock = node.dir.join("faketime");
        std::fs::write(&clock, "+0s\n").unwrap();
        let (lib, file) = (
            lib.to_string_lossy().to_string(),
            clock.to_string_lossy().to_string(),
        );
        node.spawn_serve_env(
            &["--timing", "fast", "--leader-cooldown", "2s"],
            &[
                ("LD_PRELOAD", &lib),
                ("FAKETIME_TIMESTAMP_FILE", &file),
                ("FAKETIME_NO_CACHE", "1"),
                ("DONT_FAKE_MONOTONIC", "1"),
            ],
        );
        node.wait_ready();
        Skewable { node, clock }
    }
}

/// `node`'s peer row for `id` in `qu node list --json`.
fn row(node: &Node, id: &str) -> Option<serde_json::Value> {
    let out = node.qu(&["node", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v.as_array()?.iter().find(|r| r["node_id"] == id).cloned()
}

#[test]
fn a_skewed_leader_hands_over_stays_out_and_outages_are_still_paged() {
    let lib = libfaketime();
    let nodes: Vec<Skewable> = (0..3).map(|_| Skewable::start(&lib)).collect();
    let (clocks, plain): (Vec<PathBuf>, Vec<Node>) =
        nodes.into_iter().map(|s| (s.clock, s.node)).unzip();
    let nodes = common::form(plain);
    let skew = |i: usize, secs: i64| Skewable::skew_file(&clocks[i], secs);
    let mut ids: Vec<(String, usize)> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.node_id(), i))
        .collect();
    ids.sort();
    let (smallest, si) = ids[0].clone();
    let other = (si + 1) % 3;
    wait_for(
        "the smallest node to be master",
        Duration::from_secs(30),
        || (master(&nodes[other]).as_deref() == Some(smallest.as_str())).then_some(()),
    );
    let hook = Receiver::start();
    let target = Target::start("127.0.0.1");
    nodes[other].ok(&[
        "alert",
        "add",
        "webhook",
        "hook",
        "--url",
        &hook.url("/hook"),
    ]);
    common::add_web(&nodes[other], &target.url(), "hook");
    wait_for("web up", Duration::from_secs(20), || {
        common::stdout(&nodes[other].qu(&["check", "list"]))
            .contains(" up ")
            .then_some(())
    });
    // Every voter measured the others: offsets near zero, nobody OFF.
    wait_for("clock offsets known", Duration::from_secs(15), || {
        let r = row(&nodes[other], &smallest)?;
        (r["clock_offset_ms"].as_i64()?.abs() < 250 && r.get("clock_off").is_none()).then_some(())
    });

    // The master's clock jumps 4 s ahead: it hands over.
    let attempts_before: Vec<u64> = nodes
        .iter()
        .map(|n| {
            n.status().unwrap()["policy"]["transfer_attempts"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let skewed_at = Instant::now();
    skew(si, 4);
    let new = wait_for(
        "a master other than the skewed node",
        Duration::from_secs(20),
        || master(&nodes[other]).filter(|m| *m != smallest),
    );
    eprintln!("the skewed master handed over in {:?}", skewed_at.elapsed());
    let r = wait_for("the skewed node shown OFF", Duration::from_secs(10), || {
        let r = row(&nodes[other], &smallest)?;
        // Its own report may arrive before this node's samples show it.
        (r["clock_off"] == true && r["clock_offset_ms"].as_i64()? > 3_500).then_some(r)
    });
    let offset = r["clock_offset_ms"].as_i64().unwrap();
    assert!((3_500..=4_500).contains(&offset), "{r}");
    let listed = common::stdout(&nodes[other].qu(&["node", "list"]));
    assert!(
        listed.contains("CLOCK") && listed.contains(" OFF"),
        "{listed}"
    );
    // It says so of itself, too.
    let own = common::stdout(&nodes[si].qu(&["status"]));
    assert!(own.contains("this node's clock is off"), "{own}");

    // An outage during the fault is paged within the detection bound.
    let broke = Instant::now();
    target.set(Mode::Status(503));
    wait_for("the DOWN page", Duration::from_secs(20), || {
        hook.delivered()
            .iter()
            .any(|c| c.json()["event"] == "down")
            .then_some(())
    });
    eprintln!(
        "DOWN paged {:?} after the break, with the old master skewed",
        broke.elapsed()
    );
    target.set(Mode::Up);
    wait_for("the RECOVERED page", Duration::from_secs(20), || {
        hook.delivered()
            .iter()
            .any(|c| c.json()["event"] == "recovered")
            .then_some(())
    });
    // Over all that (many ticks of the policy, the smallest node live the
    // whole time, its 2 s cooldown long served) the new master never tried
    // to hand leadership back, and it says why.
    let li = nodes.iter().position(|n| n.node_id() == new).unwrap();
    let st = nodes[li].status().unwrap();
    assert_eq!(st["master"].as_str(), Some(new.as_str()));
    assert_eq!(
        st["policy"]["transfer_attempts"].as_u64(),
        Some(attempts_before[li]),
        "{st:#}"
    );
    let reason = st["policy"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains(&format!("node {smallest} is not made master"))
            && reason.contains("ahead of"),
        "{st:#}"
    );

    // The clock is fixed: the smallest node leads again after its cooldown.
    skew(si, 0);
    wait_for(
        "the smallest node master again",
        Duration::from_secs(30),
        || (master(&nodes[other]).as_deref() == Some(smallest.as_str())).then_some(()),
    );

    // A follower 4 s behind: shown with its offset; the master stays.
    let follower = ids[1].1;
    skew(follower, -4);
    let r = wait_for(
        "the skewed follower shown OFF",
        Duration::from_secs(15),
        || {
            let r = row(&nodes[si], &ids[1].0)?;
            (r["clock_off"] == true && r["clock_offset_ms"].as_i64()? < -3_500).then_some(r)
        },
    );
    assert!(r["clock_offset_ms"].as_i64().unwrap() > -4_500, "{r}");
    assert_eq!(master(&nodes[si]).as_deref(), Some(smallest.as_str()));
    skew(follower, 0);
}

impl Skewable {
    fn skew_file(file: &std::path::Path, secs: i64) {
        std::fs::write(file, format!("{secs:+}s\n")).unwrap();
    }
}
