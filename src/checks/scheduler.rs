//! The per-node probe scheduler: one task per check, following the
//! replicated check list, probing at the start of every aligned round.
//!
//! Invariants: a probe runs in its own task, so a slow probe never delays
//! another (nor the next round of its own check); a round the scheduler
//! could not start on time (the process stalled) is counted as missed, not
//! silently dropped; handing a result to the reporter never blocks probing
//! (a full queue drops the result and counts it).

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

/// Counters of the scheduler.
#[derive(Debug, Default)]
pub struct SchedulerStats {
    pub probes: AtomicU64,
    pub dropped_results: AtomicU64,
    missed: Mutex<HashMap<String, u64>>,
}

impl SchedulerStats {
    fn add_missed(&self, check: &str, n: u64) {
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
        }
    }

    /// Starts new checks, restarts changed ones, stops removed ones; others
    /// keep running untouched.
    pub fn sync(&mut self, checks: &BTreeMap<String, Check>) {
        self.tasks.retain(|id, (c, task)| {
            let keep = checks.get(id) == Some(c);
            if !keep {
                task.abort();
            }
            keep
        });
        for (id, c) in checks {
            if !self.tasks.contains_key(id) {
                let task = tokio::spawn(check_loop(
                    c.clone(),
                    self.probers.clone(),
                    self.out.clone(),
                    self.stats.clone(),
                ));
                self.tasks.insert(id.clone(), (c.clone(), task));
            }
        }
    }

    pub fn running(&self) -> usize {
        self.tasks.len()
    }

    pub fn stop_all(&mut self) {
        for (_, (_, t)) in self.tasks.drain() {
            t.abort();
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop_all();
    }
}

async fn check_loop(
    check: Check,
    probers: Arc<Probers>,
    out: mpsc::Sender<ProbeReport>,
    stats: Arc<SchedulerStats>,
) {
    let sched = Schedule::for_check(&check);
    let timeout = Duration::from_millis(check.timeout_ms);
    let mut k = sched.next_round(now_ms());
    loop {
        let now = now_ms();
        let start = sched.start_of(k);
        if start > now {
            tokio::time::sleep(Duration::from_millis(start - now)).await;
        } else if now - start > sched.interval_ms / 2 {
            // Woke too late to call this a probe of round k.
            let next = sched.next_round(now);
            stats.add_missed(&check.id, next - k);
            tracing::warn!(check = %check.name, missed = next - k, "probe rounds missed (the process stalled)");
            k = next;
            continue;
        }
        let (probers, out, stats, kind, id) = (
            probers.clone(),
            out.clone(),
            stats.clone(),
            check.kind.clone(),
            check.id.clone(),
        );
        tokio::spawn(async move {
            let outcome = probers.probe(&kind, timeout).await;
            stats.probes.fetch_add(1, Ordering::Relaxed);
            let report = ProbeReport {
                check_id: id,
                round: k,
                ok: outcome.ok,
                latency_ms: outcome.latency.as_millis() as u64,
                reason: outcome.reason,
            };
            if out.try_send(report).is_err() {
                stats.dropped_results.fetch_add(1, Ordering::Relaxed);
            }
        });
        k += 1;
    }
}
