//! The replicated state machine of SPEC §6: commands, their validation, and
//! a deterministic `apply`.
//!
//! Invariants:
//! - `apply` is a pure function of (state, request): every node that applies
//!   the same log reaches the same state.
//! - A refused command changes nothing, version included.
//! - `version` grows by exactly 1 per applied configuration mutation and
//!   never decreases; a no-op (re-adding the identical peer) leaves it.
//! - `validate` is what the leader runs before proposing; `apply` runs it
//!   again, so a command that raced another is still refused cleanly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alert_kinds::PageEvent;
use crate::history::{self, Histories, HistoryKind, PastSilence};
use crate::model::{
    find_by_id_or_name, pages, Alert, Check, CheckState, Delivery, DeliveryStatus, Health, Peer,
    TransitionRecord, ValidationError,
};
use crate::mute::{muted_by, page_at_end, Maintenance, Silence};
use crate::patch::{patched, Patch};
use crate::NodeId;

/// The whole replicated state. Cloning it (as every apply does, to publish
/// the new one) costs a reference count per map. The maps that grow with
/// the checks (and the remembered requests, ended silences) are
/// `Records`: a change copies the O(log n) nodes on one key's path, never
/// the map. The small ones (peers, alerts, silences, windows) are
/// `Shared`: a change copies that one map.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    /// Set by the first entry of the cluster; a node never joins another.
    #[serde(default)]
    pub cluster_id: Option<String>,
    pub version: u64,
    #[serde(default)]
    pub peers: Shared<BTreeMap<NodeId, Peer>>,
    #[serde(default)]
    pub checks: Records<String, Check>,
    #[serde(default)]
    pub alerts: Shared<BTreeMap<String, Alert>>,
    #[serde(default)]
    pub check_states: Records<String, CheckState>,
    /// The alert delivery ledger (SPEC §10).
    #[serde(default)]
    pub deliveries: Records<String, Delivery>,
    /// Client sessions (Raft thesis §6.3): the outcome of recently applied
    /// configuration requests by request id, so a retried request gets its
    /// original answer instead of being applied twice. Bounded to
    /// `MAX_REMEMBERED_REQUESTS`, oldest first; in snapshots like the rest.
    #[serde(default)]
    pub requests: Records<String, SeenRequest>,
    /// Sequence of the last remembered request (orders `requests`).
    #[serde(default)]
    pub request_seq: u64,
    /// Active silences (ad hoc, and open maintenance windows), by id.
    #[serde(default)]
    pub silences: Shared<BTreeMap<String, Silence>>,
    /// Maintenance windows, by id.
    #[serde(default)]
    pub windows: Shared<BTreeMap<String, Maintenance>>,
    /// The log level every member was seen to read, committed once (0 or
    /// 1: never raised). Commands up to it need no asking of members, so
    /// a member down later blocks none of them.
    #[serde(default)]
    pub log_level: u32,
    /// DNS servers every node's probes resolve through when a check names
    /// none (`qu cluster resolvers`; level 3). Empty: each node's system
    /// resolver.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolvers: Vec<String>,
    /// Each check's history (flips, pauses, restarts), by check id.
    /// Older releases ignore it; a snapshot from one carries none.
    #[serde(default)]
    pub history: Histories,
    /// Silences that ended, by sequence number (to exclude their time).
    #[serde(default)]
    pub past_silences: Records<u64, PastSilence>,
    /// How long history is kept (`qu cluster retention`; level 4); 0: the
    /// default (`history::DEFAULT_RETENTION_MS`).
    #[serde(default, skip_serializing_if = "is_zero_ms")]
    pub retention_ms: u64,
}

fn is_zero_ms(v: &u64) -> bool {
    *v == 0
}

/// How many applied request ids the state remembers.
pub const MAX_REMEMBERED_REQUESTS: usize = 10_000;

/// A request id already applied, and what it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenRequest {
    pub seq: u64,
    pub response: Response,
}

/// A map shared structurally between successive states: imbl's persistent
/// B+tree (nodes of 16 behind reference counts). A clone is O(1); an
/// insert, change or removal copies the nodes on that key's path
/// (O(log n)) if another state still holds them. Iterates in key order and
/// (de)serializes exactly as a `BTreeMap` (a map in key order), so
/// snapshots and persisted records are unchanged.
pub type Records<K, V> = imbl::OrdMap<K, V>;

/// A value shared between successive states, copied on first write
/// (`make_mut`). Reads go through `Deref`; (de)serializes as the value.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Shared<T>(std::sync::Arc<T>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Clone> Shared<T> {
    /// The value, to change: copied first if another state shares it.
    pub fn make_mut(&mut self) -> &mut T {
        std::sync::Arc::make_mut(&mut self.0)
    }
}

impl<T> From<T> for Shared<T> {
    fn from(v: T) -> Self {
        Shared(std::sync::Arc::new(v))
    }
}

impl<T: Serialize> Serialize for Shared<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.as_ref().serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Shared<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Shared::from)
    }
}

/// One check's flip inside `Command::Transitions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flip {
    pub check_id: String,
    pub record: TransitionRecord,
}

/// A command, its optional compare-and-set guard, and the id the node that
/// took it from the CLI gave it (so a retry is answered, not re-applied).
/// A node one release older ignores `request_id` (serde skips unknown
/// fields) and applies the command as before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Refuse unless the state's version is exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// When the leader proposed it (ms since the epoch): dates the history
    /// events of configuration changes (added, paused, resumed, restarted).
    /// Absent in entries of older releases, whose changes then leave no
    /// event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    pub command: Command,
}

impl Request {
    pub fn new(command: impl Into<Command>) -> Request {
        Request {
            if_version: None,
            request_id: None,
            at_ms: None,
            command: command.into(),
        }
    }
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.command.describe())
    }
}

/// Every mutation of the replicated state: a configuration change (an
/// operator's; bumps the version) or a record (written by the leader's own
/// duties: flips, delivery outcomes, pruning; the version stays).
///
/// Serialized exactly as the flat enum before the split
/// (`{"op": "add_check", …}`): logs and snapshots written by either
/// release decode alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
// A command lives for one proposal; boxing the configuration variant would
// save a few hundred bytes per proposal and change nothing on the wire.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    Config(ConfigCommand),
    Record(RecordCommand),
}

/// A configuration change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ConfigCommand {
    /// The first entry of a new cluster: names it and records its founder.
    Bootstrap {
        cluster_id: String,
        founder: Peer,
    },
    AddPeer {
        peer: Peer,
    },
    RemovePeer {
        node_id: NodeId,
    },
    AddCheck {
        check: Check,
    },
    RemoveCheck {
        id_or_name: String,
    },
    AddAlert {
        alert: Alert,
    },
    /// `force` detaches the alert from the checks that use it.
    RemoveAlert {
        id_or_name: String,
        force: bool,
    },
    /// Pauses (probed nowhere, never pages) or resumes a check; a resumed
    /// check starts from `unknown`. Level 2: a node one release older cannot
    /// decode it, so the leader proposes it only once every member runs
    /// level 2 (`Command::level`).
    SetPaused {
        id_or_name: String,
        paused: bool,
    },
    /// Changes the given fields of a check (level 2). A new target
    /// restarts its state at unknown; anything else keeps state and
    /// history.
    EditCheck {
        id_or_name: String,
        patch: Patch,
    },
    /// Changes the given fields of an alert, including `disabled`,
    /// `default` and `repeat_ms` (level 2).
    EditAlert {
        id_or_name: String,
        patch: Patch,
    },
    /// Mutes the checks it covers until it ends (level 2).
    AddSilence {
        silence: Silence,
    },
    /// Ends a silence early (level 2); `at_ms` is when, by the clock of the
    /// node that took the request (it dates a page owed at the end).
    RemoveSilence {
        id: String,
        at_ms: u64,
    },
    /// A recurring maintenance window (level 2).
    AddWindow {
        window: Maintenance,
    },
    /// Removes a window, ending its open occurrence (level 2).
    RemoveWindow {
        id_or_name: String,
        at_ms: u64,
    },
    /// The cluster's DNS servers for probes; empty clears them (level 3).
    SetResolvers {
        resolvers: Vec<String>,
    },
    /// How long check history is kept (level 4).
    SetRetention {
        retention_ms: u64,
    },
}

/// The log format level this release writes and reads. A command of level
/// N may be proposed only when every member runs level N or later (an older
/// node could not decode it and would stop applying the log).
pub const LOG_LEVEL: u32 = 5;

/// A record the leader's duties write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RecordCommand {
    /// A check's state flips (decided by the leader's aggregator).
    Transition {
        check_id: String,
        record: TransitionRecord,
    },
    /// Several checks' flips from one evaluation, as one entry (a round in
    /// which thousands of checks flip is a handful of entries, not
    /// thousands). Each flip stands alone: a stale one is skipped, the
    /// others apply.
    Transitions { flips: Vec<Flip> },
    /// The leader sent (or gave up on) a delivery.
    DeliveryOutcome { id: String, status: DeliveryStatus },
    /// Drops finished deliveries older than `before_ms`.
    PruneDeliveries { before_ms: u64 },
    /// Silences whose end the leader's clock reached (level 2). Each stands
    /// alone: one already gone is skipped.
    EndSilences { ids: Vec<String>, at_ms: u64 },
    /// A maintenance window's occurrence starting at `start_ms` opens, as
    /// a silence (level 2).
    OpenWindow { window_id: String, start_ms: u64 },
    /// Every member was seen to read `level` (level 2; proposed only
    /// after asking each): from now on, commands of that level need no
    /// asking.
    RaiseLevel { level: u32 },
    /// Re-notification `n` of a check that stays DOWN, to one alert with
    /// `--repeat` (level 2).
    Repeat {
        check_id: String,
        alert_id: String,
        n: u64,
        at_ms: u64,
    },
    /// Drops history older than `before_ms`, each check keeping the state
    /// it was in (level 4).
    PruneHistory { before_ms: u64 },
    /// A delayed page (`--after`) is due: the check was still DOWN when
    /// its delay ran out, so it may be sent, and its RECOVERED will be
    /// (level 5). Refused once the check recovered: the log orders a
    /// release and a recovery, so exactly one of them wins.
    ReleaseDelivery { id: String, at_ms: u64 },
}

