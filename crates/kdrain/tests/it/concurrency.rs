//! Two drainers at once: on the same node, and on two nodes sharing a budget. No budget is
//! broken, nothing is removed that should stay, and both reports are true (a pod the other
//! drainer evicted is simply gone).

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::Pod;
use kdrain::{PodOutcome, Report};
use kube::Api;
use kube::api::ListParams;

use crate::*;

/// UIDs of every pod in the cluster, with the node and whether it terminates.
async fn all_pods(sim: &kubesim::Sim) -> HashMap<String, Pod> {
    Api::<Pod>::all(sim.client())
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|p| (p.metadata.uid.clone().unwrap_or_default(), p))
        .collect()
}

/// Every pod reported gone is gone; no pod is reported failed or blocked.
async fn truthful(sim: &kubesim::Sim, who: &str, report: &Report) {
    let now = all_pods(sim).await;
    for p in report.nodes.iter().flat_map(|n| &n.pods) {
        match &p.outcome {
            PodOutcome::Gone => assert!(
                !now.contains_key(&p.pod.uid),
                "{who}: {} reported gone but exists",
                p.pod
            ),
            PodOutcome::Skipped => assert!(now.contains_key(&p.pod.uid), "{who}: {}", p.pod),
            other => panic!("{who}: {} ended {other:?}", p.pod),
        }
    }
}

const ONE_NODE: &str = r#"
nodes: [{name: n1}, {name: n2}, {name: n3}]
workloads:
  - {kind: Deployment, name: web, replicas: 4, nodes: [n1], terminationSeconds: 0.3, readySeconds: 0.2}
  - {kind: StatefulSet, name: db, replicas: 2, nodes: [n1], terminationSeconds: 0.2, readySeconds: 0.2}
  - {kind: Deployment, name: api, replicas: 3, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.1}
  - {kind: DaemonSet, name: agent, namespace: kube-system}
pdbs:
  - {name: web, selector: {app: web}, maxUnavailable: 1}
  - {name: db, selector: {app: db}, minAvailable: 1}
"#;

#[tokio::test]
async fn two_drainers_on_the_same_node_both_finish_truthfully() {
    let sim = sim(ONE_NODE).await;
    let before: HashSet<String> = pods_on(&sim, "n1")
        .await
        .iter()
        .filter(|p| !kdrain::select::is_daemonset_pod(p))
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    assert_eq!(before.len(), 9);
    let (a, b) = tokio::join!(
        drain(&sim, all_flags(), &["n1"]),
        drain(&sim, all_flags(), &["n1"])
    );
    let a = a.0.expect("first drainer");
    let b = b.0.expect("second drainer");
    truthful(&sim, "first", &a).await;
    truthful(&sim, "second", &b).await;
    // Each saw every pod of the node go, whoever evicted it.
    for r in [&a, &b] {
        let gone: HashSet<String> = r.nodes[0]
            .pods
            .iter()
            .filter(|p| p.outcome == PodOutcome::Gone)
            .map(|p| p.pod.uid.clone())
            .collect();
        assert_eq!(gone, before);
    }
    let left: Vec<Pod> = pods_on(&sim, "n1").await;
    assert!(left.iter().all(kdrain::select::is_daemonset_pod));
    // No double harm: every workload still has all its replicas (the replacements).
    let now = all_pods(&sim).await;
    for (app, n) in [("web", 4), ("db", 2), ("api", 3)] {
        let live = now
            .values()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| p.metadata.labels.as_ref().and_then(|l| l.get("app")) == Some(&app.into()))
            .count();
        assert_eq!(live, n, "{app}");
    }
    no_violations(&sim);
}

#[tokio::test]
async fn two_drainers_on_two_nodes_sharing_a_budget_never_break_it() {
    let sim = sim(r#"
nodes: [{name: n1}, {name: n2}, {name: n3}, {name: n4}]
workloads:
  - {kind: Deployment, name: web, replicas: 6, nodes: [n1, n2], terminationSeconds: 0.2, readySeconds: 0.3}
  - {kind: StatefulSet, name: db, replicas: 4, nodes: [n1, n2], terminationSeconds: 0.2, readySeconds: 0.3}
pdbs:
  - {name: web, selector: {app: web}, maxUnavailable: 1}
  - {name: db, selector: {app: db}, minAvailable: 3}
"#)
    .await;
    let (a, b) = tokio::join!(
        drain(&sim, all_flags(), &["n1"]),
        drain(&sim, all_flags(), &["n2"])
    );
    let (a, events_a) = a;
    let (b, events_b) = b;
    let a = a.expect("n1 drained");
    let b = b.expect("n2 drained");
    truthful(&sim, "n1", &a).await;
    truthful(&sim, "n2", &b).await;
    assert_eq!(a.nodes[0].pods.len(), 5);
    assert_eq!(b.nodes[0].pods.len(), 5);
    assert!(pods_on(&sim, "n1").await.is_empty());
    assert!(pods_on(&sim, "n2").await.is_empty());
    // The budget made them take turns: someone was held back.
    let blocked = events_a
        .iter()
        .chain(&events_b)
        .filter(|e| {
            matches!(
                e,
                kdrain::Event::Blocked {
                    budget: Some(_),
                    ..
                }
            )
        })
        .count();
    assert!(blocked > 0);
    no_violations(&sim);
}
