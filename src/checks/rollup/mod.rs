//! Per-node latency and success rollups of this node's own probes, for
//! `qu check show` (p50/p95/p99 and success ratio over 1 h, 24 h, 7 d).
//!
//! Local, not replicated: each node keeps only what it probed itself, in
//! its own sled database (`<state>/rollups/`, see `store`); peers ask for
//! it over the transport (`MemberRequest::Rollup`).
//!
//! Buckets (`bucket`): probe count, ok count and a 24-bucket log-scale
//! latency histogram of the successful probes (`histogram`: percentiles
//! within +28.4 % / −22.1 % between 1 ms and 60 s), 104 bytes each. A
//! check keeps at most 1440 minute buckets (24 h) and 720 hour buckets
//! (30 days): at most 2160 × (104-byte value + 19-byte key, with the
//! 8-character check id) = 265,680 bytes (≈ 260 KiB) per check, before
//! sled's own overhead; a check probed less often than every minute holds
//! fewer minute buckets.
//!
//! Invariants:
//! - The probe path only adds to an in-memory bucket under a short lock
//!   (`observe`); it never touches sled. `flush` (blocking: run it in
//!   `spawn_blocking`) moves everything pending into the minute and hour
//!   buckets on disk, about once a minute. These are not acknowledged
//!   writes: a crash loses what was observed since the last flush (at
//!   most about a minute of probes).
//! - A summary counts every probe exactly once: flushes and summaries are
//!   serialised (`flush_lock`), and a summary adds the pending buckets to
//!   what is on disk.
//! - 1 h and 24 h are summed from minute buckets (the current minute
//!   included), 7 d from hour buckets (the current hour included).

pub mod bucket;
pub mod histogram;
pub mod store;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use bucket::Bucket;
pub use store::RollupError;
use store::{Resolution, Store, MINUTES_KEPT};

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;

/// The windows a summary covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Hour,
    Day,
    Week,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::Hour, Window::Day, Window::Week];

    pub fn name(self) -> &'static str {
        match self {
            Window::Hour => "1h",
            Window::Day => "24h",
            Window::Week => "7d",
        }
    }

    /// The bucket resolution and the inclusive index range at `now_ms`.
    fn span(self, now_ms: u64) -> (Resolution, u64, u64) {
        let (res, unit, count) = match self {
            Window::Hour => (Resolution::Minute, MINUTE_MS, 60),
            Window::Day => (Resolution::Minute, MINUTE_MS, 24 * 60),
            Window::Week => (Resolution::Hour, HOUR_MS, 7 * 24),
        };
        let to = now_ms / unit;
        (res, to.saturating_sub(count - 1), to)
    }
}

/// One window of one node's probes of a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    /// "1h", "24h" or "7d".
    pub window: String,
    pub probes: u64,
    pub ok: u64,
    /// ok / probes in percent; None without probes.
    pub success_pct: Option<f64>,
    /// Estimated latency percentiles of the successful probes (ms).
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl WindowStats {
    fn of(window: Window, b: &Bucket) -> WindowStats {
        WindowStats {
            window: window.name().to_string(),
            probes: u64::from(b.probes),
            ok: u64::from(b.ok),
            success_pct: (b.probes > 0).then(|| f64::from(b.ok) * 100.0 / f64::from(b.probes)),
            p50_ms: b.latency.quantile_ms(0.50),
            p95_ms: b.latency.quantile_ms(0.95),
            p99_ms: b.latency.quantile_ms(0.99),
        }
    }
}

/// One node's rollups of a check: one entry per window, 1h, 24h, 7d.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub windows: Vec<WindowStats>,
}

/// What the probe path hands over: per check, per minute index.
type Pending = HashMap<String, BTreeMap<u64, Bucket>>;

