//! The records of the replicated state (SPEC §6): peers, checks, alerts and
//! the committed state of every check, with the validation every field
//! passes before a command reaches the log.
//!
//! Invariant: every check and alert stored has passed `validate`; names are
//! unique per kind; a check's alerts all exist.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::kinds::{
    host_of, parse_resolver, DnsCheck, HttpCheck, Starttls, StatusExpect, TlsCheck,
};
use crate::NodeId;

/// A cluster member as the replicated state knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub node_id: NodeId,
    pub advertise: String,
    /// `SHA256:` + unpadded base64 of the SPKI digest.
    pub fingerprint: String,
    /// The certificate, base64 of DER.
    pub cert: String,
}

/// What a check probes. `Http`, `Tls` and `Dns` hold their own records
/// (see `kinds`); the JSON shape is flat either way (`{"type": "http",
/// "url": …}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum CheckKind {
    Http(Box<HttpCheck>),
    Tcp {
        /// HOST:PORT
        target: String,
        /// DNS servers resolving the host (level 3).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        resolvers: Vec<String>,
    },
    Icmp {
        host: String,
    },
    /// Level 3.
    Tls(TlsCheck),
    /// Level 3.
    Dns(DnsCheck),
}

impl CheckKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            CheckKind::Http(_) => "http",
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Icmp { .. } => "icmp",
            CheckKind::Tls(_) => "tls",
            CheckKind::Dns(_) => "dns",
        }
    }

    /// A TCP check of `target` (HOST:PORT).
    pub fn tcp(target: impl Into<String>) -> CheckKind {
        CheckKind::Tcp {
            target: target.into(),
            resolvers: Vec::new(),
        }
    }

    /// A plain HTTP check of `url` (any 2xx is UP).
    pub fn http(url: impl Into<String>) -> CheckKind {
        CheckKind::Http(Box::new(HttpCheck {
            url: url.into(),
            ..HttpCheck::default()
        }))
    }

    /// The target as shown in listings (credentials in a URL masked).
    pub fn target(&self) -> String {
        match self {
            CheckKind::Http(h) => mask_url_userinfo(&h.url),
            CheckKind::Tcp { target, .. } => target.clone(),
            CheckKind::Icmp { host } => host.clone(),
            CheckKind::Tls(t) => t.target.clone(),
            CheckKind::Dns(d) => format!("{} {}", d.hostname, d.record),
        }
    }

    /// What is probed: a change of it restarts the check's state (the
    /// old verdict says nothing about the new target). Borrowed, so the
    /// aggregator compares thousands of checks without allocating.
    pub fn probed(&self) -> [&str; 2] {
        match self {
            CheckKind::Http(h) => [&h.url, ""],
            CheckKind::Tcp { target, .. } => [target, ""],
            CheckKind::Icmp { host } => [host, ""],
            CheckKind::Tls(t) => [&t.target, t.server_name()],
            CheckKind::Dns(d) => [&d.hostname, &d.record],
        }
    }

    /// A copy for listings and logs, secrets masked.
    pub fn masked(&self) -> CheckKind {
        match self {
            CheckKind::Http(h) => CheckKind::Http(Box::new(h.masked())),
            other => other.clone(),
        }
    }

    /// The DNS servers the check names itself (empty: the cluster's).
    pub fn resolvers(&self) -> &[String] {
        match self {
            CheckKind::Http(h) => &h.resolvers,
            CheckKind::Tcp { resolvers, .. } => resolvers,
            CheckKind::Icmp { .. } => &[],
            CheckKind::Tls(t) => &t.resolvers,
            CheckKind::Dns(d) => &d.resolvers,
        }
    }

    /// The lowest log level that can decode this kind with all its fields.
    pub fn level(&self) -> u32 {
        match self {
            CheckKind::Http(h) if h.has_level_3_fields() => 3,
            CheckKind::Tcp { resolvers, .. } if !resolvers.is_empty() => 3,
            CheckKind::Tls(_) | CheckKind::Dns(_) => 3,
            _ => 1,
        }
    }
}

/// Hides `user:password@` in a URL (the rest, query included, stays).
pub fn mask_url_userinfo(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("****");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(_) => raw.to_string(),
        Err(_) => "****".into(),
    }
}

/// A monitored target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub id: String,
    pub name: String,
    #[serde(flatten)]
    pub kind: CheckKind,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// Ids of the alerts this check notifies.
    #[serde(default)]
    pub alerts: Vec<String>,
    /// Paused: probed nowhere, flips never, pages never (`qu check pause`).
    /// Only set by a level-2 command, so older logs never carry it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

/// The checks that are probed and evaluated: all but the paused ones.
pub fn active_checks(checks: &crate::state::Records<String, Check>) -> BTreeMap<String, Check> {
    checks
        .iter()
        .filter(|(_, c)| !c.paused)
        .map(|(k, c)| (k.clone(), c.clone()))
        .collect()
}

