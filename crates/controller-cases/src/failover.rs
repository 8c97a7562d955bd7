//! The leader killed with SIGKILL mid-drain: the standby takes over once the lease runs out
//! and finishes the drain, every pod evicted once, no invariant finding.

use std::time::Instant;

use anyhow::Result;
use k8s_openapi::api::coordination::v1::Lease;
use kdrain_controller::Phase;
use kdrain_controller::leader::LEASE_NAME;
use kube::Api;

use crate::support::{create, evictions, no_findings, nodedrains, pods_on, until, wait_phase};
use crate::{Cluster, check, check_eq};

pub(crate) const FAILOVER: &str = r#"
nodes:
  - {name: failover-1, labels: {case: failover}}
  - {name: failover-2, labels: {case: failover}}
  - {name: failover-3, labels: {case: failover}}
workloads:
  - {kind: Deployment, name: web, namespace: failover, replicas: 4, nodes: [failover-1], nodeSelector: {case: failover}, terminationSeconds: 0.2, readySeconds: 1.5}
pdbs:
  - {name: web, namespace: failover, selector: {app: web}, maxUnavailable: 1}
"#;

async fn holder<C: Cluster>(c: &C) -> Option<(String, Option<i32>)> {
    let lease = Api::<Lease>::namespaced(c.client(), c.lease_namespace())
        .get_opt(LEASE_NAME)
        .await
        .ok()??;
    let spec = lease.spec?;
    Some((spec.holder_identity?, spec.lease_duration_seconds))
}

pub(crate) async fn failover<C: Cluster>(c: &C) -> Result<String> {
    let t0 = Instant::now();
    c.start_controller("failover-a").await?;
    let result = failover_with(c, t0).await;
    let _ = c.kill_controller("failover-a").await;
    c.stop_controller("failover-b").await?;
    result
}

async fn failover_with<C: Cluster>(c: &C, t0: Instant) -> Result<String> {
    until("failover-a leading", || async {
        holder(c).await.is_some_and(|(h, _)| h == "failover-a")
    })
    .await?;
    c.start_controller("failover-b").await?;
    create(c, "failover-drain", "{nodeNames: [failover-1]}").await?;
    let api = nodedrains(c);
    let gone = || async {
        api.get_opt("failover-drain")
            .await
            .ok()
            .flatten()
            .and_then(|nd| nd.status)
            .and_then(|s| s.nodes.first().map(|n| n.pods_gone))
            .unwrap_or(0)
    };
    until("a pod gone", || async { gone().await >= 1 }).await?;
    let killed_at = t0.elapsed();
    let gone_at_kill = gone().await;
    c.kill_controller("failover-a").await?;
    until("failover-b leading", || async {
        holder(c).await.is_some_and(|(h, _)| h == "failover-b")
    })
    .await?;
    let took_over_at = t0.elapsed();
    let lease = holder(c).await.and_then(|(_, d)| d).unwrap_or_default();
    wait_phase(c, "failover-drain", Phase::Drained).await?;
    let drained_at = t0.elapsed();
    check!(
        pods_on(c, "failover-1").await?.is_empty(),
        "pods left on failover-1"
    );
    let findings = c.findings("failover", &["failover-1"]).await?;
    no_findings(c, "failover", &["failover-1"]).await?;
    let accepted = evictions(c, "failover", Some(201)).await?;
    check_eq!(accepted, 4, "every pod evicted once, none twice");
    Ok(format!(
        "leader failover-a SIGKILLed at {:.1} s ({gone_at_kill}/4 pods gone), standby failover-b leading at {:.1} s ({:.1} s later; lease {lease} s), Drained at {:.1} s; evictions accepted {accepted} (one per pod), invariant findings {}",
        killed_at.as_secs_f64(),
        took_over_at.as_secs_f64(),
        (took_over_at - killed_at).as_secs_f64(),
        drained_at.as_secs_f64(),
        findings.len()
    ))
}
