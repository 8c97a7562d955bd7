//! The eviction subresource, rule by rule (E-1 to E-12), with exact codes, messages and causes.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::{DeleteParams, EvictParams, PostParams};
use serde_json::{Value, json};

use crate::common::{
    default_pods, eventually, get_json, get_raw, grace, pod_names, pod_with_prefix, raw, raw_json,
    sim,
};

/// Path of the budget `web-pdb` every web scenario here creates.
const WEB_PDB: &str = "/apis/policy/v1/namespaces/default/poddisruptionbudgets/web-pdb";

const TWO_WEB: &str = r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 2, labels: {app: web}, terminationSeconds: 30, readySeconds: 30}
  - {kind: Pod, name: solo, labels: {app: solo}, nodes: [n1], terminationSeconds: 30}
pdbs:
  - {name: web-pdb, selector: {app: web}, minAvailable: 2}
"#;

/// One node, a Deployment `web` of `replicas` pods that become ready after 30s, and one
/// budget `web-pdb` over them with `budget` (e.g. `minAvailable: 2`).
fn ready_web_with_budget(replicas: u32, budget: &str) -> String {
    format!(
        "nodes: [{{name: n1}}]\n\
         workloads: [{{kind: Deployment, name: web, replicas: {replicas}, labels: {{app: web}}, terminationSeconds: 30, readySeconds: 30}}]\n\
         pdbs: [{{name: web-pdb, selector: {{app: web}}, {budget}}}]\n"
    )
}

fn evict_body(name: &str, opts: Value) -> Value {
    json!({"kind":"Eviction","apiVersion":"policy/v1","metadata":{"name":name,"namespace":"default","creationTimestamp":null},"deleteOptions":opts})
}

async fn evict(s: &kubesim::Sim, name: &str, opts: Value) -> crate::common::Raw {
    raw_json(
        s,
        "POST",
        &format!("/api/v1/namespaces/default/pods/{name}/eviction"),
        &evict_body(name, opts),
    )
    .await
}

#[tokio::test]
async fn eviction_without_budget_returns_201_and_marks_pod() {
    let s = sim(TWO_WEB).await;
    let r = evict(&s, "solo", json!({})).await;
    assert_eq!(r.code, 201);
    assert_eq!(
        r.json(),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201})
    );
    let pod: Value = get_json(&s, "/api/v1/namespaces/default/pods/solo").await;
    assert!(pod["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 30);
    let dt = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "DisruptionTarget")
        .unwrap()
        .clone();
    assert_eq!(dt["status"], "True");
    assert_eq!(dt["reason"], "EvictionByEvictionAPI");
    assert_eq!(dt["message"], "Eviction API: evicting");
}

#[tokio::test]
async fn eviction_of_missing_pod_is_404() {
    let s = sim(TWO_WEB).await;
    let r = evict(&s, "nope", json!({})).await;
    assert_eq!(r.code, 404);
    assert_eq!(
        r.json(),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"nope\" not found",
               "reason":"NotFound","details":{"name":"nope","kind":"pods"},"code":404})
    );
}

#[tokio::test]
async fn eviction_name_mismatch_is_400() {
    let s = sim(TWO_WEB).await;
    let r = raw_json(
        &s,
        "POST",
        "/api/v1/namespaces/default/pods/solo/eviction",
        &evict_body("other", json!({})),
    )
    .await;
    assert_eq!(r.code, 400);
    assert_eq!(
        r.json()["message"],
        "name in URL does not match name in Eviction object"
    );
}

#[tokio::test]
async fn eviction_uid_precondition_mismatch_is_409() {
    let s = sim(TWO_WEB).await;
    let pod: Value = get_json(&s, "/api/v1/namespaces/default/pods/solo").await;
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    let r = evict(&s, "solo", json!({"preconditions":{"uid":"wrong"}})).await;
    assert_eq!(r.code, 409);
    let st = r.json();
    assert_eq!(st["reason"], "Conflict");
    assert_eq!(
        st["message"],
        format!(
            "Operation cannot be fulfilled on Pod \"solo\": the UID in the precondition (wrong) does not match the UID in record ({uid}). The object might have been deleted and then recreated"
        )
    );
    assert_eq!(st["details"], json!({"name":"solo","kind":"Pod"}));
    let ok = evict(&s, "solo", json!({"preconditions":{"uid":uid}})).await;
    assert_eq!(ok.code, 201);
}

