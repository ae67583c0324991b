//! After the run: what the cluster committed and what the sinks received,
//! turned into history events — the final linearizable read, the paging
//! transitions (the ledger's alerts for each, and the check's own history
//! of when and in which rounds they were confirmed), the webhook sink's log
//! and the SMTP sink's mail.

use std::path::Path;
use std::time::Duration;

use super::nodes::NodeCli;
use super::recorder::Recorder;
use super::sh::now_ms;
use super::workload;
use crate::history::{Event, Op, Value};

/// The process number of the final read.
const FINAL_READER: u64 = 99;

/// A final linearizable read, retried for up to 10 s.
pub fn final_read(c: &NodeCli, rec: &Recorder) -> Result<(), String> {
    for _ in 0..50 {
        let t = now_ms();
        if let Some((version, items)) = workload::read(c) {
            rec.record(Event::Invoke {
                t,
                process: FINAL_READER,
                op: Op::Read,
            });
            rec.record(Event::Ok {
                t: now_ms(),
                process: FINAL_READER,
                op: Op::Read,
                value: Value {
                    version,
                    items: Some(items),
                },
            });
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(
        "the final linearizable read failed for 10s after the heal: the cluster did not recover"
            .into(),
    )
}

/// Every paging transition, with the alerts it must reach (the ledger)
/// and, for the check under test, its commit time, its round and the probe
/// windows behind it (its history and timetable): see `transitions`.
pub fn transitions(c: &NodeCli, rec: &Recorder, check: &str) -> Result<(), String> {
    let read = |what: &str, args: &[&str]| -> Result<serde_json::Value, String> {
        let out = c
            .qu(args, 10)
            .map_err(|e| format!("cannot read {what}: {e}"))?;
        serde_json::from_str(&out).map_err(|e| format!("{what} is not JSON: {e}"))
    };
    let ledger = read("the delivery ledger", &["alert", "log", "--json"])?;
    // The count before the rows: a flip in between only adds a row.
    let show = read("the check under test", &["check", "show", check, "--json"])?;
    let history = read(
        "the check's history",
        &["check", "history", check, "--json"],
    )?;
    let events = super::transitions::events(
        super::transitions::ledger_flips(&ledger),
        check,
        &show,
        &history,
    )?;
    for e in events {
        rec.record(e);
    }
    Ok(())
}

/// Pages the webhook sink logged (`{"t", "body"}` per line).
pub fn webhook_sink(log: &Path, rec: &Recorder) {
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        let b = &v["body"];
        if b["event"] == "test" {
            continue;
        }
        rec.record(Event::Delivery {
            t: v["t"].as_u64().unwrap_or(0),
            delivery_id: b["delivery_id"].as_str().unwrap_or_default().to_string(),
            check: b["check_id"].as_str().unwrap_or_default().to_string(),
            event: b["event"].as_str().unwrap_or_default().to_string(),
        });
    }
}

/// Pages the SMTP sink stored (`<ns since epoch>-<n>.eml`), identified by
/// their Message-ID `<delivery id@…>`.
pub fn mail_sink(maildir: &Path, rec: &Recorder) {
    let entries = std::fs::read_dir(maildir)
        .map(|d| d.flatten().collect::<Vec<_>>())
        .unwrap_or_default();
    for entry in entries {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let t = entry
            .file_name()
            .to_string_lossy()
            .split('-')
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .map(|ns| ns / 1_000_000)
            .unwrap_or(0);
        let header = |name: &str| {
            text.lines()
                .take_while(|l| !l.is_empty())
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        let (Some(id), Some(subject)) = (header("Message-ID:"), header("Subject:")) else {
            continue;
        };
        let id = id
            .trim_start_matches('<')
            .split('@')
            .next()
            .unwrap_or_default()
            .to_string();
        if id.starts_with("test-") {
            continue;
        }
        let event = if subject.contains("RECOVERED") {
            "recovered"
        } else {
            "down"
        };
        let check = id.split('-').next().unwrap_or_default().to_string();
        rec.record(Event::Delivery {
            t,
            delivery_id: id,
            check,
            event: event.into(),
        });
    }
}
