//! The scheduler's `FailedScheduling` message (`framework.FitError.Error()` in
//! k8s.io/kubernetes v1.33 `pkg/scheduler/framework/types.go`, with the default preemption
//! plugin's PostFilter message): `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) were
//! unschedulable. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming
//! pod, 2 Preemption is not helpful for scheduling.`

use std::collections::BTreeMap;

/// The scheduler's reason for a cordoned node.
pub const UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// The scheduler's reason for `nodeSelector` / required node affinity.
pub const NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
/// The scheduler's reason for a full node (pod count).
pub const TOO_MANY_PODS: &str = "Too many pods";
/// The scheduler's reason for the incoming pod's required anti-affinity.
pub const ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
/// The scheduler's reason for existing pods' required anti-affinity.
pub const EXISTING_ANTI_AFFINITY: &str = "node(s) didn't satisfy existing pods anti-affinity rules";
/// The scheduler's reason for a topology spread constraint.
pub const TOPOLOGY_SPREAD: &str = "node(s) didn't match pod topology spread constraints";
/// The scheduler's reason for a node without a spread constraint's topology key.
pub const TOPOLOGY_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

/// The scheduler's reason for a host port in use (NodePorts).
pub const HOST_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
/// The scheduler's reason for the incoming pod's required pod affinity (not resolvable).
pub const POD_AFFINITY: &str = "node(s) didn't match pod affinity rules";

/// `Insufficient <resource>`.
pub fn insufficient(resource: &str) -> String {
    format!("Insufficient {resource}")
}

/// Why one node was rejected: the filter's reasons, and whether preemption could help
/// (`Unschedulable`) or not (`UnschedulableAndUnresolvable`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// Reasons, as the filter gave them.
    pub reasons: Vec<String>,
    /// Whether removing pods could make room (resources, pod anti-affinity, spread).
    pub resolvable: bool,
}

/// The reasons of resource shortages and the pod count are resolvable by preemption; node
/// affinity, taints and `unschedulable` are not.
pub fn resolvable(reason: &str) -> bool {
    reason.starts_with("Insufficient ")
        || reason == TOO_MANY_PODS
        || reason == ANTI_AFFINITY
        || reason == EXISTING_ANTI_AFFINITY
        || reason == TOPOLOGY_SPREAD
        || reason == HOST_PORTS
}

fn histogram(counts: &BTreeMap<String, usize>) -> String {
    let mut parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    // Go's sort.Strings: byte order of the whole "count reason" string.
    parts.sort();
    parts.join(", ")
}

/// The FailedScheduling message for a pod no node accepts, given each node's status.
/// `preemption_never`: the pod has `preemptionPolicy: Never`. Nobody is preempted here (the
/// callers never evict other pods to make room), so a resolvable node finds no victims.
pub fn fit_error(statuses: &[NodeStatus], preemption_never: bool) -> String {
    let n = statuses.len();
    if n == 0 {
        return "no nodes available to schedule pods".to_string();
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for s in statuses {
        for r in &s.reasons {
            *counts.entry(r.clone()).or_default() += 1;
        }
    }
    let mut msg = format!("0/{n} nodes are available:");
    if !counts.is_empty() {
        msg.push_str(&format!(" {}.", histogram(&counts)));
    }
    if preemption_never {
        msg.push_str(" preemption: not eligible due to preemptionPolicy=Never.");
        return msg;
    }
    let victims = statuses.iter().filter(|s| s.resolvable).count();
    let mut post: BTreeMap<String, usize> = BTreeMap::new();
    if victims > 0 {
        post.insert(
            "No preemption victims found for incoming pod".to_string(),
            victims,
        );
    }
    if victims < n {
        post.insert(
            "Preemption is not helpful for scheduling".to_string(),
            n - victims,
        );
    }
    msg.push_str(&format!(
        " preemption: 0/{n} nodes are available: {}.",
        histogram(&post)
    ));
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(reasons: &[&str]) -> NodeStatus {
        NodeStatus {
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
            resolvable: reasons.iter().all(|r| resolvable(r)),
        }
    }

    #[test]
    fn the_real_schedulers_text() {
        let m = fit_error(
            &[
                st(&["Insufficient cpu"]),
                st(&[UNSCHEDULABLE]),
                st(&[UNSCHEDULABLE]),
            ],
            false,
        );
        assert_eq!(
            m,
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) were unschedulable. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
        );
        let m = fit_error(&[st(&["Insufficient cpu", "Insufficient memory"])], true);
        assert_eq!(
            m,
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. preemption: not eligible due to preemptionPolicy=Never."
        );
        assert_eq!(fit_error(&[], false), "no nodes available to schedule pods");
    }

    #[test]
    fn counts_sort_as_strings_like_go() {
        let mut s = vec![st(&[NODE_AFFINITY]); 10];
        s.push(st(&[UNSCHEDULABLE]));
        s.push(st(&[UNSCHEDULABLE]));
        let m = fit_error(&s, false);
        assert!(
            m.starts_with("0/12 nodes are available: 10 node(s) didn't match Pod's node affinity/selector, 2 node(s) were unschedulable. preemption: 0/12 nodes are available: 12 Preemption is not helpful for scheduling."),
            "{m}"
        );
    }
}
