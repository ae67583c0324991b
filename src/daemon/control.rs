//! The control socket: how the CLI talks to its local daemon (SPEC §2).
//!
//! A unix socket, mode 0600 in a 0700 directory we create; no TLS (file
//! permissions are the guard). One length-prefixed JSON request per
//! connection, one response. Every exchange has a deadline on both sides.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::{UnixListener, UnixStream};

use crate::transport::frame::{read_frame, write_frame};
use crate::trust::TrustEntry;
use qu_raft::model::{AlertKind, CheckKind};
use qu_raft::patch::Patch;
use qu_raft::NodeId;

/// Largest control message: a listing of 10 000 checks is a few MiB.
const MAX_CONTROL_FRAME: usize = 64 * 1024 * 1024;

/// What the CLI asks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum ControlRequest {
    Status,
    TrustList,
    TrustRemove {
        node: String,
        /// Drop the pin even though the node is a current member.
        #[serde(default)]
        force: bool,
    },
    /// Fetch a node's identity over the hello path (for the SSH-style prompt).
    NodeHello {
        addr: String,
    },
    /// Add the node at `addr`, whose fingerprint must be `fingerprint`.
    NodeAdd {
        addr: String,
        fingerprint: String,
    },
    NodeList,
    NodeRemove {
        node: String,
        #[serde(default)]
        if_version: Option<u64>,
    },
    CheckAdd {
        spec: CheckSpec,
        #[serde(default)]
        if_version: Option<u64>,
    },
    CheckList {
        /// Read through the leader after confirming it with a quorum.
        #[serde(default)]
        linearizable: bool,
    },
    /// One check in detail, with the last round per node.
    CheckShow {
        id_or_name: String,
    },
    CheckRemove {
        id_or_name: String,
        #[serde(default)]
        if_version: Option<u64>,
    },
    /// Pause or resume a check.
    CheckPause {
        id_or_name: String,
        paused: bool,
        #[serde(default)]
        if_version: Option<u64>,
    },
    AlertAdd {
        spec: AlertSpec,
        #[serde(default)]
        if_version: Option<u64>,
    },
    AlertList,
    /// Send a test page now, through the leader.
    AlertTest {
        id_or_name: String,
    },
    /// Recent deliveries and their outcome.
    AlertLog,
    AlertRemove {
        id_or_name: String,
        force: bool,
        #[serde(default)]
        if_version: Option<u64>,
    },
    /// Change the given fields of a check.
    CheckEdit {
        id_or_name: String,
        patch: Patch,
        #[serde(default)]
        if_version: Option<u64>,
    },
    /// Every live member probes now; nothing is committed.
    CheckTest {
        subject: TestSubject,
    },
    /// Change the given fields of an alert (also disable/enable, default).
    AlertEdit {
        id_or_name: String,
        patch: Patch,
        #[serde(default)]
        if_version: Option<u64>,
    },
    SilenceAdd {
        spec: SilenceSpec,
        #[serde(default)]
        if_version: Option<u64>,
    },
    SilenceList,
    /// `qu cluster resolvers set|clear` (empty clears).
    ResolversSet {
        resolvers: Vec<String>,
        #[serde(default)]
        if_version: Option<u64>,
    },
    /// `qu cluster resolvers show`.
    ResolversShow,
    /// `qu cluster retention DURATION` (level 4).
    RetentionSet {
        retention_ms: u64,
        #[serde(default)]
        if_version: Option<u64>,
    },
    /// `qu cluster retention`.
    RetentionShow,
    /// `qu check history NAME --since D`: the committed history from this
    /// node's copy of the replicated state.
    CheckHistory {
        id_or_name: String,
        since_ms: u64,
    },
    /// `qu report --since D [--check NAME…]` (empty: every check).
    Report {
        since_ms: u64,
        #[serde(default)]
        checks: Vec<String>,
    },
    SilenceRemove {
        id: String,
        #[serde(default)]
        if_version: Option<u64>,
    },
    MaintenanceAdd {
        spec: WindowSpec,
        #[serde(default)]
        if_version: Option<u64>,
    },
    MaintenanceList,
    MaintenanceRemove {
        id_or_name: String,
        #[serde(default)]
        if_version: Option<u64>,
    },
}

