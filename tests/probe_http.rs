//! The richer HTTP check against a real local HTTP server that records
//! what it received: method, headers and body sent; status lists and
//! classes; substring and regex matches and non-matches; JSONPath and JSON
//! Pointer hits and misses; the latency bound against a target that
//! sleeps; redirects not followed; IPv4/IPv6 only; HTTPS expiry with
//! `--warn-days`.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qu::checks::probe::Probers;
use qu_raft::model::{CheckKind, HttpCheck, StatusExpect};

const T: Duration = Duration::from_secs(3);

/// One request as the server saw it.
#[derive(Debug, Clone, Default)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// A server with fixed routes that keeps every request it got.
struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(bind: &str) -> Server {
        let l = TcpListener::bind(bind).unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || serve(conn, &log));
            }
        });
        let base = if addr.is_ipv6() {
            format!("http://[::1]:{}", addr.port())
        } else {
            format!("http://{addr}")
        };
        Server { base, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }
}

fn serve(conn: std::net::TcpStream, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let mut seen = Seen {
        method: parts.next().unwrap_or("").to_string(),
        path: parts.next().unwrap_or("/").to_string(),
        ..Seen::default()
    };
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
            seen.headers
                .push((k.to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);
    seen.body = String::from_utf8_lossy(&body).into_owned();
    let path = seen.path.clone();
    log.lock().unwrap().push(seen);
    let (status, extra, body): (&str, &str, String) = match path.as_str() {
        "/json" => (
            "200 OK",
            "Content-Type: application/json\r\n",
            r#"{"status":"ok","checks":[{"name":"db","up":true},{"name":"cache","up":false}],"n":3}"#.into(),
        ),
        "/degraded" => ("200 OK", "", r#"{"status":"degraded"}"#.into()),
        "/notjson" => ("200 OK", "", "<html>hi</html>".into()),
        "/created" => ("201 Created", "", String::new()),
        "/moved" => ("301 Moved Permanently", "Location: /\r\n", String::new()),
        "/slow" => {
            std::thread::sleep(Duration::from_millis(700));
            ("200 OK", "", "late".into())
        }
        "/error" => ("500 Internal Server Error", "", "ERROR: disk full".into()),
        _ => ("200 OK", "", "service v2.4.1 healthy".into()),
    };
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn http(url: String, f: impl FnOnce(&mut HttpCheck)) -> CheckKind {
    let mut h = HttpCheck {
        url,
        ..HttpCheck::default()
    };
    f(&mut h);
    CheckKind::Http(Box::new(h))
}

#[tokio::test]
async fn method_headers_and_body_reach_the_server() {
    let p = Probers::new(None).unwrap();
    let s = Server::start("127.0.0.1:0");
    let k = http(s.url("/submit"), |h| {
        h.method = Some("POST".into());
        h.headers = vec![
            ("Authorization".into(), "Bearer s3cret".into()),
            ("X-Probe".into(), "qu".into()),
        ];
        h.body = Some(r#"{"ping":1}"#.into());
    });
    let o = p.probe(&k, T).await;
    assert!(o.ok, "{o:?}");
    let seen = s.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/submit");
    assert_eq!(seen.body, r#"{"ping":1}"#);
    assert!(seen
        .headers
        .contains(&("authorization".into(), "Bearer s3cret".into())));
    assert!(seen.headers.contains(&("x-probe".into(), "qu".into())));
    let head = http(s.url("/"), |h| h.method = Some("HEAD".into()));
    assert!(p.probe(&head, T).await.ok);
    assert_eq!(s.last().method, "HEAD");
}

#[tokio::test]
async fn status_lists_and_classes() {
    let p = Probers::new(None).unwrap();
    let s = Server::start("127.0.0.1:0");
    let expect = |path: &str, list: &str| {
        http(s.url(path), |h| {
            h.expect = Some(StatusExpect::parse(list).unwrap())
        })
    };
    assert!(p.probe(&expect("/created", "200,201"), T).await.ok);
    assert!(p.probe(&expect("/created", "2xx"), T).await.ok);
    let o = p.probe(&expect("/created", "200,204"), T).await;
    assert_eq!(o.reason, "HTTP 201, expected 200,204");
    assert!(p.probe(&expect("/error", "5xx,404"), T).await.ok);
    let o = p.probe(&expect("/error", "2xx,301"), T).await;
    assert_eq!(o.reason, "HTTP 500, expected 2xx,301");
}

#[tokio::test]
async fn body_matches_substring_and_regex() {
    let p = Probers::new(None).unwrap();
    let s = Server::start("127.0.0.1:0");
    let k = |f: &dyn Fn(&mut HttpCheck)| http(s.url("/"), f);
    assert!(
        p.probe(&k(&|h| h.body_match = Some("healthy".into())), T)
            .await
            .ok
    );
    let o = p
        .probe(&k(&|h| h.body_not_match = Some("healthy".into())), T)
        .await;
    assert_eq!(o.reason, "body contains \"healthy\"");
    // Regex: both directions, and a pattern that is not a substring.
    let re = |m: Option<&str>, not: Option<&str>| {
        k(&move |h: &mut HttpCheck| {
            h.regex = true;
            h.body_match = m.map(str::to_string);
            h.body_not_match = not.map(str::to_string);
        })
    };
    assert!(p.probe(&re(Some(r"v2\.\d+\.\d+"), None), T).await.ok);
    let o = p.probe(&re(Some(r"v3\.\d+"), None), T).await;
    assert_eq!(o.reason, r"body did not match /v3\.\d+/");
    let o = p.probe(&re(None, Some(r"(?i)HEALTHY")), T).await;
    assert_eq!(o.reason, "body matched /(?i)HEALTHY/");
    assert!(p.probe(&re(None, Some("ERROR|FATAL")), T).await.ok);
    // The same not-match on the error page fails (and the status is expected).
    let e = http(s.url("/error"), |h| {
        h.expect = Some(StatusExpect::parse("5xx").unwrap());
        h.regex = true;
        h.body_not_match = Some("ERROR|FATAL".into());
    });
    assert_eq!(p.probe(&e, T).await.reason, "body matched /ERROR|FATAL/");
}

#[tokio::test]
async fn json_path_and_pointer_hit_and_miss() {
    let p = Probers::new(None).unwrap();
    let s = Server::start("127.0.0.1:0");
    let j = |path: &str, want: Option<&str>, route: &str| {
        http(s.url(route), |h| {
            h.json_path = Some(path.into());
            h.json_expect = want.map(str::to_string);
        })
    };
    assert!(p.probe(&j("$.status", Some("ok"), "/json"), T).await.ok);
    assert!(p.probe(&j("/status", Some("ok"), "/json"), T).await.ok);
    assert!(p.probe(&j("$.n", Some("3"), "/json"), T).await.ok);
    assert!(
        p.probe(&j("$.checks[?@.name == 'db'].up", Some("true"), "/json"), T)
            .await
            .ok
    );
    assert!(p.probe(&j("$.checks[1].name", None, "/json"), T).await.ok);
    let o = p.probe(&j("$.status", Some("ok"), "/degraded"), T).await;
    assert_eq!(
        o.reason,
        r#"JSON path $.status is "degraded", expected "ok""#
    );
    let o = p.probe(&j("$.missing", None, "/json"), T).await;
    assert_eq!(o.reason, "JSON path $.missing found nothing");
    let o = p.probe(&j("/checks/7", None, "/json"), T).await;
    assert_eq!(o.reason, "JSON path /checks/7 found nothing");
    let o = p.probe(&j("$.status", Some("ok"), "/notjson"), T).await;
    assert!(o.reason.starts_with("body is not JSON"), "{o:?}");
}

#[tokio::test]
async fn slower_than_max_latency_is_a_failure() {
    let p = Probers::new(None).unwrap();
    let s = Server::start("127.0.0.1:0");
    let k = |path: &str| http(s.url(path), |h| h.max_latency_ms = Some(300));
    let o = p.probe(&k("/slow"), T).await;
    assert!(!o.ok);
    assert!(
        o.reason.starts_with("slow: 0.") && o.reason.ends_with("s > 300ms"),
        "{o:?}"
    );
    assert!(o.latency >= Duration::from_millis(700), "{o:?}");
    assert!(p.probe(&k("/"), T).await.ok);
}

#[tokio::test]
async fn no_follow_takes_the_redirect_as_the_answer() {
    let p = Probers::new(None).unwrap();
    let s = Server::start("127.0.0.1:0");
    let followed = http(s.url("/moved"), |_| {});
    assert!(p.probe(&followed, T).await.ok);
    assert_eq!(s.last().path, "/", "the redirect was followed");
    let count = s.seen.lock().unwrap().len();
    let stays = http(s.url("/moved"), |h| h.no_follow = true);
    assert_eq!(p.probe(&stays, T).await.reason, "HTTP 301");
    assert_eq!(s.seen.lock().unwrap().len(), count + 1, "one request only");
    assert_eq!(s.last().path, "/moved");
    let expected = http(s.url("/moved"), |h| {
        h.no_follow = true;
        h.expect = Some(StatusExpect::parse("301").unwrap());
    });
    assert!(p.probe(&expected, T).await.ok);
}

#[tokio::test]
async fn ip_version_picks_the_address_family() {
    let p = Probers::new(None).unwrap();
    // `localhost` resolves to 127.0.0.1 (and often ::1); a v4-only server
    // answers over --ip-version 4 and is not reached over 6.
    let s = Server::start("127.0.0.1:0");
    let port = s.base.rsplit(':').next().unwrap().to_string();
    let v4 = http(format!("http://localhost:{port}/"), |h| {
        h.ip_version = Some(4)
    });
    assert!(p.probe(&v4, T).await.ok);
    let v6 = http(format!("http://localhost:{port}/"), |h| {
        h.ip_version = Some(6)
    });
    let o = p.probe(&v6, T).await;
    assert!(!o.ok, "{o:?}");
    assert!(
        o.reason.contains("no IPv6 address") || o.reason.contains("refused"),
        "{o:?}"
    );
}

mod common;

#[tokio::test]
async fn https_reports_the_certificate_expiry_and_fails_inside_warn_days() {
    let p = Probers::new(None).unwrap();
    let ca = common::tls_target::TestCa::new("qu test CA");
    let server = common::tls_target::TlsTarget::start("127.0.0.1", &ca.leaf(&["localhost"], 3));
    // The test CA is not among the system roots: --insecure skips the chain,
    // the expiry is still read from the certificate the server sent.
    let url = format!("https://localhost:{}/", server.addr.port());
    let k = |days: Option<u32>| {
        http(url.clone(), move |h| {
            h.insecure = true;
            h.warn_days = days;
        })
    };
    let o = p.probe(&k(None), T).await;
    assert!(o.ok, "{o:?}");
    let not_after = o
        .cert_not_after_ms
        .expect("HTTPS reports the leaf's notAfter");
    let left = not_after.saturating_sub(qu::checks::scheduler::now_ms()) / 86_400_000;
    assert_eq!(left, 3, "{not_after}");
    let o = p.probe(&k(Some(7)), T).await;
    assert!(!o.ok);
    assert!(
        o.reason.starts_with("certificate expires in 3 days ("),
        "{o:?}"
    );
    assert_eq!(o.cert_not_after_ms, Some(not_after));
    assert!(p.probe(&k(Some(2)), T).await.ok);
    // Verified (no --insecure): the chain is refused before any expiry.
    let o = p.probe(&http(url.clone(), |_| {}), T).await;
    assert!(o.reason.contains("certificate not trusted"), "{o:?}");
}
