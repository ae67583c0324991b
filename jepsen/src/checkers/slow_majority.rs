//! (g) A slow but working majority still pages: an outage that begins
//! while a majority's links are slow (a `slow-majority` fault) and lasts
//! past the adjusted bound is paged DOWN within it, and its end RECOVERED
//! within it too.
//!
//! The adjusted bound: (f)'s bound plus eight times the largest one-way
//! delay the fault adds (`added_ms` of its nemesis events): the votes of
//! the two confirming rounds, the Raft commit's round trip and the page's
//! way out each cross a slow link, with room for a slow probe.

use super::voters::Rule;
use super::{detection, meta, Report};
use crate::history::Event;

pub fn bound_ms(interval_ms: u64, added_ms: u64) -> u64 {
    detection::bound_ms(interval_ms) + 8 * added_ms
}

/// One slow-majority fault: from start to stop, adding up to `added_ms`.
struct Window {
    start: u64,
    stop: u64,
    added_ms: u64,
}

fn windows(history: &[Event]) -> Vec<Window> {
    let mut out: Vec<Window> = Vec::new();
    for e in history {
        let Event::Nemesis {
            t,
            action,
            fault,
            added_ms,
            ..
        } = e
        else {
            continue;
        };
        if fault != "slow-majority" {
            continue;
        }
        if action == "start" {
            out.push(Window {
                start: *t,
                stop: u64::MAX,
                added_ms: added_ms.unwrap_or(0),
            });
        } else if let Some(w) = out.last_mut().filter(|w| w.stop == u64::MAX) {
            w.stop = *t;
        }
    }
    out
}

pub fn check(history: &[Event]) -> Report {
    const NAME: &str = "a slow majority pages an outage within the adjusted bound";
    let (_, interval) = meta(history);
    // Owed a page only when a majority of every voter set saw it, as (f).
    let stretches = super::evidence::majority_stretches(history, Rule::Every);
    let first_page =
        |check: &str, event: &str, from: u64| super::first_page(history, check, event, from);
    let mut problems = Vec::new();
    let mut outages = 0;
    let wins = windows(history);
    for w in &wins {
        let bound = bound_ms(interval, w.added_ms);
        for (check, list) in &stretches {
            for s in list
                .iter()
                .filter(|s| (w.start..=w.stop).contains(&s.start))
            {
                let Some(end) = s.end else { continue };
                if end - s.start < bound {
                    continue; // too short to be owed a page
                }
                outages += 1;
                match first_page(check, "down", s.start) {
                    Some(t) if t - s.start <= bound => {}
                    Some(t) => problems.push(format!(
                        "{check}: outage from {} under slow links paged only after {} ms (bound {bound} ms)",
                        s.start,
                        t - s.start
                    )),
                    None => problems.push(format!(
                        "{check}: outage from {} under slow links was never paged",
                        s.start
                    )),
                }
                match first_page(check, "recovered", end) {
                    Some(t) if t - end <= bound => {}
                    Some(t) => problems.push(format!(
                        "{check}: recovery at {end} under slow links paged only after {} ms (bound {bound} ms)",
                        t - end
                    )),
                    None => problems.push(format!(
                        "{check}: recovery at {end} under slow links was never paged"
                    )),
                }
            }
        }
    }
    let mut r = Report::new(NAME, problems);
    r.figures
        .push(("slow-majority faults".into(), wins.len().to_string()));
    r.figures
        .push(("outages under slow links".into(), outages.to_string()));
    if let Some(w) = wins.iter().max_by_key(|w| w.added_ms) {
        r.figures.push((
            "adjusted bound".into(),
            format!(
                "{} ms (+{} ms one way)",
                bound_ms(interval, w.added_ms),
                w.added_ms
            ),
        ));
    }
    r
}
