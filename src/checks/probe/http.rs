//! HTTP(S) probes with reqwest on rustls: GET, up to 10 redirects, UP on
//! the expected status (any 2xx by default) and body substring.
//!
//! Each probe opens a fresh connection (no idle pool), so a server that no
//! longer accepts new connections is seen failing; the two clients
//! (verifying and `--insecure`) are built once and shared.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::redirect::Policy;

/// Largest body read when looking for `--body-match`.
const MAX_BODY: usize = 1024 * 1024;

pub struct HttpProber {
    verified: reqwest::Client,
    insecure: reqwest::Client,
}

fn client(insecure: bool, source: Option<IpAddr>) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(Policy::limited(10))
        .user_agent(concat!(
            "qu/",
            env!("CARGO_PKG_VERSION"),
            " (uptime monitor)"
        ))
        .tls_danger_accept_invalid_certs(insecure)
        .local_address(source)
        .connect_timeout(Duration::from_secs(60))
        .build()
}

impl HttpProber {
    pub fn new(source: Option<IpAddr>) -> reqwest::Result<HttpProber> {
        Ok(HttpProber {
            verified: client(false, source)?,
            insecure: client(true, source)?,
        })
    }

    pub async fn probe(
        &self,
        url: &str,
        expect: Option<u16>,
        body_match: Option<&str>,
        insecure: bool,
    ) -> Result<(), String> {
        let c = if insecure {
            &self.insecure
        } else {
            &self.verified
        };
        let mut resp = c.get(url).send().await.map_err(|e| describe(&e))?;
        let status = resp.status();
        match expect {
            Some(code) if status.as_u16() != code => {
                return Err(format!("HTTP {}, expected {code}", status.as_u16()));
            }
            None if !status.is_success() => return Err(format!("HTTP {}", status.as_u16())),
            _ => {}
        }
        if let Some(needle) = body_match {
            let mut body: Vec<u8> = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e))? {
                body.extend_from_slice(&chunk);
                if contains(&body, needle.as_bytes()) {
                    return Ok(());
                }
                if body.len() >= MAX_BODY {
                    break;
                }
            }
            return Err(format!("body did not contain {needle:?}"));
        }
        Ok(())
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
    while let Some(s) = source {
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            use rustls::CertificateError::*;
            return match tls {
                rustls::Error::InvalidCertificate(c) => match c {
                    Expired | ExpiredContext { .. } => "certificate expired".into(),
                    UnknownIssuer => {
                        "certificate not trusted (unknown issuer or self-signed)".into()
                    }
                    NotValidForName | NotValidForNameContext { .. } => {
                        "certificate not valid for this host".into()
                    }
                    other => format!("certificate rejected: {other:?}"),
                },
                other => format!("TLS error: {other}"),
            };
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                    return format!("TLS error: {tls}");
                }
            }
            let peer = e
                .url()
                .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)));
            return super::describe_io_at(io, peer.as_deref());
        }
        let text = s.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return "DNS lookup failed".into();
        }
        source = s.source();
    }
    let text = e.to_string();
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn substring_search() {
        assert!(super::contains(b"hello OK world", b"OK"));
        assert!(!super::contains(b"hello", b"OK"));
    }
}
