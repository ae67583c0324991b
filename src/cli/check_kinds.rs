//! The command-line shapes of each check kind (`qu check add KIND` and
//! `qu check test KIND`), and the kind-specific flags of `qu check edit`.
//!
//! Files named on the command line (`--body-file`, `--ca`) are read here,
//! by the CLI, so the daemon never opens operator-chosen paths; their
//! contents travel in the request.

use std::time::Duration;

use clap::Args;

use super::{parse_duration, Failure};
use qu_raft::kinds::DEFAULT_WARN_DAYS;
use qu_raft::model::{CheckKind, DnsCheck, HttpCheck, Starttls, StatusExpect, TlsCheck};
use qu_raft::patch::Patch;

/// What an HTTP check sends and expects (`add` and `test`).
#[derive(Debug, Args)]
pub struct HttpTarget {
    /// What to fetch: a full http:// or https:// URL
    #[arg(value_name = "URL")]
    url: String,
    /// Statuses that count as UP: codes and classes, comma-separated (200,204 or 2xx,301) [default: any 2xx]
    #[arg(long, value_name = "LIST", value_parser = parse_status_list)]
    expect: Option<StatusExpect>,
    /// The request method [default: GET]
    #[arg(long, value_name = "METHOD", value_parser = parse_method)]
    method: Option<String>,
    /// A request header 'Name: value' (repeatable); values of secret-looking headers (Authorization, *token*, *key*…) are masked in listings
    #[arg(long = "header", value_name = "'NAME: VALUE'", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// The request body
    #[arg(long, value_name = "STR", conflicts_with = "body_file")]
    body: Option<String>,
    /// The request body, read from this file now (at most 64 KiB)
    #[arg(long, value_name = "PATH")]
    body_file: Option<std::path::PathBuf>,
    /// UP only if the body contains this (a regular expression with --regex)
    #[arg(long, value_name = "STR")]
    body_match: Option<String>,
    /// UP only if the body does not contain this (a regular expression with --regex)
    #[arg(long, value_name = "STR")]
    body_not_match: Option<String>,
    /// --body-match and --body-not-match are regular expressions (Rust regex syntax)
    #[arg(long)]
    regex: bool,
    /// A JSONPath ($.status) or JSON Pointer (/status) into the JSON body: UP only if it finds something
    #[arg(long, value_name = "PATH")]
    json_path: Option<String>,
    /// What --json-path must find (strings compared without quotes; numbers and booleans as written)
    #[arg(long, value_name = "VALUE", requires = "json_path")]
    json_expect: Option<String>,
    /// A slower answer counts as a failure ('slow: 2.31s > 2s'); shorter than --timeout
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    max_latency: Option<Duration>,
    /// Do not follow redirects: a 3xx is the final answer (pair with --expect 3xx)
    #[arg(long)]
    no_follow: bool,
    /// Connect over IPv4 or IPv6 only
    #[arg(long, value_name = "4|6", value_parser = clap::builder::PossibleValuesParser::new(["4", "6"]))]
    ip_version: Option<String>,
    /// HTTPS: DOWN when the certificate expires within this many days (1-365) [default: only an invalid certificate fails]
    #[arg(long, value_name = "DAYS")]
    warn_days: Option<u32>,
    /// A DNS server for the host name, IP[:PORT] (repeatable) [default: the cluster's, see 'qu cluster resolvers', else the system's]
    #[arg(long = "resolver", value_name = "IP[:PORT]")]
    resolvers: Vec<String>,
    /// Do not verify the target's TLS certificate
    #[arg(long)]
    insecure: bool,
}

impl HttpTarget {
    pub(crate) fn kind(self) -> Result<CheckKind, Failure> {
        let body = match (&self.body, &self.body_file) {
            (Some(b), _) => Some(b.clone()),
            (None, Some(path)) => Some(read_text("--body-file", path)?),
            (None, None) => None,
        };
        Ok(CheckKind::Http(Box::new(HttpCheck {
            url: self.url,
            expect: self.expect,
            body_match: self.body_match,
            insecure: self.insecure,
            method: self.method.filter(|m| m != "GET"),
            headers: self.headers,
            body,
            body_not_match: self.body_not_match,
            regex: self.regex,
            json_path: self.json_path,
            json_expect: self.json_expect,
            max_latency_ms: self.max_latency.map(|d| d.as_millis() as u64),
            no_follow: self.no_follow,
            ip_version: self.ip_version.and_then(|v| v.parse().ok()),
            warn_days: self.warn_days,
            resolvers: self.resolvers,
        })))
    }
}

