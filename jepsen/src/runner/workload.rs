//! The client workload: processes that each read the configuration
//! linearizably (`qu check list --linearizable`) and then compare-and-set a
//! unique item on the version they read (`qu check add --if-version`),
//! through a random node each time (one the roster lets clients use: not
//! a fresh node waiting to be added, which would found a cluster of its
//! own).
//!
//! Recording follows Jepsen: `invoke`, then `ok`, `fail` (definitely not
//! applied: the `--if-version` refusal) or `info` (anything uncertain: a
//! timeout, a lost leader).

use std::collections::BTreeSet;
use std::thread::JoinHandle;
use std::time::Duration;

use super::membership::Roster;
use super::nodes::NodeCli;
use super::recorder::{Recorder, Window};
use super::sh::{now_ms, Rng};
use crate::history::{Event, Op, Value};

/// Items the workload writes are checks named `w-<process>-<n>`.
pub fn items_of(list: &serde_json::Value) -> BTreeSet<String> {
    list["checks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str())
                .filter(|n| n.starts_with("w-"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A linearizable read through `c`: (version, items).
pub fn read(c: &NodeCli) -> Option<(Option<u64>, BTreeSet<String>)> {
    let out = c
        .qu(&["check", "list", "--json", "--linearizable"], 8)
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    Some((v["version"].as_u64(), items_of(&v)))
}

fn client(p: u64, seed: u64, clis: Vec<NodeCli>, roster: Roster, rec: Recorder, window: Window) {
    let mut rng = Rng::new(seed);
    let mut n = 0;
    while window.open() {
        let drawn = rng.below(clis.len() as u64) as usize;
        // The drawn node, or the next one clients may use.
        let Some(c) = (0..clis.len())
            .map(|k| (drawn + k) % clis.len())
            .find(|i| roster.serving(*i))
            .map(|i| &clis[i])
        else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        rec.record(Event::Invoke {
            t: now_ms(),
            process: p,
            op: Op::Read,
        });
        let version = match read(c) {
            Some((version, items)) => {
                rec.record(Event::Ok {
                    t: now_ms(),
                    process: p,
                    op: Op::Read,
                    value: Value {
                        version,
                        items: Some(items),
                    },
                });
                version
            }
            None => {
                rec.record(Event::Fail {
                    t: now_ms(),
                    process: p,
                    op: Op::Read,
                    reason: "read failed".into(),
                });
                None
            }
        };
        if let Some(v) = version {
            n += 1;
            let write = format!("w-{p}-{n}");
            let op = Op::Cas {
                expected: v,
                write: write.clone(),
            };
            rec.record(Event::Invoke {
                t: now_ms(),
                process: p,
                op: op.clone(),
            });
            let res = c.qu(
                &[
                    "check",
                    "add",
                    "tcp",
                    &write,
                    "10.77.0.100:9",
                    "--interval",
                    "1h",
                    "--timeout",
                    "1s",
                    "--if-version",
                    &v.to_string(),
                ],
                14,
            );
            let t = now_ms();
            rec.record(match res {
                Ok(out) => Event::Ok {
                    t,
                    process: p,
                    op,
                    value: Value {
                        version: out.trim().rsplit(' ').next().and_then(|x| x.parse().ok()),
                        items: None,
                    },
                },
                Err(e) if e.contains("--if-version") => Event::Fail {
                    t,
                    process: p,
                    op,
                    reason: e,
                },
                Err(e) => Event::Info {
                    t,
                    process: p,
                    op,
                    reason: e,
                },
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `processes` clients; they stop when the window closes.
pub fn spawn_clients(
    processes: u64,
    seed: u64,
    clis: &[NodeCli],
    roster: &Roster,
    rec: &Recorder,
    window: &Window,
) -> Vec<JoinHandle<()>> {
    (0..processes)
        .map(|p| {
            let (clis, roster, rec, window) =
                (clis.to_vec(), roster.clone(), rec.clone(), window.clone());
            let seed = seed.wrapping_add(p + 1);
            std::thread::spawn(move || client(p, seed, clis, roster, rec, window))
        })
        .collect()
}
