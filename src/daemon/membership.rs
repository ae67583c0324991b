//! Membership: who belongs to this node's cluster, and the operations
//! that change it — forming a cluster on first mutation, accepting a join,
//! adding and removing nodes (on the leader), reconciling changes a dead
//! leader left half done, and noticing this node's own removal.
//!
//! `Membership` owns this component's state, and is its only writer: the
//! claim (fresh / member / wiped / removed, in claim.yaml), the lock that
//! serialises formation and joins, the nodes a `qu node add` is working on,
//! and reconciliation's grace clocks. Everything else reads the standing
//! through `Membership::standing` and friends.
//!
//! Invariants:
//! - A fresh node is claimed by at most one cluster (`form_lock` + claim.yaml).
//! - A claimed node never changes its trust because of a `Join`.
//! - A node is added to the replicated peers (so every member pins it)
//!   before Raft contacts it as a learner, and promoted only once caught up.
//! - A node being added is never reconciled away while its add runs.
//! - A removed node leaves the voters *and* the learners (a learner would
//!   go on receiving the log and its secrets).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::ChangeMembers;
use tokio::sync::watch;
use tokio::time::Instant;

use super::claims::Standing;
use super::routing::{LeaderOp, LeaderReply};
use super::rpc::{
    ClusterFailure, HelloResponse, JoinRequest, MemberRequest, MemberResponse, StrangerRequest,
    StrangerResponse,
};
use super::Daemon;
use crate::crypto::cert::{claimed_node_id, der_b64_string};
use crate::crypto::Fingerprint;
use crate::ids::random_hex;
use crate::transport::client::call_stranger;
use crate::transport::{Stranger, TransportError};
use crate::trust::{now_rfc3339, Pin, TrustSource};
use qu_raft::model::Peer;
use qu_raft::state::{ConfigCommand, Request, Response};
use qu_raft::{NodeId, RaftNode};

use super::claims::Claims;
use super::cluster::{MUTATION_TIMEOUT, NODE_ADD_TIMEOUT, STRANGER_TIMEOUT};
use super::Timing;

/// The membership component's own state.
pub(super) struct Membership {
    claims: Claims,
    /// Serialises cluster formation and joins.
    form_lock: tokio::sync::Mutex<()>,
    /// Nodes a `qu node add` is working on (not yet to be reconciled).
    adding: std::sync::Mutex<BTreeSet<NodeId>>,
    /// Nodes reconciliation found out of place, and since when.
    unmatched_since: std::sync::Mutex<BTreeMap<NodeId, Instant>>,
    /// How long reconciliation waits before completing or rolling back a
    /// membership change nobody is working on.
    grace: Duration,
    /// The log level each member said it runs.
    levels: std::sync::Mutex<BTreeMap<NodeId, u32>>,
}

impl Membership {
    pub(super) fn new(claims: Claims, timing: Timing) -> Membership {
        Membership {
            claims,
            form_lock: tokio::sync::Mutex::new(()),
            adding: Default::default(),
            unmatched_since: Default::default(),
            levels: Default::default(),
            grace: match timing {
                Timing::Fast => Duration::from_secs(3),
                Timing::Lan => Duration::from_secs(30),
                Timing::Wan => Duration::from_secs(60),
            },
        }
    }

    /// Fresh, member, wiped or removed.
    pub(super) fn standing(&self) -> Standing {
        self.claims.standing()
    }

    pub(super) fn is_removed(&self) -> bool {
        self.claims.is_removed()
    }

    /// This node formed or joined a cluster and holds its state.
    pub(super) fn serves_cluster(&self) -> bool {
        self.claims.serves_cluster()
    }

