//! The state machine on sled: applies committed entries to `ClusterState`,
//! persists the touched records, builds and installs snapshots, and
//! publishes every applied state to the daemon through a watch channel.
//!
//! Invariants: records and `meta` (last applied, membership) are written in
//! one sled batch and fsynced before the responses go out, so after a crash
//! the persisted state is exactly the state after some applied index; the
//! state published is never older than the one persisted.

use std::io;
use std::sync::Arc;

use futures_util::StreamExt;
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{json_err, sled_err};
use crate::history::HistoryEvent;
use crate::state::{ClusterState, RecordKey, Response};
use crate::types::{LogId, Snapshot, SnapshotData, SnapshotMeta, StoredMembership, TypeConfig};

const META: &[u8] = b"meta";
/// Legacy: meta and data in one JSON record (data as a number array).
const CURRENT: &[u8] = b"current";
/// The current snapshot: its meta as JSON, its data as raw bytes.
const CURRENT_META: &[u8] = b"current-meta";
const CURRENT_DATA: &[u8] = b"current-data";

/// The applied state as the daemon sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub state: ClusterState,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
}

/// `meta` record: everything of `Applied` that is not a keyed record.
#[derive(Serialize, Deserialize)]
struct SmMeta {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    cluster_id: Option<String>,
    version: u64,
    #[serde(default)]
    request_seq: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    log_level: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    resolvers: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    retention_ms: u64,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// A snapshot at rest (legacy single-record form).
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// Stores `meta` and `data` as the current snapshot, in one batch.
fn store_snapshot(snap: &sled::Tree, meta: &SnapshotMeta, data: &[u8]) -> io::Result<()> {
    let mut batch = sled::Batch::default();
    batch.insert(CURRENT_META, serde_json::to_vec(meta).map_err(json_err)?);
    batch.insert(CURRENT_DATA, data);
    batch.remove(CURRENT);
    snap.apply_batch(batch).map_err(sled_err)
}

/// The current snapshot, in either stored form.
fn load_snapshot(snap: &sled::Tree) -> io::Result<Option<Snapshot>> {
    if let (Some(meta), Some(data)) = (
        snap.get(CURRENT_META).map_err(sled_err)?,
        snap.get(CURRENT_DATA).map_err(sled_err)?,
    ) {
        return Ok(Some(Snapshot {
            meta: serde_json::from_slice(&meta).map_err(json_err)?,
            snapshot: data.to_vec(),
        }));
    }
    match snap.get(CURRENT).map_err(sled_err)? {
        None => Ok(None),
        Some(v) => {
            let s: StoredSnapshot = serde_json::from_slice(&v).map_err(json_err)?;
            Ok(Some(Snapshot {
                meta: s.meta,
                snapshot: s.data,
            }))
        }
    }
}

fn record_key(k: &RecordKey) -> Vec<u8> {
    match k {
        RecordKey::Meta => META.to_vec(),
        RecordKey::Peer(id) => format!("peer/{id}").into_bytes(),
        RecordKey::Check(id) => format!("check/{id}").into_bytes(),
        RecordKey::Alert(id) => format!("alert/{id}").into_bytes(),
        RecordKey::CheckState(id) => format!("cstate/{id}").into_bytes(),
        RecordKey::Delivery(id) => format!("delivery/{id}").into_bytes(),
        RecordKey::Request(id) => format!("req/{id}").into_bytes(),
        RecordKey::Silence(id) => format!("silence/{id}").into_bytes(),
        RecordKey::Window(id) => format!("window/{id}").into_bytes(),
        RecordKey::History(id, seq) => format!("hist/{id}/{seq:016x}").into_bytes(),
        RecordKey::PastSilence(seq) => format!("psil/{seq:016x}").into_bytes(),
    }
}

fn meta_of(a: &Applied) -> SmMeta {
    SmMeta {
        last_applied: a.last_applied,
        membership: a.membership.clone(),
        cluster_id: a.state.cluster_id.clone(),
        version: a.state.version,
        request_seq: a.state.request_seq,
        log_level: a.state.log_level,
        resolvers: a.state.resolvers.clone(),
        retention_ms: a.state.retention_ms,
    }
}

/// The value stored under `k` in `a`, or `None` when the record is gone.
fn record_value(a: &Applied, k: &RecordKey) -> io::Result<Option<Vec<u8>>> {
    let enc = |v: Result<Vec<u8>, serde_json::Error>| v.map(Some).map_err(json_err);
    match k {
        RecordKey::Meta => enc(serde_json::to_vec(&meta_of(a))),
        RecordKey::Peer(id) => a
            .state
            .peers
            .get(id)
            .map_or(Ok(None), |v| enc(serde_json::to_vec(v))),
        RecordKey::Check(id) => a
            .state
            .checks
            .get(id)
            .map_or(Ok(None), |v| enc(serde_json::to_vec(v))),
        RecordKey::Alert(id) => a
            .state
            .alerts
            .get(id)
            .map_or(Ok(None), |v| enc(serde_json::to_vec(v))),
        RecordKey::CheckState(id) => a
            .state
            .check_states
            .get(id)
            .map_or(Ok(None), |v| enc(serde_json::to_vec(v))),
        RecordKey::Delivery(id) => a
            .state
            .deliveries
            .get(id)
            .map_or(Ok(None), |v| enc(serde_json::to_vec(v))),
        RecordKey::Request(id) => a
            .state
            .requests
            .get(id)
            .map_or(Ok(None), |v| enc(serde_json::to_vec(v))),
        RecordKey::Silence(id) => a
            .state
            .silences
            .get(id)
            .map_or(Ok(None), |v| enc(serde_json::to_vec(v))),
        RecordKey::Window(id) => a
            .state
            .windows
            .get(id)
            .map_or(Ok(None), |v| enc(serde_json::to_vec(v))),
        RecordKey::History(id, seq) => a
            .state
            .history
            .get(id)
            .and_then(|h| h.get(*seq))
            .map_or(Ok(None), |v| enc(serde_json::to_vec(v))),
        RecordKey::PastSilence(seq) => a
            .state
            .past_silences
            .get(seq)
            .map_or(Ok(None), |v| enc(serde_json::to_vec(v))),
    }
}

/// Every record of `a`, for a full rewrite (snapshot install). The
/// destructuring names every field of `ClusterState`, so a new keyed field
/// cannot be added without deciding here how it is persisted.
fn all_keys(a: &Applied) -> Vec<RecordKey> {
    let ClusterState {
        cluster_id: _,
        version: _,
        peers,
        checks,
        alerts,
        check_states,
        deliveries,
        requests,
        request_seq: _,
        silences,
        windows,
        log_level: _,
        resolvers: _,
        history,
        past_silences,
        retention_ms: _,
    } = &a.state;
    std::iter::once(RecordKey::Meta)
        .chain(peers.keys().map(|k| RecordKey::Peer(*k)))
        .chain(checks.keys().map(|k| RecordKey::Check(k.clone())))
        .chain(alerts.keys().map(|k| RecordKey::Alert(k.clone())))
        .chain(
            check_states
                .keys()
                .map(|k| RecordKey::CheckState(k.clone())),
        )
        .chain(deliveries.keys().map(|k| RecordKey::Delivery(k.clone())))
        .chain(requests.keys().map(|k| RecordKey::Request(k.clone())))
        .chain(silences.keys().map(|k| RecordKey::Silence(k.clone())))
        .chain(windows.keys().map(|k| RecordKey::Window(k.clone())))
        .chain(history.iter().flat_map(|(id, h)| {
            h.events
                .iter()
                .map(|e| RecordKey::History(id.clone(), e.seq))
        }))
        .chain(past_silences.keys().map(|k| RecordKey::PastSilence(*k)))
        .collect()
}

/// The state machine store.
pub struct StateMachineStore {
    db: sled::Db,
    sm: sled::Tree,
    snap: sled::Tree,
    current: Arc<Applied>,
    tx: watch::Sender<Arc<Applied>>,
}

impl StateMachineStore {
    pub(super) fn open(db: &sled::Db) -> io::Result<StateMachineStore> {
        let sm = db.open_tree("sm").map_err(sled_err)?;
        let snap = db.open_tree("snapshot").map_err(sled_err)?;
        let current = Arc::new(load(&sm)?);
        let (tx, _) = watch::channel(current.clone());
        Ok(StateMachineStore {
            db: db.clone(),
            sm,
            snap,
            current,
            tx,
        })
    }

