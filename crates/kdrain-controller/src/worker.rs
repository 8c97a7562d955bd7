//! One task per NodeDrain: it takes the latest object from the reconciler (which never waits),
//! carries out its stage step by step (every step idempotent, so a restart or a new leader
//! simply runs the stage again from the cluster's state), and keeps the status current.

use std::sync::Arc;
use std::time::Duration;

use kdrain::{DrainError, Drainer, Stamped};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use tokio::sync::{mpsc, watch};

use crate::claims;
use crate::context::Ctx;
use crate::nodes::{self, ResolveError};
use crate::run::Run;
use crate::spec::{self, Request};
use crate::stage;
use crate::types::{FINALIZER, NodeDrain, Phase, Stage};

/// Why a step did not finish.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The API failed; the step is tried again after a pause.
    #[error("{0}")]
    Api(#[from] kube::Error),
    /// The library failed for a reason worth retrying.
    #[error("{0}")]
    Drain(#[from] DrainError),
}

/// Runs NodeDrain `rx`'s work until it is deleted and finalized.
pub(crate) async fn run(ctx: Arc<Ctx>, mut rx: watch::Receiver<Arc<NodeDrain>>) {
    let mut pause = Duration::from_millis(500);
    // Counted while a step runs or waits to be retried; not while the NodeDrain rests in the
    // phase its stage ends in (Planned, Cordoned, Drained, Failed, Completed).
    let mut active = None;
    loop {
        let nd = rx.borrow_and_update().clone();
        if active.is_none() {
            active = Some(Active::new(ctx.clone(), nd.name_any()));
        }
        let result = if nd.metadata.deletion_timestamp.is_some() {
            match finalize(&ctx, &nd).await {
                Ok(()) => break,
                Err(e) => Err(e),
            }
        } else {
            step(&ctx, &nd, &mut rx).await
        };
        match result {
            Ok(()) => {
                pause = Duration::from_millis(500);
                active = None;
                if !wait_for_change(&mut rx, &nd, None).await {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(nodedrain = %nd.name_any(), "will retry: {e}");
                if !wait_for_change(&mut rx, &nd, Some(pause)).await && rx.has_changed().is_err() {
                    break;
                }
                pause = (pause * 2).min(Duration::from_secs(30));
            }
        }
    }
    ctx.forget(&rx.borrow().name_any());
}

/// Counts a worker in `kdrain_active_drains` while its step runs or is retried, also when it is
/// aborted (a lost lease, a shutdown), and clears its waiting pods from `kdrain_blocked_pods`
/// when it goes.
struct Active {
    ctx: Arc<Ctx>,
    name: String,
}

impl Active {
    fn new(ctx: Arc<Ctx>, name: String) -> Self {
        ctx.metrics.active(1);
        Active { ctx, name }
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.ctx.metrics.set_blocked(&self.name, Default::default());
        self.ctx.metrics.active(-1);
    }
}

/// True when `new` asks for other work than `old`: another generation, or a deletion.
pub(crate) fn changed_work(old: &NodeDrain, new: &NodeDrain) -> bool {
    old.metadata.generation != new.metadata.generation
        || old.metadata.deletion_timestamp.is_some() != new.metadata.deletion_timestamp.is_some()
}

/// Waits until the object asks for other work (true), `timeout` passes (false), or the channel
/// closes (false).
async fn wait_for_change(
    rx: &mut watch::Receiver<Arc<NodeDrain>>,
    old: &NodeDrain,
    timeout: Option<Duration>,
) -> bool {
    let wait = async {
        loop {
            if rx.changed().await.is_err() {
                return false;
            }
            if changed_work(old, &rx.borrow()) {
                return true;
            }
        }
    };
    match timeout {
        None => wait.await,
        Some(t) => tokio::time::timeout(t, wait).await.unwrap_or(false),
    }
}

/// Adds the finalizer (once) so that a deletion waits for the nodes to be restored.
async fn ensure_finalizer(ctx: &Ctx, nd: &NodeDrain) -> Result<(), kube::Error> {
    if nd.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(());
    }
    let mut finalizers = nd.finalizers().to_vec();
    finalizers.push(FINALIZER.into());
    let body = serde_json::json!({"metadata": {"finalizers": finalizers, "resourceVersion": nd.resource_version()}});
    let api: Api<NodeDrain> = Api::all(ctx.client.clone());
    api.patch(
        &nd.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&body),
    )
    .await?;
    Ok(())
}

