//! Discovery documents (D-1 to D-5) and content negotiation (D-4).

use serde_json::Value;

use crate::common::{get_json, get_raw, raw, sim};

const AGG: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

#[tokio::test]
async fn version_says_minor_32() {
    let s = sim("nodes: []").await;
    let v = raw(
        &s,
        "GET",
        "/version?timeout=5s",
        &[("Accept", "application/json, */*")],
        b"",
    )
    .await
    .json();
    assert_eq!(
        (v["major"].as_str(), v["minor"].as_str()),
        (Some("1"), Some("32"))
    );
    let info = s.client().apiserver_version().await.unwrap();
    assert_eq!(info.minor, "32");
}

#[tokio::test]
async fn legacy_and_aggregated_discovery() {
    let s = sim("nodes: []").await;
    let api = get_raw(&s, "/api").await;
    assert_eq!(api.header("content-type"), Some("application/json"));
    assert_eq!(api.json()["versions"][0], "v1");
    let agg = raw(&s, "GET", "/api?timeout=32s", &[("Accept", AGG)], b"").await;
    assert_eq!(
        agg.header("content-type"),
        Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    );
    let doc = agg.json();
    assert_eq!(doc["kind"], "APIGroupDiscoveryList");
    let pods = doc["items"][0]["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "pods")
        .unwrap()
        .clone();
    let ev = pods["subresources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subresource"] == "eviction")
        .unwrap()
        .clone();
    assert_eq!(ev["responseKind"]["group"], "policy");
    let apis = raw(&s, "GET", "/apis", &[("Accept", AGG)], b"")
        .await
        .json();
    let groups: Vec<&str> = apis["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        groups,
        vec![
            "policy",
            "apps",
            "coordination.k8s.io",
            "apiextensions.k8s.io",
            "events.k8s.io"
        ]
    );
    let legacy = get_json(&s, "/apis").await;
    for g in legacy["groups"].as_array().unwrap() {
        let gv = g["preferredVersion"]["groupVersion"].as_str().unwrap();
        assert_eq!(
            get_raw(&s, &format!("/apis/{gv}")).await.code,
            200,
            "{gv} is served"
        );
    }
}

#[tokio::test]
async fn core_v1_lists_pods_eviction_with_policy_group() {
    let s = sim("nodes: []").await;
    let v: Value = get_json(&s, "/api/v1").await;
    let ev = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods/eviction")
        .unwrap()
        .clone();
    assert_eq!(
        (
            ev["group"].as_str(),
            ev["version"].as_str(),
            ev["kind"].as_str()
        ),
        (Some("policy"), Some("v1"), Some("Eviction"))
    );
    let discovery = kube::Discovery::new(s.client()).run().await.unwrap();
    assert!(discovery.has_group("apps"));
    let pdb = get_json(&s, "/apis/policy/v1").await;
    assert!(
        pdb["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "poddisruptionbudgets" && r["shortNames"][0] == "pdb")
    );
    let bad = get_raw(&s, "/api/v1/widgets").await;
    assert_eq!(bad.code, 404);
    let pb_only = raw(
        &s,
        "GET",
        "/api/v1/nodes",
        &[("Accept", "application/vnd.kubernetes.protobuf")],
        b"",
    )
    .await;
    assert_eq!(pb_only.code, 406);
}
