//! Message templates (`--title`, `--body`): minijinja over the documented
//! fields of a page, and the markup each provider needs.
//!
//! Invariants:
//! - A template is checked when it is added or edited (`check`): a syntax
//!   error, an unknown filter or a misspelt field is refused there, with its
//!   line and column, rather than at 3 a.m. when the page is due.
//! - Values are escaped for the provider's markup (HTML for Telegram,
//!   Slack's mrkdwn); the template's own text is not, so an operator may
//!   write `<b>{{ check.name }}</b>` for Telegram.
//! - Rendering is bounded: templates are at most 8 KiB
//!   (`qu_raft::alert_kinds::MAX_TEMPLATE_BYTES`), have no includes, and
//!   the result is cut to the provider's limit by `truncate`.
//!
//! The fields (README "Message templates"): `check.name`, `check.id`,
//! `check.type`, `check.target`, `state` (DOWN, RECOVERED, TEST), `event`
//! (down, recovered, repeat, test), `since` (RFC 3339), `outage` (how long
//! the outage lasted, RECOVERED only, `4m 10s`), `outage_seconds`, `votes`,
//! `evidence` (a list of `node`, `ok`, `reason`, `latency_ms`), `master`,
//! `cluster`, `alert`, `note`, `delivery_id`.

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

use super::message::{Event, Message};

/// The markup a rendered text goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// Plain text: nothing is escaped.
    Plain,
    /// HTML (Telegram's `parse_mode=HTML`): `&`, `<`, `>`, `"` escaped.
    Html,
    /// Slack's mrkdwn: `&`, `<`, `>` escaped, as Slack documents.
    SlackMrkdwn,
}

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: the template does not work at line {line}, column {column}: {reason}")]
pub struct TemplateError {
    pub flag: String,
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

/// `s` escaped for `markup`.
pub fn escape(s: &str, markup: Markup) -> String {
    match markup {
        Markup::Plain => s.to_string(),
        Markup::Html | Markup::SlackMrkdwn => {
            let mut out = String::with_capacity(s.len());
            for c in s.chars() {
                match c {
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '"' if markup == Markup::Html => out.push_str("&quot;"),
                    c => out.push(c),
                }
            }
            out
        }
    }
}

/// `s` cut to at most `max` characters, the last of them an ellipsis when
/// it was cut (never in the middle of a character).
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut cut: String = s.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// `s` cut to at most `max` bytes of UTF-8, ending in an ellipsis when it
/// was cut (never in the middle of a character).
pub fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let ellipsis = '…'.len_utf8();
    if max < ellipsis {
        return String::new();
    }
    let mut end = max - ellipsis;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Bytes `c` takes inside a JSON string (serde_json escapes `"`, `\\` and control characters).
fn json_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// `s` cut so that it takes at most `max` bytes as a JSON string, ending
/// in an ellipsis when it was cut (never in the middle of a character).
pub fn truncate_json(s: &str, max: usize) -> String {
    if s.chars().map(json_len).sum::<usize>() <= max {
        return s.to_string();
    }
    let Some(budget) = max.checked_sub('…'.len_utf8()) else {
        return String::new();
    };
    let (mut used, mut end) = (0, 0);
    for (i, c) in s.char_indices() {
        used += json_len(c);
        if used > budget {
            break;
        }
        end = i + c.len_utf8();
    }
    format!("{}…", &s[..end])
}

#[derive(Serialize)]
struct CheckFields<'a> {
    name: &'a str,
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    target: &'a str,
}

#[derive(Serialize)]
struct EvidenceFields {
    node: String,
    ok: bool,
    reason: String,
    latency_ms: Option<u64>,
}

#[derive(Serialize)]
struct Fields<'a> {
    check: CheckFields<'a>,
    state: &'static str,
    event: &'static str,
    since: &'a str,
    outage: String,
    outage_seconds: Option<u64>,
    votes: &'a str,
    evidence: Vec<EvidenceFields>,
    master: String,
    cluster: &'a str,
    alert: &'a str,
    note: &'a str,
    delivery_id: &'a str,
}

