//! The per-node probe scheduler: one task per check, following the
//! replicated check list, probing at the start of every aligned round.
//!
//! Invariants: a probe runs in its own task, so a slow probe never delays
//! another (nor the next round of its own check); a round the scheduler
//! could not start on time (the process stalled) is counted as missed, not
//! silently dropped; handing a result to the reporter never blocks probing
//! (a full queue drops the result and counts it); a wall clock that steps
//! back is noticed at the next wake-up (a sleep ends at most two intervals
//! later, and a round more than two intervals ahead is given up, not
//! awaited).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::aggregate::ProbeReport;
use super::probe::Probers;
use super::rounds::Schedule;
use qu_raft::model::Check;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Counters of the scheduler and the reporter (since the daemon started).
#[derive(Debug, Default)]
pub struct SchedulerStats {
    /// Checks being probed now.
    pub scheduled: AtomicU64,
    pub probes: AtomicU64,
    pub dropped_results: AtomicU64,
    /// Rounds not started on time, all checks together.
    pub missed_total: AtomicU64,
    /// Results handed to the leader, and in how many reports.
    pub results_reported: AtomicU64,
    pub reports: AtomicU64,
    missed: Mutex<HashMap<String, u64>>,
    /// This node's latest probe of each check.
    last: Mutex<HashMap<String, LocalProbe>>,
    /// Outcome and duration of every probe, for `/metrics`.
    pub metrics: crate::web::metrics::ProbeMetrics,
    /// Latency and success rollups of this node's probes (`qu check show`).
    pub rollups: super::rollup::Rollups,
}

/// A probe this node made, as `qu check show` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LocalProbe {
    /// When it finished (ms since the epoch).
    pub at_ms: u64,
    pub ok: bool,
    pub latency_ms: u64,
    pub reason: String,
    /// TLS and HTTPS: the leaf certificate's notAfter (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_not_after_ms: Option<u64>,
    /// False for the probe made at once when the check was added: it is
    /// outside the schedule and counts toward no verdict.
    pub counted: bool,
}

impl SchedulerStats {
    /// Stats whose rollups go to `rollups` (the daemon's own store).
    pub fn with_rollups(rollups: super::rollup::Rollups) -> SchedulerStats {
        SchedulerStats {
            rollups,
            ..Default::default()
        }
    }

    fn record(&self, check: &str, probe: LocalProbe) {
        if let Ok(mut m) = self.last.lock() {
            m.insert(check.to_string(), probe);
        }
    }

