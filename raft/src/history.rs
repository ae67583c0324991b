//! Each check's replicated history (its committed flips, pauses, resumes and
//! restarts), the silences that ended, and the uptime arithmetic over them.
//!
//! Invariants:
//! - Events of a check are in commit order, their `seq` strictly grows, and
//!   their `at_ms` come from the commands (never a node's own clock), so
//!   every node that applied the same log holds the same history and
//!   computes the same uptime for the same window.
//! - A history holds at most `MAX_EVENTS_PER_CHECK` events. Events dropped
//!   (by the cap or by retention) are folded into one `Baseline` carrying
//!   the state they left, so the timeline after it stays exact.
//! - Downtime counts only time in `down` while neither paused nor silenced;
//!   time before a check's first event and time in `unknown` count as
//!   neither up nor down.

use serde::{Deserialize, Serialize};

use crate::model::{Evidence, Health, TransitionRecord, ValidationError};

/// How long history is kept when `qu cluster retention` was never set.
pub const DEFAULT_RETENTION_MS: u64 = 90 * DAY_MS;
/// The bounds `qu cluster retention` accepts.
pub const MIN_RETENTION_MS: u64 = DAY_MS;
pub const MAX_RETENTION_MS: u64 = 3 * 365 * DAY_MS;
/// Events kept per check: a flip with three nodes' evidence is about 410
/// bytes as stored (377 of JSON with short reasons, 30 of key; measured by
/// the test `a_flip_with_three_nodes_evidence_stays_under_the_stated_size`),
/// so a check's history stays near 200 KiB at the cap.
pub const MAX_EVENTS_PER_CHECK: usize = 500;
/// Ended silences kept (each about 150 bytes plus 20 per named check).
pub const MAX_PAST_SILENCES: usize = 5_000;

const DAY_MS: u64 = 86_400_000;

/// Validates a retention for `qu cluster retention`.
pub fn validate_retention(ms: u64) -> Result<(), ValidationError> {
    if !(MIN_RETENTION_MS..=MAX_RETENTION_MS).contains(&ms) {
        return Err(ValidationError::new(
            "retention",
            format!(
                "must be between 1d and {}d (got {:.2}d)",
                MAX_RETENTION_MS / DAY_MS,
                ms as f64 / DAY_MS as f64
            ),
        ));
    }
    Ok(())
}

/// One entry of a check's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// Position in the check's history (strictly growing; the storage key).
    pub seq: u64,
    /// Milliseconds since the Unix epoch, as the command said.
    pub at_ms: u64,
    #[serde(flatten)]
    pub what: HistoryKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum HistoryKind {
    /// The check was added (it starts at unknown).
    Added,
    /// A committed flip, with the evidence of the round that confirmed it.
    Flip {
        round: u64,
        from: Health,
        to: Health,
        voters: usize,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        evidence: Vec<Evidence>,
    },
    /// Paused (`qu check pause`): probed nowhere; the time counts as paused.
    Paused,
    /// Resumed from unknown.
    Resumed,
    /// An edit changed the target: the state restarted at unknown.
    Restarted {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        note: String,
    },
    /// Older events were dropped (retention or the per-check cap); this is
    /// the state they left.
    Baseline { health: Health, paused: bool },
}

impl HistoryKind {
    /// Stands for a committed flip.
    pub fn flip(record: &TransitionRecord) -> HistoryKind {
        HistoryKind::Flip {
            round: record.round,
            from: record.from,
            to: record.to,
            voters: record.voters,
            evidence: record.evidence.clone(),
        }
    }
}

impl HistoryEvent {
    /// A flip as the record it was committed as (None for other events).
    pub fn transition(&self) -> Option<TransitionRecord> {
        match &self.what {
            HistoryKind::Flip {
                round,
                from,
                to,
                voters,
                evidence,
            } => Some(TransitionRecord {
                round: *round,
                from: *from,
                to: *to,
                at_ms: self.at_ms,
                voters: *voters,
                evidence: evidence.clone(),
            }),
            _ => None,
        }
    }
}

/// The state a timeline is in between two events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Phase {
    health: Health,
    paused: bool,
}

