//! The dialling side: one reused, multiplexed connection per peer.
//!
//! Invariants:
//! - Every call has a deadline (connect, handshake, the request itself).
//! - Calls on one connection are independent: responses are matched by id,
//!   so a slow call never holds up another.
//! - A connection that failed is replaced on the next call; a connection to a
//!   peer whose pinned fingerprint or address changed is never reused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsConnector;

use super::frame::{write_frame, FrameReader};
use super::tls;
use super::wire::{encode_request, ResponseFrame, RpcError};
use super::TransportConfig;
use crate::crypto::cert::fingerprint_of;
use crate::crypto::{Fingerprint, Identity};
use qu_raft::NodeId;

/// Why a call did not get a response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("TLS handshake with {addr} failed: {reason}")]
    Handshake { addr: String, reason: String },
    #[error("{what} timed out after {}", crate::config::duration::format(*.after))]
    Timeout { what: String, after: Duration },
    #[error("connection to {addr} closed: {reason}")]
    Closed { addr: String, reason: String },
    #[error("{0}")]
    Remote(#[from] RpcError),
    #[error("cannot encode request: {0}")]
    Encode(String),
    #[error("cannot decode the response: {0}")]
    Decode(String),
    #[error("{0}")]
    Config(String),
}

type Reply = Result<Box<RawValue>, TransportError>;
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>>>>;

/// One open, authenticated connection.
pub struct Connection {
    addr: String,
    outgoing: mpsc::Sender<Vec<u8>>,
    pending: Pending,
    next_id: AtomicU64,
    closed: Arc<AtomicBool>,
    /// The certificate the server presented.
    pub peer_cert: CertificateDer<'static>,
}

