//! The dispatcher's decisions, free of I/O: [`Core::on`] takes one input (a watch change, an
//! answer, a LIST, a timer tick, a stop) at a given time and returns what to do ([`Command`]s);
//! [`Core::next_wake`] says when it next needs a [`Input::Tick`]. It reads no clock and starts
//! nothing itself, so its tests drive it with synthetic pods, budgets and answers and a clock
//! they move by hand (see `tests.rs`). The shell in `mod.rs` carries the commands out.
//!
//! About 650 lines on purpose: this file declares the core's whole vocabulary (every input,
//! every command, the state they act on) and the one loop that applies them, so that what
//! can happen to a drain reads in one place; each decision lives in a sibling module (`gate`,
//! `answers`, `node`, `room`, `admit`, `budgets`, `ledger`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use tokio::time::Instant;

use super::NodeSetup;
use super::admit::Admission;
use super::answers::{Answer, Denied};
use super::budgets::BudgetState;
use super::ledger::{Account, BudgetLedger};
use super::node::{IN_FLIGHT_GRACE, NodeRun};
use super::room::RoomWait;
use super::track::{St, Track, Tracks, new_track};
use crate::budget::BudgetKey;
use crate::events::{Event, PodRef};
use crate::options::{DrainOptions, DryRun};
use crate::plan::Action;
use crate::report::{FailureKind, NodeReport, PodOutcome};
use crate::select::{DaemonSetLookup, PodFilter};
use crate::watch::{Listed, Seen};

/// The time of an input: the monotonic clock for waits and deadlines, the wall clock for what
/// the API writes as timestamps (deletion, do-not-disrupt durations) and for the report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Now {
    /// For deadlines, retries and durations.
    pub instant: Instant,
    /// For timestamps.
    pub wall: jiff::Timestamp,
}

/// What a [`Command::ReadRoom`] saw of the nodes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodesSeen {
    /// The nodes schedulable and Ready, by name, each with its taints and allocatable
    /// (`room::room_signature`).
    pub usable: BTreeMap<String, String>,
    /// The node list's resourceVersion (where the node watch starts).
    pub resource_version: String,
}

/// Why a node's pods are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListPurpose {
    /// No target pod is left as far as the watch says: a fresh LIST confirms it before the node
    /// is reported drained (and takes in pods the watch has not shown yet).
    Final,
    /// The node timed out or the drain was interrupted: a fresh LIST says which pods are gone.
    CatchUp,
}

/// Something that happened, for the core to act on.
#[derive(Debug)]
pub(crate) enum Input {
    /// The drain starts: the first nodes are activated.
    Start,
    /// A change on a node's pod watch (`source` is the node's index).
    Pods(Box<Seen<Pod>>),
    /// A change on the budget watch.
    Budgets(Box<Seen<PodDisruptionBudget>>),
    /// The server answered an eviction or delete.
    Answer(Answer),
    /// The answer to a [`Command::LookUpDaemonSet`].
    DaemonSet {
        /// Namespace.
        namespace: String,
        /// The DaemonSet's name.
        name: String,
        /// What the GET found.
        lookup: DaemonSetLookup,
    },
    /// The answer to a [`Command::ListPods`]; an error in words.
    Listed {
        /// The node's index.
        node: usize,
        /// Why it was listed.
        purpose: ListPurpose,
        /// The pods, or why the LIST failed.
        result: Result<Listed<Pod>, String>,
    },
    /// The answer to a [`Command::ReadRoom`]: the candidates that start now as the next wave
    /// (node indexes, at most the limit asked), or why the cluster could not be read.
    Room {
        /// The nodes whose replacements fit now, in order.
        fits: Result<Vec<usize>, String>,
        /// What the read saw of the nodes (None when it could not read them).
        nodes: Option<NodesSeen>,
    },
    /// A change on the node watch (started while nodes wait for room).
    Nodes(Box<Seen<Node>>),
    /// The answer to a [`Command::AdmitRoom`]: which of the tracks asked for (indexes) may go
    /// now, or why the cluster could not be read.
    Admitted {
        /// The tracks asked for.
        asked: Vec<usize>,
        /// Those whose replacements have room now.
        fits: Result<Vec<usize>, String>,
        /// How long the read took (it spaces the next one: [`super::admit::READ_SPACING`]).
        took: Duration,
    },
    /// The time given by [`Core::next_wake`] (or any time: a tick only re-examines).
    Tick,
    /// Stop: nothing more is sent, answers in flight are awaited, pods not gone are left.
    Stop,
}

