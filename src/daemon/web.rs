//! The daemon as the HTTP listener's source (`crate::web::Source`): its
//! applied state, its own counters, and whether it sees a quorum.

use std::sync::Arc;

use openraft::async_runtime::WatchReceiver;

use super::Daemon;
use crate::web::metrics::{NodeFigures, ProbeMetrics};
use qu_raft::store::Applied;

impl crate::web::Source for Daemon {
    fn applied(&self) -> Arc<Applied> {
        self.state()
    }

    fn figures(&self) -> NodeFigures {
        let m = self.raft.metrics().borrow_watched().clone();
        let state = self.state();
        let me = self.me();
        let others = state.state.peers.keys().filter(|n| **n != me);
        let (mut live, mut down) = (0, 0);
        for n in others {
            if self.liveness.is_live(*n) {
                live += 1;
            } else {
                down += 1;
            }
        }
        let stats = &self.scheduler_stats;
        NodeFigures {
            term: m.current_term,
            is_leader: m.current_leader == Some(me),
            commit_index: m.local_committed.map_or(0, |l| l.index),
            applied_index: m.last_applied.map_or(0, |l| l.index),
            peers_live: live,
            peers_down: down,
            rounds_missed: stats
                .missed_total
                .load(std::sync::atomic::Ordering::Relaxed),
            results_dropped: stats
                .dropped_results
                .load(std::sync::atomic::Ordering::Relaxed),
            deliveries: self.alerting.outcomes(),
            cert_not_after_ms: stats.cert_expiries(),
        }
    }

    fn probes(&self) -> &ProbeMetrics {
        &self.scheduler_stats.metrics
    }

    fn readiness(&self) -> Result<String, String> {
        if self.sees_quorum() {
            let voters = self.voters();
            let live = self.liveness.count_live(&voters);
            Ok(match self.leader() {
                Some(l) => format!("master {l}, {live} of {} voters live", voters.len().max(1)),
                None => "a fresh node (no cluster yet)".into(),
            })
        } else {
            let voters = self.voters();
            let live = self.liveness.count_live(&voters);
            let leader = match self.leader() {
                Some(l) => format!("master {l}"),
                None => "no master".into(),
            };
            Err(format!(
                "no quorum: {live} of {} voters live (need {}), {leader}; verdicts and pages wait for a majority",
                voters.len(),
                voters.len() / 2 + 1
            ))
        }
    }

    fn node_id(&self) -> String {
        self.me().to_string()
    }
}
