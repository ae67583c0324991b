//! `NodeId`: a node's 64-bit identity, always written as 16 lowercase hex
//! digits (SPEC §2).
//!
//! Invariants: the textual form round-trips exactly (`Display` ↔ `FromStr`,
//! serde as the same string); a unique prefix resolves to at most one node.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A node's identity. Ordered numerically, which equals the lexicographic
/// order of the 16-digit hex form the leadership policy compares.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub u64);

/// Why a string is not a node id, or not a unique prefix of one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeIdError {
    #[error("node id {0:?} is not 1 to 16 hexadecimal digits")]
    NotHex(String),
    #[error("no node id starts with {0:?}")]
    NoMatch(String),
    #[error("{prefix:?} is ambiguous: it matches {}", .matches.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(", "))]
    Ambiguous {
        prefix: String,
        matches: Vec<NodeId>,
    },
}

impl NodeId {
    /// Derives a node id from an SPKI SHA-256 digest: its first 8 bytes,
    /// big-endian (SPEC §2), so the id cannot be claimed without the key.
    pub fn from_digest(digest: &[u8; 32]) -> NodeId {
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        NodeId(u64::from_be_bytes(first))
    }

    /// The full 16-digit form.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }

    /// The shortest prefix of at least 4 digits that tells this id apart
    /// from every id in `others`, followed by `…` when it is shortened.
    pub fn short(&self, others: &[NodeId]) -> String {
        let me = self.hex();
        for len in 4..16 {
            let prefix = &me[..len];
            let clash = others
                .iter()
                .any(|o| o != self && o.hex().starts_with(prefix));
            if !clash {
                return format!("{prefix}…");
            }
        }
        me
    }

    /// Resolves `text` (a full id or a unique prefix; a trailing `…` is
    /// ignored) against the known ids.
    pub fn resolve<'a>(
        text: &str,
        known: impl IntoIterator<Item = &'a NodeId>,
    ) -> Result<NodeId, NodeIdError> {
        let prefix = text.trim().trim_end_matches('…').to_ascii_lowercase();
        if prefix.is_empty() || prefix.len() > 16 || !prefix.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Err(NodeIdError::NotHex(text.to_string()));
        }
        let mut matches: Vec<NodeId> = known
            .into_iter()
            .filter(|id| id.hex().starts_with(&prefix))
            .copied()
            .collect();
        matches.sort();
        matches.dedup();
        match matches.len() {
            0 => Err(NodeIdError::NoMatch(prefix)),
            1 => Ok(matches[0]),
            _ => Err(NodeIdError::Ambiguous { prefix, matches }),
        }
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({:016x})", self.0)
    }
}

impl FromStr for NodeId {
    type Err = NodeIdError;
    /// Parses 1 to 16 hex digits (a shorter value is zero-padded on the left).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.is_empty() || t.len() > 16 || !t.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(NodeIdError::NotHex(s.to_string()));
        }
        u64::from_str_radix(t, 16)
            .map(NodeId)
            .map_err(|_| NodeIdError::NotHex(s.to_string()))
    }
}

impl From<u64> for NodeId {
    fn from(v: u64) -> Self {
        NodeId(v)
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_16_lowercase_hex_digits_and_round_trips() {
        let id = NodeId(0xA7F3_0000_0000_00FF);
        assert_eq!(id.to_string(), "a7f30000000000ff");
        assert_eq!("a7f30000000000ff".parse::<NodeId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"a7f30000000000ff\"");
        assert_eq!(serde_json::from_str::<NodeId>(&json).unwrap(), id);
    }

    #[test]
    fn rejects_non_hex_and_too_long() {
        assert!("xyz".parse::<NodeId>().is_err());
        assert!("00000000000000001".parse::<NodeId>().is_err());
        assert!("".parse::<NodeId>().is_err());
    }

    #[test]
    fn order_matches_hex_lexicographic_order() {
        let a = NodeId(0x0fff_ffff_ffff_ffff);
        let b = NodeId(0x1000_0000_0000_0000);
        assert!(a < b);
        assert!(a.hex() < b.hex());
    }

    #[test]
    fn resolves_unique_prefix_and_refuses_ambiguous() {
        let ids = [NodeId(0xa7f3_0000_0000_0001), NodeId(0xa7f4_0000_0000_0002)];
        assert_eq!(NodeId::resolve("a7f3", &ids).unwrap(), ids[0]);
        assert_eq!(NodeId::resolve("A7F4…", &ids).unwrap(), ids[1]);
        assert!(matches!(
            NodeId::resolve("a7f", &ids),
            Err(NodeIdError::Ambiguous { .. })
        ));
        assert!(matches!(
            NodeId::resolve("b", &ids),
            Err(NodeIdError::NoMatch(_))
        ));
    }

    #[test]
    fn short_form_is_unique_among_peers() {
        let ids = [NodeId(0xa7f3_1000_0000_0001), NodeId(0xa7f3_2000_0000_0002)];
        assert_eq!(ids[0].short(&ids), "a7f31…");
        assert_eq!(ids[0].short(&ids[..1]), "a7f3…");
    }
}
