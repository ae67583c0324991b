//! The committed paging transitions, as `transition` events: the delivery
//! ledger (`qu alert log --json`) says which alerts each flip must reach;
//! for the check under test, its committed history (`qu check history
//! --json`) and round timetable (`qu check show --json`) add when each flip
//! was committed, the round that confirmed it and the probe windows of the
//! rounds behind it (rounds `k-1` and `k` for a flip in round `k`: the two
//! confirming rounds of `checks::aggregate`).
//!
//! The tie between the two is the flip number. A delivery id is
//! `<check>-<flip>-<alert>[-end|-r<n>]`, where `flip` is the check's
//! `CheckState::flips` after the flip (`ClusterState::apply_flip`), which
//! counts every committed flip, to and from unknown too, and which
//! restarts and pauses keep; every flip is also one `flip` row of the
//! history, in commit order. So flip `n` is the `n`-th flip row, unless the
//! history's head was folded into a `baseline` row (pruning, or more than
//! 500 events): then the rows are numbered back from the check's `flips`.
//!
//! Invariants: pure (JSON in, events out); a flip the ledger and the
//! history disagree about, or flips that cannot be numbered, is an error,
//! never a guess; a ledger flip of another check, or one the history no
//! longer holds, is recorded as before (no time, no rounds).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::history::{DeliveryId, Event, ProbeWindow};

/// What the ledger says of one flip: its new state and the alerts it goes to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LedgerFlip {
    /// `down` or `up`, from the page made at the flip (None: only a
    /// silence-end or repeat page is on record).
    pub to: Option<String>,
    pub alerts: Vec<String>,
}

/// The ledger's rows (`qu alert log --json`), by (check, flip).
pub fn ledger_flips(rows: &Value) -> BTreeMap<(String, u64), LedgerFlip> {
    let mut flips: BTreeMap<(String, u64), LedgerFlip> = BTreeMap::new();
    for row in rows.as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let Some(id) = row["id"].as_str().and_then(DeliveryId::parse) else {
            continue; // test pages
        };
        let entry = flips.entry((id.check.to_string(), id.flip)).or_default();
        if id.suffix.is_none() {
            let to = if row["event"] == "DOWN" { "down" } else { "up" };
            entry.to = Some(to.into());
        }
        if !entry.alerts.iter().any(|a| a == id.alert) {
            entry.alerts.push(id.alert.to_string());
        }
    }
    flips
}

/// One committed flip of the check under test, numbered.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Committed {
    flip: u64,
    at_ms: u64,
    round: Option<u64>,
    from: String,
    to: String,
}

