//! Helpers for tests that run real `qu` processes: a node with its own state
//! directory, port and control socket; waiting for conditions with deadlines.
#![allow(dead_code)]

pub mod receiver;
pub mod smtp;
pub mod target;
pub mod tls_target;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The `qu` under test: `QU_TEST_BIN` when set (CI runs the CLI tests
/// against the static release build that way), else cargo's build.
pub fn qu_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("QU_TEST_BIN")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_qu").to_string())
    })
}

/// A loopback port nobody listens on right now, reserved for this test
/// process until it exits.
pub fn free_port() -> u16 {
    reserved_port("127.0.0.1")
}

/// A port on loopback address `ip` that stays ours for the life of this test
/// process, even while nothing listens on it (a node stopped between two
/// starts). Two things could otherwise take it: the kernel, which hands out
/// ports of its ephemeral range to every `bind(0)` and outgoing connection,
/// and another test binary running at the same time. So the port is drawn
/// from below the ephemeral range, and claimed by creating a file named
/// after it that holds our pid (a claim whose process is gone is taken
/// over).
pub fn reserved_port(ip: &str) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);

    let low: u32 = 20_000;
    let high: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .filter(|&first: &u32| first > low + 1_000)
        .unwrap_or(32_768);
    let span = high - low;
    let claims = std::env::temp_dir().join("qu-test-ports");
    std::fs::create_dir_all(&claims).expect("create the port claim directory");
    // Spread processes over the range so they rarely probe the same ports.
    let start = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..span {
        let port = (low + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span) as u16;
        if claim_port(&claims.join(port.to_string()))
            && std::net::TcpListener::bind((ip, port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port in {low}..{high} on {ip}");
}

/// Creates `file` holding our pid; takes over a claim whose process is gone.
fn claim_port(file: &Path) -> bool {
    use std::io::Write;
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(file)
        {
            Ok(mut f) => return write!(f, "{}", std::process::id()).is_ok(),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = std::fs::read_to_string(file).unwrap_or_default();
                let alive = owner.trim().parse::<u32>().is_ok_and(|pid| {
                    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
                });
                if alive || std::fs::remove_file(file).is_err() {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    false
}

/// Polls `cond` until it returns `Some`, or panics after `deadline` with `what`.
pub fn wait_for<T>(what: &str, deadline: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + deadline;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(
            Instant::now() < until,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A plain HTTP/1.1 GET (Connection: close, 10 s deadlines): the status
/// and the body, or None when nothing answered.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let sock: std::net::SocketAddr = addr.parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(10)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One qu node: state directory, port, control socket, and maybe a running
/// `qu serve`.
pub struct Node {
    pub root: tempfile::TempDir,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub port: u16,
    pub ip: String,
    pub child: Option<Child>,
    /// The `qu` this node runs, daemon and CLI alike: `qu_bin()`, unless a
    /// test runs another build (tests/mixed_version.rs: the previous
    /// release, then this one on the same state directory).
    pub bin: PathBuf,
}

impl Node {
    /// A node that has not been initialised yet.
    pub fn new() -> Node {
        // The control socket's directory must be private (qu checks it).
        let root = tempfile::Builder::new()
            .prefix("qu-test")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .expect("tempdir");
        let dir = root.path().join("state");
        let socket = root.path().join("qu.sock");
        Node {
            dir,
            socket,
            port: free_port(),
            ip: "127.0.0.1".into(),
            root,
            child: None,
            bin: PathBuf::from(qu_bin()),
        }
    }

    /// A node with `qu init` done on 127.0.0.1 and its own port.
    pub fn init(extra: &[&str]) -> Node {
        Node::init_at("127.0.0.1", extra)
    }

    /// A node with `qu init` done on loopback address `ip` (127.0.0.0/8).
    pub fn init_at(ip: &str, extra: &[&str]) -> Node {
        Node::init_with(Path::new(qu_bin()), ip, extra)
    }

    /// A node that runs `bin` (its `qu init` too), on loopback address `ip`.
    pub fn init_with(bin: &Path, ip: &str, extra: &[&str]) -> Node {
        let mut node = Node::new();
        node.bin = bin.to_path_buf();
        node.ip = ip.to_string();
        node.port = reserved_port(ip);
        let advertise = node.advertise();
        let port = node.port.to_string();
        let mut args = vec![
            "init",
            "--advertise",
            &advertise,
            "--bind",
            ip,
            "--port",
            &port,
        ];
        args.extend_from_slice(extra);
        let out = node.qu(&args);
        assert!(out.status.success(), "qu init failed: {}", stderr(&out));
        node
    }

    /// Runs `qu ARGS` on this node, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.qu(args);
        assert!(
            out.status.success(),
            "qu {args:?} failed: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    pub fn advertise(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env("QUPTIME_DIR", &self.dir)
            .env("QUPTIME_SOCKET", &self.socket)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a CLI command against this node and returns its output.
    pub fn qu(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run qu")
    }

    pub fn log_path(&self) -> PathBuf {
        self.root.path().join("serve.log")
    }

    /// Starts `qu serve` with stderr appended to a log file; does not wait.
    pub fn spawn_serve(&mut self, extra: &[&str]) {
        self.spawn_serve_env(extra, &[]);
    }

    /// Like `spawn_serve`, with extra environment variables.
    pub fn spawn_serve_env(&mut self, extra: &[&str], env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let mut cmd = self.command();
        cmd.arg("serve")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn qu serve"));
    }

    /// Starts `qu serve --timing fast` plus `extra`, and waits until ready.
    pub fn start_with(&mut self, extra: &[&str]) {
        let mut args = vec!["--timing", "fast"];
        args.extend_from_slice(extra);
        self.spawn_serve(&args);
        self.wait_ready();
    }

    /// Starts `qu serve` (fast Raft timing) and waits until `qu status` answers.
    pub fn start(&mut self) {
        self.spawn_serve(&["--timing", "fast"]);
        self.wait_ready();
    }

    /// `qu status --json`, parsed; `None` when the daemon does not answer.
    pub fn status(&self) -> Option<serde_json::Value> {
        let out = self.qu(&["status", "--json"]);
        serde_json::from_slice(&out.stdout).ok()
    }

    pub fn node_id(&self) -> String {
        let yaml = std::fs::read_to_string(self.dir.join("node.yaml")).expect("node.yaml");
        yaml.lines()
            .find_map(|l| l.strip_prefix("node_id: "))
            .expect("node_id in node.yaml")
            .trim()
            .trim_matches(|c| c == '\'' || c == '"')
            .to_string()
    }

    pub fn wait_ready(&mut self) {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if self
                .qu(&["status", "--json"])
                .status
                .code()
                .is_some_and(|c| c != 1)
            {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("qu serve exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < until,
                "qu serve did not become ready: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Waits for the daemon to exit on its own, within `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("no running daemon");
        let status = wait_for("qu serve to exit", deadline, || {
            child.try_wait().ok().flatten()
        });
        self.child = None;
        status
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .arg(sig)
                .arg(c.id().to_string())
                .status();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal("-TERM");
        self.wait_exit(Duration::from_secs(10))
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP / SIGCONT.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn exists(p: &Path) -> bool {
        p.exists()
    }
}

impl Drop for Node {
    /// SIGTERM, so the daemon exits cleanly (and, under coverage, writes
    /// its profile); kill -9 if it has not exited within 3 s.
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if matches!(c.try_wait(), Ok(None)) {
                // A paused node must run to hear the SIGTERM.
                let _ = Command::new("kill")
                    .arg("-CONT")
                    .arg(c.id().to_string())
                    .status();
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(c.id().to_string())
                    .status();
                let until = Instant::now() + Duration::from_secs(3);
                while matches!(c.try_wait(), Ok(None)) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A cluster of `n` serving nodes, formed as a user would: `qu init`,
/// `qu serve`, then `qu node add --yes` of every other node on node 0.
pub fn cluster(n: usize) -> Vec<Node> {
    let mut nodes: Vec<Node> = (0..n).map(|_| Node::init(&[])).collect();
    for node in nodes.iter_mut() {
        node.start();
    }
    form(nodes)
}

/// Adds every other node on node 0 and waits until all agree.
pub fn form(nodes: Vec<Node>) -> Vec<Node> {
    let n = nodes.len();
    for i in 1..n {
        let addr = nodes[i].advertise();
        let out = nodes[0].qu(&["node", "add", &addr, "--yes"]);
        assert!(
            out.status.success(),
            "node add {addr} failed: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    let voters = n;
    for node in &nodes {
        wait_for(
            "every node to see all voters and a master",
            Duration::from_secs(20),
            || {
                let s = node.status()?;
                let ok = s["voters"] == voters && s["master"].is_string() && s["quorum"] == true;
                ok.then_some(())
            },
        );
    }
    nodes
}

/// The config version a node reports.
pub fn version(node: &Node) -> Option<u64> {
    node.status()?["config_version"].as_u64()
}

/// The master a node reports.
pub fn master(node: &Node) -> Option<String> {
    node.status()?["master"].as_str().map(str::to_string)
}

/// Loopback addresses of a probing cluster: each node probes from its own,
/// so a target can fail for one node only.
pub const PROBE_IPS: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

/// Three formed nodes on `PROBE_IPS`, each probing from its own address.
pub fn probing_cluster() -> Vec<Node> {
    let mut nodes: Vec<Node> = PROBE_IPS.iter().map(|ip| Node::init_at(ip, &[])).collect();
    for (n, ip) in nodes.iter_mut().zip(PROBE_IPS) {
        n.start_with(&["--probe-source", ip]);
    }
    form(nodes)
}

/// Node ids of `failing_master_cluster`: B (index 1) is the smallest.
pub const FAILING_MASTER_IDS: [&str; 3] =
    ["0000000000000030", "0000000000000010", "0000000000000020"];

/// Three formed nodes (fast timing, 1 s leader cooldown) whose master B
/// (index 1, the smallest id) runs with `QU_FAILPOINT=failpoint`; returns
/// once B leads.
pub fn failing_master_cluster(failpoint: &str) -> Vec<Node> {
    let mut nodes: Vec<Node> = FAILING_MASTER_IDS
        .iter()
        .map(|id| Node::init(&["--node-id", id]))
        .collect();
    for (i, n) in nodes.iter_mut().enumerate() {
        let env: &[(&str, &str)] = if i == 1 {
            &[("QU_FAILPOINT", failpoint)]
        } else {
            &[]
        };
        n.spawn_serve_env(&["--timing", "fast", "--leader-cooldown", "1s"], env);
        n.wait_ready();
    }
    let nodes = form(nodes);
    wait_for("B to lead", Duration::from_secs(20), || {
        (master(&nodes[0]).as_deref() == Some(FAILING_MASTER_IDS[1])).then_some(())
    });
    nodes
}

/// `qu check add http web URL --interval 1s --timeout 500ms --alerts A`.
pub fn add_web(node: &Node, url: &str, alerts: &str) {
    node.ok(&[
        "check",
        "add",
        "http",
        "web",
        url,
        "--interval",
        "1s",
        "--timeout",
        "500ms",
        "--alerts",
        alerts,
    ]);
}
