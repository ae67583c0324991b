//! `qu alert add|list|edit|disable|enable|default|test|log|remove` (SPEC §10).

use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Args, Subcommand};

use super::alert_providers::{
    GotifyArgs, MatrixArgs, NtfyArgs, OpsgenieArgs, PagerdutyArgs, PushoverArgs, SlackArgs,
    TeamsArgs, TelegramArgs,
};
use super::{
    ask, mutate, parse_duration, print_json, table, unexpected, Failure, IfVersion, JsonArg,
};
use crate::config::Env;
use crate::daemon::control::{AlertSpec, ControlReply, ControlRequest};
use qu_raft::model::AlertKind;
use qu_raft::patch::Patch;

#[derive(Debug, Subcommand)]
// Parsed once per run.
#[allow(clippy::large_enum_variant)]
pub enum AlertCommand {
    /// Add an alert channel
    #[command(subcommand)]
    Add(AddCommand),
    /// List alerts (secrets masked): ID, NAME, TYPE, TARGET, USED_BY, DEFAULT, REPEAT, ON, AFTER, ENABLED
    List(JsonArg),
    /// Change some settings of an alert (only the flags given change; secrets can be replaced, never shown)
    Edit(EditArgs),
    /// Disable an alert: it sends nothing; pages it would have sent show as 'skipped (alert disabled)' in 'qu alert log'
    Disable {
        /// The alert's id or name
        #[arg(value_name = "ID_OR_NAME")]
        id_or_name: String,
        #[command(flatten)]
        if_version: IfVersion,
    },
    /// Enable a disabled alert again (it pages from the next flip on)
    Enable {
        /// The alert's id or name
        #[arg(value_name = "ID_OR_NAME")]
        id_or_name: String,
        #[command(flatten)]
        if_version: IfVersion,
    },
    /// Make an alert a default one (on) or not (off): checks added without --alerts get the default alerts
    Default {
        /// The alert's id or name
        #[arg(value_name = "ID_OR_NAME")]
        id_or_name: String,
        /// on or off
        #[arg(value_name = "on|off", value_parser = parse_on_off, action = ArgAction::Set)]
        on: bool,
        #[command(flatten)]
        if_version: IfVersion,
    },
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
        options: AlertOptions,
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
        options: AlertOptions,
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
        options: AlertOptions,
        #[command(flatten)]
        if_version: IfVersion,
    },
    /// A Slack channel, through an incoming webhook (Block Kit message)
    Slack(SlackArgs),
    /// A Telegram chat, through a bot (Bot API sendMessage, HTML)
    Telegram(TelegramArgs),
    /// PagerDuty Events API v2: DOWN triggers an incident, RECOVERED resolves it
    Pagerduty(PagerdutyArgs),
    /// Opsgenie Alert API: DOWN creates an alert, RECOVERED closes it
    Opsgenie(OpsgenieArgs),
    /// An ntfy topic (ntfy.sh or self-hosted)
    Ntfy(NtfyArgs),
    /// A Microsoft Teams channel, through a Workflows webhook (Adaptive Card)
    Teams(TeamsArgs),
    /// A Matrix room, as a bot account
    Matrix(MatrixArgs),
    /// Pushover notifications to a user or group
    Pushover(PushoverArgs),
    /// A Gotify server (self-hosted push)
    Gotify(GotifyArgs),
}

/// Options every provider takes.
#[derive(Debug, Args)]
pub struct AlertOptions {
    /// Make it a default alert: checks added without --alerts get it
    #[arg(long)]
    default: bool,
    /// While a check stays DOWN, page again every DURATION (e.g. 1h; at least 1s) [default: off]
    #[arg(long, value_name = "DURATION|off", value_parser = parse_repeat)]
    repeat: Option<RepeatArg>,
    /// The page's title as a template, e.g. '{{ state }}: {{ check.name }}' (fields: see README "Message templates") [default: qu's subject line]
    #[arg(long, value_name = "TEMPLATE")]
    title: Option<String>,
    /// The page's text as a template, e.g. '{{ check.name }} is {{ state }}: {{ votes }}' [default: qu's text]
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "body_file")]
    body: Option<String>,
    /// Read the --body template from this file
    #[arg(long, value_name = "PATH")]
    body_file: Option<std::path::PathBuf>,
    /// Which events it gets, comma-separated: down, recovered, repeat [default: all]
    #[arg(long, value_name = "EVENTS", value_parser = parse_on)]
    on: Option<OnArg>,
    /// Page only if the check is still DOWN after DURATION (1s to 24h, e.g. 5m); its RECOVERED is sent only if its DOWN was [default: off]
    #[arg(long, value_name = "DURATION|off", value_parser = parse_repeat)]
    after: Option<RepeatArg>,
}

