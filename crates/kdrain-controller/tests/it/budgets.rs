//! NodeDrains on different nodes share the cluster's budgets (that none is ever broken is the
//! shared case `SharedBudget`, cases.rs): kubesim's exact request counts show that the
//! controller's one budget ledger keeps them from spending the same allowance (no 429) and that
//! each NodeDrain's plan is read once; the cluster-wide `--max-concurrent-nodes` holds a drain
//! back while others run.

use kdrain_controller::{Phase, Settings};

use crate::{Cluster, condition};

/// Four pods of `web`, two on n1 and two on n2 (full: their replacements go to n3), under a
/// budget allowing one disruption at a time.
const ONE_AT_A_TIME: &str = r#"
nodes: [{name: n1, maxPods: 2}, {name: n2, maxPods: 2}, {name: n3}]
workloads:
  - {kind: Deployment, name: web, namespace: shop, replicas: 4, nodes: [n1, n2], terminationSeconds: 0.2, readySeconds: 0.3}
pdbs:
  - {name: web, namespace: shop, selector: {app: web}, maxUnavailable: 1}
"#;

#[tokio::test]
async fn two_nodedrains_under_one_budget_spend_it_once_and_plan_once() {
    let c = Cluster::start(ONE_AT_A_TIME).await;
    assert_eq!(c.pods_on("n1").await.len(), 2);
    assert_eq!(c.pods_on("n2").await.len(), 2);
    c.sim.reset_requests();
    c.create("a", "{nodeNames: [n1]}").await.unwrap();
    c.create("b", "{nodeNames: [n2]}").await.unwrap();
    let a = c.wait_phase("a", Phase::Drained).await;
    let b = c.wait_phase("b", Phase::Drained).await;
    let evictions = |code| c.requests("create", "pods", "eviction", Some(code));
    let lists = |resource| c.requests("list", resource, "", None);
    eprintln!(
        "evictions: {} answered 201, {} answered 429; LISTs: pods {}, poddisruptionbudgets {}, nodes {}",
        evictions(201),
        evictions(429),
        lists("pods"),
        lists("poddisruptionbudgets"),
        lists("nodes")
    );
    assert_eq!(a.status.unwrap().pods_summary.as_deref(), Some("2/2"));
    assert_eq!(b.status.unwrap().pods_summary.as_deref(), Some("2/2"));
    assert!(c.sim.violations().is_empty(), "{:?}", c.sim.violations());
    // every pod evicted once, and no drain ever sent an eviction the other had already spent
    // the budget's one unit on
    assert_eq!(evictions(201), 4);
    assert_eq!(evictions(429), 0);
    // each NodeDrain start reads once: its plan's LIST of its node's pods, the capacity
    // check's LIST of every pod and of every node, one LIST of budgets; then the drain's
    // final LIST of its node's pods (what is left is followed by watches)
    assert_eq!(lists("pods"), 2 * 3);
    assert_eq!(lists("nodes"), 2);
    assert_eq!(lists("poddisruptionbudgets"), 2);
    assert!(c.pods_on("n1").await.is_empty() && c.pods_on("n2").await.is_empty());
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
