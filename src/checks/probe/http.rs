//! HTTP(S) probes with reqwest on rustls: one request (GET unless
//! `--method`), redirects followed (up to 10) unless `--no-follow`; UP on
//! the expected statuses (any 2xx by default) and every body test
//! (substring or regex match and non-match, a JSONPath value), and for
//! HTTPS with `--warn-days` a certificate that does not expire soon.
//!
//! Invariants: each probe opens a fresh connection (no idle pool), so a
//! server that no longer accepts new connections is seen failing; at most
//! `MAX_BODY` bytes of a body are read; clients (one per combination of
//! verification, redirects, IP version and DNS servers) and compiled
//! patterns are built once and shared, in bounded caches; reasons never
//! carry header values or URL credentials.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::redirect::Policy;

use super::resolver::{Family, Resolvers};
use qu_raft::model::HttpCheck;

/// Largest body read for the body tests.
const MAX_BODY: usize = 1024 * 1024;
/// Most clients or compiled patterns kept; past it the cache starts over.
const MAX_CACHED: usize = 4_096;

/// What makes two checks need different clients.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    insecure: bool,
    follow: bool,
    family: Option<u8>,
    servers: Vec<SocketAddr>,
}

pub struct HttpProber {
    source: Option<IpAddr>,
    resolvers: Arc<Resolvers>,
    clients: Mutex<HashMap<ClientKey, reqwest::Client>>,
    regexes: Mutex<HashMap<String, Arc<regex::Regex>>>,
    paths: Mutex<HashMap<String, Arc<serde_json_path::JsonPath>>>,
}

/// What one HTTP probe saw.
pub struct HttpAttempt {
    pub result: Result<(), String>,
    /// HTTPS: the leaf certificate's notAfter (ms since the epoch).
    pub cert_not_after_ms: Option<u64>,
}

fn build(
    key: &ClientKey,
    source: Option<IpAddr>,
    resolvers: &Arc<Resolvers>,
) -> reqwest::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(if key.follow {
            Policy::limited(10)
        } else {
            Policy::none()
        })
        .user_agent(concat!(
            "qu/",
            env!("CARGO_PKG_VERSION"),
            " (uptime monitor)"
        ))
        .tls_danger_accept_invalid_certs(key.insecure)
        .tls_info(true)
        .local_address(source)
        .connect_timeout(Duration::from_secs(60));
    if !key.servers.is_empty() || key.family.is_some() {
        let family = match key.family {
            Some(4) => Some(Family::V4),
            Some(6) => Some(Family::V6),
            _ => None,
        };
        b = b.dns_resolver(resolvers.for_reqwest(key.servers.clone(), family));
    }
    b.build()
}

/// A value from a bounded cache, built on first use.
fn cached<K: std::hash::Hash + Eq + Clone, V: Clone, E>(
    cache: &Mutex<HashMap<K, V>>,
    key: &K,
    make: impl FnOnce() -> Result<V, E>,
) -> Result<V, E> {
    if let Ok(m) = cache.lock() {
        if let Some(v) = m.get(key) {
            return Ok(v.clone());
        }
    }
    let v = make()?;
    if let Ok(mut m) = cache.lock() {
        if m.len() >= MAX_CACHED {
            m.clear();
        }
        m.insert(key.clone(), v.clone());
    }
    Ok(v)
}

impl HttpProber {
    pub fn new(source: Option<IpAddr>, resolvers: Arc<Resolvers>) -> reqwest::Result<HttpProber> {
        let p = HttpProber {
            source,
            resolvers,
            clients: Mutex::new(HashMap::new()),
            regexes: Mutex::new(HashMap::new()),
            paths: Mutex::new(HashMap::new()),
        };
        // Build the two common clients now, so a broken TLS setup (no
        // roots) fails at start, not at the first probe.
        for insecure in [false, true] {
            p.client(&ClientKey {
                insecure,
                follow: true,
                family: None,
                servers: vec![],
            })?;
        }
        Ok(p)
    }

    fn client(&self, key: &ClientKey) -> reqwest::Result<reqwest::Client> {
        cached(&self.clients, key, || {
            build(key, self.source, &self.resolvers)
        })
    }

