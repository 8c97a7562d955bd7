//! kubectl's filters and flags, with kubectl's meaning and texts.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kdrain::{Action, DrainError, DrainOptions, DryRun, Event, NodeOutcome, PodOutcome};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

use crate::*;

const MIXED: &str = r#"
nodes:
  - name: n1
  - name: n2
workloads:
  - {kind: Deployment, name: web, replicas: 2, nodes: [n1], terminationSeconds: 0.2, readySeconds: 0.2}
  - {kind: Deployment, name: cache, replicas: 1, nodes: [n1], emptyDir: true, terminationSeconds: 0.2, readySeconds: 0.2}
  - {kind: Pod, name: bare, nodes: [n1], terminationSeconds: 0.2}
  - {kind: DaemonSet, name: fluentd, namespace: kube-system, readySeconds: 0.2}
mirrorPods:
  - {name: etcd-n1, node: n1}
"#;

fn name_of(p: &Pod) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or(""),
        p.metadata.name.as_deref().unwrap_or("")
    )
}

async fn named(sim: &kubesim::Sim, node: &str, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = pods_on(sim, node)
        .await
        .iter()
        .map(name_of)
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn kubectl_defaults_refuse_bare_emptydir_and_daemonset_pods() {
    let sim = sim(MIXED).await;
    let bare = named(&sim, "n1", "default/bare").await.join(", ");
    let cache = named(&sim, "n1", "default/cache").await.join(", ");
    let ds = named(&sim, "n1", "kube-system/fluentd").await.join(", ");
    let (res, events) = drain(&sim, fast(), &["n1"]).await;
    let err = res.expect_err("kubectl refuses");
    assert_eq!(err.kind(), kdrain::ErrorKind::PodsLeft);
    let DrainError::PlanRefused { errors, .. } = err else {
        panic!("not a plan refusal: {err}")
    };
    assert_eq!(
        errors,
        vec![
            format!(
                "cannot delete cannot delete Pods that declare no controller (use --force to override): {bare}"
            ),
            format!(
                "cannot delete Pods with local storage (use --delete-emptydir-data to override): {cache}"
            ),
            format!(
                "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): {ds}"
            ),
        ]
    );
    // refused by the plan, before any change: nothing evicted, and (unlike kubectl, which
    // cordons first) the node is not cordoned
    assert_eq!(count(&sim, "create", "pods", "eviction"), 0);
    assert_eq!(count(&sim, "patch", "nodes", ""), 0);
    assert!(!kdrain::cordon::is_cordoned(&node(&sim, "n1").await));
    assert!(!events.iter().any(|e| matches!(e, Event::Cordoned { .. })));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Planned { plan } if !plan.can_complete()))
    );
    no_violations(&sim);
}

#[tokio::test]
async fn flags_drain_everything_but_daemonset_and_mirror_pods() {
    let sim = sim(MIXED).await;
    let (res, events) = drain(&sim, all_flags(), &["n1"]).await;
    let report = res.expect("drained");
    assert!(report.succeeded());
    let warning = events
        .iter()
        .find_map(|e| match e {
            Event::Warning { node, message } if node == "n1" => Some(message.clone()),
            _ => None,
        })
        .expect("a warning");
    let bare = named(&sim, "n2", "default/bare").await;
    assert!(bare.is_empty(), "bare pods are not recreated");
    assert!(
        warning.starts_with("deleting Pods that declare no controller: default/bare"),
        "{warning}"
    );
    assert!(
        warning.contains("; ignoring DaemonSet-managed Pods: kube-system/fluentd-"),
        "{warning}"
    );
    let left = pod_names_on(&sim, "n1").await;
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().any(|n| n == "etcd-n1"));
    assert!(left.iter().any(|n| n.starts_with("fluentd-")));
    let n = &report.nodes[0];
    assert_eq!(n.outcome, NodeOutcome::Drained);
    assert_eq!(
        n.pods
            .iter()
            .filter(|p| p.outcome == PodOutcome::Gone)
            .count(),
        4
    );
    assert_eq!(
        n.pods
            .iter()
            .filter(|p| p.outcome == PodOutcome::Skipped)
            .count(),
        2
    );
    assert!(
        n.pods
            .iter()
            .filter(|p| p.action == Action::Evict)
            .all(|p| p.attempts == 1 && p.gone.is_some())
    );
    assert_eq!(count(&sim, "create", "pods", "eviction"), 4);
    assert_eq!(count(&sim, "get", "daemonsets", ""), 1);
    let n1 = node(&sim, "n1").await;
    assert!(kdrain::cordon::is_cordoned(&n1) && kdrain::cordon::cordoned_by_kdrain(&n1));
    no_violations(&sim);
}

