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

fn to_rpc_error(e: TransportError) -> RPCError<TypeConfig> {
    match e {
        TransportError::Connect { .. }
        | TransportError::Handshake { .. }
        | TransportError::Closed { .. } => RPCError::Unreachable(Unreachable::from_string(e)),
        other => RPCError::Network(NetworkError::from_string(other)),
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
