//! Cluster operations on top of Raft: forming a cluster on first mutation,
//! proposing mutations (forwarded to the leader), adding and removing
//! nodes, accepting a join, liveness pings and noticing removal.
//!
//! Invariants:
//! - A mutation is acknowledged only with the state machine's response to
//!   its committed entry (openraft commits on a majority after our storage
//!   fsynced it).
//! - Without quorum a mutation is refused before it reaches the log, and in
//!   every case the answer comes within `MUTATION_TIMEOUT`.
//! - A fresh node is claimed by at most one cluster (`LocalStore::claimed_by`).
//! - A node is added to the replicated peers (so every member pins it)
//!   before Raft contacts it as a learner, and promoted only once caught up.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ClientWriteError, RaftError};
use openraft::ChangeMembers;
use tokio::sync::watch;
use tokio::time::Instant;

use super::claims::Standing;
use super::policy::{Decision, Observation, PolicyView};
use super::routing::{LeaderOp, LeaderReply};
use super::rpc::{
    ClusterFailure, HelloResponse, JoinRequest, MemberRequest, MemberResponse, StrangerRequest,
    StrangerResponse,
};
use super::Daemon;
use crate::crypto::cert::{claimed_node_id, der_b64_string};
use crate::crypto::Fingerprint;
use crate::transport::client::{call_stranger, PeerAddr};
use crate::transport::{Stranger, TransportError};
use crate::trust::{now_rfc3339, Pin, TrustSource};
use qu_raft::model::Peer;
use qu_raft::state::{Command, ConfigCommand, Request, Response};
use qu_raft::{NodeId, RaftNode};

/// A mutation is answered within this time, committed or refused.
pub const MUTATION_TIMEOUT: Duration = Duration::from_millis(4500);
/// Adding a node includes catching it up.
pub(super) const NODE_ADD_TIMEOUT: Duration = Duration::from_secs(60);
/// Deadline of the hello and join calls.
const STRANGER_TIMEOUT: Duration = Duration::from_secs(10);

pub use crate::ids::random_hex;

impl Daemon {
    /// This node as a replicated peer.
    pub(super) fn self_peer(&self) -> Peer {
        Peer {
            node_id: self.me(),
            advertise: self.node.advertise.clone(),
            fingerprint: self.identity.fingerprint.to_string(),
            cert: der_b64_string(&self.identity.cert),
        }
    }

    pub(super) fn voters(&self) -> BTreeSet<NodeId> {
        self.raft
            .metrics()
            .borrow_watched()
            .membership_config
            .voter_ids()
            .collect()
    }

    pub(super) fn learners(&self) -> BTreeSet<NodeId> {
        self.raft
            .metrics()
            .borrow_watched()
            .membership_config
            .membership()
            .learner_ids()
            .collect()
    }

    /// Takes `node` out of the Raft membership: first out of the voters
    /// (if it is one), then out of the nodes altogether.
    pub(super) async fn remove_from_raft(&self, node: NodeId) -> Result<(), ClusterFailure> {
        let change = |c: ChangeMembers<NodeId, RaftNode>| async move {
            tokio::time::timeout(MUTATION_TIMEOUT * 2, self.raft.change_membership(c, false))
                .await
                .map_err(|_| self.no_quorum())?
                .map_err(|e| ClusterFailure::Failed(format!("cannot change the membership: {e}")))
        };
        if self.voters().contains(&node) {
            change(ChangeMembers::RemoveVoters(BTreeSet::from([node]))).await?;
        }
        if self.learners().contains(&node) {
            change(ChangeMembers::RemoveNodes(BTreeSet::from([node]))).await?;
        }
        Ok(())
    }