    /// The leaf notAfter each check's latest probe here saw (TLS, HTTPS).
    pub fn cert_expiries(&self) -> std::collections::BTreeMap<String, u64> {
        self.last
            .lock()
            .map(|m| {
                m.iter()
                    .filter_map(|(id, p)| p.cert_not_after_ms.map(|ms| (id.clone(), ms)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// This node's latest probe of `check`.
    pub fn last_probe(&self, check: &str) -> Option<LocalProbe> {
        self.last.lock().ok().and_then(|m| m.get(check).cloned())
    }

    fn forget(&self, check: &str) {
        if let Ok(mut m) = self.last.lock() {
            m.remove(check);
        }
        self.metrics.forget(check);
        self.rollups.forget(check);
    }

    fn add_missed(&self, check: &str, n: u64) {
        self.missed_total.fetch_add(n, Ordering::Relaxed);
        if let Ok(mut m) = self.missed.lock() {
            *m.entry(check.to_string()).or_default() += n;
        }
    }

    /// Rounds of `check` this node could not start on time.
    pub fn missed(&self, check: &str) -> u64 {
        self.missed
            .lock()
            .ok()
            .and_then(|m| m.get(check).copied())
            .unwrap_or(0)
    }
}

/// Runs one task per check.
pub struct Scheduler {
    probers: Arc<Probers>,
    out: mpsc::Sender<ProbeReport>,
    pub stats: Arc<SchedulerStats>,
    tasks: HashMap<String, (Check, JoinHandle<()>)>,
    /// Checks that existed when the scheduler started: they wait for their
    /// round (a restart does not probe everything at once); every other
    /// check is probed at once when it appears.
    known_at_start: std::collections::HashSet<String>,
    /// Probes at once are for a check an operator just added, not for a
    /// bulk load: at most `FIRST_PROBES_PER_SEC` a second (burst as many);
    /// the others wait for their round.
    first_probes: FirstProbeBudget,
}

/// Immediate first probes per second (and burst) on one node.
const FIRST_PROBES_PER_SEC: f64 = 10.0;

/// A token bucket on tokio's clock (paused in tests).
#[derive(Debug)]
struct FirstProbeBudget {
    tokens: f64,
    last: tokio::time::Instant,
}

impl FirstProbeBudget {
    fn new() -> FirstProbeBudget {
        FirstProbeBudget {
            tokens: FIRST_PROBES_PER_SEC,
            last: tokio::time::Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * FIRST_PROBES_PER_SEC;
        self.tokens = (self.tokens + refill).min(FIRST_PROBES_PER_SEC);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Scheduler {
    pub fn new(
        probers: Arc<Probers>,
        out: mpsc::Sender<ProbeReport>,
        stats: Arc<SchedulerStats>,
    ) -> Scheduler {
        Scheduler {
            probers,
            out,
            stats,
            tasks: HashMap::new(),
            known_at_start: Default::default(),
            first_probes: FirstProbeBudget::new(),
        }
    }

    /// These checks existed before this scheduler: no probe at once.
    pub fn known_at_start<'a>(&mut self, ids: impl IntoIterator<Item = &'a String>) {
        self.known_at_start.extend(ids.into_iter().cloned());
    }

    /// Starts new checks, restarts changed ones, stops removed ones; others
    /// keep running untouched.
    /// An edited check restarts at its next aligned round, with no probe
    /// at once (only a new check gets one).
    pub fn sync(&mut self, checks: &BTreeMap<String, Check>) {
        let stats = self.stats.clone();
        let mut restarted = std::collections::HashSet::new();
        self.tasks.retain(|id, (c, task)| {
            let keep = checks.get(id) == Some(c);
            if !keep {
                task.abort();
                if checks.contains_key(id) {
                    restarted.insert(id.clone());
                } else {
                    stats.forget(id);
                }
            }
            keep
        });
        for (id, c) in checks {
            if !self.tasks.contains_key(id) {
                let probe_now = !self.known_at_start.remove(id)
                    && !restarted.contains(id)
                    && self.first_probes.take();
                let task = tokio::spawn(check_loop(
                    c.clone(),
                    self.probers.clone(),
                    self.out.clone(),
                    self.stats.clone(),
                    probe_now,
                ));
                self.tasks.insert(id.clone(), (c.clone(), task));
            }
        }
        self.stats
            .scheduled
            .store(self.tasks.len() as u64, Ordering::Relaxed);
    }

    pub fn running(&self) -> usize {
        self.tasks.len()
    }

    pub fn stop_all(&mut self) {
        for (_, (_, t)) in self.tasks.drain() {
            t.abort();
        }
        self.stats.scheduled.store(0, Ordering::Relaxed);
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// What a check's loop does next for round `k` at wall-clock `now` (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Not yet: sleep this long, then look again.
    Sleep(u64),
    /// Probe round `k` now.
    Probe,
    /// Round `k` cannot be probed on time: go on with this round instead,
    /// counting `missed` rounds (0 when the clock stepped back).
    Skip { next: u64, missed: u64 },
}

fn step(sched: &Schedule, k: u64, now: u64) -> Step {
    let start = sched.start_of(k);
    if start > now.saturating_add(2 * sched.interval_ms) {
        // The clock stepped back more than two rounds: k is in its old
        // future. (A smaller step is just a longer wait: going back would
        // probe the round already probed.)
        Step::Skip {
            next: sched.next_round(now),
            missed: 0,
        }
    } else if start > now {
        Step::Sleep(start - now)
    } else if now - start > sched.interval_ms / 2 {
        // Woke too late to call this a probe of round k.
        let next = sched.next_round(now);
        Step::Skip {
            next,
            missed: next - k,
        }
    } else {
        Step::Probe
    }
}

/// One probe of `kind`, counted in the stats and kept as this node's
/// latest result of check `id`.
async fn probe_and_record(
    probers: &Probers,
    kind: &qu_raft::model::CheckKind,
    timeout: Duration,
    stats: &SchedulerStats,
    (id, name): (&str, &str),
    counted: bool,
) -> super::probe::ProbeOutcome {
    let outcome = probers.probe(kind, timeout).await;
    stats.probes.fetch_add(1, Ordering::Relaxed);
    stats.metrics.observe(id, name, outcome.ok, outcome.latency);
    let at_ms = now_ms();
    stats
        .rollups
        .observe(id, outcome.ok, outcome.latency, at_ms);
    stats.record(
        id,
        LocalProbe {
            at_ms,
            ok: outcome.ok,
            latency_ms: outcome.latency.as_millis() as u64,
            reason: outcome.reason.clone(),
            cert_not_after_ms: outcome.cert_not_after_ms,
            counted,
        },
    );
    outcome
}

async fn check_loop(
    check: Check,
    probers: Arc<Probers>,
    out: mpsc::Sender<ProbeReport>,
    stats: Arc<SchedulerStats>,
    probe_now: bool,
) {
    let sched = Schedule::for_check(&check);
    let timeout = Duration::from_millis(check.timeout_ms);
    if probe_now {
        // A first result at once, shown by `qu check show`; it is not a
        // round's result, so it goes to no verdict.
        let (probers, stats, kind, id, name) = (
            probers.clone(),
            stats.clone(),
            check.kind.clone(),
            check.id.clone(),
            check.name.clone(),
        );
        tokio::spawn(async move {
            probe_and_record(&probers, &kind, timeout, &stats, (&id, &name), false).await;
        });
    }
    let mut k = sched.next_round(now_ms());
    loop {
        match step(&sched, k, now_ms()) {
            Step::Sleep(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                continue;
            }
            Step::Skip { next, missed } => {
                if missed > 0 {
                    stats.add_missed(&check.id, missed);
                    tracing::warn!(check = %check.name, missed, "probe rounds missed (the process stalled)");
                } else {
                    tracing::warn!(check = %check.name, "the wall clock stepped back; probing resumes at the round in progress");
                }
                k = next;
                continue;
            }
            Step::Probe => {}
        }
        let (probers, out, stats, kind, id, name) = (
            probers.clone(),
            out.clone(),
            stats.clone(),
            check.kind.clone(),
            check.id.clone(),
            check.name.clone(),
        );
        tokio::spawn(async move {
            let outcome =
                probe_and_record(&probers, &kind, timeout, &stats, (&id, &name), true).await;
            let report = ProbeReport {
                send_by_ms: sched.send_by(k),
                check_id: id,
                round: k,
                ok: outcome.ok,
                latency_ms: outcome.latency.as_millis() as u64,
                reason: outcome.reason,
                cert_not_after_ms: outcome.cert_not_after_ms,
            };
            if out.try_send(report).is_err() {
                stats.dropped_results.fetch_add(1, Ordering::Relaxed);
            }
        });
        k += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn first_probes_are_bounded_for_bulk_loads() {
        let mut b = FirstProbeBudget::new();
        let burst = (0..100).filter(|_| b.take()).count();
        assert_eq!(
            burst, 10,
            "a burst of ten, then the rest wait for their round"
        );
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!((0..100).filter(|_| b.take()).count(), 5);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(
            (0..100).filter(|_| b.take()).count(),
            10,
            "never more than the burst"
        );
    }

    fn sched() -> Schedule {
        Schedule {
            interval_ms: 30_000,
            offset_ms: 1_234,
            timeout_ms: 10_000,
        }
    }

    #[test]
    fn probes_at_the_start_of_each_round() {
        let s = sched();
        let k = s.next_round(1_000_000);
        let start = s.start_of(k);
        assert_eq!(step(&s, k, start - 2_000), Step::Sleep(2_000));
        assert_eq!(step(&s, k, start - 20_000), Step::Sleep(20_000));
        assert_eq!(step(&s, k, start), Step::Probe);
        assert_eq!(step(&s, k, start + 100), Step::Probe);
    }

    #[test]
    fn a_stall_counts_the_missed_rounds() {
        let s = sched();
        let k = 100;
        let late = s.start_of(k + 3) + 16_000;
        assert_eq!(
            step(&s, k, late),
            Step::Skip {
                next: k + 4,
                missed: 4
            }
        );
    }

    #[test]
    fn a_clock_stepping_back_resumes_at_the_round_in_progress() {
        let s = sched();
        // The loop waits for round k, but the clock went back 10 minutes.
        let k = 100;
        let now = s.start_of(k) - 600_000;
        assert_eq!(
            step(&s, k, now),
            Step::Skip {
                next: s.next_round(now),
                missed: 0
            }
        );
        // A small step back is an ordinary wait, never a second probe of
        // the round just probed.
        assert!(matches!(
            step(&s, k, s.start_of(k) - 20_000),
            Step::Sleep(_)
        ));
        assert_eq!(
            step(&s, k + 1, s.start_of(k) - 10),
            Step::Sleep(s.interval_ms + 10)
        );
    }
}
