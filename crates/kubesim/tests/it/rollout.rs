//! Deployment rollouts: a changed pod template makes a new ReplicaSet, scaled up within
//! maxSurge while the old one goes down within maxUnavailable and readiness; `kubectl rollout
//! restart` and `kubectl rollout status` work, as on a real cluster.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};

use crate::common::sim;
use crate::kubectl::Kubectl;

fn scenario(replicas: u32) -> String {
    format!(
        "nodes: [{{name: n1}}, {{name: n2}}, {{name: n3}}]\nworkloads:\n  - {{kind: Deployment, name: web, replicas: {replicas}, labels: {{app: web}}, readySeconds: 0.3, terminationSeconds: 0.2}}\n"
    )
}

/// Pods of the Deployment not being deleted: (all, Ready).
fn counts(pods: &[Pod]) -> (usize, usize) {
    let live: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let ready = live
        .iter()
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count();
    (live.len(), ready)
}

/// Watches the pods (by polling) until `done` is set: the most live pods and the fewest Ready
/// ones seen.
fn observe(pods: Api<Pod>, done: Arc<AtomicBool>) -> tokio::task::JoinHandle<(usize, usize)> {
    tokio::spawn(async move {
        let (mut most, mut fewest_ready) = (0, usize::MAX);
        while !done.load(Ordering::SeqCst) {
            let l = pods
                .list(&ListParams::default().labels("app=web"))
                .await
                .unwrap();
            let (live, ready) = counts(&l.items);
            most = most.max(live);
            fewest_ready = fewest_ready.min(ready);
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        (most, fewest_ready)
    })
}

async fn replica_sets(s: &kubesim::Sim) -> BTreeMap<String, (i32, String)> {
    Api::<ReplicaSet>::default_namespaced(s.client())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|rs| {
            let rev = rs.metadata.annotations.clone().unwrap_or_default()
                ["deployment.kubernetes.io/revision"]
                .clone();
            (
                rs.metadata.name.unwrap(),
                (rs.spec.replicas.unwrap_or(0), rev),
            )
        })
        .collect()
}

#[tokio::test]
async fn rollout_restart_surges_one_pod_and_never_goes_below_the_replicas() {
    // 3 replicas, the API's defaults: maxSurge 25% (1), maxUnavailable 25% (0)
    let s = sim(&scenario(3)).await;
    let k = Kubectl::new(&s);
    let pods: Api<Pod> = Api::default_namespaced(s.client());
    let before: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = observe(pods.clone(), done.clone());
    let r = k.run(&["rollout", "restart", "deployment/web"]).await;
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "deployment.apps/web restarted\n"),
        "{}",
        r.stderr
    );
    let st = k
        .run(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    done.store(true, Ordering::SeqCst);
    assert_eq!(st.code, 0, "{}\n{}", st.stdout, st.stderr);
    assert!(
        st.stdout
            .ends_with("deployment \"web\" successfully rolled out\n"),
        "{}",
        st.stdout
    );
    let (most, fewest_ready) = watcher.await.unwrap();
    assert!(most <= 4, "at most replicas + maxSurge pods: {most}");
    assert!(
        fewest_ready >= 3,
        "never fewer Ready pods than replicas: {fewest_ready}"
    );

    let sets = replica_sets(&s).await;
    assert_eq!(sets.len(), 2, "{sets:?}");
    let mut by_rev: Vec<(String, i32)> = sets.values().map(|(r, v)| (v.clone(), *r)).collect();
    by_rev.sort();
    assert_eq!(by_rev, [("1".to_string(), 0), ("2".to_string(), 3)]);
    let d = Api::<Deployment>::default_namespaced(s.client())
        .get("web")
        .await
        .unwrap();
    assert_eq!(
        d.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "2"
    );
    let restarted_at =
        d.spec.template.metadata.unwrap().annotations.unwrap()["kubectl.kubernetes.io/restartedAt"]
            .clone();
    let status = d.status.unwrap();
    assert_eq!(
        (
            status.replicas,
            status.updated_replicas,
            status.available_replicas
        ),
        (Some(3), Some(3), Some(3))
    );
    // every pod is new, carries the annotation and the new ReplicaSet's hash
    let after = pods.list(&ListParams::default()).await.unwrap().items;
    let live: Vec<&Pod> = after
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    assert_eq!(live.len(), 3);
    let new_rs = sets.iter().find(|(_, (r, _))| *r == 3).unwrap().0;
    for p in live {
        assert!(!before.contains(p.metadata.name.as_ref().unwrap()));
        assert_eq!(
            p.metadata.annotations.as_ref().unwrap()["kubectl.kubernetes.io/restartedAt"],
            restarted_at
        );
        let owner = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(&owner.name, new_rs);
    }
}

#[tokio::test]
async fn a_template_patched_with_the_kube_client_rolls_one_replica_ready_before_the_old_goes() {
    let s = sim(&scenario(1)).await;
    let deployments: Api<Deployment> = Api::default_namespaced(s.client());
    let pods: Api<Pod> = Api::default_namespaced(s.client());
    let done = Arc::new(AtomicBool::new(false));
    let watcher = observe(pods.clone(), done.clone());
    let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}]}}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    let k = Kubectl::new(&s);
    let st = k
        .run(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    done.store(true, Ordering::SeqCst);
    assert_eq!(st.code, 0, "{}\n{}", st.stdout, st.stderr);
    let (most, fewest_ready) = watcher.await.unwrap();
    // maxSurge 25% of 1 rounds up to 1, maxUnavailable 25% rounds down to 0
    assert_eq!(most, 2, "the new pod runs beside the old one");
    assert_eq!(
        fewest_ready, 1,
        "the old pod goes only once the new one is Ready"
    );
    let live: Vec<Pod> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    assert_eq!(live.len(), 1);
    assert_eq!(
        live[0].spec.as_ref().unwrap().containers[0]
            .image
            .as_deref(),
        Some("registry.k8s.io/pause:3.9")
    );
    // Recreate: the old pod is gone before the new one starts
    let patch =
        serde_json::json!({"spec": {"strategy": {"type": "Recreate", "rollingUpdate": null}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = observe(pods.clone(), done.clone());
    let r = k.run(&["rollout", "restart", "deployment/web"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let st = k
        .run(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    done.store(true, Ordering::SeqCst);
    assert_eq!(st.code, 0, "{}\n{}", st.stdout, st.stderr);
    let (most, _) = watcher.await.unwrap();
    assert_eq!(most, 1, "Recreate never runs two");
    assert_eq!(replica_sets(&s).await.len(), 3);
}
