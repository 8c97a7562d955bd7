//! Every eviction outcome: accepted, 404, replaced under the same name, terminating namespace,
//! injected 500/503/429 faults.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kdrain::{DrainOptions, Event, NodeOutcome, PodOutcome};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use kubesim::Fault;

use crate::*;

fn fault(verb: &str, resource: &str, status: u16, retry_after: Option<u64>) -> Fault {
    Fault {
        verb: Some(verb.into()),
        resource: Some(resource.into()),
        status: Some(status),
        probability: 1.0,
        retry_after_seconds: retry_after,
        ..Fault::default()
    }
}

/// Starts a drain in the background and returns its handle and event receiver.
fn spawn_drain(
    sim: &kubesim::Sim,
    opts: DrainOptions,
    node: &str,
) -> (
    tokio::task::JoinHandle<Result<kdrain::Report, kdrain::DrainError>>,
    tokio::sync::mpsc::UnboundedReceiver<Event>,
) {
    let (d, rx) = drainer(sim, opts);
    let nodes = vec![node.to_string()];
    (
        tokio::spawn(async move { bounded(d.drain(&nodes)).await }),
        rx,
    )
}

/// Waits for the first event matching `f`, collecting every event seen on the way.
async fn wait_event(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    seen: &mut Vec<Event>,
    f: impl Fn(&Event) -> bool,
) -> Event {
    bounded(async {
        loop {
            let e = rx.recv().await.expect("events until the match");
            seen.push(e.clone());
            if f(&e) {
                return e;
            }
        }
    })
    .await
}

#[tokio::test]
async fn accepted_evictions_are_followed_to_deletion() {
    let sim = sim(
        r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 3, nodes: [n1], terminationSeconds: 0.3, gracePeriodSeconds: 5, readySeconds: 0.1}
"#,
    )
    .await;
    let (res, events) = drain(&sim, fast(), &["n1"]).await;
    let report = res.expect("drained");
    for p in &report.nodes[0].pods {
        assert_eq!(p.outcome, PodOutcome::Gone);
        assert_eq!(p.attempts, 1);
        let (a, b, c) = (
            p.first_attempt.unwrap(),
            p.accepted.unwrap(),
            p.gone.unwrap(),
        );
        assert!(a <= b && b <= c);
    }
    for kind in ["evicted", "terminating", "gone"] {
        let n = events
            .iter()
            .filter(|e| match (kind, e) {
                ("evicted", Event::Evicted { .. }) => true,
                (
                    "terminating",
                    Event::Terminating {
                        grace_left_seconds, ..
                    },
                ) => *grace_left_seconds <= 5.0,
                ("gone", Event::Gone { .. }) => true,
                _ => false,
            })
            .count();
        assert_eq!(n, 3, "{kind}");
    }
    assert!(matches!(events.last(), Some(Event::Done { .. })));
    assert_eq!(count(&sim, "get", "pods", ""), 0, "no per-pod polling");
    no_violations(&sim);
}

#[tokio::test]
async fn a_404_is_never_taken_for_gone_while_a_fresh_list_shows_the_pod() {
    let sim = sim(r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 1, nodes: [n1]}
"#)
    .await;
    sim.set_faults(vec![fault("create", "pods/eviction", 404, None)]);
    let opts = DrainOptions {
        timeout: Some(Duration::from_secs(2)),
        ..fast()
    };
    let (res, _) = drain(&sim, opts, &["n1"]).await;
    let err = res.expect_err("the pod is still there");
    let report = err.report().unwrap();
    assert_eq!(report.nodes[0].outcome, NodeOutcome::PodsLeft);
    assert!(
        report.nodes[0].pods[0].attempts >= 2,
        "re-sent after the fresh list showed it"
    );
    assert_eq!(pods_on(&sim, "n1").await.len(), 1);
    assert_eq!(err.kind(), kdrain::ErrorKind::PodsLeft);
    no_violations(&sim);
}

