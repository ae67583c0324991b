//! Discord webhook: `{"content": …}` within Discord's 2000-character limit;
//! a 429 is retried after the `retry_after` Discord gives; other 4xx are
//! permanent, with Discord's own message.

use std::time::Duration;

use super::message::Message;
use super::template::{truncate, Markup};
use super::{classify_status, network_error, retry_after_header, Provider, SendFuture};

/// Discord's limit on `content`.
pub const MAX_CONTENT: usize = 2000;

pub struct Discord {
    pub client: reqwest::Client,
    pub url: String,
}

/// The message as Discord content: subject in bold, then the text, cut to
/// the limit (in characters) with an ellipsis.
pub fn content(msg: &Message) -> String {
    let full = format!(
        "**{}**\n{}",
        msg.title(Markup::Plain),
        msg.body(Markup::Plain)
    );
    truncate(&full, MAX_CONTENT)
}

impl Provider for Discord {
    fn send<'a>(&'a self, msg: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            let body = serde_json::json!({ "content": content(msg) });
            let resp = self
                .client
                .post(&self.url)
                .json(&body)
                .send()
                .await
                .map_err(network_error)?;
            let status = resp.status().as_u16();
            let header_wait = retry_after_header(resp.headers());
            let text = resp.text().await.unwrap_or_default();
            let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let discord_message = parsed["message"].as_str().unwrap_or(&text);
            // Discord says how long to wait in its body; prefer that.
            let wait = parsed["retry_after"]
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .or(header_wait);
            classify_status("Discord HTTP", status, discord_message, wait)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_stays_within_discords_limit() {
        let mut m = Message::test("x", None);
        m.check_name = "é".repeat(5000);
        let c = content(&m);
        assert_eq!(c.chars().count(), MAX_CONTENT);
        assert!(c.ends_with('…'));
        let short = content(&Message::test("x", None));
        assert!(short.chars().count() < MAX_CONTENT && !short.ends_with('…'));
    }
}
