//! Each node's drain: started (its watch), timed out or interrupted, checked by a final LIST,
//! closed with its outcome, and its report.

use std::collections::HashSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::time::Instant;

use super::core::{Command, Core, ListPurpose};
use super::track::{St, Wait};
use crate::events::{Event, PodRef, WaitsFor};
use crate::options::DryRun;
use crate::plan::Action;
use crate::report::{FailureKind, NodeOutcome, NodeReport, PodOutcome, PodReport};
use crate::requests::Requests;
use crate::watch::Listed;

/// One node of the drain.
pub(super) struct NodeRun {
    pub(super) name: String,
    pub(super) was_cordoned: bool,
    pub(super) req: Requests,
    pub(super) listed_rv: String,
    pub(super) active: bool,
    pub(super) started: Option<Instant>,
    pub(super) deadline: Option<Instant>,
    /// The node's pod watch was started (and not stopped).
    pub(super) watching: bool,
    /// A LIST of the node's pods is in flight.
    pub(super) listing: Option<ListPurpose>,
    pub(super) outcome: Option<NodeOutcome>,
    pub(super) seconds: f64,
    /// The node's tracks (indexes into [`Tracks`]), in plan order.
    pub(super) order: Vec<usize>,
    /// A superset of the node's tracks not done yet, so that the scans that remain (options and
    /// `wait_for_capacity` reads, [`Core::live`]) mostly visit pods still in play (done ones
    /// are dropped by [`Core::compact_open`]).
    pub(super) open: Vec<usize>,
    pub(super) final_list_retry: Option<Instant>,
    /// When the timeout was reached: nothing more is sent for this node, and it closes once the
    /// requests in flight have answered (or after [`IN_FLIGHT_GRACE`]).
    pub(super) expired: Option<Instant>,
    /// Requests sent for the node's pods and not answered yet. The node is not closed before
    /// the answers (up to [`IN_FLIGHT_GRACE`] after the last send), so the report and the events
    /// say what the server answered even when the watch saw a pod go first.
    pub(super) awaiting: usize,
    /// When the last request for the node's pods was sent.
    pub(super) last_sent: Option<Instant>,
}

/// How long a timed-out node waits for the answers to requests already in flight, so that its
/// report says what really happened to those pods.
pub(super) const IN_FLIGHT_GRACE: Duration = Duration::from_secs(10);

impl Core {
    /// Stops everything: running nodes end like at a timeout (requests in flight answered
    /// first), nodes not started yet end at once with their pods left.
    pub(super) fn interrupt(&mut self) {
        let now = self.now.instant;
        self.interrupted = Some(now);
        tracing::debug!("drain interrupted");
        // nodes that wait for room end below, with the others not started
        self.waiting.clear();
        self.room.next_check = None;
        for i in 0..self.nodes.len() {
            if self.nodes[i].outcome.is_some() || self.nodes[i].active {
                continue;
            }
            let error = "interrupted before this node's drain started".to_string();
            let pending = self.fail_left(i, &error, FailureKind::Interrupted);
            let n = &mut self.nodes[i];
            n.outcome = Some(NodeOutcome::Failed {
                error: error.clone(),
            });
            let node = n.name.clone();
            self.emit(Event::NodeFailed {
                node,
                error,
                pending,
            });
        }
    }

    /// Ends node `i`'s target pods that are not done yet as failed (`error`, `kind`): their
    /// references, in the node's order, for the node's failure event.
    pub(super) fn fail_left(&mut self, i: usize, error: &str, kind: FailureKind) -> Vec<PodRef> {
        let left: Vec<usize> = self.nodes[i]
            .order
            .iter()
            .copied()
            .filter(|&ix| {
                let t = self.tracks.at(ix);
                t.is_target() && !t.done()
            })
            .collect();
        left.into_iter()
            .map(|ix| {
                self.tracks.set_st(
                    ix,
                    St::Done(PodOutcome::Failed {
                        error: error.to_string(),
                        kind,
                    }),
                );
                self.tracks.at(ix).r.clone()
            })
            .collect()
    }

