//! Microsoft Teams through a Workflows webhook ("Post to a channel when a
//! webhook request is received"): a `message` with one Adaptive Card
//! attachment (title, body, facts). Teams takes about 28 KB per message,
//! so the body is cut to 20 000 bytes as sent (JSON-escaped: a quote or a
//! line break takes two). 429 (with `Retry-After`) and 5xx are retried;
//! other 4xx are permanent with the workflow's `error.message`.

use super::message::Message;
use super::template::{truncate, truncate_json, Markup};
use super::{exchange, no_wait, Provider, SendFuture};

/// Bytes of body text in a card, as JSON.
pub const MAX_BODY_BYTES: usize = 20_000;

pub struct Teams {
    pub client: reqwest::Client,
    pub url: String,
}

/// The Workflows message with its Adaptive Card.
pub fn payload(msg: &Message) -> serde_json::Value {
    let mut facts = vec![
        serde_json::json!({ "title": "Check", "value": format!("{} {}", msg.check_type, msg.target) }),
        serde_json::json!({ "title": "Votes", "value": msg.votes }),
        serde_json::json!({ "title": "Since", "value": msg.since }),
    ];
    if let Some(m) = msg.master {
        facts.push(serde_json::json!({ "title": "Master", "value": m.to_string() }));
    }
    serde_json::json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {
                        "type": "TextBlock",
                        "text": truncate(&msg.title(Markup::Plain), 300),
                        "weight": "Bolder",
                        "size": "Medium",
                        "wrap": true,
                    },
                    {
                        "type": "TextBlock",
                        "text": truncate_json(msg.body(Markup::Plain).trim_end(), MAX_BODY_BYTES),
                        "wrap": true,
                    },
                    { "type": "FactSet", "facts": facts },
                ],
            },
        }],
    })
}

impl Provider for Teams {
    fn send<'a>(&'a self, msg: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            let req = self.client.post(&self.url).json(&payload(msg));
            exchange(
                req,
                "Teams HTTP",
                |v| v["error"]["message"].as_str().map(str::to_string),
                no_wait,
            )
            .await
            .map(|_| ())
        })
    }
}
