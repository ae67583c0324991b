//! The trust service: the only writer of `trust.yaml` and of the trust
//! snapshot the TLS verifiers read.
//!
//! Invariants:
//! - Updates run one at a time (an async mutex), each on the newest store:
//!   a `qu trust remove` racing a membership change cannot drop a pin, and
//!   saves never land out of order.
//! - Persist, then publish: the new store is fsynced to `trust.yaml` before
//!   verifiers see it, so a failed write changes nothing.
//! - Readers get `Arc` snapshots through a `watch` and never mutate them.
//! - When an update drops or replaces a node's pin, that node's open
//!   connections are closed (the `on_unpin` hook) after publication.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

use super::{Pin, TrustError, TrustStore};
use crate::transport::SharedTrust;
use qu_raft::NodeId;

/// Called with every node whose pin an update dropped or replaced.
pub type UnpinHook = Box<dyn Fn(NodeId) + Send + Sync>;

/// The one writer of the trust store.
pub struct TrustService {
    path: PathBuf,
    tx: watch::Sender<Arc<TrustStore>>,
    writer: tokio::sync::Mutex<()>,
    on_unpin: UnpinHook,
}

impl TrustService {
    /// Serves `store` (as loaded from `path`).
    pub fn new(path: PathBuf, store: TrustStore, on_unpin: UnpinHook) -> TrustService {
        let (tx, _) = watch::channel(Arc::new(store));
        TrustService {
            path,
            tx,
            writer: tokio::sync::Mutex::new(()),
            on_unpin,
        }
    }

    /// The view the TLS verifiers read.
    pub fn subscribe(&self) -> SharedTrust {
        self.tx.subscribe()
    }

    /// The store as of now.
    pub fn current(&self) -> Arc<TrustStore> {
        self.tx.borrow().clone()
    }

    /// Applies `change` to the newest store; persists and publishes the
    /// result if it differs. An error from `change` or from the write
    /// changes nothing.
    pub async fn update<T>(
        &self,
        change: impl FnOnce(&mut TrustStore) -> Result<T, TrustError>,
    ) -> Result<T, TrustError> {
        let _one_writer = self.writer.lock().await;
        let before = self.current();
        let mut next = (*before).clone();
        let out = change(&mut next)?;
        if next == *before {
            return Ok(out);
        }
        let (path, to_save) = (self.path.clone(), next.clone());
        tokio::task::spawn_blocking(move || to_save.save(&path))
            .await
            .map_err(|e| TrustError::Write {
                path: self.path.clone(),
                source: std::io::Error::other(e),
            })??;
        self.tx.send_replace(Arc::new(next.clone()));
        for gone in before
            .entries()
            .iter()
            .filter(|e| next.by_node(e.node_id).map(|n| n.fingerprint) != Some(e.fingerprint))
        {
            (self.on_unpin)(gone.node_id);
        }
        Ok(out)
    }

    /// Reconciles the `cluster` entries to exactly `members` (see
    /// `TrustStore::reconcile`); returns the nodes unpinned.
    pub async fn reconcile(&self, me: NodeId, members: &[Pin]) -> Result<Vec<NodeId>, TrustError> {
        self.update(|store| Ok(store.reconcile(me, members))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Fingerprint;
    use crate::trust::{now_rfc3339, TrustEntry, TrustSource};
    use std::sync::Mutex;

    fn pin(node: u64) -> Pin {
        Pin {
            node_id: NodeId(node),
            fingerprint: Fingerprint([node as u8; 32]),
            advertise: format!("n{node}:9001"),
        }
    }

    #[tokio::test]
    async fn concurrent_removal_and_membership_change_lose_no_pin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trust.yaml");
        let unpinned = Arc::new(Mutex::new(Vec::new()));
        let seen = unpinned.clone();
        let svc = Arc::new(TrustService::new(
            path.clone(),
            TrustStore::default(),
            Box::new(move |n| seen.lock().unwrap().push(n)),
        ));
        svc.reconcile(NodeId(1), &[pin(2), pin(3)]).await.unwrap();
        // Many removals of node 3 racing membership changes that add nodes.
        let mut tasks = Vec::new();
        for i in 0..20u64 {
            let s = svc.clone();
            tasks.push(tokio::spawn(async move {
                let members: Vec<Pin> = (2..=4 + i).filter(|n| *n != 3).map(pin).collect();
                s.reconcile(NodeId(1), &members).await.unwrap();
            }));
            let s = svc.clone();
            tasks.push(tokio::spawn(async move {
                s.update(|t| Ok(t.remove(NodeId(3)))).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // The last reconcile that ran decides; every member of it is pinned
        // both in memory and on disk, and the two agree.
        let now = svc.current();
        let on_disk = TrustStore::load(&path).unwrap();
        assert_eq!(*now, on_disk);
        assert!(now.by_node(NodeId(2)).is_some());
        assert!(now.by_node(NodeId(3)).is_none());
        assert!(now.by_node(NodeId(4)).is_some(), "{now:?}");
        assert!(unpinned.lock().unwrap().contains(&NodeId(3)));
    }

    #[tokio::test]
    async fn a_failed_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // The file's directory does not exist: the save fails.
        let path = dir.path().join("missing").join("trust.yaml");
        let svc = TrustService::new(path, TrustStore::default(), Box::new(|_| {}));
        let view = svc.subscribe();
        let err = svc
            .update(|t| {
                t.add(TrustEntry {
                    node_id: NodeId(9),
                    fingerprint: Fingerprint([9; 32]),
                    advertise: "x:1".into(),
                    added_at: now_rfc3339(),
                    source: TrustSource::Tofu,
                })
            })
            .await;
        assert!(err.is_err());
        assert!(view.borrow().entries().is_empty());
        assert!(svc.current().entries().is_empty());
    }
}
