//! `qu-jepsen soak`: back-to-back runs for a total time, rotating seeds and
//! fault menus, and one summary table at the end (faults by kind,
//! operations, checker results, timings), also kept as `summary.json` and
//! `summary.md` in the soak's directory.
//!
//! Invariant: a run that errors (could not set up, was interrupted) is
//! counted as such and never as a pass; the soak stops at an interrupt.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::runner::nemesis::Fault;
use crate::runner::{self, Options};

/// The fault menus a soak rotates through, by name.
pub const MENUS: [(&str, &[&str]); 5] = [
    ("everything", &[]),
    (
        "links",
        &[
            "latency",
            "bandwidth",
            "blackhole",
            "slow-close",
            "flaky-uplink",
            "flaky-minority",
            "slow-majority",
        ],
    ),
    (
        "leader-and-clocks",
        &[
            "partition-leader",
            "kill-leader",
            "pause-leader",
            "skew-leader",
            "skew",
        ],
    ),
    (
        "membership",
        &[
            "wipe-rejoin",
            "grow-shrink",
            "shrink-grow",
            "replace",
            "kill-leader",
        ],
    ),
    (
        "partitions",
        &[
            "partition",
            "one-way",
            "loss",
            "majorities-ring",
            "bridge",
            "pause",
        ],
    ),
];

/// The faults of menu `names` that this build knows and this run fits
/// (None: the run's whole default menu).
fn menu_faults(names: &[&str], nodes: usize, clocks: bool) -> Option<Vec<Fault>> {
    if names.is_empty() {
        return None;
    }
    let fits = Fault::menu(nodes, clocks);
    Some(
        names
            .iter()
            .filter_map(|n| Fault::parse_list(n).ok())
            .flatten()
            .filter(|f| fits.contains(f))
            .collect(),
    )
}

pub struct SoakOptions {
    pub seed: u64,
    pub time: Duration,
    pub run_time: Duration,
    pub nodes: usize,
    pub qu: PathBuf,
}

/// One run's line of the table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunLine {
    pub seed: u64,
    pub menu: &'static str,
    pub faults: BTreeMap<String, usize>,
    pub operations: usize,
    /// Checker name → passed.
    pub checkers: BTreeMap<String, bool>,
    /// The timings checker's figures.
    pub timings: BTreeMap<String, String>,
    pub error: Option<String>,
    pub dir: Option<String>,
    pub secs: u64,
}

impl RunLine {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.checkers.values().all(|ok| *ok)
    }
}

/// Runs until `time` has passed (a run is not started unless its window
/// fits), then prints and keeps the summary. Ok(true): every run passed.
pub fn soak(o: &SoakOptions, stop: Arc<AtomicBool>) -> Result<bool, String> {
    let dir = PathBuf::from(format!("/tmp/qu-jepsen-soak-{}", runner::sh::now_ms()));
    runner::nodes::private_dir(&dir)?;
    let clocks = runner::nodes::libfaketime().is_some();
    let started = Instant::now();
    let mut lines: Vec<RunLine> = Vec::new();
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let left = o.time.saturating_sub(started.elapsed());
        if left < o.run_time.min(Duration::from_secs(60)) {
            break;
        }
        let (menu, names) = MENUS[(i as usize) % MENUS.len()];
        let faults = menu_faults(names, o.nodes, clocks);
        let seed = o.seed + i;
        i += 1;
        if faults.as_ref().is_some_and(Vec::is_empty) {
            continue;
        }
        println!(
            "soak: run {i}: seed {seed}, menu {menu}, {}s (replay: qu-jepsen run --seed {seed} --nodes {} --time {}s{})",
            o.run_time.min(left).as_secs(),
            o.nodes,
            o.run_time.min(left).as_secs(),
            faults
                .as_ref()
                .map(|f| format!(
                    " --faults {}",
                    f.iter().map(|f| f.name()).collect::<Vec<_>>().join(",")
                ))
                .unwrap_or_default()
        );
        let t0 = Instant::now();
        let out = runner::run(
            Options {
                seed,
                time: o.run_time.min(left),
                nodes: o.nodes,
                qu: o.qu.clone(),
                faults,
            },
            stop.clone(),
        );
        let secs = t0.elapsed().as_secs();
        let line = match out {
            Ok(out) => RunLine {
                seed,
                menu,
                faults: out
                    .faults
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect(),
                operations: out.operations,
                checkers: out
                    .reports
                    .iter()
                    .map(|r| (r.checker.to_string(), r.ok))
                    .collect(),
                timings: out
                    .reports
                    .iter()
                    .filter(|r| r.checker == "timings")
                    .flat_map(|r| r.figures.iter().cloned())
                    .collect(),
                error: None,
                dir: Some(out.dir.display().to_string()),
                secs,
            },
            Err(e) => RunLine {
                seed,
                menu,
                faults: BTreeMap::new(),
                operations: 0,
                checkers: BTreeMap::new(),
                timings: BTreeMap::new(),
                error: Some(e),
                dir: None,
                secs,
            },
        };
        println!(
            "soak: run {i}: {}",
            if line.passed() {
                "PASS".to_string()
            } else {
                format!("FAIL {}", line.error.clone().unwrap_or_default())
            }
        );
        lines.push(line);
    }
    let md = table(&lines, o, started.elapsed());
    println!("{md}");
    std::fs::write(dir.join("summary.md"), &md).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&lines).unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?;
    println!("summary kept in {}", dir.display());
    Ok(!lines.is_empty() && lines.iter().all(RunLine::passed))
}

