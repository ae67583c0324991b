//! Node-to-node transport: TLS 1.3 with client certificates, both sides
//! pinning the peer's fingerprint (SPEC §4), carrying multiplexed
//! request/response frames.
//!
//! Two paths share one port, told apart by ALPN before any certificate is
//! looked at:
//! - `qu/1` (members): the server demands a client certificate whose
//!   fingerprint is in the trust store *and* which claims the node id the
//!   store has for it; the client pins the fingerprint of the node it dials.
//!   The handler is given the authenticated `PeerIdentity`; requests never
//!   name their sender.
//! - `qu-hello/1` (strangers): trust-on-first-use. Any certificate (or none)
//!   is accepted, handshake signatures still verified, and only the stranger
//!   service (`hello`, `join`) is reachable, with small frames and one or
//!   two requests at a time. Such connections stay in admission (budgets,
//!   eviction, per-source caps: `admission`) for their whole short life.
//!
//! Every step has a deadline: connect, ClientHello, handshake, each request,
//! each write, inactivity.

pub mod admission;
pub mod client;
pub mod frame;
pub mod server;
pub mod tls;
pub mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use rustls::pki_types::CertificateDer;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::crypto::Fingerprint;
use crate::trust::TrustStore;
use qu_raft::NodeId;

pub use admission::AdmissionConfig;
pub use client::{Pool, TransportError};
pub use wire::{RpcError, RpcErrorCode};

/// The trust store as the TLS verifiers see it: the newest snapshot the one
/// writer (`trust::TrustService`) published. Readers never mutate it.
pub type SharedTrust = watch::Receiver<Arc<TrustStore>>;

/// Deadlines and limits of the transport.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
    /// Default deadline of one request, from send to response.
    pub request_timeout: Duration,
    /// A connection with nothing in flight that received no byte for this
    /// long is closed (inactivity, not a per-frame deadline).
    pub idle_timeout: Duration,
    /// Time a new connection has to send its ClientHello.
    pub client_hello_timeout: Duration,
    /// Time one frame may take to be written before the connection is
    /// dropped (a peer that stopped reading).
    pub write_timeout: Duration,
    /// A stranger (hello-path) connection lives at most this long.
    pub stranger_lifetime: Duration,
    /// Budgets, caps and rates for connections not yet authenticated.
    pub admission: AdmissionConfig,
    /// Requests served concurrently on one member connection.
    pub max_in_flight: usize,
    /// Largest member frame.
    pub max_frame: usize,
    /// Largest frame a stranger may send, and its requests in flight.
    pub stranger_max_frame: usize,
    pub stranger_max_in_flight: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            client_hello_timeout: admission::CLIENT_HELLO_TIMEOUT,
            write_timeout: Duration::from_secs(10),
            stranger_lifetime: Duration::from_secs(15),
            admission: AdmissionConfig::default(),
            max_in_flight: 256,
            max_frame: frame::DEFAULT_MAX_FRAME,
            stranger_max_frame: 64 * 1024,
            stranger_max_in_flight: 2,
        }
    }
}

/// A member authenticated by its pinned certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerIdentity {
    pub node_id: NodeId,
    pub fingerprint: Fingerprint,
}

/// A caller on the hello path: not trusted. When it presented a certificate,
/// it proved it holds that certificate's key.
#[derive(Debug, Clone)]
pub struct Stranger {
    pub fingerprint: Option<Fingerprint>,
    pub cert: Option<CertificateDer<'static>>,
}

/// A request handler. The server decodes `Request` from each frame, calls
/// the service with the authenticated caller, and encodes the reply.
pub trait Service: Send + Sync + 'static {
    type Caller: Clone + Send + Sync + 'static;
    type Request: DeserializeOwned + Send + 'static;
    type Response: Serialize + Send + 'static;

    fn call(
        self: Arc<Self>,
        caller: Self::Caller,
        request: Self::Request,
    ) -> impl Future<Output = Result<Self::Response, RpcError>> + Send;
}
