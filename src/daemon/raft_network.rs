//! openraft's network over the pinned-mTLS transport: every Raft RPC is a
//! `MemberRequest` on the one multiplexed connection to the peer, with the
//! deadline openraft gives.
//!
//! Invariant: a peer is dialled at the address and pinned to the
//! fingerprint recorded in the Raft membership; nothing else is trusted.

use std::future::Future;
use std::sync::Arc;

use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::v2::RaftNetworkV2;
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::OptionalSend;

use super::liveness::Liveness;
use super::rpc::{MemberRequest, MemberResponse};
use crate::crypto::Fingerprint;
use crate::transport::client::PeerAddr;
use crate::transport::{Pool, TransportError};
use qu_raft::types::{Snapshot, SnapshotData, Vote};
use qu_raft::{NodeId, RaftNode, TypeConfig};

/// Makes a client per peer.
#[derive(Clone)]
pub struct Network {
    pub pool: Arc<Pool>,
    pub liveness: Arc<Liveness>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &RaftNode) -> PeerClient {
        let addr = node
            .fingerprint
            .parse::<Fingerprint>()
            .map(|fingerprint| PeerAddr {
                node_id: target,
                fingerprint,
                advertise: node.advertise.clone(),
            })
            .map_err(|e| e.to_string());
        PeerClient {
            target,
            addr,
            pool: self.pool.clone(),
            liveness: self.liveness.clone(),
        }
    }
}

/// Raft RPCs to one peer.
pub struct PeerClient {
    target: NodeId,
    addr: Result<PeerAddr, String>,
    pool: Arc<Pool>,
    liveness: Arc<Liveness>,
}

/// Failures that say the peer cannot be reached, or refuses us (a wiped or
/// removed node answering `forbidden`), become `Unreachable`, so openraft
/// backs off instead of retrying at every heartbeat; a slow request stays
/// a `Network` error.
fn to_rpc_error(e: TransportError) -> RPCError<TypeConfig> {
    let unreachable = match &e {
        TransportError::Connect { .. }
        | TransportError::Handshake { .. }
        | TransportError::Closed { .. } => true,
        TransportError::Remote(r) => r.code == crate::transport::RpcErrorCode::Forbidden,
        TransportError::Timeout { what, .. } => {
            what.starts_with("connecting") || what.starts_with("TLS handshake")
        }
        _ => false,
    };
    if unreachable {
        RPCError::Unreachable(Unreachable::from_string(e))
    } else {
        RPCError::Network(NetworkError::from_string(e))
    }
}

fn unexpected(resp: MemberResponse) -> RPCError<TypeConfig> {
    RPCError::Network(NetworkError::from_string(format!(
        "unexpected response: {resp:?}"
    )))
}

fn fatal(e: impl std::fmt::Display) -> RPCError<TypeConfig> {
    RPCError::Unreachable(Unreachable::from_string(format!(
        "peer's Raft stopped: {e}"
    )))
}

impl PeerClient {
    async fn call(
        &self,
        req: &MemberRequest,
        option: &RPCOption,
    ) -> Result<MemberResponse, RPCError<TypeConfig>> {
        let addr = self.addr.as_ref().map_err(|e| {
            RPCError::Unreachable(Unreachable::from_string(format!(
                "node {}: {e}",
                self.target
            )))
        })?;
        let resp = self
            .pool
            .call_within(addr, req, option.hard_ttl())
            .await
            .map_err(to_rpc_error)?;
        self.liveness.heard(self.target);
        Ok(resp)
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(&MemberRequest::Append(rpc), &option).await? {
            MemberResponse::Append(r) => r.map_err(fatal),
            other => Err(unexpected(other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(&MemberRequest::Vote(rpc), &option).await? {
            MemberResponse::Vote(r) => r.map_err(fatal),
            other => Err(unexpected(other)),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(&MemberRequest::PreVote(rpc), &option).await? {
            MemberResponse::Vote(r) => r.map_err(fatal),
            other => Err(unexpected(other)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let req = MemberRequest::Snapshot {
            vote,
            meta: snapshot.meta,
            data: snapshot.snapshot,
        };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            res = self.call(&req, &option) => match res? {
                MemberResponse::Snapshot(r) => r.map_err(|e| StreamingError::from(fatal(e))),
                other => Err(StreamingError::from(unexpected(other))),
            },
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self
            .call(&MemberRequest::TransferLeader(req), &option)
            .await?
        {
            MemberResponse::TransferLeader(r) => r.map_err(fatal),
            other => Err(unexpected(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::RpcError;
    use std::time::Duration;

    #[test]
    fn refusals_and_failed_dials_back_off_and_slow_requests_do_not() {
        let unreachable = |e| matches!(to_rpc_error(e), RPCError::Unreachable(_));
        assert!(unreachable(TransportError::Remote(RpcError::forbidden(
            "wiped"
        ))));
        assert!(unreachable(TransportError::Connect {
            addr: "a:1".into(),
            reason: "refused".into()
        }));
        assert!(unreachable(TransportError::Timeout {
            what: "connecting to node 1 at a:1".into(),
            after: Duration::from_secs(1)
        }));
        assert!(!unreachable(TransportError::Timeout {
            what: "request to a:1".into(),
            after: Duration::from_secs(1)
        }));
        assert!(!unreachable(TransportError::Remote(RpcError::internal(
            "x"
        ))));
    }
}