    /// Follows every applied state (the current one first).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Applied>> {
        self.tx.subscribe()
    }

    /// The state as last applied.
    pub fn current(&self) -> Arc<Applied> {
        self.current.clone()
    }

    async fn persist(&self, next: &Applied, keys: &[RecordKey]) -> io::Result<()> {
        let mut batch = sled::Batch::default();
        for k in keys {
            match record_value(next, k)? {
                Some(v) => batch.insert(record_key(k), v),
                None => batch.remove(record_key(k)),
            }
        }
        self.sm.apply_batch(batch).map_err(sled_err)?;
        self.db.flush_async().await.map(|_| ()).map_err(sled_err)
    }

    fn publish(&mut self, next: Applied) {
        self.current = Arc::new(next);
        self.tx.send_replace(self.current.clone());
    }
}

/// `QU_FAILPOINT=slow-apply` (tests): every apply waits
/// `QU_FAILPOINT_HOLD_MS` (default 1 s) first.
fn apply_delay() -> Option<std::time::Duration> {
    static DELAY: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| {
        (std::env::var("QU_FAILPOINT").as_deref() == Ok("slow-apply")).then(|| {
            let ms = std::env::var("QU_FAILPOINT_HOLD_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000);
            std::time::Duration::from_millis(ms)
        })
    })
}

