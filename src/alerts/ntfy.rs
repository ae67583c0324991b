//! ntfy (ntfy.sh or self-hosted): publishes as JSON to the server's root
//! (`{"topic", "title", "message", "priority", "tags"}`), so titles and
//! tags need no header encoding; `Authorization: Bearer` with a token.
//! ntfy turns a message over 4096 bytes into an attachment, so the body is
//! cut to that. 429 (ntfy's rate limit) and 5xx are retried; other 4xx are
//! permanent with ntfy's `error`.

use super::message::Message;
use super::template::{truncate, truncate_bytes, Markup};
use super::{exchange, no_wait, Provider, SendFuture};

/// Bytes in a message before ntfy makes it an attachment.
pub const MAX_MESSAGE_BYTES: usize = 4096;

pub struct Ntfy {
    pub client: reqwest::Client,
    /// `https://ntfy.sh/TOPIC`.
    pub url: String,
    pub token: Option<String>,
    pub priority: Option<u8>,
    pub tags: Vec<String>,
}

/// The server's root and the topic of a topic URL.
pub fn split_topic(url: &str) -> Option<(String, String)> {
    let mut u = reqwest::Url::parse(url).ok()?;
    let topic = u.path_segments()?.next_back()?.to_string();
    if topic.is_empty() {
        return None;
    }
    u.path_segments_mut().ok()?.pop();
    let root = u.as_str().trim_end_matches('/').to_string();
    Some((format!("{root}/"), topic))
}

/// The JSON publish body.
pub fn payload(
    msg: &Message,
    topic: &str,
    priority: Option<u8>,
    tags: &[String],
) -> serde_json::Value {
    let mut body = serde_json::json!({
        "topic": topic,
        "title": truncate(&msg.title(Markup::Plain), 250),
        "message": truncate_bytes(msg.body(Markup::Plain).trim_end(), MAX_MESSAGE_BYTES),
    });
    if let Some(p) = priority {
        body["priority"] = p.into();
    }
    if !tags.is_empty() {
        body["tags"] = tags.into();
    }
    body
}

impl Provider for Ntfy {
    fn send<'a>(&'a self, msg: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            let Some((root, topic)) = split_topic(&self.url) else {
                return Err(super::SendError::Permanent(
                    "the ntfy URL names no topic (qu alert edit --url https://ntfy.sh/TOPIC)"
                        .into(),
                ));
            };
            let mut req =
                self.client
                    .post(root)
                    .json(&payload(msg, &topic, self.priority, &self.tags));
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            exchange(
                req,
                "ntfy HTTP",
                |v| v["error"].as_str().map(str::to_string),
                no_wait,
            )
            .await
            .map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_urls_split_into_root_and_topic() {
        assert_eq!(
            split_topic("https://ntfy.sh/ops-alerts"),
            Some(("https://ntfy.sh/".into(), "ops-alerts".into()))
        );
        assert_eq!(
            split_topic("http://127.0.0.1:8080/ntfy/ops"),
            Some(("http://127.0.0.1:8080/ntfy/".into(), "ops".into()))
        );
        assert_eq!(split_topic("https://ntfy.sh/"), None);
    }
}
