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
    /// Send a test page now through the leader; prints success or the provider's exact error (shown in 'qu alert log' as TEST)
    Test {
        /// The alert's id or name
        #[arg(value_name = "ID_OR_NAME")]
        id_or_name: String,
    },
    /// Recent deliveries: check, event, alert, outcome, attempts, next retry, reason
    Log(JsonArg),
    /// Remove an alert; refused while a check uses it unless --force detaches it
    Remove {
        /// The alert's id or name
        #[arg(value_name = "ID_OR_NAME")]
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
        /// The alert's name (checks refer to it in --alerts): 1-64 letters, digits, '-', '_', '.'; not 8 hex digits (those are ids)
        name: String,
        /// Where to POST: a full http:// or https:// URL (a secret: masked in listings); '-' reads it from stdin
        #[arg(long, value_name = "URL", required_unless_present = "url_file")]
        url: Option<String>,
        /// Read the URL from this file (keeps its token out of ps and shell history)
        #[arg(long, value_name = "PATH", conflicts_with = "url")]
        url_file: Option<std::path::PathBuf>,
        /// Extra header, 'Name: value' (repeatable)
        #[arg(long = "header", value_name = "'K: V'")]
        headers: Vec<String>,
        #[command(flatten)]
        if_version: IfVersion,
    },
    /// A Discord channel webhook
    Discord {
        /// The alert's name (checks refer to it in --alerts): 1-64 letters, digits, '-', '_', '.'; not 8 hex digits (those are ids)
        name: String,
        /// The channel's webhook URL, https://discord.com/api/webhooks/… (its token is a secret); '-' reads it from stdin
        #[arg(long, value_name = "URL", required_unless_present = "webhook_file")]
        webhook: Option<String>,
        /// Read the webhook URL from this file
        #[arg(long, value_name = "PATH", conflicts_with = "webhook")]
        webhook_file: Option<std::path::PathBuf>,
        #[command(flatten)]
        if_version: IfVersion,
    },
    /// Mail through an SMTP server
    Smtp {
        /// The alert's name (checks refer to it in --alerts): 1-64 letters, digits, '-', '_', '.'; not 8 hex digits (those are ids)
        name: String,
        /// The SMTP server's host name or address
        #[arg(long, value_name = "HOST")]
        host: String,
        /// SMTP port (587 for STARTTLS, 465 for --tls, 25 plain)
        #[arg(long, default_value_t = 587)]
        port: u16,
        /// Sender address, e.g. qu@example.com
        #[arg(long, value_name = "ADDRESS")]
        from: String,
        /// Recipients, comma-separated
        #[arg(long, value_delimiter = ',', required = true)]
        to: Vec<String>,
        /// SMTP login user (with --password or --password-file)
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// SMTP password; '-' reads it from stdin. Prefer --password-file: a value here shows in ps and shell history
        #[arg(long, value_name = "PASSWORD")]
        password: Option<String>,
        /// Read the SMTP password from this file (its first line)
        #[arg(long, value_name = "PATH", conflicts_with = "password")]
        password_file: Option<std::path::PathBuf>,
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

/// A secret given as a value, as `-` (stdin, first line), or as a file
/// (first line). The value itself is never echoed in an error.
fn secret(
    flag: &str,
    value: Option<String>,
    file: Option<std::path::PathBuf>,
) -> Result<Option<String>, Failure> {
    let first_line = |text: String| text.lines().next().unwrap_or("").trim_end().to_string();
    let read = match (value, file) {
        (Some(v), _) if v == "-" => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| Failure::msg(format!("{flag} -: cannot read stdin: {e}")))?;
            first_line(text)
        }
        (Some(v), _) => return Ok(Some(v)),
        (None, Some(path)) => first_line(std::fs::read_to_string(&path).map_err(|e| {
            Failure::msg(format!(
                "{flag}-file {}: cannot read it: {e}",
                path.display()
            ))
        })?),
        (None, None) => return Ok(None),
    };
    if read.is_empty() {
        return Err(Failure::msg(format!("{flag}: the value read is empty")));
    }
    Ok(Some(read))
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
                    url_file,
                    headers,
                    if_version,
                } => {
                    let url = secret("--url", url, url_file)?.unwrap_or_default();
                    let headers = headers
                        .iter()
                        .map(|h| parse_header(h))
                        .collect::<Result<_, _>>()?;
                    (name, AlertKind::Webhook { url, headers }, if_version)
                }
                AddCommand::Discord {
                    name,
                    webhook,
                    webhook_file,
                    if_version,
                } => {
                    let webhook = secret("--webhook", webhook, webhook_file)?.unwrap_or_default();
                    (name, AlertKind::Discord { webhook }, if_version)
                }
                AddCommand::Smtp {
                    name,
                    host,
                    port,
                    from,
                    to,
                    user,
                    password,
                    password_file,
                    starttls,
                    tls,
                    if_version,
                } => {
                    let password = secret("--password", password, password_file)?;
                    (
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
                    )
                }
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
                        d.next_retry.clone().unwrap_or_else(|| "-".into()),
                        d.reason
                            .as_deref()
                            .map(|r| table::truncate(r, table::REASON_WIDTH))
                            .unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            print!(
                "{}",
                table::render(
                    &[
                        "CREATED",
                        "CHECK",
                        "EVENT",
                        "ALERT",
                        "STATUS",
                        "ATTEMPTS",
                        "NEXT_RETRY",
                        "REASON"
                    ],
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
