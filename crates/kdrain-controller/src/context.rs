//! What every NodeDrain's worker shares: the client, the cluster-wide node concurrency, the
//! claims table, Events, metrics, the reconciler's cache of NodeDrains and the workers' inboxes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::runtime::reflector::Store;
use tokio::sync::{Semaphore, watch};

use crate::claims::Claims;
use crate::metrics::Metrics;
use crate::recorder::Events;
use crate::types::NodeDrain;

/// Shared by the reconciler and every worker.
pub(crate) struct Ctx {
    pub client: kube::Client,
    /// `--max-concurrent-nodes`.
    pub max_concurrent_nodes: usize,
    /// Permits for nodes draining at once, over every NodeDrain.
    pub capacity: Arc<Semaphore>,
    /// Evictions spent under budgets by every NodeDrain's drain: budgets hold across them.
    pub budgets: kdrain::BudgetLedger,
    pub claims: Claims,
    pub metrics: Arc<Metrics>,
    pub events: Events,
    /// This instance's name in Events.
    pub instance: Option<String>,
    /// Every NodeDrain, as the reconciler's watch last saw it.
    pub store: Store<NodeDrain>,
    /// Each worker's inbox (the latest object), by NodeDrain name.
    pub inboxes: Mutex<HashMap<String, watch::Sender<Arc<NodeDrain>>>>,
}

impl Ctx {
    /// Hands `nd` to its worker; returns the new worker's inbox when there is none yet.
    pub(crate) fn deliver(&self, nd: Arc<NodeDrain>) -> Option<watch::Receiver<Arc<NodeDrain>>> {
        let name = nd.metadata.name.clone().unwrap_or_default();
        let mut inboxes = self.inboxes.lock().expect("inboxes lock");
        if let Some(tx) = inboxes.get(&name)
            && !tx.is_closed()
        {
            tx.send_replace(nd);
            return None;
        }
        let (tx, rx) = watch::channel(nd);
        inboxes.insert(name, tx);
        Some(rx)
    }

    /// A worker ended.
    pub(crate) fn forget(&self, name: &str) {
        let mut inboxes = self.inboxes.lock().expect("inboxes lock");
        if inboxes.get(name).is_some_and(|tx| tx.receiver_count() <= 1) {
            inboxes.remove(name);
        }
    }
}