/// A deleted NodeDrain: its drain has stopped (the step watching the object ended it); the
/// nodes it cordoned are uncordoned, then the finalizer goes.
async fn finalize(ctx: &Ctx, nd: &NodeDrain) -> Result<(), StepError> {
    let name = nd.name_any();
    if !nd.finalizers().iter().any(|f| f == FINALIZER) {
        ctx.claims.release(&name);
        return Ok(());
    }
    let restored = nodes::uncordon_own(&ctx.client, &name).await?;
    for n in &restored {
        ctx.events
            .publish(
                &crate::recorder::node_ref(n),
                Some(crate::recorder::drain_ref(nd)),
                false,
                "Uncordoned",
                "Uncordon",
                format!("NodeDrain {name} was deleted: the node it cordoned is schedulable again"),
            )
            .await;
    }
    ctx.claims.release(&name);
    let rest: Vec<String> = nd
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    let body = serde_json::json!({"metadata": {"finalizers": rest, "resourceVersion": nd.resource_version()}});
    let api: Api<NodeDrain> = Api::all(ctx.client.clone());
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&body))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Carries out the object's stage (unless its status says it is done for this generation).
async fn step(
    ctx: &Arc<Ctx>,
    nd: &NodeDrain,
    rx: &mut watch::Receiver<Arc<NodeDrain>>,
) -> Result<(), StepError> {
    ensure_finalizer(ctx, nd).await?;
    if stage::settled(nd.spec.stage, nd.metadata.generation, nd.status.as_ref()) {
        return Ok(());
    }
    let name = nd.name_any();
    let mut run = Run::new(ctx.clone(), nd);
    let req = match spec::check(&nd.spec) {
        Ok(r) => r,
        Err(message) => return run.refuse("InvalidSpec", message).await,
    };
    if req.stage == Stage::Complete {
        return run.complete().await;
    }
    let nodes = match nodes::resolve(&ctx.client, &req.targets).await {
        Ok(n) => n,
        Err(ResolveError::Refused { reason, message }) => return run.refuse(reason, message).await,
        Err(ResolveError::Api(e)) => return Err(e.into()),
    };
    let everyone: Vec<NodeDrain> = ctx.store.state().iter().map(|o| (**o).clone()).collect();
    if let Some((other, node)) = claims::earlier_claim(nd, &nodes, &everyone) {
        return run
            .refuse("NodeClaimed", claims::refusal(&other, &node))
            .await;
    }
    if let Err((other, node)) = ctx.claims.claim(&name, &nodes) {
        return run
            .refuse("NodeClaimed", claims::refusal(&other, &node))
            .await;
    }
    run.start(&nodes).await;
    // plan, from reads only, once: the drain carries out this plan with the same reads
    let options = req.options_for(nodes.len(), ctx.max_concurrent_nodes);
    let (tx, mut events) = mpsc::unbounded_channel::<Stamped>();
    // a drain checks its rights before the first change: the cordon below is the controller's
    // own, so the check runs here (a right missing only in some namespaces, such as evictions
    // or deletions granted by RoleBindings, or DaemonSet reads, is found here, not at start)
    let (prepared, access) = match drainer(ctx, options.clone(), tx) {
        Ok(planner) => {
            let prepared = planner.prepare(&nodes).await;
            let access = match &prepared {
                Ok(p) if req.stage == Stage::Drain && p.plan().can_complete() => {
                    planner.check_access(p).await
                }
                _ => Ok(()),
            };
            (prepared, access)
        }
        Err(e) => (Err(e), Ok(())),
    };
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(DrainError::NodeNotFound { node }) => {
            return run
                .refuse(
                    "NodeNotFound",
                    format!(
                        "node {node} not found; check spec.nodeNames against `kubectl get nodes`"
                    ),
                )
                .await;
        }
        Err(e @ DrainError::Options(_)) => return run.refuse("InvalidSpec", e.to_string()).await,
        Err(e) => return Err(e.into()),
    };
    let plan = prepared.plan();
    while let Some(ev) = events.recv().await {
        run.observe(&ev).await;
    }
    if !plan.can_complete() {
        return run.refuse("PlanRefused", plan_refusal(plan)).await;
    }
    match access {
        Ok(()) => {}
        Err(e @ DrainError::Forbidden { .. }) => {
            let message = format!(
                "nothing was changed: {}; then change the spec (or recreate the NodeDrain) to try again",
                e.to_string().replace(
                    "the drain's service account or user",
                    "the controller's ServiceAccount (deploy/controller/rbac.yaml)"
                )
            );
            tracing::error!(nodedrain = %name, "{message}");
            return run.refuse("Forbidden", message).await;
        }
        Err(e) => return Err(e.into()),
    }
    run.planned(plan).await;
    if req.stage == Stage::Idle {
        return run.finish(Phase::Planned).await;
    }
    let cordoned = nodes::cordon(&ctx.client, &name, &nodes).await?;
    run.cordoned(&cordoned).await;
    if req.stage == Stage::Cordon {
        return run.finish(Phase::Cordoned).await;
    }
    drain(ctx, run, &req, prepared, options, rx).await
}

