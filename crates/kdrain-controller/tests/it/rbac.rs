//! The ClusterRole and the Lease Role of deploy/controller/rbac.yaml are enough for everything
//! the controller does (stages, Complete, deletion, disableEviction, waitForCapacity, leader
//! election, Events), and each rule is used: the (verb, resource) pairs the controller sent are exactly the rules.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kdrain_controller::leader::{self, Election};
use kdrain_controller::metrics::Metrics;
use kdrain_controller::{NodeDrain, Phase};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kubesim::{AuthSpec, BindingSpec, RoleSpec, RuleSpec, UserSpec};
use kubesim::{Scenario, Sim};

const USER: &str = "system:serviceaccount:kdrain-system:kdrain-controller";
const TOKEN: &str = "controller-token";

/// The controller's ServiceAccount bound to `cluster` rules cluster-wide and `lease` rules in
/// its namespace.
fn auth(cluster: Vec<RuleSpec>, lease: Vec<RuleSpec>) -> AuthSpec {
    AuthSpec {
        users: vec![UserSpec {
            name: USER.into(),
            token: TOKEN.into(),
        }],
        roles: vec![
            RoleSpec {
                name: "cluster".into(),
                rules: cluster,
            },
            RoleSpec {
                name: "lease".into(),
                rules: lease,
            },
        ],
        bindings: vec![
            BindingSpec {
                user: USER.into(),
                role: "cluster".into(),
                namespace: None,
            },
            BindingSpec {
                user: USER.into(),
                role: "lease".into(),
                namespace: Some("kdrain-system".into()),
            },
        ],
    }
}

/// The rules of the role `kind`/`name` in deploy/controller/rbac.yaml, one verb × resource each.
fn shipped(kind: &str, name: &str) -> Vec<RuleSpec> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/controller/rbac.yaml");
    let text = std::fs::read_to_string(path).expect("rbac.yaml");
    let mut rules = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v = <serde_yaml::Value as serde::Deserialize>::deserialize(doc).expect("YAML");
        if v["kind"].as_str() != Some(kind) || v["metadata"]["name"].as_str() != Some(name) {
            continue;
        }
        for r in v["rules"].as_sequence().expect("rules") {
            let list = |k: &str| -> Vec<String> {
                r[k].as_sequence()
                    .expect("a list")
                    .iter()
                    .map(|x| x.as_str().expect("string").to_string())
                    .collect()
            };
            for res in list("resources") {
                for verb in list("verbs") {
                    rules.push(RuleSpec {
                        verbs: vec![verb],
                        resources: vec![res.clone()],
                        api_groups: Some(list("apiGroups")),
                    });
                }
            }
        }
    }
    assert!(!rules.is_empty(), "no {kind} {name} in rbac.yaml");
    rules
}

fn pairs(rules: &[RuleSpec]) -> BTreeSet<String> {
    rules
        .iter()
        .map(|r| format!("{} {}", r.verbs[0], r.resources[0]))
        .collect()
}

async fn until(api: &Api<NodeDrain>, name: &str, phase: Phase) {
    until_seen(api, name, &format!("{phase:?}"), |n| {
        crate::phase_of(n) == Some(phase)
    })
    .await;
}

/// Waits until NodeDrain `name` satisfies `ok`. Listed, not read by name: the test's own reads
/// stay out of the requests compared.
async fn until_seen(api: &Api<NodeDrain>, name: &str, what: &str, ok: impl Fn(&NodeDrain) -> bool) {
    let deadline = tokio::time::Instant::now() + crate::LIMIT;
    loop {
        let list = api.list(&Default::default()).await.unwrap();
        let nd = list
            .items
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(name));
        if nd.is_some_and(&ok) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} not {what}: {nd:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The NodeDrain waits for room for an old node's pods.
fn waits_for_room(n: &NodeDrain) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.blocked_by.as_deref())
        .is_some_and(|b| b.starts_with("room for the pods of old"))
}