    pub(super) fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow_watched().current_leader
    }

    /// The no-quorum failure as of now.
    pub(super) fn no_quorum(&self) -> ClusterFailure {
        let voters = self.voters();
        let live = self.liveness.count_live(&voters);
        let need = voters.len() / 2 + 1;
        if voters.is_empty() || live >= need {
            ClusterFailure::Failed(format!(
                "no leader could be reached within {}s ({live} of {} nodes reachable); try again shortly",
                MUTATION_TIMEOUT.as_secs_f32().ceil(),
                voters.len()
            ))
        } else {
            ClusterFailure::NoQuorum {
                live,
                voters: voters.len(),
                need,
            }
        }
    }

    fn quorum_precheck(&self) -> Result<(), ClusterFailure> {
        let voters = self.voters();
        let need = voters.len() / 2 + 1;
        let live = self.liveness.count_live(&voters);
        if live < need {
            return Err(ClusterFailure::NoQuorum {
                live,
                voters: voters.len(),
                need,
            });
        }
        Ok(())
    }

    /// Forms a one-node cluster if this node is fresh (SPEC §3).
    pub(super) async fn ensure_formed(&self) -> Result<(), ClusterFailure> {
        if self.is_removed() {
            return Err(ClusterFailure::Refused(
                "this node was removed from its cluster; re-initialise it to use it again".into(),
            ));
        }
        let _guard = self.form_lock.lock().await;
        let failed = |e: &dyn std::fmt::Display| {
            ClusterFailure::Failed(format!("cannot form a cluster: {e}"))
        };
        match self.claims.standing() {
            Standing::Member => return Ok(()),
            Standing::Wiped => {
                return Err(ClusterFailure::Refused(
                    "this node belongs to a cluster but holds none of its state: its data was probably wiped. Rejoin its cluster ('qu node remove' then 'qu node add' it from a member), or re-initialise it ('qu init' in a fresh state directory) to start over".into(),
                ))
            }
            Standing::Removed | Standing::Fresh => {}
        }
        if let Some(id) = self.state().state.cluster_id.clone() {
            // Formed before a crash that came before the claim was recorded.
            self.record_claim(&id, Vec::new())
                .await
                .map_err(|e| failed(&e))?;
            return Ok(());
        }
        let initialized = self.raft.is_initialized().await.map_err(|e| failed(&e))?;
        let members_pinned = self
            .trust
            .current()
            .entries()
            .iter()
            .any(|e| e.source == TrustSource::Cluster);
        if !initialized && members_pinned {
            return Err(ClusterFailure::Refused(
                "this node holds no cluster state but still pins cluster members: its data was probably wiped. Rejoin its cluster ('qu node remove' then 'qu node add' it from a member), or, to start a new cluster, drop the old members with 'qu trust remove' first".into(),
            ));
        }
        if !initialized {
            let mut members = BTreeMap::new();
            members.insert(self.me(), self.raft_node());
            self.raft
                .initialize(members)
                .await
                .map_err(|e| failed(&e))?;
        }
        let me = self.me();
        self.raft
            .wait(Some(Duration::from_secs(10)))
            .metrics(
                |m| m.current_leader == Some(me),
                "this node leads its new cluster",
            )
            .await
            .map_err(|e| failed(&e))?;
        let cluster_id = random_hex(8);
        let req = Request::new(ConfigCommand::Bootstrap {
            cluster_id: cluster_id.clone(),
            founder: self.self_peer(),
        });
        if let Response::Refused { refusal, .. } = self
            .raft
            .client_write(req)
            .await
            .map_err(|e| failed(&e))?
            .data
        {
            return Err(failed(&refusal));
        }
        self.record_claim(&cluster_id, Vec::new())
            .await
            .map_err(|e| failed(&e))?;
        tracing::info!(cluster = %cluster_id, "formed a new one-node cluster");
        Ok(())
    }

    /// Records durably that `cluster_id` owns this node, then starts serving
    /// its Raft traffic.
    async fn record_claim(
        &self,
        cluster_id: &str,
        join_members: Vec<Pin>,
    ) -> Result<(), super::claims::ClaimsError> {
        self.claims.record(cluster_id, join_members).await
    }

    pub(super) fn raft_node(&self) -> RaftNode {
        RaftNode {
            advertise: self.node.advertise.clone(),
            fingerprint: self.identity.fingerprint.to_string(),
        }
    }

    /// Where to reach a member, from the Raft membership or the peers.
    pub(super) fn peer_addr(&self, node: NodeId) -> Option<PeerAddr> {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let (advertise, fp) = match metrics.membership_config.get_node(&node) {
            Some(n) => (n.advertise.clone(), n.fingerprint.clone()),
            None => {
                let state = self.state();
                let p = state.state.peers.get(&node)?;
                (p.advertise.clone(), p.fingerprint.clone())
            }
        };
        Some(PeerAddr {
            node_id: node,
            fingerprint: fp.parse::<Fingerprint>().ok()?,
            advertise,
        })
    }

    /// Proposes a configuration mutation wherever the leader is, under a
    /// request id chosen here (so retries are safe); answers within
    /// `MUTATION_TIMEOUT`, once this node applied it too.
    pub(super) async fn propose(&self, mut req: Request) -> Result<Response, ClusterFailure> {
        self.ensure_formed().await?;
        if req.request_id.is_none() {
            req.request_id = Some(random_hex(8));
        }
        match self.on_leader(LeaderOp::Propose { request: req }).await? {
            LeaderReply::Proposed { response, .. } => Ok(response),
            other => Err(ClusterFailure::Failed(format!(
                "unexpected reply from the leader: {other:?}"
            ))),
        }
    }

    /// Proposes on this node, which believes it leads. A request id it
    /// already applied gets the original answer; alert names in a check
    /// are resolved here, against the state the entry will meet. Returns
    /// the response and the entry's log index.
    pub(super) async fn propose_as_leader(
        &self,
        req: Request,
        deadline: Instant,
    ) -> Result<(Response, u64), ClusterFailure> {
        if self.leader() != Some(self.me()) {
            return Err(ClusterFailure::NotLeader {
                leader: self.leader(),
            });
        }
        let state = self.state();
        if let Some(seen) = req
            .request_id
            .as_deref()
            .and_then(|id| state.state.seen(id))
        {
            return Ok((seen.clone(), self.applied_index()));
        }
        let req = resolve_references(&state.state, req)?;
        self.quorum_precheck()?;
        if let Err(refusal) = state.state.validate(&req) {
            return Err(ClusterFailure::Refused(refusal.to_string()));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.raft.client_write(req)).await {
            Err(_) => Err(match self.no_quorum() {
                ClusterFailure::NoQuorum { live, voters, need } => ClusterFailure::NoQuorum { live, voters, need },
                _ => ClusterFailure::Failed(
                    "the mutation was not confirmed in time; it may still be applied: check 'qu status' before retrying".into(),
                ),
            }),
            Ok(Ok(resp)) => match resp.data {
                Response::Refused { refusal, .. } => Err(ClusterFailure::Refused(refusal.to_string())),
                other => Ok((other, resp.log_id.index)),
            },
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(ClusterFailure::NotLeader { leader: f.leader_id })
            }
            Ok(Err(e)) => Err(ClusterFailure::Failed(e.to_string())),
        }
    }

    /// `qu node add` from the CLI: runs on the leader (forwarded if needed).
    pub(super) async fn add_node(
        &self,
        addr: String,
        fingerprint: String,
    ) -> Result<(String, u64), ClusterFailure> {
        self.ensure_formed().await?;
        mutated(
            self.on_leader(LeaderOp::AddNode { addr, fingerprint })
                .await?,
        )
    }

    async fn hello(&self, addr: &str) -> Result<(HelloResponse, Fingerprint), ClusterFailure> {
        let (resp, fp, cert) = call_stranger::<_, StrangerResponse>(
            &self.identity,
            addr,
            None,
            &StrangerRequest::Hello,
            &self.transport,
            STRANGER_TIMEOUT,
        )
        .await
        .map_err(|e| ClusterFailure::Failed(format!("cannot fetch the identity of {addr}: {e}")))?;
        let StrangerResponse::Hello(hello) = resp else {
            return Err(ClusterFailure::Failed(format!(
                "{addr} answered hello with something else"
            )));
        };
        // The node id shown must be the one its certificate claims, and the
        // certificate in the answer the one it proved it holds.
        match claimed_node_id(&cert) {
            Ok(id) if id == hello.node_id && hello.cert == cert => Ok((hello, fp)),
            _ => Err(ClusterFailure::Refused(format!(
                "{addr} claims node {} but its certificate says otherwise; refusing it",
                hello.node_id
            ))),
        }
    }

    /// `qu node add` step 1: who is at `addr`?
    pub(super) async fn node_hello(
        &self,
        addr: &str,
    ) -> Result<(NodeId, Fingerprint, String), ClusterFailure> {
        let (hello, fp) = self.hello(addr).await?;
        Ok((hello.node_id, fp, hello.advertise))
    }

    pub(super) async fn add_node_as_leader(
        &self,
        addr: &str,
        expected: &str,
    ) -> Result<(String, u64), ClusterFailure> {
        let (hello, fp) = self.hello(addr).await?;
        if fp.to_string() != expected {
            return Err(ClusterFailure::Refused(format!(
                "FINGERPRINT MISMATCH: {addr} now presents {fp}, not the {expected} that was accepted; refusing to add it"
            )));
        }
        let id = hello.node_id;
        if id == self.me() {
            return Err(ClusterFailure::Refused(format!(
                "{addr} is this node itself"
            )));
        }
        let version = |d: &Daemon| d.state().state.version;
        if self.voters().contains(&id) {
            return Ok((format!("node {id} is already a voter"), version(self)));
        }
        self.quorum_precheck()?;
        let _adding = AddingGuard::new(self, id);
        let state = self.state();
        let cluster_id = state
            .state
            .cluster_id
            .clone()
            .ok_or_else(|| ClusterFailure::Failed("the cluster has no id yet".into()))?;
        let peer = Peer {
            node_id: id,
            advertise: hello.advertise.clone(),
            fingerprint: fp.to_string(),
            cert: der_b64_string(&hello.cert),
        };
        let join = JoinRequest {
            cluster_id,
            members: state.state.peers.values().cloned().collect(),
        };
        // The join goes to exactly the identity the hello showed (and the
        // operator accepted): a man in the middle cannot relay it.
        let (resp, _, _) = call_stranger::<_, StrangerResponse>(
            &self.identity,
            addr,
            Some((id, fp)),
            &StrangerRequest::Join(join),
            &self.transport,
            STRANGER_TIMEOUT,
        )
        .await
        .map_err(|e| match e {
            TransportError::Remote(r) => {
                ClusterFailure::Refused(format!("{addr} refused to join: {}", r.message))
            }
            other => ClusterFailure::Failed(format!("cannot join {addr}: {other}")),
        })?;
        if !matches!(resp, StrangerResponse::Joined { node_id } if node_id == id) {
            return Err(ClusterFailure::Failed(format!(
                "{addr} answered the join with something else"
            )));
        }
        let deadline = Instant::now() + MUTATION_TIMEOUT;
        self.propose_as_leader(
            Request::new(ConfigCommand::AddPeer { peer: peer.clone() }),
            deadline,
        )
        .await?;
        super::failpoint("after-add-peer");
        let node = RaftNode {
            advertise: peer.advertise.clone(),
            fingerprint: peer.fingerprint.clone(),
        };
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            ClusterFailure::Failed(format!(
                "node {id} was joined but {what} failed: {e}; run 'qu node add' again to finish"
            ))
        };
        tokio::time::timeout(NODE_ADD_TIMEOUT, self.raft.add_learner(id, node, true))
            .await
            .map_err(|_| failed("catching it up", &"timed out"))?
            .map_err(|e| failed("adding it as a learner", &e))?;
        super::failpoint_hold("hold-before-promote").await;
        tokio::time::timeout(
            MUTATION_TIMEOUT * 2,
            self.raft
                .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false),
        )
        .await
        .map_err(|_| failed("promoting it to voter", &"timed out"))?
        .map_err(|e| failed("promoting it to voter", &e))?;
        tracing::info!(node = %id, advertise = %peer.advertise, "added node as a voter");
        Ok((
            format!("added node {id} ({}) as a voter", peer.advertise),
            version(self),
        ))
    }

    /// `qu node remove`: runs on the leader (forwarded if needed).
    pub(super) async fn remove_node(
        &self,
        node: NodeId,
        if_version: Option<u64>,
    ) -> Result<(String, u64), ClusterFailure> {
        mutated(
            self.on_leader(LeaderOp::RemoveNode { node, if_version })
                .await?,
        )
    }

    pub(super) async fn remove_node_as_leader(
        &self,
        node: NodeId,
        if_version: Option<u64>,
    ) -> Result<(String, u64), ClusterFailure> {
        let state = self.state();
        if let Some(v) = if_version {
            if v != state.state.version {
                return Err(ClusterFailure::Refused(
                    qu_raft::state::Refusal::VersionMismatch {
                        expected: v,
                        actual: state.state.version,
                    }
                    .to_string(),
                ));
            }
        }
        let voters = self.voters();
        let learners = self.learners();
        if !voters.contains(&node)
            && !learners.contains(&node)
            && !state.state.peers.contains_key(&node)
        {
            return Err(ClusterFailure::Refused(format!(
                "node {node} is not a member (see 'qu node list')"
            )));
        }
        let remaining: BTreeSet<NodeId> = voters.iter().copied().filter(|v| *v != node).collect();
        if remaining.is_empty() {
            return Err(ClusterFailure::Refused(
                "refusing to remove the last node of the cluster: a cluster needs at least one"
                    .into(),
            ));
        }
        let need = remaining.len() / 2 + 1;
        let live = self.liveness.count_live(&remaining);
        if live < need {
            return Err(ClusterFailure::Refused(format!(
                "refusing to remove node {node}: the {} remaining nodes would have no quorum ({live} reachable, need {need})",
                remaining.len()
            )));
        }
        if node == self.me() {
            // Hand leadership to a live remaining voter, then let it remove us.
            let Some(target) = remaining
                .iter()
                .copied()
                .find(|v| self.liveness.is_live(*v))
            else {
                return Err(self.no_quorum());
            };
            self.raft
                .trigger()
                .transfer_leader(target)
                .await
                .map_err(|e| ClusterFailure::Failed(e.to_string()))?;
            let me = self.me();
            let _ = self
                .raft
                .wait(Some(MUTATION_TIMEOUT))
                .metrics(
                    |m| m.current_leader.is_some() && m.current_leader != Some(me),
                    "leadership moved",
                )
                .await;
            return Box::pin(self.remove_node(node, if_version)).await;
        }
        if voters.contains(&node) || learners.contains(&node) {
            // Out of the voters *and* the learners: a learner left in the
            // membership would go on receiving the log (and its secrets).
            self.remove_from_raft(node).await?;
        }
        // Tell the node while it is still trusted; best effort.
        if let Some(addr) = self.peer_addr(node) {
            let _ = self
                .pool
                .call_within::<_, MemberResponse>(
                    &addr,
                    &MemberRequest::Removed,
                    Duration::from_secs(2),
                )
                .await;
        }
        let mut version = self.state().state.version;
        if state.state.peers.contains_key(&node) {
            let deadline = Instant::now() + MUTATION_TIMEOUT;
            if let Response::Applied { version: v, .. } = self
                .propose_as_leader(
                    Request::new(ConfigCommand::RemovePeer { node_id: node }),
                    deadline,
                )
                .await?
                .0
            {
                version = v;
            }
        }
        self.liveness.forget(node);
        tracing::info!(%node, "removed node from the cluster");
        Ok((format!("removed node {node}"), version))
    }

    /// A cluster asks this node to join it (SPEC §5, hardened): `--join-from`
    /// first; a fresh node accepts the first valid join and pins its
    /// members; a claimed node changes nothing and answers only a caller
    /// that is already a current member of its own cluster (a `qu node add`
    /// retry, or re-adding it after a wipe). A stranger learns nothing
    /// beyond `hello`: not the cluster id, not the members.
    pub(super) async fn accept_join(
        &self,
        caller: &Stranger,
        req: JoinRequest,
    ) -> Result<NodeId, String> {
        const CLAIMED: &str = "this node already belongs to a cluster and refuses to join another; to move it, stop it, re-initialise it (qu init) and add it again";
        let _guard = self.form_lock.lock().await;
        let (Some(caller_fp), Some(caller_cert)) = (caller.fingerprint, caller.cert.as_ref())
        else {
            return Err("a join must come from a node presenting its certificate".into());
        };
        if !self.node.join_from.is_empty() && !self.node.join_from.contains(&caller_fp) {
            tracing::warn!(caller = %caller_fp, "refused a join from a node not listed in --join-from");
            return Err(format!(
                "this node accepts joins only from the fingerprints given to 'qu init --join-from'; {caller_fp} is not one of them"
            ));
        }
        let Ok(caller_id) = claimed_node_id(caller_cert) else {
            return Err("a join must come from a qu node certificate".into());
        };
        match self.claims.standing() {
            Standing::Removed => Err("this node was removed from a cluster; re-initialise it (qu init) before adding it again".into()),
            standing @ (Standing::Member | Standing::Wiped) => {
                let trust = self.trust.current();
                let pinned = trust.by_node(caller_id).is_some_and(|e| {
                    e.fingerprint == caller_fp && e.source == TrustSource::Cluster
                });
                // Once this node holds its cluster's peers, the caller must
                // be one of them; before (wiped, or joined but not yet
                // caught up) it knows its cluster only by the pins it kept.
                let state = self.state();
                let current = pinned
                    && (standing == Standing::Wiped
                        || !state.state.peers.contains_key(&self.me())
                        || state.state.peers.contains_key(&caller_id));
                if !current || self.claims.cluster_id().as_deref() != Some(&req.cluster_id) {
                    tracing::warn!(caller = %caller_fp, claims = %caller_id, "refused a join: this node belongs to a cluster, and the caller is not one of its current members");
                    return Err(CLAIMED.into());
                }
                if standing == Standing::Wiped {
                    self.record_claim(&req.cluster_id, Vec::new())
                        .await
                        .map_err(|e| e.to_string())?;
                    tracing::warn!(via = %caller_id, "RE-JOINED this node's own cluster after its data was lost: it takes the log from its leader again");
                }
                Ok(self.me())
            }
            Standing::Fresh => {
                let initialized = self.raft.is_initialized().await.map_err(|e| e.to_string())?;
                if initialized || self.log.has_history().map_err(|e| e.to_string())? {
                    return Err("this node already formed its own cluster and refuses to join another; to move it, re-initialise it (qu init)".into());
                }
                if self
                    .trust
                    .current()
                    .entries()
                    .iter()
                    .any(|e| e.source == TrustSource::Cluster)
                {
                    tracing::warn!(caller = %caller_fp, "refused a join: this node holds no cluster state but still pins cluster members (its data was probably wiped)");
                    return Err("this node holds no cluster state but still pins the members of a cluster (its data was probably wiped): only that cluster may re-add it, or drop the old pins with 'qu trust remove' on it first".into());
                }
                let members = checked_members(&req)?;
                if !members
                    .iter()
                    .any(|m| m.node_id == caller_id && m.fingerprint == caller_fp)
                {
                    return Err("the joining node is not among the members it names".into());
                }
                let pins = members.clone();
                self.trust
                    .update(move |store| {
                        for m in &pins {
                            store.add(crate::trust::TrustEntry {
                                node_id: m.node_id,
                                fingerprint: m.fingerprint,
                                advertise: m.advertise.clone(),
                                added_at: now_rfc3339(),
                                source: TrustSource::Cluster,
                            })?;
                        }
                        Ok(())
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                self.record_claim(&req.cluster_id, members.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::warn!(
                    cluster = %req.cluster_id,
                    via = %caller_fp,
                    members = members.len(),
                    "JOINED a cluster (trust on first use): this node now trusts its members and no other cluster can claim it"
                );
                Ok(self.me())
            }
        }
    }

    /// Marks this node removed (durably) and stops its Raft.
    pub(super) async fn mark_removed(&self, why: &str) {
        match self.claims.mark_removed().await {
            Ok(false) => return,
            Ok(true) => {}
            Err(e) => tracing::error!("cannot record the removal: {e}"),
        }
        tracing::warn!("this node was REMOVED from its cluster ({why}); it no longer serves it. To re-join: stop qu, move the state directory aside, 'qu init', and 'qu node add' it from a member");
        let _ = self.raft.shutdown().await;
    }
}

/// The members a join names, each checked: its certificate has the stated
/// fingerprint and claims the stated node id.
fn checked_members(req: &JoinRequest) -> Result<Vec<Pin>, String> {
    req.members
        .iter()
        .map(|m| {
            let bad = |why: &str| format!("the join names member {} with {why}", m.node_id);
            let fingerprint = m
                .fingerprint
                .parse::<Fingerprint>()
                .map_err(|_| bad("a malformed fingerprint"))?;
            let cert = crate::crypto::cert::cert_from_b64(&m.cert)
                .map_err(|_| bad("an unreadable certificate"))?;
            if crate::crypto::cert::fingerprint_of(&cert).ok() != Some(fingerprint) {
                return Err(bad("a certificate that does not match its fingerprint"));
            }
            if claimed_node_id(&cert).ok() != Some(m.node_id) {
                return Err(bad("a certificate that claims another node id"));
            }
            Ok(Pin {
                node_id: m.node_id,
                fingerprint,
                advertise: m.advertise.clone(),
            })
        })
        .collect()
}

/// A node add or removal's answer.
fn mutated(reply: LeaderReply) -> Result<(String, u64), ClusterFailure> {
    match reply {
        LeaderReply::Mutated {
            summary, version, ..
        } => Ok((summary, version)),
        other => Err(ClusterFailure::Failed(format!(
            "unexpected reply from the leader: {other:?}"
        ))),
    }
}

/// Resolves the alert names of a check being added to ids, against the
/// leader's state (an id is taken as it is; a name that matches no alert
/// is refused, naming the field).
fn resolve_references(
    state: &qu_raft::state::ClusterState,
    mut req: Request,
) -> Result<Request, ClusterFailure> {
    if let Command::Config(ConfigCommand::AddCheck { check }) = &mut req.command {
        let mut ids = Vec::with_capacity(check.alerts.len());
        for key in &check.alerts {
            let found = state
                .alerts
                .get(key)
                .or_else(|| state.alerts.values().find(|a| a.name == *key))
                .ok_or_else(|| {
                    ClusterFailure::Refused(format!(
                        "--alerts: no alert named {key:?} (see 'qu alert list'; add it first with 'qu alert add')"
                    ))
                })?;
            if !ids.contains(&found.id) {
                ids.push(found.id.clone());
            }
        }
        check.alerts = ids;
    }
    Ok(req)
}

/// Marks a node as being added for as long as it lives, so reconciliation
/// leaves it alone.
struct AddingGuard<'a> {
    daemon: &'a Daemon,
    node: NodeId,
}

impl<'a> AddingGuard<'a> {
    fn new(daemon: &'a Daemon, node: NodeId) -> AddingGuard<'a> {
        if let Ok(mut a) = daemon.adding.lock() {
            a.insert(node);
        }
        AddingGuard { daemon, node }
    }
}

impl Drop for AddingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut a) = self.daemon.adding.lock() {
            a.remove(&self.node);
        }
    }
}

