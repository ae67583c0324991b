//! The rollups on disk: this node's own sled database (`<state>/rollups/`),
//! apart from the Raft store and never replicated.
//!
//! Keys are `<check id>/m/<minute index>` and `<check id>/h/<hour index>`,
//! the index a big-endian `u64` (minutes or hours since the Unix epoch), so
//! a check's buckets of one resolution are one ordered key range. Values
//! are `Bucket`s (104 bytes).
//!
//! Invariants: writing a bucket adds to what the key holds (a minute
//! flushed in two parts sums up), and deletes that check's buckets of the
//! same resolution that fell out of retention (`MINUTES_KEPT`,
//! `HOURS_KEPT`): a check holds at most 1440 minute and 720 hour buckets.
//! Only one writer at a time (the caller serialises flushes).

use std::path::{Path, PathBuf};

use super::bucket::Bucket;

/// Minute buckets are kept 24 hours.
pub const MINUTES_KEPT: u64 = 24 * 60;
/// Hour buckets are kept 30 days.
pub const HOURS_KEPT: u64 = 30 * 24;

/// Why the rollup store failed.
#[derive(Debug, thiserror::Error)]
pub enum RollupError {
    #[error("cannot create the rollup directory {}: {source}", .path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the rollup store in {}: {source}", .path.display())]
    Open { path: PathBuf, source: sled::Error },
    #[error("rollup store: {0}")]
    Sled(#[from] sled::Error),
    #[error("the rollup task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error(
        "rollup store: the bucket under {key:?} is not {} bytes",
        super::bucket::BYTES
    )]
    Corrupt { key: String },
}

/// Which bucket size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Minute,
    Hour,
}

impl Resolution {
    fn tag(self) -> &'static [u8] {
        match self {
            Resolution::Minute => b"/m/",
            Resolution::Hour => b"/h/",
        }
    }

    fn kept(self) -> u64 {
        match self {
            Resolution::Minute => MINUTES_KEPT,
            Resolution::Hour => HOURS_KEPT,
        }
    }
}

fn prefix(id: &str, res: Resolution) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len() + 11);
    k.extend_from_slice(id.as_bytes());
    k.extend_from_slice(res.tag());
    k
}

fn key(id: &str, res: Resolution, index: u64) -> Vec<u8> {
    let mut k = prefix(id, res);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// The sled database of one node's rollups.
#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
}

/// sled's page cache for the rollups (they are read a window at a time).
const CACHE_BYTES: u64 = 8 * 1024 * 1024;

impl Store {
    /// Opens (creating, mode 0700) the store in `dir`. Blocking.
    pub fn open(dir: &Path) -> Result<Store, RollupError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| RollupError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(|source| RollupError::Open {
                path: dir.to_path_buf(),
                source,
            })?;
        Ok(Store { db })
    }

    /// Adds `b` to the bucket `index` of check `id`, and deletes that
    /// check's buckets of this resolution older than the retention.
    pub fn merge(
        &self,
        id: &str,
        res: Resolution,
        index: u64,
        b: &Bucket,
    ) -> Result<(), RollupError> {
        let k = key(id, res, index);
        let mut sum = match self.db.get(&k)? {
            Some(v) => Bucket::decode(&v).ok_or_else(|| corrupt(&k))?,
            None => Bucket::default(),
        };
        sum.add(b);
        self.db.insert(k, sum.encode())?;
        if let Some(cutoff) = index.checked_sub(res.kept() - 1) {
            let stale: Vec<sled::IVec> = self
                .db
                .range(key(id, res, 0)..key(id, res, cutoff))
                .keys()
                .collect::<Result<_, _>>()?;
            for k in stale {
                self.db.remove(k)?;
            }
        }
        Ok(())
    }

    /// The sum of check `id`'s buckets `from..=to` of this resolution.
    pub fn sum(
        &self,
        id: &str,
        res: Resolution,
        from: u64,
        to: u64,
    ) -> Result<Bucket, RollupError> {
        let mut total = Bucket::default();
        for kv in self.db.range(key(id, res, from)..=key(id, res, to)) {
            let (k, v) = kv?;
            total.add(&Bucket::decode(&v).ok_or_else(|| corrupt(&k))?);
        }
        Ok(total)
    }

    /// Deletes every bucket of check `id`.
    pub fn forget(&self, id: &str) -> Result<(), RollupError> {
        for res in [Resolution::Minute, Resolution::Hour] {
            let keys: Vec<sled::IVec> = self
                .db
                .scan_prefix(prefix(id, res))
                .keys()
                .collect::<Result<_, _>>()?;
            for k in keys {
                self.db.remove(k)?;
            }
        }
        Ok(())
    }

    /// The checks that have buckets here. Reads one key per check (it
    /// jumps over the rest of each check's keys).
    pub fn check_ids(&self) -> Result<Vec<String>, RollupError> {
        let mut ids = Vec::new();
        let mut from: Vec<u8> = Vec::new();
        while let Some(kv) = self.db.range(from.clone()..).next() {
            let (k, _) = kv?;
            let Some(slash) = k.iter().position(|&c| c == b'/') else {
                return Err(corrupt(&k));
            };
            ids.push(String::from_utf8_lossy(&k[..slash]).into_owned());
            // The first key past every `<id>/…` key.
            from = k[..slash].to_vec();
            from.push(b'/' + 1);
        }
        Ok(ids)
    }

    /// How many buckets of this resolution check `id` holds.
    pub fn count(&self, id: &str, res: Resolution) -> usize {
        self.db.scan_prefix(prefix(id, res)).count()
    }

    /// Writes what sled buffers to disk. Blocking.
    pub fn sync(&self) -> Result<(), RollupError> {
        self.db.flush()?;
        Ok(())
    }
}