/// What a TLS check connects to and verifies.
#[derive(Debug, Args)]
pub struct TlsTarget {
    /// Where to connect: HOST or HOST:PORT ([IPv6]:PORT) [default port: 443]
    #[arg(value_name = "HOST[:PORT]")]
    target: String,
    /// The name to send (SNI) and verify the certificate for [default: HOST]
    #[arg(long, value_name = "NAME")]
    sni: Option<String>,
    /// DOWN when the certificate expires within this many days, 1-365
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_WARN_DAYS)]
    warn_days: u32,
    /// Trust the certificates of this PEM file (read now) instead of the system roots (e.g. a private CA, or a self-signed certificate itself)
    #[arg(long, value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// Upgrade a plain connection first: smtp, imap, pop3 or postgres
    #[arg(long, value_name = "PROTOCOL", value_parser = parse_starttls)]
    starttls: Option<Starttls>,
    /// A DNS server for the host name, IP[:PORT] (repeatable) [default: the cluster's, else the system's]
    #[arg(long = "resolver", value_name = "IP[:PORT]")]
    resolvers: Vec<String>,
}

impl TlsTarget {
    pub(crate) fn kind(self) -> Result<CheckKind, Failure> {
        let ca = match &self.ca {
            Some(path) => Some(read_text("--ca", path)?),
            None => None,
        };
        Ok(CheckKind::Tls(TlsCheck {
            target: with_default_port(&self.target, 443),
            sni: self.sni,
            warn_days: self.warn_days,
            ca,
            starttls: self.starttls,
            resolvers: self.resolvers,
        }))
    }
}

/// What a DNS check asks and expects.
#[derive(Debug, Args)]
pub struct DnsTarget {
    /// The name to look up, e.g. example.com or _sip._tcp.example.com
    #[arg(value_name = "HOSTNAME")]
    hostname: String,
    /// The record type: A, AAAA, CNAME, MX, TXT, NS, SOA, SRV or CAA
    #[arg(long, value_name = "TYPE", default_value = "A", value_parser = parse_record)]
    record: String,
    /// A value the answer must contain (repeatable: all must be there); case and trailing dots do not matter; MX may be '10 mail.example.com' or 'mail.example.com'
    #[arg(long, value_name = "VALUE")]
    expect: Vec<String>,
    /// The DNS server to ask, IP[:PORT] (repeatable) [default: the cluster's, else /etc/resolv.conf]
    #[arg(long = "resolver", value_name = "IP[:PORT]")]
    resolvers: Vec<String>,
    /// Ask over TCP only [default: UDP, retried over TCP when the answer is truncated]
    #[arg(long)]
    tcp: bool,
}

impl DnsTarget {
    pub fn kind(self) -> CheckKind {
        CheckKind::Dns(DnsCheck {
            hostname: self.hostname,
            record: self.record,
            expect: self.expect,
            resolvers: self.resolvers,
            tcp: self.tcp,
        })
    }
}

/// The kind-specific flags of `qu check edit`. Each changes only its
/// field; '' (or 'none', 'off', 'any' where shown) removes an optional one.
#[derive(Debug, Args)]
pub struct KindEdits {
    /// Statuses that count as UP (http: 200, 2xx,301, or 'any' for any 2xx), or the values the answer must contain (dns, repeatable, 'none' for no expectation)
    #[arg(long, value_name = "VALUE")]
    expect: Vec<String>,
    /// The request method (http)
    #[arg(long, value_name = "METHOD", value_parser = parse_method)]
    method: Option<String>,
    /// Request headers 'Name: value' (http; repeatable, replacing all; 'none' removes them)
    #[arg(long = "header", value_name = "'NAME: VALUE'|none")]
    headers: Vec<String>,
    /// The request body (http; '' removes it)
    #[arg(long, value_name = "STR", conflicts_with = "body_file")]
    body: Option<String>,
    /// The request body, read from this file now (http)
    #[arg(long, value_name = "PATH")]
    body_file: Option<std::path::PathBuf>,
    /// UP only if the body does not contain this (http; '' removes it)
    #[arg(long, value_name = "STR")]
    body_not_match: Option<String>,
    /// Body matches are regular expressions (http)
    #[arg(long, value_name = "true|false", action = clap::ArgAction::Set)]
    regex: Option<bool>,
    /// A JSONPath or JSON Pointer into the body (http; '' removes it)
    #[arg(long, value_name = "PATH")]
    json_path: Option<String>,
    /// What --json-path must find (http; '' removes it)
    #[arg(long, value_name = "VALUE")]
    json_expect: Option<String>,
    /// Slower answers fail (http; 'off' removes the bound)
    #[arg(long, value_name = "DURATION|off")]
    max_latency: Option<String>,
    /// A redirect is the final answer (http)
    #[arg(long, value_name = "true|false", action = clap::ArgAction::Set)]
    no_follow: Option<bool>,
    /// Connect over IPv4 or IPv6 only (http; 'any' for both)
    #[arg(long, value_name = "4|6|any", value_parser = clap::builder::PossibleValuesParser::new(["4", "6", "any"]))]
    ip_version: Option<String>,
    /// DOWN when the certificate expires within this many days (tls; https, where 'off' removes it)
    #[arg(long, value_name = "DAYS|off")]
    warn_days: Option<String>,
    /// The name to send and verify (tls; '' for the target's host; the state restarts at unknown)
    #[arg(long, value_name = "NAME")]
    sni: Option<String>,
    /// Trust this PEM file instead of the system roots (tls; 'none' for the system roots)
    #[arg(long, value_name = "FILE|none")]
    ca: Option<String>,
    /// Upgrade with STARTTLS first (tls; 'none' for plain TLS)
    #[arg(long, value_name = "PROTOCOL|none")]
    starttls: Option<String>,
    /// The name to look up (dns; the state restarts at unknown)
    #[arg(long, value_name = "HOSTNAME")]
    hostname: Option<String>,
    /// The record type (dns; the state restarts at unknown)
    #[arg(long, value_name = "TYPE", value_parser = parse_record)]
    record: Option<String>,
    /// Ask over TCP only (dns)
    #[arg(long, value_name = "true|false", action = clap::ArgAction::Set)]
    tcp: Option<bool>,
    /// DNS servers, IP[:PORT] (repeatable, replacing the check's; 'none' for the cluster's)
    #[arg(long = "resolver", value_name = "IP[:PORT]|none")]
    resolvers: Vec<String>,
}