impl From<ConfigCommand> for Command {
    fn from(c: ConfigCommand) -> Command {
        Command::Config(c)
    }
}

impl From<RecordCommand> for Command {
    fn from(r: RecordCommand) -> Command {
        Command::Record(r)
    }
}

impl Command {
    /// The lowest log level that can decode this command.
    pub fn level(&self) -> u32 {
        match self {
            Command::Config(ConfigCommand::AddAlert { alert }) => alert.level(),
            Command::Config(ConfigCommand::EditAlert { patch, .. })
                if crate::alert_kinds::ALERT_FIELDS
                    .iter()
                    .any(|f| patch.contains(f)) =>
            {
                crate::alert_kinds::LEVEL
            }
            Command::Record(RecordCommand::ReleaseDelivery { .. }) => crate::alert_kinds::LEVEL,
            Command::Config(ConfigCommand::SetRetention { .. })
            | Command::Record(RecordCommand::PruneHistory { .. }) => 4,
            Command::Config(ConfigCommand::SetResolvers { .. }) => 3,
            Command::Config(ConfigCommand::AddCheck { check }) => check.level(),
            Command::Config(ConfigCommand::EditCheck { patch, .. }) => {
                crate::kinds::patch_level(patch)
            }
            Command::Config(
                ConfigCommand::SetPaused { .. }
                | ConfigCommand::EditAlert { .. }
                | ConfigCommand::AddSilence { .. }
                | ConfigCommand::RemoveSilence { .. }
                | ConfigCommand::AddWindow { .. }
                | ConfigCommand::RemoveWindow { .. },
            )
            | Command::Record(
                RecordCommand::EndSilences { .. }
                | RecordCommand::OpenWindow { .. }
                | RecordCommand::Repeat { .. }
                | RecordCommand::RaiseLevel { .. },
            ) => 2,
            Command::Record(RecordCommand::DeliveryOutcome {
                status: DeliveryStatus::Skipped { .. } | DeliveryStatus::Silenced { .. },
                ..
            }) => 2,
            _ => 1,
        }
    }

    /// Whether this is a configuration change (may be proposed on behalf
    /// of an operator) rather than a record of the leader's own duties.
    pub fn is_configuration(&self) -> bool {
        matches!(self, Command::Config(_))
    }

    /// A short description for logs (no secrets).
    pub fn describe(&self) -> String {
        match self {
            Command::Config(c) => match c {
                ConfigCommand::Bootstrap {
                    cluster_id,
                    founder,
                } => format!("bootstrap cluster {cluster_id} with {}", founder.node_id),
                ConfigCommand::AddPeer { peer } => format!("add peer {}", peer.node_id),
                ConfigCommand::RemovePeer { node_id } => format!("remove peer {node_id}"),
                ConfigCommand::AddCheck { check } => format!("add check {}", check.name),
                ConfigCommand::RemoveCheck { id_or_name } => format!("remove check {id_or_name}"),
                ConfigCommand::AddAlert { alert } => format!("add alert {}", alert.name),
                ConfigCommand::RemoveAlert { id_or_name, .. } => {
                    format!("remove alert {id_or_name}")
                }
                ConfigCommand::SetPaused { id_or_name, paused } => format!(
                    "{} check {id_or_name}",
                    if *paused { "pause" } else { "resume" }
                ),
                ConfigCommand::EditCheck { id_or_name, patch } => {
                    format!("edit check {id_or_name} ({})", patch.fields().join(", "))
                }
                ConfigCommand::EditAlert { id_or_name, patch } => {
                    format!("edit alert {id_or_name} ({})", patch.fields().join(", "))
                }
                ConfigCommand::AddSilence { silence } => format!("add silence {}", silence.id),
                ConfigCommand::RemoveSilence { id, .. } => format!("remove silence {id}"),
                ConfigCommand::AddWindow { window } => {
                    format!("add maintenance window {}", window.name)
                }
                ConfigCommand::RemoveWindow { id_or_name, .. } => {
                    format!("remove maintenance window {id_or_name}")
                }
                ConfigCommand::SetRetention { retention_ms } => {
                    format!("keep history {}d", retention_ms / 86_400_000)
                }
                ConfigCommand::SetResolvers { resolvers } if resolvers.is_empty() => {
                    "clear the cluster's DNS servers".to_string()
                }
                ConfigCommand::SetResolvers { resolvers } => {
                    format!("set the cluster's DNS servers to {}", resolvers.join(", "))
                }
            },
            Command::Record(r) => match r {
                RecordCommand::Transition { check_id, record } => {
                    format!("check {check_id} {} -> {}", record.from, record.to)
                }
                RecordCommand::Transitions { flips } => {
                    format!("{} check state flip(s)", flips.len())
                }
                RecordCommand::DeliveryOutcome { id, .. } => format!("delivery {id} outcome"),
                RecordCommand::PruneDeliveries { before_ms } => {
                    format!("prune deliveries before {before_ms}")
                }
                RecordCommand::EndSilences { ids, .. } => {
                    format!("end silence(s) {}", ids.join(", "))
                }
                RecordCommand::OpenWindow {
                    window_id,
                    start_ms,
                } => format!("open maintenance window {window_id} at {start_ms}"),
                RecordCommand::RaiseLevel { level } => format!("raise the log level to {level}"),
                RecordCommand::PruneHistory { before_ms } => {
                    format!("prune history before {before_ms}")
                }
                RecordCommand::ReleaseDelivery { id, .. } => {
                    format!("release delayed delivery {id}")
                }
                RecordCommand::Repeat {
                    check_id,
                    alert_id,
                    n,
                    ..
                } => format!("repeat {n} of check {check_id} to alert {alert_id}"),
            },
        }
    }
}

/// One page for `record_page` to put in the ledger.
struct Page<'a> {
    check_id: &'a str,
    alert_id: &'a str,
    /// The delivery id (the receivers' idempotency key).
    id: String,
    event: PageEvent,
    transition: &'a TransitionRecord,
    created_ms: u64,
    note: &'a str,
    down_since_ms: Option<u64>,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    #[error("version is {actual}, not {expected} (--if-version): someone else changed the configuration; re-read it and retry")]
    VersionMismatch { expected: u64, actual: u64 },
    #[error("{0}")]
    Invalid(ValidationError),
}

impl From<ValidationError> for Refusal {
    fn from(e: ValidationError) -> Self {
        Refusal::Invalid(e)
    }
}

/// The outcome of applying one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Response {
    /// The state changed; `version` is the new version.
    Applied { version: u64, summary: String },
    /// Nothing to change (identical peer re-added); `version` is unchanged.
    Unchanged { version: u64, summary: String },
    /// Refused; nothing changed.
    Refused { version: u64, refusal: Refusal },
    /// A Raft-internal entry (blank or membership) was applied.
    Internal,
}

/// Which persisted record an apply touched (for storage write-back).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecordKey {
    Meta,
    Peer(NodeId),
    Check(String),
    Alert(String),
    CheckState(String),
    Delivery(String),
    Request(String),
    Silence(String),
    Window(String),
    /// One event of a check's history: (check id, seq).
    History(String, u64),
    PastSilence(u64),
}

/// Fields of a check no edit may touch.
pub const CHECK_FIXED: &[&str] = &["id", "type", "paused"];
/// Fields of an alert no edit may touch.
const ALERT_FIXED: &[&str] = &["id", "type"];

impl ClusterState {
    /// A check's uptime over `[from_ms, to_ms)` from its committed history
    /// and silences: the same on every node that applied the same log. A
    /// check without history (added before history was kept) counts from
    /// its last flip.
    pub fn uptime_of(&self, check_id: &str, from_ms: u64, to_ms: u64) -> history::Uptime {
        let spans = history::silenced_spans(
            self.past_silences.values(),
            self.silences.values(),
            check_id,
            to_ms,
        );
        match self.history.get(check_id) {
            Some(h) if !h.events.is_empty() => history::uptime(&h.events, &spans, from_ms, to_ms),
            _ => {
                let st = self.check_states.get(check_id);
                let paused = self.checks.get(check_id).is_some_and(|c| c.paused);
                let events: Vec<history::HistoryEvent> = st
                    .and_then(|st| st.since_ms.map(|at| (at, st.health)))
                    .map(|(at_ms, health)| history::HistoryEvent {
                        seq: 0,
                        at_ms,
                        what: HistoryKind::Baseline { health, paused },
                    })
                    .into_iter()
                    .collect();
                history::uptime(&events, &spans, from_ms, to_ms)
            }
        }
    }

    /// The history retention in force.
    pub fn retention(&self) -> u64 {
        if self.retention_ms == 0 {
            history::DEFAULT_RETENTION_MS
        } else {
            self.retention_ms
        }
    }

    /// Appends one event to a check's history.
    fn record_history(
        &mut self,
        check_id: &str,
        at_ms: u64,
        what: HistoryKind,
        touched: &mut Vec<RecordKey>,
    ) {
        let h = self
            .history
            .entry(check_id.to_string())
            .or_default()
            .make_mut();
        let changed = h.push(at_ms, what);
        let key = |seq| RecordKey::History(check_id.to_string(), seq);
        touched.extend(changed.written.into_iter().chain(changed.removed).map(key));
    }

    /// Keeps an ended silence (its real span) for uptime, within the cap.
    fn remember_silence(
        &mut self,
        s: &crate::mute::Silence,
        at_ms: u64,
        touched: &mut Vec<RecordKey>,
    ) {
        let past = &mut self.past_silences;
        let seq = past.keys().next_back().map_or(0, |k| k + 1);
        past.insert(
            seq,
            PastSilence {
                id: s.id.clone(),
                checks: s.checks.clone(),
                all: s.all,
                start_ms: s.start_ms,
                end_ms: at_ms.min(s.end_ms).max(s.start_ms),
            },
        );
        touched.push(RecordKey::PastSilence(seq));
        while past.len() > history::MAX_PAST_SILENCES {
            let Some(k) = past.get_min().map(|(k, _)| *k) else {
                break;
            };
            past.remove(&k);
            touched.push(RecordKey::PastSilence(k));
        }
    }

