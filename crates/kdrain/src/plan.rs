//! The plan: every pod with its action and reason, every budget touched with its verdict, and the
//! errors that stop a drain before anything changes. Computed from reads only.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use schemars::JsonSchema;
use serde::Serialize;

use crate::budget::{self, BudgetNow};
pub use crate::model::Action;
use crate::model::PodRef;
use crate::options::DrainOptions;
use crate::select::{self, DaemonSetLookup, PodFilter};

/// Everything a drain would do, before it does anything.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Plan {
    /// One entry per target node.
    pub nodes: Vec<NodePlan>,
    /// Every budget that covers a pod to be evicted.
    pub budgets: Vec<BudgetPlan>,
    /// Errors that stop the drain (kubectl's "cannot delete ..." groups, budgets that never pass).
    pub errors: Vec<String>,
    /// kubectl's grouped warnings, over all nodes.
    pub warnings: Vec<String>,
    /// Estimated time to empty the nodes: the pods' grace periods tier by tier (and the wait for
    /// pods protected by `karpenter.sh/do-not-disrupt` durations), plus, for each budget that
    /// lets the pods go in batches, every later batch's grace period and the time replacements
    /// took to become ready in this cluster ([`BudgetPlan::replacement_ready_seconds`]; nothing
    /// is added for it where that is unknown).
    #[serde(serialize_with = "crate::serde_secs::ms::serialize")]
    pub worst_case_seconds: f64,
    /// Room for the replacements ([`crate::capacity`]); `None` when not checked (the nodes or
    /// pods could not be listed). Left out of JSON when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<crate::capacity::Capacity>,
    /// The nodes drained together, in order ([`crate::waves`]): each wave starts when the one
    /// before is drained. Empty (and left out of JSON) for one node, or when capacity was not
    /// checked or is ignored: the nodes then run `parallel_nodes` at a time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<Wave>,
    /// With `wait_for_capacity`: the nodes whose replacements find no room now, after the
    /// waves; they wait for room instead of refusing the drain ([`crate::waves`]). Left out of
    /// JSON when none waits. Boxed: every [`crate::Event::Planned`] carries a plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waits_for_room: Option<Box<RoomWait>>,
    /// What `--surge` does for each workload it names ([`crate::surge`]); left out of JSON
    /// when none is named.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub surges: Vec<SurgePlan>,
}

impl Plan {
    /// No error: the drain can start.
    pub fn can_complete(&self) -> bool {
        self.errors.is_empty()
    }

    /// The replacements of the evicted pods do not all fit (or could not be checked), and that
    /// refuses the drain (it does not with `ignore_capacity`).
    pub fn short_of_room(&self) -> bool {
        self.capacity
            .as_ref()
            .is_some_and(crate::capacity::Capacity::refuses)
    }

    /// Number of pods that will be evicted or deleted.
    pub fn evictions(&self) -> usize {
        self.nodes
            .iter()
            .flat_map(|n| &n.pods)
            .filter(|p| matches!(p.action, Action::Evict | Action::Delete))
            .count()
    }
}

/// What `--surge` does for one workload the user named ([`crate::surge`] decides it).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SurgePlan {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Its kind, as its pods' owner says (Deployment, StatefulSet...); empty when no pod of it
    /// is on the nodes.
    pub kind: String,
    /// Its pods on the target nodes (`ns/name`).
    pub pods: Vec<String>,
    /// The rollout is restarted.
    pub restart: bool,
    /// What happens, or why nothing does.
    pub reason: String,
}

impl SurgePlan {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Nodes drained together ([`crate::waves`] chooses them).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Wave {
    /// The nodes.
    pub nodes: Vec<String>,
    /// Replacements of the wave's evicted pods (those an owner recreates).
    pub replacements: usize,
    /// Estimated time for the wave: its slowest node plus its budgets' later batches.
    #[serde(serialize_with = "crate::serde_secs::ms::serialize")]
    pub worst_case_seconds: f64,
}

/// Nodes that wait for room for their replacements (`wait_for_capacity`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct RoomWait {
    /// The nodes, in the order they are tried.
    pub nodes: Vec<String>,
    /// Replacements of their evicted pods (those an owner recreates).
    pub replacements: usize,
    /// What those replacements request together, for people (`5.6 CPU, 3Gi memory`); empty
    /// when they request nothing.
    pub needs: String,
}

