//! SMTP alerts against a real SMTP server process on loopback (Debian's
//! python3-aiosmtpd, see tests/support/smtp_server.py): plain, AUTH,
//! STARTTLS with a CA the daemon is told to trust, and headers (Date,
//! Message-ID, no injection through a check name).
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::smtp::SmtpServer;
use common::{stderr, stdout, wait_for, Node};
use qu::alerts::message::{Event, Message};
use qu::alerts::{http_client, provider_for, SendError};
use qu_raft::model::AlertKind;

fn smtp(port: u16, user: Option<&str>, password: Option<&str>, starttls: bool) -> AlertKind {
    AlertKind::Smtp {
        host: "127.0.0.1".into(),
        port,
        from: "monitor@example.com".into(),
        to: vec!["ops@example.com".into(), "dev@example.com".into()],
        user: user.map(str::to_string),
        password: password.map(str::to_string),
        starttls,
        tls: false,
    }
}

fn message(name: &str) -> Message {
    let mut m = Message::test("ops", None);
    m.event = Event::Down;
    m.delivery_id = "c1-2-a1".into();
    m.check_name = name.into();
    m
}

/// The header block of a raw mail.
fn headers(mail: &str) -> Vec<String> {
    let end = mail
        .find("\r\n\r\n")
        .or_else(|| mail.find("\n\n"))
        .unwrap_or(mail.len());
    mail[..end].lines().map(str::to_string).collect()
}

#[tokio::test]
async fn plain_smtp_delivers_with_date_message_id_and_a_safe_subject() {
    let server = SmtpServer::start(&[]);
    let p = provider_for(
        &smtp(server.port, None, None, false),
        &http_client().unwrap(),
    );
    p.send(&message("evil\r\nBcc: victim@example.com"))
        .await
        .unwrap();
    let mails = wait_for("the mail to arrive", Duration::from_secs(5), || {
        let m = server.mails();
        (!m.is_empty()).then_some(m)
    });
    let h = headers(&mails[0]);
    assert!(h.iter().any(|l| l.starts_with("Date: ")), "{h:?}");
    assert!(
        h.iter().any(|l| l == "Message-ID: <c1-2-a1@qu.invalid>"),
        "{h:?}"
    );
    let subject: Vec<&String> = h.iter().filter(|l| l.starts_with("Subject: ")).collect();
    assert_eq!(subject.len(), 1, "{h:?}");
    assert!(subject[0].contains("[qu] DOWN: evil"), "{}", subject[0]);
    assert!(
        !h.iter().any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
        "a header was injected: {h:?}"
    );
    assert!(
        h.iter().any(|l| l.starts_with("To: ")
            && l.contains("ops@example.com")
            && l.contains("dev@example.com")),
        "{h:?}"
    );
}

#[tokio::test]
async fn smtp_auth_succeeds_with_the_right_password_and_fails_permanently_otherwise() {
    let server = SmtpServer::start(&["--auth", "mailbot:hunter2"]);
    let ok = provider_for(
        &smtp(server.port, Some("mailbot"), Some("hunter2"), false),
        &http_client().unwrap(),
    );
    ok.send(&message("homepage")).await.unwrap();
    wait_for("the authenticated mail", Duration::from_secs(5), || {
        (server.mails().len() == 1).then_some(())
    });
    let bad = provider_for(
        &smtp(server.port, Some("mailbot"), Some("wrong"), false),
        &http_client().unwrap(),
    );
    match bad.send(&message("homepage")).await {
        Err(SendError::Permanent(reason)) => {
            assert!(!reason.contains("wrong"), "the password leaked: {reason}")
        }
        other => panic!("a refused login must be permanent: {other:?}"),
    }
    assert_eq!(server.mails().len(), 1);
}

/// A CA and a server certificate for "localhost" signed by it (PEM files).
fn ca_and_server_cert(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "qu test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (ca, crt, k) = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    std::fs::write(&crt, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (ca, crt, k)
}

#[test]
fn starttls_through_a_running_cluster_with_qu_alert_test() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, crt, key) = ca_and_server_cert(certs.path());
    let server = SmtpServer::start(&["--tls", crt.to_str().unwrap(), key.to_str().unwrap()]);
    let port = server.port.to_string();

    // A daemon that does not trust the CA refuses the server's certificate.
    let mut untrusting = Node::init(&[]);
    untrusting.start();
    let add = [
        "alert",
        "add",
        "smtp",
        "ops",
        "--host",
        "localhost",
        "--port",
        &port,
        "--from",
        "monitor@example.com",
        "--to",
        "ops@example.com",
    ];
    let out = untrusting.qu(&add);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = untrusting.qu(&["alert", "test", "ops"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an untrusted certificate was accepted: {}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("smtp alert ops failed"),
        "{}",
        stderr(&out)
    );
    assert!(server.mails().is_empty());

    // Told to trust it (SSL_CERT_FILE, as rustls-native-certs reads it), STARTTLS works.
    let mut node = Node::init(&[]);
    node.spawn_serve_env(
        &["--timing", "fast"],
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    );
    node.wait_ready();
    let out = node.qu(&add);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = node.qu(&["alert", "test", "ops"]);
    assert!(out.status.success(), "alert test failed: {}", stderr(&out));
    assert!(stdout(&out).contains("test page sent"), "{}", stdout(&out));
    let mails = wait_for("the STARTTLS mail", Duration::from_secs(5), || {
        let m = server.mails();
        (!m.is_empty()).then_some(m)
    });
    assert!(
        headers(&mails[0])
            .iter()
            .any(|l| l.starts_with("Subject: [qu] TEST")),
        "{:?}",
        headers(&mails[0])
    );
}