    fn regex(&self, pattern: &str) -> Result<Arc<regex::Regex>, String> {
        cached(&self.regexes, &pattern.to_string(), || {
            regex::Regex::new(pattern)
                .map(Arc::new)
                .map_err(|e| format!("bad regular expression: {e}"))
        })
    }

    fn json_path(&self, path: &str) -> Result<Arc<serde_json_path::JsonPath>, String> {
        cached(&self.paths, &path.to_string(), || {
            serde_json_path::JsonPath::parse(path)
                .map(Arc::new)
                .map_err(|e| format!("bad JSONPath: {e}"))
        })
    }

    /// One request as `check` describes it; DNS through `servers` when
    /// given (else the system's).
    pub async fn probe(&self, check: &HttpCheck, servers: &[SocketAddr]) -> HttpAttempt {
        let mut cert = None;
        let result = self.attempt(check, servers, &mut cert).await;
        HttpAttempt {
            result,
            cert_not_after_ms: cert,
        }
    }

    async fn attempt(
        &self,
        check: &HttpCheck,
        servers: &[SocketAddr],
        cert: &mut Option<u64>,
    ) -> Result<(), String> {
        let key = ClientKey {
            insecure: check.insecure,
            follow: !check.no_follow,
            family: check.ip_version,
            servers: servers.to_vec(),
        };
        let client = self
            .client(&key)
            .map_err(|e| format!("cannot build the HTTP client: {}", crate::errors::chain(&e)))?;
        let method = match &check.method {
            Some(m) => reqwest::Method::from_bytes(m.as_bytes())
                .map_err(|_| format!("{m:?} is not an HTTP method"))?,
            None => reqwest::Method::GET,
        };
        let mut req = client.request(method, &check.url);
        for (k, v) in &check.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(body) = &check.body {
            req = req.body(body.clone());
        }
        let mut resp = req.send().await.map_err(|e| describe(&e))?;
        *cert = resp
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|i| i.peer_certificate())
            .and_then(super::tls::leaf_not_after_ms);
        let status = resp.status().as_u16();
        match &check.expect {
            Some(e) if !e.matches(status) => {
                return Err(format!("HTTP {status}, expected {e}"));
            }
            None if !(200..300).contains(&status) => return Err(format!("HTTP {status}")),
            _ => {}
        }
        if let (Some(days), Some(not_after)) = (check.warn_days, *cert) {
            if let Some(reason) =
                super::tls::expiry_reason(not_after, crate::checks::scheduler::now_ms(), days)
            {
                return Err(reason);
            }
        }
        let needs_body = check.body_match.is_some()
            || check.body_not_match.is_some()
            || check.json_path.is_some();
        if !needs_body {
            return Ok(());
        }
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e))? {
            let room = MAX_BODY - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_BODY {
                break;
            }
        }
        self.judge_body(check, &body)
    }

    /// The body tests, in order: match, non-match, JSON path.
    fn judge_body(&self, check: &HttpCheck, body: &[u8]) -> Result<(), String> {
        if let Some(m) = &check.body_match {
            let found = if check.regex {
                self.regex(m)?.is_match(&String::from_utf8_lossy(body))
            } else {
                contains(body, m.as_bytes())
            };
            if !found {
                return Err(if check.regex {
                    format!("body did not match /{m}/")
                } else {
                    format!("body did not contain {m:?}")
                });
            }
        }
        if let Some(m) = &check.body_not_match {
            let found = if check.regex {
                self.regex(m)?.is_match(&String::from_utf8_lossy(body))
            } else {
                contains(body, m.as_bytes())
            };
            if found {
                return Err(if check.regex {
                    format!("body matched /{m}/")
                } else {
                    format!("body contains {m:?}")
                });
            }
        }
        if let Some(path) = &check.json_path {
            let doc: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
                if body.len() >= MAX_BODY {
                    format!(
                        "body is over {} KiB, too long to read as JSON",
                        MAX_BODY / 1024
                    )
                } else {
                    format!("body is not JSON ({e})")
                }
            })?;
            let found: Vec<&serde_json::Value> = if path.starts_with('/') {
                doc.pointer(path).into_iter().collect()
            } else {
                self.json_path(path)?.query(&doc).all()
            };
            judge_json(path, &found, check.json_expect.as_deref())?;
        }
        Ok(())
    }
}