#[tokio::test]
async fn the_shipped_roles_are_enough_and_each_rule_is_used() {
    let cluster_rules = shipped("ClusterRole", "kdrain-controller");
    let lease_rules = shipped("Role", "kdrain-controller-lease");
    let mut scenario = Scenario::from_yaml_str(
        r#"
nodes:
  - {name: n1}
  - {name: n2}
  - {name: n3}
  - {name: n4}
  - {name: spare, labels: {pool: cap}, allocatable: {cpu: "2"}}
  - {name: old1, labels: {pool: cap, old: "yes"}, allocatable: {cpu: "2"}}
  - {name: old2, labels: {pool: cap, old: "yes"}, allocatable: {cpu: "2"}}
namespaces: [{name: kdrain-system}]
workloads:
  - {kind: Deployment, name: web, namespace: shop, replicas: 2, nodes: [n1, n2], terminationSeconds: 0.1, readySeconds: 0.2}
  - {kind: Deployment, name: app1, namespace: cap, replicas: 2, nodes: [old1], nodeSelector: {pool: cap}, requests: {cpu: "1"}, terminationSeconds: 0.1, readySeconds: 0.1}
  - {kind: Deployment, name: app2, namespace: cap, replicas: 2, nodes: [old2], nodeSelector: {pool: cap}, requests: {cpu: "1"}, terminationSeconds: 0.1, readySeconds: 0.1}
  - {kind: DaemonSet, name: agent, namespace: kube-system}
pdbs:
  - {name: web, namespace: shop, selector: {app: web}, maxUnavailable: 1}
"#,
    )
    .unwrap();
    scenario.auth = Some(auth(cluster_rules.clone(), lease_rules.clone()));
    let sim = Sim::start(scenario).await.unwrap();
    sim.install_crd(&kdrain_controller::crd::crd_yaml())
        .unwrap();
    sim.reset_requests();
    let restricted = sim.client_with_token(TOKEN);
    let metrics = Arc::new(Metrics::new());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let work_client = restricted.clone();
    let work_metrics = metrics.clone();
    let election = Election {
        namespace: "kdrain-system".into(),
        identity: "controller-0".into(),
        lease_seconds: 5,
        renew_before_seconds: 2,
    };
    let controller = tokio::spawn(leader::lead(
        restricted,
        election,
        metrics,
        move || {
            kdrain_controller::run(
                work_client.clone(),
                Default::default(),
                work_metrics.clone(),
                std::future::pending(),
            )
        },
        async move {
            let _ = stop_rx.await;
        },
    ));
    // as an administrator: the requests
    let api: Api<NodeDrain> = Api::all(sim.client());
    let create = |name: &str, spec: &str| {
        let nd = NodeDrain::new(name, serde_yaml::from_str(spec).unwrap());
        let api = api.clone();
        async move { api.create(&PostParams::default(), &nd).await.unwrap() }
    };
    let stage = |name: &str, stage: &str| {
        let api = api.clone();
        let (name, body) = (
            name.to_string(),
            serde_json::json!({"spec": {"stage": stage}}),
        );
        async move {
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&body))
                .await
                .unwrap();
        }
    };
    create("a", "{nodeNames: [n1], ignoreDaemonSets: true}").await;
    until(&api, "a", Phase::Drained).await;
    stage("a", "Complete").await;
    until(&api, "a", Phase::Completed).await;
    // again: the same Events on the same objects become series (events patch)
    stage("a", "Drain").await;
    until(&api, "a", Phase::Drained).await;
    create(
        "b",
        "{nodeNames: [n2], ignoreDaemonSets: true, disableEviction: true}",
    )
    .await;
    until(&api, "b", Phase::Drained).await;
    api.delete("b", &Default::default()).await.unwrap();
    let deadline = tokio::time::Instant::now() + crate::LIMIT;
    while api.list(&Default::default()).await.unwrap().items.len() > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "b was not finalized"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // waitForCapacity: the spare holds one old node's replacements; the other waits for room,
    // which comes back when the operator makes the drained one schedulable (the node watch)
    create(
        "c",
        "{nodeSelector: old=yes, maxUnavailableNodes: 2, ignoreDaemonSets: true, waitForCapacity: true}",
    )
    .await;
    until_seen(&api, "c", "waiting for room", waits_for_room).await;
    let op = tokio::spawn(crate::capacity::operator(sim.client(), "old=yes"));
    until(&api, "c", Phase::Drained).await;
    op.abort();
    let _ = stop_tx.send(());
    controller.await.unwrap().unwrap();

    let requests = sim.requests();
    let denied: Vec<_> = requests.iter().filter(|r| r.code == 403).collect();
    assert!(denied.is_empty(), "the roles are enough: {denied:?}");
    let used: BTreeSet<String> = requests
        .iter()
        .filter(|r| !r.resource.starts_with('/'))
        .map(|r| {
            if r.subresource.is_empty() {
                format!("{} {}", r.verb, r.resource)
            } else {
                format!("{} {}/{}", r.verb, r.resource, r.subresource)
            }
        })
        // the test's own requests as an administrator
        .filter(|p| !matches!(p.as_str(), "create nodedrains" | "delete nodedrains"))
        // every authenticated user may review its own access (system:basic-user)
        .filter(|p| p != "create selfsubjectaccessreviews")
        .collect();
    let mut granted = pairs(&cluster_rules);
    granted.extend(pairs(&lease_rules));
    assert_eq!(
        used, granted,
        "the roles grant exactly what the controller sends"
    );
    sim.shutdown().await;
}

