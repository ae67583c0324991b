//! `qu-jepsen bench`: real `qu serve` processes on loopback against real
//! local targets, printing figures (never asserting them):
//!
//! 1. idle RSS of a member with no checks;
//! 2. mutation latency of `qu check add` (the CLI, and the control socket
//!    alone) at the master and at a follower, fsync on a majority included;
//! 3. detection: target down → DOWN committed → page delivered (and the
//!    same for the recovery), over repeated outages at a 1 s interval;
//! 4. failover: kill -9 of the master → next acknowledged write;
//! 5. probe cost at growing numbers of checks (30 s interval): CPU seconds
//!    per 1 000 probes and peak RSS per node, probes per second achieved,
//!    the share of votes that reached their round, Raft entries written.
//!
//! No root needed: nodes listen on 127.0.0.2-4; ICMP checks need
//! `ping_group_range` to include our group (or root); without it they are
//! replaced by TCP checks, and the output says so.

pub mod control;
pub mod procstat;
pub mod targets;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::runner::cluster::Cluster;
use crate::runner::net;
use crate::runner::sh::{now_ms, Rng};
use targets::{HttpTarget, Receiver};

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    pub qu: PathBuf,
    /// Numbers of checks for the probe-cost levels (ascending).
    pub scales: Vec<usize>,
    pub outages: usize,
    pub kills: usize,
    pub mutations: usize,
    /// Measuring window of each probe-cost level.
    pub window: Duration,
    /// `qu serve --timing` profile of the latency cluster.
    pub timing: String,
    /// Interval of the probe-cost checks (timeout: a third of it).
    pub scale_interval: Duration,
}

const PORT: u16 = 19_001;

/// p50 / p99 / max of durations, in milliseconds.
pub fn summary(samples: &[Duration]) -> String {
    if samples.is_empty() {
        return "no samples".into();
    }
    let mut v: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |p| crate::checkers::timings::rank(&v, p);
    format!(
        "p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  (n={})",
        at(0.5),
        at(0.99),
        at(1.0),
        v.len()
    )
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map(|k| format!("{:.0} GiB", k / 1024.0 / 1024.0))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {mem}, Linux {kernel}")
}

/// Whether this process may send ICMP echo (root, or its group in
/// `net.ipv4.ping_group_range`), so the daemons it starts may too.
fn icmp_allowed() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse().ok())
    };
    if field("Uid:") == Some(0) {
        return true;
    }
    let Some(gid) = field("Gid:") else {
        return false;
    };
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap_or_default();
    let r: Vec<u64> = range
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    matches!(r.as_slice(), [lo, hi] if lo <= &gid && &gid <= hi)
}

fn check_spec(
    name: &str,
    kind: serde_json::Value,
    interval_ms: u64,
    timeout_ms: u64,
) -> serde_json::Value {
    serde_json::json!({
        "cmd": "check_add",
        "spec": {"name": name, "kind": kind, "interval_ms": interval_ms, "timeout_ms": timeout_ms, "alerts": []},
    })
}