#[tokio::test]
async fn a_pod_replaced_under_the_same_name_is_drained_by_uid() {
    let sim = sim(
        r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: slow, replicas: 1, nodes: [n1], terminationSeconds: 1.5, readySeconds: 0.1}
"#,
    )
    .await;
    // a critical bare pod: its tier waits until the slow pod is gone
    let api: Api<Pod> = Api::namespaced(sim.client(), "default");
    let spec = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "db-0"},
        "spec": {"nodeName": "n1", "priorityClassName": "system-cluster-critical", "containers": [{"name": "c", "image": "x"}]}
    });
    let first = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(spec.clone()).unwrap(),
        )
        .await
        .unwrap();
    let (run, mut rx) = spawn_drain(
        &sim,
        DrainOptions {
            force: true,
            ..fast()
        },
        "n1",
    );
    let mut seen = Vec::new();
    wait_event(&mut rx, &mut seen, |e| matches!(e, Event::Planned { .. })).await;
    // replace db-0 as a StatefulSet controller would: same name, new UID, same node
    api.delete("db-0", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let second = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(spec).unwrap(),
        )
        .await
        .unwrap();
    assert_ne!(first.metadata.uid, second.metadata.uid);
    let report = run.await.unwrap().expect("drained");
    let db: Vec<_> = report.nodes[0]
        .pods
        .iter()
        .filter(|p| p.pod.name == "db-0")
        .collect();
    assert_eq!(db.len(), 2, "both UIDs are tracked");
    assert!(db.iter().all(|p| p.outcome == PodOutcome::Gone));
    assert_eq!(db[0].pod.uid, first.metadata.uid.clone().unwrap());
    assert_eq!(
        db[0].attempts, 0,
        "the first one was gone before its tier started"
    );
    assert_eq!(db[1].attempts, 1);
    assert!(pods_on(&sim, "n1").await.is_empty());
    no_violations(&sim);
}

#[tokio::test]
async fn a_terminating_namespace_is_waited_for() {
    // the namespace controller deletes the pod gracefully (it takes 1 s to stop); kdrain's
    // eviction is refused with 403 NamespaceTerminating and it follows the pod until it is gone
    let sim = sim(r#"
nodes: [{name: n1}, {name: n2}]
namespaces: [{name: shop, terminating: true}]
workloads:
  - {kind: Deployment, name: cart, namespace: shop, replicas: 1, nodes: [n1], terminationSeconds: 1}
"#)
    .await;
    let (run, _rx) = spawn_drain(&sim, fast(), "n1");
    let report = run
        .await
        .unwrap()
        .expect("drained once the namespace controller removed the pod");
    assert_eq!(report.nodes[0].pods.len(), 1);
    assert_eq!(report.nodes[0].pods[0].outcome, PodOutcome::Gone);
    assert!(count_code(&sim, "create", "pods", "eviction", 403) >= 1);
    assert_eq!(count_code(&sim, "create", "pods", "eviction", 201), 0);
    assert_eq!(
        count(&sim, "delete", "pods", ""),
        0,
        "nobody deleted it by hand"
    );
    no_violations(&sim);
}

async fn drain_through_fault(status: u16, retry_after: Option<u64>) -> (kubesim::Sim, Vec<Event>) {
    let sim = sim(
        r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 2, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.1}
"#,
    )
    .await;
    sim.set_faults(vec![fault("create", "pods/eviction", status, retry_after)]);
    let (run, mut rx) = spawn_drain(&sim, fast(), "n1");
    let mut seen = Vec::new();
    wait_event(&mut rx, &mut seen, |e| matches!(e, Event::Blocked { .. })).await;
    sim.set_faults(Vec::new());
    let report = run.await.unwrap().expect("drained after the fault cleared");
    assert!(report.succeeded());
    while let Ok(e) = rx.try_recv() {
        seen.push(e);
    }
    assert!(count_code(&sim, "create", "pods", "eviction", status) >= 1);
    assert_eq!(count_code(&sim, "create", "pods", "eviction", 201), 2);
    no_violations(&sim);
    (sim, seen)
}

#[tokio::test]
async fn injected_500_503_and_429_are_retried() {
    let (_, ev) = drain_through_fault(500, None).await;
    assert!(ev.iter().any(|e| matches!(e, Event::Blocked { cause, budget: None, .. } if cause.starts_with("error 500"))));
    let (_, ev) = drain_through_fault(503, None).await;
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Blocked { cause, .. } if cause.starts_with("error 503")))
    );
    let (_, ev) = drain_through_fault(429, Some(1)).await;
    let retry = ev
        .iter()
        .find_map(|e| match e {
            Event::Blocked {
                cause,
                retry_in_seconds,
                ..
            } if cause.contains("(429)") => Some(*retry_in_seconds),
            _ => None,
        })
        .expect("a throttled event");
    assert!(retry >= 1.0, "Retry-After honoured: {retry}");
}

fn latency(verb: &str, resource: &str, ms: u64) -> Fault {
    Fault {
        verb: Some(verb.into()),
        resource: Some(resource.into()),
        status: None,
        probability: 1.0,
        latency_ms: Some(ms),
        ..Fault::default()
    }
}

