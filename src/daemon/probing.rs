//! Probing in the daemon: every member runs the scheduler; results go to
//! the leader in batches; the leader aggregates rounds and commits flips
//! through Raft.
//!
//! Invariants: reporting never blocks probing (bounded queue, sends in
//! their own tasks); the leader takes reports only from authenticated
//! members and names them by their TLS identity; a flip is proposed only by
//! the leader, and only one per check at a time; a node that loses
//! leadership forgets its round state (the next leader starts from the
//! committed states).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::rpc::{MemberRequest, MemberResponse};
use super::Daemon;
use crate::checks::aggregate::{Aggregator, ProbeReport, Proposal};
use crate::checks::probe::Probers;
use crate::checks::scheduler::{now_ms, Scheduler, SchedulerStats};
use qu_raft::state::{Flip, RecordCommand, Request};
use qu_raft::NodeId;

/// Results waiting to be reported (per node).
pub const REPORT_QUEUE: usize = 65_536;
/// Most results in one report.
const REPORT_BATCH: usize = 2_048;
/// How long the reporter waits for more results once one is ready, so
/// results finishing together travel in one report; never past a result's
/// `send_by_ms` (half a round's grace before its evaluation).
const REPORT_LINGER: Duration = Duration::from_millis(50);

/// Runs the scheduler while this node is a serving member.
pub(super) async fn scheduler_loop(
    daemon: Arc<Daemon>,
    probers: Arc<Probers>,
    out: mpsc::Sender<ProbeReport>,
    stats: Arc<SchedulerStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut scheduler = Scheduler::new(probers.clone(), out, stats);
    let mut applied = daemon.applied.clone();
    scheduler.known_at_start(applied.borrow().state.checks.keys());
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    // Sync only when the state or the node's standing changed: comparing
    // thousands of checks twice a second for nothing is a waste.
    let mut synced: Option<Option<qu_raft::types::LogId>> = None;
    loop {
        let active = daemon.membership.serves_cluster() && !daemon.membership.is_removed();
        if active {
            let state = applied.borrow_and_update().clone();
            if synced != Some(state.last_applied) {
                probers.set_cluster_resolvers(&state.state.resolvers);
                scheduler.sync(&qu_raft::model::active_checks(&state.state.checks));
                synced = Some(state.last_applied);
            }
        } else {
            scheduler.stop_all();
            synced = None;
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            r = applied.changed() => if r.is_err() { return },
            // Claim or removal changes are not state changes: look again.
            _ = tick.tick() => {}
        }
    }
}