fn corrupt(k: &[u8]) -> RollupError {
    RollupError::Corrupt {
        key: String::from_utf8_lossy(k).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn one(ok: bool) -> Bucket {
        let mut b = Bucket::default();
        b.observe(ok, Duration::from_millis(5));
        b
    }

    #[test]
    fn merges_add_up_and_ranges_are_per_check_and_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.merge("aa", Resolution::Minute, 100, &one(true)).unwrap();
        s.merge("aa", Resolution::Minute, 100, &one(false)).unwrap();
        s.merge("aa", Resolution::Minute, 101, &one(true)).unwrap();
        s.merge("ab", Resolution::Minute, 100, &one(true)).unwrap();
        s.merge("aa", Resolution::Hour, 1, &one(true)).unwrap();
        let b = s.sum("aa", Resolution::Minute, 100, 100).unwrap();
        assert_eq!((b.probes, b.ok), (2, 1));
        let b = s.sum("aa", Resolution::Minute, 0, u64::MAX).unwrap();
        assert_eq!((b.probes, b.ok), (3, 2));
        assert_eq!(s.sum("aa", Resolution::Hour, 0, 10).unwrap().probes, 1);
        assert_eq!(s.sum("ab", Resolution::Minute, 0, 1000).unwrap().probes, 1);
        assert_eq!(s.check_ids().unwrap(), ["aa", "ab"]);
        s.forget("aa").unwrap();
        assert_eq!(s.count("aa", Resolution::Minute), 0);
        assert_eq!(s.count("aa", Resolution::Hour), 0);
        assert_eq!(s.count("ab", Resolution::Minute), 1);
        assert_eq!(s.check_ids().unwrap(), ["ab"]);
    }

    #[test]
    fn old_buckets_expire_when_newer_ones_are_written_and_size_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        // Three days of a probe every minute.
        let start = 29_000_000u64;
        for m in start..start + 3 * MINUTES_KEPT {
            s.merge("c1", Resolution::Minute, m, &one(true)).unwrap();
            s.merge("c1", Resolution::Hour, m / 60, &one(true)).unwrap();
            assert!(s.count("c1", Resolution::Minute) as u64 <= MINUTES_KEPT);
        }
        let last = start + 3 * MINUTES_KEPT - 1;
        assert_eq!(s.count("c1", Resolution::Minute) as u64, MINUTES_KEPT);
        let oldest_kept = last + 1 - MINUTES_KEPT;
        assert_eq!(
            s.sum("c1", Resolution::Minute, 0, oldest_kept - 1)
                .unwrap()
                .probes,
            0
        );
        assert_eq!(
            s.sum("c1", Resolution::Minute, oldest_kept, last)
                .unwrap()
                .probes as u64,
            MINUTES_KEPT
        );
        // Hours: 31 days of hour buckets keep 30 days.
        for h in 1000..1000 + 31 * 24 {
            s.merge("c2", Resolution::Hour, h, &one(true)).unwrap();
        }
        assert_eq!(s.count("c2", Resolution::Hour) as u64, HOURS_KEPT);
        assert_eq!(
            s.sum("c2", Resolution::Hour, 0, 1000 + 24 - 1)
                .unwrap()
                .probes,
            0
        );
    }

    #[test]
    fn a_gap_still_expires_everything_out_of_retention() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        for m in [10, 500, 1000] {
            s.merge("c", Resolution::Minute, m, &one(true)).unwrap();
        }
        // Two days later: all three are older than 24 h.
        s.merge("c", Resolution::Minute, 1000 + 2 * MINUTES_KEPT, &one(true))
            .unwrap();
        assert_eq!(s.count("c", Resolution::Minute), 1);
    }
}
