//! The scheduler's filters that look at other pods, over HTTP: required pod anti-affinity (the
//! pod's own and the running pods'), required pod affinity, topology spread constraints with
//! `DoNotSchedule` by hostname and by zone (cordoned and tainted nodes stay domains, nodes
//! without the key are refused, an empty selector counts no pod), and host ports. A pod no node takes stays Pending with the
//! real scheduler's text (checked against kube-scheduler 1.33 by `cargo xtask e2e --only
//! capacity`).

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};

use crate::common::{eventually, sim};

async fn create(pods: &Api<Pod>, name: &str, labels: Value, spec: Value) {
    let mut spec = spec;
    if spec["containers"].is_null() {
        spec["containers"] = json!([{"name": "app", "image": "pause"}]);
    }
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": spec,
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
}

/// Where the pod went, or the scheduler's message when it went nowhere.
async fn placed(pods: &Api<Pod>, name: &str) -> Result<String, String> {
    eventually(&format!("{name} bound or found unschedulable"), || async {
        let p = pods.get(name).await.unwrap();
        if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
            return Some(Ok(n));
        }
        p.status
            .and_then(|s| s.conditions)
            .and_then(|cs| {
                cs.into_iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "False")
            })
            .map(|c| Err(c.message.unwrap_or_default()))
    })
    .await
}

/// The node the pod is bound to, once it is.
async fn node_of(pods: &Api<Pod>, name: &str) -> String {
    eventually(&format!("{name} bound"), || async {
        pods.get(name).await.unwrap().spec.and_then(|s| s.node_name)
    })
    .await
}

fn anti(app: &str, key: &str) -> Value {
    json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}]}})
}

#[tokio::test]
async fn required_anti_affinity_by_hostname_keeps_pods_apart_both_ways() {
    let s = sim("nodes: [{name: n1}, {name: n2}]").await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let spec = json!({"affinity": anti("web", "kubernetes.io/hostname")});
    create(&pods, "web-1", json!({"app": "web"}), spec.clone()).await;
    let first = placed(&pods, "web-1").await.unwrap();
    create(&pods, "web-2", json!({"app": "web"}), spec.clone()).await;
    let second = placed(&pods, "web-2").await.unwrap();
    assert_ne!(first, second);
    create(&pods, "web-3", json!({"app": "web"}), spec).await;
    assert_eq!(
        placed(&pods, "web-3").await,
        Err("0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.".to_string())
    );
    // A pod without terms that the running pods' terms select cannot join them either.
    create(&pods, "plain", json!({"app": "web"}), json!({})).await;
    assert_eq!(
        placed(&pods, "plain").await,
        Err("0/2 nodes are available: 2 node(s) didn't satisfy existing pods anti-affinity rules. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.".to_string())
    );
    // Another app is not concerned.
    create(&pods, "other", json!({"app": "api"}), json!({})).await;
    assert!(placed(&pods, "other").await.is_ok());
    // Once web-1 is gone (and plain, which would take its place first), its node takes web-3.
    pods.delete("plain", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    pods.delete("web-1", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert_eq!(node_of(&pods, "web-3").await, first);
}

#[tokio::test]
async fn required_pod_affinity_needs_a_matching_pod_unless_it_is_the_first_of_its_group() {
    let s = sim("nodes: [{name: n1}, {name: n2}]").await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let with = |app: &str| {
        json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": "kubernetes.io/hostname"}]}}})
    };
    create(&pods, "lonely", json!({"app": "x"}), with("nobody")).await;
    assert_eq!(
        placed(&pods, "lonely").await,
        Err("0/2 nodes are available: 2 node(s) didn't match pod affinity rules. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.".to_string())
    );
    // The first pod of a group with affinity to itself goes anywhere; the next follow it.
    create(&pods, "db-1", json!({"app": "db"}), with("db")).await;
    let at = placed(&pods, "db-1").await.unwrap();
    create(&pods, "db-2", json!({"app": "db"}), with("db")).await;
    assert_eq!(placed(&pods, "db-2").await, Ok(at));
}

fn spread(app: &str, key: &str) -> Value {
    json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": key,
        "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": app}}}]})
}

