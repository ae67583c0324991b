//! qu's replicated state machine and its openraft storage on sled.
//!
//! This crate holds no sockets: the binary carries Raft RPCs over its own
//! pinned-mTLS transport.
#![forbid(unsafe_code)]

pub mod alert_kinds;
pub mod history;
pub mod kinds;
pub mod model;
pub mod mute;
pub mod node_id;
pub mod patch;
pub mod state;
pub mod store;
pub mod types;

pub use node_id::{NodeId, NodeIdError};
pub use types::{RaftNode, TypeConfig};
