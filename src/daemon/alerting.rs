//! Alert dispatch on the leader (SPEC §10): works through the delivery
//! ledger in the replicated state.
//!
//! For each pending delivery the leader sends, then commits `delivered`
//! (or `failed` with the reason once retries — capped exponential backoff —
//! run past the horizon, or the receiver refuses for good).
//!
//! Invariants:
//! - Before every send the leader holds a confirmation, by a quorum, that
//!   it leads (`ensure_linearizable`) at most `CONFIRMATION_MAX_AGE` old:
//!   a leader cut off from the majority never pages, and a batch of sends
//!   shares one quorum round (10 000 flips never start 10 000 ReadIndexes).
//! - At most `MAX_SENDS_IN_FLIGHT` sends run at once.
//! - Once a page was sent, this leader retries *recording* it, never the
//!   send: a delivery whose outcome is being recorded is not sent again by
//!   the same leader.
//! - The retry horizon counts from the delivery's creation (its flip; for
//!   a page delayed by `--after`, from when it came due), so a delivery
//!   handed from leader to leader still gives up on time.
//! - A delayed page (`--after`) is sent only after the leader committed
//!   its release (`ReleaseDelivery`, valid only while the check is still
//!   in that outage); a recovery committed first settles it as skipped.
//!   The log orders the two, so across any failover exactly one wins: the
//!   page goes out once with its RECOVERED later, or neither does.
//! - A new leader resumes every delivery still pending in the ledger, so a
//!   page is lost by no failover. A page can be sent twice only when a
//!   leader dies between sending and recording (at-least-once); receivers
//!   can tell by the delivery id (SMTP Message-ID, webhook `delivery_id`).

use std::collections::{BTreeMap, HashMap, VecDeque};
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
use qu_raft::state::{RecordCommand, Request};

/// First retry delay, and its cap.
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A delivery still failing this long after its flip is recorded as failed.
const HORIZON: Duration = Duration::from_secs(30 * 60);
/// Sends running at once on the leader.
pub(super) const MAX_SENDS_IN_FLIGHT: usize = 64;
/// How old a leadership confirmation may be for a send to rely on it.
const CONFIRMATION_MAX_AGE: Duration = Duration::from_secs(1);
/// Settled deliveries are kept this long for `qu alert log`.
const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the leader knows of a delivery it is sending (`qu alert log`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// Attempts by this leader so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When the next attempt is due (ms since the epoch).
    pub next_retry_ms: Option<u64>,
}

/// A `qu alert test` page this node sent (kept in memory, the last few).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TestSend {
    pub alert: String,
    pub at_ms: u64,
    pub ok: bool,
    /// The error, when it failed.
    pub reason: Option<String>,
}

/// Test pages remembered for `qu alert log`.
const TESTS_KEPT: usize = 20;

/// Deliveries this leader is working on, and how far each got.
#[derive(Default)]
pub(super) struct InFlight(Mutex<HashMap<String, Progress>>);

impl InFlight {
    fn claim(&self, id: &str) -> bool {
        self.0
            .lock()
            .map(|mut s| {
                if s.contains_key(id) {
                    false
                } else {
                    s.insert(id.to_string(), Progress::default());
                    true
                }
            })
            .unwrap_or(false)
    }
    fn release(&self, id: &str) {
        if let Ok(mut s) = self.0.lock() {
            s.remove(id);
        }
    }
    fn update(&self, id: &str, p: Progress) {
        if let Ok(mut s) = self.0.lock() {
            if let Some(slot) = s.get_mut(id) {
                *slot = p;
            }
        }
    }
    fn snapshot(&self) -> BTreeMap<String, Progress> {
        self.0
            .lock()
            .map(|s| s.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}

/// The alert dispatcher's own state: the shared HTTP client, the send
/// budget, the shared leadership confirmation and the deliveries being sent.
pub(super) struct Dispatcher {
    /// Shared client for webhook and Discord alerts.
    http: reqwest::Client,
    /// Alert sends running at once (at most `MAX_SENDS_IN_FLIGHT`).
    sends: Arc<tokio::sync::Semaphore>,
    confirmations: Confirmations,
    /// Deliveries being sent by this node (across leadership terms).
    in_flight: Arc<InFlight>,
    /// The last test pages this node sent.
    tests: Mutex<VecDeque<TestSend>>,
    /// Sends between "confirmed, sending" and "outcome recorded": a
    /// planned handover waits for them (see `Handover`).
    handover: Handover,
    /// Outcomes this node recorded, by (alert name, outcome), for
    /// `qu_deliveries_total`.
    outcomes: Mutex<BTreeMap<(String, String), u64>>,
}

/// Keeps a planned leadership handover from falling between a send and
/// the record of its outcome, which would page twice (the next leader finds
/// the delivery pending). A send enters before it starts and leaves once
/// its outcome is recorded (or it will retry later); a handover first
/// closes the door, then waits until nobody is inside. Enter-then-check on
/// one side and close-then-wait on the other (both SeqCst) means at least
/// one of them sees the other.
#[derive(Default)]
pub(super) struct Handover {
    inside: std::sync::atomic::AtomicUsize,
    closed: std::sync::atomic::AtomicBool,
}

/// A send's stay inside `Handover`.
pub(super) struct Inside<'a>(&'a Handover);

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        self.0
            .inside
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Handover {
    /// Enters unless a handover is under way.
    pub(super) fn enter(&self) -> Option<Inside<'_>> {
        use std::sync::atomic::Ordering::SeqCst;
        self.inside.fetch_add(1, SeqCst);
        let guard = Inside(self);
        (!self.closed.load(SeqCst)).then_some(guard)
    }

