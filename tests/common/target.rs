//! A real HTTP/1.1 server on loopback that the test controls: it answers
//! every request according to the current mode and the client's address
//! (so a target can fail for one node only).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    stop: Arc<AtomicBool>,
    pub requests: Arc<AtomicU64>,
}

impl Target {
    pub fn start(ip: &str) -> Target {
        let listener = TcpListener::bind((ip, 0)).expect("bind target");
        let addr = listener.local_addr().expect("target addr");
        let mode = Arc::new(Mutex::new(Mode::Up));
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let (m, s, r) = (mode.clone(), stop.clone(), requests.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (m, r) = (m.clone(), r.clone());
                std::thread::spawn(move || serve(conn, &m, &r));
            }
        });
        Target {
            addr,
            mode,
            stop,
            requests,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut conn: TcpStream, mode: &Mutex<Mode>, requests: &AtomicU64) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    requests.fetch_add(1, Ordering::SeqCst);
    let peer = conn.peer_addr().map(|a| a.ip()).ok();
    let status = match &*mode.lock().unwrap() {
        Mode::Up => 200,
        Mode::Status(s) => *s,
        Mode::FailFor(bad) => {
            if peer.is_some_and(|p| bad.contains(&p)) {
                503
            } else {
                200
            }
        }
    };
    let body = if status == 200 { "OK" } else { "NO" };
    let resp = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(resp.as_bytes());
}
