//! The Raft log on sled.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogState, RaftLogReader};

use super::{json_err, sled_err};
use crate::types::{Entry, LogId, TypeConfig, Vote};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

/// The log store; clones share the same trees.
#[derive(Clone)]
pub struct LogStore {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
}

impl LogStore {
    pub(super) fn open(db: &sled::Db) -> io::Result<LogStore> {
        Ok(LogStore {
            db: db.clone(),
            log: db.open_tree("log").map_err(sled_err)?,
            meta: db.open_tree("meta").map_err(sled_err)?,
        })
    }

    async fn flush(&self) -> io::Result<()> {
        self.db.flush_async().await.map(|_| ()).map_err(sled_err)
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> io::Result<Option<T>> {
        match self.meta.get(key).map_err(sled_err)? {
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(json_err),
            None => Ok(None),
        }
    }

    fn put_meta<T: serde::Serialize>(&self, key: &[u8], v: &T) -> io::Result<()> {
        let bytes = serde_json::to_vec(v).map_err(json_err)?;
        self.meta.insert(key, bytes).map_err(sled_err)?;
        Ok(())
    }

    /// Whether this node has ever voted or held a log entry (i.e. is not fresh).
    pub fn has_history(&self) -> io::Result<bool> {
        Ok(self.meta.contains_key(VOTE).map_err(sled_err)? || !self.log.is_empty())
    }
}

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn decode_entry(v: &[u8]) -> io::Result<Entry> {
    serde_json::from_slice(v).map_err(json_err)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let start = match range.start_bound() {
            Bound::Included(s) => Bound::Included(key(*s)),
            Bound::Excluded(s) => Bound::Excluded(key(*s)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => Bound::Included(key(*e)),
            Bound::Excluded(e) => Bound::Excluded(key(*e)),
            Bound::Unbounded => Bound::Unbounded,
        };
        self.log
            .range::<[u8; 8], _>((start, end))
            .map(|kv| {
                let (_, v) = kv.map_err(sled_err)?;
                decode_entry(&v)
            })
            .collect()
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.get_meta(VOTE)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged: Option<LogId> = self.get_meta(LAST_PURGED)?;
        let last = match self.log.last().map_err(sled_err)? {
            Some((_, v)) => Some(decode_entry(&v)?.log_id()),
            None => last_purged,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.put_meta(VOTE, vote)?;
        self.flush().await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.put_meta(COMMITTED, &committed)?;
        self.flush().await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.get_meta::<Option<LogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let bytes = serde_json::to_vec(&entry).map_err(json_err)?;
            batch.insert(&key(entry.index()), bytes);
        }
        self.log.apply_batch(batch).map_err(sled_err)?;
        let res = self.flush().await;
        let reported = res
            .as_ref()
            .map(|_| ())
            .map_err(|e| io::Error::new(e.kind(), e.to_string()));
        callback.io_completed(reported);
        res
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map(|l| l.index() + 1).unwrap_or(0);
        let mut batch = sled::Batch::default();
        for kv in self.log.range(key(from)..) {
            let (k, _) = kv.map_err(sled_err)?;
            batch.remove(k);
        }
        self.log.apply_batch(batch).map_err(sled_err)?;
        self.flush().await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.put_meta(LAST_PURGED, &log_id)?;
        let mut batch = sled::Batch::default();
        for kv in self.log.range(..=key(log_id.index())) {
            let (k, _) = kv.map_err(sled_err)?;
            batch.remove(k);
        }
        self.log.apply_batch(batch).map_err(sled_err)?;
        self.flush().await
    }
}