/// A JSON value as `--json-expect` compares it: strings without quotes,
/// everything else as JSON text.
fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// UP when the path found something and, with `expect`, one found value
/// is it.
fn judge_json(
    path: &str,
    found: &[&serde_json::Value],
    expect: Option<&str>,
) -> Result<(), String> {
    let Some(first) = found.first() else {
        return Err(format!("JSON path {path} found nothing"));
    };
    match expect {
        None => Ok(()),
        Some(want) if found.iter().any(|v| json_text(v) == want) => Ok(()),
        Some(want) => {
            let got: String = json_text(first).chars().take(80).collect();
            Err(format!("JSON path {path} is {got:?}, expected {want:?}"))
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// A short reason for a failed request: the root cause, not the wrapper.
fn describe(e: &reqwest::Error) -> String {
    if e.is_redirect() {
        return "too many redirects".into();
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut dns = false;
    while let Some(s) = source {
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            return describe_tls(tls);
        }
        let text = s.to_string();
        // Our resolver's own reasons (`DNS lookup of x failed: NXDOMAIN`).
        if text.starts_with("DNS lookup of") || text.starts_with("no IPv") {
            return text;
        }
        // A rustls error that reached us only as text (boxed in an I/O
        // error by the connector).
        if let Some(reason) = describe_tls_text(&text) {
            return reason;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                    return describe_tls(tls);
                }
                let text = inner.to_string();
                if text.starts_with("DNS lookup of") || text.starts_with("no IPv") {
                    return text;
                }
            }
            let peer = e
                .url()
                .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)));
            return super::describe_io_at(io, peer.as_deref());
        }
        // A more specific cause may lie underneath.
        dns |= text.contains("dns error") || text.contains("failed to lookup address");
        source = s.source();
    }
    if dns {
        return "DNS lookup failed".into();
    }
    let text = e.to_string();
    text.chars().take(200).collect()
}

/// `invalid peer certificate: UnknownIssuer` and its kin, as text.
fn describe_tls_text(text: &str) -> Option<String> {
    let rest = text.strip_prefix("invalid peer certificate: ")?;
    Some(if rest.starts_with("UnknownIssuer") {
        "certificate not trusted (unknown issuer or self-signed)".into()
    } else if rest.starts_with("Expired") {
        "certificate expired".into()
    } else if rest.starts_with("NotValidForName") {
        "certificate not valid for this host".into()
    } else {
        format!(
            "certificate rejected: {}",
            rest.chars().take(120).collect::<String>()
        )
    })
}

fn describe_tls(tls: &rustls::Error) -> String {
    use rustls::CertificateError::*;
    match tls {
        rustls::Error::InvalidCertificate(c) => match c {
            Expired | ExpiredContext { .. } => "certificate expired".into(),
            UnknownIssuer => "certificate not trusted (unknown issuer or self-signed)".into(),
            NotValidForName | NotValidForNameContext { .. } => {
                "certificate not valid for this host".into()
            }
            other => format!("certificate rejected: {other:?}"),
        },
        other => format!("TLS error: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_search() {
        assert!(contains(b"hello OK world", b"OK"));
        assert!(!contains(b"hello", b"OK"));
    }

    #[test]
    fn json_values_compare_as_text() {
        let doc: serde_json::Value =
            serde_json::json!({"status": "ok", "n": 3, "items": [{"up": true}, {"up": false}]});
        let one = [&doc["status"]];
        assert!(judge_json("$.status", &one, Some("ok")).is_ok());
        assert_eq!(
            judge_json("$.status", &one, Some("fine")).unwrap_err(),
            r#"JSON path $.status is "ok", expected "fine""#
        );
        assert!(judge_json("$.n", &[&doc["n"]], Some("3")).is_ok());
        let many = [&doc["items"][0]["up"], &doc["items"][1]["up"]];
        assert!(judge_json("$.items[*].up", &many, Some("false")).is_ok());
        assert_eq!(
            judge_json("$.missing", &[], None).unwrap_err(),
            "JSON path $.missing found nothing"
        );
    }
}
