//! (h) A flaky minority never causes a page or a flip: every transition
//! confirmed by rounds probed while a minority's uplinks were flaky (a
//! `flaky-uplink` or `flaky-minority` fault, and two intervals after it,
//! for rounds evaluated late) rests on what the target really did. A flip
//! to DOWN needs each of its rounds' probe windows to meet a stretch in
//! which a majority saw the target failing; a flip to UP needs each to
//! meet a stretch in which no majority did. (b) judges DOWN pages the same
//! way over the whole run; this rule also covers flips whose pages were
//! silenced or lost, and recoveries.
//!
//! The nemesis makes the flaky nodes the target cycle's failing minority
//! while the fault holds, so nodes that may see the target failing never
//! add up to a majority: any flip in a flaky window is the flaky links'
//! doing, or the target's.

use super::evidence::{self, Stretch};
use super::voters::Rule;
use super::{meta, Report};
use crate::history::{Event, ProbeWindow};

const FLAKY: [&str; 2] = ["flaky-uplink", "flaky-minority"];

/// [start, stop] of every flaky fault (stop: the end of the history when
/// it never stopped).
fn windows(history: &[Event]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for e in history {
        let Event::Nemesis {
            t, action, fault, ..
        } = e
        else {
            continue;
        };
        if !FLAKY.contains(&fault.as_str()) {
            continue;
        }
        if action == "start" {
            out.push((*t, u64::MAX));
        } else if let Some(w) = out.last_mut().filter(|w| w.1 == u64::MAX) {
            w.1 = *t;
        }
    }
    out
}

/// The stretches in which no majority saw the check failing.
fn healthy(failing: &[Stretch]) -> Vec<Stretch> {
    let mut out = Vec::new();
    let mut from = 0;
    for s in failing {
        out.push(Stretch {
            start: from,
            end: Some(s.start),
        });
        match s.end {
            Some(e) => from = e,
            None => return out,
        }
    }
    out.push(Stretch {
        start: from,
        end: None,
    });
    out
}

pub fn check(history: &[Event]) -> Report {
    const NAME: &str = "a flaky minority causes no page and no flip";
    let (_, interval) = meta(history);
    // Lenient both ways, as (b) is: a DOWN flip may rest on a majority of
    // either voter set of a membership change, an UP flip on a moment
    // when not every set had a failing majority.
    let failing = evidence::majority_stretches(history, Rule::Any);
    let failing_for_all = evidence::majority_stretches(history, Rule::Every);
    let slack = evidence::Slack::of(history, interval);
    let wins = windows(history);
    let inside = |w: &ProbeWindow| {
        wins.iter()
            .any(|(a, b)| w.start >= *a && w.start <= b.saturating_add(2 * interval))
    };
    let mut problems = Vec::new();
    let mut judged = 0;
    for e in history {
        let Event::Transition {
            check,
            flip,
            to,
            round,
            probes,
            ..
        } = e
        else {
            continue;
        };
        if !probes.iter().any(inside) {
            continue;
        }
        judged += 1;
        let down = failing
            .get(check.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let up = healthy(
            failing_for_all
                .get(check.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        );
        let (spans, saw) = match to.as_str() {
            "down" => (down, "failing"),
            _ => (up.as_slice(), "answering"),
        };
        if let Some(w) = probes
            .iter()
            .find(|w| evidence::covering(spans, w, slack.for_window(w)).is_none())
        {
            problems.push(format!(
                "{check}: flip {flip} to {to} (round {}) while links were flaky, but in round {} (probes {}..{}) no majority saw the target {saw}",
                round.map_or("?".into(), |k| k.to_string()),
                w.round,
                w.start,
                w.end
            ));
        }
    }
    let mut r = Report::new(NAME, problems);
    r.figures
        .push(("flaky faults".into(), wins.len().to_string()));
    r.figures
        .push(("flips judged in them".into(), judged.to_string()));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_healthy_stretches_are_the_gaps_between_failing_ones() {
        let f = [
            Stretch {
                start: 10,
                end: Some(20),
            },
            Stretch {
                start: 30,
                end: None,
            },
        ];
        assert_eq!(
            healthy(&f),
            [
                Stretch {
                    start: 0,
                    end: Some(10)
                },
                Stretch {
                    start: 20,
                    end: Some(30)
                }
            ]
        );
        assert_eq!(
            healthy(&[]),
            [Stretch {
                start: 0,
                end: None
            }]
        );
    }
}