    fn being_added(&self) -> BTreeSet<NodeId> {
        self.adding.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Forgets every grace clock (a new term starts them anew).
    fn reset_grace(&self) {
        if let Ok(mut u) = self.unmatched_since.lock() {
            u.clear();
        }
    }

    fn settled(&self, node: NodeId) {
        if let Ok(mut u) = self.unmatched_since.lock() {
            u.remove(&node);
        }
    }

    /// What reconciliation should do now, given the Raft membership and the
    /// replicated peers; starts the grace clock of every node out of place.
    fn plan(
        &self,
        now: Instant,
        me: NodeId,
        voters: &BTreeSet<NodeId>,
        learners: &BTreeSet<NodeId>,
        peers: &BTreeSet<NodeId>,
    ) -> ReconcilePlan {
        let adding = self.being_added();
        match self.unmatched_since.lock() {
            Ok(mut unmatched) => plan_reconcile(
                &mut unmatched,
                Snapshot {
                    now,
                    me,
                    voters,
                    learners,
                    peers,
                    adding: &adding,
                },
                self.grace,
            ),
            Err(_) => ReconcilePlan::default(),
        }
    }
}

impl Daemon {
    /// Refuses unless every member (voters and learners) runs log level
    /// `level` or later: an older node could not decode the entry and
    /// would stop applying the log. Members' levels are asked once and
    /// remembered (a downgrade is not supported).
    pub(super) async fn ensure_level(&self, level: u32) -> Result<(), ClusterFailure> {
        let members: Vec<NodeId> = self
            .raft
            .metrics()
            .borrow_watched()
            .membership_config
            .nodes()
            .map(|(id, _)| *id)
            .filter(|id| *id != self.me())
            .collect();
        let known = |n: &NodeId| {
            self.membership
                .levels
                .lock()
                .ok()
                .and_then(|l| l.get(n).copied())
        };
        let unknown: Vec<NodeId> = members
            .iter()
            .copied()
            .filter(|n| known(n).is_none_or(|l| l < level))
            .collect();
        let mut asks = tokio::task::JoinSet::new();
        for n in unknown {
            let Some(addr) = self.peer_addr(n) else {
                continue;
            };
            let pool = self.pool.clone();
            asks.spawn(async move {
                match pool
                    .call_within::<_, MemberResponse>(
                        &addr,
                        &MemberRequest::Level,
                        Duration::from_secs(2),
                    )
                    .await
                {
                    Ok(MemberResponse::Level(l)) => Some((n, l)),
                    _ => None,
                }
            });
        }
        while let Some(answer) = asks.join_next().await {
            if let Ok(Some((n, l))) = answer {
                if let Ok(mut levels) = self.membership.levels.lock() {
                    levels.insert(n, l);
                }
            }
        }
        let behind: Vec<String> = members
            .iter()
            .filter_map(|n| match known(n) {
                Some(l) if l >= level => None,
                Some(l) => Some(format!("node {n} runs log level {l}")),
                None => Some(format!(
                    "node {n} did not say which release it runs (down, or older than this one)"
                )),
            })
            .collect();
        if behind.is_empty() {
            Ok(())
        } else {
            Err(ClusterFailure::Refused(format!(
                "this change needs every member on a qu that reads log level {level}, and {}; upgrade (or start) them first, then retry",
                behind.join(", ")
            )))
        }
    }
}

/// What reconciliation sees.
struct Snapshot<'a> {
    now: Instant,
    me: NodeId,
    voters: &'a BTreeSet<NodeId>,
    learners: &'a BTreeSet<NodeId>,
    peers: &'a BTreeSet<NodeId>,
    adding: &'a BTreeSet<NodeId>,
}

/// What reconciliation will do.
#[derive(Debug, Default, PartialEq, Eq)]
struct ReconcilePlan {
    /// Learners that are not replicated peers (a removal that died half
    /// way): out of the Raft membership.
    drop_learner: Vec<NodeId>,
    /// Peers left as learners (an add that died before promotion): promote
    /// once caught up.
    promote: Vec<NodeId>,
    /// Peers outside the Raft membership (an add that died before the
    /// learner step, or a removal before the peers step): out of the peers.
    remove_peer: Vec<NodeId>,
}

