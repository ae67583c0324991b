//! `Fingerprint`: SHA-256 of a certificate's SubjectPublicKeyInfo, written
//! `SHA256:` + unpadded base64 as `ssh-keygen -l` does (SPEC §2).
//!
//! Invariant: the textual form round-trips exactly; two certificates over the
//! same key have the same fingerprint.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use qu_raft::NodeId;

const PREFIX: &str = "SHA256:";

/// The pinned identity of a key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

/// Why a string is not a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a fingerprint: expected SHA256: followed by 43 characters of unpadded base64 (as printed by 'qu init')")]
pub struct FingerprintParseError(pub String);

impl Fingerprint {
    /// The fingerprint of a DER-encoded SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> Fingerprint {
        // aws-lc (already linked for TLS) computes the digest.
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki_der);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Fingerprint(out)
    }

    /// The node id a key derives by default (SPEC §2).
    pub fn derived_node_id(&self) -> NodeId {
        NodeId::from_digest(&self.0)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", STANDARD_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = FingerprintParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || FingerprintParseError(s.to_string());
        let b64 = s.trim().strip_prefix(PREFIX).ok_or_else(err)?;
        let bytes = STANDARD_NO_PAD
            .decode(b64.trim_end_matches('='))
            .map_err(|_| err())?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| err())?;
        Ok(Fingerprint(arr))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_ssh_keygen_and_round_trips() {
        let fp = Fingerprint::of_spki(b"example");
        let text = fp.to_string();
        assert!(text.starts_with("SHA256:"));
        assert_eq!(
            text.len(),
            7 + 43,
            "unpadded base64 of 32 bytes is 43 chars"
        );
        assert!(!text.ends_with('='));
        assert_eq!(text.parse::<Fingerprint>().unwrap(), fp);
    }

    #[test]
    fn rejects_garbage() {
        assert!("SHA256:abc".parse::<Fingerprint>().is_err());
        assert!("MD5:aa".parse::<Fingerprint>().is_err());
    }

    #[test]
    fn derived_node_id_is_first_eight_digest_bytes() {
        let fp = Fingerprint([0xab; 32]);
        assert_eq!(fp.derived_node_id().to_string(), "abababababababab");
    }
}
