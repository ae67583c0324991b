//! Pushover's message API (`POST /1/messages.json`): `token`, `user`,
//! `title` (250 characters), `message` (1024 characters), optional
//! `priority` and `device`. 429 (the application's monthly limit) and 5xx
//! are retried; other 4xx are permanent with Pushover's `errors`.

use super::message::Message;
use super::template::{truncate, Markup};
use super::{exchange, no_wait, Provider, SendFuture};

/// The API's address.
pub const API: &str = "https://api.pushover.net";
pub const MAX_TITLE: usize = 250;
pub const MAX_MESSAGE: usize = 1024;

pub struct Pushover {
    pub client: reqwest::Client,
    pub api: String,
    pub token: String,
    pub user: String,
    pub priority: Option<i8>,
    pub device: Option<String>,
}

/// The request body.
pub fn payload(
    msg: &Message,
    token: &str,
    user: &str,
    priority: Option<i8>,
    device: Option<&str>,
) -> serde_json::Value {
    let mut body = serde_json::json!({
        "token": token,
        "user": user,
        "title": truncate(&msg.title(Markup::Plain), MAX_TITLE),
        "message": truncate(msg.body(Markup::Plain).trim_end(), MAX_MESSAGE),
    });
    if let Some(p) = priority {
        body["priority"] = p.into();
    }
    if let Some(d) = device {
        body["device"] = d.into();
    }
    body
}

impl Provider for Pushover {
    fn send<'a>(&'a self, msg: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            let url = format!("{}/1/messages.json", self.api.trim_end_matches('/'));
            let body = payload(
                msg,
                &self.token,
                &self.user,
                self.priority,
                self.device.as_deref(),
            );
            let req = self.client.post(url).json(&body);
            exchange(
                req,
                "Pushover HTTP",
                |v| {
                    let errors: Vec<&str> = v["errors"]
                        .as_array()?
                        .iter()
                        .filter_map(|e| e.as_str())
                        .collect();
                    (!errors.is_empty()).then(|| errors.join("; "))
                },
                no_wait,
            )
            .await
            .map(|_| ())
        })
    }
}
