//! The records of the check kinds added at log level 3: the richer HTTP
//! check, TLS and DNS checks, and the pieces they share (status lists, DNS
//! servers, secret-looking headers).
//!
//! Invariants: a record of these kinds whose fields all have their level-1
//! value serializes exactly as a level-1 HTTP check did (so `Check::level`
//! can tell what an older node could decode); every field is checked by
//! `validate_*` here, deterministically (the same on every node and
//! release, as `apply` runs it); the entry-only rules that need a parser
//! (regular expressions, JSONPath, PEM) live in the binary's admission.

use serde::{Deserialize, Serialize};

use crate::model::{validate_host, validate_host_port, ValidationError};

/// Which status codes count as UP: exact codes and classes (`2xx`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusExpect(Vec<StatusPattern>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusPattern {
    Code(u16),
    /// The hundreds digit: 2 is 2xx.
    Class(u16),
}

impl StatusExpect {
    /// One exact code (what level-1 checks store).
    pub fn code(code: u16) -> StatusExpect {
        StatusExpect(vec![StatusPattern::Code(code)])
    }

    /// `200`, `200,204`, `2xx,301`. Err says which item is wrong.
    pub fn parse(raw: &str) -> Result<StatusExpect, ValidationError> {
        let bad = |item: &str| {
            ValidationError::new(
                "--expect",
                format!("{item:?} is not a status code (100-599) or class (1xx-5xx); give e.g. 200, 200,204 or 2xx,301"),
            )
        };
        let mut out = Vec::new();
        for item in raw.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(bad(item));
            }
            let lower = item.to_ascii_lowercase();
            let pattern = if let Some(d) = lower.strip_suffix("xx") {
                match d.parse::<u16>() {
                    Ok(d) if (1..=5).contains(&d) && lower.len() == 3 => StatusPattern::Class(d),
                    _ => return Err(bad(item)),
                }
            } else {
                match item.parse::<u16>() {
                    Ok(c) if (100..=599).contains(&c) => StatusPattern::Code(c),
                    _ => return Err(bad(item)),
                }
            };
            if !out.contains(&pattern) {
                out.push(pattern);
            }
        }
        Ok(StatusExpect(out))
    }

    pub fn matches(&self, status: u16) -> bool {
        self.0.iter().any(|p| match p {
            StatusPattern::Code(c) => *c == status,
            StatusPattern::Class(d) => status / 100 == *d,
        })
    }

    /// The one exact code, when that is all it holds.
    pub fn single_code(&self) -> Option<u16> {
        match self.0.as_slice() {
            [StatusPattern::Code(c)] => Some(*c),
            _ => None,
        }
    }

    /// Checks what `parse` checks, for records that came another way.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.0.is_empty() {
            return Err(ValidationError::new("--expect", "must name a status"));
        }
        StatusExpect::parse(&self.to_string()).map(|_| ())
    }
}

impl std::fmt::Display for StatusExpect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match p {
                StatusPattern::Code(c) => write!(f, "{c}")?,
                StatusPattern::Class(d) => write!(f, "{d}xx")?,
            }
        }
        Ok(())
    }
}

