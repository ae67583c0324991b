//! The level-5 alert providers (Slack, Telegram, PagerDuty, Opsgenie, ntfy,
//! Teams, Matrix, Pushover, Gotify) against a local HTTP receiver standing
//! in for each service: the request each service's API documentation asks
//! for (method, path, auth, body fields), its length limits applied after
//! rendering, its retry hint on a 429, its own words on a refusal, and no
//! secret in any error.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::time::Duration;

use common::receiver::{json_reply, Captured, Receiver};
use qu::alerts::message::{Event, Message};
use qu::alerts::template::Markup;
use qu::alerts::{http_client, opsgenie, provider_for, SendError};
use qu_raft::model::{AlertKind, Delivery, DeliveryStatus, Evidence, Health, TransitionRecord};
use qu_raft::NodeId;
use serde_json::json;

// ---------------------------------------------------------------- fixtures

/// 2026-12-03T06:00:00Z.
const AT_MS: u64 = 1_796_277_600_000;
const NAME: &str = "shop <eu> & co";
const TARGET: &str = "https://shop.example.com/?a=1&b=2";

/// What `Message::text` says for `down()`.
const DOWN_TEXT: &str = "shop <eu> & co is DOWN since 2026-12-03T06:00:00Z\n\
check:  http https://shop.example.com/?a=1&b=2\n\
votes:  2/3 down: HTTP 503\n  \
00000000000000a7: HTTP 503 (12ms)\n  \
00000000000000b2: HTTP 503 (20ms)\n  \
00000000000000c3: ok (30ms)\n\
master: 00000000000000a7\n";
const DOWN_SUBJECT: &str = "[qu] DOWN: shop <eu> & co";
const RECOVERED_SUBJECT: &str = "[qu] RECOVERED: shop <eu> & co";

fn ev(node: u64, ok: bool, reason: &str, ms: u64) -> Evidence {
    Evidence {
        node: NodeId(node),
        ok,
        reason: reason.into(),
        latency_ms: Some(ms),
        cert_not_after_ms: None,
    }
}

/// The ledger's record of a page of check `c1` to alert `a1`.
fn delivery(id: &str, to: Health, at_ms: u64, down_since_ms: Option<u64>) -> Delivery {
    let evidence = if to == Health::Down {
        vec![
            ev(0xa7, false, "HTTP 503", 12),
            ev(0xb2, false, "HTTP 503", 20),
            ev(0xc3, true, "", 30),
        ]
    } else {
        vec![
            ev(0xa7, true, "", 11),
            ev(0xb2, true, "", 21),
            ev(0xc3, true, "", 31),
        ]
    };
    Delivery {
        id: id.into(),
        check_id: "c1".into(),
        check_name: NAME.into(),
        check_type: "http".into(),
        target: TARGET.into(),
        alert_id: "a1".into(),
        alert_name: "pager".into(),
        transition: TransitionRecord {
            round: 7,
            from: if to == Health::Down {
                Health::Up
            } else {
                Health::Down
            },
            to,
            at_ms,
            voters: 3,
            evidence,
        },
        created_ms: at_ms,
        status: DeliveryStatus::Pending,
        note: String::new(),
        not_before_ms: None,
        released: false,
        down_since_ms,
    }
}

/// The DOWN of the check's third flip.
fn down() -> Message {
    let d = delivery("c1-3-a1", Health::Down, AT_MS, None);
    Message::from_delivery(&d, None, "prod", Some(NodeId(0xa7)))
}

/// The RECOVERED (fourth flip) that ends that outage, 250 s later.
fn recovered() -> Message {
    let d = delivery("c1-4-a1", Health::Up, AT_MS + 250_000, Some(AT_MS));
    Message::from_delivery(&d, None, "prod", Some(NodeId(0xa7)))
}

/// A DOWN whose check name is 100 000 characters of markup, multibyte
/// characters and quotes.
fn huge() -> Message {
    let mut m = down();
    m.check_name = "é🚨<&\"".repeat(20_000);
    m
}

/// `&`, `<`, `>` as HTML and Slack's mrkdwn want them (written here, not
/// taken from the crate, so the escaping itself is under test).
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn client() -> reqwest::Client {
    http_client().unwrap()
}

fn only(r: &Receiver) -> Captured {
    let reqs = r.requests();
    assert_eq!(reqs.len(), 1, "{reqs:#?}");
    reqs.into_iter().next().unwrap()
}

fn assert_json_request(c: &Captured, method: &str, path: &str) {
    assert_eq!((c.method.as_str(), c.path.as_str()), (method, path));
    assert!(
        c.header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        c.header("content-type")
    );
}

/// `cut` is `full` cut short: within `max_chars` characters (and
/// `max_bytes` bytes of UTF-8 when given), ending in an ellipsis, and what
/// precedes it is the start of `full` (so no character was split and
/// nothing was invented).
fn assert_cut(cut: &str, full: &str, max_chars: usize, max_bytes: Option<usize>) {
    let n = cut.chars().count();
    assert!(n <= max_chars, "{n} characters > {max_chars}");
    if let Some(b) = max_bytes {
        assert!(cut.len() <= b, "{} bytes > {b}", cut.len());
    }
    assert!(
        cut.ends_with('…'),
        "not cut with an ellipsis: …{:?}",
        tail(cut)
    );
    let kept = cut.strip_suffix('…').unwrap();
    assert!(
        full.starts_with(kept),
        "not a prefix of the rendering: …{:?}",
        tail(kept)
    );
}

/// The text does not end inside an HTML/mrkdwn tag or entity.
fn assert_no_open_markup(s: &str) {
    let s = s.trim_end_matches('…');
    if let Some(i) = s.rfind('<') {
        assert!(
            s[i..].contains('>'),
            "half a tag at the end: …{:?}",
            tail(s)
        );
    }
    if let Some(i) = s.rfind('&') {
        assert!(
            s[i..].contains(';'),
            "half an entity at the end: …{:?}",
            tail(s)
        );
    }
}

fn tail(s: &str) -> String {
    let v: Vec<char> = s.chars().collect();
    v[v.len().saturating_sub(12)..].iter().collect()
}

fn no_secret(e: &SendError, secrets: &[&str]) {
    let text = format!("{e} {e:?}");
    for s in secrets {
        assert!(!text.contains(s), "the secret {s:?} is in {text}");
    }
}