/// The plan for one node.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct NodePlan {
    /// Node name.
    pub node: String,
    /// The node was unschedulable when planned.
    pub cordoned: bool,
    /// Every pod on the node that matches the pod selector.
    pub pods: Vec<PodPlan>,
    /// kubectl's error groups for this node (`cannot delete <msg>: ns/a, ns/b`).
    pub errors: Vec<String>,
    /// kubectl's warning groups for this node (`<msg>: ns/a, ns/b`).
    pub warnings: Vec<String>,
}

/// The plan for one pod.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct PodPlan {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// What happens to it.
    pub action: Action,
    /// Why.
    pub reason: String,
    /// The budget its eviction spends (names joined by ", " when several cover it).
    pub budget: Option<String>,
    /// The grace period it gets, in seconds.
    pub grace_seconds: i64,
    /// Eviction order: 0 non-critical, 1 non-critical DaemonSet, 2 critical, 3 critical DaemonSet.
    pub tier: u8,
    /// Not evicted before this moment: `karpenter.sh/do-not-disrupt` with a duration that ends
    /// before the drain's deadline (the drain waits for it). Left out of JSON when absent.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_secs::time::option"
    )]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub protected_until: Option<jiff::Timestamp>,
    /// For a pod that leaves: where its replacement goes (`replacement fits on n2`), that
    /// there is no room for it (with the scheduler's message), or that nothing replaces it
    /// (`lost: ...`); constraints not evaluated are named (`placement not checked: uses ...`).
    /// Left out of JSON when the capacity was not checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<String>,
}

impl PodPlan {
    /// The pod's reference.
    pub fn pod_ref(&self) -> PodRef {
        PodRef {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
        }
    }
}

/// A budget touched by the plan.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct BudgetPlan {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `status.disruptionsAllowed` now.
    pub disruptions_allowed: i32,
    /// `status.currentHealthy` now.
    pub current_healthy: i32,
    /// `status.desiredHealthy` now.
    pub desired_healthy: i32,
    /// `status.expectedPods` now.
    pub expected_pods: i32,
    /// The plan's pods whose eviction spends this budget (`ns/name`).
    pub pods: Vec<String>,
    /// Can it let them all go?
    pub verdict: BudgetVerdict,
    /// How long this budget's pods took to become ready here: the median, over its Ready pods
    /// on the planned nodes, of `status.startTime` (else `creationTimestamp`) to the Ready
    /// condition's `lastTransitionTime`. `None` when no pod tells. Each batch after the first
    /// waits about this long for replacements.
    #[serde(serialize_with = "crate::serde_secs::ms::option::serialize")]
    pub replacement_ready_seconds: Option<f64>,
}

/// Whether a budget lets the plan's pods go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "verdict", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BudgetVerdict {
    /// It allows all of them now.
    Passes,
    /// It allows some now; the others must wait (for replacements, or the controller).
    Waits {
        /// Why, in words.
        reason: String,
    },
    /// It can never allow them: the drain would hang.
    Never {
        /// Why, in words.
        reason: String,
    },
}

/// The inputs for one node, as read from the cluster.
#[derive(Debug, Clone)]
pub struct NodeInput {
    /// Node name.
    pub node: String,
    /// `spec.unschedulable`.
    pub cordoned: bool,
    /// The node's pods that match the pod selector.
    pub pods: Vec<Pod>,
}

/// The grace period a pod gets: the override, else its own (default 30 s); finished pods 0.
pub(crate) fn grace_of(pod: &Pod, opts: &DrainOptions) -> i64 {
    if select::is_finished(pod) {
        return 0;
    }
    opts.grace_override()
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30)
}

/// Seconds from a pod's start (`status.startTime`, else `creationTimestamp`) to its Ready
/// condition's `lastTransitionTime`, for a pod that is Ready now; `None` when it is not Ready or
/// a time is missing or out of order.
pub fn ready_after_start(pod: &Pod) -> Option<f64> {
    let status = pod.status.as_ref()?;
    let ready = status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    let became = ready.last_transition_time.as_ref()?.0;
    let start = status
        .start_time
        .as_ref()
        .or(pod.metadata.creation_timestamp.as_ref())?
        .0;
    let secs = became.duration_since(start).as_secs_f64();
    (secs >= 0.0).then_some(secs)
}

