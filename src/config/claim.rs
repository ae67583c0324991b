//! `claim.yaml`: which cluster owns this node, which members the join that
//! claimed it named, and whether it was removed. Node-local, never
//! replicated.
//!
//! It lives in the state directory, *outside* `raft/`, so wiping `raft/`
//! never makes a node claimable by another cluster: a node whose `raft/` is
//! gone but whose claim remains is *wiped* (it serves no Raft traffic until
//! its own cluster removes and re-adds it).
//!
//! Invariants: replaced atomically and fsynced (`atomic::write_atomic`);
//! the claim is written before the matching marker inside `raft/`, so a
//! crash between the two leaves a claimed node, never a claimable one.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::atomic::{write_atomic, FileMode};
use crate::trust::Pin;

/// The claim on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub cluster_id: String,
    /// RFC 3339 UTC.
    pub claimed_at: String,
    /// The members the claiming join named (empty when this node founded
    /// its cluster). Until the node sees itself in the replicated
    /// membership, they are the only nodes it takes cluster traffic from.
    #[serde(default)]
    pub join_members: Vec<Pin>,
    /// Set (RFC 3339 UTC) once this node was removed from its cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<String>,
}

/// Errors reading or writing the claim.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("cannot read {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} is damaged: {detail} (it records which cluster owns this node; restore it from a backup, or re-initialise the node)", .path.display())]
    Parse { path: PathBuf, detail: String },
    #[error("cannot write {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
}

impl Claim {
    /// Loads the claim; a missing file is an unclaimed node.
    pub fn load(path: &Path) -> Result<Option<Claim>, ClaimError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ClaimError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        serde_yaml_ng::from_str(&text)
            .map(Some)
            .map_err(|e| ClaimError::Parse {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })
    }

    /// Writes the claim atomically and durably. Blocking.
    pub fn save(&self, path: &Path) -> Result<(), ClaimError> {
        let body = serde_yaml_ng::to_string(self).map_err(|e| ClaimError::Parse {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        let text =
            format!("# qu: the cluster that owns this node (node-local; do not edit).\n{body}");
        write_atomic(path, text.as_bytes(), FileMode::Private).map_err(|source| ClaimError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Fingerprint;
    use qu_raft::NodeId;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claim.yaml");
        assert_eq!(Claim::load(&path).unwrap(), None);
        let claim = Claim {
            cluster_id: "c0ffee".into(),
            claimed_at: "2026-12-01T00:00:00Z".into(),
            join_members: vec![Pin {
                node_id: NodeId(7),
                fingerprint: Fingerprint([7; 32]),
                advertise: "a:9001".into(),
            }],
            removed_at: None,
        };
        claim.save(&path).unwrap();
        assert_eq!(Claim::load(&path).unwrap(), Some(claim));
        std::fs::write(&path, "cluster_id: [").unwrap();
        assert!(Claim::load(&path)
            .unwrap_err()
            .to_string()
            .contains("claim.yaml"));
    }
}