/// One exact code serializes as the number level-1 nodes read; a list or
/// a class as its text (`"2xx,301"`, level 3).
impl Serialize for StatusExpect {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.single_code() {
            Some(c) => s.serialize_u16(c),
            None => s.serialize_str(&self.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for StatusExpect {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StatusExpect;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a status code or a list such as \"2xx,301\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StatusExpect, E> {
                let c = u16::try_from(v).map_err(|_| E::custom("status code out of range"))?;
                Ok(StatusExpect::code(c))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<StatusExpect, E> {
                let v = u64::try_from(v).map_err(|_| E::custom("status code out of range"))?;
                self.visit_u64(v)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StatusExpect, E> {
                StatusExpect::parse(v).map_err(|e| E::custom(e.message))
            }
            /// `["2xx", "301"]`, as an edit with several `--expect` sends.
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<StatusExpect, A::Error> {
                let mut items: Vec<String> = Vec::new();
                while let Some(item) = seq.next_element::<serde_json::Value>()? {
                    items.push(match item {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    });
                }
                StatusExpect::parse(&items.join(","))
                    .map_err(|e| serde::de::Error::custom(e.message))
            }
        }
        d.deserialize_any(V)
    }
}

/// A richer HTTP check. `url`, `expect` (one code), `body_match` and
/// `insecure` are level 1; every other field is level 3.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HttpCheck {
    pub url: String,
    /// Statuses that count as UP; `None` means any 2xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<StatusExpect>,
    /// The body must contain this (a regular expression with `regex`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_match: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// `GET` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Request headers, in order (values may be secrets: see `masked`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// The request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The body must not contain this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_not_match: Option<String>,
    /// `body_match` and `body_not_match` are regular expressions.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub regex: bool,
    /// A JSONPath (`$.status`) or JSON Pointer (`/status`) into the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
    /// What `json_path` must find (compared as text; strings unquoted).
    /// Absent: the path must find something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_expect: Option<String>,
    /// Slower answers count as failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_ms: Option<u64>,
    /// A redirect is the final answer (not followed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_follow: bool,
    /// 4 or 6: connect over that IP version only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<u8>,
    /// HTTPS: DOWN when the certificate expires within this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_days: Option<u32>,
    /// DNS servers resolving the host (`IP[:PORT]`); empty: the cluster's,
    /// else the system's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolvers: Vec<String>,
}

impl std::fmt::Debug for HttpCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.masked();
        f.debug_struct("HttpCheck")
            .field("url", &m.url)
            .field("expect", &m.expect)
            .field("method", &m.method)
            .field("headers", &m.headers)
            .field("body", &m.body.as_ref().map(|b| b.len()))
            .finish_non_exhaustive()
    }
}

/// The default `--warn-days` of a TLS check.
pub const DEFAULT_WARN_DAYS: u32 = 14;

/// The protocols a TLS check can upgrade with STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Starttls {
    Smtp,
    Imap,
    Pop3,
    Postgres,
}