impl Phase {
    fn after(self, what: &HistoryKind) -> Phase {
        match what {
            HistoryKind::Added => Phase::default(),
            HistoryKind::Flip { to, .. } => Phase {
                health: *to,
                ..self
            },
            HistoryKind::Paused => Phase {
                paused: true,
                ..self
            },
            HistoryKind::Resumed => Phase::default(),
            HistoryKind::Restarted { .. } => Phase {
                health: Health::Unknown,
                ..self
            },
            HistoryKind::Baseline { health, paused } => Phase {
                health: *health,
                paused: *paused,
            },
        }
    }
}

/// A check's history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CheckHistory {
    pub events: Vec<HistoryEvent>,
}

impl CheckHistory {
    /// Appends an event; returns the seqs written and removed (for storage).
    pub fn push(&mut self, at_ms: u64, what: HistoryKind) -> Changed {
        let seq = self.events.last().map_or(0, |e| e.seq + 1);
        self.events.push(HistoryEvent { seq, at_ms, what });
        let mut changed = Changed {
            written: vec![seq],
            removed: vec![],
        };
        if self.events.len() > MAX_EVENTS_PER_CHECK {
            let fold = self.events.len() - MAX_EVENTS_PER_CHECK;
            changed.merge(self.fold_first(fold + 1));
        }
        changed
    }

    /// Drops the events older than `before_ms`, keeping the state they
    /// left as one baseline (at the last dropped event's time). Changes
    /// nothing when that is already the case.
    pub fn prune(&mut self, before_ms: u64) -> Changed {
        let old = self
            .events
            .iter()
            .take_while(|e| e.at_ms < before_ms)
            .count();
        if !self.needs_prune(before_ms) {
            return Changed::default();
        }
        self.fold_first(old)
    }

    /// Whether `prune(before_ms)` would change anything.
    pub fn needs_prune(&self, before_ms: u64) -> bool {
        let old = self
            .events
            .iter()
            .take_while(|e| e.at_ms < before_ms)
            .count();
        old > 1 || (old == 1 && !matches!(self.events[0].what, HistoryKind::Baseline { .. }))
    }

    /// Replaces the first `n` (≥ 1) events by one baseline at the last
    /// one's time and seq.
    fn fold_first(&mut self, n: usize) -> Changed {
        let n = n.min(self.events.len());
        if n == 0 {
            return Changed::default();
        }
        let phase = self.events[..n]
            .iter()
            .fold(Phase::default(), |p, e| p.after(&e.what));
        let last = &self.events[n - 1];
        let baseline = HistoryEvent {
            seq: last.seq,
            at_ms: last.at_ms,
            what: HistoryKind::Baseline {
                health: phase.health,
                paused: phase.paused,
            },
        };
        let removed = self.events[..n - 1].iter().map(|e| e.seq).collect();
        let written = vec![baseline.seq];
        self.events.splice(..n, std::iter::once(baseline));
        Changed { written, removed }
    }

    /// The events at or after `since_ms`.
    pub fn since(&self, since_ms: u64) -> impl Iterator<Item = &HistoryEvent> {
        self.events.iter().filter(move |e| e.at_ms >= since_ms)
    }

    pub fn get(&self, seq: u64) -> Option<&HistoryEvent> {
        self.events
            .binary_search_by_key(&seq, |e| e.seq)
            .ok()
            .map(|i| &self.events[i])
    }
}

/// Which events a change wrote and removed, by seq.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changed {
    pub written: Vec<u64>,
    pub removed: Vec<u64>,
}

impl Changed {
    fn merge(&mut self, other: Changed) {
        self.written.retain(|s| !other.removed.contains(s));
        for s in other.written {
            if !self.written.contains(&s) {
                self.written.push(s);
            }
        }
        self.removed.extend(other.removed);
    }
}

/// A silence that ended, kept to exclude its time from uptime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastSilence {
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    pub start_ms: u64,
    /// When it really ended (its end, or earlier when removed).
    pub end_ms: u64,
}

