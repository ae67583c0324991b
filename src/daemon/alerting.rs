//! Alert dispatch on the leader (SPEC §10): works through the delivery
//! ledger in the replicated state.
//!
//! For each pending delivery the leader sends, then commits `delivered`
//! (or `failed` with the reason once retries — capped exponential backoff —
//! run past the horizon, or the receiver refuses for good).
//!
//! Invariants:
//! - Before every send the leader confirms, with a quorum, that it still
//!   leads (`ensure_linearizable`): a leader cut off from the majority never
//!   pages.
//! - A new leader resumes every delivery still pending in the ledger, so a
//!   page is lost by no failover. A page can be sent twice only when a
//!   leader dies between sending and recording (at-least-once); receivers
//!   can tell by the delivery id (SMTP Message-ID, webhook `delivery_id`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::raft::ReadPolicy;
use tokio::sync::watch;
use tokio::time::Instant;

use super::Daemon;
use crate::alerts::message::Message;
use crate::alerts::{provider_for, SendError};
use crate::checks::scheduler::now_ms;
use qu_raft::model::{Delivery, DeliveryStatus};
use qu_raft::state::{Command, Request};

/// First retry delay, and its cap.
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A delivery still failing after this long is recorded as failed.
const HORIZON: Duration = Duration::from_secs(30 * 60);
/// Settled deliveries are kept this long for `qu alert log`.
const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Deliveries this leader is working on.
#[derive(Default)]
pub(super) struct InFlight(Mutex<HashSet<String>>);

impl InFlight {
    fn claim(&self, id: &str) -> bool {
        self.0
            .lock()
            .map(|mut s| s.insert(id.to_string()))
            .unwrap_or(false)
    }
    fn release(&self, id: &str) {
        if let Ok(mut s) = self.0.lock() {
            s.remove(id);
        }
    }
}

impl Daemon {
    /// True when this node leads and a quorum confirms it right now.
    pub(super) async fn confirm_leadership(&self) -> bool {
        if self.leader() != Some(self.me()) || self.is_removed() {
            return false;
        }
        matches!(
            tokio::time::timeout(
                Duration::from_secs(3),
                self.raft.ensure_linearizable(ReadPolicy::ReadIndex)
            )
            .await,
            Ok(Ok(_))
        )
    }

    async fn record_outcome(&self, id: &str, status: DeliveryStatus) {
        let deadline = Instant::now() + super::cluster::MUTATION_TIMEOUT;
        let req = Request::new(Command::DeliveryOutcome {
            id: id.to_string(),
            status,
        });
        if let Err(e) = self.propose_as_leader(req, deadline).await {
            tracing::warn!(delivery = %id, "cannot record the delivery outcome (the next leader will resend): {e}");
        }
    }

