//! A controller restarted mid-drain resumes from the cluster's state; a deleted NodeDrain stops
//! and restores what it cordoned.

use kdrain_controller::Phase;

use crate::{Cluster, cordon_state};

#[tokio::test]
async fn a_restarted_controller_resumes_the_drain() {
    let mut c = Cluster::start(
        r#"
nodes: [{name: n1}, {name: n2}, {name: n3}]
workloads:
  - {kind: Deployment, name: web, namespace: shop, replicas: 4, nodes: [n1], terminationSeconds: 0.2, readySeconds: 1.5}
pdbs:
  - {name: web, namespace: shop, selector: {app: web}, maxUnavailable: 1}
"#,
    )
    .await;
    c.create("n1-drain", "{nodeNames: [n1]}").await.unwrap();
    c.wait("n1-drain", "draining with a pod gone", |nd| {
        nd.status
            .as_ref()
            .and_then(|s| s.nodes.first())
            .is_some_and(|n| n.pods_gone >= 1)
    })
    .await;
    c.kill_controller().await;
    let left = c.pods_on("n1").await.len();
    assert!(left >= 1, "the drain was stopped midway");
    c.start_controller();
    let nd = c.wait_phase("n1-drain", Phase::Drained).await;
    assert!(c.pods_on("n1").await.is_empty());
    assert_eq!(
        cordon_state(&c.node("n1").await),
        (true, Some("nodedrain/n1-drain".into()))
    );
    assert!(c.sim.violations().is_empty(), "{:?}", c.sim.violations());
    // no eviction accepted twice: one per pod
    assert_eq!(c.requests("create", "pods", "eviction", Some(201)), 4);
    let status = nd.status.unwrap();
    assert!(status.start_time.is_some());
    assert_eq!(
        status.pods_summary.as_deref(),
        Some("4/4"),
        "the pods gone before count"
    );
    c.shutdown().await;
}

#[tokio::test]
async fn a_deleted_nodedrain_stops_and_restores() {
    let c = Cluster::start(
        r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, namespace: shop, replicas: 3, nodes: [n1], terminationSeconds: 0.1, readySeconds: 300}
pdbs:
  - {name: web, namespace: shop, selector: {app: web}, minAvailable: 2}
"#,
    )
    .await;
    c.create("stuck", "{nodeNames: [n1]}").await.unwrap();
    let nd = c
        .wait("stuck", "blocked by the budget", |nd| {
            nd.status.as_ref().is_some_and(|s| {
                s.blockers.len() == 2
                    && s.blocked_by.as_deref() == Some("budget shop/web needs 2 has 2 (2 pods)")
            })
        })
        .await;
    let (_, reason, message) = crate::condition(&nd, "Drained").unwrap();
    assert_eq!(reason, "BlockedByBudget");
    assert!(
        message.starts_with("1/3 pods gone; waiting for budget shop/web needs 2 has 2 (2 pods); "),
        "{message}"
    );
    let status = nd.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Draining));
    assert_eq!(
        status.blocked_by.as_deref(),
        Some("budget shop/web needs 2 has 2 (2 pods)")
    );
    assert!(status.blockers.iter().all(|b| b.cause == "Budget"
        && b.budget.as_deref() == Some("shop/web")
        && (b.needs, b.has) == (Some(2), Some(2))));
    assert!(cordon_state(&c.node("n1").await).0);
    c.api
        .delete("stuck", &Default::default())
        .await
        .expect("delete");
    let deadline = tokio::time::Instant::now() + crate::LIMIT;
    while c.api.get_opt("stuck").await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the NodeDrain was not finalized"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(cordon_state(&c.node("n1").await), (false, None));
    assert_eq!(c.pods_on("n1").await.len(), 2, "nothing more was evicted");
    assert_eq!(c.requests("create", "pods", "eviction", Some(201)), 1);
    c.shutdown().await;
}