#[tokio::test]
async fn budget_with_no_disruptions_left_gives_429_without_retry_after() {
    let s = sim(TWO_WEB).await;
    let pods = default_pods(&s);
    let web = pod_with_prefix(&pods, "web-").await.metadata.name.unwrap();
    let r = evict(&s, &web, json!({})).await;
    assert_eq!(r.code, 429);
    assert_eq!(r.header("retry-after"), None);
    assert_eq!(
        r.json(),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"Cannot evict pod as it would violate the pod's disruption budget.","reason":"TooManyRequests",
               "details":{"causes":[{"reason":"DisruptionBudget","message":"The disruption budget web-pdb needs 2 healthy pods and has 2 currently"}]},
               "code":429})
    );
    let pod = pods.get(&web).await.unwrap();
    assert!(pod.metadata.deletion_timestamp.is_none());
}

#[tokio::test]
async fn budget_still_processing_gives_429_with_retry_after_10() {
    let s = sim(&format!(
        "settings: {{disruptionDelaySeconds: 60}}\n{TWO_WEB}"
    ))
    .await;
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(s.client(), "default");
    let fresh: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata":{"name":"solo-pdb"},"spec":{"selector":{"matchLabels":{"app":"solo"}},"maxUnavailable":1}}))
    .unwrap();
    let created = pdbs.create(&PostParams::default(), &fresh).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let r = evict(&s, "solo", json!({})).await;
    assert_eq!(r.code, 429);
    assert_eq!(r.header("retry-after"), Some("10"));
    assert_eq!(
        r.json()["details"],
        json!({"causes":[{"reason":"DisruptionBudget","message":"The disruption budget solo-pdb is still being processed by the server."}],"retryAfterSeconds":10})
    );
}

#[tokio::test]
async fn pod_under_two_budgets_gives_500_without_reason() {
    let s = sim(&format!(
        "{TWO_WEB}  - {{name: second, selector: {{app: web}}, maxUnavailable: 1}}\n"
    ))
    .await;
    let pods = default_pods(&s);
    let web = pod_with_prefix(&pods, "web-").await.metadata.name.unwrap();
    let r = evict(&s, &web, json!({})).await;
    assert_eq!(r.code, 500);
    assert_eq!(
        r.json(),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.","code":500})
    );
}

#[tokio::test]
async fn terminating_namespace_gives_403_namespace_terminating() {
    let s = sim(r#"
nodes: [{name: n1}]
namespaces: [{name: going, terminating: true}]
workloads: [{kind: Pod, name: p, namespace: going, terminationSeconds: 30}]
"#)
    .await;
    let r = raw_json(
        &s,
        "POST",
        "/api/v1/namespaces/going/pods/p/eviction",
        &json!({"metadata":{"name":"p"}}),
    )
    .await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.json(),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"pods \"p\" is forbidden: unable to create new content in namespace going because it is being terminated",
               "reason":"Forbidden",
               "details":{"name":"p","kind":"pods","causes":[{"reason":"NamespaceTerminating","message":"namespace going is being terminated","field":"metadata.namespace"}]},
               "code":403})
    );
}

