//! What a scenario says about scheduling: node allocatable, taints and readiness, and the
//! pods' requests, `nodeSelector`, affinity, tolerations and topology spread constraints.
//! Checked at load (quantities parse, objects have their Kubernetes shape) and written into
//! the objects the builder creates.

use k8s_openapi::api::core::v1::{Affinity, PodSpec, Toleration, TopologySpreadConstraint};
use sched::resources::{self, Resources};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::scenario::{NodeSpec, Scenario, ScenarioError, Workload};

/// A node taint in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaintSpec {
    /// Taint key.
    pub key: String,
    /// Taint value (optional).
    #[serde(default)]
    pub value: Option<String>,
    /// NoSchedule, PreferNoSchedule or NoExecute.
    pub effect: String,
}

/// The taint the node lifecycle controller gives a node that is not Ready.
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";

fn invalid(m: String) -> ScenarioError {
    ScenarioError::Invalid(m)
}

/// Check one quantity: it parses and is not negative.
fn check_quantity(at: &str, name: &str, v: &str) -> Result<(), ScenarioError> {
    match sched::quantity::Quantity::parse(v) {
        Ok(q) if q.nanos() >= 0 => Ok(()),
        Ok(_) => Err(invalid(format!("{at}.{name}: {v:?} must not be negative"))),
        Err(e) => Err(invalid(format!("{at}.{name}: {e}"))),
    }
}

fn check_shape<T: serde::de::DeserializeOwned>(at: &str, v: &Value) -> Result<(), ScenarioError> {
    serde_json::from_value::<T>(v.clone())
        .map(|_| ())
        .map_err(|e| invalid(format!("{at}: {e}")))
}

/// Check the scheduling keys of every node and workload.
pub fn validate(sc: &Scenario) -> Result<(), ScenarioError> {
    for (i, n) in sc.nodes.iter().enumerate() {
        let at = format!("nodes[{i}]");
        for (name, v) in &n.allocatable {
            check_quantity(&format!("{at}.allocatable"), name, v)?;
        }
        for (j, t) in n.taints.iter().enumerate() {
            if !matches!(
                t.effect.as_str(),
                "NoSchedule" | "PreferNoSchedule" | "NoExecute"
            ) {
                return Err(invalid(format!(
                    "{at}.taints[{j}].effect: {:?} must be NoSchedule, PreferNoSchedule or NoExecute",
                    t.effect
                )));
            }
            if t.key.is_empty() {
                return Err(invalid(format!("{at}.taints[{j}].key: must not be empty")));
            }
        }
    }
    for (i, w) in sc.workloads.iter().enumerate() {
        let at = format!("workloads[{i}] ({})", w.name);
        for (name, v) in &w.requests {
            check_quantity(&format!("{at}.requests"), name, v)?;
        }
        if let Some(a) = &w.affinity {
            check_shape::<Affinity>(&format!("{at}.affinity"), a)?;
        }
        for (j, t) in w.tolerations.iter().enumerate() {
            check_shape::<Toleration>(&format!("{at}.tolerations[{j}]"), t)?;
        }
        for (j, c) in w.topology_spread_constraints.iter().enumerate() {
            let at = format!("{at}.topologySpreadConstraints[{j}]");
            check_shape::<TopologySpreadConstraint>(&at, c)?;
            let c: TopologySpreadConstraint = serde_json::from_value(c.clone()).unwrap_or_default();
            if c.max_skew < 1 {
                return Err(invalid(format!("{at}.maxSkew: must be at least 1")));
            }
            if c.topology_key.is_empty() {
                return Err(invalid(format!("{at}.topologyKey: must not be empty")));
            }
            if !matches!(
                c.when_unsatisfiable.as_str(),
                "DoNotSchedule" | "ScheduleAnyway"
            ) {
                return Err(invalid(format!(
                    "{at}.whenUnsatisfiable: {:?} must be DoNotSchedule or ScheduleAnyway",
                    c.when_unsatisfiable
                )));
            }
        }
    }
    Ok(())
}

