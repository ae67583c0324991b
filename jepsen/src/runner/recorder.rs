//! The history as it is being recorded: shared by the workload, target,
//! leader-sampling and nemesis threads. Appends only; a poisoned lock drops
//! the event rather than panicking a worker thread.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};

use crate::history::Event;

/// An append-only, shareable history.
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<Event>>>);

impl Recorder {
    pub fn new(first: Event) -> Recorder {
        Recorder(Arc::new(Mutex::new(vec![first])))
    }

    pub fn record(&self, e: Event) {
        if let Ok(mut v) = self.0.lock() {
            v.push(e);
        }
    }

    /// A copy of everything recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

/// The time a run's faults and workload may take, and the operator's Ctrl-C.
#[derive(Clone)]
pub struct Window {
    until: Instant,
    stop: Arc<AtomicBool>,
}

impl Window {
    pub fn new(length: Duration, stop: Arc<AtomicBool>) -> Window {
        Window {
            until: Instant::now() + length,
            stop,
        }
    }

    /// Still within the window and not interrupted.
    pub fn open(&self) -> bool {
        Instant::now() < self.until && !self.interrupted()
    }

    pub fn interrupted(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sleeps `d` in short slices; false when interrupted meanwhile.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if self.interrupted() {
                return false;
            }
            std::thread::sleep((end - Instant::now()).min(Duration::from_millis(100)));
        }
        !self.interrupted()
    }
}
