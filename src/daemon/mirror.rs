//! Keeps the files that mirror the replicated state in step with it:
//! `cluster.yaml` (for people to read; mode 0600, it holds alert secrets)
//! and `trust.yaml` (every member pinned, members that left dropped).
//!
//! Invariants: both files are replaced atomically and fsynced; writes run on
//! the blocking pool, never on a runtime worker; hand edits of cluster.yaml
//! are overwritten at the next apply; cluster.yaml is rewritten at most once
//! per `MIN_REWRITE_GAP` (a burst of mutations renders it once, with the
//! latest state, not once per entry), and once more at shutdown if a
//! change is pending. Trust follows membership *changes*
//! (peers added or removed since the last state seen), so an operator's
//! `qu trust remove` of a member holds until membership changes again.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;

use crate::config::atomic::{write_atomic, FileMode};
use crate::config::StatePaths;
use crate::crypto::Fingerprint;
use crate::transport::client::Pool;
use crate::transport::server::ConnRegistry;
use crate::transport::SharedTrust;
use crate::trust::{now_rfc3339, TrustEntry, TrustSource};
use qu_raft::model::Peer;
use qu_raft::state::ClusterState;
use qu_raft::store::Applied;
use qu_raft::NodeId;

const HEADER: &str = "# qu cluster state: a read-only mirror of the replicated state, rewritten after\n# every applied change. Edits here are NOT applied; use the qu CLI.\n";

/// Least time between two rewrites of cluster.yaml.
const MIN_REWRITE_GAP: std::time::Duration = std::time::Duration::from_millis(500);

/// Renders cluster.yaml.
pub fn render_cluster_yaml(state: &ClusterState) -> String {
    match serde_yaml_ng::to_string(state) {
        Ok(body) => format!("{HEADER}{body}"),
        Err(e) => format!("{HEADER}# cannot render the state: {e}\n"),
    }
}

/// What the mirror task needs.
pub struct Mirror {
    pub paths: StatePaths,
    pub me: NodeId,
    pub trust: SharedTrust,
    pub pool: Arc<Pool>,
    pub registry: Arc<ConnRegistry>,
}

impl Mirror {
    /// Follows `states` until the sender is dropped: trust at once on every
    /// change; cluster.yaml with the newest state, at most once per
    /// `MIN_REWRITE_GAP`.
    pub async fn run(
        self,
        mut states: watch::Receiver<Arc<Applied>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let first = states.borrow_and_update().clone();
        let mut known: BTreeMap<NodeId, Peer> = (*first.state.peers).clone();
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
                    let applied = states.borrow_and_update().clone();
                    self.reconcile_trust(&known, &applied.state.peers).await;
                    known = (*applied.state.peers).clone();
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

    /// Pins peers that joined, unpins peers that left, persists trust.yaml.
    async fn reconcile_trust(
        &self,
        before: &BTreeMap<NodeId, Peer>,
        after: &BTreeMap<NodeId, Peer>,
    ) {
        let added: Vec<&Peer> = after
            .values()
            .filter(|p| p.node_id != self.me && before.get(&p.node_id) != Some(p))
            .collect();
        let removed: Vec<NodeId> = before
            .keys()
            .filter(|id| **id != self.me && !after.contains_key(id))
            .copied()
            .collect();
        if added.is_empty() && removed.is_empty() {
            return;
        }
        let mut rekeyed = Vec::new();
        let snapshot = {
            let Ok(mut store) = self.trust.write() else {
                tracing::error!("trust store lock poisoned");
                return;
            };
            for peer in added {
                // Removed and re-added with a new key between two states
                // seen: the old pin goes first, or the new one is refused.
                if before
                    .get(&peer.node_id)
                    .is_some_and(|b| b.fingerprint != peer.fingerprint)
                {
                    store.remove(peer.node_id);
                    rekeyed.push(peer.node_id);
                }
                match trust_entry_for(peer) {
                    Ok(entry) => {
                        if let Err(e) = store.add(entry) {
                            tracing::error!(node = %peer.node_id, "cannot pin new member: {e}");
                        } else {
                            tracing::info!(node = %peer.node_id, fingerprint = %peer.fingerprint, "pinned new cluster member");
                        }
                    }
                    Err(e) => {
                        tracing::error!(node = %peer.node_id, "member has a bad fingerprint: {e}")
                    }
                }
            }
            for node in &removed {
                if store.remove(*node).is_some() {
                    tracing::info!(%node, "unpinned node that left the cluster");
                }
            }
            store.clone()
        };
        for node in removed.into_iter().chain(rekeyed) {
            self.pool.disconnect(node);
            self.registry.close_peer(node);
        }
        let path = self.paths.trust_file();
        match tokio::task::spawn_blocking(move || snapshot.save(&path)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("cannot write trust.yaml: {e}"),
            Err(e) => tracing::error!("trust.yaml writer failed: {e}"),
        }
    }
}

/// The trust entry that pins a replicated member.
pub fn trust_entry_for(
    peer: &Peer,
) -> Result<TrustEntry, crate::crypto::fingerprint::FingerprintParseError> {
    Ok(TrustEntry {
        node_id: peer.node_id,
        fingerprint: peer.fingerprint.parse::<Fingerprint>()?,
        advertise: peer.advertise.clone(),
        added_at: now_rfc3339(),
        source: TrustSource::Cluster,
    })
}
