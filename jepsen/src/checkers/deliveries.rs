//! (c) Every committed paging transition was delivered at least once to
//! each of its alerts; no page was delivered without a committed
//! transition; a page arrived twice only when a fault aimed at the leader
//! overlapped the two sends.

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
    let leader_faults: Vec<u64> = history
        .iter()
        .filter_map(|e| match e {
            Event::Nemesis {
                t,
                action,
                leader: true,
                ..
            } if action == "start" => Some(*t),
            _ => None,
        })
        .collect();
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
            // The leader died between sending and recording: the fault falls
            // between the first send (1 s of clock slack) and the repeat.
            let excused = leader_faults
                .iter()
                .any(|f| *f + 1_000 >= *first && *f <= *t);
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
