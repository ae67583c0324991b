//! Gotify (self-hosted): `POST /message` with the application token in
//! `X-Gotify-Key` (never in the URL); `title`, `message`, optional
//! `priority`. 429 and 5xx are retried; other 4xx are permanent with
//! Gotify's `errorDescription`.

use super::message::Message;
use super::template::{truncate, Markup};
use super::{exchange, no_wait, Provider, SendFuture};

/// Characters of body sent (Gotify sets no hard limit; phones do).
pub const MAX_MESSAGE: usize = 10_000;

pub struct Gotify {
    pub client: reqwest::Client,
    pub url: String,
    pub token: String,
    pub priority: Option<u8>,
}

/// The request body.
pub fn payload(msg: &Message, priority: Option<u8>) -> serde_json::Value {
    let mut body = serde_json::json!({
        "title": truncate(&msg.title(Markup::Plain), 250),
        "message": truncate(msg.body(Markup::Plain).trim_end(), MAX_MESSAGE),
        "extras": { "client::display": { "contentType": "text/plain" } },
    });
    if let Some(p) = priority {
        body["priority"] = p.into();
    }
    body
}

impl Provider for Gotify {
    fn send<'a>(&'a self, msg: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            let url = format!("{}/message", self.url.trim_end_matches('/'));
            let req = self
                .client
                .post(url)
                .header("X-Gotify-Key", &self.token)
                .json(&payload(msg, self.priority));
            exchange(
                req,
                "Gotify HTTP",
                |v| v["errorDescription"].as_str().map(str::to_string),
                no_wait,
            )
            .await
            .map(|_| ())
        })
    }
}