fn permanent(r: Result<(), SendError>) -> String {
    match r {
        Err(SendError::Permanent(reason)) => reason,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

// ------------------------------------------------------------------ Slack

const SLACK_SECRET: &str = "XoXoSlackHookSecret42";

fn slack(r: &Receiver) -> AlertKind {
    AlertKind::Slack {
        webhook: r.url(&format!("/services/T0001/B0002/{SLACK_SECRET}")),
    }
}

#[tokio::test]
async fn slack_posts_a_block_kit_message_with_a_plain_header_and_escaped_mrkdwn() {
    let r = Receiver::start();
    r.script(vec![(200, vec![], "ok".into())]);
    provider_for(&slack(&r), &client())
        .send(&down())
        .await
        .unwrap();
    let c = only(&r);
    assert_json_request(&c, "POST", &format!("/services/T0001/B0002/{SLACK_SECRET}"));
    assert_eq!(
        c.json(),
        json!({
            "text": esc(DOWN_SUBJECT),
            "blocks": [
                {
                    "type": "header",
                    "text": { "type": "plain_text", "text": DOWN_SUBJECT, "emoji": true },
                },
                {
                    "type": "section",
                    "text": { "type": "mrkdwn", "text": esc(DOWN_TEXT.trim_end()) },
                },
            ],
        })
    );
}

#[tokio::test]
async fn slack_templates_arrive_with_mrkdwn_escaped_values() {
    let r = Receiver::start();
    let mut m = down();
    m.title_template = Some("{{ state }}: {{ check.name }}".into());
    m.body_template = Some("*{{ check.name }}* <{{ check.target }}|open> ({{ votes }})".into());
    provider_for(&slack(&r), &client()).send(&m).await.unwrap();
    let j = only(&r).json();
    // The header is plain_text (Slack shows it as is); the fallback text
    // and the sections are mrkdwn, so the values are escaped there.
    assert_eq!(j["blocks"][0]["text"]["text"], "DOWN: shop <eu> & co");
    assert_eq!(j["text"], "DOWN: shop &lt;eu&gt; &amp; co");
    assert_eq!(
        j["blocks"][1]["text"]["text"],
        "*shop &lt;eu&gt; &amp; co* <https://shop.example.com/?a=1&amp;b=2|open> (2/3 down: HTTP 503)"
    );
    assert_eq!(j["blocks"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn slack_cuts_a_huge_page_to_block_kit_limits_without_splitting_characters_or_entities() {
    let r = Receiver::start();
    let m = huge();
    provider_for(&slack(&r), &client()).send(&m).await.unwrap();
    let j = only(&r).json();
    let blocks = j["blocks"].as_array().unwrap();
    assert!(
        blocks.len() <= 50,
        "Block Kit takes 50 blocks: {}",
        blocks.len()
    );
    // A header's plain_text holds 150 characters.
    let header = blocks[0]["text"]["text"].as_str().unwrap();
    assert_eq!(header.chars().count(), 150);
    assert_cut(header, &m.subject(), 150, None);
    let fallback = j["text"].as_str().unwrap();
    assert_cut(fallback, &m.title(Markup::SlackMrkdwn), 150, None);
    assert_no_open_markup(fallback);
    // Sections of at most 3000 characters, none ending inside an entity,
    // 40 000 characters in all.
    let sections: Vec<&str> = blocks[1..]
        .iter()
        .map(|b| {
            assert_eq!(b["type"], "section");
            b["text"]["text"].as_str().unwrap()
        })
        .collect();
    for s in &sections {
        assert!(s.chars().count() <= 3000, "{}", s.chars().count());
        assert_no_open_markup(s);
    }
    let body = sections.concat();
    let total = body.chars().count() + header.chars().count();
    assert!(total <= 40_000, "{total}");
    assert_cut(&body, &m.body(Markup::SlackMrkdwn), 40_000 - 150, None);
}

#[tokio::test]
async fn slack_429_waits_retry_after_and_4xx_are_permanent_in_slacks_words() {
    let r = Receiver::start();
    r.script(vec![
        (
            429,
            vec![("Retry-After".into(), "7".into())],
            "rate_limited".into(),
        ),
        (400, vec![], "invalid_payload".into()),
        (404, vec![], "channel_not_found".into()),
        (500, vec![], "rollup_error".into()),
    ]);
    let p = provider_for(&slack(&r), &client());
    let m = down();
    let e = p.send(&m).await.unwrap_err();
    assert_eq!(
        e,
        SendError::Retry {
            reason: "Slack HTTP 429 (rate limited) (the receiver said: \"rate_limited\")".into(),
            after: Some(Duration::from_secs(7)),
        }
    );
    no_secret(&e, &[SLACK_SECRET, "T0001/B0002"]);
    let e = p.send(&m).await.unwrap_err();
    assert_eq!(
        e,
        SendError::Permanent("Slack HTTP 400 (the receiver said: \"invalid_payload\")".into())
    );
    no_secret(&e, &[SLACK_SECRET, "T0001/B0002"]);
    assert_eq!(
        permanent(p.send(&m).await),
        "Slack HTTP 404 (the receiver said: \"channel_not_found\")"
    );
    assert_eq!(
        p.send(&m).await,
        Err(SendError::Retry {
            reason: "Slack HTTP 500 (the receiver said: \"rollup_error\")".into(),
            after: None,
        })
    );
    assert_eq!(r.requests().len(), 4);
}

// --------------------------------------------------------------- Telegram

const TG_TOKEN: &str = "123456789:AAHtelegramBotSecret";
const TG_CHAT: &str = "-1001234567890";

fn telegram(r: &Receiver) -> AlertKind {
    AlertKind::Telegram {
        token: TG_TOKEN.into(),
        chat_id: TG_CHAT.into(),
        api_url: Some(r.url("")),
    }
}

fn tg_ok() -> common::receiver::Reply {
    json_reply(
        200,
        json!({"ok": true, "result": {"message_id": 42, "chat": {"id": -1001234567890_i64}}}),
    )
}

fn tg_cant_parse() -> common::receiver::Reply {
    json_reply(
        400,
        json!({
            "ok": false,
            "error_code": 400,
            "description": "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\""
        }),
    )
}

#[tokio::test]
async fn telegram_send_message_is_html_with_the_values_escaped() {
    let r = Receiver::start();
    r.script(vec![tg_ok()]);
    provider_for(&telegram(&r), &client())
        .send(&down())
        .await
        .unwrap();
    let c = only(&r);
    assert_json_request(&c, "POST", &format!("/bot{TG_TOKEN}/sendMessage"));
    assert_eq!(
        c.json(),
        json!({
            "chat_id": TG_CHAT,
            "text": format!("<b>{}</b>\n{}", esc(DOWN_SUBJECT), esc(DOWN_TEXT)),
            "parse_mode": "HTML",
            "link_preview_options": { "is_disabled": true },
        })
    );
}

#[tokio::test]
async fn telegram_templates_arrive_with_html_escaped_values() {
    let r = Receiver::start();
    let mut m = down();
    m.title_template = Some("{{ state }} <i>{{ check.name }}</i>".into());
    m.body_template =
        Some("<a href=\"{{ check.target }}\">{{ check.name }}</a>: {{ votes }}".into());
    provider_for(&telegram(&r), &client())
        .send(&m)
        .await
        .unwrap();
    let j = only(&r).json();
    assert_eq!(
        j["text"],
        "<b>DOWN <i>shop &lt;eu&gt; &amp; co</i></b>\n<a href=\"https://shop.example.com/?a=1&amp;b=2\">shop &lt;eu&gt; &amp; co</a>: 2/3 down: HTTP 503"
    );
    assert_eq!(j["parse_mode"], "HTML");
}

#[tokio::test]
async fn telegram_html_it_cannot_parse_is_sent_once_more_as_plain_text() {
    let r = Receiver::start();
    r.script(vec![tg_cant_parse(), tg_ok()]);
    provider_for(&telegram(&r), &client())
        .send(&down())
        .await
        .unwrap();
    let reqs = r.requests();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert_eq!(reqs[0].json()["parse_mode"], "HTML");
    assert_json_request(&reqs[1], "POST", &format!("/bot{TG_TOKEN}/sendMessage"));
    assert_eq!(
        reqs[1].json(),
        json!({
            "chat_id": TG_CHAT,
            "text": format!("{DOWN_SUBJECT}\n{DOWN_TEXT}"),
            "link_preview_options": { "is_disabled": true },
        })
    );

    // Only once: a plain text refused as well is the answer.
    let r = Receiver::start();
    r.script(vec![tg_cant_parse(), tg_cant_parse()]);
    let reason = permanent(provider_for(&telegram(&r), &client()).send(&down()).await);
    assert!(
        reason.starts_with(
            "Telegram HTTP 400 (the receiver said: \"Bad Request: can't parse entities"
        ),
        "{reason}"
    );
    assert!(!reason.contains(TG_TOKEN), "{reason}");
    assert_eq!(r.requests().len(), 2);
}

#[tokio::test]
async fn telegram_429_waits_parameters_retry_after_and_4xx_are_permanent_with_the_description() {
    let r = Receiver::start();
    r.script(vec![
        json_reply(
            429,
            json!({
                "ok": false,
                "error_code": 429,
                "description": "Too Many Requests: retry after 17",
                "parameters": { "retry_after": 17 }
            }),
        ),
        json_reply(
            400,
            json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}),
        ),
        json_reply(
            401,
            json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
        ),
    ]);
    let p = provider_for(&telegram(&r), &client());
    let m = down();
    let e = p.send(&m).await.unwrap_err();
    assert_eq!(
        e,
        SendError::Retry {
            reason: "Telegram HTTP 429 (rate limited) (the receiver said: \"Too Many Requests: retry after 17\")".into(),
            after: Some(Duration::from_secs(17)),
        }
    );
    no_secret(&e, &[TG_TOKEN, "AAHtelegramBotSecret"]);
    let e = p.send(&m).await.unwrap_err();
    assert_eq!(
        e,
        SendError::Permanent(
            "Telegram HTTP 400 (the receiver said: \"Bad Request: chat not found\")".into()
        )
    );
    no_secret(&e, &[TG_TOKEN, "AAHtelegramBotSecret"]);
    let e = p.send(&m).await.unwrap_err();
    assert_eq!(
        e,
        SendError::Permanent("Telegram HTTP 401 (the receiver said: \"Unauthorized\")".into())
    );
    // Neither refusal was a parse error: nothing was sent again.
    assert_eq!(r.requests().len(), 3);
}

#[tokio::test]
async fn telegram_cuts_a_huge_page_to_4096_characters_in_html_and_in_plain_text() {
    let r = Receiver::start();
    r.script(vec![tg_cant_parse(), tg_ok()]);
    let m = huge();
    provider_for(&telegram(&r), &client())
        .send(&m)
        .await
        .unwrap();
    let reqs = r.requests();
    assert_eq!(reqs.len(), 2);
    let html = reqs[0].json()["text"].as_str().unwrap().to_string();
    let full_html = format!("<b>{}</b>\n{}", m.title(Markup::Html), m.body(Markup::Html));
    // Telegram's limit is 4096 characters after entity parsing: the HTML
    // source is at least as long as what it parses to.
    assert_cut(&html, &full_html, 4096, None);
    assert_no_open_markup(&html);
    let plain = reqs[1].json()["text"].as_str().unwrap().to_string();
    assert_eq!(plain.chars().count(), 4096);
    assert_cut(
        &plain,
        &format!("{}\n{}", m.subject(), m.text()),
        4096,
        None,
    );
}

// -------------------------------------------------------------- PagerDuty

const PD_KEY: &str = "R0ut1ngKeyS3cretR0ut1ngKeyS3cret";

fn pagerduty(r: &Receiver) -> AlertKind {
    AlertKind::Pagerduty {
        routing_key: PD_KEY.into(),
        severity: "critical".into(),
        api_url: Some(r.url("")),
    }
}

fn pd_accepted(key: &str) -> common::receiver::Reply {
    json_reply(
        202,
        json!({"status": "success", "message": "Event processed", "dedup_key": key}),
    )
}

#[tokio::test]
async fn pagerduty_down_triggers_and_its_recovered_resolves_the_same_incident() {
    let (d, u) = (down(), recovered());
    assert_eq!(d.incident_key, "qu-c1-3");
    assert_eq!(
        u.incident_key, "qu-c1-3",
        "the RECOVERED of the same outage"
    );
    assert_eq!((d.event, u.event), (Event::Down, Event::Recovered));

    let r = Receiver::start();
    r.script(vec![pd_accepted("qu-c1-3"), pd_accepted("qu-c1-3")]);
    let p = provider_for(&pagerduty(&r), &client());
    p.send(&d).await.unwrap();
    p.send(&u).await.unwrap();
    let reqs = r.requests();
    assert_eq!(reqs.len(), 2);
    for c in &reqs {
        assert_json_request(c, "POST", "/v2/enqueue");
    }
    assert_eq!(
        reqs[0].json(),
        json!({
            "routing_key": PD_KEY,
            "event_action": "trigger",
            "dedup_key": "qu-c1-3",
            "payload": {
                "summary": DOWN_SUBJECT,
                "source": TARGET,
                "severity": "critical",
                "timestamp": "2026-12-03T06:00:00Z",
                "component": NAME,
                "class": "http",
                "group": "prod",
                "custom_details": {
                    "text": DOWN_TEXT,
                    "votes": "2/3 down: HTTP 503",
                    "evidence": [
                        {"node": "00000000000000a7", "ok": false, "reason": "HTTP 503", "latency_ms": 12},
                        {"node": "00000000000000b2", "ok": false, "reason": "HTTP 503", "latency_ms": 20},
                        {"node": "00000000000000c3", "ok": true, "reason": "", "latency_ms": 30},
                    ],
                    "master": "00000000000000a7",
                    "delivery_id": "c1-3-a1",
                },
            },
            "client": "qu",
        })
    );
    assert_eq!(
        reqs[1].json(),
        json!({
            "routing_key": PD_KEY,
            "event_action": "resolve",
            "dedup_key": "qu-c1-3",
        })
    );
}

#[tokio::test]
async fn pagerduty_test_page_triggers_then_resolves_one_test_incident() {
    let r = Receiver::start();
    let m = Message::test("pager", Some(NodeId(0xa7)));
    provider_for(&pagerduty(&r), &client())
        .send(&m)
        .await
        .unwrap();
    let reqs = r.requests();
    assert_eq!(reqs.len(), 2);
    let (a, b) = (reqs[0].json(), reqs[1].json());
    assert_eq!(a["event_action"], "trigger");
    assert_eq!(a["dedup_key"], m.incident_key.as_str());
    assert_eq!(a["payload"]["summary"], "[qu] TEST: test of alert pager");
    assert_eq!(
        b,
        json!({"routing_key": PD_KEY, "event_action": "resolve", "dedup_key": m.incident_key})
    );

    // A trigger refused: nothing to resolve.
    let r = Receiver::start();
    r.script(vec![json_reply(
        400,
        json!({"status": "invalid event", "message": "Event object is invalid", "errors": ["'payload.summary' is missing or blank"]}),
    )]);
    let reason = permanent(provider_for(&pagerduty(&r), &client()).send(&m).await);
    assert_eq!(
        reason,
        "PagerDuty HTTP 400 (the receiver said: \"Event object is invalid: 'payload.summary' is missing or blank\")"
    );
    assert_eq!(r.requests().len(), 1);
}

#[tokio::test]
async fn pagerduty_400_is_permanent_with_message_and_errors_and_429_is_retried() {
    let r = Receiver::start();
    r.script(vec![
        json_reply(
            400,
            json!({
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": ["Length of 'routing_key' is incorrect (should be 32 characters)"]
            }),
        ),
        (429, vec![], String::new()),
        json_reply(
            503,
            json!({"status": "unavailable", "message": "Service Unavailable"}),
        ),
    ]);
    let p = provider_for(&pagerduty(&r), &client());
    let m = down();
    let e = p.send(&m).await.unwrap_err();
    assert_eq!(
        e,
        SendError::Permanent(
            "PagerDuty HTTP 400 (the receiver said: \"Event object is invalid: Length of 'routing_key' is incorrect (should be 32 characters)\")".into()
        )
    );
    no_secret(&e, &[PD_KEY]);
    // PagerDuty documents no wait on its 429: retried on qu's schedule.
    assert_eq!(
        p.send(&m).await,
        Err(SendError::Retry {
            reason: "PagerDuty HTTP 429 (rate limited)".into(),
            after: None
        })
    );
    assert_eq!(
        p.send(&m).await,
        Err(SendError::Retry {
            reason: "PagerDuty HTTP 503 (the receiver said: \"Service Unavailable\")".into(),
            after: None
        })
    );
}

#[tokio::test]
async fn pagerduty_summary_is_cut_to_1024_characters() {
    let r = Receiver::start();
    let m = huge();
    provider_for(&pagerduty(&r), &client())
        .send(&m)
        .await
        .unwrap();
    let j = only(&r).json();
    let summary = j["payload"]["summary"].as_str().unwrap();
    assert_eq!(summary.chars().count(), 1024);
    assert_cut(summary, &m.subject(), 1024, None);
    let details = j["payload"]["custom_details"]["text"].as_str().unwrap();
    assert_cut(details, &m.text(), 16_000, None);
    assert_eq!(j["dedup_key"], "qu-c1-3");
    // The whole event stays far inside PagerDuty's 512 KB.
    assert!(only(&r).body.len() < 512_000);
}

// --------------------------------------------------------------- Opsgenie

const OG_KEY: &str = "eb243592-faa2-4ba2-a551-1afdf565c889";

fn opsgenie_kind(r: &Receiver, priority: Option<&str>) -> AlertKind {
    AlertKind::Opsgenie {
        api_key: OG_KEY.into(),
        region: "eu".into(),
        priority: priority.map(str::to_string),
        api_url: Some(r.url("")),
    }
}

fn og_accepted() -> common::receiver::Reply {
    json_reply(
        202,
        json!({"result": "Request will be processed", "took": 0.302, "requestId": "43a29c5c-3dbf-4fa4-9c26-f4f71023e120"}),
    )
}

#[tokio::test]
async fn opsgenie_down_creates_an_alert_aliased_by_the_incident_key() {
    let r = Receiver::start();
    r.script(vec![og_accepted()]);
    provider_for(&opsgenie_kind(&r, Some("P2")), &client())
        .send(&down())
        .await
        .unwrap();
    let c = only(&r);
    assert_json_request(&c, "POST", "/v2/alerts");
    assert_eq!(
        c.header("authorization"),
        Some(format!("GenieKey {OG_KEY}").as_str())
    );
    assert_eq!(
        c.json(),
        json!({
            "message": DOWN_SUBJECT,
            "alias": "qu-c1-3",
            "description": DOWN_TEXT,
            "source": "qu",
            "entity": NAME,
            "tags": ["qu", "http"],
            "details": {
                "target": TARGET,
                "votes": "2/3 down: HTTP 503",
                "since": "2026-12-03T06:00:00Z",
                "delivery_id": "c1-3-a1",
            },
            "priority": "P2",
        })
    );
}

#[tokio::test]
async fn opsgenie_recovered_closes_the_alert_by_its_alias() {
    let r = Receiver::start();
    r.script(vec![og_accepted()]);
    provider_for(&opsgenie_kind(&r, None), &client())
        .send(&recovered())
        .await
        .unwrap();
    let c = only(&r);
    assert_json_request(&c, "POST", "/v2/alerts/qu-c1-3/close?identifierType=alias");
    assert_eq!(
        c.header("authorization"),
        Some(format!("GenieKey {OG_KEY}").as_str())
    );
    assert_eq!(c.json(), json!({"source": "qu", "note": RECOVERED_SUBJECT}));

    // A test page: created, then closed under the same alias.
    let r = Receiver::start();
    let m = Message::test("pager", None);
    provider_for(&opsgenie_kind(&r, None), &client())
        .send(&m)
        .await
        .unwrap();
    let reqs = r.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].path, "/v2/alerts");
    assert_eq!(reqs[0].json()["alias"], m.incident_key.as_str());
    assert!(reqs[0].json().get("priority").is_none());
    assert_eq!(
        reqs[1].path,
        format!("/v2/alerts/{}/close?identifierType=alias", m.incident_key)
    );
}

#[test]
fn opsgenie_regions_have_their_own_endpoints() {
    assert_eq!(opsgenie::api_for("eu"), "https://api.eu.opsgenie.com");
    assert_eq!(opsgenie::api_for("us"), "https://api.opsgenie.com");
}

#[tokio::test]
async fn opsgenie_refusals_are_permanent_with_opsgenies_message() {
    let r = Receiver::start();
    r.script(vec![
        json_reply(
            422,
            json!({"message": "Alert with alias [qu-c1-3] not found", "took": 0.004, "requestId": "e1d5a2f4"}),
        ),
        json_reply(
            401,
            json!({"message": "Could not authenticate", "took": 0.0, "requestId": "bc8e3b6a"}),
        ),
        json_reply(
            429,
            json!({"message": "You are making too many requests! To avoid errors, we recommend you limit requests.", "took": 0.0}),
        ),
    ]);
    let p = provider_for(&opsgenie_kind(&r, None), &client());
    let e = p.send(&recovered()).await.unwrap_err();
    assert_eq!(
        e,
        SendError::Permanent(
            "Opsgenie HTTP 422 (the receiver said: \"Alert with alias [qu-c1-3] not found\")"
                .into()
        )
    );
    no_secret(&e, &[OG_KEY]);
    let e = p.send(&down()).await.unwrap_err();
    assert_eq!(
        e,
        SendError::Permanent(
            "Opsgenie HTTP 401 (the receiver said: \"Could not authenticate\")".into()
        )
    );
    no_secret(&e, &[OG_KEY]);
    match p.send(&down()).await {
        Err(SendError::Retry { reason, after }) => {
            assert_eq!(after, None);
            assert!(
                reason.starts_with("Opsgenie HTTP 429 (rate limited) (the receiver said: \"You are making too many requests!"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn opsgenie_message_is_cut_to_130_characters_and_description_to_15000() {
    let r = Receiver::start();
    let m = huge();
    provider_for(&opsgenie_kind(&r, None), &client())
        .send(&m)
        .await
        .unwrap();
    let j = only(&r).json();
    let message = j["message"].as_str().unwrap();
    assert_eq!(message.chars().count(), 130);
    assert_cut(message, &m.subject(), 130, None);
    assert_cut(j["description"].as_str().unwrap(), &m.text(), 15_000, None);
    assert_cut(j["entity"].as_str().unwrap(), &m.check_name, 512, None);
    assert_eq!(j["alias"], "qu-c1-3");
}

// ------------------------------------------------------------------- ntfy

const NTFY_TOKEN: &str = "tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2";

fn ntfy(r: &Receiver, path: &str, token: Option<&str>) -> AlertKind {
    AlertKind::Ntfy {
        url: r.url(path),
        token: token.map(str::to_string),
        priority: Some(4),
        tags: vec!["warning".into(), "rotating_light".into()],
    }
}

fn ntfy_ok() -> common::receiver::Reply {
    json_reply(
        200,
        json!({"id": "sPs71M8A2T", "time": 1796277600, "event": "message", "topic": "ops-alerts"}),
    )
}

#[tokio::test]
async fn ntfy_publishes_json_to_the_servers_root_with_a_bearer_token() {
    let r = Receiver::start();
    r.script(vec![ntfy_ok()]);
    provider_for(&ntfy(&r, "/ops-alerts", Some(NTFY_TOKEN)), &client())
        .send(&down())
        .await
        .unwrap();
    let c = only(&r);
    assert_json_request(&c, "POST", "/");
    assert_eq!(
        c.header("authorization"),
        Some(format!("Bearer {NTFY_TOKEN}").as_str())
    );
    assert_eq!(
        c.json(),
        json!({
            "topic": "ops-alerts",
            "title": DOWN_SUBJECT,
            "message": DOWN_TEXT.trim_end(),
            "priority": 4,
            "tags": ["warning", "rotating_light"],
        })
    );

    // A server under a path publishes to that path's root; no token, no
    // Authorization.
    let r = Receiver::start();
    provider_for(&ntfy(&r, "/ntfy/ops", None), &client())
        .send(&down())
        .await
        .unwrap();
    let c = only(&r);
    assert_json_request(&c, "POST", "/ntfy/");
    assert_eq!(c.header("authorization"), None);
    assert_eq!(c.json()["topic"], "ops");
}

#[tokio::test]
async fn ntfy_message_is_cut_to_4096_bytes_without_splitting_a_character() {
    let r = Receiver::start();
    let m = huge();
    provider_for(&ntfy(&r, "/ops-alerts", None), &client())
        .send(&m)
        .await
        .unwrap();
    let j = only(&r).json();
    let message = j["message"].as_str().unwrap();
    assert!(message.len() > 4096 - 8, "{}", message.len());
    assert_cut(message, &m.text(), 4096, Some(4096));
    assert_cut(j["title"].as_str().unwrap(), &m.subject(), 250, None);
}

#[tokio::test]
async fn ntfy_refusals_are_permanent_with_ntfys_error_and_its_429_is_retried() {
    let r = Receiver::start();
    r.script(vec![
        json_reply(
            403,
            json!({"code": 40301, "http": 403, "error": "forbidden", "link": "https://ntfy.sh/docs/publish/#authentication"}),
        ),
        json_reply(
            429,
            json!({"code": 42901, "http": 429, "error": "limit reached: too many requests"}),
        ),
    ]);
    let p = provider_for(&ntfy(&r, "/ops-alerts", Some(NTFY_TOKEN)), &client());
    let e = p.send(&down()).await.unwrap_err();
    assert_eq!(
        e,
        SendError::Permanent("ntfy HTTP 403 (the receiver said: \"forbidden\")".into())
    );
    no_secret(&e, &[NTFY_TOKEN, "ops-alerts"]);
    assert_eq!(
        p.send(&down()).await,
        Err(SendError::Retry {
            reason: "ntfy HTTP 429 (rate limited) (the receiver said: \"limit reached: too many requests\")".into(),
            after: None,
        })
    );
}

// ------------------------------------------------------------------ Teams

const TEAMS_SIG: &str = "Vq3b0H4xTeamsSignatureSecret";

fn teams_path() -> String {
    format!(
        "/workflows/4b7c2e/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={TEAMS_SIG}"
    )
}

fn teams(r: &Receiver) -> AlertKind {
    AlertKind::Teams {
        webhook: r.url(&teams_path()),
    }
}

#[tokio::test]
async fn teams_posts_a_message_with_one_adaptive_card() {
    let r = Receiver::start();
    r.script(vec![(202, vec![], String::new())]);
    provider_for(&teams(&r), &client())
        .send(&down())
        .await
        .unwrap();
    let c = only(&r);
    assert_json_request(&c, "POST", &teams_path());
    assert_eq!(
        c.json(),
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {"type": "TextBlock", "text": DOWN_SUBJECT, "weight": "Bolder", "size": "Medium", "wrap": true},
                        {"type": "TextBlock", "text": DOWN_TEXT.trim_end(), "wrap": true},
                        {"type": "FactSet", "facts": [
                            {"title": "Check", "value": format!("http {TARGET}")},
                            {"title": "Votes", "value": "2/3 down: HTTP 503"},
                            {"title": "Since", "value": "2026-12-03T06:00:00Z"},
                            {"title": "Master", "value": "00000000000000a7"},
                        ]},
                    ],
                },
            }],
        })
    );
}