/// Where an alert goes. `Debug` prints it masked (see `masked`), so
/// neither it nor the `Alert` and commands that hold it leak secrets into
/// logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum AlertKind {
    Webhook {
        url: String,
        /// Extra request headers (values may be secrets).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        headers: Vec<(String, String)>,
    },
    Discord {
        /// The webhook URL; its token is a secret.
        webhook: String,
    },
    Smtp {
        host: String,
        port: u16,
        from: String,
        to: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        /// Upgrade with STARTTLS (required when true).
        starttls: bool,
        /// Implicit TLS from the first byte (port 465).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        tls: bool,
    },
    // The providers below are level 5 (see `AlertKind::level`); their
    // fields are documented in `crate::alert_kinds`.
    /// A Slack incoming webhook (Block Kit).
    Slack {
        /// The webhook URL; its path is a secret.
        webhook: String,
    },
    /// Telegram's Bot API `sendMessage`.
    Telegram {
        /// The bot token (a secret).
        token: String,
        /// The chat: a number, or `@channelname`.
        chat_id: String,
        /// Instead of https://api.telegram.org (a proxy, a test receiver).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_url: Option<String>,
    },
    /// PagerDuty Events API v2: trigger on DOWN, resolve on RECOVERED.
    Pagerduty {
        /// The integration's routing key (a secret).
        routing_key: String,
        /// critical, error, warning or info.
        severity: String,
        /// Instead of https://events.pagerduty.com.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_url: Option<String>,
    },
    /// Opsgenie Alert API: create on DOWN, close on RECOVERED.
    Opsgenie {
        /// A GenieKey (a secret).
        api_key: String,
        /// us or eu.
        region: String,
        /// P1 … P5.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        priority: Option<String>,
        /// Instead of the region's https://api(.eu).opsgenie.com.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_url: Option<String>,
    },
    /// ntfy (ntfy.sh or self-hosted): a POST to the topic's URL.
    Ntfy {
        /// `https://ntfy.sh/TOPIC`; the topic name is a secret of sorts.
        url: String,
        /// An access token (a secret).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// 1 (min) … 5 (max); unset: ntfy's default (3).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        priority: Option<u8>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tags: Vec<String>,
    },
    /// Microsoft Teams through a Workflows webhook (Adaptive Card).
    Teams {
        /// The workflow's URL; its `sig` is a secret.
        webhook: String,
    },
    /// Matrix: `m.room.message` through the client-server API.
    Matrix {
        /// `https://matrix.example.org`.
        homeserver: String,
        /// A room id (`!abc:example.org`) or alias (`#ops:example.org`).
        room: String,
        /// An access token (a secret).
        token: String,
    },
    /// Pushover's message API.
    Pushover {
        /// The application's API token (a secret).
        token: String,
        /// The user or group key (a secret).
        user: String,
        /// -2 … 2; unset: Pushover's default (0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        priority: Option<i8>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
        /// Instead of https://api.pushover.net.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_url: Option<String>,
    },
    /// Gotify (self-hosted): `POST /message`.
    Gotify {
        /// The server, `https://gotify.example.org`.
        url: String,
        /// An application token (a secret).
        token: String,
        /// 0 … 10; unset: the application's default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        priority: Option<u8>,
    },
}

impl std::fmt::Debug for AlertKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The masked form, as its JSON: every field but the secrets.
        match serde_json::to_string(&self.masked()) {
            Ok(json) => write!(f, "AlertKind {json}"),
            Err(_) => write!(f, "AlertKind {{ {} }}", self.type_name()),
        }
    }
}