/// This node's rollups: the pending minutes in memory, the rest on disk.
/// `Default` keeps everything in memory (24 h of minutes) and nothing on
/// disk (tests).
#[derive(Debug, Default)]
pub struct Rollups {
    pending: Mutex<Pending>,
    /// Checks removed since the last flush: their buckets are deleted.
    forgotten: Mutex<Vec<String>>,
    flush_lock: Mutex<()>,
    store: Option<Store>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere leaves counts that are still counts.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Rollups {
    /// Opens (creating) the store in `dir`. Blocking.
    pub fn open(dir: &Path) -> Result<Rollups, RollupError> {
        Ok(Rollups {
            store: Some(Store::open(dir)?),
            ..Default::default()
        })
    }

    /// Counts one probe of check `id` that finished at `at_ms`.
    pub fn observe(&self, id: &str, ok: bool, latency: Duration, at_ms: u64) {
        let mut p = lock(&self.pending);
        let minutes = match p.get_mut(id) {
            Some(m) => m,
            None => p.entry(id.to_string()).or_default(),
        };
        minutes
            .entry(at_ms / MINUTE_MS)
            .or_default()
            .observe(ok, latency);
    }

    /// Check `id` was removed: its buckets go (at the next flush).
    pub fn forget(&self, id: &str) {
        lock(&self.pending).remove(id);
        lock(&self.forgotten).push(id.to_string());
    }

    /// Moves every pending bucket to disk; returns how many. Blocking.
    /// Without a store, only drops what is older than 24 h.
    pub fn flush(&self, now_ms: u64) -> Result<usize, RollupError> {
        let _g = lock(&self.flush_lock);
        let Some(store) = &self.store else {
            let oldest = (now_ms / MINUTE_MS).saturating_sub(MINUTES_KEPT - 1);
            let mut p = lock(&self.pending);
            for m in p.values_mut() {
                m.retain(|&minute, _| minute >= oldest);
            }
            p.retain(|_, m| !m.is_empty());
            lock(&self.forgotten).clear();
            return Ok(0);
        };
        let forgotten = std::mem::take(&mut *lock(&self.forgotten));
        for id in &forgotten {
            store.forget(id)?;
        }
        let pending = std::mem::take(&mut *lock(&self.pending));
        let mut written = 0;
        let mut failed = None;
        let mut unwritten: Pending = HashMap::new();
        for (id, minutes) in pending {
            for (minute, b) in minutes {
                if failed.is_some() {
                    unwritten.entry(id.clone()).or_default().insert(minute, b);
                    continue;
                }
                // The minute first, then its hour: a failure in between
                // is retried whole, which may count that minute twice in
                // its hour (an error we accept over losing it).
                let r = store
                    .merge(&id, Resolution::Minute, minute, &b)
                    .and_then(|()| store.merge(&id, Resolution::Hour, minute / 60, &b));
                match r {
                    Ok(()) => written += 1,
                    Err(e) => {
                        failed = Some(e);
                        unwritten.entry(id.clone()).or_default().insert(minute, b);
                    }
                }
            }
        }
        if let Some(e) = failed {
            // Put back what did not reach the disk, for the next flush;
            // while the disk keeps failing, memory holds at most 24 h.
            let oldest = (now_ms / MINUTE_MS).saturating_sub(MINUTES_KEPT - 1);
            let mut p = lock(&self.pending);
            for (id, minutes) in unwritten {
                let into = p.entry(id).or_default();
                for (minute, b) in minutes.into_iter().filter(|(m, _)| *m >= oldest) {
                    into.entry(minute).or_default().add(&b);
                }
            }
            return Err(e);
        }
        store.sync()?;
        Ok(written)
    }

    /// Deletes the buckets of every check not in `live` (removed while
    /// this node was down, so never `forget`-ed); returns how many checks.
    /// Blocking.
    pub fn purge_except(&self, live: &HashSet<String>) -> Result<usize, RollupError> {
        let _g = lock(&self.flush_lock);
        let Some(store) = &self.store else {
            return Ok(0);
        };
        let mut purged = 0;
        for id in store.check_ids()? {
            if !live.contains(&id) {
                store.forget(&id)?;
                purged += 1;
            }
        }
        Ok(purged)
    }

    /// This node's summary of check `id` at `now_ms`. Blocking.
    pub fn summary(&self, id: &str, now_ms: u64) -> Result<Summary, RollupError> {
        let _g = lock(&self.flush_lock);
        let pending = lock(&self.pending).get(id).cloned().unwrap_or_default();
        let mut windows = Vec::with_capacity(Window::ALL.len());
        for w in Window::ALL {
            let (res, from, to) = w.span(now_ms);
            let mut total = match &self.store {
                Some(s) => s.sum(id, res, from, to)?,
                None => Bucket::default(),
            };
            for (&minute, b) in &pending {
                let index = match res {
                    Resolution::Minute => minute,
                    Resolution::Hour => minute / 60,
                };
                if (from..=to).contains(&index) {
                    total.add(b);
                }
            }
            windows.push(WindowStats::of(w, &total));
        }
        Ok(Summary { windows })
    }

    /// Buckets on disk of check `id`: (minute, hour).
    pub fn stored(&self, id: &str) -> (usize, usize) {
        match &self.store {
            Some(s) => (
                s.count(id, Resolution::Minute),
                s.count(id, Resolution::Hour),
            ),
            None => (0, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000; // 2027-01-15, on a minute boundary

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn window<'a>(s: &'a Summary, name: &str) -> &'a WindowStats {
        s.windows.iter().find(|w| w.window == name).unwrap()
    }

    #[test]
    fn a_probe_lands_in_its_minute_and_its_hour() {
        let dir = tempfile::tempdir().unwrap();
        let r = Rollups::open(dir.path()).unwrap();
        r.observe("c", true, ms(20), NOW + 59_999);
        r.observe("c", true, ms(20), NOW + 60_000);
        r.flush(NOW + 61_000).unwrap();
        let store = r.store.as_ref().unwrap();
        let minute = NOW / MINUTE_MS;
        assert_eq!(
            store
                .sum("c", Resolution::Minute, minute, minute)
                .unwrap()
                .probes,
            1
        );
        assert_eq!(
            store
                .sum("c", Resolution::Minute, minute + 1, minute + 1)
                .unwrap()
                .probes,
            1
        );
        let hour = NOW / HOUR_MS;
        assert_eq!(
            store.sum("c", Resolution::Hour, hour, hour).unwrap().probes,
            2
        );
        assert_eq!(r.stored("c"), (2, 1));
    }

    #[test]
    fn windows_pick_minute_buckets_for_1h_and_24h_and_hour_buckets_for_7d() {
        let dir = tempfile::tempdir().unwrap();
        let r = Rollups::open(dir.path()).unwrap();
        // Now, 30 minutes ago, 3 hours ago, 2 days ago, 10 days ago.
        for (ago, ok) in [
            (0, true),
            (30 * MINUTE_MS, false),
            (3 * HOUR_MS, true),
            (48 * HOUR_MS, true),
            (240 * HOUR_MS, true),
        ] {
            r.observe("c", ok, ms(10), NOW - ago);
            r.flush(NOW - ago).unwrap();
        }
        // One more, still pending: counted too, once.
        r.observe("c", true, ms(10), NOW + 1);
        let s = r.summary("c", NOW + 2).unwrap();
        let probes = |w| window(&s, w).probes;
        assert_eq!((probes("1h"), probes("24h"), probes("7d")), (3, 4, 5));
        assert_eq!(window(&s, "1h").ok, 2);
        let pct = window(&s, "1h").success_pct.unwrap();
        assert!((pct - 200.0 / 3.0).abs() < 1e-9);
        // A minute bucket only reaches 24 h back, an hour bucket 30 days:
        // the 10-day-old probe is in no window, but still on disk.
        assert_eq!(r.stored("c").1, 5);
        // A day later the 1 h window is empty.
        let later = r.summary("c", NOW + 25 * HOUR_MS).unwrap();
        assert_eq!(window(&later, "1h").probes, 0);
        assert_eq!(window(&later, "1h").success_pct, None);
        assert_eq!(window(&later, "1h").p50_ms, None);
    }

    #[test]
    fn percentiles_come_from_the_summed_buckets() {
        let r = Rollups::default();
        for i in 0..100u64 {
            // 95 fast probes at 10 ms, 5 slow at 1 s, spread over an hour.
            let lat = if i < 95 { 10 } else { 1000 };
            r.observe("c", true, ms(lat), NOW - i * 30_000);
        }
        let s = r.summary("c", NOW).unwrap();
        let w = window(&s, "1h");
        assert_eq!(w.probes, 100);
        let e = 1.0 + histogram::max_relative_error();
        let near = |v: Option<f64>, truth: f64| {
            let v = v.unwrap();
            assert!(v <= truth * e && v >= truth / e, "{v} vs {truth}");
        };
        near(w.p50_ms, 10.0);
        near(w.p95_ms, 10.0);
        near(w.p99_ms, 1000.0);
    }

    #[test]
    fn rollups_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let r = Rollups::open(dir.path()).unwrap();
            for i in 0..10 {
                r.observe("c", i != 0, ms(50), NOW - i * MINUTE_MS);
            }
            r.flush(NOW).unwrap();
            // Observed after the last flush: lost with the process.
            r.observe("c", true, ms(50), NOW + 1);
        }
        let r = Rollups::open(dir.path()).unwrap();
        let s = r.summary("c", NOW + 2).unwrap();
        assert_eq!(window(&s, "1h").probes, 10);
        assert_eq!(window(&s, "1h").ok, 9);
        assert_eq!(window(&s, "7d").probes, 10);
    }

