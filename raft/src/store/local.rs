//! Node-local facts kept beside the Raft state but never replicated: which
//! cluster claimed this node (so it refuses any other), and whether it was
//! removed from its cluster.

use std::io;

use super::sled_err;

const CLAIMED_BY: &[u8] = b"claimed_by";
const REMOVED: &[u8] = b"removed";

/// Node-local flags on sled.
#[derive(Clone)]
pub struct LocalStore {
    db: sled::Db,
    tree: sled::Tree,
}

impl LocalStore {
    pub(super) fn open(db: &sled::Db) -> io::Result<LocalStore> {
        Ok(LocalStore {
            db: db.clone(),
            tree: db.open_tree("local").map_err(sled_err)?,
        })
    }

    /// The id of the cluster this node belongs to, once it formed or joined one.
    pub fn claimed_by(&self) -> io::Result<Option<String>> {
        Ok(self
            .tree
            .get(CLAIMED_BY)
            .map_err(sled_err)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Records the cluster that claimed this node, durably.
    pub async fn set_claimed_by(&self, cluster_id: &str) -> io::Result<()> {
        self.tree
            .insert(CLAIMED_BY, cluster_id.as_bytes())
            .map_err(sled_err)?;
        self.db.flush_async().await.map(|_| ()).map_err(sled_err)
    }

    pub fn removed(&self) -> io::Result<bool> {
        self.tree.contains_key(REMOVED).map_err(sled_err)
    }

    /// Records that this node was removed from its cluster, durably.
    pub async fn set_removed(&self) -> io::Result<()> {
        self.tree
            .insert(REMOVED, b"1".as_slice())
            .map_err(sled_err)?;
        self.db.flush_async().await.map(|_| ()).map_err(sled_err)
    }
}
