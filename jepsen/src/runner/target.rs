//! The monitored target and its ground truth: the harness decides, per
//! source node, whether the HTTP target answers 200 or 503 (through a file
//! the target server reads on every request) and records each change as a
//! `truth` event, so checkers know who really saw it failing when. The
//! nodes are the roster's seats (spares included, whether members or not):
//! a seat's truth names every identity that held its address, since any
//! of them probing from there sees what the address is served.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use super::membership::Roster;
use super::recorder::{Recorder, Window};
use super::sh::now_ms;
use crate::history::Event;

/// What the target server reads: `up`, `down`, or the comma-separated
/// addresses it fails for.
#[derive(Clone)]
pub struct Target {
    pub mode_file: PathBuf,
    pub check: String,
    /// Address and node ids of every seat.
    pub nodes: Roster,
}

impl Target {
    /// Makes the target fail for the nodes at these indexes (none = up).
    pub fn fail_for(&self, rec: &Recorder, failing: &[usize]) {
        let seats = self.nodes.seats();
        let content = if failing.is_empty() {
            "up".to_string()
        } else if failing.len() == seats.len() {
            "down".to_string()
        } else {
            failing
                .iter()
                .filter_map(|i| seats.get(*i).map(|s| s.ip.as_str()))
                .collect::<Vec<_>>()
                .join(",")
        };
        let _ = std::fs::write(&self.mode_file, content);
        let failing_for: BTreeSet<String> = failing
            .iter()
            .filter_map(|i| seats.get(*i))
            .flat_map(|s| s.ids.iter().cloned())
            .collect();
        rec.record(Event::Truth {
            t: now_ms(),
            check: self.check.clone(),
            failing_for,
        });
    }

    pub fn all(&self) -> Vec<usize> {
        (0..self.nodes.len()).collect()
    }
}

/// Cycles the target every 7 s through: down for all, up, down for the
/// first node only (which must never page), up. Ends up.
pub fn spawn_cycle(target: Target, rec: Recorder, window: Window) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut phase = 0;
        while window.open() {
            // A sleep that ends past the window starts no new phase (it
            // would last a millisecond: a bogus outage in the timings).
            if !window.sleep(Duration::from_secs(7)) || !window.open() {
                break;
            }
            phase = (phase + 1) % 4;
            match phase {
                1 => target.fail_for(&rec, &target.all()),
                3 => target.fail_for(&rec, &[0]),
                _ => target.fail_for(&rec, &[]),
            }
        }
        target.fail_for(&rec, &[]);
    })
}