impl AlertKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            AlertKind::Webhook { .. } => "webhook",
            AlertKind::Discord { .. } => "discord",
            AlertKind::Smtp { .. } => "smtp",
            AlertKind::Slack { .. } => "slack",
            AlertKind::Telegram { .. } => "telegram",
            AlertKind::Pagerduty { .. } => "pagerduty",
            AlertKind::Opsgenie { .. } => "opsgenie",
            AlertKind::Ntfy { .. } => "ntfy",
            AlertKind::Teams { .. } => "teams",
            AlertKind::Matrix { .. } => "matrix",
            AlertKind::Pushover { .. } => "pushover",
            AlertKind::Gotify { .. } => "gotify",
        }
    }

    /// The lowest log level that decodes this kind.
    pub fn level(&self) -> u32 {
        match self {
            AlertKind::Webhook { .. } | AlertKind::Discord { .. } | AlertKind::Smtp { .. } => 1,
            _ => crate::alert_kinds::LEVEL,
        }
    }

    /// A copy with every secret replaced by `****`, for listings and logs.
    pub fn masked(&self) -> AlertKind {
        const MASK: &str = "****";
        match self {
            AlertKind::Webhook { url, headers } => AlertKind::Webhook {
                url: mask_url_credentials(url),
                headers: headers
                    .iter()
                    .map(|(k, _)| (k.clone(), MASK.to_string()))
                    .collect(),
            },
            AlertKind::Discord { webhook } => AlertKind::Discord {
                webhook: mask_discord(webhook),
            },
            AlertKind::Smtp {
                host,
                port,
                from,
                to,
                user,
                password,
                starttls,
                tls,
            } => AlertKind::Smtp {
                host: host.clone(),
                port: *port,
                from: from.clone(),
                to: to.clone(),
                user: user.clone(),
                password: password.as_ref().map(|_| MASK.to_string()),
                starttls: *starttls,
                tls: *tls,
            },
            AlertKind::Slack { webhook } => AlertKind::Slack {
                webhook: mask_path_tail(webhook),
            },
            AlertKind::Telegram {
                chat_id, api_url, ..
            } => AlertKind::Telegram {
                token: MASK.into(),
                chat_id: chat_id.clone(),
                api_url: api_url.as_deref().map(mask_url_credentials),
            },
            AlertKind::Pagerduty {
                severity, api_url, ..
            } => AlertKind::Pagerduty {
                routing_key: MASK.into(),
                severity: severity.clone(),
                api_url: api_url.as_deref().map(mask_url_credentials),
            },
            AlertKind::Opsgenie {
                region,
                priority,
                api_url,
                ..
            } => AlertKind::Opsgenie {
                api_key: MASK.into(),
                region: region.clone(),
                priority: priority.clone(),
                api_url: api_url.as_deref().map(mask_url_credentials),
            },
            AlertKind::Ntfy {
                url,
                token,
                priority,
                tags,
            } => AlertKind::Ntfy {
                url: mask_url_credentials(url),
                token: token.as_ref().map(|_| MASK.to_string()),
                priority: *priority,
                tags: tags.clone(),
            },
            AlertKind::Teams { webhook } => AlertKind::Teams {
                webhook: mask_url_credentials(webhook),
            },
            AlertKind::Matrix {
                homeserver, room, ..
            } => AlertKind::Matrix {
                homeserver: mask_url_credentials(homeserver),
                room: room.clone(),
                token: MASK.into(),
            },
            AlertKind::Pushover {
                priority,
                device,
                api_url,
                ..
            } => AlertKind::Pushover {
                token: MASK.into(),
                user: MASK.into(),
                priority: *priority,
                device: device.clone(),
                api_url: api_url.as_deref().map(mask_url_credentials),
            },
            AlertKind::Gotify { url, priority, .. } => AlertKind::Gotify {
                url: mask_url_credentials(url),
                token: MASK.into(),
                priority: *priority,
            },
        }
    }
}

/// Keeps the scheme and host of a URL whose path is its secret (Slack's
/// `/services/T…/B…/…`): `https://hooks.slack.com/****`.
fn mask_path_tail(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(u) => format!("{}://{}/****", u.scheme(), u.host_str().unwrap_or("")),
        Err(_) => "****".into(),
    }
}

/// Keeps everything of a Discord webhook URL but its token.
fn mask_discord(url: &str) -> String {
    match url.rsplit_once('/') {
        Some((head, _token)) => format!("{head}/****"),
        None => "****".into(),
    }
}

/// Hides `user:password@` in a URL, and its query string (often a token).
fn mask_url_credentials(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if !u.username().is_empty() || u.password().is_some() {
                let _ = u.set_username("****");
                let _ = u.set_password(None);
            }
            if u.query().is_some() {
                u.set_query(Some("****"));
            }
            u.to_string()
        }
        Err(_) => "****".into(),
    }
}

/// A notification channel.
///
/// `disabled`, `default` and `repeat_ms` are level-2 fields: only a level-2
/// command sets them (`Command::level` counts an `AddAlert` carrying any of
/// them as level 2), so a log older nodes read never carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    pub name: String,
    #[serde(flatten)]
    pub kind: AlertKind,
    /// Sends nothing; its deliveries are recorded as skipped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// Checks added without `--alerts` get this alert.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    /// While a check stays DOWN, page again every this many ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_ms: Option<u64>,
    /// A minijinja template for the page's title (level 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A minijinja template for the page's body (level 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Which events it gets; unset: all (level 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<Vec<crate::alert_kinds::PageEvent>>,
    /// Pages a DOWN only once the check has stayed DOWN this long, and a
    /// RECOVERED only when its DOWN was paged (level 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ms: Option<u64>,
}

impl Alert {
    /// Whether it carries a field only level-2 nodes know.
    pub fn has_level_2_fields(&self) -> bool {
        self.disabled || self.default || self.repeat_ms.is_some()
    }

    /// The lowest log level that decodes it.
    pub fn level(&self) -> u32 {
        if self.kind.level() >= crate::alert_kinds::LEVEL
            || self.title.is_some()
            || self.body.is_some()
            || self.on.is_some()
            || self.after_ms.is_some()
        {
            crate::alert_kinds::LEVEL
        } else if self.has_level_2_fields() {
            2
        } else {
            1
        }
    }

    /// Whether it gets `event` (`--on`).
    pub fn gets(&self, event: crate::alert_kinds::PageEvent) -> bool {
        self.on.as_ref().is_none_or(|on| on.contains(&event))
    }
}

/// The committed state of a check (SPEC §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    #[default]
    Unknown,
    Up,
    Down,
}

