//! Leader election on a `coordination.k8s.io/v1` Lease with the `kube-lease-manager` crate: only
//! the holder runs the controller; a standby takes over when the holder stops renewing (at the
//! latest one lease duration after its last renewal).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kube_lease_manager::LeaseManagerBuilder;

use crate::metrics::Metrics;

/// The Lease's name.
pub const LEASE_NAME: &str = "kdrain-controller";

/// Where and how the lease is held.
#[derive(Debug, Clone)]
pub struct Election {
    /// The Lease's namespace.
    pub namespace: String,
    /// This instance's identity (unique: the pod name in a cluster).
    pub identity: String,
    /// How long a lease lasts without renewal, in seconds.
    pub lease_seconds: u64,
    /// How long before its end the holder renews it, in seconds.
    pub renew_before_seconds: u64,
}

/// Leader election failed to start (the Lease could not be read or created).
#[derive(Debug, thiserror::Error)]
#[error("leader election on Lease {namespace}/{LEASE_NAME}: {source}")]
pub struct ElectionError {
    namespace: String,
    #[source]
    source: kube_lease_manager::LeaseManagerError,
}

/// Runs `work()` whenever this instance holds the lease, and drops it when the lease is lost,
/// until `stop` completes; then the lease is released for a standby to take at once.
pub async fn lead<F, W>(
    client: kube::Client,
    election: Election,
    metrics: Arc<Metrics>,
    work: W,
    stop: impl Future<Output = ()>,
) -> Result<(), ElectionError>
where
    W: Fn() -> F,
    F: Future<Output = ()>,
{
    let manager = LeaseManagerBuilder::new(client, LEASE_NAME)
        .with_namespace(election.namespace.clone())
        .with_identity(election.identity.clone())
        .with_duration(election.lease_seconds)
        .with_grace(election.renew_before_seconds)
        .build()
        .await
        .map_err(|source| ElectionError {
            namespace: election.namespace.clone(),
            source,
        })?;
    let (mut leading, task) = manager.watch().await;
    tokio::pin!(stop);
    'outer: loop {
        while !*leading.borrow_and_update() {
            tokio::select! {
                _ = &mut stop => break 'outer,
                changed = leading.changed() => if changed.is_err() { break 'outer },
            }
        }
        tracing::info!(identity = %election.identity, "leading");
        metrics.set_leader(true);
        let run = work();
        tokio::pin!(run);
        loop {
            tokio::select! {
                _ = &mut stop => break 'outer,
                _ = &mut run => {
                    // the controller ended on its own: wait for the lease to change
                    break;
                }
                changed = leading.changed() => {
                    if changed.is_err() { break 'outer; }
                    if !*leading.borrow() { break; }
                }
            }
        }
        tracing::info!(identity = %election.identity, "no longer leading");
        metrics.set_leader(false);
    }
    metrics.set_leader(false);
    // closing the channel makes the manager release the lease
    drop(leading);
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    Ok(())
}
