//! Opsgenie Alert API: create (`POST /v2/alerts`) on DOWN with `alias` =
//! the incident key (so a resend is deduplicated onto the open alert),
//! close (`POST /v2/alerts/{alias}/close?identifierType=alias`) on
//! RECOVERED. `Authorization: GenieKey …`; US or EU endpoint. 429 and 5xx
//! are retried; other 4xx are permanent with Opsgenie's `message`.
//! `qu alert test` creates and then closes a test alert.

use super::message::{Event, Message};
use super::template::{truncate, Markup};
use super::{exchange, no_wait, Provider, SendError, SendFuture};

/// Characters in `message`, and in `description`.
pub const MAX_MESSAGE: usize = 130;
pub const MAX_DESCRIPTION: usize = 15_000;

/// The API's address in `region` (`us`, `eu`).
pub fn api_for(region: &str) -> &'static str {
    if region == "eu" {
        "https://api.eu.opsgenie.com"
    } else {
        "https://api.opsgenie.com"
    }
}

pub struct Opsgenie {
    pub client: reqwest::Client,
    pub api: String,
    pub api_key: String,
    pub priority: Option<String>,
}

/// The create request's body.
pub fn create(msg: &Message, priority: Option<&str>) -> serde_json::Value {
    let mut body = serde_json::json!({
        "message": truncate(&msg.title(Markup::Plain), MAX_MESSAGE),
        "alias": msg.incident_key,
        "description": truncate(&msg.body(Markup::Plain), MAX_DESCRIPTION),
        "source": "qu",
        "entity": truncate(&msg.check_name, 512),
        "tags": ["qu", msg.check_type.as_str()],
        "details": {
            "target": msg.target,
            "votes": msg.votes,
            "since": msg.since,
            "delivery_id": msg.delivery_id,
        },
    });
    if let Some(p) = priority {
        body["priority"] = p.into();
    }
    body
}

impl Opsgenie {
    async fn post(&self, path: &str, body: serde_json::Value) -> Result<(), SendError> {
        let url = format!("{}{path}", self.api.trim_end_matches('/'));
        let req = self
            .client
            .post(url)
            .header("Authorization", format!("GenieKey {}", self.api_key))
            .json(&body);
        exchange(
            req,
            "Opsgenie HTTP",
            |v| v["message"].as_str().map(str::to_string),
            no_wait,
        )
        .await
        .map(|_| ())
    }

    async fn close(&self, msg: &Message) -> Result<(), SendError> {
        // Delivery ids are [0-9a-z-]: the alias needs no escaping.
        let path = format!("/v2/alerts/{}/close?identifierType=alias", msg.incident_key);
        let note = truncate(&msg.title(Markup::Plain), 25_000);
        self.post(&path, serde_json::json!({ "source": "qu", "note": note }))
            .await
    }
}

impl Provider for Opsgenie {
    fn send<'a>(&'a self, msg: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            match msg.event {
                Event::Down => {
                    self.post("/v2/alerts", create(msg, self.priority.as_deref()))
                        .await
                }
                Event::Recovered => self.close(msg).await,
                Event::Test => {
                    self.post("/v2/alerts", create(msg, self.priority.as_deref()))
                        .await?;
                    self.close(msg).await
                }
            }
        })
    }
}
