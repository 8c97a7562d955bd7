//! Each stage's transitions: Idle plans and changes nothing, Cordon cordons, Drain drains,
//! Complete uncordons only what the NodeDrain cordoned.

use kdrain_controller::Phase;

use crate::{Cluster, condition, cordon_state, record_phases};

const TWO_NODES: &str = r#"
nodes: [{name: n1}, {name: n2}, {name: n3}]
workloads:
  - {kind: Deployment, name: web, namespace: shop, replicas: 3, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.2}
pdbs:
  - {name: web, namespace: shop, selector: {app: web}, maxUnavailable: 1}
"#;

#[tokio::test]
async fn idle_fills_the_plan_and_changes_nothing() {
    let c = Cluster::start(TWO_NODES).await;
    c.create("plan-n1", "{nodeNames: [n1], stage: Idle}")
        .await
        .unwrap();
    let nd = c.wait_phase("plan-n1", Phase::Planned).await;
    let status = nd.status.clone().unwrap();
    let plan = status.plan.expect("the plan's summary");
    assert_eq!(plan.evictions, 3);
    assert_eq!(plan.budgets.len(), 1);
    assert_eq!(plan.budgets[0].name, "shop/web");
    assert_eq!(plan.budgets[0].verdict, "Waits");
    let (ok, reason, message) = condition(&nd, "Planned").unwrap();
    assert_eq!((ok.as_str(), reason.as_str()), ("True", "Planned"));
    assert!(
        message.starts_with("3 pods to evict on 1 nodes under 1 budget"),
        "{message}"
    );
    assert_eq!(status.pods_summary.as_deref(), Some("0/3"));
    assert_eq!(status.observed_generation, nd.metadata.generation);
    // nothing changed
    assert_eq!(cordon_state(&c.node("n1").await), (false, None));
    assert_eq!(c.pods_on("n1").await.len(), 3);
    assert_eq!(c.requests("create", "pods", "eviction", None), 0);
    assert_eq!(c.requests("patch", "nodes", "", None), 0);
    c.shutdown().await;
}

#[tokio::test]
async fn stages_go_idle_cordon_drain_complete() {
    let c = Cluster::start(TWO_NODES).await;
    let phases = record_phases(&c.api, "n1-upgrade");
    c.create(
        "n1-upgrade",
        "{nodeNames: [n1], stage: Idle, reason: kernel upgrade}",
    )
    .await
    .unwrap();
    c.wait_phase("n1-upgrade", Phase::Planned).await;

    c.set_stage("n1-upgrade", "Cordon").await;
    let nd = c.wait_phase("n1-upgrade", Phase::Cordoned).await;
    assert_eq!(
        cordon_state(&c.node("n1").await),
        (true, Some("nodedrain/n1-upgrade".into()))
    );
    assert_eq!(c.pods_on("n1").await.len(), 3, "Cordon evicts nothing");
    assert_eq!(condition(&nd, "Cordoned").unwrap().0, "True");

    c.set_stage("n1-upgrade", "Drain").await;
    let nd = c.wait_phase("n1-upgrade", Phase::Drained).await;
    let status = nd.status.clone().unwrap();
    assert_eq!(status.pods_summary.as_deref(), Some("3/3"));
    assert_eq!(status.nodes_summary.as_deref(), Some("1/1"));
    assert_eq!(status.nodes[0].phase, "Drained");
    assert!(status.nodes[0].start_time.is_some() && status.nodes[0].end_time.is_some());
    assert!(status.blockers.is_empty() && status.blocked_by.is_none());
    let (ok, reason, _) = condition(&nd, "Drained").unwrap();
    assert_eq!((ok.as_str(), reason.as_str()), ("True", "Drained"));
    assert!(c.pods_on("n1").await.is_empty());
    assert_eq!(c.requests("create", "pods", "eviction", Some(201)), 3);

    c.set_stage("n1-upgrade", "Complete").await;
    let nd = c.wait_phase("n1-upgrade", Phase::Completed).await;
    assert_eq!(cordon_state(&c.node("n1").await), (false, None));
    assert_eq!(condition(&nd, "Cordoned").unwrap().1, "Uncordoned");
    assert!(c.sim.violations().is_empty(), "{:?}", c.sim.violations());
    assert_eq!(
        *phases.lock().unwrap(),
        [
            Phase::Pending,
            Phase::Planned,
            Phase::Cordoned,
            Phase::Draining,
            Phase::Drained,
            Phase::Completed
        ]
    );
    c.shutdown().await;
}

#[tokio::test]
async fn complete_uncordons_only_what_the_drain_cordoned() {
    let c = Cluster::start(
        r#"
nodes: [{name: n1, unschedulable: true}, {name: n2}, {name: n3}]
workloads:
  - {kind: Deployment, name: web, replicas: 2, nodes: [n1, n2], terminationSeconds: 0.1, readySeconds: 0.1}
"#,
    )
    .await;
    c.create("both", "{nodeNames: [n1, n2]}").await.unwrap();
    let nd = c.wait_phase("both", Phase::Drained).await;
    let message = condition(&nd, "Cordoned").unwrap().2;
    assert!(
        message.contains("n1 already unschedulable, left as found"),
        "{message}"
    );
    assert_eq!(cordon_state(&c.node("n1").await), (true, None));
    assert_eq!(
        cordon_state(&c.node("n2").await),
        (true, Some("nodedrain/both".into()))
    );
    c.set_stage("both", "Complete").await;
    let nd = c.wait_phase("both", Phase::Completed).await;
    assert_eq!(cordon_state(&c.node("n1").await), (true, None), "not ours");
    assert_eq!(cordon_state(&c.node("n2").await), (false, None));
    let status = nd.status.unwrap();
    let phases: Vec<(&str, &str)> = status
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.phase.as_str()))
        .collect();
    assert_eq!(phases, [("n1", "Drained"), ("n2", "Uncordoned")]);
    c.shutdown().await;
}
