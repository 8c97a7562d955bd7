//! Bad specs are rejected by the schema (422, nothing stored) or end `Refused` with one clear
//! line, and change nothing.

use anyhow::{Result, bail};
use kdrain_controller::Phase;

use crate::support::{
    condition, cordon_state, create, create_raw, evictions, node_patches, nodedrains, wait_phase,
};
use crate::{Cluster, check, check_eq};

pub(crate) const SCHEMA: &str = r#"
nodes:
  - {name: schema-1, labels: {case: schema}}
"#;

pub(crate) async fn schema_rejects<C: Cluster>(c: &C) -> Result<String> {
    let mut lines = Vec::new();
    for (spec, expected) in [
        (
            "{nodeNames: [schema-1], nodeSelector: pool=a}",
            "set exactly one of nodeNames or nodeSelector",
        ),
        (
            "{reason: nothing named}",
            "set exactly one of nodeNames or nodeSelector",
        ),
        (
            "{nodeNames: [schema-1], maxUnavailableNodes: 0}",
            "maxUnavailableNodes must be a count of at least 1",
        ),
        (
            "{nodeNames: [schema-1], maxUnavailableNodes: '0%'}",
            "maxUnavailableNodes must be a count of at least 1",
        ),
        (
            "{nodeNames: [schema-1], maxUnavailableNodes: '150%'}",
            "maxUnavailableNodes must be a count of at least 1",
        ),
        (
            "{nodeNames: [schema-1], maxUnavailableNodes: half}",
            "maxUnavailableNodes must be a count of at least 1",
        ),
        (
            "{nodeNames: [schema-1], timeout: 5 minutes}",
            "spec.timeout in body should match",
        ),
        (
            "{nodeNames: [schema-1], stage: Later}",
            "Unsupported value: \"Later\"",
        ),
        (
            "{nodeNames: [schema-1], gracePeriodSeconds: -5}",
            "should be greater than or equal to -1",
        ),
    ] {
        let status = match create_raw(c, "schema-bad", spec).await {
            Ok(()) => bail!("{spec}: accepted, the schema should reject it"),
            Err(kube::Error::Api(status)) => status,
            Err(e) => bail!("{spec}: not an API error: {e}"),
        };
        check_eq!(status.code, 422, "{spec}: {}", status.message);
        check!(
            status.message.contains(expected),
            "{spec}: the message lacks {expected:?}: {}",
            status.message
        );
        lines.push(format!("{spec} → {}", status.message));
    }
    check!(
        nodedrains(c).get_opt("schema-bad").await?.is_none(),
        "a rejected NodeDrain was stored"
    );
    check_eq!(node_patches(c, &["schema-1"]).await?, 0);
    Ok(lines.join("\n"))
}

pub(crate) const REFUSED: &str = r#"
nodes:
  - {name: refused-1, labels: {case: refused, pool: refused-a}}
  - {name: refused-2, labels: {case: refused, pool: refused-b}}
workloads:
  - {kind: Deployment, name: web, namespace: refused, replicas: 2, nodes: [refused-1], nodeSelector: {case: refused}, terminationSeconds: 0.1, readySeconds: 0.1}
"#;

