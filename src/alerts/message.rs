//! What a page says (SPEC §10): check name, type, target, new state, since
//! when, which nodes saw what, and the master. One module renders every
//! form: a one-line subject, a text body, and the webhook JSON.
//!
//! Invariant: the subject is a single line of printable characters whatever
//! the check name contains (no header injection).

use serde::Serialize;

use super::template::{self, Markup};
use qu_raft::model::{Alert, Delivery, Evidence, Health};
use qu_raft::NodeId;

/// Why a message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Down,
    Recovered,
    Test,
}

impl Event {
    pub fn word(self) -> &'static str {
        match self {
            Event::Down => "DOWN",
            Event::Recovered => "RECOVERED",
            Event::Test => "TEST",
        }
    }
}

/// A rendered-to-be page.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// The idempotency key: the same for every resend of one page.
    pub delivery_id: String,
    pub event: Event,
    pub check_id: String,
    pub check_name: String,
    pub check_type: String,
    pub target: String,
    /// RFC 3339.
    pub since: String,
    /// `2/3 down: connection refused`.
    pub votes: String,
    pub evidence: Vec<Evidence>,
    pub master: Option<NodeId>,
    /// `repeat 2` (`--repeat`) or `silence ended`: why a page that is not
    /// a flip's own was sent.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// The same for every page of one outage of one check (its DOWN, its
    /// repeats, its RECOVERED): PagerDuty's dedup_key, Opsgenie's alias.
    pub incident_key: String,
    /// The cluster's id (`qu status`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// The alert it goes to.
    #[serde(skip)]
    pub alert_name: String,
    /// A RECOVERED: how long the outage lasted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outage_ms: Option<u64>,
    /// The alert's `--title` / `--body` templates.
    #[serde(skip)]
    pub title_template: Option<String>,
    #[serde(skip)]
    pub body_template: Option<String>,
}

/// Replaces control characters (CR, LF, …) with spaces.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `qu-<check id>-<flip of the DOWN>`, from a delivery id of the shape
/// `<check id>-<flip>-<alert id>[-end|-rN]`: a RECOVERED's flip is the one
/// after its DOWN's.
fn incident_key(d: &Delivery) -> String {
    let flip =
        d.id.strip_prefix(&d.check_id)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| rest.split('-').next())
            .and_then(|n| n.parse::<u64>().ok());
    match flip {
        Some(n) if d.transition.to == Health::Down => format!("qu-{}-{n}", d.check_id),
        Some(n) => format!("qu-{}-{}", d.check_id, n.saturating_sub(1)),
        None => format!("qu-{}", d.id),
    }
}

impl Message {
    /// The page for delivery `d` to `alert` (None: removed since), from a
    /// node of cluster `cluster`.
    pub fn from_delivery(
        d: &Delivery,
        alert: Option<&Alert>,
        cluster: &str,
        master: Option<NodeId>,
    ) -> Message {
        let t = &d.transition;
        Message {
            delivery_id: d.id.clone(),
            event: if t.to == Health::Down {
                Event::Down
            } else {
                Event::Recovered
            },
            check_id: d.check_id.clone(),
            check_name: d.check_name.clone(),
            check_type: d.check_type.clone(),
            target: d.target.clone(),
            since: crate::ids::rfc3339(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(t.at_ms),
            ),
            votes: t.votes(),
            evidence: t.evidence.clone(),
            master,
            note: d.note.clone(),
            incident_key: incident_key(d),
            cluster: cluster.to_string(),
            alert_name: alert
                .map(|a| a.name.clone())
                .unwrap_or_else(|| d.alert_name.clone()),
            outage_ms: d.down_since_ms.map(|s| t.at_ms.saturating_sub(s)),
            title_template: alert.and_then(|a| a.title.clone()),
            body_template: alert.and_then(|a| a.body.clone()),
        }
    }

    /// With `alert`'s templates (`qu alert test`).
    pub fn with_templates(mut self, alert: &Alert) -> Message {
        self.title_template = alert.title.clone();
        self.body_template = alert.body.clone();
        self
    }

    /// The title for `markup`: the `--title` template rendered, or the
    /// default subject; always one line. A template that fails to render
    /// (it was checked when added, so only a field missing from an older
    /// record can do that) falls back to the default, saying so.
    pub fn title(&self, markup: Markup) -> String {
        match &self.title_template {
            Some(t) => match template::render("--title", t, self, markup) {
                Ok(s) => one_line(&s),
                Err(e) => one_line(&format!(
                    "{} ({e})",
                    template::escape(&self.subject(), markup)
                )),
            },
            None => template::escape(&self.subject(), markup),
        }
    }