#[tokio::test]
async fn pod_selector_limits_the_drain() {
    let sim = sim(MIXED).await;
    let opts = DrainOptions {
        pod_selector: Some("app=web".into()),
        ..fast()
    };
    let (res, _) = drain(&sim, opts, &["n1"]).await;
    let report = res.expect("drained: only web pods are considered");
    assert_eq!(report.nodes[0].pods.len(), 2);
    assert_eq!(count(&sim, "create", "pods", "eviction"), 2);
    assert!(named(&sim, "n1", "default/web").await.is_empty());
    assert_eq!(named(&sim, "n1", "default/bare").await.len(), 1);
    no_violations(&sim);
    let bad = DrainOptions {
        pod_selector: Some("app in (".into()),
        ..fast()
    };
    let (res, _) = drain(&sim, bad, &["n1"]).await;
    assert_eq!(
        res.expect_err("bad selector").kind(),
        kdrain::ErrorKind::BadInput
    );
}

const OPT_OUTS: &str = r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: keep, replicas: 1, nodes: [n1], podAnnotations: {cluster-autoscaler.kubernetes.io/safe-to-evict: "false"}, terminationSeconds: 0.1, readySeconds: 0.1}
  - {kind: Deployment, name: karp, replicas: 1, nodes: [n1], podAnnotations: {karpenter.sh/do-not-disrupt: "true"}, terminationSeconds: 0.1, readySeconds: 0.1}
"#;

#[tokio::test]
async fn opt_out_annotations_block_unless_overridden() {
    let sim = sim(OPT_OUTS).await;
    let (res, _) = drain(&sim, fast(), &["n1"]).await;
    let DrainError::PlanRefused { errors, .. } = res.expect_err("opt-outs block") else {
        panic!()
    };
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().any(|e| e.starts_with(
        "cannot delete Pods annotated cluster-autoscaler.kubernetes.io/safe-to-evict=false (use --override-opt-outs to override): default/keep-"
    )));
    assert!(errors.iter().any(|e| e.starts_with("cannot delete Pods annotated karpenter.sh/do-not-disrupt=true")));
    assert_eq!(count(&sim, "create", "pods", "eviction"), 0);
    let (res, _) = drain(
        &sim,
        DrainOptions {
            override_opt_outs: true,
            ..fast()
        },
        &["n1"],
    )
    .await;
    res.expect("overridden");
    assert_eq!(count(&sim, "create", "pods", "eviction"), 2);
    no_violations(&sim);
}

