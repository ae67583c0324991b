//! `node.yaml`: this node's own settings (SPEC §2). Never replicated.
//!
//! Invariant: a loaded `NodeConfig` has been validated (advertise is
//! HOST:PORT, bind address is an IP, port in range).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::atomic::{write_atomic, FileMode};
use crate::crypto::Fingerprint;
use qu_raft::NodeId;

pub const DEFAULT_BIND_ADDR: &str = "0.0.0.0";
pub const DEFAULT_PORT: u16 = 9001;

/// The contents of node.yaml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub node_id: NodeId,
    pub bind_addr: IpAddr,
    pub bind_port: u16,
    /// HOST:PORT other nodes dial.
    pub advertise: String,
    /// When non-empty, the only fingerprints allowed to claim this node
    /// while it is fresh (`qu init --join-from`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub join_from: Vec<Fingerprint>,
    /// How long a smaller live voter must be live before leadership moves
    /// to it (Go duration; default 30s). `qu serve --leader-cooldown` wins.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::config::duration::serde_go_opt"
    )]
    pub leader_cooldown: Option<std::time::Duration>,
    /// Local address probes leave from (default: chosen by routing).
    /// `qu serve --probe-source` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_source: Option<IpAddr>,
    /// The HTTP listener for /metrics, /healthz, /readyz and the status
    /// page (default: off). `qu serve --http` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_listen: Option<std::net::SocketAddr>,
    /// The public listener: the status page and /readyz only (default:
    /// off). `qu serve --http-public` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_public_listen: Option<std::net::SocketAddr>,
}

/// Errors reading, validating or writing node.yaml.
#[derive(Debug, thiserror::Error)]
pub enum NodeConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not valid node.yaml: {detail}")]
    Parse { path: PathBuf, detail: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("{0}")]
    Invalid(String),
}

/// Checks an advertise address: `HOST:PORT` or `[V6]:PORT`, port 1–65535.
pub fn validate_advertise(advertise: &str) -> Result<(), NodeConfigError> {
    let bad = |why: &str| {
        NodeConfigError::Invalid(format!(
            "--advertise {advertise:?} {why}: give the HOST:PORT other nodes can reach, e.g. alpha.example.com:9001 or [2001:db8::1]:9001"
        ))
    };
    let (host, port) = advertise
        .rsplit_once(':')
        .ok_or_else(|| bad("has no port"))?;
    if host.is_empty() {
        return Err(bad("has no host"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(bad("is an IPv6 address without brackets"));
    }
    if host.contains(char::is_whitespace) || host.contains('/') {
        return Err(bad("is not a host name"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(bad("has no valid port (1-65535)")),
    }
}

/// The port of a valid `--advertise` HOST:PORT.
pub fn advertise_port(advertise: &str) -> Option<u16> {
    advertise.rsplit_once(':')?.1.parse().ok()
}

/// Refuses an advertise address no other node can dial (0.0.0.0, ::): a
/// listen-everywhere address is for `--bind`.
pub fn refuse_unspecified_advertise(advertise: &str) -> Result<(), NodeConfigError> {
    let host = advertise
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or(advertise);
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_unspecified() => Err(NodeConfigError::Invalid(format!(
            "--advertise {advertise:?} is not an address other nodes can dial: give this host's name or address as they reach it (e.g. alpha.example.com:9001 or 192.0.2.10:9001); to listen on every address, use --bind {ip}"
        ))),
        _ => Ok(()),
    }
}

impl NodeConfig {
    /// The socket address to listen on.
    pub fn bind_socket(&self) -> SocketAddr {
        SocketAddr::new(self.bind_addr, self.bind_port)
    }

    pub fn validate(&self) -> Result<(), NodeConfigError> {
        validate_advertise(&self.advertise)
    }

    pub fn load(path: &Path) -> Result<NodeConfig, NodeConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| NodeConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let cfg: NodeConfig =
            serde_yaml_ng::from_str(&text).map_err(|e| NodeConfigError::Parse {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
        cfg.validate().map_err(|e| NodeConfigError::Parse {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        Ok(cfg)
    }

    pub fn save(&self, path: &Path) -> Result<(), NodeConfigError> {
        let text =
            serde_yaml_ng::to_string(self).map_err(|e| NodeConfigError::Invalid(e.to_string()))?;
        write_atomic(path, text.as_bytes(), FileMode::Public).map_err(|source| {
            NodeConfigError::Write {
                path: path.to_path_buf(),
                source,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertise_validation() {
        assert!(validate_advertise("alpha.example.com:9001").is_ok());
        assert!(validate_advertise("127.0.0.1:1").is_ok());
        assert!(validate_advertise("[::1]:9001").is_ok());
        for bad in [
            "alpha",
            "alpha:",
            ":9001",
            "alpha:0",
            "alpha:70000",
            "::1:9001",
            "a b:1",
        ] {
            let err = validate_advertise(bad).unwrap_err().to_string();
            assert!(err.contains("--advertise"), "{bad}: {err}");
        }
    }

    #[test]
    fn round_trips_through_yaml() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.yaml");
        let cfg = NodeConfig {
            node_id: NodeId(0xa7f3),
            bind_addr: "0.0.0.0".parse().unwrap(),
            bind_port: 9001,
            advertise: "alpha:9001".into(),
            join_from: vec![],
            leader_cooldown: Some(std::time::Duration::from_secs(45)),
            probe_source: None,
            http_listen: None,
            http_public_listen: None,
        };
        cfg.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("node_id: 000000000000a7f3"), "{text}");
        assert_eq!(NodeConfig::load(&path).unwrap(), cfg);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.yaml");
        std::fs::write(
            &path,
            "node_id: 000000000000a7f3\nbind_addr: 0.0.0.0\nbind_port: 9001\nadvertise: a:1\nbogus: 1\n",
        )
        .unwrap();
        let err = NodeConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");
    }
}
