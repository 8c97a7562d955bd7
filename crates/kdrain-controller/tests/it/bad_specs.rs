//! Bad specs are rejected by the schema (422, nothing stored) or end `Refused` with one clear
//! line, and change nothing.

use kdrain_controller::Phase;

use crate::{Cluster, condition, cordon_state};

const CLUSTER: &str = r#"
nodes: [{name: n1, labels: {pool: a}}, {name: n2, labels: {pool: b}}]
workloads:
  - {kind: Deployment, name: web, replicas: 2, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.1}
"#;

#[tokio::test]
async fn the_schema_rejects_what_it_can_express() {
    let c = Cluster::start(CLUSTER).await;
    for (spec, expected) in [
        (
            "{nodeNames: [n1], nodeSelector: pool=a}",
            "set exactly one of nodeNames or nodeSelector",
        ),
        (
            "{reason: nothing named}",
            "set exactly one of nodeNames or nodeSelector",
        ),
        (
            "{nodeNames: [n1], maxUnavailableNodes: 0}",
            "maxUnavailableNodes must be a count of at least 1",
        ),
        (
            "{nodeNames: [n1], maxUnavailableNodes: '0%'}",
            "maxUnavailableNodes must be a count of at least 1",
        ),
        (
            "{nodeNames: [n1], maxUnavailableNodes: '150%'}",
            "maxUnavailableNodes must be a count of at least 1",
        ),
        (
            "{nodeNames: [n1], maxUnavailableNodes: half}",
            "maxUnavailableNodes must be a count of at least 1",
        ),
        (
            "{nodeNames: [n1], timeout: 5 minutes}",
            "spec.timeout in body should match",
        ),
        (
            "{nodeNames: [n1], stage: Later}",
            "Unsupported value: \"Later\"",
        ),
        (
            "{nodeNames: [n1], gracePeriodSeconds: -5}",
            "should be greater than or equal to -1",
        ),
    ] {
        let err = c.create_raw("bad", spec).await.expect_err(spec);
        let kube::Error::Api(status) = err else {
            panic!("{spec}: not an API error: {err}")
        };
        assert_eq!(status.code, 422, "{spec}: {}", status.message);
        assert!(
            status.message.contains(expected),
            "{spec}: {}",
            status.message
        );
    }
    assert!(
        c.api
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(c.requests("patch", "nodes", "", None), 0);
    c.shutdown().await;
}

#[tokio::test]
async fn what_the_schema_cannot_check_is_refused_with_one_line() {
    let c = Cluster::start(CLUSTER).await;
    for (name, spec, reason, start) in [
        (
            "unknown",
            "{nodeNames: [n1, n9]}",
            "NodeNotFound",
            "node n9 not found; check spec.nodeNames",
        ),
        (
            "badsel",
            "{nodeSelector: 'pool in (a'}",
            "InvalidSpec",
            "spec.nodeSelector \"pool in (a\" is not a label selector",
        ),
        (
            "nomatch",
            "{nodeSelector: pool=zzz}",
            "NoNodesMatch",
            "no nodes match spec.nodeSelector \"pool=zzz\"",
        ),
        (
            "badpods",
            "{nodeNames: [n1], podSelector: 'app in (web'}",
            "InvalidSpec",
            "spec.podSelector",
        ),
        (
            "huge",
            "{nodeNames: [n1], timeout: 99999999999h}",
            "InvalidSpec",
            "spec.timeout: invalid duration \"99999999999h\" (too large",
        ),
    ] {
        c.create(name, spec)
            .await
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
        let nd = c.wait_phase(name, Phase::Refused).await;
        let (ok, got_reason, message) = condition(&nd, "Planned").unwrap();
        assert_eq!(
            (ok.as_str(), got_reason.as_str()),
            ("False", reason),
            "{spec}"
        );
        assert!(message.starts_with(start), "{spec}: {message}");
        assert!(!message.contains('\n'));
        assert!(nd.status.unwrap().completion_time.is_some());
    }
    assert_eq!(cordon_state(&c.node("n1").await), (false, None));
    assert_eq!(c.requests("patch", "nodes", "", None), 0);
    assert_eq!(c.requests("create", "pods", "eviction", None), 0);
    c.shutdown().await;
}

#[tokio::test]
async fn a_node_claimed_twice_refuses_the_later_drain_naming_the_other() {
    let c = Cluster::start(
        r#"
nodes: [{name: n1}, {name: n2}, {name: n3}]
workloads:
  - {kind: Deployment, name: web, replicas: 3, nodes: [n1], terminationSeconds: 0.1, readySeconds: 300}
pdbs:
  - {name: web, selector: {app: web}, minAvailable: 2}
"#,
    )
    .await;
    c.create("first", "{nodeNames: [n1]}").await.unwrap();
    c.wait_phase("first", Phase::Draining).await;
    c.create("second", "{nodeNames: [n2, n1]}").await.unwrap();
    let nd = c.wait_phase("second", Phase::Refused).await;
    let (_, reason, message) = condition(&nd, "Planned").unwrap();
    assert_eq!(reason, "NodeClaimed");
    assert_eq!(
        message,
        "node n1 is claimed by NodeDrain first; set its stage to Complete or delete it, then recreate this one"
    );
    assert_eq!(
        cordon_state(&c.node("n2").await),
        (false, None),
        "second changed nothing"
    );
    c.shutdown().await;
}

#[tokio::test]
async fn a_plan_that_cannot_complete_is_refused_before_any_change() {
    let c = Cluster::start(
        r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Pod, name: lonely, replicas: 1, nodes: [n1]}
"#,
    )
    .await;
    c.create("bare", "{nodeNames: [n1]}").await.unwrap();
    let nd = c.wait_phase("bare", Phase::Refused).await;
    let (_, reason, message) = condition(&nd, "Planned").unwrap();
    assert_eq!(reason, "PlanRefused");
    assert!(
        message.starts_with("the plan cannot complete, nothing was changed: cannot delete"),
        "{message}"
    );
    assert!(message.contains("default/lonely"), "{message}");
    assert_eq!(cordon_state(&c.node("n1").await), (false, None));
    c.shutdown().await;
}