pub(crate) async fn refused_with_one_line<C: Cluster>(c: &C) -> Result<String> {
    let mut lines = Vec::new();
    for (name, spec, reason, start) in [
        (
            "refused-unknown",
            "{nodeNames: [refused-1, refused-9]}",
            "NodeNotFound",
            "node refused-9 not found; check spec.nodeNames",
        ),
        (
            "refused-badsel",
            "{nodeSelector: 'pool in (refused-a'}",
            "InvalidSpec",
            "spec.nodeSelector \"pool in (refused-a\" is not a label selector",
        ),
        (
            "refused-nomatch",
            "{nodeSelector: pool=zzz}",
            "NoNodesMatch",
            "no nodes match spec.nodeSelector \"pool=zzz\"",
        ),
        (
            "refused-badpods",
            "{nodeNames: [refused-1], podSelector: 'app in (web'}",
            "InvalidSpec",
            "spec.podSelector",
        ),
        (
            "refused-huge",
            "{nodeNames: [refused-1], timeout: 99999999999h}",
            "InvalidSpec",
            "spec.timeout: invalid duration \"99999999999h\" (too large",
        ),
    ] {
        create(c, name, spec).await?;
        let nd = wait_phase(c, name, Phase::Refused).await?;
        let (ok, got_reason, message) = condition(&nd, "Planned").unwrap_or_default();
        check_eq!(
            (ok.as_str(), got_reason.as_str()),
            ("False", reason),
            "{spec}"
        );
        check!(message.starts_with(start), "{spec}: {message}");
        check!(!message.contains('\n'), "{spec}: more than one line");
        check!(
            nd.status.and_then(|s| s.completion_time).is_some(),
            "{spec}: no completion time"
        );
        lines.push(format!("{spec} → {got_reason}: {message}"));
    }
    check_eq!(cordon_state(c, "refused-1").await?, (false, None));
    check_eq!(node_patches(c, &["refused-1", "refused-2"]).await?, 0);
    check_eq!(evictions(c, "refused", None).await?, 0);
    Ok(lines.join("\n"))
}

pub(crate) const CLAIMED: &str = r#"
nodes:
  - {name: claimed-1, labels: {case: claimed}}
  - {name: claimed-2, labels: {case: claimed}}
  - {name: claimed-3, labels: {case: claimed}}
workloads:
  - {kind: Deployment, name: web, namespace: claimed, replicas: 3, nodes: [claimed-1], nodeSelector: {case: claimed}, terminationSeconds: 0.1, readySeconds: 300}
pdbs:
  - {name: web, namespace: claimed, selector: {app: web}, minAvailable: 2}
"#;

pub(crate) async fn claimed_twice<C: Cluster>(c: &C) -> Result<String> {
    create(c, "claimed-first", "{nodeNames: [claimed-1]}").await?;
    wait_phase(c, "claimed-first", Phase::Draining).await?;
    create(c, "claimed-second", "{nodeNames: [claimed-2, claimed-1]}").await?;
    let nd = wait_phase(c, "claimed-second", Phase::Refused).await?;
    let (_, reason, message) = condition(&nd, "Planned").unwrap_or_default();
    check_eq!(reason, "NodeClaimed");
    check_eq!(
        message,
        "node claimed-1 is claimed by NodeDrain claimed-first; set its stage to Complete or delete it, then recreate this one"
    );
    check_eq!(
        cordon_state(c, "claimed-2").await?,
        (false, None),
        "claimed-second changed nothing"
    );
    // the first one is left as it was: release its node for the next case on this cluster
    nodedrains(c)
        .delete("claimed-first", &Default::default())
        .await?;
    crate::support::wait_gone(c, "claimed-first").await?;
    Ok(format!("{reason}: {message}"))
}

pub(crate) const PLAN_REFUSED: &str = r#"
nodes:
  - {name: planrefused-1, labels: {case: planrefused}}
  - {name: planrefused-2, labels: {case: planrefused}}
workloads:
  - {kind: Pod, name: lonely, namespace: planrefused, replicas: 1, nodes: [planrefused-1]}
"#;

pub(crate) async fn plan_refused<C: Cluster>(c: &C) -> Result<String> {
    create(c, "planrefused-bare", "{nodeNames: [planrefused-1]}").await?;
    let nd = wait_phase(c, "planrefused-bare", Phase::Refused).await?;
    let (_, reason, message) = condition(&nd, "Planned").unwrap_or_default();
    check_eq!(reason, "PlanRefused");
    check!(
        message.starts_with("the plan cannot complete, nothing was changed: cannot delete"),
        "{message}"
    );
    check!(message.contains("planrefused/lonely"), "{message}");
    check_eq!(cordon_state(c, "planrefused-1").await?, (false, None));
    check_eq!(node_patches(c, &["planrefused-1"]).await?, 0);
    Ok(format!("{reason}: {message}"))
}
