//! Keeps `cluster.yaml` (for people to read; mode 0600, it holds alert
//! secrets) in step with the replicated state. (Trust follows membership
//! in `trust_sync`.)
//!
//! Invariants: both files are replaced atomically and fsynced; writes run on
//! the blocking pool, never on a runtime worker; hand edits of cluster.yaml
//! are overwritten at the next apply; cluster.yaml is rewritten at most once
//! per `MIN_REWRITE_GAP` (a burst of mutations renders it once, with the
//! latest state, not once per entry), and once more at shutdown if a
//! change is pending.

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::atomic::{write_atomic, FileMode};
use crate::config::StatePaths;
use qu_raft::state::ClusterState;
use qu_raft::store::Applied;

const HEADER: &str = "# qu cluster state: a read-only mirror of the replicated state, rewritten after\n# every applied change. Edits here are NOT applied; use the qu CLI.\n";

/// Least time between two rewrites of cluster.yaml.
const MIN_REWRITE_GAP: std::time::Duration = std::time::Duration::from_millis(500);

/// Renders cluster.yaml: the state without the checks' history and the
/// ended silences (up to 500 events per check: `qu check history` and
/// `qu report` read them), so a flip does not rewrite megabytes.
pub fn render_cluster_yaml(state: &ClusterState) -> String {
    let mut state = state.clone();
    state.history = Default::default();
    state.past_silences = Default::default();
    match serde_yaml_ng::to_string(&state) {
        Ok(body) => format!("{HEADER}{body}"),
        Err(e) => format!("{HEADER}# cannot render the state: {e}\n"),
    }
}

/// What the mirror task needs.
pub struct Mirror {
    pub paths: StatePaths,
}

impl Mirror {
    /// Follows `states` until the sender is dropped: cluster.yaml with the
    /// newest state, at most once per `MIN_REWRITE_GAP`.
    pub async fn run(
        self,
        mut states: watch::Receiver<Arc<Applied>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let first = states.borrow_and_update().clone();
        self.write(first).await;
        let mut last_write = tokio::time::Instant::now();
        let mut dirty = false;
        loop {
            let write_due = async {
                if dirty {
                    tokio::time::sleep_until(last_write + MIN_REWRITE_GAP).await
                } else {
                    std::future::pending::<()>().await
                }
            };
            tokio::select! {
                _ = shutdown.changed() => break,
                changed = states.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    states.borrow_and_update();
                    dirty = true;
                }
                _ = write_due => {
                    let newest = states.borrow().clone();
                    self.write(newest).await;
                    last_write = tokio::time::Instant::now();
                    dirty = false;
                }
            }
        }
        if dirty {
            let newest = states.borrow().clone();
            self.write(newest).await;
        }
    }

    async fn write(&self, applied: Arc<Applied>) {
        if applied.state.cluster_id.is_none() && applied.last_applied.is_none() {
            return; // fresh: nothing to mirror yet
        }
        let path = self.paths.cluster_file();
        let res = tokio::task::spawn_blocking(move || {
            write_atomic(
                &path,
                render_cluster_yaml(&applied.state).as_bytes(),
                FileMode::Private,
            )
        })
        .await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("cannot write cluster.yaml: {e}"),
            Err(e) => tracing::warn!("cluster.yaml writer failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qu_raft::history::{CheckHistory, HistoryKind};

    #[test]
    fn the_mirror_leaves_the_history_out() {
        let mut state = ClusterState {
            retention_ms: 7 * 86_400_000,
            ..ClusterState::default()
        };
        let mut h = CheckHistory::default();
        h.push(1, HistoryKind::Added);
        state.history.insert("k1".into(), h.into());
        let yaml = render_cluster_yaml(&state);
        assert!(!yaml.contains("added"), "{yaml}");
        assert!(yaml.contains("retention_ms: 604800000"), "{yaml}");
    }
}
