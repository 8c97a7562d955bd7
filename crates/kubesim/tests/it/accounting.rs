//! Fault injection, request counters and the invariant log, in Rust and over HTTP.

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use kubesim::Fault;
use serde_json::json;

use crate::common::{get_json, get_raw, raw, raw_json, sim};

const CLUSTER: &str = r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: DaemonSet, name: agent, labels: {app: agent}}
  - {kind: Pod, name: bare, nodes: [n1]}
mirrorPods: [{name: etcd-n1, node: n1}]
faults: [{verb: list, resource: nodes, status: 503}]
"#;

#[tokio::test]
async fn faults_from_the_scenario_and_at_run_time() {
    let s = sim(CLUSTER).await;
    let nodes: Api<Node> = Api::all(s.client());
    let e = nodes.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(e, kube::Error::Api(ref st) if st.code == 503),
        "{e}"
    );
    let f: serde_json::Value = get_json(&s, "/kubesim/faults").await;
    assert_eq!(
        f,
        json!([{"verb":"list","resource":"nodes","status":503,"probability":1.0}])
    );
    let r = raw_json(
        &s,
        "PUT",
        "/kubesim/faults",
        &json!([{"verb":"get","resource":"nodes","status":429,"retryAfterSeconds":3}]),
    )
    .await;
    assert_eq!(r.code, 200);
    assert_eq!(
        nodes
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    let r = get_raw(&s, "/api/v1/nodes/n1").await;
    assert_eq!(r.code, 429);
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(r.json()["details"]["retryAfterSeconds"], 3);
    s.set_faults(vec![Fault {
        resource: Some("pods".into()),
        status: Some(500),
        probability: 0.0,
        ..Fault::default()
    }]);
    assert_eq!(get_raw(&s, "/api/v1/nodes/n1").await.code, 200);
    assert!(raw(&s, "PUT", "/kubesim/faults", &[], b"{").await.code == 400);
}

#[tokio::test]
async fn requests_are_counted_by_verb_resource_subresource_and_code() {
    let s = sim("nodes: [{name: n1}]").await;
    s.reset_requests();
    let nodes: Api<Node> = Api::all(s.client());
    nodes.get("n1").await.unwrap();
    nodes.get("n1").await.unwrap();
    let _ = nodes.get("nope").await;
    nodes.cordon("n1").await.unwrap();
    let mut got: Vec<(String, String, String, u16, u64)> = s
        .requests()
        .into_iter()
        .map(|r| (r.verb, r.resource, r.subresource, r.code, r.count))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("get".into(), "nodes".into(), "".into(), 200, 2),
            ("get".into(), "nodes".into(), "".into(), 404, 1),
            ("patch".into(), "nodes".into(), "".into(), 200, 1),
        ]
    );
    let over_http: serde_json::Value = get_json(&s, "/kubesim/requests").await;
    assert_eq!(over_http.as_array().unwrap().len(), 3);
    assert_eq!(over_http[0]["verb"], "get");
}

#[tokio::test]
async fn invariant_log_catches_daemonset_mirror_and_uncordoned_removals() {
    let s = sim(CLUSTER).await;
    assert!(s.violations().is_empty());
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let nodes: Api<Node> = Api::all(s.client());
    let agent = pods
        .list(
            &ListParams::default()
                .labels("app=agent")
                .fields("spec.nodeName=n2"),
        )
        .await
        .unwrap()
        .items[0]
        .metadata
        .name
        .clone()
        .unwrap();
    nodes.cordon("n2").await.unwrap();
    pods.delete(&agent, &DeleteParams::default()).await.unwrap();
    pods.delete("bare", &DeleteParams::default()).await.unwrap();
    let system: Api<Pod> = Api::namespaced(s.client(), "kube-system");
    system
        .delete("etcd-n1", &DeleteParams::default())
        .await
        .unwrap();
    let mut kinds: Vec<String> = s.violations().into_iter().map(|v| v.kind).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            "DaemonSetPodRemoved",
            "MirrorPodRemoved",
            "UncordonedNodePodRemoved",
            "UncordonedNodePodRemoved"
        ]
    );
    let v: serde_json::Value = get_json(&s, "/kubesim/violations").await;
    assert_eq!(v.as_array().unwrap().len(), 4);
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|x| x["object"] == "default/bare" && x["kind"] == "UncordonedNodePodRemoved")
    );
}

#[tokio::test]
async fn status_zero_fault_resets_the_connection() {
    let s = sim("nodes: [{name: n1}]").await;
    s.set_faults(vec![Fault {
        verb: Some("get".into()),
        resource: Some("nodes".into()),
        status: Some(0),
        ..Fault::default()
    }]);
    let nodes: Api<Node> = Api::all(s.client());
    let e = nodes.get("n1").await.unwrap_err();
    assert!(!matches!(e, kube::Error::Api(_)), "not an API answer: {e}");
    assert!(
        s.requests()
            .iter()
            .any(|r| r.verb == "get" && r.resource == "nodes" && r.code == 0 && r.count == 1)
    );
    s.set_faults(vec![]);
    assert_eq!(
        nodes.get("n1").await.unwrap().metadata.name.as_deref(),
        Some("n1")
    );
}