/// The median of [`ready_after_start`] over `pods`; `None` when no pod tells.
pub(crate) fn median_ready_seconds<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> Option<f64> {
    let mut v: Vec<f64> = pods.into_iter().filter_map(ready_after_start).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// Estimated time to empty one node, budgets aside: the grace periods of the pods it evicts or
/// deletes, tier by tier (each tier waits for the one before), a protected pod counting from
/// the end of its protection.
pub(crate) fn node_seconds(np: &NodePlan, now: jiff::Timestamp) -> f64 {
    let mut tier_time = [0f64; 4];
    for p in &np.pods {
        if !matches!(p.action, Action::Evict | Action::Delete) {
            continue;
        }
        let protected = p
            .protected_until
            .map_or(0.0, |t| t.duration_since(now).as_secs_f64().max(0.0));
        let t = &mut tier_time[usize::from(p.tier.min(3))];
        *t = t.max(protected + p.grace_seconds as f64);
    }
    tier_time.iter().sum()
}

/// The reference of a pod object.
pub fn pod_ref(pod: &Pod) -> PodRef {
    PodRef {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
    }
}

/// Computes the plan from what was read. Pure: no I/O.
pub fn build(
    opts: &DrainOptions,
    nodes: &[NodeInput],
    pdbs: &[PodDisruptionBudget],
    ds: &dyn Fn(&Pod) -> DaemonSetLookup,
    custom: &[PodFilter],
    now: jiff::Timestamp,
) -> Plan {
    let mut plan = Plan {
        nodes: Vec::new(),
        budgets: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
        worst_case_seconds: 0.0,
        capacity: None,
        waves: Vec::new(),
        waits_for_room: None,
        surges: Vec::new(),
    };
    // budget key -> (pods needing it, replaceable count, max grace)
    let mut needs: BTreeMap<String, (Vec<String>, i32, i64)> = BTreeMap::new();
    let mut shared: Vec<(String, Vec<String>)> = Vec::new();
    let mut node_estimates = Vec::new();
    let compiled = budget::Compiled::new(pdbs);
    for input in nodes {
        let mut np = NodePlan {
            node: input.node.clone(),
            cordoned: input.cordoned,
            pods: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        let mut errs = Vec::new();
        let mut warns = Vec::new();
        for pod in &input.pods {
            let s = select::select_pod(pod, opts, now, ds, custom);
            let r = pod_ref(pod);
            if let Some(e) = &s.error {
                errs.push((e.clone(), r.to_string()));
            }
            if let Some(w) = &s.warning {
                warns.push((w.clone(), r.to_string()));
            }
            let grace = grace_of(pod, opts);
            let tier = select::tier(pod);
            let mut budget_name = None;
            if s.action == Action::Evict {
                let covering = compiled.covering(pod);
                if covering.len() > 1 {
                    let names: Vec<String> = covering
                        .iter()
                        .map(|b| b.metadata.name.clone().unwrap_or_default())
                        .collect();
                    budget_name = Some(names.join(", "));
                    shared.push((
                        r.to_string(),
                        covering.iter().map(|b| budget::pdb_key(b)).collect(),
                    ));
                    for b in &covering {
                        needs
                            .entry(budget::pdb_key(b))
                            .or_default()
                            .0
                            .push(r.to_string());
                    }
                } else if let Some(b) = covering.first() {
                    budget_name = b.metadata.name.clone();
                    if budget::consumes_budget(pod, b) {
                        let e = needs.entry(budget::pdb_key(b)).or_default();
                        e.0.push(r.to_string());
                        if select::controller_of(pod).is_some() {
                            e.1 += 1;
                        }
                        e.2 = e.2.max(grace);
                    }
                }
            }
            np.pods.push(PodPlan {
                namespace: r.namespace,
                name: r.name,
                uid: r.uid,
                action: s.action,
                reason: s.reason,
                budget: budget_name,
                grace_seconds: grace,
                tier,
                protected_until: s.protected_until,
                placement: None,
            });
        }
        np.errors = select::error_lines(errs);
        np.warnings = select::warning_lines(warns);
        plan.errors.extend(np.errors.iter().cloned());
        plan.warnings.extend(np.warnings.iter().cloned());
        node_estimates.push(node_seconds(&np, now));
        plan.nodes.push(np);
    }
    for (pod, keys) in &shared {
        plan.errors.push(format!(
            "pod {pod} is covered by more than one disruption budget ({}), which the eviction API refuses (HTTP 500): fix the budgets' selectors or use --disable-eviction",
            keys.join(", ")
        ));
    }
    let mut extra = 0.0;
    for (key, (pods, replaceable, grace)) in needs {
        let Some((pdb, covers)) = compiled.by_key(&key) else {
            continue;
        };
        let now_st = BudgetNow::of(pdb);
        let needed = pods.len() as i32;
        let ready_secs =
            median_ready_seconds(nodes.iter().flat_map(|n| &n.pods).filter(|p| covers(p)));
        let shared_with: Vec<&String> = shared
            .iter()
            .filter(|(_, keys)| keys.contains(&key))
            .flat_map(|(_, keys)| keys.iter().filter(|k| **k != key))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let verdict = if !shared_with.is_empty() {
            let others: Vec<&str> = shared_with.iter().map(|s| s.as_str()).collect();
            BudgetVerdict::Never {
                reason: format!(
                    "it shares pods with {}; a pod under two budgets cannot be evicted",
                    others.join(", ")
                ),
            }
        } else if let Some(r) = budget::never_reason(pdb) {
            BudgetVerdict::Never { reason: r }
        } else if !now_st.observed {
            BudgetVerdict::Waits {
                reason: "its status is still being processed by the disruption controller".into(),
            }
        } else {
            let (at_once, ever) = budget::joint_spend(now_st.allowed, needed, replaceable);
            if at_once == needed {
                BudgetVerdict::Passes
            } else {
                let unhealthy = now_st.expected.saturating_sub(now_st.current_healthy);
                let spent = if unhealthy > 0 && now_st.allowed < needed {
                    format!(
                        "; {unhealthy} of its {} expected pods are not healthy",
                        now_st.expected
                    )
                } else {
                    String::new()
                };
                if ever {
                    // Batches of `at_once`: each later batch waits for the replacements of the
                    // one before to become ready, then takes its grace period. With nothing
                    // allowed now, every pod waits for a replacement first.
                    let waits = if at_once > 0 {
                        (f64::from(needed) / f64::from(at_once)).ceil() - 1.0
                    } else {
                        f64::from(needed)
                    };
                    extra += waits * (grace as f64 + ready_secs.unwrap_or(0.0));
                    BudgetVerdict::Waits {
                        reason: format!(
                            "it allows {at_once} of the {needed} pods now (needs {} healthy, has {}); the rest wait for replacements to become ready{spent}",
                            now_st.desired_healthy, now_st.current_healthy
                        ),
                    }
                } else {
                    BudgetVerdict::Never {
                        reason: format!(
                            "it allows {at_once} of the {needed} pods and their pods declare no controller, so nothing replaces them{spent}"
                        ),
                    }
                }
            }
        };
        if let BudgetVerdict::Never { reason } = &verdict {
            plan.errors.push(format!(
                "disruption budget {key} can never allow evicting {}: {reason}; fix or delete the budget, or use --disable-eviction",
                pods.join(", ")
            ));
        }
        plan.budgets.push(BudgetPlan {
            namespace: pdb.metadata.namespace.clone().unwrap_or_default(),
            name: pdb.metadata.name.clone().unwrap_or_default(),
            disruptions_allowed: now_st.allowed,
            current_healthy: now_st.current_healthy,
            desired_healthy: now_st.desired_healthy,
            expected_pods: now_st.expected,
            pods,
            verdict,
            replacement_ready_seconds: ready_secs,
        });
    }
    // Nodes run in lanes of `parallel_nodes`; each lane is as slow as its slowest node.
    node_estimates.sort_by(|a, b| b.total_cmp(a));
    let lanes = opts.parallel_nodes.max(1);
    plan.worst_case_seconds = node_estimates.chunks(lanes).map(|c| c[0]).sum::<f64>() + extra;
    plan
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