/// Reads the persisted state.
fn load(sm: &sled::Tree) -> io::Result<Applied> {
    let mut a = Applied::default();
    for kv in sm.iter() {
        let (k, v) = kv.map_err(sled_err)?;
        let key = String::from_utf8_lossy(&k).into_owned();
        if key.as_bytes() == META {
            let m: SmMeta = serde_json::from_slice(&v).map_err(json_err)?;
            a.last_applied = m.last_applied;
            a.membership = m.membership;
            a.state.cluster_id = m.cluster_id;
            a.state.version = m.version;
            a.state.request_seq = m.request_seq;
            a.state.log_level = m.log_level;
            a.state.resolvers = m.resolvers;
            a.state.retention_ms = m.retention_ms;
        } else if let Some(id) = key.strip_prefix("peer/") {
            let node = id.parse().map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad peer key {key}: {e}"),
                )
            })?;
            a.state
                .peers
                .make_mut()
                .insert(node, serde_json::from_slice(&v).map_err(json_err)?);
        } else if let Some(id) = key.strip_prefix("check/") {
            a.state.checks.insert(
                id.to_string(),
                serde_json::from_slice(&v).map_err(json_err)?,
            );
        } else if let Some(id) = key.strip_prefix("alert/") {
            a.state.alerts.make_mut().insert(
                id.to_string(),
                serde_json::from_slice(&v).map_err(json_err)?,
            );
        } else if let Some(id) = key.strip_prefix("delivery/") {
            a.state.deliveries.insert(
                id.to_string(),
                serde_json::from_slice(&v).map_err(json_err)?,
            );
        } else if let Some(id) = key.strip_prefix("cstate/") {
            a.state.check_states.insert(
                id.to_string(),
                serde_json::from_slice(&v).map_err(json_err)?,
            );
        } else if let Some(id) = key.strip_prefix("silence/") {
            a.state.silences.make_mut().insert(
                id.to_string(),
                serde_json::from_slice(&v).map_err(json_err)?,
            );
        } else if let Some(id) = key.strip_prefix("window/") {
            a.state.windows.make_mut().insert(
                id.to_string(),
                serde_json::from_slice(&v).map_err(json_err)?,
            );
        } else if let Some(id) = key.strip_prefix("req/") {
            a.state.requests.insert(
                id.to_string(),
                serde_json::from_slice(&v).map_err(json_err)?,
            );
        } else if let Some(rest) = key.strip_prefix("hist/") {
            let Some((id, _)) = rest.rsplit_once('/') else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad history key {key}"),
                ));
            };
            let event: HistoryEvent = serde_json::from_slice(&v).map_err(json_err)?;
            a.state
                .history
                .entry(id.to_string())
                .or_default()
                .make_mut()
                .events
                .push(event);
        } else if let Some(seq) = key.strip_prefix("psil/") {
            let seq = u64::from_str_radix(seq, 16).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad silence key {key}: {e}"),
                )
            })?;
            a.state
                .past_silences
                .insert(seq, serde_json::from_slice(&v).map_err(json_err)?);
        }
    }
    // Keys sort by seq within a check; sorting again costs little and
    // keeps the invariant whatever the key order.
    let ids: Vec<String> = a.state.history.keys().cloned().collect();
    for id in ids {
        if let Some(h) = a.state.history.get_mut(&id) {
            h.make_mut().events.sort_by_key(|e| e.seq);
        }
    }
    Ok(a)
}

