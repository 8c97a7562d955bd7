//! The budget-aware dispatcher shared by all nodes of a drain. It owns every pod's state, sends
//! evictions (never more in flight per budget than the budget allows, budget-free pods bounded
//! by `max_concurrent_evictions`), follows pods to deletion through one watch per node, retries
//! blocked pods the moment a watched budget allows it (never later than the ceiling), and ends
//! each node with a fresh LIST.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use backon::BackoffBuilder;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::budget::{self, BudgetNow};
use crate::events::{Event, EventSender, Healthy, PodRef, WaitsFor};
use crate::evict::{self, Attempt};
use crate::options::{DrainOptions, DryRun};
use crate::plan::{Action, NodePlan, pod_ref};
use crate::report::{NodeOutcome, NodeReport, PodOutcome, PodReport};
use crate::requests::Requests;
use crate::select::{self, DaemonSetLookup, PodFilter};
use crate::watch::{self, Change, Listed, Seen};

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

#[derive(Debug, Clone, PartialEq)]
enum St {
    /// Waiting for its first attempt.
    Queued,
    /// A request is in flight.
    InFlight,
    /// Accepted (or waiting for completion / namespace deletion): following it to deletion.
    Following,
    /// Waiting for `next_at` (blocked by a budget, throttled, or backing off).
    Retry,
    /// Finished.
    Done(PodOutcome),
}

struct Track {
    uid: String,
    node: usize,
    r: PodRef,
    pod: Pod,
    action: Action,
    reason: String,
    tier: u8,
    st: St,
    attempts: u32,
    first_attempt: Option<jiff::Timestamp>,
    accepted: Option<jiff::Timestamp>,
    gone: Option<jiff::Timestamp>,
    blocked_by: Option<String>,
    by_budget: bool,
    blocked_since: Option<Instant>,
    blocked_first: Option<jiff::Timestamp>,
    blocked_total: Duration,
    last_cause: Option<String>,
    next_at: Option<Instant>,
    not_before: Option<Instant>,
    backoff: Option<backon::ExponentialBackoff>,
    inflight_budget: Option<String>,
    terminating_seen: bool,
    last_sent: Option<Instant>,
    seq: usize,
    /// Not sent before this moment (`karpenter.sh/do-not-disrupt` with a duration).
    protected_until: Option<jiff::Timestamp>,
}

impl Track {
    fn is_target(&self) -> bool {
        self.action.is_target()
    }
    fn done(&self) -> bool {
        matches!(self.st, St::Done(_))
    }
    fn unblock(&mut self, now: Instant) {
        if let Some(s) = self.blocked_since.take() {
            self.blocked_total += now - s;
        }
    }
}

struct BudgetState {
    pdb: PodDisruptionBudget,
    /// Pods whose eviction the server accepted and no status seen since the send has counted
    /// (the pod in `disruptedPods`), with when the answer came: the budget's allowance as
    /// watched is one too high for each until then (or until [`ack_ttl`]).
    pending_ack: HashMap<String, Instant>,
    /// When each pod name was last seen in the status's `disruptedPods`. The eviction's own
    /// status write lists the pod, and every later status in the watch's order reflects the
    /// eviction even once the disruption controller drops the terminating pod from the map. So
    /// a pod listed in any status received after its eviction was sent needs no pending
    /// acknowledgement, whether the answer came before or after that status.
    seen_disrupted: HashMap<String, Instant>,
    inflight: i32,
    last_probe: Option<Instant>,
}

impl BudgetState {
    fn new(pdb: PodDisruptionBudget, inflight: i32, now: Instant) -> Self {
        let mut b = BudgetState {
            pdb,
            pending_ack: HashMap::new(),
            seen_disrupted: HashMap::new(),
            inflight,
            last_probe: None,
        };
        b.note_disrupted(now);
        b
    }

    /// Records the pods the current status lists as disrupted (and settles their pending
    /// acknowledgements).
    fn note_disrupted(&mut self, now: Instant) {
        let listed = self
            .pdb
            .status
            .as_ref()
            .and_then(|s| s.disrupted_pods.as_ref());
        for name in listed.into_iter().flat_map(|m| m.keys()) {
            self.pending_ack.remove(name);
            self.seen_disrupted.insert(name.clone(), now);
        }
    }

    /// True when a status received at or after `sent` listed `pod` as disrupted.
    fn counted_since(&self, pod: &str, sent: Instant) -> bool {
        self.seen_disrupted.get(pod).is_some_and(|at| *at >= sent)
    }
}

impl BudgetState {
    fn effective(&self) -> i32 {
        let now = BudgetNow::of(&self.pdb);
        if !now.observed {
            return 0;
        }
        now.allowed
            .saturating_sub(self.pending_ack.len() as i32)
            .saturating_sub(self.inflight)
    }
}

struct NodeRun {
    name: String,
    was_cordoned: bool,
    req: Requests,
    listed_rv: String,
    active: bool,
    started: Option<Instant>,
    deadline: Option<Instant>,
    watch: Option<JoinHandle<()>>,
    outcome: Option<NodeOutcome>,
    seconds: f64,
    /// The node's tracks (indexes into [`Tracks`]), in plan order.
    order: Vec<usize>,
    /// A superset of the node's tracks not done yet, so that the scans run on every event only
    /// visit pods still in play (done ones are dropped by [`Dispatcher::compact_open`]).
    open: Vec<usize>,
    final_list_retry: Option<Instant>,
    /// When the timeout was reached: nothing more is sent for this node, and it closes once the
    /// requests in flight have answered (or after [`IN_FLIGHT_GRACE`]).
    expired: Option<Instant>,
    /// Requests sent for the node's pods and not answered yet. The node is not closed before
    /// the answers (up to [`IN_FLIGHT_GRACE`] after the last send), so the report and the events
    /// say what the server answered even when the watch saw a pod go first.
    awaiting: usize,
    /// When the last request for the node's pods was sent.
    last_sent: Option<Instant>,
}

/// How long a timed-out node waits for the answers to requests already in flight, so that its
/// report says what really happened to those pods.
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(10);

struct Done {
    uid: String,
    attempt: Attempt,
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

