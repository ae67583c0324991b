//! Name resolution for every probe: the system's (getaddrinfo) or DNS
//! servers a check or the cluster names.
//!
//! With no servers named, a host resolves exactly as any program on the
//! node resolves it (`tokio::net::lookup_host`: /etc/hosts, nsswitch,
//! search domains). With servers named, hickory asks only those servers
//! (A and AAAA; no /etc/hosts, no search domains: names are absolute), so
//! every node resolves the same way. Special-use names (RFC 6761) are
//! answered without a query: `localhost` is loopback, `.invalid` and
//! `.onion` names do not exist.
//!
//! Invariants: nothing is cached but the resolvers themselves (no answer
//! is served from a cache: each lookup asks its servers); every lookup
//! ends within its own deadline (`QUERY_DEADLINE` by default, longer than
//! a probe's usual timeout so the probe's own timeout is what normally
//! fires); no lookup blocks a tokio worker (the system resolver runs on
//! tokio's blocking pool, and so is the reading of /etc/resolv.conf).
//! A failure is one short reason (`NXDOMAIN`, `SERVFAIL`, `no answer`,
//! `timeout (no answer from 127.0.0.1:5353)`, …).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hickory_resolver::config::{
    NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts, ServerOrderingStrategy,
};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{ResolveError, TokioResolver};

/// How long one lookup may take, retries included, before it fails with
/// `timeout`: longer than a probe's usual timeout (2–10 s).
pub const QUERY_DEADLINE: Duration = Duration::from_secs(15);
/// Tries per server and query: one and this many retries, each with a
/// third of the deadline (a lost UDP datagram is asked again).
const RETRIES: usize = 2;
/// How long the servers read from /etc/resolv.conf are kept before the
/// file is read again.
const SYSTEM_CONF_TTL: Duration = Duration::from_secs(60);
/// Where the system's DNS servers are named.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// An address family a lookup keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn holds(self, ip: IpAddr) -> bool {
        match self {
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// Why a DNS query failed: rendered as the short reason probes report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The name does not exist.
    NxDomain,
    /// The name exists but has no record of the asked type (NOERROR, empty).
    NoAnswer,
    /// The server answered with another error code (`SERVFAIL`, `REFUSED`, …).
    Code(&'static str),
    /// No answer in time from these servers.
    Timeout(Vec<SocketAddr>),
    /// Anything else, in words.
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NxDomain => f.write_str("NXDOMAIN"),
            Failure::NoAnswer => f.write_str("no answer"),
            Failure::Code(code) => f.write_str(code),
            Failure::Timeout(servers) => {
                write!(f, "timeout (no answer from {})", join_servers(servers))
            }
            Failure::Other(text) => f.write_str(text),
        }
    }
}

fn join_servers(servers: &[SocketAddr]) -> String {
    let names: Vec<String> = servers.iter().map(SocketAddr::to_string).collect();
    names.join(", ")
}

/// The mnemonic of a DNS response code, as dig prints it.
fn code_name(code: ResponseCode) -> &'static str {
    match code {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::YXDomain => "YXDOMAIN",
        ResponseCode::YXRRSet => "YXRRSET",
        ResponseCode::NXRRSet => "NXRRSET",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::NotZone => "NOTZONE",
        ResponseCode::BADVERS => "BADVERS",
        ResponseCode::BADSIG => "BADSIG",
        ResponseCode::BADKEY => "BADKEY",
        ResponseCode::BADTIME => "BADTIME",
        ResponseCode::BADMODE => "BADMODE",
        ResponseCode::BADNAME => "BADNAME",
        ResponseCode::BADALG => "BADALG",
        ResponseCode::BADTRUNC => "BADTRUNC",
        ResponseCode::BADCOOKIE => "BADCOOKIE",
        _ => "unknown response code",
    }
}

/// The short reason of a hickory error.
fn failure(e: &ResolveError, servers: &[SocketAddr]) -> Failure {
    let Some(proto) = e.proto() else {
        return Failure::Other(e.to_string());
    };
    match proto.kind() {
        ProtoErrorKind::NoRecordsFound { response_code, .. } => match *response_code {
            ResponseCode::NXDomain => Failure::NxDomain,
            ResponseCode::NoError => Failure::NoAnswer,
            other => Failure::Code(code_name(other)),
        },
        ProtoErrorKind::Timeout => Failure::Timeout(servers.to_vec()),
        ProtoErrorKind::Io(io) => {
            let peer = (servers.len() == 1).then(|| servers[0].to_string());
            Failure::Other(super::describe_io_at(io, peer.as_deref()))
        }
        ProtoErrorKind::NoConnections => {
            Failure::Other(format!("no connection to {}", join_servers(servers)))
        }
        _ => Failure::Other(proto.to_string()),
    }
}

