//! The `qu` command line (clap). The only place errors become messages:
//! every failure prints one line on stderr and exits non-zero (SPEC §12).

mod alert;
mod alert_providers;
mod check;
mod check_kinds;
mod cluster;
mod completion;
mod logging;
mod node;
mod report;
mod silence;
mod status;
mod table;
mod trust;

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

const ABOUT: &str = "qu: quorum-based uptime monitor. A few nodes watch the same HTTP, TCP, ICMP, TLS and DNS targets and vote; a target is DOWN only when a majority saw it fail twice in a row.";

/// Top-level command line.
#[derive(Debug, Parser)]
#[command(name = "qu", version = crate::version::LONG, about = ABOUT, propagate_version = true)]
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

#[allow(clippy::large_enum_variant)] // command-line arguments, parsed once per run
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create this node's identity: RSA-3072 key, self-signed certificate, node.yaml
    Init(InitArgs),
    /// Run the daemon in the foreground (logs to stderr; stops on SIGTERM/SIGINT)
    Serve(ServeArgs),
    /// Show quorum, master, peers, check states and Raft progress (exit 0: quorum, 2: no quorum, 1: cannot tell)
    Status(JsonArg),
    /// Add, list and remove cluster nodes
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Add, list, show, edit, test, pause/resume and remove checks
    #[command(subcommand)]
    Check(check::CheckCommand),
    /// Add, list, edit, disable/enable, test and remove alert channels; the delivery log
    #[command(subcommand)]
    Alert(alert::AlertCommand),
    /// Silence checks for a while (maintenance, known outages)
    #[command(subcommand)]
    Silence(silence::SilenceCommand),
    /// Recurring maintenance windows (silences on a schedule)
    #[command(subcommand)]
    Maintenance(silence::MaintenanceCommand),
    /// Uptime and SLA per check over a window, from the committed history (the same numbers on every node)
    Report(report::ReportArgs),
    /// Cluster-wide settings: the DNS servers every node's probes use, how long history is kept
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Inspect or edit the local fingerprint trust store
    #[command(subcommand)]
    Trust(trust::TrustCommand),
    /// Print a shell completion script on stdout (e.g. qu completion bash > /etc/bash_completion.d/qu)
    Completion(completion::CompletionArgs),
    /// Write the man pages, one per command, into a directory
    Man(completion::ManArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// HOST:PORT other nodes use to reach this one, e.g. alpha.example.com:9001
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: String,
    /// Address to listen on
    #[arg(long, default_value = crate::config::node::DEFAULT_BIND_ADDR, value_name = "ADDR")]
    pub bind: IpAddr,
    /// Port to listen on [default: the port of --advertise]
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
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
    /// Raft timing: `wan` for nodes in different networks (heartbeat 500ms, election 2.5-5s), `lan`, or `fast` for tests
    #[arg(long, value_enum, default_value_t = crate::daemon::Timing::Wan)]
    pub timing: crate::daemon::Timing,
    /// How long a smaller live voter must be live before leadership moves to it [default: node.yaml's leader_cooldown, else 30s]
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub leader_cooldown: Option<Duration>,
    /// Local address probes leave from [default: node.yaml's probe_source, else chosen by routing]
    #[arg(long, value_name = "ADDR")]
    pub probe_source: Option<IpAddr>,
    /// Serve /metrics (Prometheus), /healthz, /readyz and the status page on this address, e.g. 127.0.0.1:9101 [default: node.yaml's http_listen, else off]
    #[arg(long, value_name = "IP:PORT")]
    pub http: Option<std::net::SocketAddr>,
    /// Serve only the status page and /readyz (never /metrics) on this address, to face the internet [default: node.yaml's http_public_listen, else off]
    #[arg(long, value_name = "IP:PORT")]
    pub http_public: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// `--if-version` for every mutating command.
#[derive(Debug, Args, Clone, Copy)]
pub struct IfVersion {
    /// Refuse unless the cluster's config version is exactly N (compare-and-set)
    #[arg(long, value_name = "N")]
    pub if_version: Option<u64>,
}

/// A command's failure: the one line for stderr and the exit code.
pub(crate) struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    /// A failure the CLI itself words.
    pub(crate) fn msg(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 1,
        }
    }
}

/// Any library error, with every cause it keeps (`crate::errors::chain`).
impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::msg(crate::errors::chain(&e))
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
        .map_err(|e| Failure::msg(format!("cannot start the async runtime: {e}")))
}

fn dispatch(cli: Cli) -> Result<ExitCode, Failure> {
    let env = env_of(&cli);
    match cli.command {
        Command::Init(args) => cmd_init(&env, args),
        Command::Serve(args) => cmd_serve(&env, args),
        Command::Status(args) => status::run(&env, args.json),
        Command::Node(cmd) => node::run(&env, cmd),
        Command::Check(cmd) => check::run(&env, cmd),
        Command::Alert(cmd) => alert::run(&env, cmd),
        Command::Silence(cmd) => silence::run_silence(&env, cmd),
        Command::Cluster(cmd) => cluster::run(&env, cmd),
        Command::Report(args) => report::run(&env, args),
        Command::Maintenance(cmd) => silence::run_maintenance(&env, cmd),
        Command::Trust(cmd) => trust::run(&env, cmd),
        Command::Completion(args) => completion::completion(args),
        Command::Man(args) => completion::man(args),
    }
}

