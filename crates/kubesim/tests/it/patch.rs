//! Create, update and PATCH (U-1 to U-4, P-1 to P-3).

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::common::{Raw, get_json, raw, raw_json, sim};

/// Path of the budget `p` that `ONE` creates.
const PDB_P: &str = "/apis/policy/v1/namespaces/default/poddisruptionbudgets/p";

/// `PATCH path` over raw HTTP with the given patch content type.
async fn raw_patch(s: &kubesim::Sim, path: &str, content_type: &str, body: &[u8]) -> Raw {
    raw(s, "PATCH", path, &[("Content-Type", content_type)], body).await
}

const ONE: &str = "nodes: [{name: n1}]\npdbs: [{name: p, selector: {app: x}, maxUnavailable: 1}]\nworkloads: [{kind: Pod, name: a}]\n";

#[tokio::test]
async fn cordon_and_uncordon_by_strategic_merge() {
    let s = sim(ONE).await;
    let nodes: Api<Node> = Api::all(s.client());
    let n = nodes.cordon("n1").await.unwrap();
    assert_eq!(n.spec.unwrap().unschedulable, Some(true));
    let tainted = crate::common::eventually("the unschedulable taint", || async {
        let n = nodes.get("n1").await.unwrap();
        n.spec.unwrap().taints.filter(|t| {
            t.iter()
                .any(|t| t.key == "node.kubernetes.io/unschedulable" && t.effect == "NoSchedule")
        })
    })
    .await;
    assert_eq!(tainted.len(), 1);
    let n = nodes.uncordon("n1").await.unwrap();
    assert_eq!(n.spec.unwrap().unschedulable, Some(false));
    crate::common::eventually("the taint to go", || async {
        nodes
            .get("n1")
            .await
            .unwrap()
            .spec
            .unwrap()
            .taints
            .is_none()
            .then_some(())
    })
    .await;
    nodes.cordon("n1").await.unwrap();
    let r = raw_patch(
        &s,
        "/api/v1/nodes/n1",
        "application/strategic-merge-patch+json",
        br#"{"spec":{"unschedulable":null}}"#,
    )
    .await;
    assert_eq!(r.code, 200);
    assert!(r.json()["spec"]["unschedulable"].is_null());
    assert!(r.json()["status"]["capacity"].is_object(), "status is kept");
    let dry = raw_patch(
        &s,
        "/api/v1/nodes/n1?dryRun=All",
        "application/strategic-merge-patch+json",
        br#"{"spec":{"unschedulable":true}}"#,
    )
    .await;
    assert_eq!(dry.json()["spec"]["unschedulable"], true);
    assert!(
        nodes
            .get("n1")
            .await
            .unwrap()
            .spec
            .unwrap()
            .unschedulable
            .is_none()
    );
}

#[tokio::test]
async fn merge_json_patch_and_errors() {
    let s = sim(ONE).await;
    let nodes: Api<Node> = Api::all(s.client());
    let n = nodes
        .patch(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata":{"labels":{"x":"1"}}})),
        )
        .await
        .unwrap();
    assert_eq!(n.metadata.labels.unwrap()["x"], "1");
    let ops = json!([{"op":"replace","path":"/metadata/labels/x","value":"2"}]).to_string();
    let r = raw_patch(
        &s,
        "/api/v1/nodes/n1",
        "application/json-patch+json",
        ops.as_bytes(),
    )
    .await;
    assert_eq!(r.code, 200);
    assert_eq!(r.json()["metadata"]["labels"]["x"], "2");
    let r = raw_patch(
        &s,
        "/api/v1/nodes/n1",
        "application/json-patch+json",
        br#"[{"op":"test","path":"/metadata/labels/x","value":"9"}]"#,
    )
    .await;
    assert_eq!(r.code, 422);
    let r = raw_patch(&s, "/api/v1/nodes/n1", "text/plain", b"{}").await;
    assert_eq!(r.code, 415);
    assert_eq!(r.json()["reason"], "UnsupportedMediaType");
    let r = raw_patch(
        &s,
        "/api/v1/nodes/nx",
        "application/merge-patch+json",
        b"{}",
    )
    .await;
    assert_eq!(r.code, 404);
    let r = raw_patch(
        &s,
        "/api/v1/nodes/n1",
        "application/merge-patch+json",
        br#"{"metadata":{"resourceVersion":"1"}}"#,
    )
    .await;
    assert_eq!(r.code, 409);
}