    pub(super) fn activate(&mut self, i: usize) {
        let now = self.now.instant;
        let n = &mut self.nodes[i];
        n.active = true;
        n.started = Some(now);
        n.deadline = self.opts.timeout.map(|t| now + t);
        if self.opts.dry_run == DryRun::None {
            n.watching = true;
            let watch = Command::WatchPods {
                node: i,
                name: n.name.clone(),
                resource_version: n.listed_rv.clone(),
            };
            self.out.push(watch);
        }
        if self.opts.dry_run == DryRun::Server {
            // nothing changes in a server dry run: there is nothing to wait for
            for &ix in &self.nodes[i].order {
                if self.tracks.at(ix).action == Action::Wait {
                    self.tracks.set_st(ix, St::Done(PodOutcome::DryRun));
                }
            }
        }
        for ix in self.nodes[i].order.clone() {
            self.hold_if_protected(ix);
        }
        let skipped: Vec<(PodRef, String)> = self.nodes[i]
            .order
            .iter()
            .map(|&ix| self.tracks.at(ix))
            .filter(|t| t.action == Action::Skip)
            .map(|t| (t.r.clone(), t.reason.clone()))
            .collect();
        let name = self.nodes[i].name.clone();
        for (pod, reason) in skipped {
            self.emit(Event::Skipped {
                node: name.clone(),
                pod,
                reason,
            });
        }
    }

    /// Until when node `i` waits for answers to requests still in flight (none: nothing is).
    pub(super) fn answer_due(&self, i: usize) -> Option<Instant> {
        let n = &self.nodes[i];
        if n.awaiting == 0 {
            return None;
        }
        n.last_sent.map(|sent| sent + IN_FLIGHT_GRACE)
    }

    /// Closes the nodes that are done (after a final LIST) and ends those past their deadline
    /// (after a catch-up LIST).
    pub(super) fn check_nodes(&mut self) {
        let now = self.now.instant;
        for i in 0..self.nodes.len() {
            if !self.nodes[i].active
                || self.nodes[i].outcome.is_some()
                || self.nodes[i].listing.is_some()
            {
                continue;
            }
            let open =
                self.tracks.open_tier(i).is_some() || self.parked.iter().any(|(n, _)| *n == i);
            if !open {
                if self.answer_due(i).is_some_and(|until| now < until) {
                    continue;
                }
                if self.dry() == DryRun::Server {
                    self.close_node(i, now);
                    continue;
                }
                if self.nodes[i].final_list_retry.is_some_and(|r| r > now) {
                    continue;
                }
                self.list_node(i, ListPurpose::Final);
                continue;
            }
            if self.interrupted.is_some() || self.nodes[i].deadline.is_some_and(|d| now >= d) {
                // Send nothing more, and hear the answers to what is in flight first: an
                // eviction accepted after the deadline must not be reported as blocked.
                let expired = *self.nodes[i].expired.get_or_insert(now);
                let in_flight = self.nodes[i]
                    .order
                    .iter()
                    .any(|&ix| self.tracks.at(ix).st() == &St::InFlight);
                if in_flight && now < expired + IN_FLIGHT_GRACE {
                    continue;
                }
                // A fresh LIST: pods gone but not yet reported by the watch are gone.
                self.list_node(i, ListPurpose::CatchUp);
            }
        }
    }

    fn list_node(&mut self, i: usize, purpose: ListPurpose) {
        let n = &mut self.nodes[i];
        n.listing = Some(purpose);
        let list = Command::ListPods {
            node: i,
            name: n.name.clone(),
            purpose,
        };
        self.out.push(list);
    }

    /// The answer to a LIST of node `i`.
    pub(super) fn on_listed(
        &mut self,
        i: usize,
        purpose: ListPurpose,
        result: Result<Listed<Pod>, String>,
    ) {
        let now = self.now.instant;
        self.nodes[i].listing = None;
        if self.nodes[i].outcome.is_some() {
            return;
        }
        match (purpose, result) {
            (ListPurpose::Final, Ok(listed)) => {
                if self.final_list(i, listed) {
                    self.close_node(i, now);
                } else {
                    self.nodes[i].final_list_retry = None;
                }
            }
            (ListPurpose::Final, Err(e)) => {
                tracing::debug!(node = %self.nodes[i].name, "final list failed: {e}");
                self.nodes[i].final_list_retry = Some(now + Duration::from_secs(1));
            }
            (ListPurpose::CatchUp, listed) => {
                match listed {
                    Ok(l) => self.catch_up(i, l),
                    Err(e) => {
                        // Best effort: the report keeps what the watch said.
                        tracing::debug!(node = %self.nodes[i].name, "list at the timeout failed: {e}");
                    }
                }
                self.end_expired(i, now);
            }
        }
    }

