//! NodeDrains on different nodes share the cluster's budgets: none is ever broken, and the
//! cluster-wide `--max-concurrent-nodes` holds a drain back while others run.

use kdrain_controller::{Phase, Settings};

use crate::{Cluster, condition};

const SHARED_BUDGET: &str = r#"
nodes: [{name: n1}, {name: n2}, {name: n3}, {name: n4}]
workloads:
  - {kind: Deployment, name: web, namespace: shop, replicas: 6, nodes: [n1, n2], terminationSeconds: 0.2, readySeconds: 0.5}
pdbs:
  - {name: web, namespace: shop, selector: {app: web}, minAvailable: 5}
"#;

#[tokio::test]
async fn two_nodedrains_sharing_a_budget_never_break_it() {
    let c = Cluster::start(SHARED_BUDGET).await;
    c.create("a", "{nodeNames: [n1]}").await.unwrap();
    c.create("b", "{nodeNames: [n2]}").await.unwrap();
    let a = c.wait_phase("a", Phase::Drained).await;
    let b = c.wait_phase("b", Phase::Drained).await;
    assert_eq!(a.status.unwrap().pods_summary.as_deref(), Some("3/3"));
    assert_eq!(b.status.unwrap().pods_summary.as_deref(), Some("3/3"));
    assert!(c.pods_on("n1").await.is_empty() && c.pods_on("n2").await.is_empty());
    assert!(c.sim.violations().is_empty(), "{:?}", c.sim.violations());
    // every pod was evicted once; the budget allowed one at a time
    assert_eq!(c.requests("create", "pods", "eviction", Some(201)), 6);
    c.shutdown().await;
}

#[tokio::test]
async fn max_concurrent_nodes_holds_a_drain_back_until_another_ends() {
    let settings = Settings {
        max_concurrent_nodes: 1,
        ..Settings::default()
    };
    let c = Cluster::start_with(
        r#"
nodes: [{name: n1}, {name: n2}, {name: n3}]
workloads:
  - {kind: Deployment, name: web, replicas: 3, nodes: [n1], terminationSeconds: 0.1, readySeconds: 300}
  - {kind: Deployment, name: api, replicas: 2, nodes: [n2], terminationSeconds: 0.1, readySeconds: 0.1}
pdbs:
  - {name: web, selector: {app: web}, minAvailable: 2}
"#,
        settings,
    )
    .await;
    // a is held by its budget (its replacement takes 300 s to be ready) and keeps the only slot
    c.create("a", "{nodeNames: [n1]}").await.unwrap();
    c.wait_phase("a", Phase::Draining).await;
    c.create("b", "{nodeNames: [n2]}").await.unwrap();
    let b = c
        .wait("b", "waiting for capacity", |nd| {
            condition(nd, "Drained").is_some_and(|(_, reason, _)| reason == "WaitingForCapacity")
        })
        .await;
    assert_eq!(crate::phase_of(&b), Some(Phase::Cordoned));
    assert_eq!(
        c.pods_on("n2").await.len(),
        2,
        "b evicts nothing while it waits"
    );
    // a ends (its stage is set to Complete): b gets the slot and drains
    c.set_stage("a", "Complete").await;
    c.wait_phase("a", Phase::Completed).await;
    c.wait_phase("b", Phase::Drained).await;
    assert!(c.sim.violations().is_empty(), "{:?}", c.sim.violations());
    c.shutdown().await;
}