/// The whole benchmark: sections print as they finish.
pub fn run(o: &Options) -> Result<(), String> {
    let dir = PathBuf::from(format!("/tmp/qu-bench-{}", now_ms()));
    crate::runner::nodes::private_dir(&dir)?;
    let icmp = icmp_allowed();
    println!("qu bench: {}", machine());
    println!(
        "3 nodes on 127.0.0.2-4 (qu serve --timing {}), state in {}",
        o.timing,
        dir.display()
    );
    let http = HttpTarget::start("127.0.0.1")?;
    let tcp = targets::tcp_target("127.0.0.1")?;
    let receiver = Receiver::start("127.0.0.1")?;
    let hosts: Vec<net::Host> = (0..3)
        .map(|i| net::loopback(&format!("b{}", i + 1), 2 + i as u8, PORT))
        .collect();
    // Latencies on the one-site profile (loopback is one site); probe cost
    // on a fresh cluster with the shipped defaults.
    {
        let serve = ["--timing", o.timing.as_str(), "--leader-cooldown", "2s"];
        let dir = dir.join("latency");
        crate::runner::nodes::private_dir(&dir)?;
        let cluster = Cluster::form_with(&o.qu, &hosts, &dir, Some(&serve))?;
        println!(
            "\nlatency cluster: qu serve --timing {} --leader-cooldown 2s",
            o.timing
        );
        mutation_latency(&cluster, o.mutations)?;
        detection(&cluster, &http, &receiver, o.outages)?;
        failover(&cluster, o.kills)?;
    }
    let dir = dir.join("probes");
    crate::runner::nodes::private_dir(&dir)?;
    // Defaults, plus the HTTP listener, so each level also times a scrape.
    let cluster = Cluster::form_each(&o.qu, &hosts, &dir, |h| {
        Some(vec!["--http".into(), metrics_addr(h)])
    })?;
    println!(
        "\nprobe cluster: qu serve with default settings (timing wan) and --http IP:{METRICS_PORT}"
    );
    let sockets = cluster.sockets();
    let idle = idle_usage(&cluster, o.window);
    probe_cost(&cluster, &sockets, &http, &tcp, icmp, &idle, o)?;
    println!("done; node logs in {}", dir.display());
    Ok(())
}

/// The port of each bench node's HTTP listener (`qu serve --http`).
const METRICS_PORT: u16 = 9101;

fn metrics_addr(h: &net::Host) -> String {
    format!("{}:{METRICS_PORT}", h.ip)
}

/// Bytes of every file under `dir` (0 when it does not exist).
fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => disk_bytes(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

/// `GET /metrics` of one node `n` times: (bytes, time of each scrape).
fn scrape(addr: &str, n: usize) -> Result<(usize, Vec<Duration>), String> {
    use std::io::{Read, Write};
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..n {
        let t0 = Instant::now();
        let sock: std::net::SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
        let mut s = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(10))
            .map_err(|e| format!("GET {addr}/metrics: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: application/openmetrics-text; version=1.0.0\r\nConnection: close\r\n\r\n")
            .map_err(|e| format!("GET {addr}/metrics: {e}"))?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .map_err(|e| format!("GET {addr}/metrics: {e}"))?;
        times.push(t0.elapsed());
        let body = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |i| raw.len() - i - 4);
        if !raw.starts_with(b"HTTP/1.1 200") {
            return Err(format!("GET {addr}/metrics did not answer 200"));
        }
        size = body;
    }
    Ok((size, times))
}

/// CPU (ms per second) and RSS (MiB) of each node with no checks.
fn idle_usage(c: &Cluster, window: Duration) -> Vec<f64> {
    std::thread::sleep(Duration::from_secs(5));
    let pids = c.pids();
    let cpu0: Vec<f64> = pids
        .iter()
        .map(|p| p.and_then(procstat::cpu_secs).unwrap_or(0.0))
        .collect();
    let t = Instant::now();
    std::thread::sleep(window.min(Duration::from_secs(20)));
    let secs = t.elapsed().as_secs_f64();
    let idle: Vec<f64> = pids
        .iter()
        .zip(&cpu0)
        .map(|(p, c0)| (p.and_then(procstat::cpu_secs).unwrap_or(0.0) - c0) / secs * 1000.0)
        .collect();
    let rss = procstat::mem_per_node(&pids, "VmRSS:", 1);
    let cpu: Vec<String> = idle.iter().map(|c| format!("{c:.1}")).collect();
    println!(
        "  idle member (no checks): RSS {} MiB, CPU {} ms/s per node",
        rss.join(" / "),
        cpu.join(" / ")
    );
    idle
}

