//! When maintenance windows open: `--every` schedules evaluated in an IANA
//! time zone (jiff, with its bundled tz database).
//!
//! Invariants: an occurrence is a civil date and time in the window's zone
//! turned into an instant with the usual rule for DST changes (a time that
//! falls in the spring-forward gap opens at the same distance after the
//! gap, e.g. 02:30 becomes 03:30; a time that occurs twice opens at the
//! first); a window lasts its duration in elapsed time, whatever the clock
//! on the wall does meanwhile. The evaluation is pure (instant in, instant
//! out), so tests give the instants; only the leader uses it to decide,
//! and commits what it decided.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// How far ahead an occurrence is looked for (a schedule with none in
/// this span, such as `feb 30`, is refused as never occurring).
const HORIZON_DAYS: u32 = 8 * 366 + 1;

/// Why a schedule or zone is refused; each names its flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("--every {0:?}: {1}")]
    Every(String, String),
    #[error("--tz {0:?} is not a time zone of the tz database (e.g. UTC, Europe/Berlin, America/New_York)")]
    Tz(String),
    #[error("--every {0:?} never occurs (no such date in the next 8 years)")]
    Never(String),
}

/// Which days a window opens on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Days {
    Weekdays(Vec<Weekday>),
    /// Day N of every month (months without it are skipped).
    Monthly(i8),
    /// Month and day of every year.
    Yearly(i8, i8),
}

/// A parsed `--every`: days, and the local time of day it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurrence {
    days: Days,
    hour: i8,
    minute: i8,
}

const USAGE: &str = "use DAYS HH:MM, where DAYS is daily, weekdays, weekends, a list of days (sun, mon,thu), 'monthly N' or a date 'dec 24'; e.g. 'sun 02:00'";

fn weekday(word: &str) -> Option<Weekday> {
    Some(match word {
        "mon" | "monday" => Weekday::Monday,
        "tue" | "tues" | "tuesday" => Weekday::Tuesday,
        "wed" | "wednesday" => Weekday::Wednesday,
        "thu" | "thurs" | "thursday" => Weekday::Thursday,
        "fri" | "friday" => Weekday::Friday,
        "sat" | "saturday" => Weekday::Saturday,
        "sun" | "sunday" => Weekday::Sunday,
        _ => return None,
    })
}

fn month(word: &str) -> Option<i8> {
    const NAMES: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    NAMES
        .iter()
        .position(|m| word.starts_with(m) && word.len() >= 3)
        .map(|i| i as i8 + 1)
}

impl Recurrence {
    pub fn parse(text: &str) -> Result<Recurrence, ScheduleError> {
        let bad = |why: &str| ScheduleError::Every(text.to_string(), format!("{why}; {USAGE}"));
        let lower = text.trim().to_ascii_lowercase();
        let words: Vec<&str> = lower.split_whitespace().collect();
        let Some((time, days)) = words.split_last() else {
            return Err(bad("it is empty"));
        };
        let (h, m) = time
            .split_once(':')
            .ok_or_else(|| bad("the time of day is missing"))?;
        let hour: i8 = h.parse().map_err(|_| bad("the hour is not a number"))?;
        let minute: i8 = m.parse().map_err(|_| bad("the minute is not a number"))?;
        if !(0..24).contains(&hour) || !(0..60).contains(&minute) || m.len() != 2 {
            return Err(bad("the time of day must be HH:MM, 00:00 to 23:59"));
        }
        let day_number = |w: &str| -> Result<i8, ScheduleError> {
            match w.parse::<i8>() {
                Ok(d) if (1..=31).contains(&d) => Ok(d),
                _ => Err(bad("the day of the month must be 1 to 31")),
            }
        };
        let days = match days {
            ["daily"] => Days::Weekdays(vec![
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
                Weekday::Saturday,
                Weekday::Sunday,
            ]),
            ["weekdays"] => Days::Weekdays(vec![
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
            ]),
            ["weekends"] => Days::Weekdays(vec![Weekday::Saturday, Weekday::Sunday]),
            ["monthly", n] => Days::Monthly(day_number(n)?),
            [mon, n] if month(mon).is_some() => {
                Days::Yearly(month(mon).unwrap_or(1), day_number(n)?)
            }
            [list] => {
                let mut out = Vec::new();
                for w in list.split(',').filter(|w| !w.is_empty()) {
                    let d = weekday(w).ok_or_else(|| bad(&format!("{w:?} is not a day")))?;
                    if !out.contains(&d) {
                        out.push(d);
                    }
                }
                if out.is_empty() {
                    return Err(bad("no day given"));
                }
                Days::Weekdays(out)
            }
            [] => return Err(bad("the days are missing")),
            _ => return Err(bad("cannot read the days")),
        };
        Ok(Recurrence { days, hour, minute })
    }