/// A drainer for one NodeDrain: its options, its events, and the controller's budget ledger
/// shared by every NodeDrain.
fn drainer(
    ctx: &Ctx,
    options: kdrain::DrainOptions,
    tx: mpsc::UnboundedSender<Stamped>,
) -> Result<Drainer, DrainError> {
    Drainer::builder(ctx.client.clone())
        .options(options)
        .events(tx)
        .shared_budgets(ctx.budgets.clone())
        .build()
}

/// The Refused message of a plan that cannot complete: its errors on one line, and the fix.
fn plan_refusal(plan: &kdrain::Plan) -> String {
    let errors = plan.errors.join("; ").replace('\n', " ");
    format!(
        "the plan cannot complete, nothing was changed: {errors}; fix the spec's options (force, ignoreDaemonSets, deleteEmptyDirData) or the budgets, then recreate the NodeDrain"
    )
}

/// The drain itself, in the background of this task: waits for `--max-concurrent-nodes` room,
/// runs the library, feeds the status, and stops cleanly when the object asks for other work.
async fn drain(
    ctx: &Arc<Ctx>,
    mut run: Run,
    req: &Request,
    prepared: kdrain::Prepared,
    options: kdrain::DrainOptions,
    rx: &mut watch::Receiver<Arc<NodeDrain>>,
) -> Result<(), StepError> {
    let current = rx.borrow().clone();
    let permits = options.parallel_nodes as u32;
    let permit = match ctx.capacity.clone().try_acquire_many_owned(permits) {
        Ok(p) => p,
        Err(_) => {
            run.waiting_for_capacity(ctx.max_concurrent_nodes).await;
            let acquire = ctx.capacity.clone().acquire_many_owned(permits);
            tokio::pin!(acquire);
            loop {
                tokio::select! {
                    p = &mut acquire => break p.expect("the semaphore is never closed"),
                    changed = rx.changed() => {
                        if changed.is_err() || changed_work(&current, &rx.borrow()) {
                            return Ok(());
                        }
                    }
                }
            }
        }
    };
    run.draining().await;
    let (tx, mut events) = mpsc::unbounded_channel::<Stamped>();
    let drainer = drainer(ctx, options, tx)?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        let _ = stop_rx.await;
    };
    let work = drainer.execute_prepared(prepared, stop);
    tokio::pin!(work);
    let mut stop_tx = Some(stop_tx);
    let mut tick = tokio::time::interval(stage::Throttle::EVERY);
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            Some(ev) = events.recv() => run.observe(&ev).await,
            _ = tick.tick() => run.write(false).await,
            changed = rx.changed(), if stop_tx.is_some() => {
                if changed.is_err() || changed_work(&current, &rx.borrow()) {
                    // the spec changed or the object is being deleted: stop; the next step
                    // carries out what it asks now
                    let _ = stop_tx.take().map(|s| s.send(()));
                }
            }
        }
    };
    while let Ok(ev) = events.try_recv() {
        run.observe(&ev).await;
    }
    drop(permit);
    if stop_tx.is_none() {
        run.interrupted().await;
        return Ok(());
    }
    match result {
        Ok(report) => run.drained(report.seconds).await,
        Err(e) => run.failed(&e, req.on_failure).await,
    }
}