/// What one node saw in the round that decided a transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub node: NodeId,
    pub ok: bool,
    /// `HTTP 503`, `connection refused`, `timeout after 10s`, … (empty when ok).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// TLS and HTTPS checks: the leaf certificate's notAfter (ms since the
    /// epoch) this node saw. Older nodes ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_not_after_ms: Option<u64>,
}

/// A committed flip of a check's state (SPEC §9), with the evidence of the
/// round that confirmed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionRecord {
    /// The round (wall-clock aligned index) that confirmed the flip.
    pub round: u64,
    pub from: Health,
    pub to: Health,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Number of voters when the verdict was reached.
    pub voters: usize,
    pub evidence: Vec<Evidence>,
}

impl TransitionRecord {
    /// `2/3 down: connection refused` — how many voters saw the new state,
    /// and the most common reason among those that failed.
    pub fn votes(&self) -> String {
        let agreeing = self
            .evidence
            .iter()
            .filter(|e| e.ok == (self.to == Health::Up))
            .count();
        let word = match self.to {
            Health::Up => "ok",
            Health::Down => "down",
            Health::Unknown => "unknown",
        };
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for e in self
            .evidence
            .iter()
            .filter(|e| !e.ok && !e.reason.is_empty())
        {
            *reasons.entry(e.reason.as_str()).or_default() += 1;
        }
        let top = reasons.iter().max_by_key(|(_, n)| **n).map(|(r, _)| *r);
        match (self.to, top) {
            (Health::Down, Some(r)) => format!("{agreeing}/{} {word}: {r}", self.voters),
            _ => format!("{agreeing}/{} {word}", self.voters),
        }
    }
}

/// A check's committed state and when it began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CheckState {
    pub health: Health,
    /// Milliseconds since the Unix epoch of the last committed flip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    /// How many flips were committed for this check.
    #[serde(default)]
    pub flips: u64,
    /// The last committed flip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<TransitionRecord>,
    /// The state the check's alerts were last told about (or would have
    /// been, had they been enabled): unchanged by flips inside a silence,
    /// so its end can page the difference once. None: never told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified: Option<Health>,
    /// Repeats sent in the current DOWN spell, per alert id (`--repeat`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub repeats: BTreeMap<String, u64>,
    /// Why the state restarted at unknown (an edit of the target), shown
    /// by `qu check show` until the next flip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        })
    }
}

/// Where a delivery stands (SPEC §10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered {
        at_ms: u64,
        attempts: u32,
    },
    Failed {
        at_ms: u64,
        attempts: u32,
        reason: String,
    },
    /// Not sent, by rule: the alert was disabled (level 2).
    Skipped {
        at_ms: u64,
        reason: String,
    },
    /// Not sent: the check was silenced (level 2). `silence` is the id of
    /// the silence or maintenance window.
    Silenced {
        at_ms: u64,
        silence: String,
    },
}

impl DeliveryStatus {
    /// When it was settled (None while pending).
    pub fn settled_at_ms(&self) -> Option<u64> {
        match self {
            DeliveryStatus::Pending => None,
            DeliveryStatus::Delivered { at_ms, .. }
            | DeliveryStatus::Failed { at_ms, .. }
            | DeliveryStatus::Skipped { at_ms, .. }
            | DeliveryStatus::Silenced { at_ms, .. } => Some(*at_ms),
        }
    }
}

/// One page to send: a committed transition × one alert of its check.
/// Everything needed to render it is kept here, so it can be sent after
/// the check or the leader is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// `<check id>-<flip number>-<alert id>`: unique, and the idempotency
    /// key receivers see (SMTP Message-ID, webhook `delivery_id`).
    pub id: String,
    pub check_id: String,
    pub check_name: String,
    pub check_type: String,
    pub target: String,
    pub alert_id: String,
    /// The alert's name when the page was created, so the log still names
    /// an alert removed since (empty in records of older releases).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alert_name: String,
    pub transition: TransitionRecord,
    pub created_ms: u64,
    #[serde(flatten)]
    pub status: DeliveryStatus,
    /// Why a page that is not a flip's own was made: `repeat 2` (`--repeat`)
    /// or `silence ended` (the state changed while silenced). Level 2.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// A DOWN to an alert with `--after`: not sent before this time (ms
    /// since the epoch), and only once released (level 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before_ms: Option<u64>,
    /// The delay ran out with the check still DOWN (`ReleaseDelivery`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub released: bool,
    /// A RECOVERED: when the outage it ends began (level 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_since_ms: Option<u64>,
}

impl Delivery {
    pub fn is_pending(&self) -> bool {
        self.status == DeliveryStatus::Pending
    }

    /// A delayed page not yet released: the leader waits out its delay,
    /// then commits the release before sending.
    pub fn awaits_release(&self) -> bool {
        self.not_before_ms.is_some() && !self.released
    }
}

/// Whether a flip pages: up→down and unknown→down (DOWN), down→up (RECOVERED).
pub fn pages(from: Health, to: Health) -> bool {
    matches!((from, to), (_, Health::Down) | (Health::Down, Health::Up)) && from != to
}

