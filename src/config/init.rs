//! `qu init`: creates a node's state directory (SPEC §2).
//!
//! Invariants: an existing identity is never overwritten; the directory is
//! 0700, the private key 0600; node.yaml is written last, so a directory
//! without node.yaml holds no identity and `qu init` may be re-run in it.

use std::net::IpAddr;
use std::path::PathBuf;

use super::atomic::create_private_dir;
use super::node::{validate_advertise, NodeConfig, NodeConfigError};
use super::StatePaths;
use crate::crypto::{Fingerprint, IdentityError, NewIdentity};
use crate::trust::{TrustError, TrustStore};
use qu_raft::NodeId;

/// What `qu init` was asked for.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub advertise: String,
    pub bind_addr: IpAddr,
    pub bind_port: u16,
    pub node_id: Option<NodeId>,
    pub join_from: Vec<Fingerprint>,
}

/// What `qu init` made.
#[derive(Debug, Clone)]
pub struct InitOutcome {
    pub dir: PathBuf,
    pub node: NodeConfig,
    pub fingerprint: Fingerprint,
}

/// Why `qu init` refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{} already holds the identity of node {node}; refusing to overwrite it. To start over, stop 'qu serve', move or delete {} (this forgets the node's keys and cluster state), and run 'qu init' again; or set QUPTIME_DIR / --dir to another directory", .dir.display(), .dir.display())]
    Exists { dir: PathBuf, node: String },
    #[error("{0}")]
    Invalid(#[from] NodeConfigError),
    #[error("cannot create {}: {source}", .dir.display())]
    CreateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Identity(#[from] IdentityError),
    #[error("{0}")]
    Trust(#[from] TrustError),
}

/// Creates the node's identity in `paths`. Blocking (key generation and
/// fsync): call it off the async runtime.
pub fn init_node(paths: &StatePaths, opts: &InitOptions) -> Result<InitOutcome, InitError> {
    validate_advertise(&opts.advertise)?;
    super::node::refuse_unspecified_advertise(&opts.advertise)?;
    if opts.bind_port == 0 {
        return Err(NodeConfigError::Invalid("--port must be 1-65535".into()).into());
    }
    if paths.node_file().exists() {
        let node = NodeConfig::load(&paths.node_file())
            .map(|n| n.node_id.to_string())
            .unwrap_or_else(|_| "unknown (node.yaml unreadable)".into());
        return Err(InitError::Exists {
            dir: paths.dir.clone(),
            node,
        });
    }
    let mkdir = |dir: PathBuf| {
        create_private_dir(&dir).map_err(|source| InitError::CreateDir { dir, source })
    };
    mkdir(paths.dir.clone())?;
    mkdir(paths.keys_dir())?;

    let identity = NewIdentity::generate(opts.node_id)?;
    identity.write(&paths.keys_dir())?;
    TrustStore::default().save(&paths.trust_file())?;
    let node = NodeConfig {
        node_id: identity.node_id,
        bind_addr: opts.bind_addr,
        bind_port: opts.bind_port,
        advertise: opts.advertise.clone(),
        join_from: opts.join_from.clone(),
        leader_cooldown: None,
        probe_source: None,
        http_listen: None,
        http_public_listen: None,
    };
    node.save(&paths.node_file())?;
    Ok(InitOutcome {
        dir: paths.dir.clone(),
        node,
        fingerprint: identity.fingerprint,
    })
}
