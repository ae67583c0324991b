//! The alert kinds and alert fields of log level 5: the providers beyond
//! webhook, Discord and SMTP, message templates, and routing (`--on`,
//! `--after`).
//!
//! Invariants:
//! - An alert of a kind or with a field from here is a level-5 record
//!   (`Alert::level`), so it is refused before it reaches a log that a
//!   node of an older release would have to decode.
//! - Validation names the CLI flag at fault and says how to fix it; it
//!   never echoes a secret.
//! - Template *syntax* is checked by the binary (it owns the template
//!   engine) before proposing; here only bounds that every node can check.

use serde::{Deserialize, Serialize};

use crate::model::{AlertKind, ValidationError};

/// The log level these kinds and fields need.
pub const LEVEL: u32 = 5;

/// Longest `--title` / `--body` template accepted, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 8 * 1024;

/// Shortest and longest `--after`.
pub const MIN_AFTER_MS: u64 = 1_000;
pub const MAX_AFTER_MS: u64 = 24 * 3_600_000;

/// The alert fields of this level, by their JSON name: an edit that sets
/// one is a level-5 command.
pub const ALERT_FIELDS: [&str; 4] = ["title", "body", "on", "after_ms"];

/// An event an alert can be routed (`--on down,recovered,repeat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PageEvent {
    /// A check went DOWN (or was DOWN when a silence ended).
    Down,
    /// A check came back UP after a DOWN.
    Recovered,
    /// A re-notification while a check stays DOWN (`--repeat`).
    Repeat,
}

impl PageEvent {
    pub const ALL: [PageEvent; 3] = [PageEvent::Down, PageEvent::Recovered, PageEvent::Repeat];

    pub fn word(self) -> &'static str {
        match self {
            PageEvent::Down => "down",
            PageEvent::Recovered => "recovered",
            PageEvent::Repeat => "repeat",
        }
    }

    /// `down,recovered` → the set, in order, without duplicates.
    pub fn parse_list(s: &str) -> Result<Vec<PageEvent>, ValidationError> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim) {
            let e = match part.to_ascii_lowercase().as_str() {
                "down" => PageEvent::Down,
                "recovered" | "up" => PageEvent::Recovered,
                "repeat" => PageEvent::Repeat,
                _ => {
                    return Err(ValidationError::new(
                        "--on",
                        format!("{part:?} is not an event; list some of down, recovered, repeat (e.g. --on down,recovered)"),
                    ))
                }
            };
            if !out.contains(&e) {
                out.push(e);
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A duration as people read it: `2.5s`, `4m 10s`, `3h 5m`, `2d 4h`.
pub fn short_duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 if ms.is_multiple_of(1000) => format!("{s}s"),
        0..=59 => format!("{:.1}s", ms as f64 / 1000.0),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// PagerDuty's severities.
pub const PAGERDUTY_SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];
/// Opsgenie's regions and priorities.
pub const OPSGENIE_REGIONS: [&str; 2] = ["us", "eu"];
pub const OPSGENIE_PRIORITIES: [&str; 5] = ["P1", "P2", "P3", "P4", "P5"];

fn err(field: &str, message: impl Into<String>) -> ValidationError {
    ValidationError::new(field, message)
}

/// A secret that must be there and be one line; the message never shows it.
fn secret(field: &str, v: &str) -> Result<(), ValidationError> {
    if v.trim().is_empty() {
        return Err(err(field, "is empty"));
    }
    if v.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(err(
            field,
            "must not contain spaces or control characters (was a line break pasted with it?)",
        ));
    }
    Ok(())
}

fn optional_url(field: &str, v: &Option<String>) -> Result<(), ValidationError> {
    match v {
        Some(u) => crate::model::validate_http_url(field, u),
        None => Ok(()),
    }
}

