//! The monitored target and its ground truth: the harness decides, per
//! source node, whether the HTTP target answers 200 or 503 (through a file
//! the target server reads on every request) and records each change as a
//! `truth` event, so checkers know who really saw it failing when. The
//! nodes are the roster's seats (spares included, whether members or not):
//! a seat's truth names every identity that held its address, since any
//! of them probing from there sees what the address is served.
//!
//! The cycle and the nemesis share the target: a nemesis that drives an
//! outage of its own (`slow-majority`) holds the cycle off meanwhile, and
//! one that makes some nodes' links flaky names them as the cycle's
//! failing minority, so that the nodes that may see the target failing
//! never add up to a majority (a flaky minority must cause no page).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
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
    pub shared: Arc<Mutex<Sharing>>,
}

/// What the nemesis has told the cycle.
#[derive(Debug, Default)]
pub struct Sharing {
    /// The nemesis drives the target: the cycle changes nothing.
    pub held: bool,
    /// The nodes the cycle's minority phase fails for (empty: the first).
    pub minority: Vec<usize>,
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

    /// The nemesis takes the target over (true) or hands it back.
    pub fn hold(&self, held: bool) {
        if let Ok(mut s) = self.shared.lock() {
            s.held = held;
        }
    }

    /// The cycle's failing minority from now on (empty: the first node).
    pub fn set_minority(&self, nodes: &[usize]) {
        if let Ok(mut s) = self.shared.lock() {
            s.minority = nodes.to_vec();
        }
    }

    /// One step of the cycle, unless the nemesis holds the target.
    fn cycle_to(&self, rec: &Recorder, phase: u32) {
        let Ok(s) = self.shared.lock() else { return };
        if s.held {
            return;
        }
        let minority = if s.minority.is_empty() {
            vec![0]
        } else {
            s.minority.clone()
        };
        // Under the lock: the nemesis cannot change its mind halfway.
        match phase {
            1 => self.fail_for(rec, &self.all()),
            3 => self.fail_for(rec, &minority),
            _ => self.fail_for(rec, &[]),
        }
    }
}

/// Cycles the target every 7 s through: down for all, up, down for the
/// first node only (or the flaky minority; it must never page), up. Ends
/// up. While the nemesis holds the target, the cycle's steps are skipped.
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
            target.cycle_to(&rec, phase);
        }
        target.hold(false);
        target.cycle_to(&rec, 0);
    })
}
