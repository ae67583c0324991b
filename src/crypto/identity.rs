//! A node's identity: RSA-3072 key pair and self-signed certificate, created
//! by `qu init` and loaded by `qu serve`.
//!
//! Invariants: the private key file is created with mode 0600 and never
//! printed (this type has no `Debug` that shows it); the certificate claims
//! the node id recorded in `node.yaml`; by default that id is derived from
//! the key's fingerprint.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, PublicKeyData, RsaKeySize, SanType, PKCS_RSA_SHA256,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::cert::{claimed_node_id, fingerprint_of, node_dns_name};
use super::Fingerprint;
use crate::config::atomic::{write_atomic, FileMode};
use qu_raft::NodeId;

/// Errors creating or loading an identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("key generation failed: {0}")]
    Generate(String),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("{path} is not a valid PEM {what}: {detail}")]
    Pem {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    #[error("{path}: {detail}")]
    Mismatch { path: PathBuf, detail: String },
}

/// A freshly generated key pair and certificate, not yet on disk.
pub struct NewIdentity {
    pub node_id: NodeId,
    pub fingerprint: Fingerprint,
    key_pem: String,
    public_pem: String,
    cert_pem: String,
}

/// A loaded identity, ready for TLS.
#[derive(Clone)]
pub struct Identity {
    pub node_id: NodeId,
    pub fingerprint: Fingerprint,
    pub cert: CertificateDer<'static>,
    key: std::sync::Arc<PrivateKeyDer<'static>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("node_id", &self.node_id)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// File names inside the state directory's `keys/`.
pub const PRIVATE_KEY_FILE: &str = "private.pem";
pub const PUBLIC_KEY_FILE: &str = "public.pem";
pub const CERT_FILE: &str = "cert.pem";

impl NewIdentity {
    /// Generates an RSA-3072 key and a self-signed certificate for server and
    /// client auth. `pinned` overrides the node id derived from the key.
    pub fn generate(pinned: Option<NodeId>) -> Result<NewIdentity, IdentityError> {
        let gen = |e: rcgen::Error| IdentityError::Generate(e.to_string());
        // Plain `generate_for` would silently make a 2048-bit key.
        let key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_3072).map_err(gen)?;
        let fingerprint = Fingerprint::of_spki(&key.subject_public_key_info());
        let node_id = pinned.unwrap_or_else(|| fingerprint.derived_node_id());

        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(gen)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("qu node {node_id}"));
        params.distinguished_name = dn;
        let san = node_dns_name(node_id).try_into().map_err(gen)?;
        params.subject_alt_names = vec![SanType::DnsName(san)];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.self_signed(&key).map_err(gen)?;
        Ok(NewIdentity {
            node_id,
            fingerprint,
            key_pem: key.serialize_pem(),
            public_pem: key.public_key_pem(),
            cert_pem: cert.pem(),
        })
    }

    /// Writes `keys/` under `dir`: the private key 0600, the rest 0644.
    pub fn write(&self, keys_dir: &Path) -> Result<(), IdentityError> {
        let write = |name: &str, data: &str, mode: FileMode| {
            let path = keys_dir.join(name);
            write_atomic(&path, data.as_bytes(), mode)
                .map_err(|source| IdentityError::Write { path, source })
        };
        write(PRIVATE_KEY_FILE, &self.key_pem, FileMode::Private)?;
        write(PUBLIC_KEY_FILE, &self.public_pem, FileMode::Public)?;
        write(CERT_FILE, &self.cert_pem, FileMode::Public)?;
        Ok(())
    }

    /// The identity in the form TLS uses, without touching disk.
    pub fn to_identity(&self) -> Result<Identity, IdentityError> {
        Identity::from_pem(
            Path::new("<generated>"),
            self.cert_pem.as_bytes(),
            self.key_pem.as_bytes(),
        )
    }
}

impl Identity {
    /// Loads `keys/cert.pem` and `keys/private.pem` and checks they belong
    /// together and claim `expected` (the id in node.yaml).
    pub fn load(keys_dir: &Path, expected: NodeId) -> Result<Identity, IdentityError> {
        let read = |name: &str| {
            let path = keys_dir.join(name);
            fs::read(&path).map_err(|source| IdentityError::Read { path, source })
        };
        let cert_pem = read(CERT_FILE)?;
        let key_pem = read(PRIVATE_KEY_FILE)?;
        let id = Identity::from_pem(keys_dir, &cert_pem, &key_pem)?;
        if id.node_id != expected {
            return Err(IdentityError::Mismatch {
                path: keys_dir.join(CERT_FILE),
                detail: format!(
                    "the certificate claims node {} but node.yaml says {expected}",
                    id.node_id
                ),
            });
        }
        Ok(id)
    }

    fn from_pem(origin: &Path, cert_pem: &[u8], key_pem: &[u8]) -> Result<Identity, IdentityError> {
        let pem_err = |what: &'static str, detail: String| IdentityError::Pem {
            path: origin.to_path_buf(),
            what,
            detail,
        };
        let cert = CertificateDer::from_pem_slice(cert_pem)
            .map_err(|e| pem_err("certificate", e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| pem_err("private key", e.to_string()))?;
        let fingerprint =
            fingerprint_of(&cert).map_err(|e| pem_err("certificate", e.to_string()))?;
        let node_id = claimed_node_id(&cert).map_err(|e| pem_err("certificate", e.to_string()))?;
        // The key must be the certificate's: compare public keys.
        let pair = KeyPair::try_from(&key).map_err(|e| pem_err("private key", e.to_string()))?;
        if Fingerprint::of_spki(&pair.subject_public_key_info()) != fingerprint {
            return Err(IdentityError::Mismatch {
                path: origin.to_path_buf(),
                detail: "the private key does not belong to the certificate".into(),
            });
        }
        Ok(Identity {
            node_id,
            fingerprint,
            cert,
            key: std::sync::Arc::new(key),
        })
    }

    /// The private key, for building TLS configurations only.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_identity_claims_its_derived_id_and_fingerprints_agree() {
        let new = NewIdentity::generate(None).unwrap();
        let id = new.to_identity().unwrap();
        assert_eq!(id.node_id, new.node_id);
        assert_eq!(id.fingerprint, new.fingerprint);
        assert_eq!(id.node_id, id.fingerprint.derived_node_id());
        assert_eq!(fingerprint_of(&id.cert).unwrap(), new.fingerprint);
    }

    #[test]
    fn pinned_node_id_is_claimed_by_the_certificate() {
        let pinned = NodeId(0x0000_0000_0000_0042);
        let new = NewIdentity::generate(Some(pinned)).unwrap();
        let id = new.to_identity().unwrap();
        assert_eq!(id.node_id, pinned);
        assert_eq!(claimed_node_id(&id.cert).unwrap(), pinned);
    }
}
