//! `qu alert add|list|remove` (SPEC §10).

use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Subcommand};

use super::{ask, mutate, print_json, table, unexpected, Failure, IfVersion, JsonArg};
use crate::config::Env;
use crate::daemon::control::{AlertSpec, ControlReply, ControlRequest};
use qu_raft::model::AlertKind;

#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Add an alert channel
    #[command(subcommand)]
    Add(AddCommand),
    /// List alerts (secrets masked)
    List(JsonArg),
    /// Send a test page now through the leader; prints success or the provider's exact error
    Test { id_or_name: String },
    /// Recent deliveries: check, event, alert, outcome
    Log(JsonArg),
    /// Remove an alert; refused while a check uses it unless --force detaches it
    Remove {
        id_or_name: String,
        /// Detach the alert from the checks that use it
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        if_version: IfVersion,
    },
}

#[derive(Debug, Subcommand)]
pub enum AddCommand {
    /// A JSON POST to any URL
    Webhook {
        name: String,
        #[arg(long)]
        url: String,
        /// Extra header, 'Name: value' (repeatable)
        #[arg(long = "header", value_name = "'K: V'")]
        headers: Vec<String>,
        #[command(flatten)]
        if_version: IfVersion,
    },
    /// A Discord channel webhook
    Discord {
        name: String,
        /// https://discord.com/api/webhooks/…
        #[arg(long)]
        webhook: String,
        #[command(flatten)]
        if_version: IfVersion,
    },
    /// Mail through an SMTP server
    Smtp {
        name: String,
        #[arg(long)]
        host: String,
        /// SMTP port (587 for STARTTLS, 465 for --tls, 25 plain)
        #[arg(long, default_value_t = 587)]
        port: u16,
        #[arg(long)]
        from: String,
        /// Recipients, comma-separated
        #[arg(long, value_delimiter = ',', required = true)]
        to: Vec<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        password: Option<String>,
        /// Require STARTTLS; --starttls=false sends in plain text (only on trusted networks)
        #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "true|false")]
        starttls: bool,
        /// Implicit TLS from the first byte (usually port 465); implies --starttls=false
        #[arg(long)]
        tls: bool,
        #[command(flatten)]
        if_version: IfVersion,
    },
}

fn parse_header(h: &str) -> Result<(String, String), Failure> {
    let (k, v) = h
        .split_once(':')
        .ok_or_else(|| Failure::msg(format!("--header {h:?}: use 'Name: value'")))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

pub(super) fn run(env: &Env, cmd: AlertCommand) -> Result<ExitCode, Failure> {
    match cmd {
        AlertCommand::Add(add) => {
            let (name, kind, if_version) = match add {
                AddCommand::Webhook {
                    name,
                    url,
                    headers,
                    if_version,
                } => {
                    let headers = headers
                        .iter()
                        .map(|h| parse_header(h))
                        .collect::<Result<_, _>>()?;
                    (name, AlertKind::Webhook { url, headers }, if_version)
                }
                AddCommand::Discord {
                    name,
                    webhook,
                    if_version,
                } => (name, AlertKind::Discord { webhook }, if_version),
                AddCommand::Smtp {
                    name,
                    host,
                    port,
                    from,
                    to,
                    user,
                    password,
                    starttls,
                    tls,
                    if_version,
                } => (
                    name,
                    AlertKind::Smtp {
                        host,
                        port,
                        from,
                        to,
                        user,
                        password,
                        starttls: starttls && !tls,
                        tls,
                    },
                    if_version,
                ),
            };
            mutate(
                env,
                ControlRequest::AlertAdd {
                    spec: AlertSpec { name, kind },
                    if_version: if_version.if_version,
                },
            )
        }
        AlertCommand::List(args) => {
            let ControlReply::AlertList { alerts } =
                ask(env, ControlRequest::AlertList, Duration::from_secs(10))?
            else {
                return Err(unexpected());
            };
            if args.json {
                return print_json(&alerts).map(|_| ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = alerts
                .iter()
                .map(|a| {
                    vec![
                        a.id.clone(),
                        a.name.clone(),
                        a.kind.clone(),
                        a.target.clone(),
                        if a.used_by.is_empty() {
                            "-".into()
                        } else {
                            a.used_by.join(",")
                        },
                    ]
                })
                .collect();
            print!(
                "{}",
                table::render(&["ID", "NAME", "TYPE", "TARGET", "USED_BY"], &rows)
            );
            Ok(ExitCode::SUCCESS)
        }
        AlertCommand::Test { id_or_name } => {
            let ControlReply::AlertTested { message } = ask(
                env,
                ControlRequest::AlertTest { id_or_name },
                Duration::from_secs(60),
            )?
            else {
                return Err(unexpected());
            };
            println!("{message}");
            Ok(ExitCode::SUCCESS)
        }
        AlertCommand::Log(args) => {
            let ControlReply::AlertLog { deliveries } =
                ask(env, ControlRequest::AlertLog, Duration::from_secs(10))?
            else {
                return Err(unexpected());
            };
            if args.json {
                return print_json(&deliveries).map(|_| ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = deliveries
                .iter()
                .map(|d| {
                    vec![
                        d.created.clone(),
                        d.check.clone(),
                        d.event.clone(),
                        d.alert.clone(),
                        d.status.clone(),
                        d.attempts.to_string(),
                        d.reason.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            print!(
                "{}",
                table::render(
                    &["CREATED", "CHECK", "EVENT", "ALERT", "STATUS", "ATTEMPTS", "REASON"],
                    &rows
                )
            );
            Ok(ExitCode::SUCCESS)
        }
        AlertCommand::Remove {
            id_or_name,
            force,
            if_version,
        } => mutate(
            env,
            ControlRequest::AlertRemove {
                id_or_name,
                force,
                if_version: if_version.if_version,
            },
        ),
    }
}
