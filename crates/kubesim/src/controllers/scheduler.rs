//! The simulated scheduler: binds an unscheduled pod to the least loaded node that passes the
//! default scheduler's filters, in its order: NodeUnschedulable (cordoned), TaintToleration
//! (NoSchedule/NoExecute, including the not-ready taint), NodeAffinity (`nodeSelector` and
//! required node affinity), NodePorts (host ports in use), NodeResourcesFit (pod count and
//! requests against allocatable minus the requests of the pods already there),
//! PodTopologySpread (`DoNotSchedule`) and InterPodAffinity (required pod affinity and
//! anti-affinity, the pod's own and the running pods'; see [`super::interpod`]). A pod no node
//! accepts stays Pending with `PodScheduled=False/Unschedulable` and the real scheduler's message
//! (`0/3 nodes are available: 1 Insufficient cpu, 2 node(s) were unschedulable. preemption: ...`),
//! and a `FailedScheduling` event whose text is cut at 1 kB as the real scheduler cuts it.
//! Nothing is ever preempted.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PodSpec, Taint, Toleration};
use sched::diagnosis::{self, NodeStatus};
use sched::resources::{self, Resources};
use serde_json::{Value, json};

use super::interpod::{self, Context, NodeView};
use crate::events::{Recorder, Source, Type};
use crate::meta;
use crate::resources::{NODES, PODS};
use crate::scheduling;
use crate::store::State;

/// The taint `spec.unschedulable` stands for.
const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// A node as the scheduler sees it during one pass.
pub struct Candidate {
    name: String,
    cordoned: bool,
    labels: BTreeMap<String, String>,
    taints: Vec<Taint>,
    allocatable: Resources,
    /// Pods on the node that are not finished.
    pods: usize,
    /// Requests of those pods (computed when first needed in the pass).
    requested: Option<Resources>,
}

fn active(pod: &Value) -> bool {
    !meta::is_terminal(pod)
}

/// Every node that is not being deleted, computed once per scheduling pass.
pub fn candidates(st: &State) -> Vec<Candidate> {
    st.iter(NODES, None)
        .filter(|(_, n)| !meta::is_terminating(n))
        .map(|(_, n)| {
            let name = meta::name(&n).to_string();
            let taints: Vec<Taint> = if n["spec"]["taints"].is_array() {
                serde_json::from_value(n["spec"]["taints"].clone()).unwrap_or_default()
            } else {
                Vec::new()
            };
            let allocatable = scheduling::node_allocatable(&n);
            let listed = st.pods_on_node(&name).map_or(0, |keys| keys.len());
            // Finished pods do not count; only look at them when the node is near its limit.
            let pods = if listed as i128 + 1 > allocatable.get(resources::PODS) {
                st.pods_on_node(&name).map_or(0, |keys| {
                    keys.iter()
                        .filter_map(|k| st.get(PODS, &k.0, &k.1))
                        .filter(|p| active(p))
                        .count()
                })
            } else {
                listed
            };
            Candidate {
                cordoned: n["spec"]["unschedulable"].as_bool() == Some(true),
                labels: meta::labels(&n),
                taints,
                allocatable,
                pods,
                requested: None,
                name,
            }
        })
        .collect()
}

fn requested_on(st: &State, node: &str) -> Resources {
    let mut sum = Resources::default();
    for k in st.pods_on_node(node).into_iter().flatten() {
        if let Some(p) = st.get(PODS, &k.0, &k.1)
            && active(&p)
        {
            sum.add(&scheduling::pod_requests(&p["spec"]));
        }
    }
    sum
}

