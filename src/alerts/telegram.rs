//! Telegram Bot API `sendMessage`: HTML (`parse_mode=HTML`; values
//! escaped), at most 4096 characters, link previews off
//! (`link_preview_options`, which replaced `disable_web_page_preview`).
//! A 429 is retried after Telegram's `parameters.retry_after`; other 4xx
//! are permanent with Telegram's `description`. The bot token is in the
//! URL's path, so it never appears in an error (`network_error` names
//! only the host). A message Telegram cannot parse as HTML (a template's
//! unbalanced tag, a cut) is sent once more as plain text rather than not
//! at all.

use super::message::Message;
use super::template::{truncate, Markup};
use super::{exchange, seconds, Provider, SendError, SendFuture};

/// The Bot API's address.
pub const API: &str = "https://api.telegram.org";
/// Characters in a message's text.
pub const MAX_TEXT: usize = 4096;

pub struct Telegram {
    pub client: reqwest::Client,
    pub api: String,
    pub token: String,
    pub chat_id: String,
}

/// Cuts an HTML text to `max` characters without leaving half a tag or
/// half an entity at the end.
fn truncate_html(s: &str, max: usize) -> String {
    let cut = truncate(s, max);
    if cut == s {
        return cut;
    }
    let body = cut.trim_end_matches('…');
    let open_tag = body.rfind('<').filter(|i| body[*i..].find('>').is_none());
    let open_entity = body.rfind('&').filter(|i| body[*i..].find(';').is_none());
    let end = open_tag
        .into_iter()
        .chain(open_entity)
        .min()
        .unwrap_or(body.len());
    format!("{}…", &body[..end])
}

/// The `sendMessage` body, as HTML or (`html` false) plain text.
pub fn payload(msg: &Message, chat_id: &str, html: bool) -> serde_json::Value {
    if html {
        let text = format!(
            "<b>{}</b>\n{}",
            msg.title(Markup::Html),
            msg.body(Markup::Html)
        );
        serde_json::json!({
            "chat_id": chat_id,
            "text": truncate_html(&text, MAX_TEXT),
            "parse_mode": "HTML",
            "link_preview_options": { "is_disabled": true },
        })
    } else {
        let text = format!("{}\n{}", msg.title(Markup::Plain), msg.body(Markup::Plain));
        serde_json::json!({
            "chat_id": chat_id,
            "text": truncate(&text, MAX_TEXT),
            "link_preview_options": { "is_disabled": true },
        })
    }
}

impl Telegram {
    async fn post(&self, body: &serde_json::Value) -> Result<(), SendError> {
        let url = format!(
            "{}/bot{}/sendMessage",
            self.api.trim_end_matches('/'),
            self.token
        );
        let req = self.client.post(url).json(body);
        exchange(
            req,
            "Telegram HTTP",
            |v| v["description"].as_str().map(str::to_string),
            |v| seconds(&v["parameters"]["retry_after"]),
        )
        .await
        .map(|_| ())
    }
}

impl Provider for Telegram {
    fn send<'a>(&'a self, msg: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            match self.post(&payload(msg, &self.chat_id, true)).await {
                Err(SendError::Permanent(reason)) if reason.contains("can't parse entities") => {
                    tracing::warn!(%reason, "Telegram refused the HTML; sending the page as plain text");
                    self.post(&payload(msg, &self.chat_id, false)).await
                }
                other => other,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_cuts_never_leave_half_a_tag_or_entity() {
        assert_eq!(
            truncate_html("<b>ab</b> x &amp; y", 100),
            "<b>ab</b> x &amp; y"
        );
        assert_eq!(truncate_html("ab &amp; cd", 6), "ab …");
        assert_eq!(truncate_html("ab <i>cd</i>", 5), "ab …");
        // A whole tag stays; an unbalanced one makes Telegram refuse the
        // HTML, and the page goes again as plain text (see `send`).
        assert_eq!(truncate_html("ab <i>cd</i>", 7), "ab <i>…");
        let long = format!("<b>t</b>\n{}", "&lt;".repeat(5000));
        let cut = truncate_html(&long, MAX_TEXT);
        assert!(cut.chars().count() <= MAX_TEXT);
        assert!(cut.ends_with("&lt;…"), "{}", &cut[cut.len() - 10..]);
    }
}
