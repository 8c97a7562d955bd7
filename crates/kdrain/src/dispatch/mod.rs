//! The budget-aware dispatcher shared by all nodes of a drain. It owns every pod's state, sends
//! evictions (never more in flight per budget than the budget allows, budget-free pods bounded
//! by `max_concurrent_evictions`), follows pods to deletion through one watch per node, retries
//! blocked pods the moment a watched budget allows it (never later than the ceiling), and ends
//! each node with a fresh LIST.

mod answers;
mod budgets;
mod gate;
mod node;
mod pods;
mod track;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::budget;
use crate::events::{Event, EventSender};
use crate::options::{DrainOptions, DryRun};
use crate::plan::{Action, NodePlan};
use crate::report::{NodeReport, PodOutcome};
use crate::requests::Requests;
use crate::select::{DaemonSetLookup, PodFilter};
use crate::watch::{Listed, Seen};
use answers::Done;
pub(crate) use answers::PERMISSION_DENIED;
use budgets::BudgetState;
use node::{IN_FLIGHT_GRACE, NodeRun};
pub(crate) use pods::lookup_daemonset;
use track::{St, Track, Tracks, new_track};

/// Everything the dispatcher needs that does not change during the drain.
pub(crate) struct Shared {
    pub client: kube::Client,
    pub opts: DrainOptions,
    pub events: Option<EventSender>,
    pub filters: Vec<PodFilter>,
    pub pod_selector: Option<selectors::LabelSelector>,
    pub req: Requests,
    pub ds_cache: HashMap<(String, String), DaemonSetLookup>,
}

impl Shared {
    fn emit(&self, ev: Event) {
        if let Some(tx) = &self.events {
            tx.send(ev);
        }
    }
}

/// One node, as prepared by the drainer (read, cordoned and planned).
pub(crate) struct NodeSetup {
    pub name: String,
    pub was_cordoned: bool,
    pub listed: Listed<Pod>,
    pub plan: NodePlan,
    pub req: Requests,
}

/// A future that asks the drain to stop (e.g. Ctrl-C).
pub(crate) type Stop = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The dispatcher.
pub(crate) struct Dispatcher {
    sh: Shared,
    stop: Option<Stop>,
    /// When the stop future fired: like a timeout for every node, and no node starts any more.
    interrupted: Option<Instant>,
    nodes: Vec<NodeRun>,
    tracks: Tracks,
    ignored: HashSet<String>,
    budgets: BTreeMap<String, BudgetState>,
    budgets_rv: Option<String>,
    /// No pending acknowledgement expires before this (a lower bound, exact after each
    /// [`Dispatcher::expire_acks`] pass), so the budgets are not rescanned on every event.
    acks_due: Option<Instant>,
    pdb_watch: Option<JoinHandle<()>>,
    inflight: usize,
    seq: usize,
    pods_tx: UnboundedSender<Seen<Pod>>,
    pods_rx: UnboundedReceiver<Seen<Pod>>,
    pdb_tx: UnboundedSender<Seen<PodDisruptionBudget>>,
    pdb_rx: UnboundedReceiver<Seen<PodDisruptionBudget>>,
    done_tx: UnboundedSender<Done>,
    done_rx: UnboundedReceiver<Done>,
}

const BUDGETS: usize = usize::MAX;

