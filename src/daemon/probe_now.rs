//! `qu check test`: every member probes a check (or a check not added yet)
//! at once, and the node that took the request applies the quorum rule to
//! the answers.
//!
//! Invariants: nothing is committed, reported to the aggregator or paged;
//! the whole test is bounded by the probe timeout plus `ANSWER_MARGIN`
//! (a member that has not answered by then is listed as not answering).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::control::{ControlError, ControlReply, NodeTest, TestReport, TestSubject};
use super::rpc::{MemberRequest, MemberResponse};
use super::Daemon;
use crate::checks::aggregate::{verdict, ProbeReport, Verdict};
use qu_raft::model::{Check, CheckKind};
use qu_raft::NodeId;

/// The longest probe timeout a test may ask for.
pub const MAX_TEST_TIMEOUT_MS: u64 = 60_000;
/// How long after the probe timeout a member's answer is still awaited.
const ANSWER_MARGIN: Duration = Duration::from_secs(3);

impl Daemon {
    pub(super) async fn check_test(
        self: &Arc<Self>,
        subject: TestSubject,
    ) -> Result<ControlReply, ControlError> {
        let cerr = |e: String| ControlError::new(e);
        let (name, kind, timeout_ms) = match subject {
            TestSubject::Check { id_or_name } => {
                let state = self.state();
                let c: Check = qu_raft::model::lookup_by_id_or_name(
                    &state.state.checks,
                    &id_or_name,
                    "check",
                    |c| &c.name,
                )
                .map_err(|e| cerr(e.message))?
                .clone();
                (c.name, c.kind, c.timeout_ms)
            }
            TestSubject::Spec { kind, timeout_ms } => {
                admit_test_spec(&kind, timeout_ms).map_err(cerr)?;
                (kind.target().to_string(), kind, timeout_ms)
            }
        };
        let timeout_ms = timeout_ms.clamp(qu_raft::model::MIN_TIMEOUT_MS, MAX_TEST_TIMEOUT_MS);
        let deadline = Duration::from_millis(timeout_ms) + ANSWER_MARGIN;
        let voters = self.voters();
        let mut members: BTreeSet<NodeId> = voters.clone();
        members.extend(self.learners());
        members.insert(self.me());

        let mut asks = tokio::task::JoinSet::new();
        for node in members.iter().copied() {
            let d = self.clone();
            let kind = kind.clone();
            asks.spawn(async move {
                let answer = if node == d.me() {
                    let o = d
                        .probers
                        .probe(&kind, Duration::from_millis(timeout_ms))
                        .await;
                    Ok((o.ok, o.latency.as_millis() as u64, o.reason))
                } else {
                    d.ask_probe(node, kind, timeout_ms, deadline).await
                };
                (node, answer)
            });
        }
        let mut answers: BTreeMap<NodeId, Result<(bool, u64, String), String>> = BTreeMap::new();
        let collect = async {
            while let Some(joined) = asks.join_next().await {
                if let Ok((node, answer)) = joined {
                    answers.insert(node, answer);
                }
            }
        };
        // Every ask has its own deadline; this one bounds the whole.
        let _ = tokio::time::timeout(deadline + Duration::from_secs(1), collect).await;

        let mut votes = BTreeMap::new();
        let nodes: Vec<NodeTest> = members
            .iter()
            .map(|n| {
                let voter = voters.contains(n);
                match answers.get(n) {
                    Some(Ok((ok, latency_ms, reason))) => {
                        votes.insert(
                            *n,
                            ProbeReport {
                                check_id: String::new(),
                                round: 0,
                                ok: *ok,
                                latency_ms: *latency_ms,
                                reason: reason.clone(),
                                cert_not_after_ms: None,
                                send_by_ms: 0,
                            },
                        );
                        NodeTest {
                            node_id: *n,
                            answered: true,
                            ok: *ok,
                            latency_ms: *latency_ms,
                            reason: reason.clone(),
                            voter,
                        }
                    }
                    Some(Err(why)) => NodeTest {
                        node_id: *n,
                        answered: false,
                        ok: false,
                        latency_ms: 0,
                        reason: why.clone(),
                        voter,
                    },
                    None => NodeTest {
                        node_id: *n,
                        answered: false,
                        ok: false,
                        latency_ms: 0,
                        reason: format!("no answer within {}s", deadline.as_secs()),
                        voter,
                    },
                }
            })
            .collect();
        let verdict = match verdict(&voters, &votes) {
            Verdict::Up => "up",
            Verdict::Down => "down",
            Verdict::None => "none",
        };
        Ok(ControlReply::CheckTested(Box::new(TestReport {
            subject: name,
            nodes,
            verdict: verdict.into(),
            voters: voters.len(),
        })))
    }

    /// One member's probe, or why there is none.
    async fn ask_probe(
        &self,
        node: NodeId,
        kind: CheckKind,
        timeout_ms: u64,
        deadline: Duration,
    ) -> Result<(bool, u64, String), String> {
        let addr = self
            .peer_addr(node)
            .ok_or_else(|| "address unknown".to_string())?;
        match self
            .pool
            .call_within::<_, MemberResponse>(
                &addr,
                &MemberRequest::Probe { kind, timeout_ms },
                deadline,
            )
            .await
        {
            Ok(MemberResponse::Probed {
                ok,
                latency_ms,
                reason,
            }) => Ok((ok, latency_ms, reason)),
            Ok(other) => Err(format!("unexpected answer {other:?}")),
            Err(e) => Err(format!(
                "did not answer: {} (down, unreachable, or a release without 'check test')",
                crate::errors::chain(&e)
            )),
        }
    }
}

/// The rules a check not added yet meets (as `qu check add` would apply).
fn admit_test_spec(kind: &CheckKind, timeout_ms: u64) -> Result<(), String> {
    crate::checks::admit::admit_kind(kind).map_err(|e| e.to_string())?;
    if timeout_ms > MAX_TEST_TIMEOUT_MS {
        return Err("--timeout: at most 60s for a test".into());
    }
    let probe = Check {
        id: "test".into(),
        name: "test".into(),
        kind: kind.clone(),
        interval_ms: qu_raft::model::MAX_INTERVAL_MS,
        timeout_ms,
        alerts: vec![],
        paused: false,
    };
    probe.validate().map_err(|e| e.to_string())
}