#[tokio::test]
async fn a_409_on_the_uid_precondition_means_replaced() {
    let sim = sim("nodes: [{name: n1}]").await;
    let api: Api<Pod> = Api::namespaced(sim.client(), "default");
    let spec = |name: &str| {
        serde_json::from_value::<Pod>(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 1, "containers": [{"name": "c", "image": "x"}]}
        }))
        .unwrap()
    };
    api.create(&PostParams::default(), &spec("a-first"))
        .await
        .unwrap();
    let old = api
        .create(&PostParams::default(), &spec("db-0"))
        .await
        .unwrap();
    // evictions take 1 s and the watch starts 3 s late, so db-0's eviction goes out with the
    // UID of the plan while the test replaces the pod
    sim.set_faults(vec![
        latency("create", "pods/eviction", 1000),
        latency("watch", "pods", 3000),
    ]);
    let opts = DrainOptions {
        force: true,
        max_concurrent_evictions: 1,
        ..fast()
    };
    let (run, mut rx) = spawn_drain(&sim, opts, "n1");
    let mut seen = Vec::new();
    wait_event(
        &mut rx,
        &mut seen,
        |e| matches!(e, Event::EvictionSent { pod, .. } if pod.name == "a-first"),
    )
    .await;
    api.delete("db-0", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let new = api
        .create(&PostParams::default(), &spec("db-0"))
        .await
        .unwrap();
    let report = run.await.unwrap().expect("drained");
    assert_eq!(
        count_code(&sim, "create", "pods", "eviction", 409),
        1,
        "{:?}",
        sim.requests()
    );
    let db: Vec<_> = report.nodes[0]
        .pods
        .iter()
        .filter(|p| p.pod.name == "db-0")
        .collect();
    assert_eq!(db.len(), 2);
    assert_eq!(Some(&db[0].pod.uid), old.metadata.uid.as_ref());
    assert!(db[0].reason.contains("replaced"), "{}", db[0].reason);
    assert_eq!(Some(&db[1].pod.uid), new.metadata.uid.as_ref());
    assert!(
        db.iter()
            .all(|p| p.outcome == PodOutcome::Gone && p.attempts == 1)
    );
    assert!(pods_on(&sim, "n1").await.is_empty());
    no_violations(&sim);
}

#[tokio::test]
async fn two_budgets_appearing_during_the_drain_block_until_one_goes() {
    let sim = sim(
        r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 1, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.1}
"#,
    )
    .await;
    sim.set_faults(vec![latency("create", "pods/eviction", 500)]);
    let (run, mut rx) = spawn_drain(&sim, fast(), "n1");
    let mut seen = Vec::new();
    wait_event(&mut rx, &mut seen, |e| {
        matches!(e, Event::EvictionSent { .. })
    })
    .await;
    let pdbs: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
        Api::namespaced(sim.client(), "default");
    for name in ["web", "web-too"] {
        let pdb = serde_json::from_value(serde_json::json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": 1}
        }))
        .unwrap();
        pdbs.create(&PostParams::default(), &pdb).await.unwrap();
    }
    // once the budgets are known, the Blocked event names both
    wait_event(
        &mut rx,
        &mut seen,
        |e| matches!(e, Event::Blocked { budget: Some(b), .. } if b == "web, web-too"),
    )
    .await;
    assert!(seen.iter().any(|e| matches!(e, Event::Blocked { cause, .. } if cause.contains("more than one disruption budget"))));
    sim.set_faults(Vec::new());
    pdbs.delete("web-too", &DeleteParams::default())
        .await
        .unwrap();
    let report = run.await.unwrap().expect("drained once one budget went");
    assert_eq!(report.nodes[0].pods[0].outcome, PodOutcome::Gone);
    assert!(count_code(&sim, "create", "pods", "eviction", 500) >= 1);
    no_violations(&sim);
}

#[tokio::test]
async fn an_eviction_answered_after_the_pod_is_gone_is_reported_before_the_node_is_drained() {
    // The pods stop at once, and the server's answers to evictions come 1.5 s late: the
    // watch sees each pod go before kdrain hears that its eviction was accepted.
    let sim = sim(r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 2, nodes: [n1, n1], terminationSeconds: 0}
faults:
  - {verb: create, resource: pods/eviction, answerLatencyMs: 1500}
"#)
    .await;
    let (res, events) = drain(&sim, fast(), &["n1"]).await;
    let report = res.expect("drained");
    let pods = &report.nodes[0].pods;
    assert_eq!(pods.len(), 2, "{pods:#?}");
    for p in pods {
        assert_eq!(p.outcome, PodOutcome::Gone, "{p:#?}");
        assert!(p.accepted.is_some(), "the answer is in the report: {p:#?}");
    }
    let drained = events
        .iter()
        .position(|e| matches!(e, Event::NodeDrained { .. }))
        .expect("node drained");
    let evicted: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Event::Evicted { .. }))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(evicted.len(), 2, "{events:#?}");
    assert!(
        evicted.iter().all(|&i| i < drained),
        "every eviction's answer comes before node drained: {events:#?}"
    );
    assert_eq!(count(&sim, "create", "pods", "eviction"), 2);
    no_violations(&sim);
}