    /// Stops everything: running nodes end like at a timeout (requests in flight answered
    /// first), nodes not started yet end at once with their pods left.
    fn interrupt(&mut self) {
        let now = Instant::now();
        self.interrupted = Some(now);
        tracing::debug!("drain interrupted");
        for i in 0..self.nodes.len() {
            if self.nodes[i].outcome.is_some() || self.nodes[i].active {
                continue;
            }
            let left: Vec<usize> = self.nodes[i]
                .order
                .iter()
                .copied()
                .filter(|&ix| {
                    let t = self.tracks.at(ix);
                    t.is_target() && !t.done()
                })
                .collect();
            let error = "interrupted before this node's drain started".to_string();
            let mut pending = Vec::new();
            for ix in left {
                let t = self.tracks.at_mut(ix);
                t.st = St::Done(PodOutcome::Failed {
                    error: error.clone(),
                });
                pending.push(t.r.clone());
            }
            let n = &mut self.nodes[i];
            n.outcome = Some(NodeOutcome::Failed {
                error: error.clone(),
            });
            let node = n.name.clone();
            self.sh.emit(Event::NodeFailed {
                node,
                error,
                pending,
            });
        }
    }

    fn activate(&mut self, i: usize) {
        let now = Instant::now();
        let n = &mut self.nodes[i];
        n.active = true;
        n.started = Some(now);
        n.deadline = self
            .sh
            .opts
            .timeout
            .filter(|t| !t.is_zero())
            .map(|t| now + t);
        if self.sh.opts.dry_run == DryRun::None {
            let api: Api<Pod> = Api::all(self.sh.client.clone());
            n.watch = Some(tokio::spawn(watch::run(
                api,
                Some(format!("spec.nodeName={}", n.name)),
                n.listed_rv.clone(),
                self.sh.opts.chunk_size,
                i,
                self.pods_tx.clone(),
                n.req.clone(),
                "pods",
            )));
        }
        if self.sh.opts.dry_run == DryRun::Server {
            // nothing changes in a server dry run: there is nothing to wait for
            for &ix in &self.nodes[i].order {
                let t = self.tracks.at_mut(ix);
                if t.action == Action::Wait {
                    t.st = St::Done(PodOutcome::DryRun);
                }
            }
        }
        for ix in self.nodes[i].order.clone() {
            self.hold_if_protected(ix);
        }
        let skipped: Vec<(PodRef, String)> = self.nodes[i]
            .order
            .iter()
            .map(|&ix| self.tracks.at(ix))
            .filter(|t| t.action == Action::Skip)
            .map(|t| (t.r.clone(), t.reason.clone()))
            .collect();
        let name = self.nodes[i].name.clone();
        for (pod, reason) in skipped {
            self.sh.emit(Event::Skipped {
                node: name.clone(),
                pod,
                reason,
            });
        }
    }

    /// A pod protected by `karpenter.sh/do-not-disrupt` for a while yet: nothing is sent before
    /// the protection ends, and a `Blocked` event (no budget) says until when and why. Dry runs
    /// change nothing, so they do not wait.
    fn hold_if_protected(&mut self, ix: usize) {
        let t = self.tracks.at(ix);
        let Some(until) = t.protected_until else {
            return;
        };
        if t.st != St::Queued || self.dry() != DryRun::None {
            return;
        }
        let now = Instant::now();
        let left = until.duration_since(jiff::Timestamp::now());
        let Ok(left) = Duration::try_from(left) else {
            return; // already over
        };
        let Some(next) = now.checked_add(left) else {
            return;
        };
        let uid = t.uid.clone();
        let reason = t.reason.clone();
        self.set_blocked(
            &uid,
            None,
            WaitsFor::Protection,
            format!("protected: {reason}"),
            format!("{reason}; no request sent before then"),
            next,
            now,
        );
    }

