//! `qu-jepsen check HISTORY.jsonl`: runs every checker over a recorded
//! history and prints the report; exit 0 when all pass, 1 otherwise.
//! `qu-jepsen run …` (the fault-injection runner) is not built yet and says so.

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: qu-jepsen check HISTORY.jsonl [--json]\n       qu-jepsen run    (not built yet)"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check") => {
            let Some(path) = args.get(1) else {
                return usage();
            };
            let history = match qu_jepsen::history::load(std::path::Path::new(path)) {
                Ok(h) => h,
                Err(e) => {
                    eprintln!("qu-jepsen: {e}");
                    return ExitCode::from(2);
                }
            };
            let reports = qu_jepsen::checkers::check_all(&history);
            if args.iter().any(|a| a == "--json") {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&reports).unwrap_or_default()
                );
            } else {
                for r in &reports {
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
            }
            if reports.iter().all(|r| r.ok) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Some("run") => {
            eprintln!("qu-jepsen: the fault-injection runner (namespaces, nemeses, workloads) is not built yet (issue 7); 'qu-jepsen check' checks recorded histories");
            ExitCode::from(2)
        }
        _ => usage(),
    }
}
