//! What a page rests on, for (b) and (e): the stretches in which a
//! majority of voters saw a target failing (the `truth` events, counted
//! among the voters of the moment: `voters::Timeline`), the
//! transition each page belongs to (through its delivery id) with the
//! probe windows of the rounds that confirmed it, and how far those
//! windows may be off from what the nodes really probed.
//!
//! The slack: a probe window is `[start_of(r), start_of(r) + timeout]` by
//! true time, but a node probes round `r` when its own wall clock reads
//! `start_of(r)`, so a node whose clock the nemesis shifted by `s` probed
//! it `s` early or late. A window that such a clock could have probed
//! (`Slack::reaches`: while the fault held, shifted by `s`, and one
//! interval after, for a timer armed under it) is widened by `|s|`; the
//! largest shift any nemesis injected in the run bounds it (an amount not
//! recorded, in an older history, counts as the nemesis's largest, 30 s,
//! both ways, and one never healed lasts to the end). Every window, on top,
//! gets 250 ms for the rest of the gap between a truth event and what a
//! probe saw: the harness writes the target's mode file just before it
//! records the truth, the target reads it on each request, and a probe's
//! request reaches the target a few milliseconds after the round's timer
//! fires (a timer that fires late is what the window's timeout covers).
//! Scoping the skew to the windows it could move keeps one 30 s skew from
//! excusing every round of the run: the target's cycle repeats every 28 s.
//!
//! Invariant: pure functions of the history; nothing is inferred from the
//! order of unrelated events.

use std::collections::{BTreeMap, BTreeSet};

use super::voters::{Rule, Timeline};
use crate::history::{DeliveryId, Event, ProbeWindow};

/// Between a truth event and the probes that saw it, besides clock skew.
pub const PROBE_ALLOWANCE_MS: u64 = 250;
/// A skew fault of an older history, whose amount was not recorded: the
/// largest the nemesis draws (`runner::nemesis::SKEWS`).
pub const UNRECORDED_SKEW_MS: u64 = 30_000;

/// A span `[start, end)` in which a majority of voters saw the target
/// failing; `end` None: still failing when the history ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stretch {
    pub start: u64,
    pub end: Option<u64>,
}

impl Stretch {
    /// Whether the stretch meets `[from, to]`.
    pub fn meets(&self, from: u64, to: u64) -> bool {
        self.start <= to && self.end.is_none_or(|e| e >= from)
    }
}

/// Per check, its majority-failing stretches in time order: the target
/// failing for a majority of the voters of the moment (`voters::Timeline`)
/// under `rule`. Besides the truth events, a majority may begin or end
/// where the membership changes.
pub fn majority_stretches(history: &[Event], rule: Rule) -> BTreeMap<&str, Vec<Stretch>> {
    let timeline = Timeline::of(history);
    let mut truths: Vec<(u64, &str, &BTreeSet<String>)> = history
        .iter()
        .filter_map(|e| match e {
            Event::Truth {
                t,
                check,
                failing_for,
            } => Some((*t, check.as_str(), failing_for)),
            _ => None,
        })
        .collect();
    truths.sort_by_key(|(t, _, _)| *t); // stable: same-time events keep their order
    let edges = timeline.edges();
    let mut by_check: BTreeMap<&str, Vec<(u64, &BTreeSet<String>)>> = BTreeMap::new();
    for (t, check, failing) in truths {
        by_check.entry(check).or_default().push((t, failing));
    }
    let mut out: BTreeMap<&str, Vec<Stretch>> = BTreeMap::new();
    for (check, truths) in by_check {
        // Each truth, and each membership edge after the first truth with
        // the failing set in force there, in time order (a truth before an
        // edge of the same time).
        let mut points: Vec<(u64, &BTreeSet<String>)> = Vec::new();
        let mut next_edge = edges.iter().peekable();
        for (i, (t, failing)) in truths.iter().enumerate() {
            points.push((*t, failing));
            let until = truths.get(i + 1).map_or(u64::MAX, |(n, _)| *n);
            while let Some(e) = next_edge.peek() {
                if **e >= until {
                    break;
                }
                if **e > *t {
                    points.push((**e, failing));
                }
                next_edge.next();
            }
        }
        let list = out.entry(check).or_default();
        for (t, failing) in points {
            let majority = timeline.majority(t, failing, rule);
            let open = list.last().is_some_and(|s| s.end.is_none());
            match (majority, open) {
                (true, false) => list.push(Stretch {
                    start: t,
                    end: None,
                }),
                (false, true) => {
                    if let Some(s) = list.last_mut() {
                        s.end = Some(t);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// A committed transition as the history records it.
#[derive(Debug, Clone, Copy)]
pub struct Flip<'a> {
    pub to: &'a str,
    pub round: Option<u64>,
    /// Empty: not known (an older history); judge by delivery time.
    pub probes: &'a [ProbeWindow],
}

/// Every recorded transition, by (check, flip).
pub fn transitions(history: &[Event]) -> BTreeMap<(&str, u64), Flip<'_>> {
    history
        .iter()
        .filter_map(|e| match e {
            Event::Transition {
                check,
                flip,
                to,
                round,
                probes,
                ..
            } => Some((
                (check.as_str(), *flip),
                Flip {
                    to: to.as_str(),
                    round: *round,
                    probes: probes.as_slice(),
                },
            )),
            _ => None,
        })
        .collect()
}

/// The transition a page belongs to: the flip its delivery id names (a
/// silence-end or repeat page belongs to the same flip as the first page).
pub fn flip_of<'a>(
    flips: &'a BTreeMap<(&'a str, u64), Flip<'a>>,
    delivery_id: &'a str,
) -> Option<(u64, &'a Flip<'a>)> {
    let id = DeliveryId::parse(delivery_id)?;
    flips.get(&(id.check, id.flip)).map(|f| (id.flip, f))
}

/// One clock fault: from `from` to `to` (the nemesis's start and stop
/// events, which bracket it) the targets' clocks read true time plus
/// `shift_ms` (None: not recorded, in an older history).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Skew {
    from: u64,
    to: u64,
    shift_ms: Option<i64>,
}

/// How far each probe window may be off (see the module comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slack {
    skews: Vec<Skew>,
    interval_ms: u64,
}