/// `''` (and the given words) clear a field; anything else sets it.
fn set_or_clear(p: &mut Patch, field: &str, value: &Option<String>, clear_words: &[&str]) {
    match value.as_deref() {
        None => {}
        Some(v) if v.is_empty() || clear_words.contains(&v) => {
            p.clear(field);
        }
        Some(v) => {
            p.set(field, v);
        }
    }
}

impl KindEdits {
    /// Lays these flags into `p`.
    pub(crate) fn patch(&self, p: &mut Patch) -> Result<(), Failure> {
        match self.expect.as_slice() {
            [] => {}
            [one] if ["any", "none"].contains(&one.as_str()) => {
                p.clear("expect");
            }
            // A plain code travels as the number older nodes read.
            [one] => match one.trim().parse::<u16>() {
                Ok(code) => {
                    p.set("expect", code);
                }
                Err(_) => {
                    p.set("expect", one);
                }
            },
            many => {
                p.set("expect", many);
            }
        }
        p.set_some("method", self.method.as_ref());
        match self.headers.as_slice() {
            [] => {}
            [none] if none == "none" => {
                p.clear("headers");
            }
            given => {
                let parsed = given
                    .iter()
                    .map(|h| parse_header(h).map_err(|e| Failure::msg(format!("--header: {e}"))))
                    .collect::<Result<Vec<_>, _>>()?;
                p.set("headers", parsed);
            }
        }
        match (&self.body, &self.body_file) {
            (Some(_), _) => set_or_clear(p, "body", &self.body, &[]),
            (None, Some(path)) => {
                p.set("body", read_text("--body-file", path)?);
            }
            (None, None) => {}
        }
        set_or_clear(p, "body_not_match", &self.body_not_match, &[]);
        p.set_some("regex", self.regex);
        set_or_clear(p, "json_path", &self.json_path, &[]);
        set_or_clear(p, "json_expect", &self.json_expect, &[]);
        match self.max_latency.as_deref() {
            None => {}
            Some("off") | Some("") => {
                p.clear("max_latency_ms");
            }
            Some(d) => {
                let d =
                    parse_duration(d).map_err(|e| Failure::msg(format!("--max-latency: {e}")))?;
                p.set("max_latency_ms", d.as_millis() as u64);
            }
        }
        p.set_some("no_follow", self.no_follow);
        match self.ip_version.as_deref() {
            None => {}
            Some("any") => {
                p.clear("ip_version");
            }
            Some(v) => {
                p.set("ip_version", v.parse::<u8>().unwrap_or(0));
            }
        }
        match self.warn_days.as_deref() {
            None => {}
            Some("off") | Some("") => {
                p.clear("warn_days");
            }
            Some(d) => {
                let days: u32 = d.parse().map_err(|_| {
                    Failure::msg(format!(
                        "--warn-days: {d:?} is not a number of days (1-365, or 'off')"
                    ))
                })?;
                p.set("warn_days", days);
            }
        }
        set_or_clear(p, "sni", &self.sni, &[]);
        match self.ca.as_deref() {
            None => {}
            Some("none") | Some("") => {
                p.clear("ca");
            }
            Some(path) => {
                p.set("ca", read_text("--ca", std::path::Path::new(path))?);
            }
        }
        match self.starttls.as_deref() {
            None => {}
            Some("none") | Some("") => {
                p.clear("starttls");
            }
            Some(s) => {
                p.set("starttls", parse_starttls(s).map_err(Failure::msg)?);
            }
        }
        p.set_some("hostname", self.hostname.as_ref());
        p.set_some("record", self.record.as_ref());
        p.set_some("tcp", self.tcp);
        match self.resolvers.as_slice() {
            [] => {}
            [none] if none == "none" => {
                p.clear("resolvers");
            }
            given => {
                p.set("resolvers", given);
            }
        }
        Ok(())
    }
}

