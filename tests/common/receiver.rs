//! A local HTTP receiver standing in for Discord and webhook endpoints: it
//! records every request and answers from a script (then a default status).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Captured {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The status the receiver answered.
    pub status: u16,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

/// (status, extra headers, body)
pub type Reply = (u16, Vec<(String, String)>, String);

#[derive(Default)]
struct Inner {
    script: VecDeque<Reply>,
    default_status: u16,
    log: Vec<Captured>,
    /// Each answer waits this long (to make concurrent senders overlap).
    delay_ms: u64,
    in_flight: usize,
    max_in_flight: usize,
}

pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let inner = Arc::new(Mutex::new(Inner {
            default_status: 204,
            ..Default::default()
        }));
        let i = inner.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let i = i.clone();
                std::thread::spawn(move || handle(conn, &i));
            }
        });
        Receiver { addr, inner }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answer the next requests with these replies, in order.
    pub fn script(&self, replies: Vec<Reply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    /// Holds every answer `ms` milliseconds.
    pub fn set_delay(&self, ms: u64) {
        self.inner.lock().unwrap().delay_ms = ms;
    }

    /// The most requests that were being answered at once.
    pub fn max_in_flight(&self) -> usize {
        self.inner.lock().unwrap().max_in_flight
    }

    pub fn set_default(&self, status: u16) {
        self.inner.lock().unwrap().default_status = status;
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.inner.lock().unwrap().log.clone()
    }

    /// Requests answered 2xx.
    pub fn delivered(&self) -> Vec<Captured> {
        self.requests()
            .into_iter()
            .filter(|c| (200..300).contains(&c.status))
            .collect()
    }
}

fn handle(mut conn: std::net::TcpStream, inner: &Mutex<Inner>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + len {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[header_end..]).to_string();
    let (status, extra, reply_body, delay) = {
        let mut g = inner.lock().unwrap();
        g.in_flight += 1;
        g.max_in_flight = g.max_in_flight.max(g.in_flight);
        let r = g
            .script
            .pop_front()
            .unwrap_or((g.default_status, vec![], String::new()));
        g.log.push(Captured {
            path,
            headers,
            body,
            status: r.0,
        });
        (r.0, r.1, r.2, g.delay_ms)
    };
    if delay > 0 {
        std::thread::sleep(std::time::Duration::from_millis(delay));
    }
    let mut resp = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply_body.len()
    );
    for (k, v) in extra {
        resp.push_str(&format!("{k}: {v}\r\n"));
    }
    resp.push_str("\r\n");
    resp.push_str(&reply_body);
    let _ = conn.write_all(resp.as_bytes());
    inner.lock().unwrap().in_flight -= 1;
}
