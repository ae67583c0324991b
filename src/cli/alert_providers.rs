//! `qu alert add KIND` for the providers of log level 5 (Slack, Telegram,
//! PagerDuty, Opsgenie, ntfy, Teams, Matrix, Pushover, Gotify): their
//! flags, and the `AlertKind` each makes. Secrets come as a value, as `-`
//! (stdin) or from a `--…-file`, and are never echoed.

use clap::Args;

use super::alert::{secret, AlertOptions};
use super::{Failure, IfVersion};
use qu_raft::model::AlertKind;

/// What every `add` subcommand yields.
pub(super) type Added = (String, AlertKind, AlertOptions, IfVersion);

/// The alert's name, with the help every provider shares.
#[derive(Debug, Args)]
pub struct NameArg {
    /// The alert's name (checks refer to it in --alerts): 1-64 letters, digits, '-', '_', '.'; not 8 hex digits (those are ids)
    name: String,
}

#[derive(Debug, Args)]
pub struct SlackArgs {
    #[command(flatten)]
    name: NameArg,
    /// The incoming webhook's URL, https://hooks.slack.com/services/… (a secret: masked in listings); '-' reads it from stdin
    #[arg(long, value_name = "URL", required_unless_present = "webhook_file")]
    webhook: Option<String>,
    /// Read the webhook URL from this file
    #[arg(long, value_name = "PATH", conflicts_with = "webhook")]
    webhook_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    options: AlertOptions,
    #[command(flatten)]
    if_version: IfVersion,
}

#[derive(Debug, Args)]
pub struct TelegramArgs {
    #[command(flatten)]
    name: NameArg,
    /// The bot's token from @BotFather, 123456789:AA… (a secret); '-' reads it from stdin
    #[arg(long, value_name = "TOKEN", required_unless_present = "token_file")]
    token: Option<String>,
    /// Read the bot token from this file
    #[arg(long, value_name = "PATH", conflicts_with = "token")]
    token_file: Option<std::path::PathBuf>,
    /// The chat to post to: a number (-1001234567890 for a group or channel) or @channelname
    #[arg(long, value_name = "ID", allow_hyphen_values = true)]
    chat_id: String,
    /// Another Bot API server instead of https://api.telegram.org
    #[arg(long, value_name = "URL")]
    api_url: Option<String>,
    #[command(flatten)]
    options: AlertOptions,
    #[command(flatten)]
    if_version: IfVersion,
}

#[derive(Debug, Args)]
pub struct PagerdutyArgs {
    #[command(flatten)]
    name: NameArg,
    /// The Events API v2 integration key of the service (32 characters; a secret); '-' reads it from stdin
    #[arg(long, value_name = "KEY", required_unless_present = "routing_key_file")]
    routing_key: Option<String>,
    /// Read the routing key from this file
    #[arg(long, value_name = "PATH", conflicts_with = "routing_key")]
    routing_key_file: Option<std::path::PathBuf>,
    /// The incidents' severity: critical, error, warning or info
    #[arg(long, default_value = "critical")]
    severity: String,
    /// Another Events API address instead of https://events.pagerduty.com
    #[arg(long, value_name = "URL")]
    api_url: Option<String>,
    #[command(flatten)]
    options: AlertOptions,
    #[command(flatten)]
    if_version: IfVersion,
}

#[derive(Debug, Args)]
pub struct OpsgenieArgs {
    #[command(flatten)]
    name: NameArg,
    /// An API integration's key (a secret); '-' reads it from stdin
    #[arg(long, value_name = "KEY", required_unless_present = "api_key_file")]
    api_key: Option<String>,
    /// Read the API key from this file
    #[arg(long, value_name = "PATH", conflicts_with = "api_key")]
    api_key_file: Option<std::path::PathBuf>,
    /// Where the Opsgenie account lives: us or eu
    #[arg(long, default_value = "us")]
    region: String,
    /// The alerts' priority, P1 (highest) to P5 [default: Opsgenie's, P3]
    #[arg(long, value_name = "P1..P5")]
    priority: Option<String>,
    /// Another API address instead of the region's
    #[arg(long, value_name = "URL")]
    api_url: Option<String>,
    #[command(flatten)]
    options: AlertOptions,
    #[command(flatten)]
    if_version: IfVersion,
}