#[tokio::test]
async fn capi_skip_and_wait_completed() {
    let sim = sim(
        r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: skipme, replicas: 1, nodes: [n1], podAnnotations: {cluster.x-k8s.io/drain: skip}}
  - {kind: Deployment, name: web, replicas: 1, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.1}
"#,
    )
    .await;
    let (res, events) = drain(&sim, fast(), &["n1"]).await;
    let report = res.expect("skip does not block");
    let skipped: Vec<_> = report.nodes[0]
        .pods
        .iter()
        .filter(|p| p.action == Action::Skip)
        .collect();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].pod.name.starts_with("skipme-"));
    assert!(events.iter().any(|e| matches!(e, Event::Warning { message, .. } if message.starts_with("skipping Pods labelled cluster.x-k8s.io/drain=skip: default/skipme-"))));
    assert_eq!(named(&sim, "n1", "default/skipme").await.len(), 1);
    assert_eq!(count(&sim, "create", "pods", "eviction"), 1);

    // wait-completed: never evicted; the drain waits until the pod completes
    let sim = sim_with_waiter().await;
    let api: Api<Pod> = Api::namespaced(sim.client(), "default");
    let (d, _rx) = drainer(&sim, fast());
    let run = tokio::spawn(async move { bounded(d.drain(&["n1".to_string()])).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!run.is_finished(), "waits for the pod to complete");
    let body = serde_json::json!({"status": {"phase": "Succeeded"}});
    api.patch_status("job", &PatchParams::default(), &Patch::Merge(&body))
        .await
        .expect("complete the job");
    let report = run.await.unwrap().expect("drained once the pod completed");
    let job = report.nodes[0]
        .pods
        .iter()
        .find(|p| p.pod.name == "job")
        .unwrap();
    assert_eq!(
        (job.action, &job.outcome, job.attempts),
        (Action::Wait, &PodOutcome::Skipped, 0)
    );
    assert_eq!(count(&sim, "create", "pods", "eviction"), 0);
    no_violations(&sim);
}

async fn sim_with_waiter() -> kubesim::Sim {
    let sim = sim("nodes: [{name: n1}]").await;
    let api: Api<Pod> = Api::namespaced(sim.client(), "default");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "job", "labels": {"cluster.x-k8s.io/drain": "wait-completed"},
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "j-uid", "controller": true}]},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &pod)
        .await
        .expect("create job pod");
    wait_pods(&sim, "n1", |p| p.iter().all(kdrain::budget::is_ready)).await;
    sim
}

async fn create_pod(sim: &kubesim::Sim, v: serde_json::Value) -> Pod {
    let api: Api<Pod> = Api::namespaced(sim.client(), "default");
    let pod: Pod = serde_json::from_value(v).unwrap();
    api.create(&PostParams::default(), &pod)
        .await
        .expect("create pod")
}

#[tokio::test]
async fn orphaned_daemonset_pods_are_evicted_with_force() {
    let sim = sim("nodes: [{name: n1}]").await;
    create_pod(
        &sim,
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "orphan", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "gone", "uid": "g", "controller": true}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}
        }),
    )
    .await;
    let opts = DrainOptions {
        ignore_daemonsets: true,
        ..fast()
    };
    let (res, _) = drain(&sim, opts, &["n1"]).await;
    let DrainError::PlanRefused { errors, .. } = res.expect_err("orphan without force") else {
        panic!()
    };
    assert_eq!(
        errors,
        vec!["cannot delete daemonsets.apps \"gone\" not found: default/orphan"]
    );
    let opts = DrainOptions {
        ignore_daemonsets: true,
        force: true,
        ..fast()
    };
    let (res, _) = drain(&sim, opts, &["n1"]).await;
    let report = res.expect("orphan evicted with --force");
    assert_eq!(report.nodes[0].pods[0].outcome, PodOutcome::Gone);
    assert!(pods_on(&sim, "n1").await.is_empty());
    // an orphan is no longer a DaemonSet's pod: evicting it (with --force, as kubectl) is no violation
    no_violations(&sim);
}

