//! TLS probes against real TLS servers on 127.0.0.1 with rcgen-made
//! certificates: trust, validity, names, warn-days and their order, IP
//! targets, socket and handshake failures, STARTTLS (SMTP, IMAP, POP3,
//! PostgreSQL) against scripted servers, and `--ca` PEM validation.
//!
//! Certificate dates are built from the clock with margins of an hour or
//! more, so a reason rounded down to days or hours does not depend on the
//! seconds the test takes.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use qu::checks::probe::tls::{
    expiry_reason, leaf_not_after_ms, parse_ca_pem, Starttls, TlsOutcome, TlsProber, TlsTarget,
};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
/// Ample for a loopback handshake; the tests that expect a timeout use less.
const LIMIT: Duration = Duration::from_secs(10);

fn prober() -> &'static TlsProber {
    static PROBER: OnceLock<TlsProber> = OnceLock::new();
    PROBER.get_or_init(|| TlsProber::new().unwrap())
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn system_time(s: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(s as u64)
}

fn stamp(s: i64) -> String {
    jiff::Timestamp::from_second(s).unwrap().to_string()
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

struct Ca {
    cert: Certificate,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn root(cn: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let params = ca_params(cn);
        let cert = params.self_signed(&key).unwrap();
        Ca {
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    fn intermediate(&self, cn: &str) -> Ca {
        self.intermediate_until(cn, now_s() + 365 * DAY)
    }

    fn intermediate_until(&self, cn: &str, not_after: i64) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = ca_params(cn);
        params.not_before = system_time(not_after - 365 * DAY).into();
        params.not_after = system_time(not_after).into();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Ca {
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name = dn(cn);
    params
}

/// A server certificate: its names (DNS or IP), validity and signer (None:
/// self-signed).
struct Leaf {
    cert: Certificate,
    key: KeyPair,
}

fn leaf(names: &[&str], not_before: i64, not_after: i64, signer: Option<&Ca>) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name = dn(names.first().copied().unwrap_or("no name"));
    params.not_before = system_time(not_before).into();
    params.not_after = system_time(not_after).into();
    let cert = match signer {
        Some(ca) => params.signed_by(&key, &ca.issuer).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    Leaf { cert, key }
}

/// A leaf for `localhost`, valid from yesterday until `not_after`.
fn valid_leaf(ca: &Ca, not_after: i64) -> Leaf {
    leaf(&["localhost"], now_s() - DAY, not_after, Some(ca))
}

fn server_config(chain: Vec<CertificateDer<'static>>, key: &KeyPair) -> rustls::ServerConfig {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap()
}

/// A TLS server presenting `chain`; reports the SNI of each handshake.
struct Server {
    addr: SocketAddr,
    sni: tokio::sync::mpsc::UnboundedReceiver<Option<String>>,
}

async fn tls_server(chain: Vec<CertificateDer<'static>>, key: &KeyPair) -> Server {
    let acceptor = TlsAcceptor::from(Arc::new(server_config(chain, key)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen, sni) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = seen.send(tls.get_ref().1.server_name().map(str::to_string));
                    let mut buf = [0u8; 64];
                    let _ = tls.read(&mut buf).await; // until close_notify / EOF
                }
            });
        }
    });
    Server { addr, sni }
}

async fn serve(leaf: &Leaf) -> Server {
    tls_server(vec![leaf.cert.der().clone()], &leaf.key).await
}

async fn probe_at(
    addrs: &[SocketAddr],
    name: &str,
    ca: Option<&str>,
    warn_days: u32,
    starttls: Option<Starttls>,
) -> TlsOutcome {
    let target = TlsTarget {
        addrs,
        source: None,
        server_name: name,
        ca_pem: ca,
        warn_days,
        starttls,
    };
    tokio::time::timeout(LIMIT, prober().probe(&target))
        .await
        .expect("the probe ends on its own against a live server")
}

