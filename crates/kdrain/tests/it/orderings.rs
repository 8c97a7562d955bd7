//! The orders in which a real cluster's answers and its controllers' writes can reach kdrain.
//!
//! An eviction makes three things visible to the client: the server's answer (201), the budget
//! status the eviction wrote (the pod in `disruptedPods`, one disruption fewer) followed by the
//! disruption controller's own status (the terminating pod left out of `disruptedPods`), and the
//! pod's deletion on the pod watch. A real cluster delivers them in no fixed order; kubesim's
//! `answerLatencyMs` and `eventLatencyMs` faults produce each order. In every one, kdrain must
//! send the next eviction on the first budget status that allows it: the retry ceiling here is
//! an hour, so a drain that waited on its timer instead would not finish within the test limit,
//! and no eviction may be refused (kdrain never sends one its view of the budget forbids).

use std::time::Duration;

use kdrain::{DrainOptions, Event, PodOutcome};

use crate::*;

/// Three pods of one Deployment on n1 under a maxUnavailable 1 budget; replacements start on n2
/// and become Ready 0.5 s later. `faults` is the scenario's fault list.
async fn chain(faults: &str) -> Sim {
    sim(&format!(
        r#"
nodes: [{{name: n1}}, {{name: n2}}]
workloads:
  - {{kind: Deployment, name: web, replicas: 3, nodes: [n1], terminationSeconds: 0, readySeconds: 0.5}}
pdbs:
  - {{name: web, selector: {{app: web}}, maxUnavailable: 1}}
faults: {faults}
"#
    ))
    .await
}

/// Options whose budget retry timer never fires during a test: only budget events can unblock.
fn events_only() -> DrainOptions {
    DrainOptions {
        budget_retry_ceiling: Duration::from_secs(3600),
        ..DrainOptions::kubectl()
    }
}

/// Drains n1 and checks what every order must give: all three pods gone, three evictions sent
/// and accepted at their first attempt, none refused, no invariant broken.
async fn drains_on_budget_events(sim: &Sim) {
    let (res, events) = drain(sim, events_only(), &["n1"]).await;
    let report = res.expect("drained");
    let pods = &report.nodes[0].pods;
    assert_eq!(pods.len(), 3, "{pods:#?}");
    assert!(
        pods.iter().all(|p| p.outcome == PodOutcome::Gone),
        "{pods:#?}"
    );
    let sent: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            Event::EvictionSent { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(sent, vec![1, 1, 1], "one eviction per pod: {events:#?}");
    assert_eq!(count_code(sim, "create", "pods", "eviction", 201), 3);
    assert_eq!(
        count(sim, "create", "pods", "eviction"),
        3,
        "{:?}",
        sim.requests()
    );
    // Two pods waited for the budget, and each wait ended on a budget event.
    let blocked = events
        .iter()
        .filter(|e| matches!(e, Event::Blocked { .. }))
        .count();
    assert!(blocked >= 2, "{events:#?}");
    no_violations(sim);
}

#[tokio::test]
async fn the_controllers_status_before_the_eviction_answer() {
    // The answer comes 300 ms late: the eviction's status write, the pod's deletion and the
    // disruption controller's status (which no longer lists the terminating pod) all come first.
    let sim = chain("[{verb: create, resource: pods/eviction, answerLatencyMs: 300}]").await;
    drains_on_budget_events(&sim).await;
}

#[tokio::test]
async fn the_eviction_answer_before_any_status_or_deletion() {
    // Both watches lag by 300 ms: the answer comes first, then the pod and the statuses.
    let sim = chain(
        "[{verb: watch, resource: poddisruptionbudgets, eventLatencyMs: 300},
          {verb: watch, resource: pods, eventLatencyMs: 300}]",
    )
    .await;
    drains_on_budget_events(&sim).await;
}

#[tokio::test]
async fn the_deletion_first_then_the_statuses_then_the_answer() {
    let sim = chain(
        "[{verb: watch, resource: poddisruptionbudgets, eventLatencyMs: 300},
          {verb: create, resource: pods/eviction, answerLatencyMs: 600}]",
    )
    .await;
    drains_on_budget_events(&sim).await;
}

#[tokio::test]
async fn the_deletion_first_then_the_answer_then_the_statuses() {
    let sim = chain(
        "[{verb: watch, resource: poddisruptionbudgets, eventLatencyMs: 400},
          {verb: create, resource: pods/eviction, answerLatencyMs: 150}]",
    )
    .await;
    drains_on_budget_events(&sim).await;
}
