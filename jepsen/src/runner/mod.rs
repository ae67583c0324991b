//! The runner: builds a network of namespaces, starts a qu cluster in it,
//! drives a compare-and-set workload and a target that goes down and up,
//! injects faults, records the history, and runs the checkers.
//!
//! Invariants: every namespace, process and iptables rule it made is
//! removed at the end, on Ctrl-C, and (for a run that was killed) at the
//! start of the next run; the report and history are kept in the run
//! directory either way.

pub mod net;
pub mod nodes;
pub mod servers;
pub mod sh;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::checkers::{check_all, Report};
use crate::history::{Event, Op, Value};
use nodes::{NodeCli, QuNode};
use sh::{now_ms, Rng};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    pub time: Duration,
    pub nodes: usize,
    pub qu: PathBuf,
}

/// The outcome of a run.
pub struct Outcome {
    pub dir: PathBuf,
    pub reports: Vec<Report>,
    pub injections: usize,
    pub operations: usize,
}

type History = Arc<Mutex<Vec<Event>>>;

/// The SMTP sink (Debian's python3-aiosmtpd), shared with qu's own tests.
const SMTP_SERVER: &str = include_str!("../../../tests/support/smtp_server.py");

fn record(h: &History, e: Event) {
    if let Ok(mut v) = h.lock() {
        v.push(e);
    }
}

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

struct Servers(Vec<Child>);

impl Drop for Servers {
    fn drop(&mut self) {
        for c in self.0.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn_in(ns: &str, args: &[&str]) -> Result<Child, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(me)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())
}

fn leader_of(clis: &[NodeCli], alive: &[bool]) -> Option<usize> {
    for (i, c) in clis.iter().enumerate().filter(|(i, _)| alive[*i]) {
        if let Some(s) = c.status() {
            if let Some(m) = s["master"].as_str() {
                return clis.iter().position(|c| c.id == m);
            }
        }
        let _ = i;
    }
    None
}