impl Starttls {
    pub const NAMES: [&'static str; 4] = ["smtp", "imap", "pop3", "postgres"];

    pub fn parse(raw: &str) -> Result<Starttls, ValidationError> {
        match raw.to_ascii_lowercase().as_str() {
            "smtp" => Ok(Starttls::Smtp),
            "imap" => Ok(Starttls::Imap),
            "pop3" => Ok(Starttls::Pop3),
            "postgres" | "postgresql" => Ok(Starttls::Postgres),
            _ => Err(ValidationError::new(
                "--starttls",
                format!(
                    "{raw:?} is not a protocol qu can upgrade: use one of {}",
                    Starttls::NAMES.join(", ")
                ),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Starttls::Smtp => "smtp",
            Starttls::Imap => "imap",
            Starttls::Pop3 => "pop3",
            Starttls::Postgres => "postgres",
        }
    }
}

/// A TLS check: handshake, chain, name and expiry (level 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsCheck {
    /// HOST:PORT.
    pub target: String,
    /// The name sent and verified; the target's host when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    pub warn_days: u32,
    /// PEM of the certificates trusted instead of the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starttls: Option<Starttls>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolvers: Vec<String>,
}

impl TlsCheck {
    /// The name the certificate must be valid for.
    pub fn server_name(&self) -> &str {
        match &self.sni {
            Some(s) => s,
            None => host_of(&self.target),
        }
    }
}

/// The host of `HOST:PORT` / `[V6]:PORT`, without brackets.
pub fn host_of(target: &str) -> &str {
    let host = target.rsplit_once(':').map_or(target, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The record types a DNS check can ask for.
pub const RECORD_TYPES: [&str; 9] = ["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "SRV", "CAA"];

/// A DNS check (level 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsCheck {
    /// The name asked for.
    pub hostname: String,
    /// One of `RECORD_TYPES`.
    pub record: String,
    /// Values the answer must all contain.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub expect: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolvers: Vec<String>,
    /// Ask over TCP only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tcp: bool,
}

/// A list of strings, or one string (as an edit with one `--expect` sends).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// Shown instead of a secret.
pub const MASK: &str = "****";

/// Whether a request header's value is likely a secret (credentials,
/// tokens, cookies, keys).
pub fn header_is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["authorization", "cookie"].contains(&n.as_str())
        || [
            "auth",
            "token",
            "secret",
            "key",
            "pass",
            "session",
            "signature",
            "credential",
        ]
        .iter()
        .any(|w| n.contains(w))
}

/// `value` masked: `Bearer ****` keeps the scheme word of an
/// Authorization value, everything else is `****`.
fn mask_header_value(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphabetic()) => {
            format!("{scheme} {MASK}")
        }
        _ => MASK.to_string(),
    }
}

impl HttpCheck {
    /// A copy for listings and logs: secret-looking header values and URL
    /// credentials replaced by `****`.
    pub fn masked(&self) -> HttpCheck {
        let mut m = self.clone();
        m.url = crate::model::mask_url_userinfo(&self.url);
        m.headers = self
            .headers
            .iter()
            .map(|(k, v)| {
                let v = if header_is_secret(k) {
                    mask_header_value(v)
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect();
        m
    }

    /// Whether any level-3 field is set (an older node would drop it).
    pub fn has_level_3_fields(&self) -> bool {
        let plain = HttpCheck {
            url: self.url.clone(),
            expect: self.expect.clone(),
            body_match: self.body_match.clone(),
            insecure: self.insecure,
            ..HttpCheck::default()
        };
        *self != plain
            || self
                .expect
                .as_ref()
                .is_some_and(|e| e.single_code().is_none())
    }

    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(e) = &self.expect {
            e.validate()?;
        }
        for (field, v) in [
            ("--body-match", &self.body_match),
            ("--body-not-match", &self.body_not_match),
        ] {
            if v.as_ref().is_some_and(String::is_empty) {
                return Err(ValidationError::new(field, "must not be empty"));
            }
        }
        if let Some(m) = &self.method {
            let ok = !m.is_empty()
                && m.len() <= 32
                && m.chars().all(|c| c.is_ascii_uppercase() || c == '-');
            if !ok {
                return Err(ValidationError::new(
                    "--method",
                    format!("{m:?} is not an HTTP method: use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS (upper case)"),
                ));
            }
        }
        for (k, v) in &self.headers {
            validate_header("--header", k, v)?;
        }
        if let Some(b) = &self.body {
            if b.len() > MAX_REQUEST_BODY {
                return Err(ValidationError::new(
                    "--body",
                    format!("is {} bytes; at most {MAX_REQUEST_BODY} are sent", b.len()),
                ));
            }
        }
        if self.json_expect.is_some() && self.json_path.is_none() {
            return Err(ValidationError::new(
                "--json-expect",
                "needs --json-path (what to compare)",
            ));
        }
        if self.json_path.as_ref().is_some_and(String::is_empty) {
            return Err(ValidationError::new("--json-path", "must not be empty"));
        }
        if self.max_latency_ms == Some(0) {
            return Err(ValidationError::new(
                "--max-latency",
                "must be longer than 0",
            ));
        }
        if let Some(v) = self.ip_version {
            if v != 4 && v != 6 {
                return Err(ValidationError::new("--ip-version", "must be 4 or 6"));
            }
        }
        if let Some(d) = self.warn_days {
            validate_warn_days(d)?;
            if !self.url.to_ascii_lowercase().starts_with("https://") {
                return Err(ValidationError::new(
                    "--warn-days",
                    "only an https:// URL has a certificate to check",
                ));
            }
        }
        validate_resolvers(&self.resolvers)
    }
}

/// The largest request body a check sends.
pub const MAX_REQUEST_BODY: usize = 64 * 1024;

/// A request header: a token name, a value without control characters.
pub fn validate_header(field: &str, name: &str, value: &str) -> Result<(), ValidationError> {
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
    if !name_ok {
        return Err(ValidationError::new(
            field,
            format!("{name:?} is not a header name; use 'Name: value'"),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ValidationError::new(
            field,
            "a header value must not contain control characters (CR, LF, …)",
        ));
    }
    Ok(())
}

/// `--warn-days`: 1 to 365.
pub fn validate_warn_days(days: u32) -> Result<(), ValidationError> {
    if (1..=365).contains(&days) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "--warn-days",
            format!("{days} is out of range: give 1 to 365 days"),
        ))
    }
}

/// At most this many DNS servers per check or cluster.
pub const MAX_RESOLVERS: usize = 8;

/// DNS servers: `IP` or `IP:PORT` (`[V6]:PORT`), each once.
pub fn validate_resolvers(servers: &[String]) -> Result<(), ValidationError> {
    if servers.len() > MAX_RESOLVERS {
        return Err(ValidationError::new(
            "--resolver",
            format!("at most {MAX_RESOLVERS} DNS servers"),
        ));
    }
    for (i, s) in servers.iter().enumerate() {
        parse_resolver(s)?;
        if servers[..i].contains(s) {
            return Err(ValidationError::new(
                "--resolver",
                format!("{s} is given twice"),
            ));
        }
    }
    Ok(())
}

/// A DNS server a check or the cluster names: `IP` (port 53), `IP:PORT`,
/// `[V6]` or `[V6]:PORT`. The refusal says what is wrong and gives an
/// example.
pub fn parse_resolver(raw: &str) -> Result<std::net::SocketAddr, ValidationError> {
    use std::net::{IpAddr, SocketAddr};
    let text = raw.trim();
    let wrong = |why: &str| {
        ValidationError::new(
            "--resolver",
            format!(
                "{raw:?} is not a DNS server address ({why}): give an IP address and optionally a port, \
                 e.g. 192.0.2.53, 127.0.0.1:5353, 2001:db8::53 or [2001:db8::53]:5353"
            ),
        )
    };
    if text.is_empty() {
        return Err(wrong("empty"));
    }
    let addr = if let Ok(ip) = text.parse::<IpAddr>() {
        SocketAddr::new(ip, 53)
    } else if let Ok(addr) = text.parse::<SocketAddr>() {
        addr
    } else if let Some(ip) = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse::<IpAddr>().ok())
    {
        SocketAddr::new(ip, 53)
    } else if text.contains(|c: char| c.is_ascii_alphabetic() && !c.is_ascii_hexdigit()) {
        return Err(wrong("a name, not an address"));
    } else {
        return Err(wrong("not an IP address"));
    };
    if addr.port() == 0 {
        return Err(wrong("port 0"));
    }
    Ok(addr)
}