#[tokio::test]
async fn teams_429_waits_retry_after_and_4xx_are_permanent_with_error_message() {
    let r = Receiver::start();
    let mut throttled = json_reply(
        429,
        json!({"error": {"code": "WorkflowRequestsThrottled", "message": "Rate limit is exceeded. Try again in 30 seconds."}}),
    );
    throttled.1.push(("Retry-After".into(), "30".into()));
    r.script(vec![
        throttled,
        json_reply(
            401,
            json!({"error": {"code": "DirectApiAuthorizationRequired", "message": "The request must be authenticated only by Shared Access scheme."}}),
        ),
        json_reply(
            404,
            json!({"error": {"code": "WorkflowNotFound", "message": "The workflow '4b7c2e' could not be found."}}),
        ),
    ]);
    let p = provider_for(&teams(&r), &client());
    let m = down();
    let e = p.send(&m).await.unwrap_err();
    assert_eq!(
        e,
        SendError::Retry {
            reason: "Teams HTTP 429 (rate limited) (the receiver said: \"Rate limit is exceeded. Try again in 30 seconds.\")".into(),
            after: Some(Duration::from_secs(30)),
        }
    );
    no_secret(&e, &[TEAMS_SIG]);
    let e = p.send(&m).await.unwrap_err();
    assert_eq!(
        e,
        SendError::Permanent(
            "Teams HTTP 401 (the receiver said: \"The request must be authenticated only by Shared Access scheme.\")".into()
        )
    );
    no_secret(&e, &[TEAMS_SIG]);
    assert_eq!(
        permanent(p.send(&m).await),
        "Teams HTTP 404 (the receiver said: \"The workflow '4b7c2e' could not be found.\")"
    );
}

