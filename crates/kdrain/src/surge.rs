//! `--surge`: for a Deployment the user names whose budget can never let its pods on the target
//! nodes go (one replica under `minAvailable: 1`, say), replace the pods first instead of
//! evicting them: restart its rollout as `kubectl rollout restart` does (the
//! `kubectl.kubernetes.io/restartedAt` template annotation), after the target nodes are
//! cordoned, so the Deployment controller starts the new pods on other nodes and retires the old
//! ones once the new ones are Ready. Only a strategy that surges without going below its
//! replicas qualifies (RollingUpdate with maxSurge >= 1 and maxUnavailable 0); anything else
//! (another strategy, a StatefulSet, a name with no pod on the nodes, a budget that does not
//! block) is a plan error naming the workload, and nothing changes. The drain then waits for
//! the old pods to be gone (their action becomes [`Action::Wait`]), and records the restart on
//! the Deployment (`kdrain.io/surged-at`, `kdrain.io/surged-from`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::capacity;
pub use crate::plan::SurgePlan;
use crate::plan::{Action, BudgetVerdict, NodeInput, Plan};

/// The annotation `kubectl rollout restart` sets on the pod template.
pub(crate) const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// When kdrain restarted the rollout (on the Deployment).
pub const SURGED_AT: &str = "kdrain.io/surged-at";
/// The nodes whose drain asked for it (on the Deployment).
pub const SURGED_FROM: &str = "kdrain.io/surged-from";

/// An int-or-percent of `replicas`, rounded up or down (the API's defaults: 25 %).
fn scaled(v: Option<&IntOrString>, replicas: i32, round_up: bool) -> Option<i32> {
    match v {
        None => scaled(Some(&IntOrString::String("25%".into())), replicas, round_up),
        Some(IntOrString::Int(n)) => Some((*n).max(0)),
        Some(IntOrString::String(s)) => {
            let p: i64 = s.strip_suffix('%')?.parse().ok()?;
            let x = p * i64::from(replicas);
            Some((if round_up { (x + 99) / 100 } else { x / 100 }).max(0) as i32)
        }
    }
}

/// Whether a Deployment's strategy surges without going below its replicas; `Err` says why not.
pub fn surges(d: &Deployment) -> Result<(i32, i32), String> {
    let spec = &d.spec;
    let replicas = spec.replicas.unwrap_or(1);
    let strategy = spec.strategy.as_ref();
    let ty = strategy
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate");
    if ty != "RollingUpdate" {
        return Err(format!(
            "its strategy is {ty}, which stops the old pods before starting new ones; use RollingUpdate with maxSurge 1 and maxUnavailable 0"
        ));
    }
    let ru = strategy.and_then(|s| s.rolling_update.as_ref());
    let surge = scaled(ru.and_then(|r| r.max_surge.as_ref()), replicas, true);
    let unavailable = scaled(ru.and_then(|r| r.max_unavailable.as_ref()), replicas, false);
    match (surge, unavailable) {
        (Some(s), Some(0)) if s >= 1 => Ok((s, 0)),
        (Some(s), Some(u)) => Err(format!(
            "its rollout could go below its {replicas} replicas (maxSurge {s}, maxUnavailable {u}); set maxSurge 1 and maxUnavailable 0"
        )),
        _ => Err("its maxSurge or maxUnavailable does not parse".to_string()),
    }
}

/// The workloads `--surge` names, as (namespace, name); the options validated their form.
pub fn asked(names: &[String]) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|n| n.split_once('/'))
        .map(|(ns, name)| (ns.to_string(), name.to_string()))
        .collect()
}

/// The Deployments to read: those of the asked workloads whose pods are on the target nodes.
pub(crate) fn deployments_to_read(names: &[String], inputs: &[NodeInput]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (ns, name) in asked(names) {
        let is_deployment = inputs.iter().flat_map(|n| &n.pods).any(|p| {
            p.metadata.namespace.as_deref() == Some(&ns)
                && capacity::workload_of(p) == Some(("Deployment".to_string(), name.clone()))
        });
        if is_deployment && !out.contains(&(ns.clone(), name.clone())) {
            out.push((ns, name));
        }
    }
    out
}