impl Slack {
    /// The clock faults of a run whose rounds are `interval_ms` apart.
    pub fn of(history: &[Event], interval_ms: u64) -> Slack {
        let mut skews: Vec<Skew> = Vec::new();
        let mut open: Vec<(&str, Skew)> = Vec::new();
        for e in history {
            let Event::Nemesis {
                t,
                action,
                fault,
                skew_ms,
                ..
            } = e
            else {
                continue;
            };
            if !fault.starts_with("skew") {
                continue;
            }
            if action == "start" {
                let skew = Skew {
                    from: *t,
                    to: u64::MAX,
                    shift_ms: *skew_ms,
                };
                open.push((fault.as_str(), skew));
            } else if let Some(i) = open.iter().rposition(|(f, _)| f == fault) {
                let (_, skew) = open.remove(i);
                skews.push(Skew { to: *t, ..skew });
            }
        }
        skews.extend(open.into_iter().map(|(_, s)| s)); // never stopped
        Slack { skews, interval_ms }
    }

    /// The slack of window `w`: the allowance, plus the largest shift of a
    /// clock fault that could have moved its probes.
    pub fn for_window(&self, w: &ProbeWindow) -> u64 {
        let near = self
            .skews
            .iter()
            .filter(|s| self.reaches(s, w.start))
            .map(|s| s.shift_ms.map_or(UNRECORDED_SKEW_MS, i64::unsigned_abs))
            .max()
            .unwrap_or(0);
        near + PROBE_ALLOWANCE_MS
    }

    /// The largest slack of any window.
    pub fn max(&self) -> u64 {
        let skew = self
            .skews
            .iter()
            .map(|s| s.shift_ms.map_or(UNRECORDED_SKEW_MS, i64::unsigned_abs))
            .max()
            .unwrap_or(0);
        skew + PROBE_ALLOWANCE_MS
    }

    /// Whether a round starting at `start` may have been probed by a clock
    /// of fault `s`: a clock `shift` ahead probes round `r` at true time
    /// `start_of(r) − shift`, so over `[from, to]` it probes the rounds
    /// starting in `[from + shift, to + shift]`. The reach is the hull of
    /// that and `[from, to]` itself, one interval wider on each side (a
    /// timer armed under the fault may fire after it ends); 30 s either way
    /// when the shift is not recorded.
    fn reaches(&self, s: &Skew, start: u64) -> bool {
        let (early, late) = match s.shift_ms {
            Some(shift) if shift >= 0 => (0, shift.unsigned_abs()),
            Some(shift) => (shift.unsigned_abs(), 0),
            None => (UNRECORDED_SKEW_MS, UNRECORDED_SKEW_MS),
        };
        let lo = s
            .from
            .saturating_sub(early)
            .saturating_sub(self.interval_ms);
        let hi = s.to.saturating_add(late).saturating_add(self.interval_ms);
        (lo..=hi).contains(&start)
    }
}