/// What `qu check test` probes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "subject", rename_all = "snake_case")]
pub enum TestSubject {
    /// An existing check, by id or name.
    Check { id_or_name: String },
    /// A check not added yet.
    Spec { kind: CheckKind, timeout_ms: u64 },
}

/// A silence as the operator describes it (checks by name).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SilenceSpec {
    #[serde(default)]
    pub checks: Vec<String>,
    #[serde(default)]
    pub all: bool,
    /// `--for`, or `--until` (ms since the epoch).
    #[serde(default)]
    pub for_ms: Option<u64>,
    #[serde(default)]
    pub until_ms: Option<u64>,
    #[serde(default)]
    pub reason: String,
}

/// A maintenance window as the operator describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowSpec {
    pub name: String,
    pub every: String,
    pub duration_ms: u64,
    pub tz: String,
    #[serde(default)]
    pub checks: Vec<String>,
    #[serde(default)]
    pub all: bool,
}

/// One node's answer to `qu check test`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeTest {
    pub node_id: NodeId,
    /// False when the node did not answer in time (then no result).
    pub answered: bool,
    pub ok: bool,
    pub latency_ms: u64,
    /// Why the probe failed, or why there is no answer.
    #[serde(default)]
    pub reason: String,
    pub voter: bool,
}

/// `qu check test`: every node's probe and the verdict the quorum rule
/// reaches on them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestReport {
    /// The check's name, or its target when not added.
    pub subject: String,
    pub nodes: Vec<NodeTest>,
    /// `up`, `down`, or `none` (no majority either way).
    pub verdict: String,
    pub voters: usize,
}

/// One active silence as `qu silence list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SilenceRow {
    pub id: String,
    /// Check names (`*` for all).
    pub checks: Vec<String>,
    pub all: bool,
    pub start: String,
    pub end: String,
    pub reason: String,
    /// The maintenance window it is an occurrence of.
    pub window: Option<String>,
}

/// One maintenance window as `qu maintenance list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowRow {
    pub id: String,
    pub name: String,
    pub every: String,
    pub duration: String,
    pub tz: String,
    pub checks: Vec<String>,
    pub all: bool,
    /// Open now (its silence is active).
    pub open: bool,
    /// The next (or current) occurrence, RFC 3339 in UTC, and in its tz.
    pub next_start: Option<String>,
    pub next_end: Option<String>,
    #[serde(default)]
    pub next_local: Option<String>,
}

/// A check as the operator describes it (alerts by name; no id yet).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckSpec {
    pub name: String,
    pub kind: CheckKind,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    #[serde(default)]
    pub alerts: Vec<String>,
    /// No `--alerts` was given: the check gets the default alerts (an
    /// older CLI never sets it, and gets none, as before).
    #[serde(default)]
    pub default_alerts: bool,
}

/// An alert as the operator describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertSpec {
    pub name: String,
    pub kind: AlertKind,
    /// Checks added without `--alerts` get it.
    #[serde(default)]
    pub default: bool,
    /// `--repeat`: re-page every this many ms while a check stays DOWN.
    #[serde(default)]
    pub repeat_ms: Option<u64>,
    /// `--title` / `--body` templates (checked by the daemon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// `--on`: the events it gets; None: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<Vec<qu_raft::alert_kinds::PageEvent>>,
    /// `--after`: page only if still DOWN after this many ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ms: Option<u64>,
}

