//! A local HTTP receiver standing in for alert receivers (webhooks,
//! Discord, Slack, Telegram, PagerDuty, …): it records every request and
//! answers from a script (then a default status).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use qu_jepsen::http::{Request, Response, Server, Workers};

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    /// The request target as sent: path and query, not decoded.
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

/// A scripted answer with a JSON body (`Content-Type: application/json`).
pub fn json_reply(status: u16, body: serde_json::Value) -> Reply {
    (
        status,
        vec![("Content-Type".into(), "application/json".into())],
        body.to_string(),
    )
}

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
    _server: Server,
}

impl Receiver {
    pub fn start() -> Receiver {
        let inner = Arc::new(Mutex::new(Inner {
            default_status: 204,
            ..Default::default()
        }));
        let i = inner.clone();
        let server = Server::bind("127.0.0.1", Workers::PerConnection, move |req| {
            handle(req, &i)
        })
        .expect("start the receiver");
        Receiver {
            addr: server.addr,
            inner,
            _server: server,
        }
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

fn handle(req: &Request, inner: &Mutex<Inner>) -> Response {
    let (status, extra, reply_body, delay) = {
        let mut g = inner.lock().unwrap();
        g.in_flight += 1;
        g.max_in_flight = g.max_in_flight.max(g.in_flight);
        let r = g
            .script
            .pop_front()
            .unwrap_or((g.default_status, vec![], String::new()));
        g.log.push(Captured {
            method: req.method.clone(),
            path: req.path.clone(),
            headers: req.headers.clone(),
            body: req.body_text(),
            status: r.0,
        });
        (r.0, r.1, r.2, g.delay_ms)
    };
    if delay > 0 {
        // The stimulus itself: a slow receiver, so concurrent sends overlap.
        std::thread::sleep(std::time::Duration::from_millis(delay));
    }
    let mut resp = Response::new(status, reply_body);
    for (k, v) in extra {
        resp = resp.with_header(&k, &v);
    }
    inner.lock().unwrap().in_flight -= 1;
    resp
}
