//! Stopping a drain on request (`Drainer::drain_until`, e.g. on Ctrl-C): nothing is sent
//! afterwards, requests in flight are answered first, and the report names every pod left.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kdrain::{DrainOptions, Event, NodeOutcome, PodOutcome};
use kube::Api;

use crate::*;

type Stopper = tokio::sync::oneshot::Sender<()>;

/// Starts `drain_until` on `nodes`; the drain stops when the returned sender fires (or drops).
fn start(
    sim: &kubesim::Sim,
    opts: DrainOptions,
    nodes: &[&str],
) -> (
    Stopper,
    tokio::task::JoinHandle<Result<kdrain::Report, kdrain::DrainError>>,
    tokio::sync::mpsc::UnboundedReceiver<Event>,
) {
    let (d, rx) = drainer(sim, opts);
    let (tx, stop) = tokio::sync::oneshot::channel::<()>();
    let nodes: Vec<String> = nodes.iter().map(|s| s.to_string()).collect();
    let task = tokio::spawn(async move {
        bounded(d.drain_until(&nodes, async move {
            let _ = stop.await;
        }))
        .await
    });
    (tx, task, rx)
}

async fn until(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event>, f: impl Fn(&Event) -> bool) {
    bounded(async {
        while let Some(e) = rx.recv().await {
            if f(&e) {
                return;
            }
        }
        panic!("events ended before the awaited one");
    })
    .await
}

fn evictions(sim: &kubesim::Sim) -> u64 {
    count(sim, "create", "pods", "eviction")
}

#[tokio::test]
async fn stopping_a_blocked_drain_reports_the_pods_left_and_sends_nothing_more() {
    let sim = sim(r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 2, nodes: [n1], terminationSeconds: 0.1, readySeconds: 120}
pdbs:
  - {name: web, selector: {app: web}, maxUnavailable: 1}
"#)
    .await;
    let (stop, task, mut rx) = start(&sim, fast(), &["n1"]);
    until(&mut rx, |e| {
        matches!(
            e,
            Event::Blocked {
                budget: Some(_),
                ..
            }
        )
    })
    .await;
    stop.send(()).unwrap();
    let err = task.await.unwrap().expect_err("interrupted");
    assert_eq!(
        err.kind(),
        kdrain::ErrorKind::BlockedByBudgets,
        "blocked by a budget when stopped"
    );
    let report = err.report().unwrap();
    assert_eq!(report.nodes[0].outcome, NodeOutcome::BlockedByBudgets);
    let (blocked, others): (Vec<_>, Vec<_>) = report
        .pending()
        .into_iter()
        .partition(|p| p.outcome == PodOutcome::Blocked);
    assert_eq!(blocked.len(), 1, "{report:#?}");
    assert_eq!(blocked[0].blocked_by.as_deref(), Some("web"));
    // the first pod may still be terminating: then it is left too, and says so
    for p in others {
        assert!(p.accepted.is_some());
        assert_eq!(
            p.outcome,
            PodOutcome::Failed {
                error: "interrupted (waiting for it to terminate)".into(),
                kind: kdrain::FailureKind::Interrupted,
            }
        );
    }
    let api: Api<Pod> = Api::namespaced(sim.client(), "default");
    let live = api
        .get(&blocked[0].pod.name)
        .await
        .expect("the pod left exists");
    assert!(live.metadata.deletion_timestamp.is_none());
    let sent = evictions(&sim);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(evictions(&sim), sent, "nothing is sent after the stop");
    assert!(node(&sim, "n1").await.spec.unwrap().unschedulable.unwrap());
    no_violations(&sim);
}

#[tokio::test]
async fn a_stop_before_the_evictions_leaves_every_node_untouched_but_cordoned() {
    let sim = sim(r#"
nodes: [{name: n1}, {name: n2}, {name: n3}]
workloads:
  - {kind: Deployment, name: web, replicas: 4, nodes: [n1, n2]}
"#)
    .await;
    let (d, _rx) = drainer(&sim, fast());
    let nodes = vec!["n1".to_string(), "n2".to_string()];
    let err = bounded(d.drain_until(&nodes, std::future::ready(())))
        .await
        .expect_err("stopped at once");
    let report = err.report().unwrap();
    for n in &report.nodes {
        assert!(
            matches!(&n.outcome, NodeOutcome::Failed { error } if error.contains("interrupted")),
            "{n:#?}"
        );
        assert_eq!(n.pending().count(), 2);
    }
    assert_eq!(evictions(&sim), 0);
    assert_eq!(pods_on(&sim, "n1").await.len(), 2);
    no_violations(&sim);
}

#[tokio::test]
async fn a_stop_with_evictions_in_flight_waits_for_their_answers() {
    let sim = sim(r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 3, nodes: [n1], terminationSeconds: 5, readySeconds: 0.1}
faults:
  - {verb: create, resource: pods/eviction, latencyMs: 800}
"#)
    .await;
    let (stop, task, mut rx) = start(&sim, fast(), &["n1"]);
    until(&mut rx, |e| matches!(e, Event::EvictionSent { .. })).await;
    stop.send(()).unwrap();
    let err = task.await.unwrap().expect_err("interrupted");
    let report = err.report().unwrap();
    let accepted = report.nodes[0]
        .pods
        .iter()
        .filter(|p| p.accepted.is_some())
        .count() as u64;
    assert_eq!(
        accepted,
        count_code(&sim, "create", "pods", "eviction", 201),
        "every eviction the server accepted is in the report: {report:#?}"
    );
    assert!(accepted >= 1);
    for p in report.pending() {
        match &p.outcome {
            PodOutcome::Failed { error, kind } => {
                assert!(error.starts_with("interrupted"), "{error}");
                assert_eq!(*kind, kdrain::FailureKind::Interrupted);
            }
            other => panic!("{other:?}"),
        }
    }
    no_violations(&sim);
}

#[tokio::test]
async fn dropping_a_drain_ends_its_watches_at_once() {
    // Bookmarks every 0.2 s: the server writes to every watch often, so it sees a client that
    // went away within a bookmark instead of at the watch's timeout (290 s).
    let sim = sim(r#"
settings: {bookmarkSeconds: 0.2}
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 2, nodes: [n1], terminationSeconds: 0, readySeconds: 120}
pdbs:
  - {name: web, selector: {app: web}, maxUnavailable: 1}
"#)
    .await;
    let (stop, task, mut rx) = start(&sim, fast(), &["n1"]);
    // The first pod is gone and the second waits for a replacement that is Ready only after
    // 120 s: the watches are quiet, so a watch left running (it ends only when it has a change
    // to report and nobody to report it to) would stay open until its timeout.
    until(&mut rx, |e| matches!(e, Event::Gone { .. })).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // the watches' requests may still be on their way
    bounded(async {
        while sim.open_watches() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(
        sim.open_watches(),
        2,
        "the pod watch of n1 and the budget watch"
    );
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    drop(stop);
    bounded(async {
        while sim.open_watches() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let sent = evictions(&sim);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        evictions(&sim),
        sent,
        "nothing is sent once the drain is dropped"
    );
    assert_eq!(sim.open_watches(), 0);
}