/// A host as an absolute DNS name (hickory never applies search domains
/// to it).
pub(crate) fn absolute_name(host: &str) -> Result<Name, String> {
    let mut name = Name::from_str_relaxed(host)
        .map_err(|e| format!("{host:?} is not a valid DNS name: {e}"))?;
    if name.num_labels() == 0 && host != "." {
        return Err(format!("{host:?} is not a valid DNS name"));
    }
    name.set_fqdn(true);
    Ok(name)
}

/// The servers /etc/resolv.conf names, as read at `read_at`.
struct SystemServers {
    read_at: Instant,
    servers: Result<Vec<SocketAddr>, String>,
}

/// The resolvers of a node: hickory resolvers built on first use and kept
/// per (servers, TCP only); the servers of /etc/resolv.conf, re-read every
/// minute.
pub struct Resolvers {
    deadline: Duration,
    resolvers: Mutex<HashMap<(Vec<SocketAddr>, bool), TokioResolver>>,
    system: Mutex<Option<SystemServers>>,
}

impl Default for Resolvers {
    fn default() -> Self {
        Resolvers::new()
    }
}

/// A lock that survives a panic elsewhere (the maps stay consistent: each
/// change is one insert).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Resolvers {
    pub fn new() -> Resolvers {
        Resolvers::with_deadline(QUERY_DEADLINE)
    }

    /// Resolvers whose lookups fail with `timeout` after `deadline`
    /// (retries included) instead of `QUERY_DEADLINE`.
    pub fn with_deadline(deadline: Duration) -> Resolvers {
        Resolvers {
            deadline,
            resolvers: Mutex::new(HashMap::new()),
            system: Mutex::new(None),
        }
    }

    /// Addresses for host:port. An IP literal (also `[v6]`) passes through.
    /// With `servers` empty: the system resolver (getaddrinfo: /etc/hosts
    /// and nsswitch honoured). With servers: hickory querying only those
    /// servers (A and AAAA; no /etc/hosts, no search domains). `family`
    /// keeps only v4 or v6 addresses (`no IPv4 address for HOST` if none).
    /// Reasons: `DNS lookup of HOST failed: NXDOMAIN` (`SERVFAIL`, `no
    /// answer`, `timeout (no answer from …)`, …).
    pub async fn lookup(
        &self,
        host: &str,
        port: u16,
        servers: &[SocketAddr],
        family: Option<Family>,
    ) -> Result<Vec<SocketAddr>, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs = if let Ok(ip) = bare.parse::<IpAddr>() {
            vec![SocketAddr::new(ip, port)]
        } else if servers.is_empty() {
            self.system_lookup(bare, port).await?
        } else {
            self.server_lookup(bare, port, servers, family).await?
        };
        match family {
            None => Ok(addrs),
            Some(f) => {
                let kept: Vec<SocketAddr> = addrs.into_iter().filter(|a| f.holds(a.ip())).collect();
                if kept.is_empty() {
                    Err(format!("no {} address for {bare}", f.label()))
                } else {
                    Ok(kept)
                }
            }
        }
    }

    /// getaddrinfo on tokio's blocking pool, bounded by the deadline.
    async fn system_lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let found = tokio::time::timeout(self.deadline, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| format!("DNS lookup of {host} failed: timeout"))?
            .map_err(|e| format!("DNS lookup of {host} failed: {e}"))?;
        let addrs: Vec<SocketAddr> = found.collect();
        if addrs.is_empty() {
            return Err(format!("DNS lookup of {host} returned no address"));
        }
        Ok(addrs)
    }

    /// A and/or AAAA from the named servers.
    async fn server_lookup(
        &self,
        host: &str,
        port: u16,
        servers: &[SocketAddr],
        family: Option<Family>,
    ) -> Result<Vec<SocketAddr>, String> {
        let name = absolute_name(host)?;
        let ask = |rtype| self.query_servers(name.clone(), rtype, servers, false);
        let (v4, v6) = match family {
            Some(Family::V4) => (ask(RecordType::A).await, Err(Failure::NoAnswer)),
            Some(Family::V6) => (Err(Failure::NoAnswer), ask(RecordType::AAAA).await),
            None => tokio::join!(ask(RecordType::A), ask(RecordType::AAAA)),
        };
        let mut addrs = Vec::new();
        for lookup in [&v4, &v6].into_iter().flatten() {
            addrs.extend(
                lookup
                    .record_iter()
                    .filter_map(|r| r.data().ip_addr())
                    .map(|ip| SocketAddr::new(ip, port)),
            );
        }
        if !addrs.is_empty() {
            return Ok(addrs);
        }
        let why = match (v4, v6) {
            // The name has no address (of the family asked).
            (Err(Failure::NoAnswer) | Ok(_), Err(Failure::NoAnswer) | Ok(_)) => match family {
                Some(f) => return Err(format!("no {} address for {host}", f.label())),
                None => Failure::NoAnswer,
            },
            // The more telling of the two: an error over NODATA.
            (Err(Failure::NoAnswer) | Ok(_), Err(e)) | (Err(e), _) => e,
        };
        Err(format!("DNS lookup of {host} failed: {why}"))
    }

    /// One query of `rtype` for `name` (absolute) to `servers`, or the
    /// system's DNS servers when empty; over TCP only when `tcp`, otherwise
    /// UDP and TCP when the UDP answer is truncated. Bounded by the deadline.
    pub(crate) async fn query(
        &self,
        name: Name,
        rtype: RecordType,
        servers: &[SocketAddr],
        tcp: bool,
    ) -> Result<Lookup, Failure> {
        if servers.is_empty() {
            let system = self.system_servers().await.map_err(Failure::Other)?;
            self.query_servers(name, rtype, &system, tcp).await
        } else {
            self.query_servers(name, rtype, servers, tcp).await
        }
    }

    async fn query_servers(
        &self,
        name: Name,
        rtype: RecordType,
        servers: &[SocketAddr],
        tcp: bool,
    ) -> Result<Lookup, Failure> {
        let resolver = self.resolver(servers, tcp);
        match tokio::time::timeout(self.deadline, resolver.lookup(name, rtype)).await {
            Err(_) => Err(Failure::Timeout(servers.to_vec())),
            Ok(Err(e)) => Err(failure(&e, servers)),
            Ok(Ok(lookup)) => Ok(lookup),
        }
    }

    /// The resolver for these servers, built on first use.
    fn resolver(&self, servers: &[SocketAddr], tcp: bool) -> TokioResolver {
        let key = (servers.to_vec(), tcp);
        let mut map = lock(&self.resolvers);
        map.entry(key)
            .or_insert_with(|| build_resolver(servers, tcp, self.deadline))
            .clone()
    }

    /// The servers /etc/resolv.conf names (port 53), re-read once a minute.
    async fn system_servers(&self) -> Result<Vec<SocketAddr>, String> {
        if let Some(known) = lock(&self.system).as_ref() {
            if known.read_at.elapsed() < SYSTEM_CONF_TTL {
                return known.servers.clone();
            }
        }
        // Reading the file and parsing it (which may read the host name
        // from /proc) on the blocking pool.
        let read = tokio::task::spawn_blocking(|| match std::fs::read(RESOLV_CONF) {
            Err(e) => Err(format!("cannot read {RESOLV_CONF}: {e}")),
            Ok(data) => servers_of_resolv_conf(&data),
        });
        let servers = match tokio::time::timeout(self.deadline, read).await {
            Ok(Ok(servers)) => servers,
            Ok(Err(e)) => Err(format!("cannot read {RESOLV_CONF}: {e}")),
            Err(_) => Err(format!("cannot read {RESOLV_CONF}: timeout")),
        };
        *lock(&self.system) = Some(SystemServers {
            read_at: Instant::now(),
            servers: servers.clone(),
        });
        servers
    }

    /// The same resolution as a reqwest resolver, so an HTTP client built
    /// with `.dns_resolver(..)` honours the servers and family. A failure
    /// is a `LookupError` carrying the reason.
    pub fn for_reqwest(
        self: &Arc<Self>,
        servers: Vec<SocketAddr>,
        family: Option<Family>,
    ) -> Arc<dyn reqwest::dns::Resolve> {
        Arc::new(ReqwestResolver {
            resolvers: Arc::clone(self),
            servers: Arc::from(servers),
            family,
        })
    }
}

