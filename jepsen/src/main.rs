//! qu-jepsen: fault-injection runs against real `qu` processes.
//!
//! - `qu-jepsen run [--seed S] [--time 60s] [--nodes 3] [--faults a,b] [--qu PATH]`: builds
//!   namespaces, runs a cluster under faults, records the history, checks it,
//!   prints the report (needs root). Exit 0 when every checker passes.
//! - `qu-jepsen soak [--time 30m] [--nodes 5] [--run-time 4m] [--seed S]`:
//!   back-to-back runs rotating seeds and fault menus; one summary table.
//! - `qu-jepsen check HISTORY.jsonl [--json]`: checks a recorded history.
//! - `qu-jepsen bench [...]`: benchmarks on loopback; prints figures.
//! - `qu-jepsen proxy` (internal): a node's link-fault proxy.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use qu_jepsen::checkers::Report;

/// Command line of the harness (clap: every flag checked, unknown ones refused).
#[derive(Debug, Parser)]
#[command(
    name = "qu-jepsen",
    about = "Fault-injection runs and benchmarks against real qu processes"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run a cluster under faults, record the history, check it (needs root: namespaces, iptables)
    Run {
        /// Seed of the fault schedule (replay a run with the same seed)
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How long to inject faults, e.g. 60s or 2m
        #[arg(long, default_value = "60s", value_parser = parse_time)]
        time: Duration,
        /// Cluster size (3 to 9)
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(3..=9))]
        nodes: u64,
        /// Only these faults: partition, partition-leader, one-way, loss, kill-leader, pause, pause-leader, skew, skew-leader, wipe-rejoin, majorities-ring, bridge, latency, bandwidth, blackhole, slow-close, flaky-uplink, flaky-minority, slow-majority (majorities-ring, bridge and flaky-minority need --nodes 5)
        #[arg(long, value_name = "a,b")]
        faults: Option<String>,
        /// The qu binary [default: the one next to this binary, else qu on PATH]
        #[arg(long, value_name = "PATH")]
        qu: Option<PathBuf>,
    },
    /// Back-to-back runs for a total time, rotating seeds and fault menus (everything, links, leader and clocks, membership, partitions); prints one summary table (needs root)
    Soak {
        /// Seed of the first run (each next run: +1)
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Total time, e.g. 30m
        #[arg(long, default_value = "30m", value_parser = parse_time)]
        time: Duration,
        /// Fault window of each run (each run also spends about a minute setting up, settling and checking)
        #[arg(long, default_value = "4m", value_parser = parse_time)]
        run_time: Duration,
        /// Cluster size (3 to 9)
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(3..=9))]
        nodes: u64,
        /// The qu binary [default: the one next to this binary, else qu on PATH]
        #[arg(long, value_name = "PATH")]
        qu: Option<PathBuf>,
    },
    /// Check a recorded history
    Check {
        history: PathBuf,
        /// Print the reports as JSON
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks on loopback that print figures (no root needed; build with --release for meaningful figures)
    Bench {
        /// Smaller defaults everywhere
        #[arg(long)]
        quick: bool,
        /// Check counts to measure, ascending [default: 1000,5000,10000; --quick: 1000]
        #[arg(long, value_delimiter = ',', value_name = "N,N")]
        scales: Vec<usize>,
        /// Outages to detect [default: 20; --quick: 5]
        #[arg(long)]
        outages: Option<usize>,
        /// Master kills to time [default: 20; --quick: 5]
        #[arg(long)]
        kills: Option<usize>,
        /// Mutations to time [default: 100; --quick: 30]
        #[arg(long)]
        mutations: Option<usize>,
        /// Measurement window [default: 60s; --quick: 30s]
        #[arg(long, value_parser = parse_time)]
        window: Option<Duration>,
        /// Probe interval at scale (at least 3s)
        #[arg(long, default_value = "30s", value_parser = parse_interval)]
        scale_interval: Duration,
        /// Raft timing profile of the latency cluster
        #[arg(long, default_value = "lan")]
        timing: String,
        /// The qu binary [default: the one next to this binary, else qu on PATH]
        #[arg(long, value_name = "PATH")]
        qu: Option<PathBuf>,
    },
    /// (internal) The HTTP target of a run
    #[command(hide = true)]
    ServeTarget { a: String, b: String },
    /// (internal) The webhook sink of a run
    #[command(hide = true)]
    ServeSink { a: String, b: String },
    /// (internal) A node's link-fault proxy, in its namespace
    #[command(hide = true)]
    Proxy {
        /// The unix socket that takes fault tables
        #[arg(long)]
        control: PathBuf,
        /// A node link: LISTEN=UPSTREAM (ip:port=ip:port)
        #[arg(long)]
        peer: Vec<String>,
        /// A probe link to the target: LISTEN=UPSTREAM
        #[arg(long)]
        target: Vec<String>,
        /// Seed of the jitter and the loss bursts
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    parse_time(s).and_then(|d| {
        if d.as_secs() >= 3 {
            Ok(d)
        } else {
            Err("at least 3s".into())
        }
    })
}

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

/// `60s` or `2m`.
fn parse_time(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration like 60s or 2m");
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    match unit {
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(bad()),
    }
}

/// `--qu PATH`, else the `qu` next to this binary, else `qu` on PATH.
fn qu_path(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("qu")))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("qu"))
    })
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Cmd::Check { history, json } => {
            let history = match qu_jepsen::history::load(&history) {
                Ok(h) => h,
                Err(e) => {
                    eprintln!("qu-jepsen: {e}");
                    return ExitCode::from(2);
                }
            };
            let reports = qu_jepsen::checkers::check_all(&history);
            let ok = if json {
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
        Cmd::Run {
            seed,
            time,
            nodes,
            faults,
            qu,
        } => {
            let nodes = nodes as usize;
            let faults = match faults
                .as_deref()
                .map(qu_jepsen::runner::nemesis::Fault::parse_list)
                .transpose()
            {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("qu-jepsen: --faults: {e}");
                    return ExitCode::from(2);
                }
            };
            let qu = qu_path(qu);
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
        Cmd::Soak {
            seed,
            time,
            run_time,
            nodes,
            qu,
        } => {
            let stop = Arc::new(AtomicBool::new(false));
            let s = stop.clone();
            let _ = ctrlc::set_handler(move || {
                eprintln!("qu-jepsen: interrupted; healing and cleaning up…");
                s.store(true, Ordering::SeqCst);
            });
            let o = qu_jepsen::soak::SoakOptions {
                seed,
                time,
                run_time,
                nodes: nodes as usize,
                qu: qu_path(qu),
            };
            match qu_jepsen::soak::soak(&o, stop) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("qu-jepsen soak: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Bench {
            quick,
            scales,
            outages,
            kills,
            mutations,
            window,
            scale_interval,
            timing,
            qu,
        } => {
            let scales = if !scales.is_empty() {
                scales
            } else if quick {
                vec![1000]
            } else {
                vec![1000, 5000, 10000]
            };
            if scales.windows(2).any(|w| w[0] >= w[1]) {
                eprintln!("qu-jepsen bench: --scales must be ascending, e.g. 1000,5000,10000");
                return ExitCode::from(2);
            }
            let pick = |v: Option<usize>, full: usize, small: usize| {
                v.unwrap_or(if quick { small } else { full })
            };
            let o = qu_jepsen::bench::Options {
                qu: qu_path(qu),
                scales,
                outages: pick(outages, 20, 5),
                kills: pick(kills, 20, 5),
                mutations: pick(mutations, 100, 30),
                window: window.unwrap_or(Duration::from_secs(if quick { 30 } else { 60 })),
                timing,
                scale_interval,
            };
            match qu_jepsen::bench::run(&o) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("qu-jepsen bench: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::ServeTarget { a, b } => match qu_jepsen::runner::servers::target(&a, &b) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("qu-jepsen target: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Proxy {
            control,
            peer,
            target,
            seed,
        } => {
            use qu_jepsen::proxy::{parse_route, serve, shape::Link};
            let routes: Result<Vec<_>, String> = peer
                .iter()
                .map(|r| parse_route(Link::Peer, r))
                .chain(target.iter().map(|r| parse_route(Link::Target, r)))
                .collect();
            match routes.and_then(|r| serve(r, control, seed)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("qu-jepsen proxy: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::ServeSink { a, b } => match qu_jepsen::runner::servers::sink(&a, &b) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("qu-jepsen sink: {e}");
                ExitCode::from(2)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_numbers_and_unknown_flags_are_refused_not_defaulted() {
        for args in [
            &["qu-jepsen", "run", "--seed", "abc"][..],
            &["qu-jepsen", "run", "--nodes", "12"],
            &["qu-jepsen", "run", "--time", "soon"],
            &["qu-jepsen", "run", "--sede", "5"],
            &["qu-jepsen", "bench", "--scales", "1000,x"],
            &["qu-jepsen", "bench", "--scale-interval", "1s"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?} was accepted");
        }
        let Cmd::Run {
            seed, time, nodes, ..
        } = Cli::try_parse_from(["qu-jepsen", "run", "--seed", "80", "--time", "45s"])
            .unwrap()
            .command
        else {
            panic!("not a run")
        };
        assert_eq!((seed, time, nodes), (80, Duration::from_secs(45), 3));
    }
}
