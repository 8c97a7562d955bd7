//! Typed progress events, sent while a drain runs (for progress views, logs and operators).

use std::fmt;

use serde::Serialize;

use crate::options::DryRun;
use crate::plan::Plan;
use crate::report::Report;

/// Names one pod, with the UID that tells it apart from a replacement of the same name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PodRef {
    /// Namespace of the pod.
    pub namespace: String,
    /// Name of the pod.
    pub name: String,
    /// UID of the pod.
    pub uid: String,
}

impl fmt::Display for PodRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One thing that happened during a drain.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
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
        /// The budget that blocks, when known (two names joined by ", " for a pod under two budgets).
        budget: Option<String>,
        /// Why, in words (e.g. "The disruption budget web needs 2 healthy pods and has 2 currently").
        cause: String,
        /// The server's message.
        message: String,
        /// When the next attempt is due at the latest.
        retry_in_seconds: f64,
        /// When this pod was first blocked.
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
    /// The drain finished (successfully or not).
    Done {
        /// The final report.
        report: Report,
    },
}
