//! openraft storage on sled: the log store and the state-machine store
//! share one `sled::Db` in the node's `raft/` directory.
//!
//! Trees:
//! - `log`: index (u64 big-endian) → entry (JSON)
//! - `meta`: `vote`, `committed`, `last_purged` (JSON)
//! - `sm`: `meta` (last applied, membership, cluster id, version) and one
//!   key per record: `peer/<id>`, `check/<id>`, `alert/<id>`, `cstate/<id>`
//! - `snapshot`: `current` (the last built or installed snapshot)
//! - `local`: node-local facts that are not replicated (cluster claimed by
//!   a join, removal)
//!
//! Durability invariant: a vote, appended entries, a purge and every apply
//! are fsynced (`flush_async`) before openraft is told they are done.

mod local;
mod log;
mod sm;

use std::io;
use std::path::Path;

pub use local::LocalStore;
pub use log::LogStore;
pub use sm::{Applied, StateMachineStore};

/// sled's page cache. Its default (1 GiB) lets a node's memory grow with
/// everything ever written; the working set here is the state machine and
/// the recent log, a few MiB even at 10 000 checks.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// Opens (or creates) the node's Raft storage.
pub fn open(dir: &Path) -> Result<(LogStore, StateMachineStore, LocalStore), io::Error> {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(CACHE_BYTES)
        .open()
        .map_err(|e| {
            io::Error::other(format!(
                "cannot open the Raft store in {}: {e}",
                dir.display()
            ))
        })?;
    let log = LogStore::open(&db)?;
    let sm = StateMachineStore::open(&db)?;
    let local = LocalStore::open(&db)?;
    Ok((log, sm, local))
}

pub(crate) fn sled_err(e: sled::Error) -> io::Error {
    io::Error::other(e)
}

pub(crate) fn json_err(e: serde_json::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}