#[derive(Debug, Args)]
pub struct NtfyArgs {
    #[command(flatten)]
    name: NameArg,
    /// The topic's URL: https://ntfy.sh/TOPIC or your server's (anyone who knows a public topic can read it)
    #[arg(long, value_name = "URL")]
    url: String,
    /// An access token for a protected topic (a secret); '-' reads it from stdin
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Read the access token from this file
    #[arg(long, value_name = "PATH", conflicts_with = "token")]
    token_file: Option<std::path::PathBuf>,
    /// Priority 1 (min) to 5 (max) [default: ntfy's, 3]
    #[arg(long, value_name = "1..5")]
    priority: Option<u8>,
    /// Tags or emoji short codes shown with the message, comma-separated (e.g. rotating_light,prod)
    #[arg(long = "tags", value_name = "TAG,…", value_delimiter = ',')]
    tags: Vec<String>,
    #[command(flatten)]
    options: AlertOptions,
    #[command(flatten)]
    if_version: IfVersion,
}

#[derive(Debug, Args)]
pub struct TeamsArgs {
    #[command(flatten)]
    name: NameArg,
    /// The URL of a Workflows "when a Teams webhook request is received" flow (its sig is a secret); '-' reads it from stdin
    #[arg(long, value_name = "URL", required_unless_present = "webhook_file")]
    webhook: Option<String>,
    /// Read the workflow URL from this file
    #[arg(long, value_name = "PATH", conflicts_with = "webhook")]
    webhook_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    options: AlertOptions,
    #[command(flatten)]
    if_version: IfVersion,
}

#[derive(Debug, Args)]
pub struct MatrixArgs {
    #[command(flatten)]
    name: NameArg,
    /// The homeserver's client API, e.g. https://matrix.example.org
    #[arg(long, value_name = "URL")]
    homeserver: String,
    /// The room: an id (!abc123:example.org) or an alias (#ops:example.org); the bot must have joined it
    #[arg(long, value_name = "ROOM")]
    room: String,
    /// The bot account's access token (a secret); '-' reads it from stdin
    #[arg(long, value_name = "TOKEN", required_unless_present = "token_file")]
    token: Option<String>,
    /// Read the access token from this file
    #[arg(long, value_name = "PATH", conflicts_with = "token")]
    token_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    options: AlertOptions,
    #[command(flatten)]
    if_version: IfVersion,
}

#[derive(Debug, Args)]
pub struct PushoverArgs {
    #[command(flatten)]
    name: NameArg,
    /// The application's API token (30 characters; a secret); '-' reads it from stdin
    #[arg(long, value_name = "TOKEN", required_unless_present = "token_file")]
    token: Option<String>,
    /// Read the API token from this file
    #[arg(long, value_name = "PATH", conflicts_with = "token")]
    token_file: Option<std::path::PathBuf>,
    /// The user or group key to notify (30 characters; a secret)
    #[arg(long, value_name = "KEY")]
    user: String,
    /// Priority -2 (silent) to 1 (high) [default: Pushover's, 0]
    #[arg(long, value_name = "-2..1", allow_hyphen_values = true)]
    priority: Option<i8>,
    /// Only these devices, comma-separated [default: all the user's]
    #[arg(long, value_name = "NAME")]
    device: Option<String>,
    /// Another API address instead of https://api.pushover.net
    #[arg(long, value_name = "URL")]
    api_url: Option<String>,
    #[command(flatten)]
    options: AlertOptions,
    #[command(flatten)]
    if_version: IfVersion,
}

