//! The `NodeDrain` resource (group `kdrain.io`, version `v1alpha1`, cluster-scoped): a request to
//! drain nodes, and the status the controller keeps current while it does.
//!
//! The schema carries the rules it can express (`x-kubernetes-validations`): exactly one of
//! `nodeNames` / `nodeSelector`, `maxUnavailableNodes` neither 0 nor 0%, a Go duration for
//! `timeout`, the targets unchanged once set. The controller checks everything else (a selector
//! that does not parse, an unknown node, a node claimed twice) and reports it as `Refused`.

// clippy reads the repeated `type_ = "string"` of the printer columns as duplicated attributes
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// The API group of the resource.
pub const GROUP: &str = "kdrain.io";
/// The finalizer that lets a deleted NodeDrain stop and restore what it cordoned first.
pub const FINALIZER: &str = "kdrain.io/finalizer";

/// What a NodeDrain asks for: which nodes, how far (the stage), and the drain options with
/// `kubectl drain`'s meaning and defaults.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[kube(
    group = "kdrain.io",
    version = "v1alpha1",
    kind = "NodeDrain",
    plural = "nodedrains",
    singular = "nodedrain",
    shortname = "nd",
    status = "NodeDrainStatus",
    doc = "A request to drain nodes: cordon them, evict their pods within disruption budgets, and report what blocks",
    printcolumn(name = "Stage", type_ = "string", json_path = ".spec.stage"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Nodes",
        type_ = "string",
        description = "nodes drained / selected",
        json_path = ".status.nodesSummary"
    ),
    printcolumn(
        name = "Gone/Total",
        type_ = "string",
        description = "target pods gone / total",
        json_path = ".status.podsSummary"
    ),
    printcolumn(
        name = "Blocked By",
        type_ = "string",
        description = "what holds the drain back now",
        json_path = ".status.blockedBy"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = kube::core::Rule::new("has(self.nodeNames) != has(self.nodeSelector)")
    .message("set exactly one of nodeNames or nodeSelector"))]
#[serde(rename_all = "camelCase")]
pub struct NodeDrainSpec {
    /// The nodes to drain, by name (or use nodeSelector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf")
        .message("nodeNames cannot change; create another NodeDrain"))]
    pub node_names: Option<Vec<String>>,
    /// The nodes to drain, by label selector (`pool=a,zone!=b`), resolved once when the drain
    /// starts (or use nodeNames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf")
        .message("nodeSelector cannot change; create another NodeDrain"))]
    pub node_selector: Option<String>,
    /// Why the nodes are drained (shown in Events and kept for the record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How far to go: Idle (plan only), Cordon, Drain (the default), Complete (uncordon what this
    /// drain cordoned).
    #[serde(default)]
    pub stage: Stage,
    /// kubectl `--pod-selector`: only pods matching this label selector are drained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<String>,
    /// kubectl `--force`: also drain pods that declare no controller.
    #[serde(default)]
    pub force: bool,
    /// kubectl `--ignore-daemonsets`: skip DaemonSet-managed pods instead of refusing the drain.
    #[serde(default)]
    pub ignore_daemon_sets: bool,
    /// kubectl `--delete-emptydir-data`: drain pods with emptyDir volumes (their data is lost).
    #[serde(default)]
    pub delete_empty_dir_data: bool,
    /// kubectl `--grace-period`: seconds each pod gets to stop; -1 (default) = the pod's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -1))]
    pub grace_period_seconds: Option<i64>,
    /// kubectl `--timeout` per node, as a Go duration (`90s`, `5m`, `1h30m`); 0 or unset = no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$"))]
    pub timeout: Option<String>,
    /// kubectl `--skip-wait-for-delete-timeout`: pods deleted longer ago than this are neither
    /// drained nor waited for; 0 or unset = never skip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub skip_wait_for_delete_timeout_seconds: Option<i64>,
    /// kubectl `--disable-eviction`: DELETE pods instead of evicting them (bypasses budgets).
    #[serde(default)]
    pub disable_eviction: bool,
    /// Evict pods even when they opt out (safe-to-evict false, do-not-disrupt, drain skip).
    #[serde(default)]
    pub override_opt_outs: bool,
    /// How many of the selected nodes are drained at once: a count (>= 1) or a percent (1%-100%)
    /// of the selected nodes, rounded down but at least one; unset = 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new(
        "type(self) == int ? int(self) >= 1 : string(self).matches('^(100|[1-9][0-9]?)%$')"
    ).message("maxUnavailableNodes must be a count of at least 1 or a percent from 1% to 100%"))]
    pub max_unavailable_nodes: Option<IntOrString>,
    /// What to do with the nodes this drain cordoned when it fails: KeepCordoned (default) or
    /// Uncordon.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// kdrain `--wait-for-capacity`: nodes whose evicted pods' replacements have no room now
    /// wait for it (each later wave is chosen by the room there is when the one before ends,
    /// e.g. drained nodes made schedulable again) instead of refusing the drain; `timeout`
    /// bounds the wait. Unset: such a drain is Refused before any change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wait_for_capacity: bool,
}