/// The distinct servers a resolv.conf names.
fn servers_of_resolv_conf(data: &[u8]) -> Result<Vec<SocketAddr>, String> {
    let (config, _) = hickory_resolver::system_conf::parse_resolv_conf(data)
        .map_err(|e| format!("cannot use {RESOLV_CONF}: {e}"))?;
    let mut servers: Vec<SocketAddr> = Vec::new();
    for ns in config.name_servers() {
        if !servers.contains(&ns.socket_addr) {
            servers.push(ns.socket_addr);
        }
    }
    if servers.is_empty() {
        return Err(format!("{RESOLV_CONF} names no DNS server"));
    }
    Ok(servers)
}

/// A hickory resolver asking only `servers`, caching nothing.
fn build_resolver(servers: &[SocketAddr], tcp: bool, deadline: Duration) -> TokioResolver {
    let mut config = ResolverConfig::new();
    for &addr in servers {
        if !tcp {
            config.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
        }
        // Without a TCP entry hickory cannot retry a truncated answer.
        config.add_name_server(NameServerConfig::new(addr, Protocol::Tcp));
    }
    let mut opts = ResolverOpts::default();
    opts.timeout = deadline / (RETRIES as u32 + 1);
    opts.attempts = RETRIES;
    // No answer is kept: each lookup asks the servers.
    opts.cache_size = 0;
    opts.positive_max_ttl = Some(Duration::ZERO);
    opts.negative_max_ttl = Some(Duration::ZERO);
    opts.use_hosts_file = ResolveHosts::Never;
    opts.ndots = 0;
    // Large answers over UDP when the server can (truncated ones go to TCP).
    opts.edns0 = true;
    opts.server_ordering_strategy = ServerOrderingStrategy::UserProvidedOrder;
    TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
        .with_options(opts)
        .build()
}

