//! `qu node add|list|remove` (SPEC §5).

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{ask, mutate, print_json, table, unexpected, Failure, IfVersion, JsonArg};
use crate::config::Env;
use crate::crypto::Fingerprint;
use crate::daemon::control::{ControlReply, ControlRequest, PeerRow};

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Add the node at HOST:PORT: shows its id and fingerprint and asks, SSH-style, before trusting it; returns once it is a voter
    Add(AddArgs),
    /// List members: NODE_ID, ADVERTISE, ROLE, LIVE, LAST_SEEN, LAG, VERSION, CLOCK (offset from the voters' common time; OFF: kept from leading)
    List(JsonArg),
    /// Remove a member from the cluster and from every node's trust store
    Remove {
        /// Node id or a unique prefix of it (at least 4 characters)
        #[arg(value_name = "NODE_ID")]
        node: String,
        #[command(flatten)]
        if_version: IfVersion,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The new node's advertise address (HOST alone means port 9001)
    #[arg(value_name = "HOST:PORT")]
    pub addr: String,
    /// Trust the node without asking
    #[arg(long, conflicts_with = "fingerprint")]
    pub yes: bool,
    /// Trust the node only if it presents exactly this fingerprint (non-interactive)
    #[arg(long, value_name = "SHA256:…")]
    pub fingerprint: Option<Fingerprint>,
}

/// The question `qu node add` asks before trusting a node.
const ADD_PROMPT: &str = "Trust this node and add it to the cluster? [y/N]";

/// Adding a node includes replicating the state to it.
const NODE_ADD_DEADLINE: Duration = Duration::from_secs(90);

pub(super) fn run(env: &Env, cmd: NodeCommand) -> Result<ExitCode, Failure> {
    match cmd {
        NodeCommand::Add(args) => add(env, args),
        NodeCommand::List(args) => {
            let ControlReply::NodeList { nodes } =
                ask(env, ControlRequest::NodeList, Duration::from_secs(10))?
            else {
                return Err(unexpected());
            };
            if args.json {
                return print_json(&nodes).map(|_| ExitCode::SUCCESS);
            }
            print!("{}", render_nodes(&nodes, true));
            Ok(ExitCode::SUCCESS)
        }
        NodeCommand::Remove { node, if_version } => mutate(
            env,
            ControlRequest::NodeRemove {
                node,
                if_version: if_version.if_version,
            },
        ),
    }
}

/// The members table (full ids; `with_role` adds ROLE and LAG).
pub(super) fn render_nodes(nodes: &[PeerRow], with_role: bool) -> String {
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            let mut row = vec![n.node_id.to_string(), n.advertise.clone()];
            if with_role {
                row.push(n.role.clone());
            }
            row.push(n.live.to_string());
            row.push(n.last_seen.clone().unwrap_or_else(|| "-".into()));
            if with_role {
                row.push(n.lag.map(|l| l.to_string()).unwrap_or_else(|| "-".into()));
            }
            row.push(n.version.clone().unwrap_or_else(|| "-".into()));
            row.push(n.clock_word());
            row
        })
        .collect();
    if with_role {
        table::render(
            &[
                "NODE_ID",
                "ADVERTISE",
                "ROLE",
                "LIVE",
                "LAST_SEEN",
                "LAG",
                "VERSION",
                "CLOCK",
            ],
            &rows,
        )
    } else {
        table::render(
            &[
                "NODE_ID",
                "ADVERTISE",
                "LIVE",
                "LAST_SEEN",
                "VERSION",
                "CLOCK",
            ],
            &rows,
        )
    }
}

/// `HOST` alone means the default port.
fn with_default_port(addr: &str) -> String {
    let addr = addr.trim();
    let has_port = match addr.rsplit_once(':') {
        Some((host, port)) => {
            !port.is_empty()
                && port.chars().all(|c| c.is_ascii_digit())
                && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    };
    let bare_ipv6 = !addr.starts_with('[') && addr.matches(':').count() > 1;
    if has_port || bare_ipv6 {
        addr.to_string()
    } else {
        format!("{addr}:{}", crate::config::node::DEFAULT_PORT)
    }
}

fn add(env: &Env, mut args: AddArgs) -> Result<ExitCode, Failure> {
    args.addr = with_default_port(&args.addr);
    let ControlReply::Hello {
        node_id,
        fingerprint,
        advertise,
        voter,
    } = ask(
        env,
        ControlRequest::NodeHello {
            addr: args.addr.clone(),
        },
        Duration::from_secs(15),
    )?
    else {
        return Err(unexpected());
    };
    println!("The node at {} identifies itself as", args.addr);
    println!("  node id      {node_id}");
    println!("  fingerprint  {fingerprint}");
    if advertise != args.addr {
        println!("  advertise    {advertise}");
    }
    if let Some(expected) = &args.fingerprint {
        if expected.to_string() != fingerprint {
            return Err(Failure::msg(format!(
                "FINGERPRINT MISMATCH: {} presented {fingerprint}, but --fingerprint says {expected}; refusing to add it (someone may be intercepting the connection, or the node was re-initialised)",
                args.addr
            )));
        }
    }
    if voter {
        println!(
            "node {node_id} is already a voter of this cluster, with this key; restoring its pin"
        );
    } else if args.fingerprint.is_some() {
        println!("fingerprint matches --fingerprint");
    } else if !args.yes {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            println!("{ADD_PROMPT}");
            return Err(Failure::msg(format!(
                "not added: stdin is not a terminal, so nobody can answer the question above. Check the fingerprint, then run 'qu node add {} --fingerprint {fingerprint}' (or --yes to trust whatever key it presents)",
                args.addr
            )));
        }
        print!("{ADD_PROMPT} ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        stdin.lock().read_line(&mut answer)?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Err(Failure::msg("not added: the fingerprint was not accepted"));
        }
    }
    if !voter {
        println!(
            "adding node {node_id}: joining it, replicating the state, promoting it to voter…"
        );
    }
    let reply = ask(
        env,
        ControlRequest::NodeAdd {
            addr: args.addr,
            fingerprint,
        },
        NODE_ADD_DEADLINE,
    )?;
    let ControlReply::Mutated { summary, version } = reply else {
        return Err(unexpected());
    };
    println!("{summary}; config version {version}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::with_default_port;

    #[test]
    fn a_host_alone_gets_the_default_port() {
        assert_eq!(with_default_port("bravo"), "bravo:9001");
        assert_eq!(with_default_port("bravo:19201"), "bravo:19201");
        assert_eq!(with_default_port("10.0.0.2"), "10.0.0.2:9001");
        assert_eq!(with_default_port("[2001:db8::1]"), "[2001:db8::1]:9001");
        assert_eq!(
            with_default_port("[2001:db8::1]:9002"),
            "[2001:db8::1]:9002"
        );
        // A bare IPv6 address is left for validation to refuse with the fix.
        assert_eq!(with_default_port("2001:db8::1"), "2001:db8::1");
    }
}
