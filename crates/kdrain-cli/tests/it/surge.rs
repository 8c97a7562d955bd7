//! `--surge`: a single-replica Deployment under `minAvailable: 1` can never be evicted; with
//! `--surge` its rollout is restarted after the cordon (as `kubectl rollout restart`), the new
//! pod starts on another node, the Deployment controller retires the old one, and the drain
//! completes without an eviction. What cannot surge (a StatefulSet, a strategy that would go
//! below its replicas, a name with no pod on the node) is named in the plan and nothing changes.

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::common::cluster;

const SOLO: &str = r#"
nodes: [{name: n1}, {name: n2}]
namespaces: [{name: shop}]
workloads:
  - {kind: Deployment, name: solo, namespace: shop, replicas: 1, labels: {app: solo}, nodes: [n1], readySeconds: 0.3, terminationSeconds: 0.1}
  - {kind: Deployment, name: other, namespace: shop, replicas: 1, labels: {app: other}, nodes: [n2]}
pdbs:
  - {name: solo, namespace: shop, selector: {app: solo}, minAvailable: 1}
"#;

const WITH_DB: &str = r#"
nodes: [{name: n1}, {name: n2}]
namespaces: [{name: shop}]
workloads:
  - {kind: StatefulSet, name: db, namespace: shop, replicas: 1, labels: {app: db}, nodes: [n1]}
pdbs:
  - {name: db, namespace: shop, selector: {app: db}, minAvailable: 1}
"#;

async fn deployment(c: &crate::common::Cluster, name: &str) -> Deployment {
    Api::<Deployment>::namespaced(c.client(), "shop")
        .get(name)
        .await
        .unwrap()
}

fn template_annotation(d: &Deployment, key: &str) -> Option<String> {
    d.spec
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(key)
        .cloned()
}

#[tokio::test]
async fn a_single_replica_deployment_is_surged_instead_of_evicted() {
    let c = cluster(SOLO).await;
    // without --surge its budget never lets it go
    let r = c.run(&["plan", "n1"]).await;
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);

    let p = c.run(&["plan", "n1", "--surge", "shop/solo"]).await;
    assert_eq!(p.code, 0, "{}\n{}", p.stdout, p.stderr);
    assert!(
        p.stdout.contains("surge: Deployment shop/solo: restart its rollout (as kubectl rollout restart) after the cordon: the Deployment controller starts 1 new pod on other nodes and retires the old once the new are Ready; the drain waits for them (budget shop/solo never lets them be evicted)\n"),
        "{}",
        p.stdout
    );
    assert!(
        p.stdout
            .contains("replaced by the rollout restart of Deployment shop/solo (--surge)"),
        "{}",
        p.stdout
    );

    // --dry-run says what it would restart and changes nothing
    c.sim.reset_requests();
    let d = c
        .run(&["drain", "n1", "--surge", "shop/solo", "--dry-run"])
        .await;
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    assert!(
        d.stdout
            .contains("deployment.apps/solo restarted (--surge) (dry run)\n"),
        "{}",
        d.stdout
    );
    assert_eq!(c.all_writes(), Vec::<String>::new());
    assert_eq!(
        template_annotation(
            &deployment(&c, "solo").await,
            "kubectl.kubernetes.io/restartedAt"
        ),
        None
    );

    // the real drain: cordon, restart, the old pod retired by the Deployment controller
    c.sim.reset_requests();
    let d = c.run(&["drain", "n1", "--surge", "shop/solo"]).await;
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    assert!(
        d.stdout
            .contains("deployment.apps/solo restarted (--surge)\n"),
        "{}",
        d.stdout
    );
    assert_eq!(c.count("create", "pods", "eviction"), 0, "nothing evicted");
    assert_eq!(c.count("patch", "deployments", ""), 1);
    let solo = deployment(&c, "solo").await;
    assert!(template_annotation(&solo, "kubectl.kubernetes.io/restartedAt").is_some());
    let ann = solo.metadata.annotations.clone().unwrap();
    assert!(ann.contains_key("kdrain.io/surged-at"), "{ann:?}");
    assert_eq!(ann["kdrain.io/surged-from"], "n1");
    assert!(c.pods_on("n1").await.is_empty());
    let on_n2 = c.pods_on("n2").await;
    assert_eq!(
        on_n2.iter().filter(|p| p.contains("solo-")).count(),
        1,
        "{on_n2:?}"
    );
    // the other Deployment was not asked about: untouched
    let other = deployment(&c, "other").await;
    assert_eq!(
        template_annotation(&other, "kubectl.kubernetes.io/restartedAt"),
        None
    );
    assert!(
        !other
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("kdrain.io/surged-at")
    );
}

#[tokio::test]
async fn what_cannot_surge_is_named_and_nothing_changes() {
    let c = cluster(WITH_DB).await;
    c.sim.reset_requests();
    let d = c.run(&["drain", "n1", "--surge", "shop/db"]).await;
    assert_ne!(d.code, 0);
    assert!(
        d.stderr.contains("cannot surge StatefulSet shop/db: a StatefulSet cannot surge: it starts a pod's replacement only once the pod is gone"),
        "{}",
        d.stderr
    );
    assert_eq!(c.all_writes(), Vec::<String>::new());
    let p = c.run(&["plan", "n1", "--surge", "shop/nothing"]).await;
    assert!(
        p.stdout
            .contains("error: cannot surge shop/nothing: no pod of it is on the nodes to drain\n"),
        "{}",
        p.stdout
    );

    // a strategy that could go below its replicas
    let c = cluster(SOLO).await;
    let patch = serde_json::json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}}});
    Api::<Deployment>::namespaced(c.client(), "shop")
        .patch("solo", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    c.sim.reset_requests();
    let d = c.run(&["drain", "n1", "--surge", "shop/solo"]).await;
    assert_ne!(d.code, 0);
    assert!(
        d.stderr.contains("cannot surge Deployment shop/solo: its rollout could go below its 1 replicas (maxSurge 0, maxUnavailable 1); set maxSurge 1 and maxUnavailable 0"),
        "{}",
        d.stderr
    );
    assert_eq!(c.all_writes(), Vec::<String>::new());
    assert_eq!(
        template_annotation(
            &deployment(&c, "solo").await,
            "kubectl.kubernetes.io/restartedAt"
        ),
        None
    );

    // not namespace/name
    let bad = c.run(&["drain", "n1", "--surge", "solo"]).await;
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains(
            "invalid --surge \"solo\": name a Deployment as namespace/name, such as shop/web"
        ),
        "{}",
        bad.stderr
    );
}