#[tokio::test]
async fn finished_pods_pass_every_filter() {
    let sim = sim("nodes: [{name: n1}]").await;
    create_pod(
        &sim,
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "done"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}], "volumes": [{"name": "v", "emptyDir": {}}]}
        }),
    )
    .await;
    // let the simulated kubelet start it first, then finish it
    wait_pods(&sim, "n1", |p| p.iter().all(kdrain::budget::is_ready)).await;
    let api: Api<Pod> = Api::namespaced(sim.client(), "default");
    let body = serde_json::json!({"status": {"phase": "Succeeded"}});
    api.patch_status("done", &PatchParams::default(), &Patch::Merge(&body))
        .await
        .expect("finish");
    wait_pods(&sim, "n1", |p| p.iter().all(kdrain::select::is_finished)).await;
    let (res, _) = drain(&sim, fast(), &["n1"]).await;
    let report = res.expect("a finished bare emptyDir pod passes kubectl's filters");
    assert_eq!(report.nodes[0].pods[0].reason, "finished");
    assert!(pods_on(&sim, "n1").await.is_empty());
    no_violations(&sim);
}

#[tokio::test]
async fn client_dry_run_sends_no_write() {
    let sim = sim(MIXED).await;
    let (res, events) = drain(
        &sim,
        DrainOptions {
            dry_run: DryRun::Client,
            ..all_flags()
        },
        &["n1"],
    )
    .await;
    let report = res.expect("dry run");
    assert!(
        report.nodes[0]
            .pods
            .iter()
            .filter(|p| p.action == Action::Evict)
            .all(|p| p.outcome == PodOutcome::DryRun)
    );
    for r in sim.requests() {
        assert!(
            matches!(r.verb.as_str(), "get" | "list" | "watch"),
            "a write was sent: {r:?}"
        );
    }
    assert!(!kdrain::cordon::is_cordoned(&node(&sim, "n1").await));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Cordoned {
            dry_run: DryRun::Client,
            already: false,
            ..
        }
    )));
    assert_eq!(pods_on(&sim, "n1").await.len(), 6);
    no_violations(&sim);
}

#[tokio::test]
async fn server_dry_run_changes_nothing_and_does_not_wait() {
    let sim = sim(MIXED).await;
    let (res, _) = drain(
        &sim,
        DrainOptions {
            dry_run: DryRun::Server,
            ..all_flags()
        },
        &["n1"],
    )
    .await;
    let report = res.expect("server dry run");
    assert_eq!(
        report.nodes[0]
            .pods
            .iter()
            .filter(|p| p.outcome == PodOutcome::DryRun)
            .count(),
        4
    );
    assert_eq!(count(&sim, "create", "pods", "eviction"), 4);
    assert_eq!(count(&sim, "patch", "nodes", ""), 1);
    assert_eq!(count(&sim, "watch", "pods", ""), 0);
    assert!(!kdrain::cordon::is_cordoned(&node(&sim, "n1").await));
    assert_eq!(pods_on(&sim, "n1").await.len(), 6);
    no_violations(&sim);
}

#[tokio::test]
async fn disable_eviction_deletes_and_bypasses_budgets() {
    let sim = sim(
        r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 2, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.1}
pdbs:
  - {name: web, selector: {app: web}, maxUnavailable: 0}
"#,
    )
    .await;
    let (res, _) = drain(&sim, fast(), &["n1"]).await;
    let DrainError::PlanRefused { errors, .. } = res.expect_err("maxUnavailable 0 never passes")
    else {
        panic!()
    };
    assert!(errors[0].contains("maxUnavailable is 0"), "{errors:?}");
    let (res, events) = drain(
        &sim,
        DrainOptions {
            disable_eviction: true,
            ..fast()
        },
        &["n1"],
    )
    .await;
    let report = res.expect("deleted");
    assert!(
        report.nodes[0]
            .pods
            .iter()
            .all(|p| p.action == Action::Delete && p.outcome == PodOutcome::Gone)
    );
    assert_eq!(count(&sim, "delete", "pods", ""), 2);
    assert_eq!(count(&sim, "create", "pods", "eviction"), 0);
    assert_eq!(
        count(&sim, "list", "poddisruptionbudgets", ""),
        1,
        "only the first (refused) drain lists budgets"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::DeleteSent { .. }))
            .count(),
        2
    );
    no_violations(&sim);
}

