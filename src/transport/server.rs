//! The transport listener: admits TCP connections (see `admission`), picks
//! the path by ALPN, completes the TLS handshake within its deadline, then
//! serves multiplexed requests.
//!
//! Invariants:
//! - Unauthenticated connections are held only within admission's budgets:
//!   a ClientHello within `client_hello_timeout`, the handshake within
//!   `handshake_timeout`, a stranger for at most `stranger_lifetime`; a full
//!   budget evicts its oldest holder.
//! - A member connection is served only after its certificate was checked
//!   against the trust store; its `PeerIdentity` comes from that check.
//! - A frame over the size limit (64 KiB for strangers) or that is not JSON
//!   gets a `fatal` reply and the connection is dropped; other connections
//!   are unaffected. A partly read frame is never lost to a deadline: the
//!   reader resumes, and the connection times out on inactivity only.
//! - A `forbidden` answer is the last frame on its connection.
//! - One slow handler never delays another request on the same connection:
//!   each request runs in its own task and responses go out as they finish.
//!   A peer that stops reading is dropped after `write_timeout`, and a
//!   connection told to close (`ConnRegistry::close_peer`) ends at once,
//!   whatever it was waiting for.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio_rustls::LazyConfigAcceptor;

use super::admission::{Admission, Phase, Ticket};
use super::frame::{write_frame, FrameError, FrameReader};
use super::tls::{self, ALPN_HELLO, ALPN_MEMBER};
use super::wire::{encode_fatal, encode_response, RequestFrame, RpcError, RpcErrorCode};
use super::{PeerIdentity, Service, SharedTrust, Stranger, TransportConfig};
use crate::crypto::cert::fingerprint_of;
use crate::crypto::Identity;
use qu_raft::NodeId;

/// Open member connections by peer, so they can be closed when the peer
/// loses trust.
#[derive(Default)]
pub struct ConnRegistry {
    next: AtomicU64,
    conns: Mutex<HashMap<NodeId, HashMap<u64, Arc<Notify>>>>,
}

impl ConnRegistry {
    fn register(&self, node: NodeId) -> (u64, Arc<Notify>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let kill = Arc::new(Notify::new());
        if let Ok(mut map) = self.conns.lock() {
            map.entry(node).or_default().insert(id, kill.clone());
        }
        (id, kill)
    }

    fn unregister(&self, node: NodeId, id: u64) {
        if let Ok(mut map) = self.conns.lock() {
            if let Some(set) = map.get_mut(&node) {
                set.remove(&id);
                if set.is_empty() {
                    map.remove(&node);
                }
            }
        }
    }

    /// Closes every open connection from `node`. Returns how many.
    pub fn close_peer(&self, node: NodeId) -> usize {
        let killed = self
            .conns
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&node))
            .unwrap_or_default();
        for kill in killed.values() {
            kill.notify_one();
        }
        killed.len()
    }

    /// How many member connections are open per peer.
    pub fn open_counts(&self) -> HashMap<NodeId, usize> {
        self.conns
            .lock()
            .map(|m| m.iter().map(|(k, v)| (*k, v.len())).collect())
            .unwrap_or_default()
    }
}

/// Everything a connection task needs.
struct Ctx<M, S> {
    cfg: TransportConfig,
    trust: SharedTrust,
    member_tls: Arc<rustls::ServerConfig>,
    stranger_tls: Arc<rustls::ServerConfig>,
    member: Arc<M>,
    stranger: Arc<S>,
    admission: Arc<Admission>,
    registry: Arc<ConnRegistry>,
}

/// A running transport server.
pub struct Server {
    pub local_addr: SocketAddr,
    pub registry: Arc<ConnRegistry>,
    pub admission: Arc<Admission>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Starts serving on an already bound listener until `shutdown` turns
    /// true: `member` answers pinned peers, `stranger` the hello path.
    pub fn start<M, S>(
        listener: TcpListener,
        identity: &Identity,
        trust: SharedTrust,
        (member, stranger): (Arc<M>, Arc<S>),
        cfg: TransportConfig,
        registry: Arc<ConnRegistry>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<Server, tls::TlsConfigError>
    where
        M: Service<Caller = PeerIdentity>,
        S: Service<Caller = Stranger>,
    {
        let local_addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let ctx = Arc::new(Ctx {
            member_tls: tls::member_server_config(identity, trust.clone())?,
            stranger_tls: tls::stranger_server_config(identity)?,
            admission: Admission::new(cfg.admission.clone()),
            cfg,
            trust,
            member,
            stranger,
            registry: registry.clone(),
        });
        let admission = ctx.admission.clone();
        let task = tokio::spawn(async move {
            let mut last_warned: Option<tokio::time::Instant> = None;
            loop {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, addr)) => {
                            let ticket = match ctx.admission.admit(addr.ip()) {
                                Ok(t) => t,
                                Err(why) => {
                                    // Under a flood, say so once in a while, not per socket.
                                    let now = tokio::time::Instant::now();
                                    if last_warned.is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(10)) {
                                        tracing::warn!(%addr, "refusing connections: {why}");
                                        last_warned = Some(now);
                                    }
                                    continue;
                                }
                            };
                            let _ = tcp.set_nodelay(true);
                            tokio::spawn(handle(tcp, addr, ctx.clone(), ticket));
                        }
                        Err(e) => {
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        });
        Ok(Server {
            local_addr,
            registry,
            admission,
            task,
        })
    }

