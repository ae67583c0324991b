//! TLS probes: connect over TCP (optionally STARTTLS), complete a real TLS
//! handshake, then judge the certificate chain ourselves, in a fixed order:
//! trust (self-signed / unknown issuer), validity period, name, `--warn-days`.
//!
//! Invariants:
//! - The handshake accepts any certificate (so a failing chain is still seen
//!   and described), but handshake signatures are checked for real, and the
//!   probe sends no application data: the connection is judged, then closed
//!   with `close_notify`.
//! - Trust is judged at a time inside the leaf's validity period, so an
//!   expired untrusted certificate is reported as untrusted, not as expired.
//! - One `ClientConfig` (no session resumption: each probe sees the
//!   certificate a new visitor sees) and the system roots are built once;
//!   `--ca` root stores are parsed once per PEM text, in a small cache.
//! - Every read is size-bounded (see `starttls`); the caller bounds time.

mod starttls;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name, Resumption};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The protocol spoken in clear before the TLS handshake (the record's
/// own type: one enum for the model, the CLI and the prober).
pub use qu_raft::model::Starttls;

/// What one TLS probe connects to and checks.
#[derive(Debug, Clone)]
pub struct TlsTarget<'a> {
    /// Already resolved; tried in order, the first that connects is used.
    pub addrs: &'a [SocketAddr],
    /// Local address to bind (for the addresses of the same family).
    pub source: Option<IpAddr>,
    /// SNI and the name verified: a DNS name, or an IP literal (then IP SANs
    /// are verified and no SNI is sent).
    pub server_name: &'a str,
    /// PEM text of `--ca`: its certificates replace the system roots.
    pub ca_pem: Option<&'a str>,
    pub warn_days: u32,
    pub starttls: Option<Starttls>,
}

/// The result of one TLS probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOutcome {
    /// None when the certificate is good; otherwise a short human reason.
    pub reason: Option<String>,
    /// The leaf's notAfter (ms since the Unix epoch) whenever a certificate
    /// was seen, also on failure.
    pub not_after_ms: Option<u64>,
}

/// Why the TLS prober could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error(
        "no system root certificate could be loaded ({detail}); install the ca-certificates \
         package (or point SSL_CERT_FILE / SSL_CERT_DIR at a CA bundle)"
    )]
    NoSystemRoots { detail: String },
    #[error("cannot build the TLS client configuration")]
    Config(#[source] rustls::Error),
}

/// Most `--ca` root stores kept parsed; the cache is emptied when full.
const CA_CACHE_MAX: usize = 64;
/// How long the polite close (`close_notify`) may take once judged.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Longest reason quoted from a certificate (issuer name) or server.
const MAX_QUOTE: usize = 200;

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;

/// The TLS prober of a node, built once and shared by its probes.
pub struct TlsProber {
    connector: TlsConnector,
    algs: WebPkiSupportedAlgorithms,
    system_roots: Arc<RootCertStore>,
    ca_cache: Mutex<HashMap<String, Arc<RootCertStore>>>,
}

