//! The rollup duties: flushing this node's probe rollups to its local
//! store about once a minute (and once more at a clean shutdown, called
//! by `serve`), and gathering
//! every member's rollups of a check for `qu check show`.
//!
//! Invariants: sled is only touched in `spawn_blocking`, never on a tokio
//! worker; each peer is asked concurrently under one deadline
//! (`ASK_TIMEOUT`), and a peer that does not answer in time, or answers
//! with an error, is listed as not answering, never left out. A peer too
//! old to know the request answers `bad_request` and is listed as
//! "no answer (older release?)".

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::control::NodeLatency;
use super::rpc::{MemberRequest, MemberResponse};
use super::Daemon;
use crate::checks::rollup::{RollupError, Summary};
use crate::checks::scheduler::{now_ms, SchedulerStats};
use crate::transport::client::TransportError;
use crate::transport::RpcErrorCode;

/// How often pending rollups go to disk (what a crash may lose).
const FLUSH_EVERY: Duration = Duration::from_secs(60);
/// How long `qu check show` waits for a peer's rollups.
pub(super) const ASK_TIMEOUT: Duration = Duration::from_secs(3);

/// Writes the pending rollups to disk (in `spawn_blocking`); a failure
/// is logged and the buckets stay pending for the next flush.
pub(super) async fn flush(stats: &Arc<SchedulerStats>) {
    let s = stats.clone();
    match tokio::task::spawn_blocking(move || s.rollups.flush(now_ms())).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot write the probe rollups (kept in memory, retried at the next flush)")
        }
        Err(e) => tracing::warn!(error = %e, "the rollup flush failed"),
    }
}

/// Flushes every `FLUSH_EVERY`. The supervisor aborts duties at
/// shutdown, so `serve` makes the last flush itself, once the probes
/// have stopped.
/// At the first flush and then about hourly, the buckets of checks that
/// are no longer in the replicated list (removed while this node was
/// down) are deleted.
pub(super) async fn flush_loop(d: Arc<Daemon>, _shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    for n in 0u64.. {
        tick.tick().await;
        flush(&d.scheduler_stats).await;
        if n % PURGE_EVERY_FLUSHES == 0 {
            purge(&d).await;
        }
    }
}

/// Flushes between two purges of removed checks' buckets.
const PURGE_EVERY_FLUSHES: u64 = 60;

async fn purge(d: &Arc<Daemon>) {
    let live: HashSet<String> = d.state().state.checks.keys().cloned().collect();
    let s = d.scheduler_stats.clone();
    match tokio::task::spawn_blocking(move || s.rollups.purge_except(&live)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(checks = n, "deleted the probe rollups of removed checks"),
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot delete the rollups of removed checks"),
        Err(e) => tracing::warn!(error = %e, "the rollup purge failed"),
    }
}

/// This node's summary of check `id` (memory and disk).
pub(super) async fn local_summary(
    stats: &Arc<SchedulerStats>,
    id: &str,
) -> Result<Summary, RollupError> {
    let (s, id) = (stats.clone(), id.to_string());
    tokio::task::spawn_blocking(move || s.rollups.summary(&id, now_ms())).await?
}

fn answered(node: qu_raft::NodeId, this_node: bool, s: Summary) -> NodeLatency {
    NodeLatency {
        node,
        this_node,
        answered: true,
        note: None,
        windows: s.windows,
    }
}

fn unanswered(node: qu_raft::NodeId, note: String) -> NodeLatency {
    NodeLatency {
        node,
        this_node: false,
        answered: false,
        note: Some(note),
        windows: Vec::new(),
    }
}

/// Why a peer's answer is no answer, as `qu check show` says it.
fn no_answer(r: Result<MemberResponse, TransportError>) -> Result<Summary, String> {
    match r {
        Ok(MemberResponse::Rollup(s)) => Ok(s),
        Ok(_) => Err("no answer (unexpected reply)".into()),
        Err(TransportError::Remote(e)) if e.code == RpcErrorCode::BadRequest => {
            Err("no answer (older release?)".into())
        }
        Err(TransportError::Remote(e)) => Err(format!("no answer ({e})")),
        Err(TransportError::Timeout { .. }) => Err("no answer (timed out)".into()),
        Err(_) => Err("no answer (unreachable)".into()),
    }
}

impl Daemon {
    /// Every member's rollups of check `id`: this node's own, then the
    /// others in node order, asked concurrently.
    pub(super) async fn latency_rows(&self, id: &str) -> Vec<NodeLatency> {
        let me = self.me();
        let mut rows = vec![match local_summary(&self.scheduler_stats, id).await {
            Ok(s) => answered(me, true, s),
            Err(e) => NodeLatency {
                this_node: true,
                ..unanswered(me, format!("cannot read this node's rollups: {e}"))
            },
        }];
        let peers: Vec<qu_raft::NodeId> = self
            .state()
            .state
            .peers
            .keys()
            .copied()
            .filter(|n| *n != me)
            .collect();
        let mut asks = Vec::with_capacity(peers.len());
        for node in peers {
            let Some(addr) = self.peer_addr(node) else {
                asks.push((node, None));
                continue;
            };
            let (pool, req) = (
                self.pool.clone(),
                MemberRequest::Rollup {
                    check_id: id.to_string(),
                },
            );
            let task = tokio::spawn(async move {
                pool.call_within::<_, MemberResponse>(&addr, &req, ASK_TIMEOUT)
                    .await
            });
            asks.push((node, Some(task)));
        }
        for (node, task) in asks {
            let row = match task {
                None => unanswered(node, "no answer (no address)".into()),
                Some(t) => match t.await {
                    Ok(r) => match no_answer(r) {
                        Ok(s) => answered(node, false, s),
                        Err(why) => unanswered(node, why),
                    },
                    Err(_) => unanswered(node, "no answer".into()),
                },
            };
            rows.push(row);
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::RpcError;

    #[test]
    fn an_older_node_is_shown_as_not_answering() {
        let r = no_answer(Err(TransportError::Remote(RpcError::bad_request(
            "unknown or malformed request: unknown variant `rollup`",
        ))));
        assert_eq!(r, Err("no answer (older release?)".to_string()));
        let r = no_answer(Err(TransportError::Timeout {
            what: "call".into(),
            after: ASK_TIMEOUT,
        }));
        assert_eq!(r, Err("no answer (timed out)".to_string()));
        assert_eq!(
            no_answer(Ok(MemberResponse::Rollup(Summary::default()))),
            Ok(Summary::default())
        );
    }
}