/// Validates the fields of a level-5 kind (the older kinds are validated
/// in `Alert::validate`).
pub fn validate(kind: &AlertKind) -> Result<(), ValidationError> {
    match kind {
        AlertKind::Webhook { .. } | AlertKind::Discord { .. } | AlertKind::Smtp { .. } => Ok(()),
        AlertKind::Slack { webhook } => crate::model::validate_http_url("--webhook", webhook),
        AlertKind::Teams { webhook } => crate::model::validate_http_url("--webhook", webhook),
        AlertKind::Telegram {
            token,
            chat_id,
            api_url,
        } => {
            secret("--token", token)?;
            if !token.contains(':') {
                return Err(err(
                    "--token",
                    "a bot token looks like 123456789:AA…; copy it whole from @BotFather",
                ));
            }
            let numeric = chat_id
                .strip_prefix('-')
                .unwrap_or(chat_id)
                .chars()
                .all(|c| c.is_ascii_digit());
            let channel = chat_id.len() > 1
                && chat_id.starts_with('@')
                && chat_id[1..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if chat_id.is_empty() || !(numeric || channel) {
                return Err(err(
                    "--chat-id",
                    format!("{chat_id:?} is not a chat id; give a number (e.g. -1001234567890) or @channelname"),
                ));
            }
            optional_url("--api-url", api_url)
        }
        AlertKind::Pagerduty {
            routing_key,
            severity,
            api_url,
        } => {
            secret("--routing-key", routing_key)?;
            if routing_key.len() != 32 || !routing_key.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(err(
                    "--routing-key",
                    "a PagerDuty Events API v2 routing key is 32 letters and digits (Service → Integrations → Events API V2)",
                ));
            }
            if !PAGERDUTY_SEVERITIES.contains(&severity.as_str()) {
                return Err(err(
                    "--severity",
                    format!("{severity:?}: use critical, error, warning or info"),
                ));
            }
            optional_url("--api-url", api_url)
        }
        AlertKind::Opsgenie {
            api_key,
            region,
            priority,
            api_url,
        } => {
            secret("--api-key", api_key)?;
            if !OPSGENIE_REGIONS.contains(&region.as_str()) {
                return Err(err("--region", format!("{region:?}: use us or eu")));
            }
            if let Some(p) = priority {
                if !OPSGENIE_PRIORITIES.contains(&p.as_str()) {
                    return Err(err("--priority", format!("{p:?}: use P1 … P5")));
                }
            }
            optional_url("--api-url", api_url)
        }
        AlertKind::Ntfy {
            url,
            token,
            priority,
            tags,
        } => {
            crate::model::validate_http_url("--url", url)?;
            let topic = url::Url::parse(url)
                .ok()
                .and_then(|u| {
                    u.path_segments()
                        .and_then(|mut s| s.next_back().map(str::to_string))
                })
                .unwrap_or_default();
            if topic.is_empty() {
                return Err(err(
                    "--url",
                    "name the topic in the URL, e.g. https://ntfy.sh/my-alerts",
                ));
            }
            if let Some(t) = token {
                secret("--token", t)?;
            }
            if let Some(p) = priority {
                if !(1..=5).contains(p) {
                    return Err(err(
                        "--priority",
                        "must be 1 (min) to 5 (max); ntfy's default is 3",
                    ));
                }
            }
            for t in tags {
                if t.is_empty() || t.contains(',') || t.chars().any(char::is_control) {
                    return Err(err(
                        "--tag",
                        format!("{t:?}: a tag is one word or emoji short code (e.g. warning, rotating_light)"),
                    ));
                }
            }
            Ok(())
        }
        AlertKind::Matrix {
            homeserver,
            room,
            token,
        } => {
            crate::model::validate_http_url("--homeserver", homeserver)?;
            let sigil_ok = room.starts_with('!') || room.starts_with('#');
            let server_ok = room
                .split_once(':')
                .is_some_and(|(l, s)| l.len() > 1 && !s.is_empty());
            if !sigil_ok || !server_ok || room.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(err(
                    "--room",
                    format!("{room:?}: give a room id (!abc123:example.org) or alias (#ops:example.org)"),
                ));
            }
            secret("--token", token)
        }
        AlertKind::Pushover {
            token,
            user,
            priority,
            device,
            api_url,
        } => {
            secret("--token", token)?;
            secret("--user", user)?;
            for (flag, v) in [("--token", token), ("--user", user)] {
                if v.len() != 30 || !v.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(err(
                        flag,
                        "Pushover tokens and user keys are 30 letters and digits",
                    ));
                }
            }
            if let Some(p) = priority {
                if !(-2..=1).contains(p) {
                    return Err(err(
                        "--priority",
                        "must be -2 to 1 (2, emergency, needs retry/expire settings qu does not send)",
                    ));
                }
            }
            if let Some(d) = device {
                if d.is_empty()
                    || d.len() > 25
                    || !d
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ',')
                {
                    return Err(err(
                        "--device",
                        "device names are up to 25 letters, digits, '_' or '-' (comma-separated)",
                    ));
                }
            }
            optional_url("--api-url", api_url)
        }
        AlertKind::Gotify {
            url,
            token,
            priority,
        } => {
            crate::model::validate_http_url("--url", url)?;
            secret("--token", token)?;
            if let Some(p) = priority {
                if *p > 10 {
                    return Err(err("--priority", "must be 0 to 10"));
                }
            }
            Ok(())
        }
    }
}

