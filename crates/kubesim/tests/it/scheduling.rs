//! The scheduler over HTTP: requests against allocatable, pod counts, taints and tolerations,
//! `nodeSelector` and required node affinity, not-Ready nodes; a pod that fits nowhere stays
//! Pending with the real scheduler's FailedScheduling text, and is bound once room appears.

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;

use crate::common::{eventually, sim};

/// The PodScheduled condition's (status, message), once the scheduler has written one.
async fn scheduled(pods: &Api<Pod>, name: &str) -> (String, String) {
    eventually(&format!("a PodScheduled condition on {name}"), || async {
        let p = pods.get(name).await.unwrap();
        p.status
            .and_then(|s| s.conditions)
            .and_then(|cs| cs.into_iter().find(|c| c.type_ == "PodScheduled"))
            .map(|c| (c.status, c.message.unwrap_or_default()))
    })
    .await
}

async fn node_of(pods: &Api<Pod>, name: &str) -> String {
    eventually(&format!("{name} bound"), || async {
        pods.get(name).await.unwrap().spec.and_then(|s| s.node_name)
    })
    .await
}

async fn create(pods: &Api<Pod>, name: &str, spec: serde_json::Value) {
    let mut spec = spec;
    spec["containers"] = json!([{"name": "app", "image": "pause",
        "resources": spec.get("requests").map(|r| json!({"requests": r})).unwrap_or(json!({}))}]);
    if let Some(m) = spec.as_object_mut() {
        m.remove("requests");
    }
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
}

#[tokio::test]
async fn a_pod_that_fits_nowhere_stays_pending_with_the_schedulers_message_until_room_appears() {
    let s = sim(r#"
nodes:
  - {name: n1, allocatable: {cpu: "2", memory: 4Gi}}
  - {name: n2, unschedulable: true}
  - {name: n3, unschedulable: true}
workloads:
  - {kind: Deployment, name: web, replicas: 1, nodes: [n1], requests: {cpu: 1500m, memory: 1Gi}}
"#)
    .await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let nodes: Api<Node> = Api::all(s.client());
    let n1 = nodes.get("n1").await.unwrap();
    let alloc = n1.status.unwrap().allocatable.unwrap();
    assert_eq!(alloc["cpu"].0, "2");
    assert_eq!(alloc["memory"].0, "4Gi");
    assert_eq!(alloc["pods"].0, "110");

    create(
        &pods,
        "big",
        json!({"requests": {"cpu": "1", "memory": "3500Mi"}}),
    )
    .await;
    assert_eq!(
        scheduled(&pods, "big").await,
        (
            "False".to_string(),
            "0/3 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 2 node(s) were unschedulable. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.".to_string()
        )
    );
    let p = pods.get("big").await.unwrap();
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
    // `spec.nodeName=` lists the unscheduled pods, as on the real server.
    let unscheduled = pods
        .list(&ListParams::default().fields("spec.nodeName="))
        .await
        .unwrap()
        .items;
    assert_eq!(
        unscheduled
            .iter()
            .map(|p| p.metadata.name.as_deref().unwrap())
            .collect::<Vec<_>>(),
        vec!["big"]
    );

    // A small pod still fits next to the first one.
    create(&pods, "small", json!({"requests": {"cpu": "500m"}})).await;
    assert_eq!(node_of(&pods, "small").await, "n1");

    // Uncordoning n2 (8 CPU by default) lets the big one go there.
    nodes.uncordon("n2").await.unwrap();
    assert_eq!(node_of(&pods, "big").await, "n2");
    assert_eq!(scheduled(&pods, "big").await.0, "True");
}

#[tokio::test]
async fn taints_selectors_affinity_and_readiness_decide_where_pods_go() {
    let s = sim(r#"
nodes:
  - name: a
    labels: {disk: ssd}
    taints: [{key: dedicated, value: db, effect: NoSchedule}]
  - {name: b, labels: {disk: hdd}}
  - {name: c, labels: {disk: ssd}, notReady: true}
"#)
    .await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let nodes: Api<Node> = Api::all(s.client());
    let c = nodes.get("c").await.unwrap();
    let ready = c.status.unwrap().conditions.unwrap();
    assert!(
        ready
            .iter()
            .any(|x| x.type_ == "Ready" && x.status == "False")
    );

    create(&pods, "wants-ssd", json!({"nodeSelector": {"disk": "ssd"}})).await;
    assert_eq!(
        scheduled(&pods, "wants-ssd").await.1,
        "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {dedicated: db}, 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );

    create(
        &pods,
        "db",
        json!({"nodeSelector": {"disk": "ssd"},
               "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]}),
    )
    .await;
    assert_eq!(node_of(&pods, "db").await, "a");

    create(
        &pods,
        "hdd",
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["hdd", "tape"]}]}]}}}}),
    )
    .await;
    assert_eq!(node_of(&pods, "hdd").await, "b");

    create(
        &pods,
        "never",
        json!({"preemptionPolicy": "Never",
               "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["tape"]}]}]}}}}),
    )
    .await;
    assert_eq!(
        scheduled(&pods, "never").await.1,
        "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {dedicated: db}, 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }. preemption: not eligible due to preemptionPolicy=Never."
    );
}

#[tokio::test]
async fn scenario_pods_are_placed_within_allocatable_and_the_rest_wait() {
    let s = sim(r#"
nodes:
  - {name: n1, allocatable: {cpu: "1"}}
  - {name: n2, allocatable: {cpu: "1", pods: "2"}}
workloads:
  - {kind: DaemonSet, name: agent}
  - {kind: Deployment, name: web, replicas: 3, requests: {cpu: 600m}}
  - {kind: Deployment, name: tiny, replicas: 2}
"#)
    .await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let web = eventually("a web pod with a PodScheduled=False condition", || async {
        let l = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items;
        let placed: Vec<String> = l
            .iter()
            .filter_map(|p| p.spec.as_ref()?.node_name.clone())
            .collect();
        let waiting = l.iter().find_map(|p| {
            p.status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")?
                .message
                .clone()
        })?;
        Some((placed, waiting))
    })
    .await;
    let (mut placed, message) = web;
    placed.sort();
    assert_eq!(placed, vec!["n1", "n2"]);
    // n2 holds the agent and a web pod: full at 2 pods, and out of CPU too.
    assert_eq!(
        message,
        "0/2 nodes are available: 1 Too many pods, 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
    );
    // Without requests, tiny pods go where there is pod room: n1 only.
    let tiny = pods
        .list(&ListParams::default().labels("app=tiny"))
        .await
        .unwrap()
        .items;
    assert!(
        tiny.iter()
            .all(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some("n1")),
        "{:?}",
        tiny.iter()
            .map(|p| p.spec.as_ref().unwrap().node_name.clone())
            .collect::<Vec<_>>()
    );
}
