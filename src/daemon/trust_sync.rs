//! Keeps `trust.yaml` equal to the replicated membership, through the
//! trust service (its only writer): at startup, and whenever the applied
//! peers change.
//!
//! Invariants:
//! - Once this node appears among its replicated peers, the `cluster`
//!   entries are exactly the peers (pins added, re-keyed, dropped; dropped
//!   pins lose their connections). A `tofu` pin of a non-member stays but
//!   grants no member RPC (`access`).
//! - Before that (joining and replaying the log from the start, or wiped
//!   and re-added), pins are only added: older states name fewer members
//!   than the join did, and dropping the leader's pin mid-replay would cut
//!   the node off its own catch-up.
//! - The pin of the leader this node replicates from is never dropped: a
//!   node wiped and re-added under its old id meets itself among the peers
//!   early in its replay, where later members (its leader among them) are
//!   not yet named; dropping the leader's pin there cut it off its own
//!   catch-up for good (found by the harness's membership soak). Its pin
//!   goes once the replay has moved past it and another node leads.
//! - A fresh or removed node's trust is left as it is.

use std::sync::Arc;

use tokio::sync::watch;

use super::claims::Standing;
use super::Daemon;
use crate::crypto::Fingerprint;
use crate::trust::Pin;
use qu_raft::model::Peer;

fn pin_of(peer: &Peer) -> Option<Pin> {
    Some(Pin {
        node_id: peer.node_id,
        fingerprint: peer.fingerprint.parse::<Fingerprint>().ok()?,
        advertise: peer.advertise.clone(),
    })
}

impl Daemon {
    /// One reconciliation of trust against the applied state.
    pub(super) async fn sync_trust(&self) {
        if !matches!(
            self.membership.standing(),
            Standing::Member | Standing::Wiped
        ) {
            return;
        }
        let state = self.state();
        let peers: Vec<Pin> = state.state.peers.values().filter_map(pin_of).collect();
        let result = if state.state.peers.contains_key(&self.me()) {
            let me = self.me();
            let leader = self
                .leader()
                .filter(|l| *l != me && !state.state.peers.contains_key(l));
            self.trust
                .update(|store| {
                    let keep = leader.and_then(|l| {
                        store
                            .entries()
                            .iter()
                            .find(|e| e.node_id == l)
                            .map(|e| Pin {
                                node_id: e.node_id,
                                fingerprint: e.fingerprint,
                                advertise: e.advertise.clone(),
                            })
                    });
                    let all: Vec<Pin> = peers.iter().cloned().chain(keep).collect();
                    Ok(store.reconcile(me, &all))
                })
                .await
        } else {
            let me = self.me();
            self.trust
                .update(|store| {
                    let keep: Vec<Pin> = store
                        .entries()
                        .iter()
                        .filter(|e| e.source == crate::trust::TrustSource::Cluster)
                        .filter(|e| !peers.iter().any(|p| p.node_id == e.node_id))
                        .map(|e| Pin {
                            node_id: e.node_id,
                            fingerprint: e.fingerprint,
                            advertise: e.advertise.clone(),
                        })
                        .collect();
                    let all: Vec<Pin> = peers.iter().cloned().chain(keep).collect();
                    Ok(store.reconcile(me, &all))
                })
                .await
        };
        match result {
            Ok(dropped) => {
                for node in dropped {
                    tracing::info!(%node, "unpinned a node that is not a cluster member");
                }
            }
            Err(e) => tracing::error!("cannot bring trust.yaml in line with the membership: {e}"),
        }
    }
}

/// Reconciles trust whenever the applied peers change.
pub(super) async fn trust_sync_loop(daemon: Arc<Daemon>, mut shutdown: watch::Receiver<bool>) {
    let mut applied = daemon.applied.clone();
    let mut known = applied.borrow_and_update().state.peers.clone();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            r = applied.changed() => if r.is_err() { return },
        }
        let peers = applied.borrow_and_update().state.peers.clone();
        if *peers != *known {
            daemon.sync_trust().await;
            known = peers;
        }
    }
}
