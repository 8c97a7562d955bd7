//! Typed progress events, sent while a drain runs (for progress views, logs and operators).

use schemars::JsonSchema;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

use crate::model::FailureKind;
pub use crate::model::PodRef;
use crate::options::DryRun;
use crate::plan::Plan;

/// An [`Event`] with the moment it happened in the library (not when it was received or printed).
/// Serialized flat: `{"time":"2026-01-02T03:04:05.678Z","event":"evicted",...}`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Stamped {
    /// When the event happened: RFC 3339, UTC, to the millisecond.
    #[serde(with = "crate::serde_secs::time")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub time: jiff::Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// A time as the JSON output writes it: RFC 3339, UTC, rounded to the millisecond, always three
/// fractional digits (`2026-01-02T03:04:05.678Z`).
pub fn rfc3339_ms(t: &jiff::Timestamp) -> String {
    crate::serde_secs::time::format(t)
}

/// Where a drainer sends its events: a channel of [`Stamped`] events (each with its time), or of
/// bare [`Event`]s. Built from either sender with `.into()` (see [`crate::Drainer::with_events`]).
#[derive(Debug, Clone)]
pub enum EventSender {
    /// Events with the time they happened.
    Stamped(UnboundedSender<Stamped>),
    /// Events alone.
    Plain(UnboundedSender<Event>),
}

impl EventSender {
    /// Sends `event`, dated now when the receiver wants times. A closed receiver is ignored.
    pub fn send(&self, event: Event) {
        match self {
            EventSender::Stamped(tx) => {
                let _ = tx.send(Stamped::now(event));
            }
            EventSender::Plain(tx) => {
                let _ = tx.send(event);
            }
        }
    }
}

impl From<UnboundedSender<Stamped>> for EventSender {
    fn from(tx: UnboundedSender<Stamped>) -> Self {
        EventSender::Stamped(tx)
    }
}

impl From<UnboundedSender<Event>> for EventSender {
    fn from(tx: UnboundedSender<Event>) -> Self {
        EventSender::Plain(tx)
    }
}

impl Stamped {
    /// `event`, dated now.
    pub fn now(event: Event) -> Self {
        Stamped {
            time: jiff::Timestamp::now(),
            event,
        }
    }
}

/// What a blocked pod waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WaitsFor {
    /// Its disruption budget to allow a disruption: kdrain sends the eviction the moment a
    /// watched budget status allows it (no retry timer to wait for).
    Budget,
    /// Several budgets cover the pod: the eviction API refuses it until that changes.
    SeveralBudgets,
    /// An opt-out protection (e.g. `karpenter.sh/do-not-disrupt` with a duration) to end.
    Protection,
    /// The API server asked to retry later (429 without a budget).
    Throttling,
    /// Its namespace being terminated (the namespace controller deletes the pod).
    NamespaceTermination,
    /// A transient error to pass: retried with backoff.
    Error,
    /// `wait_for_capacity`: room for its replacement (no schedulable node has it now, after
    /// the larger replacements still to come); nothing is sent until a fresh read finds it.
    Room,
}

impl WaitsFor {
    /// The wait is on disruption budgets (the pod counts as blocked by a budget in the report).
    pub fn is_budget(self) -> bool {
        matches!(self, WaitsFor::Budget | WaitsFor::SeveralBudgets)
    }

    /// The next attempt is made at a known time (`retry_in_seconds`), not on a watched change.
    pub fn has_retry_time(self) -> bool {
        matches!(self, WaitsFor::Throttling | WaitsFor::Error)
    }
}

/// A budget's healthy-pod counts, as its status said when the pod was blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Healthy {
    /// `status.desiredHealthy`: healthy pods the budget needs.
    pub needs: i32,
    /// `status.currentHealthy`: healthy pods it has.
    pub has: i32,
}

