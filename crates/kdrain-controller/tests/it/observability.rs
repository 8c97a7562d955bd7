//! Metrics after a drain, served over HTTP; Kubernetes Events on the NodeDrain and its Node,
//! aggregated (one per budget and needs/has, not one per retry or per pod).

use std::time::Duration;

use k8s_openapi::api::events::v1::Event as K8sEvent;
use kdrain_controller::Phase;
use kdrain_controller::server::{self, Health};
use kube::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Cluster;

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let code = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_after_a_drain() {
    let c = Cluster::start(
        r#"
nodes: [{name: n1}, {name: n2}, {name: n3}]
workloads:
  - {kind: Deployment, name: web, namespace: shop, replicas: 3, nodes: [n1], terminationSeconds: 0.2, readySeconds: 0.3}
pdbs:
  - {name: web, namespace: shop, selector: {app: web}, maxUnavailable: 1}
"#,
    )
    .await;
    let ready = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let listener = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let health = Health {
        metrics: c.metrics.clone(),
        ready,
    };
    let serving = tokio::spawn(server::serve(listener, health));
    c.create("m", "{nodeNames: [n1]}").await.unwrap();
    c.wait_phase("m", Phase::Drained).await;
    let (code, text) = http_get(addr, "/metrics").await;
    assert_eq!(code, 200);
    assert_eq!(
        value(&text, "kdrain_drains_total{result=\"drained\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "kdrain_evictions_total{code=\"201\"}"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "kdrain_drain_duration_seconds_count"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "kdrain_blocked_pods{cause=\"Budget\"}"),
        Some(0.0),
        "{text}"
    );
    assert!(value(&text, "kdrain_drain_duration_seconds_sum").unwrap() > 0.0);
    assert_eq!(value(&text, "kdrain_active_drains"), Some(1.0), "{text}");
    assert_eq!(http_get(addr, "/healthz").await, (200, "ok".into()));
    assert_eq!(http_get(addr, "/readyz").await, (200, "ok".into()));
    serving.abort();
    c.shutdown().await;
}

#[tokio::test]
async fn events_are_aggregated_not_one_per_retry() {
    let c = Cluster::start(
        r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, namespace: shop, replicas: 4, nodes: [n1], terminationSeconds: 0.1, readySeconds: 300}
pdbs:
  - {name: web, namespace: shop, selector: {app: web}, minAvailable: 3}
"#,
    )
    .await;
    c.create("blocked", "{nodeNames: [n1]}").await.unwrap();
    c.wait("blocked", "blocked", |nd| {
        nd.status.as_ref().is_some_and(|s| s.blockers.len() == 3)
    })
    .await;
    // the dispatcher probes a budget that allows nothing every 5 s: let it be refused twice
    let deadline = tokio::time::Instant::now() + crate::LIMIT;
    while c.requests("create", "pods", "eviction", Some(429)) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the budget was not probed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events: Vec<K8sEvent> = Api::<K8sEvent>::namespaced(c.sim.client(), "default")
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    let about = |kind: &str, name: &str, reason: &str| -> Vec<&K8sEvent> {
        events
            .iter()
            .filter(|e| {
                e.regarding.as_ref().is_some_and(|r| {
                    r.kind.as_deref() == Some(kind) && r.name.as_deref() == Some(name)
                }) && e.reason.as_deref() == Some(reason)
            })
            .collect()
    };
    let blocked = about("NodeDrain", "blocked", "BlockedByBudget");
    let notes: Vec<String> = blocked.iter().filter_map(|e| e.note.clone()).collect();
    // one Event per budget and needs/has (the counts change once, when the first eviction's
    // pod stops counting as healthy), not one per blocked pod (3) or per refused probe
    let counts: std::collections::BTreeSet<String> = notes
        .iter()
        .map(|n| {
            n.split_once("waits: ")
                .map(|(_, c)| c.to_string())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(counts.len(), notes.len(), "{notes:#?}");
    assert!(notes.len() <= 2, "{notes:#?}");
    assert!(
        notes
            .iter()
            .any(|n| n
                .contains("The disruption budget web needs 3 healthy pods and has 3 currently")),
        "{notes:#?}"
    );
    assert_eq!(blocked[0].type_.as_deref(), Some("Warning"));
    assert_eq!(about("NodeDrain", "blocked", "Planned").len(), 1);
    assert_eq!(about("NodeDrain", "blocked", "DrainStarted").len(), 1);
    let cordoned = about("Node", "n1", "Cordoned");
    assert_eq!(cordoned.len(), 1);
    assert_eq!(
        cordoned[0].related.as_ref().and_then(|r| r.name.as_deref()),
        Some("blocked")
    );
    assert_eq!(
        cordoned[0].reporting_controller.as_deref(),
        Some(kdrain_controller::recorder::CONTROLLER)
    );
    c.shutdown().await;
}