fn leader_index(c: &Cluster, within: Duration) -> Result<usize, String> {
    let until = Instant::now() + within;
    loop {
        if let Some(l) = c.leader() {
            return Ok(l);
        }
        if Instant::now() > until {
            return Err("no master".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mutation_latency(c: &Cluster, n: usize) -> Result<(), String> {
    let leader = leader_index(c, Duration::from_secs(10))?;
    let follower = (leader + 1) % c.len();
    let sockets = c.sockets();
    println!(
        "\nmutation latency: qu check add, acknowledged once committed and fsynced on a majority"
    );
    for (role, i) in [("master", leader), ("follower (forwarded)", follower)] {
        let mut cli = Vec::new();
        for k in 0..n {
            let name = format!("m-{role}-{k}").replace([' ', '(', ')'], "");
            let t = Instant::now();
            c.clis[i].qu(
                &[
                    "check",
                    "add",
                    "tcp",
                    &name,
                    "127.0.0.1:9",
                    "--interval",
                    "1h",
                    "--timeout",
                    "1s",
                ],
                10,
            )?;
            cli.push(t.elapsed());
        }
        let mut sock = Vec::new();
        for k in 0..n {
            let name = format!("s-{role}-{k}").replace([' ', '(', ')'], "");
            let req = check_spec(
                &name,
                serde_json::json!({"type": "tcp", "target": "127.0.0.1:9"}),
                3_600_000,
                1_000,
            );
            let t = Instant::now();
            control::request(&sockets[i], &req, Duration::from_secs(10))?;
            sock.push(t.elapsed());
        }
        println!("  at the {role}: CLI {}", summary(&cli));
        println!("  at the {role}: control socket alone {}", summary(&sock));
    }
    Ok(())
}

/// Polls `socket` until check `name` is in `state`; when it was first seen.
fn wait_state(socket: &Path, name: &str, state: &str, within: Duration) -> Option<Instant> {
    let until = Instant::now() + within;
    let req = serde_json::json!({"cmd": "check_list"});
    while Instant::now() < until {
        if let Ok(v) = control::request(socket, &req, Duration::from_secs(5)) {
            let found = v["checks"]
                .as_array()
                .and_then(|a| a.iter().find(|c| c["name"] == name))
                .map(|c| c["state"] == state)
                .unwrap_or(false);
            if found {
                return Some(Instant::now());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn detection(
    c: &Cluster,
    http: &HttpTarget,
    receiver: &Receiver,
    outages: usize,
) -> Result<(), String> {
    let leader = leader_index(c, Duration::from_secs(10))?;
    let sockets = c.sockets();
    let s = &sockets[leader];
    control::request(
        s,
        &serde_json::json!({"cmd": "alert_add", "spec": {"name": "hook", "kind": {"type": "webhook", "url": receiver.url}}}),
        Duration::from_secs(10),
    )?;
    let mut spec = check_spec(
        "det",
        serde_json::json!({"type": "http", "url": format!("http://{}/det", http.addr)}),
        1_000,
        500,
    );
    spec["spec"]["alerts"] = serde_json::json!(["hook"]);
    control::request(s, &spec, Duration::from_secs(10))?;
    let list = control::request(
        s,
        &serde_json::json!({"cmd": "check_list"}),
        Duration::from_secs(10),
    )?;
    let id = list["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == "det"))
        .and_then(|c| c["id"].as_str())
        .ok_or("the detection check is not listed")?
        .to_string();
    wait_state(s, "det", "up", Duration::from_secs(30))
        .ok_or("the detection check never came up")?;
    let (mut down_commit, mut down_page, mut up_commit, mut up_page) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut rng = Rng::new(7);
    let limit = Duration::from_secs(30);
    for _ in 0..outages {
        // Start outages at different points of the round.
        std::thread::sleep(Duration::from_millis(500 + rng.below(1000)));
        let t0 = Instant::now();
        http.down.store(true, Ordering::SeqCst);
        let committed = wait_state(s, "det", "down", limit).ok_or("no DOWN within 30 s")?;
        down_commit.push(committed - t0);
        let paged = receiver
            .wait_page(&id, "down", t0, limit)
            .ok_or("no DOWN page within 30 s")?;
        down_page.push(paged - t0);
        std::thread::sleep(Duration::from_millis(500 + rng.below(1000)));
        let t1 = Instant::now();
        http.down.store(false, Ordering::SeqCst);
        let committed = wait_state(s, "det", "up", limit).ok_or("no UP within 30 s")?;
        up_commit.push(committed - t1);
        let paged = receiver
            .wait_page(&id, "recovered", t1, limit)
            .ok_or("no RECOVERED page within 30 s")?;
        up_page.push(paged - t1);
    }
    println!("\ndetection (HTTP check, interval 1s, timeout 500ms, webhook alert)");
    println!("  target down → DOWN committed   {}", summary(&down_commit));
    println!("  target down → page delivered   {}", summary(&down_page));
    println!("  target up → UP committed       {}", summary(&up_commit));
    println!("  target up → RECOVERED page     {}", summary(&up_page));
    Ok(())
}

/// Waits until every node answers, all are voters and the smallest id leads.
fn wait_settled(c: &Cluster, within: Duration) -> Result<(), String> {
    let until = Instant::now() + within;
    let smallest = c.ids().into_iter().next().unwrap_or_default();
    loop {
        let ok = c.clis.iter().all(|cli| {
            cli.status().is_some_and(|s| {
                s["voters"] == c.len()
                    && s["master"].as_str() == Some(smallest.as_str())
                    && s["quorum"] == true
            })
        });
        if ok {
            return Ok(());
        }
        if Instant::now() > until {
            return Err("the cluster did not settle back on its smallest node".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn failover(c: &Cluster, kills: usize) -> Result<(), String> {
    let sockets = c.sockets();
    let mut samples = Vec::new();
    for k in 0..kills {
        wait_settled(c, Duration::from_secs(60))?;
        let leader = leader_index(c, Duration::from_secs(10))?;
        let t0 = Instant::now();
        c.kill(leader)?;
        let mut attempt = 0;
        loop {
            let j = (leader + 1 + attempt % (c.len() - 1)) % c.len();
            let req = check_spec(
                &format!("f-{k}-{attempt}"),
                serde_json::json!({"type": "tcp", "target": "127.0.0.1:9"}),
                3_600_000,
                1_000,
            );
            if control::request(&sockets[j], &req, Duration::from_secs(6)).is_ok() {
                samples.push(t0.elapsed());
                break;
            }
            attempt += 1;
            if t0.elapsed() > Duration::from_secs(60) {
                return Err("no write was acknowledged within 60 s of the master's death".into());
            }
        }
        c.restart(leader)?;
    }
    println!("\nfailover: kill -9 of the master → next acknowledged write (through a survivor)");
    println!("  {}", summary(&samples));
    Ok(())
}

/// Per-node counters read from `qu status --json`.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    cpu: f64,
    probes: u64,
    missed: u64,
    dropped: u64,
    results: u64,
    reports: u64,
}

fn sample(pid: Option<u32>, socket: &Path) -> Result<(Sample, serde_json::Value), String> {
    let s = control::status(socket)?;
    let p = &s["probing"];
    let n = |k: &str| p[k].as_u64().unwrap_or(0);
    Ok((
        Sample {
            cpu: pid.and_then(procstat::cpu_secs).unwrap_or(0.0),
            probes: n("probes"),
            missed: n("missed_rounds"),
            dropped: n("dropped_results"),
            results: n("results_reported"),
            reports: n("reports"),
        },
        s,
    ))
}

/// Adds checks `from..to` through the master, 8 at a time; checks per second.
fn add_checks(
    socket: &Path,
    from: usize,
    to: usize,
    interval: Duration,
    kind_of: &(dyn Fn(usize) -> serde_json::Value + Sync),
) -> Result<f64, String> {
    let interval_ms = interval.as_millis() as u64;
    let next = AtomicUsize::new(from);
    let failure = std::sync::Mutex::new(None::<String>);
    let t = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= to {
                    return;
                }
                let req = check_spec(&format!("p-{i}"), kind_of(i), interval_ms, interval_ms / 3);
                let mut tries = 0;
                while let Err(e) = control::request(socket, &req, Duration::from_secs(20)) {
                    if e.contains("exists") {
                        break;
                    }
                    tries += 1;
                    if tries > 5 {
                        if let Ok(mut f) = failure.lock() {
                            *f = Some(format!("cannot add check p-{i}: {e}"));
                        }
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    Ok((to - from) as f64 / t.elapsed().as_secs_f64())
}

/// Waits until the master shows no check of prefix `p-` still unknown.
fn wait_all_up(socket: &Path, want: usize, within: Duration) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < within {
        if let Ok(s) = control::status(socket) {
            let up = s["checks"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|c| c["name"].as_str().is_some_and(|n| n.starts_with("p-")))
                        .filter(|c| c["state"] == "up")
                        .count()
                })
                .unwrap_or(0);
            if up >= want {
                return Some(t.elapsed());
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    None
}

fn probe_cost(
    c: &Cluster,
    sockets: &[PathBuf],
    http: &HttpTarget,
    tcp: &str,
    icmp: bool,
    idle: &[f64],
    o: &Options,
) -> Result<(), String> {
    wait_settled(c, Duration::from_secs(60))?;
    let leader = leader_index(c, Duration::from_secs(10))?;
    let http_addr = http.addr.clone();
    let tcp = tcp.to_string();
    let first = o.scales.first().copied().unwrap_or(0);
    // The first level is HTTP only (the figure to compare with other
    // monitors); later ones add HTTP, TCP and ICMP checks in turn.
    let kind_of = move |i: usize| -> serde_json::Value {
        let k = if i < first { 0 } else { i % 3 };
        match k {
            0 => serde_json::json!({"type": "http", "url": format!("http://{http_addr}/c/{i}")}),
            2 if icmp => serde_json::json!({"type": "icmp", "host": "127.0.0.1"}),
            _ => serde_json::json!({"type": "tcp", "target": tcp}),
        }
    };
    println!(
        "\nprobe cost (every node probes every check; interval {}s, timeout {}s; window {}s per level)",
        o.scale_interval.as_secs(),
        o.scale_interval.as_secs() / 3,
        o.window.as_secs()
    );
    if !icmp {
        println!("  (ICMP not permitted for this user: ICMP checks replaced by TCP; run as root or widen net.ipv4.ping_group_range)");
    }
    println!(
        "  {:>6} {:<9} {:>7} {:>8} {:>11} {:>13} {:>11} {:>9} {:>9} {:>8} {:>8}",
        "checks",
        "mix",
        "adds/s",
        "all up",
        "probes/s",
        "CPU-s/1k",
        "peak RSS",
        "in round",
        "complete",
        "missed",
        "raft +"
    );
    let mut have = 0;
    for &n in &o.scales {
        let rate = add_checks(&sockets[leader], have, n, o.scale_interval, &kind_of)?;
        have = n;
        let all_up = wait_all_up(&sockets[leader], n, o.scale_interval * 10);
        let pids = c.pids();
        let before: Vec<(Sample, serde_json::Value)> = pids
            .iter()
            .zip(sockets)
            .map(|(p, s)| sample(*p, s))
            .collect::<Result<_, _>>()?;
        let served0 = http.served.load(Ordering::Relaxed);
        let t0 = Instant::now();
        std::thread::sleep(o.window);
        let secs = t0.elapsed().as_secs_f64();
        let after: Vec<(Sample, serde_json::Value)> = pids
            .iter()
            .zip(sockets)
            .map(|(p, s)| sample(*p, s))
            .collect::<Result<_, _>>()?;
        let served = http.served.load(Ordering::Relaxed) - served0;
        let mut per_node = Vec::new();
        for ((b, _), (a, _)) in before.iter().zip(&after) {
            let probes = a.probes.saturating_sub(b.probes);
            let cpu = a.cpu - b.cpu;
            per_node.push((
                probes,
                cpu,
                a.missed - b.missed,
                a.dropped - b.dropped,
                a.results - b.results,
                a.reports - b.reports,
            ));
        }
        let probes_s: Vec<String> = per_node
            .iter()
            .map(|p| format!("{:.0}", p.0 as f64 / secs))
            .collect();
        let cpu_k: Vec<String> = per_node
            .iter()
            .map(|p| {
                if p.0 > 0 {
                    format!("{:.2}", p.1 / p.0 as f64 * 1000.0)
                } else {
                    "-".into()
                }
            })
            .collect();
        let net_k: Vec<String> = per_node
            .iter()
            .zip(idle)
            .map(|(p, i)| {
                if p.0 > 0 {
                    format!(
                        "{:.2}",
                        (p.1 - i / 1000.0 * secs).max(0.0) / p.0 as f64 * 1000.0
                    )
                } else {
                    "-".into()
                }
            })
            .collect();
        let rss = procstat::mem_per_node(&pids, "VmHWM:", 0);
        let rounds =
            |v: &serde_json::Value, k: &str| v["probing"]["rounds"][k].as_u64().unwrap_or(0);
        let (lb, la) = (&before[leader].1, &after[leader].1);
        let counted = rounds(la, "votes_counted").saturating_sub(rounds(lb, "votes_counted"));
        let expected = rounds(la, "votes_expected").saturating_sub(rounds(lb, "votes_expected"));
        let evaluated =
            rounds(la, "rounds_evaluated").saturating_sub(rounds(lb, "rounds_evaluated"));
        let complete = rounds(la, "complete_rounds").saturating_sub(rounds(lb, "complete_rounds"));
        let raft = la["raft"]["last_log_index"]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(lb["raft"]["last_log_index"].as_u64().unwrap_or(0));
        let pct = |a: u64, b: u64| {
            if b == 0 {
                "-".to_string()
            } else {
                format!("{:.2}%", a as f64 * 100.0 / b as f64)
            }
        };
        let missed: u64 = per_node.iter().map(|p| p.2 + p.3).sum();
        println!(
            "  {:>6} {:<9} {:>7.0} {:>8} {:>11} {:>13} {:>11} {:>9} {:>9} {:>8} {:>8}",
            n,
            if n <= first {
                "http"
            } else if icmp {
                "http/tcp/icmp"
            } else {
                "http/tcp"
            },
            rate,
            all_up
                .map(|d| format!("{}s", d.as_secs()))
                .unwrap_or_else(|| "timeout".into()),
            probes_s.join("/"),
            cpu_k.join("/"),
            format!("{} MiB", rss.join("/")),
            pct(counted, expected),
            pct(complete, evaluated),
            missed,
            raft,
        );
        let batch: Vec<String> = per_node
            .iter()
            .map(|p| {
                if p.5 > 0 {
                    format!("{:.0}", p.4 as f64 / p.5 as f64)
                } else {
                    "-".into()
                }
            })
            .collect();
        println!(
            "         net of idle CPU-s/1k {} · results per report {} · HTTP target served {:.0} req/s",
            net_k.join("/"),
            batch.join("/"),
            served as f64 / secs
        );
        let dirs = c.dirs();
        let per_check = |sub: &str| -> String {
            dirs.iter()
                .map(|d| format!("{:.0}", disk_bytes(&d.join(sub)) as f64 / n.max(1) as f64))
                .collect::<Vec<_>>()
                .join("/")
        };
        println!(
            "         on disk per check (bytes, per node): raft/ {} · rollups/ {}",
            per_check("raft"),
            per_check("rollups")
        );
        let (bytes, times) = scrape(&metrics_addr(&c.hosts[leader]), 5)?;
        println!(
            "         /metrics of the master: {:.0} KiB, scrape {}",
            bytes as f64 / 1024.0,
            summary(&times)
        );
    }
    println!(
        "  per-node figures in the order 127.0.0.2/.3/.4 (the master is 127.0.0.{}); 'in round': voters' results that reached their round's evaluation; 'complete': rounds with every voter's result; 'missed': rounds not started on time plus results dropped; 'raft +': log entries written during the window",
        2 + leader
    );
    Ok(())
}