    /// Closes the door; true once nobody is inside (within `within`).
    pub(super) async fn close(&self, within: Duration) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        self.closed.store(true, SeqCst);
        let until = Instant::now() + within;
        while self.inside.load(SeqCst) > 0 {
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    pub(super) fn open(&self) {
        self.closed
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Dispatcher {
    pub(super) fn new(http: reqwest::Client) -> Dispatcher {
        Dispatcher {
            http,
            sends: Arc::new(tokio::sync::Semaphore::new(MAX_SENDS_IN_FLIGHT)),
            confirmations: Confirmations::default(),
            in_flight: Arc::default(),
            tests: Mutex::new(VecDeque::new()),
            handover: Handover::default(),
            outcomes: Mutex::new(BTreeMap::new()),
        }
    }

    /// Deliveries this node recorded as sent or failed, by (alert, outcome).
    pub(super) fn outcomes(&self) -> BTreeMap<(String, String), u64> {
        self.outcomes.lock().map(|m| m.clone()).unwrap_or_default()
    }

    pub(super) fn handover(&self) -> &Handover {
        &self.handover
    }

    /// What this node is sending now, and the test pages it sent.
    pub(super) fn progress(&self) -> (BTreeMap<String, Progress>, Vec<TestSend>) {
        let tests = self
            .tests
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        (self.in_flight.snapshot(), tests)
    }

    fn remember_test(&self, t: TestSend) {
        if let Ok(mut tests) = self.tests.lock() {
            if tests.len() >= TESTS_KEPT {
                tests.pop_front();
            }
            tests.push_back(t);
        }
    }

    /// Sends running now.
    pub(super) fn sends_in_flight(&self) -> usize {
        MAX_SENDS_IN_FLIGHT - self.sends.available_permits()
    }
}

/// The last leadership confirmation, shared by every send: concurrent
/// callers wait for one quorum round instead of each starting their own.
#[derive(Default)]
struct Confirmations {
    last: tokio::sync::Mutex<Option<Instant>>,
    rounds: std::sync::atomic::AtomicU64,
}

impl Daemon {
    /// True when this node leads and a quorum confirms it right now.
    pub(super) async fn confirm_leadership(&self) -> bool {
        if self.leader() != Some(self.me()) || self.membership.is_removed() {
            return false;
        }
        self.alerting
            .confirmations
            .rounds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        matches!(
            tokio::time::timeout(
                Duration::from_secs(3),
                self.raft.ensure_linearizable(ReadPolicy::ReadIndex)
            )
            .await,
            Ok(Ok(_))
        )
    }

    /// True when this node leads and a quorum confirmed it at most
    /// `CONFIRMATION_MAX_AGE` ago (one round serves every caller).
    async fn confirmed_leader(&self) -> bool {
        if self.leader() != Some(self.me()) || self.membership.is_removed() {
            return false;
        }
        let mut last = self.alerting.confirmations.last.lock().await;
        if last.is_some_and(|t| t.elapsed() <= CONFIRMATION_MAX_AGE) {
            return true;
        }
        let asked = Instant::now();
        if self.confirm_leadership().await {
            *last = Some(asked);
            true
        } else {
            *last = None;
            false
        }
    }

    /// Quorum rounds started to confirm leadership (status, tests).
    pub(super) fn confirmation_rounds(&self) -> u64 {
        self.alerting
            .confirmations
            .rounds
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records a delivery's outcome, retrying the *recording* (never the
    /// send) while this node leads. False when leadership was lost first:
    /// the next leader finds the delivery pending and sends it again.
    async fn record_outcome(&self, id: &str, status: DeliveryStatus) -> bool {
        let mut backoff = Duration::from_millis(200);
        loop {
            let deadline = Instant::now() + super::cluster::MUTATION_TIMEOUT;
            let req = Request::new(RecordCommand::DeliveryOutcome {
                id: id.to_string(),
                status: status.clone(),
            });
            let result = if super::failpoint_once("fail-record-outcome") {
                Err(super::rpc::ClusterFailure::Failed(
                    "failpoint fail-record-outcome".into(),
                ))
            } else {
                self.propose_as_leader(req, deadline).await.map(|_| ())
            };
            match result {
                Ok(()) => {
                    let alert = self
                        .state()
                        .state
                        .deliveries
                        .get(id)
                        .map(|d| {
                            if d.alert_name.is_empty() {
                                d.alert_id.clone()
                            } else {
                                d.alert_name.clone()
                            }
                        })
                        .unwrap_or_default();
                    let outcome = match &status {
                        DeliveryStatus::Delivered { .. } => "delivered",
                        DeliveryStatus::Failed { .. } => "failed",
                        DeliveryStatus::Skipped { .. } => "skipped",
                        DeliveryStatus::Silenced { .. } => "silenced",
                        DeliveryStatus::Pending => "pending",
                    };
                    if let Ok(mut m) = self.alerting.outcomes.lock() {
                        *m.entry((alert, outcome.to_string())).or_default() += 1;
                    }
                    return true;
                }
                // Already settled (a replay, or another path recorded it).
                Err(super::rpc::ClusterFailure::Refused(_)) => return true,
                Err(e) if self.leader() == Some(self.me()) && !self.membership.is_removed() => {
                    tracing::warn!(delivery = %id, "cannot record the delivery outcome yet ({e}); retrying the record, not the send");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    tracing::warn!(delivery = %id, "leadership lost before the delivery outcome was recorded ({e}); the next leader will resend");
                    return false;
                }
            }
        }
    }

    /// Waits out a delayed page's `--after`, then commits its release.
    /// True once released (the check was still DOWN: send it); false when
    /// the check recovered first (the ledger settled the page as skipped:
    /// nobody is told) or this node stopped leading (the next one waits
    /// out what is left and releases it).
    async fn release_when_due(&self, d: &Delivery) -> bool {
        let Some(not_before) = d.not_before_ms else {
            return true;
        };
        self.alerting.in_flight.update(
            &d.id,
            Progress {
                attempts: 0,
                last_error: None,
                next_retry_ms: Some(not_before),
            },
        );
        let mut applied = self.applied.clone();
        loop {
            let wait = Duration::from_millis(not_before.saturating_sub(now_ms()));
            if wait.is_zero() {
                break;
            }
            // Wake early when the ledger changes: a recovery settles it.
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                changed = applied.changed() => {
                    if changed.is_err() {
                        return false;
                    }
                }
            }
            if !self
                .state()
                .state
                .deliveries
                .get(&d.id)
                .is_some_and(|cur| cur.is_pending() && cur.awaits_release())
            {
                break;
            }
        }
        loop {
            match self.state().state.deliveries.get(&d.id) {
                Some(cur) if cur.is_pending() && !cur.awaits_release() => return true,
                Some(cur) if cur.is_pending() => {}
                _ => return false,
            }
            if self.leader() != Some(self.me()) || self.membership.is_removed() {
                return false;
            }
            let deadline = Instant::now() + super::cluster::MUTATION_TIMEOUT;
            let req = Request::new(RecordCommand::ReleaseDelivery {
                id: d.id.clone(),
                at_ms: now_ms(),
            });
            match self.propose_as_leader(req, deadline).await {
                Ok(_) => {
                    tracing::info!(delivery = %d.id, "the check is still DOWN after the alert's --after: sending the page");
                    return true;
                }
                Err(super::rpc::ClusterFailure::Refused(why)) => {
                    tracing::info!(delivery = %d.id, "delayed page not sent: {why}");
                    return false;
                }
                Err(e) => {
                    tracing::warn!(delivery = %d.id, "cannot release the delayed page yet ({e}); retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
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
        if d.awaits_release() && !self.release_when_due(&d).await {
            return;
        }
        let provider = provider_for(&alert.kind, &self.alerting.http);
        let cluster = state.state.cluster_id.clone().unwrap_or_default();
        let msg = Message::from_delivery(&d, Some(&alert), &cluster, Some(self.me()));
        let mut backoff = BACKOFF_START;
        let mut attempts = 0u32;
        loop {
            // Disabled after the page was made: it is not sent.
            if self
                .state()
                .state
                .alerts
                .get(&d.alert_id)
                .is_some_and(|a| a.disabled)
            {
                self.record_outcome(
                    &d.id,
                    DeliveryStatus::Skipped {
                        at_ms: now_ms(),
                        reason: "alert disabled".into(),
                    },
                )
                .await;
                return;
            }
            let _send = match self.alerting.sends.clone().acquire_owned().await {
                Ok(permit) => permit,
                Err(_) => return,
            };
            // Inside from before the leadership check until the outcome is
            // recorded (or a retry is due), so a planned handover never
            // falls in between.
            let Some(inside) = self.alerting.handover.enter() else {
                tracing::info!(delivery = %d.id, "leadership is being handed over: leaving the delivery to the next leader");
                return;
            };
            if !self.confirmed_leader().await {
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
                    // A delayed page's horizon starts when it came due.
                    let start = d.not_before_ms.unwrap_or(d.created_ms).max(d.created_ms);
                    let age = Duration::from_millis(now_ms().saturating_sub(start));
                    if age + wait > HORIZON {
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
                    drop(inside);
                    tracing::warn!(delivery = %d.id, alert = %alert.name, %reason, retry_in = ?wait, "page not delivered yet");
                    self.alerting.in_flight.update(
                        &d.id,
                        Progress {
                            attempts,
                            last_error: Some(reason),
                            next_retry_ms: Some(now_ms() + wait.as_millis() as u64),
                        },
                    );
                    drop(_send);
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
        let alert =
            qu_raft::model::lookup_by_id_or_name(&state.state.alerts, key, "alert", |a| &a.name)
                .cloned()
                .map_err(|e| e.message)?;
        if !self.confirm_leadership().await {
            return Err("this node is not a confirmed leader (no quorum?); not sending".into());
        }
        let provider = provider_for(&alert.kind, &self.alerting.http);
        let mut msg = Message::test(&alert.name, Some(self.me())).with_templates(&alert);
        msg.cluster = state.state.cluster_id.clone().unwrap_or_default();
        let sent = provider.send(&msg).await;
        self.alerting.remember_test(TestSend {
            alert: alert.name.clone(),
            at_ms: now_ms(),
            ok: sent.is_ok(),
            reason: sent.as_ref().err().map(|e| e.to_string()),
        });
        sent.map(|_| {
            let title = msg.title(crate::alerts::template::Markup::Plain);
            let mut out = format!(
                "test page sent through {} alert {}: {title:?}",
                alert.kind.type_name(),
                alert.name
            );
            // A --body template is shown as it rendered, for the operator
            // to check their text.
            if alert.body.is_some() {
                let body = msg.body(crate::alerts::template::Markup::Plain);
                out.push_str(&format!("\n{}", body.trim_end()));
            }
            out
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
    super::failpoint_panic("panic-dispatch");
    // Tracked across terms: a send still finishing from an earlier term of
    // this node's leadership is not started twice.
    let in_flight = daemon.alerting.in_flight.clone();
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
        if daemon.leader() != Some(daemon.me()) || daemon.membership.is_removed() {
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
            let stale = state
                .state
                .deliveries
                .values()
                .any(|d| d.status.settled_at_ms().is_some_and(|at| at < before_ms));
            if stale {
                let deadline = Instant::now() + super::cluster::MUTATION_TIMEOUT;
                let _ = daemon
                    .propose_as_leader(
                        Request::new(RecordCommand::PruneDeliveries { before_ms }),
                        deadline,
                    )
                    .await;
            }
            super::history::prune_due(&daemon, &state.state).await;
        }
    }
}

#[cfg(test)]
mod handover_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_handover_waits_for_sends_inside_and_keeps_new_ones_out() {
        let h = Handover::default();
        let inside = h.enter().unwrap();
        let closing = h.close(Duration::from_secs(10));
        tokio::pin!(closing);
        // Nobody new gets in once the door is closing.
        let first = tokio::select! {
            biased;
            _ = &mut closing => true,
            _ = tokio::task::yield_now() => false,
        };
        assert!(!first, "the handover waits while a send is inside");
        assert!(h.enter().is_none());
        drop(inside);
        assert!(closing.await, "closed once the send left");
        h.open();
        assert!(h.enter().is_some());
        // A send that never leaves: the handover gives up in time.
        let _stuck = h.enter().unwrap();
        assert!(!h.close(Duration::from_secs(1)).await);
    }
}
