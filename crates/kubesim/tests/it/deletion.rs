//! DELETE and graceful deletion (G-1 to G-8), the kubelet's part (K-1 to K-3) and protobuf bodies.

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::common::{eventually, get_json, get_raw, grace, raw, raw_json, sim};

const SLOW: &str = r#"
nodes: [{name: n1, unschedulable: true}]
workloads:
  - {kind: Pod, name: slow, terminationSeconds: 60, gracePeriodSeconds: 30}
  - {kind: Pod, name: quick, terminationSeconds: 0.2, gracePeriodSeconds: 30}
  - {kind: Pod, name: stubborn, terminationSeconds: 60, gracePeriodSeconds: 1}
"#;

#[tokio::test]
async fn graceful_delete_sets_deadline_and_only_shortens() {
    let s = sim(SLOW).await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let r = raw_json(
        &s,
        "DELETE",
        "/api/v1/namespaces/default/pods/slow",
        &json!({}),
    )
    .await;
    assert_eq!(r.code, 200);
    let body = r.json();
    assert_eq!(body["kind"], "Pod");
    assert_eq!(body["metadata"]["deletionGracePeriodSeconds"], 30);
    let ts: jiff::Timestamp = body["metadata"]["deletionTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let ahead = ts.as_second() - jiff::Timestamp::now().as_second();
    assert!(
        (28..=31).contains(&ahead),
        "deadline is now + grace, got {ahead}"
    );
    // A second delete without a grace period changes nothing.
    let again = pods
        .delete("slow", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("pods return the object");
    assert_eq!(
        again.metadata.resource_version.as_deref(),
        body["metadata"]["resourceVersion"].as_str()
    );
    // A longer grace period changes nothing; a shorter one moves the deadline.
    let longer = pods
        .delete("slow", &grace(60))
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(longer.metadata.deletion_grace_period_seconds, Some(30));
    let shorter = pods
        .delete("slow", &grace(5))
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(shorter.metadata.deletion_grace_period_seconds, Some(5));
    let new_ts = shorter.metadata.deletion_timestamp.unwrap().0.as_second();
    assert_eq!(ts.as_second() - new_ts, 25);
    // Grace 0 removes it now; the response is still the pod.
    let gone = pods.delete("slow", &grace(0)).await.unwrap();
    assert!(gone.is_left());
    assert_eq!(
        get_raw(&s, "/api/v1/namespaces/default/pods/slow")
            .await
            .code,
        404
    );
}

#[tokio::test]
async fn kubelet_stops_pods_after_termination_seconds_capped_by_grace() {
    let s = sim(SLOW).await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    pods.delete("quick", &DeleteParams::default())
        .await
        .unwrap();
    pods.delete("stubborn", &DeleteParams::default())
        .await
        .unwrap();
    eventually("quick to disappear", || async {
        pods.get_opt("quick").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(
        pods.get_opt("stubborn").await.unwrap().is_some(),
        "grace 1 s has not passed yet"
    );
    eventually("stubborn to be killed at its grace period", || async {
        pods.get_opt("stubborn")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn delete_preconditions_conflict_names_the_kind() {
    let s = sim(SLOW).await;
    let r = raw_json(
        &s,
        "DELETE",
        "/api/v1/namespaces/default/pods/slow",
        &json!({"preconditions":{"resourceVersion":"1"}}),
    )
    .await;
    assert_eq!(r.code, 409);
    let st = r.json();
    assert!(st["message"].as_str().unwrap().starts_with(
        "Operation cannot be fulfilled on Pod \"slow\": the ResourceVersion in the precondition (1) does not match the ResourceVersion in record"
    ));
    assert_eq!(st["details"]["kind"], "Pod");
}

#[tokio::test]
async fn protobuf_delete_options_are_decoded() {
    let s = sim(SLOW).await;
    let hex = "6b3873000a130a027631120d44656c6574654f7074696f6e731202080a1a002200";
    let body = unhex(hex);
    let r = raw(
        &s,
        "DELETE",
        "/api/v1/namespaces/default/pods/slow",
        &[
            ("Content-Type", "application/vnd.kubernetes.protobuf"),
            (
                "Accept",
                "application/vnd.kubernetes.protobuf,application/json",
            ),
        ],
        &body,
    )
    .await;
    assert_eq!(r.code, 200);
    // Protobuf first in Accept: the answer is protobuf, as from the real server.
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.kubernetes.protobuf")
    );
    assert!(r.body.starts_with(b"k8s\0"));
    let pod = crate::common::get_json(&s, "/api/v1/namespaces/default/pods/slow").await;
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 10);
    // dryRun inside the protobuf body: nothing changes.
    let hex = "6b3873000a130a027631120d44656c6574654f7074696f6e7312052a03416c6c1a002200";
    let body = unhex(hex);
    let r = raw(
        &s,
        "DELETE",
        "/api/v1/namespaces/default/pods/quick",
        &[("Content-Type", "application/vnd.kubernetes.protobuf")],
        &body,
    )
    .await;
    assert_eq!(r.code, 200);
    let pod: Value = get_json(&s, "/api/v1/namespaces/default/pods/quick").await;
    assert!(pod["metadata"]["deletionTimestamp"].is_null());
}

#[tokio::test]
async fn unscheduled_pods_and_finalizers() {
    let s = sim(SLOW).await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let p: Pod = serde_json::from_value(
        json!({"metadata":{"name":"f","finalizers":["example.com/hold"]},
        "spec":{"containers":[{"name":"c","image":"x"}]}}),
    )
    .unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();
    // No node (the only node is cordoned): grace is 0, but the finalizer keeps it.
    let held = pods
        .delete("f", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(held.metadata.deletion_grace_period_seconds, Some(0));
    assert!(pods.get_opt("f").await.unwrap().is_some());
    // Removing the last finalizer deletes it in the same request (U-5).
    pods.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata":{"finalizers":null}})),
    )
    .await
    .unwrap();
    assert!(pods.get_opt("f").await.unwrap().is_none());
}

#[tokio::test]
async fn node_delete_returns_a_status() {
    let s = sim(SLOW).await;
    let nodes: Api<Node> = Api::all(s.client());
    let uid = nodes.get("n1").await.unwrap().metadata.uid.unwrap();
    let r = raw_json(&s, "DELETE", "/api/v1/nodes/n1", &json!({})).await;
    assert_eq!(r.code, 200);
    assert_eq!(
        r.json(),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":{"name":"n1","kind":"nodes","uid":uid}})
    );
    let r = get_raw(&s, "/api/v1/nodes/n1").await;
    assert_eq!(r.code, 404);
    assert_eq!(r.json()["message"], "nodes \"n1\" not found");
}

/// Any int64 grace period a client or a scenario gives is accepted and the deadline is
/// clamped: no handler panics (a panic would drop the connection instead of answering).
#[tokio::test]
async fn huge_grace_periods_clamp_the_deadline_instead_of_panicking() {
    let s = sim(r#"
nodes: [{name: n1, unschedulable: true}]
workloads:
  - {kind: Pod, name: spec-max, terminationSeconds: 60, gracePeriodSeconds: 9223372036854775807}
  - {kind: Pod, name: query-max, terminationSeconds: 60}
  - {kind: Pod, name: evict-max, terminationSeconds: 60}
"#)
    .await;
    let max = i64::MAX;
    let far = |r: &crate::common::Raw| {
        assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
        let body = r.json();
        let ts: jiff::Timestamp = body["metadata"]["deletionTimestamp"]
            .as_str()
            .expect("deletionTimestamp")
            .parse()
            .unwrap();
        assert!(
            ts.as_second() > jiff::Timestamp::now().as_second() + 100 * 365 * 86_400,
            "{body}"
        );
        body
    };
    // The pod's own terminationGracePeriodSeconds.
    let r = raw_json(
        &s,
        "DELETE",
        "/api/v1/namespaces/default/pods/spec-max",
        &json!({}),
    )
    .await;
    assert_eq!(far(&r)["metadata"]["deletionGracePeriodSeconds"], max);
    // A second delete with a shorter grace moves the deadline from the clamped one.
    let r = raw_json(
        &s,
        "DELETE",
        "/api/v1/namespaces/default/pods/spec-max",
        &json!({"gracePeriodSeconds": max - 1}),
    )
    .await;
    assert_eq!(far(&r)["metadata"]["deletionGracePeriodSeconds"], max - 1);
    // The query parameter.
    let r = raw(
        &s,
        "DELETE",
        &format!("/api/v1/namespaces/default/pods/query-max?gracePeriodSeconds={max}"),
        &[],
        b"",
    )
    .await;
    far(&r);
    // An eviction's deleteOptions.
    let r = raw_json(
        &s,
        "POST",
        "/api/v1/namespaces/default/pods/evict-max/eviction",
        &json!({"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": "evict-max", "namespace": "default"},
                "deleteOptions": {"gracePeriodSeconds": max}}),
    )
    .await;
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
    let r = get_raw(&s, "/api/v1/namespaces/default/pods/evict-max").await;
    let body = far(&r);
    assert_eq!(body["metadata"]["deletionGracePeriodSeconds"], max);
    // The simulator still answers after all that.
    let r = get_raw(&s, "/api/v1/namespaces/default/pods").await;
    assert_eq!(r.code, 200);
}

/// The bytes a hex string spells (two digits a byte).
fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
