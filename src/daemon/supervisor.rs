//! Runs the daemon's background duties (control socket, pings, trust,
//! removal watch, leadership policy, reconciliation, probing, reporting,
//! aggregation, alert dispatch) and watches them.
//!
//! Invariants:
//! - A duty that ends while the daemon is not shutting down — a panic or
//!   an early return — is logged with its cause and restarted, with a
//!   backoff from 100 ms doubling to 10 s; alerting never silently stops.
//! - Every duty's health (running, restarts, last failure) is visible in
//!   `qu status`.
//! - A duty that fails `MAX_FAILURES` times within `FAILURE_WINDOW` is
//!   given up: the daemon exits non-zero, so its service manager restarts
//!   the whole process.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Failures within `FAILURE_WINDOW` after which a duty is given up.
pub const MAX_FAILURES: usize = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// One duty's health, as `qu status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DutyHealth {
    pub name: String,
    pub running: bool,
    pub restarts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

#[derive(Default)]
struct State {
    duties: BTreeMap<&'static str, DutyHealth>,
    failures: BTreeMap<&'static str, Vec<Instant>>,
}

/// The supervisor of one daemon's duties.
pub struct Supervisor {
    state: Mutex<State>,
    /// Set to the duty given up, which ends the daemon.
    fatal: watch::Sender<Option<String>>,
}

fn panic_message(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let payload = e.into_panic();
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".into()
    }
}

impl Supervisor {
    pub fn new() -> Arc<Supervisor> {
        let (fatal, _) = watch::channel(None);
        Arc::new(Supervisor {
            state: Mutex::new(State::default()),
            fatal,
        })
    }

    fn update(&self, name: &'static str, f: impl FnOnce(&mut DutyHealth)) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let h = st.duties.entry(name).or_insert_with(|| DutyHealth {
            name: name.to_string(),
            ..DutyHealth::default()
        });
        f(h);
    }

    /// Records a failure; true when the duty must be given up.
    fn failed(&self, name: &'static str, why: &str) -> bool {
        let now = Instant::now();
        self.update(name, |h| {
            h.running = false;
            h.last_failure = Some(why.to_string());
        });
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let recent = st.failures.entry(name).or_default();
        recent.retain(|t| now.saturating_duration_since(*t) < FAILURE_WINDOW);
        recent.push(now);
        recent.len() >= MAX_FAILURES
    }

    /// Runs the duty `make()` until `shutdown`, restarting it when it ends
    /// on its own.
    pub fn spawn<F, Fut>(
        self: &Arc<Self>,
        name: &'static str,
        shutdown: watch::Receiver<bool>,
        make: F,
    ) -> JoinHandle<()>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let sup = self.clone();
        tokio::spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            loop {
                sup.update(name, |h| h.running = true);
                let mut run = tokio::spawn(make());
                let outcome = {
                    let mut shutdown = shutdown.clone();
                    tokio::select! {
                        r = &mut run => Some(r),
                        _ = async {
                            while !*shutdown.borrow_and_update() {
                                if shutdown.changed().await.is_err() {
                                    break;
                                }
                            }
                        } => None,
                    }
                };
                let Some(outcome) = outcome else {
                    // Shutting down: the duty ends with the daemon.
                    run.abort();
                    sup.update(name, |h| h.running = false);
                    return;
                };
                if *shutdown.borrow() {
                    sup.update(name, |h| h.running = false);
                    return;
                }
                let why = match outcome {
                    Ok(()) => "returned while the daemon was running".to_string(),
                    Err(e) => panic_message(e),
                };
                if sup.failed(name, &why) {
                    tracing::error!(duty = name, "duty failed {MAX_FAILURES} times within {:?} ({why}); giving up: the daemon exits so its service manager can restart it", FAILURE_WINDOW);
                    sup.fatal
                        .send_replace(Some(format!("duty {name} failed repeatedly: {why}")));
                    return;
                }
                tracing::error!(
                    duty = name,
                    "duty stopped unexpectedly ({why}); restarting in {backoff:?}"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                sup.update(name, |h| h.restarts += 1);
            }
        })
    }

    /// Every duty's health, by name.
    pub fn health(&self) -> Vec<DutyHealth> {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.duties.values().cloned().collect()
    }

    /// Resolves with the reason once a duty was given up.
    pub async fn given_up(&self) -> String {
        let mut rx = self.fatal.subscribe();
        loop {
            if let Some(why) = rx.borrow_and_update().clone() {
                return why;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_duty_that_panics_is_restarted_and_its_health_shows_it() {
        let sup = Supervisor::new();
        let (_tx, rx) = watch::channel(false);
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        sup.spawn("dispatch", rx, move || {
            let r = r.clone();
            async move {
                if r.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("boom");
                }
                std::future::pending::<()>().await
            }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let h = &sup.health()[0];
        assert_eq!(h.name, "dispatch");
        assert!(h.running);
        assert_eq!(h.restarts, 1);
        assert!(h.last_failure.as_deref().unwrap().contains("boom"), "{h:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_duty_that_keeps_failing_is_given_up() {
        let sup = Supervisor::new();
        let (_tx, rx) = watch::channel(false);
        sup.spawn("report", rx, || async {});
        let why = tokio::time::timeout(Duration::from_secs(30), sup.given_up())
            .await
            .expect("never given up");
        assert!(why.contains("report") && why.contains("returned"), "{why}");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_is_not_a_failure() {
        let sup = Supervisor::new();
        let (tx, rx) = watch::channel(false);
        let handle = sup.spawn("ping", rx, std::future::pending::<()>);
        tokio::time::sleep(Duration::from_millis(10)).await;
        tx.send_replace(true);
        handle.await.unwrap();
        let h = &sup.health()[0];
        assert!(!h.running);
        assert_eq!(h.restarts, 0);
        assert!(h.last_failure.is_none());
    }
}
