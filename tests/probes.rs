//! Probers against real local servers (SPEC §8): HTTP status, body,
//! redirects, timeouts and TLS verification; TCP open/refused/timeout; ICMP
//! echo to 127.0.0.1 and ::1.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use common::target::{Mode, Target};
use qu::checks::probe::Probers;
use qu_raft::model::{CheckKind, HttpCheck, StatusExpect};

fn http(url: &str, expect: Option<u16>, body: Option<&str>, insecure: bool) -> CheckKind {
    CheckKind::Http(Box::new(HttpCheck {
        url: url.into(),
        expect: expect.map(StatusExpect::code),
        body_match: body.map(str::to_string),
        insecure,
        ..HttpCheck::default()
    }))
}

const T: Duration = Duration::from_millis(1500);

/// A tiny server with fixed routes: `/` OK, `/moved` → `/`, `/loop` → `/loop`,
/// `/slow` never answers.
fn routes_server() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 2048];
                let n = conn.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                let resp = match path.as_str() {
                    "/moved" => "HTTP/1.1 302 Found\r\nLocation: /\r\nContent-Length: 0\r\n\r\n".to_string(),
                    "/loop" => "HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n".to_string(),
                    "/slow" => {
                        std::thread::sleep(Duration::from_secs(10));
                        return;
                    }
                    _ => "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world".to_string(),
                };
                let _ = conn.write_all(resp.as_bytes());
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn http_status_body_and_expectations() {
    let p = Probers::new(None).unwrap();
    let target = Target::start("127.0.0.1");
    let up = p.probe(&http(&target.url(), None, None, false), T).await;
    assert!(up.ok, "{up:?}");
    let ok_body = p
        .probe(&http(&target.url(), Some(200), Some("OK"), false), T)
        .await;
    assert!(ok_body.ok, "{ok_body:?}");
    let bad_body = p
        .probe(&http(&target.url(), None, Some("nope"), false), T)
        .await;
    assert!(!bad_body.ok);
    assert_eq!(bad_body.reason, "body did not contain \"nope\"");
    let wrong_code = p
        .probe(&http(&target.url(), Some(204), None, false), T)
        .await;
    assert_eq!(wrong_code.reason, "HTTP 200, expected 204");

    target.set(Mode::Status(503));
    let down = p.probe(&http(&target.url(), None, None, false), T).await;
    assert!(!down.ok);
    assert_eq!(down.reason, "HTTP 503");
    let expected_503 = p
        .probe(&http(&target.url(), Some(503), None, false), T)
        .await;
    assert!(expected_503.ok, "--expect 503 accepts a 503");
}

#[tokio::test]
async fn each_http_probe_opens_a_fresh_connection() {
    let p = Probers::new(None).unwrap();
    let target = Target::start("127.0.0.1");
    for _ in 0..3 {
        assert!(p.probe(&http(&target.url(), None, None, false), T).await.ok);
    }
    // Our server closes each connection, so three requests mean three
    // connections; a pooled client would fail a server that stopped accepting.
    assert_eq!(target.requests.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[tokio::test]
async fn http_redirects_and_timeouts() {
    let p = Probers::new(None).unwrap();
    let base = routes_server();
    let moved = p
        .probe(
            &http(&format!("{base}/moved"), None, Some("hello"), false),
            T,
        )
        .await;
    assert!(moved.ok, "redirect followed: {moved:?}");
    let looping = p
        .probe(&http(&format!("{base}/loop"), None, None, false), T)
        .await;
    assert_eq!(looping.reason, "too many redirects");
    let slow = p
        .probe(
            &http(&format!("{base}/slow"), None, None, false),
            Duration::from_millis(300),
        )
        .await;
    assert!(!slow.ok);
    assert_eq!(slow.reason, "timeout after 300ms");
    assert!(slow.latency < Duration::from_secs(2));
}

#[tokio::test]
async fn http_refused_connection() {
    let p = Probers::new(None).unwrap();
    let port = common::free_port();
    let r = p
        .probe(
            &http(&format!("http://127.0.0.1:{port}/"), None, None, false),
            T,
        )
        .await;
    assert_eq!(r.reason, format!("connection refused by 127.0.0.1:{port}"));
}

/// An HTTPS server with a self-signed certificate for "localhost".
async fn self_signed_https() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(qu::transport::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 2048];
                    let _ = tls.read(&mut buf).await;
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    format!("https://localhost:{port}/")
}

#[tokio::test]
async fn self_signed_tls_target_is_refused_unless_insecure() {
    let p = Probers::new(None).unwrap();
    let url = self_signed_https().await;
    let verified = p.probe(&http(&url, None, None, false), T).await;
    assert!(!verified.ok, "a self-signed certificate was accepted");
    assert!(
        verified.reason.contains("certificate"),
        "{}",
        verified.reason
    );
    let insecure = p.probe(&http(&url, None, Some("OK"), true), T).await;
    assert!(insecure.ok, "{insecure:?}");
}

#[tokio::test]
async fn tcp_open_refused_and_timeout() {
    let p = Probers::new(None).unwrap();
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = open.local_addr().unwrap();
    let r = p.probe(&CheckKind::tcp(addr.to_string()), T).await;
    assert!(r.ok, "{r:?}");
    let port = common::free_port();
    let r = p
        .probe(&CheckKind::tcp(format!("127.0.0.1:{port}")), T)
        .await;
    assert_eq!(r.reason, format!("connection refused by 127.0.0.1:{port}"));

    // A listener whose accept queue is full drops new SYNs: connects hang.
    let full = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    full.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    full.listen(0).unwrap();
    let full_addr = full.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&full_addr.into());
        fillers.push(s);
    }
    std::thread::sleep(Duration::from_millis(100));
    let r = p
        .probe(
            &CheckKind::tcp(full_addr.to_string()),
            Duration::from_millis(400),
        )
        .await;
    assert!(!r.ok);
    assert_eq!(r.reason, "timeout after 400ms");
}

#[tokio::test]
async fn icmp_echo_to_loopback_v4_and_v6() {
    let p = Probers::new(None).unwrap();
    for host in ["127.0.0.1", "::1"] {
        let r = p.probe(&CheckKind::Icmp { host: host.into() }, T).await;
        assert!(r.ok, "ping {host}: {}", r.reason);
        assert!(r.latency < T);
    }
}