    fn ensure_pdb_watch(&mut self) {
        if self.pdb_watch.is_some() || self.dry() != DryRun::None {
            return;
        }
        let Some(rv) = self.budgets_rv.clone() else {
            return;
        };
        let api: Api<PodDisruptionBudget> = Api::all(self.sh.client.clone());
        self.pdb_watch = Some(tokio::spawn(watch::run(
            api,
            None,
            rv,
            self.sh.opts.chunk_size,
            BUDGETS,
            self.pdb_tx.clone(),
            self.sh.req.clone(),
            "poddisruptionbudgets",
        )));
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

    fn covering(&self, pod: &Pod) -> Vec<String> {
        let empty = BTreeMap::new();
        let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
        self.budgets
            .iter()
            .filter(|(_, b)| b.pdb.metadata.namespace == pod.metadata.namespace)
            .filter(|(_, b)| {
                budget::selector_matches(
                    b.pdb.spec.as_ref().and_then(|s| s.selector.as_ref()),
                    labels,
                )
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn dispatch(&mut self) {
        let now = Instant::now();
        let max = self.sh.opts.max_concurrent_evictions.max(1);
        if self.inflight >= max {
            return;
        }
        let open = self.open_tiers();
        // indexes, not uids: most of the queue waits for a free slot, and this runs per event
        let mut due: Vec<(u8, usize, usize)> = self
            .live_ix()
            .filter(|(_, t)| matches!(t.action, Action::Evict | Action::Delete))
            .filter(|(_, t)| match t.st {
                St::Queued => true,
                St::Retry => t.next_at.is_none_or(|n| n <= now),
                _ => false,
            })
            .filter(|(_, t)| t.not_before.is_none_or(|n| n <= now))
            .filter(|(_, t)| t.tier <= open[t.node])
            .filter(|(_, t)| self.nodes[t.node].expired.is_none())
            .map(|(ix, t)| (t.tier, t.seq, ix))
            .collect();
        due.sort_unstable();
        for (_, _, ix) in due {
            if self.inflight >= max {
                break;
            }
            let uid = self.tracks.at(ix).uid.clone();
            let action = self.tracks[&uid].action;
            let mut spend: Option<String> = None;
            if action == Action::Evict && self.dry() == DryRun::None {
                let cover = self.covering(&self.tracks[&uid].pod);
                if cover.len() == 1 {
                    let key = cover[0].clone();
                    self.ensure_pdb_watch();
                    let b = &self.budgets[&key];
                    if budget::consumes_budget(&self.tracks[&uid].pod, &b.pdb) {
                        if b.effective() <= 0 {
                            // Blocked by our own view of the budget: send nothing, except one
                            // probe per budget and ceiling in case the view is stale.
                            let ceiling = self.sh.opts.budget_retry_ceiling;
                            let probe = b.last_probe.is_none_or(|p| now >= p + ceiling)
                                && self.tracks[&uid].st == St::Retry
                                && self.tracks[&uid].by_budget;
                            if !probe {
                                self.block_locally(&uid, &key, now);
                                continue;
                            }
                        }
                        let b = self.budgets.get_mut(&key).expect("budget");
                        b.inflight += 1;
                        b.last_probe = Some(now);
                        spend = Some(key);
                    }
                } else if cover.len() > 1 {
                    // The server answers 500 for a pod under several budgets: ask only once per
                    // ceiling (in case our view is stale), and say which budgets.
                    self.ensure_pdb_watch();
                    let ceiling = self.sh.opts.budget_retry_ceiling;
                    let probe = self.tracks[&uid]
                        .last_sent
                        .is_none_or(|l| now >= l + ceiling);
                    if !probe {
                        let names: Vec<&str> = cover
                            .iter()
                            .map(|k| k.split_once('/').map(|(_, n)| n).unwrap_or(k))
                            .collect();
                        let by = names.join(", ");
                        self.set_blocked(
                            &uid,
                            Some(by.clone()),
                            WaitsFor::SeveralBudgets,
                            format!("the pod is covered by more than one disruption budget ({by})"),
                            "the eviction API refuses pods under several budgets; waiting for the budgets to change (no request sent)".into(),
                            now + ceiling,
                            now,
                        );
                        continue;
                    }
                }
            }
            self.send(&uid, spend, now);
        }
    }

    /// The budget that, as far as the watched budgets say, keeps this pod from being evicted
    /// now: its single covering budget allows no disruption, or several budgets cover it.
    fn budget_holding(&self, pod: &Pod) -> Option<String> {
        let cover = self.covering(pod);
        let short = |k: &String| {
            k.split_once('/')
                .map(|(_, n)| n.to_string())
                .unwrap_or_else(|| k.clone())
        };
        match cover.as_slice() {
            [] => None,
            [key] => {
                let b = &self.budgets[key];
                (budget::consumes_budget(pod, &b.pdb) && b.effective() <= 0).then(|| short(key))
            }
            many => Some(many.iter().map(short).collect::<Vec<_>>().join(", ")),
        }
    }

    fn block_locally(&mut self, uid: &str, key: &str, now: Instant) {
        let st = BudgetNow::of(&self.budgets[key].pdb);
        let name = key
            .split_once('/')
            .map(|(_, n)| n)
            .unwrap_or(key)
            .to_string();
        let cause = if st.observed {
            format!(
                "The disruption budget {name} needs {} healthy pods and has {} currently",
                st.desired_healthy, st.current_healthy
            )
        } else {
            format!("The disruption budget {name} is still being processed by the server.")
        };
        let ceiling = self.sh.opts.budget_retry_ceiling;
        self.set_blocked(
            uid,
            Some(name),
            WaitsFor::Budget,
            cause,
            "waiting for the budget to allow a disruption (no request sent)".into(),
            now + ceiling,
            now,
        );
    }

    /// The healthy-pod counts of the one watched budget a pod waits for, once its controller
    /// has processed it.
    fn healthy_of(&self, uid: &str, by: Option<&str>, waits_for: WaitsFor) -> Option<Healthy> {
        if waits_for != WaitsFor::Budget {
            return None;
        }
        let key = format!("{}/{}", self.tracks[uid].r.namespace, by?);
        let st = BudgetNow::of(&self.budgets.get(&key)?.pdb);
        st.observed.then_some(Healthy {
            needs: st.desired_healthy,
            has: st.current_healthy,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn set_blocked(
        &mut self,
        uid: &str,
        by: Option<String>,
        waits_for: WaitsFor,
        cause: String,
        message: String,
        next: Instant,
        now: Instant,
    ) {
        let by_budget = waits_for.is_budget();
        let node = self.nodes[self.tracks[uid].node].name.clone();
        let healthy = self.healthy_of(uid, by.as_deref(), waits_for);
        let t = self.tracks.get_mut(uid).expect("track");
        t.st = St::Retry;
        t.next_at = Some(next);
        t.by_budget = by_budget;
        t.blocked_by = by.clone().or_else(|| Some(cause.clone()));
        if by_budget {
            t.blocked_since.get_or_insert(now);
        }
        let since = *t.blocked_first.get_or_insert_with(jiff::Timestamp::now);
        let key = format!("{by:?}|{cause}");
        if t.last_cause.as_deref() != Some(key.as_str()) {
            t.last_cause = Some(key);
            let ev = Event::Blocked {
                node,
                pod: t.r.clone(),
                waits_for,
                budget: by,
                healthy,
                cause,
                message,
                retry_in_seconds: (next.max(t.not_before.unwrap_or(next)) - now).as_secs_f64(),
                since,
            };
            self.sh.emit(ev);
        }
    }

    fn send(&mut self, uid: &str, spend: Option<String>, _now: Instant) {
        let dry = self.dry();
        let grace = self.sh.opts.grace_override();
        let t = self.tracks.get_mut(uid).expect("track");
        t.st = St::InFlight;
        t.attempts += 1;
        t.first_attempt.get_or_insert_with(jiff::Timestamp::now);
        t.inflight_budget = spend;
        t.last_sent = Some(Instant::now());
        let n = &mut self.nodes[t.node];
        n.awaiting += 1;
        n.last_sent = t.last_sent;
        self.inflight += 1;
        let node = self.nodes[t.node].name.clone();
        let req = self.nodes[t.node].req.clone();
        let r = t.r.clone();
        let action = t.action;
        let attempt = t.attempts;
        if action == Action::Delete {
            self.sh.emit(Event::DeleteSent {
                node,
                pod: r.clone(),
                dry_run: dry,
            });
        } else {
            self.sh.emit(Event::EvictionSent {
                node,
                pod: r.clone(),
                attempt,
                dry_run: dry,
            });
        }
        let client = self.sh.client.clone();
        let tx = self.done_tx.clone();
        let uid = uid.to_string();
        tokio::spawn(async move {
            let attempt = if action == Action::Delete {
                evict::delete(&client, &r, grace, dry, &req).await
            } else {
                evict::evict(&client, &r, grace, dry, &req).await
            };
            let _ = tx.send(Done { uid, attempt });
        });
    }

    fn finish(&mut self, uid: &str, outcome: PodOutcome) {
        let now = Instant::now();
        let Some(t) = self.tracks.get_mut(uid) else {
            return;
        };
        if t.done() {
            return;
        }
        t.unblock(now);
        if outcome == PodOutcome::Gone {
            t.gone = Some(jiff::Timestamp::now());
        }
        t.st = St::Done(outcome.clone());
        let node = self.nodes[t.node].name.clone();
        let pod = t.r.clone();
        match outcome {
            PodOutcome::Gone => self.sh.emit(Event::Gone { node, pod }),
            PodOutcome::Failed { error } => self.sh.emit(Event::PodFailed { node, pod, error }),
            PodOutcome::Skipped => {
                let reason = t.reason.clone();
                self.sh.emit(Event::Skipped { node, pod, reason })
            }
            PodOutcome::Blocked | PodOutcome::DryRun => {}
        }
    }

    fn retry_jitter(&self) -> Duration {
        let cap = (self.sh.opts.budget_retry_ceiling / 10).min(Duration::from_millis(500));
        Duration::from_millis(fastrand::u64(0..=cap.as_millis() as u64))
    }

    fn on_done(&mut self, d: Done) {
        let now = Instant::now();
        self.inflight = self.inflight.saturating_sub(1);
        let dry = self.dry();
        let ceiling = self.sh.opts.budget_retry_ceiling;
        let jitter = self.retry_jitter();
        let Some(t) = self.tracks.get_mut(&d.uid) else {
            return;
        };
        let n = &mut self.nodes[t.node];
        n.awaiting = n.awaiting.saturating_sub(1);
        let mut released: Option<String> = None;
        if let Some(key) = t.inflight_budget.take()
            && let Some(b) = self.budgets.get_mut(&key)
        {
            b.inflight -= 1;
            // The server spent one unit before answering. Until a budget status carrying this
            // pod in disruptedPods is seen, count it as spent. That status may have come before
            // the answer, even followed by the controller's next status that no longer lists
            // the terminating pod: a real cluster delivers them in no fixed order.
            let sent = t.last_sent.unwrap_or(now);
            let acked = b.counted_since(&t.r.name, sent);
            if d.attempt == Attempt::Accepted {
                if acked {
                    released = Some(key);
                } else {
                    b.pending_ack.insert(t.r.name.clone(), now);
                    let due = now + ack_ttl(ceiling);
                    self.acks_due = Some(self.acks_due.map_or(due, |d| d.min(due)));
                }
            }
        }
        if let Some(key) = released {
            // The statuses already counted this eviction, and may already allow the next one
            // (a replacement became Ready before the answer came): that status's wake-up found
            // the budget still held by this request.
            self.wake_own_pods(&[key], now);
        }
        let Some(t) = self.tracks.get_mut(&d.uid) else {
            return;
        };
        if t.done() {
            // the watch saw it go before the answer came
            if d.attempt == Attempt::Accepted && t.accepted.is_none() {
                t.accepted = Some(jiff::Timestamp::now());
                let (node, pod) = (self.nodes[t.node].name.clone(), t.r.clone());
                self.sh.emit(Event::Evicted { node, pod });
            }
            return;
        }
        t.st = St::Retry;
        let node = self.nodes[t.node].name.clone();
        match d.attempt {
            Attempt::Accepted => {
                t.unblock(now);
                t.st = St::Following;
                t.accepted = Some(jiff::Timestamp::now());
                let pod = t.r.clone();
                self.sh.emit(Event::Evicted { node, pod });
            }
            Attempt::DryRunPassed => self.finish(&d.uid, PodOutcome::DryRun),
            Attempt::Gone => self.finish(&d.uid, PodOutcome::Gone),
            Attempt::Replaced => {
                t.reason = format!("{} (replaced by a new pod of the same name)", t.reason);
                self.finish(&d.uid, PodOutcome::Gone)
            }
            Attempt::Blocked {
                budgets,
                cause,
                message,
                retry_after,
                multiple,
            } => {
                // the server knows a budget we may not: watch the budgets from now on
                let pod = t.pod.clone();
                self.ensure_pdb_watch();
                let by = if multiple {
                    let names: Vec<String> = self
                        .covering(&pod)
                        .iter()
                        .map(|k| {
                            k.split_once('/')
                                .map(|(_, n)| n.to_string())
                                .unwrap_or_default()
                        })
                        .collect();
                    Some(names.join(", ")).filter(|s| !s.is_empty())
                } else {
                    Some(budgets.join(", ")).filter(|s| !s.is_empty())
                };
                if dry == DryRun::Server {
                    let t = self.tracks.get_mut(&d.uid).expect("track");
                    t.blocked_by = by.or(Some(cause));
                    self.finish(&d.uid, PodOutcome::Blocked);
                    return;
                }
                let waits_for = if multiple {
                    WaitsFor::SeveralBudgets
                } else {
                    WaitsFor::Budget
                };
                let t = self.tracks.get_mut(&d.uid).expect("track");
                t.not_before = retry_after.map(|ra| now + ra + jitter);
                let next = (now + ceiling).max(t.not_before.unwrap_or(now));
                self.set_blocked(&d.uid, by, waits_for, cause, message, next, now);
            }
            Attempt::Throttled {
                retry_after,
                message,
            } => {
                let wait = retry_after.unwrap_or(Duration::from_secs(1)) + jitter;
                t.not_before = Some(now + wait);
                let cause = format!("the server asked to retry later (429): {message}");
                self.set_blocked(
                    &d.uid,
                    None,
                    WaitsFor::Throttling,
                    cause,
                    message,
                    now + wait,
                    now,
                );
            }
            Attempt::NamespaceTerminating { message } => {
                if t.pod.metadata.deletion_timestamp.is_some() || dry == DryRun::Server {
                    t.st = St::Following;
                    if dry == DryRun::Server {
                        self.finish(&d.uid, PodOutcome::DryRun);
                    }
                } else {
                    let cause = format!(
                        "namespace {} is being terminated; waiting for it to delete the pod",
                        t.r.namespace
                    );
                    self.set_blocked(
                        &d.uid,
                        None,
                        WaitsFor::NamespaceTermination,
                        cause,
                        message,
                        now + ceiling,
                        now,
                    );
                }
            }
            Attempt::Forbidden { message } => self.finish(
                &d.uid,
                PodOutcome::Failed {
                    error: format!("{PERMISSION_DENIED}{message}"),
                },
            ),
            Attempt::Rejected { code, message } => self.finish(
                &d.uid,
                PodOutcome::Failed {
                    error: format!("rejected ({code}): {message}"),
                },
            ),
            Attempt::Transient { code, message } => {
                let b = t.backoff.get_or_insert_with(|| {
                    backon::ExponentialBuilder::default()
                        .with_min_delay(Duration::from_millis(200))
                        .with_max_delay(Duration::from_secs(10))
                        .with_jitter()
                        .without_max_times()
                        .build()
                });
                let wait = b.next().unwrap_or(Duration::from_secs(10));
                let cause = match code {
                    Some(c) => format!("error {c}: {message}"),
                    None => format!("request failed: {message}"),
                };
                self.set_blocked(
                    &d.uid,
                    None,
                    WaitsFor::Error,
                    cause,
                    message,
                    now + wait,
                    now,
                );
            }
        }
    }

    async fn on_pods(&mut self, s: Seen<Pod>) {
        let node = s.source;
        match s.change {
            Change::Upsert(p) => self.upsert_pod(node, p).await,
            Change::Removed(p) => {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                if self.tracks.get(&uid).is_some_and(|t| t.is_target()) {
                    self.finish(&uid, PodOutcome::Gone);
                }
            }
            Change::Relisted(pods) => {
                let present: HashSet<String> =
                    pods.iter().filter_map(|p| p.metadata.uid.clone()).collect();
                let gone: Vec<String> = self
                    .tracks
                    .iter()
                    .filter(|(uid, t)| {
                        t.node == node && t.is_target() && !t.done() && !present.contains(*uid)
                    })
                    .map(|(uid, _)| uid.clone())
                    .collect();
                for uid in gone {
                    self.finish(&uid, PodOutcome::Gone);
                }
                for p in pods {
                    self.upsert_pod(node, p).await;
                }
            }
        }
    }

    async fn upsert_pod(&mut self, node: usize, p: Pod) {
        if let Some(field) = crate::drainer::missing_identity(&p) {
            tracing::warn!(node = %self.nodes[node].name, "ignoring a pod without {field} from the API server");
            return;
        }
        let uid = p.metadata.uid.clone().unwrap_or_default();
        if self.ignored.contains(&uid) {
            return;
        }
        let node_name = self.nodes[node].name.clone();
        if let Some(t) = self.tracks.get_mut(&uid) {
            t.pod = p;
            if t.done() || !t.is_target() {
                return;
            }
            if let Some(dt) = t.pod.metadata.deletion_timestamp.as_ref()
                && !t.terminating_seen
            {
                t.terminating_seen = true;
                let left =
                    dt.0.duration_since(jiff::Timestamp::now())
                        .as_secs_f64()
                        .max(0.0);
                let pod = t.r.clone();
                if t.st == St::Retry && !t.by_budget && t.accepted.is_none() {
                    // terminating namespace: the namespace controller deletes it; just wait
                    t.st = St::Following;
                    t.unblock(Instant::now());
                }
                self.sh.emit(Event::Terminating {
                    node: node_name,
                    pod,
                    grace_left_seconds: left,
                });
            }
            let t = &self.tracks[&uid];
            if t.action == Action::Wait && select::is_finished(&t.pod) {
                let uid = uid.clone();
                self.tracks.get_mut(&uid).expect("track").reason = "completed".into();
                self.finish(&uid, PodOutcome::Skipped);
            }
            return;
        }
        // A pod we have not seen: it landed on the node during the drain.
        let labels = p.metadata.labels.clone().unwrap_or_default();
        if self.nodes[node].outcome.is_some()
            || self
                .sh
                .pod_selector
                .as_ref()
                .is_some_and(|s| !s.matches(&labels))
        {
            self.ignored.insert(uid);
            return;
        }
        let lookup = if select::is_daemonset_pod(&p) && !select::is_finished(&p) {
            Some(self.daemonset_lookup(node, &p).await)
        } else {
            None
        };
        let sel = select::select_pod(
            &p,
            &self.sh.opts,
            jiff::Timestamp::now(),
            &|_| lookup.clone().unwrap_or(DaemonSetLookup::Found),
            &self.sh.filters,
        );
        let r = pod_ref(&p);
        let st = match sel.action {
            Action::Evict | Action::Delete => St::Queued,
            Action::Wait => St::Following,
            Action::Skip => St::Done(PodOutcome::Skipped),
            Action::Refuse => St::Done(PodOutcome::Failed {
                error: sel.reason.clone(),
            }),
        };
        self.seq += 1;
        let t = new_track(
            uid.clone(),
            node,
            p,
            sel.action,
            sel.reason.clone(),
            st.clone(),
            self.seq,
        );
        let ix = self.tracks.insert(t);
        self.tracks.at_mut(ix).protected_until = sel.protected_until;
        self.nodes[node].order.push(ix);
        self.nodes[node].open.push(ix);
        match st {
            St::Queued | St::Following => {
                self.sh.emit(Event::Warning {
                    node: node_name,
                    message: format!(
                        "pod {r} landed on the node during the drain; draining it too"
                    ),
                });
                self.hold_if_protected(ix);
            }
            St::Done(PodOutcome::Skipped) => self.sh.emit(Event::Skipped {
                node: node_name,
                pod: r,
                reason: sel.reason,
            }),
            St::Done(PodOutcome::Failed { error }) => self.sh.emit(Event::PodFailed {
                node: node_name,
                pod: r,
                error,
            }),
            _ => {}
        }
    }

    async fn daemonset_lookup(&mut self, node: usize, p: &Pod) -> DaemonSetLookup {
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let name = select::controller_of(p)
            .map(|o| o.name.clone())
            .unwrap_or_default();
        if let Some(l) = self.sh.ds_cache.get(&(ns.clone(), name.clone())) {
            return l.clone();
        }
        let l = lookup_daemonset(&self.sh.client, &ns, &name, &self.nodes[node].req).await;
        self.sh.ds_cache.insert((ns, name), l.clone());
        l
    }

    fn on_budgets(&mut self, s: Seen<PodDisruptionBudget>) {
        let now = Instant::now();
        let mut touched: Vec<String> = Vec::new();
        match s.change {
            Change::Upsert(b) => {
                let key = budget::pdb_key(&b);
                let ttl = ack_ttl(self.sh.opts.budget_retry_ceiling);
                match self.budgets.get_mut(&key) {
                    Some(e) => {
                        e.pdb = b;
                        e.seen_disrupted.retain(|_, at| now < *at + ttl);
                        e.note_disrupted(now);
                    }
                    None => {
                        self.budgets
                            .insert(key.clone(), BudgetState::new(b, 0, now));
                    }
                }
                touched.push(key);
            }
            Change::Removed(b) => {
                let key = budget::pdb_key(&b);
                self.budgets.remove(&key);
                touched.push(key);
            }
            Change::Relisted(all) => {
                let old: BTreeMap<String, BudgetState> = std::mem::take(&mut self.budgets);
                for b in all {
                    let key = budget::pdb_key(&b);
                    let inflight = old.get(&key).map(|o| o.inflight).unwrap_or(0);
                    self.budgets
                        .insert(key.clone(), BudgetState::new(b, inflight, now));
                    touched.push(key);
                }
                touched.extend(old.into_keys());
            }
        }
        self.wake_blocked_by(&touched, now);
    }

    /// Wakes the pods blocked by these budgets: their retry is due now if the budget allows.
    /// A budget event also wakes the pods under no known budget or under several (the list of
    /// budgets changed); a budget released by kdrain's own bookkeeping only wakes its own pods.
    fn wake_blocked_by(&mut self, touched: &[String], now: Instant) {
        self.wake(touched, true, now);
    }

    fn wake_own_pods(&mut self, touched: &[String], now: Instant) {
        self.wake(touched, false, now);
    }

    fn wake(&mut self, touched: &[String], any_change: bool, now: Instant) {
        let uids: Vec<String> = self
            .live()
            .filter(|(_, t)| t.st == St::Retry && t.by_budget)
            .map(|(u, _)| u.clone())
            .collect();
        for uid in uids {
            let cover = self.covering(&self.tracks[&uid].pod);
            let hit = cover.iter().any(|k| touched.contains(k))
                || (any_change && (cover.is_empty() || cover.len() > 1));
            if !hit {
                continue;
            }
            let allows = cover.len() != 1
                || self
                    .budgets
                    .get(&cover[0])
                    .is_some_and(|b| b.effective() > 0);
            let t = self.tracks.get_mut(&uid).expect("track");
            if allows {
                t.next_at = Some(now);
                t.not_before = None;
            }
        }
    }

    /// Drops the tracks that are done from the running nodes' open lists.
    fn compact_open(&mut self) {
        let tracks = &self.tracks;
        for n in self.nodes.iter_mut().filter(|n| n.active) {
            n.open.retain(|&ix| !tracks.at(ix).done());
        }
    }

    fn expire_acks(&mut self) {
        let now = Instant::now();
        if self.acks_due.is_none_or(|d| now < d) {
            return;
        }
        let ttl = ack_ttl(self.sh.opts.budget_retry_ceiling);
        let mut due: Option<Instant> = None;
        let mut released = Vec::new();
        for (key, b) in self.budgets.iter_mut() {
            let before = b.pending_ack.len();
            b.pending_ack.retain(|_, at| now < *at + ttl);
            if b.pending_ack.len() != before {
                released.push(key.clone());
            }
            if let Some(at) = b.pending_ack.values().min() {
                due = Some(due.map_or(*at + ttl, |d| d.min(*at + ttl)));
            }
        }
        self.acks_due = due;
        self.wake_own_pods(&released, now);
    }

    fn skip_stale_terminating(&mut self) {
        let Some(limit) = self
            .sh
            .opts
            .skip_wait_for_delete_timeout
            .filter(|d| !d.is_zero())
        else {
            return;
        };
        let now = jiff::Timestamp::now();
        let stale: Vec<String> = self
            .live()
            .filter(|(_, t)| t.is_target() && matches!(t.st, St::Following | St::Retry))
            .filter(|(_, t)| {
                select::seconds_since_deletion(&t.pod, now)
                    .is_some_and(|s| s.floor() > limit.as_secs() as f64)
            })
            .map(|(u, _)| u.clone())
            .collect();
        for uid in stale {
            let t = self.tracks.get_mut(&uid).expect("track");
            t.reason = format!(
                "deletionTimestamp older than {} seconds, skipping",
                limit.as_secs()
            );
            self.finish(&uid, PodOutcome::Skipped);
        }
    }

    /// Until when node `i` waits for answers to requests still in flight (none: nothing is).
    fn answer_due(&self, i: usize) -> Option<Instant> {
        let n = &self.nodes[i];
        if n.awaiting == 0 {
            return None;
        }
        n.last_sent.map(|sent| sent + IN_FLIGHT_GRACE)
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

    async fn check_nodes(&mut self) {
        let now = Instant::now();
        for i in 0..self.nodes.len() {
            if !self.nodes[i].active || self.nodes[i].outcome.is_some() {
                continue;
            }
            let open = self.nodes[i].open.iter().any(|&ix| {
                let t = self.tracks.at(ix);
                t.is_target() && !t.done()
            });
            if !open {
                if self.answer_due(i).is_some_and(|until| now < until) {
                    continue;
                }
                if self.dry() == DryRun::Server {
                    self.close_node(i, now);
                    continue;
                }
                if self.nodes[i].final_list_retry.is_some_and(|r| r > now) {
                    continue;
                }
                match self.final_list(i).await {
                    Ok(true) => self.close_node(i, now),
                    Ok(false) => self.nodes[i].final_list_retry = None,
                    Err(e) => {
                        tracing::debug!(node = %self.nodes[i].name, "final list failed: {e}");
                        self.nodes[i].final_list_retry = Some(now + Duration::from_secs(1));
                    }
                }
                continue;
            }
            if self.interrupted.is_some() || self.nodes[i].deadline.is_some_and(|d| now >= d) {
                // Send nothing more, and hear the answers to what is in flight first: an
                // eviction accepted after the deadline must not be reported as blocked.
                let expired = *self.nodes[i].expired.get_or_insert(now);
                let in_flight = self.nodes[i]
                    .order
                    .iter()
                    .any(|&ix| self.tracks.at(ix).st == St::InFlight);
                if in_flight && now < expired + IN_FLIGHT_GRACE {
                    continue;
                }
                // A fresh LIST: pods gone but not yet reported by the watch are gone.
                self.catch_up(i).await;
                let timeout = self.sh.opts.timeout.unwrap_or_default().as_secs_f64();
                let left: Vec<String> = self
                    .tracks
                    .iter()
                    .filter(|(_, t)| t.node == i && t.is_target() && !t.done())
                    .map(|(u, _)| u.clone())
                    .collect();
                for uid in left {
                    let t = &self.tracks[&uid];
                    let terminating = t.pod.metadata.deletion_timestamp.is_some();
                    // Blocked by a budget last, or its budget still blocks it (a transient error
                    // on the last probe does not make the budget any less the reason).
                    let holds = self.budget_holding(&t.pod);
                    let budget_blocks =
                        t.by_budget || (t.blocked_first.is_some() && holds.is_some());
                    let outcome = if budget_blocks
                        && t.accepted.is_none()
                        && t.st == St::Retry
                        && !terminating
                    {
                        if !t.by_budget
                            && let Some(name) = holds
                        {
                            self.tracks.get_mut(&uid).expect("track").blocked_by = Some(name);
                        }
                        PodOutcome::Blocked
                    } else {
                        let what = match (&t.st, t.action) {
                            (_, Action::Wait) => "waiting for it to complete".to_string(),
                            (St::Retry | St::Queued, _) if terminating => {
                                "it is terminating, but kdrain's request was not seen accepted"
                                    .to_string()
                            }
                            (St::InFlight, _) => {
                                "no answer to the last request yet; it may still be carried out"
                                    .to_string()
                            }
                            (St::Following, _) => "waiting for it to terminate".to_string(),
                            (St::Queued, _) => {
                                "not sent yet (earlier tiers still draining)".to_string()
                            }
                            _ => t.blocked_by.clone().unwrap_or_else(|| "retrying".into()),
                        };
                        PodOutcome::Failed {
                            error: if self.interrupted.is_some() {
                                format!("interrupted ({what})")
                            } else {
                                format!("global timeout reached: {timeout}s ({what})")
                            },
                        }
                    };
                    let t = self.tracks.get_mut(&uid).expect("track");
                    t.unblock(now);
                    t.st = St::Done(outcome);
                }
                self.close_node(i, now);
            }
        }
    }

    /// At the timeout: one fresh LIST, so that target pods already gone (the watch may lag
    /// behind, or be cut) are reported gone. Best effort: on an error the report keeps what the
    /// watch said.
    async fn catch_up(&mut self, i: usize) {
        let api: Api<Pod> = Api::all(self.sh.client.clone());
        let req = self.nodes[i].req.clone();
        let listed =
            match watch::list_node_pods(&api, &self.nodes[i].name, self.sh.opts.chunk_size, &req)
                .await
            {
                Ok(l) => l,
                Err(e) => {
                    tracing::debug!(node = %self.nodes[i].name, "list at the timeout failed: {e}");
                    return;
                }
            };
        let present: HashSet<String> = listed
            .items
            .iter()
            .filter_map(|p| p.metadata.uid.clone())
            .collect();
        let gone: Vec<String> = self.nodes[i]
            .order
            .iter()
            .map(|&ix| self.tracks.at(ix))
            .filter(|t| t.is_target() && !t.done() && t.st != St::InFlight)
            .filter(|t| !present.contains(&t.uid))
            .map(|t| t.uid.clone())
            .collect();
        for uid in gone {
            self.finish(&uid, PodOutcome::Gone);
        }
        for p in listed.items {
            let uid = p.metadata.uid.clone().unwrap_or_default();
            if let Some(t) = self.tracks.get_mut(&uid)
                && !t.done()
            {
                t.pod = p;
            }
        }
    }

    /// A fresh LIST of the node: true when no target pod is left (new pods are taken in).
    async fn final_list(&mut self, i: usize) -> Result<bool, kube::Error> {
        let api: Api<Pod> = Api::all(self.sh.client.clone());
        let req = self.nodes[i].req.clone();
        let listed =
            watch::list_node_pods(&api, &self.nodes[i].name, self.sh.opts.chunk_size, &req).await?;
        let mut clean = true;
        for p in listed.items {
            let uid = p.metadata.uid.clone().unwrap_or_default();
            if let Some(t) = self.tracks.get_mut(&uid) {
                if t.is_target() && t.st == St::Done(PodOutcome::Gone) {
                    // Never report a pod gone that a fresh list still shows.
                    tracing::warn!(pod = %t.r, "pod marked gone is still listed; draining it again");
                    t.gone = None;
                    let (node, ix) = (t.node, self.tracks.idx(&uid).expect("track"));
                    if !self.nodes[node].open.contains(&ix) {
                        self.nodes[node].open.push(ix);
                    }
                    let t = self.tracks.at_mut(ix);
                    if t.accepted.is_some() {
                        t.st = St::Following;
                    } else {
                        // e.g. a 404 from something other than the pod being gone: try again
                        t.st = St::Retry;
                        t.next_at = Some(
                            Instant::now()
                                + self
                                    .sh
                                    .opts
                                    .budget_retry_ceiling
                                    .min(Duration::from_secs(1)),
                        );
                    }
                    clean = false;
                }
                continue;
            }
            if self.ignored.contains(&uid) {
                continue;
            }
            self.upsert_pod(i, p).await;
            if self
                .tracks
                .get(&uid)
                .is_some_and(|t| t.is_target() && !t.done())
            {
                clean = false;
            }
        }
        Ok(clean)
    }

    fn close_node(&mut self, i: usize, now: Instant) {
        let mut blocked = false;
        let mut left = Vec::new();
        for &ix in &self.nodes[i].order {
            let t = self.tracks.at(ix);
            match &t.st {
                St::Done(PodOutcome::Blocked) => {
                    blocked = true;
                    left.push(t.r.clone());
                }
                St::Done(PodOutcome::Failed { .. }) => left.push(t.r.clone()),
                _ => {}
            }
        }
        let n = &mut self.nodes[i];
        if let Some(h) = n.watch.take() {
            h.abort();
        }
        n.seconds = n.started.map(|s| (now - s).as_secs_f64()).unwrap_or(0.0);
        let outcome = if left.is_empty() {
            NodeOutcome::Drained
        } else if blocked {
            NodeOutcome::BlockedByBudgets
        } else {
            NodeOutcome::PodsLeft
        };
        let name = n.name.clone();
        n.outcome = Some(outcome.clone());
        match outcome {
            NodeOutcome::Drained => self.sh.emit(Event::NodeDrained {
                node: name,
                dry_run: self.sh.opts.dry_run,
            }),
            _ => {
                let error = if blocked {
                    "pods still blocked by disruption budgets".to_string()
                } else {
                    "pods left that could not be drained".to_string()
                };
                self.sh.emit(Event::NodeFailed {
                    node: name,
                    error,
                    pending: left,
                })
            }
        }
        if self.interrupted.is_none()
            && let Some(next) = self.nodes.iter().position(|n| !n.active)
        {
            self.activate(next);
        }
    }

    fn reports(&self) -> Vec<NodeReport> {
        let now = Instant::now();
        self.nodes
            .iter()
            .map(|n| NodeReport {
                node: n.name.clone(),
                was_cordoned: n.was_cordoned,
                seconds: n.seconds,
                pods: n
                    .order
                    .iter()
                    .map(|&ix| {
                        let t = self.tracks.at(ix);
                        let ongoing = t.blocked_since.map(|s| now - s).unwrap_or_default();
                        PodReport {
                            pod: t.r.clone(),
                            action: t.action,
                            reason: t.reason.clone(),
                            attempts: t.attempts,
                            first_attempt: t.first_attempt,
                            accepted: t.accepted,
                            gone: t.gone,
                            blocked_by: t.blocked_by.clone(),
                            blocked_seconds: (t.blocked_total + ongoing).as_secs_f64(),
                            outcome: match &t.st {
                                St::Done(o) => o.clone(),
                                _ => PodOutcome::Failed {
                                    error: "the drain ended before this pod did".into(),
                                },
                            },
                        }
                    })
                    .collect(),
                requests: n.req.snapshot(),
                outcome: n.outcome.clone().unwrap_or(NodeOutcome::Failed {
                    error: "not drained".into(),
                }),
            })
            .collect()
    }
}

/// How long an accepted eviction counts as spent against its budget while no budget status
/// acknowledges it.
fn ack_ttl(ceiling: Duration) -> Duration {
    (ceiling * 2).max(Duration::from_secs(10))
}

fn new_track(
    uid: String,
    node: usize,
    pod: Pod,
    action: Action,
    reason: String,
    st: St,
    seq: usize,
) -> Track {
    Track {
        uid,
        node,
        r: pod_ref(&pod),
        tier: select::tier(&pod),
        pod,
        action,
        reason,
        st,
        attempts: 0,
        first_attempt: None,
        accepted: None,
        gone: None,
        blocked_by: None,
        by_budget: false,
        blocked_since: None,
        blocked_first: None,
        blocked_total: Duration::ZERO,
        last_cause: None,
        next_at: None,
        not_before: None,
        backoff: None,
        inflight_budget: None,
        terminating_seen: false,
        last_sent: None,
        protected_until: None,
        seq,
    }
}

/// GETs the DaemonSet that controls a pod (as kubectl does) and says whether it exists.
/// How a pod's error starts when the server refused its eviction or delete for lack of
/// permission (the drain then fails with [`crate::DrainError::Forbidden`]).
pub(crate) const PERMISSION_DENIED: &str = "permission denied: ";

pub(crate) async fn lookup_daemonset(
    client: &kube::Client,
    ns: &str,
    name: &str,
    req: &Requests,
) -> DaemonSetLookup {
    use k8s_openapi::api::apps::v1::DaemonSet;
    let api = Api::<DaemonSet>::namespaced(client.clone(), ns);
    let got = crate::retry::idempotent("get daemonset", || {
        req.count("get", "daemonsets");
        api.get(name)
    })
    .await;
    match got {
        Ok(_) => DaemonSetLookup::Found,
        Err(kube::Error::Api(s)) if s.code == 404 => DaemonSetLookup::NotFound {
            message: if s.message.is_empty() {
                format!("daemonsets.apps \"{name}\" not found")
            } else {
                s.message
            },
        },
        Err(kube::Error::Api(s)) => DaemonSetLookup::Error { message: s.message },
        Err(e) => DaemonSetLookup::Error {
            message: e.to_string(),
        },
    }
}

/// Every pod's track, stored once and reached either by uid or, on the paths run at every event,
/// by its index (no hashing).
#[derive(Default)]
struct Tracks {
    slab: Vec<Track>,
    by_uid: HashMap<String, usize>,
}

impl Tracks {
    /// Stores a track (replacing one with the same uid) and returns its index.
    fn insert(&mut self, t: Track) -> usize {
        if let Some(&ix) = self.by_uid.get(&t.uid) {
            self.slab[ix] = t;
            return ix;
        }
        let ix = self.slab.len();
        self.by_uid.insert(t.uid.clone(), ix);
        self.slab.push(t);
        ix
    }
    fn idx(&self, uid: &str) -> Option<usize> {
        self.by_uid.get(uid).copied()
    }
    fn at(&self, ix: usize) -> &Track {
        &self.slab[ix]
    }
    fn at_mut(&mut self, ix: usize) -> &mut Track {
        &mut self.slab[ix]
    }
    fn get(&self, uid: &str) -> Option<&Track> {
        self.idx(uid).map(|ix| &self.slab[ix])
    }
    fn get_mut(&mut self, uid: &str) -> Option<&mut Track> {
        self.idx(uid).map(|ix| &mut self.slab[ix])
    }
    fn contains_key(&self, uid: &str) -> bool {
        self.by_uid.contains_key(uid)
    }
    fn iter(&self) -> impl Iterator<Item = (&String, &Track)> {
        self.slab.iter().map(|t| (&t.uid, t))
    }
}

impl<Q: std::borrow::Borrow<str> + ?Sized> std::ops::Index<&Q> for Tracks {
    type Output = Track;
    fn index(&self, uid: &Q) -> &Track {
        self.get(uid.borrow()).expect("track")
    }
}