    /// Whether `PruneHistory { before_ms }` would change anything.
    pub fn history_needs_prune(&self, before_ms: u64) -> bool {
        self.history.values().any(|h| h.needs_prune(before_ms))
            || self
                .past_silences
                .values()
                .next()
                .is_some_and(|s| s.end_ms < before_ms)
    }

    /// Prunes every check's history and the ended silences before
    /// `before_ms`; returns how many checks' histories changed.
    fn prune_history(&mut self, before_ms: u64, touched: &mut Vec<RecordKey>) -> usize {
        let due: Vec<String> = self
            .history
            .iter()
            .filter(|(_, h)| h.needs_prune(before_ms))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &due {
            if let Some(h) = self.history.get_mut(id) {
                let changed = h.make_mut().prune(before_ms);
                let key = |seq| RecordKey::History(id.clone(), seq);
                touched.extend(changed.written.into_iter().chain(changed.removed).map(key));
            }
        }
        let old: Vec<u64> = self
            .past_silences
            .iter()
            .filter(|(_, s)| s.end_ms < before_ms)
            .map(|(k, _)| *k)
            .collect();
        if !old.is_empty() {
            let past = &mut self.past_silences;
            for k in old {
                past.remove(&k);
                touched.push(RecordKey::PastSilence(k));
            }
        }
        due.len()
    }

    /// Whether one flip may apply: the check exists and is in `from`.
    fn validate_flip(&self, check_id: &str, record: &TransitionRecord) -> Result<(), Refusal> {
        let current = self
            .check_states
            .get(check_id)
            .map(|s| s.health)
            .unwrap_or_default();
        match self.checks.get(check_id) {
            None => {
                return Err(ValidationError::new(
                    "check",
                    format!("check {check_id} no longer exists"),
                )
                .into())
            }
            // A flip evaluated before the pause was applied.
            Some(c) if c.paused => {
                return Err(
                    ValidationError::new("check", format!("check {check_id} is paused")).into(),
                )
            }
            Some(_) => {}
        }
        if current != record.from || record.from == record.to {
            return Err(ValidationError::new(
                "transition",
                format!(
                    "stale transition {} -> {} (the check is {current})",
                    record.from, record.to
                ),
            )
            .into());
        }
        Ok(())
    }

    /// Applies one validated flip: the check's state, and a delivery per
    /// alert when it pages (pending; or settled at once as skipped for a
    /// disabled alert, or silenced while a silence covers the check).
    fn apply_flip(
        &mut self,
        check_id: &str,
        record: &TransitionRecord,
        touched: &mut Vec<RecordKey>,
    ) {
        let muted = muted_by(&self.silences, check_id).is_some();
        let (flips, down_since) = {
            let st = self.check_states.entry(check_id.to_string()).or_default();
            let down_since = (st.health == Health::Down).then_some(st.since_ms).flatten();
            st.health = record.to;
            st.since_ms = Some(record.at_ms);
            st.flips += 1;
            st.last = Some(record.clone());
            st.repeats.clear();
            st.note = None;
            if !muted {
                st.notified = Some(record.to);
            }
            (st.flips, down_since)
        };
        touched.push(RecordKey::CheckState(check_id.to_string()));
        self.record_history(check_id, record.at_ms, HistoryKind::flip(record), touched);
        if pages(record.from, record.to) {
            let alerts = self
                .checks
                .get(check_id)
                .map(|c| c.alerts.clone())
                .unwrap_or_default();
            let recovered = record.to != Health::Down;
            for alert_id in &alerts {
                // The DOWN this RECOVERED ends was flip `flips - 1`.
                if recovered
                    && !self.recovery_pages(
                        check_id,
                        alert_id,
                        flips - 1,
                        down_since,
                        record.at_ms,
                        touched,
                    )
                {
                    continue;
                }
                self.record_page(
                    Page {
                        check_id,
                        alert_id,
                        id: format!("{check_id}-{flips}-{alert_id}"),
                        event: if recovered {
                            PageEvent::Recovered
                        } else {
                            PageEvent::Down
                        },
                        transition: record,
                        created_ms: record.at_ms,
                        note: "",
                        down_since_ms: down_since.filter(|_| recovered),
                    },
                    touched,
                );
            }
        }
    }

    /// The page of flip `down_flip` of `check_id` to `alert_id` (made at
    /// the flip, or when a silence over it ended), if the ledger still
    /// holds it.
    fn down_page(&self, check_id: &str, down_flip: u64, alert_id: &str) -> Option<&Delivery> {
        let at_flip = format!("{check_id}-{down_flip}-{alert_id}");
        self.deliveries
            .get(&format!("{at_flip}-end"))
            .or_else(|| self.deliveries.get(&at_flip))
            .filter(|d| d.transition.to == Health::Down)
    }

    /// Whether a RECOVERED of `check_id` goes to `alert_id` (`--after`: only
    /// if the DOWN did). A DOWN still waiting out its delay is settled as
    /// skipped: the check came back in time, and nobody hears of it.
    fn recovery_pages(
        &mut self,
        check_id: &str,
        alert_id: &str,
        down_flip: u64,
        down_since: Option<u64>,
        at_ms: u64,
        touched: &mut Vec<RecordKey>,
    ) -> bool {
        let Some(after) = self.alerts.get(alert_id).and_then(|a| a.after_ms) else {
            return true;
        };
        let Some(down) = self.down_page(check_id, down_flip, alert_id) else {
            // No DOWN on record (the alert was attached or delayed mid-outage).
            return down_since.is_some_and(|s| at_ms.saturating_sub(s) >= after);
        };
        if !(down.is_pending() && down.awaits_release()) {
            return down.released || down.not_before_ms.is_none();
        }
        let id = down.id.clone();
        let lasted = at_ms.saturating_sub(down_since.unwrap_or(down.transition.at_ms));
        if let Some(d) = self.deliveries.get_mut(&id) {
            d.status = DeliveryStatus::Skipped {
                at_ms,
                reason: format!(
                    "recovered after {}, within --after {}",
                    crate::alert_kinds::short_duration(lasted),
                    crate::alert_kinds::short_duration(after)
                ),
            };
        }
        touched.push(RecordKey::Delivery(id));
        false
    }

    /// Whether repeats of `check_id`'s outage to `alert_id` may go out at
    /// `at_ms`: the alert gets repeats, and with `--after` its DOWN went
    /// out first (or, with none on record, the delay has passed).
    pub fn repeat_allowed(&self, check_id: &str, alert_id: &str, at_ms: u64) -> bool {
        let Some(alert) = self.alerts.get(alert_id) else {
            return false;
        };
        if !alert.gets(PageEvent::Repeat) {
            return false;
        }
        let Some(after) = alert.after_ms else {
            return true;
        };
        let Some(st) = self.check_states.get(check_id) else {
            return false;
        };
        match self.down_page(check_id, st.flips, alert_id) {
            Some(d) => d.released || d.not_before_ms.is_none(),
            None => st
                .since_ms
                .is_some_and(|s| at_ms.saturating_sub(s) >= after),
        }
    }

    /// Records one page in the ledger, if its alert gets its event
    /// (`--on`): pending (delayed, for a DOWN to an alert with `--after`),
    /// or settled at once when the alert is disabled or the check muted.
    fn record_page(&mut self, page: Page<'_>, touched: &mut Vec<RecordKey>) {
        let Page {
            check_id,
            alert_id,
            id,
            event,
            transition,
            created_ms,
            note,
            down_since_ms,
        } = page;
        let Some(check) = self.checks.get(check_id) else {
            return;
        };
        let alert = self.alerts.get(alert_id);
        if alert.is_some_and(|a| !a.gets(event)) {
            return;
        }
        let status = if alert.is_some_and(|a| a.disabled) {
            DeliveryStatus::Skipped {
                at_ms: created_ms,
                reason: "alert disabled".into(),
            }
        } else if let Some(s) = muted_by(&self.silences, check_id) {
            DeliveryStatus::Silenced {
                at_ms: created_ms,
                silence: s.id.clone(),
            }
        } else {
            DeliveryStatus::Pending
        };
        let not_before_ms = alert
            .and_then(|a| a.after_ms)
            .filter(|_| event == PageEvent::Down && status == DeliveryStatus::Pending)
            .map(|after| transition.at_ms.saturating_add(after));
        let delivery = Delivery {
            id: id.clone(),
            check_id: check_id.to_string(),
            check_name: check.name.clone(),
            check_type: check.kind.type_name().into(),
            target: check.kind.target(),
            alert_id: alert_id.to_string(),
            alert_name: alert.map(|a| a.name.clone()).unwrap_or_default(),
            transition: transition.clone(),
            created_ms,
            status,
            note: note.to_string(),
            not_before_ms,
            released: false,
            down_since_ms,
        };
        self.deliveries.insert(id.clone(), delivery);
        touched.push(RecordKey::Delivery(id));
    }

    /// Restarts a check's state at unknown, keeping its flip count (so
    /// delivery ids stay unique) and saying why.
    fn restart_state(
        &mut self,
        check_id: &str,
        note: Option<String>,
        touched: &mut Vec<RecordKey>,
    ) {
        let Some(st) = self.check_states.get_mut(check_id) else {
            if note.is_none() {
                return;
            }
            self.check_states.insert(
                check_id.to_string(),
                CheckState {
                    note,
                    ..CheckState::default()
                },
            );
            touched.push(RecordKey::CheckState(check_id.to_string()));
            return;
        };
        *st = CheckState {
            flips: st.flips,
            note,
            ..CheckState::default()
        };
        touched.push(RecordKey::CheckState(check_id.to_string()));
    }

