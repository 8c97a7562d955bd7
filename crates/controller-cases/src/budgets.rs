//! Two NodeDrains on different nodes share the cluster's budget and never break it.

use anyhow::Result;
use kdrain_controller::Phase;

use crate::support::{create, evictions, no_findings, pods_on, wait_phase};
use crate::{Cluster, check, check_eq};

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
    let summary =
        |nd: &kdrain_controller::NodeDrain| nd.status.as_ref().and_then(|s| s.pods_summary.clone());
    check_eq!(summary(&a).as_deref(), Some("3/3"));
    check_eq!(summary(&b).as_deref(), Some("3/3"));
    check!(
        pods_on(c, "shared-1").await?.is_empty() && pods_on(c, "shared-2").await?.is_empty(),
        "pods left on shared-1 or shared-2"
    );
    no_findings(c, "shared", &["shared-1", "shared-2"]).await?;
    // every pod was evicted once; the budget allowed one at a time
    check_eq!(evictions(c, "shared", Some(201)).await?, 6);
    let refused = evictions(c, "shared", Some(429)).await?;
    Ok(format!(
        "6 evictions accepted, {refused} refused by the budget (minAvailable 5 of 6), 0 findings"
    ))
}