/// The daemon's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum ControlReply {
    Status(Box<StatusReport>),
    TrustList {
        entries: Vec<TrustEntry>,
    },
    TrustRemoved {
        entry: TrustEntry,
        /// Open connections from the peer that were closed.
        closed_connections: usize,
        /// The peer is still a member of the replicated cluster.
        still_member: bool,
    },
    Hello {
        node_id: NodeId,
        fingerprint: String,
        advertise: String,
        /// The node is already a voter of this cluster, with this key.
        #[serde(default)]
        voter: bool,
    },
    /// A configuration mutation was committed (or found already done).
    Mutated {
        summary: String,
        version: u64,
    },
    NodeList {
        nodes: Vec<PeerRow>,
    },
    CheckList {
        /// The config version of the state the rows come from.
        #[serde(default)]
        version: u64,
        checks: Vec<CheckRow>,
    },
    CheckShow(Box<CheckDetail>),
    AlertList {
        alerts: Vec<AlertRow>,
    },
    AlertTested {
        message: String,
    },
    AlertLog {
        deliveries: Vec<DeliveryRow>,
    },
    CheckTested(Box<TestReport>),
    /// How long check history is kept, at config `version`.
    Retention {
        version: u64,
        retention_ms: u64,
        /// Never set: the default.
        default: bool,
    },
    CheckHistory {
        id: String,
        name: String,
        /// Where the window began (ms since the epoch).
        since_ms: u64,
        events: Vec<HistoryRow>,
    },
    Report(Box<Report>),
    /// The cluster's DNS servers for probes (empty: each node's system
    /// resolver), at config `version`.
    Resolvers {
        version: u64,
        resolvers: Vec<String>,
    },
    SilenceList {
        silences: Vec<SilenceRow>,
    },
    MaintenanceList {
        windows: Vec<WindowRow>,
    },
}

/// An error the daemon reports for a request.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ControlError {
    pub message: String,
}

impl ControlError {
    pub fn new(message: impl Into<String>) -> ControlError {
        ControlError {
            message: message.into(),
        }
    }
}

/// One member as `qu status` / `qu node list` show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerRow {
    pub node_id: NodeId,
    pub advertise: String,
    /// leader, follower, learner, or `-` when not in the Raft membership.
    pub role: String,
    pub live: bool,
    /// RFC 3339, when this node last heard from it.
    pub last_seen: Option<String>,
    /// Highest log index known replicated to it (known on the leader only).
    pub matched: Option<u64>,
    /// Entries it is behind the leader's last log index (leader only).
    pub lag: Option<u64>,
    /// The build it runs (`qu --version`), as it last said; `None` when it
    /// has not said yet or is older than this field.
    #[serde(default)]
    pub version: Option<String>,
    /// Its clock minus the voters' common time, in ms, as this node
    /// estimates it (`daemon::clock`); `None` when not known (no fresh
    /// sample, an older node, not a voter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<i64>,
    /// Its clock is off by more than `clock::LIMIT_MS`: it is kept from
    /// leading.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clock_off: bool,
}

impl PeerRow {
    /// The CLOCK column: `+3ms`, `-4.0s OFF`, or `-`.
    pub fn clock_word(&self) -> String {
        match self.clock_offset_ms {
            None => "-".into(),
            Some(ms) => {
                let v = if ms.unsigned_abs() >= 1000 {
                    format!("{:+.1}s", ms as f64 / 1000.0)
                } else {
                    format!("{ms:+}ms")
                };
                if self.clock_off {
                    format!("{v} OFF")
                } else {
                    v
                }
            }
        }
    }
}

/// One check as listings show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckRow {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub target: String,
    pub interval: String,
    pub timeout: String,
    pub state: String,
    pub since: Option<String>,
    pub votes: Option<String>,
    /// Alert names.
    pub alerts: Vec<String>,
    pub spec: CheckKind,
    /// The state is the last one committed, and no verdict can be reached
    /// now (this node sees no quorum): it may be out of date.
    #[serde(default)]
    pub stale: bool,
    #[serde(default)]
    pub paused: bool,
    /// The silence muting it now: `ID until RFC3339`.
    #[serde(default)]
    pub muted: Option<String>,
    /// Why the state restarted at unknown (an edit of its target).
    #[serde(default)]
    pub note: Option<String>,
    /// Uptime in percent over the last 24 hours, 7 and 30 days, from the
    /// committed history (None: neither up nor down was seen).
    #[serde(default)]
    pub uptime: UptimeCols,
}

/// A check's uptime over the standard windows, in percent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UptimeCols {
    #[serde(rename = "24h")]
    pub day: Option<f64>,
    #[serde(rename = "7d")]
    pub week: Option<f64>,
    #[serde(rename = "30d")]
    pub month: Option<f64>,
}