impl Dispatcher {
    /// Prepares the dispatcher; `pdbs` is the budget list the plan used (None with `disable_eviction`).
    pub(crate) fn new(
        sh: Shared,
        setups: Vec<NodeSetup>,
        pdbs: Option<Listed<PodDisruptionBudget>>,
    ) -> Self {
        let (pods_tx, pods_rx) = unbounded_channel();
        let (pdb_tx, pdb_rx) = unbounded_channel();
        let (done_tx, done_rx) = unbounded_channel();
        let mut d = Dispatcher {
            sh,
            stop: None,
            interrupted: None,
            nodes: Vec::new(),
            tracks: Tracks::default(),
            ignored: HashSet::new(),
            budgets: BTreeMap::new(),
            budgets_rv: None,
            acks_due: None,
            pdb_watch: None,
            inflight: 0,
            seq: 0,
            pods_tx,
            pods_rx,
            pdb_tx,
            pdb_rx,
            done_tx,
            done_rx,
        };
        if let Some(l) = pdbs {
            for b in l.items {
                d.budgets
                    .insert(budget::pdb_key(&b), BudgetState::new(b, 0, Instant::now()));
            }
            d.budgets_rv = Some(l.resource_version);
        }
        for (i, s) in setups.into_iter().enumerate() {
            let pods: HashMap<String, &Pod> = s
                .listed
                .items
                .iter()
                .map(|p| (p.metadata.uid.clone().unwrap_or_default(), p))
                .collect();
            let mut order = Vec::new();
            for pp in &s.plan.pods {
                let Some(pod) = pods.get(&pp.uid) else {
                    continue;
                };
                let st = match pp.action {
                    Action::Evict | Action::Delete => St::Queued,
                    Action::Wait => St::Following,
                    Action::Skip => St::Done(PodOutcome::Skipped),
                    Action::Refuse => St::Done(PodOutcome::Failed {
                        error: pp.reason.clone(),
                    }),
                };
                d.seq += 1;
                let ix = d.tracks.insert(new_track(
                    pp.uid.clone(),
                    i,
                    (*pod).clone(),
                    pp.action,
                    pp.reason.clone(),
                    st,
                    d.seq,
                ));
                d.tracks.at_mut(ix).protected_until = pp.protected_until;
                order.push(ix);
            }
            for p in &s.listed.items {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                if !d.tracks.contains_key(&uid) {
                    d.ignored.insert(uid);
                }
            }
            d.nodes.push(NodeRun {
                name: s.name,
                was_cordoned: s.was_cordoned,
                req: s.req,
                listed_rv: s.listed.resource_version,
                active: false,
                started: None,
                deadline: None,
                watch: None,
                outcome: None,
                seconds: 0.0,
                open: order
                    .iter()
                    .copied()
                    .filter(|&ix| !d.tracks.at(ix).done())
                    .collect(),
                order,
                final_list_retry: None,
                expired: None,
                awaiting: 0,
                last_sent: None,
            });
        }
        d
    }
    /// Stops the drain when `stop` completes: nothing more is sent, the answers to requests in
    /// flight are awaited, and pods not gone are reported as left.
    pub(crate) fn with_stop(mut self, stop: Stop) -> Self {
        self.stop = Some(stop);
        self
    }
    /// Runs the drain of every node to its end and returns the node reports.
    pub(crate) async fn run(mut self) -> Vec<NodeReport> {
        if self.stop_requested() {
            self.interrupt();
        } else {
            for i in 0..self.nodes.len().min(self.sh.opts.parallel_nodes.max(1)) {
                self.activate(i);
            }
        }
        loop {
            if self.interrupted.is_none() && self.stop_requested() {
                self.interrupt();
            }
            self.compact_open();
            self.expire_acks();
            self.skip_stale_terminating();
            self.dispatch();
            let active = self.nodes.iter().filter(|n| n.active).count();
            self.check_nodes().await;
            if self.nodes.iter().all(|n| n.outcome.is_some()) {
                break;
            }
            if self.nodes.iter().filter(|n| n.active).count() != active {
                // a node was just activated: dispatch its pods before sleeping
                continue;
            }
            let wake = self.next_wake();
            let waiting_for_stop = self.interrupted.is_none() && self.stop.is_some();
            tokio::select! {
                _ = async { self.stop.as_mut().expect("stop").await }, if waiting_for_stop => {
                    self.stop = None;
                    self.interrupt();
                }
                Some(d) = self.done_rx.recv() => self.on_done(d),
                Some(s) = self.pods_rx.recv() => self.on_pods(s).await,
                Some(s) = self.pdb_rx.recv() => self.on_budgets(s),
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
        if let Some(h) = self.pdb_watch.take() {
            h.abort();
        }
        self.reports()
    }
    fn dry(&self) -> DryRun {
        self.sh.opts.dry_run
    }
    /// True when the stop future has completed (polled once, without waiting).
    fn stop_requested(&mut self) -> bool {
        let Some(stop) = self.stop.as_mut() else {
            return false;
        };
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        if stop.as_mut().poll(&mut cx).is_ready() {
            self.stop = None;
            return true;
        }
        false
    }
    /// The tracks not done yet of the nodes being drained now (active and not finished).
    fn live(&self) -> impl Iterator<Item = (&String, &Track)> {
        self.live_ix().map(|(_, t)| (&t.uid, t))
    }
    /// [`Self::live`] with each track's index.
    fn live_ix(&self) -> impl Iterator<Item = (usize, &Track)> {
        self.nodes
            .iter()
            .filter(|n| n.active && n.outcome.is_none())
            .flat_map(|n| n.open.iter())
            .map(|&ix| (ix, self.tracks.at(ix)))
            .filter(|(_, t)| !t.done())
    }
    /// The lowest tier with pods still to go, per node (Karpenter's order).
    fn open_tiers(&self) -> Vec<u8> {
        let mut open = vec![u8::MAX; self.nodes.len()];
        for (_, t) in self.live() {
            if t.is_target() && !t.done() && t.tier < open[t.node] {
                open[t.node] = t.tier;
            }
        }
        open
    }
    /// Drops the tracks that are done from the running nodes' open lists.
    fn compact_open(&mut self) {
        let tracks = &self.tracks;
        for n in self.nodes.iter_mut().filter(|n| n.active) {
            n.open.retain(|&ix| !tracks.at(ix).done());
        }
    }
    fn next_wake(&self) -> Instant {
        let mut wake = Instant::now() + Duration::from_secs(3600);
        let skip_wait = self
            .sh
            .opts
            .skip_wait_for_delete_timeout
            .filter(|d| !d.is_zero());
        for (_, t) in self.live() {
            if t.st == St::Retry
                && let Some(n) = t.next_at
            {
                wake = wake.min(n.max(t.not_before.unwrap_or(n)));
            }
            if let Some(limit) = skip_wait
                && matches!(t.st, St::Following | St::Retry)
                && let Some(dt) = t.pod.metadata.deletion_timestamp.as_ref()
            {
                let at = dt.0 + jiff::SignedDuration::from_secs(limit.as_secs() as i64 + 1);
                let secs = at
                    .duration_since(jiff::Timestamp::now())
                    .as_secs_f64()
                    .max(0.0);
                wake = wake.min(Instant::now() + Duration::from_secs_f64(secs));
            }
        }
        for n in &self.nodes {
            if n.outcome.is_none() {
                match (n.deadline, n.expired) {
                    (_, Some(at)) => wake = wake.min(at + IN_FLIGHT_GRACE),
                    (Some(d), None) => wake = wake.min(d),
                    (None, None) => {}
                }
                if let Some(r) = n.final_list_retry {
                    wake = wake.min(r);
                }
            }
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].outcome.is_none()
                && let Some(until) = self.answer_due(i)
            {
                wake = wake.min(until);
            }
        }
        if let Some(due) = self.acks_due {
            wake = wake.min(due);
        }
        wake
    }
}