/// A field that failed validation, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &str, message: impl Into<String>) -> ValidationError {
        ValidationError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// Names: 1–64 characters of letters, digits, `-`, `_`, `.`.
pub fn validate_name(field: &str, name: &str) -> Result<(), ValidationError> {
    if name.is_empty() || name.len() > 64 {
        return Err(ValidationError::new(field, "must be 1 to 64 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ValidationError::new(
            field,
            format!("{name:?} may only contain letters, digits, '-', '_' and '.'"),
        ));
    }
    Ok(())
}

/// The stricter rules for *new* input, checked where a request enters
/// (never in `apply`, so entries older releases accepted replay alike):
/// an http(s) URL must be written in full (`http:/host` is refused though
/// the URL parser would mend it).
pub fn admit_url(field: &str, raw: &str) -> Result<(), ValidationError> {
    let full = ["http://", "https://"]
        .iter()
        .any(|p| raw.len() >= p.len() && raw[..p.len()].eq_ignore_ascii_case(p));
    if !full {
        return Err(ValidationError::new(
            field,
            "the URL must start with http:// or https:// followed by the host, e.g. https://example.com/health",
        ));
    }
    Ok(())
}

/// Never echoes the URL: webhook URLs carry tokens in their path or
/// query, and check URLs may carry `user:password@`.
pub(crate) fn validate_http_url(field: &str, raw: &str) -> Result<(), ValidationError> {
    let u = url::Url::parse(raw).map_err(|e| {
        ValidationError::new(
            field,
            format!(
                "the URL is not valid ({e}); give a full URL such as https://example.com/health"
            ),
        )
    })?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(ValidationError::new(
            field,
            format!(
                "the URL's scheme is {:?}: it must start with http:// or https://",
                u.scheme()
            ),
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(ValidationError::new(field, "the URL has no host"));
    }
    Ok(())
}

/// `HOST:PORT`, `[V6]:PORT`; port 1–65535.
pub fn validate_host_port(field: &str, raw: &str) -> Result<(), ValidationError> {
    let bad = |why: &str| {
        ValidationError::new(
            field,
            format!("{raw:?} {why}: use HOST:PORT, e.g. db.internal:5432 or [2001:db8::1]:443"),
        )
    };
    if let Some((scheme, rest)) = raw.split_once("://") {
        return Err(ValidationError::new(
            field,
            format!("{raw:?} is a URL, but a TCP target is HOST:PORT: drop the {scheme}:// and give e.g. {}", rest.trim_end_matches('/')),
        ));
    }
    let (host, port) = raw.rsplit_once(':').ok_or_else(|| bad("has no port"))?;
    if host.is_empty() {
        return Err(bad("has no host"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(bad("is an IPv6 address without brackets"));
    }
    validate_host("", host.trim_start_matches('[').trim_end_matches(']'))
        .map_err(|_| bad("has an invalid host"))?;
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(bad("has no valid port (1-65535)")),
    }
}

/// A host name or IP address.
pub fn validate_host(field: &str, host: &str) -> Result<(), ValidationError> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("{host:?} is not a host name or IP address"),
        ))
    }
}

/// An address as RFC 5322 allows it (parsed by `email_address`, as lettre
/// does), without display text or domain literals; `ops@localhost` is fine
/// for a local MTA, an empty local part is not.
fn validate_email(field: &str, addr: &str) -> Result<(), ValidationError> {
    let options = email_address::Options::default()
        .without_display_text()
        .without_domain_literal();
    let ok = email_address::EmailAddress::parse_with_options(addr, options).is_ok()
        && !addr.contains(|c: char| c.is_whitespace() || c.is_control() || c == ',');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("{addr:?} is not an email address like ops@example.com"),
        ))
    }
}

fn no_control_chars(field: &str, v: &str) -> Result<(), ValidationError> {
    if v.chars().any(char::is_control) {
        Err(ValidationError::new(
            field,
            "must not contain control characters (CR, LF, …)",
        ))
    } else {
        Ok(())
    }
}

/// Shortest and longest probe interval accepted.
pub const MIN_INTERVAL_MS: u64 = 1_000;
pub const MAX_INTERVAL_MS: u64 = 24 * 3_600_000;
/// Shortest probe timeout accepted.
pub const MIN_TIMEOUT_MS: u64 = 100;
/// The timeout when none is given.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// The timeout a check gets when none is given: 10 s, or half the
/// interval when that is shorter (so `--interval 5s` alone works).
pub fn default_timeout_ms(interval_ms: u64) -> u64 {
    DEFAULT_TIMEOUT_MS.min(interval_ms / 2).max(MIN_TIMEOUT_MS)
}

impl Check {
    /// The lowest log level that can decode this check with all its fields.
    pub fn level(&self) -> u32 {
        let kind = self.kind.level();
        if self.paused {
            kind.max(2)
        } else {
            kind
        }
    }