    /// Counts the repeats that fell inside a silence as done, so its end
    /// pages once, and the repeats go on at the outage's own schedule.
    fn skip_repeats_due(&mut self, check_id: &str, at_ms: u64, touched: &mut Vec<RecordKey>) {
        let Some(check) = self.checks.get(check_id) else {
            return;
        };
        let every: Vec<(String, u64)> = check
            .alerts
            .iter()
            .filter_map(|a| {
                let r = self.alerts.get(a)?.repeat_ms?;
                (r > 0).then(|| (a.clone(), r))
            })
            .collect();
        let Some(st) = self.check_states.get(check_id) else {
            return;
        };
        let (Health::Down, Some(since)) = (st.health, st.since_ms) else {
            return;
        };
        if every.is_empty() {
            return;
        }
        if let Some(st) = self.check_states.get_mut(check_id) {
            for (alert, r) in every {
                let n = at_ms.saturating_sub(since) / r;
                let done = st.repeats.entry(alert).or_default();
                *done = (*done).max(n);
            }
        }
        touched.push(RecordKey::CheckState(check_id.to_string()));
    }

    /// Removes silences and pages, once, the checks no silence covers any
    /// more whose state changed since their alerts were last told.
    fn end_silences(&mut self, ids: &[String], at_ms: u64, touched: &mut Vec<RecordKey>) -> usize {
        let mut ended = Vec::new();
        for id in ids {
            if let Some(s) = self.silences.make_mut().remove(id) {
                touched.push(RecordKey::Silence(id.clone()));
                self.remember_silence(&s, at_ms, touched);
                ended.push(s);
            }
        }
        if ended.is_empty() {
            return 0;
        }
        let unmuted: Vec<String> = self
            .checks
            .keys()
            .filter(|c| ended.iter().any(|s| s.covers(c)))
            .filter(|c| muted_by(&self.silences, c).is_none())
            .cloned()
            .collect();
        for check_id in unmuted {
            self.skip_repeats_due(&check_id, at_ms, touched);
            let Some(st) = self.check_states.get(&check_id) else {
                continue;
            };
            if !page_at_end(st.notified, st.health) {
                continue;
            }
            let Some(last) = st.last.clone() else {
                continue;
            };
            let told = st.notified.unwrap_or(Health::Unknown);
            let flips = st.flips;
            let transition = TransitionRecord {
                from: told,
                to: st.health,
                ..last
            };
            if let Some(st) = self.check_states.get_mut(&check_id) {
                st.notified = Some(st.health);
            }
            touched.push(RecordKey::CheckState(check_id.clone()));
            let paused = self.checks.get(&check_id).is_some_and(|c| c.paused);
            if paused {
                continue;
            }
            let alerts = self
                .checks
                .get(&check_id)
                .map(|c| c.alerts.clone())
                .unwrap_or_default();
            let event = if transition.to == Health::Down {
                PageEvent::Down
            } else {
                PageEvent::Recovered
            };
            for alert_id in &alerts {
                self.record_page(
                    Page {
                        check_id: &check_id,
                        alert_id,
                        id: format!("{check_id}-{flips}-{alert_id}-end"),
                        event,
                        transition: &transition,
                        created_ms: at_ms,
                        note: "silence ended",
                        down_since_ms: None,
                    },
                    touched,
                );
            }
        }
        ended.len()
    }

    /// Checks a request against the current state without changing it.
    pub fn validate(&self, req: &Request) -> Result<(), Refusal> {
        if let Some(expected) = req.if_version {
            if expected != self.version {
                return Err(Refusal::VersionMismatch {
                    expected,
                    actual: self.version,
                });
            }
        }
        match &req.command {
            Command::Config(c) => self.validate_config(c),
            Command::Record(r) => self.validate_record(r),
        }
    }

    fn validate_config(&self, c: &ConfigCommand) -> Result<(), Refusal> {
        fn v(field: &str, message: impl Into<String>) -> ValidationError {
            ValidationError::new(field, message)
        }
        match c {
            ConfigCommand::Bootstrap { .. } => {
                if self.cluster_id.is_some() {
                    return Err(v("cluster", "this node already belongs to a cluster").into());
                }
            }
            ConfigCommand::AddPeer { peer } => {
                if let Some(existing) = self.peers.get(&peer.node_id) {
                    if existing.fingerprint != peer.fingerprint {
                        return Err(v(
                            "node",
                            format!(
                                "node {} is already a member with fingerprint {}, not {}; remove it first if its key changed",
                                peer.node_id, existing.fingerprint, peer.fingerprint
                            ),
                        )
                        .into());
                    }
                }
                if let Some(other) = self
                    .peers
                    .values()
                    .find(|p| p.fingerprint == peer.fingerprint && p.node_id != peer.node_id)
                {
                    return Err(v(
                        "fingerprint",
                        format!(
                            "{} already belongs to member {}",
                            peer.fingerprint, other.node_id
                        ),
                    )
                    .into());
                }
                crate::model::validate_host_port("advertise", &peer.advertise)?;
            }
            ConfigCommand::RemovePeer { node_id } => {
                if !self.peers.contains_key(node_id) {
                    return Err(v("node", format!("node {node_id} is not a member")).into());
                }
                if self.peers.len() == 1 {
                    return Err(v("node", "refusing to remove the last node of the cluster").into());
                }
            }
            ConfigCommand::AddCheck { check } => {
                check.validate()?;
                if self.checks.contains_key(&check.id) {
                    return Err(v("id", format!("check id {} already exists", check.id)).into());
                }
                if self.checks.values().any(|c| c.name == check.name) {
                    return Err(v(
                        "name",
                        format!("a check named {:?} already exists; remove it first or choose another name", check.name),
                    )
                    .into());
                }
                for a in &check.alerts {
                    if !self.alerts.contains_key(a) {
                        return Err(v("--alerts", format!("no alert with id {a}")).into());
                    }
                }
            }
            ConfigCommand::RemoveCheck { id_or_name } => {
                self.check_named(id_or_name)?;
            }
            ConfigCommand::SetPaused { id_or_name, .. } => {
                self.check_named(id_or_name)?;
            }
            ConfigCommand::EditCheck { id_or_name, patch } => {
                let (before, after) = self.edited_check(id_or_name, patch)?;
                if self
                    .checks
                    .values()
                    .any(|c| c.name == after.name && c.id != before.id)
                {
                    return Err(v(
                        "--name",
                        format!("a check named {:?} already exists", after.name),
                    )
                    .into());
                }
                for a in &after.alerts {
                    if !self.alerts.contains_key(a) {
                        return Err(v("--alerts", format!("no alert with id {a}")).into());
                    }
                }
            }
            ConfigCommand::EditAlert { id_or_name, patch } => {
                let (before, after) = self.edited_alert(id_or_name, patch)?;
                if self
                    .alerts
                    .values()
                    .any(|a| a.name == after.name && a.id != before.id)
                {
                    return Err(v(
                        "--name",
                        format!("an alert named {:?} already exists", after.name),
                    )
                    .into());
                }
            }
            ConfigCommand::AddSilence { silence } => {
                silence.validate()?;
                if self.silences.contains_key(&silence.id) {
                    return Err(v("id", format!("silence id {} already exists", silence.id)).into());
                }
                for c in &silence.checks {
                    if !self.checks.contains_key(c) {
                        return Err(v("checks", format!("no check with id {c}")).into());
                    }
                }
            }
            ConfigCommand::RemoveSilence { id, .. } => {
                if !self.silences.contains_key(id) {
                    return Err(v(
                        "silence",
                        format!("no active silence {id:?} (see 'qu silence list')"),
                    )
                    .into());
                }
            }
            ConfigCommand::AddWindow { window } => {
                window.validate()?;
                if self.windows.contains_key(&window.id) {
                    return Err(v("id", format!("window id {} already exists", window.id)).into());
                }
                if self.windows.values().any(|w| w.name == window.name) {
                    return Err(v(
                        "name",
                        format!(
                            "a maintenance window named {:?} already exists",
                            window.name
                        ),
                    )
                    .into());
                }
                for c in &window.checks {
                    if !self.checks.contains_key(c) {
                        return Err(v("checks", format!("no check with id {c}")).into());
                    }
                }
            }
            ConfigCommand::RemoveWindow { id_or_name, .. } => {
                self.window_named(id_or_name)?;
            }
            ConfigCommand::SetRetention { retention_ms } => {
                history::validate_retention(*retention_ms)?;
            }
            ConfigCommand::SetResolvers { resolvers } => {
                crate::kinds::validate_resolvers(resolvers)?;
            }
            ConfigCommand::AddAlert { alert } => {
                alert.validate()?;
                if self.alerts.contains_key(&alert.id) {
                    return Err(v("id", format!("alert id {} already exists", alert.id)).into());
                }
                if self.alerts.values().any(|a| a.name == alert.name) {
                    return Err(v(
                        "name",
                        format!("an alert named {:?} already exists; remove it first or choose another name", alert.name),
                    )
                    .into());
                }
            }
            ConfigCommand::RemoveAlert { id_or_name, force } => {
                let alert = self.alert_named(id_or_name)?;
                let users: Vec<&str> = self
                    .checks
                    .values()
                    .filter(|c| c.alerts.contains(&alert.id))
                    .map(|c| c.name.as_str())
                    .collect();
                if !users.is_empty() && !force {
                    return Err(v(
                        "alert",
                        format!(
                            "alert {:?} is used by check(s) {}; remove it from them first, or pass --force to detach it",
                            alert.name,
                            users.join(", ")
                        ),
                    )
                    .into());
                }
            }
        }
        Ok(())
    }