    /// Sends one delivery until it is delivered, refused, past the horizon,
    /// or this node stops leading.
    async fn deliver(self: Arc<Self>, d: Delivery) {
        let state = self.state();
        let Some(alert) = state.state.alerts.get(&d.alert_id).cloned() else {
            self.record_outcome(
                &d.id,
                DeliveryStatus::Failed {
                    at_ms: now_ms(),
                    attempts: 0,
                    reason: "the alert was removed before the page was sent".into(),
                },
            )
            .await;
            return;
        };
        let provider = provider_for(&alert.kind, &self.alert_http);
        let msg = Message::from_delivery(&d, Some(self.me()));
        let started = Instant::now();
        let mut backoff = BACKOFF_START;
        let mut attempts = 0u32;
        loop {
            if !self.confirm_leadership().await {
                tracing::info!(delivery = %d.id, "not confirmed as leader: leaving the delivery to the next leader");
                return;
            }
            super::failpoint("before-send");
            attempts += 1;
            match provider.send(&msg).await {
                Ok(()) => {
                    tracing::info!(delivery = %d.id, alert = %alert.name, check = %d.check_name, event = ?msg.event, attempts, "page delivered");
                    self.record_outcome(
                        &d.id,
                        DeliveryStatus::Delivered {
                            at_ms: now_ms(),
                            attempts,
                        },
                    )
                    .await;
                    return;
                }
                Err(SendError::Permanent(reason)) => {
                    tracing::warn!(delivery = %d.id, alert = %alert.name, %reason, "page refused by the receiver");
                    self.record_outcome(
                        &d.id,
                        DeliveryStatus::Failed {
                            at_ms: now_ms(),
                            attempts,
                            reason,
                        },
                    )
                    .await;
                    return;
                }
                Err(SendError::Retry { reason, after }) => {
                    let wait = after.unwrap_or(backoff);
                    if started.elapsed() + wait > HORIZON {
                        let reason = format!("{reason} (gave up after {attempts} attempts)");
                        self.record_outcome(
                            &d.id,
                            DeliveryStatus::Failed {
                                at_ms: now_ms(),
                                attempts,
                                reason,
                            },
                        )
                        .await;
                        return;
                    }
                    tracing::warn!(delivery = %d.id, alert = %alert.name, %reason, retry_in = ?wait, "page not delivered yet");
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

impl Daemon {
    /// `qu alert test`: one attempt, now, from the leader.
    pub(super) async fn alert_test_as_leader(&self, key: &str) -> Result<String, String> {
        let state = self.state();
        let alert = qu_raft::model::find_by_id_or_name(&state.state.alerts, key, |a| &a.name)
            .cloned()
            .ok_or_else(|| format!("no alert with id or name {key:?} (see 'qu alert list')"))?;
        if !self.confirm_leadership().await {
            return Err("this node is not a confirmed leader (no quorum?); not sending".into());
        }
        let provider = provider_for(&alert.kind, &self.alert_http);
        let msg = Message::test(&alert.name, Some(self.me()));
        provider
            .send(&msg)
            .await
            .map(|_| {
                format!(
                    "test page sent through {} alert {}",
                    alert.kind.type_name(),
                    alert.name
                )
            })
            .map_err(|e| {
                format!(
                    "{} alert {} failed: {e}",
                    alert.kind.type_name(),
                    alert.name
                )
            })
    }
}

/// On the leader: starts a task per pending delivery; prunes old records.
pub(super) async fn dispatch_loop(daemon: Arc<Daemon>, mut shutdown: watch::Receiver<bool>) {
    let in_flight = Arc::new(InFlight::default());
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut applied = daemon.applied.clone();
    let mut last_prune = Instant::now();
    loop {
        // A new page goes out as soon as its flip is applied; the tick
        // catches retries and a leadership gained.
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {}
            changed = applied.changed() => {
                if changed.is_err() {
                    return;
                }
                applied.borrow_and_update();
            }
        }
        if daemon.leader() != Some(daemon.me()) || daemon.is_removed() {
            continue;
        }
        let state = daemon.state();
        for d in state.state.deliveries.values().filter(|d| d.is_pending()) {
            if !in_flight.claim(&d.id) {
                continue;
            }
            let (daemon, d, in_flight) = (daemon.clone(), d.clone(), in_flight.clone());
            tokio::spawn(async move {
                let id = d.id.clone();
                daemon.deliver(d).await;
                in_flight.release(&id);
            });
        }
        if last_prune.elapsed() > Duration::from_secs(3600) {
            last_prune = Instant::now();
            let before_ms = now_ms().saturating_sub(RETENTION.as_millis() as u64);
            let stale = state.state.deliveries.values().any(|d| match &d.status {
                DeliveryStatus::Pending => false,
                DeliveryStatus::Delivered { at_ms, .. } | DeliveryStatus::Failed { at_ms, .. } => {
                    *at_ms < before_ms
                }
            });
            if stale {
                let deadline = Instant::now() + super::cluster::MUTATION_TIMEOUT;
                let _ = daemon
                    .propose_as_leader(
                        Request::new(Command::PruneDeliveries { before_ms }),
                        deadline,
                    )
                    .await;
            }
        }
    }
}
