//! Keys, certificates and fingerprints (SPEC §2).

pub mod cert;
pub mod fingerprint;
pub mod identity;

pub use fingerprint::Fingerprint;
pub use identity::{Identity, IdentityError, NewIdentity};