    #[test]
    fn storage_per_check_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let r = Rollups::open(dir.path()).unwrap();
        // 32 days of a probe every minute, flushed hourly.
        let start = NOW - 32 * 24 * HOUR_MS;
        let mut t = start;
        while t < NOW {
            r.observe("abcd1234", true, ms(5), t);
            t += MINUTE_MS;
            if t.is_multiple_of(HOUR_MS) {
                r.flush(t).unwrap();
            }
        }
        r.flush(NOW).unwrap();
        let (m, h) = r.stored("abcd1234");
        assert_eq!(
            (m as u64, h as u64),
            (store::MINUTES_KEPT, store::HOURS_KEPT)
        );
        let key_len = "abcd1234".len() + 3 + 8;
        assert_eq!((m + h) * (bucket::BYTES + key_len), 265_680);
        // The 7 d window saw 7 days of minutes.
        let s = r.summary("abcd1234", NOW - 1).unwrap();
        let w = window(&s, "7d");
        assert!(
            w.probes >= 7 * 24 * 60 - 60 && w.probes <= 7 * 24 * 60,
            "{w:?}"
        );
        assert_eq!(window(&s, "24h").probes, 24 * 60);
    }

    #[test]
    fn a_removed_check_loses_its_buckets() {
        let dir = tempfile::tempdir().unwrap();
        let r = Rollups::open(dir.path()).unwrap();
        r.observe("gone", true, ms(5), NOW);
        r.observe("kept", true, ms(5), NOW);
        r.flush(NOW).unwrap();
        r.observe("gone", true, ms(5), NOW + 1);
        r.forget("gone");
        r.flush(NOW + 2).unwrap();
        assert_eq!(r.stored("gone"), (0, 0));
        assert_eq!(r.stored("kept"), (1, 1));
        assert_eq!(
            window(&r.summary("gone", NOW + 3).unwrap(), "24h").probes,
            0
        );
    }

    #[test]
    fn checks_removed_while_down_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let r = Rollups::open(dir.path()).unwrap();
        for id in ["a1", "b2", "c3"] {
            r.observe(id, true, ms(5), NOW);
        }
        r.flush(NOW).unwrap();
        let live: HashSet<String> = ["b2".to_string()].into();
        assert_eq!(r.purge_except(&live).unwrap(), 2);
        assert_eq!(r.stored("a1"), (0, 0));
        assert_eq!(r.stored("b2"), (1, 1));
        assert_eq!(r.stored("c3"), (0, 0));
        assert_eq!(r.purge_except(&live).unwrap(), 0);
    }

    #[test]
    fn memory_only_rollups_keep_a_day() {
        let r = Rollups::default();
        r.observe("c", true, ms(5), NOW - 2 * 24 * HOUR_MS);
        r.observe("c", true, ms(5), NOW);
        r.flush(NOW).unwrap();
        assert_eq!(lock(&r.pending)["c"].len(), 1);
    }
}
