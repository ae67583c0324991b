//! Reading what a peer's X.509 certificate says: its SPKI fingerprint and the
//! node id it claims.
//!
//! A qu certificate claims its node id as the DNS subject alternative name
//! `<16 hex digits>.node.qu`. The claim is only believed when the certificate's
//! fingerprint is pinned for that same node id (see `transport::tls`).

use rustls::pki_types::CertificateDer;

use super::Fingerprint;
use qu_raft::NodeId;

/// The DNS-name suffix under which certificates claim their node id.
pub const NODE_NAME_SUFFIX: &str = ".node.qu";

/// What could not be read from a certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("the certificate cannot be parsed: {0}")]
    Parse(String),
    #[error("the certificate claims no qu node id (no *{NODE_NAME_SUFFIX} name)")]
    NoNodeClaim,
}

/// The DNS name a certificate uses to claim `id`.
pub fn node_dns_name(id: NodeId) -> String {
    format!("{}{NODE_NAME_SUFFIX}", id.hex())
}

/// SHA-256 over the certificate's SubjectPublicKeyInfo.
pub fn fingerprint_of(cert: &CertificateDer<'_>) -> Result<Fingerprint, CertError> {
    let parsed =
        webpki::EndEntityCert::try_from(cert).map_err(|e| CertError::Parse(e.to_string()))?;
    Ok(Fingerprint::of_spki(
        parsed.subject_public_key_info().as_ref(),
    ))
}

/// The node id the certificate claims.
pub fn claimed_node_id(cert: &CertificateDer<'_>) -> Result<NodeId, CertError> {
    let parsed =
        webpki::EndEntityCert::try_from(cert).map_err(|e| CertError::Parse(e.to_string()))?;
    let claim = parsed
        .valid_dns_names()
        .filter_map(|name| name.strip_suffix(NODE_NAME_SUFFIX))
        .find_map(|hex| hex.parse::<NodeId>().ok().filter(|_| hex.len() == 16));
    claim.ok_or(CertError::NoNodeClaim)
}

/// A certificate as it travels in JSON: base64 of its DER.
pub mod der_b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use rustls::pki_types::CertificateDer;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(c: &CertificateDer<'static>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(c.as_ref()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<CertificateDer<'static>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD
            .decode(s.as_bytes())
            .map(CertificateDer::from)
            .map_err(serde::de::Error::custom)
    }
}

/// The certificate a replicated peer record holds (base64 of its DER).
pub fn cert_from_b64(s: &str) -> Result<CertificateDer<'static>, base64::DecodeError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s.as_bytes())
        .map(CertificateDer::from)
}

/// A certificate as the replicated state stores it: base64 of its DER.
pub fn der_b64_string(c: &CertificateDer<'_>) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(c.as_ref())
}
