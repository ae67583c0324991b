//! (f) Liveness: once every fault is healed, an outage that a majority of
//! voters sees for long enough is paged within a bound, and its end is
//! paged as RECOVERED within the same bound. A majority outage is one
//! that a majority of every voter set that may have judged it saw
//! (`voters::Rule::Every`: during a membership change, of both sides). (Safety checkers alone pass a
//! cluster that never pages anything.)
//!
//! The bound: two confirming rounds plus the evaluation delay, a Raft
//! commit, a possible leadership hand-over and the send — eight intervals
//! and two seconds (10 s at the harness's 1 s interval).

use std::collections::BTreeMap;

use super::voters::Rule;
use super::{evidence, meta, Report};
use crate::history::Event;

pub fn bound_ms(interval_ms: u64) -> u64 {
    8 * interval_ms + 2_000
}

pub fn check(history: &[Event]) -> Report {
    const NAME: &str = "a healed cluster pages a majority outage and its recovery";
    let (_, interval) = meta(history);
    let bound = bound_ms(interval);
    let Some(healed_at) = history.iter().rev().find_map(|e| match e {
        Event::Healed { t, .. } => Some(*t),
        _ => None,
    }) else {
        return Report::new(NAME, vec![]);
    };
    // Per check: when its majority outages after the heal began and ended
    // (a majority of every voter set that may have judged them).
    let periods: BTreeMap<&str, Vec<(u64, Option<u64>)>> =
        evidence::majority_stretches(history, Rule::Every)
            .into_iter()
            .map(|(check, list)| {
                let after: Vec<(u64, Option<u64>)> = list
                    .into_iter()
                    .filter(|s| s.start >= healed_at)
                    .map(|s| (s.start, s.end))
                    .collect();
                (check, after)
            })
            .collect();
    let first_page =
        |check: &str, event: &str, from: u64| super::first_page(history, check, event, from);
    // An outage still going when the history ends lasted until its last event.
    let last_t = history
        .iter()
        .filter_map(|e| match e {
            Event::Truth { t, .. }
            | Event::Delivery { t, .. }
            | Event::Leader { t, .. }
            | Event::Healed { t, .. }
            | Event::Nemesis { t, .. }
            | Event::Ok { t, .. } => Some(*t),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let mut problems = Vec::new();
    let mut outages = 0;
    for (check, list) in &periods {
        for (start, end) in list {
            let lasted = end.unwrap_or(last_t).saturating_sub(*start);
            if lasted < bound {
                continue; // too short to be owed a page
            }
            outages += 1;
            match first_page(check, "down", *start) {
                Some(t) if t - start <= bound => {}
                Some(t) => problems.push(format!(
                    "{check}: outage from {start} paged only after {} ms (bound {bound} ms)",
                    t - start
                )),
                None => problems.push(format!(
                    "{check}: outage from {start} seen by a majority was never paged (a missed outage)"
                )),
            }
            let Some(end) = end else { continue };
            match first_page(check, "recovered", *end) {
                Some(t) if t - end <= bound => {}
                Some(t) => problems.push(format!(
                    "{check}: recovery at {end} paged only after {} ms (bound {bound} ms)",
                    t - end
                )),
                None => problems.push(format!("{check}: recovery at {end} was never paged")),
            }
        }
    }
    let mut r = Report::new(NAME, problems);
    r.figures
        .push(("outages after the heal".into(), outages.to_string()));
    r
}