#[tokio::test]
async fn teams_a_huge_card_stays_under_the_28_kb_message_limit() {
    let r = Receiver::start();
    let mut m = huge();
    // Quotes and line breaks double in JSON: the limit is on the message
    // as sent.
    m.body_template =
        Some("{% for i in range(12000) %}\"{{ check.name[:2] }}\"\n{% endfor %}".into());
    provider_for(&teams(&r), &client()).send(&m).await.unwrap();
    let c = only(&r);
    assert!(c.body.len() <= 28_000, "{} bytes", c.body.len());
    let j = c.json();
    let blocks = &j["attachments"][0]["content"]["body"];
    assert_cut(
        blocks[0]["text"].as_str().unwrap(),
        &m.title(Markup::Plain),
        300,
        None,
    );
    let body = blocks[1]["text"].as_str().unwrap();
    assert_cut(body, &m.body(Markup::Plain), usize::MAX, Some(20_000));
    let as_sent = serde_json::to_string(body).unwrap().len() - 2;
    assert!(
        (19_990..=20_000).contains(&as_sent),
        "{as_sent} bytes as JSON"
    );
}

// ----------------------------------------------------------------- Matrix

const MX_TOKEN: &str = "syt_cXU_MatrixAccessTokenSecret_1a2b3c";

