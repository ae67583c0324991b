//! Who the voters were, when: the membership in force at each moment of a
//! run, from its `membership` events, so a majority is counted among the
//! voters of that moment, not among the run's first ones.
//!
//! A change is asked for at `begun` and seen done at `t`. In between, the
//! leader may have judged a round by the voters before or after it; and a
//! round is judged up to one interval after its probes ran (`eval_at` is
//! `start_of(k) + timeout + grace` ≤ `start_of(k) + interval`), so a probe
//! from one interval before `begun` on may have been counted by the new
//! voters. Over `[begun − interval, t)` both sets are possible. Each `qu
//! node add`/`remove` changes one voter (openraft's joint configuration
//! of a one-voter change has the union as its voter ids: the larger set),
//! so a grow by two is two changes with a set of four in between.
//!
//! Two rules: `Rule::Any` (a majority of some set that may have counted)
//! is what a page may rest on, for the safety checker (b) and the timings;
//! `Rule::Every` (a majority of every such set) is what a page is owed on,
//! for the liveness checker (f).
//!
//! An older history has no membership events: its voters are the `meta`
//! count throughout and any `failing_for` ids count towards it, as before.
//! Before a run's first membership event the same holds.
//!
//! Invariant: pure functions of the history.

use std::collections::BTreeSet;

use crate::history::Event;

/// A voter set: named, or (older histories) only counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voters<'a> {
    Count(usize),
    Ids(&'a BTreeSet<String>),
}

impl Voters<'_> {
    pub fn len(&self) -> usize {
        match self {
            Voters::Count(n) => *n,
            Voters::Ids(ids) => ids.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether more than half of these voters are among `failing`.
    pub fn majority(&self, failing: &BTreeSet<String>) -> bool {
        let quorum = self.len() / 2 + 1;
        match self {
            Voters::Count(_) => failing.len() >= quorum,
            Voters::Ids(ids) => failing.intersection(ids).count() >= quorum,
        }
    }
}

/// Which of the possible voter sets must hold a majority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Some set that may have judged the round: what a page may rest on.
    Any,
    /// Every such set: what a page is owed on.
    Every,
}

/// One membership change: the voters from `to` on; over `[from, to)` the
/// set before it may still have counted.
#[derive(Debug, Clone)]
struct Change<'a> {
    from: u64,
    to: u64,
    voters: &'a BTreeSet<String>,
}

/// The membership of a run over time.
#[derive(Debug, Clone)]
pub struct Timeline<'a> {
    first: usize,
    changes: Vec<Change<'a>>,
}

impl<'a> Timeline<'a> {
    pub fn of(history: &'a [Event]) -> Timeline<'a> {
        let (first, interval) = super::meta(history);
        let mut changes: Vec<Change<'a>> = history
            .iter()
            .filter_map(|e| match e {
                Event::Membership { t, begun, voters } => Some(Change {
                    // A statement of the voters (the run's first event,
                    // or no start recorded) is in force from `t` at once.
                    from: if *begun == 0 || begun >= t {
                        *t
                    } else {
                        begun.saturating_sub(interval)
                    },
                    to: *t,
                    voters,
                }),
                _ => None,
            })
            .collect();
        changes.sort_by_key(|c| c.to); // stable: same-time changes keep their order
        Timeline { first, changes }
    }

    /// Whether any membership change is recorded (else: the meta count).
    pub fn named(&self) -> bool {
        !self.changes.is_empty()
    }

    fn before(&self, i: usize) -> Voters<'a> {
        match i.checked_sub(1) {
            Some(j) => Voters::Ids(self.changes[j].voters),
            None => Voters::Count(self.first),
        }
    }

    /// The voter sets that may have judged a round probed at `t`: the one
    /// in force, and both sides of every change under way.
    pub fn at(&self, t: u64) -> Vec<Voters<'a>> {
        let settled = self.changes.iter().rposition(|c| c.to <= t);
        let mut out = vec![match settled {
            Some(i) => Voters::Ids(self.changes[i].voters),
            None => Voters::Count(self.first),
        }];
        for (i, c) in self.changes.iter().enumerate() {
            if c.from <= t && t < c.to {
                for v in [self.before(i), Voters::Ids(c.voters)] {
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
            }
        }
        out
    }

    /// Whether `failing` is a majority at `t` under `rule`.
    pub fn majority(&self, t: u64, failing: &BTreeSet<String>, rule: Rule) -> bool {
        let sets = self.at(t);
        match rule {
            Rule::Any => sets.iter().any(|v| v.majority(failing)),
            Rule::Every => sets.iter().all(|v| v.majority(failing)),
        }
    }

    /// Times at which `at` may change: where a majority may begin or end
    /// with no truth event.
    pub fn edges(&self) -> Vec<u64> {
        let mut e: Vec<u64> = self.changes.iter().flat_map(|c| [c.from, c.to]).collect();
        e.sort_unstable();
        e.dedup();
        e
    }

    /// How many voters there were at `t`, for messages: `3`, or `3 or 4`.
    pub fn describe(&self, t: u64) -> String {
        let mut n: Vec<usize> = self.at(t).iter().map(Voters::len).collect();
        n.sort_unstable();
        n.dedup();
        n.iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(l: &[&str]) -> BTreeSet<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    fn history() -> Vec<Event> {
        vec![
            Event::Meta {
                voters: 3,
                interval_ms: 1000,
                seed: 1,
            },
            Event::Membership {
                t: 1_000,
                begun: 1_000,
                voters: ids(&["a", "b", "c"]),
            },
            Event::Membership {
                t: 20_000,
                begun: 18_000,
                voters: ids(&["a", "b", "c", "d"]),
            },
            Event::Membership {
                t: 25_000,
                begun: 24_000,
                voters: ids(&["a", "b", "c", "d", "e"]),
            },
        ]
    }

    #[test]
    fn a_majority_is_counted_among_the_voters_of_the_moment() {
        let h = history();
        let tl = Timeline::of(&h);
        let two = ids(&["a", "b"]);
        assert!(tl.majority(10_000, &two, Rule::Every));
        // From 17 s (one interval before the first add was asked for) to
        // 20 s, three or four voters: two of four is no majority.
        assert!(tl.majority(17_500, &two, Rule::Any));
        assert!(!tl.majority(17_500, &two, Rule::Every));
        assert!(!tl.majority(21_000, &two, Rule::Any));
        assert!(!tl.majority(30_000, &ids(&["a", "b", "x"]), Rule::Any));
        assert!(tl.majority(30_000, &ids(&["a", "b", "e"]), Rule::Every));
        assert_eq!(tl.describe(23_500), "4 or 5");
        assert_eq!(tl.describe(30_000), "5");
        assert_eq!(tl.edges(), [1_000, 17_000, 20_000, 23_000, 25_000].to_vec());
    }

    #[test]
    fn without_membership_events_the_meta_count_holds() {
        let h = vec![Event::Meta {
            voters: 5,
            interval_ms: 1000,
            seed: 1,
        }];
        let tl = Timeline::of(&h);
        assert!(!tl.named());
        assert!(!tl.majority(5, &ids(&["x", "y"]), Rule::Any));
        assert!(tl.majority(5, &ids(&["x", "y", "z"]), Rule::Every));
        assert_eq!(tl.describe(5), "5");
    }
}