impl TlsProber {
    /// Loads the system roots (reads the disk: call it at startup, not on
    /// a busy async worker) and builds the shared client configuration.
    pub fn new() -> Result<TlsProber, TlsSetupError> {
        let loaded = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
        if added == 0 {
            let detail = if loaded.errors.is_empty() {
                "the system store holds no usable certificate".to_string()
            } else {
                loaded
                    .errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            return Err(TlsSetupError::NoSystemRoots { detail });
        }
        TlsProber::with_roots(roots)
    }

    fn with_roots(system_roots: RootCertStore) -> Result<TlsProber, TlsSetupError> {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let algs = provider.signature_verification_algorithms;
        let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .map_err(TlsSetupError::Config)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SeeAnyCertificate { algs }))
            .with_no_client_auth();
        config.resumption = Resumption::disabled();
        Ok(TlsProber {
            connector: TlsConnector::from(Arc::new(config)),
            algs,
            system_roots: Arc::new(system_roots),
            ca_cache: Mutex::new(HashMap::new()),
        })
    }

    /// Probes `target` once. Never panics; pending only while the network
    /// is (the caller bounds it with `tokio::time::timeout`).
    pub async fn probe(&self, target: &TlsTarget<'_>) -> TlsOutcome {
        match self.attempt(target).await {
            Ok(outcome) => outcome,
            Err(reason) => TlsOutcome {
                reason: Some(reason),
                not_after_ms: None,
            },
        }
    }

    async fn attempt(&self, target: &TlsTarget<'_>) -> Result<TlsOutcome, String> {
        let asked = target
            .server_name
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = ServerName::try_from(asked)
            .map_err(|_| format!("{asked:?} is not a valid DNS name or IP address"))?
            .to_owned();
        let roots = match target.ca_pem {
            Some(pem) => self.ca_roots(pem)?,
            None => Arc::clone(&self.system_roots),
        };
        let (mut stream, peer) = connect(target.addrs, target.source).await?;
        if let Some(protocol) = target.starttls {
            starttls::negotiate(&mut stream, protocol)
                .await
                .map_err(|e| e.describe(&peer))?;
        }
        let mut tls = self
            .connector
            .connect(name.clone(), stream)
            .await
            .map_err(|e| handshake_error(&e, &peer))?;
        let outcome = match tls.get_ref().1.peer_certificates() {
            Some(chain) if !chain.is_empty() => judge(
                chain,
                &roots,
                &name,
                asked,
                now_ms(),
                target.warn_days,
                &self.algs,
            ),
            _ => TlsOutcome {
                reason: Some("server sent no certificate".into()),
                not_after_ms: None,
            },
        };
        // Judged: close politely, but never let the close hold the verdict.
        let _ = tokio::time::timeout(CLOSE_GRACE, tls.shutdown()).await;
        Ok(outcome)
    }

    /// The root store of a `--ca` PEM text, parsed once.
    fn ca_roots(&self, pem: &str) -> Result<Arc<RootCertStore>, String> {
        let mut cache = self.ca_cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(roots) = cache.get(pem) {
            return Ok(Arc::clone(roots));
        }
        let roots = Arc::new(ca_store(pem).map_err(|e| format!("--ca unusable: {e}"))?);
        if cache.len() >= CA_CACHE_MAX {
            cache.clear();
        }
        cache.insert(pem.to_string(), Arc::clone(&roots));
        Ok(roots)
    }
}

/// Accepts any server certificate during the handshake (the chain is judged
/// after it, by `judge`), but verifies the handshake signatures for real.
#[derive(Debug)]
struct SeeAnyCertificate {
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for SeeAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Opens a TCP connection to the first address that accepts.
async fn connect(
    addrs: &[SocketAddr],
    source: Option<IpAddr>,
) -> Result<(TcpStream, String), String> {
    let mut last = String::from("no address to connect to");
    for &addr in addrs {
        let peer = addr.to_string();
        match connect_one(addr, source).await {
            Ok(stream) => return Ok((stream, peer)),
            Err(e) => last = super::describe_io_at(&e, Some(&peer)),
        }
    }
    Err(last)
}

async fn connect_one(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    super::tcp::connect(addr, source).await
}

fn handshake_error(e: &std::io::Error, peer: &str) -> String {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return format!("TLS handshake failed: {tls}");
    }
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        return "TLS handshake failed: connection closed by the server".into();
    }
    super::describe_io_at(e, Some(peer))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What `judge` needs from the leaf, read with x509-parser.
struct Leaf {
    not_before_s: i64,
    not_after_s: i64,
    self_issued: bool,
    issuer: String,
    /// DNS SANs, then IP SANs, as written.
    names: Vec<String>,
}