async fn probe(addr: SocketAddr, name: &str, ca: Option<&str>, warn_days: u32) -> TlsOutcome {
    probe_at(&[addr], name, ca, warn_days, None).await
}

fn failed(reason: &str, not_after: i64) -> TlsOutcome {
    TlsOutcome {
        reason: Some(reason.to_string()),
        not_after_ms: Some(not_after as u64 * 1000),
    }
}

fn ok(not_after: i64) -> TlsOutcome {
    TlsOutcome {
        reason: None,
        not_after_ms: Some(not_after as u64 * 1000),
    }
}

#[tokio::test]
async fn a_chain_to_the_given_ca_outside_warn_days_is_ok_and_reports_not_after() {
    let ca = Ca::root("Test CA");
    let not_after = now_s() + 30 * DAY;
    let mut server = serve(&valid_leaf(&ca, not_after)).await;
    let outcome = probe(server.addr, "localhost", Some(&ca.pem()), 14).await;
    assert_eq!(outcome, ok(not_after));
    assert_eq!(server.sni.recv().await, Some(Some("localhost".to_string())));
}

#[tokio::test]
async fn expiry_inside_warn_days_fails_with_days_and_date() {
    let ca = Ca::root("Test CA");
    let not_after = now_s() + 9 * DAY + HOUR;
    let server = serve(&valid_leaf(&ca, not_after)).await;
    let outcome = probe(server.addr, "localhost", Some(&ca.pem()), 14).await;
    let reason = format!("certificate expires in 9 days ({})", stamp(not_after));
    assert_eq!(outcome, failed(&reason, not_after));
    // The same certificate with a shorter window is fine.
    let outcome = probe(server.addr, "localhost", Some(&ca.pem()), 7).await;
    assert_eq!(outcome, ok(not_after));
}

#[tokio::test]
async fn expiry_within_a_day_is_said_in_hours() {
    let ca = Ca::root("Test CA");
    let not_after = now_s() + 5 * HOUR + 10 * 60;
    let server = serve(&valid_leaf(&ca, not_after)).await;
    let outcome = probe(server.addr, "localhost", Some(&ca.pem()), 1).await;
    let reason = format!("certificate expires in 5 hours ({})", stamp(not_after));
    assert_eq!(outcome, failed(&reason, not_after));
}

#[tokio::test]
async fn an_expired_certificate_fails_even_with_warn_days_zero() {
    let ca = Ca::root("Test CA");
    let not_after = now_s() - 3 * DAY - HOUR;
    let server = serve(&leaf(
        &["localhost"],
        not_after - 90 * DAY,
        not_after,
        Some(&ca),
    ))
    .await;
    let outcome = probe(server.addr, "localhost", Some(&ca.pem()), 0).await;
    let reason = format!("certificate expired 3 days ago ({})", stamp(not_after));
    assert_eq!(outcome, failed(&reason, not_after));
}

#[tokio::test]
async fn a_certificate_not_yet_valid_fails() {
    let ca = Ca::root("Test CA");
    let not_before = now_s() + 2 * DAY;
    let not_after = not_before + 90 * DAY;
    let server = serve(&leaf(&["localhost"], not_before, not_after, Some(&ca))).await;
    let outcome = probe(server.addr, "localhost", Some(&ca.pem()), 14).await;
    let reason = format!("certificate not valid before {}", stamp(not_before));
    assert_eq!(outcome, failed(&reason, not_after));
}

#[tokio::test]
async fn a_certificate_for_another_name_fails_naming_both() {
    let ca = Ca::root("Test CA");
    let not_after = now_s() + 30 * DAY;
    let other = serve(&leaf(&["other.test"], now_s() - DAY, not_after, Some(&ca))).await;
    let outcome = probe(other.addr, "localhost", Some(&ca.pem()), 14).await;
    assert_eq!(
        outcome,
        failed("certificate for other.test, not localhost", not_after)
    );

    let many = ["a.test", "b.test", "c.test", "d.test"];
    let many = serve(&leaf(&many, now_s() - DAY, not_after, Some(&ca))).await;
    let outcome = probe(many.addr, "localhost", Some(&ca.pem()), 14).await;
    assert_eq!(
        outcome,
        failed(
            "certificate for a.test, b.test, c.test, …, not localhost",
            not_after
        )
    );
}

