//! `qu serve`: loads the node's state, binds the transport and the control
//! socket, and runs until SIGTERM/SIGINT (SPEC §3).
//!
//! Invariants: the daemon refuses to start (non-zero exit, one clear line)
//! when it cannot read its state or bind; on shutdown the control socket
//! file is removed.

pub mod control;
pub mod rpc;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::net::UnixStream;
use tokio::sync::watch;

use crate::config::node::NodeConfigError;
use crate::config::{NodeConfig, StatePaths};
use crate::crypto::{Identity, IdentityError};
use crate::transport::server::{ConnRegistry, Server};
use crate::transport::{Pool, SharedTrust, TransportConfig};
use crate::trust::{TrustError, TrustStore};
use control::{ControlError, ControlReply, ControlRequest, StatusReport};
use qu_raft::NodeId;

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
    Tls(#[from] crate::transport::tls::TlsConfigError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// Options of `qu serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub paths: StatePaths,
    pub socket: PathBuf,
    pub transport: TransportConfig,
}

/// The daemon's shared state, reached by the control socket handlers.
struct Daemon {
    paths: StatePaths,
    node: NodeConfig,
    identity: Identity,
    trust: SharedTrust,
    listen: String,
    started: Instant,
    registry: Arc<ConnRegistry>,
    pool: Arc<Pool>,
}

/// Runs the daemon until a termination signal.
pub async fn serve(opts: ServeOptions) -> Result<(), DaemonError> {
    let paths = opts.paths.clone();
    if !paths.node_file().exists() {
        return Err(DaemonError::NotInitialised(paths.dir.clone()));
    }
    let node = NodeConfig::load(&paths.node_file())?;
    let identity = Identity::load(&paths.keys_dir(), node.node_id)?;
    let trust: SharedTrust = Arc::new(RwLock::new(TrustStore::load(&paths.trust_file())?));

    let bind = node.bind_socket();
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| DaemonError::Bind {
            addr: bind.to_string(),
            source,
        })?;
    let control_listener = control::bind(&opts.socket).await?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let server = Server::start(
        listener,
        &identity,
        trust.clone(),
        Arc::new(rpc::MemberService { me: node.node_id }),
        Arc::new(rpc::StrangerService {
            identity: identity.clone(),
            advertise: node.advertise.clone(),
        }),
        opts.transport.clone(),
        shutdown_rx.clone(),
    )?;
    let daemon = Arc::new(Daemon {
        listen: server.local_addr.to_string(),
        registry: server.registry.clone(),
        pool: Arc::new(Pool::new(identity.clone(), opts.transport.clone())),
        paths,
        node,
        identity,
        trust,
        started: Instant::now(),
    });
    tracing::info!(
        node = %daemon.node.node_id,
        fingerprint = %daemon.identity.fingerprint,
        listen = %daemon.listen,
        advertise = %daemon.node.advertise,
        socket = %opts.socket.display(),
        "qu serving"
    );

    let control_task = tokio::spawn(control_loop(control_listener, daemon.clone(), shutdown_rx));

    let outcome = wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    server.abort();
    control_task.abort();
    if let Err(e) = std::fs::remove_file(&opts.socket) {
        tracing::warn!(
            "cannot remove the control socket {}: {e}",
            opts.socket.display()
        );
    }
    outcome
}

async fn wait_for_signal() -> Result<(), DaemonError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM"),
        _ = int.recv() => tracing::info!("received SIGINT"),
    }
    Ok(())
}

async fn control_loop(
    listener: tokio::net::UnixListener,
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

impl Daemon {
    async fn handle(self: &Arc<Self>, req: ControlRequest) -> Result<ControlReply, ControlError> {
        match req {
            ControlRequest::Status => Ok(ControlReply::Status(self.status())),
            ControlRequest::TrustList => {
                let entries = self.read_trust()?.entries().to_vec();
                Ok(ControlReply::TrustList { entries })
            }
            ControlRequest::TrustRemove { node } => self.trust_remove(&node).await,
        }
    }

    fn status(&self) -> StatusReport {
        StatusReport {
            node_id: self.node.node_id,
            fingerprint: self.identity.fingerprint.to_string(),
            advertise: self.node.advertise.clone(),
            listen: self.listen.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_secs: self.started.elapsed().as_secs(),
            cluster: "fresh".into(),
        }
    }

    fn read_trust(&self) -> Result<std::sync::RwLockReadGuard<'_, TrustStore>, ControlError> {
        self.trust.read().map_err(|_| ControlError {
            message: "trust store lock poisoned".into(),
        })
    }

    async fn trust_remove(self: &Arc<Self>, text: &str) -> Result<ControlReply, ControlError> {
        let err = |message: String| ControlError { message };
        let node = {
            let store = self.read_trust()?;
            NodeId::resolve(text, store.node_ids().iter())
                .map_err(|e| err(format!("{e} (see 'qu trust list')")))?
        };
        // Persist first, then publish: a failed write changes nothing.
        let this = self.clone();
        let (entry, updated) = tokio::task::spawn_blocking(move || {
            let mut updated = this.read_trust()?.clone();
            let entry = updated
                .remove(node)
                .ok_or_else(|| err(format!("node {node} is not in the trust store")))?;
            updated
                .save(&this.paths.trust_file())
                .map_err(|e| err(e.to_string()))?;
            Ok::<_, ControlError>((entry, updated))
        })
        .await
        .map_err(|e| err(format!("trust store update failed: {e}")))??;
        *self
            .trust
            .write()
            .map_err(|_| err("trust store lock poisoned".into()))? = updated;
        self.pool.disconnect(node);
        let closed_connections = self.registry.close_peer(node);
        tracing::warn!(%node, fingerprint = %entry.fingerprint, closed_connections, "removed from the trust store; its connections are refused from now on");
        Ok(ControlReply::TrustRemoved {
            entry,
            closed_connections,
            still_member: false,
        })
    }
}