pub(crate) fn unexpected() -> Failure {
    Failure::msg("the daemon sent an unexpected reply (is the CLI the same version as the daemon?)")
}

pub(crate) fn print_json<T: serde::Serialize>(v: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(v)?;
    println!("{text}");
    Ok(())
}

/// Sends one request to the local daemon.
pub(crate) fn ask(
    env: &Env,
    req: ControlRequest,
    deadline: Duration,
) -> Result<ControlReply, Failure> {
    let socket = env.socket_path()?;
    let rt = runtime(false)?;
    Ok(rt.block_on(control::request(&socket, &req, deadline))?)
}

/// Deadline for configuration mutations: the daemon answers within ~5 s
/// (no quorum) or once committed; the margin covers forwarding.
pub(crate) const MUTATION_DEADLINE: Duration = Duration::from_secs(15);

/// Sends a mutation and prints what changed and the new version.
pub(crate) fn mutate(env: &Env, req: ControlRequest) -> Result<ExitCode, Failure> {
    match ask(env, req, MUTATION_DEADLINE)? {
        ControlReply::Mutated { summary, version } => {
            println!("{summary}; config version {version}");
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(unexpected()),
    }
}

/// Parses a span of days (`7d`, `1d12h`, `36h`) for clap.
pub(crate) fn parse_span(s: &str) -> Result<Duration, String> {
    crate::config::duration::parse_span(s).map_err(|e| e.to_string())
}

/// A percentage as tables show it: `100`, `99.95`, `0` (at most two
/// decimals, never rounded up to 100).
pub(crate) fn percent(p: f64) -> String {
    let floored = (p * 100.0).floor() / 100.0;
    let text = format!("{floored:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Parses a Go duration for clap.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::config::duration::parse(s).map_err(|e| e.to_string())
}

fn cmd_init(env: &Env, args: InitArgs) -> Result<ExitCode, Failure> {
    let paths = StatePaths::new(env.state_dir()?);
    crate::config::node::validate_advertise(&args.advertise)?;
    let port = match args.port {
        Some(p) => p,
        None => crate::config::node::advertise_port(&args.advertise)
            .unwrap_or(crate::config::node::DEFAULT_PORT),
    };
    let opts = InitOptions {
        advertise: args.advertise,
        bind_addr: args.bind,
        bind_port: port,
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
    // Name the directory (and socket) the next command needs, when they
    // are not the defaults.
    let mut next = String::from("qu serve");
    if let Some(dir) = &env.quptime_dir {
        next.push_str(&format!(
            " --dir {}",
            shell_word(&dir.display().to_string())
        ));
    }
    if let Some(socket) = &env.quptime_socket {
        next.push_str(&format!(
            " --socket {}",
            shell_word(&socket.display().to_string())
        ));
    }
    println!("next: run '{next}'");
    Ok(ExitCode::SUCCESS)
}

/// `word` quoted for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%=,".contains(c))
    {
        word.to_string()
    } else {
        format!(
            "\"{}\"",
            word.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('$', "\\$")
                .replace('`', "\\`")
        )
    }
}

fn cmd_serve(env: &Env, args: ServeArgs) -> Result<ExitCode, Failure> {
    logging::init(args.log_format);
    let opts = crate::daemon::ServeOptions {
        paths: StatePaths::new(env.state_dir()?),
        socket: env.socket_path()?,
        transport: crate::transport::TransportConfig::default(),
        timing: args.timing,
        leader_cooldown: args.leader_cooldown,
        probe_source: args.probe_source,
        http: args.http,
        http_public: args.http_public,
    };
    let rt = runtime(true)?;
    rt.block_on(crate::daemon::serve(opts))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every argument of every command, with the path to it, that has no
    /// help text.
    fn undocumented(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                out.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_about().is_none() {
                out.push(format!("{path} {} (the command itself)", sub.get_name()));
            }
            undocumented(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        // clap checks every subcommand's definition (an argument's action
        // fitting its kind, conflicts naming real arguments, …).
        super::Cli::command().debug_assert();
    }

    #[test]
    fn every_command_and_argument_has_a_description() {
        let mut missing = Vec::new();
        undocumented(&super::Cli::command(), "qu", &mut missing);
        assert!(missing.is_empty(), "no --help text for: {missing:#?}");
    }

    #[test]
    fn family_help_lists_every_subcommand() {
        let mut cli = super::Cli::command();
        for family in ["check", "alert", "node", "trust"] {
            let cmd = cli.find_subcommand_mut(family).unwrap();
            let help = cmd.render_help().to_string();
            for sub in cmd.get_subcommands() {
                assert!(help.contains(sub.get_name()), "{family}: {help}");
            }
        }
    }
}
