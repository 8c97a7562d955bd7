//! Does the cluster still match the plan a caller approved? [`crate::Drainer::execute`] plans
//! again from fresh reads before any change and compares the two plans here: a pod of both
//! whose action changed, or a node the approved plan did not cover, means the approved plan is
//! not the one that would run, so nothing is changed. Pods that appeared since (a replacement
//! scheduled before the cordon) are drained by the same rules, as [`crate::Drainer::drain`]
//! drains pods that land on a node between its plan and its cordon.

use std::collections::HashMap;

use crate::model::Action;
use crate::plan::Plan;

/// How `fresh` departs from `approved`, one line per difference; empty when it keeps to it.
pub fn departures(approved: &Plan, fresh: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    let approved_nodes: Vec<&str> = approved.nodes.iter().map(|n| n.node.as_str()).collect();
    let fresh_nodes: Vec<&str> = fresh.nodes.iter().map(|n| n.node.as_str()).collect();
    if approved_nodes != fresh_nodes {
        out.push(format!(
            "the nodes differ: approved {approved_nodes:?}, now {fresh_nodes:?}"
        ));
        return out;
    }
    let was: HashMap<&str, Action> = approved
        .nodes
        .iter()
        .flat_map(|n| n.pods.iter())
        .map(|p| (p.uid.as_str(), p.action))
        .collect();
    for n in &fresh.nodes {
        for p in &n.pods {
            if let Some(before) = was.get(p.uid.as_str())
                && *before != p.action
            {
                out.push(format!(
                    "pod {}/{} on node {}: approved {}, now {} ({})",
                    p.namespace,
                    p.name,
                    n.node,
                    word(*before),
                    word(p.action),
                    p.reason
                ));
            }
        }
    }
    out
}

fn word(a: Action) -> &'static str {
    match a {
        Action::Evict => "evict",
        Action::Delete => "delete",
        Action::Skip => "skip",
        Action::Wait => "wait",
        Action::Refuse => "refuse",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{NodePlan, PodPlan};

    fn pod(uid: &str, action: Action) -> PodPlan {
        PodPlan {
            namespace: "shop".into(),
            name: format!("web-{uid}"),
            uid: uid.into(),
            action,
            reason: "reason".into(),
            budget: None,
            grace_seconds: 30,
            tier: 0,
            protected_until: None,
            placement: None,
        }
    }

    fn plan(nodes: &[(&str, Vec<PodPlan>)]) -> Plan {
        Plan {
            nodes: nodes
                .iter()
                .map(|(n, pods)| NodePlan {
                    node: n.to_string(),
                    cordoned: false,
                    pods: pods.clone(),
                    errors: vec![],
                    warnings: vec![],
                })
                .collect(),
            budgets: vec![],
            errors: vec![],
            warnings: vec![],
            worst_case_seconds: 0.0,
            capacity: None,
            waves: vec![],
            waits_for_room: None,
            surges: vec![],
        }
    }

    #[test]
    fn the_same_plan_keeps_to_it() {
        let p = plan(&[("n1", vec![pod("a", Action::Evict), pod("b", Action::Skip)])]);
        assert!(departures(&p, &p.clone()).is_empty());
    }

    #[test]
    fn a_new_pod_or_a_pod_gone_is_not_a_departure() {
        let approved = plan(&[("n1", vec![pod("a", Action::Evict), pod("b", Action::Evict)])]);
        let fresh = plan(&[("n1", vec![pod("b", Action::Evict), pod("c", Action::Evict)])]);
        assert!(departures(&approved, &fresh).is_empty());
    }

    #[test]
    fn a_changed_action_or_other_nodes_are_departures() {
        let approved = plan(&[("n1", vec![pod("a", Action::Skip)])]);
        let fresh = plan(&[("n1", vec![pod("a", Action::Evict)])]);
        assert_eq!(
            departures(&approved, &fresh),
            ["pod shop/web-a on node n1: approved skip, now evict (reason)"]
        );
        let other = plan(&[("n2", vec![])]);
        assert_eq!(
            departures(&approved, &other),
            [r#"the nodes differ: approved ["n1"], now ["n2"]"#]
        );
    }
}
