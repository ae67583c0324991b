//! Probers (SPEC §8): one probe is one independent attempt with its own
//! deadline, as a new visitor would make it.
//!
//! Invariants: every probe ends within its timeout with an outcome (never a
//! panic, never a silent pass); the outcome carries a short human reason
//! when it failed; client configuration is built once per node and shared.

mod http;
mod icmp;
mod tcp;
pub mod tls;

pub mod dns;
pub mod resolver;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use qu_raft::model::CheckKind;

/// The result of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub ok: bool,
    pub latency: Duration,
    /// Empty when ok; `HTTP 503`, `connection refused`, `timeout after 10s`, …
    pub reason: String,
}

/// Why the probers could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct ProbeSetupError(String);

impl ProbeSetupError {
    pub fn new(detail: String) -> ProbeSetupError {
        ProbeSetupError(detail)
    }
}

/// Every prober of a node, built once.
pub struct Probers {
    http: http::HttpProber,
    source: Option<IpAddr>,
}

impl Probers {
    /// `source` pins the local address probes leave from (default: chosen by
    /// the routing table).
    pub fn new(source: Option<IpAddr>) -> Result<Probers, ProbeSetupError> {
        Ok(Probers {
            http: http::HttpProber::new(source)
                .map_err(|e| ProbeSetupError(crate::errors::chain(&e)))?,
            source,
        })
    }

    /// Probes `kind` once; the whole probe (DNS included) is bounded by `timeout`.
    pub async fn probe(&self, kind: &CheckKind, timeout: Duration) -> ProbeOutcome {
        let started = Instant::now();
        let attempt = async {
            match kind {
                CheckKind::Http {
                    url,
                    expect,
                    body_match,
                    insecure,
                } => {
                    self.http
                        .probe(url, *expect, body_match.as_deref(), *insecure)
                        .await
                }
                CheckKind::Tcp { target } => tcp::probe(target, self.source).await,
                CheckKind::Icmp { host } => icmp::probe(host, self.source).await,
            }
        };
        let result = tokio::time::timeout(timeout, attempt).await;
        let latency = started.elapsed();
        match result {
            Ok(Ok(())) => ProbeOutcome {
                ok: true,
                latency,
                reason: String::new(),
            },
            Ok(Err(reason)) => ProbeOutcome {
                ok: false,
                latency,
                reason,
            },
            Err(_) => ProbeOutcome {
                ok: false,
                latency,
                reason: format!("timeout after {}", crate::config::duration::format(timeout)),
            },
        }
    }
}

/// Short words for common socket errors.
pub(crate) fn describe_io(e: &std::io::Error) -> String {
    describe_io_at(e, None)
}

/// As `describe_io`, naming the peer that refused or reset (`connection
/// refused by 127.0.0.1:18099`).
pub(crate) fn describe_io_at(e: &std::io::Error, peer: Option<&str>) -> String {
    use std::io::ErrorKind::*;
    let by = peer.map(|p| format!(" by {p}")).unwrap_or_default();
    match e.kind() {
        ConnectionRefused => format!("connection refused{by}"),
        ConnectionReset => format!("connection reset{by}"),
        TimedOut => "connection timed out".into(),
        HostUnreachable => "host unreachable".into(),
        NetworkUnreachable => "network unreachable".into(),
        AddrNotAvailable => "local address not available".into(),
        _ => e.to_string(),
    }
}

/// Resolves `host` (a name or an address) within the probe's deadline.
pub(crate) async fn resolve(host: &str, port: u16) -> Result<Vec<std::net::SocketAddr>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![std::net::SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<_> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| format!("DNS lookup of {bare} failed: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("DNS lookup of {bare} returned no address"));
    }
    Ok(addrs)
}
