//! The report at the timeout tells the truth: an eviction still in flight when the time runs out
//! is waited for, so a pod the server evicts after the deadline is never reported as blocked.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kdrain::{DrainOptions, PodOutcome};
use kube::Api;

use crate::*;

#[tokio::test]
async fn an_eviction_answered_after_the_timeout_is_reported_as_it_ended() {
    // db-1 waits for db-0's replacement (ready after 1 s); every eviction takes 1 s to answer,
    // so db-1's eviction is in flight when the 2.6 s timeout hits.
    let sim = sim(r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: StatefulSet, name: db, replicas: 2, nodes: [n1], terminationSeconds: 0.1, readySeconds: 1.0}
pdbs:
  - {name: db, selector: {app: db}, minAvailable: 1}
faults:
  - {verb: create, resource: pods/eviction, latencyMs: 1000}
"#)
    .await;
    let opts = DrainOptions {
        timeout: Some(Duration::from_millis(2600)),
        ..fast()
    };
    let (res, _) = drain(&sim, opts, &["n1"]).await;
    let err = res.expect_err("the timeout ends the drain");
    let report = err.report().expect("a report").clone();
    // Let any answer still on its way arrive, then compare with the cluster.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let api: Api<Pod> = Api::namespaced(sim.client(), "default");
    let accepted_in_report = report.nodes[0]
        .pods
        .iter()
        .filter(|p| p.accepted.is_some())
        .count() as u64;
    assert_eq!(
        accepted_in_report,
        count_code(&sim, "create", "pods", "eviction", 201),
        "every eviction the server accepted is in the report: {report:#?}"
    );
    for p in &report.nodes[0].pods {
        if p.outcome == PodOutcome::Blocked {
            let live = api
                .get(&p.pod.name)
                .await
                .expect("a blocked pod still exists");
            assert_eq!(live.metadata.uid.as_deref(), Some(p.pod.uid.as_str()));
            assert!(
                live.metadata.deletion_timestamp.is_none(),
                "{} reported blocked, yet it was evicted",
                p.pod
            );
        }
    }
    no_violations(&sim);
}