#[tokio::test]
async fn pending_pods_bypass_budgets_and_go_at_once() {
    let s = sim(TWO_WEB).await;
    let pods = default_pods(&s);
    let p: Pod = serde_json::from_value(json!({"metadata":{"name":"stuck","labels":{"app":"web"}},
        "spec":{"nodeSelector":{"no":"such-node"},"containers":[{"name":"c","image":"x"}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();
    let r = evict(&s, "stuck", json!({})).await;
    assert_eq!(r.code, 201, "{}", r.text());
    assert_eq!(
        get_raw(&s, "/api/v1/namespaces/default/pods/stuck")
            .await
            .code,
        404
    );
}

#[tokio::test]
async fn terminating_pods_bypass_budgets() {
    let s = sim(TWO_WEB).await;
    let pods = default_pods(&s);
    let web = pod_with_prefix(&pods, "web-").await.metadata.name.unwrap();
    pods.delete(&web, &DeleteParams::default()).await.unwrap();
    let before = pods.get(&web).await.unwrap();
    let r = evict(&s, &web, json!({})).await;
    assert_eq!(r.code, 201);
    let after = pods.get(&web).await.unwrap();
    assert_eq!(
        before.metadata.deletion_timestamp,
        after.metadata.deletion_timestamp
    );
    let r = evict(&s, &web, json!({"gracePeriodSeconds": 0})).await;
    assert_eq!(r.code, 201);
    assert_eq!(
        get_raw(&s, &format!("/api/v1/namespaces/default/pods/{web}"))
            .await
            .code,
        404
    );
}

async fn make_unready(s: &kubesim::Sim, name: &str) {
    let patch = json!({"status":{"conditions":[{"type":"Ready","status":"False"}]}});
    let r = raw(
        s,
        "PATCH",
        &format!("/api/v1/namespaces/default/pods/{name}/status"),
        &[("Content-Type", "application/strategic-merge-patch+json")],
        patch.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.text());
}

#[tokio::test]
async fn unhealthy_pod_policy_always_allow_skips_the_budget() {
    let s = sim(&format!(
        "{}settings: {{disruptionDelaySeconds: 30}}\n",
        ready_web_with_budget(
            2,
            "minAvailable: 2, unhealthyPodEvictionPolicy: AlwaysAllow"
        )
    ))
    .await;
    let pods = default_pods(&s);
    let web = pod_with_prefix(&pods, "web-").await.metadata.name.unwrap();
    make_unready(&s, &web).await;
    let r = evict(&s, &web, json!({})).await;
    assert_eq!(r.code, 201, "{}", r.text());
    let pdb: Value = get_json(&s, WEB_PDB).await;
    assert!(
        pdb["status"]["disruptedPods"].is_null(),
        "no budget consumed: {pdb}"
    );
}

#[tokio::test]
async fn unhealthy_pod_if_healthy_budget_blocks_when_budget_is_short() {
    let s = sim(&ready_web_with_budget(2, "minAvailable: 2")).await;
    let pods = default_pods(&s);
    let web = pod_with_prefix(&pods, "web-").await.metadata.name.unwrap();
    make_unready(&s, &web).await;
    let status = eventually("controller to see the unready pod", || async {
        let pdb: Value = get_json(&s, WEB_PDB).await;
        (pdb["status"]["currentHealthy"] == 1).then_some(pdb["status"].clone())
    })
    .await;
    assert_eq!(status["desiredHealthy"], 2);
    let r = evict(&s, &web, json!({})).await;
    assert_eq!(r.code, 429);
    assert_eq!(
        r.json()["details"]["causes"][0]["message"],
        "The disruption budget web-pdb needs 2 healthy pods and has 1 currently"
    );
}

#[tokio::test]
async fn dry_run_checks_but_changes_nothing() {
    let s = sim(r#"
nodes: [{name: n1}]
workloads: [{kind: Deployment, name: web, replicas: 3, labels: {app: web}}]
pdbs: [{name: web-pdb, selector: {app: web}, maxUnavailable: 1}]
"#)
    .await;
    let pods = default_pods(&s);
    let web = pod_with_prefix(&pods, "web-").await;
    let name = web.metadata.name.clone().unwrap();
    let pdb_before: Value = get_json(&s, WEB_PDB).await;
    let r = evict(&s, &name, json!({"dryRun":["All"]})).await;
    assert_eq!(r.code, 201);
    let r = raw_json(
        &s,
        "POST",
        &format!("/api/v1/namespaces/default/pods/{name}/eviction?dryRun=All"),
        &evict_body(&name, json!({})),
    )
    .await;
    assert_eq!(r.code, 201);
    let after = pods.get(&name).await.unwrap();
    assert_eq!(
        after.metadata.resource_version,
        web.metadata.resource_version
    );
    let pdb_after: Value = get_json(&s, WEB_PDB).await;
    assert_eq!(pdb_before, pdb_after);
}

#[tokio::test]
async fn eviction_records_disrupted_pod_and_decrements_budget() {
    let s = sim(r#"
settings: {disruptionDelaySeconds: 60}
nodes: [{name: n1}]
workloads: [{kind: Deployment, name: web, replicas: 3, labels: {app: web}, terminationSeconds: 30}]
pdbs: [{name: web-pdb, selector: {app: web}, maxUnavailable: 1}]
"#)
    .await;
    let pods = default_pods(&s);
    let names = pod_names(&pods).await;
    let r = evict(&s, &names[0], json!({})).await;
    assert_eq!(r.code, 201);
    let pdb: Value = get_json(&s, WEB_PDB).await;
    assert_eq!(pdb["status"]["disruptionsAllowed"], 0);
    assert!(pdb["status"]["disruptedPods"][&names[0]].is_string());
    let cond = pdb["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "DisruptionAllowed")
        .unwrap()
        .clone();
    assert_eq!(
        (cond["status"].as_str(), cond["reason"].as_str()),
        (Some("False"), Some("InsufficientPods"))
    );
    let r = evict(&s, &names[1], json!({})).await;
    assert_eq!(r.code, 429);
}

#[tokio::test]
async fn kube_rs_evict_params_delete_options_are_ignored_like_a_real_server() {
    let s = sim(TWO_WEB).await;
    let pods = default_pods(&s);
    let ep = EvictParams {
        delete_options: Some(grace(0)),
        ..Default::default()
    };
    let st = pods.evict("solo", &ep).await.unwrap();
    assert_eq!(st.code, 201);
    let pod = pods.get("solo").await.unwrap();
    assert_eq!(pod.metadata.deletion_grace_period_seconds, Some(30));
}

#[tokio::test]
async fn concurrent_evictions_never_overspend_a_budget() {
    let s = sim(&ready_web_with_budget(8, "maxUnavailable: 2")).await;
    let pods = default_pods(&s);
    let names = pod_names(&pods).await;
    let futs = names.iter().map(|n| evict(&s, n, json!({})));
    let codes: Vec<u16> = futures::future::join_all(futs)
        .await
        .into_iter()
        .map(|r| r.code)
        .collect();
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 2, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 429).count(), 6, "{codes:?}");
    let v = s.violations();
    assert!(v.iter().all(|v| v.kind != "BudgetBelowDesired"), "{v:?}");
    assert_eq!(
        v.iter()
            .filter(|v| v.kind == "UncordonedNodePodRemoved")
            .count(),
        2,
        "{v:?}"
    );
}

#[tokio::test]
async fn unknown_eviction_fields_are_ignored_with_a_warning() {
    let s = sim(TWO_WEB).await;
    let r = raw_json(
        &s,
        "POST",
        "/api/v1/namespaces/default/pods/solo/eviction",
        &json!({"delete_options":{"gracePeriodSeconds":0},"metadata":{"name":"solo"}}),
    )
    .await;
    assert_eq!(r.code, 201);
    assert_eq!(
        r.header("warning"),
        Some("299 - \"unknown field \\\"delete_options\\\"\"")
    );
    let pod: Value = get_json(&s, "/api/v1/namespaces/default/pods/solo").await;
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 30);
}

#[tokio::test]
async fn negative_or_overfull_budget_status_is_403() {
    let s = sim(&format!(
        "settings: {{disruptionDelaySeconds: 60}}\n{TWO_WEB}"
    ))
    .await;
    let path = "/apis/policy/v1/namespaces/default/poddisruptionbudgets/web-pdb/status";
    let mut pdb: Value = get_json(&s, path).await;
    pdb["status"]["disruptionsAllowed"] = json!(-1);
    assert_eq!(raw_json(&s, "PUT", path, &pdb).await.code, 200);
    let pods = default_pods(&s);
    let web = pod_with_prefix(&pods, "web-").await.metadata.name.unwrap();
    let r = evict(&s, &web, json!({})).await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.json(),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"poddisruptionbudget.policy \"web-pdb\" is forbidden: pdb disruptions allowed is negative",
               "reason":"Forbidden","details":{"name":"web-pdb","group":"policy","kind":"poddisruptionbudget"},"code":403})
    );
    let mut pdb: Value = get_json(&s, path).await;
    pdb["status"]["disruptionsAllowed"] = json!(1);
    let many: serde_json::Map<String, Value> = (0..2001)
        .map(|i| (format!("p{i}"), json!("2030-01-01T00:00:00Z")))
        .collect();
    pdb["status"]["disruptedPods"] = Value::Object(many);
    assert_eq!(raw_json(&s, "PUT", path, &pdb).await.code, 200);
    let r = evict(&s, &web, json!({})).await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.json()["message"],
        "poddisruptionbudget.policy \"web-pdb\" is forbidden: DisruptedPods map too big - too many evictions not confirmed by PDB controller"
    );
}