/// The stretch nearest to window `w` among those that meet it widened by
/// `slack` on both sides (one that overlaps it outright first).
pub fn covering(stretches: &[Stretch], w: &ProbeWindow, slack: u64) -> Option<Stretch> {
    let gap = |s: &Stretch| {
        if s.start > w.end {
            s.start - w.end
        } else {
            s.end.map_or(0, |e| w.start.saturating_sub(e))
        }
    };
    stretches
        .iter()
        .copied()
        .filter(|s| s.meets(w.start.saturating_sub(slack), w.end.saturating_add(slack)))
        .min_by_key(gap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth(t: u64, n: usize) -> Event {
        Event::Truth {
            t,
            check: "c".into(),
            failing_for: (0..n).map(|i| format!("n{i}")).collect(),
        }
    }

    #[test]
    fn stretches_open_at_a_majority_and_close_when_it_is_lost() {
        let h = [
            truth(10, 1),
            truth(20, 2),
            truth(30, 3),
            truth(40, 1),
            truth(50, 0),
            truth(60, 2),
        ];
        assert_eq!(
            majority_stretches(&h, Rule::Any)["c"],
            [
                Stretch {
                    start: 20,
                    end: Some(40)
                },
                Stretch {
                    start: 60,
                    end: None
                }
            ]
        );
    }

    #[test]
    fn a_window_is_covered_when_a_stretch_meets_it_within_the_slack() {
        let s = [Stretch {
            start: 1_000,
            end: Some(8_000),
        }];
        let w = |start| ProbeWindow {
            round: 0,
            start,
            end: start + 500,
        };
        assert!(covering(&s, &w(7_900), 0).is_some());
        assert!(covering(&s, &w(8_100), 0).is_none());
        assert!(covering(&s, &w(8_100), 100).is_some());
        assert!(covering(&s, &w(400), 0).is_none());
        assert!(covering(&s, &w(400), 100).is_some());
    }

    #[test]
    fn a_skew_widens_only_the_windows_its_clock_could_have_probed() {
        let nemesis = |t, action: &str, ms: Option<i64>| Event::Nemesis {
            t,
            action: action.into(),
            fault: "skew-leader".into(),
            targets: vec!["n1".into()],
            leader: true,
            skew_ms: ms,
            added_ms: None,
        };
        let w = |start| ProbeWindow {
            round: 0,
            start,
            end: start + 500,
        };
        assert_eq!(Slack::of(&[], 1000).for_window(&w(5)), PROBE_ALLOWANCE_MS);
        // 30 s behind from 100 s to 103 s: it probed the rounds of 70..73 s.
        let behind = Slack::of(
            &[
                nemesis(100_000, "start", Some(-30_000)),
                nemesis(103_000, "stop", Some(-30_000)),
            ],
            1000,
        );
        assert_eq!(behind.for_window(&w(71_000)), 30_000 + PROBE_ALLOWANCE_MS);
        assert_eq!(behind.for_window(&w(68_000)), PROBE_ALLOWANCE_MS);
        assert_eq!(behind.for_window(&w(105_000)), PROBE_ALLOWANCE_MS);
        assert_eq!(behind.max(), 30_000 + PROBE_ALLOWANCE_MS);
        // 4 s ahead: the rounds of 104..107 s.
        let ahead = Slack::of(
            &[
                nemesis(100_000, "start", Some(4_000)),
                nemesis(103_000, "stop", Some(4_000)),
            ],
            1000,
        );
        assert_eq!(ahead.for_window(&w(106_000)), 4_000 + PROBE_ALLOWANCE_MS);
        assert_eq!(ahead.for_window(&w(90_000)), PROBE_ALLOWANCE_MS);
        // Not recorded (an older history), or never stopped: both ways, to the end.
        let unknown = Slack::of(&[nemesis(100_000, "start", None)], 1000);
        assert_eq!(
            unknown.for_window(&w(75_000)),
            UNRECORDED_SKEW_MS + PROBE_ALLOWANCE_MS
        );
        assert_eq!(
            unknown.for_window(&w(900_000)),
            UNRECORDED_SKEW_MS + PROBE_ALLOWANCE_MS
        );
        assert_eq!(unknown.for_window(&w(60_000)), PROBE_ALLOWANCE_MS);
    }

    #[test]
    fn the_nearest_stretch_is_the_one_behind_a_window() {
        let s = [
            Stretch {
                start: 1_000,
                end: Some(8_000),
            },
            Stretch {
                start: 30_000,
                end: Some(37_000),
            },
        ];
        let w = ProbeWindow {
            round: 0,
            start: 36_300,
            end: 36_800,
        };
        assert_eq!(covering(&s, &w, 40_000), Some(s[1]));
    }
}