#[tokio::test]
async fn updates_check_resource_version_and_pdb_needs_one() {
    let s = sim(ONE).await;
    let pdb: Value = get_json(&s, PDB_P).await;
    let mut body = pdb.clone();
    body["metadata"]["resourceVersion"] = json!("1");
    let r = raw_json(&s, "PUT", PDB_P, &body).await;
    assert_eq!(r.code, 409);
    assert_eq!(
        r.json()["message"],
        "Operation cannot be fulfilled on poddisruptionbudgets.policy \"p\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let mut body = pdb.clone();
    body["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let r = raw_json(&s, "PUT", PDB_P, &body).await;
    assert_eq!(r.code, 422);
    assert_eq!(
        r.json()["message"],
        "poddisruptionbudgets.policy \"p\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
    );
    // A spec change bumps generation; status in a main-resource PUT is ignored.
    let mut body = pdb.clone();
    body["spec"]["maxUnavailable"] = json!(2);
    body["status"]["disruptionsAllowed"] = json!(99);
    let r = raw_json(&s, "PUT", PDB_P, &body).await;
    assert_eq!(r.code, 200);
    let v = r.json();
    assert_eq!(v["metadata"]["generation"], 2);
    assert_ne!(v["status"]["disruptionsAllowed"], 99);
    // A no-op write keeps the resourceVersion (D-0.7).
    let node: Value = get_json(&s, "/api/v1/nodes/n1").await;
    let same = raw_json(&s, "PUT", "/api/v1/nodes/n1", &node).await.json();
    assert_eq!(
        same["metadata"]["resourceVersion"],
        node["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn create_sets_system_fields_and_checks_names() {
    let s = sim(ONE).await;
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(s.client(), "default");
    let b: PodDisruptionBudget = serde_json::from_value(
        json!({"metadata":{"name":"q","uid":"mine"},"spec":{"maxUnavailable":1}}),
    )
    .unwrap();
    let c = pdbs.create(&PostParams::default(), &b).await.unwrap();
    assert_ne!(c.metadata.uid.as_deref(), Some("mine"));
    assert_eq!(c.metadata.generation, Some(1));
    let e = pdbs.create(&PostParams::default(), &b).await.unwrap_err();
    match e {
        kube::Error::Api(st) => {
            assert_eq!(st.code, 409);
            assert_eq!(
                st.message,
                "poddisruptionbudgets.policy \"q\" already exists"
            );
        }
        other => panic!("{other}"),
    }
    let r = raw_json(
        &s,
        "POST",
        "/api/v1/namespaces/default/pods",
        &json!({"metadata":{"name":"z","namespace":"other"},"spec":{}}),
    )
    .await;
    assert_eq!(r.code, 400);
    let r = raw_json(
        &s,
        "POST",
        "/api/v1/namespaces/missing/pods",
        &json!({"metadata":{"name":"z"},"spec":{}}),
    )
    .await;
    assert_eq!(r.code, 404);
    assert_eq!(r.json()["message"], "namespaces \"missing\" not found");
    let r = raw_json(
        &s,
        "POST",
        "/api/v1/namespaces/default/pods",
        &json!({"metadata":{"generateName":"gen-"},"spec":{"containers":[]}}),
    )
    .await;
    assert_eq!(r.code, 201);
    let v = r.json();
    assert!(v["metadata"]["name"].as_str().unwrap().starts_with("gen-"));
    assert_eq!(v["status"]["phase"], "Pending");
    assert_eq!(v["spec"]["terminationGracePeriodSeconds"], 30);
    assert!(
        v["metadata"].get("generation").is_none(),
        "pods have no generation in 1.32"
    );
}

#[tokio::test]
async fn status_subresource_ignores_spec() {
    let s = sim(ONE).await;
    let pod: Value = get_json(&s, "/api/v1/namespaces/default/pods/a").await;
    let mut body = pod.clone();
    body["spec"]["nodeName"] = json!("elsewhere");
    body["status"]["phase"] = json!("Failed");
    let r = raw_json(&s, "PUT", "/api/v1/namespaces/default/pods/a/status", &body).await;
    assert_eq!(r.code, 200);
    let v = r.json();
    assert_eq!(v["spec"]["nodeName"], "n1");
    assert_eq!(v["status"]["phase"], "Failed");
}