#[tokio::test]
async fn grace_period_override_is_sent() {
    let sim = sim(
        r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: slow, replicas: 1, nodes: [n1], gracePeriodSeconds: 30, terminationSeconds: 20, readySeconds: 0.1}
"#,
    )
    .await;
    let (res, events) = drain(
        &sim,
        DrainOptions {
            grace_period: Some(1),
            ..fast()
        },
        &["n1"],
    )
    .await;
    res.expect("drained within the overridden grace period");
    let left = events
        .iter()
        .find_map(|e| match e {
            Event::Terminating {
                grace_left_seconds, ..
            } => Some(*grace_left_seconds),
            _ => None,
        })
        .expect("terminating seen");
    assert!(left <= 1.0, "grace left {left}");
    no_violations(&sim);
}

#[tokio::test]
async fn uncordon_on_failure_restores_only_what_kdrain_changed() {
    // The drain fails after the cordon: every eviction is refused (403).
    let sim = sim(r#"
nodes: [{name: n1}, {name: n2, unschedulable: true}, {name: n3}]
workloads:
  - {kind: Deployment, name: web, nodes: [n1, n2], replicas: 2}
faults:
  - {verb: create, resource: pods/eviction, status: 403}
"#)
    .await;
    let opts = DrainOptions {
        uncordon_on_failure: true,
        ..fast()
    };
    let (res, events) = drain(&sim, opts, &["n1", "n2"]).await;
    assert!(matches!(res, Err(DrainError::Forbidden { .. })), "{res:?}");
    assert!(
        !kdrain::cordon::is_cordoned(&node(&sim, "n1").await),
        "kdrain cordoned n1: restored"
    );
    assert!(!kdrain::cordon::cordoned_by_kdrain(&node(&sim, "n1").await));
    assert!(
        kdrain::cordon::is_cordoned(&node(&sim, "n2").await),
        "n2 was cordoned before: left alone"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Uncordoned { node, .. } if node == "n1"))
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Uncordoned { node, .. } if node == "n2"))
    );
    assert_eq!(
        count(&sim, "patch", "nodes", ""),
        2,
        "cordon n1, uncordon n1"
    );
    no_violations(&sim);
}

#[tokio::test]
async fn cordon_and_uncordon_remember_state() {
    let sim = sim("nodes: [{name: n1}]").await;
    let (d, _rx) = drainer(&sim, fast());
    let r = bounded(d.cordon("n1")).await.unwrap();
    assert!(!r.already);
    assert!(bounded(d.cordon("n1")).await.unwrap().already);
    assert!(kdrain::cordon::cordoned_by_kdrain(&node(&sim, "n1").await));
    assert!(!bounded(d.uncordon("n1")).await.unwrap().already);
    let n = node(&sim, "n1").await;
    assert!(!kdrain::cordon::is_cordoned(&n) && !kdrain::cordon::cordoned_by_kdrain(&n));
    assert!(bounded(d.uncordon("n1")).await.unwrap().already);
    assert_eq!(count(&sim, "patch", "nodes", ""), 2);
    let err = bounded(d.cordon("nope")).await.unwrap_err();
    assert!(matches!(err, DrainError::NodeNotFound { .. }));
    assert_eq!(err.kind(), kdrain::ErrorKind::BadInput);
    // a missing node stops a drain before anything changes
    let err = bounded(d.drain(&["n1".into(), "nope".into()]))
        .await
        .unwrap_err();
    assert!(matches!(err, DrainError::NodeNotFound { .. }));
    assert!(!kdrain::cordon::is_cordoned(&node(&sim, "n1").await));
    no_violations(&sim);
}