impl TlsCheck {
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_host_port("target", &self.target)?;
        if let Some(sni) = &self.sni {
            validate_host("--sni", sni)?;
        }
        validate_warn_days(self.warn_days)?;
        if let Some(ca) = &self.ca {
            if !ca.contains("-----BEGIN CERTIFICATE-----") {
                return Err(ValidationError::new(
                    "--ca",
                    "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                ));
            }
            if ca.len() > MAX_CA_PEM {
                return Err(ValidationError::new(
                    "--ca",
                    format!("is {} bytes; at most {MAX_CA_PEM}", ca.len()),
                ));
            }
        }
        validate_resolvers(&self.resolvers)
    }
}

/// The largest `--ca` file a TLS check carries (it is replicated).
pub const MAX_CA_PEM: usize = 64 * 1024;

impl DnsCheck {
    pub fn validate(&self) -> Result<(), ValidationError> {
        let q = self.hostname.strip_suffix('.').unwrap_or(&self.hostname);
        let ok = q.parse::<std::net::IpAddr>().is_err()
            && validate_host("", &q.replace('_', "x")).is_ok();
        if !ok {
            return Err(ValidationError::new(
                "hostname",
                format!(
                    "{:?} is not a host name (e.g. example.com or _sip._tcp.example.com)",
                    self.hostname
                ),
            ));
        }
        if !RECORD_TYPES.contains(&self.record.as_str()) {
            return Err(ValidationError::new(
                "--record",
                format!(
                    "{:?} is not a record type qu can ask for: use one of {}",
                    self.record,
                    RECORD_TYPES.join(", ")
                ),
            ));
        }
        for e in &self.expect {
            if e.trim().is_empty() || e.chars().any(char::is_control) {
                return Err(ValidationError::new(
                    "--expect",
                    "an expected value must be non-empty text without control characters",
                ));
            }
        }
        validate_resolvers(&self.resolvers)
    }
}

/// The check fields a level-2 node knows (for every kind it knows).
const LEVEL_2_CHECK_FIELDS: [&str; 10] = [
    "name",
    "url",
    "expect",
    "body_match",
    "insecure",
    "target",
    "host",
    "interval_ms",
    "timeout_ms",
    "alerts",
];

/// The lowest log level that can apply an edit (`EditCheck` is level 2):
/// 3 when it sets a field only level-3 nodes know, or a status list.
pub fn patch_level(patch: &crate::patch::Patch) -> u32 {
    let newer = patch.0.iter().any(|(k, v)| {
        !LEVEL_2_CHECK_FIELDS.contains(&k.as_str())
            || (k == "expect" && !v.is_u64() && !v.is_null())
    });
    if newer {
        3
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lists_and_classes() {
        let e = StatusExpect::parse("200, 204").unwrap();
        assert!(e.matches(200) && e.matches(204) && !e.matches(201));
        let e = StatusExpect::parse("2xx,301").unwrap();
        assert!(e.matches(299) && e.matches(301) && !e.matches(302));
        assert_eq!(e.to_string(), "2xx,301");
        for bad in ["", "20x", "600", "99", "6xx", "0xx", "2xx,", "ok"] {
            assert!(StatusExpect::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_code_serializes_as_the_number_older_nodes_read() {
        let one = StatusExpect::code(201);
        assert_eq!(serde_json::to_string(&one).unwrap(), "201");
        let back: StatusExpect = serde_json::from_str("201").unwrap();
        assert_eq!(back, one);
        let many = StatusExpect::parse("2xx,301").unwrap();
        assert_eq!(serde_json::to_string(&many).unwrap(), "\"2xx,301\"");
        let back: StatusExpect = serde_json::from_str("\"2xx,301\"").unwrap();
        assert_eq!(back, many);
        assert!(serde_json::from_str::<StatusExpect>("\"7xx\"").is_err());
    }

    #[test]
    fn level_3_fields_are_told_apart() {
        let plain = HttpCheck {
            url: "https://x.test/".into(),
            expect: Some(StatusExpect::code(200)),
            ..HttpCheck::default()
        };
        assert!(!plain.has_level_3_fields());
        let mut list = plain.clone();
        list.expect = Some(StatusExpect::parse("200,204").unwrap());
        assert!(list.has_level_3_fields());
        let mut head = plain.clone();
        head.method = Some("HEAD".into());
        assert!(head.has_level_3_fields());
    }

    #[test]
    fn secret_looking_headers_are_masked() {
        let c = HttpCheck {
            url: "https://u:pw@x.test/".into(),
            headers: vec![
                ("Authorization".into(), "Bearer abc123".into()),
                ("X-Api-Key".into(), "k-999".into()),
                ("Accept".into(), "application/json".into()),
            ],
            ..HttpCheck::default()
        };
        let m = c.masked();
        assert_eq!(m.headers[0].1, "Bearer ****");
        assert_eq!(m.headers[1].1, "****");
        assert_eq!(m.headers[2].1, "application/json");
        assert!(!m.url.contains("pw"), "{}", m.url);
        let debug = format!("{c:?}");
        assert!(!debug.contains("abc123") && !debug.contains("k-999") && !debug.contains("pw@"));
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = HttpCheck {
            url: "https://x.test/".into(),
            ..HttpCheck::default()
        };
        c.method = Some("get me".into());
        assert_eq!(c.validate().unwrap_err().field, "--method");
        c.method = None;
        c.warn_days = Some(400);
        assert_eq!(c.validate().unwrap_err().field, "--warn-days");
        c.warn_days = None;
        c.json_expect = Some("ok".into());
        assert_eq!(c.validate().unwrap_err().field, "--json-expect");
        c.json_expect = None;
        c.resolvers = vec!["dns.example".into()];
        assert_eq!(c.validate().unwrap_err().field, "--resolver");
        c.resolvers = vec!["127.0.0.1:5353".into(), "9.9.9.9".into(), "[::1]:53".into()];
        assert!(c.validate().is_ok());
        c.headers = vec![("Bad Name".into(), "v".into())];
        assert_eq!(c.validate().unwrap_err().field, "--header");

        let d = DnsCheck {
            hostname: "example.com".into(),
            record: "AXFR".into(),
            expect: vec![],
            resolvers: vec![],
            tcp: false,
        };
        assert_eq!(d.validate().unwrap_err().field, "--record");
        let d = DnsCheck {
            hostname: "exa mple".into(),
            record: "A".into(),
            ..d
        };
        assert_eq!(d.validate().unwrap_err().field, "hostname");
        let d = DnsCheck {
            hostname: "_sip._tcp.example.com.".into(),
            record: "SRV".into(),
            ..d
        };
        assert!(d.validate().is_ok());

        let t = TlsCheck {
            target: "example.com:443".into(),
            sni: None,
            warn_days: 0,
            ca: None,
            starttls: None,
            resolvers: vec![],
        };
        assert_eq!(t.validate().unwrap_err().field, "--warn-days");
        assert_eq!(t.server_name(), "example.com");
        let t = TlsCheck {
            target: "[::1]:8443".into(),
            warn_days: 14,
            ..t
        };
        assert!(t.validate().is_ok());
        assert_eq!(t.server_name(), "::1");
    }

    #[test]
    fn edits_of_new_fields_are_level_3() {
        let mut p = crate::patch::Patch::default();
        p.set("interval_ms", 5_000u64).set("expect", 201u16);
        assert_eq!(patch_level(&p), 2);
        p.set("expect", "2xx");
        assert_eq!(patch_level(&p), 3);
        let mut p = crate::patch::Patch::default();
        p.set("method", "HEAD");
        assert_eq!(patch_level(&p), 3);
    }

    #[test]
    fn servers_parse_with_the_default_port() {
        let p = |s: &str| parse_resolver(s).map(|a| a.to_string());
        assert_eq!(p("192.0.2.53").unwrap(), "192.0.2.53:53");
        assert_eq!(p(" 127.0.0.1:5353 ").unwrap(), "127.0.0.1:5353");
        assert_eq!(p("2001:db8::53").unwrap(), "[2001:db8::53]:53");
        assert_eq!(p("[2001:db8::53]").unwrap(), "[2001:db8::53]:53");
        assert_eq!(p("[::1]:5353").unwrap(), "[::1]:5353");
        assert!(validate_resolvers(&["1.1.1.1".into(), "1.1.1.1".into()]).is_err());
    }

    #[test]
    fn bad_servers_say_why_and_give_an_example() {
        for (s, why) in [
            ("", "empty"),
            ("dns.google", "a name"),
            ("dns.google:53", "a name"),
            ("127.0.0.1:0", "port 0"),
            ("127.0.0.1:99999", "not an IP"),
            ("1.2.3", "not an IP"),
            ("::1:53]", "not an IP"),
        ] {
            let e = parse_resolver(s).unwrap_err();
            assert_eq!(e.field, "--resolver");
            assert!(e.message.contains(why), "{s:?}: {e}");
            assert!(e.message.contains("e.g. 192.0.2.53"), "{s:?}: {e}");
        }
    }
}
