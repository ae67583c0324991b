//! The requests nodes send each other over the transport, and the services
//! that answer them.
//!
//! Invariant: a stranger (hello path) can reach only `StrangerRequest`; the
//! member service is only ever called with a `PeerIdentity` the TLS layer
//! authenticated, and no request carries a sender field.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use crate::crypto::Identity;
use crate::transport::{PeerIdentity, RpcError, Service, Stranger};
use qu_raft::NodeId;

/// Requests served to anyone who completes the hello-path handshake.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum StrangerRequest {
    /// Who are you? (trust on first use)
    Hello,
}

/// A node's public identity, as `hello` returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HelloResponse {
    pub node_id: NodeId,
    pub advertise: String,
    #[serde(with = "crate::crypto::cert::der_b64")]
    pub cert: CertificateDer<'static>,
}

/// Requests between members.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum MemberRequest {
    /// Liveness probe; answers with the caller's identity as seen here.
    Ping,
}

/// Responses between members.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MemberResponse {
    Pong { you: NodeId, me: NodeId },
}

/// Answers the hello path.
pub struct StrangerService {
    pub identity: Identity,
    pub advertise: String,
}

impl Service for StrangerService {
    type Caller = Stranger;
    type Request = StrangerRequest;
    type Response = HelloResponse;

    async fn call(
        self: Arc<Self>,
        caller: Stranger,
        req: StrangerRequest,
    ) -> Result<HelloResponse, RpcError> {
        match req {
            StrangerRequest::Hello => {
                tracing::debug!(fingerprint = ?caller.fingerprint, "hello from a stranger");
                Ok(HelloResponse {
                    node_id: self.identity.node_id,
                    advertise: self.advertise.clone(),
                    cert: self.identity.cert.clone(),
                })
            }
        }
    }
}

/// Answers members.
pub struct MemberService {
    pub me: NodeId,
}

impl Service for MemberService {
    type Caller = PeerIdentity;
    type Request = MemberRequest;
    type Response = MemberResponse;

    async fn call(
        self: Arc<Self>,
        caller: PeerIdentity,
        req: MemberRequest,
    ) -> Result<MemberResponse, RpcError> {
        match req {
            MemberRequest::Ping => Ok(MemberResponse::Pong {
                you: caller.node_id,
                me: self.me,
            }),
        }
    }
}