    /// Ends a node past its deadline (or interrupted): every target pod not done is left,
    /// blocked when a budget is what holds it.
    fn end_expired(&mut self, i: usize, now: Instant) {
        let timeout = self.opts.timeout.unwrap_or_default().as_secs_f64();
        let left: Vec<String> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.node == i && t.is_target() && !t.done())
            .map(|(u, _)| u.clone())
            .collect();
        for uid in left {
            let t = &self.tracks[&uid];
            let terminating = t.pod.metadata.deletion_timestamp.is_some();
            // Blocked by a budget last, or its budget still blocks it (a transient error
            // on the last probe does not make the budget any less the reason).
            let holds = self.budget_holding(&t.pod);
            let by_budget = t.st().waits_for_budget();
            let budget_blocks = by_budget || (t.blocked_first.is_some() && holds.is_some());
            let outcome = if budget_blocks
                && t.accepted.is_none()
                && matches!(t.st(), St::Waiting(_))
                && !terminating
            {
                if !by_budget && let Some(name) = holds {
                    self.tracks.get_mut(&uid).expect("track").blocked_by = Some(name);
                }
                PodOutcome::Blocked
            } else {
                let what = match (t.st(), t.action) {
                    (_, Action::Wait) => "waiting for it to complete".to_string(),
                    (St::Waiting(_) | St::Queued, _) if terminating => {
                        "it is terminating, but kdrain's request was not seen accepted".to_string()
                    }
                    (St::InFlight, _) => {
                        "no answer to the last request yet; it may still be carried out".to_string()
                    }
                    (St::Following, _) => "waiting for it to terminate".to_string(),
                    (St::Queued, _) => "not sent yet (earlier tiers still draining)".to_string(),
                    _ => t.blocked_by.clone().unwrap_or_else(|| "retrying".into()),
                };
                if self.interrupted.is_some() {
                    PodOutcome::Failed {
                        error: format!("interrupted ({what})"),
                        kind: FailureKind::Interrupted,
                    }
                } else {
                    PodOutcome::Failed {
                        error: format!("global timeout reached: {timeout}s ({what})"),
                        kind: FailureKind::TimedOut,
                    }
                }
            };
            let t = self.tracks.get_mut(&uid).expect("track");
            t.unblock(now);
            self.tracks.set_st_of(&uid, St::Done(outcome));
        }
        self.close_node(i, now);
    }

    /// At the timeout, a fresh LIST: target pods already gone (the watch may lag behind, or be
    /// cut) are reported gone.
    fn catch_up(&mut self, i: usize, listed: Listed<Pod>) {
        let present: HashSet<String> = listed
            .items
            .iter()
            .filter_map(|p| p.metadata.uid.clone())
            .collect();
        let gone: Vec<String> = self.nodes[i]
            .order
            .iter()
            .map(|&ix| self.tracks.at(ix))
            .filter(|t| t.is_target() && !t.done() && *t.st() != St::InFlight)
            .filter(|t| !present.contains(&t.uid))
            .map(|t| t.uid.clone())
            .collect();
        for uid in gone {
            self.finish(&uid, PodOutcome::Gone);
        }
        for p in listed.items {
            let uid = p.metadata.uid.clone().unwrap_or_default();
            if let Some(t) = self.tracks.get_mut(&uid)
                && !t.done()
            {
                t.pod = p;
            }
        }
    }

    /// A fresh LIST of the node: true when no target pod is left (new pods are taken in).
    fn final_list(&mut self, i: usize, listed: Listed<Pod>) -> bool {
        let mut clean = true;
        for p in listed.items {
            let uid = p.metadata.uid.clone().unwrap_or_default();
            if let Some(t) = self.tracks.get_mut(&uid) {
                if t.is_target() && *t.st() == St::Done(PodOutcome::Gone) {
                    // Never report a pod gone that a fresh list still shows.
                    tracing::warn!(pod = %t.r, "pod marked gone is still listed; draining it again");
                    t.gone = None;
                    let (node, ix) = (t.node, self.tracks.idx(&uid).expect("track"));
                    if !self.nodes[node].open.contains(&ix) {
                        self.nodes[node].open.push(ix);
                    }
                    let retry = self.now.instant
                        + self.opts.budget_retry_ceiling.min(Duration::from_secs(1));
                    let t = self.tracks.at(ix);
                    let st = if t.accepted.is_some() {
                        St::Following
                    } else {
                        // e.g. a 404 from something other than the pod being gone: try again
                        St::Waiting(Wait {
                            cause: t.last_wait.unwrap_or(WaitsFor::Error),
                            next_at: retry,
                            not_before: None,
                        })
                    };
                    self.tracks.set_st(ix, st);
                    clean = false;
                }
                continue;
            }
            if self.ignored.contains(&uid) {
                continue;
            }
            self.upsert_pod(i, p);
            if self
                .tracks
                .get(&uid)
                .is_some_and(|t| t.is_target() && !t.done())
                || self.is_parked(&uid)
            {
                clean = false;
            }
        }
        clean
    }

    pub(super) fn close_node(&mut self, i: usize, now: Instant) {
        let mut blocked = false;
        let mut left = Vec::new();
        for &ix in &self.nodes[i].order {
            let t = self.tracks.at(ix);
            match t.st() {
                St::Done(PodOutcome::Blocked) => {
                    blocked = true;
                    left.push(t.r.clone());
                }
                St::Done(PodOutcome::Failed { .. }) => left.push(t.r.clone()),
                _ => {}
            }
        }
        let n = &mut self.nodes[i];
        if std::mem::take(&mut n.watching) {
            self.out.push(Command::StopWatchingPods { node: i });
        }
        n.seconds = n.started.map(|s| (now - s).as_secs_f64()).unwrap_or(0.0);
        let outcome = if left.is_empty() {
            NodeOutcome::Drained
        } else if blocked {
            NodeOutcome::BlockedByBudgets
        } else {
            NodeOutcome::PodsLeft
        };
        let name = n.name.clone();
        n.outcome = Some(outcome.clone());
        match outcome {
            NodeOutcome::Drained => self.emit(Event::NodeDrained {
                node: name,
                dry_run: self.opts.dry_run,
            }),
            _ => {
                let error = if blocked {
                    "pods still blocked by disruption budgets".to_string()
                } else {
                    "pods left that could not be drained".to_string()
                };
                self.emit(Event::NodeFailed {
                    node: name,
                    error,
                    pending: left,
                })
            }
        }
        if self.interrupted.is_some() {
            return;
        }
        if self.waves.is_empty() && self.waiting.is_empty() {
            if let Some(next) = self.nodes.iter().position(|n| !n.active) {
                self.activate(next);
            }
            return;
        }
        self.next_wave();
    }

    pub(super) fn node_reports(&self, now: Instant) -> Vec<NodeReport> {
        self.nodes
            .iter()
            .map(|n| NodeReport {
                node: n.name.clone(),
                was_cordoned: n.was_cordoned,
                seconds: n.seconds,
                pods: n
                    .order
                    .iter()
                    .map(|&ix| {
                        let t = self.tracks.at(ix);
                        let ongoing = t.blocked_since.map(|s| now - s).unwrap_or_default();
                        PodReport {
                            pod: t.r.clone(),
                            action: t.action,
                            reason: t.reason.clone(),
                            attempts: t.attempts,
                            first_attempt: t.first_attempt,
                            accepted: t.accepted,
                            gone: t.gone,
                            blocked_by: t.blocked_by.clone(),
                            blocked_seconds: (t.blocked_total + ongoing).as_secs_f64(),
                            outcome: match t.st() {
                                St::Done(o) => o.clone(),
                                _ => PodOutcome::Failed {
                                    error: "the drain ended before this pod did".into(),
                                    kind: FailureKind::Unfinished,
                                },
                            },
                        }
                    })
                    .collect(),
                requests: n.req.snapshot(),
                outcome: n.outcome.clone().unwrap_or(NodeOutcome::Failed {
                    error: "not drained".into(),
                }),
            })
            .collect()
    }
}
