//! (c) Every committed paging transition was delivered at least once to
//! each of its alerts; no page was delivered without a committed
//! transition; a page arrived twice only when a fault aimed at the leader
//! overlapped the two sends: one that began between them, or one already
//! in force at the first (a leader whose clock fault makes it hand over
//! leadership may lose the record of a page it just sent, and its
//! successor sends it again: at least once, as documented).

use std::collections::{BTreeMap, BTreeSet};

use super::Report;
use crate::history::Event;

/// A committed flip: number, new state, alert ids.
type Flip<'a> = (u64, &'a str, &'a [String]);

pub fn check(history: &[Event]) -> Report {
    // Paging flips: to down, or down → up.
    let mut flips: BTreeMap<&str, Vec<Flip>> = BTreeMap::new();
    for e in history {
        if let Event::Transition {
            check,
            flip,
            to,
            alerts,
            ..
        } = e
        {
            flips
                .entry(check.as_str())
                .or_default()
                .push((*flip, to.as_str(), alerts.as_slice()));
        }
    }
    // Delivery ids each paging flip must reach: `<check>-<flip>-<alert>`,
    // or the prefix `<check>-<flip>-` when the alerts are not recorded.
    let mut paging: BTreeSet<String> = BTreeSet::new();
    for (check, list) in flips.iter_mut() {
        list.sort();
        let mut prev = "unknown";
        for (flip, to, alerts) in list.iter() {
            if *to == "down" || (*to == "up" && prev == "down") {
                if alerts.is_empty() {
                    paging.insert(format!("{check}-{flip}-"));
                }
                for a in alerts.iter() {
                    paging.insert(format!("{check}-{flip}-{a}"));
                }
            }
            prev = to;
        }
    }
    // [start, stop] of every fault aimed at the leader (stop: the next
    // stop of the same fault on the same targets; none recorded: the
    // start alone, as histories before stops were judged).
    let mut leader_faults: Vec<(u64, u64)> = Vec::new();
    for (i, e) in history.iter().enumerate() {
        let Event::Nemesis {
            t,
            action,
            fault,
            targets,
            leader: true,
            ..
        } = e
        else {
            continue;
        };
        if action != "start" {
            continue;
        }
        let stop = history[i + 1..].iter().find_map(|s| match s {
            Event::Nemesis {
                t,
                action,
                fault: f,
                targets: ts,
                ..
            } if action == "stop" && f == fault && ts == targets => Some(*t),
            _ => None,
        });
        leader_faults.push((*t, stop.unwrap_or(*t)));
    }
    let mut problems = Vec::new();
    let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
    let mut delivered_prefixes: BTreeSet<String> = BTreeSet::new();
    let mut duplicates = 0;
    for e in history {
        let Event::Delivery { t, delivery_id, .. } = e else {
            continue;
        };
        match paging.iter().find(|p| delivery_id.starts_with(p.as_str())) {
            Some(p) => {
                delivered_prefixes.insert(p.clone());
            }
            None => problems.push(format!(
                "page {delivery_id} at {t} has no committed paging transition (a phantom page)"
            )),
        }
        if let Some(first) = seen.get(delivery_id.as_str()) {
            duplicates += 1;
            // The leader died (or handed over) between sending and
            // recording: a leader fault overlaps the span from the first
            // send (1 s of clock slack) to the repeat.
            let excused = leader_faults
                .iter()
                .any(|(start, stop)| stop.saturating_add(1_000) >= *first && *start <= *t);
            if !excused {
                problems.push(format!(
                    "page {delivery_id} delivered at {first} and again at {t} with no leader fault in between (a duplicate)"
                ));
            }
        } else {
            seen.insert(delivery_id.as_str(), *t);
        }
    }
    for p in &paging {
        if !delivered_prefixes.contains(p) {
            problems.push(format!(
                "committed transition {p} was never delivered (a lost alert)",
            ));
        }
    }
    let mut r = Report::new(
        "every transition delivered, nothing else, duplicates only on leader faults",
        problems,
    );
    r.figures
        .push(("deliveries due".into(), paging.len().to_string()));
    r.figures
        .push(("deliveries".into(), seen.len().to_string()));
    r.figures
        .push(("duplicates".into(), duplicates.to_string()));
    r
}
