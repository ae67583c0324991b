//! Local targets and an alert receiver for benchmarks, in-process on
//! loopback: an HTTP server (200, or 503 while switched down) and a TCP
//! acceptor, each served by a small pool of threads accepting on one
//! listener (no thread per connection: the pool keeps the target's own
//! cost flat at thousands of probes a second), and a webhook receiver
//! that notes when each page arrived. HTTP is `crate::http`'s server.

use crate::http::{Response, Server, Workers};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WORKERS: usize = 4;

/// Accepts on `l` with `WORKERS` threads and hands each connection over.
fn pool(l: TcpListener, handle: impl Fn(TcpStream) + Send + Sync + 'static) -> Result<(), String> {
    let handle = Arc::new(handle);
    for _ in 0..WORKERS {
        let l = l.try_clone().map_err(|e| e.to_string())?;
        let h = handle.clone();
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                h(conn);
            }
        });
    }
    Ok(())
}

/// An HTTP target on loopback; `down` switches it to 503.
pub struct HttpTarget {
    pub addr: String,
    pub down: Arc<AtomicBool>,
    pub served: Arc<AtomicU64>,
    _server: Server,
}

impl HttpTarget {
    pub fn start(ip: &str) -> Result<HttpTarget, String> {
        let down = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let (d, s) = (down.clone(), served.clone());
        let server = Server::start(
            TcpListener::bind((ip, 0)).map_err(|e| format!("bind {ip}: {e}"))?,
            Workers::Pool(WORKERS),
            Duration::from_secs(2),
            move |_| {
                s.fetch_add(1, Ordering::Relaxed);
                let status = if d.load(Ordering::Relaxed) { 503 } else { 200 };
                Response::new(status, "ok")
            },
        )
        .map_err(|e| format!("serve {ip}: {e}"))?;
        Ok(HttpTarget {
            addr: server.addr.to_string(),
            down,
            served,
            _server: server,
        })
    }
}

/// A TCP target on loopback: accepts and closes.
pub fn tcp_target(ip: &str) -> Result<String, String> {
    let l = TcpListener::bind((ip, 0)).map_err(|e| format!("bind {ip}: {e}"))?;
    let addr = l.local_addr().map_err(|e| e.to_string())?.to_string();
    pool(l, drop)?;
    Ok(addr)
}

/// A webhook receiver: every POSTed JSON body with its arrival time.
pub struct Receiver {
    pub url: String,
    pages: Arc<Mutex<Vec<(Instant, serde_json::Value)>>>,
    _server: Server,
}

impl Receiver {
    pub fn start(ip: &str) -> Result<Receiver, String> {
        let pages = Arc::new(Mutex::new(Vec::new()));
        let p = pages.clone();
        let server = Server::start(
            TcpListener::bind((ip, 0)).map_err(|e| format!("bind {ip}: {e}"))?,
            Workers::Pool(WORKERS),
            Duration::from_secs(2),
            move |req| {
                let at = Instant::now();
                let v = serde_json::from_slice(&req.body).unwrap_or_default();
                if let Ok(mut list) = p.lock() {
                    list.push((at, v));
                }
                Response::new(204, "")
            },
        )
        .map_err(|e| format!("serve {ip}: {e}"))?;
        Ok(Receiver {
            url: server.url("/hook"),
            pages,
            _server: server,
        })
    }

    /// Waits up to `within` for a page whose `event` is `event` for
    /// `check_id` that arrived after `after`; its arrival time.
    pub fn wait_page(
        &self,
        check_id: &str,
        event: &str,
        after: Instant,
        within: Duration,
    ) -> Option<Instant> {
        let until = Instant::now() + within;
        while Instant::now() < until {
            let found = self.pages.lock().ok().and_then(|list| {
                list.iter()
                    .find(|(t, v)| *t >= after && v["check_id"] == check_id && v["event"] == event)
                    .map(|(t, _)| *t)
            });
            if found.is_some() {
                return found;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }
}
