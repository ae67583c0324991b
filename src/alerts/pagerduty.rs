//! PagerDuty Events API v2 (`POST /v2/enqueue`): `trigger` on DOWN (and
//! its repeats), `resolve` on RECOVERED, both with the same `dedup_key`
//! (the check and the flip of its DOWN: `Message::incident_key`), so the
//! incident a DOWN opened closes itself and a resend after a leader crash
//! lands on the same incident. 429 and 5xx are retried; other 4xx (an
//! invalid event, a bad routing key) are permanent with PagerDuty's
//! `message` and `errors`. `qu alert test` triggers and then resolves a
//! test incident.

use super::message::{Event, Message};
use super::template::{truncate, Markup};
use super::{exchange, no_wait, Provider, SendError, SendFuture};

/// The Events API's address.
pub const API: &str = "https://events.pagerduty.com";
/// Characters in `payload.summary`.
pub const MAX_SUMMARY: usize = 1024;
/// Characters of the body kept in `custom_details`.
pub const MAX_DETAILS: usize = 16_000;

pub struct Pagerduty {
    pub client: reqwest::Client,
    pub api: String,
    pub routing_key: String,
    pub severity: String,
}

/// The event for `action` (`trigger` or `resolve`).
pub fn event(msg: &Message, routing_key: &str, severity: &str, action: &str) -> serde_json::Value {
    if action == "resolve" {
        return serde_json::json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": msg.incident_key,
        });
    }
    let evidence: Vec<serde_json::Value> = msg
        .evidence
        .iter()
        .map(|e| {
            serde_json::json!({
                "node": e.node.to_string(),
                "ok": e.ok,
                "reason": e.reason,
                "latency_ms": e.latency_ms,
            })
        })
        .collect();
    serde_json::json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": msg.incident_key,
        "payload": {
            "summary": truncate(&msg.title(Markup::Plain), MAX_SUMMARY),
            "source": truncate(&msg.target, 255),
            "severity": severity,
            "timestamp": msg.since,
            "component": msg.check_name,
            "class": msg.check_type,
            "group": msg.cluster,
            "custom_details": {
                "text": truncate(&msg.body(Markup::Plain), MAX_DETAILS),
                "votes": msg.votes,
                "evidence": evidence,
                "master": msg.master.map(|m| m.to_string()),
                "delivery_id": msg.delivery_id,
            },
        },
        "client": "qu",
    })
}

fn detail(v: &serde_json::Value) -> Option<String> {
    let message = v["message"].as_str()?;
    let errors: Vec<&str> = v["errors"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e.as_str()).collect())
        .unwrap_or_default();
    Some(if errors.is_empty() {
        message.to_string()
    } else {
        format!("{message}: {}", errors.join("; "))
    })
}

impl Pagerduty {
    async fn enqueue(&self, body: serde_json::Value) -> Result<(), SendError> {
        let url = format!("{}/v2/enqueue", self.api.trim_end_matches('/'));
        let req = self.client.post(url).json(&body);
        exchange(req, "PagerDuty HTTP", detail, no_wait)
            .await
            .map(|_| ())
    }
}

impl Provider for Pagerduty {
    fn send<'a>(&'a self, msg: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            let (key, sev) = (&self.routing_key, &self.severity);
            match msg.event {
                Event::Down => self.enqueue(event(msg, key, sev, "trigger")).await,
                Event::Recovered => self.enqueue(event(msg, key, sev, "resolve")).await,
                Event::Test => {
                    self.enqueue(event(msg, key, sev, "trigger")).await?;
                    self.enqueue(event(msg, key, sev, "resolve")).await
                }
            }
        })
    }
}