/// The summary as Markdown: one row per run, then totals.
pub fn table(lines: &[RunLine], o: &SoakOptions, took: Duration) -> String {
    let mut s = format!(
        "## qu-jepsen soak: {} nodes, {} runs in {} min (seeds {}..)\n\n",
        o.nodes,
        lines.len(),
        took.as_secs() / 60,
        o.seed
    );
    s.push_str("| run | seed | menu | faults | operations | checkers | outage → DOWN page | late pages | took |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|\n");
    let fig = |l: &RunLine, key: &str| {
        l.timings
            .iter()
            .find(|(k, _)| k.contains(key))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "–".into())
    };
    for (i, l) in lines.iter().enumerate() {
        let passed = l.checkers.values().filter(|ok| **ok).count();
        let checkers = match &l.error {
            Some(e) => format!("ERROR: {}", e.chars().take(80).collect::<String>()),
            None if passed == l.checkers.len() => format!("{passed}/{passed} pass"),
            None => format!(
                "{passed}/{} pass; FAIL: {}",
                l.checkers.len(),
                l.checkers
                    .iter()
                    .filter(|(_, ok)| !**ok)
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} s |\n",
            i + 1,
            l.seed,
            l.menu,
            l.faults.values().sum::<usize>(),
            l.operations,
            checkers,
            fig(l, "outage → DOWN"),
            fig(l, "after their outage ended"),
            l.secs
        ));
    }
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for l in lines {
        for (k, v) in &l.faults {
            *by_kind.entry(k.as_str()).or_default() += v;
        }
    }
    let mut checker_totals: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for l in lines {
        for (k, ok) in &l.checkers {
            let e = checker_totals.entry(k.as_str()).or_default();
            e.0 += usize::from(*ok);
            e.1 += 1;
        }
    }
    s.push_str(&format!(
        "\nFaults by kind ({} in all): {}\n\nOperations: {}\n\nCheckers (runs passed / runs):\n",
        by_kind.values().sum::<usize>(),
        by_kind
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        lines.iter().map(|l| l.operations).sum::<usize>()
    ));
    for (k, (ok, n)) in checker_totals {
        s.push_str(&format!("- {k}: {ok}/{n}\n"));
    }
    let errors = lines.iter().filter(|l| l.error.is_some()).count();
    if errors > 0 {
        s.push_str(&format!("- runs that errored: {errors}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menus_name_only_faults_of_this_build_or_later_ones_and_fit_the_run() {
        let links = menu_faults(MENUS[1].1, 3, true).unwrap_or_default();
        assert!(links.contains(&Fault::SlowMajority));
        // flaky-minority needs five nodes.
        assert!(!links.contains(&Fault::FlakyMinority));
        let five = menu_faults(MENUS[1].1, 5, true).unwrap_or_default();
        assert!(five.contains(&Fault::FlakyMinority));
        // Without libfaketime, no skews.
        let clocks = menu_faults(MENUS[2].1, 5, false).unwrap_or_default();
        assert!(!clocks
            .iter()
            .any(|f| matches!(f, Fault::Skew | Fault::SkewLeader)));
        assert_eq!(menu_faults(MENUS[0].1, 3, true), None);
    }

    #[test]
    fn the_table_counts_a_failed_checker_and_an_errored_run_as_failures() {
        let pass = RunLine {
            seed: 1,
            menu: "links",
            faults: [("latency".to_string(), 3)].into_iter().collect(),
            operations: 10,
            checkers: [("a".to_string(), true)].into_iter().collect(),
            timings: BTreeMap::new(),
            error: None,
            dir: None,
            secs: 60,
        };
        let fail = RunLine {
            checkers: [("a".to_string(), false)].into_iter().collect(),
            ..pass.clone()
        };
        let error = RunLine {
            error: Some("interrupted".into()),
            checkers: BTreeMap::new(),
            ..pass.clone()
        };
        assert!(pass.passed() && !fail.passed() && !error.passed());
        let o = SoakOptions {
            seed: 1,
            time: Duration::from_secs(600),
            run_time: Duration::from_secs(60),
            nodes: 5,
            qu: PathBuf::from("qu"),
        };
        let t = table(&[pass, fail, error], &o, Duration::from_secs(180));
        assert!(t.contains("- a: 1/2"), "{t}");
        assert!(t.contains("runs that errored: 1"), "{t}");
        assert!(t.contains("latency 9"), "{t}");
    }
}
