//! qu's replicated state machine and its openraft storage on sled.
//!
//! This crate holds no sockets: the binary carries Raft RPCs over its own
//! pinned-mTLS transport.

pub mod node_id;

pub use node_id::{NodeId, NodeIdError};