/// One thing that happened during a drain.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The nodes a label selector resolved to.
    NodesResolved {
        /// Node names, sorted.
        nodes: Vec<String>,
    },
    /// The plan was computed (before any eviction).
    Planned {
        /// The full plan.
        plan: Plan,
    },
    /// A wave of the plan's waves starts: its nodes start draining together (the first wave
    /// starts with the drain; each later one when every node of the one before has ended).
    /// With `wait_for_capacity`, a wave after the planned ones is chosen when the one before
    /// has ended, among the nodes that wait for room, by the room there is then.
    WaveStarted {
        /// The wave's number, from 1.
        wave: usize,
        /// How many waves are known when it starts (this one included). More may follow while
        /// nodes wait for room (`waiting_for_room`).
        of: usize,
        /// Its nodes.
        nodes: Vec<String>,
        /// `wait_for_capacity`: the nodes that still wait for room after this wave; each later
        /// wave is chosen by the room there is when the one before ends. Left out of JSON when
        /// empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        waiting_for_room: Vec<String>,
    },
    /// `wait_for_capacity`: no node left to drain has room for its replacements now (said once
    /// per wait); the drain re-reads the cluster, less and less often (at most every 5 s), until
    /// some do, or the timeout ends the wait.
    WaitingForRoom {
        /// The nodes that wait, in the order they are tried.
        nodes: Vec<String>,
        /// Why none starts now, in words.
        reason: String,
    },
    /// A watch the drain follows a collection with was refused by the API server (403: the
    /// credentials lack `watch` on `resource`, e.g. a role without `watch` on nodes with
    /// `wait_for_capacity`). The drain carries on, listing the collection after each refusal
    /// (every few seconds) instead of seeing each change at once. Said once per resource.
    WatchRefused {
        /// The resource, e.g. `nodes`.
        resource: String,
        /// The server's message.
        error: String,
        /// What the drain does instead, in words.
        fallback: String,
    },
    /// `--surge`: the rollout of a Deployment was restarted (after the cordon), so that its pods
    /// on the target nodes are replaced before they go.
    RolloutRestarted {
        /// Namespace.
        namespace: String,
        /// The Deployment.
        name: String,
        /// Dry run: nothing was sent (client) or the server only validated it (server).
        dry_run: DryRun,
    },
    /// kubectl's grouped warning text, e.g. `ignoring DaemonSet-managed Pods: kube-system/fluentd-x`.
    Warning {
        /// The node the warning is about.
        node: String,
        /// The warning text.
        message: String,
    },
    /// The node was cordoned (or already was).
    Cordoned {
        /// Node name.
        node: String,
        /// It was already unschedulable: nothing was changed.
        already: bool,
        /// Dry-run mode of the cordon.
        dry_run: DryRun,
    },
    /// The node was made schedulable again (or already was).
    Uncordoned {
        /// Node name.
        node: String,
        /// It was already schedulable: nothing was changed.
        already: bool,
    },
    /// An eviction request was sent.
    EvictionSent {
        /// Node of the pod.
        node: String,
        /// The pod.
        pod: PodRef,
        /// 1 for the first attempt.
        attempt: u32,
        /// Dry-run mode of the request.
        dry_run: DryRun,
    },
    /// A DELETE was sent (`disable_eviction`).
    DeleteSent {
        /// Node of the pod.
        node: String,
        /// The pod.
        pod: PodRef,
        /// Dry-run mode of the request.
        dry_run: DryRun,
    },
    /// An eviction was refused for now; it will be retried.
    Blocked {
        /// Node of the pod.
        node: String,
        /// The pod.
        pod: PodRef,
        /// What it waits for.
        waits_for: WaitsFor,
        /// The budget that blocks, when known (two names joined by ", " for a pod under two budgets).
        budget: Option<String>,
        /// The blocking budget's healthy-pod counts, when one budget blocks and its status is known.
        healthy: Option<Healthy>,
        /// Why, in words (e.g. "The disruption budget web needs 2 healthy pods and has 2 currently").
        cause: String,
        /// The server's message.
        message: String,
        /// When the next attempt is due at the latest (for budget waits, only a fallback probe:
        /// the eviction is sent as soon as a watched budget allows it).
        #[serde(serialize_with = "crate::serde_secs::ms::serialize")]
        retry_in_seconds: f64,
        /// When this pod was first blocked.
        #[serde(with = "crate::serde_secs::time")]
        #[schemars(with = "String", extend("format" = "date-time"))]
        since: jiff::Timestamp,
    },
    /// The eviction was accepted (HTTP 201); the pod now terminates. When the pod disappears
    /// before the answer arrives, this comes after its `Gone`.
    Evicted {
        /// Node of the pod.
        node: String,
        /// The pod.
        pod: PodRef,
    },
    /// The pod was seen terminating.
    Terminating {
        /// Node of the pod.
        node: String,
        /// The pod.
        pod: PodRef,
        /// Seconds left of its grace period.
        #[serde(serialize_with = "crate::serde_secs::ms::serialize")]
        grace_left_seconds: f64,
    },
    /// The pod (this UID) is gone: deleted, or replaced by a pod of the same name.
    Gone {
        /// Node of the pod.
        node: String,
        /// The pod.
        pod: PodRef,
    },
    /// The pod is left alone.
    Skipped {
        /// Node of the pod.
        node: String,
        /// The pod.
        pod: PodRef,
        /// Why.
        reason: String,
    },
    /// The pod could not be drained.
    PodFailed {
        /// Node of the pod.
        node: String,
        /// The pod.
        pod: PodRef,
        /// What went wrong.
        error: String,
        /// What went wrong, for callers that branch on it.
        kind: FailureKind,
    },
    /// The node is empty of target pods (confirmed by a fresh list).
    NodeDrained {
        /// Node name.
        node: String,
        /// Dry-run mode of the drain.
        dry_run: DryRun,
    },
    /// The node could not be drained.
    NodeFailed {
        /// Node name.
        node: String,
        /// What went wrong.
        error: String,
        /// Target pods still on the node.
        pending: Vec<PodRef>,
    },
    /// The drain finished (successfully or not). The report itself is what the drain returns.
    Done {
        /// Every node was drained.
        succeeded: bool,
        /// How long the whole drain took.
        #[serde(serialize_with = "crate::serde_secs::ms::serialize")]
        seconds: f64,
    },
}
