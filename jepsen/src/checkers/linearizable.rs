//! (a) The configuration history is linearizable, checked along the version
//! chain: every write is a compare-and-set on the config version with a
//! unique item, so each version must be written once, every acknowledged
//! write must survive, and no read may go back in real time or see an item
//! before it was written. O(n log n).

use std::collections::{BTreeMap, HashMap};

use super::Report;
use crate::history::{Event, Op, Value};

#[derive(Debug, Clone)]
struct Done {
    process: u64,
    op: Op,
    invoked: u64,
    completed: u64,
    value: Value,
}

/// Pairs each `ok` completion with its `invoke`.
fn completed_ok(history: &[Event]) -> (Vec<Done>, HashMap<String, u64>) {
    let mut open: HashMap<u64, (u64, Op)> = HashMap::new();
    let mut done = Vec::new();
    let mut write_invoked = HashMap::new();
    for e in history {
        match e {
            Event::Invoke { t, process, op } => {
                if let Op::Cas { write, .. } = op {
                    write_invoked.insert(write.clone(), *t);
                }
                open.insert(*process, (*t, op.clone()));
            }
            Event::Ok {
                t,
                process,
                op,
                value,
            } => {
                let invoked = open.remove(process).map(|(i, _)| i).unwrap_or(*t);
                done.push(Done {
                    process: *process,
                    op: op.clone(),
                    invoked,
                    completed: *t,
                    value: value.clone(),
                });
            }
            Event::Fail { process, .. } | Event::Info { process, .. } => {
                open.remove(process);
            }
            _ => {}
        }
    }
    (done, write_invoked)
}

pub fn check(history: &[Event]) -> Report {
    let (done, write_invoked) = completed_ok(history);
    let mut problems = Vec::new();
    // Acknowledged writes: version → item, and item → version.
    let mut by_version: BTreeMap<u64, String> = BTreeMap::new();
    let mut version_of: HashMap<String, u64> = HashMap::new();
    for d in &done {
        if let Op::Cas { expected, write } = &d.op {
            match d.value.version {
                Some(v) if v == expected + 1 => {
                    if let Some(other) = by_version.insert(v, write.clone()) {
                        problems.push(format!("version {v} was written twice: by {other} and by {write} (split brain)"));
                    }
                    version_of.insert(write.clone(), v);
                }
                got => problems.push(format!(
                    "write {write} expected version {expected} but was acknowledged with version {got:?}"
                )),
            }
        }
    }
    // Reads agree with the chain: everything at or below their version, nothing above.
    for d in done.iter().filter(|d| d.op == Op::Read) {
        let (Some(v), Some(items)) = (d.value.version, d.value.items.as_ref()) else {
            continue;
        };
        for (w, wv) in &version_of {
            if *wv <= v && !items.contains(w) {
                problems.push(format!(
                    "read by process {} at version {v} misses {w}, acknowledged at version {wv}",
                    d.process
                ));
            }
            if *wv > v && items.contains(w) {
                problems.push(format!(
                    "read by process {} at version {v} contains {w} from the later version {wv}",
                    d.process
                ));
            }
        }
        for w in items {
            if let Some(inv) = write_invoked.get(w) {
                if *inv > d.completed {
                    problems.push(format!("read by process {} completed at {} saw {w}, invoked only at {inv} (a read from the future)", d.process, d.completed));
                }
            }
        }
    }
    // Real time: an operation invoked after another completed sees at least its version.
    let mut by_completion: Vec<(u64, u64, String)> = done
        .iter()
        .filter_map(|d| d.value.version.map(|v| (d.completed, v, describe(d))))
        .collect();
    by_completion.sort();
    let mut prefix_max: Vec<(u64, u64, String)> = Vec::with_capacity(by_completion.len());
    for (t, v, who) in by_completion {
        match prefix_max.last() {
            Some((_, mv, mwho)) if *mv >= v => {
                let keep = (t, *mv, mwho.clone());
                prefix_max.push(keep);
            }
            _ => prefix_max.push((t, v, who)),
        }
    }
    for d in &done {
        let Some(v) = d.value.version else { continue };
        let idx = prefix_max.partition_point(|(t, _, _)| *t < d.invoked);
        if idx > 0 {
            let (_, mv, who) = &prefix_max[idx - 1];
            if v < *mv {
                problems.push(format!(
                    "{} saw version {v}, but {who} had already completed with version {mv} before it was invoked (stale)",
                    describe(d)
                ));
            }
        }
    }
    // Every acknowledged write is in the final read, which must have begun
    // after the last acknowledged write completed.
    let last_write = done
        .iter()
        .filter(|d| matches!(d.op, Op::Cas { .. }))
        .map(|d| d.completed)
        .max()
        .unwrap_or(0);
    let final_read = done
        .iter()
        .filter(|d| d.op == Op::Read && d.value.items.is_some())
        .max_by_key(|d| d.completed)
        .filter(|d| d.invoked >= last_write);
    if final_read.is_none() && !version_of.is_empty() {
        problems.push("the history has no read after the last acknowledged write: lost writes cannot be ruled out".into());
    }
    if let Some(last) = final_read {
        let items = last.value.items.clone().unwrap_or_default();
        for w in version_of.keys() {
            if !items.contains(w) {
                problems.push(format!(
                    "acknowledged write {w} is missing from the final read (lost write)"
                ));
            }
        }
    }
    problems.sort();
    problems.dedup();
    let mut r = Report::new("linearizable config (version chain)", problems);
    r.figures
        .push(("acknowledged writes".into(), version_of.len().to_string()));
    r.figures.push((
        "completed reads".into(),
        done.iter().filter(|d| d.op == Op::Read).count().to_string(),
    ));
    r
}

fn describe(d: &Done) -> String {
    match &d.op {
        Op::Cas { write, .. } => format!("write {write} (process {})", d.process),
        Op::Read => format!("read (process {}, completed at {})", d.process, d.completed),
    }
}