/// Something for the shell to do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    /// Evict (or, for [`Action::Delete`], delete) a pod; answer with [`Input::Answer`].
    Send {
        /// The pod's UID (the answer names it).
        uid: String,
        /// The pod.
        pod: PodRef,
        /// [`Action::Evict`] or [`Action::Delete`].
        action: Action,
        /// The node's index (whose request counter counts it).
        node: usize,
    },
    /// Watch a node's pods from a resourceVersion; changes come as [`Input::Pods`].
    WatchPods {
        /// The node's index.
        node: usize,
        /// The node's name.
        name: String,
        /// Where the watch starts.
        resource_version: String,
    },
    /// Stop watching a node's pods.
    StopWatchingPods {
        /// The node's index.
        node: usize,
    },
    /// Watch every budget from a resourceVersion; changes come as [`Input::Budgets`].
    WatchBudgets {
        /// Where the watch starts.
        resource_version: String,
    },
    /// LIST a node's pods; the answer comes as [`Input::Listed`].
    ListPods {
        /// The node's index.
        node: usize,
        /// The node's name.
        name: String,
        /// Why.
        purpose: ListPurpose,
    },
    /// GET a DaemonSet; the answer comes as [`Input::DaemonSet`].
    LookUpDaemonSet {
        /// The node whose pod needs it (whose request counter counts it).
        node: usize,
        /// Namespace.
        namespace: String,
        /// The DaemonSet's name.
        name: String,
    },
    /// `wait_for_capacity`: read the nodes and pods again and say which `candidates` (node
    /// index, name, and its pods to evict that an owner replaces) fit now, at most `limit`
    /// of them, with the targets in `closed` taking no replacement and the `reserved` pods'
    /// replacements placed first ([`crate::waves::fitting_now`]); the answer comes as
    /// [`Input::Room`].
    ReadRoom {
        /// The nodes not started yet, in order.
        candidates: Vec<(usize, String, Vec<Pod>)>,
        /// Every target not drained.
        closed: BTreeSet<String>,
        /// The pods of the nodes draining now that an owner replaces and that are not evicted
        /// yet: their replacements are still to come.
        reserved: Vec<Pod>,
        /// The most nodes that may start now (`parallel_nodes` less the nodes running).
        limit: usize,
    },
    /// Watch every node from a resourceVersion; changes come as [`Input::Nodes`].
    WatchNodes {
        /// Where the watch starts.
        resource_version: String,
    },
    /// Stop watching the nodes.
    StopWatchingNodes,
    /// `wait_for_capacity`: read the nodes and pods again and say which of `asked` (track
    /// index and pod) may be evicted now ([`crate::waves::admissible`]); the answer comes as
    /// [`Input::Admitted`].
    AdmitRoom {
        /// The pods about to go.
        asked: Vec<(usize, Pod)>,
        /// Every target not drained.
        closed: BTreeSet<String>,
        /// Pods of the nodes draining sent a moment ago: their replacements may not show yet.
        recent: Vec<Pod>,
        /// Pods of the nodes draining not evicted yet: room is kept for the larger ones.
        coming: Vec<Pod>,
    },
    /// Send a progress event.
    Emit(Event),
}

/// What the core needs that does not change during the drain.
pub(crate) struct Config {
    /// The drain's options.
    pub opts: DrainOptions,
    /// The caller's pod filters (for pods that land on a node during its drain).
    pub filters: Vec<PodFilter>,
    /// The parsed pod selector.
    pub pod_selector: Option<selectors::LabelSelector>,
    /// DaemonSets the plan already looked up, by (namespace, name).
    pub ds_cache: HashMap<(String, String), DaemonSetLookup>,
    /// The plan's waves, as node indexes: a wave starts when every node of the one before has
    /// ended. Empty: `parallel_nodes` at a time, the next node starting as soon as one ends.
    pub waves: Vec<Vec<usize>>,
    /// Where evictions spent under budgets are counted: private to this drain, or shared with
    /// others so that budgets hold across them ([`super::ledger`]).
    pub budgets: BudgetLedger,
    /// `wait_for_capacity`: the nodes whose replacements found no room at plan time (indexes,
    /// in order); they start in waves chosen by the room there is when a wave ends.
    pub waiting: Vec<usize>,
}