/// The flip rows of `qu check history --json`, numbered as the ledger
/// numbers them; `flips` is `qu check show --json`'s count, read before the
/// history (so a flip committed between the two reads only adds a row).
fn numbered(history: &Value, flips: u64) -> Result<Vec<Committed>, String> {
    let events = history["events"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let folded = events.iter().any(|e| e["event"] == "baseline");
    let rows: Vec<&Value> = events.iter().filter(|e| e["event"] == "flip").collect();
    let count = rows.len() as u64;
    let first = match (folded, count.cmp(&flips)) {
        (false, std::cmp::Ordering::Less) => {
            return Err(format!(
                "the check's history lists {count} flips but the check counts {flips}: its flips cannot be numbered"
            ))
        }
        (false, _) => 1,
        (true, _) if count > flips => {
            return Err(format!(
                "the check's history keeps {count} flips, more than the {flips} it counts"
            ))
        }
        (true, _) => flips - count + 1,
    };
    rows.iter()
        .zip(first..)
        .map(|(row, flip)| {
            let state = row["state"].as_str().unwrap_or_default();
            let (from, to) = state
                .split_once(" -> ")
                .ok_or_else(|| format!("flip {flip} of the history has no state: {row}"))?;
            Ok(Committed {
                flip,
                at_ms: row["at_ms"].as_u64().unwrap_or(0),
                round: row["round"].as_u64(),
                from: from.into(),
                to: to.into(),
            })
        })
        .collect()
}

/// The probe windows of rounds `k-1` and `k` by `qu check show --json`'s
/// timetable (none from a daemon that does not show it).
fn probes(show: &Value, k: u64) -> Vec<ProbeWindow> {
    let (Some(interval), Some(timeout)) =
        (show["interval_ms"].as_u64(), show["timeout_ms"].as_u64())
    else {
        return vec![];
    };
    let offset = show["round_offset_ms"].as_u64().unwrap_or(0);
    if interval == 0 {
        return vec![];
    }
    (k.saturating_sub(1)..=k)
        .map(|round| {
            let start = round.saturating_mul(interval).saturating_add(offset);
            ProbeWindow {
                round,
                start,
                end: start.saturating_add(timeout),
            }
        })
        .collect()
}

/// Whether a flip pages (`model::pages`): to down, or down → up.
fn pages(from: &str, to: &str) -> bool {
    from != to && (to == "down" || (from == "down" && to == "up"))
}

/// The `transition` events: every paging flip of `check` in its history
/// (with the ledger's alerts, none when the ledger has no row of it), then
/// every other flip the ledger holds, as the ledger alone says it.
pub fn events(
    mut ledger: BTreeMap<(String, u64), LedgerFlip>,
    check: &str,
    show: &Value,
    history: &Value,
) -> Result<Vec<Event>, String> {
    let flips = show["flips"].as_u64().unwrap_or(0);
    let mut out = Vec::new();
    for c in numbered(history, flips)? {
        let key = (check.to_string(), c.flip);
        let paged = ledger.remove(&key);
        if let Some(to) = paged.as_ref().and_then(|l| l.to.as_deref()) {
            if to != c.to {
                return Err(format!(
                    "the ledger pages flip {} of {check} as {to}, the history says {} -> {}",
                    c.flip, c.from, c.to
                ));
            }
        }
        if !pages(&c.from, &c.to) {
            if paged.is_some() {
                return Err(format!(
                    "the ledger pages flip {} of {check}, which the history says was {} -> {} (no page)",
                    c.flip, c.from, c.to
                ));
            }
            continue;
        }
        out.push(Event::Transition {
            t: c.at_ms,
            check: check.to_string(),
            flip: c.flip,
            to: c.to,
            alerts: paged.map(|l| l.alerts).unwrap_or_default(),
            round: c.round,
            probes: c.round.map(|k| probes(show, k)).unwrap_or_default(),
        });
    }
    for ((check, flip), l) in ledger {
        out.push(Event::Transition {
            t: 0,
            check,
            flip,
            to: l.to.unwrap_or_else(|| "down".into()),
            alerts: l.alerts,
            round: None,
            probes: vec![],
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ledger() -> Value {
        json!([
            {"id": "c1-2-a", "event": "DOWN"},
            {"id": "c1-2-m", "event": "DOWN"},
            {"id": "c1-3-a", "event": "RECOVERED"},
            {"id": "c1-4-a", "event": "DOWN"},
            {"id": "c1-4-a-r1", "event": "DOWN"},
            {"id": "test-1700000000000", "event": "TEST"},
        ])
    }

    fn flip(at_ms: u64, round: u64, state: &str) -> Value {
        json!({"at_ms": at_ms, "event": "flip", "state": state, "round": round})
    }

    fn show(flips: u64) -> Value {
        json!({"flips": flips, "interval_ms": 1000, "timeout_ms": 500, "round_offset_ms": 300})
    }

    #[test]
    fn flip_n_is_the_nth_flip_of_the_history_and_carries_its_rounds() {
        let history = json!({"events": [
            {"at_ms": 1, "event": "added", "state": "unknown"},
            flip(5_000, 4, "unknown -> up"),
            flip(9_100, 8, "up -> down"),
            flip(20_000, 19, "down -> up"),
            {"at_ms": 21_000, "event": "restarted", "state": "unknown"},
            flip(30_900, 29, "unknown -> down"),
        ]});
        let ev = events(ledger_flips(&ledger()), "c1", &show(4), &history).unwrap();
        assert_eq!(ev.len(), 3, "{ev:?}");
        let Event::Transition {
            t,
            flip,
            to,
            alerts,
            round,
            probes,
            ..
        } = &ev[0]
        else {
            panic!("{ev:?}");
        };
        assert_eq!(
            (*t, *flip, to.as_str(), *round),
            (9_100, 2, "down", Some(8))
        );
        assert_eq!(alerts, &["a", "m"]);
        assert_eq!(
            probes,
            &[
                ProbeWindow {
                    round: 7,
                    start: 7_300,
                    end: 7_800
                },
                ProbeWindow {
                    round: 8,
                    start: 8_300,
                    end: 8_800
                }
            ]
        );
        assert!(
            matches!(&ev[2], Event::Transition { flip: 4, t: 30_900, alerts, .. } if alerts == &["a"])
        );
    }

    #[test]
    fn a_folded_history_is_numbered_back_from_the_count() {
        let history = json!({"events": [
            {"at_ms": 1, "event": "baseline", "state": "up"},
            flip(9_100, 8, "up -> down"),
        ]});
        let ev = events(ledger_flips(&ledger()), "c1", &show(4), &history).unwrap();
        assert!(
            matches!(
                &ev[0],
                Event::Transition {
                    flip: 4,
                    round: Some(8),
                    ..
                }
            ),
            "{ev:?}"
        );
        // Flips 2 and 3, no longer in the history, as the ledger says them.
        assert!(matches!(
            &ev[1],
            Event::Transition {
                flip: 2,
                t: 0,
                round: None,
                ..
            }
        ));
    }

    #[test]
    fn a_ledger_that_contradicts_the_history_or_flips_that_cannot_be_numbered_are_errors() {
        let wrong = json!({"events": [
            flip(5_000, 4, "unknown -> up"),
            flip(9_100, 8, "up -> unknown"),
        ]});
        let e = events(ledger_flips(&ledger()), "c1", &show(2), &wrong).unwrap_err();
        assert!(e.contains("flip 2"), "{e}");
        let short = json!({"events": [flip(5_000, 4, "unknown -> up")]});
        let e = events(ledger_flips(&ledger()), "c1", &show(4), &short).unwrap_err();
        assert!(e.contains("cannot be numbered"), "{e}");
    }

    #[test]
    fn without_a_timetable_a_flip_keeps_its_round_but_no_windows() {
        let history = json!({"events": [flip(9_100, 8, "unknown -> down")]});
        let ev = events(BTreeMap::new(), "c1", &json!({"flips": 1}), &history).unwrap();
        assert!(
            matches!(&ev[0], Event::Transition { round: Some(8), probes, alerts, .. } if probes.is_empty() && alerts.is_empty()),
            "{ev:?}"
        );
    }
}