impl PastSilence {
    pub fn covers(&self, check_id: &str) -> bool {
        self.all || self.checks.iter().any(|c| c == check_id)
    }
}

/// What a check's timeline says about one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Uptime {
    pub from_ms: u64,
    pub to_ms: u64,
    pub up_ms: u64,
    /// In `down`, neither paused nor silenced.
    pub down_ms: u64,
    /// Unknown, or before the check's first event.
    pub unknown_ms: u64,
    pub paused_ms: u64,
    /// Silenced and not paused (whatever the state).
    pub silenced_ms: u64,
    /// Outages with counted downtime inside the window.
    pub outages: u64,
    pub longest_down_ms: u64,
    /// Mean counted downtime of the outages that ended inside the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mttr_ms: Option<u64>,
}

impl Uptime {
    /// Up over up plus down, in percent; None when neither was seen.
    pub fn percent(&self) -> Option<f64> {
        let seen = self.up_ms + self.down_ms;
        (seen > 0).then(|| self.up_ms as f64 * 100.0 / seen as f64)
    }
}

/// The uptime of one check over `[from_ms, to_ms)`, from its history and
/// the spans `(start, end)` during which a silence covered it.
pub fn uptime(
    events: &[HistoryEvent],
    silenced: &[(u64, u64)],
    from_ms: u64,
    to_ms: u64,
) -> Uptime {
    let mut out = Uptime {
        from_ms,
        to_ms,
        ..Uptime::default()
    };
    if to_ms <= from_ms {
        return out;
    }
    let silenced = merged(silenced);
    let first = events
        .first()
        .map_or(to_ms, |e| e.at_ms.max(from_ms).min(to_ms));
    out.unknown_ms += first - from_ms;
    let mut phase = Phase::default();
    // The counted downtime of the current outage, if one is open.
    let mut outage: Option<u64> = None;
    let mut ended: Vec<u64> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let next = phase.after(&e.what);
        if phase.health == Health::Down && next.health != Health::Down {
            if let Some(d) = outage.take() {
                if d > 0 && e.at_ms >= from_ms && e.at_ms <= to_ms {
                    ended.push(d);
                }
                out.close_outage(d);
            }
        }
        if next.health == Health::Down && outage.is_none() {
            outage = Some(0);
        }
        phase = next;
        let start = e.at_ms.max(from_ms);
        let end = events.get(i + 1).map_or(to_ms, |n| n.at_ms).min(to_ms);
        if end <= start {
            continue;
        }
        let span = end - start;
        if phase.paused {
            out.paused_ms += span;
            continue;
        }
        let muted = covered(&silenced, start, end);
        out.silenced_ms += muted;
        let open = span - muted;
        match phase.health {
            Health::Up => out.up_ms += open,
            Health::Unknown => out.unknown_ms += open,
            Health::Down => {
                out.down_ms += open;
                if let Some(d) = outage.as_mut() {
                    *d += open;
                }
            }
        }
    }
    if let Some(d) = outage {
        out.close_outage(d);
    }
    if !ended.is_empty() {
        out.mttr_ms = Some(ended.iter().sum::<u64>() / ended.len() as u64);
    }
    out
}

impl Uptime {
    fn close_outage(&mut self, counted: u64) {
        if counted > 0 {
            self.outages += 1;
            self.longest_down_ms = self.longest_down_ms.max(counted);
        }
    }
}

/// Sorted, non-overlapping spans.
fn merged(spans: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = spans.iter().copied().filter(|(a, b)| b > a).collect();
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// How much of `[start, end)` the merged spans cover.
fn covered(spans: &[(u64, u64)], start: u64, end: u64) -> u64 {
    spans
        .iter()
        .map(|&(a, b)| b.min(end).saturating_sub(a.max(start)))
        .sum()
}

/// The spans during which silences covered `check_id`: the ended ones, and
/// the active ones up to `now_ms`.
pub fn silenced_spans<'a>(
    past: impl IntoIterator<Item = &'a PastSilence>,
    active: impl IntoIterator<Item = &'a crate::mute::Silence>,
    check_id: &str,
    now_ms: u64,
) -> Vec<(u64, u64)> {
    past.into_iter()
        .filter(|s| s.covers(check_id))
        .map(|s| (s.start_ms, s.end_ms))
        .chain(
            active
                .into_iter()
                .filter(|s| s.covers(check_id))
                .map(|s| (s.start_ms, s.end_ms.min(now_ms))),
        )
        .collect()
}