/// Write a node spec's allocatable, taints and readiness into the node object.
pub fn apply_to_node(node: &mut Value, spec: &NodeSpec) {
    for (name, v) in &spec.allocatable {
        node["status"]["allocatable"][name] = json!(v);
        node["status"]["capacity"][name] = json!(v);
    }
    let mut taints: Vec<Value> = node["spec"]["taints"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for t in &spec.taints {
        let mut taint = json!({"key": t.key, "effect": t.effect});
        if let Some(v) = &t.value {
            taint["value"] = json!(v);
        }
        taints.push(taint);
    }
    if spec.not_ready {
        taints.push(json!({"key": NOT_READY_TAINT, "effect": "NoSchedule"}));
        if let Some(c) = node["status"]["conditions"]
            .as_array_mut()
            .and_then(|cs| cs.iter_mut().find(|c| c["type"] == "Ready"))
        {
            c["status"] = json!("False");
            c["reason"] = json!("KubeletNotReady");
            c["message"] = json!("container runtime network not ready");
        }
    }
    if !taints.is_empty() {
        node["spec"]["taints"] = Value::Array(taints);
    }
}

/// Write a workload's requests, node selector, affinity, tolerations and spread constraints
/// into its pod template.
pub fn apply_to_template(tpl: &mut Value, w: &Workload) {
    if !w.requests.is_empty() {
        tpl["spec"]["containers"][0]["resources"] = json!({"requests": w.requests});
    }
    if !w.node_selector.is_empty() {
        tpl["spec"]["nodeSelector"] = json!(w.node_selector);
    }
    if let Some(a) = &w.affinity {
        tpl["spec"]["affinity"] = a.clone();
    }
    if !w.tolerations.is_empty() {
        tpl["spec"]["tolerations"] = json!(w.tolerations);
    }
    if !w.topology_spread_constraints.is_empty() {
        tpl["spec"]["topologySpreadConstraints"] = json!(w.topology_spread_constraints);
    }
}

/// Whether a pod has anything that adds to its requests (most simulated pods have not).
pub fn has_requests(spec: &Value) -> bool {
    let any = |list: &Value| {
        list.as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["resources"]["requests"].is_object()))
    };
    any(&spec["containers"]) || any(&spec["initContainers"]) || spec["overhead"].is_object()
}

/// A pod's effective requests; a spec that does not parse counts as requesting nothing.
pub fn pod_requests(spec: &Value) -> Resources {
    if !has_requests(spec) {
        return Resources::default();
    }
    serde_json::from_value::<PodSpec>(spec.clone())
        .ok()
        .and_then(|s| resources::pod_requests(&s).ok())
        .unwrap_or_default()
}

/// A node's `status.allocatable` in scheduler units (an unparsable entry counts as zero).
pub fn node_allocatable(node: &Value) -> Resources {
    let mut out = Resources::default();
    if let Some(m) = node["status"]["allocatable"].as_object() {
        for (name, v) in m {
            if let Some(q) = v
                .as_str()
                .and_then(|s| sched::quantity::Quantity::parse(s).ok())
            {
                out.0.insert(name.clone(), resources::amount(name, q));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::scenario::Scenario;

    fn err(yaml: &str) -> String {
        Scenario::from_yaml_str(yaml).unwrap_err().to_string()
    }

    #[test]
    fn bad_scheduling_keys_are_refused_with_their_place() {
        assert_eq!(
            err("nodes: [{name: n1, allocatable: {cpu: two}}]"),
            "invalid scenario: nodes[0].allocatable.cpu: quantity \"two\" is not a valid quantity (expected a number with an optional suffix such as 500m, 2, 1.5Gi or 1e3)"
        );
        assert_eq!(
            err("nodes: [{name: n1, allocatable: {memory: \"-1Gi\"}}]"),
            "invalid scenario: nodes[0].allocatable.memory: \"-1Gi\" must not be negative"
        );
        assert_eq!(
            err("nodes: [{name: n1, taints: [{key: k, effect: NoWay}]}]"),
            "invalid scenario: nodes[0].taints[0].effect: \"NoWay\" must be NoSchedule, PreferNoSchedule or NoExecute"
        );
        assert_eq!(
            err("workloads: [{kind: Pod, name: p, requests: {cpu: 1x}}]"),
            "invalid scenario: workloads[0] (p).requests.cpu: quantity \"1x\" is not a valid quantity (expected a number with an optional suffix such as 500m, 2, 1.5Gi or 1e3)"
        );
        let e = err("workloads: [{kind: Pod, name: p, tolerations: [{key: 3}]}]");
        assert!(
            e.starts_with("invalid scenario: workloads[0] (p).tolerations[0]: invalid type"),
            "{e}"
        );
        assert_eq!(
            err("workloads: [{kind: Pod, name: p, topologySpreadConstraints: [{maxSkew: 1}]}]"),
            "invalid scenario: workloads[0] (p).topologySpreadConstraints[0].topologyKey: must not be empty"
        );
    }
}
