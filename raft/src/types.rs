//! The openraft type configuration of qu.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::state::{Request, Response};
use crate::NodeId;

/// How Raft reaches a member: address and pinned fingerprint. Kept in the
/// Raft membership so the network layer can dial and pin without asking
/// the state machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftNode {
    pub advertise: String,
    /// `SHA256:` + unpadded base64.
    pub fingerprint: String,
}

impl fmt::Display for RaftNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.advertise)
    }
}

openraft::declare_raft_types!(
    /// qu's Raft types: commands are `Request`, outcomes `Response`.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = RaftNode,
);

/// Snapshots travel and rest as one JSON document.
pub type SnapshotData = Vec<u8>;

pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, SnapshotData>;
pub type Raft = openraft::Raft<TypeConfig, crate::store::StateMachineStore>;
