//! Leader duties: verdicts (`aggregate`), alert dispatch (`dispatch`) and
//! membership reconciliation (`reconcile`) run only while this node leads.
//! They start when it becomes leader and stop when it stops leading,
//! instead of every loop asking "am I leader?" on each tick.
//!
//! Invariants:
//! - Each leadership term gets fresh duties: the aggregator starts from the
//!   committed check states (no round state survives a term), and
//!   reconciliation's grace periods start anew.
//! - The duties of a term are stopped (and awaited, at most 5 s) before the
//!   next term's start, so two aggregators never run at once.
//! - Deliveries being sent are tracked across terms (`Daemon::deliveries`),
//!   so a send still finishing from an old term is never started twice.
//! - Each duty runs under the supervisor: a panic restarts it within the
//!   term; `qu status` shows it.

use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use tokio::sync::watch;

use super::{alerting, membership, muting, probing, Daemon};

fn leads(daemon: &Daemon) -> bool {
    daemon.leader() == Some(daemon.me()) && !daemon.membership.is_removed()
}

/// Starts and stops the leader duties as leadership comes and goes.
pub(super) async fn leader_duties(daemon: Arc<Daemon>, mut shutdown: watch::Receiver<bool>) {
    let mut metrics = daemon.raft.metrics();
    loop {
        // Wait to lead.
        while !leads(&daemon) {
            tokio::select! {
                r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { return },
                r = metrics.changed() => if r.is_err() { return },
                // Removal and other state flips are not metrics changes.
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
        tracing::info!(
            "leading: starting the leader duties (verdicts, alert dispatch, reconciliation)"
        );
        let (term_tx, term_rx) = watch::channel(false);
        let sup = daemon.supervisor.clone();
        let start =
            |name: &'static str, f: fn(Arc<Daemon>, watch::Receiver<bool>) -> super::DutyFuture| {
                let (d, rx) = (daemon.clone(), term_rx.clone());
                sup.spawn(name, term_rx.clone(), move || f(d.clone(), rx.clone()))
            };
        let duties = [
            start("aggregate", |d, rx| {
                Box::pin(probing::aggregate_loop(d, rx))
            }),
            start("dispatch", |d, rx| Box::pin(alerting::dispatch_loop(d, rx))),
            start("silences", |d, rx| Box::pin(muting::muting_loop(d, rx))),
            start("reconcile", |d, rx| {
                Box::pin(membership::reconcile_loop(d, rx))
            }),
        ];
        // Lead until we do not.
        let shutting_down = loop {
            tokio::select! {
                r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { break true },
                r = metrics.changed() => if r.is_err() { break true },
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            if !leads(&daemon) {
                break false;
            }
        };
        if !shutting_down {
            tracing::info!("no longer leading: stopping the leader duties");
        }
        term_tx.send_replace(true);
        for d in duties {
            let abort = d.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), d)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        if shutting_down {
            return;
        }
    }
}
