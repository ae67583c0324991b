//! The member and stranger services: what a node answers over the
//! transport.
//!
//! Invariants:
//! - Every member request is held to the membership (`access`): a pinned
//!   key that is not a member gets `forbidden`, and the transport closes
//!   its connection.
//! - A Raft message that names its sender (the vote's leader or
//!   candidate) is served only when that name is the TLS-authenticated peer.

use std::sync::Arc;

use openraft::async_runtime::WatchReceiver;
use openraft::errors::Fatal;
use openraft::errors::RaftError;
use openraft::vote::RaftLeaderId;

use super::rpc::{MemberRequest, MemberResponse, StrangerRequest, StrangerResponse};
use super::{access, Daemon};
use crate::transport::{PeerIdentity, RpcError, Service, Stranger};
use qu_raft::types::{Snapshot, Vote};
use qu_raft::{NodeId, TypeConfig};

fn fatal_of(e: RaftError<TypeConfig>) -> Fatal<TypeConfig> {
    match e {
        RaftError::APIError(never) => match never {},
        RaftError::Fatal(f) => f,
    }
}

fn sender_of(vote: &Vote) -> NodeId {
    *vote.leader_id.node_id()
}

fn check_sender(caller: &PeerIdentity, named: NodeId) -> Result<(), RpcError> {
    if caller.node_id == named {
        Ok(())
    } else {
        tracing::warn!(caller = %caller.node_id, named = %named, "refused a Raft message sent in another node's name");
        Err(RpcError::forbidden(format!(
            "node {} may not send Raft messages as node {named}",
            caller.node_id
        )))
    }
}

impl Daemon {
    /// Where this node and `caller` stand, for `access::allowed`.
    fn standings(
        &self,
        caller: NodeId,
        fingerprint: crate::crypto::Fingerprint,
    ) -> (access::SelfStanding, access::CallerStanding) {
        let me = self.me();
        let (in_membership, voter, learner) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow_watched();
            let membership = m.membership_config.membership();
            let standing = (
                membership.nodes().any(|(id, _)| *id == me),
                membership.voter_ids().any(|id| id == caller),
                membership.learner_ids().any(|id| id == caller),
            );
            standing
        };
        let state = self.state();
        let peers = &state.state.peers;
        let cluster_pinned = self.trust.current().by_node(caller).is_some_and(|e| {
            e.fingerprint == fingerprint && e.source == crate::trust::TrustSource::Cluster
        });
        (
            access::SelfStanding {
                in_membership,
                in_peers: peers.contains_key(&me),
            },
            access::CallerStanding {
                voter,
                learner,
                peer: peers.contains_key(&caller),
                cluster_pinned,
            },
        )
    }
}

/// Answers members.
pub(super) struct MemberService(pub Arc<Daemon>);

impl Service for MemberService {
    type Caller = PeerIdentity;
    type Request = MemberRequest;
    type Response = MemberResponse;

