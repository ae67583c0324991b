//! The `qu` command line (clap). The only place errors become messages:
//! every failure prints one line on stderr and exits non-zero (SPEC §12).

mod table;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::init::{init_node, InitOptions};
use crate::config::{Env, StatePaths};
use crate::crypto::Fingerprint;
use crate::daemon::control::{self, ControlReply, ControlRequest};
use qu_raft::NodeId;

const ABOUT: &str = "qu: quorum-based uptime monitor. A few nodes watch the same HTTP, TCP and ICMP targets and vote; a target is DOWN only when a majority saw it fail twice in a row.";

/// Top-level command line.
#[derive(Debug, Parser)]
#[command(name = "qu", version, about = ABOUT, propagate_version = true)]
pub struct Cli {
    /// State directory [default: /etc/quptime as root, else $XDG_CONFIG_HOME/quptime or ~/.config/quptime]
    #[arg(
        long,
        global = true,
        env = "QUPTIME_DIR",
        value_name = "DIR",
        hide_env_values = true
    )]
    pub dir: Option<PathBuf>,
    /// Control socket [default: /var/run/quptime/quptime.sock as root, else $XDG_RUNTIME_DIR/quptime/quptime.sock]
    #[arg(
        long,
        global = true,
        env = "QUPTIME_SOCKET",
        value_name = "PATH",
        hide_env_values = true
    )]
    pub socket: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create this node's identity: RSA-3072 key, self-signed certificate, node.yaml
    Init(InitArgs),
    /// Run the daemon in the foreground (logs to stderr; stops on SIGTERM/SIGINT)
    Serve(ServeArgs),
    /// Show this node's identity and cluster state
    Status(JsonArg),
    /// Inspect or edit the local fingerprint trust store
    #[command(subcommand)]
    Trust(TrustCommand),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// HOST:PORT other nodes use to reach this one, e.g. alpha.example.com:9001
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: String,
    /// Address to listen on
    #[arg(long, default_value = crate::config::node::DEFAULT_BIND_ADDR, value_name = "ADDR")]
    pub bind: IpAddr,
    /// Port to listen on
    #[arg(long, default_value_t = crate::config::node::DEFAULT_PORT, value_name = "N")]
    pub port: u16,
    /// Pin the node id (1-16 hex digits) instead of deriving it from the key's fingerprint
    #[arg(long, value_name = "HEX")]
    pub node_id: Option<NodeId>,
    /// Only nodes with these fingerprints may claim this node while it is fresh (comma-separated SHA256:… values)
    #[arg(long, value_name = "SHA256:…", value_delimiter = ',')]
    pub join_from: Vec<Fingerprint>,
}

#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Log format on stderr; the level filter comes from RUST_LOG (default: info)
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// List the nodes this node pins (NODE_ID, ADVERTISE, FINGERPRINT, SOURCE, ADDED)
    List(JsonArg),
    /// Drop a node's entry: its connections are refused from then on
    Remove {
        /// Node id or a unique prefix of it
        node: String,
    },
}

/// A command's failure: the one line for stderr and the exit code.
struct Failure {
    message: String,
    code: u8,
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            message: e.to_string(),
            code: 1,
        }
    }
}

/// Entry point of the binary.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("qu: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn env_of(cli: &Cli) -> Env {
    let mut env = Env::from_process();
    if let Some(d) = &cli.dir {
        env.quptime_dir = Some(d.clone());
    }
    if let Some(s) = &cli.socket {
        env.quptime_socket = Some(s.clone());
    }
    env
}

fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, Failure> {
    let mut b = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    b.enable_all()
        .build()
        .map_err(|e| Failure::from(format!("cannot start the async runtime: {e}")))
}

fn dispatch(cli: Cli) -> Result<ExitCode, Failure> {
    let env = env_of(&cli);
    match cli.command {
        Command::Init(args) => cmd_init(&env, args),
        Command::Serve(args) => cmd_serve(&env, args),
        Command::Status(args) => {
            let reply = ask(&env, ControlRequest::Status, Duration::from_secs(10))?;
            let ControlReply::Status(s) = reply else {
                return Err(unexpected());
            };
            if args.json {
                print_json(&s)?;
            } else {
                println!("node         {}", s.node_id);
                println!("fingerprint  {}", s.fingerprint);
                println!("listen       {}", s.listen);
                println!("advertise    {}", s.advertise);
                println!("cluster      {}", s.cluster);
                println!(
                    "uptime       {}",
                    crate::config::duration::format(Duration::from_secs(s.uptime_secs))
                );
                println!("version      {}", s.version);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Trust(TrustCommand::List(args)) => {
            let ControlReply::TrustList { entries } =
                ask(&env, ControlRequest::TrustList, Duration::from_secs(10))?
            else {
                return Err(unexpected());
            };
            if args.json {
                print_json(&entries)?;
            } else {
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
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Trust(TrustCommand::Remove { node }) => {
            let ControlReply::TrustRemoved {
                entry,
                closed_connections,
                still_member,
            } = ask(
                &env,
                ControlRequest::TrustRemove { node },
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
                eprintln!("qu: warning: node {} is still a cluster member; this node now refuses its connections. Use 'qu node remove {}' to take it out of the cluster.", entry.node_id, entry.node_id);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn unexpected() -> Failure {
    Failure::from(
        "the daemon sent an unexpected reply (is the CLI the same version as the daemon?)",
    )
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(v)?;
    println!("{text}");
    Ok(())
}

fn ask(env: &Env, req: ControlRequest, deadline: Duration) -> Result<ControlReply, Failure> {
    let socket = env.socket_path()?;
    let rt = runtime(false)?;
    Ok(rt.block_on(control::request(&socket, &req, deadline))?)
}

fn cmd_init(env: &Env, args: InitArgs) -> Result<ExitCode, Failure> {
    let paths = StatePaths::new(env.state_dir()?);
    let opts = InitOptions {
        advertise: args.advertise,
        bind_addr: args.bind,
        bind_port: args.port,
        node_id: args.node_id,
        join_from: args.join_from,
    };
    let out = init_node(&paths, &opts)?;
    println!(
        "initialised node {} in {}",
        out.node.node_id,
        out.dir.display()
    );
    println!("node id      {}", out.node.node_id);
    println!("fingerprint  {}", out.fingerprint);
    println!("listen       {}", out.node.bind_socket());
    println!("advertise    {}", out.node.advertise);
    if !out.node.join_from.is_empty() {
        let list: Vec<String> = out.node.join_from.iter().map(|f| f.to_string()).collect();
        println!("join-from    {}", list.join(","));
    }
    println!("next: run 'qu serve'");
    Ok(ExitCode::SUCCESS)
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn cmd_serve(env: &Env, args: ServeArgs) -> Result<ExitCode, Failure> {
    init_logging(args.log_format);
    let opts = crate::daemon::ServeOptions {
        paths: StatePaths::new(env.state_dir()?),
        socket: env.socket_path()?,
        transport: crate::transport::TransportConfig::default(),
    };
    let rt = runtime(true)?;
    rt.block_on(crate::daemon::serve(opts))?;
    Ok(ExitCode::SUCCESS)
}
