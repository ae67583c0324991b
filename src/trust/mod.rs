//! `trust.yaml`: the local fingerprint trust store (SPEC §4).
//!
//! Invariants: a node id appears at most once and a fingerprint at most once
//! (one key is one node); the file is replaced atomically (write, fsync,
//! rename, fsync dir), so a crash leaves the old or the new store whole.
//! Only the TLS layer's verifiers decide who may connect, and they consult
//! this store (see `transport::tls`). `service::TrustService` is the one
//! writer of the file and of the snapshot the verifiers read.

pub mod service;

pub use service::TrustService;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::atomic::{write_atomic, FileMode};
use crate::crypto::Fingerprint;
use qu_raft::NodeId;

/// How an entry came to be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustSource {
    /// An operator accepted it (`qu node add`, SSH-style).
    Tofu,
    /// The replicated membership says it is a member.
    Cluster,
}

impl std::fmt::Display for TrustSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TrustSource::Tofu => "tofu",
            TrustSource::Cluster => "cluster",
        })
    }
}

/// One trusted peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustEntry {
    pub node_id: NodeId,
    pub fingerprint: Fingerprint,
    pub advertise: String,
    /// RFC 3339 UTC time the entry was added.
    pub added_at: String,
    pub source: TrustSource,
}

/// A member the trust store must pin: its id, key and address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub node_id: NodeId,
    pub fingerprint: Fingerprint,
    pub advertise: String,
}

/// Errors of the trust store.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not a valid trust store: {detail}")]
    Parse { path: PathBuf, detail: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("node {node} is already trusted with fingerprint {existing}, not {offered}; if its key really changed, run 'qu trust remove {node}' first")]
    NodeKeyConflict {
        node: NodeId,
        existing: Fingerprint,
        offered: Fingerprint,
    },
    #[error("fingerprint {fingerprint} is already trusted as node {existing}; one key cannot be two nodes")]
    FingerprintConflict {
        fingerprint: Fingerprint,
        existing: NodeId,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct TrustFile {
    #[serde(default)]
    entries: Vec<TrustEntry>,
}

/// The trust store in memory, sorted by node id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustStore {
    entries: Vec<TrustEntry>,
}

pub use crate::ids::now_rfc3339;

