//! Will the evicted pods fit? The plan's capacity check: every pod to be evicted (or deleted)
//! whose owner will replace it gets a replacement placed by [`crate::placement`], all of them
//! together, largest first; the result is told per workload, with one line a person can act on
//! when some do not fit ("shop/web: 3 replacements need 6 CPU, the 2 schedulable nodes have
//! 2.5 CPU free; add capacity or drain fewer nodes at once"). Pods nothing replaces (bare pods
//! with `--force`) are not placed: they are lost.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use sched::diagnosis::NodeStatus;
use sched::resources::{self, Amount};
use schemars::JsonSchema;
use serde::Serialize;

use kube::Api;

use crate::error::DrainError;
use crate::placement::{self, Engine, Outcome, Residents};
use crate::requests::Requests;
use crate::resident::Uid;
use crate::{select, slim_pod, watch};

/// The cluster read for the capacity check: every node and every pod bound to a node.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    /// Every node.
    pub nodes: Vec<Node>,
    /// Every running (not finished) pod bound to a node, summarized (shared with the
    /// placement engines built from this view, never copied).
    pub residents: Arc<Residents>,
    /// Pods whose requests do not parse (one line each, naming the pod and the field).
    pub errors: Vec<String>,
    /// Pods not bound to a node yet (not finished, not being deleted): they will take room
    /// first. Only [`crate::waves::fitting_now`] places them.
    pub pending: Vec<Pod>,
    /// The resourceVersion of the node list (where a watch of the nodes can start).
    pub nodes_resource_version: String,
}

/// What the plan says about room for the replacements.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct Capacity {
    /// The nodes that stay schedulable (not a drain target, not cordoned, Ready).
    pub schedulable_nodes: Vec<String>,
    /// One entry per workload with pods to replace.
    pub workloads: Vec<WorkloadFit>,
    /// Pods nothing replaces (`ns/name`): they are lost.
    pub lost: Vec<String>,
    /// Quantities that do not parse (node allocatable, pod requests): the check could not be
    /// made; one line each naming the object and the field.
    pub errors: Vec<String>,
    /// Whether a shortage refuses the drain (false with `--ignore-capacity`).
    pub enforced: bool,
    /// `--wait-for-capacity`: the nodes whose replacements do not fit wait for room instead of
    /// refusing the drain (quantities that do not parse still refuse it). Left out of JSON
    /// when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waits: bool,
}

impl Capacity {
    /// The workloads whose replacements do not all fit.
    pub fn short(&self) -> impl Iterator<Item = &WorkloadFit> {
        self.workloads.iter().filter(|w| !w.fits())
    }

    /// Replacements do not all fit (or could not be checked) and that refuses the drain (a
    /// shortage does not when the nodes wait for room).
    pub fn refuses(&self) -> bool {
        self.enforced && (!self.errors.is_empty() || (!self.waits && self.short().next().is_some()))
    }
}

/// Where one workload's replacements go.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct WorkloadFit {
    /// Namespace.
    pub namespace: String,
    /// Owner kind (Deployment when a ReplicaSet's pods carry its pod-template-hash).
    pub kind: String,
    /// Owner name.
    pub name: String,
    /// The pods to be replaced (`ns/name`).
    pub pods: Vec<String>,
    /// How many replacements found a node.
    pub placed: usize,
    /// Replacements per node.
    pub nodes: BTreeMap<String, usize>,
    /// Scheduling constraints of its pods that were not evaluated.
    pub not_checked: Vec<String>,
    /// When some do not fit: why, in one line a person can act on.
    pub problem: Option<String>,
}

