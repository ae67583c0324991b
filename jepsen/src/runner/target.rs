//! The monitored target and its ground truth: the harness decides, per
//! source node, whether the HTTP target answers 200 or 503 (through a file
//! the target server reads on every request) and records each change as a
//! `truth` event, so checkers know who really saw it failing when.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use super::recorder::{Recorder, Window};
use super::sh::now_ms;
use crate::history::Event;

/// What the target server reads: `up`, `down`, or the comma-separated
/// addresses it fails for.
#[derive(Clone)]
pub struct Target {
    pub mode_file: PathBuf,
    pub check: String,
    /// (address, node id) of every node.
    pub nodes: Vec<(String, String)>,
}

impl Target {
    /// Makes the target fail for the nodes at these indexes (none = up).
    pub fn fail_for(&self, rec: &Recorder, failing: &[usize]) {
        let content = if failing.is_empty() {
            "up".to_string()
        } else if failing.len() == self.nodes.len() {
            "down".to_string()
        } else {
            failing
                .iter()
                .map(|i| self.nodes[*i].0.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        let _ = std::fs::write(&self.mode_file, content);
        let failing_for: BTreeSet<String> =
            failing.iter().map(|i| self.nodes[*i].1.clone()).collect();
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