/// Adds the surges to a plan built from `inputs`: `deployments` holds what reading each
/// Deployment of [`deployments_to_read`] gave (an error in words when it could not be read).
/// A surge that cannot happen is a plan error naming the workload; one that can turns its pods
/// on the target nodes into pods the drain waits for, and lifts the budget errors it resolves.
pub fn apply(
    plan: &mut Plan,
    names: &[String],
    inputs: &[NodeInput],
    deployments: &BTreeMap<(String, String), Result<Deployment, String>>,
) {
    for (ns, name) in asked(names) {
        let mut kind = String::new();
        let mut pods = Vec::new();
        for (np, input) in plan.nodes.iter().zip(inputs) {
            for (pp, pod) in np.pods.iter().zip(&input.pods) {
                if pp.namespace != ns || !pp.action.is_target() {
                    continue;
                }
                if let Some((k, n)) = capacity::workload_of(pod)
                    && n == name
                {
                    kind = k;
                    pods.push(format!("{}/{}", pp.namespace, pp.name));
                }
            }
        }
        let key = format!("{ns}/{name}");
        let budgets: Vec<String> = plan
            .budgets
            .iter()
            .filter(|b| b.pods.iter().any(|p| pods.contains(p)))
            .filter(|b| matches!(b.verdict, BudgetVerdict::Never { .. }))
            .map(|b| format!("{}/{}", b.namespace, b.name))
            .collect();
        let refusal = if pods.is_empty() {
            Some("no pod of it is on the nodes to drain".to_string())
        } else if kind == "StatefulSet" {
            Some("a StatefulSet cannot surge: it starts a pod's replacement only once the pod is gone".to_string())
        } else if kind != "Deployment" {
            Some(format!(
                "its pods belong to a {kind}, which cannot surge; only a Deployment can"
            ))
        } else if budgets.is_empty() {
            Some("its budget lets its pods go without it; nothing to surge".to_string())
        } else {
            match deployments.get(&(ns.clone(), name.clone())) {
                None => Some("the Deployment was not read".to_string()),
                Some(Err(e)) => Some(e.clone()),
                Some(Ok(d)) => surges(d).err(),
            }
        };
        let entry = match refusal {
            Some(why) => {
                plan.errors.push(format!(
                    "cannot surge {kind_word}{key}: {why}",
                    kind_word = if kind.is_empty() {
                        String::new()
                    } else {
                        format!("{kind} ")
                    }
                ));
                SurgePlan {
                    namespace: ns,
                    name,
                    kind,
                    pods,
                    restart: false,
                    reason: why,
                }
            }
            None => {
                let reason = format!(
                    "restart its rollout (as kubectl rollout restart) after the cordon: the Deployment controller starts {} on other nodes and retires the old once the new are Ready; the drain waits for them (budget {} never lets them be evicted)",
                    plural(pods.len(), "new pod", "new pods"),
                    budgets.join(", ")
                );
                for np in &mut plan.nodes {
                    for pp in &mut np.pods {
                        if pods.contains(&format!("{}/{}", pp.namespace, pp.name)) {
                            pp.action = Action::Wait;
                            pp.reason = format!(
                                "replaced by the rollout restart of Deployment {key} (--surge)"
                            );
                        }
                    }
                }
                // Budgets whose every pod is surged no longer stand in the way.
                let lifted: Vec<String> = plan
                    .budgets
                    .iter()
                    .filter(|b| b.pods.iter().all(|p| pods.contains(p)))
                    .map(|b| format!("{}/{}", b.namespace, b.name))
                    .collect();
                plan.budgets
                    .retain(|b| !lifted.contains(&format!("{}/{}", b.namespace, b.name)));
                plan.errors.retain(|e| {
                    !lifted
                        .iter()
                        .any(|b| e.starts_with(&format!("disruption budget {b} can never")))
                });
                SurgePlan {
                    namespace: ns,
                    name,
                    kind,
                    pods,
                    restart: true,
                    reason,
                }
            }
        };
        plan.surges.push(entry);
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The strategic merge patch that restarts the rollout and records it.
pub(crate) fn restart_patch(now: jiff::Timestamp, nodes: &[String]) -> serde_json::Value {
    let at = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    serde_json::json!({
        "metadata": {"annotations": {SURGED_AT: at, SURGED_FROM: nodes.join(",")}},
        "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::tests::{pdb, with_status};
    use crate::capacity_tests::{found, web};
    use crate::options::DrainOptions;
    use crate::plan;
    use serde_json::json;

    fn deployment(strategy: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 1, "selector": {}, "template": {}, "strategy": strategy},
        }))
        .unwrap()
    }

    #[test]
    fn only_a_rollout_that_surges_without_going_below_its_replicas_qualifies() {
        assert_eq!(surges(&deployment(json!({}))), Ok((1, 0)));
        assert_eq!(
            surges(&deployment(
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
            )),
            Ok((1, 0))
        );
        assert_eq!(
            surges(&deployment(json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}))),
            Err("its rollout could go below its 1 replicas (maxSurge 0, maxUnavailable 1); set maxSurge 1 and maxUnavailable 0".into())
        );
        assert!(
            surges(&deployment(json!({"type": "Recreate"})))
                .unwrap_err()
                .starts_with("its strategy is Recreate")
        );
    }

    /// The plan for draining n1 where `pods` run, under a minAvailable 1 budget of app web.
    fn plan_for(pods: Vec<k8s_openapi::api::core::v1::Pod>) -> (Plan, Vec<NodeInput>) {
        let b = with_status(
            pdb("web", &[("app", "web")], None, Some(IntOrString::Int(1))),
            0,
            1,
            1,
            1,
        );
        let mut b = b;
        b.metadata.namespace = Some("shop".into());
        let inputs = vec![NodeInput {
            node: "n1".into(),
            cordoned: false,
            pods,
        }];
        let p = plan::build(
            &DrainOptions::default(),
            &inputs,
            &[b],
            &found,
            &[],
            jiff::Timestamp::now(),
        );
        (p, inputs)
    }

    #[test]
    fn a_surged_deployment_is_waited_for_and_its_budget_no_longer_refuses() {
        let (mut p, inputs) = plan_for(vec![web("shop", "web", 0, "n1", "1", json!({}))]);
        assert!(!p.can_complete());
        let reads = BTreeMap::from([(
            ("shop".to_string(), "web".to_string()),
            Ok(deployment(json!({}))),
        )]);
        apply(&mut p, &["shop/web".into()], &inputs, &reads);
        assert!(p.can_complete(), "{:?}", p.errors);
        assert!(p.budgets.is_empty());
        let pod = &p.nodes[0].pods[0];
        assert_eq!(pod.action, Action::Wait);
        assert_eq!(
            pod.reason,
            "replaced by the rollout restart of Deployment shop/web (--surge)"
        );
        assert!(p.surges[0].restart);
        assert_eq!(p.surges[0].pods, ["shop/web-abc-0"]);
        let patch = restart_patch("2026-01-01T00:00:00Z".parse().unwrap(), &["n1".into()]);
        assert_eq!(
            patch["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT],
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(patch["metadata"]["annotations"][SURGED_FROM], "n1");
    }

    #[test]
    fn what_cannot_surge_is_a_plan_error_and_changes_nothing() {
        // a StatefulSet's pod
        let mut sts = web("shop", "web", 0, "n1", "1", json!({}));
        let owner = &mut sts.metadata.owner_references.as_mut().unwrap()[0];
        owner.kind = "StatefulSet".into();
        owner.name = "db".into();
        let (mut p, inputs) = plan_for(vec![sts]);
        let before = p.nodes.clone();
        apply(
            &mut p,
            &["shop/db".into(), "shop/gone".into()],
            &inputs,
            &BTreeMap::new(),
        );
        assert_eq!(p.nodes, before);
        assert!(p.errors.contains(&"cannot surge StatefulSet shop/db: a StatefulSet cannot surge: it starts a pod's replacement only once the pod is gone".to_string()), "{:?}", p.errors);
        assert!(p.errors.contains(
            &"cannot surge shop/gone: no pod of it is on the nodes to drain".to_string()
        ));
        assert!(p.surges.iter().all(|s| !s.restart));
        // a Deployment whose strategy could go below its replicas
        let (mut p, inputs) = plan_for(vec![web("shop", "web", 0, "n1", "1", json!({}))]);
        let reads = BTreeMap::from([(
            ("shop".to_string(), "web".to_string()),
            Ok(deployment(json!({"type": "Recreate"}))),
        )]);
        apply(&mut p, &["shop/web".into()], &inputs, &reads);
        assert_eq!(p.nodes[0].pods[0].action, Action::Evict);
        assert!(
            p.errors.iter().any(
                |e| e.starts_with("cannot surge Deployment shop/web: its strategy is Recreate")
            )
        );
        assert!(!p.can_complete());
    }
}