/// Runs one seeded scenario; returns the reports.
pub fn run(o: Options, stop: Arc<AtomicBool>) -> Result<Outcome, String> {
    need_root()?;
    let dir = PathBuf::from(format!("/tmp/qu-jepsen-{}-{}", o.seed, now_ms()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut hosts: Vec<net::Host> = (0..o.nodes)
        .map(|i| net::host(&format!("n{}", i + 1), 11 + i as u8))
        .collect();
    let target = net::host("t", 100);
    hosts.push(target.clone());
    let result = run_in(&o, &dir, &hosts, &target, stop);
    net::teardown();
    result.map(|(reports, injections, operations)| Outcome {
        dir,
        reports,
        injections,
        operations,
    })
}

fn run_in(
    o: &Options,
    dir: &std::path::Path,
    hosts: &[net::Host],
    target: &net::Host,
    stop: Arc<AtomicBool>,
) -> Result<(Vec<Report>, usize, usize), String> {
    net::setup(hosts)?;
    let mode_file = dir.join("target.mode");
    std::fs::write(&mode_file, "up").map_err(|e| e.to_string())?;
    let sink_log = dir.join("sink.jsonl");
    let target_addr = format!("{}:8080", target.ip);
    let sink_addr = format!("{}:8081", target.ip);
    let maildir = dir.join("mail");
    let smtp_script = dir.join("smtp_server.py");
    std::fs::write(&smtp_script, SMTP_SERVER).map_err(|e| e.to_string())?;
    let smtp = Command::new("ip")
        .args(["netns", "exec", &target.ns, "/usr/bin/python3"])
        .arg(&smtp_script)
        .args([
            "--host",
            &target.ip,
            "--port",
            "2525",
            "--maildir",
            maildir.to_str().unwrap_or(""),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the SMTP sink (python3-aiosmtpd): {e}"))?;
    let _servers = Servers(vec![
        spawn_in(
            &target.ns,
            &[
                "serve-target",
                &target_addr,
                mode_file.to_str().unwrap_or(""),
            ],
        )?,
        spawn_in(
            &target.ns,
            &["serve-sink", &sink_addr, sink_log.to_str().unwrap_or("")],
        )?,
        smtp,
    ]);

    let node_hosts = &hosts[..o.nodes];
    let mut nodes = Vec::new();
    for h in node_hosts {
        let mut n = QuNode::init(&o.qu, h.clone(), dir)?;
        n.start()?;
        nodes.push(n);
    }
    let clis: Vec<NodeCli> = nodes.iter().map(QuNode::cli).collect();
    for n in &nodes[1..] {
        clis[0].qu(
            &["node", "add", &format!("{}:9001", n.host.ip), "--yes"],
            60,
        )?;
    }
    let until = Instant::now() + Duration::from_secs(30);
    while clis[0]
        .status()
        .map(|s| s["voters"] != o.nodes)
        .unwrap_or(true)
    {
        if Instant::now() > until {
            return Err("the cluster did not form".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    clis[0].qu(
        &[
            "alert",
            "add",
            "webhook",
            "sink",
            "--url",
            &format!("http://{sink_addr}/hook"),
        ],
        20,
    )?;
    let smtp_port = "2525";
    clis[0].qu(
        &[
            "alert",
            "add",
            "smtp",
            "mail",
            "--host",
            &target.ip,
            "--port",
            smtp_port,
            "--from",
            "qu@example.com",
            "--to",
            "ops@example.com",
            "--starttls=false",
        ],
        20,
    )?;
    clis[0].qu(
        &[
            "check",
            "add",
            "http",
            "web",
            &format!("http://{target_addr}/"),
            "--interval",
            "1s",
            "--timeout",
            "500ms",
            "--alerts",
            "sink,mail",
        ],
        20,
    )?;
    let listed: serde_json::Value =
        serde_json::from_str(&clis[0].qu(&["check", "list", "--json"], 10)?)
            .map_err(|e| e.to_string())?;
    let check_id = listed["checks"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ids: BTreeSet<String> = clis.iter().map(|c| c.id.clone()).collect();

    let history: History = Arc::new(Mutex::new(vec![Event::Meta {
        voters: o.nodes,
        interval_ms: 1000,
        seed: o.seed,
    }]));
    let deadline = Instant::now() + o.time;
    let nodes = Arc::new(Mutex::new(nodes));
    let alive = Arc::new(Mutex::new(vec![true; o.nodes]));
    let running =
        move |stop: &AtomicBool| Instant::now() < deadline && !stop.load(Ordering::SeqCst);
    let mut threads = Vec::new();

    // Workload: two clients doing linearizable reads and compare-and-set writes.
    for p in 0..2u64 {
        let (h, clis, stop) = (history.clone(), clis.clone(), stop.clone());
        let seed = o.seed.wrapping_add(p + 1);
        threads.push(std::thread::spawn(move || {
            let mut rng = Rng::new(seed);
            let mut n = 0;
            while running(&stop) {
                let c = &clis[rng.below(clis.len() as u64) as usize];
                record(
                    &h,
                    Event::Invoke {
                        t: now_ms(),
                        process: p,
                        op: Op::Read,
                    },
                );
                let read = c.qu(&["check", "list", "--json", "--linearizable"], 8);
                let version = match read
                    .ok()
                    .and_then(|r| serde_json::from_str::<serde_json::Value>(&r).ok())
                {
                    Some(v) => {
                        let items: BTreeSet<String> = v["checks"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|c| c["name"].as_str())
                                    .filter(|n| n.starts_with("w-"))
                                    .map(str::to_string)
                                    .collect()
                            })
                            .unwrap_or_default();
                        let version = v["version"].as_u64();
                        record(
                            &h,
                            Event::Ok {
                                t: now_ms(),
                                process: p,
                                op: Op::Read,
                                value: Value {
                                    version,
                                    items: Some(items),
                                },
                            },
                        );
                        version
                    }
                    None => {
                        record(
                            &h,
                            Event::Fail {
                                t: now_ms(),
                                process: p,
                                op: Op::Read,
                                reason: "read failed".into(),
                            },
                        );
                        None
                    }
                };
                if let Some(v) = version {
                    n += 1;
                    let write = format!("w-{p}-{n}");
                    let op = Op::Cas {
                        expected: v,
                        write: write.clone(),
                    };
                    record(
                        &h,
                        Event::Invoke {
                            t: now_ms(),
                            process: p,
                            op: op.clone(),
                        },
                    );
                    let res = c.qu(
                        &[
                            "check",
                            "add",
                            "tcp",
                            &write,
                            "10.77.0.100:9",
                            "--interval",
                            "1h",
                            "--timeout",
                            "1s",
                            "--if-version",
                            &v.to_string(),
                        ],
                        14,
                    );
                    let t = now_ms();
                    match res {
                        Ok(out) => {
                            let version =
                                out.trim().rsplit(' ').next().and_then(|x| x.parse().ok());
                            record(
                                &h,
                                Event::Ok {
                                    t,
                                    process: p,
                                    op,
                                    value: Value {
                                        version,
                                        items: None,
                                    },
                                },
                            );
                        }
                        Err(e) if e.contains("--if-version") => record(
                            &h,
                            Event::Fail {
                                t,
                                process: p,
                                op,
                                reason: e,
                            },
                        ),
                        Err(e) => record(
                            &h,
                            Event::Info {
                                t,
                                process: p,
                                op,
                                reason: e,
                            },
                        ),
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }));
    }

    // The target goes down for everyone, then for one node only (which must
    // never page), then up again.
    {
        let (h, stop, mode, check) = (
            history.clone(),
            stop.clone(),
            mode_file.clone(),
            check_id.clone(),
        );
        let nodes_by_ip: Vec<(String, String)> = node_hosts
            .iter()
            .zip(clis.iter())
            .map(|(h, c)| (h.ip.clone(), c.id.clone()))
            .collect();
        threads.push(std::thread::spawn(move || {
            let mut phase = 0;
            while running(&stop) {
                std::thread::sleep(Duration::from_secs(7));
                phase = (phase + 1) % 4;
                let (content, failing): (String, BTreeSet<String>) = match phase {
                    1 => (
                        "down".into(),
                        nodes_by_ip.iter().map(|(_, id)| id.clone()).collect(),
                    ),
                    3 => (nodes_by_ip[0].0.clone(), [nodes_by_ip[0].1.clone()].into()),
                    _ => ("up".into(), BTreeSet::new()),
                };
                let _ = std::fs::write(&mode, content);
                record(
                    &h,
                    Event::Truth {
                        t: now_ms(),
                        check: check.clone(),
                        failing_for: failing,
                    },
                );
            }
            let _ = std::fs::write(&mode, "up");
            record(
                &h,
                Event::Truth {
                    t: now_ms(),
                    check,
                    failing_for: BTreeSet::new(),
                },
            );
        }));
    }

    // Leader samples.
    let sampling = Arc::new(AtomicBool::new(true));
    {
        let (h, clis, alive, sampling) = (
            history.clone(),
            clis.clone(),
            alive.clone(),
            sampling.clone(),
        );
        threads.push(std::thread::spawn(move || {
            while sampling.load(Ordering::SeqCst) {
                let live = alive.lock().map(|a| a.clone()).unwrap_or_default();
                let node = leader_of(&clis, &live).map(|i| clis[i].id.clone());
                record(&h, Event::Leader { t: now_ms(), node });
                std::thread::sleep(Duration::from_millis(500));
            }
        }));
    }

    // Nemesis: one fault at a time.
    let mut rng = Rng::new(o.seed);
    let mut injections = 0;
    while running(&stop) {
        std::thread::sleep(Duration::from_secs(3));
        if !running(&stop) {
            break;
        }
        let live = alive.lock().map(|a| a.clone()).unwrap_or_default();
        let leader = leader_of(&clis, &live);
        let n = o.nodes;
        let kinds: &[&str] = if n >= 5 {
            &[
                "partition",
                "partition-leader",
                "kill-leader",
                "pause",
                "pause-leader",
                "one-way",
                "loss",
                "majorities-ring",
                "bridge",
            ]
        } else {
            &[
                "partition",
                "partition-leader",
                "kill-leader",
                "pause",
                "pause-leader",
                "one-way",
                "loss",
            ]
        };
        let fault = kinds[rng.below(kinds.len() as u64) as usize];
        let victim = match (fault.ends_with("-leader"), leader) {
            (true, Some(l)) => l,
            _ => rng.below(n as u64) as usize,
        };
        let is_leader = Some(victim) == leader;
        let targets: Vec<String> = match fault {
            "majorities-ring" | "bridge" => clis.iter().map(|c| c.id.clone()).collect(),
            _ => vec![clis[victim].id.clone()],
        };
        injections += 1;
        record(
            &history,
            Event::Nemesis {
                t: now_ms(),
                action: "start".into(),
                fault: fault.into(),
                targets,
                leader: is_leader || fault == "majorities-ring" || fault == "bridge",
            },
        );
        {
            let mut ns = nodes.lock().map_err(|_| "lock")?;
            let others: Vec<&net::Host> = node_hosts
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != victim)
                .map(|(_, h)| h)
                .collect();
            match fault {
                "partition" | "partition-leader" => net::isolate(&node_hosts[victim], &others)?,
                "one-way" => net::drop_inbound(&node_hosts[victim], &others)?,
                "loss" => net::lossy(&node_hosts[victim], "0.3")?,
                // Each node sees its two ring neighbours: every node sees a
                // majority (itself + 2 of 5), no two see the same one.
                "majorities-ring" => {
                    net::partition(node_hosts, |i, j| (i + 1) % n == j || (j + 1) % n == i)?
                }
                // Two halves joined by the victim, which sees everyone.
                "bridge" => net::partition(node_hosts, |i, j| {
                    i == victim || j == victim || (i < n / 2) == (j < n / 2)
                })?,
                "kill-leader" => {
                    ns[victim].kill();
                    if let Ok(mut a) = alive.lock() {
                        a[victim] = false;
                    }
                }
                _ => ns[victim].pause(),
            }
        }
        std::thread::sleep(Duration::from_secs(3));
        {
            let mut ns = nodes.lock().map_err(|_| "lock")?;
            match fault {
                "partition" | "partition-leader" | "one-way" | "loss" | "majorities-ring"
                | "bridge" => net::heal(node_hosts),
                "kill-leader" => {
                    ns[victim].start()?;
                    if let Ok(mut a) = alive.lock() {
                        a[victim] = true;
                    }
                }
                _ => ns[victim].resume(),
            }
        }
        record(
            &history,
            Event::Nemesis {
                t: now_ms(),
                action: "stop".into(),
                fault: fault.into(),
                targets: vec![clis[victim].id.clone()],
                leader: is_leader,
            },
        );
    }
    // Heal everything, then let the cluster settle.
    net::heal(node_hosts);
    {
        let mut ns = nodes.lock().map_err(|_| "lock")?;
        for (i, n) in ns.iter_mut().enumerate() {
            n.resume();
            if !n.alive() {
                n.start()?;
            }
            if let Ok(mut a) = alive.lock() {
                a[i] = true;
            }
        }
    }
    record(
        &history,
        Event::Healed {
            t: now_ms(),
            live: ids.clone(),
        },
    );
    let settle = Instant::now() + Duration::from_secs(15);
    while Instant::now() < settle && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
    }
    sampling.store(false, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    // Final read, the ledger's transitions, and the sink's deliveries.
    let final_read = (0..50).find_map(|_| {
        let r = clis[0]
            .qu(&["check", "list", "--json", "--linearizable"], 8)
            .ok();
        if r.is_none() {
            std::thread::sleep(Duration::from_millis(200));
        }
        r
    });
    if stop.load(Ordering::SeqCst) {
        return Err(format!(
            "interrupted: the run did not finish, so it was not checked (partial state in {})",
            dir.display()
        ));
    }
    let Some(final_read) = final_read else {
        return Err("the final linearizable read failed for 10s after the heal: the cluster did not recover".into());
    };
    if let Ok(r) = serde_json::from_str::<serde_json::Value>(&final_read) {
        let items: BTreeSet<String> = r["checks"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["name"].as_str())
                    .filter(|n| n.starts_with("w-"))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let t = now_ms();
        record(
            &history,
            Event::Invoke {
                t,
                process: 99,
                op: Op::Read,
            },
        );
        record(
            &history,
            Event::Ok {
                t,
                process: 99,
                op: Op::Read,
                value: Value {
                    version: r["version"].as_u64(),
                    items: Some(items),
                },
            },
        );
    }
    {
        let log = clis[0]
            .qu(&["alert", "log", "--json"], 10)
            .map_err(|e| format!("cannot read the delivery ledger: {e}"))?;
        let rows: serde_json::Value = serde_json::from_str(&log).unwrap_or_default();
        for row in rows.as_array().cloned().unwrap_or_default() {
            let id = row["id"].as_str().unwrap_or_default();
            let parts: Vec<&str> = id.split('-').collect();
            if let [check, flip, _alert] = parts.as_slice() {
                let to = if row["event"] == "DOWN" { "down" } else { "up" };
                record(
                    &history,
                    Event::Transition {
                        t: 0,
                        check: check.to_string(),
                        flip: flip.parse().unwrap_or(0),
                        to: to.into(),
                    },
                );
            }
        }
    }
    for line in std::fs::read_to_string(&sink_log)
        .unwrap_or_default()
        .lines()
    {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        let b = &v["body"];
        if b["event"] == "test" {
            continue;
        }
        record(
            &history,
            Event::Delivery {
                t: v["t"].as_u64().unwrap_or(0),
                delivery_id: b["delivery_id"].as_str().unwrap_or_default().to_string(),
                check: b["check_id"].as_str().unwrap_or_default().to_string(),
                event: b["event"].as_str().unwrap_or_default().to_string(),
            },
        );
    }
    for entry in std::fs::read_dir(&maildir)
        .map(|d| d.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let t = entry
            .file_name()
            .to_string_lossy()
            .split('-')
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .map(|ns| ns / 1_000_000)
            .unwrap_or(0);
        let header = |name: &str| {
            text.lines()
                .take_while(|l| !l.is_empty())
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        let (Some(id), Some(subject)) = (header("Message-ID:"), header("Subject:")) else {
            continue;
        };
        let id = id
            .trim_start_matches('<')
            .split('@')
            .next()
            .unwrap_or_default()
            .to_string();
        if id.starts_with("test-") {
            continue;
        }
        let event = if subject.contains("RECOVERED") {
            "recovered"
        } else {
            "down"
        };
        let check = id.split('-').next().unwrap_or_default().to_string();
        record(
            &history,
            Event::Delivery {
                t,
                delivery_id: id,
                check,
                event: event.into(),
            },
        );
    }
    drop(nodes);
    let history = history.lock().map(|h| h.clone()).unwrap_or_default();
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
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&reports).unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?;
    Ok((reports, injections, operations))
}
