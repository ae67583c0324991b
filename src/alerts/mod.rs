//! Alert providers (SPEC §10) behind one trait, and the messages they send.
//!
//! Invariants: every send has deadlines (connect and exchange); a provider
//! classifies its failure as retryable (network, 5xx, 429 with its wait) or
//! permanent (4xx, SMTP 5xx) so the dispatcher neither gives up on a blip
//! nor hammers a receiver that said no; secrets never appear in errors.

pub mod discord;
pub mod gotify;
pub mod maintenance;
pub mod matrix;
pub mod message;
pub mod ntfy;
pub mod opsgenie;
pub mod pagerduty;
pub mod pushover;
pub mod slack;
pub mod smtp;
pub mod teams;
pub mod telegram;
pub mod template;
pub mod webhook;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use message::Message;
use qu_raft::model::AlertKind;

/// Deadline of one HTTP send or SMTP exchange.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again, no sooner than `after` when given.
    #[error("{reason}")]
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// The receiver refused for good.
    #[error("{0}")]
    Permanent(String),
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// One way of sending a page.
pub trait Provider: Send + Sync {
    fn send<'a>(&'a self, msg: &'a Message) -> SendFuture<'a>;
}

/// The provider for an alert's configuration; `http` is the node's shared
/// HTTP client.
pub fn provider_for(kind: &AlertKind, http: &reqwest::Client) -> Box<dyn Provider> {
    match kind {
        AlertKind::Webhook { url, headers } => Box::new(webhook::Webhook {
            client: http.clone(),
            url: url.clone(),
            headers: headers.clone(),
        }),
        AlertKind::Discord { webhook } => Box::new(discord::Discord {
            client: http.clone(),
            url: webhook.clone(),
        }),
        AlertKind::Smtp { .. } => Box::new(smtp::Smtp {
            config: kind.clone(),
        }),
        AlertKind::Slack { webhook } => Box::new(slack::Slack {
            client: http.clone(),
            url: webhook.clone(),
        }),
        AlertKind::Telegram {
            token,
            chat_id,
            api_url,
        } => Box::new(telegram::Telegram {
            client: http.clone(),
            api: api_url.clone().unwrap_or_else(|| telegram::API.into()),
            token: token.clone(),
            chat_id: chat_id.clone(),
        }),
        AlertKind::Pagerduty {
            routing_key,
            severity,
            api_url,
        } => Box::new(pagerduty::Pagerduty {
            client: http.clone(),
            api: api_url.clone().unwrap_or_else(|| pagerduty::API.into()),
            routing_key: routing_key.clone(),
            severity: severity.clone(),
        }),
        AlertKind::Opsgenie {
            api_key,
            region,
            priority,
            api_url,
        } => Box::new(opsgenie::Opsgenie {
            client: http.clone(),
            api: api_url
                .clone()
                .unwrap_or_else(|| opsgenie::api_for(region).into()),
            api_key: api_key.clone(),
            priority: priority.clone(),
        }),
        AlertKind::Ntfy {
            url,
            token,
            priority,
            tags,
        } => Box::new(ntfy::Ntfy {
            client: http.clone(),
            url: url.clone(),
            token: token.clone(),
            priority: *priority,
            tags: tags.clone(),
        }),
        AlertKind::Teams { webhook } => Box::new(teams::Teams {
            client: http.clone(),
            url: webhook.clone(),
        }),
        AlertKind::Matrix {
            homeserver,
            room,
            token,
        } => Box::new(matrix::Matrix {
            client: http.clone(),
            homeserver: homeserver.clone(),
            room: room.clone(),
            token: token.clone(),
        }),
        AlertKind::Pushover {
            token,
            user,
            priority,
            device,
            api_url,
        } => Box::new(pushover::Pushover {
            client: http.clone(),
            api: api_url.clone().unwrap_or_else(|| pushover::API.into()),
            token: token.clone(),
            user: user.clone(),
            priority: *priority,
            device: device.clone(),
        }),
        AlertKind::Gotify {
            url,
            token,
            priority,
        } => Box::new(gotify::Gotify {
            client: http.clone(),
            url: url.clone(),
            token: token.clone(),
            priority: *priority,
        }),
    }
}