#[tokio::test]
async fn skip_wait_for_delete_timeout_stops_waiting_for_stuck_pods() {
    let sim = sim("nodes: [{name: n1}]").await;
    create_pod(
        &sim,
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "stuck", "finalizers": ["example.com/hold"]},
            "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 1, "containers": [{"name": "c", "image": "x"}]}
        }),
    )
    .await;
    let opts = DrainOptions {
        force: true,
        skip_wait_for_delete_timeout: Some(Duration::from_secs(1)),
        ..fast()
    };
    let (res, _) = drain(&sim, opts, &["n1"]).await;
    let report = res.expect("the stuck pod is skipped once its deletion is older than 1 s");
    let p = &report.nodes[0].pods[0];
    assert_eq!(p.outcome, PodOutcome::Skipped);
    assert_eq!(p.reason, "deletionTimestamp older than 1 seconds, skipping");
    assert!(p.accepted.is_some());
    assert_eq!(
        pods_on(&sim, "n1").await.len(),
        1,
        "still there, held by its finalizer"
    );
    // without the flag the same pod keeps the drain waiting
    let opts = DrainOptions {
        force: true,
        timeout: Some(Duration::from_secs(1)),
        ..fast()
    };
    let (res, _) = drain(&sim, opts, &["n1"]).await;
    let err = res.expect_err("waits for the stuck pod");
    assert_eq!(
        err.report().unwrap().nodes[0].outcome,
        NodeOutcome::PodsLeft
    );
    no_violations(&sim);
}

#[tokio::test]
async fn chunk_size_pages_pod_lists() {
    let sim = sim(
        r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 5, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.1}
"#,
    )
    .await;
    let (res, _) = drain(
        &sim,
        DrainOptions {
            chunk_size: 2,
            ..fast()
        },
        &["n1"],
    )
    .await;
    let report = res.expect("drained");
    assert_eq!(report.nodes[0].pods.len(), 5);
    // plan: 3 pages; the capacity check's LIST of every pod (5 on n1, none on n2 yet): 3 pages;
    // final check: 1 page (nothing left)
    assert_eq!(count(&sim, "list", "pods", ""), 7, "{:?}", sim.requests());
    assert_eq!(report.nodes[0].requests.get("list pods"), Some(&4));
    no_violations(&sim);
}

#[tokio::test]
async fn seed_policy_drains_what_the_seed_drained_and_nodes_go_one_by_one() {
    let sim = sim(
        r#"
nodes: [{name: n1}, {name: n2}, {name: n3}]
workloads:
  - {kind: Deployment, name: cache, replicas: 2, nodes: [n1, n2], emptyDir: true, terminationSeconds: 0.2, readySeconds: 0.1}
  - {kind: Pod, name: bare, nodes: [n1, n2], replicas: 2, terminationSeconds: 0.2}
  - {kind: DaemonSet, name: agent, namespace: kube-system}
mirrorPods:
  - {name: etcd-n1, node: n1}
"#,
    )
    .await;
    let opts = DrainOptions {
        budget_retry_ceiling: Duration::from_millis(500),
        ..DrainOptions::from_policy(kdrain::Policy::Seed)
    };
    let (res, events) = drain(&sim, opts, &["n1", "n2"]).await;
    let report = res.expect("the seed's choices drain emptyDir and bare pods");
    for n in &report.nodes {
        assert_eq!(
            n.pods
                .iter()
                .filter(|p| p.outcome == PodOutcome::Gone)
                .count(),
            2,
            "{}",
            n.node
        );
    }
    // parallel_nodes = 1: n2's first eviction comes after n1 is drained
    let n1_done = events
        .iter()
        .position(|e| matches!(e, Event::NodeDrained { node, .. } if node == "n1"))
        .unwrap();
    let n2_first = events
        .iter()
        .position(|e| matches!(e, Event::EvictionSent { node, .. } if node == "n2"))
        .unwrap();
    assert!(n1_done < n2_first);
    assert_eq!(
        pod_names_on(&sim, "n1").await.len(),
        2,
        "DaemonSet and mirror pods stay"
    );
    no_violations(&sim);
}
