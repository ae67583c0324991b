//! Ids and timestamps shared by every layer (records, alerts, trust, the
//! daemon): random hex ids from the crypto provider's CSPRNG and RFC 3339
//! UTC timestamps. Depends on nothing else in the crate, so no layer has
//! to reach into the daemon for them.

use std::time::SystemTime;

/// Random lowercase hex from the crypto provider's CSPRNG.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if crate::transport::tls::provider()
        .secure_random
        .fill(&mut buf)
        .is_err()
    {
        // The OS RNG failed: fall back to time; ids need uniqueness, not secrecy.
        let t = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        buf.iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (t >> (8 * (i % 16))) as u8);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A short random id (8 hex digits) for records and test pages.
pub fn random_id() -> String {
    random_hex(4)
}

/// `t` as RFC 3339 UTC, second precision (`2026-05-12T15:01:32Z`).
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The current time as RFC 3339 UTC, second precision.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps_and_ids() {
        let t = UNIX_EPOCH + Duration::from_millis(1_778_598_092_500);
        assert_eq!(rfc3339(t), "2026-05-12T15:01:32Z");
        let id = random_id();
        assert_eq!(id.len(), 8);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(random_id(), random_id());
    }
}
