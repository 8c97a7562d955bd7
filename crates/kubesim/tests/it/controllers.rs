//! Cluster behaviour: replacements by workload controllers on schedulable nodes, StatefulSet
//! identity, DaemonSets, readiness and the Deployment's ReplicaSet ownership.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams};

use crate::common::{eventually, grace, pod_with_prefix, sim};

const CLUSTER: &str = r#"
nodes: [{name: n1}, {name: n2, maxPods: 4}, {name: n3}]
workloads:
  - {kind: Deployment, name: web, replicas: 3, labels: {app: web}, nodes: [n1], readySeconds: 0.3}
  - {kind: StatefulSet, name: db, replicas: 2, labels: {app: db}, nodes: [n1], terminationSeconds: 0.3}
  - {kind: DaemonSet, name: agent, labels: {app: agent}}
"#;

#[tokio::test]
async fn deployment_pods_have_a_replicaset_owner_and_are_replaced_on_schedulable_nodes() {
    let s = sim(CLUSTER).await;
    let client = s.client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let nodes: Api<Node> = Api::all(client.clone());
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let rs = rss
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .next()
        .unwrap();
    let rs_name = rs.metadata.name.clone().unwrap();
    assert!(rs_name.starts_with("web-"));
    let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Deployment", "web", Some(true))
    );
    let web = pod_with_prefix(&pods, "web-").await;
    let pod_owner = &web.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (pod_owner.kind.as_str(), pod_owner.uid.as_str()),
        ("ReplicaSet", rs.metadata.uid.as_deref().unwrap())
    );
    assert!(
        web.metadata
            .name
            .as_deref()
            .unwrap()
            .starts_with(&format!("{rs_name}-"))
    );
    nodes.cordon("n1").await.unwrap();
    nodes.cordon("n3").await.unwrap();
    for p in pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
    {
        pods.delete(p.metadata.name.as_deref().unwrap(), &grace(0))
            .await
            .unwrap();
    }
    let placed = eventually("3 Ready web replacements", || async {
        let l = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items;
        let ready = l.iter().filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        });
        (ready.count() == 3).then_some(l)
    })
    .await;
    // n2 is the only schedulable node, and it has room for 4 pods, one taken by the DaemonSet.
    assert!(
        placed
            .iter()
            .all(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some("n2"))
    );
}

#[tokio::test]
async fn statefulset_pod_comes_back_with_the_same_name_and_a_new_uid() {
    let s = sim(CLUSTER).await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let old = pods.get("db-0").await.unwrap();
    let old_uid = old.metadata.uid.clone().unwrap();
    pods.delete("db-0", &DeleteParams::default()).await.unwrap();
    let same = pods.get("db-0").await.unwrap();
    assert_eq!(
        same.metadata.uid.as_deref(),
        Some(old_uid.as_str()),
        "not replaced while the old one terminates"
    );
    let new = eventually("db-0 with a new UID", || async {
        pods.get_opt("db-0")
            .await
            .unwrap()
            .filter(|p| p.metadata.uid.as_deref() != Some(old_uid.as_str()))
    })
    .await;
    assert!(new.metadata.deletion_timestamp.is_none());
}

#[tokio::test]
async fn daemonset_keeps_one_pod_per_node() {
    let s = sim(CLUSTER).await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let on_n1 = agents_on_n1(&pods).await;
    assert_eq!(on_n1.len(), 1);
    let name = on_n1[0].metadata.name.clone().unwrap();
    pods.delete(&name, &grace(0)).await.unwrap();
    eventually("a new agent pod on n1", || async {
        let l = agents_on_n1(&pods).await;
        (l.len() == 1 && l[0].metadata.name.as_deref() != Some(name.as_str())).then_some(())
    })
    .await;
    let total = pods
        .list(&ListParams::default().labels("app=agent"))
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(total, 3);
}