    /// Validates the check on its own (uniqueness is checked by the state).
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_name("name", &self.name)?;
        match &self.kind {
            CheckKind::Http(h) => {
                validate_http_url("url", &h.url)?;
                h.validate()?;
            }
            CheckKind::Tcp { target, resolvers } => {
                validate_host_port("target", target)?;
                crate::kinds::validate_resolvers(resolvers)?;
            }
            CheckKind::Icmp { host } => validate_host("host", host)?,
            CheckKind::Tls(t) => t.validate()?,
            CheckKind::Dns(d) => d.validate()?,
        }
        if let CheckKind::Http(h) = &self.kind {
            if h.max_latency_ms.is_some_and(|max| max >= self.timeout_ms) {
                return Err(ValidationError::new(
                    "--max-latency",
                    "must be shorter than --timeout (a slower answer is already a timeout)",
                ));
            }
        }
        if self.interval_ms < MIN_INTERVAL_MS || self.interval_ms > MAX_INTERVAL_MS {
            return Err(ValidationError::new(
                "--interval",
                "must be between 1s and 24h",
            ));
        }
        if self.timeout_ms < MIN_TIMEOUT_MS {
            return Err(ValidationError::new("--timeout", "must be at least 100ms"));
        }
        if self.timeout_ms >= self.interval_ms {
            return Err(ValidationError::new(
                "--timeout",
                "must be shorter than --interval (a probe must finish before the next round starts)",
            ));
        }
        Ok(())
    }
}

/// Shortest `--repeat` accepted.
pub const MIN_REPEAT_MS: u64 = 1_000;

impl Alert {
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_name("name", &self.name)?;
        if let Some(r) = self.repeat_ms {
            if r < MIN_REPEAT_MS {
                return Err(ValidationError::new(
                    "--repeat",
                    "must be at least 1s (or 'off')",
                ));
            }
        }
        match &self.kind {
            AlertKind::Webhook { url, headers } => {
                validate_http_url("--url", url)?;
                for (k, v) in headers {
                    let name_ok = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                    if !name_ok {
                        return Err(ValidationError::new(
                            "--header",
                            format!("{k:?} is not a header name; use 'Name: value'"),
                        ));
                    }
                    no_control_chars("--header", v)?;
                }
            }
            AlertKind::Discord { webhook } => {
                validate_http_url("--webhook", webhook)?;
            }
            AlertKind::Smtp {
                host,
                port,
                from,
                to,
                user,
                password,
                starttls,
                tls,
            } => {
                validate_host("--host", host)?;
                if *port == 0 {
                    return Err(ValidationError::new("--port", "must be 1-65535"));
                }
                validate_email("--from", from)?;
                if to.is_empty() {
                    return Err(ValidationError::new("--to", "needs at least one address"));
                }
                for addr in to {
                    validate_email("--to", addr)?;
                }
                if *starttls && *tls {
                    return Err(ValidationError::new(
                        "--tls",
                        "implicit TLS (--tls, usually port 465) and --starttls=true exclude each other; pick one",
                    ));
                }
                if user.is_some() != password.is_some() {
                    return Err(ValidationError::new(
                        "--password",
                        "--user and --password go together",
                    ));
                }
                if let Some(u) = user {
                    no_control_chars("--user", u)?;
                }
            }
            other => crate::alert_kinds::validate(other)?,
        }
        crate::alert_kinds::validate_routing(self)
    }
}

/// Looks a record up by id or, failing that, by name.
/// Whether `name` has the shape of a generated id (8 lowercase hex
/// digits). New names of that shape are refused at the proposal gate, so a
/// reference can never mean one thing's id and another's name.
pub fn looks_like_id(name: &str) -> bool {
    name.len() == 8 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Refuses a new check or alert name that looks like an id.
pub fn refuse_id_like_name(field: &str, what: &str, name: &str) -> Result<(), ValidationError> {
    if looks_like_id(name) {
        return Err(ValidationError::new(
            field,
            format!("{name:?} looks like an id (8 hex digits, as qu gives every {what}), so it could name another {what}; choose a name that does not, e.g. {what}-{name}"),
        ));
    }
    Ok(())
}

/// Things by id, as the lookups by id or name read them: a `BTreeMap`,
/// the state's `Records`, or either behind `Shared`.
pub trait ById {
    type Item;
    fn by_id(&self, id: &str) -> Option<&Self::Item>;
    /// Every thing, in id order.
    fn each(&self) -> impl Iterator<Item = &Self::Item>;
}

impl<T> ById for BTreeMap<String, T> {
    type Item = T;
    fn by_id(&self, id: &str) -> Option<&T> {
        self.get(id)
    }
    fn each(&self) -> impl Iterator<Item = &T> {
        self.values()
    }
}

impl<T: Clone> ById for crate::state::Records<String, T> {
    type Item = T;
    fn by_id(&self, id: &str) -> Option<&T> {
        self.get(id)
    }
    fn each(&self) -> impl Iterator<Item = &T> {
        self.values()
    }
}

impl<M: ById> ById for crate::state::Shared<M> {
    type Item = M::Item;
    fn by_id(&self, id: &str) -> Option<&M::Item> {
        (**self).by_id(id)
    }
    fn each(&self) -> impl Iterator<Item = &M::Item> {
        (**self).each()
    }
}

/// The one thing `key` names, by id or by name — refused when it names
/// none, or one thing by id and another by name (possible with names made
/// before ids were reserved). `what` is "check" or "alert".
pub fn lookup_by_id_or_name<'a, M: ById>(
    map: &'a M,
    key: &str,
    what: &str,
    name_of: impl Fn(&M::Item) -> &str,
) -> Result<&'a M::Item, ValidationError> {
    let by_id = map.by_id(key);
    let by_name = map.each().find(|v| name_of(v) == key);
    match (by_id, by_name) {
        (Some(a), Some(b)) if !std::ptr::eq(a, b) => Err(ValidationError::new(
            what,
            format!(
                "{key:?} is the id of {what} {:?} and also the name of another {what}; say which by giving the other one's id (see 'qu {what} list')",
                name_of(a)
            ),
        )),
        (Some(v), _) | (None, Some(v)) => Ok(v),
        (None, None) => Err(ValidationError::new(
            what,
            format!("no {what} with id or name {key:?} (see 'qu {what} list')"),
        )),
    }
}

