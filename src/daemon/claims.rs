//! This node's standing toward its cluster: `claim.yaml` (outside `raft/`,
//! see `config::claim`) together with the marker inside `raft/`
//! (`LocalStore::claimed_by`) that says the Raft store holds that cluster's
//! state.
//!
//! | claim.yaml | marker in raft/ | standing |
//! |---|---|---|
//! | none | none | fresh: claimable (by `--join-from` nodes only, if set) |
//! | present | present | member: serves its cluster |
//! | present | none | wiped: serves no Raft traffic, claimable by no one; its own cluster may re-add it |
//! | removed | any | removed: serves nothing |
//!
//! Invariants: the claim file is written before the marker (a crash between
//! leaves a claimed node, never a claimable one); a node whose log has
//! history but lost only the marker (that same crash) gets the marker back
//! at startup; legacy markers kept only in `raft/` are migrated to the file
//! at startup. Writes are serialised; this is the only writer of both.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use crate::config::claim::{Claim, ClaimError};
use crate::trust::{now_rfc3339, Pin};
use qu_raft::store::LocalStore;

/// Where this node stands (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Fresh,
    Member,
    Wiped,
    Removed,
}

impl Standing {
    pub fn word(self) -> &'static str {
        match self {
            Standing::Fresh => "fresh",
            Standing::Member => "member",
            Standing::Wiped => "wiped",
            Standing::Removed => "removed",
        }
    }
}

/// Errors of the claim records.
#[derive(Debug, thiserror::Error)]
pub enum ClaimsError {
    #[error("{0}")]
    File(#[from] ClaimError),
    #[error("cannot update the claim marker in raft/: {0}")]
    Marker(#[source] std::io::Error),
    #[error("the claim writer failed: {0}")]
    Join(#[source] tokio::task::JoinError),
}

/// The claim records and the one writer of them.
pub struct Claims {
    path: PathBuf,
    local: LocalStore,
    claim: RwLock<Option<Claim>>,
    has_state: AtomicBool,
    removed: AtomicBool,
    writer: tokio::sync::Mutex<()>,
}

async fn save(path: PathBuf, claim: Claim) -> Result<(), ClaimsError> {
    tokio::task::spawn_blocking(move || claim.save(&path))
        .await
        .map_err(ClaimsError::Join)?
        .map_err(ClaimsError::File)
}

impl Claims {
    /// Loads the records, migrating legacy markers and mending a crash
    /// between the two writes (see the module invariants).
    pub async fn open(
        path: PathBuf,
        local: LocalStore,
        log_has_history: bool,
    ) -> Result<Claims, ClaimsError> {
        let loaded = {
            let p = path.clone();
            tokio::task::spawn_blocking(move || Claim::load(&p))
                .await
                .map_err(ClaimsError::Join)??
        };
        let marker = local.claimed_by().map_err(ClaimsError::Marker)?;
        let removed_inside = local.removed().map_err(ClaimsError::Marker)?;
        let mut claim = loaded.clone();
        if claim.is_none() {
            if let Some(id) = &marker {
                claim = Some(Claim {
                    cluster_id: id.clone(),
                    claimed_at: now_rfc3339(),
                    join_members: Vec::new(),
                    removed_at: None,
                });
            }
        }
        if let Some(c) = claim.as_mut() {
            if removed_inside && c.removed_at.is_none() {
                c.removed_at = Some(now_rfc3339());
            }
        }
        if claim != loaded {
            if let Some(c) = claim.clone() {
                tracing::info!("recording this node's cluster claim in claim.yaml (kept outside raft/ from now on)");
                save(path.clone(), c).await?;
            }
        }
        let mut has_state = marker.is_some();
        if let (Some(c), false, true) = (&claim, has_state, log_has_history) {
            // Crashed between writing the claim and the marker.
            local
                .set_claimed_by(&c.cluster_id)
                .await
                .map_err(ClaimsError::Marker)?;
            has_state = true;
        }
        let removed = claim.as_ref().is_some_and(|c| c.removed_at.is_some());
        Ok(Claims {
            path,
            local,
            claim: RwLock::new(claim),
            has_state: AtomicBool::new(has_state),
            removed: AtomicBool::new(removed),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    fn read(&self) -> Option<Claim> {
        self.claim.read().ok().and_then(|c| c.clone())
    }

    pub fn standing(&self) -> Standing {
        if self.removed.load(Ordering::SeqCst) {
            Standing::Removed
        } else if self.read().is_none() {
            Standing::Fresh
        } else if self.has_state.load(Ordering::SeqCst) {
            Standing::Member
        } else {
            Standing::Wiped
        }
    }

    /// The owning cluster's id (never shown to strangers).
    pub fn cluster_id(&self) -> Option<String> {
        self.read().map(|c| c.cluster_id)
    }

    /// Whether this node takes its cluster's Raft and member traffic.
    pub fn serves_cluster(&self) -> bool {
        self.standing() == Standing::Member
    }

    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::SeqCst)
    }

    /// Records that `cluster_id` owns this node (claim file, then marker).
    /// `join_members` are the members a claiming join named.
    pub async fn record(
        &self,
        cluster_id: &str,
        join_members: Vec<Pin>,
    ) -> Result<(), ClaimsError> {
        let _one = self.writer.lock().await;
        if self.read().is_none() {
            let claim = Claim {
                cluster_id: cluster_id.to_string(),
                claimed_at: now_rfc3339(),
                join_members,
                removed_at: None,
            };
            save(self.path.clone(), claim.clone()).await?;
            if let Ok(mut c) = self.claim.write() {
                *c = Some(claim);
            }
        }
        self.local
            .set_claimed_by(cluster_id)
            .await
            .map_err(ClaimsError::Marker)?;
        self.has_state.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Records the removal durably. Returns false if it was already known.
    pub async fn mark_removed(&self) -> Result<bool, ClaimsError> {
        let _one = self.writer.lock().await;
        if self.removed.swap(true, Ordering::SeqCst) {
            return Ok(false);
        }
        let mut claim = self.read().unwrap_or_else(|| Claim {
            cluster_id: String::new(),
            claimed_at: now_rfc3339(),
            join_members: Vec::new(),
            removed_at: None,
        });
        claim.removed_at = Some(now_rfc3339());
        save(self.path.clone(), claim.clone()).await?;
        if let Ok(mut c) = self.claim.write() {
            *c = Some(claim);
        }
        self.local
            .set_removed()
            .await
            .map_err(ClaimsError::Marker)?;
        Ok(true)
    }
}