    async fn call(
        self: Arc<Self>,
        caller: PeerIdentity,
        req: MemberRequest,
    ) -> Result<MemberResponse, RpcError> {
        let d = &self.0;
        if d.membership.is_removed() {
            return Err(RpcError::forbidden(
                "this node was removed from the cluster",
            ));
        }
        if !d.membership.serves_cluster() {
            // Members talk to us although we hold no cluster state: our data
            // was wiped (or lost). Voting or acknowledging entries now could
            // lose committed writes, so serve nothing until re-added.
            tracing::warn!(from = %caller.node_id, "refusing cluster traffic: this node holds no cluster state (was its raft/ directory wiped?). Recover: 'qu node remove {}' on a member, then 'qu node add' this node again", d.me());
            return Err(RpcError::forbidden(
                "this node holds no cluster state (data wiped?) and must be removed and re-added",
            ));
        }
        let class = access::class_of(&req);
        let (me, standing) = d.standings(caller.node_id, caller.fingerprint);
        if !access::allowed(class, me, standing) {
            tracing::warn!(caller = %caller.node_id, ?class, "refused a member request from a node that is not a member of this cluster");
            return Err(RpcError::forbidden(format!(
                "node {} is not a member of this node's cluster",
                caller.node_id
            )));
        }
        d.liveness.heard(caller.node_id);
        let raft = &d.raft;
        Ok(match req {
            MemberRequest::Ping => MemberResponse::Pong,
            MemberRequest::Level => MemberResponse::Level(super::reported_level()),
            MemberRequest::Probe { kind, timeout_ms } => {
                let timeout = std::time::Duration::from_millis(timeout_ms.clamp(
                    qu_raft::model::MIN_TIMEOUT_MS,
                    super::probe_now::MAX_TEST_TIMEOUT_MS,
                ));
                let outcome = d.probers.probe(&kind, timeout).await;
                MemberResponse::Probed {
                    ok: outcome.ok,
                    latency_ms: outcome.latency.as_millis() as u64,
                    reason: outcome.reason,
                }
            }
            MemberRequest::Version => MemberResponse::Version(crate::version::LONG.to_string()),
            MemberRequest::Clock { off } => {
                d.clocks
                    .reported(caller.node_id, off, tokio::time::Instant::now());
                MemberResponse::Clock {
                    wall_ms: crate::checks::scheduler::now_ms(),
                }
            }
            MemberRequest::Rollup { check_id } => MemberResponse::Rollup(
                super::rollups::local_summary(&d.scheduler_stats, &check_id)
                    .await
                    .map_err(|e| RpcError::internal(e.to_string()))?,
            ),
            MemberRequest::Append(r) => {
                check_sender(&caller, sender_of(&r.vote))?;
                MemberResponse::Append(raft.append_entries(r).await.map_err(fatal_of))
            }
            MemberRequest::Vote(r) => {
                check_sender(&caller, sender_of(&r.vote))?;
                MemberResponse::Vote(raft.vote(r).await.map_err(fatal_of))
            }
            MemberRequest::PreVote(r) => {
                check_sender(&caller, sender_of(&r.vote))?;
                MemberResponse::Vote(raft.pre_vote(r).await.map_err(fatal_of))
            }
            MemberRequest::Snapshot { vote, meta, data } => {
                check_sender(&caller, sender_of(&vote))?;
                let snapshot = Snapshot {
                    meta,
                    snapshot: data,
                };
                MemberResponse::Snapshot(raft.install_full_snapshot(vote, snapshot).await)
            }
            MemberRequest::TransferLeader(r) => {
                check_sender(&caller, sender_of(r.from_leader()))?;
                MemberResponse::TransferLeader(raft.handle_transfer_leader(r).await)
            }
            MemberRequest::OnLeader { op } => {
                let drop_reply = matches!(op, super::routing::LeaderOp::Propose { .. })
                    && super::failpoint_once("drop-propose-reply");
                let deadline = tokio::time::Instant::now() + super::cluster::MUTATION_TIMEOUT * 13;
                let reply = d
                    .run_as_leader(op, deadline, super::routing::Origin::Peer(caller.node_id))
                    .await;
                if drop_reply {
                    tracing::warn!("failpoint drop-propose-reply: holding the answer past the caller's deadline");
                    // Test hook: the answer is lost (the caller's attempt
                    // times out first), as on a connection that failed.
                    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                }
                MemberResponse::OnLeader(reply)
            }
            MemberRequest::Report { reports } => {
                d.ingest(caller.node_id, reports);
                MemberResponse::Ack
            }
            MemberRequest::LastRound { check_id } => MemberResponse::LastRound(
                d.aggregator
                    .lock()
                    .ok()
                    .and_then(|a| a.last_round(&check_id).cloned()),
            ),
            MemberRequest::Removed => {
                if d.leader() != Some(caller.node_id) {
                    return Err(RpcError::forbidden(
                        "only the leader can tell a node it was removed",
                    ));
                }
                d.mark_removed(&format!("told by leader {}", caller.node_id))
                    .await;
                MemberResponse::Ack
            }
        })
    }
}

/// Answers the hello path.
pub(super) struct StrangerService(pub Arc<Daemon>);

impl Service for StrangerService {
    type Caller = Stranger;
    type Request = StrangerRequest;
    type Response = StrangerResponse;

    async fn call(
        self: Arc<Self>,
        caller: Stranger,
        req: StrangerRequest,
    ) -> Result<StrangerResponse, RpcError> {
        let d = &self.0;
        match req {
            StrangerRequest::Hello => Ok(StrangerResponse::Hello(super::rpc::HelloResponse {
                node_id: d.me(),
                advertise: d.node.advertise.clone(),
                cert: d.identity.cert.clone(),
                level: super::reported_level(),
            })),
            StrangerRequest::Join(join) => d
                .accept_join(&caller, join)
                .await
                .map(|node_id| StrangerResponse::Joined { node_id })
                .map_err(RpcError::forbidden),
        }
    }
}