fn matrix(r: &Receiver, room: &str) -> AlertKind {
    AlertKind::Matrix {
        homeserver: r.url("/"),
        room: room.into(),
        token: MX_TOKEN.into(),
    }
}

fn mx_sent() -> common::receiver::Reply {
    json_reply(200, json!({"event_id": "$YUwRidLecu:example.org"}))
}

#[tokio::test]
async fn matrix_puts_an_m_room_message_with_the_delivery_id_as_transaction_id() {
    let r = Receiver::start();
    r.script(vec![mx_sent(), mx_sent()]);
    let p = provider_for(&matrix(&r, "!abcDEF:example.org"), &client());
    let m = down();
    p.send(&m).await.unwrap();
    // A resend of the same page (a retry, a new leader): the same
    // transaction, which the homeserver deduplicates.
    p.send(&m).await.unwrap();
    let reqs = r.requests();
    assert_eq!(reqs.len(), 2);
    let path = "/_matrix/client/v3/rooms/%21abcDEF%3Aexample.org/send/m.room.message/c1-3-a1";
    for c in &reqs {
        assert_json_request(c, "PUT", path);
        assert_eq!(
            c.header("authorization"),
            Some(format!("Bearer {MX_TOKEN}").as_str())
        );
    }
    assert_eq!(reqs[0].body, reqs[1].body);
    assert_eq!(
        reqs[0].json(),
        json!({
            "msgtype": "m.text",
            "body": format!("{DOWN_SUBJECT}\n{}", DOWN_TEXT.trim_end()),
            "format": "org.matrix.custom.html",
            "formatted_body": format!(
                "<b>{}</b><br>{}",
                esc(DOWN_SUBJECT),
                esc(DOWN_TEXT.trim_end()).replace('\n', "<br>")
            ),
        })
    );
}

