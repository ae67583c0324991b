//! The recorded history of a fault-injection run: one JSON object per line.
//!
//! Operations follow Jepsen's convention: an `invoke` and later exactly one
//! of `ok` (happened), `fail` (definitely did not happen) or `info`
//! (unknown). Around them: nemesis events, the ground truth of targets,
//! deliveries seen by the alert sinks, committed transitions and leader
//! samples. Times are the harness's wall clock in milliseconds since the
//! Unix epoch (the sinks run on the same host, so their clock is the same).

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A client operation on the replicated configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "lowercase")]
pub enum Op {
    /// Compare-and-set: add item `write` if the config version is `expected`.
    Cas { expected: u64, write: String },
    /// Read the config version and the items present.
    Read,
}

/// What a completed operation returned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value {
    /// The config version after a write, or the version read.
    #[serde(default)]
    pub version: Option<u64>,
    /// Items a read saw.
    #[serde(default)]
    pub items: Option<BTreeSet<String>>,
}

/// One line of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    /// Run parameters.
    Meta {
        voters: usize,
        interval_ms: u64,
        seed: u64,
    },
    Invoke {
        t: u64,
        process: u64,
        #[serde(flatten)]
        op: Op,
    },
    Ok {
        t: u64,
        process: u64,
        #[serde(flatten)]
        op: Op,
        #[serde(flatten)]
        value: Value,
    },
    Fail {
        t: u64,
        process: u64,
        #[serde(flatten)]
        op: Op,
        reason: String,
    },
    Info {
        t: u64,
        process: u64,
        #[serde(flatten)]
        op: Op,
        reason: String,
    },
    /// A fault began (`start`) or ended (`stop`); `leader` marks faults aimed at the leader.
    Nemesis {
        t: u64,
        action: String,
        fault: String,
        targets: Vec<String>,
        #[serde(default)]
        leader: bool,
    },
    /// From `t` on, target `check` fails as seen from these nodes.
    Truth {
        t: u64,
        check: String,
        failing_for: BTreeSet<String>,
    },
    /// A committed transition (read from the cluster at the end), with the
    /// alert ids its deliveries go to (empty: any one delivery counts).
    Transition {
        t: u64,
        check: String,
        flip: u64,
        to: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        alerts: Vec<String>,
    },
    /// A page an alert sink received.
    Delivery {
        t: u64,
        delivery_id: String,
        check: String,
        event: String,
    },
    /// The leader an observer saw at `t`.
    Leader { t: u64, node: Option<String> },
    /// Faults healed; these nodes are live from here on.
    Healed { t: u64, live: BTreeSet<String> },
}

/// Reads a JSON-lines history.
pub fn load(path: &Path) -> Result<Vec<Event>, String> {
    let f =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    std::io::BufReader::new(f)
        .lines()
        .enumerate()
        .filter(|(_, l)| l.as_ref().map(|l| !l.trim().is_empty()).unwrap_or(true))
        .map(|(i, l)| {
            let l = l.map_err(|e| format!("{}: {e}", path.display()))?;
            serde_json::from_str(&l).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}
