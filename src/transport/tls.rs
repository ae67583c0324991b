//! rustls configurations and certificate verifiers for the two transport
//! paths (see the module doc of `transport`).
//!
//! Invariants:
//! - TLS 1.3 only; one crypto provider (aws-lc-rs) for the whole binary.
//! - Handshake signatures are always verified through the provider, on every
//!   path: holding a pinned certificate without its key gets nowhere.
//! - Member path: a certificate is accepted only when its SPKI fingerprint is
//!   pinned and it claims the node id pinned with that fingerprint.
//! - No session resumption: every connection runs the verifier afresh, so a
//!   removed trust entry cannot ride on an old session ticket.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::NoServerSessionStorage;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, Error, ServerConfig,
    SignatureScheme,
};

use super::SharedTrust;
use crate::crypto::cert::{claimed_node_id, fingerprint_of, node_dns_name};
use crate::crypto::{Fingerprint, Identity};
use qu_raft::NodeId;

/// ALPN of member connections.
pub const ALPN_MEMBER: &[u8] = b"qu/1";
/// ALPN of trust-on-first-use connections (hello, join).
pub const ALPN_HELLO: &[u8] = b"qu-hello/1";

/// The one crypto provider of the binary.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

fn refuse(why: String) -> Error {
    static THROTTLE: std::sync::Mutex<Throttle> = std::sync::Mutex::new(Throttle::new());
    let verdict = THROTTLE
        .lock()
        .map(|mut t| t.admit(&why, std::time::Instant::now()))
        .unwrap_or(Some(0));
    match verdict {
        Some(0) => tracing::warn!(target: "qu::transport", "refused peer certificate: {why}"),
        Some(n) => {
            tracing::warn!(target: "qu::transport", "refused peer certificate: {why} ({n} more like it in the last minute)")
        }
        None => {}
    }
    Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
}

/// Logs a repeated warning once per `THROTTLE_WINDOW` per distinct text,
/// with how many were held back: a member whose pin was dropped retries
/// several times a second, and one line a minute says as much.
struct Throttle {
    seen: Option<std::collections::HashMap<String, (std::time::Instant, u64)>>,
}

const THROTTLE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// Distinct texts remembered (beyond that the memory starts over).
const THROTTLE_KEYS: usize = 1024;

impl Throttle {
    const fn new() -> Throttle {
        Throttle { seen: None }
    }