/// The dispatcher's state. See the module's documentation.
pub(crate) struct Core {
    pub(super) opts: DrainOptions,
    pub(super) filters: Vec<PodFilter>,
    pub(super) pod_selector: Option<selectors::LabelSelector>,
    pub(super) ds_cache: HashMap<(String, String), DaemonSetLookup>,
    /// DaemonSet lookups asked for and not answered yet.
    pub(super) ds_pending: HashSet<(String, String)>,
    /// Pods that landed on a node during its drain, waiting for their DaemonSet's lookup
    /// before they are selected (node index, pod).
    pub(super) parked: Vec<(usize, Pod)>,
    /// The time of the input being handled.
    pub(super) now: Now,
    /// The commands produced while handling it.
    pub(super) out: Vec<Command>,
    pub(super) rng: fastrand::Rng,
    /// When the stop came: like a timeout for every node, and no node starts any more.
    pub(super) interrupted: Option<Instant>,
    pub(super) nodes: Vec<NodeRun>,
    pub(super) tracks: Tracks,
    pub(super) ignored: HashSet<String>,
    pub(super) budgets: BTreeMap<BudgetKey, BudgetState>,
    /// This drain's account in the budget ledger.
    pub(super) account: Account,
    pub(super) budgets_rv: Option<String>,
    /// No pending acknowledgement expires before this (a lower bound, exact after each
    /// [`Core::expire_acks`] pass), so the budgets are not rescanned on every event.
    pub(super) acks_due: Option<Instant>,
    /// The budget watch was asked for.
    pub(super) budget_watch: bool,
    pub(super) inflight: usize,
    pub(super) seq: usize,
    /// See [`Config::waves`].
    pub(super) waves: Vec<Vec<usize>>,
    /// The wave running now (an index into `waves`).
    pub(super) wave: usize,
    /// See [`Config::waiting`]: the nodes not started yet that wait for room.
    pub(super) waiting: Vec<usize>,
    /// The wait for room, while nodes wait.
    pub(super) room: RoomWait,
    /// The resources whose watch the server refused, already said ([`Core::watch_refused`]).
    pub(super) refused_watches: BTreeSet<&'static str>,
    /// `wait_for_capacity`: the evictions admitted against the room ([`super::admit`]).
    pub(super) admission: Admission,
}