#[tokio::test]
async fn topology_spread_by_hostname_counts_cordoned_nodes_as_empty_domains() {
    let s = sim("nodes: [{name: n1}, {name: n2}, {name: n3, unschedulable: true}]").await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let nodes: Api<Node> = Api::all(s.client());
    let spec = spread("web", "kubernetes.io/hostname");
    create(&pods, "web-1", json!({"app": "web"}), spec.clone()).await;
    let first = placed(&pods, "web-1").await.unwrap();
    create(&pods, "web-2", json!({"app": "web"}), spec.clone()).await;
    assert_ne!(placed(&pods, "web-2").await.unwrap(), first);
    // n3 is cordoned but still a domain with no pod: a third on n1 or n2 would make skew 2.
    create(&pods, "web-3", json!({"app": "web"}), spec).await;
    assert_eq!(
        placed(&pods, "web-3").await,
        Err("0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match pod topology spread constraints. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.".to_string())
    );
    nodes.uncordon("n3").await.unwrap();
    assert_eq!(node_of(&pods, "web-3").await, "n3");
}

#[tokio::test]
async fn topology_spread_by_zone_counts_tainted_domains_and_refuses_nodes_without_the_key() {
    let s = sim(r#"
nodes:
  - {name: a1, labels: {topology.kubernetes.io/zone: a}}
  - {name: b1, labels: {topology.kubernetes.io/zone: b}, taints: [{key: t, value: x, effect: NoSchedule}]}
  - {name: c1}
"#)
    .await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let spec = spread("web", "topology.kubernetes.io/zone");
    create(&pods, "web-1", json!({"app": "web"}), spec.clone()).await;
    assert_eq!(placed(&pods, "web-1").await, Ok("a1".to_string()));
    // Zone b (tainted, not tolerated) still counts, with 0: a second pod in zone a would make
    // the skew 2; c1 has no zone.
    create(&pods, "web-2", json!({"app": "web"}), spec.clone()).await;
    assert_eq!(
        placed(&pods, "web-2").await,
        Err("0/3 nodes are available: 1 node(s) didn't match pod topology spread constraints, 1 node(s) didn't match pod topology spread constraints (missing required label), 1 node(s) had untolerated taint {t: x}. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.".to_string())
    );
    // A pod tolerating the taint goes to zone b.
    let mut tolerant = spec;
    tolerant["tolerations"] = json!([{"key": "t", "operator": "Exists"}]);
    create(&pods, "web-3", json!({"app": "web"}), tolerant).await;
    assert_eq!(placed(&pods, "web-3").await, Ok("b1".to_string()));
}

#[tokio::test]
async fn topology_spread_with_an_empty_selector_counts_no_pod() {
    // `labelSelector: {}` is labels.Everything(), and kube-scheduler's countPodsMatchSelector
    // counts no pod with an empty selector: three pods on one node never skew it (checked on
    // the real scheduler by `cargo xtask e2e --only capacity`, workload spread-empty).
    let s = sim("nodes: [{name: n1}, {name: n2, unschedulable: true}]").await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let spec = json!({"topologySpreadConstraints": [{"maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {}}]});
    for name in ["web-1", "web-2", "web-3"] {
        create(&pods, name, json!({"app": "web"}), spec.clone()).await;
        assert_eq!(placed(&pods, name).await, Ok("n1".to_string()));
    }
}

#[tokio::test]
async fn a_host_port_in_use_keeps_a_second_pod_off_the_node() {
    let s = sim("nodes: [{name: n1}, {name: n2}]").await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let spec = json!({"containers": [{"name": "app", "image": "pause",
        "ports": [{"containerPort": 80, "hostPort": 8080}]}]});
    create(&pods, "p1", json!({}), spec.clone()).await;
    let first = placed(&pods, "p1").await.unwrap();
    create(&pods, "p2", json!({}), spec.clone()).await;
    assert_ne!(placed(&pods, "p2").await.unwrap(), first);
    create(&pods, "p3", json!({}), spec).await;
    assert_eq!(
        placed(&pods, "p3").await,
        Err("0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.".to_string())
    );
    // Another port, or UDP on the same number, fits.
    create(
        &pods,
        "udp",
        json!({}),
        json!({"containers": [{"name": "app", "image": "pause",
            "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]}]}),
    )
    .await;
    assert!(placed(&pods, "udp").await.is_ok());
}