    /// `Some(held_back)` when the warning should be logged now, `None` when
    /// it is held back.
    fn admit(&mut self, key: &str, now: std::time::Instant) -> Option<u64> {
        let seen = self.seen.get_or_insert_with(Default::default);
        if seen.len() >= THROTTLE_KEYS && !seen.contains_key(key) {
            seen.clear();
        }
        match seen.get_mut(key) {
            Some((last, held)) if now.saturating_duration_since(*last) < THROTTLE_WINDOW => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                let n = *held;
                *last = now;
                *held = 0;
                Some(n)
            }
            None => {
                seen.insert(key.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod throttle_tests {
    use super::Throttle;
    use std::time::{Duration, Instant};

    #[test]
    fn a_repeated_warning_is_logged_once_a_minute_with_the_count() {
        let mut t = Throttle::new();
        let t0 = Instant::now();
        assert_eq!(t.admit("node 2 not pinned", t0), Some(0));
        for i in 1..=300 {
            // Five a second for a minute.
            assert_eq!(
                t.admit("node 2 not pinned", t0 + Duration::from_millis(i * 199)),
                None
            );
        }
        assert_eq!(
            t.admit("another node", t0 + Duration::from_secs(1)),
            Some(0)
        );
        assert_eq!(
            t.admit("node 2 not pinned", t0 + Duration::from_secs(60)),
            Some(300)
        );
        assert_eq!(
            t.admit("node 2 not pinned", t0 + Duration::from_secs(61)),
            None
        );
    }
}

/// Checks a member certificate against the trust store: pinned fingerprint,
/// and the node id it claims is the one pinned with that fingerprint.
pub fn check_member_cert(
    trust: &SharedTrust,
    cert: &CertificateDer<'_>,
) -> Result<(NodeId, Fingerprint), String> {
    let fp = fingerprint_of(cert).map_err(|e| e.to_string())?;
    let claimed = claimed_node_id(cert).map_err(|e| e.to_string())?;
    let store = trust.borrow().clone();
    match store.by_fingerprint(&fp) {
        None => Err(format!(
            "certificate {fp} (claiming node {claimed}) is not in the trust store"
        )),
        Some(entry) if entry.node_id != claimed => Err(format!(
            "certificate {fp} is pinned for node {} but claims node {claimed}",
            entry.node_id
        )),
        Some(entry) => Ok((entry.node_id, fp)),
    }
}

#[derive(Debug)]
struct SignatureCheck(Arc<CryptoProvider>);

impl SignatureCheck {
    fn tls12(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn tls13(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Server side, member path: the client certificate must be pinned.
#[derive(Debug)]
struct MemberClientVerifier {
    trust: SharedTrust,
    sig: SignatureCheck,
}

impl ClientCertVerifier for MemberClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        check_member_cert(&self.trust, end_entity).map_err(refuse)?;
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.sig.tls12(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.sig.tls13(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.sig.schemes()
    }
}

/// Server side, hello path: a certificate is optional and not pinned, but
/// when one is given its signature proves the caller holds the key.
#[derive(Debug)]
struct StrangerClientVerifier {
    sig: SignatureCheck,
}

impl ClientCertVerifier for StrangerClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        fingerprint_of(end_entity).map_err(|e| refuse(e.to_string()))?;
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.sig.tls12(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.sig.tls13(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.sig.schemes()
    }
}

/// Client side: the server must present exactly the pinned certificate key
/// and claim the node we meant to dial. With `expected == None` (hello
/// path) any certificate is accepted; the caller shows its fingerprint to
/// the operator.
#[derive(Debug)]
struct ServerVerifier {
    expected: Option<(NodeId, Fingerprint)>,
    sig: SignatureCheck,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let fp = fingerprint_of(end_entity).map_err(|e| refuse(e.to_string()))?;
        if let Some((node, pinned)) = self.expected {
            if fp != pinned {
                return Err(refuse(format!(
                    "node {node} presented certificate {fp}, but {pinned} is pinned"
                )));
            }
            let claimed = claimed_node_id(end_entity).map_err(|e| refuse(e.to_string()))?;
            if claimed != node {
                return Err(refuse(format!(
                    "dialled node {node} but its certificate claims node {claimed}"
                )));
            }
        }
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.sig.tls12(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.sig.tls13(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.sig.schemes()
    }
}

/// Errors building a TLS configuration from an identity.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the TLS configuration: {0}")]
pub struct TlsConfigError(#[from] Error);

fn no_resumption_server(mut cfg: ServerConfig, alpn: &[u8]) -> ServerConfig {
    cfg.session_storage = Arc::new(NoServerSessionStorage {});
    cfg.send_tls13_tickets = 0;
    cfg.alpn_protocols = vec![alpn.to_vec()];
    cfg
}

/// Server configuration of the member path.
pub fn member_server_config(
    identity: &Identity,
    trust: SharedTrust,
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let p = provider();
    let verifier = Arc::new(MemberClientVerifier {
        trust,
        sig: SignatureCheck(p.clone()),
    });
    let cfg = ServerConfig::builder_with_provider(p)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![identity.cert.clone()], identity.private_key())?;
    Ok(Arc::new(no_resumption_server(cfg, ALPN_MEMBER)))
}

/// Server configuration of the hello path.
pub fn stranger_server_config(identity: &Identity) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let p = provider();
    let verifier = Arc::new(StrangerClientVerifier {
        sig: SignatureCheck(p.clone()),
    });
    let cfg = ServerConfig::builder_with_provider(p)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![identity.cert.clone()], identity.private_key())?;
    Ok(Arc::new(no_resumption_server(cfg, ALPN_HELLO)))
}

fn client_config(
    identity: &Identity,
    expected: Option<(NodeId, Fingerprint)>,
    alpn: &[u8],
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let p = provider();
    let verifier = Arc::new(ServerVerifier {
        expected,
        sig: SignatureCheck(p.clone()),
    });
    let mut cfg = ClientConfig::builder_with_provider(p)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![identity.cert.clone()], identity.private_key())?;
    cfg.resumption = Resumption::disabled();
    cfg.enable_sni = false;
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(cfg))
}

/// Client configuration for dialling the member `node`, pinned to `fp`.
pub fn member_client_config(
    identity: &Identity,
    node: NodeId,
    fp: Fingerprint,
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    client_config(identity, Some((node, fp)), ALPN_MEMBER)
}

/// Client configuration of the hello path: presents our certificate; pins
/// the server to `expected` when given (a join after a checked hello),
/// else accepts any (the first hello, shown to the operator).
pub fn stranger_client_config(
    identity: &Identity,
    expected: Option<(NodeId, Fingerprint)>,
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    client_config(identity, expected, ALPN_HELLO)
}

/// The TLS server name used when dialling `node` (SNI is not sent).
pub fn server_name_for(node: Option<NodeId>) -> ServerName<'static> {
    let name = match node {
        Some(n) => node_dns_name(n),
        None => "hello.node.qu".to_string(),
    };
    ServerName::try_from(name)
        .unwrap_or_else(|_| ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()))
}
