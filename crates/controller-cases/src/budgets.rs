//! Two NodeDrains on different nodes share the cluster's budget and never break it.

use anyhow::Result;
use kdrain_controller::Phase;

use crate::support::{create, evictions, no_findings, pods_on, wait_phase};
use crate::{Cluster, check};

pub(crate) const SHARED: &str = r#"
nodes:
  - {name: shared-1, labels: {case: shared}}
  - {name: shared-2, labels: {case: shared}}
  - {name: shared-3, labels: {case: shared}}
  - {name: shared-4, labels: {case: shared}}
workloads:
  - {kind: Deployment, name: web, namespace: shared, replicas: 6, nodes: [shared-1, shared-2], nodeSelector: {case: shared}, terminationSeconds: 0.2, readySeconds: 0.5}
pdbs:
  - {name: web, namespace: shared, selector: {app: web}, minAvailable: 5}
"#;

pub(crate) async fn shared_budget<C: Cluster>(c: &C) -> Result<String> {
    create(c, "shared-a", "{nodeNames: [shared-1]}").await?;
    create(c, "shared-b", "{nodeNames: [shared-2]}").await?;
    let a = wait_phase(c, "shared-a", Phase::Drained).await?;
    let b = wait_phase(c, "shared-b", Phase::Drained).await?;
    // "gone/total" of each NodeDrain. Which drain plans first is the controller's business:
    // when shared-2 is cordoned before shared-1 is planned, its replacements may land on
    // shared-1 (and the other way round), so a drain can have more than its node's first 3
    // pods; every pod either drain found must be gone, each evicted once.
    let counts = |nd: &kdrain_controller::NodeDrain| -> Option<(u64, u64)> {
        let s = nd.status.as_ref()?.pods_summary.clone()?;
        let (gone, total) = s.split_once('/')?;
        Some((gone.parse().ok()?, total.parse().ok()?))
    };
    let (gone_a, total_a) = counts(&a).unwrap_or_default();
    let (gone_b, total_b) = counts(&b).unwrap_or_default();
    check!(
        gone_a == total_a && gone_b == total_b && total_a >= 3 && total_b >= 3,
        "shared-a {gone_a}/{total_a}, shared-b {gone_b}/{total_b}: each node had 3 pods at first"
    );
    check!(
        pods_on(c, "shared-1").await?.is_empty() && pods_on(c, "shared-2").await?.is_empty(),
        "pods left on shared-1 or shared-2"
    );
    no_findings(c, "shared", &["shared-1", "shared-2"]).await?;
    // every pod either drain counted was evicted (a pod that lands on a node after its plan is
    // taken in by the drain's last LIST, and may not be in its count); the budget allowed one
    // at a time (no finding above)
    let accepted = evictions(c, "shared", Some(201)).await?;
    check!(
        accepted >= total_a + total_b,
        "{accepted} evictions accepted for {total_a} + {total_b} pods"
    );
    let refused = evictions(c, "shared", Some(429)).await?;
    Ok(format!(
        "{accepted} evictions accepted ({total_a} pods for shared-a, {total_b} for shared-b), {refused} refused by the budget (minAvailable 5 of 6), 0 findings"
    ))
}