    /// Stops accepting; open connections end on their own deadlines.
    pub fn abort(&self) {
        self.task.abort();
    }
}

enum Path {
    Member,
    Stranger,
}

async fn handle<M, S>(tcp: TcpStream, addr: SocketAddr, ctx: Arc<Ctx<M, S>>, ticket: Ticket)
where
    M: Service<Caller = PeerIdentity>,
    S: Service<Caller = Stranger>,
{
    let handshake = async {
        let start = tokio::time::timeout(
            ctx.cfg.client_hello_timeout,
            LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp),
        )
        .await
        .map_err(|_| format!("no ClientHello within {:?}", ctx.cfg.client_hello_timeout))?
        .map_err(|e| format!("bad client hello: {e}"))?;
        let hello = start.client_hello();
        let offered: Vec<Vec<u8>> = hello
            .alpn()
            .map(|it| it.map(|p| p.to_vec()).collect())
            .unwrap_or_default();
        let path = if offered.iter().any(|p| p == ALPN_MEMBER) {
            Path::Member
        } else if offered.iter().any(|p| p == ALPN_HELLO) {
            Path::Stranger
        } else {
            return Err("client offered no qu protocol (ALPN)".to_string());
        };
        let config = match path {
            Path::Member => {
                ticket.promote(Phase::MemberHandshake);
                ctx.member_tls.clone()
            }
            Path::Stranger => {
                ticket.promote(Phase::Hello);
                ctx.stranger_tls.clone()
            }
        };
        let stream = start
            .into_stream(config)
            .await
            .map_err(|e| format!("handshake failed: {e}"))?;
        Ok((path, stream))
    };
    let handshake = tokio::time::timeout(ctx.cfg.handshake_timeout, handshake);
    let (path, stream) = tokio::select! {
        _ = ticket.evicted() => {
            tracing::debug!(%addr, "dropping connection: evicted to admit a newer one");
            return;
        }
        r = handshake => match r {
            Err(_) => {
                tracing::debug!(%addr, "dropping connection: no TLS handshake within {:?}", ctx.cfg.handshake_timeout);
                return;
            }
            Ok(Err(why)) => {
                tracing::debug!(%addr, "dropping connection: {why}");
                return;
            }
            Ok(Ok(v)) => v,
        }
    };
    let peer_cert = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.clone().into_owned());
    match path {
        Path::Member => {
            // The verifier already checked; look again to bind the identity
            // the handler will see to this very certificate.
            let Some(cert) = peer_cert else { return };
            let (node_id, fingerprint) = match tls::check_member_cert(&ctx.trust, &cert) {
                Ok(v) => v,
                Err(why) => {
                    tracing::warn!(%addr, "refused member connection: {why}");
                    return;
                }
            };
            drop(ticket);
            let (conn_id, kill) = ctx.registry.register(node_id);
            let caller = PeerIdentity {
                node_id,
                fingerprint,
            };
            let limits = Limits {
                max_frame: ctx.cfg.max_frame,
                max_in_flight: ctx.cfg.max_in_flight,
            };
            serve_conn(stream, caller, ctx.member.clone(), &ctx.cfg, limits, kill).await;
            ctx.registry.unregister(node_id, conn_id);
        }
        Path::Stranger => {
            let fingerprint = peer_cert.as_ref().and_then(|c| fingerprint_of(c).ok());
            let caller = Stranger {
                fingerprint,
                cert: peer_cert,
            };
            let kill = Arc::new(Notify::new());
            let limits = Limits {
                max_frame: ctx.cfg.stranger_max_frame,
                max_in_flight: ctx.cfg.stranger_max_in_flight,
            };
            let serve = tokio::time::timeout(
                ctx.cfg.stranger_lifetime,
                serve_conn(stream, caller, ctx.stranger.clone(), &ctx.cfg, limits, kill),
            );
            tokio::select! {
                _ = ticket.evicted() => tracing::debug!(%addr, "closing a hello connection: evicted to admit a newer one"),
                _ = serve => {}
            }
            drop(ticket);
        }
    }
}