impl Connection {
    /// Dials `addr` and completes the TLS handshake, within the configured
    /// deadlines.
    pub async fn open(
        addr: &str,
        tls_config: Arc<rustls::ClientConfig>,
        node: Option<NodeId>,
        cfg: &TransportConfig,
    ) -> Result<Connection, TransportError> {
        let tcp = tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| TransportError::Timeout {
                what: format!("connecting to {addr}"),
                after: cfg.connect_timeout,
            })?
            .map_err(|e| TransportError::Connect {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        let _ = tcp.set_nodelay(true);
        let connector = TlsConnector::from(tls_config);
        let stream = tokio::time::timeout(
            cfg.handshake_timeout,
            connector.connect(tls::server_name_for(node), tcp),
        )
        .await
        .map_err(|_| TransportError::Timeout {
            what: format!("TLS handshake with {addr}"),
            after: cfg.handshake_timeout,
        })?
        .map_err(|e| TransportError::Handshake {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
        let peer_cert = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.clone().into_owned())
            .ok_or_else(|| TransportError::Handshake {
                addr: addr.to_string(),
                reason: "the server presented no certificate".into(),
            })?;
        Ok(Connection::start(addr, stream, peer_cert, cfg))
    }

    fn start<IO>(
        addr: &str,
        stream: IO,
        peer_cert: CertificateDer<'static>,
        cfg: &TransportConfig,
    ) -> Connection
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let closed = Arc::new(AtomicBool::new(false));

        let w_closed = closed.clone();
        let write_timeout = cfg.write_timeout;
        let writer_gone = Arc::new(tokio::sync::Notify::new());
        let w_gone = writer_gone.clone();
        tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                // A server that stops reading must not hold our writes forever.
                match tokio::time::timeout(write_timeout, write_frame(&mut wr, &bytes)).await {
                    Ok(Ok(())) => {}
                    _ => break,
                }
            }
            w_closed.store(true, Ordering::SeqCst);
            w_gone.notify_one();
            let _ = tokio::time::timeout(write_timeout, wr.shutdown()).await;
        });

        let (r_pending, r_closed, r_addr) = (pending.clone(), closed.clone(), addr.to_string());
        let (max_frame, idle) = (cfg.max_frame, cfg.idle_timeout);
        tokio::spawn(async move {
            let mut reader = FrameReader::new(max_frame);
            let mut busy_until = tokio::time::Instant::now();
            let reason = loop {
                let idle_at = reader.last_progress().max(busy_until) + idle;
                let read = tokio::select! {
                    _ = writer_gone.notified() => break "the connection could not be written to".to_string(),
                    r = tokio::time::timeout_at(idle_at, reader.next(&mut rd)) => r,
                };
                let bytes = match read {
                    Err(_) if reader.last_progress() + idle > tokio::time::Instant::now() => {
                        continue
                    }
                    Err(_) => {
                        let busy = r_pending.lock().map(|p| !p.is_empty()).unwrap_or(false);
                        if busy {
                            busy_until = tokio::time::Instant::now();
                            continue;
                        }
                        break "idle".to_string();
                    }
                    Ok(Ok(Some(b))) => b,
                    Ok(Ok(None)) => break "closed by peer".to_string(),
                    Ok(Err(e)) => break describe_read_error(&e.to_string()),
                };
                let frame: ResponseFrame = match serde_json::from_slice(&bytes) {
                    Ok(f) => f,
                    Err(e) => break format!("malformed response frame: {e}"),
                };
                if let Some(fatal) = frame.fatal {
                    break format!("the server dropped the connection: {fatal}");
                }
                let reply = match (frame.ok, frame.err) {
                    (Some(ok), None) => Ok(ok),
                    (_, Some(err)) => Err(TransportError::Remote(err)),
                    (None, None) => Err(TransportError::Decode(
                        "response has neither ok nor err".into(),
                    )),
                };
                let waiter = r_pending.lock().ok().and_then(|mut p| p.remove(&frame.id));
                if let Some(w) = waiter {
                    let _ = w.send(reply);
                }
            };
            r_closed.store(true, Ordering::SeqCst);
            let waiters: Vec<_> = r_pending
                .lock()
                .map(|mut p| p.drain().map(|(_, w)| w).collect())
                .unwrap_or_default();
            for w in waiters {
                let _ = w.send(Err(TransportError::Closed {
                    addr: r_addr.clone(),
                    reason: reason.clone(),
                }));
            }
        });

        Connection {
            addr: addr.to_string(),
            outgoing: tx,
            pending,
            next_id: AtomicU64::new(1),
            closed,
            peer_cert,
        }
    }

    /// Whether the connection is known to be unusable.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst) || self.outgoing.is_closed()
    }

    /// Sends one request and waits for its response, at most `deadline`.
    pub async fn call<Req, Resp>(
        &self,
        req: &Req,
        deadline: Duration,
    ) -> Result<Resp, TransportError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let bytes = encode_request(id, req).map_err(|e| TransportError::Encode(e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(id, tx);
        }
        let closed = || TransportError::Closed {
            addr: self.addr.clone(),
            reason: "connection is closed".into(),
        };
        if self.is_closed() || self.outgoing.send(bytes).await.is_err() {
            self.forget(id);
            return Err(closed());
        }
        let raw = match tokio::time::timeout(deadline, rx).await {
            Err(_) => {
                self.forget(id);
                return Err(TransportError::Timeout {
                    what: format!("request to {}", self.addr),
                    after: deadline,
                });
            }
            Ok(Err(_)) => return Err(closed()),
            Ok(Ok(reply)) => reply?,
        };
        serde_json::from_str(raw.get()).map_err(|e| TransportError::Decode(e.to_string()))
    }

    fn forget(&self, id: u64) {
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&id);
        }
    }
}

fn describe_read_error(e: &str) -> String {
    if e.contains("AccessDenied") || e.contains("access denied") {
        format!("the peer refused our certificate (is this node trusted there?): {e}")
    } else {
        e.to_string()
    }
}

/// Where and how to reach a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddr {
    pub node_id: NodeId,
    pub fingerprint: Fingerprint,
    pub advertise: String,
}

struct Slot {
    addr: PeerAddr,
    conn: Option<Arc<Connection>>,
}

