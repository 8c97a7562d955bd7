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

const EXECUTE: &str = r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 2, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.1}
pdbs:
  - {name: web, selector: {app: web}, maxUnavailable: 1}
"#;

#[tokio::test]
async fn execute_runs_the_approved_plan() {
    let sim = sim(EXECUTE).await;
    let d = kdrain::Drainer::builder(sim.client())
        .options(all_flags())
        .build()
        .expect("valid options");
    let plan = bounded(d.plan(&["n1".to_string()])).await.unwrap();
    assert_eq!(plan.evictions(), 2);
    let report = bounded(d.execute(&plan)).await.expect("drained");
    assert_eq!(report.nodes.len(), 1);
    assert!(
        report.nodes[0]
            .pods
            .iter()
            .all(|p| p.outcome == kdrain::PodOutcome::Gone),
        "{report:#?}"
    );
    assert!(pod_names_on(&sim, "n1").await.is_empty());
    no_violations(&sim);
}

#[tokio::test]
async fn execute_changes_nothing_when_the_cluster_left_the_approved_plan() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Patch, PatchParams};
    let sim = sim(EXECUTE).await;
    let d = kdrain::Drainer::builder(sim.client())
        .options(all_flags())
        .build()
        .expect("valid options");
    let plan = bounded(d.plan(&["n1".to_string()])).await.unwrap();
    assert!(plan.can_complete());
    // after the review, someone protects one of the pods: the approved "evict" no longer holds
    let name = pod_names_on(&sim, "n1").await.remove(0);
    let pods: kube::Api<Pod> = kube::Api::namespaced(sim.client(), "default");
    pods.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({
            "metadata": {"annotations": {"karpenter.sh/do-not-disrupt": "true"}}
        })),
    )
    .await
    .expect("annotate");
    sim.reset_requests();
    let err = bounded(d.execute(&plan)).await.unwrap_err();
    match &err {
        DrainError::PlanChanged { departures } => {
            assert_eq!(departures.len(), 1, "{departures:?}");
            assert!(
                departures[0].starts_with(&format!(
                    "pod default/{name} on node n1: approved evict, now refuse"
                )),
                "{departures:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.kind(), kdrain::ErrorKind::Failed);
    for r in sim.requests() {
        assert!(
            matches!(r.verb.as_str(), "get" | "list"),
            "a departed plan changes nothing: {r:?}"
        );
    }
    assert!(!kdrain::cordon::is_cordoned(&node(&sim, "n1").await));
    assert_eq!(pod_names_on(&sim, "n1").await.len(), 2);
    no_violations(&sim);
}

#[tokio::test]
async fn execute_prepared_carries_out_the_plan_from_its_own_reads() {
    let sim = sim(EXECUTE).await;
    let d = kdrain::Drainer::builder(sim.client())
        .options(all_flags())
        .shared_budgets(kdrain::BudgetLedger::new())
        .build()
        .expect("valid options");
    let prepared = bounded(d.prepare(&["n1".to_string()])).await.unwrap();
    assert_eq!(prepared.plan().evictions(), 2);
    let lists = |resource: &str| -> u64 {
        sim.requests()
            .iter()
            .filter(|r| r.verb == "list" && r.resource == resource)
            .map(|r| r.count)
            .sum()
    };
    // the plan's reads: the node's pods and every pod (capacity), every node, the budgets
    assert_eq!(
        (lists("pods"), lists("nodes"), lists("poddisruptionbudgets")),
        (2, 1, 1)
    );
    sim.reset_requests();
    let report = bounded(d.execute_prepared(prepared, std::future::pending()))
        .await
        .expect("drained");
    assert!(
        report.nodes[0]
            .pods
            .iter()
            .all(|p| p.outcome == kdrain::PodOutcome::Gone),
        "{report:#?}"
    );
    // nothing is read again but the node (for its cordon) and the final LIST of its pods
    assert_eq!(
        (lists("pods"), lists("nodes"), lists("poddisruptionbudgets")),
        (1, 0, 0)
    );
    assert!(pod_names_on(&sim, "n1").await.is_empty());
    no_violations(&sim);
}

#[tokio::test]
async fn check_access_names_a_missing_right_and_changes_nothing() {
    use kubesim::{AuthSpec, BindingSpec, RoleSpec, RuleSpec, Scenario, Sim, UserSpec};
    let mut scenario = Scenario::from_yaml_str(EXECUTE).unwrap();
    let rule = |verb: &str, resource: &str| RuleSpec {
        verbs: vec![verb.into()],
        resources: vec![resource.into()],
        api_groups: None,
    };
    scenario.auth = Some(AuthSpec {
        users: vec![UserSpec {
            name: "controller".into(),
            token: "t".into(),
        }],
        roles: vec![RoleSpec {
            name: "no-evictions".into(),
            rules: vec![
                rule("get", "nodes"),
                rule("list", "nodes"),
                rule("patch", "nodes"),
                rule("list", "pods"),
                rule("watch", "pods"),
                rule("list", "poddisruptionbudgets"),
                rule("watch", "poddisruptionbudgets"),
            ],
        }],
        bindings: vec![BindingSpec {
            user: "controller".into(),
            role: "no-evictions".into(),
            namespace: None,
        }],
    });
    let sim = Sim::start(scenario).await.unwrap();
    let d = kdrain::Drainer::builder(sim.client_with_token("t"))
        .options(all_flags())
        .build()
        .expect("valid options");
    let prepared = bounded(d.prepare(&["n1".to_string()])).await.unwrap();
    assert!(prepared.plan().can_complete());
    let err = bounded(d.check_access(&prepared)).await.unwrap_err();
    let DrainError::Forbidden {
        verb,
        resource,
        namespace,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(
        (verb.as_str(), resource.as_str(), namespace.as_deref()),
        ("create", "pods/eviction", Some("default"))
    );
    let writes: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.verb == "patch" || (r.verb == "create" && r.resource == "pods"))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert_eq!(pod_names_on(&sim, "n1").await.len(), 2);
    sim.shutdown().await;
}
