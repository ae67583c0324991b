//! The one small HTTP/1.1 server every test and benchmark stands up on
//! loopback: checked targets (a status the test switches), webhook and
//! Discord stand-ins (record what arrives, answer from a script), the
//! harness's sink. One request per connection (`Connection: close`), head
//! up to 64 KiB, body by `Content-Length`; each connection gets a read
//! deadline, so a silent client never holds a worker.
//!
//! qu's own multi-process tests use it too (`tests/common`), so there is
//! one parser and one writer to trust, not four.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The client's address.
    pub peer: Option<IpAddr>,
}

impl Request {
    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.body.len()
        );
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Reads one request: None when the client went away, stalled past the
/// read deadline, or sent something that is not HTTP.
pub fn read_request(conn: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
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
    while buf.len() < end + len {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        method,
        path,
        headers,
        body: buf.split_off(end),
        peer: conn.peer_addr().ok().map(|a| a.ip()),
    })
}

/// How connections are served.
#[derive(Debug, Clone, Copy)]
pub enum Workers {
    /// A thread per connection: slow handlers (a test's delayed answer)
    /// never hold up others.
    PerConnection,
    /// This many threads accepting on the one listener: flat cost at
    /// thousands of requests a second (benchmarks).
    Pool(usize),
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A running server; it stops accepting when dropped.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: usize,
}

impl Server {
    /// Serves `listener` with `handler`, each connection under a
    /// `read_timeout` deadline.
    pub fn start(
        listener: TcpListener,
        workers: Workers,
        read_timeout: Duration,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> std::io::Result<Server> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let threads = match workers {
            Workers::PerConnection => 1,
            Workers::Pool(n) => n.max(1),
        };
        for _ in 0..threads {
            let (l, h, s) = (listener.try_clone()?, handler.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in l.incoming() {
                    if s.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    match workers {
                        Workers::PerConnection => {
                            let h = h.clone();
                            std::thread::spawn(move || serve(conn, &*h, read_timeout));
                        }
                        Workers::Pool(_) => serve(conn, &*h, read_timeout),
                    }
                }
            });
        }
        Ok(Server {
            addr,
            stop,
            threads,
        })
    }

    /// Binds `ip:0` and serves it.
    pub fn bind(
        ip: &str,
        workers: Workers,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> std::io::Result<Server> {
        Server::start(
            TcpListener::bind((ip, 0))?,
            workers,
            Duration::from_secs(5),
            handler,
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake every accepting thread so it sees the flag.
        for _ in 0..self.threads {
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        }
    }
}

fn serve(mut conn: TcpStream, handler: &Handler, read_timeout: Duration) {
    let _ = conn.set_read_timeout(Some(read_timeout));
    let _ = conn.set_write_timeout(Some(read_timeout));
    let Some(req) = read_request(&mut conn) else {
        return;
    };
    let _ = conn.write_all(&handler(&req).to_bytes());
}

/// Serves `bind` (an `ip:port`) on this thread until the process ends.
pub fn serve_forever(
    bind: &str,
    handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
) -> Result<(), String> {
    let listener = TcpListener::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
    let _server = Server::start(
        listener,
        Workers::PerConnection,
        Duration::from_secs(5),
        handler,
    )
    .map_err(|e| format!("serve {bind}: {e}"))?;
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(raw).unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn a_request_is_parsed_whole_and_answered_from_the_handler() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let server = Server::bind("127.0.0.1", Workers::PerConnection, move |r| {
            s.lock().unwrap().push(r.clone());
            Response::new(429, "slow down").with_header("Retry-After", "3")
        })
        .unwrap();
        let out = exchange(
            server.addr,
            b"POST /hook?x=1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
        );
        assert!(
            out.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
            "{out}"
        );
        assert!(out.contains("\r\nRetry-After: 3\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\nslow down"), "{out}");
        let r = seen.lock().unwrap()[0].clone();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/hook?x=1"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.body_text(), "{\"a\":1}");
        assert_eq!(r.peer, Some("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn garbage_and_oversized_heads_get_no_answer() {
        let server =
            Server::bind("127.0.0.1", Workers::Pool(2), |_| Response::new(200, "OK")).unwrap();
        assert_eq!(exchange(server.addr, b"\r\n\r\n"), "");
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        let mut c = TcpStream::connect(server.addr).unwrap();
        // The server may close while we still write: only its silence counts.
        let _ = c.write_all(&big);
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        assert_eq!(out, "");
        assert!(exchange(server.addr, b"GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 OK"));
    }
}