    fn validate_record(&self, r: &RecordCommand) -> Result<(), Refusal> {
        fn v(field: &str, message: impl Into<String>) -> ValidationError {
            ValidationError::new(field, message)
        }
        match r {
            RecordCommand::DeliveryOutcome { id, status } => {
                let Some(d) = self.deliveries.get(id) else {
                    return Err(v("delivery", format!("no delivery {id}")).into());
                };
                if !d.is_pending() || *status == DeliveryStatus::Pending {
                    return Err(v("delivery", format!("delivery {id} is already settled")).into());
                }
            }
            RecordCommand::PruneDeliveries { .. } | RecordCommand::PruneHistory { .. } => {}
            RecordCommand::Transition { check_id, record } => {
                self.validate_flip(check_id, record)?;
            }
            RecordCommand::Transitions { flips } => {
                if flips.is_empty() {
                    return Err(v("transitions", "no flips").into());
                }
            }
            RecordCommand::EndSilences { ids, .. } => {
                if !ids.iter().any(|id| self.silences.contains_key(id)) {
                    return Err(v("silence", "the silences already ended").into());
                }
            }
            RecordCommand::RaiseLevel { level } => {
                if *level <= self.log_level || *level > LOG_LEVEL {
                    return Err(v("level", format!("the log level is {}", self.log_level)).into());
                }
            }
            RecordCommand::OpenWindow {
                window_id,
                start_ms,
            } => {
                let Some(w) = self.windows.get(window_id) else {
                    return Err(v("window", format!("no window {window_id}")).into());
                };
                if w.last_opened_ms.is_some_and(|last| last >= *start_ms) {
                    return Err(v("window", "that occurrence was already opened").into());
                }
            }
            RecordCommand::Repeat {
                check_id,
                alert_id,
                n,
                at_ms,
            } => {
                let due = self
                    .checks
                    .get(check_id)
                    .is_some_and(|c| !c.paused && c.alerts.contains(alert_id))
                    && self
                        .alerts
                        .get(alert_id)
                        .is_some_and(|a| !a.disabled && a.repeat_ms.is_some())
                    && self.check_states.get(check_id).is_some_and(|st| {
                        st.health == Health::Down
                            && st.repeats.get(alert_id).copied().unwrap_or(0) < *n
                    })
                    && muted_by(&self.silences, check_id).is_none()
                    && self.repeat_allowed(check_id, alert_id, *at_ms);
                if !due {
                    return Err(v("repeat", "no repeat is due").into());
                }
            }
            RecordCommand::ReleaseDelivery { id, .. } => {
                let Some(d) = self.deliveries.get(id) else {
                    return Err(v("delivery", format!("no delivery {id}")).into());
                };
                if !d.is_pending() || !d.awaits_release() {
                    return Err(v(
                        "delivery",
                        format!("delivery {id} is settled or not waiting for release"),
                    )
                    .into());
                }
                let still_down = self.check_states.get(&d.check_id).is_some_and(|st| {
                    st.health == Health::Down && st.since_ms == Some(d.transition.at_ms)
                });
                if !still_down {
                    return Err(v(
                        "delivery",
                        format!(
                            "check {} is no longer in the outage of delivery {id}",
                            d.check_id
                        ),
                    )
                    .into());
                }
            }
        }
        Ok(())
    }

    /// The check an edit names, and what the edit makes of it (validated).
    fn edited_check(&self, id_or_name: &str, patch: &Patch) -> Result<(Check, Check), Refusal> {
        let before = self.check_named(id_or_name)?.clone();
        let what = format!("{} check", before.kind.type_name());
        let after = patched(&before, patch, &what, CHECK_FIXED)?;
        after.validate()?;
        Ok((before, after))
    }

    /// The alert an edit names, and what the edit makes of it (validated).
    fn edited_alert(&self, id_or_name: &str, patch: &Patch) -> Result<(Alert, Alert), Refusal> {
        let before = self.alert_named(id_or_name)?.clone();
        let what = format!("{} alert", before.kind.type_name());
        let after = patched(&before, patch, &what, ALERT_FIXED)?;
        after.validate()?;
        Ok((before, after))
    }

    /// The maintenance window `id_or_name` names.
    fn window_named(&self, id_or_name: &str) -> Result<&Maintenance, Refusal> {
        find_by_id_or_name(&self.windows, id_or_name, |w| &w.name).ok_or_else(|| {
            ValidationError::new(
                "window",
                format!("no maintenance window with id or name {id_or_name:?} (see 'qu maintenance list')"),
            )
            .into()
        })
    }

    /// The check `id_or_name` names, or the refusal that says so.
    fn check_named(&self, id_or_name: &str) -> Result<&Check, Refusal> {
        find_by_id_or_name(&self.checks, id_or_name, |c| &c.name).ok_or_else(|| {
            ValidationError::new(
                "check",
                format!("no check with id or name {id_or_name:?} (see 'qu check list')"),
            )
            .into()
        })
    }

    /// The alert `id_or_name` names, or the refusal that says so.
    fn alert_named(&self, id_or_name: &str) -> Result<&Alert, Refusal> {
        find_by_id_or_name(&self.alerts, id_or_name, |a| &a.name).ok_or_else(|| {
            ValidationError::new(
                "alert",
                format!("no alert with id or name {id_or_name:?} (see 'qu alert list')"),
            )
            .into()
        })
    }

    /// The original answer to a request id already applied.
    pub fn seen(&self, request_id: &str) -> Option<&Response> {
        self.requests.get(request_id).map(|s| &s.response)
    }

    /// Applies a request; returns the response and the records it touched.
    /// A request id already applied gets its first answer and changes
    /// nothing; a configuration request that applied is remembered.
    pub fn apply(&mut self, req: &Request) -> (Response, Vec<RecordKey>) {
        if let Some(seen) = req.request_id.as_deref().and_then(|id| self.seen(id)) {
            return (seen.clone(), vec![]);
        }
        let (response, mut touched) = self.apply_once(req);
        if let (Some(id), Response::Applied { .. } | Response::Unchanged { .. }) =
            (&req.request_id, &response)
        {
            if req.command.is_configuration() {
                self.remember(id, &response, &mut touched);
            }
        }
        (response, touched)
    }

    fn remember(&mut self, id: &str, response: &Response, touched: &mut Vec<RecordKey>) {
        self.request_seq += 1;
        let seq = self.request_seq;
        let requests = &mut self.requests;
        requests.insert(
            id.to_string(),
            SeenRequest {
                seq,
                response: response.clone(),
            },
        );
        touched.push(RecordKey::Request(id.to_string()));
        if !touched.contains(&RecordKey::Meta) {
            touched.push(RecordKey::Meta);
        }
        while requests.len() > MAX_REMEMBERED_REQUESTS {
            // Rare (only at the cap) and linear in the cap: fine for
            // configuration changes.
            let Some(oldest) = requests
                .iter()
                .min_by_key(|(_, s)| s.seq)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            requests.remove(&oldest);
            touched.push(RecordKey::Request(oldest));
        }
    }

    fn apply_once(&mut self, req: &Request) -> (Response, Vec<RecordKey>) {
        if let Err(refusal) = self.validate(req) {
            return (
                Response::Refused {
                    version: self.version,
                    refusal,
                },
                vec![],
            );
        }
        let mut touched = vec![RecordKey::Meta];
        match &req.command {
            Command::Record(r) => {
                let summary = self.apply_record(r, &mut touched);
                (
                    Response::Applied {
                        version: self.version,
                        summary,
                    },
                    touched,
                )
            }
            Command::Config(c) => match self.apply_config(c, req.at_ms, &mut touched) {
                Ok(Some(summary)) => {
                    self.version += 1;
                    (
                        Response::Applied {
                            version: self.version,
                            summary,
                        },
                        touched,
                    )
                }
                Ok(None) => (
                    Response::Unchanged {
                        version: self.version,
                        summary: c.unchanged_summary(),
                    },
                    vec![],
                ),
                Err(refusal) => (
                    Response::Refused {
                        version: self.version,
                        refusal,
                    },
                    vec![],
                ),
            },
        }
    }

    /// Applies a validated record; the version stays.
    fn apply_record(&mut self, r: &RecordCommand, touched: &mut Vec<RecordKey>) -> String {
        match r {
            RecordCommand::DeliveryOutcome { id, status } => {
                if let Some(d) = self.deliveries.get_mut(id) {
                    d.status = status.clone();
                }
                touched.push(RecordKey::Delivery(id.clone()));
                format!("delivery {id} settled")
            }
            RecordCommand::PruneDeliveries { before_ms } => {
                let old: Vec<String> = self
                    .deliveries
                    .values()
                    .filter(|d| d.status.settled_at_ms().is_some_and(|at| at < *before_ms))
                    .map(|d| d.id.clone())
                    .collect();
                for id in &old {
                    self.deliveries.remove(id);
                    touched.push(RecordKey::Delivery(id.clone()));
                }
                format!("pruned {} deliveries", old.len())
            }
            RecordCommand::Transition { check_id, record } => {
                self.apply_flip(check_id, record, touched);
                format!("check {check_id} is {} ({})", record.to, record.votes())
            }
            RecordCommand::Transitions { flips } => {
                let mut done = 0;
                for f in flips {
                    if self.validate_flip(&f.check_id, &f.record).is_ok() {
                        self.apply_flip(&f.check_id, &f.record, touched);
                        done += 1;
                    }
                }
                format!(
                    "{done} check state flip(s) committed, {} stale skipped",
                    flips.len() - done
                )
            }
            RecordCommand::EndSilences { ids, at_ms } => {
                let n = self.end_silences(ids, *at_ms, touched);
                format!("{n} silence(s) ended")
            }
            RecordCommand::RaiseLevel { level } => {
                self.log_level = *level;
                format!("log level {level}")
            }
            RecordCommand::PruneHistory { before_ms } => {
                let n = self.prune_history(*before_ms, touched);
                format!("pruned the history of {n} check(s)")
            }
            RecordCommand::OpenWindow {
                window_id,
                start_ms,
            } => {
                let Some(w) = self.windows.make_mut().get_mut(window_id) else {
                    return "no such window".into();
                };
                w.last_opened_ms = Some(*start_ms);
                let occurrence = w.occurrence(*start_ms);
                touched.push(RecordKey::Window(window_id.clone()));
                touched.push(RecordKey::Silence(occurrence.id.clone()));
                let summary = format!("maintenance window {} opened", occurrence.id);
                self.silences
                    .make_mut()
                    .insert(occurrence.id.clone(), occurrence);
                summary
            }
            RecordCommand::ReleaseDelivery { id, .. } => {
                if let Some(d) = self.deliveries.get_mut(id) {
                    d.released = true;
                }
                touched.push(RecordKey::Delivery(id.clone()));
                format!("delivery {id} released")
            }
            RecordCommand::Repeat {
                check_id,
                alert_id,
                n,
                at_ms,
            } => {
                let Some(st) = self.check_states.get_mut(check_id) else {
                    return "no such check".into();
                };
                st.repeats.insert(alert_id.clone(), *n);
                let flips = st.flips;
                let Some(last) = st.last.clone() else {
                    return "no transition to repeat".into();
                };
                touched.push(RecordKey::CheckState(check_id.clone()));
                let note = format!("repeat {n}");
                self.record_page(
                    Page {
                        check_id,
                        alert_id,
                        id: format!("{check_id}-{flips}-{alert_id}-r{n}"),
                        event: PageEvent::Repeat,
                        transition: &last,
                        created_ms: *at_ms,
                        note: &note,
                        down_since_ms: None,
                    },
                    touched,
                );
                format!("check {check_id}: {note} to alert {alert_id}")
            }
        }
    }

