//! `qu serve`: loads the node's state, opens the Raft store, binds the
//! transport and the control socket, and runs until SIGTERM/SIGINT
//! (SPEC §3).
//!
//! Startup order matters: storage and Raft exist before the transport
//! serves, so the first request already finds them. Invariants: the daemon
//! refuses to start (non-zero exit, one clear line) when it cannot read its
//! state or bind; on shutdown Raft stops and the control socket file is
//! removed.

mod access;
mod alerting;
mod claims;
pub mod clock;
mod cluster;
pub mod control;
mod handlers;
mod history;
mod leader;
mod leadership;
pub mod liveness;
mod membership;
mod mirror;
mod muting;
mod notify;
pub mod policy;
mod probe_now;
mod probing;
mod raft_network;
mod rollups;
pub mod routing;
pub mod rpc;
mod service;
pub mod supervisor;
mod trust_sync;
pub mod view;
mod web;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use tokio::net::UnixStream;
use tokio::sync::watch;

use crate::config::node::NodeConfigError;
use crate::config::{NodeConfig, StatePaths};
use crate::crypto::{Identity, IdentityError};
use crate::transport::server::{ConnRegistry, Server};
use crate::transport::{Pool, TransportConfig};
use crate::trust::{TrustError, TrustService, TrustStore};
use claims::Claims;
use control::ControlError;
use liveness::Liveness;
use qu_raft::store::{Applied, LogStore};
use qu_raft::types::Raft;

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("no node identity in {}: run 'qu init --advertise HOST:PORT' first (or point QUPTIME_DIR / --dir at the node's state directory)", .0.display())]
    NotInitialised(PathBuf),
    #[error("cannot read the node's state: {0}")]
    NodeConfig(#[from] NodeConfigError),
    #[error("cannot read the node's keys: {0}")]
    Identity(#[from] IdentityError),
    #[error("cannot read the trust store: {0}")]
    Trust(#[from] TrustError),
    #[error("cannot listen on {addr}: {source} (is another process using the port? change bind_port in node.yaml)")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Control(#[from] control::BindError),
    #[error("{0}")]
    Http(#[from] crate::web::BindError),
    #[error("{0}")]
    Tls(#[from] crate::transport::tls::TlsConfigError),
    #[error("{0} (is another 'qu serve' using this state directory?)")]
    Storage(std::io::Error),
    #[error("{0}")]
    Rollup(#[from] crate::checks::rollup::RollupError),
    #[error("{0}")]
    Claim(#[from] claims::ClaimsError),
    #[error("{0}")]
    Files(#[from] crate::config::secure::InsecureError),
    #[error("{0}")]
    Locked(#[from] crate::config::lock::LockError),
    #[error("cannot start Raft: {0}")]
    Raft(String),
    #[error("{0}")]
    Probe(#[from] crate::checks::probe::ProbeSetupError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("{0}; exiting so the service manager restarts qu")]
    DutyFailed(String),
}

/// Raft and liveness timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Timing {
    /// Nodes in different networks (RTT up to ~150 ms): heartbeat 500ms, election 2.5–5s.
    #[default]
    Wan,
    /// One site: heartbeat 150ms, election 750ms–1.5s.
    Lan,
    /// Tests on loopback: heartbeat 100ms, election 400–800ms.
    Fast,
}

impl Timing {
    fn millis(self) -> (u64, u64, u64) {
        match self {
            Timing::Wan => (500, 2500, 5000),
            Timing::Lan => (150, 750, 1500),
            Timing::Fast => (100, 400, 800),
        }
    }

    /// The openraft configuration of this profile.
    pub fn raft_config(self) -> openraft::Config {
        let (heartbeat, min, max) = self.millis();
        openraft::Config {
            cluster_name: "qu".into(),
            heartbeat_interval: heartbeat,
            election_timeout_min: min,
            election_timeout_max: max,
            // A cut-off node must not keep raising its term.
            enable_pre_vote: Some(true),
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(1000),
            // Entries of batched flips reach ~40 KiB: keep an append RPC
            // well inside the 16 MiB frame.
            max_payload_entries: 100,
            max_in_snapshot_log_to_keep: 200,
            ..Default::default()
        }
    }

    /// How often members ping each other.
    pub fn ping_interval(self) -> Duration {
        Duration::from_millis(self.millis().0.max(200))
    }

    /// A peer not heard from for this long is not live.
    pub fn liveness_window(self) -> Duration {
        Duration::from_millis(self.millis().1)
    }
}

/// Options of `qu serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub paths: StatePaths,
    pub socket: PathBuf,
    pub transport: TransportConfig,
    pub timing: Timing,
    /// Overrides node.yaml's `leader_cooldown`.
    pub leader_cooldown: Option<Duration>,
    /// Local address probes leave from (overrides node.yaml's `probe_source`).
    pub probe_source: Option<std::net::IpAddr>,
    /// The HTTP listeners (override node.yaml's `http_listen` and
    /// `http_public_listen`).
    pub http: Option<std::net::SocketAddr>,
    pub http_public: Option<std::net::SocketAddr>,
}

pub use crate::ids::random_id;

/// Default leadership cooldown (SPEC §7).
pub const DEFAULT_LEADER_COOLDOWN: Duration = Duration::from_secs(30);

/// Test hook: when `QU_FAILPOINT` names this point, the process aborts
/// here, as a crash at exactly this step would.
pub(crate) fn failpoint(name: &str) {
    if std::env::var("QU_FAILPOINT").as_deref() == Ok(name) {
        eprintln!("qu: failpoint {name} reached: aborting");
        std::process::abort();
    }
}

/// The log level this node reports. `QU_FAILPOINT=report-level-N` makes it
/// pose as a node of an older release reading level N (tests of the level
/// gate).
pub(crate) fn reported_level() -> u32 {
    std::env::var("QU_FAILPOINT")
        .ok()
        .and_then(|f| f.strip_prefix("report-level-")?.parse::<u32>().ok())
        .filter(|n| *n >= 1)
        .map_or(qu_raft::state::LOG_LEVEL, |n| {
            n.min(qu_raft::state::LOG_LEVEL)
        })
}

/// Test hook: true the first time this process passes the point named by
/// `QU_FAILPOINT`.
pub(crate) fn failpoint_once(name: &str) -> bool {
    static FIRED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    std::env::var("QU_FAILPOINT").as_deref() == Ok(name)
        && !FIRED.swap(true, std::sync::atomic::Ordering::SeqCst)
}

/// Test hook: panics here the first time (`QU_FAILPOINT=NAME`) or every
/// time (`QU_FAILPOINT=NAME-always`), as a bug in a duty would.
pub(crate) fn failpoint_panic(name: &str) {
    let always = std::env::var("QU_FAILPOINT").is_ok_and(|v| v == format!("{name}-always"));
    if always || failpoint_once(name) {
        panic!("failpoint {name}");
    }
}

/// Test hook: when `QU_FAILPOINT` names this point, the task waits here
/// for `QU_FAILPOINT_HOLD_MS` (default 20 s), as a step that stalls would.
pub(crate) async fn failpoint_hold(name: &str) {
    if std::env::var("QU_FAILPOINT").as_deref() == Ok(name) {
        let ms = std::env::var("QU_FAILPOINT_HOLD_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000);
        tracing::warn!("failpoint {name} reached: holding for {ms} ms");
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// The daemon's composition root: what the handlers and duties share.
///
/// Three kinds of field, and no other: this node's fixed facts (paths,
/// node.yaml, identity, timing, transport settings); shared handles whose
/// owners live elsewhere (Raft and its applied state, the connection pool
/// and registry, liveness); and components that each own their mutable
/// state and are its only writer — `trust` (trust.yaml), `membership`
/// (claim, joins and adds in progress, reconciliation), `leadership` (the
/// SPEC §7 policy), `aggregator` (the leader's rounds, written by the
/// report path), `alerting` (sends, confirmations), `supervisor` (duty
/// health). ARCHITECTURE.md → "Who owns what" lists them.
pub(crate) struct Daemon {
    paths: StatePaths,
    node: NodeConfig,
    identity: Identity,
    /// The one writer of trust.yaml and of what the TLS verifiers read.
    trust: Arc<TrustService>,
    listen: String,
    started: Instant,
    timing: Timing,
    transport: TransportConfig,
    registry: Arc<ConnRegistry>,
    pool: Arc<Pool>,
    liveness: Arc<Liveness>,
    raft: Raft,
    applied: watch::Receiver<Arc<Applied>>,
    log: LogStore,
    /// Who belongs to the cluster, and this node's standing in it.
    membership: membership::Membership,
    /// The leadership policy and what status shows of it.
    leadership: leadership::Leadership,
    /// The leader's round state (empty on followers).
    aggregator: std::sync::Mutex<crate::checks::aggregate::Aggregator>,
    scheduler_stats: Arc<crate::checks::scheduler::SchedulerStats>,
    /// Runs and watches the background duties.
    supervisor: Arc<supervisor::Supervisor>,
    /// Alert dispatch on the leader.
    alerting: alerting::Dispatcher,
    /// The probers, also for `qu check test` (probes outside the rounds).
    probers: Arc<crate::checks::probe::Probers>,
    /// Members' clock offsets (written by the ping loop).
    clocks: clock::Clocks,
}

impl Daemon {
    fn me(&self) -> qu_raft::NodeId {
        self.node.node_id
    }

    fn state(&self) -> Arc<Applied> {
        self.applied.borrow().clone()
    }
}

/// Runs the daemon until a termination signal.
pub async fn serve(opts: ServeOptions) -> Result<(), DaemonError> {
    let paths = opts.paths.clone();
    if !paths.node_file().exists() {
        return Err(DaemonError::NotInitialised(paths.dir.clone()));
    }
    crate::config::secure::restrict_umask();
    // Handlers first: once the control socket answers, a SIGTERM must mean
    // a clean stop, never the default action (killed by the signal).
    let signals = Signals::install()?;
    crate::config::secure::check_state_dir(&paths.dir)?;
    // One daemon per state directory, held until serve returns.
    let _lock = crate::config::lock::StateLock::acquire(&paths.dir)?;
    crate::config::secure::tighten_raft_dir(&paths.raft_dir())?;
    crate::config::secure::tighten_raft_dir(&paths.rollup_dir())?;
    let node = NodeConfig::load(&paths.node_file())?;
    let identity = Identity::load(&paths.keys_dir(), node.node_id)?;
    let pool = Arc::new(Pool::new(identity.clone(), opts.transport.clone()));
    let registry = Arc::new(ConnRegistry::default());
    let trust = {
        let (pool, registry) = (pool.clone(), registry.clone());
        Arc::new(TrustService::new(
            paths.trust_file(),
            TrustStore::load(&paths.trust_file())?,
            Box::new(move |node| {
                pool.disconnect(node);
                registry.close_peer(node);
            }),
        ))
    };

    let bind = node.bind_socket();
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| DaemonError::Bind {
            addr: bind.to_string(),
            source,
        })?;
    let listen = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| bind.to_string());

    let raft_dir = paths.raft_dir();
    let (log, sm, local) = tokio::task::spawn_blocking(move || qu_raft::store::open(&raft_dir))
        .await
        .map_err(|e| DaemonError::Storage(std::io::Error::other(e)))?
        .map_err(DaemonError::Storage)?;
    let applied = sm.subscribe();
    let rollup_dir = paths.rollup_dir();
    let rollups =
        tokio::task::spawn_blocking(move || crate::checks::rollup::Rollups::open(&rollup_dir))
            .await
            .map_err(|e| DaemonError::Storage(std::io::Error::other(e)))??;
    let has_history = log.has_history().map_err(DaemonError::Storage)?;
    let claims = Claims::open(paths.claim_file(), local, has_history).await?;
    let removed = claims.is_removed();
    let cooldown = opts
        .leader_cooldown
        .or(node.leader_cooldown)
        .unwrap_or(DEFAULT_LEADER_COOLDOWN);

    let probers = Arc::new(crate::checks::probe::Probers::new(
        opts.probe_source.or(node.probe_source),
    )?);
    let alert_http = crate::alerts::http_client().map_err(|e| {
        DaemonError::Probe(crate::checks::probe::ProbeSetupError::new(
            crate::errors::chain(&e),
        ))
    })?;
    let control_listener = control::bind(&opts.socket).await?;
    let mut http_listeners = Vec::new();
    for (addr, exposure) in [
        (opts.http.or(node.http_listen), crate::web::Exposure::Full),
        (
            opts.http_public.or(node.http_public_listen),
            crate::web::Exposure::Public,
        ),
    ] {
        if let Some(addr) = addr {
            let l = crate::web::bind(addr).await?;
            tracing::info!(%addr, ?exposure, "HTTP listener");
            http_listeners.push((Arc::new(l), exposure));
        }
    }

    let liveness = Arc::new(Liveness::new(node.node_id, opts.timing.liveness_window()));
    let network = raft_network::Network {
        pool: pool.clone(),
        liveness: liveness.clone(),
    };
    let config = opts
        .timing
        .raft_config()
        .validate()
        .map_err(|e| DaemonError::Raft(e.to_string()))?;
    let raft = Raft::new(node.node_id, Arc::new(config), network, log.clone(), sm)
        .await
        .map_err(|e| DaemonError::Raft(e.to_string()))?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let daemon = Arc::new(Daemon {
        paths,
        node,
        identity,
        trust,
        listen,
        started: Instant::now(),
        timing: opts.timing,
        transport: opts.transport.clone(),
        registry: registry.clone(),
        pool,
        liveness,
        raft,
        applied,
        log,
        membership: membership::Membership::new(claims, opts.timing),
        leadership: leadership::Leadership::new(cooldown),
        aggregator: Default::default(),
        scheduler_stats: Arc::new(crate::checks::scheduler::SchedulerStats::with_rollups(
            rollups,
        )),
        supervisor: supervisor::Supervisor::new(),
        alerting: alerting::Dispatcher::new(alert_http),
        probers: probers.clone(),
        clocks: clock::Clocks::default(),
    });
    if removed {
        let _ = daemon.raft.shutdown().await;
    }
    // Trust equals the replicated membership before anyone is served.
    daemon.sync_trust().await;

    let server = Server::start(
        listener,
        &daemon.identity,
        daemon.trust.subscribe(),
        (
            Arc::new(service::MemberService(daemon.clone())),
            Arc::new(service::StrangerService(daemon.clone())),
        ),
        opts.transport.clone(),
        registry,
        shutdown_rx.clone(),
    )?;

    daemon.log_startup(&opts.socket);
    let (results_tx, results_rx) = tokio::sync::mpsc::channel(probing::REPORT_QUEUE);
    // The mirror is awaited at shutdown (its last cluster.yaml write), not aborted.
    let mirror = tokio::spawn(
        mirror::Mirror {
            paths: daemon.paths.clone(),
        }
        .run(daemon.applied.clone(), shutdown_rx.clone()),
    );
    // Every duty runs under the supervisor: restarted when it ends on its
    // own, shown in `qu status`, and the daemon exits if one cannot live.
    let sup = daemon.supervisor.clone();
    let control_listener = Arc::new(control_listener);
    let results_rx = Arc::new(tokio::sync::Mutex::new(results_rx));
    let probers_for = probers.clone();
    let duty = |name: &'static str, f: fn(Arc<Daemon>, watch::Receiver<bool>) -> DutyFuture| {
        let (d, rx) = (daemon.clone(), shutdown_rx.clone());
        sup.spawn(name, shutdown_rx.clone(), move || f(d.clone(), rx.clone()))
    };
    let tasks = vec![
        {
            let (d, rx, l) = (
                daemon.clone(),
                shutdown_rx.clone(),
                control_listener.clone(),
            );
            sup.spawn("control", shutdown_rx.clone(), move || {
                control_loop(l.clone(), d.clone(), rx.clone())
            })
        },
        duty("ping", |d, rx| Box::pin(cluster::ping_loop(d, rx))),
        duty("trust", |d, rx| {
            Box::pin(trust_sync::trust_sync_loop(d, rx))
        }),
        duty("removal", |d, rx| {
            Box::pin(membership::removal_watch(d, rx))
        }),
        duty("policy", |d, rx| Box::pin(leadership::policy_loop(d, rx))),
        duty("rollups", |d, rx| Box::pin(rollups::flush_loop(d, rx))),
        // Verdicts, alert dispatch and reconciliation: only while leading.
        duty("leader", |d, rx| Box::pin(leader::leader_duties(d, rx))),
        {
            let (d, rx, tx) = (daemon.clone(), shutdown_rx.clone(), results_tx.clone());
            sup.spawn("probe", shutdown_rx.clone(), move || {
                probing::scheduler_loop(
                    d.clone(),
                    probers_for.clone(),
                    tx.clone(),
                    d.scheduler_stats.clone(),
                    rx.clone(),
                )
            })
        },
        {
            let (d, results) = (daemon.clone(), results_rx.clone());
            sup.spawn("report", shutdown_rx.clone(), move || {
                probing::report_loop(d.clone(), results.clone(), d.scheduler_stats.clone())
            })
        },
    ];
    let mut tasks = tasks;
    for (i, (listener, exposure)) in http_listeners.into_iter().enumerate() {
        let (d, rx) = (daemon.clone(), shutdown_rx.clone());
        let name = if i == 0 && exposure == crate::web::Exposure::Full {
            "http"
        } else {
            "http-public"
        };
        tasks.push(sup.spawn(name, shutdown_rx.clone(), move || {
            let source: Arc<dyn crate::web::Source> = d.clone();
            Box::pin(crate::web::serve(
                listener.clone(),
                exposure,
                source,
                rx.clone(),
            ))
        }));
    }
    drop(results_tx);
    notify::ready(format!("serving node {} on {}", daemon.me(), daemon.listen)).await;
    let watchdog = notify::spawn_watchdog();

    let outcome = tokio::select! {
        () = signals.wait() => Ok(()),
        why = daemon.supervisor.given_up() => Err(DaemonError::DutyFailed(why)),
    };
    tracing::info!("shutting down");
    notify::stopping().await;
    if let Some(w) = watchdog {
        w.abort();
    }
    let _ = shutdown_tx.send(true);
    server.abort();
    for t in tasks {
        t.abort();
    }
    // What the probes counted since the last minute's flush (a crash
    // loses it; a clean stop does not).
    if tokio::time::timeout(
        Duration::from_secs(5),
        rollups::flush(&daemon.scheduler_stats),
    )
    .await
    .is_err()
    {
        tracing::warn!("the probe rollups were not written before shutdown");
    }
    if tokio::time::timeout(Duration::from_secs(5), mirror)
        .await
        .is_err()
    {
        tracing::warn!("cluster.yaml was not rewritten before shutdown");
    }
    if !daemon.membership.is_removed() {
        if let Err(e) = daemon.raft.shutdown().await {
            tracing::warn!("Raft did not stop cleanly: {e}");
        }
    }
    if let Err(e) = std::fs::remove_file(&opts.socket) {
        tracing::warn!(
            "cannot remove the control socket {}: {e}",
            opts.socket.display()
        );
    }
    outcome
}

impl Daemon {
    fn log_startup(&self, socket: &std::path::Path) {
        tracing::info!(
            node = %self.node.node_id,
            fingerprint = %self.identity.fingerprint,
            listen = %self.listen,
            advertise = %self.node.advertise,
            socket = %socket.display(),
            timing = ?self.timing,
            leader_cooldown = %crate::config::duration::format(self.leadership.cooldown()),
            "qu serving"
        );
        if self.membership.is_removed() {
            tracing::warn!("this node was removed from its cluster and does not serve it; to re-join, re-initialise it (qu init) and add it again from a member");
        } else if self.membership.standing() == claims::Standing::Wiped {
            tracing::warn!("this node belongs to a cluster but its raft/ data is gone (wiped?): it serves no cluster traffic until its cluster re-adds it ('qu node remove {}' then 'qu node add' on a member)", self.me());
        } else if self.membership.standing() == claims::Standing::Fresh
            && !matches!(self.log.has_history(), Ok(true))
        {
            if self.node.join_from.is_empty() {
                tracing::warn!("this node is fresh and CLAIMABLE: the first cluster that runs 'qu node add' on it will own it (restrict with 'qu init --join-from')");
            } else {
                let list: Vec<String> = self.node.join_from.iter().map(|f| f.to_string()).collect();
                tracing::info!(
                    "this node is fresh; only {} may add it to a cluster",
                    list.join(", ")
                );
            }
        }
    }
}

/// SIGTERM and SIGINT, registered before the daemon answers anything.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Self, DaemonError> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).map_err(DaemonError::Signals)?,
            int: signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("received SIGTERM"),
            _ = self.int.recv() => tracing::info!("received SIGINT"),
        }
    }
}

/// A supervised duty's future.
type DutyFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

async fn control_loop(
    listener: Arc<tokio::net::UnixListener>,
    daemon: Arc<Daemon>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(control_conn(stream, daemon.clone()));
                }
                Err(e) => {
                    tracing::warn!("control socket accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

async fn control_conn(mut stream: UnixStream, daemon: Arc<Daemon>) {
    // File permissions are the guard; check who is calling all the same.
    let me = crate::config::secure::euid();
    match stream.peer_cred().map(|c| c.uid()) {
        Ok(uid) if crate::config::secure::daemon_accepts(uid, me) => {}
        Ok(uid) => {
            tracing::warn!(uid, "refused a control connection from another user");
            let _ = control::write_reply(
                &mut stream,
                &Err(ControlError {
                    message: format!("this daemon serves only uid {me} and root, not uid {uid}"),
                }),
            )
            .await;
            return;
        }
        Err(e) => {
            tracing::warn!("refused a control connection: cannot read its credentials: {e}");
            return;
        }
    }
    let req = match control::read_request(&mut stream, Duration::from_secs(5)).await {
        Ok(r) => r,
        Err(message) => {
            let _ = control::write_reply(&mut stream, &Err(ControlError { message })).await;
            return;
        }
    };
    let reply = daemon.handle(req).await;
    let _ = control::write_reply(&mut stream, &reply).await;
}