#[tokio::test]
async fn matrix_resolves_a_room_alias_first_and_sends_to_the_room_id() {
    let r = Receiver::start();
    r.script(vec![
        json_reply(
            200,
            json!({"room_id": "!resolved42:example.org", "servers": ["example.org"]}),
        ),
        mx_sent(),
    ]);
    provider_for(&matrix(&r, "#ops:example.org"), &client())
        .send(&down())
        .await
        .unwrap();
    let reqs = r.requests();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        (
            "GET",
            "/_matrix/client/v3/directory/room/%23ops%3Aexample.org"
        )
    );
    assert_json_request(
        &reqs[1],
        "PUT",
        "/_matrix/client/v3/rooms/%21resolved42%3Aexample.org/send/m.room.message/c1-3-a1",
    );
    assert_eq!(
        reqs[1].header("authorization"),
        Some(format!("Bearer {MX_TOKEN}").as_str())
    );

    // An alias the homeserver does not know: permanent, nothing sent.
    let r = Receiver::start();
    r.script(vec![json_reply(
        404,
        json!({"errcode": "M_NOT_FOUND", "error": "Room alias #ops:example.org not found."}),
    )]);
    let e = provider_for(&matrix(&r, "#ops:example.org"), &client())
        .send(&down())
        .await
        .unwrap_err();
    assert_eq!(
        e,
        SendError::Permanent(
            "Matrix HTTP (resolving the room alias) 404 (the receiver said: \"M_NOT_FOUND: Room alias #ops:example.org not found.\")".into()
        )
    );
    no_secret(&e, &[MX_TOKEN]);
    assert_eq!(r.requests().len(), 1);

    // An answer without a room id: permanent, nothing sent.
    let r = Receiver::start();
    r.script(vec![json_reply(200, json!({"servers": ["example.org"]}))]);
    assert_eq!(
        permanent(
            provider_for(&matrix(&r, "#ops:example.org"), &client())
                .send(&down())
                .await
        ),
        "the homeserver did not resolve #ops:example.org to a room id"
    );
    assert_eq!(r.requests().len(), 1);
}

