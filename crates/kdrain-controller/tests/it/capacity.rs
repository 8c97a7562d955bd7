//! `waitForCapacity`: a pool rotation through a NodeDrain, where room comes back as drained
//! nodes are made schedulable again (the test plays the operator that reboots and uncordons
//! them). Without it, the same NodeDrain is Refused before any change.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kdrain_controller::Phase;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};

use crate::{Cluster, condition, cordon_state};

/// Two old nodes of 2 CPU, each with the two 1-CPU pods of its own Deployment, and a spare of
/// 2 CPU: room for one old node's replacements.
const ROTATION: &str = r#"
nodes:
  - {name: spare, allocatable: {cpu: "2"}}
  - {name: old1, labels: {pool: old}, allocatable: {cpu: "2"}}
  - {name: old2, labels: {pool: old}, allocatable: {cpu: "2"}}
workloads:
  - {kind: Deployment, name: app1, namespace: shop, replicas: 2, nodes: [old1], requests: {cpu: "1"}, gracePeriodSeconds: 1, terminationSeconds: 0.1, readySeconds: 0.1}
  - {kind: Deployment, name: app2, namespace: shop, replicas: 2, nodes: [old2], requests: {cpu: "1"}, gracePeriodSeconds: 1, terminationSeconds: 0.1, readySeconds: 0.1}
"#;

/// The operator of a patch rotation: makes each node of `selector` that is cordoned and empty
/// (but for DaemonSet pods) schedulable again, once. Runs until aborted.
pub(crate) async fn operator(client: kube::Client, selector: &'static str) {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut done = std::collections::BTreeSet::new();
    loop {
        for n in nodes
            .list(&ListParams::default().labels(selector))
            .await
            .expect("nodes")
            .items
        {
            let name = n.metadata.name.clone().unwrap_or_default();
            let cordoned = n.spec.and_then(|s| s.unschedulable).unwrap_or(false);
            if !cordoned || done.contains(&name) {
                continue;
            }
            let pods = Api::<k8s_openapi::api::core::v1::Pod>::all(client.clone())
                .list(&ListParams::default().fields(&format!("spec.nodeName={name}")))
                .await
                .expect("pods");
            let daemon = |p: &k8s_openapi::api::core::v1::Pod| {
                p.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.kind == "DaemonSet")
            };
            if pods.items.iter().all(daemon) {
                let body = serde_json::json!({"spec": {"unschedulable": false}});
                nodes
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&body))
                    .await
                    .expect("uncordon");
                done.insert(name);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn wait_for_capacity_drains_as_room_comes_back() {
    let c = Cluster::start(ROTATION).await;
    c.create(
        "refused",
        "{nodeSelector: pool=old, maxUnavailableNodes: 2}",
    )
    .await
    .unwrap();
    let nd = c.wait_phase("refused", Phase::Refused).await;
    let (_, reason, message) = condition(&nd, "Planned").unwrap();
    assert_eq!(reason, "PlanRefused", "{message}");
    assert!(!cordon_state(&c.node("old1").await).0, "nothing changed");
    c.api.delete("refused", &Default::default()).await.unwrap();
    let deadline = tokio::time::Instant::now() + crate::LIMIT;
    while c.api.get_opt("refused").await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "not finalized");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    c.create(
        "rotation",
        "{nodeSelector: pool=old, maxUnavailableNodes: 2, waitForCapacity: true}",
    )
    .await
    .unwrap();
    // one old node fits on the spare; the other waits for room, which nobody makes yet
    let nd = c
        .wait("rotation", "waiting for room", |nd| {
            nd.status
                .as_ref()
                .and_then(|s| s.blocked_by.as_deref())
                .is_some_and(|b| b.starts_with("room for the pods of old"))
        })
        .await;
    assert_eq!(crate::phase_of(&nd), Some(Phase::Draining));
    let operator = tokio::spawn(operator(c.sim.client(), "pool=old"));
    let nd = c.wait_phase("rotation", Phase::Drained).await;
    operator.abort();
    assert_eq!(nd.status.unwrap().pods_summary.as_deref(), Some("4/4"));
    assert_eq!(c.requests("create", "pods", "eviction", Some(201)), 4);
    assert!(c.sim.violations().is_empty(), "{:?}", c.sim.violations());
    c.shutdown().await;
}