fn read_leaf(der: &[u8]) -> Result<Leaf, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let validity = cert.validity();
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    // A malformed SAN extension leaves the list empty; webpki rejects it.
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => dns.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    if let Some(ip) = ip_from_bytes(b) {
                        ips.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    dns.extend(ips);
    Ok(Leaf {
        not_before_s: validity.not_before.timestamp(),
        not_after_s: validity.not_after.timestamp(),
        self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
        issuer: quote(&cert.issuer().to_string()),
        names: dns,
    })
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(b) {
        return Some(IpAddr::from(v4));
    }
    <[u8; 16]>::try_from(b).ok().map(IpAddr::from)
}

fn quote(s: &str) -> String {
    if s.chars().count() <= MAX_QUOTE {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_QUOTE).collect();
    out.push('…');
    out
}

/// Judges a presented chain (leaf first) at `now_ms`: trust, validity
/// period, name, then `warn_days`; the first failure is the reason.
fn judge(
    chain: &[CertificateDer<'_>],
    roots: &RootCertStore,
    name: &ServerName<'_>,
    asked: &str,
    now_ms: u64,
    warn_days: u32,
    algs: &WebPkiSupportedAlgorithms,
) -> TlsOutcome {
    let Some((leaf_der, intermediates)) = chain.split_first() else {
        return failed("server sent no certificate".into(), None);
    };
    let leaf = match read_leaf(leaf_der) {
        Ok(leaf) => leaf,
        Err(e) => return failed(format!("certificate does not parse: {e}"), None),
    };
    let not_before_ms = secs_to_ms(leaf.not_before_s);
    let not_after_ms = secs_to_ms(leaf.not_after_s);
    let seen = Some(not_after_ms);
    let parsed = match ParsedCertificate::try_from(leaf_der) {
        Ok(p) => p,
        Err(e) => return failed(format!("certificate does not parse: {e}"), seen),
    };

    // Trust, at a time the leaf itself is valid: a time problem of the
    // leaf is reported below, after trust.
    let now_s = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
    let at = now_s.clamp(leaf.not_before_s, leaf.not_after_s.max(leaf.not_before_s));
    let at = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(at).unwrap_or(0)));
    if let Err(e) =
        verify_server_cert_signed_by_trust_anchor(&parsed, roots, intermediates, at, algs.all)
    {
        return failed(untrusted(&e, &leaf), seen);
    }

    if now_ms < not_before_ms {
        return failed(
            format!("certificate not valid before {}", stamp(not_before_ms)),
            seen,
        );
    }
    if now_ms > not_after_ms {
        return failed(expired_reason(not_after_ms, now_ms), seen);
    }

    if verify_server_name(&parsed, name).is_err() {
        return failed(
            format!("certificate for {}, not {asked}", names_list(&leaf.names)),
            seen,
        );
    }

    TlsOutcome {
        reason: expiry_reason(not_after_ms, now_ms, warn_days),
        not_after_ms: seen,
    }
}

fn failed(reason: String, not_after_ms: Option<u64>) -> TlsOutcome {
    TlsOutcome {
        reason: Some(reason),
        not_after_ms,
    }
}

/// The reason for a chain that does not verify to a trusted root.
///
/// A self-issued leaf that is not itself a trust anchor is "self-signed"
/// whatever webpki tripped on: a root with the same name but another key
/// (such as Debian's `ssl-cert-snakeoil` for `CN=localhost`) yields a
/// signature error rather than `UnknownIssuer`. For the same reason a
/// signature error is an unknown issuer: no trusted key signed the chain.
#[allow(deprecated)] // UnsupportedSignatureAlgorithm, still produced by webpki
fn untrusted(e: &rustls::Error, leaf: &Leaf) -> String {
    use CertificateError::*;
    let rustls::Error::InvalidCertificate(cert) = e else {
        return format!("certificate not trusted ({e})");
    };
    match cert {
        Expired | ExpiredContext { .. } | NotValidYet | NotValidYetContext { .. } => {
            "certificate not trusted (an issuer certificate is outside its validity period)".into()
        }
        _ if leaf.self_issued => "self-signed certificate".into(),
        UnknownIssuer
        | BadSignature
        | UnsupportedSignatureAlgorithm
        | UnsupportedSignatureAlgorithmContext { .. }
        | UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            format!("certificate not trusted (unknown issuer {})", leaf.issuer)
        }
        InvalidPurpose | InvalidPurposeContext { .. } => {
            "certificate not trusted (not issued for TLS servers)".into()
        }
        other => format!("certificate not trusted ({other})"),
    }
}