impl WorkloadFit {
    /// Every replacement found a node.
    pub fn fits(&self) -> bool {
        self.placed == self.pods.len()
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The workload a pod belongs to, as (kind, name): a ReplicaSet named `<d>-<hash>` whose pods
/// carry `pod-template-hash=<hash>` belongs to Deployment `<d>`.
pub(crate) fn workload_of(pod: &Pod) -> Option<(String, String)> {
    let owner = select::controller_of(pod)?;
    if owner.kind == "ReplicaSet"
        && let Some(hash) = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("pod-template-hash"))
        && let Some(deployment) = owner.name.strip_suffix(&format!("-{hash}"))
    {
        return Some(("Deployment".to_string(), deployment.to_string()));
    }
    Some((owner.kind.clone(), owner.name.clone()))
}

/// Whether something recreates the pod once it is evicted: a controller other than a
/// DaemonSet (whose pods are not evicted, or come back on the same node) or a Node (mirror
/// pods), and the pod has not finished.
pub(crate) fn is_replaced(pod: &Pod) -> bool {
    !select::is_finished(pod)
        && select::controller_of(pod).is_some_and(|o| o.kind != "DaemonSet" && o.kind != "Node")
}

pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The most frequent reason over the nodes' statuses, and how often it appears.
fn main_reason(statuses: &[NodeStatus]) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in statuses {
        for r in &s.reasons {
            *counts.entry(r.as_str()).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .filter(|(r, _)| *r != sched::diagnosis::UNSCHEDULABLE)
        .max_by_key(|(_, n)| *n)
        .map(|(r, _)| r.to_string())
}

/// The line for a workload whose replacements do not all fit.
fn problem_line(
    key: &str,
    pods: &[&Pod],
    placed: usize,
    first_failure: &Outcome,
    engine_before: &Engine,
) -> String {
    let total = pods.len();
    let missing = total - placed;
    let spec = pods[0].spec.clone().unwrap_or_default();
    let (eligible, free) = engine_before.room_for(&spec);
    let open = engine_before.open_nodes().len();
    let fix = "add capacity or drain fewer nodes at once";
    if open == 0 {
        return format!(
            "{key}: {} nowhere to go: no node stays schedulable (every node is drained, cordoned or not Ready); add nodes or drain fewer at once",
            plural(total, "replacement has", "replacements have")
        );
    }
    let nodes_phrase = if eligible == open {
        format!(
            "the {}",
            plural(open, "schedulable node", "schedulable nodes")
        )
    } else {
        format!(
            "the {} it may run on",
            plural(eligible, "schedulable node", "schedulable nodes")
        )
    };
    let reason = main_reason(&first_failure.statuses);
    let resource = match reason.as_deref() {
        Some(sched::diagnosis::TOO_MANY_PODS) => Some(resources::PODS.to_string()),
        Some(r) => r.strip_prefix("Insufficient ").map(str::to_string),
        None => None,
    };
    match resource {
        Some(r) if eligible > 0 => {
            let need: i128 = if r == resources::PODS {
                total as i128
            } else {
                pods.iter()
                    .map(|p| {
                        p.spec
                            .as_ref()
                            .and_then(|s| resources::pod_requests(s).ok())
                            .unwrap_or_default()
                            .get(&r)
                    })
                    .sum()
            };
            let have = free.get(&r);
            let what = if r == resources::PODS {
                format!("room for {}", plural(need as usize, "pod", "pods"))
            } else {
                Amount(&r, need).to_string()
            };
            let free_text = if r == resources::PODS {
                format!("room for {have} more")
            } else {
                format!("{} free", Amount(&r, have))
            };
            let verb = if eligible == 1 { "has" } else { "have" };
            if need > have {
                let partial = if missing < total {
                    format!(" ({missing} do not fit)")
                } else {
                    String::new()
                };
                format!(
                    "{key}: {} need {what}, {nodes_phrase} {verb} {free_text}{partial}; {fix}",
                    plural(total, "replacement", "replacements")
                )
            } else {
                format!(
                    "{key}: {missing} of {total} replacements do not fit: they need {what} and {nodes_phrase} {verb} {free_text}, but other replacements take it or it is split across nodes; {fix}"
                )
            }
        }
        _ => {
            let why = first_failure.fit_error.clone().unwrap_or_default();
            let why = why
                .split(" preemption:")
                .next()
                .unwrap_or_default()
                .trim_end_matches('.');
            if missing == total {
                format!(
                    "{key}: {} no schedulable node ({why}); add matching nodes or drain fewer nodes at once",
                    plural(total, "replacement fits", "replacements fit")
                )
            } else {
                format!(
                    "{key}: {missing} of {total} replacements do not fit ({why}); add matching nodes or drain fewer nodes at once"
                )
            }
        }
    }
}

/// The capacity check over the pods leaving `targets`: `replaced` are the pods to evict or
/// delete whose owner replaces them, `lost` the ones nothing replaces, `leaving` the UIDs of
/// every pod that goes (they no longer count where they are).
pub fn check(
    view: &ClusterView,
    targets: &BTreeSet<String>,
    replaced: &[&Pod],
    lost: &[&Pod],
    leaving: &BTreeSet<String>,
) -> (Capacity, BTreeMap<String, Outcome>) {
    let mut cap = Capacity {
        lost: lost.iter().map(|p| placement_key(p)).collect(),
        errors: view.errors.clone(),
        ..Default::default()
    };
    let leaving: HashSet<Uid> = leaving.iter().map(|u| Uid::from(u.as_str())).collect();
    let before = match Engine::sharing(
        &view.nodes,
        view.residents.clone(),
        |r| !leaving.contains(&r.uid),
        targets,
    ) {
        Ok(e) => e,
        Err(e) => {
            cap.errors.push(e);
            return (cap, BTreeMap::new());
        }
    };
    cap.schedulable_nodes = before.open_nodes();
    let mut order: Vec<&Pod> = replaced.to_vec();
    order.sort_by_key(|p| (placement::size_key(p), placement_key(p)));
    let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut working = before.clone();
    for pod in order {
        match working.place(pod) {
            Ok(o) => {
                outcomes.insert(placement_key(pod), o);
            }
            Err(e) => cap.errors.push(e),
        }
    }
    // Spread constraints over pods that leave together: the result depends on the order.
    let going: Vec<&Pod> = replaced.iter().chain(lost).copied().collect();
    for pod in replaced {
        if let Some(note) = placement::spread_order_dependent(pod, &going)
            && let Some(o) = outcomes.get_mut(&placement_key(pod))
        {
            o.not_checked.push(note);
        }
    }
    // Group by workload, in namespace/name order.
    let mut groups: BTreeMap<(String, String, String), Vec<&Pod>> = BTreeMap::new();
    for pod in replaced {
        let (kind, name) = workload_of(pod).unwrap_or_default();
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        groups.entry((ns, name, kind)).or_default().push(pod);
    }
    for ((namespace, name, kind), pods) in groups {
        let mut fit = WorkloadFit {
            namespace,
            kind,
            name,
            pods: pods.iter().map(|p| placement_key(p)).collect(),
            placed: 0,
            nodes: BTreeMap::new(),
            not_checked: Vec::new(),
            problem: None,
        };
        let mut first_failure = None;
        for p in &pods {
            let Some(o) = outcomes.get(&placement_key(p)) else {
                continue;
            };
            for n in &o.not_checked {
                if !fit.not_checked.contains(n) {
                    fit.not_checked.push(n.clone());
                }
            }
            match &o.node {
                Some(n) => {
                    fit.placed += 1;
                    *fit.nodes.entry(n.clone()).or_default() += 1;
                }
                None => {
                    first_failure.get_or_insert(o);
                }
            }
        }
        if let Some(o) = first_failure {
            fit.problem = Some(problem_line(&fit.key(), &pods, fit.placed, o, &before));
        } else if fit.placed < fit.pods.len() {
            fit.problem = Some(format!(
                "{}: the placement of its replacements could not be checked",
                fit.key()
            ));
        }
        cap.workloads.push(fit);
    }
    (cap, outcomes)
}

/// `namespace/name`.
pub(crate) fn placement_key(pod: &Pod) -> String {
    crate::budget::key_of(
        pod.metadata.namespace.as_deref(),
        pod.metadata.name.as_deref(),
    )
}

/// What placement and the room check read of a node: its name, labels, taints,
/// `spec.unschedulable`, allocatable (and capacity, its fallback) and conditions. The rest (the
/// node's images, addresses, system info, annotations...) is dropped as each page is read: a
/// large cluster's nodes are kept for the whole plan.
pub(crate) fn slim_node(n: Node) -> Node {
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    let m = n.metadata;
    Node {
        metadata: ObjectMeta {
            name: m.name,
            uid: m.uid,
            labels: m.labels,
            resource_version: m.resource_version,
            ..Default::default()
        },
        spec: n.spec.map(|s| NodeSpec {
            taints: s.taints,
            unschedulable: s.unschedulable,
            ..Default::default()
        }),
        status: n.status.map(|s| NodeStatus {
            allocatable: s.allocatable,
            capacity: s.capacity,
            conditions: s.conditions,
            ..Default::default()
        }),
    }
}

/// Reads what the capacity check needs: every node, and every pod bound to a node that has
/// not finished (field selector `status.phase!=Succeeded,status.phase!=Failed`, as the
/// scheduler's own cache), page by page, keeping only each pod's summary. `Ok(None)` with a
/// warning when listing is forbidden: the plan then does not check capacity.
pub(crate) async fn read(
    client: &kube::Client,
    chunk: u32,
    req: &Requests,
) -> Result<(Option<ClusterView>, Option<String>), DrainError> {
    let forbidden = |what: &str, s: &kube::core::Status| {
        format!(
            "cannot list {what} ({}): the plan does not check room for the replacements",
            s.message
        )
    };
    let nodes_api: Api<Node> = Api::all(client.clone());
    let mut nodes = Vec::new();
    let listed = watch::list_pages(&nodes_api, None, None, chunk, req, "nodes", |page| {
        nodes.extend(page.into_iter().map(slim_node))
    })
    .await;
    let nodes_resource_version = match listed {
        Ok(rv) => rv,
        Err(kube::Error::Api(s)) if s.code == 403 => {
            return Ok((None, Some(forbidden("nodes", &s))));
        }
        Err(e) => return Err(DrainError::api("listing nodes", "list", "nodes", None, e)),
    };
    let mut pods = slim_pod::Sink::default();
    let fields = "status.phase!=Succeeded,status.phase!=Failed";
    let url = <Pod as kube::Resource>::url_path(&(), None);
    let res = watch::list_parsed_pages(
        client,
        &url,
        Some(fields),
        None,
        chunk,
        req,
        "pods",
        |text, page| pods.page(text, page),
    )
    .await;
    // A pod that does not deserialize fails the read as a LIST of whole pods would.
    let res = match (res, pods.unreadable) {
        (Ok(_), Some(e)) => Err(kube::Error::SerdeError(e)),
        (res, _) => res,
    };
    let view = ClusterView {
        nodes,
        residents: Arc::new(pods.residents),
        pending: pods.pending,
        errors: pods.errors,
        nodes_resource_version,
    };
    match res {
        Ok(_) => Ok((Some(view), None)),
        Err(kube::Error::Api(s)) if s.code == 403 => Ok((None, Some(forbidden("pods", &s)))),
        Err(e) => Err(DrainError::api(
            "listing the pods of every node",
            "list",
            "pods",
            None,
            e,
        )),
    }
}
