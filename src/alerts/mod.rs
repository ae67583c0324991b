//! Alert providers (SPEC §10) behind one trait, and the messages they send.
//!
//! Invariants: every send has deadlines (connect and exchange); a provider
//! classifies its failure as retryable (network, 5xx, 429 with its wait) or
//! permanent (4xx, SMTP 5xx) so the dispatcher neither gives up on a blip
//! nor hammers a receiver that said no; secrets never appear in errors.

pub mod discord;
pub mod message;
pub mod smtp;
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
    }
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

/// Classifies an HTTP answer: 2xx ok, 429 and 5xx retry, other 4xx permanent.
pub(crate) fn classify_status(
    status: u16,
    body: &str,
    retry_after: Option<Duration>,
) -> Result<(), SendError> {
    let detail = body.chars().take(300).collect::<String>();
    match status {
        200..=299 => Ok(()),
        429 => Err(SendError::Retry {
            reason: format!("HTTP 429 (rate limited) {detail}")
                .trim()
                .to_string(),
            after: retry_after,
        }),
        500..=599 => Err(SendError::Retry {
            reason: format!("HTTP {status} {detail}").trim().to_string(),
            after: retry_after,
        }),
        _ => Err(SendError::Permanent(
            format!("HTTP {status} {detail}").trim().to_string(),
        )),
    }
}

/// A network failure of an HTTP send: always worth retrying.
pub(crate) fn network_error(e: reqwest::Error) -> SendError {
    let what = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    // Without the URL: it may carry a token.
    SendError::Retry {
        reason: format!("{what}: {}", e.without_url()),
        after: None,
    }
}

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
