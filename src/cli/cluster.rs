//! `qu cluster resolvers set|show|clear`: cluster-wide settings, replicated
//! like the checks (one Raft entry each, refused without quorum).

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use super::{ask, mutate, print_json, unexpected, Failure, IfVersion};
use crate::config::Env;
use crate::daemon::control::{ControlReply, ControlRequest};

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// The DNS servers every node's HTTP, TLS, TCP, ICMP and DNS probes resolve through when a check names none (a check's own --resolver wins), so that every node resolves the same way
    #[command(subcommand)]
    Resolvers(ResolversCommand),
    /// Show or set how long each check's history is kept (default 90d, 1d to 1095d); older events are pruned by the master within the hour, each check keeping the state they left
    Retention {
        /// The new retention: whole days and/or a Go duration (90d, 30d, 400d); none shows the current one
        #[arg(value_name = "SPAN", value_parser = super::parse_span)]
        retention: Option<Duration>,
        /// Print JSON ({"version": N, "retention_ms": N, "default": bool}) when showing
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        if_version: IfVersion,
    },
}

#[derive(Debug, Subcommand)]
pub enum ResolversCommand {
    /// Use these DNS servers (replacing the current ones): IP or IP:PORT, [IPv6]:PORT; at most 8
    Set {
        /// The DNS servers, in the order they are asked
        #[arg(value_name = "IP[:PORT]", required = true)]
        servers: Vec<String>,
        #[command(flatten)]
        if_version: IfVersion,
    },
    /// Show the cluster's DNS servers
    Show {
        /// Print JSON ({"version": N, "resolvers": [...]}) instead of text
        #[arg(long)]
        json: bool,
    },
    /// Go back to each node's system resolver (/etc/resolv.conf, /etc/hosts)
    Clear {
        #[command(flatten)]
        if_version: IfVersion,
    },
}

pub(super) fn run(env: &Env, cmd: ClusterCommand) -> Result<ExitCode, Failure> {
    let cmd = match cmd {
        ClusterCommand::Resolvers(cmd) => cmd,
        ClusterCommand::Retention {
            retention,
            json,
            if_version,
        } => return retention_cmd(env, retention, json, if_version),
    };
    match cmd {
        ResolversCommand::Set {
            servers,
            if_version,
        } => mutate(
            env,
            ControlRequest::ResolversSet {
                resolvers: servers,
                if_version: if_version.if_version,
            },
        ),
        ResolversCommand::Clear { if_version } => mutate(
            env,
            ControlRequest::ResolversSet {
                resolvers: vec![],
                if_version: if_version.if_version,
            },
        ),
        ResolversCommand::Show { json } => {
            let ControlReply::Resolvers { version, resolvers } =
                ask(env, ControlRequest::ResolversShow, Duration::from_secs(10))?
            else {
                return Err(unexpected());
            };
            if json {
                let out = serde_json::json!({ "version": version, "resolvers": resolvers });
                return print_json(&out).map(|_| ExitCode::SUCCESS);
            }
            if resolvers.is_empty() {
                println!("no cluster DNS servers: each node resolves with its system resolver (/etc/resolv.conf, /etc/hosts); set some with 'qu cluster resolvers set IP…'");
            } else {
                println!(
                    "probes resolve through {} (a check's own --resolver wins)",
                    resolvers.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn retention_cmd(
    env: &Env,
    retention: Option<Duration>,
    json: bool,
    if_version: IfVersion,
) -> Result<ExitCode, Failure> {
    if let Some(r) = retention {
        return mutate(
            env,
            ControlRequest::RetentionSet {
                retention_ms: r.as_millis() as u64,
                if_version: if_version.if_version,
            },
        );
    }
    let ControlReply::Retention {
        version,
        retention_ms,
        default,
    } = ask(env, ControlRequest::RetentionShow, Duration::from_secs(10))?
    else {
        return Err(unexpected());
    };
    if json {
        let out = serde_json::json!({
            "version": version, "retention_ms": retention_ms, "default": default,
        });
        return print_json(&out).map(|_| ExitCode::SUCCESS);
    }
    let span = crate::config::duration::format_span(Duration::from_millis(retention_ms));
    if default {
        println!("check history is kept {span} (the default; change it with 'qu cluster retention SPAN')");
    } else {
        println!("check history is kept {span}");
    }
    Ok(ExitCode::SUCCESS)
}
