//! The server's answers to evictions and deletes, and how a pod's drain ends.

use std::time::Duration;

use super::budgets::ack_ttl;
use super::core::Core;
use super::ledger::Counted;
use super::track::St;
use crate::budget::BudgetKey;
use crate::events::{Event, PodRef, WaitsFor};
use crate::evict::Attempt;
use crate::options::DryRun;
use crate::report::{FailureKind, PodOutcome};

/// A pod whose eviction or delete the server refused for lack of permission.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Denied {
    /// The pod.
    pub pod: PodRef,
    /// The server's message.
    pub message: String,
}

/// The server's answer to one request for one pod.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The pod's UID.
    pub(crate) uid: String,
    /// What the server answered.
    pub(crate) attempt: Attempt,
}

/// How a pod's error starts when the server refused its eviction or delete for lack of
/// permission (the drain then fails with [`crate::DrainError::Forbidden`], from
/// [`Denied`], not from this text).
pub(crate) const PERMISSION_DENIED: &str = "permission denied: ";

impl Core {
    pub(super) fn on_answer(&mut self, d: Answer) {
        let now = self.now.instant;
        self.inflight = self.inflight.saturating_sub(1);
        let dry = self.dry();
        let ceiling = self.opts.budget_retry_ceiling;
        let jitter = self.retry_jitter();
        let Some(t) = self.tracks.get_mut(&d.uid) else {
            return;
        };
        let n = &mut self.nodes[t.node];
        n.awaiting = n.awaiting.saturating_sub(1);
        let mut released: Option<BudgetKey> = None;
        if let Some(key) = t.inflight_budget.take() {
            // The server spent one unit before answering. Until a budget status carrying this
            // pod in disruptedPods is seen, the ledger counts it as spent (for every drain
            // sharing it). That status may have come before the answer, even followed by the
            // controller's next status that no longer lists the terminating pod: a real
            // cluster delivers them in no fixed order.
            let sent = t.last_sent.unwrap_or(now);
            let accepted = d.attempt == Attempt::Accepted;
            let due = now + ack_ttl(ceiling);
            self.account.answered(&key, &t.r.name, accepted, sent, due);
            let acked = self
                .budgets
                .get(&key)
                .is_some_and(|b| b.counted_since(&t.r.name, sent));
            if accepted {
                if acked {
                    released = Some(key);
                } else {
                    self.acks_due = Some(self.acks_due.map_or(due, |d| d.min(due)));
                }
            }
        }
        if let Some(key) = released {
            // The statuses already counted this eviction, and may already allow the next one
            // (a replacement became Ready before the answer came): that status's wake-up found
            // the budget still held by this request.
            self.wake_own_pods(&[key], now);
        }
        let Some(t) = self.tracks.get_mut(&d.uid) else {
            return;
        };
        if t.done() {
            // the watch saw it go before the answer came
            if d.attempt == Attempt::Accepted && t.accepted.is_none() {
                t.accepted = Some(self.now.wall);
                let (node, pod) = (self.nodes[t.node].name.clone(), t.r.clone());
                self.emit(Event::Evicted { node, pod });
            }
            return;
        }
        let node = self.nodes[t.node].name.clone();
        match d.attempt {
            Attempt::Accepted => {
                t.unblock(now);
                t.accepted = Some(self.now.wall);
                let pod = t.r.clone();
                self.tracks.set_st_of(&d.uid, St::Following);
                self.emit(Event::Evicted { node, pod });
            }
            Attempt::DryRunPassed => self.finish(&d.uid, PodOutcome::DryRun),
            Attempt::Gone => self.finish(&d.uid, PodOutcome::Gone),
            Attempt::Replaced => {
                t.reason = format!("{} (replaced by a new pod of the same name)", t.reason);
                self.finish(&d.uid, PodOutcome::Gone)
            }
            Attempt::Blocked {
                budgets,
                cause,
                message,
                retry_after,
                multiple,
            } => {
                // the server knows a budget we may not: watch the budgets from now on
                let pod = t.pod.clone();
                self.ensure_pdb_watch();
                let by = if multiple {
                    let names: Vec<String> =
                        self.covering(&pod).iter().map(|k| k.name.clone()).collect();
                    Some(names.join(", ")).filter(|s| !s.is_empty())
                } else {
                    Some(budgets.join(", ")).filter(|s| !s.is_empty())
                };
                if dry == DryRun::Server {
                    let t = self.tracks.get_mut(&d.uid).expect("track");
                    t.blocked_by = by.or(Some(cause));
                    self.finish(&d.uid, PodOutcome::Blocked);
                    return;
                }
                let waits_for = if multiple {
                    WaitsFor::SeveralBudgets
                } else {
                    WaitsFor::Budget
                };
                let not_before = retry_after.map(|ra| now + ra + jitter);
                let next = (now + ceiling).max(not_before.unwrap_or(now));
                self.set_blocked(&d.uid, by, waits_for, cause, message, next, not_before, now);
            }
            Attempt::Throttled {
                retry_after,
                message,
            } => {
                let wait = retry_after.unwrap_or(Duration::from_secs(1)) + jitter;
                let cause = format!("the server asked to retry later (429): {message}");
                self.set_blocked(
                    &d.uid,
                    None,
                    WaitsFor::Throttling,
                    cause,
                    message,
                    now + wait,
                    Some(now + wait),
                    now,
                );
            }
            Attempt::NamespaceTerminating { message } => {
                if t.pod.metadata.deletion_timestamp.is_some() || dry == DryRun::Server {
                    self.tracks.set_st_of(&d.uid, St::Following);
                    if dry == DryRun::Server {
                        self.finish(&d.uid, PodOutcome::DryRun);
                    }
                } else {
                    let cause = format!(
                        "namespace {} is being terminated; waiting for it to delete the pod",
                        t.r.namespace
                    );
                    self.set_blocked(
                        &d.uid,
                        None,
                        WaitsFor::NamespaceTermination,
                        cause,
                        message,
                        now + ceiling,
                        None,
                        now,
                    );
                }
            }
            Attempt::Forbidden { message } => {
                t.denied = Some(message.clone());
                self.finish(
                    &d.uid,
                    PodOutcome::Failed {
                        error: format!("{PERMISSION_DENIED}{message}"),
                        kind: FailureKind::PermissionDenied,
                    },
                )
            }
            Attempt::Rejected { code, message } => self.finish(
                &d.uid,
                PodOutcome::Failed {
                    error: format!("rejected ({code}): {message}"),
                    kind: FailureKind::Rejected,
                },
            ),
            Attempt::Transient { code, message } => {
                let seed = self.rng.u64(..);
                let b = t
                    .backoff
                    .get_or_insert_with(|| crate::backoff::eviction(seed));
                let wait = b.next().unwrap_or(crate::backoff::EVICTION_MAX);
                let cause = match code {
                    Some(c) => format!("error {c}: {message}"),
                    None => format!("request failed: {message}"),
                };
                self.set_blocked(
                    &d.uid,
                    None,
                    WaitsFor::Error,
                    cause,
                    message,
                    now + wait,
                    None,
                    now,
                );
            }
        }
    }

    pub(super) fn finish(&mut self, uid: &str, outcome: PodOutcome) {
        let now = self.now.instant;
        let Some(t) = self.tracks.get_mut(uid) else {
            return;
        };
        if t.done() {
            return;
        }
        t.unblock(now);
        if outcome == PodOutcome::Gone {
            t.gone = Some(self.now.wall);
        }
        let node = self.nodes[t.node].name.clone();
        let pod = t.r.clone();
        let reason = (outcome == PodOutcome::Skipped).then(|| t.reason.clone());
        self.tracks.set_st_of(uid, St::Done(outcome.clone()));
        match outcome {
            PodOutcome::Gone => self.emit(Event::Gone { node, pod }),
            PodOutcome::Failed { error, kind } => self.emit(Event::PodFailed {
                node,
                pod,
                error,
                kind,
            }),
            PodOutcome::Skipped => {
                let reason = reason.unwrap_or_default();
                self.emit(Event::Skipped { node, pod, reason })
            }
            PodOutcome::Blocked | PodOutcome::DryRun => {}
        }
    }
}
