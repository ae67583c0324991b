//! The runner: builds a network of namespaces, starts a qu cluster in it,
//! drives a compare-and-set workload and a target that goes down and up,
//! injects faults, records the history, and runs the checkers.
//!
//! Phases: set up (network, servers, a link proxy per node, cluster, one
//! HTTP check paging a webhook and an SMTP sink) → the window (workload, target cycle, leader
//! samples, nemesis) → heal everything → settle → one outage with no fault
//! at all, which the healed cluster must page, and its recovery → collect
//! (final read, paging transitions from the ledger and the check's own
//! history and timetable, sinks) → check.
//!
//! Invariants: every namespace, process and iptables rule it made is
//! removed at the end, on Ctrl-C, and (for a run that was killed) at the
//! start of the next run; the report and history are kept in the run
//! directory either way; an interrupted run is never checked.

pub mod cluster;
pub mod collect;
pub mod links;
pub mod membership;
pub mod nemesis;
pub mod net;
pub mod nodes;
pub mod recorder;
pub mod servers;
pub mod sh;
pub mod target;
pub mod transitions;
pub mod workload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::checkers::{check_all, Report};
use crate::history::Event;
use cluster::Cluster;
use links::{LinkFault, Links};
use nemesis::{Fault, Injection};
use nodes::NodeCli;
use recorder::{Recorder, Window};
use servers::{Files, Services, SINK_PORT, SMTP_PORT, TARGET_PORT};
use sh::{now_ms, Rng};
use target::Target;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    pub time: Duration,
    pub nodes: usize,
    pub qu: PathBuf,
    /// Only these faults (default: every fault that fits the cluster).
    pub faults: Option<Vec<Fault>>,
}

/// The outcome of a run.
pub struct Outcome {
    pub dir: PathBuf,
    pub reports: Vec<Report>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, usize>,
    pub operations: usize,
    /// Set when libfaketime is missing (no clock faults were possible).
    pub clock_faults: bool,
}

impl Outcome {
    pub fn injections(&self) -> usize {
        self.faults.values().sum()
    }
}

/// Probe interval of the run's check; the checkers' bounds derive from it.
const INTERVAL_MS: u64 = 1_000;
/// How long each fault is held, and the quiet between two faults.
const HOLD: Duration = Duration::from_secs(3);
/// After the heal: time for leadership to settle.
const SETTLE: Duration = Duration::from_secs(15);
/// The fault-free outage after the settle, and the recovery after it.
const FINAL_OUTAGE: Duration = Duration::from_secs(12);

fn need_root() -> Result<(), String> {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&out.stdout).trim() != "0" {
        return Err(
            "qu-jepsen run needs root (network namespaces and iptables): run it with sudo".into(),
        );
    }
    for tool in ["ip", "iptables"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            return Err(format!(
                "{tool} is missing: apt-get install iproute2 iptables"
            ));
        }
    }
    Ok(())
}

/// Runs one seeded scenario; returns the reports.
pub fn run(o: Options, stop: Arc<AtomicBool>) -> Result<Outcome, String> {
    need_root()?;
    let clocks = nodes::libfaketime().is_some();
    let mut menu = Fault::menu(o.nodes, clocks);
    if let Some(only) = &o.faults {
        menu.retain(|f| only.contains(f));
        if menu.is_empty() {
            return Err("none of the --faults fits this run (majorities-ring, bridge and shrink-grow need --nodes 5, grow-shrink fewer, skews need libfaketime)".into());
        }
    }

    let dir = PathBuf::from(format!("/tmp/qu-jepsen-{}-{}", o.seed, now_ms()));
    crate::runner::nodes::private_dir(&dir)?;
    // Hosts the cluster may grow by, after its own.
    let spares = if menu.contains(&Fault::GrowShrink) {
        2
    } else {
        0
    };
    let mut hosts: Vec<net::Host> = (0..o.nodes + spares)
        .map(|i| net::host(&format!("n{}", i + 1), 11 + i as u8))
        .collect();
    let target = net::host("t", 100);
    hosts.push(target.clone());
    let result = run_in(&o, &dir, &hosts, spares, &target, &menu, stop);
    net::teardown();
    result
}

