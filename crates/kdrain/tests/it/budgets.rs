//! Disruption budgets: blocking and unblocking, joint spending, plans that refuse, timeouts.

use std::time::Duration;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kdrain::{BudgetVerdict, DrainError, DrainOptions, Event, NodeOutcome, PodOutcome};
use kube::Api;
use kube::api::PostParams;

use crate::*;

#[tokio::test]
async fn budget_blocks_then_unblocks_as_replacements_become_ready() {
    let sim = sim(
        r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 3, nodes: [n1], terminationSeconds: 0.2, readySeconds: 0.3}
pdbs:
  - {name: web, selector: {app: web}, maxUnavailable: 1}
"#,
    )
    .await;
    let (res, events) = drain(&sim, fast(), &["n1"]).await;
    let report = res.expect("drained");
    let plan = events
        .iter()
        .find_map(|e| match e {
            Event::Planned { plan } => Some(plan.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(plan.budgets.len(), 1);
    assert!(
        matches!(&plan.budgets[0].verdict, BudgetVerdict::Waits { reason } if reason.contains("allows 1 of the 3"))
    );
    let blocked: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Blocked { budget, cause, .. } => Some((budget.clone(), cause.clone())),
            _ => None,
        })
        .collect();
    assert!(!blocked.is_empty());
    assert!(blocked.iter().all(|(b, c)| b.as_deref() == Some("web") && c.starts_with("The disruption budget web")), "{blocked:?}");
    let pods = &report.nodes[0].pods;
    assert!(pods.iter().all(|p| p.outcome == PodOutcome::Gone));
    assert_eq!(
        pods.iter()
            .filter(|p| p.blocked_by.as_deref() == Some("web"))
            .count(),
        2
    );
    assert!(
        pods.iter()
            .filter(|p| p.blocked_by.is_some())
            .all(|p| p.blocked_seconds > 0.0)
    );
    assert_eq!(count_code(&sim, "create", "pods", "eviction", 201), 3);
    assert!(
        count_code(&sim, "create", "pods", "eviction", 429) <= 2,
        "{:?}",
        sim.requests()
    );
    assert_eq!(count(&sim, "watch", "poddisruptionbudgets", ""), 1);
    no_violations(&sim);
}

#[tokio::test]
async fn unsatisfiable_budgets_are_found_before_any_eviction() {
    let sim = sim(r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 3, nodes: [n1]}
  - {kind: StatefulSet, name: db, replicas: 1, nodes: [n1]}
pdbs:
  - {name: web, selector: {app: web}, minAvailable: 3}
  - {name: db, selector: {app: db}, minAvailable: 1}
"#)
    .await;
    let (res, _) = drain(&sim, fast(), &["n1"]).await;
    let err = res.expect_err("refused");
    // only budgets that never pass stopped it: blocked by disruption budgets, like `kdrain plan`
    assert_eq!(err.kind(), kdrain::ErrorKind::BlockedByBudgets);
    let DrainError::PlanRefused { errors, .. } = err else {
        panic!()
    };
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().any(|e| {
        e.starts_with("disruption budget default/web can never allow evicting default/web-")
            && e.contains("minAvailable 3 is not below its 3 expected pods")
    }));
    assert!(errors.iter().any(|e| {
        e.starts_with("disruption budget default/db can never allow evicting default/db-0")
    }));
    assert_eq!(count(&sim, "create", "pods", "eviction"), 0);
    nothing_changed(&sim, "n1").await;
    no_violations(&sim);
}

/// A refused drain changed nothing: the node is schedulable, no PATCH went to any node and no
/// pod was evicted or deleted.
async fn nothing_changed(sim: &Sim, node_name: &str) {
    let n = node(sim, node_name).await;
    assert_ne!(
        n.spec.as_ref().and_then(|s| s.unschedulable),
        Some(true),
        "{node_name} was cordoned"
    );
    assert_eq!(count(sim, "patch", "nodes", ""), 0, "{:?}", sim.requests());
    assert_eq!(count(sim, "create", "pods", "eviction"), 0);
    assert_eq!(count(sim, "delete", "pods", ""), 0);
}

