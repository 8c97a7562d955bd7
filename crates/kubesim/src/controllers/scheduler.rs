//! The simulated scheduler: binds unscheduled pods to the least loaded schedulable node that
//! has room (never a cordoned node) and matches the pod's nodeSelector.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::meta;
use crate::objects;
use crate::resources::{NODES, PODS};
use crate::store::State;

/// A node that can take pods, with its current load.
pub struct Candidate {
    name: String,
    used: usize,
    cap: usize,
    labels: BTreeMap<String, String>,
}

/// Whether a node may run new pods.
fn schedulable(node: &Value) -> bool {
    node["spec"]["unschedulable"].as_bool() != Some(true)
        && !meta::is_terminating(node)
        && node["status"]["conditions"].as_array().is_none_or(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The schedulable nodes with free capacity, computed once per scheduling pass.
pub fn candidates(st: &State) -> Vec<Candidate> {
    st.iter(NODES, None)
        .filter(|(_, n)| schedulable(n))
        .map(|(_, n)| {
            let name = meta::name(&n).to_string();
            Candidate {
                used: st.pods_on_node(&name).map_or(0, |s| s.len()),
                cap: objects::max_pods(&n),
                labels: meta::labels(&n),
                name,
            }
        })
        .filter(|c| c.used < c.cap)
        .collect()
}

/// Pick the least loaded fitting node and count the pod on it.
fn pick(nodes: &mut [Candidate], pod: &Value) -> Option<String> {
    let sel = meta::string_map(&pod["spec"]["nodeSelector"]);
    let best = nodes
        .iter_mut()
        .filter(|c| c.used < c.cap && sel.iter().all(|(k, v)| c.labels.get(k) == Some(v)))
        .min_by_key(|c| c.used)?;
    best.used += 1;
    Some(best.name.clone())
}

/// Try to bind one pod; returns true when bound. A pod that fits nowhere gets
/// `PodScheduled=False/Unschedulable` once.
pub fn bind(st: &mut State, nodes: &mut [Candidate], pod: &Value) -> bool {
    let now = meta::now_rfc3339();
    let mut next = pod.clone();
    match pick(nodes, pod) {
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