/// The alerts (webhook and SMTP sinks) and the HTTP check under test; the
/// check's id.
fn configure(c: &NodeCli, sinks_ip: &str) -> Result<String, String> {
    c.qu(
        &[
            "alert",
            "add",
            "webhook",
            "sink",
            "--url",
            &format!("http://{sinks_ip}:{SINK_PORT}/hook"),
        ],
        20,
    )?;
    c.qu(
        &[
            "alert",
            "add",
            "smtp",
            "mail",
            "--host",
            sinks_ip,
            "--port",
            &SMTP_PORT.to_string(),
            "--from",
            "qu@example.com",
            "--to",
            "ops@example.com",
            "--starttls=false",
        ],
        20,
    )?;
    c.qu(
        &[
            "check",
            "add",
            "http",
            "web",
            &format!("http://{sinks_ip}:{TARGET_PORT}/"),
            "--interval",
            &format!("{INTERVAL_MS}ms"),
            "--timeout",
            "500ms",
            "--alerts",
            "sink,mail",
        ],
        20,
    )?;
    let listed: serde_json::Value = serde_json::from_str(&c.qu(&["check", "list", "--json"], 10)?)
        .map_err(|e| e.to_string())?;
    listed["checks"][0]["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "the check under test is not listed".into())
}

/// Samples the master every 500 ms until `until` is set.
fn spawn_leader_sampler(c: Arc<Cluster>, rec: Recorder, until: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        while !until.load(Ordering::SeqCst) {
            let node = c.master();
            rec.record(Event::Leader { t: now_ms(), node });
            std::thread::sleep(Duration::from_millis(500));
        }
    })
}

fn nemesis_event(action: &str, i: &Injection) -> Event {
    Event::Nemesis {
        t: now_ms(),
        action: action.into(),
        fault: i.fault.name().into(),
        targets: i.targets.clone(),
        leader: i.leader,
        skew_ms: matches!(i.fault, Fault::Skew | Fault::SkewLeader).then_some(i.skew_secs * 1000),
        added_ms: i.link.as_ref().map(LinkFault::added_ms),
    }
}

/// How long the nemesis holds a fault, and what it does meanwhile. A slow
/// majority gets a real outage of the nemesis's own, long enough to be
/// owed a page under the bound adjusted for the added latency, and its
/// recovery: the target quiet first (so the outage starts while the links
/// are slow), then down for everyone, then up again.
fn hold(i: &Injection, target: &Target, rec: &Recorder, window: &Window) {
    if i.fault != Fault::SlowMajority {
        window.sleep(HOLD);
        return;
    }
    let added = i.link.as_ref().map_or(0, LinkFault::added_ms);
    let bound = Duration::from_millis(crate::checkers::slow_majority::bound_ms(INTERVAL_MS, added));
    target.hold(true);
    target.fail_for(rec, &[]);
    let _ = window.sleep(HOLD)
        && {
            target.fail_for(rec, &target.all());
            window.sleep(bound + Duration::from_secs(2))
        }
        && {
            target.fail_for(rec, &[]);
            window.sleep(bound + Duration::from_secs(1))
        };
    target.fail_for(rec, &[]);
    target.hold(false);
}

/// One fault at a time: quiet, inject, hold, heal.
fn nemesis_loop(
    c: &Cluster,
    links: &Links,
    target: &Target,
    rec: &Recorder,
    window: &Window,
    seed: u64,
    menu: &[Fault],
) -> Result<Vec<Injection>, String> {
    let mut rng = Rng::new(seed);
    let mut done = Vec::new();
    while window.open() {
        if !window.sleep(HOLD) || !window.open() {
            break;
        }
        let inj = nemesis::choose(&mut rng, menu, c, c.leader());
        let flaky = matches!(inj.fault, Fault::FlakyUplink | Fault::FlakyMinority);
        if flaky {
            target.set_minority(&inj.victims);
        }
        rec.record(nemesis_event("start", &inj));
        let injected = nemesis::inject(c, links, &inj);
        hold(&inj, target, rec, window);
        let healed = nemesis::heal(c, links, &inj);
        rec.record(nemesis_event("stop", &inj));
        if flaky {
            target.set_minority(&[]);
        }
        injected.map_err(|e| format!("cannot inject {}: {e}", inj.fault.name()))?;
        healed.map_err(|e| format!("cannot heal {}: {e}", inj.fault.name()))?;
        done.push(inj);
    }
    Ok(done)
}