/// The level-5 settings of an alert, from its options.
struct Routing {
    title: Option<String>,
    body: Option<String>,
    on: Option<Vec<qu_raft::alert_kinds::PageEvent>>,
    after_ms: Option<u64>,
}

/// The `--body` template, given or read whole from `--body-file`.
fn body_template(
    body: Option<String>,
    file: Option<&std::path::Path>,
) -> Result<Option<String>, Failure> {
    match (body, file) {
        (Some(b), _) => Ok(Some(b)),
        (None, Some(path)) => std::fs::read_to_string(path).map(Some).map_err(|e| {
            Failure::msg(format!(
                "--body-file {}: cannot read it: {e}",
                path.display()
            ))
        }),
        (None, None) => Ok(None),
    }
}

impl AlertOptions {
    fn routing(&self) -> Result<Routing, Failure> {
        let body = body_template(self.body.clone(), self.body_file.as_deref())?;
        Ok(Routing {
            title: self.title.clone(),
            body,
            on: self.on.clone().and_then(|o| o.0),
            after_ms: self.after.and_then(|a| a.0),
        })
    }
}

/// `--on`: the events, or None for `all`.
#[derive(Debug, Clone)]
pub struct OnArg(Option<Vec<qu_raft::alert_kinds::PageEvent>>);

fn parse_on(s: &str) -> Result<OnArg, String> {
    if s.trim().eq_ignore_ascii_case("all") {
        return Ok(OnArg(None));
    }
    qu_raft::alert_kinds::PageEvent::parse_list(s)
        .map(|l| OnArg(Some(l)))
        .map_err(|e| e.message)
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// The alert's id or name
    #[arg(value_name = "ID_OR_NAME")]
    id_or_name: String,
    /// A new name
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// While a check stays DOWN, page again every DURATION; 'off' stops repeating
    #[arg(long, value_name = "DURATION|off", value_parser = parse_repeat)]
    repeat: Option<RepeatArg>,
    /// A new URL (webhook; a secret); '-' reads it from stdin
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Read the new URL from this file (webhook)
    #[arg(long, value_name = "PATH", conflicts_with = "url")]
    url_file: Option<std::path::PathBuf>,
    /// Replace the extra headers, 'Name: value' (repeatable; webhook)
    #[arg(long = "header", value_name = "'K: V'")]
    headers: Vec<String>,
    /// A new webhook URL (discord; a secret); '-' reads it from stdin
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// Read the new webhook URL from this file (discord)
    #[arg(long, value_name = "PATH", conflicts_with = "webhook")]
    webhook_file: Option<std::path::PathBuf>,
    /// A new SMTP server (smtp)
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// A new SMTP port (smtp)
    #[arg(long)]
    port: Option<u16>,
    /// A new sender address (smtp)
    #[arg(long, value_name = "ADDRESS")]
    from: Option<String>,
    /// New recipients, comma-separated (smtp)
    #[arg(long, value_delimiter = ',')]
    to: Option<Vec<String>>,
    /// A new SMTP login user (smtp)
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// A new SMTP password (smtp); '-' reads it from stdin
    #[arg(long, value_name = "PASSWORD")]
    password: Option<String>,
    /// Read the new SMTP password from this file (smtp)
    #[arg(long, value_name = "PATH", conflicts_with = "password")]
    password_file: Option<std::path::PathBuf>,
    /// Require STARTTLS (true) or send in plain text (false) (smtp)
    #[arg(long, value_name = "true|false", action = ArgAction::Set)]
    starttls: Option<bool>,
    /// Implicit TLS from the first byte (smtp)
    #[arg(long, value_name = "true|false", action = ArgAction::Set)]
    tls: Option<bool>,
    /// A new title template; '' restores the default title
    #[arg(long, value_name = "TEMPLATE")]
    title: Option<String>,
    /// A new body template; '' restores the default text
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "body_file")]
    body: Option<String>,
    /// Read the new body template from this file
    #[arg(long, value_name = "PATH")]
    body_file: Option<std::path::PathBuf>,
    /// Which events it gets: some of down, recovered, repeat, or 'all'
    #[arg(long, value_name = "EVENTS", value_parser = parse_on)]
    on: Option<OnArg>,
    /// Page only if still DOWN after DURATION; 'off' pages at once
    #[arg(long, value_name = "DURATION|off", value_parser = parse_repeat)]
    after: Option<RepeatArg>,
    /// A new token (telegram, ntfy, matrix, pushover, gotify; a secret); '-' reads it from stdin
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Read the new token from this file
    #[arg(long, value_name = "PATH", conflicts_with = "token")]
    token_file: Option<std::path::PathBuf>,
    /// A new chat (telegram)
    #[arg(long, value_name = "ID", allow_hyphen_values = true)]
    chat_id: Option<String>,
    /// A new routing key (pagerduty; a secret); '-' reads it from stdin
    #[arg(long, value_name = "KEY")]
    routing_key: Option<String>,
    /// A new severity: critical, error, warning, info (pagerduty)
    #[arg(long)]
    severity: Option<String>,
    /// A new API key (opsgenie; a secret); '-' reads it from stdin
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,
    /// A new region, us or eu (opsgenie)
    #[arg(long)]
    region: Option<String>,
    /// A new priority (opsgenie P1..P5, ntfy 1..5, pushover -2..1, gotify 0..10)
    #[arg(long, allow_hyphen_values = true)]
    priority: Option<String>,
    /// New tags, comma-separated (ntfy)
    #[arg(long, value_delimiter = ',')]
    tags: Option<Vec<String>>,
    /// A new homeserver (matrix)
    #[arg(long, value_name = "URL")]
    homeserver: Option<String>,
    /// A new room id or alias (matrix)
    #[arg(long)]
    room: Option<String>,
    /// New devices (pushover)
    #[arg(long)]
    device: Option<String>,
    /// A new API address (telegram, pagerduty, opsgenie, pushover)
    #[arg(long, value_name = "URL")]
    api_url: Option<String>,
    #[command(flatten)]
    if_version: IfVersion,
}

