//! Checkers over a recorded history. Each returns a `Report`: pass/fail,
//! the counterexamples found, and figures.

pub mod deliveries;
pub mod detection;
pub mod evidence;
pub mod flaky_minority;
pub mod leadership;
pub mod linearizable;
pub mod minority_page;
pub mod slow_majority;
pub mod timings;
pub mod voters;

use crate::history::Event;

/// One checker's result.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    pub checker: &'static str,
    pub ok: bool,
    /// Counterexamples: each names the operations or events involved.
    pub problems: Vec<String>,
    /// Measurements (name, value).
    pub figures: Vec<(String, String)>,
}

impl Report {
    pub fn new(checker: &'static str, problems: Vec<String>) -> Report {
        Report {
            checker,
            ok: problems.is_empty(),
            problems,
            figures: vec![],
        }
    }
}

/// Runs every checker.
pub fn check_all(history: &[Event]) -> Vec<Report> {
    vec![
        linearizable::check(history),
        minority_page::check(history),
        deliveries::check(history),
        leadership::check(history),
        detection::check(history),
        slow_majority::check(history),
        flaky_minority::check(history),
        timings::check(history),
    ]
}

/// The run's voter count and probe interval (from the `meta` line).
pub(crate) fn meta(history: &[Event]) -> (usize, u64) {
    history
        .iter()
        .find_map(|e| match e {
            Event::Meta {
                voters,
                interval_ms,
                ..
            } => Some((*voters, *interval_ms)),
            _ => None,
        })
        .unwrap_or((3, 1000))
}

/// When `check`'s first `event` page (`down`, `recovered`) at or after
/// `from` was delivered.
pub(crate) fn first_page(history: &[Event], check: &str, event: &str, from: u64) -> Option<u64> {
    history.iter().find_map(|e| match e {
        Event::Delivery {
            t,
            check: c,
            event: ev,
            ..
        } if c == check && ev == event && *t >= from => Some(*t),
        _ => None,
    })
}