/// How far a NodeDrain goes.
#[derive(
    Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default, schemars::JsonSchema,
)]
pub enum Stage {
    /// Plan only: read the nodes, pods and budgets and fill `status.plan`; change nothing.
    Idle,
    /// Plan, then cordon the nodes (annotated `kdrain.io/cordoned-by`); evict nothing.
    Cordon,
    /// Plan, cordon and drain (the default).
    #[default]
    Drain,
    /// Uncordon the nodes this drain cordoned, and stop any drain still running.
    Complete,
}

/// What happens to the nodes a failed drain cordoned.
#[derive(
    Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default, schemars::JsonSchema,
)]
pub enum OnFailure {
    /// Leave them cordoned for a person to look at (the default).
    #[default]
    KeepCordoned,
    /// Make them schedulable again.
    Uncordon,
}

/// Where a NodeDrain is.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema)]
pub enum Phase {
    /// Seen, not acted on yet.
    Pending,
    /// The plan is in `status.plan` (stage Idle stops here).
    Planned,
    /// The spec cannot be carried out as written; the `Planned` condition says why.
    Refused,
    /// The nodes are cordoned (stage Cordon stops here).
    Cordoned,
    /// Pods are being evicted.
    Draining,
    /// Every target pod is gone from every node.
    Drained,
    /// The drain ended with pods left (timeout, a refused pod, an error).
    Failed,
    /// Stage Complete: the nodes this drain cordoned are schedulable again.
    Completed,
}

impl Phase {
    /// The phase of a drain that has stopped working (nothing more happens at its stage).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Phase::Refused | Phase::Drained | Phase::Failed | Phase::Completed
        )
    }
}

/// What the controller last saw and did.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeDrainStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the drain is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// `Planned`, `Cordoned`, `Drained`, each with a reason and a message a person can act on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The selected nodes, each with its progress.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeProgress>,
    /// The pods that wait now, longest-waiting first, capped (see `moreBlockers`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<Blocker>,
    /// How many more pods wait than `blockers` lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_blockers: Option<u32>,
    /// The plan's summary, computed before any change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanSummary>,
    /// When the controller started acting on the current stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the drain reached a final phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// For `kubectl get`: nodes drained / selected (`1/3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes_summary: Option<String>,
    /// For `kubectl get`: target pods gone / total (`5/12`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods_summary: Option<String>,
    /// For `kubectl get`: what holds the drain back now (`budget shop/web needs 3 has 3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
}

/// One node of the drain.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeProgress {
    /// Node name.
    pub name: String,
    /// `Pending` (not started), `Cordoned`, `Draining`, `Drained`, `Failed` or `Uncordoned`.
    pub phase: String,
    /// Target pods (to evict, delete or wait for) when the plan was made and since.
    pub pods_total: u32,
    /// Target pods seen gone.
    pub pods_gone: u32,
    /// Target pods not gone yet.
    pub pods_left: u32,
    /// When its drain started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When its drain ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A pod that waits.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Blocker {
    /// `namespace/name`.
    pub pod: String,
    /// The node it runs on.
    pub node: String,
    /// What it waits for: Budget, SeveralBudgets, Protection, Throttling, NamespaceTermination,
    /// Error, Room (waitForCapacity: room for its replacement).
    pub cause: String,
    /// The budget that blocks it, when one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    /// Healthy pods the budget needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs: Option<i32>,
    /// Healthy pods the budget has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has: Option<i32>,
    /// Since when it waits.
    pub since: Time,
    /// kdrain holds it back itself (no request sent: the budget allows nothing now), as
    /// opposed to the server refusing the eviction.
    pub held_by_kdrain: bool,
    /// Why, in words.
    pub message: String,
}

/// The plan, summed up.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanSummary {
    /// Pods to evict or delete.
    pub evictions: u32,
    /// Pods left alone (DaemonSet, mirror, opt-out...).
    pub skipped: u32,
    /// Every budget that covers a pod to evict, with its verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<BudgetSummary>,
    /// Pods the options do not allow to drain (kubectl's "cannot delete ..." groups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused_pods: Vec<String>,
    /// The plan's warnings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Estimated worst-case time to empty the nodes, in seconds.
    pub worst_case_seconds: i64,
}

/// A budget in the plan.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetSummary {
    /// `namespace/name`.
    pub name: String,
    /// `Passes`, `Waits` or `Never`.
    pub verdict: String,
    /// Why, when it does not simply pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Disruptions it allows now.
    pub disruptions_allowed: i32,
    /// Pods of the plan it covers.
    pub pods: u32,
}
