//! The requests nodes send each other over the transport.
//!
//! Invariant: a stranger (hello path) can reach only `StrangerRequest`; the
//! member service is only ever called with a `PeerIdentity` the TLS layer
//! authenticated, and no request carries a sender field: where a Raft
//! message names its sender (the vote's leader/candidate), the member
//! service checks that name against the TLS identity.

use openraft::errors::Fatal;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use qu_raft::model::Peer;
use qu_raft::types::{SnapshotMeta, Vote};
use qu_raft::{NodeId, TypeConfig};

/// Requests served to anyone who completes the hello-path handshake.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum StrangerRequest {
    /// Who are you? (trust on first use)
    Hello,
    /// Join our cluster: trust these members. Served only while fresh.
    Join(JoinRequest),
}

/// The cluster a fresh node is asked to join.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    pub cluster_id: String,
    /// Every current member, with its certificate.
    pub members: Vec<Peer>,
}

/// A node's public identity, as `hello` returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HelloResponse {
    pub node_id: NodeId,
    pub advertise: String,
    #[serde(with = "crate::crypto::cert::der_b64")]
    pub cert: CertificateDer<'static>,
    /// The log level the node runs (`qu_raft::state::LOG_LEVEL`); absent
    /// from nodes of the first release, which read level 1 only.
    #[serde(default = "level_one")]
    pub level: u32,
}

fn level_one() -> u32 {
    1
}

/// Answers of the hello path.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StrangerResponse {
    Hello(HelloResponse),
    Joined { node_id: NodeId },
}

/// Requests between members.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum MemberRequest {
    /// Liveness probe.
    Ping,
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<TypeConfig>),
    PreVote(VoteRequest<TypeConfig>),
    Snapshot {
        vote: Vote,
        meta: SnapshotMeta,
        #[serde(with = "b64_bytes")]
        data: Vec<u8>,
    },
    TransferLeader(TransferLeaderRequest<TypeConfig>),
    /// An operation that must run on the leader, forwarded to it (see
    /// `routing`): proposals, node add/remove, alert tests, linearizable
    /// reads.
    OnLeader {
        op: super::routing::LeaderOp,
    },
    /// The leader tells a node it was removed from the cluster.
    Removed,
    /// Probe results for the leader's aggregator (the sender is the TLS peer).
    Report {
        reports: Vec<crate::checks::aggregate::ProbeReport>,
    },
    /// The leader's last evaluated round of a check.
    LastRound {
        check_id: String,
    },
    /// Which log level the node runs (a node one release older cannot
    /// decode this request, and so never reports a level).
    Level,
    /// Probe this now, outside the rounds (`qu check test`); nothing is
    /// recorded or reported.
    Probe {
        kind: qu_raft::model::CheckKind,
        timeout_ms: u64,
    },
    /// Which build the node runs (`crate::version::LONG`); older nodes
    /// answer `bad_request`, and are shown without a version.
    Version,
    /// This node's own latency and success rollups of a check (1h, 24h,
    /// 7d); older nodes answer `bad_request`, and `qu check show` lists
    /// them as "no answer (older release?)".
    Rollup {
        check_id: String,
    },
    /// The answering node's wall clock (clock health; `daemon::clock`);
    /// `off`: the caller judges its own clock off (so a voter it hands
    /// leadership to never hands it back). Older nodes answer
    /// `bad_request` and their clocks are not judged.
    Clock {
        #[serde(default)]
        off: bool,
    },
}

/// Why the leader could not carry out a forwarded operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum ClusterFailure {
    #[error("no quorum: {live} of {voters} nodes reachable (need {need}); refusing mutation")]
    NoQuorum {
        live: usize,
        voters: usize,
        need: usize,
    },
    #[error("this node is not the leader")]
    NotLeader { leader: Option<NodeId> },
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
}

/// Responses between members.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body", rename_all = "snake_case")]
pub enum MemberResponse {
    Pong,
    Append(Result<AppendEntriesResponse<TypeConfig>, Fatal<TypeConfig>>),
    Vote(Result<VoteResponse<TypeConfig>, Fatal<TypeConfig>>),
    Snapshot(Result<SnapshotResponse<TypeConfig>, Fatal<TypeConfig>>),
    TransferLeader(Result<TransferLeaderResponse<TypeConfig>, Fatal<TypeConfig>>),
    OnLeader(Result<super::routing::LeaderReply, ClusterFailure>),
    Ack,
    LastRound(Option<crate::checks::aggregate::RoundOutcome>),
    Level(u32),
    Probed {
        ok: bool,
        latency_ms: u64,
        reason: String,
    },
    Version(String),
    Rollup(crate::checks::rollup::Summary),
    /// Milliseconds since the Unix epoch by the answering node's clock.
    Clock {
        wall_ms: u64,
    },
}

/// Bytes as base64 in JSON (snapshots).
pub mod b64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}
