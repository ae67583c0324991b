//! Silences and maintenance windows as the replicated state holds them, and
//! the rules that decide what a muted check's alerts are told.
//!
//! Invariants:
//! - Whether a check is muted is a function of the committed state alone
//!   (a silence is active from the entry that adds it, or that opens its
//!   window, to the entry that ends or removes it), never of a node's clock:
//!   every node applying the same log mutes the same flips. When a silence
//!   is due to end is decided by the leader, which commits the end.
//! - A check's alerts are told at most once about each state: flips inside
//!   a silence leave `CheckState::notified` alone, and when the last silence
//!   over a check ends, one page goes out exactly when the current state
//!   would page against the notified one (`page_at_end`), so an outage that
//!   began and ended inside a silence pages nothing.
//! - A maintenance window opens each occurrence at most once: the start of
//!   the last occurrence opened is stored with the window.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{pages, Health, ValidationError};

/// An ad-hoc silence, or the open occurrence of a maintenance window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    /// Ids of the checks it covers (none when `all`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<String>,
    /// Covers every check, present and future.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    /// When it began and is due to end (ms since the epoch).
    pub start_ms: u64,
    pub end_ms: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The maintenance window this is an occurrence of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
}

impl Silence {
    pub fn covers(&self, check_id: &str) -> bool {
        self.all || self.checks.iter().any(|c| c == check_id)
    }

    /// Validates a new silence on its own.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.end_ms <= self.start_ms {
            return Err(ValidationError::new(
                "--for",
                "a silence must end after it starts (give a positive --for, or an --until in the future)",
            ));
        }
        if !self.all && self.checks.is_empty() {
            return Err(ValidationError::new(
                "checks",
                "name at least one check, or --all",
            ));
        }
        if self.reason.chars().any(char::is_control) || self.reason.len() > 500 {
            return Err(ValidationError::new(
                "--reason",
                "at most 500 characters, without control characters",
            ));
        }
        Ok(())
    }
}

/// A recurring maintenance window: `every` is when it opens in `tz`
/// (`sun 02:00`, `mon,thu 22:30`, `daily 03:00`), for `duration_ms`.
/// Parsed and evaluated by the binary (the tz database is not part of the
/// replicated state): the leader commits each opening as a silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    pub id: String,
    pub name: String,
    pub every: String,
    pub duration_ms: u64,
    /// IANA time zone name (`Europe/Berlin`, `UTC`).
    pub tz: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    /// Start of the last occurrence opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_opened_ms: Option<u64>,
}

impl Maintenance {
    /// Validates the parts the replicated state can judge on its own (the
    /// schedule and time zone are checked where the request enters).
    pub fn validate(&self) -> Result<(), ValidationError> {
        crate::model::validate_name("name", &self.name)?;
        if self.duration_ms < 60_000 || self.duration_ms > 7 * 24 * 3_600_000 {
            return Err(ValidationError::new(
                "--duration",
                "must be between 1m and 7d",
            ));
        }
        if !self.all && self.checks.is_empty() {
            return Err(ValidationError::new(
                "checks",
                "name at least one check, or --all",
            ));
        }
        Ok(())
    }

    /// The silence that an opening at `start_ms` becomes.
    pub fn occurrence(&self, start_ms: u64) -> Silence {
        Silence {
            id: format!("{}@{start_ms}", self.id),
            checks: self.checks.clone(),
            all: self.all,
            start_ms,
            end_ms: start_ms.saturating_add(self.duration_ms),
            reason: format!("maintenance {}", self.name),
            window: Some(self.id.clone()),
        }
    }
}

/// The active silence over `check_id` that ends last, if any.
pub fn muted_by<'a>(
    silences: &'a BTreeMap<String, Silence>,
    check_id: &str,
) -> Option<&'a Silence> {
    silences
        .values()
        .filter(|s| s.covers(check_id))
        .max_by_key(|s| (s.end_ms, s.id.as_str()))
}

/// Whether the end of the last silence over a check pages: its alerts were
/// last told `notified` (None: never), and it is `current` now.
pub fn page_at_end(notified: Option<Health>, current: Health) -> bool {
    pages(notified.unwrap_or(Health::Unknown), current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Health::*;

    fn silence(id: &str, checks: &[&str], end_ms: u64) -> Silence {
        Silence {
            id: id.into(),
            checks: checks.iter().map(|c| c.to_string()).collect(),
            all: false,
            start_ms: 0,
            end_ms,
            reason: String::new(),
            window: None,
        }
    }

    #[test]
    fn the_end_pages_exactly_the_difference_for_every_state_pair() {
        // (told before / during the silence, state at its end) -> page?
        let table = [
            (None, Unknown, false),
            (None, Up, false),
            (None, Down, true),
            (Some(Unknown), Unknown, false),
            (Some(Unknown), Up, false),
            (Some(Unknown), Down, true),
            (Some(Up), Unknown, false),
            // An outage that began and ended inside the silence.
            (Some(Up), Up, false),
            (Some(Up), Down, true),
            (Some(Down), Unknown, false),
            // Recovered during the silence: the recovery is owed.
            (Some(Down), Up, true),
            (Some(Down), Down, false),
        ];
        for (told, now, want) in table {
            assert_eq!(page_at_end(told, now), want, "told {told:?}, now {now}");
        }
    }

    #[test]
    fn overlapping_silences_mute_until_the_last_one_ends() {
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), silence("a", &["c1"], 100));
        m.insert("b".to_string(), silence("b", &["c1", "c2"], 300));
        assert_eq!(muted_by(&m, "c1").map(|s| s.id.as_str()), Some("b"));
        assert_eq!(muted_by(&m, "c2").map(|s| s.id.as_str()), Some("b"));
        assert!(muted_by(&m, "c3").is_none());
        m.remove("b");
        assert_eq!(muted_by(&m, "c1").map(|s| s.id.as_str()), Some("a"));
        assert!(muted_by(&m, "c2").is_none());
        let mut all = silence("all", &[], 50);
        all.all = true;
        m.insert("all".into(), all);
        assert!(muted_by(&m, "anything").is_some());
    }

    #[test]
    fn a_silence_must_end_after_it_starts_and_cover_something() {
        let mut s = silence("a", &["c1"], 0);
        assert_eq!(s.validate().unwrap_err().field, "--for");
        s.end_ms = 10;
        assert!(s.validate().is_ok());
        s.checks.clear();
        assert_eq!(s.validate().unwrap_err().field, "checks");
    }
}