/// The default scheduler's filters for one node, in order; the first that fails gives the
/// node's status.
fn filter(
    st: &State,
    c: &mut Candidate,
    spec: &PodSpec,
    tolerations: &[Toleration],
    reqs: &Resources,
    pod: (&[(String, i64)], Option<&Context>),
) -> Result<(), NodeStatus> {
    let (ports, ctx) = pod;
    let fail = |reasons: Vec<String>| {
        let resolvable = reasons.iter().all(|r| diagnosis::resolvable(r));
        Err(NodeStatus {
            reasons,
            resolvable,
        })
    };
    if c.cordoned {
        let t = Taint {
            key: UNSCHEDULABLE_TAINT.into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if !tolerations
            .iter()
            .any(|tol| sched::nodes::tolerates(tol, &t))
        {
            return fail(vec![diagnosis::UNSCHEDULABLE.into()]);
        }
    }
    if let Some(t) = sched::nodes::untolerated_taint(&c.taints, tolerations) {
        return fail(vec![sched::nodes::taint_reason(t)]);
    }
    if !sched::nodes::affinity_matches(spec, &c.labels, &c.name) {
        return fail(vec![diagnosis::NODE_AFFINITY.into()]);
    }
    if !ports.is_empty() && interpod::ports_taken(st, &c.name, ports) {
        return fail(vec![interpod::HOST_PORTS.into()]);
    }
    let mut reasons = Vec::new();
    if c.pods + 1 > usize::try_from(c.allocatable.get(resources::PODS)).unwrap_or(0) {
        reasons.push(diagnosis::TOO_MANY_PODS.to_string());
    }
    if !reqs.is_zero() {
        let used = c.requested.get_or_insert_with(|| requested_on(st, &c.name));
        // cpu, memory, ephemeral-storage first (the scheduler's order), then the others.
        let mut names: Vec<&String> = reqs.0.keys().collect();
        names.sort_by_key(|n| match n.as_str() {
            resources::CPU => 0,
            resources::MEMORY => 1,
            resources::EPHEMERAL_STORAGE => 2,
            _ => 3,
        });
        for name in names {
            let want = reqs.get(name);
            if name == resources::PODS || want <= 0 {
                continue;
            }
            if want > c.allocatable.get(name) - used.get(name) {
                reasons.push(diagnosis::insufficient(name));
            }
        }
    }
    if !reasons.is_empty() {
        return fail(reasons);
    }
    match ctx {
        Some(ctx) => ctx.check(&c.labels),
        None => Ok(()),
    }
}

/// Pick the least loaded node that passes every filter and count the pod on it, or say why
/// none does.
fn pick(st: &State, nodes: &mut [Candidate], pod: &Value) -> Result<String, String> {
    let spec: PodSpec = serde_json::from_value(pod["spec"].clone()).unwrap_or_default();
    let reqs = scheduling::pod_requests(&pod["spec"]);
    let tolerations = spec.tolerations.clone().unwrap_or_default();
    let ports = interpod::host_ports(&pod["spec"]);
    let ctx = if !interpod::needed(st, &spec) {
        None
    } else {
        let views: Vec<NodeView<'_>> = nodes
            .iter()
            .map(|c| NodeView {
                name: &c.name,
                labels: &c.labels,
                taints: &c.taints,
            })
            .collect();
        Context::new(st, &views, &spec, pod)
    };
    let mut statuses = Vec::new();
    let mut best: Option<usize> = None;
    for i in 0..nodes.len() {
        let extra = (ports.as_slice(), ctx.as_ref());
        match filter(st, &mut nodes[i], &spec, &tolerations, &reqs, extra) {
            Ok(()) => {
                if best.is_none_or(|b| nodes[i].pods < nodes[b].pods) {
                    best = Some(i);
                }
            }
            Err(s) => statuses.push(s),
        }
    }
    match best {
        Some(b) => {
            let c = &mut nodes[b];
            c.pods += 1;
            if let Some(used) = c.requested.as_mut() {
                used.add(&reqs);
            } else if !reqs.is_zero() {
                let mut used = requested_on(st, &c.name);
                used.add(&reqs);
                c.requested = Some(used);
            }
            Ok(c.name.clone())
        }
        None => Err(diagnosis::fit_error(
            &statuses,
            spec.preemption_policy.as_deref() == Some("Never"),
        )),
    }
}

/// The events API's limit on a note (`NoteLengthLimit`, 1 kB): the scheduler cuts a longer
/// message to fit and ends it with " ..." (`truncateMessage` in `schedule_one.go`).
fn truncate_note(message: String) -> String {
    const LIMIT: usize = 1024;
    const SUFFIX: &str = " ...";
    if message.len() <= LIMIT {
        return message;
    }
    let mut end = LIMIT - SUFFIX.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{SUFFIX}", &message[..end])
}

/// The scheduler reports through the events/v1 recorder.
fn scheduler_source(action: &'static str) -> Source<'static> {
    Source {
        component: "default-scheduler",
        host: "",
        events_v1_action: Some(action),
    }
}

/// Try to bind one pod; returns true when bound, with a `Scheduled` event. A pod that fits
/// nowhere gets `PodScheduled=False/Unschedulable` with the scheduler's message (written again
/// only when the message changes) and a `FailedScheduling` event per attempt.
pub fn bind(st: &mut State, nodes: &mut [Candidate], pod: &Value, rec: &mut Recorder) -> bool {
    let now = meta::now_rfc3339();
    let mut next = pod.clone();
    match pick(st, nodes, pod) {
        Ok(node) => {
            next["spec"]["nodeName"] = json!(node);
            meta::set_condition(
                &mut next,
                json!({"type":"PodScheduled","status":"True","lastTransitionTime":now}),
            );
            let message = format!(
                "Successfully assigned {}/{} to {node}",
                meta::namespace(pod),
                meta::name(pod)
            );
            let bound = st.replace(PODS, next);
            let src = scheduler_source("Binding");
            rec.event(
                st,
                PODS,
                &bound,
                "",
                Type::Normal,
                "Scheduled",
                message,
                src,
            );
            true
        }
        Err(message) => {
            let same = pod["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "PodScheduled" && c["message"] == message.as_str())
            });
            if !same {
                meta::set_condition(
                    &mut next,
                    json!({"type":"PodScheduled","status":"False","reason":"Unschedulable",
                           "message":message,"lastTransitionTime":now}),
                );
                st.replace(PODS, next);
            }
            let src = scheduler_source("Scheduling");
            rec.event(
                st,
                PODS,
                pod,
                "",
                Type::Warning,
                "FailedScheduling",
                truncate_note(message),
                src,
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::truncate_note;

    #[test]
    fn a_long_message_is_cut_at_the_events_limit_as_the_scheduler_cuts_it() {
        assert_eq!(truncate_note("short".into()), "short");
        let long = "x".repeat(1500);
        let cut = truncate_note(long);
        assert_eq!(cut.len(), 1024);
        assert!(cut.ends_with("x ..."));
        assert_eq!(truncate_note("y".repeat(1024)).len(), 1024);
    }
}