fn names_list(names: &[String]) -> String {
    if names.is_empty() {
        return "no DNS or IP name".into();
    }
    let mut out = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 3 {
        out.push_str(", …");
    }
    out
}

fn secs_to_ms(s: i64) -> u64 {
    u64::try_from(s).unwrap_or(0).saturating_mul(1000)
}

/// RFC 3339 UTC, to the second: `2026-12-10T00:00:00Z`.
fn stamp(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => t.to_string(),
        Err(_) => format!("{secs} s after the epoch"),
    }
}

/// `9 days`, `1 day`, `5 hours`, `12 minutes`, `less than a minute` (rounded down).
fn span(ms: u64) -> String {
    let (n, unit) = if ms >= DAY_MS {
        (ms / DAY_MS, "day")
    } else if ms >= HOUR_MS {
        (ms / HOUR_MS, "hour")
    } else if ms >= MINUTE_MS {
        (ms / MINUTE_MS, "minute")
    } else {
        return "less than a minute".into();
    };
    let s = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{s}")
}

fn expired_reason(not_after_ms: u64, now_ms: u64) -> String {
    let ago = span(now_ms.saturating_sub(not_after_ms));
    format!("certificate expired {ago} ago ({})", stamp(not_after_ms))
}

/// For HTTPS checks, which get the leaf from reqwest: its notAfter in ms
/// since the epoch (None when it does not parse).
pub fn leaf_not_after_ms(leaf_der: &[u8]) -> Option<u64> {
    read_leaf(leaf_der).ok().map(|l| secs_to_ms(l.not_after_s))
}

/// `Some("certificate expires in 9 days (…)")` when `not_after_ms` is less
/// than `warn_days` days after `now_ms`, `Some("certificate expired … ago
/// (…)")` when it is past; None otherwise.
pub fn expiry_reason(not_after_ms: u64, now_ms: u64, warn_days: u32) -> Option<String> {
    if not_after_ms < now_ms {
        return Some(expired_reason(not_after_ms, now_ms));
    }
    let left = not_after_ms - now_ms;
    if left >= u64::from(warn_days).saturating_mul(DAY_MS) {
        return None;
    }
    Some(format!(
        "certificate expires in {} ({})",
        span(left),
        stamp(not_after_ms)
    ))
}

/// The PEM blocks of `pem`, labels and contents; Err names the bad block.
fn pem_blocks(pem: &str) -> Result<Vec<(SectionKind, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes()) {
        let n = out.len() + 1;
        match item {
            Ok(block) => out.push(block),
            Err(rustls::pki_types::pem::Error::MissingSectionEnd { .. }) => {
                return Err(format!("PEM block {n} has no END line"));
            }
            Err(rustls::pki_types::pem::Error::Base64Decode(_)) => {
                return Err(format!("PEM block {n} is not valid base64"));
            }
            Err(e) => return Err(format!("PEM block {n} is malformed: {e}")),
        }
    }
    Ok(out)
}

/// The certificates of `pem`, each checked to be usable as a trust anchor.
fn ca_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut certs = Vec::new();
    for (kind, der) in pem_blocks(pem)? {
        if kind != SectionKind::Certificate {
            continue;
        }
        let der = CertificateDer::from(der);
        let n = certs.len() + 1;
        webpki::anchor_from_trusted_cert(&der)
            .map_err(|e| format!("CERTIFICATE block {n} is not a valid X.509 certificate ({e})"))?;
        certs.push(der);
    }
    if certs.is_empty() {
        return Err("no CERTIFICATE block in the PEM".into());
    }
    Ok(certs)
}

fn ca_store(pem: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for (i, der) in ca_certificates(pem)?.into_iter().enumerate() {
        roots.add(der).map_err(|e| {
            format!(
                "CERTIFICATE block {} is not a valid X.509 certificate ({e})",
                i + 1
            )
        })?;
    }
    Ok(roots)
}

