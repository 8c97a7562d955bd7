//! The controller: kube-runtime's [`Controller`] watches NodeDrains and hands each object to
//! its worker (`worker.rs`) without waiting: a reconcile only delivers the latest object. The
//! workers live in one [`JoinSet`] owned by [`run`]'s future, so dropping it (a lost lease, a
//! shutdown) stops every drain at once; the next leader resumes them from the cluster's state.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::context::Ctx;
use crate::metrics::Metrics;
use crate::recorder::Events;
use crate::types::{FINALIZER, NodeDrain};
use crate::worker;

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Nodes drained at once over every NodeDrain (`--max-concurrent-nodes`).
    pub max_concurrent_nodes: usize,
    /// This instance's name in Events (the pod name in a cluster).
    pub instance: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_concurrent_nodes: 10,
            instance: None,
        }
    }
}

/// A reconcile cannot fail: it only hands the object over.
#[derive(Debug, thiserror::Error)]
#[error("never")]
pub struct Never;

struct Reconciler {
    ctx: Arc<Ctx>,
    spawn: mpsc::UnboundedSender<watch::Receiver<Arc<NodeDrain>>>,
}

async fn reconcile(nd: Arc<NodeDrain>, r: Arc<Reconciler>) -> Result<Action, Never> {
    let ours = nd.finalizers().iter().any(|f| f == FINALIZER);
    if nd.metadata.deletion_timestamp.is_some() && !ours {
        return Ok(Action::await_change());
    }
    if let Some(inbox) = r.ctx.deliver(nd) {
        let _ = r.spawn.send(inbox);
    }
    Ok(Action::await_change())
}

fn error_policy(_: Arc<NodeDrain>, _: &Never, _: Arc<Reconciler>) -> Action {
    Action::requeue(Duration::from_secs(5))
}

/// Runs the controller until `stop` completes (or the watch ends). Every NodeDrain's work runs
/// inside this future.
pub async fn run(
    client: kube::Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()>,
) {
    let api: Api<NodeDrain> = Api::all(client.clone());
    let controller = Controller::new(api, watcher::Config::default());
    let max = settings.max_concurrent_nodes.max(1);
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        max_concurrent_nodes: max,
        capacity: Arc::new(Semaphore::new(max)),
        budgets: kdrain::BudgetLedger::new(),
        claims: Default::default(),
        metrics,
        events: Events::new(client, settings.instance.clone()),
        instance: settings.instance,
        store: controller.store(),
        inboxes: Mutex::new(HashMap::new()),
    });
    let (spawn, mut spawned) = mpsc::unbounded_channel();
    let reconciler = Arc::new(Reconciler {
        ctx: ctx.clone(),
        spawn,
    });
    let stream = controller
        .run(reconcile, error_policy, reconciler)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!("reconcile: {e}");
            }
        });
    tokio::pin!(stream, stop);
    let mut workers = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stream => break,
            _ = &mut stop => break,
            Some(inbox) = spawned.recv() => {
                workers.spawn(worker::run(ctx.clone(), inbox));
            }
            Some(_) = workers.join_next(), if !workers.is_empty() => {}
        }
    }
    workers.shutdown().await;
}
