//! Metrics after a drain, served over HTTP; Kubernetes Events on the NodeDrain and its Node,
//! aggregated (one per budget and needs/has, not one per retry or per pod).

use std::collections::BTreeSet;

use anyhow::Result;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kdrain_controller::Phase;
use kube::Api;

use crate::support::{create, evictions, no_findings, until, wait, wait_phase};
use crate::{Cluster, check, check_eq};

pub(crate) const METRICS: &str = r#"
nodes:
  - {name: metrics-1, labels: {case: metrics}}
  - {name: metrics-2, labels: {case: metrics}}
  - {name: metrics-3, labels: {case: metrics}}
workloads:
  - {kind: Deployment, name: web, namespace: metrics, replicas: 3, nodes: [metrics-1], nodeSelector: {case: metrics}, terminationSeconds: 0.2, readySeconds: 0.3}
pdbs:
  - {name: web, namespace: metrics, selector: {app: web}, maxUnavailable: 1}
"#;

/// The value of `series` (name and labels, as printed) on a metrics page.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

pub(crate) async fn metrics_after_a_drain<C: Cluster>(c: &C) -> Result<String> {
    c.start_controller("metrics-a").await?;
    let result = metrics_with(c).await;
    c.stop_controller("metrics-a").await?;
    result
}

async fn metrics_with<C: Cluster>(c: &C) -> Result<String> {
    until("metrics-a leading", || async {
        c.http_get("metrics-a", "/metrics")
            .await
            .is_ok_and(|(_, text)| value(&text, "kdrain_leader") == Some(1.0))
    })
    .await?;
    create(c, "metrics-drain", "{nodeNames: [metrics-1]}").await?;
    wait_phase(c, "metrics-drain", Phase::Drained).await?;
    // A Drained NodeDrain rests: its worker leaves kdrain_active_drains once the stage's step
    // has returned, just after the status says Drained.
    until("kdrain_active_drains back to 0", || async {
        c.http_get("metrics-a", "/metrics")
            .await
            .is_ok_and(|(_, text)| value(&text, "kdrain_active_drains") == Some(0.0))
    })
    .await?;
    let (code, text) = c.http_get("metrics-a", "/metrics").await?;
    check_eq!(code, 200);
    let accepted = evictions(c, "metrics", Some(201)).await?;
    for (series, want) in [
        ("kdrain_drains_total{result=\"drained\"}", 1.0),
        ("kdrain_evictions_total{code=\"201\"}", accepted as f64),
        ("kdrain_drain_duration_seconds_count", 1.0),
        ("kdrain_blocked_pods{cause=\"Budget\"}", 0.0),
        ("kdrain_active_drains", 0.0),
        ("kdrain_leader", 1.0),
    ] {
        check_eq!(value(&text, series), Some(want), "{series} in\n{text}");
    }
    check_eq!(accepted, 3);
    check!(
        value(&text, "kdrain_drain_duration_seconds_sum").is_some_and(|s| s > 0.0),
        "no drain duration in\n{text}"
    );
    check_eq!(
        c.http_get("metrics-a", "/healthz").await?,
        (200, "ok".into())
    );
    check_eq!(
        c.http_get("metrics-a", "/readyz").await?,
        (200, "ok".into())
    );
    no_findings(c, "metrics", &["metrics-1"]).await?;
    Ok(text)
}

pub(crate) const EVENTS: &str = r#"
nodes:
  - {name: events-1, labels: {case: events}}
  - {name: events-2, labels: {case: events}}
workloads:
  - {kind: Deployment, name: web, namespace: events, replicas: 4, nodes: [events-1], nodeSelector: {case: events}, terminationSeconds: 0.1, readySeconds: 300}
pdbs:
  - {name: web, namespace: events, selector: {app: web}, minAvailable: 3}
"#;

pub(crate) async fn events_aggregated<C: Cluster>(c: &C) -> Result<String> {
    create(c, "events-blocked", "{nodeNames: [events-1]}").await?;
    wait(c, "events-blocked", "blocked", |nd| {
        nd.status.as_ref().is_some_and(|s| s.blockers.len() == 3)
    })
    .await?;
    // the dispatcher probes a budget that allows nothing every 5 s: let it be refused twice
    until("the budget probed twice", || async {
        evictions(c, "events", Some(429))
            .await
            .is_ok_and(|n| n >= 2)
    })
    .await?;
    let events: Vec<K8sEvent> = Api::<K8sEvent>::namespaced(c.client(), "default")
        .list(&Default::default())
        .await?
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
    let blocked = about("NodeDrain", "events-blocked", "BlockedByBudget");
    let notes: Vec<String> = blocked.iter().filter_map(|e| e.note.clone()).collect();
    // one Event per budget and needs/has (the counts change once, when the first eviction's
    // pod stops counting as healthy), not one per blocked pod (3) or per refused probe
    let counts: BTreeSet<String> = notes
        .iter()
        .map(|n| {
            n.split_once("waits: ")
                .map(|(_, c)| c.to_string())
                .unwrap_or_default()
        })
        .collect();
    check_eq!(counts.len(), notes.len(), "{notes:#?}");
    check!(
        (1..=2).contains(&notes.len()),
        "BlockedByBudget Events: {notes:#?}"
    );
    check!(
        notes
            .iter()
            .any(|n| n
                .contains("The disruption budget web needs 3 healthy pods and has 3 currently")),
        "{notes:#?}"
    );
    check_eq!(blocked[0].type_.as_deref(), Some("Warning"));
    check_eq!(about("NodeDrain", "events-blocked", "Planned").len(), 1);
    check_eq!(
        about("NodeDrain", "events-blocked", "DrainStarted").len(),
        1
    );
    let cordoned = about("Node", "events-1", "Cordoned");
    check_eq!(cordoned.len(), 1);
    check_eq!(
        cordoned[0].related.as_ref().and_then(|r| r.name.as_deref()),
        Some("events-blocked")
    );
    check_eq!(
        cordoned[0].reporting_controller.as_deref(),
        Some(kdrain_controller::recorder::CONTROLLER)
    );
    no_findings(c, "events", &["events-1"]).await?;
    let probes = evictions(c, "events", Some(429)).await?;
    Ok(format!(
        "{probes} evictions refused by the budget, {} BlockedByBudget Event(s): {}",
        notes.len(),
        notes.join(" | ")
    ))
}