    /// Applies a validated configuration change: `Some(summary)` when the
    /// state changed (the caller bumps the version), `None` when there was
    /// nothing to change.
    fn apply_config(
        &mut self,
        c: &ConfigCommand,
        at_ms: Option<u64>,
        touched: &mut Vec<RecordKey>,
    ) -> Result<Option<String>, Refusal> {
        Ok(Some(match c {
            ConfigCommand::Bootstrap {
                cluster_id,
                founder,
            } => {
                self.cluster_id = Some(cluster_id.clone());
                self.peers
                    .make_mut()
                    .insert(founder.node_id, founder.clone());
                touched.push(RecordKey::Peer(founder.node_id));
                format!("formed cluster {cluster_id} with node {}", founder.node_id)
            }
            ConfigCommand::AddPeer { peer } => {
                if self.peers.get(&peer.node_id) == Some(peer) {
                    return Ok(None);
                }
                self.peers.make_mut().insert(peer.node_id, peer.clone());
                touched.push(RecordKey::Peer(peer.node_id));
                format!("added node {} ({})", peer.node_id, peer.advertise)
            }
            ConfigCommand::RemovePeer { node_id } => {
                self.peers.make_mut().remove(node_id);
                touched.push(RecordKey::Peer(*node_id));
                format!("removed node {node_id}")
            }
            ConfigCommand::AddCheck { check } => {
                self.checks.insert(check.id.clone(), check.clone());
                touched.push(RecordKey::Check(check.id.clone()));
                if let Some(at) = at_ms {
                    self.record_history(&check.id, at, HistoryKind::Added, touched);
                }
                format!(
                    "added {} check {} ({})",
                    check.kind.type_name(),
                    check.name,
                    check.id
                )
            }
            ConfigCommand::RemoveCheck { id_or_name } => {
                let check = self.check_named(id_or_name)?.clone();
                self.checks.remove(&check.id);
                if self.check_states.remove(&check.id).is_some() {
                    touched.push(RecordKey::CheckState(check.id.clone()));
                }
                if let Some(h) = self.history.remove(&check.id) {
                    touched.extend(
                        h.events
                            .iter()
                            .map(|e| RecordKey::History(check.id.clone(), e.seq)),
                    );
                }
                touched.push(RecordKey::Check(check.id.clone()));
                format!("removed check {} ({})", check.name, check.id)
            }
            ConfigCommand::SetPaused { id_or_name, paused } => {
                let check = self.check_named(id_or_name)?.clone();
                if check.paused == *paused {
                    return Ok(None);
                }
                let id = check.id.clone();
                if let Some(c) = self.checks.get_mut(&id) {
                    c.paused = *paused;
                }
                touched.push(RecordKey::Check(id.clone()));
                if let Some(at) = at_ms {
                    let what = if *paused {
                        HistoryKind::Paused
                    } else {
                        HistoryKind::Resumed
                    };
                    self.record_history(&id, at, what, touched);
                }
                if *paused {
                    format!(
                        "paused check {} ({id}): probed nowhere, pages never",
                        check.name
                    )
                } else {
                    // Resumed from unknown: only a real flip pages again.
                    // The flip count stays, so delivery ids stay unique.
                    self.restart_state(&id, None, touched);
                    format!("resumed check {} ({id}) from unknown", check.name)
                }
            }
            ConfigCommand::EditCheck { id_or_name, patch } => {
                let (before, after) = self.edited_check(id_or_name, patch)?;
                if before == after {
                    return Ok(None);
                }
                let id = before.id.clone();
                let retargeted = before.kind.probed() != after.kind.probed();
                self.checks.insert(id.clone(), after.clone());
                touched.push(RecordKey::Check(id.clone()));
                let mut summary = format!(
                    "edited check {} ({id}): {}",
                    after.name,
                    patch.fields().join(", ")
                );
                if retargeted {
                    let note = format!(
                        "the target changed from {} to {}: the state restarted at unknown",
                        before.kind.target(),
                        after.kind.target()
                    );
                    summary = format!("{summary}; {note}");
                    if let Some(at) = at_ms {
                        let what = HistoryKind::Restarted { note: note.clone() };
                        self.record_history(&id, at, what, touched);
                    }
                    self.restart_state(&id, Some(note), touched);
                }
                summary
            }
            ConfigCommand::EditAlert { id_or_name, patch } => {
                let (before, after) = self.edited_alert(id_or_name, patch)?;
                if before == after {
                    return Ok(None);
                }
                let id = before.id.clone();
                self.alerts.make_mut().insert(id.clone(), after.clone());
                touched.push(RecordKey::Alert(id.clone()));
                let what: Vec<&str> = patch
                    .fields()
                    .into_iter()
                    .map(|f| match f {
                        "password" | "webhook" | "url" | "headers" => "(secret) field",
                        other => other,
                    })
                    .collect();
                let mut what = what;
                what.dedup();
                format!("edited alert {} ({id}): {}", after.name, what.join(", "))
            }
            ConfigCommand::AddSilence { silence } => {
                self.silences
                    .make_mut()
                    .insert(silence.id.clone(), silence.clone());
                touched.push(RecordKey::Silence(silence.id.clone()));
                let over = if silence.all {
                    "every check".to_string()
                } else {
                    format!("{} check(s)", silence.checks.len())
                };
                format!("added silence {} over {over}", silence.id)
            }
            ConfigCommand::RemoveSilence { id, at_ms } => {
                self.end_silences(std::slice::from_ref(id), *at_ms, touched);
                format!("removed silence {id}")
            }
            ConfigCommand::AddWindow { window } => {
                self.windows
                    .make_mut()
                    .insert(window.id.clone(), window.clone());
                touched.push(RecordKey::Window(window.id.clone()));
                format!(
                    "added maintenance window {} ({}): every {} for {} min ({})",
                    window.name,
                    window.id,
                    window.every,
                    window.duration_ms / 60_000,
                    window.tz
                )
            }
            ConfigCommand::RemoveWindow { id_or_name, at_ms } => {
                let w = self.window_named(id_or_name)?.clone();
                self.windows.make_mut().remove(&w.id);
                touched.push(RecordKey::Window(w.id.clone()));
                let open: Vec<String> = self
                    .silences
                    .values()
                    .filter(|s| s.window.as_deref() == Some(w.id.as_str()))
                    .map(|s| s.id.clone())
                    .collect();
                self.end_silences(&open, *at_ms, touched);
                format!("removed maintenance window {} ({})", w.name, w.id)
            }
            ConfigCommand::SetRetention { retention_ms } => {
                if self.retention() == *retention_ms {
                    return Ok(None);
                }
                self.retention_ms = *retention_ms;
                format!(
                    "check history is kept {}d (pruned by the leader within the hour)",
                    retention_ms / 86_400_000
                )
            }
            ConfigCommand::SetResolvers { resolvers } => {
                if self.resolvers == *resolvers {
                    return Ok(None);
                }
                self.resolvers = resolvers.clone();
                if resolvers.is_empty() {
                    "cleared the cluster's DNS servers: probes use each node's system resolver"
                        .to_string()
                } else {
                    format!("probes resolve through {}", resolvers.join(", "))
                }
            }
            ConfigCommand::AddAlert { alert } => {
                self.alerts
                    .make_mut()
                    .insert(alert.id.clone(), alert.clone());
                touched.push(RecordKey::Alert(alert.id.clone()));
                format!(
                    "added {} alert {} ({})",
                    alert.kind.type_name(),
                    alert.name,
                    alert.id
                )
            }
            ConfigCommand::RemoveAlert { id_or_name, .. } => {
                let alert = self.alert_named(id_or_name)?.clone();
                self.alerts.make_mut().remove(&alert.id);
                touched.push(RecordKey::Alert(alert.id.clone()));
                let mut detached = 0;
                // Records has no iter_mut: find the checks, then change
                // each (in id order, as before).
                let holding: Vec<String> = self
                    .checks
                    .iter()
                    .filter(|(_, c)| c.alerts.contains(&alert.id))
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in holding {
                    if let Some(check) = self.checks.get_mut(&id) {
                        check.alerts.retain(|a| a != &alert.id);
                        touched.push(RecordKey::Check(id));
                        detached += 1;
                    }
                }
                if detached > 0 {
                    format!(
                        "removed alert {} ({}), detached from {detached} check(s)",
                        alert.name, alert.id
                    )
                } else {
                    format!("removed alert {} ({})", alert.name, alert.id)
                }
            }
        }))
    }
}

impl ConfigCommand {
    /// What an applied change that changed nothing says.
    fn unchanged_summary(&self) -> String {
        match self {
            ConfigCommand::AddPeer { peer } => format!("node {} is already a member", peer.node_id),
            other => format!(
                "{}: nothing to change",
                Command::Config(other.clone()).describe()
            ),
        }
    }
}

#[cfg(test)]
#[path = "state_day_two_tests.rs"]
mod day_two_tests;

#[cfg(test)]
#[path = "state_level_three_tests.rs"]
mod level_three_tests;

