//! Go duration syntax for every `--interval` / `--timeout` (SPEC §2):
//! `250ms`, `5s`, `1m30s`, `2h`. Parsed with `humantime`; written back in
//! Go's compact form (humantime's own formatter inserts spaces).

use std::time::Duration;

/// A duration string that is not Go syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a duration: use a number with a unit, e.g. 250ms, 5s, 1m30s, 2h")]
pub struct DurationError {
    pub input: String,
}

/// Parses `250ms`, `5s`, `1m30s`, `2h` (also `1h2m3s4ms`). A bare number is
/// refused: the unit is never guessed.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let t = input.trim();
    let err = || DurationError {
        input: input.to_string(),
    };
    // humantime accepts spaces and long unit names; Go does not: keep to Go.
    if t.is_empty()
        || t.contains(char::is_whitespace)
        || t.chars().all(|c| c.is_ascii_digit())
        || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == 'µ')
    {
        return Err(err());
    }
    humantime::parse_duration(t).map_err(|_| err())
}

/// Formats in Go's style: `1m30s`, `250ms`, `2h`, `0s`.
pub fn format(d: Duration) -> String {
    let total_ms = d.as_millis();
    if total_ms == 0 {
        return if d.is_zero() {
            "0s".into()
        } else {
            format!("{}µs", d.as_micros())
        };
    }
    let h = total_ms / 3_600_000;
    let m = total_ms / 60_000 % 60;
    let s = total_ms / 1000 % 60;
    let ms = total_ms % 1000;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    if ms > 0 {
        out.push_str(&format!("{ms}ms"));
    }
    out
}

/// serde helpers: `#[serde(with = "crate::config::duration::serde_go")]`.
pub mod serde_go {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// serde helpers for `Option<Duration>` in Go syntax.
pub mod serde_go_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => super::parse(&s).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_examples() {
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse("1h2m3s").unwrap(), Duration::from_secs(3723));
    }

    #[test]
    fn refuses_bare_numbers_and_spaces() {
        assert!(parse("30").is_err());
        assert!(parse("1m 30s").is_err());
        assert!(parse("").is_err());
        assert!(parse("5 seconds").is_err());
        assert!(parse("-5s").is_err());
        let msg = parse("soon").unwrap_err().to_string();
        assert!(msg.contains("1m30s"), "{msg}");
    }

    #[test]
    fn formats_back_in_go_style() {
        for s in ["250ms", "5s", "1m30s", "2h", "1h2m3s"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
        assert_eq!(format(Duration::ZERO), "0s");
    }
}