#[tokio::test]
async fn a_terminating_namespace_deletes_its_pods_gracefully_then_goes_away() {
    use k8s_openapi::api::core::v1::Namespace;
    let s = sim(r#"
nodes: [{name: n1}]
namespaces: [{name: going, terminating: true}, {name: shop}]
workloads:
  - {kind: Deployment, name: cart, namespace: going, replicas: 2, nodes: [n1], terminationSeconds: 0.5}
  - {kind: Deployment, name: web, namespace: shop, replicas: 1, nodes: [n1], terminationSeconds: 0.5}
"#)
    .await;
    let going: Api<Pod> = Api::namespaced(s.client(), "going");
    // the pods go through the kubelet: first terminating (deletionTimestamp set), not removed at once
    let first = eventually("pods of the terminating namespace terminating", || async {
        let l = going.list(&ListParams::default()).await.ok()?;
        (!l.items.is_empty()
            && l.items
                .iter()
                .all(|p| p.metadata.deletion_timestamp.is_some()))
        .then_some(l.items.len())
    })
    .await;
    assert_eq!(first, 2);
    let namespaces: Api<Namespace> = Api::all(s.client());
    eventually("the namespace gone once empty", || async {
        matches!(namespaces.get("going").await, Err(kube::Error::Api(e)) if e.code == 404)
            .then_some(())
    })
    .await;
    // nothing was recreated by the (deleted) Deployment, and other namespaces are untouched
    assert!(
        going
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let shop: Api<Pod> = Api::namespaced(s.client(), "shop");
    let kept = shop.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(kept.len(), 1);
    assert!(kept[0].metadata.deletion_timestamp.is_none());
    assert!(s.violations().is_empty(), "{:?}", s.violations());
}

#[tokio::test]
async fn deleting_a_namespace_through_the_api_terminates_it() {
    use k8s_openapi::api::core::v1::Namespace;
    let s = sim(r#"
nodes: [{name: n1}]
namespaces: [{name: shop}]
workloads: [{kind: Pod, name: p, namespace: shop, nodes: [n1], terminationSeconds: 0.3}]
"#)
    .await;
    let namespaces: Api<Namespace> = Api::all(s.client());
    let shown = namespaces
        .delete("shop", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("the namespace, now terminating");
    assert_eq!(
        shown.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );
    assert!(shown.metadata.deletion_timestamp.is_some());
    // creating in it is refused while it terminates
    let pods: Api<Pod> = Api::namespaced(s.client(), "shop");
    let new: Pod = serde_json::from_value(serde_json::json!({"metadata":{"name":"late"},
        "spec":{"containers":[{"name":"c","image":"x"}]}}))
    .unwrap();
    match pods.create(&Default::default(), &new).await {
        Err(kube::Error::Api(e)) => assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden")),
        other => panic!("expected 403 NamespaceTerminating, got {other:?}"),
    }
    eventually("the namespace gone", || async {
        matches!(namespaces.get("shop").await, Err(kube::Error::Api(e)) if e.code == 404)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn evicting_an_orphaned_daemonset_pod_is_no_violation() {
    let s = sim(r#"
nodes: [{name: n1}, {name: n2}]
workloads: [{kind: DaemonSet, name: agent, labels: {app: agent}, terminationSeconds: 0.1}]
"#)
    .await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let nodes: Api<Node> = Api::all(s.client());
    nodes.cordon("n1").await.unwrap();
    nodes.cordon("n2").await.unwrap();
    let on = |n: &'static str| {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().fields(&format!("spec.nodeName={n}")))
                .await
                .unwrap()
                .items
                .into_iter()
                .next()
                .and_then(|p| p.metadata.name)
        }
    };
    let managed = eventually("agent pod on n1", || on("n1")).await;
    pods.delete(&managed, &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(s.violations().len(), 1, "{:?}", s.violations());
    // a pod whose controller is a DaemonSet that no longer exists
    let orphan: Pod = serde_json::from_value(serde_json::json!({"metadata":{"name":"orphan",
        "ownerReferences":[{"apiVersion":"apps/v1","kind":"DaemonSet","name":"gone","uid":"0000-gone","controller":true}]},
        "spec":{"nodeName":"n2","containers":[{"name":"c","image":"x"}]}}))
    .unwrap();
    pods.create(&Default::default(), &orphan).await.unwrap();
    let live = pods.get("orphan").await.unwrap();
    assert!(live.metadata.deletion_timestamp.is_none());
    pods.delete("orphan", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(s.violations().len(), 1, "{:?}", s.violations());
    assert_eq!(s.violations()[0].object, format!("default/{managed}"));
    assert_eq!(s.violations()[0].kind, "DaemonSetPodRemoved");
}

#[tokio::test]
async fn the_namespace_controller_can_be_delayed() {
    let s = sim(r#"
settings: {namespaceDeletionDelaySeconds: 1}
nodes: [{name: n1}]
namespaces: [{name: going, terminating: true}]
workloads: [{kind: Pod, name: p, namespace: going, nodes: [n1], terminationSeconds: 0.1}]
"#)
    .await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "going");
    let p = pods.get("p").await.unwrap();
    assert!(
        p.metadata.deletion_timestamp.is_none(),
        "untouched at first"
    );
    eventually("the pod gone after the delay", || async {
        matches!(pods.get("p").await, Err(kube::Error::Api(e)) if e.code == 404).then_some(())
    })
    .await;
}

/// The DaemonSet `agent` pods on node n1.
async fn agents_on_n1(pods: &Api<Pod>) -> Vec<Pod> {
    pods.list(
        &ListParams::default()
            .labels("app=agent")
            .fields("spec.nodeName=n1"),
    )
    .await
    .unwrap()
    .items
}

#[tokio::test]
async fn scenario_pods_are_dated_as_started_ready_seconds_before_they_became_ready() {
    let s = sim("nodes: [{name: n1}]\nworkloads:\n  - {kind: Deployment, name: slow, replicas: 2, nodes: [n1], readySeconds: 4}\n  - {kind: Pod, name: quick, nodes: [n1], readySeconds: 0}").await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    for p in pods.list(&ListParams::default()).await.unwrap().items {
        let name = p.metadata.name.clone().unwrap();
        let status = p.status.as_ref().unwrap();
        let started = status.start_time.as_ref().unwrap().0;
        assert_eq!(
            p.metadata.creation_timestamp.as_ref().unwrap().0,
            started,
            "{name}"
        );
        let ready = status
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "True", "{name}");
        let took = ready
            .last_transition_time
            .as_ref()
            .unwrap()
            .0
            .duration_since(started);
        let expected = if name.starts_with("slow-") { 4 } else { 0 };
        assert_eq!(took.as_secs(), expected, "{name}: {took:?}");
    }
}

/// Found by the e2e tier's everyday-commands differential: `kubectl describe deployment` on the
/// real control plane shows the API server's defaults (`StrategyType: RollingUpdate`,
/// `RollingUpdateStrategy: 25% max unavailable, 25% max surge`), the revision annotation and the
/// Progressing condition, which kubesim left out.
#[tokio::test]
async fn a_created_deployment_gets_the_real_defaults_revision_and_progressing_condition() {
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::PostParams;

    let s = sim("nodes: [{name: n1}, {name: n2}]\n").await;
    let deployments: Api<Deployment> = Api::namespaced(s.client(), "default");
    let d: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}
        }
    }))
    .unwrap();
    let created = deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let spec = created.spec;
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    let strategy = spec.strategy.unwrap();
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    let ru = serde_json::to_value(strategy.rolling_update.unwrap()).unwrap();
    assert_eq!(
        ru,
        serde_json::json!({"maxSurge": "25%", "maxUnavailable": "25%"})
    );

    let done = eventually("the rollout complete", || async {
        let d = deployments.get("web").await.unwrap();
        let conds = d.status.as_ref()?.conditions.clone()?;
        let progressing = conds
            .iter()
            .find(|c| c.type_.as_deref() == Some("Progressing"))?;
        (progressing.reason.as_deref() == Some("NewReplicaSetAvailable")).then_some(d)
    })
    .await;
    let conds = done.status.unwrap().conditions.unwrap();
    let shape: Vec<(&str, &str, Option<&str>)> = conds
        .iter()
        .map(|c| {
            (
                c.type_.as_deref().unwrap_or(""),
                c.status.as_deref().unwrap_or(""),
                c.reason.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            ("Available", "True", Some("MinimumReplicasAvailable")),
            ("Progressing", "True", Some("NewReplicaSetAvailable")),
        ]
    );
    let rs_name = {
        let rss: Api<ReplicaSet> = Api::namespaced(s.client(), "default");
        let rs = rss
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .remove(0);
        assert_eq!(
            rs.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
            "1"
        );
        rs.metadata.name.unwrap()
    };
    assert_eq!(
        conds[1].message.as_deref(),
        Some(format!("ReplicaSet \"{rs_name}\" has successfully progressed.").as_str())
    );
    assert_eq!(
        done.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "1"
    );
}