/// The fields a template sees for `msg`.
fn fields(msg: &Message) -> Fields<'_> {
    Fields {
        check: CheckFields {
            name: &msg.check_name,
            id: &msg.check_id,
            kind: &msg.check_type,
            target: &msg.target,
        },
        state: msg.event.word(),
        event: match msg.event {
            Event::Down if msg.note.starts_with("repeat") => "repeat",
            Event::Down => "down",
            Event::Recovered => "recovered",
            Event::Test => "test",
        },
        since: &msg.since,
        outage: msg
            .outage_ms
            .map(qu_raft::alert_kinds::short_duration)
            .unwrap_or_default(),
        outage_seconds: msg.outage_ms.map(|ms| ms / 1000),
        votes: &msg.votes,
        evidence: msg
            .evidence
            .iter()
            .map(|e| EvidenceFields {
                node: e.node.to_string(),
                ok: e.ok,
                reason: if e.ok { "ok".into() } else { e.reason.clone() },
                latency_ms: e.latency_ms,
            })
            .collect(),
        master: msg.master.map(|m| m.to_string()).unwrap_or_default(),
        cluster: &msg.cluster,
        alert: &msg.alert_name,
        note: &msg.note,
        delivery_id: &msg.delivery_id,
    }
}

fn environment(markup: Markup) -> Environment<'static> {
    let mut env = Environment::new();
    // Keeps error spans, for the column of a refused template.
    env.set_debug(true);
    // A misspelt field is an error, not an empty string.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_formatter(move |out, _state, value: &Value| {
        let text = if value.is_none() {
            String::new()
        } else if value.kind() == minijinja::value::ValueKind::Bool {
            value.is_true().to_string()
        } else {
            value.to_string()
        };
        out.write_str(&escape(&text, markup))
            .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()))
    });
    env
}

fn template_error(flag: &str, source: &str, e: &minijinja::Error) -> TemplateError {
    let line = e.line().unwrap_or(1);
    let column = match e.range() {
        Some(r) => {
            let start = r.start.min(source.len());
            let before = &source[..start];
            before.chars().rev().take_while(|c| *c != '\n').count() + 1
        }
        None => 1,
    };
    let reason = match e.detail() {
        Some(d) => format!("{} ({d})", e.kind()),
        None => e.kind().to_string(),
    };
    TemplateError {
        flag: flag.to_string(),
        line,
        column,
        reason,
    }
}

/// Renders `source` over `msg`'s fields for `markup`.
pub fn render(
    flag: &str,
    source: &str,
    msg: &Message,
    markup: Markup,
) -> Result<String, TemplateError> {
    let env = environment(markup);
    env.render_str(source, fields(msg))
        .map_err(|e| template_error(flag, source, &e))
}