/// The reconciliation decision, pure: a node out of place for `grace` (and
/// not being added) is due; grace clocks of nodes back in place are dropped.
fn plan_reconcile(
    unmatched: &mut BTreeMap<NodeId, Instant>,
    s: Snapshot<'_>,
    grace: Duration,
) -> ReconcilePlan {
    let mut pending: BTreeSet<NodeId> = s
        .peers
        .iter()
        .copied()
        .filter(|p| !s.voters.contains(p) && *p != s.me && !s.adding.contains(p))
        .collect();
    pending.extend(
        s.learners
            .iter()
            .copied()
            .filter(|l| !s.peers.contains(l) && !s.adding.contains(l)),
    );
    unmatched.retain(|n, _| pending.contains(n));
    let mut plan = ReconcilePlan::default();
    for n in pending {
        let since = *unmatched.entry(n).or_insert(s.now);
        if s.now.saturating_duration_since(since) < grace {
            continue;
        }
        if !s.peers.contains(&n) {
            plan.drop_learner.push(n);
        } else if s.learners.contains(&n) {
            plan.promote.push(n);
        } else {
            plan.remove_peer.push(n);
        }
    }
    plan
}

impl Daemon {
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

    /// Forms a one-node cluster if this node is fresh (SPEC §3).
    pub(super) async fn ensure_formed(&self) -> Result<(), ClusterFailure> {
        if self.membership.is_removed() {
            return Err(ClusterFailure::Refused(
                "this node was removed from its cluster; re-initialise it to use it again".into(),
            ));
        }
        let _guard = self.membership.form_lock.lock().await;
        let failed = |e: &dyn std::fmt::Display| {
            ClusterFailure::Failed(format!("cannot form a cluster: {e}"))
        };
        match self.membership.claims.standing() {
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
        self.membership
            .claims
            .record(cluster_id, join_members)
            .await
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
        if hello.level < qu_raft::state::LOG_LEVEL {
            return Err(ClusterFailure::Refused(format!(
                "{addr} runs an older qu (log level {}, this cluster writes level {}): it could not read this cluster's log. Upgrade qu on it first",
                hello.level,
                qu_raft::state::LOG_LEVEL
            )));
        }
        if id == self.me() {
            return Err(ClusterFailure::Refused(format!(
                "{addr} is this node itself"
            )));
        }
        let version = |d: &Daemon| d.state().state.version;
        if self.voters().contains(&id) {
            // Re-adding a member restores pins dropped by hand.
            self.sync_trust().await;
            return Ok((
                format!("node {id} is already a voter; its pin is restored"),
                version(self),
            ));
        }
        self.quorum_precheck()?;
        let _adding = AddingGuard::new(&self.membership, id);
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
            self.hand_over(target)
                .await
                .map_err(ClusterFailure::Failed)?;
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
        self.clocks.forget(node);
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
        let _guard = self.membership.form_lock.lock().await;
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
        match self.membership.claims.standing() {
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
                if !current || self.membership.claims.cluster_id().as_deref() != Some(&req.cluster_id) {
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
        match self.membership.claims.mark_removed().await {
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

/// Marks a node as being added for as long as it lives, so reconciliation
/// leaves it alone.
struct AddingGuard<'a> {
    membership: &'a Membership,
    node: NodeId,
}

impl<'a> AddingGuard<'a> {
    fn new(membership: &'a Membership, node: NodeId) -> AddingGuard<'a> {
        if let Ok(mut a) = membership.adding.lock() {
            a.insert(node);
        }
        AddingGuard { membership, node }
    }
}

impl Drop for AddingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut a) = self.membership.adding.lock() {
            a.remove(&self.node);
        }
    }
}

/// On the leader: completes or rolls back membership changes a dead leader
/// left half done. A replicated peer outside the Raft membership for the
/// grace period is removed from the peers (roll back an add, finish a
/// removal); a learner left unpromoted is promoted once caught up.
pub(super) async fn reconcile_loop(daemon: Arc<Daemon>, mut shutdown: watch::Receiver<bool>) {
    let membership = &daemon.membership;
    let grace = membership.grace;
    // A leader duty: grace periods start anew with each term.
    membership.reset_grace();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(grace / 3) => {}
        }
        if membership.is_removed() || daemon.leader() != Some(daemon.me()) {
            membership.reset_grace();
            continue;
        }
        let m = daemon.raft.metrics().borrow_watched().clone();
        let voters: BTreeSet<NodeId> = m.membership_config.voter_ids().collect();
        let learners: BTreeSet<NodeId> = m.membership_config.membership().learner_ids().collect();
        let peers: BTreeSet<NodeId> = daemon.state().state.peers.keys().copied().collect();
        let plan = membership.plan(Instant::now(), daemon.me(), &voters, &learners, &peers);
        for n in plan.drop_learner {
            tracing::warn!(node = %n, "removing a learner that is not a cluster member (a removal left half done)");
            match daemon.remove_from_raft(n).await {
                Ok(()) => membership.settled(n),
                Err(e) => tracing::warn!(node = %n, "cannot remove the learner: {e}"),
            }
        }
        let committed = m.local_committed.map(|l| l.index).unwrap_or(0);
        for n in plan.promote {
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
        for n in plan.remove_peer {
            tracing::warn!(node = %n, "rolling back a half-done membership change: node is a replicated peer but not a Raft member; unpinning it everywhere (run 'qu node add' again to add it)");
            let deadline = Instant::now() + MUTATION_TIMEOUT;
            match daemon
                .propose_as_leader(
                    Request::new(ConfigCommand::RemovePeer { node_id: n }),
                    deadline,
                )
                .await
            {
                Ok(_) => membership.settled(n),
                Err(e) => tracing::warn!(node = %n, "cannot roll back: {e}"),
            }
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
            } else if was_member && !daemon.membership.is_removed() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u64]) -> BTreeSet<NodeId> {
        v.iter().map(|&n| NodeId(n)).collect()
    }

    struct World {
        voters: BTreeSet<NodeId>,
        learners: BTreeSet<NodeId>,
        peers: BTreeSet<NodeId>,
        adding: BTreeSet<NodeId>,
    }

    impl World {
        fn plan(&self, clocks: &mut BTreeMap<NodeId, Instant>, now: Instant) -> ReconcilePlan {
            plan_reconcile(
                clocks,
                Snapshot {
                    now,
                    me: NodeId(1),
                    voters: &self.voters,
                    learners: &self.learners,
                    peers: &self.peers,
                    adding: &self.adding,
                },
                Duration::from_secs(3),
            )
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_kind_of_half_done_change_is_due_only_after_the_grace() {
        let w = World {
            voters: ids(&[1, 2]),
            // 3: a peer left unpromoted; 4: a stray learner (removal died).
            learners: ids(&[3, 4]),
            // 5: a peer that never became a Raft member.
            peers: ids(&[1, 2, 3, 5]),
            adding: ids(&[]),
        };
        let mut clocks = BTreeMap::new();
        let t0 = Instant::now();
        assert_eq!(w.plan(&mut clocks, t0), ReconcilePlan::default());
        assert_eq!(clocks.len(), 3, "a clock for each node out of place");
        tokio::time::advance(Duration::from_millis(2_999)).await;
        assert_eq!(
            w.plan(&mut clocks, Instant::now()),
            ReconcilePlan::default()
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            w.plan(&mut clocks, Instant::now()),
            ReconcilePlan {
                drop_learner: vec![NodeId(4)],
                promote: vec![NodeId(3)],
                remove_peer: vec![NodeId(5)],
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_being_added_or_back_in_place_is_left_alone() {
        let mut w = World {
            voters: ids(&[1, 2]),
            learners: ids(&[3]),
            peers: ids(&[1, 2, 3, 4]),
            adding: ids(&[3]),
        };
        let mut clocks = BTreeMap::new();
        w.plan(&mut clocks, Instant::now());
        assert_eq!(clocks.keys().copied().collect::<Vec<_>>(), vec![NodeId(4)]);
        // 4 becomes a voter before its grace ends: its clock is dropped.
        tokio::time::advance(Duration::from_secs(2)).await;
        w.voters.insert(NodeId(4));
        w.plan(&mut clocks, Instant::now());
        assert!(clocks.is_empty());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(
            w.plan(&mut clocks, Instant::now()),
            ReconcilePlan::default()
        );
        // The add of 3 ends without promotion: only now does its grace start.
        w.adding.clear();
        w.plan(&mut clocks, Instant::now());
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(w.plan(&mut clocks, Instant::now()).promote, vec![NodeId(3)]);
    }
}
