//! The read-only entry points: plan and node resolution.

use kdrain::{Action, DrainError, Event};

use crate::*;

#[tokio::test]
async fn plan_reads_only() {
    let sim = sim(r#"
nodes: [{name: n1, labels: {pool: a}}, {name: n2, labels: {pool: a}}, {name: n3, labels: {pool: b}}]
workloads:
  - {kind: Deployment, name: web, replicas: 2, nodes: [n1], gracePeriodSeconds: 10}
  - {kind: DaemonSet, name: agent, namespace: kube-system, priorityClassName: system-node-critical}
pdbs:
  - {name: web, selector: {app: web}, maxUnavailable: 1}
"#)
    .await;
    let (d, mut rx) = drainer(&sim, all_flags());
    let nodes = bounded(d.resolve_nodes("pool=a")).await.unwrap();
    assert_eq!(nodes, vec!["n1", "n2"]);
    assert!(matches!(rx.try_recv(), Ok(Event::NodesResolved { .. })));
    let plan = bounded(d.plan(&nodes)).await.unwrap();
    assert!(plan.can_complete());
    assert_eq!(plan.evictions(), 2);
    let n1 = &plan.nodes[0];
    let agent = n1
        .pods
        .iter()
        .find(|p| p.name.starts_with("agent-"))
        .unwrap();
    assert_eq!((agent.action, agent.tier), (Action::Skip, 3));
    assert!(
        n1.pods
            .iter()
            .filter(|p| p.action == Action::Evict)
            .all(|p| p.grace_seconds == 10 && p.tier == 0)
    );
    assert_eq!(plan.budgets[0].pods.len(), 2);
    assert_eq!(plan.budgets[0].replacement_ready_seconds, Some(1.0));
    assert_eq!(
        plan.worst_case_seconds, 21.0,
        "two rounds of 10 s: the budget lets one pod go at a time, the second after a replacement \
         is ready (1 s, kubesim's default readySeconds, read from the pods)"
    );
    for r in sim.requests() {
        assert!(
            matches!(r.verb.as_str(), "get" | "list"),
            "plan wrote: {r:?}"
        );
    }
    let err = bounded(d.resolve_nodes("pool in (")).await.unwrap_err();
    assert!(matches!(err, DrainError::Options(_)));
    assert_eq!(err.kind(), kdrain::ErrorKind::BadInput);
    no_violations(&sim);
}