/// Checks a template when it is added or edited: it compiles, and renders
/// over both a DOWN and a RECOVERED page (so an unknown filter or field is
/// refused now).
pub fn check(flag: &str, source: &str) -> Result<(), TemplateError> {
    let mut msg = Message::test("example", None);
    msg.event = Event::Down;
    render(flag, source, &msg, Markup::Plain)?;
    msg.event = Event::Recovered;
    msg.outage_ms = Some(250_000);
    render(flag, source, &msg, Markup::Plain)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use qu_raft::model::Evidence;
    use qu_raft::NodeId;

    fn down() -> Message {
        let mut m = Message::test("pager", Some(NodeId(0xa7)));
        m.event = Event::Down;
        m.delivery_id = "c1-3-a1".into();
        m.check_id = "c1".into();
        m.check_name = "shop <eu>".into();
        m.check_type = "http".into();
        m.target = "https://shop.example.com/?a=1&b=2".into();
        m.since = "2026-12-03T06:00:00Z".into();
        m.votes = "2/3 down: HTTP 503".into();
        m.cluster = "prod".into();
        m.evidence = vec![
            Evidence {
                node: NodeId(0xa7),
                ok: false,
                reason: "HTTP 503".into(),
                latency_ms: Some(12),
                cert_not_after_ms: None,
            },
            Evidence {
                node: NodeId(0xb2),
                ok: true,
                reason: String::new(),
                latency_ms: Some(30),
                cert_not_after_ms: None,
            },
        ];
        m
    }

    #[test]
    fn every_documented_field_renders() {
        let mut m = down();
        m.event = Event::Recovered;
        m.outage_ms = Some(250_000);
        m.note = "silence ended".into();
        let t = "{{ check.name }}|{{ check.id }}|{{ check.type }}|{{ check.target }}|{{ state }}|{{ event }}|{{ since }}|{{ outage }}|{{ outage_seconds }}|{{ votes }}|{{ master }}|{{ cluster }}|{{ alert }}|{{ note }}|{{ delivery_id }}|{% for e in evidence %}{{ e.node }}={{ e.reason }}/{{ e.ok }}/{{ e.latency_ms }};{% endfor %}";
        let out = render("--body", t, &m, Markup::Plain).unwrap();
        assert_eq!(
            out,
            "shop <eu>|c1|http|https://shop.example.com/?a=1&b=2|RECOVERED|recovered|2026-12-03T06:00:00Z|4m 10s|250|2/3 down: HTTP 503|00000000000000a7|prod|pager|silence ended|c1-3-a1|00000000000000a7=HTTP 503/false/12;00000000000000b2=ok/true/30;"
        );
        // A DOWN has no outage yet: empty, not "none".
        let out = render("--body", "[{{ outage }}]", &down(), Markup::Plain).unwrap();
        assert_eq!(out, "[]");
        let mut repeat = down();
        repeat.note = "repeat 2".into();
        assert_eq!(
            render("--title", "{{ event }}", &repeat, Markup::Plain).unwrap(),
            "repeat"
        );
    }

    #[test]
    fn values_are_escaped_for_the_markup_but_the_template_is_not() {
        let m = down();
        let html = render(
            "--body",
            "<b>{{ check.name }}</b> {{ check.target }}",
            &m,
            Markup::Html,
        )
        .unwrap();
        assert_eq!(
            html,
            "<b>shop &lt;eu&gt;</b> https://shop.example.com/?a=1&amp;b=2"
        );
        let slack = render(
            "--body",
            "*{{ check.name }}* <{{ check.target }}|open>",
            &m,
            Markup::SlackMrkdwn,
        )
        .unwrap();
        assert_eq!(
            slack,
            "*shop &lt;eu&gt;* <https://shop.example.com/?a=1&amp;b=2|open>"
        );
        assert_eq!(escape("a\"b", Markup::Html), "a&quot;b");
        assert_eq!(escape("a\"b", Markup::SlackMrkdwn), "a\"b");
    }

    #[test]
    fn broken_templates_are_refused_with_line_and_column() {
        let e = check("--body", "ok\n{{ check.name }\n").unwrap_err();
        assert_eq!((e.flag.as_str(), e.line), ("--body", 2), "{e}");
        assert!(e.column >= 1, "{e}");
        assert!(
            e.to_string()
                .starts_with("--body: the template does not work at line 2, column"),
            "{e}"
        );
        let e = check("--title", "{{ chek.name }}").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        assert!(e.reason.contains("undefined"), "{e}");
        let e = check("--title", "{{ check.name | shout }}").unwrap_err();
        assert!(e.reason.contains("filter"), "{e}");
        let e = check("--body", "line one\n  {% for e in evidence %}\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        check(
            "--body",
            "{{ check.name | upper }} {% if outage %}after {{ outage }}{% endif %}",
        )
        .unwrap();
    }

    #[test]
    fn truncation_never_splits_a_character() {
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("héllo", 4), "hél…");
        assert_eq!(truncate("ééééé", 3).chars().count(), 3);
        assert_eq!(truncate("🚨🚨🚨", 2), "🚨…");
        assert_eq!(truncate("abc", 0), "");
        let cut = truncate_bytes(&"é".repeat(100), 11);
        assert!(cut.len() <= 11 && cut.ends_with('…'), "{cut}");
        assert_eq!(cut, "éééé…");
        assert_eq!(truncate_bytes("short", 11), "short");
    }
}