impl EditArgs {
    fn patch(self) -> Result<Patch, Failure> {
        let mut p = Patch::default();
        p.set_some("name", self.name.as_ref());
        match self.repeat {
            Some(RepeatArg(Some(ms))) => {
                p.set("repeat_ms", ms);
            }
            Some(RepeatArg(None)) => {
                p.clear("repeat_ms");
            }
            None => {}
        }
        p.set_some("url", secret("--url", self.url, self.url_file)?);
        if !self.headers.is_empty() {
            let headers: Vec<(String, String)> = self
                .headers
                .iter()
                .map(|h| parse_header(h))
                .collect::<Result<_, _>>()?;
            p.set("headers", headers);
        }
        p.set_some(
            "webhook",
            secret("--webhook", self.webhook, self.webhook_file)?,
        );
        p.set_some("host", self.host.as_ref());
        p.set_some("port", self.port);
        p.set_some("from", self.from.as_ref());
        p.set_some("to", self.to.as_ref());
        p.set_some("user", self.user.as_ref());
        p.set_some(
            "password",
            secret("--password", self.password, self.password_file)?,
        );
        p.set_some("starttls", self.starttls);
        if let Some(v) = self.tls {
            p.set("tls", v);
            if v && self.starttls.is_none() {
                p.set("starttls", false);
            }
        }
        let template = |p: &mut Patch, field: &str, v: Option<String>| match v {
            Some(t) if t.is_empty() => {
                p.clear(field);
            }
            Some(t) => {
                p.set(field, t);
            }
            None => {}
        };
        template(&mut p, "title", self.title);
        let body = body_template(self.body, self.body_file.as_deref())?;
        template(&mut p, "body", body);
        match self.on {
            Some(OnArg(Some(on))) => {
                p.set("on", on);
            }
            Some(OnArg(None)) => {
                p.clear("on");
            }
            None => {}
        }
        match self.after {
            Some(RepeatArg(Some(ms))) => {
                p.set("after_ms", ms);
            }
            Some(RepeatArg(None)) => {
                p.clear("after_ms");
            }
            None => {}
        }
        p.set_some("token", secret("--token", self.token, self.token_file)?);
        p.set_some("chat_id", self.chat_id.as_ref());
        p.set_some(
            "routing_key",
            secret("--routing-key", self.routing_key, None)?,
        );
        p.set_some("severity", self.severity.map(|s| s.to_ascii_lowercase()));
        p.set_some("api_key", secret("--api-key", self.api_key, None)?);
        p.set_some("region", self.region.map(|s| s.to_ascii_lowercase()));
        if let Some(pr) = self.priority {
            // Opsgenie's are words (P1); the others' numbers.
            match pr.trim().parse::<i64>() {
                Ok(n) => p.set("priority", n),
                Err(_) => p.set("priority", pr.trim().to_ascii_uppercase()),
            };
        }
        p.set_some("tags", self.tags.as_ref());
        p.set_some("homeserver", self.homeserver.as_ref());
        p.set_some("room", self.room.as_ref());
        p.set_some("device", self.device.as_ref());
        p.set_some("api_url", self.api_url.as_ref());
        if p.is_empty() {
            return Err(Failure::msg(
                "nothing to change: give at least one flag to edit (see 'qu alert edit --help')",
            ));
        }
        Ok(p)
    }
}