/// Connections to members, one per peer, reused.
pub struct Pool {
    identity: Identity,
    cfg: TransportConfig,
    slots: Mutex<HashMap<NodeId, Arc<tokio::sync::Mutex<Slot>>>>,
}

impl Pool {
    pub fn new(identity: Identity, cfg: TransportConfig) -> Pool {
        Pool {
            identity,
            cfg,
            slots: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &TransportConfig {
        &self.cfg
    }

    /// The open connection to `peer`, dialling one if needed.
    pub async fn connection(&self, peer: &PeerAddr) -> Result<Arc<Connection>, TransportError> {
        let slot = {
            let mut slots = self
                .slots
                .lock()
                .map_err(|_| TransportError::Config("connection pool lock poisoned".into()))?;
            slots
                .entry(peer.node_id)
                .or_insert_with(|| {
                    Arc::new(tokio::sync::Mutex::new(Slot {
                        addr: peer.clone(),
                        conn: None,
                    }))
                })
                .clone()
        };
        let mut slot = slot.lock().await;
        if slot.addr != *peer {
            slot.addr = peer.clone();
            slot.conn = None;
        }
        if let Some(c) = &slot.conn {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let tls = tls::member_client_config(&self.identity, peer.node_id, peer.fingerprint)
            .map_err(|e| TransportError::Config(e.to_string()))?;
        let conn =
            Arc::new(Connection::open(&peer.advertise, tls, Some(peer.node_id), &self.cfg).await?);
        slot.conn = Some(conn.clone());
        Ok(conn)
    }

    /// Calls `peer` with the default request deadline.
    pub async fn call<Req, Resp>(&self, peer: &PeerAddr, req: &Req) -> Result<Resp, TransportError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        self.call_within(peer, req, self.cfg.request_timeout).await
    }

    /// Calls `peer`; `deadline` bounds the whole call, dialling included.
    pub async fn call_within<Req, Resp>(
        &self,
        peer: &PeerAddr,
        req: &Req,
        deadline: Duration,
    ) -> Result<Resp, TransportError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let started = tokio::time::Instant::now();
        let conn = tokio::time::timeout(deadline, self.connection(peer))
            .await
            .map_err(|_| TransportError::Timeout {
                what: format!("connecting to node {} at {}", peer.node_id, peer.advertise),
                after: deadline,
            })??;
        let left = deadline.saturating_sub(started.elapsed());
        conn.call(req, left).await
    }

    /// Drops the connection to `node` (e.g. it lost trust).
    pub fn disconnect(&self, node: NodeId) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.remove(&node);
        }
    }
}

/// One request over the hello path. With `expect == None` the identity at
/// `addr` is not yet known (trust on first use: the caller shows it to the
/// operator); with `Some((node, fingerprint))` the server must present
/// exactly that pinned identity, so a request that depends on an earlier
/// `hello` (a join) cannot be relayed to someone else. Returns the response
/// and the certificate the server proved it holds.
pub async fn call_stranger<Req, Resp>(
    identity: &Identity,
    addr: &str,
    expect: Option<(NodeId, Fingerprint)>,
    req: &Req,
    cfg: &TransportConfig,
    deadline: Duration,
) -> Result<(Resp, Fingerprint, CertificateDer<'static>), TransportError>
where
    Req: Serialize,
    Resp: DeserializeOwned,
{
    let tls = tls::stranger_client_config(identity, expect)
        .map_err(|e| TransportError::Config(e.to_string()))?;
    let started = tokio::time::Instant::now();
    let node = expect.map(|(n, _)| n);
    let conn = tokio::time::timeout(deadline, Connection::open(addr, tls, node, cfg))
        .await
        .map_err(|_| TransportError::Timeout {
            what: format!("connecting to {addr}"),
            after: deadline,
        })??;
    let fp = fingerprint_of(&conn.peer_cert).map_err(|e| TransportError::Handshake {
        addr: addr.to_string(),
        reason: e.to_string(),
    })?;
    let resp = conn
        .call(req, deadline.saturating_sub(started.elapsed()))
        .await?;
    Ok((resp, fp, conn.peer_cert.clone()))
}
