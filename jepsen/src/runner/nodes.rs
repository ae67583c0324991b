//! `qu` processes, each in its own namespace; the CLI reaches them through
//! their control sockets (unix sockets do not care about namespaces).
//! With libfaketime installed, each node runs under it with a clock file of
//! its own, so the nemesis can shift that node's wall clock while it runs
//! (monotonic clocks are never faked: tokio's timers stay true).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::net::Host;
use super::sh::run;

pub struct QuNode {
    pub host: Host,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub id: String,
    child: Option<Child>,
    qu: PathBuf,
    log: PathBuf,
    /// libfaketime's per-node offset file, when libfaketime is installed.
    clock: Option<PathBuf>,
    /// Arguments of `qu serve` besides `--probe-source`.
    pub serve_args: Vec<String>,
}

/// Where Debian puts libfaketime (package `faketime`), if it is installed.
pub fn libfaketime() -> Option<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// What the CLI needs to talk to a node: cheap to clone across threads.
/// It names a state directory and socket, not an identity: a node
/// re-initialised there is reached the same way (`Cluster::id` has ids).
#[derive(Clone)]
pub struct NodeCli {
    qu: PathBuf,
    dir: PathBuf,
    socket: PathBuf,
}

impl NodeCli {
    /// Runs a CLI command; `Err` holds stderr.
    pub fn qu(&self, args: &[&str], secs: u64) -> Result<String, String> {
        let out = Command::new("timeout")
            .arg(secs.to_string())
            .arg(&self.qu)
            .args(args)
            .env("QUPTIME_DIR", &self.dir)
            .env("QUPTIME_SOCKET", &self.socket)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    pub fn status(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.qu(&["status", "--json"], 5).ok()?).ok()
    }
}

impl QuNode {
    pub fn cli(&self) -> NodeCli {
        NodeCli {
            qu: self.qu.clone(),
            dir: self.dir.clone(),
            socket: self.socket.clone(),
        }
    }

    pub fn init(qu: &Path, host: Host, run_dir: &Path) -> Result<QuNode, String> {
        let clock = libfaketime().map(|_| run_dir.join(format!("{}.faketime", host.ns)));
        let dir = run_dir.join(&host.ns);
        let socket = run_dir.join(format!("{}.sock", host.ns));
        let mut node = QuNode {
            log: run_dir.join(format!("{}.log", host.ns)),
            host,
            dir,
            socket,
            id: String::new(),
            child: None,
            qu: qu.to_path_buf(),
            clock,
            serve_args: ["--timing", "fast", "--leader-cooldown", "2s"]
                .map(String::from)
                .to_vec(),
        };
        node.set_clock_offset(0)?;
        node.identity()?;
        Ok(node)
    }

    /// `qu init` in the state directory: a new identity; its node id.
    fn identity(&mut self) -> Result<(), String> {
        let advertise = self.host.qu_addr();
        let port = self.host.port.to_string();
        let ip = self.host.ip.clone();
        let out = self.qu(
            &[
                "init",
                "--advertise",
                &advertise,
                "--bind",
                &ip,
                "--port",
                &port,
            ],
            20,
        )?;
        self.id = out
            .lines()
            .find_map(|l| l.strip_prefix("node id").map(|v| v.trim().to_string()))
            .ok_or("qu init printed no node id")?;
        Ok(())
    }

    /// Deletes the whole state directory (keys, certificate, node.yaml,
    /// claim, Raft state) and runs `qu init` again with the same address:
    /// a new node id and fingerprint. Only while the node is stopped.
    pub fn reinit(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Err(format!("{} is running: stop it first", self.host.ns));
        }
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot delete {}: {e}", self.dir.display())),
        }
        self.identity()
    }

    /// Runs a CLI command; `Err` holds stderr.
    pub fn qu(&self, args: &[&str], secs: u64) -> Result<String, String> {
        let mut full = vec![self.qu.to_str().unwrap_or("qu")];
        full.extend_from_slice(args);
        let out = Command::new("timeout")
            .arg(secs.to_string())
            .args(&full)
            .env("QUPTIME_DIR", &self.dir)
            .env("QUPTIME_SOCKET", &self.socket)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// Shifts this node's wall clock by `secs` (0 = true time), effective
    /// at once in the running process. False when libfaketime is missing.
    pub fn set_clock_offset(&self, secs: i64) -> Result<bool, String> {
        let Some(file) = &self.clock else {
            return Ok(false);
        };
        std::fs::write(file, format!("{secs:+}s\n"))
            .map_err(|e| format!("{}: {e}", file.display()))?;
        Ok(true)
    }

    /// Deletes the node's Raft log and state machine (keys and node.yaml
    /// stay): a disk loss. Only while the node is stopped.
    pub fn wipe_raft(&self) -> Result<(), String> {
        let raft = self.dir.join("raft");
        match std::fs::remove_dir_all(&raft) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot wipe {}: {e}", raft.display())),
        }
    }

    pub fn start(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| e.to_string())?;
        let mut cmd = if self.host.netns {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &self.host.ns]).arg(&self.qu);
            c
        } else {
            Command::new(&self.qu)
        };
        if let (Some(lib), Some(file)) = (libfaketime(), &self.clock) {
            cmd.env("LD_PRELOAD", lib)
                .env("FAKETIME_TIMESTAMP_FILE", file)
                .env("FAKETIME_NO_CACHE", "1")
                .env("DONT_FAKE_MONOTONIC", "1");
        }
        let child = cmd
            .arg("serve")
            .args(&self.serve_args)
            .args(["--probe-source", &self.host.ip])
            .env("QUPTIME_DIR", &self.dir)
            .env("QUPTIME_SOCKET", &self.socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start qu serve: {e}"))?;
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if self.qu(&["status", "--json"], 5).is_ok()
                || self.socket.exists() && self.status().is_some()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "{} did not start; see {}",
            self.host.ns,
            self.log.display()
        ))
    }

    pub fn status(&self) -> Option<serde_json::Value> {
        let out = Command::new("timeout")
            .args(["5", self.qu.to_str()?, "status", "--json"])
            .env("QUPTIME_DIR", &self.dir)
            .env("QUPTIME_SOCKET", &self.socket)
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The `qu serve` process id (`ip netns exec` execs qu, so it is qu's).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn alive(&self) -> bool {
        self.child.is_some()
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            // `ip netns exec` execs qu, so the child pid is qu's.
            let _ = run(&["kill", sig, &c.id().to_string()], Duration::from_secs(5));
        }
    }

    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }
}

impl Drop for QuNode {
    fn drop(&mut self) {
        self.resume();
        self.kill();
    }
}

/// Creates `dir` (and parents) with mode 0700: qu refuses a control socket
/// in a directory open to others, and the run's sockets live here.
pub fn private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot make {} private: {e}", dir.display()))
}
