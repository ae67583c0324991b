//! A real HTTP/1.1 server on loopback that the test controls: it answers
//! every request according to the current mode and the client's address
//! (so a target can fail for one node only).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use qu_jepsen::http::{Response, Server, Workers};

/// How the target answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// 200 with body "OK".
    Up,
    /// This status for everyone.
    Status(u16),
    /// 503 for these client addresses, 200 for the others.
    FailFor(BTreeSet<IpAddr>),
}

pub struct Target {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    pub requests: Arc<AtomicU64>,
    /// When each client address probed it.
    seen: Arc<Mutex<BTreeMap<IpAddr, Vec<std::time::Instant>>>>,
    _server: Server,
}

impl Target {
    pub fn start(ip: &str) -> Target {
        let mode = Arc::new(Mutex::new(Mode::Up));
        let requests = Arc::new(AtomicU64::new(0));
        let seen: Arc<Mutex<BTreeMap<IpAddr, Vec<std::time::Instant>>>> = Default::default();
        let (m, r, w) = (mode.clone(), requests.clone(), seen.clone());
        let server = Server::bind(ip, Workers::PerConnection, move |req| {
            r.fetch_add(1, Ordering::SeqCst);
            if let Some(p) = req.peer {
                w.lock()
                    .unwrap()
                    .entry(p)
                    .or_default()
                    .push(std::time::Instant::now());
            }
            let status = match &*m.lock().unwrap() {
                Mode::Up => 200,
                Mode::Status(s) => *s,
                Mode::FailFor(bad) if req.peer.is_some_and(|p| bad.contains(&p)) => 503,
                Mode::FailFor(_) => 200,
            };
            Response::new(status, if status == 200 { "OK" } else { "NO" })
        })
        .expect("start the target");
        Target {
            addr: server.addr,
            mode,
            requests,
            seen,
            _server: server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// When `ip` probed this target, oldest first.
    pub fn probes_from(&self, ip: &str) -> Vec<std::time::Instant> {
        let ip: IpAddr = ip.parse().unwrap();
        self.seen
            .lock()
            .unwrap()
            .get(&ip)
            .cloned()
            .unwrap_or_default()
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}
