//! Peer liveness: when each member was last heard from. Fed by our periodic
//! pings and by every authenticated request a peer makes to us; read by
//! `qu status` / `qu node list` (LIVE, LAST_SEEN) and by the no-quorum check
//! that refuses mutations early. Also which build each member said it runs
//! (VERSION), asked again every `VERSION_REFRESH`.
//!
//! Invariant: a peer is live only if heard from within `window`; this node
//! itself is always live.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use qu_raft::NodeId;

/// Last-heard times per peer.
#[derive(Debug)]
pub struct Liveness {
    me: NodeId,
    window: Duration,
    seen: Mutex<HashMap<NodeId, Seen>>,
    versions: Mutex<HashMap<NodeId, PeerVersion>>,
}

/// How often a peer's build is asked again (it may have been upgraded and
/// restarted within the liveness window).
pub const VERSION_REFRESH: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct PeerVersion {
    /// `None`: the peer could not say (a release older than the question).
    version: Option<String>,
    asked: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    at: Instant,
    wall: SystemTime,
    /// Start of the current stretch of liveness without a gap.
    since: Instant,
}

impl Liveness {
    pub fn new(me: NodeId, window: Duration) -> Liveness {
        Liveness {
            me,
            window,
            seen: Mutex::new(HashMap::new()),
            versions: Mutex::new(HashMap::new()),
        }
    }

    /// Records that `node` answered or called just now.
    pub fn heard(&self, node: NodeId) {
        let now = Instant::now();
        if let Ok(mut m) = self.seen.lock() {
            let since = match m.get(&node) {
                Some(s) if now.saturating_duration_since(s.at) <= self.window => s.since,
                _ => now,
            };
            m.insert(
                node,
                Seen {
                    at: now,
                    wall: SystemTime::now(),
                    since,
                },
            );
        }
    }

    /// Since when `node` has been live without a gap; `None` when not live.
    pub fn live_since(&self, node: NodeId) -> Option<Instant> {
        let m = self.seen.lock().ok()?;
        let s = m.get(&node)?;
        (s.at.elapsed() <= self.window).then_some(s.since)
    }

    pub fn is_live(&self, node: NodeId) -> bool {
        if node == self.me {
            return true;
        }
        self.seen
            .lock()
            .ok()
            .and_then(|m| m.get(&node).map(|s| s.at.elapsed() <= self.window))
            .unwrap_or(false)
    }

    /// Wall-clock time `node` was last heard from.
    pub fn last_seen(&self, node: NodeId) -> Option<SystemTime> {
        if node == self.me {
            return Some(SystemTime::now());
        }
        self.seen
            .lock()
            .ok()
            .and_then(|m| m.get(&node).map(|s| s.wall))
    }

    /// How long ago `node` was last heard from (zero for this node).
    pub fn seen_ago(&self, node: NodeId) -> Option<Duration> {
        if node == self.me {
            return Some(Duration::ZERO);
        }
        self.seen
            .lock()
            .ok()
            .and_then(|m| m.get(&node).map(|s| s.at.elapsed()))
    }

    /// How many of `nodes` are live now.
    pub fn count_live<'a>(&self, nodes: impl IntoIterator<Item = &'a NodeId>) -> usize {
        nodes.into_iter().filter(|n| self.is_live(**n)).count()
    }

    pub fn forget(&self, node: NodeId) {
        if let Ok(mut m) = self.seen.lock() {
            m.remove(&node);
        }
        if let Ok(mut m) = self.versions.lock() {
            m.remove(&node);
        }
    }

    /// Records the build `node` said it runs (`None`: it could not say).
    pub fn set_version(&self, node: NodeId, version: Option<String>) {
        if let Ok(mut m) = self.versions.lock() {
            m.insert(
                node,
                PeerVersion {
                    version,
                    asked: Instant::now(),
                },
            );
        }
    }

    /// Whether `node`'s build was never asked, or last asked
    /// `VERSION_REFRESH` ago or more.
    pub fn version_due(&self, node: NodeId) -> bool {
        self.versions.lock().is_ok_and(|m| {
            m.get(&node)
                .is_none_or(|v| v.asked.elapsed() >= VERSION_REFRESH)
        })
    }

    /// The build `node` runs, as it last said (this node's own for itself).
    pub fn version(&self, node: NodeId) -> Option<String> {
        if node == self.me {
            return Some(crate::version::LONG.to_string());
        }
        self.versions
            .lock()
            .ok()
            .and_then(|m| m.get(&node).and_then(|v| v.version.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_gap_restarts_the_live_stretch() {
        let l = Liveness::new(NodeId(1), Duration::from_secs(3));
        l.heard(NodeId(2));
        let first = l.live_since(NodeId(2)).unwrap();
        tokio::time::advance(Duration::from_secs(2)).await;
        l.heard(NodeId(2));
        assert_eq!(
            l.live_since(NodeId(2)),
            Some(first),
            "heard within the window: same stretch"
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(l.live_since(NodeId(2)), None);
        l.heard(NodeId(2));
        assert!(
            l.live_since(NodeId(2)).unwrap() > first,
            "a gap starts a new stretch"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn versions_are_asked_again_after_the_refresh() {
        let l = Liveness::new(NodeId(1), Duration::from_secs(3));
        assert_eq!(l.version(NodeId(1)).as_deref(), Some(crate::version::LONG));
        assert!(l.version_due(NodeId(2)), "never asked");
        assert_eq!(l.version(NodeId(2)), None);
        l.set_version(NodeId(2), Some("0.1.0 (abc1234 2026-12-01 x)".into()));
        assert!(!l.version_due(NodeId(2)));
        assert_eq!(
            l.version(NodeId(2)).as_deref(),
            Some("0.1.0 (abc1234 2026-12-01 x)")
        );
        tokio::time::advance(VERSION_REFRESH).await;
        assert!(l.version_due(NodeId(2)));
        l.set_version(NodeId(2), None);
        assert!(
            !l.version_due(NodeId(2)),
            "an old node is not asked every ping"
        );
        assert_eq!(l.version(NodeId(2)), None);
        l.forget(NodeId(2));
        assert!(l.version_due(NodeId(2)));
    }

    #[tokio::test(start_paused = true)]
    async fn live_within_the_window_only() {
        let l = Liveness::new(NodeId(1), Duration::from_secs(3));
        assert!(l.is_live(NodeId(1)), "self is always live");
        assert!(!l.is_live(NodeId(2)));
        l.heard(NodeId(2));
        assert!(l.is_live(NodeId(2)));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(l.is_live(NodeId(2)));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!l.is_live(NodeId(2)));
        assert!(l.last_seen(NodeId(2)).is_some());
        assert_eq!(l.live_since(NodeId(2)), None);
        assert_eq!(l.count_live(&[NodeId(1), NodeId(2), NodeId(3)]), 1);
    }
}