/// Validates the level-5 alert fields: templates' bounds, `--on`,
/// `--after`, and how they combine with `--repeat`.
pub fn validate_routing(alert: &crate::model::Alert) -> Result<(), ValidationError> {
    for (flag, t) in [("--title", &alert.title), ("--body", &alert.body)] {
        if let Some(t) = t {
            if t.trim().is_empty() {
                return Err(err(
                    flag,
                    "the template is empty; leave the flag out for the default text",
                ));
            }
            if t.len() > MAX_TEMPLATE_BYTES {
                return Err(err(
                    flag,
                    format!(
                        "the template is {} bytes; at most {MAX_TEMPLATE_BYTES}",
                        t.len()
                    ),
                ));
            }
        }
    }
    if let Some(on) = &alert.on {
        if on.is_empty() {
            return Err(err(
                "--on",
                "an alert must get at least one of down, recovered, repeat (disable it instead: qu alert disable)",
            ));
        }
        if alert.repeat_ms.is_some() && !on.contains(&PageEvent::Repeat) {
            return Err(err(
                "--repeat",
                "this alert does not get repeats (--on lacks 'repeat'); add it to --on or set --repeat off",
            ));
        }
    }
    if let Some(a) = alert.after_ms {
        if !(MIN_AFTER_MS..=MAX_AFTER_MS).contains(&a) {
            return Err(err("--after", "must be 1s to 24h (or 'off')"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        for (ms, want) in [
            (2_000, "2s"),
            (2_500, "2.5s"),
            (250_000, "4m 10s"),
            (11_100_000, "3h 5m"),
            (187_200_000, "2d 4h"),
        ] {
            assert_eq!(short_duration(ms), want);
        }
    }

    #[test]
    fn event_lists_parse_in_order_without_duplicates() {
        assert_eq!(
            PageEvent::parse_list("recovered, down,down").unwrap(),
            vec![PageEvent::Down, PageEvent::Recovered]
        );
        let e = PageEvent::parse_list("down,flapping").unwrap_err();
        assert_eq!(e.field, "--on");
        assert!(e.message.contains("\"flapping\""), "{e}");
    }

    #[test]
    fn the_new_kinds_are_checked_and_errors_never_show_secrets() {
        let good = [
            AlertKind::Slack {
                webhook: "https://hooks.slack.com/services/T0/B0/XYZ".into(),
            },
            AlertKind::Telegram {
                token: "123456:ABC-def".into(),
                chat_id: "-1001234567890".into(),
                api_url: None,
            },
            AlertKind::Telegram {
                token: "123456:ABC-def".into(),
                chat_id: "@ops_channel".into(),
                api_url: None,
            },
            AlertKind::Pagerduty {
                routing_key: "a".repeat(32),
                severity: "critical".into(),
                api_url: None,
            },
            AlertKind::Opsgenie {
                api_key: "k-1".into(),
                region: "eu".into(),
                priority: Some("P2".into()),
                api_url: None,
            },
            AlertKind::Ntfy {
                url: "https://ntfy.sh/ops".into(),
                token: None,
                priority: Some(4),
                tags: vec!["warning".into()],
            },
            AlertKind::Matrix {
                homeserver: "https://matrix.example.org".into(),
                room: "!abc:example.org".into(),
                token: "syt_x".into(),
            },
            AlertKind::Pushover {
                token: "a".repeat(30),
                user: "u".repeat(30),
                priority: Some(1),
                device: None,
                api_url: None,
            },
            AlertKind::Gotify {
                url: "https://gotify.example.org".into(),
                token: "Axyz".into(),
                priority: Some(8),
            },
        ];
        for k in &good {
            validate(k).unwrap_or_else(|e| panic!("{k:?}: {e}"));
            assert_eq!(k.level(), LEVEL);
        }
        let secret_value = "SECRET-TOKEN-VALUE";
        let bad = [
            (
                AlertKind::Telegram {
                    token: secret_value.into(),
                    chat_id: "1".into(),
                    api_url: None,
                },
                "--token",
            ),
            (
                AlertKind::Telegram {
                    token: "1:a".into(),
                    chat_id: "ops".into(),
                    api_url: None,
                },
                "--chat-id",
            ),
            (
                AlertKind::Pagerduty {
                    routing_key: secret_value.into(),
                    severity: "critical".into(),
                    api_url: None,
                },
                "--routing-key",
            ),
            (
                AlertKind::Pagerduty {
                    routing_key: "a".repeat(32),
                    severity: "fatal".into(),
                    api_url: None,
                },
                "--severity",
            ),
            (
                AlertKind::Opsgenie {
                    api_key: "k".into(),
                    region: "asia".into(),
                    priority: None,
                    api_url: None,
                },
                "--region",
            ),
            (
                AlertKind::Ntfy {
                    url: "https://ntfy.sh/".into(),
                    token: None,
                    priority: None,
                    tags: vec![],
                },
                "--url",
            ),
            (
                AlertKind::Ntfy {
                    url: "https://ntfy.sh/x".into(),
                    token: None,
                    priority: Some(6),
                    tags: vec![],
                },
                "--priority",
            ),
            (
                AlertKind::Matrix {
                    homeserver: "https://m.org".into(),
                    room: "ops".into(),
                    token: "t".into(),
                },
                "--room",
            ),
            (
                AlertKind::Pushover {
                    token: secret_value.into(),
                    user: "u".repeat(30),
                    priority: None,
                    device: None,
                    api_url: None,
                },
                "--token",
            ),
            (
                AlertKind::Gotify {
                    url: "gotify.example.org".into(),
                    token: "t".into(),
                    priority: None,
                },
                "--url",
            ),
        ];
        for (k, field) in &bad {
            let e = validate(k).expect_err(field);
            assert_eq!(e.field, *field, "{e}");
            assert!(!e.to_string().contains(secret_value), "{e}");
        }
    }

    #[test]
    fn masked_kinds_hide_every_secret() {
        let kinds = [
            AlertKind::Slack {
                webhook: "https://hooks.slack.com/services/T0/B0/SECRET1".into(),
            },
            AlertKind::Telegram {
                token: "1:SECRET1".into(),
                chat_id: "5".into(),
                api_url: None,
            },
            AlertKind::Pagerduty {
                routing_key: "SECRET1".into(),
                severity: "info".into(),
                api_url: None,
            },
            AlertKind::Opsgenie {
                api_key: "SECRET1".into(),
                region: "us".into(),
                priority: None,
                api_url: None,
            },
            AlertKind::Ntfy {
                url: "https://ntfy.sh/ops?auth=SECRET1".into(),
                token: Some("SECRET1".into()),
                priority: None,
                tags: vec![],
            },
            AlertKind::Teams {
                webhook:
                    "https://x.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sig=SECRET1"
                        .into(),
            },
            AlertKind::Matrix {
                homeserver: "https://m.org".into(),
                room: "!r:m.org".into(),
                token: "SECRET1".into(),
            },
            AlertKind::Pushover {
                token: "SECRET1".into(),
                user: "SECRET1".into(),
                priority: None,
                device: None,
                api_url: None,
            },
            AlertKind::Gotify {
                url: "https://g.org".into(),
                token: "SECRET1".into(),
                priority: None,
            },
        ];
        for k in &kinds {
            let shown = serde_json::to_string(&k.masked()).unwrap();
            assert!(!shown.contains("SECRET1"), "{shown}");
            assert!(!format!("{k:?}").contains("SECRET1"), "{k:?}");
            // The kind round-trips through its JSON (the log's form).
            let json = serde_json::to_string(k).unwrap();
            assert_eq!(&serde_json::from_str::<AlertKind>(&json).unwrap(), k);
        }
    }
}