/// Frame size and concurrency of one connection.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_frame: usize,
    max_in_flight: usize,
}

enum Outgoing {
    Frame(Vec<u8>),
    /// Send this frame, then close the connection.
    Last(Vec<u8>),
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: mpsc::Receiver<Outgoing>,
    write_timeout: std::time::Duration,
) {
    while let Some(out) = rx.recv().await {
        let (bytes, last) = match out {
            Outgoing::Frame(bytes) => (bytes, false),
            Outgoing::Last(bytes) => (bytes, true),
        };
        match tokio::time::timeout(write_timeout, write_frame(&mut w, &bytes)).await {
            Ok(Ok(())) if !last => {}
            Ok(Ok(())) => break,
            Ok(Err(_)) => return,
            Err(_) => {
                tracing::debug!("closing connection: the peer read nothing for {write_timeout:?}");
                return;
            }
        }
    }
    let _ = tokio::time::timeout(write_timeout, w.shutdown()).await;
}

/// Serves requests on one authenticated connection until it ends.
async fn serve_conn<IO, Svc>(
    stream: IO,
    caller: Svc::Caller,
    svc: Arc<Svc>,
    cfg: &TransportConfig,
    limits: Limits,
    kill: Arc<Notify>,
) where
    IO: AsyncRead + AsyncWrite + Send + 'static,
    Svc: Service,
{
    let (mut rd, wr) = tokio::io::split(stream);
    let max_in_flight = limits.max_in_flight.max(1);
    let (tx, rx) = mpsc::channel::<Outgoing>(max_in_flight);
    let mut writer = tokio::spawn(write_loop(wr, rx, cfg.write_timeout));
    let in_flight = Arc::new(Semaphore::new(max_in_flight));
    let mut reader = FrameReader::new(limits.max_frame);
    // Inactivity counts from the last byte read, or from the last moment a
    // request was still being served.
    let mut busy_until = tokio::time::Instant::now();
    loop {
        let idle_at = reader.last_progress().max(busy_until) + cfg.idle_timeout;
        let read = tokio::select! {
            _ = kill.notified() => {
                writer.abort();
                return;
            }
            _ = &mut writer => return, // the peer stopped reading, or a last frame went out
            r = tokio::time::timeout_at(idle_at, reader.next(&mut rd)) => r,
        };
        let bytes = match read {
            // Bytes came since the deadline was set: not inactive.
            Err(_) if reader.last_progress() + cfg.idle_timeout > tokio::time::Instant::now() => {
                continue
            }
            Err(_) if in_flight.available_permits() < max_in_flight => {
                busy_until = tokio::time::Instant::now();
                continue;
            }
            Err(_) => break, // inactive
            Ok(Ok(None)) => break,
            Ok(Ok(Some(bytes))) => bytes,
            Ok(Err(e @ FrameError::TooLarge { .. })) => {
                tracing::warn!("closing connection: {e}");
                let _ = tx.try_send(Outgoing::Last(encode_fatal(&e.to_string())));
                break;
            }
            Ok(Err(e)) => {
                tracing::debug!("connection ended: {e}");
                break;
            }
        };
        let frame: RequestFrame = match serde_json::from_slice(&bytes) {
            Ok(f) => f,
            Err(e) => {
                let why = format!("malformed frame: {e}");
                tracing::warn!("closing connection: {why}");
                let _ = tx.try_send(Outgoing::Last(encode_fatal(&why)));
                break;
            }
        };
        let permit = tokio::select! {
            _ = kill.notified() => {
                writer.abort();
                return;
            }
            p = in_flight.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (svc, tx, caller) = (svc.clone(), tx.clone(), caller.clone());
        tokio::spawn(async move {
            let reply = match serde_json::from_str::<Svc::Request>(frame.req.get()) {
                Ok(req) => svc.call(caller, req).await.and_then(|resp| {
                    serde_json::value::to_raw_value(&resp)
                        .map_err(|e| RpcError::internal(format!("cannot encode response: {e}")))
                }),
                Err(e) => Err(RpcError::bad_request(format!(
                    "unknown or malformed request: {e}"
                ))),
            };
            let forbidden = matches!(&reply, Err(e) if e.code == RpcErrorCode::Forbidden);
            let bytes = encode_response(frame.id, &reply);
            // A forbidden caller gets its answer and loses the connection.
            let out = if forbidden {
                Outgoing::Last(bytes)
            } else {
                Outgoing::Frame(bytes)
            };
            let _ = tx.send(out).await;
            drop(permit);
        });
    }
    drop(tx);
    // Let queued responses (and a fatal frame) go out, within a deadline.
    tokio::select! {
        _ = kill.notified() => writer.abort(),
        r = tokio::time::timeout(cfg.request_timeout, &mut writer) => if r.is_err() { writer.abort() },
    }
}
