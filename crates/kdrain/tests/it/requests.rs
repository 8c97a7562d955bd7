//! Exact request counts.

use crate::*;

#[tokio::test]
async fn draining_110_budget_free_pods_sends_110_evictions_and_few_other_requests() {
    let sim = sim(
        r#"
nodes: [{name: n1, maxPods: 110}]
workloads:
  - {kind: Deployment, name: web, replicas: 110, nodes: [n1], terminationSeconds: 0.2, readySeconds: 0.1}
"#,
    )
    .await;
    assert_eq!(pods_on(&sim, "n1").await.len(), 110);
    sim.reset_requests();
    // One node: the replacements have nowhere to go (the plan would refuse); drained anyway.
    let opts = DrainOptions {
        ignore_capacity: true,
        ..all_flags()
    };
    let (res, _) = drain(&sim, opts, &["n1"]).await;
    let report = res.expect("drained");
    let evictions = count(&sim, "create", "pods", "eviction");
    assert_eq!(evictions, 110);
    assert_eq!(count_code(&sim, "create", "pods", "eviction", 201), 110);
    assert_eq!(count(&sim, "get", "pods", ""), 0, "no per-pod GETs");
    let total: u64 = sim.requests().iter().map(|r| r.count).sum();
    let others = total - evictions;
    assert!(
        others < 17,
        "{others} other requests: {:#?}",
        sim.requests()
    );
    eprintln!(
        "110-pod drain: {evictions} evictions, {others} other requests in {:.2} s: {:?}",
        report.seconds, report.requests
    );
    assert_eq!(report.requests.get("create pods/eviction"), Some(&110));
    assert_eq!(
        report.nodes[0].requests.get("create pods/eviction"),
        Some(&110)
    );
    no_violations(&sim);
}

#[tokio::test]
async fn a_budget_limited_drain_sends_no_needless_requests() {
    // 10 pods, one disruption at a time: each eviction waits for the previous replacement to be
    // Ready; the dispatcher learns that from the budget watch instead of retrying blindly
    let sim = sim(
        r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 10, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.2}
pdbs:
  - {name: web, selector: {app: web}, maxUnavailable: 1}
"#,
    )
    .await;
    sim.reset_requests();
    let (res, _) = drain(&sim, fast(), &["n1"]).await;
    let report = res.expect("drained");
    let ok = count_code(&sim, "create", "pods", "eviction", 201);
    let refused = count_code(&sim, "create", "pods", "eviction", 429);
    eprintln!(
        "budget-limited drain of 10 pods: {ok} accepted, {refused} refused evictions in {:.2} s; requests {:?}",
        report.seconds, report.requests
    );
    assert_eq!(ok, 10);
    assert!(refused <= 3, "{refused} evictions refused");
    assert_eq!(count(&sim, "watch", "poddisruptionbudgets", ""), 1);
    assert_eq!(count(&sim, "get", "pods", ""), 0);
    no_violations(&sim);
}