impl Daemon {
    /// What the leadership policy sees now.
    fn observe(&self) -> Observation {
        let m = self.raft.metrics().borrow_watched().clone();
        let voters: BTreeSet<NodeId> = m.membership_config.voter_ids().collect();
        let live_since = voters
            .iter()
            .filter(|v| **v != self.me())
            .filter_map(|v| self.liveness.live_since(*v).map(|t| (*v, t)))
            .collect();
        let matched = m
            .replication
            .as_ref()
            .map(|r| {
                r.iter()
                    .map(|(k, v)| (*k, v.map(|l| l.index).unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        Observation {
            now: Instant::now(),
            me: self.me(),
            leader: m.current_leader,
            voters,
            live_since,
            matched,
            committed: m.local_committed.map(|l| l.index).unwrap_or(0),
        }
    }

    fn policy_view_of(
        &self,
        o: &Observation,
        d: &Decision,
        attempts: u64,
        cooldown: Duration,
    ) -> PolicyView {
        let preferred = o
            .voters
            .iter()
            .copied()
            .find(|v| *v == o.me || o.live_since.contains_key(v));
        let remaining_for = |n: NodeId| {
            o.live_since
                .get(&n)
                .map(|since| cooldown.saturating_sub(o.now.saturating_duration_since(*since)))
        };
        let (reason, remaining) = match d {
            Decision::Settled => (String::new(), None),
            Decision::Transfer { to } => (format!("transferring leadership to node {to}"), None),
            Decision::Wait { reason, remaining, .. } => (reason.clone(), *remaining),
            Decision::NotLeader => match (preferred, o.leader) {
                (p, l) if p == l => (String::new(), None),
                (_, None) => ("no master: election in progress or no quorum".into(), None),
                (Some(p), Some(_)) => (
                    format!("the master hands over to node {p} once it has been live for the cooldown and caught up"),
                    remaining_for(p).filter(|r| !r.is_zero()),
                ),
                (None, Some(_)) => (String::new(), None),
            },
        };
        PolicyView {
            preferred,
            reason,
            cooldown_secs: cooldown.as_secs(),
            cooldown_remaining_secs: remaining.map(|r| r.as_secs_f64().ceil() as u64),
            transfer_attempts: attempts,
        }
    }
}

/// Runs the leadership policy (SPEC §7) on every tick; acts only while
/// this node leads.
pub(super) async fn policy_loop(daemon: Arc<Daemon>, mut shutdown: watch::Receiver<bool>) {
    let interval = daemon.timing.ping_interval();
    let mut last_reason = String::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if daemon.is_removed() {
            continue;
        }
        let obs = daemon.observe();
        let (decision, attempts, cooldown) = match daemon.policy.lock() {
            Ok(mut p) => {
                let d = p.decide(&obs);
                (d, p.total_attempts(), p.cooldown())
            }
            Err(_) => continue,
        };
        let view = daemon.policy_view_of(&obs, &decision, attempts, cooldown);
        if let Ok(mut v) = daemon.policy_view.lock() {
            *v = view;
        }
        match decision {
            Decision::Transfer { to } => {
                tracing::info!(%to, "leadership policy: transferring leadership to the smallest live voter (live for the cooldown, log caught up)");
                if let Err(e) = daemon.raft.trigger().transfer_leader(to).await {
                    tracing::warn!(%to, "leadership transfer could not start: {e}");
                }
            }
            Decision::Wait { reason, .. } => {
                // Log when the reason changes in kind, not as its seconds tick.
                let kind: String = reason.chars().filter(|c| !c.is_ascii_digit()).collect();
                if kind != last_reason {
                    tracing::info!("leadership policy: staying master for now: {reason}");
                    last_reason = kind;
                }
            }
            _ => {}
        }
    }
}

/// On the leader: completes or rolls back membership changes a dead leader
/// left half done. A replicated peer outside the Raft membership for the
/// grace period is removed from the peers (roll back an add, finish a
/// removal); a learner left unpromoted is promoted once caught up.
pub(super) async fn reconcile_loop(daemon: Arc<Daemon>, mut shutdown: watch::Receiver<bool>) {
    let grace = daemon.reconcile_grace();
    // A leader duty: grace periods start anew with each term.
    if let Ok(mut u) = daemon.unmatched_since.lock() {
        u.clear();
    }
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(grace / 3) => {}
        }
        if daemon.is_removed() || daemon.leader() != Some(daemon.me()) {
            if let Ok(mut u) = daemon.unmatched_since.lock() {
                u.clear();
            }
            continue;
        }
        let m = daemon.raft.metrics().borrow_watched().clone();
        let voters: BTreeSet<NodeId> = m.membership_config.voter_ids().collect();
        let learners: BTreeSet<NodeId> = m.membership_config.membership().learner_ids().collect();
        let adding = daemon.adding.lock().map(|a| a.clone()).unwrap_or_default();
        let state = daemon.state();
        let now = Instant::now();
        let mut due_remove = Vec::new();
        let mut due_promote = Vec::new();
        let mut due_drop_learner = Vec::new();
        if let Ok(mut unmatched) = daemon.unmatched_since.lock() {
            let mut pending: BTreeSet<NodeId> = state
                .state
                .peers
                .keys()
                .copied()
                .filter(|p| !voters.contains(p) && *p != daemon.me() && !adding.contains(p))
                .collect();
            // Learners that are not replicated peers (a removal that died
            // half way): they would go on receiving the log and its secrets.
            pending.extend(
                learners
                    .iter()
                    .copied()
                    .filter(|l| !state.state.peers.contains_key(l) && !adding.contains(l)),
            );
            unmatched.retain(|n, _| pending.contains(n));
            for n in pending {
                let since = *unmatched.entry(n).or_insert(now);
                if now.saturating_duration_since(since) >= grace {
                    if !state.state.peers.contains_key(&n) && learners.contains(&n) {
                        due_drop_learner.push(n);
                    } else if learners.contains(&n) {
                        due_promote.push(n);
                    } else {
                        due_remove.push(n);
                    }
                }
            }
        }
        for n in due_drop_learner {
            tracing::warn!(node = %n, "removing a learner that is not a cluster member (a removal left half done)");
            match daemon.remove_from_raft(n).await {
                Ok(()) => {
                    if let Ok(mut u) = daemon.unmatched_since.lock() {
                        u.remove(&n);
                    }
                }
                Err(e) => tracing::warn!(node = %n, "cannot remove the learner: {e}"),
            }
        }
        let committed = m.local_committed.map(|l| l.index).unwrap_or(0);
        for n in due_promote {
            let matched = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&n))
                .and_then(|l| l.map(|l| l.index))
                .unwrap_or(0);
            if matched < committed {
                continue;
            }
            tracing::warn!(node = %n, "completing a half-done node add: promoting the caught-up learner to voter");
            if let Err(e) = daemon
                .raft
                .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([n])), false)
                .await
            {
                tracing::warn!(node = %n, "cannot promote: {e}");
            }
        }
        for n in due_remove {
            tracing::warn!(node = %n, "rolling back a half-done membership change: node is a replicated peer but not a Raft member; unpinning it everywhere (run 'qu node add' again to add it)");
            let deadline = Instant::now() + MUTATION_TIMEOUT;
            match daemon
                .propose_as_leader(
                    Request::new(ConfigCommand::RemovePeer { node_id: n }),
                    deadline,
                )
                .await
            {
                Ok(_) => {
                    if let Ok(mut u) = daemon.unmatched_since.lock() {
                        u.remove(&n);
                    }
                }
                Err(e) => tracing::warn!(node = %n, "cannot roll back: {e}"),
            }
        }
    }
}

