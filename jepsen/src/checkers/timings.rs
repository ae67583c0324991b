//! (e) Timings: leader kill → next acknowledged write, outage → DOWN page
//! (p50/p99/max), and lateness: the DOWN pages that came only after the
//! majority outage behind them had ended (how many; end → page, max).
//! Figures only; this checker does not fail ((b) judges whether such a
//! page was justified, (f) bounds detection after the heal).

use super::voters::Rule;
use super::{evidence, meta, Report};
use crate::history::{Event, Op};

/// The value at quantile `p` (0..=1) of sorted, non-empty `v` (nearest rank).
pub fn rank<T: Copy>(v: &[T], p: f64) -> T {
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn percentiles(mut v: Vec<u64>) -> String {
    if v.is_empty() {
        return "no samples".into();
    }
    v.sort_unstable();
    format!(
        "p50 {}ms p99 {}ms max {}ms (n={})",
        rank(&v, 0.5),
        rank(&v, 0.99),
        rank(&v, 1.0),
        v.len()
    )
}

/// How long after the end of the majority outage behind it each
/// DOWN page came, for the pages that came after it ended.
pub fn lateness(history: &[Event]) -> Vec<u64> {
    let (_, interval) = meta(history);
    let stretches = evidence::majority_stretches(history, Rule::Any);
    let flips = evidence::transitions(history);
    let slack = evidence::Slack::of(history, interval);
    let mut late = Vec::new();
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
        let spans = stretches
            .get(check.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        // Behind the page: the stretch its last round saw, or (rounds
        // unknown) the last stretch begun before it.
        let behind = match evidence::flip_of(&flips, delivery_id) {
            Some((_, f)) if !f.probes.is_empty() => f
                .probes
                .last()
                .and_then(|w| evidence::covering(spans, w, slack.for_window(w))),
            _ => spans.iter().rev().find(|s| s.start <= *t).copied(),
        };
        if let Some(end) = behind.and_then(|s| s.end).filter(|end| end < t) {
            late.push(t - end);
        }
    }
    late
}

pub fn check(history: &[Event]) -> Report {
    let kills: Vec<u64> = history
        .iter()
        .filter_map(|e| match e {
            Event::Nemesis {
                t,
                action,
                fault,
                leader: true,
                ..
            } if action == "start" && fault.contains("kill") => Some(*t),
            _ => None,
        })
        .collect();
    let writes: Vec<u64> = history
        .iter()
        .filter_map(|e| match e {
            Event::Ok {
                t,
                op: Op::Cas { .. },
                ..
            } => Some(*t),
            _ => None,
        })
        .collect();
    let failover: Vec<u64> = kills
        .iter()
        .filter_map(|k| writes.iter().find(|w| *w > k).map(|w| w - k))
        .collect();
    let outages: Vec<(u64, &str)> = evidence::majority_stretches(history, Rule::Any)
        .into_iter()
        .flat_map(|(check, list)| list.into_iter().map(move |s| (s.start, check)))
        .collect();
    let detection: Vec<u64> = outages
        .iter()
        .filter_map(|(t, c)| {
            history.iter().find_map(|e| match e {
                Event::Delivery {
                    t: d, check, event, ..
                } if check == c && event == "down" && d >= t => Some(d - t),
                _ => None,
            })
        })
        .collect();
    let mut r = Report::new("timings", vec![]);
    r.figures.push((
        "leader kill → next acknowledged write".into(),
        percentiles(failover),
    ));
    r.figures
        .push(("outage → DOWN page".into(), percentiles(detection)));
    let late = lateness(history);
    r.figures.push((
        "DOWN pages after their outage ended".into(),
        match late.iter().max() {
            Some(max) => format!("{} (max {max}ms after its end)", late.len()),
            None => "0".into(),
        },
    ));
    r
}