#[tokio::test]
async fn matrix_limit_exceeded_waits_retry_after_ms_and_refusals_name_errcode_and_error() {
    let r = Receiver::start();
    r.script(vec![
        json_reply(
            429,
            json!({"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests", "retry_after_ms": 2500}),
        ),
        json_reply(
            403,
            json!({"errcode": "M_FORBIDDEN", "error": "User @qu:example.org not in room !abcDEF:example.org"}),
        ),
        json_reply(
            401,
            json!({"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token passed.", "soft_logout": false}),
        ),
    ]);
    let p = provider_for(&matrix(&r, "!abcDEF:example.org"), &client());
    let m = down();
    let e = p.send(&m).await.unwrap_err();
    assert_eq!(
        e,
        SendError::Retry {
            reason: "Matrix HTTP 429 (rate limited) (the receiver said: \"M_LIMIT_EXCEEDED: Too many requests\")".into(),
            after: Some(Duration::from_millis(2500)),
        }
    );
    assert_eq!(
        permanent(p.send(&m).await),
        "Matrix HTTP 403 (the receiver said: \"M_FORBIDDEN: User @qu:example.org not in room !abcDEF:example.org\")"
    );
    let e = p.send(&m).await.unwrap_err();
    assert_eq!(
        e,
        SendError::Permanent(
            "Matrix HTTP 401 (the receiver said: \"M_UNKNOWN_TOKEN: Invalid access token passed.\")".into()
        )
    );
    no_secret(&e, &[MX_TOKEN]);
}

#[tokio::test]
async fn matrix_a_huge_page_stays_inside_the_64_kib_event_limit() {
    let r = Receiver::start();
    let m = huge();
    provider_for(&matrix(&r, "!abcDEF:example.org"), &client())
        .send(&m)
        .await
        .unwrap();
    let c = only(&r);
    // The homeserver adds the event's envelope (sender, room, hashes,
    // signatures, prev/auth events) around the content: leave it room.
    assert!(
        c.body.len() <= 60 * 1024,
        "content of {} bytes; an event is at most 65536",
        c.body.len()
    );
    let j = c.json();
    let plain = j["body"].as_str().unwrap();
    let full_plain = format!("{}\n{}", m.subject(), m.text());
    assert_cut(plain, full_plain.trim_end(), usize::MAX, None);
    assert!(plain.len() > 20_000, "{} bytes", plain.len());
    let html = j["formatted_body"].as_str().unwrap();
    let full_html = format!(
        "<b>{}</b><br>{}",
        m.title(Markup::Html),
        m.body(Markup::Html).trim_end().replace('\n', "<br>")
    );
    assert_cut(html, &full_html, usize::MAX, None);
    assert_no_open_markup(html);
    assert!(html.len() > 20_000, "{} bytes", html.len());
}

// --------------------------------------------------------------- Pushover

const PO_TOKEN: &str = "azGDORePK8gMaC0QOYAMyEEuzJnyUi";
const PO_USER: &str = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG";

fn pushover(r: &Receiver) -> AlertKind {
    AlertKind::Pushover {
        token: PO_TOKEN.into(),
        user: PO_USER.into(),
        priority: Some(1),
        device: Some("droid4".into()),
        api_url: Some(r.url("")),
    }
}

#[tokio::test]
async fn pushover_posts_token_user_title_message_priority_and_device() {
    let r = Receiver::start();
    r.script(vec![json_reply(
        200,
        json!({"status": 1, "request": "647d2300-702c-4b38-8b2f-d56326ae460b"}),
    )]);
    provider_for(&pushover(&r), &client())
        .send(&down())
        .await
        .unwrap();
    let c = only(&r);
    assert_json_request(&c, "POST", "/1/messages.json");
    assert_eq!(
        c.json(),
        json!({
            "token": PO_TOKEN,
            "user": PO_USER,
            "title": DOWN_SUBJECT,
            "message": DOWN_TEXT.trim_end(),
            "priority": 1,
            "device": "droid4",
        })
    );
}

#[tokio::test]
async fn pushover_title_is_cut_to_250_and_message_to_1024_characters() {
    let r = Receiver::start();
    let m = huge();
    provider_for(&pushover(&r), &client())
        .send(&m)
        .await
        .unwrap();
    let j = only(&r).json();
    let title = j["title"].as_str().unwrap();
    assert_eq!(title.chars().count(), 250);
    assert_cut(title, &m.subject(), 250, None);
    let message = j["message"].as_str().unwrap();
    assert_eq!(message.chars().count(), 1024);
    assert_cut(message, &m.text(), 1024, None);
}

#[tokio::test]
async fn pushover_refusals_are_permanent_with_pushovers_errors() {
    let r = Receiver::start();
    r.script(vec![
        json_reply(
            400,
            json!({
                "user": "invalid",
                "errors": ["user identifier is not a valid user, group, or subscribed user key"],
                "status": 0,
                "request": "5042853c-402d-4a18-abcb-168734a801de"
            }),
        ),
        json_reply(
            400,
            json!({
                "token": "invalid",
                "errors": ["application token is invalid", "message cannot be blank"],
                "status": 0,
                "request": "e4c4e3c5-22d1-4cbd-9c8f-4b7cd4fcd1ea"
            }),
        ),
    ]);
    let p = provider_for(&pushover(&r), &client());
    let e = p.send(&down()).await.unwrap_err();
    assert_eq!(
        e,
        SendError::Permanent(
            "Pushover HTTP 400 (the receiver said: \"user identifier is not a valid user, group, or subscribed user key\")".into()
        )
    );
    no_secret(&e, &[PO_TOKEN, PO_USER]);
    assert_eq!(
        permanent(p.send(&down()).await),
        "Pushover HTTP 400 (the receiver said: \"application token is invalid; message cannot be blank\")"
    );
}

