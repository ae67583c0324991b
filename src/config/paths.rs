//! Where a node keeps its state and its control socket (SPEC §2).
//!
//! Resolution is a pure function of an `Env` snapshot so every rule is unit
//! tested without touching the real environment:
//! - state dir: `$QUPTIME_DIR`; else `/etc/quptime` as root; else
//!   `$XDG_CONFIG_HOME/quptime`; else `~/.config/quptime`.
//! - socket: `$QUPTIME_SOCKET`; else `/var/run/quptime/quptime.sock` as root;
//!   else `$XDG_RUNTIME_DIR/quptime/quptime.sock`; else (no runtime dir, a
//!   choice of ours) `quptime.sock` inside the state directory.

use std::path::{Path, PathBuf};

/// File names inside the state directory.
pub const NODE_FILE: &str = "node.yaml";
pub const TRUST_FILE: &str = "trust.yaml";
pub const CLUSTER_FILE: &str = "cluster.yaml";
pub const KEYS_DIR: &str = "keys";
pub const RAFT_DIR: &str = "raft";
/// This node's own probe rollups (not replicated).
pub const ROLLUP_DIR: &str = "rollups";
pub const CLAIM_FILE: &str = "claim.yaml";

/// The parts of the process environment path resolution depends on.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub quptime_dir: Option<PathBuf>,
    pub quptime_socket: Option<PathBuf>,
    pub xdg_config_home: Option<PathBuf>,
    pub xdg_runtime_dir: Option<PathBuf>,
    pub home: Option<PathBuf>,
    pub is_root: bool,
}

/// No rule gave a state directory.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot choose a state directory: neither QUPTIME_DIR, XDG_CONFIG_HOME nor HOME is set (set QUPTIME_DIR or pass --dir)")]
pub struct NoStateDir;

fn non_empty(v: Option<std::ffi::OsString>) -> Option<PathBuf> {
    v.filter(|s| !s.is_empty()).map(PathBuf::from)
}

impl Env {
    /// Reads the real process environment.
    pub fn from_process() -> Env {
        Env {
            quptime_dir: non_empty(std::env::var_os("QUPTIME_DIR")),
            quptime_socket: non_empty(std::env::var_os("QUPTIME_SOCKET")),
            xdg_config_home: non_empty(std::env::var_os("XDG_CONFIG_HOME")),
            xdg_runtime_dir: non_empty(std::env::var_os("XDG_RUNTIME_DIR")),
            home: non_empty(std::env::var_os("HOME")),
            is_root: rustix::process::geteuid().is_root(),
        }
    }

    /// The state directory.
    pub fn state_dir(&self) -> Result<PathBuf, NoStateDir> {
        if let Some(d) = &self.quptime_dir {
            return Ok(d.clone());
        }
        if self.is_root {
            return Ok(PathBuf::from("/etc/quptime"));
        }
        if let Some(x) = &self.xdg_config_home {
            return Ok(x.join("quptime"));
        }
        if let Some(h) = &self.home {
            return Ok(h.join(".config").join("quptime"));
        }
        Err(NoStateDir)
    }

    /// The control socket path.
    pub fn socket_path(&self) -> Result<PathBuf, NoStateDir> {
        if let Some(s) = &self.quptime_socket {
            return Ok(s.clone());
        }
        if self.is_root {
            return Ok(PathBuf::from("/var/run/quptime/quptime.sock"));
        }
        if let Some(r) = &self.xdg_runtime_dir {
            return Ok(r.join("quptime").join("quptime.sock"));
        }
        Ok(self.state_dir()?.join("quptime.sock"))
    }
}

/// The files of one node's state directory.
#[derive(Debug, Clone)]
pub struct StatePaths {
    pub dir: PathBuf,
}

impl StatePaths {
    pub fn new(dir: impl Into<PathBuf>) -> StatePaths {
        StatePaths { dir: dir.into() }
    }
    pub fn node_file(&self) -> PathBuf {
        self.dir.join(NODE_FILE)
    }
    pub fn trust_file(&self) -> PathBuf {
        self.dir.join(TRUST_FILE)
    }
    pub fn cluster_file(&self) -> PathBuf {
        self.dir.join(CLUSTER_FILE)
    }
    pub fn keys_dir(&self) -> PathBuf {
        self.dir.join(KEYS_DIR)
    }
    pub fn claim_file(&self) -> PathBuf {
        self.dir.join(CLAIM_FILE)
    }
    pub fn raft_dir(&self) -> PathBuf {
        self.dir.join(RAFT_DIR)
    }
    pub fn rollup_dir(&self) -> PathBuf {
        self.dir.join(ROLLUP_DIR)
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env {
            home: Some("/home/op".into()),
            ..Env::default()
        }
    }

    #[test]
    fn quptime_dir_wins_over_everything() {
        let e = Env {
            quptime_dir: Some("/srv/qu".into()),
            is_root: true,
            xdg_config_home: Some("/x".into()),
            ..env()
        };
        assert_eq!(e.state_dir().unwrap(), PathBuf::from("/srv/qu"));
    }

    #[test]
    fn root_uses_etc_and_var_run() {
        let e = Env {
            is_root: true,
            xdg_config_home: Some("/x".into()),
            xdg_runtime_dir: Some("/run/user/0".into()),
            ..env()
        };
        assert_eq!(e.state_dir().unwrap(), PathBuf::from("/etc/quptime"));
        assert_eq!(
            e.socket_path().unwrap(),
            PathBuf::from("/var/run/quptime/quptime.sock")
        );
    }

    #[test]
    fn non_root_prefers_xdg_then_home() {
        let e = Env {
            xdg_config_home: Some("/cfg".into()),
            xdg_runtime_dir: Some("/run/user/1000".into()),
            ..env()
        };
        assert_eq!(e.state_dir().unwrap(), PathBuf::from("/cfg/quptime"));
        assert_eq!(
            e.socket_path().unwrap(),
            PathBuf::from("/run/user/1000/quptime/quptime.sock")
        );
        let plain = env();
        assert_eq!(
            plain.state_dir().unwrap(),
            PathBuf::from("/home/op/.config/quptime")
        );
        assert_eq!(
            plain.socket_path().unwrap(),
            PathBuf::from("/home/op/.config/quptime/quptime.sock")
        );
    }

    #[test]
    fn socket_override_wins() {
        let e = Env {
            quptime_socket: Some("/tmp/q.sock".into()),
            is_root: true,
            ..env()
        };
        assert_eq!(e.socket_path().unwrap(), PathBuf::from("/tmp/q.sock"));
    }

    #[test]
    fn nothing_set_is_an_error_that_names_the_fix() {
        let err = Env::default().state_dir().unwrap_err();
        assert!(err.to_string().contains("QUPTIME_DIR"));
    }
}