    fn matches(&self, d: Date) -> bool {
        match &self.days {
            Days::Weekdays(w) => w.contains(&d.weekday()),
            Days::Monthly(n) => d.day() == *n,
            Days::Yearly(m, n) => d.month() == *m && d.day() == *n,
        }
    }

    /// The start (ms since the epoch) of the first occurrence at or after
    /// `from_ms`, within the horizon.
    pub fn first_start_at_or_after(&self, tz: &TimeZone, from_ms: u64) -> Option<u64> {
        let from = Timestamp::from_millisecond(i64::try_from(from_ms).ok()?).ok()?;
        // A day early: the local date of `from` may already be past the
        // time of day, and a gap may push a start across midnight.
        let mut date = from.to_zoned(tz.clone()).date().yesterday().ok()?;
        for _ in 0..HORIZON_DAYS {
            if self.matches(date) {
                let start = date
                    .at(self.hour, self.minute, 0, 0)
                    .to_zoned(tz.clone())
                    .ok()?
                    .timestamp()
                    .as_millisecond();
                if let Ok(start) = u64::try_from(start) {
                    if start >= from_ms {
                        return Some(start);
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// The occurrence open at `now_ms`, else the next one: (start, end).
    pub fn current_or_next(
        &self,
        tz: &TimeZone,
        duration_ms: u64,
        now_ms: u64,
    ) -> Option<(u64, u64)> {
        let from = now_ms.saturating_sub(duration_ms.saturating_sub(1));
        self.first_start_at_or_after(tz, from)
            .map(|s| (s, s.saturating_add(duration_ms)))
    }
}

/// The time zone `name` names.
pub fn zone(name: &str) -> Result<TimeZone, ScheduleError> {
    TimeZone::get(name).map_err(|_| ScheduleError::Tz(name.to_string()))
}

/// Checks a new window's schedule and zone where the request enters: both
/// parse, and it occurs at least once from `now_ms`.
pub fn admit(every: &str, tz: &str, now_ms: u64) -> Result<(), ScheduleError> {
    let r = Recurrence::parse(every)?;
    let z = zone(tz)?;
    r.first_start_at_or_after(&z, now_ms)
        .map(|_| ())
        .ok_or_else(|| ScheduleError::Never(every.to_string()))
}

/// `start_ms` as local time in `tz`, e.g. `Sun 2026-12-06 02:00 CET`.
pub fn local(tz: &TimeZone, ms: u64) -> Option<String> {
    let ts = Timestamp::from_millisecond(i64::try_from(ms).ok()?).ok()?;
    Some(
        ts.to_zoned(tz.clone())
            .strftime("%a %Y-%m-%d %H:%M %Z")
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> u64 {
        rfc3339.parse::<Timestamp>().unwrap().as_millisecond() as u64
    }

    fn berlin() -> TimeZone {
        zone("Europe/Berlin").unwrap()
    }

    #[test]
    fn weekly_windows_open_at_local_time_across_dst_changes() {
        let r = Recurrence::parse("sun 02:30").unwrap();
        // A winter Sunday: 02:30 CET is 01:30 UTC.
        assert_eq!(
            r.first_start_at_or_after(&berlin(), ms("2026-03-16T00:00:00Z")),
            Some(ms("2026-03-22T01:30:00Z"))
        );
        // 29 March 2026: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist
        // and opens at 03:30 CEST, which is 01:30 UTC as well.
        assert_eq!(
            r.first_start_at_or_after(&berlin(), ms("2026-03-23T00:00:00Z")),
            Some(ms("2026-03-29T01:30:00Z"))
        );
        // A summer Sunday: 02:30 CEST is 00:30 UTC.
        assert_eq!(
            r.first_start_at_or_after(&berlin(), ms("2026-03-30T00:00:00Z")),
            Some(ms("2026-04-05T00:30:00Z"))
        );
        // 25 October 2026: 02:30 happens twice; the first (CEST) counts.
        assert_eq!(
            r.first_start_at_or_after(&berlin(), ms("2026-10-19T00:00:00Z")),
            Some(ms("2026-10-25T00:30:00Z"))
        );
        // After that, winter again.
        assert_eq!(
            r.first_start_at_or_after(&berlin(), ms("2026-10-26T00:00:00Z")),
            Some(ms("2026-11-01T01:30:00Z"))
        );
    }

    #[test]
    fn a_window_is_open_from_its_start_for_its_duration_in_elapsed_time() {
        let r = Recurrence::parse("sun 02:00").unwrap();
        let utc = zone("UTC").unwrap();
        let start = ms("2026-12-06T02:00:00Z");
        let two_h = 2 * 3_600_000;
        assert_eq!(
            r.current_or_next(&utc, two_h, start - 1),
            Some((start, start + two_h))
        );
        assert_eq!(
            r.current_or_next(&utc, two_h, start),
            Some((start, start + two_h))
        );
        assert_eq!(
            r.current_or_next(&utc, two_h, start + two_h - 1),
            Some((start, start + two_h))
        );
        // At its end, the next week's.
        let next = ms("2026-12-13T02:00:00Z");
        assert_eq!(
            r.current_or_next(&utc, two_h, start + two_h),
            Some((next, next + two_h))
        );
        // A 2 h window over the autumn change lasts 2 real hours.
        let autumn = ms("2026-10-25T00:00:00Z"); // 02:00 CEST
        assert_eq!(
            r.current_or_next(&berlin(), two_h, autumn + 1),
            Some((autumn, autumn + two_h))
        );
    }

    #[test]
    fn zones_and_day_lists_and_dates() {
        let r = Recurrence::parse("mon,thu 22:30").unwrap();
        let ny = zone("America/New_York").unwrap();
        // Tue 1 Dec 2026 → Thu 3 Dec 22:30 EST = Fri 03:30 UTC.
        assert_eq!(
            r.first_start_at_or_after(&ny, ms("2026-12-01T12:00:00Z")),
            Some(ms("2026-12-04T03:30:00Z"))
        );
        let leap = Recurrence::parse("feb 29 00:00").unwrap();
        assert_eq!(
            leap.first_start_at_or_after(&zone("UTC").unwrap(), ms("2026-12-01T00:00:00Z")),
            Some(ms("2028-02-29T00:00:00Z"))
        );
        let monthly = Recurrence::parse("monthly 31 03:00").unwrap();
        assert_eq!(
            monthly.first_start_at_or_after(&zone("UTC").unwrap(), ms("2026-11-01T00:00:00Z")),
            Some(ms("2026-12-31T03:00:00Z"))
        );
    }

    #[test]
    fn bad_schedules_zones_and_never_are_refused_by_flag() {
        let now = ms("2026-12-01T00:00:00Z");
        for bad in [
            "",
            "sun",
            "sun 2:0",
            "sun 24:00",
            "funday 02:00",
            "monthly 32 01:00",
            "sun 02:60",
        ] {
            let e = admit(bad, "UTC", now).unwrap_err();
            assert!(matches!(e, ScheduleError::Every(..)), "{bad:?}: {e}");
            assert!(e.to_string().starts_with("--every"), "{e}");
        }
        assert!(matches!(
            admit("sun 02:00", "Mars/Olympus", now).unwrap_err(),
            ScheduleError::Tz(_)
        ));
        assert!(matches!(
            admit("feb 30 02:00", "UTC", now).unwrap_err(),
            ScheduleError::Never(_)
        ));
        assert!(admit("daily 03:00", "Europe/Berlin", now).is_ok());
        assert!(admit("weekends 03:00", "Asia/Kolkata", now).is_ok());
    }
}