/// Why a reqwest lookup failed: the reason `Resolvers::lookup` gave.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LookupError(pub String);

struct ReqwestResolver {
    resolvers: Arc<Resolvers>,
    servers: Arc<[SocketAddr]>,
    family: Option<Family>,
}

impl reqwest::dns::Resolve for ReqwestResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolvers = Arc::clone(&self.resolvers);
        let servers = Arc::clone(&self.servers);
        let family = self.family;
        let host = name.as_str().to_string();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port in.
            match resolvers.lookup(&host, 0, &servers, family).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(reason) => {
                    Err(Box::new(LookupError(reason)) as Box<dyn std::error::Error + Send + Sync>)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_servers_are_distinct_on_port_53() {
        let s = servers_of_resolv_conf(
            b"search example.com\nnameserver 192.0.2.1\nnameserver ::1\noptions timeout:1\n",
        )
        .unwrap();
        assert_eq!(
            s,
            vec![
                "192.0.2.1:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        assert!(servers_of_resolv_conf(b"search example.com\n").is_err());
    }

    #[test]
    fn names_become_absolute() {
        assert_eq!(absolute_name("qu.test").unwrap().to_string(), "qu.test.");
        assert_eq!(absolute_name("qu.test.").unwrap().to_string(), "qu.test.");
        assert_eq!(
            absolute_name("_http._tcp.qu.test").unwrap().to_string(),
            "_http._tcp.qu.test."
        );
        assert!(absolute_name("").is_err());
        assert!(absolute_name("a..b").is_err());
    }

    #[test]
    fn failures_read_as_short_reasons() {
        let s: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        assert_eq!(Failure::NxDomain.to_string(), "NXDOMAIN");
        assert_eq!(Failure::NoAnswer.to_string(), "no answer");
        assert_eq!(
            Failure::Code(code_name(ResponseCode::ServFail)).to_string(),
            "SERVFAIL"
        );
        assert_eq!(code_name(ResponseCode::Refused), "REFUSED");
        assert_eq!(
            Failure::Timeout(vec![s, s]).to_string(),
            "timeout (no answer from 127.0.0.1:5353, 127.0.0.1:5353)"
        );
        let timeout: ResolveError =
            hickory_resolver::proto::ProtoError::from(ProtoErrorKind::Timeout).into();
        assert_eq!(failure(&timeout, &[s]), Failure::Timeout(vec![s]));
    }

    #[tokio::test]
    async fn literals_pass_through_and_families_filter() {
        let r = Resolvers::new();
        let a = r.lookup("[::1]", 80, &[], None).await.unwrap();
        assert_eq!(a, vec!["[::1]:80".parse().unwrap()]);
        let a = r
            .lookup("127.0.0.1", 80, &[], Some(Family::V4))
            .await
            .unwrap();
        assert_eq!(a, vec!["127.0.0.1:80".parse().unwrap()]);
        let e = r
            .lookup("::1", 80, &[], Some(Family::V4))
            .await
            .unwrap_err();
        assert_eq!(e, "no IPv4 address for ::1");
    }
}
