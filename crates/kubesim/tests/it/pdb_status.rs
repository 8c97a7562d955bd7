//! Disruption controller arithmetic (C-2 to C-7): int and percent, minAvailable and maxUnavailable.

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::common::{eventually, get_json, sim};

async fn pdb_status(s: &kubesim::Sim, name: &str) -> Value {
    get_json(
        s,
        &format!("/apis/policy/v1/namespaces/default/poddisruptionbudgets/{name}"),
    )
    .await["status"]
        .clone()
}

fn numbers(st: &Value) -> (i64, i64, i64, i64) {
    (
        st["expectedPods"].as_i64().unwrap(),
        st["desiredHealthy"].as_i64().unwrap(),
        st["currentHealthy"].as_i64().unwrap(),
        st["disruptionsAllowed"].as_i64().unwrap(),
    )
}

const CLUSTER: &str = r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 3, labels: {app: web}}
  - {kind: StatefulSet, name: db, replicas: 4, labels: {app: db}}
  - {kind: Pod, name: bare, replicas: 2, labels: {app: bare}}
  - {kind: DaemonSet, name: agent, namespace: ds, labels: {app: agent}}
pdbs:
  - {name: min-int, selector: {app: web}, minAvailable: 2}
  - {name: max-pct, selector: {app: db}, maxUnavailable: "25%"}
  - {name: min-pct, selector: {app: bare}, minAvailable: "50%"}
  - {name: bare-int, selector: {app: bare}, minAvailable: 1}
  - {name: bad-int, selector: {app: web}, maxUnavailable: "1"}
  - {name: all, selector: {}, maxUnavailable: 0}
  - {name: none, maxUnavailable: 1}
"#;

#[tokio::test]
async fn statuses_follow_the_controller_arithmetic() {
    let s = sim(&CLUSTER.replace(
        "  - {name: bare-int, selector: {app: bare}, minAvailable: 1}\n",
        "",
    ))
    .await;
    // minAvailable 2 of a 3-replica Deployment: expected 3, desired 2, healthy 3, allowed 1.
    assert_eq!(numbers(&pdb_status(&s, "min-int").await), (3, 2, 3, 1));
    // maxUnavailable 25% of scale 4 rounds up to 1: desired 3.
    assert_eq!(numbers(&pdb_status(&s, "max-pct").await), (4, 3, 4, 1));
    // minAvailable 50% over bare pods only: expected (controllers' scale) 0, so nothing allowed.
    assert_eq!(numbers(&pdb_status(&s, "min-pct").await), (0, 0, 2, 0));
    // {} selects everything in the namespace; maxUnavailable 0 of scale 3+4 => expected 7 (bare pods add no scale).
    let all = pdb_status(&s, "all").await;
    assert_eq!(all["expectedPods"], 7);
    assert_eq!(all["currentHealthy"], 9);
    // A nil selector matches nothing.
    assert_eq!(numbers(&pdb_status(&s, "none").await), (0, 0, 0, 0));
    let st = pdb_status(&s, "min-int").await;
    assert_eq!(st["observedGeneration"], 1);
    let cond = &st["conditions"][0];
    assert_eq!(
        (
            cond["type"].as_str(),
            cond["status"].as_str(),
            cond["reason"].as_str()
        ),
        (
            Some("DisruptionAllowed"),
            Some("True"),
            Some("SufficientPods")
        )
    );
}

#[tokio::test]
async fn bad_int_or_string_and_missing_scale_trigger_fail_safe() {
    let s = sim(CLUSTER).await;
    let st = pdb_status(&s, "bad-int").await;
    assert_eq!(
        st["conditions"][0]["message"],
        "invalid value for IntOrString: invalid type: string is not a percentage: \"1\""
    );
    assert_eq!(st["disruptionsAllowed"], 0);
    assert_eq!(st["conditions"][0]["reason"], "SyncFailed");
    assert!(st.get("observedGeneration").is_none_or(|g| g == 0), "{st}");
    // minAvailable as an integer counts selected pods, even bare ones.
    assert_eq!(numbers(&pdb_status(&s, "bare-int").await), (2, 1, 2, 1));
    // DaemonSet pods have no scale subresource: a percentage budget over them fails safe.
    let pdbs: kube::Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
        kube::Api::namespaced(s.client(), "ds");
    let b = serde_json::from_value(json!({"metadata":{"name":"agents"},"spec":{"selector":{"matchLabels":{"app":"agent"}},"maxUnavailable":"10%"}})).unwrap();
    pdbs.create(&Default::default(), &b).await.unwrap();
    let st = eventually("fail-safe status", || async {
        let v: Value = get_json(
            &s,
            "/apis/policy/v1/namespaces/ds/poddisruptionbudgets/agents",
        )
        .await;
        (v["status"]["conditions"][0]["reason"] == "SyncFailed").then_some(v["status"].clone())
    })
    .await;
    assert_eq!(st["disruptionsAllowed"], 0);
}

#[tokio::test]
async fn scaling_the_owner_changes_expected_pods() {
    let s = sim(CLUSTER).await;
    let deps: Api<Deployment> = Api::namespaced(s.client(), "default");
    deps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec":{"replicas":5}})),
    )
    .await
    .unwrap();
    let st = eventually("5 healthy web pods", || async {
        let st = pdb_status(&s, "min-int").await;
        (st["currentHealthy"] == 5).then_some(st)
    })
    .await;
    assert_eq!(numbers(&st), (5, 2, 5, 3));
}
