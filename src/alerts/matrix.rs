//! Matrix client-server API: `PUT /_matrix/client/v3/rooms/{room}/send/
//! m.room.message/{txnId}` with the delivery id as the transaction id, so
//! a resend of one page (after a retry or a leader crash) is deduplicated
//! by the homeserver. A room alias (`#ops:example.org`) is resolved first
//! (`GET /directory/room/{alias}`). The event carries a plain `body` and
//! an HTML `formatted_body`, each cut to 28 000 bytes as JSON (a whole
//! event, envelope and signatures included, is capped at 65 536 bytes of
//! canonical JSON), the HTML never inside a tag or entity.
//! `M_LIMIT_EXCEEDED` is retried after `retry_after_ms`; other 4xx are
//! permanent with the homeserver's `errcode` and `error`.

use std::time::Duration;

use super::message::Message;
use super::template::{truncate_json, Markup};
use super::{exchange, Provider, SendError, SendFuture};

/// Bytes of JSON for each of `body` and `formatted_body`: both together
/// leave the homeserver room for the event's envelope within 64 KiB.
pub const MAX_BODY_BYTES: usize = 28_000;

pub struct Matrix {
    pub client: reqwest::Client,
    pub homeserver: String,
    pub room: String,
    pub token: String,
}

/// Percent-encodes a path segment (room ids and aliases hold `!#:`).
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `truncate_json` for HTML: a cut leaves no half tag or entity at the end.
fn truncate_html_json(s: &str, max: usize) -> String {
    let cut = truncate_json(s, max);
    if cut == s {
        return cut;
    }
    let body = cut.strip_suffix('…').unwrap_or(&cut);
    let open_tag = body.rfind('<').filter(|i| !body[*i..].contains('>'));
    let open_entity = body.rfind('&').filter(|i| !body[*i..].contains(';'));
    let end = open_tag
        .into_iter()
        .chain(open_entity)
        .min()
        .unwrap_or(body.len());
    format!("{}…", &body[..end])
}

/// The `m.room.message` content.
pub fn content(msg: &Message) -> serde_json::Value {
    let plain = format!("{}\n{}", msg.title(Markup::Plain), msg.body(Markup::Plain));
    let html = format!(
        "<b>{}</b><br>{}",
        msg.title(Markup::Html),
        msg.body(Markup::Html).trim_end().replace('\n', "<br>")
    );
    serde_json::json!({
        "msgtype": "m.text",
        "body": truncate_json(plain.trim_end(), MAX_BODY_BYTES),
        "format": "org.matrix.custom.html",
        "formatted_body": truncate_html_json(&html, MAX_BODY_BYTES),
    })
}

fn detail(v: &serde_json::Value) -> Option<String> {
    let code = v["errcode"].as_str()?;
    Some(match v["error"].as_str() {
        Some(e) => format!("{code}: {e}"),
        None => code.to_string(),
    })
}

fn wait(v: &serde_json::Value) -> Option<Duration> {
    v["retry_after_ms"]
        .as_u64()
        .filter(|ms| *ms < 86_400_000)
        .map(Duration::from_millis)
}

impl Matrix {
    fn base(&self) -> String {
        format!(
            "{}/_matrix/client/v3",
            self.homeserver.trim_end_matches('/')
        )
    }

    /// The room id (`!…`) of the configured room or alias.
    async fn room_id(&self) -> Result<String, SendError> {
        if !self.room.starts_with('#') {
            return Ok(self.room.clone());
        }
        let url = format!("{}/directory/room/{}", self.base(), segment(&self.room));
        let req = self.client.get(url).bearer_auth(&self.token);
        let v = exchange(req, "Matrix HTTP (resolving the room alias)", detail, wait).await?;
        v["room_id"].as_str().map(str::to_string).ok_or_else(|| {
            SendError::Permanent(format!(
                "the homeserver did not resolve {} to a room id",
                self.room
            ))
        })
    }
}

impl Provider for Matrix {
    fn send<'a>(&'a self, msg: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            let room = self.room_id().await?;
            let url = format!(
                "{}/rooms/{}/send/m.room.message/{}",
                self.base(),
                segment(&room),
                segment(&msg.delivery_id)
            );
            let req = self
                .client
                .put(url)
                .bearer_auth(&self.token)
                .json(&content(msg));
            exchange(req, "Matrix HTTP", detail, wait).await.map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_and_aliases_are_escaped_as_path_segments() {
        assert_eq!(segment("!abc:example.org"), "%21abc%3Aexample.org");
        assert_eq!(segment("#ops:example.org"), "%23ops%3Aexample.org");
        assert_eq!(segment("c1-2-a1"), "c1-2-a1");
    }

    #[test]
    fn cuts_count_bytes_as_json_and_never_split_a_character_or_a_tag() {
        assert_eq!(truncate_json("short", 10), "short");
        // `"` takes two bytes in JSON, é two of UTF-8, … three.
        assert_eq!(truncate_json("\"\"\"\"\"\"", 10), "\"\"\"…");
        assert_eq!(truncate_json("éééééé", 10), "ééé…");
        let cut = truncate_json(&"é\n".repeat(10_000), 1000);
        assert!(serde_json::to_string(&cut).unwrap().len() <= 1002, "{cut}");
        assert_eq!(truncate_html_json("ab <i>cd</i>", 8), "ab …");
        assert_eq!(truncate_html_json("ab &amp; cd", 9), "ab …");
        assert_eq!(truncate_html_json("<b>x</b> yyyyyyy", 12), "<b>x</b> …");
    }
}