fn run_in(
    o: &Options,
    dir: &Path,
    hosts: &[net::Host],
    spares: usize,
    target_host: &net::Host,
    menu: &[Fault],
    stop: Arc<AtomicBool>,
) -> Result<Outcome, String> {
    let clocks = menu
        .iter()
        .any(|f| matches!(f, Fault::Skew | Fault::SkewLeader))
        || nodes::libfaketime().is_some();
    net::setup(hosts)?;
    let files = Files::in_dir(dir);
    let _services = Services::start(&target_host.ns, &target_host.ip, dir, &files)?;
    // Spares get proxies too: every node advertises its proxy.
    let links = Links::start(
        &hosts[..o.nodes + spares],
        target_host,
        TARGET_PORT,
        dir,
        o.seed,
    )?;
    let cluster = Arc::new(Cluster::form(&o.qu, &hosts[..o.nodes], dir)?.with_spares(
        &o.qu,
        &hosts[o.nodes..o.nodes + spares],
        dir,
    )?);
    let check_id = configure(&cluster.clis[0], &target_host.ip)?;

    let rec = Recorder::new(Event::Meta {
        voters: o.nodes,
        interval_ms: INTERVAL_MS,
        seed: o.seed,
    });
    cluster.roster.attach(rec.clone());
    let window = Window::new(o.time, stop.clone());
    let target = Target {
        mode_file: files.mode.clone(),
        check: check_id,
        nodes: cluster.roster.clone(),
        shared: Default::default(),
    };
    let mut threads =
        workload::spawn_clients(2, o.seed, &cluster.clis, &cluster.roster, &rec, &window);
    threads.push(target::spawn_cycle(
        target.clone(),
        rec.clone(),
        window.clone(),
    ));
    let sampling_done = Arc::new(AtomicBool::new(false));
    let sampler = spawn_leader_sampler(cluster.clone(), rec.clone(), sampling_done.clone());

    let nemesis = nemesis_loop(&cluster, &links, &target, &rec, &window, o.seed, menu);
    // Heal everything whatever the nemesis left, then let threads finish.
    net::heal(&cluster.hosts);
    let links_healed = links.heal();
    let healed = cluster.heal_all();
    for t in threads {
        let _ = t.join();
    }
    let injections = nemesis?;
    healed?;
    links_healed?;
    rec.record(Event::Healed {
        t: now_ms(),
        live: cluster.ids(),
    });
    // Settle, then an outage with no fault anywhere: it must be paged, and
    // its recovery too.
    let after = Window::new(Duration::from_secs(3600), stop);
    let finished = after.sleep(SETTLE) && {
        target.fail_for(&rec, &target.all());
        let down = after.sleep(FINAL_OUTAGE);
        target.fail_for(&rec, &[]);
        down && after.sleep(FINAL_OUTAGE)
    };
    sampling_done.store(true, Ordering::SeqCst);
    let _ = sampler.join();
    if !finished {
        return Err(format!(
            "interrupted: the run did not finish, so it was not checked (partial state in {})",
            dir.display()
        ));
    }
    collect::final_read(&cluster.clis[0], &rec)?;
    collect::transitions(&cluster.clis[0], &rec, &target.check)?;
    collect::webhook_sink(&files.sink_log, &rec);
    collect::mail_sink(&files.maildir, &rec);
    drop(cluster);

    let history = rec.events();
    let operations = history
        .iter()
        .filter(|e| matches!(e, Event::Invoke { .. }))
        .count();
    let lines: Vec<String> = history
        .iter()
        .filter_map(|e| serde_json::to_string(e).ok())
        .collect();
    std::fs::write(dir.join("history.jsonl"), lines.join("\n") + "\n")
        .map_err(|e| e.to_string())?;
    let reports = check_all(&history);
    let faults = nemesis::tally(&injections);
    let summary = serde_json::json!({
        "seed": o.seed,
        "nodes": o.nodes,
        "time_s": o.time.as_secs(),
        "faults": faults,
        "clock_faults": clocks,
        "operations": operations,
        "checkers": reports,
    });
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&summary).unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?;
    Ok(Outcome {
        dir: dir.to_path_buf(),
        reports,
        faults,
        operations,
        clock_faults: clocks,
    })
}