/// Pings every member periodically to keep liveness fresh.
pub(super) async fn ping_loop(daemon: Arc<Daemon>, mut shutdown: watch::Receiver<bool>) {
    let interval = daemon.timing.ping_interval();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if daemon.is_removed() {
            continue;
        }
        let peers: Vec<NodeId> = daemon
            .state()
            .state
            .peers
            .keys()
            .copied()
            .filter(|p| *p != daemon.me())
            .collect();
        for node in peers {
            let Some(addr) = daemon.peer_addr(node) else {
                continue;
            };
            let d = daemon.clone();
            tokio::spawn(async move {
                let r = d
                    .pool
                    .call_within::<_, MemberResponse>(&addr, &MemberRequest::Ping, interval * 2)
                    .await;
                if r.is_ok() {
                    d.liveness.heard(node);
                }
            });
        }
    }
}

/// Notices from the applied membership that this node was removed: it was
/// in the membership once and an applied change left it out. (A joining
/// node replays older memberships that predate it; those do not count.)
pub(super) async fn removal_watch(daemon: Arc<Daemon>, mut shutdown: watch::Receiver<bool>) {
    let mut applied = daemon.applied.clone();
    let mut was_member = false;
    loop {
        {
            let a = applied.borrow_and_update().clone();
            let is_member = a.membership.nodes().any(|(id, _)| *id == daemon.me());
            if is_member {
                was_member = true;
            } else if was_member && !daemon.is_removed() {
                daemon
                    .mark_removed("the replicated membership no longer includes it")
                    .await;
            }
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            r = applied.changed() => if r.is_err() { return },
        }
    }
}
