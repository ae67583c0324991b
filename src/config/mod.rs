//! On-disk configuration: paths, node.yaml, atomic writes, durations.

pub mod atomic;
pub mod claim;
pub mod duration;
pub mod init;
pub mod lock;
pub mod node;
pub mod paths;
pub mod secure;

pub use node::NodeConfig;
pub use paths::{Env, StatePaths};
