//! A controller restarted mid-drain resumes from the cluster's state; a deleted NodeDrain stops
//! and restores what it cordoned.

use anyhow::Result;
use kdrain_controller::Phase;

use crate::support::{
    condition, cordon_state, create, evictions, no_findings, nodedrains, pods_on, wait, wait_gone,
    wait_phase,
};
use crate::{Cluster, check, check_eq};

pub(crate) const RESTART: &str = r#"
nodes:
  - {name: restart-1, labels: {case: restart}}
  - {name: restart-2, labels: {case: restart}}
  - {name: restart-3, labels: {case: restart}}
workloads:
  - {kind: Deployment, name: web, namespace: restart, replicas: 4, nodes: [restart-1], nodeSelector: {case: restart}, terminationSeconds: 0.2, readySeconds: 1.5}
pdbs:
  - {name: web, namespace: restart, selector: {app: web}, maxUnavailable: 1}
"#;

pub(crate) async fn restart_resumes<C: Cluster>(c: &C) -> Result<String> {
    c.start_controller("restart-a").await?;
    create(c, "restart-drain", "{nodeNames: [restart-1]}").await?;
    wait(c, "restart-drain", "draining with a pod gone", |nd| {
        nd.status
            .as_ref()
            .and_then(|s| s.nodes.first())
            .is_some_and(|n| n.pods_gone >= 1)
    })
    .await?;
    c.kill_controller("restart-a").await?;
    let left = pods_on(c, "restart-1").await?.len();
    check!(left >= 1, "the drain was not stopped midway: no pod left");
    c.start_controller("restart-b").await?;
    let nd = wait_phase(c, "restart-drain", Phase::Drained).await;
    c.stop_controller("restart-b").await?;
    let nd = nd?;
    check!(
        pods_on(c, "restart-1").await?.is_empty(),
        "pods left on restart-1"
    );
    check_eq!(
        cordon_state(c, "restart-1").await?,
        (true, Some("nodedrain/restart-drain".into()))
    );
    no_findings(c, "restart", &["restart-1"]).await?;
    // no eviction accepted twice: one per pod
    check_eq!(evictions(c, "restart", Some(201)).await?, 4);
    let status = nd.status.unwrap_or_default();
    check!(status.start_time.is_some(), "no start time");
    check_eq!(
        status.pods_summary.as_deref(),
        Some("4/4"),
        "the pods gone before the restart count"
    );
    Ok(format!(
        "killed with {left} of 4 pods left; the restarted controller finished: 4 evictions accepted in all"
    ))
}

pub(crate) const DELETED: &str = r#"
nodes:
  - {name: deleted-1, labels: {case: deleted}}
  - {name: deleted-2, labels: {case: deleted}}
workloads:
  - {kind: Deployment, name: web, namespace: deleted, replicas: 3, nodes: [deleted-1], nodeSelector: {case: deleted}, terminationSeconds: 0.1, readySeconds: 300}
pdbs:
  - {name: web, namespace: deleted, selector: {app: web}, minAvailable: 2}
"#;

pub(crate) async fn deleted_restores<C: Cluster>(c: &C) -> Result<String> {
    create(c, "deleted-stuck", "{nodeNames: [deleted-1]}").await?;
    let nd = wait(c, "deleted-stuck", "blocked by the budget", |nd| {
        nd.status.as_ref().is_some_and(|s| {
            s.blockers.len() == 2
                && s.blocked_by.as_deref() == Some("budget deleted/web needs 2 has 2 (2 pods)")
        })
    })
    .await?;
    let (_, reason, message) = condition(&nd, "Drained").unwrap_or_default();
    check_eq!(reason, "BlockedByBudget");
    check!(
        message
            .starts_with("1/3 pods gone; waiting for budget deleted/web needs 2 has 2 (2 pods); "),
        "Drained message: {message}"
    );
    let status = nd.status.clone().unwrap_or_default();
    check_eq!(status.phase, Some(Phase::Draining));
    check!(
        status.blockers.iter().all(|b| b.cause == "Budget"
            && b.budget.as_deref() == Some("deleted/web")
            && (b.needs, b.has) == (Some(2), Some(2))),
        "blockers: {:?}",
        status.blockers
    );
    check!(
        cordon_state(c, "deleted-1").await?.0,
        "deleted-1 not cordoned"
    );
    nodedrains(c)
        .delete("deleted-stuck", &Default::default())
        .await?;
    wait_gone(c, "deleted-stuck").await?;
    check_eq!(cordon_state(c, "deleted-1").await?, (false, None));
    check_eq!(
        pods_on(c, "deleted-1").await?.len(),
        2,
        "nothing more was evicted"
    );
    check_eq!(evictions(c, "deleted", Some(201)).await?, 1);
    no_findings(c, "deleted", &["deleted-1"]).await?;
    Ok(format!(
        "blocked: {message}; deleted: deleted-1 uncordoned, 2 pods left"
    ))
}
