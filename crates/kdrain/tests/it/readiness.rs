//! The plan's estimate of how long replacements take to become ready, read from the pods the
//! cluster shows (start time to the Ready condition's transition), and its place in the
//! worst case.

use k8s_openapi::api::core::v1::Pod;
use kdrain::plan::ready_after_start;
use kdrain::{BudgetVerdict, PodOutcome};

use crate::*;

const SLOW_READY: &str = r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 2, labels: {app: web}, nodes: [n1], terminationSeconds: 0.1, gracePeriodSeconds: 5, readySeconds: 2}
pdbs:
  - {name: web, selector: {app: web}, maxUnavailable: 1}
"#;

/// The plan of `node` once the disruption controller has processed the budget and it allows
/// one of the two pods to go (the simulator writes budget statuses shortly after it starts, and
/// after pods change).
async fn plan_once_one_allowed(d: &kdrain::Drainer, node: &str) -> kdrain::Plan {
    bounded(async {
        loop {
            let plan = d.plan(&[node.to_string()]).await.expect("plan");
            if matches!(&plan.budgets[0].verdict, BudgetVerdict::Waits { reason }
                if reason.starts_with("it allows 1 of the 2 pods now"))
            {
                return plan;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
}

fn all_ready(pods: &[Pod]) -> bool {
    pods.len() == 2 && pods.iter().all(kdrain::budget::is_ready)
}

#[tokio::test]
async fn replacements_readiness_is_read_from_the_cluster_and_added_per_later_batch() {
    let sim = sim(SLOW_READY).await;
    let (d, _) = drainer(&sim, fast());
    // The simulator dates the first pods as started `readySeconds` (2 s) before they became
    // Ready, as on a cluster that has been running.
    let plan = plan_once_one_allowed(&d, "n1").await;
    assert_eq!(plan.budgets.len(), 1);
    assert_eq!(plan.budgets[0].replacement_ready_seconds, Some(2.0));
    // n1 holds both pods; the budget lets one go at a time: 5 s grace, then one more batch
    // of 5 s grace plus 2 s of readiness
    assert_eq!(plan.worst_case_seconds, 12.0);

    // Drain n1: the replacements start on n2 and become Ready 2 s after they start.
    let (res, _) = drain(&sim, fast(), &["n1"]).await;
    let report = res.expect("drained");
    assert!(
        report.nodes[0]
            .pods
            .iter()
            .all(|p| p.outcome == PodOutcome::Gone)
    );
    wait_pods(&sim, "n2", all_ready).await;
    let on_n2 = pods_on(&sim, "n2").await;
    for p in &on_n2 {
        // whole-second times: at least the 2 s the simulator waits
        let secs = ready_after_start(p).expect("start and Ready times");
        assert!(secs >= 2.0, "{secs}");
    }
    let mut expected: Vec<f64> = on_n2.iter().filter_map(ready_after_start).collect();
    expected.sort_by(f64::total_cmp);
    let median = (expected[0] + expected[1]) / 2.0;

    // n1 takes pods again, so n2's replacements have room (else the budget never passes).
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(sim.client());
    nodes.uncordon("n1").await.expect("uncordon n1");
    let plan = plan_once_one_allowed(&d, "n2").await;
    let ready = plan.budgets[0]
        .replacement_ready_seconds
        .expect("known from the replacements");
    assert_eq!(ready, median);
    // one later batch: its 5 s grace and the replacement's readiness
    assert_eq!(plan.worst_case_seconds, 5.0 + 5.0 + ready);
    no_violations(&sim);
}
