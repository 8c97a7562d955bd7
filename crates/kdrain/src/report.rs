//! The report of a finished drain: what happened to every pod and node.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

pub use crate::model::FailureKind;
use crate::model::{Action, PodRef};

/// What a drain did, node by node and pod by pod.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Report {
    /// One entry per target node, in the order given.
    pub nodes: Vec<NodeReport>,
    /// When the drain started.
    #[serde(with = "crate::serde_secs::time")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub started: jiff::Timestamp,
    /// How long the whole drain took.
    #[serde(serialize_with = "crate::serde_secs::ms::serialize")]
    pub seconds: f64,
    /// Every request the drain sent, by kind (e.g. `"create pods/eviction"`), across all nodes.
    pub requests: BTreeMap<String, u64>,
}

impl Report {
    /// True when every node was drained.
    pub fn succeeded(&self) -> bool {
        self.nodes.iter().all(|n| n.outcome == NodeOutcome::Drained)
    }

    /// Target pods not seen gone, over all nodes.
    pub fn pending(&self) -> Vec<&PodReport> {
        self.nodes.iter().flat_map(|n| n.pending()).collect()
    }
}

/// What happened on one node.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct NodeReport {
    /// Node name.
    pub node: String,
    /// The node was already unschedulable before the drain.
    pub was_cordoned: bool,
    /// How long this node's drain took.
    #[serde(serialize_with = "crate::serde_secs::ms::serialize")]
    pub seconds: f64,
    /// Every pod considered, with its fate.
    pub pods: Vec<PodReport>,
    /// Requests sent for this node, by kind (e.g. `"create pods/eviction"`).
    pub requests: BTreeMap<String, u64>,
    /// How the node's drain ended.
    pub outcome: NodeOutcome,
}

impl NodeReport {
    /// Pods that had to go but were not seen gone.
    pub fn pending(&self) -> impl Iterator<Item = &PodReport> {
        self.pods.iter().filter(|p| p.is_pending())
    }
}

/// How one node's drain ended.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NodeOutcome {
    /// Every target pod was seen gone (or, in a dry run, would have been evicted).
    Drained,
    /// Pods were still blocked by disruption budgets when the time ran out.
    BlockedByBudgets,
    /// Pods were left that could not be evicted (refused, failed, or stuck).
    PodsLeft,
    /// The node could not be drained at all.
    Failed {
        /// What went wrong.
        error: String,
    },
}

/// What happened to one pod.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct PodReport {
    /// The pod.
    pub pod: PodRef,
    /// What the plan decided for it.
    pub action: Action,
    /// Why.
    pub reason: String,
    /// Eviction (or delete) requests sent (in a client dry run: that would have been sent).
    pub attempts: u32,
    /// When the first request was sent.
    #[serde(with = "crate::serde_secs::time::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub first_attempt: Option<jiff::Timestamp>,
    /// When the eviction (or delete) was accepted.
    #[serde(with = "crate::serde_secs::time::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub accepted: Option<jiff::Timestamp>,
    /// When the pod was seen gone.
    #[serde(with = "crate::serde_secs::time::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub gone: Option<jiff::Timestamp>,
    /// The budget (or other cause) that held it back last.
    pub blocked_by: Option<String>,
    /// Total time it spent blocked.
    #[serde(serialize_with = "crate::serde_secs::ms::serialize")]
    pub blocked_seconds: f64,
    /// How it ended.
    pub outcome: PodOutcome,
}

impl PodReport {
    /// A pod that had to leave the node and was not seen gone.
    pub fn is_pending(&self) -> bool {
        matches!(
            self.outcome,
            PodOutcome::Blocked | PodOutcome::Failed { .. }
        )
    }
}

/// How one pod ended.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PodOutcome {
    /// Seen gone (its UID left the node).
    Gone,
    /// Left alone on purpose (DaemonSet, mirror, opt-out, stale terminating pod...).
    Skipped,
    /// Still blocked by a budget when the drain ended.
    Blocked,
    /// Not gone for another reason.
    Failed {
        /// What went wrong, in words.
        error: String,
        /// What went wrong, for callers that branch on it.
        kind: FailureKind,
    },
    /// A dry run: would have been drained.
    DryRun,
}
