//! Slack incoming webhook: a Block Kit message (a header with the title,
//! mrkdwn sections with the body) and a plain `text` fallback for
//! notifications. Slack's limits: 150 characters in a header, 3000 per
//! section, 40 000 per message; values are escaped for mrkdwn, and no cut
//! (between sections, or to fit) falls inside an `&entity;` or a
//! `<link|text>`, which Slack would show raw. A 429 is
//! retried after Slack's `Retry-After`; other 4xx (`invalid_payload`,
//! `channel_not_found`, …) are permanent, with Slack's own words.

use super::message::Message;
use super::template::{truncate, Markup};
use super::{exchange, no_wait, Provider, SendFuture};

/// Characters in a header block's text.
pub const MAX_HEADER: usize = 150;
/// Characters in one section's text.
pub const MAX_SECTION: usize = 3000;
/// Characters in a whole message.
pub const MAX_MESSAGE: usize = 40_000;

pub struct Slack {
    pub client: reqwest::Client,
    pub url: String,
}

/// Where an unfinished `&entity;` or `<link|text>` at the end of `piece`
/// begins, when it begins in its second half (a cut there would leave it
/// raw; one that began earlier is too long to move whole).
fn open_markup(piece: &[char]) -> Option<usize> {
    let open = |start: char, end: char| {
        piece
            .iter()
            .rposition(|c| *c == start)
            .filter(|i| !piece[*i..].contains(&end))
    };
    // Entities are short (`&amp;`); a lone `&` further back is text.
    let entity = open('&', ';').filter(|i| piece.len() - i <= 8);
    open('<', '>')
        .into_iter()
        .chain(entity)
        .min()
        .filter(|i| *i >= piece.len() / 2)
}

/// `s` cut to at most `max` characters as `truncate` does, and never
/// inside an entity or a link.
fn truncate_mrkdwn(s: &str, max: usize) -> String {
    let cut = truncate(s, max);
    if cut == s {
        return cut;
    }
    let kept: Vec<char> = cut.strip_suffix('…').unwrap_or(&cut).chars().collect();
    let end = open_markup(&kept).unwrap_or(kept.len());
    format!("{}…", kept[..end].iter().collect::<String>())
}

/// `text` in pieces of at most `max` characters, cut at a line break
/// where one is near, never inside a character, an entity or a link.
pub fn sections(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    while !rest.is_empty() {
        if rest.len() <= max {
            out.push(rest.iter().collect());
            break;
        }
        let window = &rest[..max];
        let cut = window
            .iter()
            .rposition(|c| *c == '\n')
            .filter(|i| *i >= max / 2)
            .map(|i| i + 1)
            .or_else(|| open_markup(window))
            .unwrap_or(max);
        out.push(rest[..cut].iter().collect());
        rest.drain(..cut);
    }
    out
}

/// The Block Kit payload.
pub fn payload(msg: &Message) -> serde_json::Value {
    let title = truncate(&msg.title(Markup::Plain), MAX_HEADER);
    let budget = MAX_MESSAGE - title.chars().count() - 1;
    let body = truncate_mrkdwn(msg.body(Markup::SlackMrkdwn).trim_end(), budget);
    let mut blocks = vec![serde_json::json!({
        "type": "header",
        "text": { "type": "plain_text", "text": title, "emoji": true },
    })];
    for s in sections(&body, MAX_SECTION) {
        blocks.push(serde_json::json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": s },
        }));
    }
    // The fallback shown in notifications: the escaped title.
    serde_json::json!({
        "text": truncate_mrkdwn(&msg.title(Markup::SlackMrkdwn), MAX_HEADER),
        "blocks": blocks,
    })
}

impl Provider for Slack {
    fn send<'a>(&'a self, msg: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            let req = self.client.post(&self.url).json(&payload(msg));
            // Slack answers errors as plain text (`invalid_payload`).
            exchange(req, "Slack HTTP", |_| None, no_wait)
                .await
                .map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_stay_within_the_limit_and_prefer_line_breaks() {
        let text = format!("{}\n{}", "a".repeat(2000), "é".repeat(5000));
        let parts = sections(&text, MAX_SECTION);
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_SECTION));
        assert_eq!(parts.concat(), text, "nothing lost or added");
        assert_eq!(parts[0], format!("{}\n", "a".repeat(2000)));
        assert!(sections("", 10).is_empty());
        // No piece ends inside an entity or a link.
        let text = format!("x{}", "&amp;".repeat(10));
        let parts = sections(&text, 12);
        assert_eq!(parts[0], "x&amp;&amp;");
        assert_eq!(parts.concat(), text);
        let parts = sections("abcdefgh <https://e.x|go>", 16);
        assert_eq!(parts, ["abcdefgh ", "<https://e.x|go>"]);
        assert_eq!(truncate_mrkdwn("ab &amp; cd", 7), "ab …");
        assert_eq!(truncate_mrkdwn("ab &amp; cd", 100), "ab &amp; cd");
    }

    #[test]
    fn a_huge_page_fits_slacks_limits() {
        let mut m = Message::test("x", None);
        m.check_name = "<b>&".repeat(20_000);
        let p = payload(&m);
        let blocks = p["blocks"].as_array().unwrap();
        let header = blocks[0]["text"]["text"].as_str().unwrap();
        assert!(header.chars().count() <= MAX_HEADER && header.ends_with('…'));
        let total: usize = blocks[1..]
            .iter()
            .map(|b| b["text"]["text"].as_str().unwrap().chars().count())
            .sum();
        assert!(total + header.chars().count() <= MAX_MESSAGE, "{total}");
        assert!(blocks.len() <= 50, "Block Kit allows 50 blocks");
        assert!(!blocks[1]["text"]["text"].as_str().unwrap().contains("<b>"));
    }
}
