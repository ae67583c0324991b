//! Go duration syntax for every `--interval` / `--timeout` (SPEC §2):
//! exactly the grammar of Go's `time.ParseDuration` — a sequence of decimal
//! numbers, each with an optional fraction and a unit (`ns`, `us`/`µs`,
//! `ms`, `s`, `m`, `h`): `250ms`, `1.5s`, `1m30s`, `2h45m`. Two deliberate
//! refusals where Go is looser: a bare number (Go accepts `0`; the unit is
//! never guessed here) and a sign (no duration of qu may be negative).
//! Written back in Go's compact form.

use std::time::Duration;

/// A duration string that is not Go syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a duration: {why}; use a number with a unit (ns, us, ms, s, m, h), e.g. 250ms, 1.5s, 1m30s, 2h")]
pub struct DurationError {
    pub input: String,
    pub why: &'static str,
}

/// Parses a Go duration (see the module doc).
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let err = |why| DurationError {
        input: input.to_string(),
        why,
    };
    let mut rest = input;
    if rest.is_empty() {
        return Err(err("it is empty"));
    }
    if rest.starts_with(['-', '+']) {
        return Err(err("it has a sign (durations here are never negative)"));
    }
    let mut total: u128 = 0; // nanoseconds
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                a.split_at(n)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(err("a number is missing"));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(err("a number has no unit")),
            _ => return Err(err("the unit is not one of ns, us, ms, s, m, h")),
        };
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| err("it is too large"))?
        };
        let mut part = whole
            .checked_mul(scale)
            .ok_or_else(|| err("it is too large"))?;
        // The fraction, digit by digit (Go keeps it exact the same way).
        let mut unit_scale = scale;
        for d in frac.bytes() {
            unit_scale /= 10;
            if unit_scale == 0 {
                break;
            }
            part += u128::from(d - b'0') * unit_scale;
        }
        total = total
            .checked_add(part)
            .ok_or_else(|| err("it is too large"))?;
        rest = after;
    }
    if total > u128::from(u64::MAX) {
        return Err(err("it is too large"));
    }
    Ok(Duration::from_nanos(total as u64))
}

/// A span that is neither `Nd[GO-DURATION]` nor a Go duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a span: {why}; use whole days and/or a Go duration, e.g. 7d, 90d, 1d12h, 36h"
)]
pub struct SpanError {
    pub input: String,
    pub why: String,
}

/// A span of days for history windows and retention (`--since 7d`,
/// `qu cluster retention 90d`): whole days `Nd`, optionally followed by a Go
/// duration (`1d12h`), or a Go duration alone (`36h`).
pub fn parse_span(input: &str) -> Result<Duration, SpanError> {
    let err = |why: &str| SpanError {
        input: input.to_string(),
        why: why.to_string(),
    };
    let (days, rest) = match input.find('d') {
        Some(i) => {
            let days: u64 = input[..i]
                .parse()
                .map_err(|_| err("the days are not a whole number"))?;
            (days, &input[i + 1..])
        }
        None => (0, input),
    };
    let rest = if rest.is_empty() && input.contains('d') {
        Duration::ZERO
    } else {
        parse(rest).map_err(|e| err(e.why))?
    };
    days.checked_mul(86_400)
        .map(Duration::from_secs)
        .and_then(|d| d.checked_add(rest))
        .ok_or_else(|| err("it is too large"))
}

/// Formats a long span: `3d4h`, `12m5s`, `0s` (days, then Go's style
/// rounded to the second).
pub fn format_span(d: Duration) -> String {
    let secs = d.as_secs();
    let days = secs / 86_400;
    let rest = Duration::from_secs(secs % 86_400);
    match (days, rest.is_zero()) {
        (0, _) => format(rest),
        (_, true) => format!("{days}d"),
        (_, false) => format!("{days}d{}", format(rest)),
    }
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
    fn spans_take_days_then_a_go_duration() {
        let d = |s: u64| Duration::from_secs(s);
        assert_eq!(parse_span("7d"), Ok(d(7 * 86_400)));
        assert_eq!(parse_span("1d12h"), Ok(d(86_400 + 12 * 3600)));
        assert_eq!(parse_span("36h"), Ok(d(36 * 3600)));
        for bad in ["", "d", "1.5d", "-1d", "7days", "1d-2h", "12"] {
            let e = parse_span(bad).unwrap_err();
            assert!(e.to_string().contains("is not a span"), "{bad}: {e}");
        }
        assert_eq!(format_span(d(90 * 86_400)), "90d");
        assert_eq!(format_span(d(86_400 + 3600 + 61)), "1d1h1m1s");
        assert_eq!(format_span(Duration::from_millis(61_400)), "1m1s");
        assert_eq!(format_span(Duration::ZERO), "0s");
    }

    #[test]
    fn parses_go_examples() {
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse("1h2m3s").unwrap(), Duration::from_secs(3723));
    }

    #[test]
    fn follows_go_parse_duration() {
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse(".5s").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("1.s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse("2h45m").unwrap(), Duration::from_secs(9900));
        assert_eq!(parse("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("300us").unwrap(), Duration::from_micros(300));
        assert_eq!(parse("300µs").unwrap(), Duration::from_micros(300));
        assert_eq!(parse("300μs").unwrap(), Duration::from_micros(300));
        assert_eq!(parse("10ns").unwrap(), Duration::from_nanos(10));
        assert_eq!(parse("1m0.25s").unwrap(), Duration::from_millis(60_250));
        // Units Go does not have, and shapes it refuses.
        for bad in [
            "5sec", "5min", "1d", "1w", "5S", "1.5", ".s", "1..5s", "s", "1s2", "+5s",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
        assert!(parse("99999999999999999999h").is_err());
        assert!(parse("5sec")
            .unwrap_err()
            .to_string()
            .contains("not one of ns, us, ms, s, m, h"));
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
