//! Who may make which member request: a pure decision over where the
//! (TLS-authenticated) caller stands in this node's view of the cluster.
//!
//! Being pinned only gets a caller through TLS; these rules hold every
//! member RPC to the membership:
//! - Raft traffic (append, snapshot, transfer, vote, pre-vote) comes only
//!   from voters of this node's effective Raft membership, or from
//!   replicated peers that are not learners (a lagging node must accept a
//!   leader it has not yet seen promoted). A node that is not yet in its
//!   own membership (joining, or re-added after a wipe, its log empty)
//!   takes it from the members its claiming join pinned (`cluster` trust
//!   entries) and nobody else.
//! - Member requests (ping, propose, node add/remove, report, reads, alert
//!   test) come only from replicated peers (again: while this node is not
//!   yet among the peers, from the members its join pinned).
//! - `removed` comes only from the leader (checked by the service).
//!
//! An operator's `tofu` pin of a non-member grants nothing here.

use super::rpc::MemberRequest;

/// What kind of request it is, for authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Raft,
    Member,
}

pub fn class_of(req: &MemberRequest) -> Class {
    match req {
        MemberRequest::Append(_)
        | MemberRequest::Vote(_)
        | MemberRequest::PreVote(_)
        | MemberRequest::Snapshot { .. }
        | MemberRequest::TransferLeader(_) => Class::Raft,
        MemberRequest::Ping
        | MemberRequest::OnLeader { .. }
        | MemberRequest::Removed
        | MemberRequest::Report { .. }
        | MemberRequest::LastRound { .. }
        | MemberRequest::Level
        | MemberRequest::Probe { .. }
        | MemberRequest::Version
        | MemberRequest::Rollup { .. }
        | MemberRequest::Clock { .. } => Class::Member,
    }
}

/// Where the caller stands, as this node sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallerStanding {
    /// A voter of this node's effective Raft membership.
    pub voter: bool,
    /// A learner of it.
    pub learner: bool,
    /// In the replicated peers.
    pub peer: bool,
    /// Pinned because the cluster says it is a member (`cluster` entry).
    pub cluster_pinned: bool,
}

/// Where this node itself stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SelfStanding {
    /// This node appears in its own effective Raft membership.
    pub in_membership: bool,
    /// This node appears in its replicated peers.
    pub in_peers: bool,
}

/// Whether `caller` may make a request of `class`.
pub fn allowed(class: Class, me: SelfStanding, caller: CallerStanding) -> bool {
    match class {
        Class::Raft => {
            caller.voter
                || (caller.peer && !caller.learner)
                || (!me.in_membership && caller.cluster_pinned)
        }
        Class::Member => caller.peer || (!me.in_peers && caller.cluster_pinned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMBER: SelfStanding = SelfStanding {
        in_membership: true,
        in_peers: true,
    };
    const JOINING: SelfStanding = SelfStanding {
        in_membership: false,
        in_peers: false,
    };

    fn caller(voter: bool, learner: bool, peer: bool, cluster_pinned: bool) -> CallerStanding {
        CallerStanding {
            voter,
            learner,
            peer,
            cluster_pinned,
        }
    }

    #[test]
    fn a_pinned_non_member_may_do_nothing() {
        // tofu pin only, or a cluster pin left over on a member node
        for pinned in [false, true] {
            let c = caller(false, false, false, pinned);
            assert!(!allowed(Class::Raft, MEMBER, c));
            assert!(!allowed(Class::Member, MEMBER, c));
        }
    }

    #[test]
    fn voters_and_peers_are_served() {
        let voter = caller(true, false, true, true);
        assert!(allowed(Class::Raft, MEMBER, voter));
        assert!(allowed(Class::Member, MEMBER, voter));
        // A leader this node has not yet seen promoted, but a peer.
        let fresh_voter = caller(false, false, true, true);
        assert!(allowed(Class::Raft, MEMBER, fresh_voter));
    }

    #[test]
    fn a_learner_sends_no_raft_traffic_but_may_ping_and_report() {
        let learner = caller(false, true, true, true);
        assert!(!allowed(Class::Raft, MEMBER, learner));
        assert!(allowed(Class::Member, MEMBER, learner));
    }

    #[test]
    fn a_removed_node_is_refused_everything() {
        // Out of the voters and the peers; its pin may not be gone yet.
        let removed = caller(false, false, false, true);
        assert!(!allowed(Class::Raft, MEMBER, removed));
        assert!(!allowed(Class::Member, MEMBER, removed));
    }

    #[test]
    fn a_joining_node_takes_traffic_only_from_the_members_its_join_pinned() {
        let join_member = caller(false, false, false, true);
        assert!(allowed(Class::Raft, JOINING, join_member));
        assert!(allowed(Class::Member, JOINING, join_member));
        let stranger_pinned_by_hand = caller(false, false, false, false);
        assert!(!allowed(Class::Raft, JOINING, stranger_pinned_by_hand));
        assert!(!allowed(Class::Member, JOINING, stranger_pinned_by_hand));
    }
}
