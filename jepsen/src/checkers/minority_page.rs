//! (b) No DOWN page without a majority: a DOWN page is judged by the
//! evidence of the transition it belongs to, not by the state at delivery.
//!
//! A flip to DOWN confirmed in round `k` claims that a majority of voters
//! failed in rounds `k-1` and `k`. The page (linked to its transition by
//! its delivery id `<check>-<flip>-<alert>`; silence-end `-end` and repeat
//! `-r<n>` pages by the same flip) is justified when each of those rounds'
//! probe windows `[start_of(r), start_of(r) + timeout]`, widened by its
//! slack, meets a stretch in which a majority of voters saw the target
//! failing. For one stretch `[s, e)` over both rounds that is `s ≤
//! start_of(k-1) + timeout + slack` and `e ≥ start_of(k) − slack`. The
//! slack (`evidence::Slack`) is 250 ms for probe latency, plus, for a
//! window a shifted clock could have probed, that clock's shift (at most
//! the largest skew the nemesis injected). How late the page came is not
//! this checker's business ((e) reports it, (f) bounds it after the heal):
//! a page delayed past the end of a real outage is still a true page.
//!
//! A page whose transition has no rounds recorded (an older history) is
//! judged as before, by delivery time: inside a majority stretch at least
//! one interval old, or trailing the end of one (at least one interval
//! long) by at most one interval plus a second.
//!
//! A majority is one of the voters of the moment (`voters::Timeline`):
//! while a membership change is under way, of either side of it.

use super::evidence::{self, Stretch};
use super::voters::{Rule, Timeline};
use super::{meta, Report};
use crate::history::Event;

pub fn check(history: &[Event]) -> Report {
    let (_, interval) = meta(history);
    let stretches = evidence::majority_stretches(history, Rule::Any);
    let voters = Timeline::of(history);
    let flips = evidence::transitions(history);
    let slack = evidence::Slack::of(history, interval);
    let mut problems = Vec::new();
    let (mut pages, mut by_evidence) = (0, 0);
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
        let spans = stretches
            .get(check.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let why = match evidence::flip_of(&flips, delivery_id) {
            Some((flip, f)) if !f.probes.is_empty() => {
                by_evidence += 1;
                judge_by_rounds(spans, flip, f, &slack)
            }
            _ => judge_by_delivery_time(spans, *t, interval)
                .map(|why| format!("at delivery time, {why}")),
        };
        if let Some(why) = why {
            problems.push(format!(
                "DOWN page {delivery_id} for {check} at {t} ({} voters): {why}",
                voters.describe(*t)
            ));
        }
    }
    let mut r = Report::new("no page without a majority for two rounds", problems);
    r.figures.push(("DOWN pages".into(), pages.to_string()));
    r.figures.push((
        "judged by their rounds".into(),
        match by_evidence {
            0 => "0 (no rounds recorded: judged at delivery time)".into(),
            n => format!("{n} (slack up to {} ms)", slack.max()),
        },
    ));
    r
}

/// Why the rounds behind flip `flip` do not justify a DOWN page (None: they do).
fn judge_by_rounds(
    spans: &[Stretch],
    flip: u64,
    f: &evidence::Flip<'_>,
    slack: &evidence::Slack,
) -> Option<String> {
    if f.to != "down" {
        return Some(format!(
            "it belongs to flip {flip}, which went {} (a page of the wrong kind)",
            f.to
        ));
    }
    let unseen = f
        .probes
        .iter()
        .find(|w| evidence::covering(spans, w, slack.for_window(w)).is_none())?;
    Some(format!(
        "flip {flip} was confirmed in round {}, but in round {} (probes {}..{}, ±{} ms) {MINORITY}",
        f.round.map_or("?".into(), |k| k.to_string()),
        unseen.round,
        unseen.start,
        unseen.end,
        slack.for_window(unseen),
    ))
}

/// The older rule, for pages whose rounds are unknown: why the state at
/// delivery time `t` does not justify the page (None: it does).
fn judge_by_delivery_time(spans: &[Stretch], t: u64, interval: u64) -> Option<String> {
    // The stretch in force at the page, or the last one that ended before
    // it: a page may trail the end of an outage by the evaluation lag (its
    // last round is evaluated after the round ends), at most one interval
    // plus a second.
    let last = spans.iter().rev().find(|s| s.start <= t);
    match last.map(|s| (s.start, s.end.filter(|e| *e <= t))) {
        Some((start, None)) if t - start >= interval => None,
        Some((start, None)) => Some(format!(
            "a majority saw it failing only since {start} (less than two rounds)"
        )),
        Some((start, Some(end))) if end - start >= interval && t - end <= interval + 1000 => None,
        _ => Some(MINORITY.into()),
    }
}

/// The end of every problem that found no majority behind a page.
const MINORITY: &str = "no majority of the voters saw it failing (a minority page)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_delivery_time_a_page_needs_an_interval_old_majority_or_trails_one() {
        let spans = [Stretch {
            start: 20_000,
            end: Some(27_000),
        }];
        assert_eq!(judge_by_delivery_time(&spans, 21_000, 1000), None);
        assert!(judge_by_delivery_time(&spans, 20_300, 1000).is_some());
        assert_eq!(judge_by_delivery_time(&spans, 28_900, 1000), None);
        assert!(judge_by_delivery_time(&spans, 30_000, 1000).is_some());
        assert!(judge_by_delivery_time(&spans, 19_000, 1000).is_some());
        assert!(judge_by_delivery_time(&[], 19_000, 1000).is_some());
    }
}
