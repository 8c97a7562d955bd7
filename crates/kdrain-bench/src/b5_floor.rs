//! B5's floor for the cluster as it stands (`floor_of`): the rotation floor's inputs
//! ([`crate::floor::RotationInput`]) read from the API (requests, allocatable, where the pods
//! run) and from the scenario (stop and start-up times, budgets).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;

use crate::floor::{
    RotationChain, RotationFloor, RotationInput, RotationNode, drain_floor, rotation_floor,
};
use crate::scenario::ScenarioModel;
use crate::tracker::stays_on_node;

fn cpu(resources: &sched::resources::Resources) -> i64 {
    i64::try_from(resources.get(sched::resources::CPU)).unwrap_or(i64::MAX)
}

/// The rotation floor of the cluster as it stands: requests and allocatable read from the API,
/// stop, start-up times and budgets from the scenario file.
pub(crate) async fn floor_of(
    client: &kube::Client,
    model: &ScenarioModel,
    pool: &[String],
    reboot: Duration,
) -> Result<RotationFloor, String> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?
        .items;
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?
        .items;
    let pool: BTreeSet<&str> = pool.iter().map(String::as_str).collect();
    let request = |p: &Pod| {
        p.spec
            .as_ref()
            .map(|s| sched::resources::pod_requests(s).map(|r| cpu(&r)))
            .unwrap_or(Ok(0))
            .map_err(|e| e.to_string())
    };
    let on = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.clone());
    // Drainable pods on the pool, with the floor model of each (same order).
    let targets: Vec<&Pod> = pods
        .iter()
        .filter(|p| on(p).is_some_and(|n| pool.contains(n.as_str())) && !stays_on_node(p))
        .collect();
    let keys: Vec<(String, BTreeMap<String, String>)> = targets
        .iter()
        .map(|p| {
            (
                p.metadata.namespace.clone().unwrap_or_default(),
                p.metadata.labels.clone().unwrap_or_default(),
            )
        })
        .collect();
    let (floor_pods, budgets) = model.floor_inputs(&keys).map_err(|e| e.to_string())?;
    let budget_floor = drain_floor(&floor_pods, &budgets)
        .map_err(|e| format!("{} pool pods can never be evicted", e.stuck_pods.len()))?;
    let mut slack_per_budget: BTreeMap<usize, i64> = BTreeMap::new();
    let mut slack = 0;
    for (pod, fp) in targets.iter().zip(&floor_pods) {
        let c = request(pod)?;
        match fp.budget {
            Some(b) => {
                let e = slack_per_budget.entry(b).or_default();
                *e = (*e).max(c);
            }
            None => slack += c,
        }
    }
    for (b, c) in slack_per_budget {
        let allowed = budgets
            .get(b)
            .map_or(0, |x| i64::from(x.disruptions_allowed));
        slack += allowed * c;
    }
    let mut spare_free = 0;
    let mut rotation_nodes = Vec::new();
    for node in &nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let alloc = cpu(&sched::resources::allocatable(node).map_err(|e| e.to_string())?);
        let mut all = 0;
        let mut staying = 0;
        for pod in &pods {
            if on(pod).as_deref() != Some(name.as_str()) {
                continue;
            }
            let c = request(pod)?;
            all += c;
            if stays_on_node(pod) {
                staying += c;
            }
        }
        if pool.contains(name.as_str()) {
            let node_pods: Vec<_> = targets
                .iter()
                .zip(&floor_pods)
                .filter(|(p, _)| on(p).as_deref() == Some(name.as_str()))
                .map(|(_, fp)| fp.clone())
                .collect();
            let alone_floor = drain_floor(&node_pods, &budgets)
                .map_err(|e| format!("{} pods of {name} can never go", e.stuck_pods.len()))?;
            rotation_nodes.push(RotationNode {
                load: all - staying,
                room_back: alloc - staying,
                free_now: alloc - all,
                alone_floor,
            });
        } else if node.spec.as_ref().and_then(|s| s.unschedulable) != Some(true) {
            spare_free += alloc - all;
        }
    }
    let min_of = |v: Vec<f64>| v.into_iter().reduce(f64::min).unwrap_or(0.0);
    // the pool's pods per budget, for the chain bound
    let pool_names: Vec<String> = nodes
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .filter(|n| pool.contains(n.as_str()))
        .collect();
    let mut chains = Vec::new();
    for (b, budget) in budgets.iter().enumerate() {
        let members: Vec<(&&Pod, &crate::floor::FloorPod)> = targets
            .iter()
            .zip(&floor_pods)
            .filter(|(_, fp)| fp.budget == Some(b))
            .collect();
        if members.is_empty() {
            continue;
        }
        let mut cpus = Vec::new();
        for (p, _) in &members {
            cpus.push(request(p)?);
        }
        chains.push(RotationChain {
            pods: members.len() as u32,
            allowed: budget.disruptions_allowed,
            cpu: cpus.into_iter().min().unwrap_or(0),
            ready: min_of(
                members
                    .iter()
                    .filter_map(|(_, fp)| fp.replacement_ready_seconds)
                    .collect(),
            ),
            stop: min_of(members.iter().map(|(_, fp)| fp.stop_seconds).collect()),
            per_node: pool_names
                .iter()
                .map(|n| {
                    members
                        .iter()
                        .filter(|(p, _)| on(p).as_deref() == Some(n.as_str()))
                        .count() as u32
                })
                .collect(),
        });
    }
    let input = RotationInput {
        nodes: rotation_nodes,
        spare_free,
        slack,
        budget_floor,
        reboot_seconds: reboot.as_secs_f64(),
        min_ready: min_of(
            floor_pods
                .iter()
                .filter_map(|p| p.replacement_ready_seconds)
                .collect(),
        ),
        min_stop: min_of(floor_pods.iter().map(|p| p.stop_seconds).collect()),
        chains,
    };
    rotation_floor(&input)
}