#[tokio::test]
async fn a_self_signed_certificate_fails_unless_it_is_the_given_ca() {
    let not_after = now_s() + 30 * DAY;
    let own = leaf(&["localhost"], now_s() - DAY, not_after, None);
    let server = serve(&own).await;
    let outcome = probe(server.addr, "localhost", None, 14).await;
    assert_eq!(outcome, failed("self-signed certificate", not_after));
    // Another CA given: still untrusted.
    let other = Ca::root("Test CA");
    let outcome = probe(server.addr, "localhost", Some(&other.pem()), 14).await;
    assert_eq!(outcome, failed("self-signed certificate", not_after));
    // The certificate itself given as --ca: it is its own trust anchor.
    let outcome = probe(server.addr, "localhost", Some(&own.cert.pem()), 14).await;
    assert_eq!(outcome, ok(not_after));
}

#[tokio::test]
async fn a_trusted_name_on_another_key_does_not_make_a_chain_trusted() {
    let not_after = now_s() + 30 * DAY;
    // A self-signed leaf, and another self-signed certificate of the same
    // name given as --ca (as Debian's snakeoil CN=localhost in the roots).
    let own = leaf(&["localhost"], now_s() - DAY, not_after, None);
    let twin = leaf(&["localhost"], now_s() - DAY, not_after, None);
    let server = serve(&own).await;
    let outcome = probe(server.addr, "localhost", Some(&twin.cert.pem()), 14).await;
    assert_eq!(outcome, failed("self-signed certificate", not_after));
    // A leaf from an impostor CA named like the given one.
    let genuine = Ca::root("Test CA");
    let impostor = Ca::root("Test CA");
    let server = serve(&valid_leaf(&impostor, not_after)).await;
    let outcome = probe(server.addr, "localhost", Some(&genuine.pem()), 14).await;
    assert_eq!(
        outcome,
        failed(
            "certificate not trusted (unknown issuer CN=Test CA)",
            not_after
        )
    );
}

#[tokio::test]
async fn a_certificate_from_a_ca_not_given_names_its_issuer() {
    let given = Ca::root("Test CA");
    let other = Ca::root("Other CA");
    let not_after = now_s() + 30 * DAY;
    let server = serve(&valid_leaf(&other, not_after)).await;
    let reason = "certificate not trusted (unknown issuer CN=Other CA)";
    let outcome = probe(server.addr, "localhost", Some(&given.pem()), 14).await;
    assert_eq!(outcome, failed(reason, not_after));
    let outcome = probe(server.addr, "localhost", None, 14).await;
    assert_eq!(
        outcome,
        failed(reason, not_after),
        "against the system roots"
    );
}

#[tokio::test]
async fn an_intermediate_sent_by_the_server_completes_the_chain() {
    let root = Ca::root("Test Root");
    let intermediate = root.intermediate("Test Intermediate");
    let not_after = now_s() + 30 * DAY;
    let leaf = valid_leaf(&intermediate, not_after);
    let chain = vec![leaf.cert.der().clone(), intermediate.cert.der().clone()];
    let full = tls_server(chain, &leaf.key).await;
    let outcome = probe(full.addr, "localhost", Some(&root.pem()), 14).await;
    assert_eq!(outcome, ok(not_after));

    let leaf_only = serve(&leaf).await;
    let outcome = probe(leaf_only.addr, "localhost", Some(&root.pem()), 14).await;
    assert_eq!(
        outcome,
        failed(
            "certificate not trusted (unknown issuer CN=Test Intermediate)",
            not_after
        )
    );

    let expired = root.intermediate_until("Old Intermediate", now_s() - DAY);
    let leaf = valid_leaf(&expired, not_after);
    let chain = vec![leaf.cert.der().clone(), expired.cert.der().clone()];
    let stale = tls_server(chain, &leaf.key).await;
    let outcome = probe(stale.addr, "localhost", Some(&root.pem()), 14).await;
    assert_eq!(
        outcome,
        failed(
            "certificate not trusted (an issuer certificate is outside its validity period)",
            not_after
        )
    );
}