// ----------------------------------------------------------------- Gotify

const GOTIFY_TOKEN: &str = "AGotifyAppTokenSecret";

fn gotify(r: &Receiver) -> AlertKind {
    AlertKind::Gotify {
        url: r.url("/gotify/"),
        token: GOTIFY_TOKEN.into(),
        priority: Some(8),
    }
}

#[tokio::test]
async fn gotify_posts_message_with_the_token_in_x_gotify_key_only() {
    let r = Receiver::start();
    r.script(vec![json_reply(
        200,
        json!({"id": 25, "appid": 5, "message": "…", "title": "…", "priority": 8, "date": "2026-12-03T06:00:01Z"}),
    )]);
    provider_for(&gotify(&r), &client())
        .send(&down())
        .await
        .unwrap();
    let c = only(&r);
    assert_json_request(&c, "POST", "/gotify/message");
    assert_eq!(c.header("x-gotify-key"), Some(GOTIFY_TOKEN));
    assert!(!c.path.contains(GOTIFY_TOKEN));
    assert_eq!(
        c.json(),
        json!({
            "title": DOWN_SUBJECT,
            "message": DOWN_TEXT.trim_end(),
            "priority": 8,
            "extras": {"client::display": {"contentType": "text/plain"}},
        })
    );
}

#[tokio::test]
async fn gotify_templates_arrive_unescaped_and_cut_to_its_limits() {
    let r = Receiver::start();
    let mut m = down();
    m.title_template = Some("{{ state }} {{ check.name }}".into());
    m.body_template =
        Some("{{ check.target }} {% for i in range(3000) %}é🚨<&\"{% endfor %}".into());
    provider_for(&gotify(&r), &client()).send(&m).await.unwrap();
    let j = only(&r).json();
    assert_eq!(j["title"], "DOWN shop <eu> & co");
    let message = j["message"].as_str().unwrap();
    assert!(message.starts_with("https://shop.example.com/?a=1&b=2 é🚨<&\""));
    assert_eq!(message.chars().count(), 10_000);
    assert_cut(message, &m.body(Markup::Plain), 10_000, None);
}

#[tokio::test]
async fn gotify_refusals_are_permanent_with_error_description() {
    let r = Receiver::start();
    r.script(vec![
        json_reply(
            401,
            json!({"error": "Unauthorized", "errorCode": 401, "errorDescription": "you need to provide a valid access token or user credentials to access this api"}),
        ),
        json_reply(
            400,
            json!({"error": "Bad Request", "errorCode": 400, "errorDescription": "Field 'message' is required"}),
        ),
    ]);
    let p = provider_for(&gotify(&r), &client());
    let e = p.send(&down()).await.unwrap_err();
    assert_eq!(
        e,
        SendError::Permanent(
            "Gotify HTTP 401 (the receiver said: \"you need to provide a valid access token or user credentials to access this api\")".into()
        )
    );
    no_secret(&e, &[GOTIFY_TOKEN]);
    assert_eq!(
        permanent(p.send(&down()).await),
        "Gotify HTTP 400 (the receiver said: \"Field 'message' is required\")"
    );
}

// ------------------------------------------------------- every provider

/// Every provider pointed at a port nobody listens on: a retryable error
/// that names the host and the cause, and none of the secrets.
#[tokio::test]
async fn a_refused_connection_is_retryable_and_never_shows_a_secret() {
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let kinds: Vec<(AlertKind, Vec<&str>)> = vec![
        (
            AlertKind::Slack {
                webhook: format!("{base}/services/T0001/B0002/{SLACK_SECRET}"),
            },
            vec![SLACK_SECRET, "T0001/B0002"],
        ),
        (
            AlertKind::Telegram {
                token: TG_TOKEN.into(),
                chat_id: TG_CHAT.into(),
                api_url: Some(base.clone()),
            },
            vec![TG_TOKEN, "AAHtelegramBotSecret"],
        ),
        (
            AlertKind::Pagerduty {
                routing_key: PD_KEY.into(),
                severity: "error".into(),
                api_url: Some(base.clone()),
            },
            vec![PD_KEY],
        ),
        (
            AlertKind::Opsgenie {
                api_key: OG_KEY.into(),
                region: "us".into(),
                priority: None,
                api_url: Some(base.clone()),
            },
            vec![OG_KEY],
        ),
        (
            AlertKind::Ntfy {
                url: format!("{base}/ops-alerts-s3cret-topic"),
                token: Some(NTFY_TOKEN.into()),
                priority: None,
                tags: vec![],
            },
            vec![NTFY_TOKEN, "ops-alerts-s3cret-topic"],
        ),
        (
            AlertKind::Teams {
                webhook: format!("{base}{}", teams_path()),
            },
            vec![TEAMS_SIG, "4b7c2e"],
        ),
        (
            AlertKind::Matrix {
                homeserver: base.clone(),
                room: "#ops:example.org".into(),
                token: MX_TOKEN.into(),
            },
            vec![MX_TOKEN],
        ),
        (
            AlertKind::Pushover {
                token: PO_TOKEN.into(),
                user: PO_USER.into(),
                priority: None,
                device: None,
                api_url: Some(base.clone()),
            },
            vec![PO_TOKEN, PO_USER],
        ),
        (
            AlertKind::Gotify {
                url: base.clone(),
                token: GOTIFY_TOKEN.into(),
                priority: None,
            },
            vec![GOTIFY_TOKEN],
        ),
    ];
    assert_eq!(kinds.len(), 9);
    for (kind, secrets) in kinds {
        let name = kind.type_name();
        let p = provider_for(&kind, &client());
        for m in [down(), recovered(), Message::test("pager", None)] {
            let e = p.send(&m).await.unwrap_err();
            no_secret(&e, &secrets);
            match e {
                SendError::Retry { reason, after } => {
                    assert_eq!(after, None, "{name}");
                    assert!(
                        reason.starts_with(&format!("cannot connect to 127.0.0.1:{port}: ")),
                        "{name}: {reason}"
                    );
                    assert!(
                        reason.to_lowercase().contains("refused"),
                        "{name}: {reason}"
                    );
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