/// The start-up check names exactly the rights a role lacks: the shipped roles lack none; with
/// the status rule and the Lease rule's `create` removed, it names those two; without `watch`
/// on nodes (spec.waitForCapacity), that one.
#[tokio::test]
async fn the_start_up_check_names_each_missing_right() {
    let cluster_rules = shipped("ClusterRole", "kdrain-controller");
    let lease_rules = shipped("Role", "kdrain-controller-lease");
    let without = |rules: &[RuleSpec], pair: &str| -> Vec<RuleSpec> {
        rules
            .iter()
            .filter(|r| format!("{} {}", r.verbs[0], r.resources[0]) != pair)
            .cloned()
            .collect()
    };
    for (cluster, lease, want) in [
        (cluster_rules.clone(), lease_rules.clone(), vec![]),
        (
            without(&cluster_rules, "patch nodedrains/status"),
            without(&lease_rules, "create leases"),
            vec![
                "patch nodedrains/status (API group kdrain.io) cluster-wide",
                "create leases (API group coordination.k8s.io) in namespace kdrain-system",
            ],
        ),
        (
            without(&cluster_rules, "watch nodes"),
            lease_rules.clone(),
            vec!["watch nodes (API group core) cluster-wide"],
        ),
    ] {
        let mut scenario =
            Scenario::from_yaml_str("{nodes: [{name: n1}], namespaces: [{name: kdrain-system}]}")
                .unwrap();
        scenario.auth = Some(auth(cluster, lease));
        let sim = Sim::start(scenario).await.unwrap();
        let missing =
            kdrain_controller::access::missing(&sim.client_with_token(TOKEN), "kdrain-system")
                .await;
        let names: Vec<String> = missing.iter().map(|r| r.to_string()).collect();
        assert_eq!(names, want);
        sim.shutdown().await;
    }
}

/// Should `watch` on nodes be taken away (the start-up check asks for it), a `waitForCapacity`
/// drain still completes as room comes back, listing the nodes instead, and says so once: a
/// Warning Event `WatchRefused` on its NodeDrain.
#[tokio::test]
async fn without_watch_on_nodes_a_waiting_drain_still_drains_and_says_so_once() {
    let cluster_rules: Vec<RuleSpec> = shipped("ClusterRole", "kdrain-controller")
        .into_iter()
        .filter(|r| format!("{} {}", r.verbs[0], r.resources[0]) != "watch nodes")
        .collect();
    let mut scenario = Scenario::from_yaml_str(
        r#"
nodes:
  - {name: spare, labels: {pool: cap}, allocatable: {cpu: "2"}}
  - {name: old1, labels: {pool: cap, old: "yes"}, allocatable: {cpu: "2"}}
  - {name: old2, labels: {pool: cap, old: "yes"}, allocatable: {cpu: "2"}}
namespaces: [{name: kdrain-system}]
workloads:
  - {kind: Deployment, name: app1, namespace: cap, replicas: 2, nodes: [old1], nodeSelector: {pool: cap}, requests: {cpu: "1"}, terminationSeconds: 0.1, readySeconds: 0.1}
  - {kind: Deployment, name: app2, namespace: cap, replicas: 2, nodes: [old2], nodeSelector: {pool: cap}, requests: {cpu: "1"}, terminationSeconds: 0.1, readySeconds: 0.1}
"#,
    )
    .unwrap();
    scenario.auth = Some(auth(
        cluster_rules,
        shipped("Role", "kdrain-controller-lease"),
    ));
    let sim = Sim::start(scenario).await.unwrap();
    sim.install_crd(&kdrain_controller::crd::crd_yaml())
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(kdrain_controller::run(
        sim.client_with_token(TOKEN),
        Default::default(),
        Arc::new(Metrics::new()),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let api: Api<NodeDrain> = Api::all(sim.client());
    let spec = "{nodeSelector: old=yes, maxUnavailableNodes: 2, waitForCapacity: true}";
    let nd = NodeDrain::new("c", serde_yaml::from_str(spec).unwrap());
    api.create(&PostParams::default(), &nd).await.unwrap();
    // one old node waits for room (the drain then follows the nodes) before any comes back
    until_seen(&api, "c", "waiting for room", waits_for_room).await;
    let op = tokio::spawn(crate::capacity::operator(sim.client(), "old=yes"));
    until(&api, "c", Phase::Drained).await;
    op.abort();
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(crate::LIMIT, controller).await;
    let refused = sim
        .requests()
        .iter()
        .filter(|r| r.verb == "watch" && r.resource == "nodes" && r.code == 403)
        .count();
    assert!(refused >= 1, "the node watch was tried and refused");
    let events = Api::<k8s_openapi::api::events::v1::Event>::all(sim.client())
        .list(&Default::default())
        .await
        .unwrap();
    let said: Vec<String> = events
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some("WatchRefused"))
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("c"))
        .map(|e| e.note.clone().unwrap_or_default())
        .collect();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].starts_with("cannot watch nodes: "), "{}", said[0]);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    sim.shutdown().await;
}