/// Builds snapshots from the state as applied when the builder was made.
pub struct SnapshotBuilder {
    db: sled::Db,
    snap: sled::Tree,
    applied: Arc<Applied>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let data = serde_json::to_vec(&*self.applied).map_err(json_err)?;
        let meta = SnapshotMeta {
            last_log_id: self.applied.last_applied,
            last_membership: self.applied.membership.clone(),
        };
        store_snapshot(&self.snap, &meta, &data)?;
        self.db.flush_async().await.map_err(sled_err)?;
        Ok(Snapshot {
            meta,
            snapshot: data,
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok((self.current.last_applied, self.current.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: futures_util::Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>>
            + Unpin
            + Send,
    {
        let mut next = (*self.current).clone();
        let mut touched = vec![RecordKey::Meta];
        let mut replies = Vec::new();
        if let Some(delay) = apply_delay() {
            // Test hook (QU_FAILPOINT=slow-apply): this node applies late,
            // as a loaded follower would.
            tokio::time::sleep(delay).await;
        }
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            next.last_applied = Some(entry.log_id());
            let response = match &entry.payload {
                EntryPayload::Blank => Response::Internal,
                EntryPayload::Normal(req) => {
                    let (resp, keys) = next.state.apply(req);
                    touched.extend(keys);
                    resp
                }
                EntryPayload::Membership(m) => {
                    next.membership = StoredMembership::new(Some(entry.log_id()), m.clone());
                    Response::Internal
                }
            };
            if let Some(r) = responder {
                replies.push((r, response));
            }
        }
        touched.sort();
        touched.dedup();
        self.persist(&next, &touched).await?;
        self.publish(next);
        for (r, resp) in replies {
            r.send(resp);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            snap: self.snap.clone(),
            applied: self.current.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        let mut next: Applied = serde_json::from_slice(&snapshot).map_err(json_err)?;
        next.last_applied = meta.last_log_id;
        next.membership = meta.last_membership.clone();
        // Replace every record, dropping what the snapshot does not have,
        // in one batch: a crash leaves the old state or the new, never none.
        let mut batch = sled::Batch::default();
        for k in self.sm.iter().keys() {
            batch.remove(k.map_err(sled_err)?);
        }
        for k in all_keys(&next) {
            if let Some(v) = record_value(&next, &k)? {
                batch.insert(record_key(&k), v);
            }
        }
        self.sm.apply_batch(batch).map_err(sled_err)?;
        self.db.flush_async().await.map_err(sled_err)?;
        store_snapshot(&self.snap, meta, &snapshot)?;
        self.db.flush_async().await.map_err(sled_err)?;
        self.publish(next);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        load_snapshot(&self.snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(index: u64) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: Some(openraft::testing::log_id::<TypeConfig>(
                1,
                crate::NodeId(1),
                index,
            )),
            last_membership: StoredMembership::default(),
        }
    }

    #[test]
    fn snapshots_are_stored_raw_and_the_legacy_form_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let snap = db.open_tree("snapshot").unwrap();
        assert!(load_snapshot(&snap).unwrap().is_none());
        // Written by an older qu: one JSON record.
        let legacy = StoredSnapshot {
            meta: meta(5),
            data: b"{\"old\":1}".to_vec(),
        };
        snap.insert(CURRENT, serde_json::to_vec(&legacy).unwrap())
            .unwrap();
        let s = load_snapshot(&snap).unwrap().unwrap();
        assert_eq!((s.meta, s.snapshot), (meta(5), b"{\"old\":1}".to_vec()));
        // A new snapshot replaces it, stored as raw bytes.
        store_snapshot(&snap, &meta(9), b"{\"new\":2}").unwrap();
        assert!(snap.get(CURRENT).unwrap().is_none());
        assert_eq!(&*snap.get(CURRENT_DATA).unwrap().unwrap(), b"{\"new\":2}");
        let s = load_snapshot(&snap).unwrap().unwrap();
        assert_eq!((s.meta, s.snapshot), (meta(9), b"{\"new\":2}".to_vec()));
    }
}
