//! (b) No DOWN page unless a majority of voters saw the target failing,
//! continuously, for two rounds (at least one interval) before it.

use std::collections::BTreeMap;

use super::{meta, Report};
use crate::history::Event;

pub fn check(history: &[Event]) -> Report {
    let (voters, interval) = meta(history);
    let quorum = voters / 2 + 1;
    // Per check: (time, failing count) in order.
    let mut truth: BTreeMap<&str, Vec<(u64, usize)>> = BTreeMap::new();
    for e in history {
        if let Event::Truth {
            t,
            check,
            failing_for,
        } = e
        {
            truth
                .entry(check.as_str())
                .or_default()
                .push((*t, failing_for.len()));
        }
    }
    let mut problems = Vec::new();
    let mut pages = 0;
    for e in history {
        let Event::Delivery {
            t,
            check,
            event,
            delivery_id,
        } = e
        else {
            continue;
        };
        if event != "down" {
            continue;
        }
        pages += 1;
        // The majority-failing stretch in force at the page, or the last
        // one that ended before it: a page may trail the end of an outage
        // by the evaluation lag (its last round is evaluated after the
        // round ends), at most one interval plus a second.
        let mut majority_since: Option<u64> = None;
        let mut last_stretch: Option<(u64, u64)> = None;
        for (at, n) in truth.get(check.as_str()).map(Vec::as_slice).unwrap_or(&[]) {
            if at > t {
                break;
            }
            majority_since = match (n >= &quorum, majority_since) {
                (true, Some(s)) => Some(s),
                (true, None) => Some(*at),
                (false, Some(s)) => {
                    last_stretch = Some((s, *at));
                    None
                }
                (false, None) => None,
            };
        }
        let trailing = |(s, e): (u64, u64)| {
            e.saturating_sub(s) >= interval && t.saturating_sub(e) <= interval + 1000
        };
        match majority_since {
            Some(s) if t.saturating_sub(s) >= interval => {}
            Some(s) => problems.push(format!(
                "DOWN page {delivery_id} for {check} at {t}: a majority saw it failing only since {s} (less than two rounds)"
            )),
            None if last_stretch.is_some_and(trailing) => {}
            None => problems.push(format!(
                "DOWN page {delivery_id} for {check} at {t} while no majority of the {voters} voters saw it failing (a minority page)"
            )),
        }
    }
    let mut r = Report::new("no page without a majority for two rounds", problems);
    r.figures.push(("DOWN pages".into(), pages.to_string()));
    r
}