    /// The body for `markup`: the `--body` template rendered, or the
    /// default text.
    pub fn body(&self, markup: Markup) -> String {
        match &self.body_template {
            Some(t) => match template::render("--body", t, self, markup) {
                Ok(s) => s,
                Err(e) => format!("{}\n({e})\n", template::escape(&self.text(), markup)),
            },
            None => template::escape(&self.text(), markup),
        }
    }

    /// The message `qu alert test` sends.
    pub fn test(alert_name: &str, master: Option<NodeId>) -> Message {
        Message {
            delivery_id: format!("test-{}", crate::ids::random_id()),
            event: Event::Test,
            check_id: String::new(),
            check_name: format!("test of alert {alert_name}"),
            check_type: "-".into(),
            target: "-".into(),
            since: crate::ids::rfc3339(std::time::SystemTime::now()),
            votes: "-".into(),
            evidence: vec![],
            master,
            note: String::new(),
            incident_key: format!("qu-test-{}", crate::ids::random_id()),
            cluster: String::new(),
            alert_name: alert_name.to_string(),
            outage_ms: None,
            title_template: None,
            body_template: None,
        }
    }

    pub fn subject(&self) -> String {
        let note = if self.note.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.note)
        };
        one_line(&format!(
            "[qu] {}: {}{note}",
            self.event.word(),
            self.check_name
        ))
    }

    pub fn text(&self) -> String {
        let mut out =
            match self.event {
                Event::Test => format!(
                "This is a test page from qu (sent by {}). If you read this, the alert works.\n",
                self.master.map(|m| m.to_string()).unwrap_or_else(|| "-".into())
            ),
                _ => format!(
                    "{} is {} since {}\ncheck:  {} {}\nvotes:  {}\n",
                    one_line(&self.check_name),
                    self.event.word(),
                    self.since,
                    self.check_type,
                    one_line(&self.target),
                    self.votes
                ),
            };
        for e in &self.evidence {
            let what = if e.ok {
                "ok".to_string()
            } else {
                one_line(&e.reason)
            };
            let latency = e
                .latency_ms
                .map(|l| format!(" ({l}ms)"))
                .unwrap_or_default();
            out.push_str(&format!("  {}: {what}{latency}\n", e.node));
        }
        if self.event != Event::Test {
            out.push_str(&format!(
                "master: {}\n",
                self.master
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "-".into())
            ));
        }
        out
    }

    /// The documented webhook payload (see README); with templates, also
    /// the rendered `title` and `text`.
    pub fn json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if self.title_template.is_some() || self.body_template.is_some() {
            v["title"] = self.title(Markup::Plain).into();
            v["text"] = self.body(Markup::Plain).into();
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_is_one_line_whatever_the_name() {
        let mut m = Message::test("x", None);
        m.event = Event::Down;
        m.check_name = "evil\r\nBcc: victim@example.com".into();
        let s = m.subject();
        assert!(!s.contains('\r') && !s.contains('\n'), "{s:?}");
        assert!(s.starts_with("[qu] DOWN: evil"));
    }

    #[test]
    fn text_names_check_state_votes_nodes_and_master() {
        let m = Message {
            delivery_id: "d".into(),
            event: Event::Down,
            check_id: "c".into(),
            check_name: "homepage".into(),
            check_type: "http".into(),
            target: "https://example.com".into(),
            since: "2026-05-12T14:00:02Z".into(),
            votes: "2/3 down: connection refused".into(),
            evidence: vec![Evidence {
                node: NodeId(0xa7),
                ok: false,
                reason: "connection refused".into(),
                latency_ms: Some(3),
                cert_not_after_ms: None,
            }],
            master: Some(NodeId(0xa7)),
            note: String::new(),
            incident_key: "qu-c-1".into(),
            cluster: String::new(),
            alert_name: String::new(),
            outage_ms: None,
            title_template: None,
            body_template: None,
        };
        let t = m.text();
        for needle in [
            "homepage is DOWN since 2026-05-12T14:00:02Z",
            "http https://example.com",
            "2/3 down: connection refused",
            "00000000000000a7: connection refused (3ms)",
            "master: 00000000000000a7",
        ] {
            assert!(t.contains(needle), "{needle} missing:\n{t}");
        }
        assert_eq!(m.json()["event"], "down");
        assert!(m.json().get("note").is_none());
        let repeat = Message {
            note: "repeat 2".into(),
            ..m
        };
        assert_eq!(repeat.json()["note"], "repeat 2");
        assert!(repeat.subject().ends_with("homepage (repeat 2)"));
    }
}