#[derive(Debug, Args)]
pub struct GotifyArgs {
    #[command(flatten)]
    name: NameArg,
    /// The Gotify server, e.g. https://gotify.example.org
    #[arg(long, value_name = "URL")]
    url: String,
    /// An application token (a secret); '-' reads it from stdin
    #[arg(long, value_name = "TOKEN", required_unless_present = "token_file")]
    token: Option<String>,
    /// Read the application token from this file
    #[arg(long, value_name = "PATH", conflicts_with = "token")]
    token_file: Option<std::path::PathBuf>,
    /// Priority 0 to 10 [default: the application's]
    #[arg(long, value_name = "0..10")]
    priority: Option<u8>,
    #[command(flatten)]
    options: AlertOptions,
    #[command(flatten)]
    if_version: IfVersion,
}

/// A required secret: given, or read from stdin or its file.
fn required(
    flag: &str,
    value: Option<String>,
    file: Option<std::path::PathBuf>,
) -> Result<String, Failure> {
    secret(flag, value, file)?.ok_or_else(|| Failure::msg(format!("{flag} is required")))
}

impl SlackArgs {
    pub(super) fn added(self) -> Result<Added, Failure> {
        let webhook = required("--webhook", self.webhook, self.webhook_file)?;
        Ok((
            self.name.name,
            AlertKind::Slack { webhook },
            self.options,
            self.if_version,
        ))
    }
}

impl TelegramArgs {
    pub(super) fn added(self) -> Result<Added, Failure> {
        let token = required("--token", self.token, self.token_file)?;
        Ok((
            self.name.name,
            AlertKind::Telegram {
                token,
                chat_id: self.chat_id,
                api_url: self.api_url,
            },
            self.options,
            self.if_version,
        ))
    }
}

impl PagerdutyArgs {
    pub(super) fn added(self) -> Result<Added, Failure> {
        let routing_key = required("--routing-key", self.routing_key, self.routing_key_file)?;
        Ok((
            self.name.name,
            AlertKind::Pagerduty {
                routing_key,
                severity: self.severity.to_ascii_lowercase(),
                api_url: self.api_url,
            },
            self.options,
            self.if_version,
        ))
    }
}

impl OpsgenieArgs {
    pub(super) fn added(self) -> Result<Added, Failure> {
        let api_key = required("--api-key", self.api_key, self.api_key_file)?;
        Ok((
            self.name.name,
            AlertKind::Opsgenie {
                api_key,
                region: self.region.to_ascii_lowercase(),
                priority: self.priority.map(|p| p.to_ascii_uppercase()),
                api_url: self.api_url,
            },
            self.options,
            self.if_version,
        ))
    }
}

impl NtfyArgs {
    pub(super) fn added(self) -> Result<Added, Failure> {
        let token = secret("--token", self.token, self.token_file)?;
        Ok((
            self.name.name,
            AlertKind::Ntfy {
                url: self.url,
                token,
                priority: self.priority,
                tags: self.tags,
            },
            self.options,
            self.if_version,
        ))
    }
}

impl TeamsArgs {
    pub(super) fn added(self) -> Result<Added, Failure> {
        let webhook = required("--webhook", self.webhook, self.webhook_file)?;
        Ok((
            self.name.name,
            AlertKind::Teams { webhook },
            self.options,
            self.if_version,
        ))
    }
}

impl MatrixArgs {
    pub(super) fn added(self) -> Result<Added, Failure> {
        let token = required("--token", self.token, self.token_file)?;
        Ok((
            self.name.name,
            AlertKind::Matrix {
                homeserver: self.homeserver,
                room: self.room,
                token,
            },
            self.options,
            self.if_version,
        ))
    }
}

impl PushoverArgs {
    pub(super) fn added(self) -> Result<Added, Failure> {
        let token = required("--token", self.token, self.token_file)?;
        Ok((
            self.name.name,
            AlertKind::Pushover {
                token,
                user: self.user,
                priority: self.priority,
                device: self.device,
                api_url: self.api_url,
            },
            self.options,
            self.if_version,
        ))
    }
}

impl GotifyArgs {
    pub(super) fn added(self) -> Result<Added, Failure> {
        let token = required("--token", self.token, self.token_file)?;
        Ok((
            self.name.name,
            AlertKind::Gotify {
                url: self.url,
                token,
                priority: self.priority,
            },
            self.options,
            self.if_version,
        ))
    }
}