#[tokio::test]
async fn a_pod_under_two_budgets_is_refused_by_the_plan() {
    let sim = sim(r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 2, nodes: [n1]}
pdbs:
  - {name: web, selector: {app: web}, maxUnavailable: 1}
  - {name: everything, selector: {}, maxUnavailable: 1}
"#)
    .await;
    let (res, events) = drain(&sim, fast(), &["n1"]).await;
    let DrainError::PlanRefused { errors, .. } = res.expect_err("refused") else {
        panic!()
    };
    assert_eq!(
        errors
            .iter()
            .filter(
                |e| e.contains("more than one disruption budget (default/everything, default/web)")
            )
            .count(),
        2
    );
    let plan = events
        .iter()
        .find_map(|e| match e {
            Event::Planned { plan } => Some(plan.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        plan.nodes[0]
            .pods
            .iter()
            .all(|p| p.budget.as_deref() == Some("everything, web"))
    );
    assert!(
        plan.budgets
            .iter()
            .all(|b| matches!(b.verdict, BudgetVerdict::Never { .. }))
    );
    assert!(
        !events.iter().any(|e| matches!(e, Event::Cordoned { .. })),
        "{events:#?}"
    );
    nothing_changed(&sim, "n1").await;
    assert_eq!(count(&sim, "create", "pods", "eviction"), 0);
    no_violations(&sim);
}

#[tokio::test]
async fn blocked_at_timeout_reports_the_budget() {
    let sim = sim(
        r#"
nodes: [{name: n1}]
workloads:
  - {kind: Deployment, name: web, replicas: 2, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.1}
pdbs:
  - {name: web, selector: {app: web}, maxUnavailable: 1}
"#,
    )
    .await;
    // The plan refuses this drain (no room for the replacements, exit 7: see
    // capacity::a_drain_without_room_is_refused_before_any_eviction); drained anyway, the
    // budget blocks until the timeout.
    let opts = DrainOptions {
        timeout: Some(Duration::from_secs(2)),
        ignore_capacity: true,
        ..fast()
    };
    let (res, events) = drain(&sim, opts, &["n1"]).await;
    let err = res.expect_err("the second pod can never go: no room for replacements");
    assert_eq!(err.kind(), kdrain::ErrorKind::BlockedByBudgets);
    let report = err.report().expect("report");
    assert_eq!(report.nodes[0].outcome, NodeOutcome::BlockedByBudgets);
    let blocked: Vec<_> = report.nodes[0]
        .pods
        .iter()
        .filter(|p| p.outcome == PodOutcome::Blocked)
        .collect();
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0].blocked_by.as_deref(), Some("web"));
    assert!(blocked[0].blocked_seconds > 0.0);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::NodeFailed { pending, .. } if pending.len() == 1))
    );
    assert!(
        err.to_string().contains("blocked by disruption budgets"),
        "{err}"
    );
    assert_eq!(
        pods_on(&sim, "n1").await.len(),
        1,
        "the blocked pod was not touched"
    );
    // one probe per retry ceiling meets the server's own refusal
    let refused = count_code(&sim, "create", "pods", "eviction", 429);
    assert!((1..=5).contains(&refused), "{refused} refused evictions");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Blocked { cause, .. }
        if cause == "The disruption budget web needs 1 healthy pods and has 1 currently"))
    );
    no_violations(&sim);
}

#[tokio::test]
async fn one_dispatcher_spends_a_budget_across_parallel_nodes() {
    let sim = sim(
        r#"
nodes: [{name: n1}, {name: n2}, {name: n3}]
workloads:
  - {kind: Deployment, name: web, replicas: 4, nodes: [n1, n2], terminationSeconds: 0.2, readySeconds: 0.2}
pdbs:
  - {name: web, selector: {app: web}, maxUnavailable: 1}
"#,
    )
    .await;
    let opts = DrainOptions {
        parallel_nodes: 2,
        ..fast()
    };
    let (res, events) = drain(&sim, opts, &["n1", "n2"]).await;
    let report = res.expect("drained");
    assert!(
        report
            .nodes
            .iter()
            .all(|n| n.outcome == NodeOutcome::Drained)
    );
    let plan = events
        .iter()
        .find_map(|e| match e {
            Event::Planned { plan } => Some(plan.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        plan.budgets[0].pods.len(),
        4,
        "the budget is spent jointly by both nodes' pods"
    );
    assert_eq!(count_code(&sim, "create", "pods", "eviction", 201), 4);
    assert!(
        count_code(&sim, "create", "pods", "eviction", 429) <= 2,
        "{:?}",
        sim.requests()
    );
    // both nodes cordoned before any eviction
    let first_evict = events
        .iter()
        .position(|e| matches!(e, Event::EvictionSent { .. }))
        .unwrap();
    assert_eq!(
        events[..first_evict]
            .iter()
            .filter(|e| matches!(e, Event::Cordoned { .. }))
            .count(),
        2
    );
    no_violations(&sim);
}

#[tokio::test]
async fn a_budget_still_being_processed_is_retried_when_its_status_arrives() {
    let sim = sim(
        r#"
settings: {disruptionDelaySeconds: 2}
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 2, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.1}
"#,
    )
    .await;
    // a brand-new budget: its status is empty until the controller processes it
    let api: Api<PodDisruptionBudget> = Api::namespaced(sim.client(), "default");
    let pdb: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": 1}
    }))
    .unwrap();
    api.create(&PostParams::default(), &pdb).await.unwrap();
    let (res, events) = drain(&sim, fast(), &["n1"]).await;
    res.expect("drained once the controller processed the budget");
    let plan = events
        .iter()
        .find_map(|e| match e {
            Event::Planned { plan } => Some(plan.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        matches!(&plan.budgets[0].verdict, BudgetVerdict::Waits { reason } if reason.contains("still being processed"))
    );
    assert!(events.iter().any(
        |e| matches!(e, Event::Blocked { cause, .. } if cause.contains("still being processed"))
    ));
    // the probe at the retry ceiling meets the server's own 429 with Retry-After
    assert!(
        count_code(&sim, "create", "pods", "eviction", 429) >= 1,
        "{:?}",
        sim.requests()
    );
    assert_eq!(count_code(&sim, "create", "pods", "eviction", 201), 2);
    no_violations(&sim);
}