#[tokio::test]
async fn judgement_order_is_trust_then_period_then_name_then_warn_days() {
    let ca = Ca::root("Test CA");
    let now = now_s();
    // Untrusted, expired and for another name: untrusted first.
    let expired = now - 3 * DAY - HOUR;
    let all_wrong = serve(&leaf(&["other.test"], now - 90 * DAY, expired, None)).await;
    let outcome = probe(all_wrong.addr, "localhost", None, 14).await;
    assert_eq!(outcome, failed("self-signed certificate", expired));
    // Trusted, expired, another name: the period before the name.
    let old = serve(&leaf(&["other.test"], now - 90 * DAY, expired, Some(&ca))).await;
    let outcome = probe(old.addr, "localhost", Some(&ca.pem()), 14).await;
    let reason = format!("certificate expired 3 days ago ({})", stamp(expired));
    assert_eq!(outcome, failed(&reason, expired));
    // Trusted, in its period, another name and expiring soon: the name.
    let soon = now + 2 * DAY + HOUR;
    let named = serve(&leaf(&["other.test"], now - DAY, soon, Some(&ca))).await;
    let outcome = probe(named.addr, "localhost", Some(&ca.pem()), 14).await;
    assert_eq!(
        outcome,
        failed("certificate for other.test, not localhost", soon)
    );
}

#[tokio::test]
async fn an_ip_target_verifies_ip_sans_and_sends_no_sni() {
    let ca = Ca::root("Test CA");
    let not_after = now_s() + 30 * DAY;
    let mut by_ip = serve(&leaf(
        &["127.0.0.1", "::1"],
        now_s() - DAY,
        not_after,
        Some(&ca),
    ))
    .await;
    let outcome = probe(by_ip.addr, "127.0.0.1", Some(&ca.pem()), 14).await;
    assert_eq!(outcome, ok(not_after));
    assert_eq!(by_ip.sni.recv().await, Some(None), "no SNI for an IP");

    let by_name = serve(&valid_leaf(&ca, not_after)).await;
    let outcome = probe(by_name.addr, "127.0.0.1", Some(&ca.pem()), 14).await;
    assert_eq!(
        outcome,
        failed("certificate for localhost, not 127.0.0.1", not_after)
    );
    let outcome = probe(by_ip.addr, "localhost", Some(&ca.pem()), 14).await;
    assert_eq!(
        outcome,
        failed("certificate for 127.0.0.1, ::1, not localhost", not_after)
    );
}

async fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

#[tokio::test]
async fn a_refused_connection_is_named_and_the_next_address_is_tried() {
    let closed = refused_addr().await;
    let outcome = probe(closed, "localhost", None, 14).await;
    assert_eq!(
        outcome,
        TlsOutcome {
            reason: Some(format!("connection refused by {closed}")),
            not_after_ms: None,
        }
    );

    let ca = Ca::root("Test CA");
    let not_after = now_s() + 30 * DAY;
    let server = serve(&valid_leaf(&ca, not_after)).await;
    let outcome = probe_at(
        &[closed, server.addr],
        "localhost",
        Some(&ca.pem()),
        14,
        None,
    )
    .await;
    assert_eq!(outcome, ok(not_after));
}