impl Core {
    /// Prepares the core; `pdbs` is the budget list the plan used (None with
    /// `disable_eviction`). `seed` seeds the retry jitter.
    pub(crate) fn new(
        cfg: Config,
        setups: Vec<NodeSetup>,
        pdbs: Option<Listed<PodDisruptionBudget>>,
        now: Now,
        seed: u64,
    ) -> Self {
        let dry = cfg.opts.dry_run;
        let mut d = Core {
            opts: cfg.opts,
            filters: cfg.filters,
            pod_selector: cfg.pod_selector,
            ds_cache: cfg.ds_cache,
            ds_pending: HashSet::new(),
            parked: Vec::new(),
            now,
            out: Vec::new(),
            rng: fastrand::Rng::with_seed(seed),
            interrupted: None,
            nodes: Vec::new(),
            tracks: Tracks::default(),
            ignored: HashSet::new(),
            budgets: BTreeMap::new(),
            account: cfg.budgets.open(),
            budgets_rv: None,
            acks_due: None,
            budget_watch: false,
            inflight: 0,
            seq: 0,
            waves: cfg.waves,
            wave: 0,
            waiting: cfg.waiting,
            room: RoomWait::default(),
            refused_watches: BTreeSet::new(),
            admission: Admission::default(),
        };
        if dry.is_dry() && !d.waiting.is_empty() {
            // A dry run changes nothing, so no room comes back: the waiting nodes show what
            // would be sent, as a last wave.
            d.waves.push(std::mem::take(&mut d.waiting));
        }
        if let Some(l) = pdbs {
            for b in l.items {
                d.budgets
                    .insert(BudgetKey::of(&b), BudgetState::new(b, now.instant));
            }
            d.budgets_rv = Some(l.resource_version);
        }
        let tracked: usize = setups.iter().map(|s| s.plan.pods.len()).sum();
        d.tracks.reserve(tracked);
        for (i, s) in setups.into_iter().enumerate() {
            // the listed pods move into their tracks (a large drain's pods are not copied)
            let listed_uids: Vec<String> = s
                .listed
                .items
                .iter()
                .map(|p| p.metadata.uid.clone().unwrap_or_default())
                .collect();
            let mut pods: HashMap<String, Pod> =
                listed_uids.iter().cloned().zip(s.listed.items).collect();
            let mut order = Vec::new();
            for pp in &s.plan.pods {
                let Some(pod) = pods.remove(&pp.uid) else {
                    continue;
                };
                let st = match pp.action {
                    Action::Evict | Action::Delete => St::Queued,
                    Action::Wait => St::Following,
                    Action::Skip => St::Done(PodOutcome::Skipped),
                    Action::Refuse => St::Done(PodOutcome::Failed {
                        error: pp.reason.clone(),
                        kind: FailureKind::Refused,
                    }),
                };
                d.seq += 1;
                let ix = d.tracks.insert(new_track(
                    pp.uid.clone(),
                    i,
                    pod,
                    pp.action,
                    pp.reason.clone(),
                    st,
                    d.seq,
                ));
                d.tracks.at_mut(ix).protected_until = pp.protected_until;
                order.push(ix);
            }
            for uid in listed_uids {
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
                watching: false,
                listing: None,
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

    /// Handles inputs that arrived together, at `now`, in their order, then decides once what
    /// they lead to, and returns the commands in order (as if they had come one after the
    /// other before the core could act on the first: the commands of each are only carried out
    /// after the core returns anyway).
    /// A large drain's watches deliver many changes at once; deciding after each one scanned
    /// every pod still in play each time.
    pub(crate) fn on_all(
        &mut self,
        inputs: impl IntoIterator<Item = Input>,
        now: Now,
    ) -> Vec<Command> {
        self.now = now;
        let inputs: Vec<Input> = inputs.into_iter().collect();
        if !inputs.iter().any(|i| matches!(i, Input::Admitted { .. })) {
            // an admission holds for the dispatch right after its answer only (the answer's
            // batch is decided on once, after all of it)
            self.admission.admitted.clear();
        }
        for input in inputs {
            self.apply(input);
        }
        self.step();
        #[cfg(test)]
        self.tracks.check_index();
        std::mem::take(&mut self.out)
    }

    /// What one input changes (the decisions are [`Self::step`]'s).
    fn apply(&mut self, input: Input) {
        match input {
            Input::Start => {
                if self.interrupted.is_none() {
                    if !self.waves.is_empty() {
                        self.begin_wave();
                    } else if !self.waiting.is_empty() {
                        self.ask_room();
                    } else {
                        for i in 0..self.nodes.len().min(self.opts.parallel_nodes.max(1)) {
                            self.activate(i);
                        }
                    }
                }
            }
            Input::Stop => {
                if self.interrupted.is_none() {
                    self.interrupt();
                }
            }
            Input::Pods(s) => self.on_pods(*s),
            Input::Budgets(s) => self.on_budgets(*s),
            Input::Answer(a) => self.on_answer(a),
            Input::DaemonSet {
                namespace,
                name,
                lookup,
            } => self.on_daemonset(namespace, name, lookup),
            Input::Listed {
                node,
                purpose,
                result,
            } => self.on_listed(node, purpose, result),
            Input::Room { fits, nodes } => self.on_room(fits, nodes),
            Input::Nodes(s) => self.on_nodes(*s),
            Input::Admitted { asked, fits, took } => self.on_admitted(asked, fits, took),
            Input::Tick => {}
        }
    }

    /// What every input is followed by: expiries, sending what is due, and node checks, again
    /// while a node was just activated (its pods are dispatched at once).
    fn step(&mut self) {
        if self.account.others_released() {
            // another drain freed a unit its budget's status will not show: look again
            let keys: Vec<BudgetKey> = self.budgets.keys().cloned().collect();
            self.wake_own_pods(&keys, self.now.instant);
        }
        loop {
            self.check_room();
            self.compact_open();
            self.expire_acks();
            self.skip_stale_terminating();
            self.dispatch();
            let active = self.nodes.iter().filter(|n| n.active).count();
            self.check_nodes();
            if self.finished() || self.nodes.iter().filter(|n| n.active).count() == active {
                return;
            }
        }
    }

    /// True once every node has its outcome.
    pub(crate) fn finished(&self) -> bool {
        self.nodes.iter().all(|n| n.outcome.is_some())
    }

    /// Queues a progress event.
    pub(super) fn emit(&mut self, ev: Event) {
        self.out.push(Command::Emit(ev));
    }

    /// The server refused the watch of `resource` ([`crate::watch::Change::Refused`]): the
    /// watch follows it by listing instead; said once per resource ([`Event::WatchRefused`]).
    pub(super) fn watch_refused(&mut self, resource: &'static str, error: String) {
        if !self.refused_watches.insert(resource) {
            return;
        }
        let fallback = match resource {
            "nodes" => format!(
                "following the nodes by listing them every few seconds instead: a node waiting for room may start up to {}s after room appears (grant watch on nodes to start it at once)",
                crate::backoff::REWATCH_MAX.as_secs()
            ),
            _ => format!(
                "following the {resource} by listing them every few seconds instead (up to {}s late; grant watch on {resource})",
                crate::backoff::REWATCH_MAX.as_secs()
            ),
        };
        self.emit(Event::WatchRefused {
            resource: resource.to_string(),
            error,
            fallback,
        });
    }

    pub(super) fn dry(&self) -> DryRun {
        self.opts.dry_run
    }

    /// Node `i` is being drained now (active and not finished).
    pub(super) fn is_live(&self, i: usize) -> bool {
        let n = &self.nodes[i];
        n.active && n.outcome.is_none()
    }

    /// The tracks not done yet of the nodes being drained now (active and not finished), in
    /// each node's order. A scan of every pod in play: the paths run after every batch use the
    /// tracks' indexes instead ([`Tracks`]).
    pub(super) fn live(&self) -> impl Iterator<Item = (&String, &Track)> {
        self.live_ix().map(|(_, t)| (&t.uid, t))
    }

    /// [`Self::live`] with each track's index.
    pub(super) fn live_ix(&self) -> impl Iterator<Item = (usize, &Track)> {
        self.nodes
            .iter()
            .filter(|n| n.active && n.outcome.is_none())
            .flat_map(|n| n.open.iter())
            .map(|&ix| (ix, self.tracks.at(ix)))
            .filter(|(_, t)| !t.done())
    }

    /// The lowest tier with pods still to go, per node (Karpenter's order); `u8::MAX` for the
    /// nodes not being drained now.
    pub(super) fn open_tiers(&self) -> Vec<u8> {
        (0..self.nodes.len())
            .map(|i| {
                if self.is_live(i) {
                    self.tracks.open_tier(i).unwrap_or(u8::MAX)
                } else {
                    u8::MAX
                }
            })
            .collect()
    }

    /// Drops the tracks that are done from the running nodes' open lists, once at least half of
    /// a list is done ones (so each track is dropped at a cost of O(1), not visited per batch).
    fn compact_open(&mut self) {
        let tracks = &self.tracks;
        for (i, n) in self.nodes.iter_mut().enumerate().filter(|(_, n)| n.active) {
            if n.open.len() >= 2 * tracks.live_count(i) + 16 {
                n.open.retain(|&ix| !tracks.at(ix).done());
            }
        }
    }

    /// When the core next needs a [`Input::Tick`] (None: only other inputs can change anything).
    /// Always later than the last input: everything due by then was done while handling it,
    /// and what is still waiting waits for another input (an answer, a free slot, an earlier
    /// tier), so a wake-up at a past time would only spin.
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        let last = self.now.instant;
        let mut at = |t: Instant| {
            if t > last {
                wake = Some(wake.map_or(t, |w| w.min(t)));
            }
        };
        // the first wait due after the last input, on a node being drained
        if let Some((due, _)) = self
            .tracks
            .due_after(last)
            .find(|&(_, ix)| self.is_live(self.tracks.at(ix).node))
        {
            at(due);
        }
        if let Some(limit) = self.opts.skip_wait_for_delete_timeout {
            for (_, t) in self.live() {
                if matches!(t.st(), St::Following | St::Waiting(_))
                    && let Some(dt) = t.pod.metadata.deletion_timestamp.as_ref()
                {
                    let due = dt.0 + jiff::SignedDuration::from_secs(limit.as_secs() as i64 + 1);
                    let secs = due.duration_since(self.now.wall).as_secs_f64().max(0.0);
                    at(self.now.instant + Duration::from_secs_f64(secs));
                }
            }
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if n.outcome.is_none() {
                match (n.deadline, n.expired) {
                    (_, Some(e)) => at(e + IN_FLIGHT_GRACE),
                    (Some(d), None) => at(d),
                    (None, None) => {}
                }
                if let Some(r) = n.final_list_retry {
                    at(r);
                }
                if let Some(until) = self.answer_due(i) {
                    at(until);
                }
            }
        }
        if let Some(due) = self.acks_due {
            at(due);
        }
        if let Some(check) = self.room.next_check {
            at(check);
        }
        if let Some(next) = self.admission.not_before {
            at(next);
        }
        wake
    }

    /// The first pod, in report order, whose request the server refused for lack of
    /// permission.
    pub(crate) fn denied(&self) -> Option<Denied> {
        self.nodes
            .iter()
            .flat_map(|n| n.order.iter())
            .map(|&ix| self.tracks.at(ix))
            .find_map(|t| {
                Some(Denied {
                    pod: t.r.clone(),
                    message: t.denied.clone()?,
                })
            })
    }

    /// Every node's report at `now`.
    pub(crate) fn reports(&self, now: Now) -> Vec<NodeReport> {
        self.node_reports(now.instant)
    }
}
