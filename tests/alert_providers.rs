//! Webhook and Discord providers against a local HTTP receiver standing in
//! for the real endpoints: payload shape, the 2000-character limit, 429
//! with retry_after, 500 retried, 404 permanent.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::time::Duration;

use common::receiver::Receiver;
use qu::alerts::message::{Event, Message};
use qu::alerts::{http_client, provider_for, SendError};
use qu_raft::model::{AlertKind, Evidence};
use qu_raft::NodeId;

fn down_message(name: &str) -> Message {
    Message {
        delivery_id: "c1-2-a1".into(),
        event: Event::Down,
        check_id: "c1".into(),
        check_name: name.into(),
        check_type: "http".into(),
        target: "https://example.com".into(),
        since: "2026-05-12T14:00:02Z".into(),
        votes: "2/3 down: connection refused".into(),
        evidence: vec![
            Evidence {
                node: NodeId(1),
                ok: false,
                reason: "connection refused".into(),
                latency_ms: Some(1),
                cert_not_after_ms: None,
            },
            Evidence {
                node: NodeId(2),
                ok: false,
                reason: "connection refused".into(),
                latency_ms: Some(2),
                cert_not_after_ms: None,
            },
            Evidence {
                node: NodeId(3),
                ok: true,
                reason: String::new(),
                latency_ms: Some(3),
                cert_not_after_ms: None,
            },
        ],
        master: Some(NodeId(1)),
        note: String::new(),
        incident_key: "qu-c1-2".into(),
        cluster: "prod".into(),
        alert_name: "pager".into(),
        outage_ms: None,
        title_template: None,
        body_template: None,
    }
}

fn webhook(r: &Receiver) -> AlertKind {
    AlertKind::Webhook {
        url: r.url("/hook"),
        headers: vec![("Authorization".into(), "Bearer s3cret".into())],
    }
}

fn discord(r: &Receiver) -> AlertKind {
    AlertKind::Discord {
        webhook: r.url("/api/webhooks/1/TOKEN"),
    }
}

#[tokio::test]
async fn webhook_posts_the_documented_json_with_headers() {
    let r = Receiver::start();
    let p = provider_for(&webhook(&r), &http_client().unwrap());
    p.send(&down_message("homepage")).await.unwrap();
    let reqs = r.requests();
    assert_eq!(reqs.len(), 1);
    let got = &reqs[0];
    assert_eq!(got.path, "/hook");
    assert_eq!(got.header("authorization"), Some("Bearer s3cret"));
    assert!(got
        .header("content-type")
        .unwrap_or("")
        .starts_with("application/json"));
    let j = got.json();
    assert_eq!(j["event"], "down");
    assert_eq!(j["check_name"], "homepage");
    assert_eq!(j["check_type"], "http");
    assert_eq!(j["target"], "https://example.com");
    assert_eq!(j["votes"], "2/3 down: connection refused");
    assert_eq!(j["delivery_id"], "c1-2-a1");
    assert_eq!(j["master"], "0000000000000001");
    assert_eq!(j["evidence"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn webhook_retries_5xx_and_429_and_gives_up_on_404() {
    let r = Receiver::start();
    let p = provider_for(&webhook(&r), &http_client().unwrap());
    r.script(vec![
        (500, vec![], "oops".into()),
        (429, vec![("Retry-After".into(), "2".into())], String::new()),
        (404, vec![], "no such hook".into()),
    ]);
    let m = down_message("homepage");
    assert!(matches!(
        p.send(&m).await,
        Err(SendError::Retry { after: None, .. })
    ));
    assert_eq!(
        p.send(&m).await,
        Err(SendError::Retry {
            reason: "HTTP 429 (rate limited)".into(),
            after: Some(Duration::from_secs(2))
        })
    );
    match p.send(&m).await {
        Err(SendError::Permanent(reason)) => assert!(
            reason.contains("404") && reason.contains("no such hook"),
            "{reason}"
        ),
        other => panic!("404 must be permanent: {other:?}"),
    }
}

#[tokio::test]
async fn discord_content_stays_within_2000_characters() {
    let r = Receiver::start();
    let p = provider_for(&discord(&r), &http_client().unwrap());
    let mut m = down_message("homepage");
    m.evidence = (0..200)
        .map(|i| Evidence {
            node: NodeId(i),
            ok: false,
            reason: "x".repeat(50),
            latency_ms: None,
            cert_not_after_ms: None,
        })
        .collect();
    p.send(&m).await.unwrap();
    let content = r.requests()[0].json()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(content.chars().count(), 2000);
    assert!(
        content.starts_with("**[qu] DOWN: homepage**"),
        "{}",
        &content[..60]
    );
}

#[tokio::test]
async fn discord_429_is_retried_after_retry_after_and_other_4xx_are_permanent() {
    let r = Receiver::start();
    let p = provider_for(&discord(&r), &http_client().unwrap());
    r.script(vec![
        (
            429,
            vec![],
            r#"{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}"#
                .into(),
        ),
        (500, vec![], String::new()),
        (
            404,
            vec![],
            r#"{"message": "Unknown Webhook", "code": 10015}"#.into(),
        ),
    ]);
    let m = down_message("homepage");
    match p.send(&m).await {
        Err(SendError::Retry { after, reason }) => {
            assert_eq!(after, Some(Duration::from_millis(1500)));
            assert!(reason.contains("rate limited"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(p.send(&m).await, Err(SendError::Retry { .. })),
        "500 is retried"
    );
    assert_eq!(
        p.send(&m).await,
        Err(SendError::Permanent(
            "Discord HTTP 404 (the receiver said: \"Unknown Webhook\")".into()
        ))
    );
    // No error message ever contains the webhook token.
    for e in [p.send(&m).await.err()].into_iter().flatten() {
        assert!(!e.to_string().contains("TOKEN"));
    }
}

#[tokio::test]
async fn an_unreachable_receiver_is_a_retryable_error_without_the_secret_url() {
    let port = common::free_port();
    let kind = AlertKind::Discord {
        webhook: format!("http://127.0.0.1:{port}/api/webhooks/1/SECRETTOKEN"),
    };
    let p = provider_for(&kind, &http_client().unwrap());
    match p.send(&down_message("homepage")).await {
        Err(SendError::Retry { reason, .. }) => {
            assert!(!reason.contains("SECRETTOKEN"), "{reason}");
            // The cause underneath is kept: where, and what failed.
            assert!(
                reason.contains(&format!("cannot connect to 127.0.0.1:{port}")),
                "{reason}"
            );
            assert!(reason.to_lowercase().contains("refused"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A name that does not resolve says so.
    let kind = AlertKind::Discord {
        webhook: "http://no-such-host.invalid/api/webhooks/1/SECRETTOKEN".into(),
    };
    let p = provider_for(&kind, &http_client().unwrap());
    match p.send(&down_message("homepage")).await {
        Err(SendError::Retry { reason, .. }) => {
            assert!(!reason.contains("SECRETTOKEN"), "{reason}");
            assert!(
                reason.contains("no-such-host.invalid") && reason.contains("dns error"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}
