//! `qu report`: uptime and SLA per check over a window, computed by the
//! daemon from the committed history (so every node prints the same), as a
//! table, JSON or CSV.

use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use clap::Args;

use super::{ask, percent, print_json, table, unexpected, Failure};
use crate::config::duration::format_span;
use crate::config::Env;
use crate::daemon::control::{ControlReply, ControlRequest, Report};
use crate::ids::rfc3339;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The window, ending now: whole days and/or a Go duration (30d, 7d, 1d12h, 36h)
    #[arg(long, default_value = "30d", value_parser = super::parse_span, value_name = "SPAN")]
    since: Duration,
    /// Only this check (id or name; repeatable) [default: every check]
    #[arg(long = "check", value_name = "ID_OR_NAME")]
    checks: Vec<String>,
    /// Print JSON (milliseconds) instead of a table
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV (seconds) instead of a table
    #[arg(long)]
    csv: bool,
}

pub(super) fn run(env: &Env, args: ReportArgs) -> Result<ExitCode, Failure> {
    let reply = ask(
        env,
        ControlRequest::Report {
            since_ms: args.since.as_millis() as u64,
            checks: args.checks,
        },
        Duration::from_secs(10),
    )?;
    let ControlReply::Report(report) = reply else {
        return Err(unexpected());
    };
    if args.json {
        return print_json(&report).map(|_| ExitCode::SUCCESS);
    }
    if args.csv {
        print!("{}", csv(&report));
    } else {
        print!("{}", text(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn span(ms: u64) -> String {
    format_span(Duration::from_millis(ms))
}

fn at(ms: u64) -> String {
    rfc3339(UNIX_EPOCH + Duration::from_millis(ms))
}

fn text(r: &Report) -> String {
    let mut out = format!(
        "{} to {} ({}); uptime is up / (up + down): unknown, paused and silenced time count as neither\n",
        at(r.from_ms),
        at(r.to_ms),
        span(r.to_ms - r.from_ms)
    );
    let rows: Vec<Vec<String>> = r
        .checks
        .iter()
        .map(|c| {
            let f = &c.figures;
            vec![
                c.name.clone(),
                c.kind.clone(),
                c.uptime_percent
                    .map_or_else(|| "-".into(), |p| format!("{}%", percent(p))),
                f.outages.to_string(),
                span(f.down_ms),
                span(f.longest_down_ms),
                f.mttr_ms.map_or_else(|| "-".into(), span),
                span(f.paused_ms),
                span(f.silenced_ms),
                span(f.unknown_ms),
            ]
        })
        .collect();
    out.push_str(&table::render(
        &[
            "NAME", "TYPE", "UPTIME", "OUTAGES", "DOWNTIME", "LONGEST", "MTTR", "PAUSED",
            "SILENCED", "UNKNOWN",
        ],
        &rows,
    ));
    out
}

/// One field of CSV (RFC 4180): quoted when it holds a comma, quote or
/// line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv(r: &Report) -> String {
    let secs = |ms: u64| format!("{:.3}", ms as f64 / 1000.0);
    let mut out = String::from(
        "id,name,type,from,to,uptime_percent,outages,downtime_s,longest_down_s,mttr_s,paused_s,silenced_s,unknown_s,up_s\n",
    );
    for c in &r.checks {
        let f = &c.figures;
        let cells = [
            field(&c.id),
            field(&c.name),
            field(&c.kind),
            at(r.from_ms),
            at(r.to_ms),
            c.uptime_percent
                .map_or_else(String::new, |p| format!("{p:.4}")),
            f.outages.to_string(),
            secs(f.down_ms),
            secs(f.longest_down_ms),
            f.mttr_ms.map_or_else(String::new, secs),
            secs(f.paused_ms),
            secs(f.silenced_ms),
            secs(f.unknown_ms),
            secs(f.up_ms),
        ];
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::control::ReportRow;
    use qu_raft::history::Uptime;

    fn report() -> Report {
        Report {
            from_ms: 0,
            to_ms: 86_400_000,
            checks: vec![ReportRow {
                id: "0a1b2c3d".into(),
                name: "web".into(),
                kind: "http".into(),
                uptime_percent: Some(99.99),
                figures: Uptime {
                    from_ms: 0,
                    to_ms: 86_400_000,
                    up_ms: 86_000_000,
                    down_ms: 8_640,
                    outages: 1,
                    longest_down_ms: 8_640,
                    mttr_ms: Some(8_640),
                    ..Uptime::default()
                },
            }],
        }
    }

    #[test]
    fn csv_has_one_header_and_one_line_per_check_in_seconds() {
        let out = csv(&report());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        let header: Vec<&str> = lines[0].split(',').collect();
        let row: Vec<&str> = lines[1].split(',').collect();
        assert_eq!(header.len(), row.len());
        let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
        assert_eq!(col("downtime_s"), "8.640");
        assert_eq!(col("uptime_percent"), "99.9900");
        assert_eq!(col("from"), "1970-01-01T00:00:00Z");
        assert_eq!(field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }

    #[test]
    fn the_table_prints_spans_and_percent() {
        let out = text(&report());
        assert!(out.contains("99.99%"), "{out}");
        assert!(out.contains("8s"), "{out}");
        assert!(
            out.starts_with("1970-01-01T00:00:00Z to 1970-01-02T00:00:00Z (1d)"),
            "{out}"
        );
    }
}