/// Per check id, its history (in `ClusterState`). Each history is itself
/// `Shared`, so the path copy of a change clones reference counts, not
/// the neighbours' events.
pub type Histories = crate::state::Records<String, crate::state::Shared<CheckHistory>>;

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 60_000;

    fn flip(from: Health, to: Health) -> HistoryKind {
        HistoryKind::Flip {
            round: 0,
            from,
            to,
            voters: 3,
            evidence: vec![],
        }
    }

    fn history(events: &[(u64, HistoryKind)]) -> CheckHistory {
        let mut h = CheckHistory::default();
        for (at, what) in events {
            h.push(*at, what.clone());
        }
        h
    }

    use Health::{Down, Unknown, Up};

    #[test]
    fn an_outage_that_spans_the_window_edge_counts_only_inside() {
        let h = history(&[
            (0, HistoryKind::Added),
            (10 * M, flip(Unknown, Up)),
            (50 * M, flip(Up, Down)),
            (70 * M, flip(Down, Up)),
        ]);
        // Window [60m, 120m): 10 min down (60–70), 50 up.
        let u = uptime(&h.events, &[], 60 * M, 120 * M);
        assert_eq!((u.down_ms, u.up_ms, u.unknown_ms), (10 * M, 50 * M, 0));
        assert_eq!(u.outages, 1);
        assert_eq!(u.longest_down_ms, 10 * M);
        assert_eq!(u.mttr_ms, Some(10 * M));
        assert!((u.percent().unwrap() - 50.0 * 100.0 / 60.0).abs() < 1e-9);
        // An outage still open at the end has no recovery time.
        let u = uptime(&h.events, &[], 0, 60 * M);
        assert_eq!((u.down_ms, u.up_ms, u.unknown_ms), (10 * M, 40 * M, 10 * M));
        assert_eq!((u.outages, u.mttr_ms), (1, None));
    }

    #[test]
    fn time_before_the_check_and_in_unknown_is_not_downtime() {
        let h = history(&[(30 * M, HistoryKind::Added), (40 * M, flip(Unknown, Up))]);
        let u = uptime(&h.events, &[], 0, 60 * M);
        assert_eq!((u.unknown_ms, u.up_ms, u.down_ms), (40 * M, 20 * M, 0));
        assert_eq!(u.percent(), Some(100.0));
        let none = uptime(&[], &[], 0, 60 * M);
        assert_eq!((none.unknown_ms, none.percent()), (60 * M, None));
    }

    #[test]
    fn paused_time_is_excluded_and_shown_apart() {
        let h = history(&[
            (0, HistoryKind::Added),
            (0, flip(Unknown, Down)),
            (10 * M, HistoryKind::Paused),
            (40 * M, HistoryKind::Resumed),
            (45 * M, flip(Unknown, Up)),
        ]);
        let u = uptime(&h.events, &[], 0, 60 * M);
        assert_eq!(u.paused_ms, 30 * M);
        assert_eq!(u.down_ms, 10 * M);
        assert_eq!(u.unknown_ms, 5 * M);
        assert_eq!(u.up_ms, 15 * M);
        // The resume ended the outage (its state restarted at unknown).
        assert_eq!((u.outages, u.mttr_ms), (1, Some(10 * M)));
    }

    #[test]
    fn flips_inside_a_silence_count_as_silenced_not_down() {
        let h = history(&[
            (0, HistoryKind::Added),
            (0, flip(Unknown, Up)),
            (20 * M, flip(Up, Down)),
            (30 * M, flip(Down, Up)),
            (40 * M, flip(Up, Down)),
            (50 * M, flip(Down, Up)),
        ]);
        // A silence over [15m, 35m) swallows the first outage whole; two
        // overlapping silences over the second cover [45m, 48m).
        let spans = [(15 * M, 35 * M), (45 * M, 47 * M), (46 * M, 48 * M)];
        let u = uptime(&h.events, &spans, 0, 60 * M);
        assert_eq!(u.silenced_ms, 23 * M);
        assert_eq!(u.down_ms, 7 * M);
        assert_eq!(u.up_ms, 30 * M);
        assert_eq!(u.outages, 1, "the silenced outage is not counted");
        assert_eq!((u.longest_down_ms, u.mttr_ms), (7 * M, Some(7 * M)));
    }

    #[test]
    fn the_cap_folds_the_oldest_events_into_a_baseline() {
        let mut h = CheckHistory::default();
        h.push(0, HistoryKind::Added);
        let mut health = Unknown;
        for i in 1..=(MAX_EVENTS_PER_CHECK as u64 + 10) {
            let to = if health == Up { Down } else { Up };
            h.push(i * M, flip(health, to));
            health = to;
        }
        assert_eq!(h.events.len(), MAX_EVENTS_PER_CHECK);
        let HistoryKind::Baseline { health: b, paused } = h.events[0].what else {
            panic!("first is {:?}", h.events[0]);
        };
        // The baseline holds the state after the last dropped flip, at its
        // time: the timeline after it is the one before the fold.
        assert!(!paused);
        assert_eq!(h.events[0].at_ms, 11 * M);
        assert_eq!(b, if 11 % 2 == 1 { Up } else { Down });
        let seqs: Vec<u64> = h.events.iter().map(|e| e.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn retention_pruning_keeps_the_state_and_then_changes_nothing() {
        let mut h = history(&[
            (0, HistoryKind::Added),
            (10 * M, flip(Unknown, Down)),
            (20 * M, HistoryKind::Paused),
            (100 * M, HistoryKind::Resumed),
            (110 * M, flip(Unknown, Up)),
        ]);
        let before = uptime(&h.events, &[], 30 * M, 200 * M);
        let changed = h.prune(50 * M);
        assert_eq!(changed.removed, vec![0, 1]);
        assert_eq!(changed.written, vec![2]);
        assert_eq!(
            h.events[0].what,
            HistoryKind::Baseline {
                health: Down,
                paused: true
            }
        );
        assert_eq!(uptime(&h.events, &[], 30 * M, 200 * M), before);
        assert!(!h.needs_prune(50 * M));
        assert_eq!(h.prune(50 * M), Changed::default());
        // The next prune moves the baseline forward.
        let changed = h.prune(105 * M);
        assert_eq!((changed.removed, changed.written), (vec![2], vec![3]));
        assert_eq!(
            h.events[0].what,
            HistoryKind::Baseline {
                health: Unknown,
                paused: false
            }
        );
    }

    #[test]
    fn a_flip_with_three_nodes_evidence_stays_under_the_stated_size() {
        let evidence = (0..3)
            .map(|i| Evidence {
                node: crate::NodeId(0xa7f3_c2d9_4e01_b8f6 + i),
                ok: false,
                reason: "connection refused".into(),
                latency_ms: Some(1_234),
                cert_not_after_ms: None,
            })
            .collect();
        let event = HistoryEvent {
            seq: 123_456,
            at_ms: 1_796_229_054_794,
            what: HistoryKind::Flip {
                round: 59_874_301,
                from: Up,
                to: Down,
                voters: 3,
                evidence,
            },
        };
        let bytes = serde_json::to_vec(&event).unwrap().len();
        let key = "hist/0a1b2c3d/000000000001e240".len();
        println!("a flip with 3 nodes' evidence: {bytes} bytes + {key} bytes of key");
        assert!(bytes + key < 512, "{bytes} + {key}");
    }

    #[test]
    fn retention_bounds_are_enforced() {
        assert!(validate_retention(DAY_MS).is_ok());
        assert!(validate_retention(DEFAULT_RETENTION_MS).is_ok());
        let e = validate_retention(DAY_MS - 1).unwrap_err();
        assert_eq!(e.field, "retention");
        assert!(validate_retention(MAX_RETENTION_MS + 1).is_err());
    }
}