/// The flags `KindEdits` adds, for the "nothing to change" message.
pub const KIND_EDIT_FLAGS: &str = "--expect, --method, --header, --body(-file), --body-not-match, --regex, --json-path, --json-expect, --max-latency, --no-follow, --ip-version, --warn-days, --sni, --ca, --starttls, --hostname, --record, --tcp, --resolver";

/// A file named on the command line, as UTF-8 text (bounded).
fn read_text(flag: &str, path: &std::path::Path) -> Result<String, Failure> {
    const MAX: u64 = 64 * 1024;
    let meta = std::fs::metadata(path)
        .map_err(|e| Failure::msg(format!("{flag}: cannot read {}: {e}", path.display())))?;
    if meta.len() > MAX {
        return Err(Failure::msg(format!(
            "{flag}: {} is {} bytes; at most {MAX} are accepted",
            path.display(),
            meta.len()
        )));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::msg(format!("{flag}: cannot read {}: {e}", path.display())))?;
    String::from_utf8(bytes)
        .map_err(|_| Failure::msg(format!("{flag}: {} is not UTF-8 text", path.display())))
}

/// `host` → `host:443`; `host:8443` and `[::1]:8443` stay; a bare IPv6
/// address gets brackets.
fn with_default_port(target: &str, port: u16) -> String {
    if target.parse::<std::net::Ipv6Addr>().is_ok() {
        return format!("[{target}]:{port}");
    }
    let has_port = match target.rsplit_once(':') {
        Some((host, p)) => {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_digit())
                && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    };
    if has_port || target.contains("://") {
        target.to_string()
    } else {
        format!("{target}:{port}")
    }
}

fn parse_status_list(s: &str) -> Result<StatusExpect, String> {
    StatusExpect::parse(s).map_err(|e| e.message)
}

fn parse_method(s: &str) -> Result<String, String> {
    let m = s.trim().to_ascii_uppercase();
    if !m.is_empty() && m.chars().all(|c| c.is_ascii_uppercase() || c == '-') {
        Ok(m)
    } else {
        Err(format!(
            "{s:?} is not an HTTP method: use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS"
        ))
    }
}

/// `Name: value`.
pub fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!(
            "{:?} is not a header: use 'Name: value', e.g. 'Accept: application/json'",
            s.chars().take(40).collect::<String>()
        )),
    }
}

fn parse_starttls(s: &str) -> Result<Starttls, String> {
    Starttls::parse(s).map_err(|e| e.message)
}

fn parse_record(s: &str) -> Result<String, String> {
    let r = s.trim().to_ascii_uppercase();
    if qu_raft::kinds::RECORD_TYPES.contains(&r.as_str()) {
        Ok(r)
    } else {
        Err(format!(
            "{s:?} is not a record type qu can ask for: use one of {}",
            qu_raft::kinds::RECORD_TYPES.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ports() {
        assert_eq!(with_default_port("example.com", 443), "example.com:443");
        assert_eq!(
            with_default_port("example.com:8443", 443),
            "example.com:8443"
        );
        assert_eq!(with_default_port("::1", 443), "[::1]:443");
        assert_eq!(with_default_port("[::1]:993", 443), "[::1]:993");
        assert_eq!(with_default_port("127.0.0.1", 443), "127.0.0.1:443");
    }

    #[test]
    fn headers_and_methods() {
        assert_eq!(
            parse_header("Authorization: Bearer x:y").unwrap(),
            ("Authorization".into(), "Bearer x:y".into())
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header(": v").is_err());
        assert_eq!(parse_method("post").unwrap(), "POST");
        assert!(parse_method("GE T").is_err());
        assert_eq!(parse_record("aaaa").unwrap(), "AAAA");
        assert!(parse_record("AXFR").is_err());
    }
}