/// Ships results to the leader in batches as they come.
pub(super) async fn report_loop(
    daemon: Arc<Daemon>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<ProbeReport>>>,
    stats: Arc<SchedulerStats>,
) {
    // One reporter at a time owns the queue (a restarted one takes over).
    let mut rx = rx.lock().await;
    let mut batch = Vec::with_capacity(REPORT_BATCH);
    while rx.recv_many(&mut batch, REPORT_BATCH).await > 0 {
        // Linger, but never past the moment the most urgent result must go.
        let mut until = tokio::time::Instant::now() + REPORT_LINGER;
        while batch.len() < REPORT_BATCH {
            let urgent = batch.iter().map(|r| r.send_by_ms).min().unwrap_or(0);
            let left = Duration::from_millis(urgent.saturating_sub(now_ms()));
            until = until.min(tokio::time::Instant::now() + left);
            let room = REPORT_BATCH - batch.len();
            match tokio::time::timeout_at(until, rx.recv_many(&mut batch, room)).await {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        let reports = std::mem::replace(&mut batch, Vec::with_capacity(REPORT_BATCH));
        stats
            .results_reported
            .fetch_add(reports.len() as u64, Ordering::Relaxed);
        stats.reports.fetch_add(1, Ordering::Relaxed);
        match daemon.leader() {
            Some(l) if l == daemon.me() => daemon.ingest(daemon.me(), reports),
            Some(l) => {
                let Some(addr) = daemon.peer_addr(l) else {
                    continue;
                };
                let d = daemon.clone();
                tokio::spawn(async move {
                    let req = MemberRequest::Report { reports };
                    if let Err(e) = d
                        .pool
                        .call_within::<_, MemberResponse>(&addr, &req, Duration::from_secs(3))
                        .await
                    {
                        tracing::debug!(leader = %l, "cannot report probe results: {e}");
                    }
                });
            }
            None => tracing::debug!("no leader: probe results dropped"),
        }
    }
}

impl Daemon {
    /// Takes reports from `from` (the TLS-authenticated sender) if we lead.
    pub(super) fn ingest(&self, from: NodeId, reports: Vec<ProbeReport>) {
        if self.leader() != Some(self.me()) {
            return;
        }
        let now = now_ms();
        if let Ok(mut agg) = self.aggregator.lock() {
            for r in reports {
                agg.ingest(from, r, now);
            }
        }
    }
}

/// On the leader: evaluates rounds as they end and commits flips.
pub(super) async fn aggregate_loop(daemon: Arc<Daemon>, mut shutdown: watch::Receiver<bool>) {
    // A leader duty: each term starts from the committed check states,
    // with no round state carried over from an earlier term.
    let reset = || {
        if let Ok(mut agg) = daemon.aggregator.lock() {
            *agg = Aggregator::default();
        }
    };
    reset();
    let mut synced_version: Option<(u64, usize)> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                reset();
                return;
            }
            _ = tick.tick() => {}
        }
        // Between losing leadership and this duty being stopped.
        if daemon.leader() != Some(daemon.me()) || daemon.membership.is_removed() {
            continue;
        }
        let state = daemon.state();
        let voters: BTreeSet<NodeId> = daemon.voters();
        let now = now_ms();
        let key = (state.state.version, state.state.checks.len());
        let proposals = match daemon.aggregator.lock() {
            Ok(mut agg) => {
                if synced_version != Some(key) {
                    agg.sync(&qu_raft::model::active_checks(&state.state.checks), now);
                    synced_version = Some(key);
                }
                agg.evaluate(now, &voters, &state.state.check_states)
            }
            Err(_) => continue,
        };
        for chunk in proposals.chunks(MAX_FLIPS_PER_ENTRY) {
            let d = daemon.clone();
            let chunk = chunk.to_vec();
            tokio::spawn(async move { commit_flips(d, chunk).await });
        }
    }
}

/// Most flips in one Raft entry (~40 KiB): thousands of checks flipping in
/// one round become a few entries, each far below the frame limit.
const MAX_FLIPS_PER_ENTRY: usize = 128;

/// Commits one evaluation's flips as one entry, logs each, and lets the
/// aggregator propose for these checks again.
async fn commit_flips(d: Arc<Daemon>, proposals: Vec<Proposal>) {
    let deadline = tokio::time::Instant::now() + super::cluster::MUTATION_TIMEOUT;
    let flips: Vec<Flip> = proposals
        .iter()
        .map(|p| Flip {
            check_id: p.check_id.clone(),
            record: p.record.clone(),
        })
        .collect();
    let result = d
        .propose_as_leader(Request::new(RecordCommand::Transitions { flips }), deadline)
        .await;
    let state = d.state();
    for p in &proposals {
        let name = state
            .state
            .checks
            .get(&p.check_id)
            .map(|c| c.name.as_str())
            .unwrap_or(p.check_id.as_str());
        let (from, to, votes) = (p.record.from, p.record.to, p.record.votes());
        let committed = state
            .state
            .check_states
            .get(&p.check_id)
            .and_then(|s| s.last.as_ref())
            .is_some_and(|last| last.round == p.record.round && last.to == to);
        match &result {
            Ok(_) if committed => {
                tracing::info!(check = %name, %from, %to, %votes, "check state committed")
            }
            Ok(_) => tracing::debug!(check = %name, %from, %to, "flip was stale when applied"),
            Err(e) => {
                tracing::warn!(check = %name, %from, %to, "cannot commit the check's new state: {e}")
            }
        }
    }
    if let Ok(mut agg) = d.aggregator.lock() {
        for p in &proposals {
            agg.settle(&p.check_id);
        }
    }
}