#[tokio::test]
async fn a_server_that_never_speaks_tls_is_cut_by_the_callers_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted_tx, accepted_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        let _ = accepted_tx.send(());
        // Hold the connection open, silent, until the test ends.
        std::future::pending::<()>().await;
        drop(conn);
    });
    let addrs = [addr];
    let target = TlsTarget {
        addrs: &addrs,
        source: None,
        server_name: "localhost",
        ca_pem: None,
        warn_days: 14,
        starttls: None,
    };
    let cut = tokio::time::timeout(Duration::from_millis(300), prober().probe(&target)).await;
    assert!(cut.is_err(), "the probe ended by itself: {cut:?}");
    accepted_rx.await.unwrap(); // it was waiting on TLS, not on connecting
}

/// A server that reads one TLS record (the ClientHello), then answers
/// `answer` (may be empty) and closes.
async fn not_tls_server(answer: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut header = [0u8; 5];
            conn.read_exact(&mut header).await.unwrap();
            let mut body = vec![0u8; usize::from(u16::from_be_bytes([header[3], header[4]]))];
            conn.read_exact(&mut body).await.unwrap();
            conn.write_all(answer).await.unwrap();
            conn.shutdown().await.unwrap();
        }
    });
    addr
}

#[tokio::test]
async fn handshake_failures_say_so() {
    let http = not_tls_server(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    let outcome = probe(http, "localhost", None, 14).await;
    assert_eq!(
        outcome.reason.as_deref(),
        Some("TLS handshake failed: received corrupt message of type InvalidContentType")
    );
    assert_eq!(outcome.not_after_ms, None);

    let closing = not_tls_server(b"").await;
    let outcome = probe(closing, "localhost", None, 14).await;
    assert_eq!(
        outcome.reason.as_deref(),
        Some("TLS handshake failed: connection closed by the server")
    );

    // A handshake_failure alert (21 = alert, TLS 1.2, length 2, fatal, 40).
    let alert = not_tls_server(&[21, 3, 3, 0, 2, 2, 40]).await;
    let outcome = probe(alert, "localhost", None, 14).await;
    assert_eq!(
        outcome.reason.as_deref(),
        Some("TLS handshake failed: received fatal alert: HandshakeFailure")
    );
}

#[tokio::test]
async fn a_bad_server_name_or_ca_is_reported_without_connecting() {
    let closed = refused_addr().await;
    let outcome = probe(closed, "not a name!", None, 14).await;
    assert_eq!(
        outcome.reason.as_deref(),
        Some("\"not a name!\" is not a valid DNS name or IP address")
    );
    let outcome = probe(closed, "localhost", Some("no pem here"), 14).await;
    assert_eq!(
        outcome.reason.as_deref(),
        Some("--ca unusable: no CERTIFICATE block in the PEM")
    );
}

/// One step of a scripted clear-text server.
#[derive(Clone, Copy)]
enum Step {
    Send(&'static str),
    /// Read one line (up to LF), record it without CRLF.
    Line,
    /// Read exactly n bytes, record them in hex.
    Bytes(usize),
    /// Start TLS with the certificate.
    Tls,
}

/// A server that plays `script` on one connection and records what the
/// client sent.
async fn scripted_server(script: Vec<Step>, leaf: &Leaf) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let acceptor = TlsAcceptor::from(Arc::new(server_config(
        vec![leaf.cert.der().clone()],
        &leaf.key,
    )));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&heard);
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        for step in script {
            match step {
                Step::Send(text) => conn.write_all(text.as_bytes()).await.unwrap(),
                Step::Line => {
                    let line = read_line(&mut conn).await;
                    record.lock().unwrap().push(line);
                }
                Step::Bytes(n) => {
                    let mut buf = vec![0u8; n];
                    conn.read_exact(&mut buf).await.unwrap();
                    let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
                    record.lock().unwrap().push(hex);
                }
                Step::Tls => {
                    let mut tls = acceptor.accept(conn).await.unwrap();
                    let mut buf = [0u8; 64];
                    let _ = tls.read(&mut buf).await;
                    return;
                }
            }
        }
        // Script over without TLS: hold the line until the client leaves.
        let mut buf = [0u8; 64];
        let _ = conn.read(&mut buf).await;
    });
    (addr, heard)
}