/// Validation at add time: the PEM holds at least one parsable certificate;
/// Err says what is wrong (no CERTIFICATE block / which block does not
/// parse). Returns how many certificates it holds.
pub fn parse_ca_pem(pem: &str) -> Result<usize, String> {
    ca_certificates(pem).map(|c| c.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_round_down_with_singulars() {
        assert_eq!(span(0), "less than a minute");
        assert_eq!(span(MINUTE_MS - 1), "less than a minute");
        assert_eq!(span(MINUTE_MS), "1 minute");
        assert_eq!(span(HOUR_MS - 1), "59 minutes");
        assert_eq!(span(HOUR_MS), "1 hour");
        assert_eq!(span(DAY_MS - 1), "23 hours");
        assert_eq!(span(DAY_MS), "1 day");
        assert_eq!(span(10 * DAY_MS - 1), "9 days");
    }

    #[test]
    fn stamps_are_rfc3339_utc_seconds() {
        assert_eq!(stamp(1_796_860_800_000), "2026-12-10T00:00:00Z");
        assert_eq!(stamp(1_796_860_800_999), "2026-12-10T00:00:00Z");
    }

    #[test]
    fn expiry_boundaries() {
        let at = 1_796_860_800_000; // 2026-12-10T00:00:00Z
                                    // Exactly warn_days left: outside the window.
        assert_eq!(expiry_reason(at, at - 14 * DAY_MS, 14), None);
        assert_eq!(
            expiry_reason(at, at - 14 * DAY_MS + 1, 14).as_deref(),
            Some("certificate expires in 13 days (2026-12-10T00:00:00Z)")
        );
        assert_eq!(
            expiry_reason(at, at - 9 * DAY_MS - HOUR_MS, 14).as_deref(),
            Some("certificate expires in 9 days (2026-12-10T00:00:00Z)")
        );
        assert_eq!(
            expiry_reason(at, at - 5 * HOUR_MS - 1, 14).as_deref(),
            Some("certificate expires in 5 hours (2026-12-10T00:00:00Z)")
        );
        // notAfter is inclusive: valid at that very instant.
        assert_eq!(
            expiry_reason(at, at, 14).as_deref(),
            Some("certificate expires in less than a minute (2026-12-10T00:00:00Z)")
        );
        assert_eq!(
            expiry_reason(at, at + 1, 0).as_deref(),
            Some("certificate expired less than a minute ago (2026-12-10T00:00:00Z)")
        );
        assert_eq!(
            expiry_reason(at, at + 3 * DAY_MS + 5, 14).as_deref(),
            Some("certificate expired 3 days ago (2026-12-10T00:00:00Z)")
        );
        // warn_days 0: only an expired certificate fails.
        assert_eq!(expiry_reason(at, at - 1, 0), None);
        assert!(expiry_reason(at + DAY_MS, at, u32::MAX).is_some());
    }

    #[test]
    fn names_are_listed_up_to_three() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(names_list(&[]), "no DNS or IP name");
        assert_eq!(names_list(&names(&["a", "b", "c"])), "a, b, c");
        assert_eq!(names_list(&names(&["a", "b", "c", "d"])), "a, b, c, …");
    }

    #[test]
    fn ip_sans_of_both_families() {
        assert_eq!(
            ip_from_bytes(&[127, 0, 0, 1]),
            Some(IpAddr::from([127, 0, 0, 1]))
        );
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(ip_from_bytes(&v6), Some("::1".parse().unwrap()));
        assert_eq!(ip_from_bytes(&[1, 2, 3]), None);
    }

    #[test]
    fn starttls_names_round_trip() {
        for p in [
            Starttls::Smtp,
            Starttls::Imap,
            Starttls::Pop3,
            Starttls::Postgres,
        ] {
            assert_eq!(Starttls::parse(p.name()), Ok(p));
        }
        assert!(Starttls::parse("ftp").is_err());
    }
}