/// Sends `req` and classifies the answer as `classify_status` does, with
/// the receiver's own error message (`detail` finds it in a JSON body;
/// else the body's text) and its retry hint (`wait`, from the JSON body;
/// else `Retry-After`). Returns the JSON body of a success (or Null).
pub(crate) async fn exchange(
    req: reqwest::RequestBuilder,
    label: &str,
    detail: fn(&serde_json::Value) -> Option<String>,
    wait: fn(&serde_json::Value) -> Option<Duration>,
) -> Result<serde_json::Value, SendError> {
    let resp = req.send().await.map_err(network_error)?;
    let status = resp.status().as_u16();
    let header_wait = retry_after_header(resp.headers());
    let text = resp.text().await.unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let message = detail(&parsed).unwrap_or(text);
    classify_status(label, status, &message, wait(&parsed).or(header_wait))?;
    Ok(parsed)
}

/// No retry hint in the body.
pub(crate) fn no_wait(_: &serde_json::Value) -> Option<Duration> {
    None
}

/// Seconds as a JSON number, when it is a sane one.
pub(crate) fn seconds(v: &serde_json::Value) -> Option<Duration> {
    v.as_f64()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 86_400.0)
        .map(Duration::from_secs_f64)
}

/// The shared HTTP client for webhooks and Discord (pooled; targets are
/// alert receivers, not monitored sites).
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .connect_timeout(SEND_TIMEOUT)
        .user_agent(concat!(
            "qu/",
            env!("CARGO_PKG_VERSION"),
            " (uptime monitor)"
        ))
        .build()
}

/// Classifies an HTTP answer — 2xx ok, 429 and 5xx retry (after
/// `retry_after` when the receiver said), anything else permanent — for
/// every HTTP provider. `label` names the service in the reason (`HTTP`,
/// `Discord HTTP`); `detail` is the receiver's own message.
pub(crate) fn classify_status(
    label: &str,
    status: u16,
    detail: &str,
    retry_after: Option<Duration>,
) -> Result<(), SendError> {
    // The receiver's own words, as a short quoted excerpt apart from the
    // status (not glued on: `HTTP 404 ok` reads as if 404 were fine).
    let excerpt: String = detail.split_whitespace().collect::<Vec<_>>().join(" ");
    let excerpt = if excerpt.chars().count() > 120 {
        format!("{}…", excerpt.chars().take(120).collect::<String>())
    } else {
        excerpt
    };
    let reason = |what: String| {
        if excerpt.is_empty() {
            what
        } else {
            format!("{what} (the receiver said: {excerpt:?})")
        }
    };
    match status {
        200..=299 => Ok(()),
        429 => Err(SendError::Retry {
            reason: reason(format!("{label} 429 (rate limited)")),
            after: retry_after,
        }),
        500..=599 => Err(SendError::Retry {
            reason: reason(format!("{label} {status}")),
            after: retry_after,
        }),
        _ => Err(SendError::Permanent(reason(format!("{label} {status}")))),
    }
}

/// A network failure of an HTTP send: always worth retrying. The reason
/// names the host (never the URL: its path or query may carry a token) and
/// keeps every cause underneath (`dns error: …`, `Connection refused`).
pub(crate) fn network_error(e: reqwest::Error) -> SendError {
    let host = e.url().and_then(|u| {
        u.host_str()
            .map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0)))
    });
    let to = host.map(|h| format!(" to {h}")).unwrap_or_default();
    let what = if e.is_timeout() {
        format!("request{to} timed out")
    } else if e.is_connect() {
        format!("cannot connect{to}")
    } else {
        format!("request{to} failed")
    };
    SendError::Retry {
        reason: format!("{what}: {}", error_chain(&e.without_url())),
        after: None,
    }
}

pub use crate::errors::chain as error_chain;

/// `Retry-After: <seconds>`.
pub(crate) fn retry_after_header(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    h.get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}
