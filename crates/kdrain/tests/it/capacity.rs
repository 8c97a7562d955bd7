//! The capacity check through the library over HTTP: a drain whose replacements do not fit is
//! refused before any eviction (exit 7), drained anyway with `ignore_capacity` the scheduler
//! leaves the replacement Pending with the message the plan gave, and without the right to
//! list nodes the plan says it could not check.

use k8s_openapi::api::core::v1::Pod;
use kdrain::{DrainError, DrainOptions, Drainer};
use kube::Api;
use kube::api::ListParams;
use kubesim::{AuthSpec, BindingSpec, RoleSpec, RuleSpec, Scenario, Sim, UserSpec};

use crate::*;

const TIGHT: &str = r#"
nodes:
  - {name: n1}
  - {name: n2, allocatable: {cpu: "1"}}
workloads:
  - {kind: Deployment, name: web, replicas: 2, nodes: [n1], requests: {cpu: 800m}, terminationSeconds: 0.1, readySeconds: 0.1}
"#;

#[tokio::test]
async fn a_drain_without_room_is_refused_before_any_eviction() {
    let sim = sim(TIGHT).await;
    let (res, _) = drain(&sim, fast(), &["n1"]).await;
    let err = res.expect_err("no room");
    assert_eq!(err.kind(), kdrain::ErrorKind::NoRoom, "{err}");
    let DrainError::PlanRefused {
        errors, no_room, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert!(no_room);
    assert_eq!(
        errors,
        &vec![
            "default/web: 2 replacements need 1.6 CPU, the 1 schedulable node has 1 CPU free (1 do not fit); add capacity or drain fewer nodes at once"
                .to_string()
        ]
    );
    assert_eq!(count(&sim, "create", "pods", "eviction"), 0);
    assert_eq!(pods_on(&sim, "n1").await.len(), 2);

    // The plan names where each replacement goes.
    let (d, _) = drainer(&sim, fast());
    let plan = d.plan(&["n1".to_string()]).await.expect("plan");
    let mut placements: Vec<String> = plan.nodes[0]
        .pods
        .iter()
        .filter_map(|p| p.placement.clone())
        .collect();
    placements.sort();
    assert_eq!(placements[1], "replacement fits on n2");
    let predicted = placements[0]
        .strip_prefix("no room for its replacement: ")
        .expect("one without room")
        .to_string();
    assert_eq!(
        predicted,
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) were unschedulable. preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
    );

    // Drained anyway: the scheduler says what the plan said.
    let opts = DrainOptions {
        ignore_capacity: true,
        ..fast()
    };
    let (res, _) = drain(&sim, opts, &["n1"]).await;
    res.expect("drained with --ignore-capacity");
    let api: Api<Pod> = Api::namespaced(sim.client(), "default");
    let message = bounded(async {
        loop {
            let pending = api
                .list(&ListParams::default().labels("app=web"))
                .await
                .expect("list")
                .items
                .into_iter()
                .find_map(|p| {
                    p.status?
                        .conditions?
                        .into_iter()
                        .find(|c| c.type_ == "PodScheduled" && c.status == "False")?
                        .message
                });
            if let Some(m) = pending {
                return m;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(message, predicted);
    no_violations(&sim);
}

#[tokio::test]
async fn without_the_right_to_list_nodes_the_plan_says_it_did_not_check() {
    let mut scenario = Scenario::from_yaml_str(TIGHT).expect("scenario");
    let rights = [
        ("get", "nodes"),
        ("list", "pods"),
        ("list", "poddisruptionbudgets"),
    ];
    scenario.auth = Some(AuthSpec {
        users: vec![UserSpec {
            name: "reader".into(),
            token: "t-reader".into(),
        }],
        roles: vec![RoleSpec {
            name: "read".into(),
            rules: rights
                .iter()
                .map(|(verb, resource)| RuleSpec {
                    verbs: vec![verb.to_string()],
                    resources: vec![resource.to_string()],
                    api_groups: None,
                })
                .collect(),
        }],
        bindings: vec![BindingSpec {
            user: "reader".into(),
            role: "read".into(),
            namespace: None,
        }],
    });
    let sim: Sim = Sim::start(scenario).await.expect("kubesim starts");
    let d = Drainer::new(sim.client_with_token("t-reader"), fast());
    let plan = bounded(d.plan(&["n1".to_string()])).await.expect("plan");
    assert!(plan.capacity.is_none());
    assert!(plan.can_complete(), "{:?}", plan.errors);
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    assert!(
        plan.warnings[0].starts_with("cannot list nodes (")
            && plan.warnings[0].ends_with("): the plan does not check room for the replacements"),
        "{:?}",
        plan.warnings
    );
}