/// One event of `qu check history`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryRow {
    pub at_ms: u64,
    /// RFC 3339.
    pub at: String,
    /// `flip`, `added`, `paused`, `resumed`, `restarted`, `baseline`.
    pub event: String,
    /// `up -> down`, `unknown`, `paused`…
    pub state: String,
    /// `2/3 down: connection refused` (flips), or why (restarts).
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<qu_raft::model::Evidence>,
}

/// `qu report`: per check, what its committed timeline says about a window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub from_ms: u64,
    pub to_ms: u64,
    pub checks: Vec<ReportRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportRow {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Up over up plus down, in percent (None: neither was seen).
    pub uptime_percent: Option<f64>,
    #[serde(flatten)]
    pub figures: qu_raft::history::Uptime,
}

/// `qu check show`: the check, its committed state and the last round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckDetail {
    pub check: CheckRow,
    /// The last committed flip, with its per-node evidence.
    pub last_transition: Option<qu_raft::model::TransitionRecord>,
    pub flips: u64,
    /// The leader's last evaluated round (None when no leader answered).
    pub last_round: Option<crate::checks::aggregate::RoundOutcome>,
    /// Rounds this node could not start on time.
    pub missed_rounds: u64,
    /// This node's latest probe (the one made at once when the check was
    /// added is marked `counted: false`).
    #[serde(default)]
    pub local_probe: Option<crate::checks::scheduler::LocalProbe>,
    /// Each member's own latency and success rollups (this node first);
    /// absent from daemons older than the rollups.
    #[serde(default)]
    pub latency: Vec<NodeLatency>,
    /// The round timetable (`checks::rounds::Schedule`), for programs:
    /// round `k` is probed on every node from `k·interval_ms +
    /// round_offset_ms` for up to `timeout_ms`, and a flip confirmed in
    /// round `k` rests on rounds `k-1` and `k`. 0 from older daemons.
    #[serde(default)]
    pub round_offset_ms: u64,
    #[serde(default)]
    pub interval_ms: u64,
    #[serde(default)]
    pub timeout_ms: u64,
}

/// One member's rollups of a check, as `qu check show` lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeLatency {
    pub node: qu_raft::NodeId,
    /// The node that answered `qu check show`.
    #[serde(default)]
    pub this_node: bool,
    /// False when the node did not answer in time (down, unreachable, or
    /// too old to know the request); `note` says which.
    pub answered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// 1h, 24h, 7d (empty when not answered).
    #[serde(default)]
    pub windows: Vec<crate::checks::rollup::WindowStats>,
}

/// One alert as listings show it, secrets masked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertRow {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Where it sends, secrets masked.
    pub target: String,
    pub used_by: Vec<String>,
    pub spec: AlertKind,
    #[serde(default)]
    pub disabled: bool,
    /// Checks added without --alerts get it.
    #[serde(default)]
    pub default: bool,
    /// `--repeat`, as a duration (`1h`), when set.
    #[serde(default)]
    pub repeat: Option<String>,
    /// `--on`: the events it gets (`down,recovered`); None: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
    /// `--after`, as a duration, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The `--title` / `--body` templates, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// One delivery as `qu alert log` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub id: String,
    pub check: String,
    /// DOWN or RECOVERED.
    pub event: String,
    pub alert: String,
    /// pending, delivered or failed.
    pub status: String,
    /// When the transition was committed (RFC 3339).
    pub created: String,
    /// When it was delivered or given up (RFC 3339).
    pub settled: Option<String>,
    pub attempts: u32,
    /// Why it failed (settled), or the last error of an attempt (pending).
    pub reason: Option<String>,
    /// When the leader tries a pending delivery again (RFC 3339).
    #[serde(default)]
    pub next_retry: Option<String>,
}

/// The Raft block of `qu status`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct RaftInfo {
    pub last_log_index: Option<u64>,
    pub committed: Option<u64>,
    pub applied: Option<u64>,
    pub snapshot: Option<u64>,
    pub purged: Option<u64>,
}

