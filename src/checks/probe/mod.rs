//! Probers (SPEC §8): one probe is one independent attempt with its own
//! deadline, as a new visitor would make it.
//!
//! Invariants: every probe ends within its timeout with an outcome (never a
//! panic, never a silent pass); the outcome carries a short human reason
//! when it failed; client configuration is built once per node and shared.

pub mod dns;
mod http;
mod icmp;
pub mod resolver;
mod tcp;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use qu_raft::model::{host_of, CheckKind};
use resolver::Resolvers;

/// The result of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub ok: bool,
    pub latency: Duration,
    /// Empty when ok; `HTTP 503`, `connection refused`, `timeout after 10s`, …
    pub reason: String,
    /// TLS and HTTPS: the leaf certificate's notAfter (ms since the epoch),
    /// whenever one was seen (also when the probe failed).
    pub cert_not_after_ms: Option<u64>,
}

/// Why the probers could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProbeSetupError {
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error(transparent)]
    Tls(#[from] tls::TlsSetupError),
}

impl ProbeSetupError {
    pub fn new(detail: String) -> ProbeSetupError {
        ProbeSetupError::Http(detail)
    }
}

/// What one kind's attempt returns before the deadline is applied.
struct Attempt {
    result: Result<(), String>,
    cert_not_after_ms: Option<u64>,
}

impl From<Result<(), String>> for Attempt {
    fn from(result: Result<(), String>) -> Attempt {
        Attempt {
            result,
            cert_not_after_ms: None,
        }
    }
}

/// Every prober of a node, built once.
pub struct Probers {
    http: http::HttpProber,
    tls: tls::TlsProber,
    resolvers: Arc<Resolvers>,
    /// The cluster's DNS servers (`qu cluster resolvers`), used by checks
    /// that name none; written by the scheduler loop as the state changes.
    cluster_servers: RwLock<Arc<Vec<SocketAddr>>>,
    source: Option<IpAddr>,
}

impl Probers {
    /// `source` pins the local address probes leave from (default: chosen by
    /// the routing table).
    pub fn new(source: Option<IpAddr>) -> Result<Probers, ProbeSetupError> {
        let resolvers = Arc::new(Resolvers::new());
        Ok(Probers {
            http: http::HttpProber::new(source, resolvers.clone())
                .map_err(|e| ProbeSetupError::Http(crate::errors::chain(&e)))?,
            tls: tls::TlsProber::new()?,
            resolvers,
            cluster_servers: RwLock::new(Arc::new(Vec::new())),
            source,
        })
    }

    /// Follows the replicated `resolvers` (already validated; an entry that
    /// does not parse is skipped).
    pub fn set_cluster_resolvers(&self, servers: &[String]) {
        let parsed: Vec<SocketAddr> = servers
            .iter()
            .filter_map(|s| qu_raft::model::parse_resolver(s).ok())
            .collect();
        if let Ok(mut w) = self.cluster_servers.write() {
            if **w != parsed {
                *w = Arc::new(parsed);
            }
        }
    }

    /// The DNS servers for `kind`: its own, else the cluster's (empty: the
    /// system's).
    fn servers_for(&self, kind: &CheckKind) -> Arc<Vec<SocketAddr>> {
        let own = kind.resolvers();
        if !own.is_empty() {
            return Arc::new(
                own.iter()
                    .filter_map(|s| qu_raft::model::parse_resolver(s).ok())
                    .collect(),
            );
        }
        self.cluster_servers
            .read()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Probes `kind` once; the whole probe (DNS included) is bounded by `timeout`.
    pub async fn probe(&self, kind: &CheckKind, timeout: Duration) -> ProbeOutcome {
        let started = Instant::now();
        let servers = self.servers_for(kind);
        let attempt = async {
            match kind {
                CheckKind::Http(h) => {
                    let a = self.http.probe(h, &servers).await;
                    Attempt {
                        result: a.result,
                        cert_not_after_ms: a.cert_not_after_ms,
                    }
                }
                CheckKind::Tcp { target, .. } => match self.lookup_target(target, &servers).await {
                    Ok(addrs) => tcp::probe(&addrs, self.source).await.into(),
                    Err(e) => Err(e).into(),
                },
                CheckKind::Icmp { host } => {
                    match self.resolvers.lookup(host, 0, &servers, None).await {
                        Ok(addrs) => match addrs.first() {
                            Some(a) => icmp::probe(*a, self.source).await.into(),
                            None => Err(format!("no address for {host}")).into(),
                        },
                        Err(e) => Err(e).into(),
                    }
                }
                CheckKind::Tls(t) => match self.lookup_target(&t.target, &servers).await {
                    Ok(addrs) => {
                        let target = tls::TlsTarget {
                            addrs: &addrs,
                            source: self.source,
                            server_name: t.server_name(),
                            ca_pem: t.ca.as_deref(),
                            warn_days: t.warn_days,
                            starttls: t.starttls,
                        };
                        let o = self.tls.probe(&target).await;
                        Attempt {
                            result: o.reason.map_or(Ok(()), Err),
                            cert_not_after_ms: o.not_after_ms,
                        }
                    }
                    Err(e) => Err(e).into(),
                },
                CheckKind::Dns(d) => dns::probe(
                    &self.resolvers,
                    &d.hostname,
                    &d.record,
                    &d.expect,
                    &servers,
                    d.tcp,
                )
                .await
                .into(),
            }
        };
        let result = tokio::time::timeout(timeout, attempt).await;
        let latency = started.elapsed();
        let (result, cert_not_after_ms) = match result {
            Ok(a) => (a.result, a.cert_not_after_ms),
            Err(_) => (
                Err(format!(
                    "timeout after {}",
                    crate::config::duration::format(timeout)
                )),
                None,
            ),
        };
        let result = result.and_then(|()| match kind {
            CheckKind::Http(h) => slow(latency, h.max_latency_ms),
            _ => Ok(()),
        });
        ProbeOutcome {
            ok: result.is_ok(),
            latency,
            reason: result.err().unwrap_or_default(),
            cert_not_after_ms,
        }
    }

    /// The addresses of a `HOST:PORT` target.
    async fn lookup_target(
        &self,
        target: &str,
        servers: &[SocketAddr],
    ) -> Result<Vec<SocketAddr>, String> {
        let (_, port) = target
            .rsplit_once(':')
            .ok_or_else(|| format!("{target:?} is not HOST:PORT"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{target:?} has no valid port"))?;
        self.resolvers
            .lookup(host_of(target), port, servers, None)
            .await
    }
}

/// `--max-latency`: an answer slower than the bound is a failure.
fn slow(latency: Duration, max_ms: Option<u64>) -> Result<(), String> {
    match max_ms {
        Some(max) if latency > Duration::from_millis(max) => Err(format!(
            "slow: {:.2}s > {}",
            latency.as_secs_f64(),
            crate::config::duration::format(Duration::from_millis(max))
        )),
        _ => Ok(()),
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn slower_than_max_latency_fails_with_both_figures() {
        assert_eq!(
            super::slow(Duration::from_millis(2310), Some(2000)).unwrap_err(),
            "slow: 2.31s > 2s"
        );
        assert!(super::slow(Duration::from_millis(1999), Some(2000)).is_ok());
        assert!(super::slow(Duration::from_secs(60), None).is_ok());
    }
}