impl TrustStore {
    /// Loads the store; a missing file is an empty store.
    pub fn load(path: &Path) -> Result<TrustStore, TrustError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(TrustStore::default()),
            Err(source) => {
                return Err(TrustError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let file: TrustFile = if text.trim().is_empty() {
            TrustFile::default()
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| TrustError::Parse {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?
        };
        let mut store = TrustStore::default();
        for entry in file.entries {
            store.add(entry).map_err(|e| TrustError::Parse {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
        }
        Ok(store)
    }

    /// Writes the store atomically.
    pub fn save(&self, path: &Path) -> Result<(), TrustError> {
        let file = TrustFile {
            entries: self.entries.clone(),
        };
        let text = serde_yaml_ng::to_string(&file).map_err(|e| TrustError::Parse {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        let header = "# qu trust store: the nodes whose certificate fingerprints this node pins.\n# Managed by qu (qu trust list / qu trust remove); edits are read at startup.\n";
        write_atomic(path, format!("{header}{text}").as_bytes(), FileMode::Public).map_err(
            |source| TrustError::Write {
                path: path.to_path_buf(),
                source,
            },
        )
    }

    /// Adds an entry. Re-adding the same (node, fingerprint) pair refreshes
    /// its advertise address and keeps the earlier `added_at`; a different
    /// key for a known node, or a known key under another node id, is refused.
    pub fn add(&mut self, entry: TrustEntry) -> Result<(), TrustError> {
        if let Some(other) = self
            .entries
            .iter()
            .find(|e| e.fingerprint == entry.fingerprint && e.node_id != entry.node_id)
        {
            return Err(TrustError::FingerprintConflict {
                fingerprint: entry.fingerprint,
                existing: other.node_id,
            });
        }
        match self.entries.iter_mut().find(|e| e.node_id == entry.node_id) {
            Some(existing) if existing.fingerprint != entry.fingerprint => {
                Err(TrustError::NodeKeyConflict {
                    node: entry.node_id,
                    existing: existing.fingerprint,
                    offered: entry.fingerprint,
                })
            }
            Some(existing) => {
                existing.advertise = entry.advertise;
                if existing.source == TrustSource::Tofu && entry.source == TrustSource::Cluster {
                    existing.source = TrustSource::Cluster;
                }
                Ok(())
            }
            None => {
                self.entries.push(entry);
                self.entries.sort_by_key(|e| e.node_id);
                Ok(())
            }
        }
    }

    /// Removes a node's entry; returns it if there was one.
    pub fn remove(&mut self, node: NodeId) -> Option<TrustEntry> {
        let pos = self.entries.iter().position(|e| e.node_id == node)?;
        Some(self.entries.remove(pos))
    }

    pub fn by_node(&self, node: NodeId) -> Option<&TrustEntry> {
        self.entries.iter().find(|e| e.node_id == node)
    }

    pub fn by_fingerprint(&self, fp: &Fingerprint) -> Option<&TrustEntry> {
        self.entries.iter().find(|e| &e.fingerprint == fp)
    }

    pub fn entries(&self) -> &[TrustEntry] {
        &self.entries
    }

    pub fn node_ids(&self) -> Vec<NodeId> {
        self.entries.iter().map(|e| e.node_id).collect()
    }

    /// Makes the `cluster` entries exactly `members` (other than `me`):
    /// pins members that are missing, re-keys a member whose key changed,
    /// drops `cluster` entries of nodes that are not members. Operator
    /// (`tofu`) entries of non-members are kept (they never grant member
    /// RPCs: those need replicated membership), unless they hold a member's
    /// node id or key. Returns the nodes whose pin was dropped or replaced.
    pub fn reconcile(&mut self, me: NodeId, members: &[Pin]) -> Vec<NodeId> {
        let wanted: BTreeMap<NodeId, &Pin> = members
            .iter()
            .filter(|p| p.node_id != me)
            .map(|p| (p.node_id, p))
            .collect();
        let mut dropped = Vec::new();
        self.entries.retain(|e| {
            let keep = match wanted.get(&e.node_id) {
                Some(p) => p.fingerprint == e.fingerprint,
                None => {
                    e.source == TrustSource::Tofu
                        && !wanted.values().any(|p| p.fingerprint == e.fingerprint)
                }
            };
            if !keep {
                dropped.push(e.node_id);
            }
            keep
        });
        for p in wanted.values() {
            let entry = TrustEntry {
                node_id: p.node_id,
                fingerprint: p.fingerprint,
                advertise: p.advertise.clone(),
                added_at: now_rfc3339(),
                source: TrustSource::Cluster,
            };
            // Conflicts were dropped above; a second pin of one key among
            // the members themselves is refused and skipped.
            if let Err(e) = self.add(entry) {
                tracing::error!(node = %p.node_id, "cannot pin member: {e}");
            }
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(node: u64, fp: u8) -> TrustEntry {
        TrustEntry {
            node_id: NodeId(node),
            fingerprint: Fingerprint([fp; 32]),
            advertise: format!("n{node}:9001"),
            added_at: now_rfc3339(),
            source: TrustSource::Tofu,
        }
    }

    #[test]
    fn add_lookup_remove_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trust.yaml");
        let mut store = TrustStore::load(&path).unwrap();
        assert!(store.entries().is_empty());
        store.add(entry(2, 2)).unwrap();
        store.add(entry(1, 1)).unwrap();
        store.save(&path).unwrap();

        let mut loaded = TrustStore::load(&path).unwrap();
        assert_eq!(loaded, store);
        assert_eq!(loaded.node_ids(), vec![NodeId(1), NodeId(2)]);
        assert_eq!(
            loaded
                .by_fingerprint(&Fingerprint([2; 32]))
                .unwrap()
                .node_id,
            NodeId(2)
        );
        assert_eq!(
            loaded.by_node(NodeId(1)).unwrap().fingerprint,
            Fingerprint([1; 32])
        );
        assert!(loaded.remove(NodeId(1)).is_some());
        assert!(loaded.remove(NodeId(1)).is_none());
        assert!(loaded.by_fingerprint(&Fingerprint([1; 32])).is_none());
    }

    #[test]
    fn refuses_a_second_key_for_a_node_and_a_key_for_two_nodes() {
        let mut store = TrustStore::default();
        store.add(entry(1, 1)).unwrap();
        assert!(matches!(
            store.add(entry(1, 9)),
            Err(TrustError::NodeKeyConflict { .. })
        ));
        assert!(matches!(
            store.add(entry(2, 1)),
            Err(TrustError::FingerprintConflict { .. })
        ));
        // Re-adding the same pair is idempotent and refreshes the address.
        let mut again = entry(1, 1);
        again.advertise = "moved:9001".into();
        store.add(again).unwrap();
        assert_eq!(store.entries().len(), 1);
        assert_eq!(store.by_node(NodeId(1)).unwrap().advertise, "moved:9001");
    }

    fn pin(node: u64, fp: u8) -> Pin {
        Pin {
            node_id: NodeId(node),
            fingerprint: Fingerprint([fp; 32]),
            advertise: format!("m{node}:9001"),
        }
    }

    #[test]
    fn reconcile_makes_cluster_entries_exactly_the_members() {
        let mut store = TrustStore::default();
        let cluster = |node, fp| {
            let mut e = entry(node, fp);
            e.source = TrustSource::Cluster;
            e
        };
        store.add(cluster(2, 2)).unwrap(); // member, same key: kept
        store.add(cluster(3, 3)).unwrap(); // left the cluster: dropped
        store.add(cluster(4, 4)).unwrap(); // re-keyed: replaced
        store.add(entry(5, 5)).unwrap(); // operator's tofu, not a member: kept
        store.add(entry(6, 7)).unwrap(); // tofu holding a member's key: dropped
        let members = [pin(1, 1), pin(2, 2), pin(4, 40), pin(7, 7), pin(8, 8)];
        let mut dropped = store.reconcile(NodeId(1), &members);
        dropped.sort();
        assert_eq!(dropped, vec![NodeId(3), NodeId(4), NodeId(6)]);
        let got: Vec<(u64, u8, TrustSource)> = store
            .entries()
            .iter()
            .map(|e| (e.node_id.0, e.fingerprint.0[0], e.source))
            .collect();
        assert_eq!(
            got,
            vec![
                (2, 2, TrustSource::Cluster),
                (4, 40, TrustSource::Cluster),
                (5, 5, TrustSource::Tofu),
                (7, 7, TrustSource::Cluster),
                (8, 8, TrustSource::Cluster),
            ]
        );
        // Idempotent.
        let before = store.clone();
        assert!(store.reconcile(NodeId(1), &members).is_empty());
        assert_eq!(store, before);
    }

    #[test]
    fn corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trust.yaml");
        std::fs::write(&path, "entries: [ {node_id: zz} ]").unwrap();
        let err = TrustStore::load(&path).unwrap_err().to_string();
        assert!(err.contains("trust.yaml"), "{err}");
    }
}
