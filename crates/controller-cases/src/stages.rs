//! Each stage's transitions: Idle plans and changes nothing, Cordon cordons, Drain drains,
//! Complete uncordons only what the NodeDrain cordoned.

use anyhow::Result;
use kdrain_controller::Phase;

use crate::support::{
    PhaseRecorder, condition, cordon_state, create, evictions, no_findings, node_patches, pods_on,
    set_stage, wait_phase,
};
use crate::{Cluster, check, check_eq};

pub(crate) const IDLE: &str = r#"
nodes:
  - {name: idle-1, labels: {case: idle}}
  - {name: idle-2, labels: {case: idle}}
  - {name: idle-3, labels: {case: idle}}
workloads:
  - {kind: Deployment, name: web, namespace: idle, replicas: 3, nodes: [idle-1], nodeSelector: {case: idle}, terminationSeconds: 0.1, readySeconds: 0.2}
pdbs:
  - {name: web, namespace: idle, selector: {app: web}, maxUnavailable: 1}
"#;

pub(crate) async fn idle_fills_the_plan<C: Cluster>(c: &C) -> Result<String> {
    create(c, "idle-plan", "{nodeNames: [idle-1], stage: Idle}").await?;
    let nd = wait_phase(c, "idle-plan", Phase::Planned).await?;
    let status = nd.status.clone().unwrap_or_default();
    let Some(plan) = status.plan else {
        anyhow::bail!("no plan summary in the status")
    };
    check_eq!(plan.evictions, 3);
    check_eq!(plan.budgets.len(), 1);
    check_eq!(plan.budgets[0].name, "idle/web");
    check_eq!(plan.budgets[0].verdict, "Waits");
    let (ok, reason, message) = condition(&nd, "Planned").unwrap_or_default();
    check_eq!((ok.as_str(), reason.as_str()), ("True", "Planned"));
    check!(
        message.starts_with("3 pods to evict on 1 nodes under 1 budget"),
        "Planned message: {message}"
    );
    check_eq!(status.pods_summary.as_deref(), Some("0/3"));
    check_eq!(status.observed_generation, nd.metadata.generation);
    // nothing changed
    check_eq!(cordon_state(c, "idle-1").await?, (false, None));
    check_eq!(pods_on(c, "idle-1").await?.len(), 3);
    check_eq!(evictions(c, "idle", None).await?, 0);
    check_eq!(node_patches(c, &["idle-1"]).await?, 0);
    Ok(format!("Planned: {message}"))
}

pub(crate) const STAGES: &str = r#"
nodes:
  - {name: stages-1, labels: {case: stages}}
  - {name: stages-2, labels: {case: stages}}
  - {name: stages-3, labels: {case: stages}}
workloads:
  - {kind: Deployment, name: web, namespace: stages, replicas: 3, nodes: [stages-1], nodeSelector: {case: stages}, terminationSeconds: 0.1, readySeconds: 0.2}
pdbs:
  - {name: web, namespace: stages, selector: {app: web}, maxUnavailable: 1}
"#;

pub(crate) async fn stages_in_order<C: Cluster>(c: &C) -> Result<String> {
    let name = "stages-upgrade";
    let phases = PhaseRecorder::start(c, name).await?;
    create(
        c,
        name,
        "{nodeNames: [stages-1], stage: Idle, reason: kernel upgrade}",
    )
    .await?;
    wait_phase(c, name, Phase::Planned).await?;

    set_stage(c, name, "Cordon").await?;
    let nd = wait_phase(c, name, Phase::Cordoned).await?;
    check_eq!(
        cordon_state(c, "stages-1").await?,
        (true, Some(format!("nodedrain/{name}")))
    );
    check_eq!(
        pods_on(c, "stages-1").await?.len(),
        3,
        "Cordon evicts nothing"
    );
    check_eq!(condition(&nd, "Cordoned").unwrap_or_default().0, "True");

    set_stage(c, name, "Drain").await?;
    let nd = wait_phase(c, name, Phase::Drained).await?;
    let status = nd.status.clone().unwrap_or_default();
    check_eq!(status.pods_summary.as_deref(), Some("3/3"));
    check_eq!(status.nodes_summary.as_deref(), Some("1/1"));
    check_eq!(
        status.nodes.first().map(|n| n.phase.as_str()),
        Some("Drained")
    );
    check!(
        status
            .nodes
            .first()
            .is_some_and(|n| n.start_time.is_some() && n.end_time.is_some()),
        "node start and end times: {:?}",
        status.nodes
    );
    check!(
        status.blockers.is_empty() && status.blocked_by.is_none(),
        "blockers left: {:?}",
        status.blockers
    );
    let (ok, reason, _) = condition(&nd, "Drained").unwrap_or_default();
    check_eq!((ok.as_str(), reason.as_str()), ("True", "Drained"));
    check!(
        pods_on(c, "stages-1").await?.is_empty(),
        "pods left on stages-1"
    );
    check_eq!(evictions(c, "stages", Some(201)).await?, 3);

    set_stage(c, name, "Complete").await?;
    let nd = wait_phase(c, name, Phase::Completed).await?;
    check_eq!(cordon_state(c, "stages-1").await?, (false, None));
    check_eq!(
        condition(&nd, "Cordoned").unwrap_or_default().1,
        "Uncordoned"
    );
    no_findings(c, "stages", &["stages-1"]).await?;
    let seen = phases.phases();
    check_eq!(
        seen,
        [
            Phase::Pending,
            Phase::Planned,
            Phase::Cordoned,
            Phase::Draining,
            Phase::Drained,
            Phase::Completed
        ]
    );
    Ok(format!(
        "phases {}",
        seen.iter()
            .map(|p| format!("{p:?}"))
            .collect::<Vec<_>>()
            .join(" → ")
    ))
}

pub(crate) const COMPLETE: &str = r#"
nodes:
  - {name: complete-1, unschedulable: true, labels: {case: complete}}
  - {name: complete-2, labels: {case: complete}}
  - {name: complete-3, labels: {case: complete}}
workloads:
  - {kind: Deployment, name: web, namespace: complete, replicas: 2, nodes: [complete-1, complete-2], nodeSelector: {case: complete}, terminationSeconds: 0.1, readySeconds: 0.1}
"#;

pub(crate) async fn complete_uncordons_only_its_own<C: Cluster>(c: &C) -> Result<String> {
    create(c, "complete-both", "{nodeNames: [complete-1, complete-2]}").await?;
    let nd = wait_phase(c, "complete-both", Phase::Drained).await?;
    let message = condition(&nd, "Cordoned").unwrap_or_default().2;
    check!(
        message.contains("complete-1 already unschedulable, left as found"),
        "Cordoned message: {message}"
    );
    check_eq!(cordon_state(c, "complete-1").await?, (true, None));
    check_eq!(
        cordon_state(c, "complete-2").await?,
        (true, Some("nodedrain/complete-both".into()))
    );
    set_stage(c, "complete-both", "Complete").await?;
    let nd = wait_phase(c, "complete-both", Phase::Completed).await?;
    check_eq!(
        cordon_state(c, "complete-1").await?,
        (true, None),
        "not ours"
    );
    check_eq!(cordon_state(c, "complete-2").await?, (false, None));
    let status = nd.status.unwrap_or_default();
    let phases: Vec<(&str, &str)> = status
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.phase.as_str()))
        .collect();
    check_eq!(
        phases,
        [("complete-1", "Drained"), ("complete-2", "Uncordoned")]
    );
    no_findings(c, "complete", &["complete-1", "complete-2"]).await?;
    Ok(message)
}
