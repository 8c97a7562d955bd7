//! Waiting by watch: cuts, 410 relists, pods that land on the node during the drain.

use k8s_openapi::api::core::v1::Pod;
use kdrain::{Event, PodOutcome};
use kube::Api;
use kube::api::PostParams;

use crate::*;

#[tokio::test]
async fn a_cut_watch_is_resumed() {
    let sim = sim(
        r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 4, nodes: [n1], terminationSeconds: 1.0, readySeconds: 0.1}
faults:
  - {verb: watch, resource: pods, watchCutSeconds: 0.3}
"#,
    )
    .await;
    let (res, _) = drain(&sim, fast(), &["n1"]).await;
    res.expect("drained across watch cuts");
    assert!(
        count(&sim, "watch", "pods", "") >= 2,
        "{:?}",
        sim.requests()
    );
    assert_eq!(count(&sim, "get", "pods", ""), 0);
    no_violations(&sim);
}

#[tokio::test]
async fn an_expired_watch_relists() {
    let sim = sim(
        r#"
settings: {watchHistory: 5}
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 20, nodes: [n1], terminationSeconds: 0.5, readySeconds: 0.1}
faults:
  - {verb: watch, resource: pods, latencyMs: 400}
"#,
    )
    .await;
    let (res, _) = drain(&sim, fast(), &["n1"]).await;
    let report = res.expect("drained across a 410");
    assert!(
        report.nodes[0]
            .pods
            .iter()
            .all(|p| p.outcome == PodOutcome::Gone)
    );
    // plan LIST + relist after 410 + final LIST
    assert!(count(&sim, "list", "pods", "") >= 3, "{:?}", sim.requests());
    no_violations(&sim);
}

#[tokio::test]
async fn a_pod_landing_during_the_drain_is_drained_too() {
    let sim = sim(
        r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: slow, replicas: 1, nodes: [n1], terminationSeconds: 1.0, readySeconds: 0.1}
"#,
    )
    .await;
    let (d, mut rx) = drainer(&sim, all_flags());
    let run = tokio::spawn(async move { bounded(d.drain(&["n1".to_string()])).await });
    bounded(async {
        while let Some(e) = rx.recv().await {
            if matches!(e, Event::EvictionSent { .. }) {
                break;
            }
        }
    })
    .await;
    let api: Api<Pod> = Api::namespaced(sim.client(), "default");
    let late: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "late"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &late).await.unwrap();
    let report = run.await.unwrap().expect("drained");
    let late = report.nodes[0]
        .pods
        .iter()
        .find(|p| p.pod.name == "late")
        .expect("the newcomer is in the report");
    assert_eq!(late.outcome, PodOutcome::Gone);
    assert_eq!(late.attempts, 1);
    let mut landed = false;
    while let Ok(e) = rx.try_recv() {
        landed |= matches!(e, Event::Warning { message, .. } if message.contains("default/late landed on the node"));
    }
    assert!(landed);
    assert!(pods_on(&sim, "n1").await.is_empty());
    no_violations(&sim);
}

#[tokio::test]
async fn failing_watch_requests_fall_back_to_lists() {
    let sim = sim(
        r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 3, nodes: [n1], terminationSeconds: 0.3, readySeconds: 0.1}
faults:
  - {verb: watch, resource: pods, status: 500}
"#,
    )
    .await;
    let (res, _) = drain(&sim, fast(), &["n1"]).await;
    let report = res.expect("drained although every pod watch failed");
    assert!(
        report.nodes[0]
            .pods
            .iter()
            .all(|p| p.outcome == PodOutcome::Gone)
    );
    assert_eq!(count_code(&sim, "watch", "pods", "", 200), 0);
    assert!(count(&sim, "list", "pods", "") >= 3, "{:?}", sim.requests());
    assert_eq!(count(&sim, "get", "pods", ""), 0);
    no_violations(&sim);
}
