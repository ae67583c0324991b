//! qu-jepsen: fault-injection runs against real `qu` processes.
//!
//! - `qu-jepsen run [--seed S] [--time 60s] [--nodes 3] [--faults a,b] [--qu PATH]`: builds
//!   namespaces, runs a cluster under faults, records the history, checks it,
//!   prints the report (needs root). Exit 0 when every checker passes.
//! - `qu-jepsen check HISTORY.jsonl [--json]`: checks a recorded history.
//! - `qu-jepsen bench [...]`: benchmarks on loopback; prints figures.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use qu_jepsen::checkers::Report;

const USAGE: &str = "usage:
  qu-jepsen run [--seed S] [--time 60s] [--nodes 3|5] [--faults a,b] [--qu PATH]
      (root: namespaces, iptables). Faults: partition, partition-leader,
      one-way, loss, kill-leader, pause, pause-leader, skew, skew-leader,
      wipe-rejoin, majorities-ring, bridge (the last two need --nodes 5)
  qu-jepsen check HISTORY.jsonl [--json]
  qu-jepsen bench [--quick] [--scales 1000,5000,10000] [--outages 20] [--kills 20]
      [--mutations 100] [--window 60s] [--scale-interval 30s] [--timing lan] [--qu PATH]
      (no root needed; build with --release for meaningful figures)";

fn print_reports(reports: &[Report]) -> bool {
    for r in reports {
        println!("{} {}", if r.ok { "PASS" } else { "FAIL" }, r.checker);
        for p in &r.problems {
            println!("    counterexample: {p}");
        }
        for (k, v) in &r.figures {
            println!("    {k}: {v}");
        }
    }
    let failed = reports.iter().filter(|r| !r.ok).count();
    println!("{} passed, {failed} failed", reports.len() - failed);
    failed == 0
}

fn parse_time(s: &str) -> Option<Duration> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = n.parse().ok()?;
    match unit {
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n * 60)),
        _ => None,
    }
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// `--qu PATH`, else the `qu` next to this binary, else `qu` on PATH.
fn qu_path(args: &[String]) -> PathBuf {
    flag(args, "--qu").map(PathBuf::from).unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("qu")))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("qu"))
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check") => {
            let Some(path) = args.get(1) else {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            };
            let history = match qu_jepsen::history::load(std::path::Path::new(path)) {
                Ok(h) => h,
                Err(e) => {
                    eprintln!("qu-jepsen: {e}");
                    return ExitCode::from(2);
                }
            };
            let reports = qu_jepsen::checkers::check_all(&history);
            let ok = if args.iter().any(|a| a == "--json") {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&reports).unwrap_or_default()
                );
                reports.iter().all(|r| r.ok)
            } else {
                print_reports(&reports)
            };
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Some("run") => {
            let seed = flag(&args, "--seed")
                .and_then(|s| s.parse().ok())
                .unwrap_or(1);
            let Some(time) = parse_time(flag(&args, "--time").unwrap_or("60s")) else {
                eprintln!("qu-jepsen: --time takes e.g. 60s or 2m");
                return ExitCode::from(2);
            };
            let nodes = flag(&args, "--nodes")
                .and_then(|s| s.parse().ok())
                .unwrap_or(3);
            if !(3..=9).contains(&nodes) {
                eprintln!("qu-jepsen: --nodes takes 3 to 9");
                return ExitCode::from(2);
            }
            let faults = match flag(&args, "--faults")
                .map(qu_jepsen::runner::nemesis::Fault::parse_list)
                .transpose()
            {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("qu-jepsen: --faults: {e}");
                    return ExitCode::from(2);
                }
            };
            let qu = qu_path(&args);
            let stop = Arc::new(AtomicBool::new(false));
            let s = stop.clone();
            let _ = ctrlc::set_handler(move || {
                eprintln!("qu-jepsen: interrupted; healing and cleaning up…");
                s.store(true, Ordering::SeqCst);
            });
            println!(
                "qu-jepsen: seed {seed}, {nodes} nodes, {}s (replay with --seed {seed})",
                time.as_secs()
            );
            match qu_jepsen::runner::run(
                qu_jepsen::runner::Options {
                    seed,
                    time,
                    nodes,
                    qu,
                    faults,
                },
                stop,
            ) {
                Ok(out) => {
                    let kinds: Vec<String> =
                        out.faults.iter().map(|(k, n)| format!("{k} {n}")).collect();
                    println!(
                        "faults injected: {} ({}), operations: {}",
                        out.injections(),
                        kinds.join(", "),
                        out.operations
                    );
                    if !out.clock_faults {
                        println!("clock faults skipped: libfaketime is not installed (apt-get install faketime)");
                    }
                    let ok = print_reports(&out.reports);
                    println!("history and report kept in {}", out.dir.display());
                    if ok {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("qu-jepsen: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Some("bench") => {
            let quick = args.iter().any(|a| a == "--quick");
            let num = |name: &str, default: usize| {
                flag(&args, name)
                    .map(|v| {
                        v.parse::<usize>()
                            .map_err(|_| format!("{name} takes a number"))
                    })
                    .unwrap_or(Ok(default))
            };
            let parsed = (|| -> Result<qu_jepsen::bench::Options, String> {
                let scales = match flag(&args, "--scales") {
                    Some(s) => s
                        .split(',')
                        .map(|v| v.trim().parse::<usize>())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|_| "--scales takes numbers, e.g. 1000,5000,10000".to_string())?,
                    None if quick => vec![1000],
                    None => vec![1000, 5000, 10000],
                };
                if scales.is_empty() || scales.windows(2).any(|w| w[0] >= w[1]) {
                    return Err("--scales must be ascending, e.g. 1000,5000,10000".into());
                }
                let window = match flag(&args, "--window") {
                    Some(w) => parse_time(w).ok_or("--window takes e.g. 60s or 2m")?,
                    None if quick => Duration::from_secs(30),
                    None => Duration::from_secs(60),
                };
                Ok(qu_jepsen::bench::Options {
                    qu: qu_path(&args),
                    scales,
                    outages: num("--outages", if quick { 5 } else { 20 })?,
                    kills: num("--kills", if quick { 5 } else { 20 })?,
                    mutations: num("--mutations", if quick { 30 } else { 100 })?,
                    window,
                    timing: flag(&args, "--timing").unwrap_or("lan").to_string(),
                    scale_interval: match flag(&args, "--scale-interval") {
                        Some(v) => parse_time(v)
                            .filter(|d| d.as_secs() >= 3)
                            .ok_or("--scale-interval takes e.g. 30s (at least 3s)")?,
                        None => Duration::from_secs(30),
                    },
                })
            })();
            match parsed.and_then(|o| qu_jepsen::bench::run(&o)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("qu-jepsen bench: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Some("serve-target") if args.len() >= 3 => {
            match qu_jepsen::runner::servers::target(&args[1], &args[2]) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("qu-jepsen target: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Some("serve-sink") if args.len() >= 3 => {
            match qu_jepsen::runner::servers::sink(&args[1], &args[2]) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("qu-jepsen sink: {e}");
                    ExitCode::from(2)
                }
            }
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