/// Byte by byte, so nothing after the line is consumed before TLS.
async fn read_line(conn: &mut TcpStream) -> String {
    let mut line = Vec::new();
    loop {
        let b = conn.read_u8().await.unwrap();
        if b == b'\n' {
            break;
        }
        line.push(b);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).unwrap()
}

/// Runs `script` with STARTTLS `protocol`: the outcome and what the server heard.
async fn starttls(protocol: Starttls, script: Vec<Step>) -> (TlsOutcome, Vec<String>, i64) {
    let ca = Ca::root("Test CA");
    let not_after = now_s() + 30 * DAY;
    let (addr, heard) = scripted_server(script, &valid_leaf(&ca, not_after)).await;
    let outcome = probe_at(&[addr], "localhost", Some(&ca.pem()), 14, Some(protocol)).await;
    let heard = heard.lock().unwrap().clone();
    (outcome, heard, not_after)
}

fn refused(reason: &str) -> TlsOutcome {
    TlsOutcome {
        reason: Some(reason.to_string()),
        not_after_ms: None,
    }
}

#[tokio::test]
async fn smtp_starttls_reaches_the_certificate() {
    use Step::*;
    let script = vec![
        Send("220-mail.test ESMTP\r\n220 welcome\r\n"),
        Line,
        Send("250-mail.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
        Line,
        Send("220 2.0.0 Ready to start TLS\r\n"),
        Tls,
    ];
    let (outcome, heard, not_after) = starttls(Starttls::Smtp, script).await;
    assert_eq!(outcome, ok(not_after));
    assert_eq!(heard, ["EHLO qu", "STARTTLS"]);
}

#[tokio::test]
async fn smtp_refusals_quote_the_server() {
    use Step::*;
    let script = vec![
        Send("220 mail.test ESMTP\r\n"),
        Line,
        Send("250 mail.test\r\n"),
        Line,
        Send("502 5.5.1 Command not implemented\r\n"),
    ];
    let (outcome, _, _) = starttls(Starttls::Smtp, script).await;
    assert_eq!(
        outcome,
        refused("SMTP server does not offer STARTTLS: 502 5.5.1 Command not implemented")
    );

    let script = vec![Send("554 5.3.2 no service\r\n")];
    let (outcome, _, _) = starttls(Starttls::Smtp, script).await;
    assert_eq!(
        outcome,
        refused("SMTP server refused the session: 554 5.3.2 no service")
    );
}

#[tokio::test]
async fn smtp_data_injected_before_tls_is_refused() {
    use Step::*;
    let script = vec![
        Send("220 mail.test ESMTP\r\n"),
        Line,
        Send("250 STARTTLS\r\n"),
        Line,
        Send("220 Ready\r\n250 injected\r\n"),
    ];
    let (outcome, _, _) = starttls(Starttls::Smtp, script).await;
    assert_eq!(
        outcome,
        refused("SMTP server sent data before the TLS handshake")
    );
}

#[tokio::test]
async fn starttls_lines_are_bounded() {
    let long: &'static str = Box::leak("x".repeat(5000).into_boxed_str());
    let (outcome, _, _) = starttls(Starttls::Smtp, vec![Step::Send(long)]).await;
    assert_eq!(
        outcome,
        refused("SMTP server sent a line longer than 4096 bytes")
    );
}

#[tokio::test]
async fn imap_starttls_and_refusal() {
    use Step::*;
    let script = vec![
        Send("* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n"),
        Line,
        Send("a001 OK Begin TLS negotiation now\r\n"),
        Tls,
    ];
    let (outcome, heard, not_after) = starttls(Starttls::Imap, script).await;
    assert_eq!(outcome, ok(not_after));
    assert_eq!(heard, ["a001 STARTTLS"]);

    let script = vec![
        Send("* OK ready\r\n"),
        Line,
        Send("* BYE not today\r\na001 BAD unknown command\r\n"),
    ];
    let (outcome, _, _) = starttls(Starttls::Imap, script).await;
    assert_eq!(
        outcome,
        refused("IMAP server does not offer STARTTLS: a001 BAD unknown command")
    );
}

#[tokio::test]
async fn pop3_stls_and_refusal() {
    use Step::*;
    let script = vec![
        Send("+OK POP3 ready\r\n"),
        Line,
        Send("+OK Begin TLS\r\n"),
        Tls,
    ];
    let (outcome, heard, not_after) = starttls(Starttls::Pop3, script).await;
    assert_eq!(outcome, ok(not_after));
    assert_eq!(heard, ["STLS"]);

    let script = vec![
        Send("+OK POP3 ready\r\n"),
        Line,
        Send("-ERR unknown command\r\n"),
    ];
    let (outcome, _, _) = starttls(Starttls::Pop3, script).await;
    assert_eq!(
        outcome,
        refused("POP3 server does not offer STLS: -ERR unknown command")
    );
}

#[tokio::test]
async fn postgres_ssl_request_and_refusal() {
    use Step::*;
    let (outcome, heard, not_after) =
        starttls(Starttls::Postgres, vec![Bytes(8), Send("S"), Tls]).await;
    assert_eq!(outcome, ok(not_after));
    assert_eq!(heard, ["0000000804d2162f"]);

    let (outcome, _, _) = starttls(Starttls::Postgres, vec![Bytes(8), Send("N")]).await;
    assert_eq!(
        outcome,
        refused("PostgreSQL server does not offer TLS (it answered N to SSLRequest)")
    );
}

#[test]
fn ca_pem_validation_counts_or_names_the_bad_block() {
    let a = Ca::root("A").pem();
    let b = Ca::root("B").pem();
    let key = KeyPair::generate().unwrap().serialize_pem();
    assert_eq!(parse_ca_pem(&a), Ok(1));
    assert_eq!(parse_ca_pem(&format!("{a}{key}{b}")), Ok(2));

    let none = "no CERTIFICATE block in the PEM".to_string();
    assert_eq!(parse_ca_pem(""), Err(none.clone()));
    assert_eq!(parse_ca_pem(&key), Err(none));

    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert_eq!(
        parse_ca_pem(&format!("{a}{garbage}")),
        Err(
            "CERTIFICATE block 2 is not a valid X.509 certificate (TrailingData(SignedData))"
                .to_string()
        )
    );
    let bad_base64 = "-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n";
    assert_eq!(
        parse_ca_pem(bad_base64),
        Err("PEM block 1 is not valid base64".to_string())
    );
    let unterminated = a.replace("-----END CERTIFICATE-----", "");
    assert_eq!(
        parse_ca_pem(&unterminated),
        Err("PEM block 1 has no END line".to_string())
    );
}

#[test]
fn leaf_not_after_is_read_from_der() {
    let not_after = now_s() + 30 * DAY;
    let cert = leaf(&["localhost"], now_s() - DAY, not_after, None).cert;
    assert_eq!(leaf_not_after_ms(cert.der()), Some(not_after as u64 * 1000));
    assert_eq!(leaf_not_after_ms(b"not a certificate"), None);
}

#[test]
fn expiry_reason_is_public_for_https_checks() {
    let not_after_ms = 1_796_860_800_000; // 2026-12-10T00:00:00Z
    let day = 86_400_000;
    assert_eq!(
        expiry_reason(not_after_ms, not_after_ms - 9 * day - 1, 14).as_deref(),
        Some("certificate expires in 9 days (2026-12-10T00:00:00Z)")
    );
    assert_eq!(
        expiry_reason(not_after_ms, not_after_ms - 14 * day, 14),
        None
    );
}