#[cfg(test)]
#[path = "state_history_tests.rs"]
mod history_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlertKind, CheckKind};

    fn peer(n: u64) -> Peer {
        Peer {
            node_id: NodeId(n),
            advertise: format!("127.0.0.1:{}", 9000 + n),
            fingerprint: format!("SHA256:fp{n}"),
            cert: String::new(),
        }
    }

    fn tcp_check(id: &str, name: &str, alerts: Vec<String>) -> Check {
        Check {
            id: id.into(),
            name: name.into(),
            kind: CheckKind::tcp("db.internal:5432"),
            interval_ms: 30_000,
            timeout_ms: 10_000,
            alerts,
            paused: false,
        }
    }

    fn webhook(id: &str, name: &str) -> Alert {
        Alert {
            id: id.into(),
            name: name.into(),
            kind: AlertKind::Webhook {
                url: "https://hooks.example.com/x".into(),
                headers: vec![],
            },
            disabled: false,
            default: false,
            repeat_ms: None,
            title: None,
            body: None,
            on: None,
            after_ms: None,
        }
    }

    fn applied(state: &mut ClusterState, cmd: impl Into<Command>) -> u64 {
        match state.apply(&Request::new(cmd)).0 {
            Response::Applied { version, .. } => version,
            other => panic!("not applied: {other:?}"),
        }
    }

    fn refused(state: &mut ClusterState, req: Request) -> Refusal {
        let before = state.clone();
        match state.apply(&req).0 {
            Response::Refused { refusal, .. } => {
                assert_eq!(*state, before, "a refused command changed the state");
                refusal
            }
            other => panic!("not refused: {other:?}"),
        }
    }

    fn bootstrapped() -> ClusterState {
        let mut s = ClusterState::default();
        applied(
            &mut s,
            ConfigCommand::Bootstrap {
                cluster_id: "c".into(),
                founder: peer(1),
            },
        );
        s
    }

    fn with_id(id: &str, cmd: impl Into<Command>) -> Request {
        Request {
            request_id: Some(id.into()),
            ..Request::new(cmd)
        }
    }

    #[test]
    fn the_split_command_keeps_the_flat_wire_format_of_the_log() {
        // As written by the release before the split (and read by it).
        let legacy = [
            r#"{"op":"remove_check","id_or_name":"db"}"#,
            r#"{"op":"remove_alert","id_or_name":"pager","force":true}"#,
            r#"{"op":"prune_deliveries","before_ms":5}"#,
            r#"{"op":"delivery_outcome","id":"d1","status":{"status":"pending"}}"#,
            r#"{"op":"transitions","flips":[]}"#,
        ];
        for text in legacy {
            let cmd: Command = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("{text} no longer decodes: {e}"));
            let again: serde_json::Value = serde_json::to_value(&cmd).unwrap();
            let before: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(again, before, "{text} is written differently now");
        }
        assert!(
            serde_json::from_str::<Command>(r#"{"op":"remove_check","id_or_name":"x"}"#)
                .unwrap()
                .is_configuration()
        );
        assert!(
            !serde_json::from_str::<Command>(r#"{"op":"prune_deliveries","before_ms":1}"#)
                .unwrap()
                .is_configuration()
        );
        assert!(serde_json::from_str::<Command>(r#"{"op":"no_such_thing"}"#).is_err());
    }

    #[test]
    fn a_replayed_request_id_gets_its_first_answer_and_applies_once() {
        let mut s = bootstrapped();
        let add = with_id(
            "r1",
            ConfigCommand::AddCheck {
                check: tcp_check("c1", "db", vec![]),
            },
        );
        let (first, _) = s.apply(&add);
        let version = s.version;
        let after_first = s.clone();
        let (again, touched) = s.apply(&add);
        assert_eq!(again, first, "a replay must answer as the original did");
        assert!(touched.is_empty());
        assert_eq!(s, after_first, "a replay changed the state");
        assert_eq!(s.version, version);
        // Without the id, the same command is refused as a duplicate.
        let plain = Request::new(ConfigCommand::AddCheck {
            check: tcp_check("c1", "db", vec![]),
        });
        assert!(matches!(s.apply(&plain).0, Response::Refused { .. }));
    }

    #[test]
    fn refusals_and_records_are_not_remembered_and_the_memory_is_bounded() {
        let mut s = bootstrapped();
        let bad = with_id(
            "bad",
            ConfigCommand::RemoveCheck {
                id_or_name: "ghost".into(),
            },
        );
        assert!(matches!(s.apply(&bad).0, Response::Refused { .. }));
        assert!(s.seen("bad").is_none());
        // Add and remove one check over and over: the maps stay small.
        let churn = |st: &mut ClusterState| {
            for i in 0..(MAX_REMEMBERED_REQUESTS / 2 + 5) {
                let id = format!("c{i}");
                st.apply(&with_id(
                    &format!("r{i}a"),
                    ConfigCommand::AddCheck {
                        check: tcp_check(&id, "db", vec![]),
                    },
                ));
                st.apply(&with_id(
                    &format!("r{i}r"),
                    ConfigCommand::RemoveCheck { id_or_name: id },
                ));
            }
        };
        churn(&mut s);
        assert_eq!(s.requests.len(), MAX_REMEMBERED_REQUESTS);
        assert!(
            s.seen("r0a").is_none(),
            "the oldest ids are forgotten first"
        );
        assert!(s
            .seen(&format!("r{}r", MAX_REMEMBERED_REQUESTS / 2 + 4))
            .is_some());
        // Deterministic: the same log gives the same memory.
        let mut t = bootstrapped();
        t.apply(&bad);
        churn(&mut t);
        assert_eq!(s, t);
    }

    #[test]
    fn version_grows_by_one_per_applied_mutation() {
        let mut s = bootstrapped();
        assert_eq!(s.version, 1);
        assert_eq!(
            applied(
                &mut s,
                ConfigCommand::AddAlert {
                    alert: webhook("a1", "oncall")
                }
            ),
            2
        );
        assert_eq!(
            applied(
                &mut s,
                ConfigCommand::AddCheck {
                    check: tcp_check("c1", "db", vec!["a1".into()])
                }
            ),
            3
        );
        assert_eq!(
            applied(
                &mut s,
                ConfigCommand::RemoveCheck {
                    id_or_name: "db".into()
                }
            ),
            4
        );
        assert_eq!(applied(&mut s, ConfigCommand::AddPeer { peer: peer(2) }), 5);
        // Re-adding the identical peer is not a mutation.
        let (r, touched) = s.apply(&Request::new(ConfigCommand::AddPeer { peer: peer(2) }));
        assert!(matches!(r, Response::Unchanged { version: 5, .. }));
        assert!(touched.is_empty());
        assert_eq!(
            applied(&mut s, ConfigCommand::RemovePeer { node_id: NodeId(2) }),
            6
        );
    }

    #[test]
    fn duplicates_and_unknown_references_are_refused_with_the_field() {
        let mut s = bootstrapped();
        applied(
            &mut s,
            ConfigCommand::AddAlert {
                alert: webhook("a1", "oncall"),
            },
        );
        applied(
            &mut s,
            ConfigCommand::AddCheck {
                check: tcp_check("c1", "db", vec![]),
            },
        );
        let r = refused(
            &mut s,
            Request::new(ConfigCommand::AddCheck {
                check: tcp_check("c2", "db", vec![]),
            }),
        );
        assert!(
            matches!(&r, Refusal::Invalid(e) if e.field == "name"),
            "{r}"
        );
        let r = refused(
            &mut s,
            Request::new(ConfigCommand::AddAlert {
                alert: webhook("a2", "oncall"),
            }),
        );
        assert!(
            matches!(&r, Refusal::Invalid(e) if e.field == "name"),
            "{r}"
        );
        let r = refused(
            &mut s,
            Request::new(ConfigCommand::AddCheck {
                check: tcp_check("c3", "web", vec!["nope".into()]),
            }),
        );
        assert!(
            matches!(&r, Refusal::Invalid(e) if e.field == "--alerts"),
            "{r}"
        );
        let r = refused(
            &mut s,
            Request::new(ConfigCommand::RemoveCheck {
                id_or_name: "ghost".into(),
            }),
        );
        assert!(r.to_string().contains("qu check list"), "{r}");
        let mut bad = tcp_check("c4", "slow", vec![]);
        bad.timeout_ms = bad.interval_ms;
        let r = refused(&mut s, Request::new(ConfigCommand::AddCheck { check: bad }));
        assert!(
            matches!(&r, Refusal::Invalid(e) if e.field == "--timeout"),
            "{r}"
        );
    }

    #[test]
    fn if_version_is_compare_and_set() {
        let mut s = bootstrapped();
        let req = Request {
            if_version: Some(7),
            request_id: None,
            at_ms: None,
            command: ConfigCommand::AddAlert {
                alert: webhook("a1", "oncall"),
            }
            .into(),
        };
        assert!(matches!(
            refused(&mut s, req),
            Refusal::VersionMismatch {
                expected: 7,
                actual: 1
            }
        ));
        let ok = Request {
            if_version: Some(1),
            request_id: None,
            at_ms: None,
            command: ConfigCommand::AddAlert {
                alert: webhook("a1", "oncall"),
            }
            .into(),
        };
        assert!(matches!(
            s.apply(&ok).0,
            Response::Applied { version: 2, .. }
        ));
    }

    #[test]
    fn alert_in_use_needs_force_which_detaches_it() {
        let mut s = bootstrapped();
        applied(
            &mut s,
            ConfigCommand::AddAlert {
                alert: webhook("a1", "oncall"),
            },
        );
        applied(
            &mut s,
            ConfigCommand::AddCheck {
                check: tcp_check("c1", "db", vec!["a1".into()]),
            },
        );
        let r = refused(
            &mut s,
            Request::new(ConfigCommand::RemoveAlert {
                id_or_name: "oncall".into(),
                force: false,
            }),
        );
        assert!(r.to_string().contains("--force"), "{r}");
        applied(
            &mut s,
            ConfigCommand::RemoveAlert {
                id_or_name: "oncall".into(),
                force: true,
            },
        );
        assert!(s.alerts.is_empty());
        assert!(s.checks["c1"].alerts.is_empty());
    }

    #[test]
    fn last_peer_cannot_be_removed_and_keys_cannot_change_silently() {
        let mut s = bootstrapped();
        refused(
            &mut s,
            Request::new(ConfigCommand::RemovePeer { node_id: NodeId(1) }),
        );
        let mut impostor = peer(1);
        impostor.fingerprint = "SHA256:other".into();
        refused(
            &mut s,
            Request::new(ConfigCommand::AddPeer { peer: impostor }),
        );
        let mut same_key = peer(3);
        same_key.fingerprint = peer(1).fingerprint;
        refused(
            &mut s,
            Request::new(ConfigCommand::AddPeer { peer: same_key }),
        );
        refused(
            &mut s,
            Request::new(ConfigCommand::Bootstrap {
                cluster_id: "other".into(),
                founder: peer(9),
            }),
        );
    }

    #[test]
    fn a_paused_check_flips_never_and_resumes_from_unknown() {
        use crate::model::Health;
        let mut s = bootstrapped();
        applied(
            &mut s,
            ConfigCommand::AddCheck {
                check: tcp_check("c1", "db", vec![]),
            },
        );
        let rec = |from, to| TransitionRecord {
            round: 7,
            from,
            to,
            at_ms: 1_000,
            voters: 1,
            evidence: vec![],
        };
        let flip = |from, to| {
            Request::new(RecordCommand::Transition {
                check_id: "c1".into(),
                record: rec(from, to),
            })
        };
        assert!(matches!(
            s.apply(&flip(Health::Unknown, Health::Down)).0,
            Response::Applied { .. }
        ));
        let v = applied(
            &mut s,
            ConfigCommand::SetPaused {
                id_or_name: "db".into(),
                paused: true,
            },
        );
        assert!(s.checks["c1"].paused);
        assert_eq!(s.version, v);
        // A flip evaluated before the pause arrives after it: refused.
        refused(&mut s, flip(Health::Down, Health::Up));
        // Pausing again changes nothing.
        assert!(matches!(
            s.apply(&Request::new(ConfigCommand::SetPaused {
                id_or_name: "c1".into(),
                paused: true,
            }))
            .0,
            Response::Unchanged { .. }
        ));
        applied(
            &mut s,
            ConfigCommand::SetPaused {
                id_or_name: "c1".into(),
                paused: false,
            },
        );
        assert!(!s.checks["c1"].paused);
        assert_eq!(
            s.check_states
                .get("c1")
                .map(|c| c.health)
                .unwrap_or_default(),
            Health::Unknown,
            "resumed from unknown"
        );
        refused(
            &mut s,
            Request::new(ConfigCommand::SetPaused {
                id_or_name: "nope".into(),
                paused: true,
            }),
        );
        // Only the new command needs the new log level.
        assert_eq!(
            Command::from(ConfigCommand::SetPaused {
                id_or_name: "c1".into(),
                paused: true
            })
            .level(),
            2
        );
        assert_eq!(
            Command::from(ConfigCommand::RemoveCheck {
                id_or_name: "c1".into()
            })
            .level(),
            1
        );
        // A paused check serialises with the field; others exactly as before.
        let json = serde_json::to_string(&s.checks["c1"]).unwrap();
        assert!(!json.contains("paused"), "{json}");
    }

    #[test]
    fn transitions_flip_state_without_bumping_the_version_and_stale_ones_are_refused() {
        use crate::model::{Evidence, Health};
        let mut s = bootstrapped();
        applied(
            &mut s,
            ConfigCommand::AddCheck {
                check: tcp_check("c1", "db", vec![]),
            },
        );
        let v = s.version;
        let rec = |from, to| TransitionRecord {
            round: 7,
            from,
            to,
            at_ms: 1_000,
            voters: 3,
            evidence: vec![
                Evidence {
                    node: NodeId(1),
                    ok: false,
                    reason: "connection refused".into(),
                    latency_ms: None,
                    cert_not_after_ms: None,
                },
                Evidence {
                    node: NodeId(2),
                    ok: false,
                    reason: "connection refused".into(),
                    latency_ms: None,
                    cert_not_after_ms: None,
                },
                Evidence {
                    node: NodeId(3),
                    ok: true,
                    reason: String::new(),
                    latency_ms: Some(3),
                    cert_not_after_ms: None,
                },
            ],
        };
        let (r, _) = s.apply(&Request::new(RecordCommand::Transition {
            check_id: "c1".into(),
            record: rec(Health::Unknown, Health::Down),
        }));
        match r {
            Response::Applied { version, summary } => {
                assert_eq!(version, v, "a transition is not a configuration mutation");
                assert!(
                    summary.contains("2/3 down: connection refused"),
                    "{summary}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.check_states["c1"].health, Health::Down);
        assert_eq!(s.check_states["c1"].flips, 1);
        // The same flip again is stale: refused, nothing changes.
        refused(
            &mut s,
            Request::new(RecordCommand::Transition {
                check_id: "c1".into(),
                record: rec(Health::Unknown, Health::Down),
            }),
        );
        refused(
            &mut s,
            Request::new(RecordCommand::Transition {
                check_id: "gone".into(),
                record: rec(Health::Unknown, Health::Down),
            }),
        );
        // Removing the check removes its state.
        applied(
            &mut s,
            ConfigCommand::RemoveCheck {
                id_or_name: "c1".into(),
            },
        );
        assert!(s.check_states.is_empty());
    }

    #[test]
    fn batched_flips_apply_one_by_one_and_stale_ones_are_skipped() {
        use crate::model::{Health, TransitionRecord};
        let mut s = bootstrapped();
        applied(
            &mut s,
            ConfigCommand::AddAlert {
                alert: webhook("a1", "pager"),
            },
        );
        for (id, name) in [("c1", "db"), ("c2", "web")] {
            applied(
                &mut s,
                ConfigCommand::AddCheck {
                    check: tcp_check(id, name, vec!["a1".into()]),
                },
            );
        }
        let v = s.version;
        let rec = |from, to| TransitionRecord {
            round: 9,
            from,
            to,
            at_ms: 2_000,
            voters: 3,
            evidence: vec![],
        };
        let flip = |id: &str, from, to| Flip {
            check_id: id.into(),
            record: rec(from, to),
        };
        let (r, touched) = s.apply(&Request::new(RecordCommand::Transitions {
            flips: vec![
                flip("c1", Health::Unknown, Health::Down),
                flip("c2", Health::Up, Health::Down), // stale: c2 is unknown
                flip("gone", Health::Unknown, Health::Down),
            ],
        }));
        match r {
            Response::Applied { version, summary } => {
                assert_eq!(version, v, "flips are not configuration mutations");
                assert!(
                    summary.contains("1 check state flip(s) committed, 2 stale"),
                    "{summary}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.check_states["c1"].health, Health::Down);
        assert!(!s.check_states.contains_key("c2"));
        assert_eq!(s.deliveries.len(), 1, "one page for the one applied flip");
        assert!(touched.contains(&RecordKey::CheckState("c1".into())));
        assert!(!touched.contains(&RecordKey::CheckState("c2".into())));
        // An empty batch is refused.
        refused(
            &mut s,
            Request::new(RecordCommand::Transitions { flips: vec![] }),
        );
    }

    #[test]
    fn a_paging_transition_creates_one_pending_delivery_per_alert_settled_once() {
        use crate::model::{Health, TransitionRecord};
        let mut s = bootstrapped();
        applied(
            &mut s,
            ConfigCommand::AddAlert {
                alert: webhook("a1", "hook"),
            },
        );
        applied(
            &mut s,
            ConfigCommand::AddAlert {
                alert: webhook("a2", "other"),
            },
        );
        applied(
            &mut s,
            ConfigCommand::AddCheck {
                check: tcp_check("c1", "db", vec!["a1".into(), "a2".into()]),
            },
        );
        let flip = |s: &mut ClusterState, from, to| {
            let rec = TransitionRecord {
                round: 1,
                from,
                to,
                at_ms: 5,
                voters: 1,
                evidence: vec![],
            };
            s.apply(&Request::new(RecordCommand::Transition {
                check_id: "c1".into(),
                record: rec,
            }))
        };
        flip(&mut s, Health::Unknown, Health::Up);
        assert!(s.deliveries.is_empty(), "unknown → up does not page");
        flip(&mut s, Health::Up, Health::Down);
        assert_eq!(s.deliveries.len(), 2);
        assert!(s.deliveries.contains_key("c1-2-a1") && s.deliveries.contains_key("c1-2-a2"));
        assert!(s.deliveries.values().all(Delivery::is_pending));
        let done = DeliveryStatus::Delivered {
            at_ms: 9,
            attempts: 1,
        };
        let (r, _) = s.apply(&Request::new(RecordCommand::DeliveryOutcome {
            id: "c1-2-a1".into(),
            status: done.clone(),
        }));
        assert!(matches!(r, Response::Applied { .. }));
        refused(
            &mut s,
            Request::new(RecordCommand::DeliveryOutcome {
                id: "c1-2-a1".into(),
                status: done,
            }),
        );
        flip(&mut s, Health::Down, Health::Up);
        assert_eq!(s.deliveries.len(), 4, "recovery pages too");
        // Pruning drops settled old records only.
        s.apply(&Request::new(RecordCommand::PruneDeliveries {
            before_ms: 100,
        }));
        assert_eq!(s.deliveries.len(), 3);
        assert!(!s.deliveries.contains_key("c1-2-a1"));
    }

    #[test]
    fn apply_is_deterministic() {
        let cmds = [
            ConfigCommand::Bootstrap {
                cluster_id: "c".into(),
                founder: peer(1),
            },
            ConfigCommand::AddAlert {
                alert: webhook("a1", "oncall"),
            },
            ConfigCommand::AddCheck {
                check: tcp_check("c1", "db", vec!["a1".into()]),
            },
            ConfigCommand::AddCheck {
                check: tcp_check("c2", "db", vec![]),
            },
            ConfigCommand::AddPeer { peer: peer(2) },
        ];
        let run = || {
            let mut s = ClusterState::default();
            let rs: Vec<Response> = cmds
                .iter()
                .map(|c| s.apply(&Request::new(c.clone())).0)
                .collect();
            (s, rs)
        };
        assert_eq!(run(), run());
    }
}

#[cfg(test)]
#[path = "state_routing_tests.rs"]
mod routing_tests;