/// What `qu status` shows (SPEC §11).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    pub node_id: NodeId,
    pub fingerprint: String,
    pub advertise: String,
    pub listen: String,
    pub version: String,
    pub uptime_secs: u64,
    /// `fresh` (never formed or joined a cluster), `member`, `wiped`
    /// (claimed, but its raft/ data is gone), or `removed`.
    pub membership: String,
    pub cluster_id: Option<String>,
    pub term: u64,
    /// The master, while this node sees a quorum behind it.
    pub master: Option<NodeId>,
    /// Without quorum: the last master this node knew, and how long ago it
    /// last heard from it.
    #[serde(default)]
    pub last_master: Option<NodeId>,
    #[serde(default)]
    pub last_master_seen_secs: Option<u64>,
    /// A fresh node counts as a working one-node cluster (it forms one on
    /// the first change): quorum true, need 1 of 1.
    pub quorum: bool,
    pub need: usize,
    pub voters: usize,
    pub config_version: u64,
    pub peers: Vec<PeerRow>,
    pub checks: Vec<CheckRow>,
    pub raft: RaftInfo,
    /// The leadership policy (SPEC §7).
    pub policy: crate::daemon::policy::PolicyView,
    #[serde(default)]
    pub probing: ProbingInfo,
    /// The background duties and their health (the supervisor's view).
    #[serde(default)]
    pub duties: Vec<crate::daemon::supervisor::DutyHealth>,
    #[serde(default)]
    pub alerting: AlertingInfo,
    /// The log level the cluster has committed that every member reads
    /// (commands up to it need no asking), and the highest this node reads.
    #[serde(default)]
    pub log_level: u32,
    #[serde(default)]
    pub reads_log_level: u32,
    /// Set when no majority of voters agree on the time (then no clock is
    /// judged; see the peers' clock offsets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_disagree: Option<String>,
}

/// Alert dispatch counters of `qu status` (since the daemon started).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct AlertingInfo {
    /// Alert sends running now.
    pub sends_in_flight: usize,
    /// Quorum rounds run to confirm leadership before sends.
    pub confirmation_rounds: u64,
}

/// Probing counters of `qu status` (since the daemon started).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ProbingInfo {
    /// Checks this node probes now.
    pub checks: u64,
    pub probes: u64,
    /// Rounds not started on time (the process stalled).
    pub missed_rounds: u64,
    /// Results dropped because the report queue was full.
    pub dropped_results: u64,
    /// Results sent to the master, and in how many reports.
    pub results_reported: u64,
    pub reports: u64,
    /// On the master: what its evaluations saw since it became master.
    pub rounds: Option<crate::checks::aggregate::RoundCounters>,
}

/// Errors of the CLI side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the qu daemon at {} ({})", .path.display(), unreachable_why(.error))]
    Unreachable {
        path: PathBuf,
        /// Worded by `unreachable_why` (so not a `source`: the chain would
        /// repeat it).
        error: std::io::Error,
    },
    #[error("the qu daemon at {} did not answer within {}", .path.display(), crate::config::duration::format(*.after))]
    Timeout { path: PathBuf, after: Duration },
    #[error("talking to the qu daemon at {}: {detail}", .path.display())]
    Protocol { path: PathBuf, detail: String },
    #[error("{0}")]
    Daemon(#[from] ControlError),
    #[error("refusing to talk to {}: the process behind it runs as uid {daemon_uid}, not as you (uid {me}), root, or the owner of its directory; another user may have planted it. Check who owns it (ls -l) and point --socket / QUPTIME_SOCKET at your daemon's socket", .path.display())]
    Impostor {
        path: PathBuf,
        daemon_uid: u32,
        me: u32,
    },
}

/// Why the control socket could not be reached, and what to do.
fn unreachable_why(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => {
            "no socket there: is 'qu serve' running? It may use another --socket / QUPTIME_SOCKET"
                .into()
        }
        ConnectionRefused => "nothing listens on the socket: is 'qu serve' running?".into(),
        PermissionDenied => "permission denied: run qu as the daemon's user, or as root".into(),
        _ => format!("{e}: is 'qu serve' running?"),
    }
}

