//! LIST: paging with continue tokens, resourceVersion rules, label and field selectors (R-2 to R-6).

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;

use crate::common::{get_json, get_raw, sim};

/// The `metadata.name` of every item of a raw list page, in page order.
fn item_names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

const CLUSTER: &str = r#"
nodes: [{name: n1, labels: {zone: a}}, {name: n2, labels: {zone: b}, unschedulable: true}, {namePrefix: w-, count: 3, labels: {zone: c}}]
workloads:
  - {kind: Pod, name: a, replicas: 4, labels: {app: a, tier: web}, nodes: [n1]}
  - {kind: Pod, name: b, replicas: 3, labels: {app: b}, nodes: [n2]}
  - {kind: Pod, name: c, namespace: other, replicas: 2, labels: {app: c}, nodes: [n1]}
"#;

#[tokio::test]
async fn paging_follows_continue_at_one_resource_version() {
    let s = sim(CLUSTER).await;
    let first: Value = get_json(&s, "/api/v1/pods?limit=4").await;
    assert_eq!(first["kind"], "PodList");
    assert_eq!(first["items"].as_array().unwrap().len(), 4);
    assert_eq!(first["metadata"]["remainingItemCount"], 5);
    let rv = first["metadata"]["resourceVersion"].clone();
    let mut names = item_names(&first);
    let mut cont = first["metadata"]["continue"].as_str().unwrap().to_string();
    loop {
        let page: Value = get_json(&s, &format!("/api/v1/pods?limit=4&continue={cont}")).await;
        assert_eq!(page["metadata"]["resourceVersion"], rv);
        names.extend(item_names(&page));
        match page["metadata"]["continue"].as_str() {
            Some(c) => cont = c.to_string(),
            None => break,
        }
    }
    assert_eq!(
        names,
        vec![
            "a-0", "a-1", "a-2", "a-3", "b-0", "b-1", "b-2", "c-0", "c-1"
        ]
    );
    // kube's own paging gives the same.
    let pods: Api<Pod> = Api::all(s.client());
    let all = pods.list(&ListParams::default().limit(2)).await.unwrap();
    assert!(all.metadata.continue_.is_some());
    let bad = get_raw(&s, "/api/v1/pods?limit=2&continue=garbage").await;
    assert_eq!(bad.code, 400);
    assert!(
        bad.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid continue token")
    );
    let both = get_raw(
        &s,
        &format!("/api/v1/pods?limit=2&continue={cont}&resourceVersion=5"),
    )
    .await;
    assert_eq!(both.code, 400);
    assert_eq!(
        both.json()["message"],
        "specifying resource version is not allowed when using continue"
    );
}

#[tokio::test]
async fn resource_version_zero_ignores_limit_and_selectors_hide_remaining_count() {
    let s = sim(CLUSTER).await;
    let l: Value = get_json(&s, "/api/v1/pods?limit=2&resourceVersion=0").await;
    assert_eq!(l["items"].as_array().unwrap().len(), 9);
    assert!(l["metadata"]["continue"].is_null());
    let l: Value = get_json(&s, "/api/v1/pods?limit=2&labelSelector=app%3Da").await;
    assert_eq!(l["items"].as_array().unwrap().len(), 2);
    assert!(l["metadata"]["continue"].is_string());
    assert!(l["metadata"]["remainingItemCount"].is_null());
    let r = get_raw(&s, "/api/v1/pods?resourceVersionMatch=Exact").await;
    assert_eq!(r.code, 422);
    assert_eq!(
        r.json()["details"]["causes"][0]["reason"],
        "FieldValueForbidden"
    );
}

#[tokio::test]
async fn field_selectors_use_the_node_index_and_validate_keys() {
    let s = sim(CLUSTER).await;
    let pods: Api<Pod> = Api::all(s.client());
    let on_n1 = pods
        .list(&ListParams::default().fields("spec.nodeName=n1"))
        .await
        .unwrap();
    assert_eq!(on_n1.items.len(), 6);
    let web_on_n1 = pods
        .list(
            &ListParams::default()
                .fields("spec.nodeName=n1,metadata.namespace=default")
                .labels("tier=web"),
        )
        .await
        .unwrap();
    assert_eq!(web_on_n1.items.len(), 4);
    let not_n1 = pods
        .list(&ListParams::default().fields("spec.nodeName!=n1,status.phase=Running"))
        .await
        .unwrap();
    assert_eq!(not_n1.items.len(), 3);
    let named = pods
        .list(&ListParams::default().fields("metadata.name=b-1"))
        .await
        .unwrap();
    assert_eq!(named.items.len(), 1);
    let r = get_raw(&s, "/api/v1/pods?fieldSelector=spec.bogus%3D1").await;
    assert_eq!(r.code, 400);
    assert_eq!(r.json()["message"], "field label not supported: spec.bogus");
    let nodes: Api<Node> = Api::all(s.client());
    let cordoned = nodes
        .list(&ListParams::default().fields("spec.unschedulable=true"))
        .await
        .unwrap();
    assert_eq!(cordoned.items.len(), 1);
}

#[tokio::test]
async fn label_selectors_support_the_full_grammar() {
    let s = sim(CLUSTER).await;
    let nodes: Api<Node> = Api::all(s.client());
    let count = |sel: &'static str| {
        let nodes = nodes.clone();
        async move {
            nodes
                .list(&ListParams::default().labels(sel))
                .await
                .unwrap()
                .items
                .len()
        }
    };
    assert_eq!(count("zone in (a,b)").await, 2);
    assert_eq!(count("zone notin (a,b)").await, 3);
    assert_eq!(count("zone!=c").await, 2);
    assert_eq!(count("zone").await, 5);
    assert_eq!(count("!zone").await, 0);
    let r = get_raw(&s, "/api/v1/nodes?labelSelector=zone%20in%20(a").await;
    assert_eq!(r.code, 400);
    let pods: Api<Pod> = Api::namespaced(s.client(), "other");
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        2
    );
    let got = get_raw(&s, "/api/v1/namespaces/default/pods/nope").await;
    assert_eq!(got.code, 404);
}

#[tokio::test]
async fn paging_through_one_nodes_pods() {
    let s = sim(CLUSTER).await;
    let mut names = Vec::new();
    let mut path = "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1&limit=4".to_string();
    loop {
        let page: Value = get_json(&s, &path).await;
        assert!(
            page["metadata"]["remainingItemCount"].is_null(),
            "selectors hide the count"
        );
        names.extend(item_names(&page));
        match page["metadata"]["continue"].as_str() {
            Some(c) => {
                path = format!("/api/v1/pods?fieldSelector=spec.nodeName%3Dn1&limit=4&continue={c}")
            }
            None => break,
        }
    }
    assert_eq!(names, vec!["a-0", "a-1", "a-2", "a-3", "c-0", "c-1"]);
}