/// The thing `key` names, by id first (what `apply` uses: deterministic
/// and as permissive as every release before; proposals are checked with
/// `lookup_by_id_or_name` first).
pub fn find_by_id_or_name<'a, M: ById>(
    map: &'a M,
    key: &str,
    name_of: impl Fn(&M::Item) -> &str,
) -> Option<&'a M::Item> {
    map.by_id(key)
        .or_else(|| map.each().find(|v| name_of(v) == key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_reserved_and_ambiguous_references_refused() {
        assert!(looks_like_id("d31df9c2"));
        assert!(!looks_like_id("d31df9c"));
        assert!(!looks_like_id("D31DF9C2"));
        assert!(!looks_like_id("db-d31df9"));
        assert!(refuse_id_like_name("name", "check", "d31df9c2").is_err());
        assert!(refuse_id_like_name("name", "check", "homepage").is_ok());
        let map: BTreeMap<String, (String, u8)> = [
            ("d31df9c2".to_string(), ("db".to_string(), 1)),
            ("0000aaaa".to_string(), ("d31df9c2".to_string(), 2)),
        ]
        .into();
        fn name(v: &(String, u8)) -> &str {
            v.0.as_str()
        }
        let e = lookup_by_id_or_name(&map, "d31df9c2", "check", name).unwrap_err();
        assert!(e.message.contains("id of check \"db\""), "{e}");
        assert_eq!(
            lookup_by_id_or_name(&map, "db", "check", name).unwrap().1,
            1
        );
        assert_eq!(
            lookup_by_id_or_name(&map, "0000aaaa", "check", name)
                .unwrap()
                .1,
            2
        );
        assert!(lookup_by_id_or_name(&map, "nope", "check", name)
            .unwrap_err()
            .message
            .contains("no check with id or name"));
    }

    fn http(url: &str, interval: u64, timeout: u64) -> Check {
        Check {
            id: "c1".into(),
            name: "homepage".into(),
            kind: CheckKind::Http(Box::new(HttpCheck {
                url: url.into(),
                expect: None,
                body_match: None,
                insecure: false,
                ..HttpCheck::default()
            })),
            interval_ms: interval,
            timeout_ms: timeout,
            alerts: vec![],
            paused: false,
        }
    }

    #[test]
    fn the_default_timeout_fits_the_interval() {
        assert_eq!(default_timeout_ms(30_000), 10_000);
        assert_eq!(default_timeout_ms(5_000), 2_500);
        assert_eq!(default_timeout_ms(1_000), 500);
        for interval in [
            MIN_INTERVAL_MS,
            1_500,
            5_000,
            20_000,
            60_000,
            MAX_INTERVAL_MS,
        ] {
            let c = http(
                "https://example.com/",
                interval,
                default_timeout_ms(interval),
            );
            assert!(c.validate().is_ok(), "interval {interval}");
        }
    }

    #[test]
    fn check_validation_names_the_field() {
        assert!(http("https://example.com/", 30_000, 10_000)
            .validate()
            .is_ok());
        assert_eq!(
            http("example.com", 30_000, 10_000)
                .validate()
                .unwrap_err()
                .field,
            "url"
        );
        assert_eq!(
            http("ftp://x/", 30_000, 10_000)
                .validate()
                .unwrap_err()
                .field,
            "url"
        );
        assert_eq!(
            http("https://example.com/", 10_000, 10_000)
                .validate()
                .unwrap_err()
                .field,
            "--timeout"
        );
        assert_eq!(
            http("https://example.com/", 500, 100)
                .validate()
                .unwrap_err()
                .field,
            "--interval"
        );
        let mut bad_name = http("https://example.com/", 30_000, 10_000);
        bad_name.name = "has space".into();
        assert_eq!(bad_name.validate().unwrap_err().field, "name");
    }

    #[test]
    fn tcp_and_icmp_targets() {
        for ok in ["db.internal:5432", "127.0.0.1:80", "[::1]:443"] {
            assert!(validate_host_port("target", ok).is_ok(), "{ok}");
        }
        for bad in ["db.internal", "db:0", "::1:80", ":80", "a b:1"] {
            assert!(validate_host_port("target", bad).is_err(), "{bad}");
        }
        assert!(validate_host("host", "10.0.0.1").is_ok());
        assert!(validate_host("host", "::1").is_ok());
        assert!(validate_host("host", "bad_host!").is_err());
    }

    #[test]
    fn masking_hides_every_secret() {
        let smtp = AlertKind::Smtp {
            host: "smtp.example.com".into(),
            port: 587,
            from: "a@example.com".into(),
            to: vec!["b@example.com".into()],
            user: Some("bot".into()),
            password: Some("hunter2".into()),
            starttls: true,
            tls: false,
        };
        let shown = serde_json::to_string(&smtp.masked()).unwrap();
        assert!(!shown.contains("hunter2"), "{shown}");
        let discord = AlertKind::Discord {
            webhook: "https://discord.com/api/webhooks/123/SECRETTOKEN".into(),
        };
        let shown = serde_json::to_string(&discord.masked()).unwrap();
        assert!(
            !shown.contains("SECRETTOKEN") && shown.contains("/123/"),
            "{shown}"
        );
        let hook = AlertKind::Webhook {
            url: "https://user:pw@hooks.example.com/x?token=abc".into(),
            headers: vec![("Authorization".into(), "Bearer zzz".into())],
        };
        let shown = serde_json::to_string(&hook.masked()).unwrap();
        assert!(
            !shown.contains("zzz") && !shown.contains("abc") && !shown.contains(":pw@"),
            "{shown}"
        );
    }

    #[test]
    fn debug_output_and_validation_errors_never_show_secrets() {
        let alert = Alert {
            id: "a1".into(),
            name: "oncall".into(),
            kind: AlertKind::Discord {
                webhook: "https://discord.com/api/webhooks/123/SECRETTOKEN".into(),
            },
            disabled: false,
            default: false,
            repeat_ms: None,
            title: None,
            body: None,
            on: None,
            after_ms: None,
        };
        let smtp = AlertKind::Smtp {
            host: "smtp.example.com".into(),
            port: 587,
            from: "a@example.com".into(),
            to: vec!["b@example.com".into()],
            user: Some("bot".into()),
            password: Some("hunter2".into()),
            starttls: true,
            tls: false,
        };
        let cmd: crate::state::Command = crate::state::ConfigCommand::AddAlert {
            alert: alert.clone(),
        }
        .into();
        for shown in [
            format!("{alert:?}"),
            format!("{cmd:?}"),
            format!("{smtp:?}"),
            format!("{:#?}", crate::state::Request::new(cmd.clone())),
        ] {
            assert!(
                !shown.contains("SECRETTOKEN") && !shown.contains("hunter2"),
                "{shown}"
            );
            assert!(shown.contains("****"), "{shown}");
        }
        for bad in [
            "ftp://discord.com/api/webhooks/123/SECRETTOKEN",
            "discord.com/api/webhooks/123/SECRETTOKEN",
            "https://[::1/api/webhooks/123/SECRETTOKEN",
        ] {
            let mut a = alert.clone();
            a.kind = AlertKind::Discord {
                webhook: bad.into(),
            };
            let e = a.validate().unwrap_err().to_string();
            assert!(!e.contains("SECRETTOKEN"), "{e}");
            assert!(e.contains("--webhook"), "{e}");
        }
    }

    #[test]
    fn smtp_validation() {
        let mut a = Alert {
            id: "a1".into(),
            name: "ops".into(),
            kind: AlertKind::Smtp {
                host: "smtp.example.com".into(),
                port: 587,
                from: "monitor@example.com".into(),
                to: vec!["ops@example.com".into()],
                user: None,
                password: None,
                starttls: true,
                tls: false,
            },
            disabled: false,
            default: false,
            repeat_ms: None,
            title: None,
            body: None,
            on: None,
            after_ms: None,
        };
        assert!(a.validate().is_ok());
        if let AlertKind::Smtp { to, .. } = &mut a.kind {
            to[0] = "ops@example.com\r\nBcc: x@evil.com".into();
        }
        assert_eq!(a.validate().unwrap_err().field, "--to");
        for (addr, valid) in [
            ("ops@example.com", true),
            ("root@localhost", true),
            ("@localhost", false),
            ("@example.com", false),
            ("ops@", false),
            ("Ops <ops@example.com>", false),
            ("a b@example.com", false),
            ("ops@example.com,b@example.com", false),
        ] {
            if let AlertKind::Smtp { to, .. } = &mut a.kind {
                to[0] = addr.into();
            }
            assert_eq!(a.validate().is_ok(), valid, "{addr}");
        }
    }
}
