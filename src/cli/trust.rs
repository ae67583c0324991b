//! `qu trust list|remove`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use super::{ask, print_json, table, unexpected, Failure, JsonArg};
use crate::config::Env;
use crate::daemon::control::{ControlReply, ControlRequest};

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// List the nodes this node pins (NODE_ID, ADVERTISE, FINGERPRINT, SOURCE, ADDED)
    List(JsonArg),
    /// Drop a node's entry: its connections are refused from then on. A current member is refused without --force (use 'qu node remove' to take a node out of the cluster)
    Remove {
        /// Node id or a unique prefix of it
        #[arg(value_name = "NODE_ID")]
        node: String,
        /// Drop the pin of a current member anyway (it lasts until the membership changes, qu restarts, or 'qu node add' re-pins it)
        #[arg(long)]
        force: bool,
    },
}

pub(super) fn run(env: &Env, cmd: TrustCommand) -> Result<ExitCode, Failure> {
    match cmd {
        TrustCommand::List(args) => {
            let ControlReply::TrustList { entries } =
                ask(env, ControlRequest::TrustList, Duration::from_secs(10))?
            else {
                return Err(unexpected());
            };
            if args.json {
                return print_json(&entries).map(|_| ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    vec![
                        e.node_id.to_string(),
                        e.advertise.clone(),
                        e.fingerprint.to_string(),
                        e.source.to_string(),
                        e.added_at.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table::render(
                    &["NODE_ID", "ADVERTISE", "FINGERPRINT", "SOURCE", "ADDED"],
                    &rows
                )
            );
            Ok(ExitCode::SUCCESS)
        }
        TrustCommand::Remove { node, force } => {
            let ControlReply::TrustRemoved {
                entry,
                closed_connections,
                still_member,
            } = ask(
                env,
                ControlRequest::TrustRemove { node, force },
                Duration::from_secs(10),
            )?
            else {
                return Err(unexpected());
            };
            println!(
                "removed node {} ({}) from the trust store; closed {closed_connections} open connection(s)",
                entry.node_id, entry.fingerprint
            );
            if still_member {
                eprintln!("qu: warning: node {} is still a cluster member; this node refuses its connections until the membership changes, the daemon restarts, or 'qu node add' re-pins it (trust follows the replicated membership). Use 'qu node remove {}' to take it out of the cluster.", entry.node_id, entry.node_id);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
