//! `qu silence add|list|remove` and `qu maintenance add|list|remove`:
//! muting checks for a while, ad hoc or on a recurring schedule.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{
    ask, mutate, parse_duration, print_json, table, unexpected, Failure, IfVersion, JsonArg,
};
use crate::config::Env;
use crate::daemon::control::{ControlReply, ControlRequest, SilenceSpec, WindowSpec};

#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Silence checks for a while: verdicts and flips go on and are recorded, pages are not sent (shown as 'silenced' in 'qu alert log'); when the silence ends, one page goes out if the state differs from what the alerts were last told
    Add(AddArgs),
    /// Active silences (and open maintenance windows): ID, CHECKS, START, END, REASON
    List(JsonArg),
    /// End a silence now (pages what it held back, once)
    Remove {
        /// The silence's id (see 'qu silence list')
        #[arg(value_name = "ID")]
        id: String,
        #[command(flatten)]
        if_version: IfVersion,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Checks to silence, by id or name
    #[arg(value_name = "CHECK", required_unless_present = "all")]
    checks: Vec<String>,
    /// Silence every check, present and future
    #[arg(long, conflicts_with = "checks")]
    all: bool,
    /// How long, from now (e.g. 2h, 30m)
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration, required_unless_present = "until", conflicts_with = "until", allow_hyphen_values = true)]
    for_: Option<Duration>,
    /// Until when: RFC 3339, e.g. 2026-12-24T18:00:00Z or 2026-12-24T18:00:00+01:00
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    until: Option<u64>,
    /// Why (shown in listings)
    #[arg(long, value_name = "TEXT", default_value = "")]
    reason: String,
    #[command(flatten)]
    if_version: IfVersion,
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// A recurring maintenance window: behaves as a silence while open
    Add(WindowArgs),
    /// Maintenance windows and the next (or current) opening of each
    List(JsonArg),
    /// Remove a maintenance window (ends it now if it is open)
    Remove {
        /// The window's id or name
        #[arg(value_name = "ID_OR_NAME")]
        id_or_name: String,
        #[command(flatten)]
        if_version: IfVersion,
    },
}

#[derive(Debug, Args)]
pub struct WindowArgs {
    /// The window's name: 1-64 letters, digits, '-', '_', '.'
    name: String,
    /// When it opens: DAYS HH:MM, DAYS being daily, weekdays, weekends, days (sun or mon,thu), 'monthly N' or a date ('dec 24'); e.g. 'sun 02:00'
    #[arg(long, value_name = "'DAYS HH:MM'")]
    every: String,
    /// How long it stays open, 1m to 7d (elapsed time, also across DST changes)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    duration: Duration,
    /// The time zone of --every, from the tz database (e.g. Europe/Berlin)
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    tz: String,
    /// Checks it covers, by id or name
    #[arg(value_name = "CHECK", required_unless_present = "all")]
    checks: Vec<String>,
    /// Cover every check, present and future
    #[arg(long, conflicts_with = "checks")]
    all: bool,
    #[command(flatten)]
    if_version: IfVersion,
}

/// An RFC 3339 time as ms since the epoch.
fn parse_time(s: &str) -> Result<u64, String> {
    let ts: jiff::Timestamp = s
        .trim()
        .parse()
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2026-12-24T18:00:00Z ({e})"))?;
    u64::try_from(ts.as_millisecond()).map_err(|_| format!("{s:?} is before 1970"))
}

pub(super) fn run_silence(env: &Env, cmd: SilenceCommand) -> Result<ExitCode, Failure> {
    match cmd {
        SilenceCommand::Add(a) => mutate(
            env,
            ControlRequest::SilenceAdd {
                spec: SilenceSpec {
                    checks: a.checks,
                    all: a.all,
                    for_ms: a.for_.map(|d| d.as_millis() as u64),
                    until_ms: a.until,
                    reason: a.reason,
                },
                if_version: a.if_version.if_version,
            },
        ),
        SilenceCommand::List(args) => {
            let ControlReply::SilenceList { silences } =
                ask(env, ControlRequest::SilenceList, Duration::from_secs(10))?
            else {
                return Err(unexpected());
            };
            if args.json {
                return print_json(&silences).map(|_| ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = silences
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        table::truncate(&s.checks.join(","), table::REASON_WIDTH),
                        s.start.clone(),
                        s.end.clone(),
                        match (&s.window, s.reason.is_empty()) {
                            (_, false) => table::truncate(&s.reason, table::REASON_WIDTH),
                            (Some(w), true) => format!("maintenance {w}"),
                            (None, true) => "-".into(),
                        },
                    ]
                })
                .collect();
            print!(
                "{}",
                table::render(&["ID", "CHECKS", "START", "END", "REASON"], &rows)
            );
            Ok(ExitCode::SUCCESS)
        }
        SilenceCommand::Remove { id, if_version } => mutate(
            env,
            ControlRequest::SilenceRemove {
                id,
                if_version: if_version.if_version,
            },
        ),
    }
}

pub(super) fn run_maintenance(env: &Env, cmd: MaintenanceCommand) -> Result<ExitCode, Failure> {
    match cmd {
        MaintenanceCommand::Add(a) => mutate(
            env,
            ControlRequest::MaintenanceAdd {
                spec: WindowSpec {
                    name: a.name,
                    every: a.every,
                    duration_ms: a.duration.as_millis() as u64,
                    tz: a.tz,
                    checks: a.checks,
                    all: a.all,
                },
                if_version: a.if_version.if_version,
            },
        ),
        MaintenanceCommand::List(args) => {
            let ControlReply::MaintenanceList { windows } = ask(
                env,
                ControlRequest::MaintenanceList,
                Duration::from_secs(10),
            )?
            else {
                return Err(unexpected());
            };
            if args.json {
                return print_json(&windows).map(|_| ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = windows
                .iter()
                .map(|w| {
                    vec![
                        w.id.clone(),
                        w.name.clone(),
                        format!("{} ({})", w.every, w.tz),
                        w.duration.clone(),
                        table::truncate(&w.checks.join(","), table::REASON_WIDTH),
                        match (w.open, &w.next_local, &w.next_start) {
                            (true, _, _) => {
                                format!("OPEN until {}", w.next_end.clone().unwrap_or_default())
                            }
                            (false, Some(local), Some(utc)) => format!("{local} ({utc})"),
                            _ => "-".into(),
                        },
                    ]
                })
                .collect();
            print!(
                "{}",
                table::render(
                    &["ID", "NAME", "EVERY", "DURATION", "CHECKS", "NEXT"],
                    &rows
                )
            );
            Ok(ExitCode::SUCCESS)
        }
        MaintenanceCommand::Remove {
            id_or_name,
            if_version,
        } => mutate(
            env,
            ControlRequest::MaintenanceRemove {
                id_or_name,
                if_version: if_version.if_version,
            },
        ),
    }
}