/// Sends one request to the daemon and waits for the reply.
pub async fn request(
    socket: &Path,
    req: &ControlRequest,
    deadline: Duration,
) -> Result<ControlReply, ClientError> {
    let path = socket.to_path_buf();
    let exchange = async {
        let mut stream =
            UnixStream::connect(socket)
                .await
                .map_err(|error| ClientError::Unreachable {
                    path: path.clone(),
                    error,
                })?;
        let me = crate::config::secure::euid();
        let daemon_uid =
            stream
                .peer_cred()
                .map(|c| c.uid())
                .map_err(|e| ClientError::Protocol {
                    path: path.clone(),
                    detail: format!("cannot read the daemon's credentials: {e}"),
                })?;
        if !crate::config::secure::cli_accepts(daemon_uid, me, socket) {
            return Err(ClientError::Impostor {
                path: path.clone(),
                daemon_uid,
                me,
            });
        }
        let proto = |detail: String| ClientError::Protocol {
            path: path.clone(),
            detail,
        };
        let bytes = serde_json::to_vec(req).map_err(|e| proto(e.to_string()))?;
        write_frame(&mut stream, &bytes)
            .await
            .map_err(|e| proto(e.to_string()))?;
        let reply = read_frame(&mut stream, MAX_CONTROL_FRAME)
            .await
            .map_err(|e| proto(e.to_string()))?
            .ok_or_else(|| proto("the daemon closed the connection without answering".into()))?;
        let reply: Result<ControlReply, ControlError> =
            serde_json::from_slice(&reply).map_err(|e| proto(format!("unreadable reply: {e}")))?;
        Ok(reply?)
    };
    tokio::time::timeout(deadline, exchange)
        .await
        .map_err(|_| ClientError::Timeout {
            path: path.clone(),
            after: deadline,
        })?
}

/// Errors binding the control socket.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another qu daemon is already serving the control socket {}; stop it first, or give this one its own --socket", .0.display())]
    InUse(PathBuf),
    #[error("cannot create the control socket {}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{0}")]
    Insecure(#[from] crate::config::secure::InsecureError),
    #[error("{} exists and is not a socket; refusing to replace it (move it away, or choose another --socket)", .0.display())]
    NotASocket(PathBuf),
}

/// Binds the control socket: creates its directory (0700) if missing and
/// checks it (`secure::check_socket_dir`: a real directory, ours, 0700),
/// replaces only a stale *socket* at the path, refuses when a live daemon
/// holds it, and creates the socket under the daemon's umask 077 (mode
/// 0600 set after, never wider in between).
pub async fn bind(path: &Path) -> Result<UnixListener, BindError> {
    let io_err = |source| BindError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if std::fs::symlink_metadata(dir).is_err() {
            crate::config::atomic::create_private_dir(dir).map_err(io_err)?;
        }
        crate::config::secure::check_socket_dir(dir)?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(BindError::NotASocket(path.to_path_buf()));
        }
        let live = tokio::time::timeout(Duration::from_secs(1), UnixStream::connect(path)).await;
        if matches!(live, Ok(Ok(_))) {
            return Err(BindError::InUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(io_err)?;
    }
    let listener = UnixListener::bind(path).map_err(io_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
    Ok(listener)
}

/// Reads one request from a CLI connection, with a deadline.
pub async fn read_request(
    stream: &mut UnixStream,
    deadline: Duration,
) -> Result<ControlRequest, String> {
    let frame = tokio::time::timeout(deadline, read_frame(stream, MAX_CONTROL_FRAME))
        .await
        .map_err(|_| "no request within the deadline".to_string())?
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "closed before sending a request".to_string())?;
    serde_json::from_slice(&frame).map_err(|e| format!("unknown or malformed request: {e}"))
}

/// Writes the reply to a CLI connection.
pub async fn write_reply(
    stream: &mut UnixStream,
    reply: &Result<ControlReply, ControlError>,
) -> io::Result<()> {
    let bytes = serde_json::to_vec(reply).map_err(io::Error::other)?;
    write_frame(stream, &bytes).await
}
