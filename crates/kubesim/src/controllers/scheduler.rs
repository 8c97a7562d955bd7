//! The simulated scheduler: binds unscheduled pods to the least loaded schedulable node that
//! has room (never a cordoned node) and matches the pod's nodeSelector.

use serde_json::{Value, json};

use crate::meta;
use crate::objects;
use crate::resources::{NODES, PODS};
use crate::store::State;

/// Whether a node may run new pods.
fn schedulable(node: &Value) -> bool {
    node["spec"]["unschedulable"].as_bool() != Some(true)
        && !meta::is_terminating(node)
        && node["status"]["conditions"].as_array().is_none_or(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn selector_ok(pod: &Value, node: &Value) -> bool {
    let labels = meta::labels(node);
    let sel = meta::string_map(&pod["spec"]["nodeSelector"]);
    sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Pick a node for a pod, or None when no node fits.
pub fn pick(st: &State, pod: &Value) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for (_, node) in st.iter(NODES, None) {
        if !schedulable(node) || !selector_ok(pod, node) {
            continue;
        }
        let name = meta::name(node);
        let used = st.pods_on_node(name).map_or(0, |s| s.len());
        if used >= objects::max_pods(node) {
            continue;
        }
        if best.as_ref().is_none_or(|(u, _)| used < *u) {
            best = Some((used, name.to_string()));
        }
    }
    best.map(|(_, n)| n)
}

/// Try to bind one pod; returns true when bound.
pub fn bind(st: &mut State, pod: &Value) -> bool {
    let now = meta::now_rfc3339();
    let mut next = pod.clone();
    match pick(st, pod) {
        Some(node) => {
            next["spec"]["nodeName"] = json!(node);
            meta::set_condition(
                &mut next,
                json!({"type":"PodScheduled","status":"True","lastTransitionTime":now}),
            );
            st.replace(PODS, next);
            true
        }
        None => {
            meta::set_condition(
                &mut next,
                json!({"type":"PodScheduled","status":"False","reason":"Unschedulable",
                       "message":"0/all nodes are available: no schedulable node with free pod capacity.","lastTransitionTime":now}),
            );
            st.replace(PODS, next);
            false
        }
    }
}
