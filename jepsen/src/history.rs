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
        /// Clock faults: how far the targets' wall clocks were shifted, in
        /// ms (absent from older histories and from other faults).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        skew_ms: Option<i64>,
        /// Link faults: the largest one-way delay they add to a message,
        /// in ms (absent from older histories and other faults).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        added_ms: Option<u64>,
    },
    /// From `t` on, target `check` fails as seen from these nodes.
    Truth {
        t: u64,
        check: String,
        failing_for: BTreeSet<String>,
    },
    /// A committed transition (read from the cluster at the end), with the
    /// alert ids its deliveries go to (empty: any one delivery counts).
    /// `t` is its commit time by the leader's clock (0: unknown, as in
    /// older histories); `round` the round that confirmed it and `probes`
    /// the probe windows of the rounds behind it, oldest first (both absent
    /// from older histories).
    Transition {
        t: u64,
        check: String,
        flip: u64,
        to: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        alerts: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        round: Option<u64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        probes: Vec<ProbeWindow>,
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
    /// The voters from `t` on. The change was asked for at `begun` (≤ `t`,
    /// the harness's clock before the `qu node add`/`remove` that made it):
    /// in between, rounds may have been judged by the voters before or
    /// after it. A run's first such event (`begun` = `t`) names the voters
    /// it started with. Older histories have none: their voters are the
    /// `meta` count throughout.
    Membership {
        t: u64,
        #[serde(default)]
        begun: u64,
        voters: BTreeSet<String>,
    },
}

/// When the probes of one round ran: from the round's start for up to the
/// check's timeout, in ms since the Unix epoch by true time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeWindow {
    pub round: u64,
    pub start: u64,
    pub end: u64,
}

/// What a delivery id names: `<check>-<flip>-<alert>`, with `-end` for the
/// page made when a silence over the flip ended and `-r<n>` for the n-th
/// repeat of an outage; each belongs to flip `flip` of `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryId<'a> {
    pub check: &'a str,
    pub flip: u64,
    pub alert: &'a str,
    /// `end`, `r<n>`, or None for the page made at the flip.
    pub suffix: Option<&'a str>,
}

impl DeliveryId<'_> {
    /// None for anything else (a test page, a malformed id).
    pub fn parse(id: &str) -> Option<DeliveryId<'_>> {
        let parts: Vec<&str> = id.split('-').collect();
        let (check, flip, alert, suffix) = match parts.as_slice() {
            [c, f, a] => (*c, *f, *a, None),
            [c, f, a, s] if *s == "end" || is_repeat(s) => (*c, *f, *a, Some(*s)),
            _ => return None,
        };
        if check.is_empty() || alert.is_empty() {
            return None;
        }
        Some(DeliveryId {
            check,
            flip: flip.parse().ok()?,
            alert,
            suffix,
        })
    }
}

fn is_repeat(s: &str) -> bool {
    s.strip_prefix('r')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_name_their_flip_with_or_without_a_suffix() {
        let d = DeliveryId::parse("6f6caf2c-4-9ba0e463").unwrap();
        assert_eq!(
            (d.check, d.flip, d.alert, d.suffix),
            ("6f6caf2c", 4, "9ba0e463", None)
        );
        assert_eq!(DeliveryId::parse("c-3-a-end").unwrap().suffix, Some("end"));
        let r = DeliveryId::parse("c-3-a-r12").unwrap();
        assert_eq!((r.flip, r.suffix), (3, Some("r12")));
        for bad in [
            "test-1796280767626",
            "c-x-a",
            "c-3-a-later",
            "c-3-a-r",
            "c--a",
            "c",
        ] {
            assert_eq!(DeliveryId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_old_transition_line_loads_without_rounds() {
        let e: Event = serde_json::from_str(
            r#"{"type":"transition","t":0,"check":"c","flip":2,"to":"down","alerts":["a"]}"#,
        )
        .unwrap();
        let Event::Transition { round, probes, .. } = e else {
            panic!("{e:?}");
        };
        assert_eq!((round, probes), (None, vec![]));
        let n: Event = serde_json::from_str(
            r#"{"type":"nemesis","t":1,"action":"start","fault":"skew","targets":["n1"]}"#,
        )
        .unwrap();
        assert!(matches!(n, Event::Nemesis { skew_ms: None, .. }), "{n:?}");
    }

    #[test]
    fn a_membership_line_round_trips_and_loads_without_its_start() {
        let e = Event::Membership {
            t: 5,
            begun: 2,
            voters: ["a".to_string(), "b".to_string()].into(),
        };
        let line = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), e);
        let bare: Event =
            serde_json::from_str(r#"{"type":"membership","t":7,"voters":["a"]}"#).unwrap();
        assert!(
            matches!(bare, Event::Membership { begun: 0, .. }),
            "{bare:?}"
        );
    }
}