/// `--repeat`: a period in ms, or None for `off`.
#[derive(Debug, Clone, Copy)]
pub struct RepeatArg(Option<u64>);

fn parse_repeat(s: &str) -> Result<RepeatArg, String> {
    if s.trim().eq_ignore_ascii_case("off") {
        return Ok(RepeatArg(None));
    }
    let d = parse_duration(s)?;
    Ok(RepeatArg(Some(d.as_millis() as u64)))
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!("{s:?}: say on or off")),
    }
}

/// A secret given as a value, as `-` (stdin, first line), or as a file
/// (first line). The value itself is never echoed in an error.
pub(super) fn secret(
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
            let (name, kind, options, if_version) = match add {
                AddCommand::Webhook {
                    name,
                    url,
                    url_file,
                    headers,
                    options,
                    if_version,
                } => {
                    let url = secret("--url", url, url_file)?.unwrap_or_default();
                    let headers = headers
                        .iter()
                        .map(|h| parse_header(h))
                        .collect::<Result<_, _>>()?;
                    (
                        name,
                        AlertKind::Webhook { url, headers },
                        options,
                        if_version,
                    )
                }
                AddCommand::Discord {
                    name,
                    webhook,
                    webhook_file,
                    options,
                    if_version,
                } => {
                    let webhook = secret("--webhook", webhook, webhook_file)?.unwrap_or_default();
                    (name, AlertKind::Discord { webhook }, options, if_version)
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
                    options,
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
                        options,
                        if_version,
                    )
                }
                AddCommand::Slack(a) => a.added()?,
                AddCommand::Telegram(a) => a.added()?,
                AddCommand::Pagerduty(a) => a.added()?,
                AddCommand::Opsgenie(a) => a.added()?,
                AddCommand::Ntfy(a) => a.added()?,
                AddCommand::Teams(a) => a.added()?,
                AddCommand::Matrix(a) => a.added()?,
                AddCommand::Pushover(a) => a.added()?,
                AddCommand::Gotify(a) => a.added()?,
            };
            let routing = options.routing()?;
            mutate(
                env,
                ControlRequest::AlertAdd {
                    spec: AlertSpec {
                        name,
                        kind,
                        default: options.default,
                        repeat_ms: options.repeat.and_then(|r| r.0),
                        title: routing.title,
                        body: routing.body,
                        on: routing.on,
                        after_ms: routing.after_ms,
                    },
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
                        if a.default { "yes" } else { "no" }.into(),
                        a.repeat.clone().unwrap_or_else(|| "off".into()),
                        a.on.clone().unwrap_or_else(|| "all".into()),
                        a.after.clone().unwrap_or_else(|| "-".into()),
                        if a.disabled { "DISABLED" } else { "yes" }.into(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table::render(
                    &[
                        "ID", "NAME", "TYPE", "TARGET", "USED_BY", "DEFAULT", "REPEAT", "ON",
                        "AFTER", "ENABLED"
                    ],
                    &rows
                )
            );
            Ok(ExitCode::SUCCESS)
        }
        AlertCommand::Edit(args) => {
            let id_or_name = args.id_or_name.clone();
            let if_version = args.if_version.if_version;
            let patch = args.patch()?;
            mutate(
                env,
                ControlRequest::AlertEdit {
                    id_or_name,
                    patch,
                    if_version,
                },
            )
        }
        AlertCommand::Disable {
            id_or_name,
            if_version,
        } => edit_one(env, id_or_name, "disabled", true, if_version),
        AlertCommand::Enable {
            id_or_name,
            if_version,
        } => edit_one(env, id_or_name, "disabled", false, if_version),
        AlertCommand::Default {
            id_or_name,
            on,
            if_version,
        } => edit_one(env, id_or_name, "default", on, if_version),
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

/// An edit of one boolean field of an alert.
fn edit_one(
    env: &Env,
    id_or_name: String,
    field: &str,
    value: bool,
    if_version: IfVersion,
) -> Result<ExitCode, Failure> {
    let mut patch = Patch::default();
    patch.set(field, value);
    mutate(
        env,
        ControlRequest::AlertEdit {
            id_or_name,
            patch,
            if_version: if_version.if_version,
        },
    )
}
