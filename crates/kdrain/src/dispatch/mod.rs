//! The budget-aware dispatcher shared by all nodes of a drain. It owns every pod's state, sends
//! evictions (never more in flight per budget than the budget allows, budget-free pods bounded
//! by `max_concurrent_evictions`), follows pods to deletion through one watch per node, retries
//! blocked pods the moment a watched budget allows it (never later than the ceiling), and ends
//! each node with a fresh LIST.
//!
//! [`core::Core`] makes every decision without I/O; this module is the shell that carries out
//! its commands. Every watch and request runs in one [`JoinSet`] owned by [`Dispatcher::run`]'s
//! future, so dropping or cancelling a drain ends them all at once.

mod admit;
mod answers;
mod budgets;
mod core;
mod gate;
mod ledger;
mod node;
mod pods;
mod room;
#[cfg(test)]
mod tests;
mod track;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use self::answers::Answer;
pub(crate) use self::answers::Denied;
use self::core::{Command, Config, Core, Input, NodesSeen, Now};
pub use self::ledger::BudgetLedger;
use crate::events::EventSender;
use crate::evict;
use crate::options::DrainOptions;
use crate::plan::{Action, NodePlan};
use crate::report::NodeReport;
use crate::requests::Requests;
use crate::select::{DaemonSetLookup, PodFilter};
use crate::watch::{self, Listed, Seen};

/// Everything the dispatcher needs that does not change during the drain.
pub(crate) struct Shared {
    pub client: kube::Client,
    pub opts: DrainOptions,
    pub events: Option<EventSender>,
    pub filters: Vec<PodFilter>,
    pub pod_selector: Option<selectors::LabelSelector>,
    pub req: Requests,
    pub ds_cache: HashMap<(String, String), DaemonSetLookup>,
    /// The plan's waves as node indexes (empty: `parallel_nodes` at a time).
    pub waves: Vec<Vec<usize>>,
    /// The nodes that wait for room (`wait_for_capacity`), as indexes.
    pub waiting: Vec<usize>,
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

/// The watch index the budget watch reports with.
const BUDGETS: usize = usize::MAX;
/// The watch index the node watch reports with.
const NODES: usize = usize::MAX - 1;

/// The dispatcher: the core and what its commands need.
pub(crate) struct Dispatcher {
    core: Core,
    client: kube::Client,
    opts: DrainOptions,
    events: Option<EventSender>,
    req: Requests,
    /// Each node's request counter, by index.
    node_req: Vec<Requests>,
    stop: Option<Stop>,
}

/// The running shell: the tasks it started and the channels the watches report on.
struct Shell {
    /// Every watch and request of the drain; dropped (and so aborted) with the drain.
    tasks: JoinSet<Option<Input>>,
    pod_watches: HashMap<usize, AbortHandle>,
    pods_tx: UnboundedSender<Seen<Pod>>,
    pods_rx: UnboundedReceiver<Seen<Pod>>,
    pdb_tx: UnboundedSender<Seen<PodDisruptionBudget>>,
    pdb_rx: UnboundedReceiver<Seen<PodDisruptionBudget>>,
    node_watch: Option<AbortHandle>,
    nodes_tx: UnboundedSender<Seen<Node>>,
    nodes_rx: UnboundedReceiver<Seen<Node>>,
}

/// At most this many inputs go to the core at once.
const BATCH: usize = 256;

impl Shell {
    /// Adds to `inputs` the watch changes and the ended tasks that are already there, without
    /// waiting (at most [`BATCH`] inputs in all).
    fn take_ready(&mut self, inputs: &mut Vec<Input>) {
        while inputs.len() < BATCH {
            let before = inputs.len();
            if let Ok(s) = self.pods_rx.try_recv() {
                inputs.push(Input::Pods(Box::new(s)));
            }
            if let Ok(s) = self.pdb_rx.try_recv() {
                inputs.push(Input::Budgets(Box::new(s)));
            }
            if let Ok(s) = self.nodes_rx.try_recv() {
                inputs.push(Input::Nodes(Box::new(s)));
            }
            if let Some(ended) = self.tasks.try_join_next() {
                inputs.push(match ended {
                    Ok(Some(input)) => input,
                    Ok(None) | Err(_) => Input::Tick,
                });
            }
            if inputs.len() == before {
                return;
            }
        }
    }
}

impl Dispatcher {
    /// Prepares the dispatcher; `pdbs` is the budget list the plan used (None with `disable_eviction`).
    pub(crate) fn new(
        sh: Shared,
        setups: Vec<NodeSetup>,
        pdbs: Option<Listed<PodDisruptionBudget>>,
    ) -> Self {
        let node_req = setups.iter().map(|s| s.req.clone()).collect();
        let cfg = Config {
            opts: sh.opts.clone(),
            filters: sh.filters,
            pod_selector: sh.pod_selector,
            ds_cache: sh.ds_cache,
            waves: sh.waves,
            budgets: BudgetLedger::default(),
            waiting: sh.waiting,
        };
        Dispatcher {
            core: Core::new(cfg, setups, pdbs, now(), fastrand::u64(..)),
            client: sh.client,
            opts: sh.opts,
            events: sh.events,
            req: sh.req,
            node_req,
            stop: None,
        }
    }

    /// Counts the evictions spent under budgets in `ledger`, shared with the other drains that
    /// use it (instead of a ledger of this drain's own).
    pub(crate) fn with_budgets(mut self, ledger: &BudgetLedger) -> Self {
        self.core.account = ledger.open();
        self
    }

    /// Stops the drain when `stop` completes: nothing more is sent, the answers to requests in
    /// flight are awaited, and pods not gone are reported as left.
    pub(crate) fn with_stop(mut self, stop: Stop) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Runs the drain of every node to its end and returns the node reports (and the first pod
    /// refused for lack of permission). Dropping the future ends every watch and request the
    /// drain started.
    pub(crate) async fn run(mut self) -> (Vec<NodeReport>, Option<Denied>) {
        let (pods_tx, pods_rx) = unbounded_channel();
        let (pdb_tx, pdb_rx) = unbounded_channel();
        let (nodes_tx, nodes_rx) = unbounded_channel();
        // units other drains sharing the ledger release: a tick lets the core look again
        let mut released = self.core.account.ledger().subscribe();
        let mut sh = Shell {
            tasks: JoinSet::new(),
            pod_watches: HashMap::new(),
            pods_tx,
            pods_rx,
            pdb_tx,
            pdb_rx,
            node_watch: None,
            nodes_tx,
            nodes_rx,
        };
        if self.stop_requested() {
            self.feed(&mut sh, Input::Stop);
        }
        self.feed(&mut sh, Input::Start);
        while !self.core.finished() {
            if self.stop_requested() {
                self.feed(&mut sh, Input::Stop);
                continue;
            }
            let wake = self
                .core
                .next_wake()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let waiting_for_stop = self.stop.is_some();
            let input = tokio::select! {
                _ = async { self.stop.as_mut().expect("stop").await }, if waiting_for_stop => {
                    self.stop = None;
                    Input::Stop
                }
                // Every ending task matches here: a pattern that did not (an aborted watch)
                // would disable this branch for the rest of the wait, and the answers of
                // the tasks still running would then go unheard until some other wake-up.
                Some(ended) = sh.tasks.join_next(), if !sh.tasks.is_empty() => match ended {
                    Ok(Some(input)) => input,
                    Ok(None) | Err(_) => Input::Tick,
                },
                Some(s) = sh.pods_rx.recv() => Input::Pods(Box::new(s)),
                Some(s) = sh.pdb_rx.recv() => Input::Budgets(Box::new(s)),
                Some(s) = sh.nodes_rx.recv() => Input::Nodes(Box::new(s)),
                Ok(()) = released.changed() => Input::Tick,
                _ = tokio::time::sleep_until(wake) => Input::Tick,
            };
            // what else has already arrived goes to the core with it
            let mut inputs = vec![input];
            sh.take_ready(&mut inputs);
            self.feed_all(&mut sh, inputs);
        }
        sh.tasks.shutdown().await;
        (self.core.reports(now()), self.core.denied())
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

    /// Hands an input to the core and carries out its commands.
    fn feed(&mut self, sh: &mut Shell, input: Input) {
        self.feed_all(sh, vec![input]);
    }

    /// Hands inputs that arrived together to the core and carries out its commands.
    fn feed_all(&mut self, sh: &mut Shell, inputs: Vec<Input>) {
        for c in self.core.on_all(inputs, now()) {
            self.carry_out(sh, c);
        }
    }

    fn carry_out(&self, sh: &mut Shell, c: Command) {
        match c {
            Command::Emit(ev) => {
                if let Some(tx) = &self.events {
                    tx.send(ev);
                }
            }
            Command::Send {
                uid,
                pod,
                action,
                node,
            } => {
                let client = self.client.clone();
                let req = self.node_req[node].clone();
                let (grace, dry) = (self.opts.grace_override(), self.opts.dry_run);
                sh.tasks.spawn(async move {
                    let attempt = if action == Action::Delete {
                        evict::delete(&client, &pod, grace, dry, &req).await
                    } else {
                        evict::evict(&client, &pod, grace, dry, &req).await
                    };
                    Some(Input::Answer(Answer { uid, attempt }))
                });
            }
            Command::WatchPods {
                node,
                name,
                resource_version,
            } => {
                let run = watch::run(
                    Api::<Pod>::all(self.client.clone()),
                    Some(format!("spec.nodeName={name}")),
                    resource_version,
                    self.opts.chunk_size,
                    node,
                    sh.pods_tx.clone(),
                    self.node_req[node].clone(),
                    "pods",
                );
                let h = sh.tasks.spawn(async move {
                    run.await;
                    None
                });
                if let Some(old) = sh.pod_watches.insert(node, h) {
                    old.abort();
                }
            }
            Command::StopWatchingPods { node } => {
                if let Some(h) = sh.pod_watches.remove(&node) {
                    h.abort();
                }
            }
            Command::WatchBudgets { resource_version } => {
                let run = watch::run(
                    Api::<PodDisruptionBudget>::all(self.client.clone()),
                    None,
                    resource_version,
                    self.opts.chunk_size,
                    BUDGETS,
                    sh.pdb_tx.clone(),
                    self.req.clone(),
                    "poddisruptionbudgets",
                );
                sh.tasks.spawn(async move {
                    run.await;
                    None
                });
            }
            Command::ListPods {
                node,
                name,
                purpose,
            } => {
                let api = Api::<Pod>::all(self.client.clone());
                let req = self.node_req[node].clone();
                let chunk = self.opts.chunk_size;
                sh.tasks.spawn(async move {
                    let result = watch::list_node_pods(&api, &name, chunk, &req)
                        .await
                        .map_err(|e| e.to_string());
                    Some(Input::Listed {
                        node,
                        purpose,
                        result,
                    })
                });
            }
            Command::ReadRoom {
                candidates,
                closed,
                reserved,
                limit,
            } => {
                let client = self.client.clone();
                let req = self.req.clone();
                let chunk = self.opts.chunk_size;
                sh.tasks.spawn(async move {
                    let asked = RoomAsked {
                        candidates: &candidates,
                        closed: &closed,
                        reserved: &reserved,
                        limit,
                    };
                    let (fits, nodes) = read_room(&client, chunk, &req, asked).await;
                    Some(Input::Room { fits, nodes })
                });
            }
            Command::AdmitRoom {
                asked,
                closed,
                recent,
                coming,
            } => {
                let client = self.client.clone();
                let req = self.req.clone();
                let chunk = self.opts.chunk_size;
                sh.tasks.spawn(async move {
                    let pods: Vec<Pod> = asked.iter().map(|(_, p)| p.clone()).collect();
                    let started = Instant::now();
                    let fits = match crate::capacity::read(&client, chunk, &req).await {
                        Ok((Some(view), _)) => {
                            crate::waves::admissible(&view, &closed, &recent, &coming, &pods)
                                .map(|f| f.into_iter().map(|i| asked[i].0).collect())
                        }
                        Ok((None, warning)) => Err(warning.unwrap_or_default()),
                        Err(e) => Err(e.to_string()),
                    };
                    let asked = asked.into_iter().map(|(ix, _)| ix).collect();
                    let took = started.elapsed();
                    Some(Input::Admitted { asked, fits, took })
                });
            }
            Command::WatchNodes { resource_version } => {
                let run = watch::run(
                    Api::<Node>::all(self.client.clone()),
                    None,
                    resource_version,
                    self.opts.chunk_size,
                    NODES,
                    sh.nodes_tx.clone(),
                    self.req.clone(),
                    "nodes",
                );
                let h = sh.tasks.spawn(async move {
                    run.await;
                    None
                });
                if let Some(old) = sh.node_watch.replace(h) {
                    old.abort();
                }
            }
            Command::StopWatchingNodes => {
                if let Some(h) = sh.node_watch.take() {
                    h.abort();
                }
            }
            Command::LookUpDaemonSet {
                node,
                namespace,
                name,
            } => {
                let client = self.client.clone();
                let req = self.node_req[node].clone();
                sh.tasks.spawn(async move {
                    let lookup = lookup_daemonset(&client, &namespace, &name, &req).await;
                    Some(Input::DaemonSet {
                        namespace,
                        name,
                        lookup,
                    })
                });
            }
        }
    }
}

/// What a [`Command::ReadRoom`] asks.
struct RoomAsked<'a> {
    candidates: &'a [(usize, String, Vec<Pod>)],
    closed: &'a std::collections::BTreeSet<String>,
    reserved: &'a [Pod],
    limit: usize,
}

/// [`Command::ReadRoom`]: reads every node and pod (the capacity check's LISTs) and says which
/// candidates fit now ([`crate::waves::fitting_now`]), and what it saw of the nodes.
async fn read_room(
    client: &kube::Client,
    chunk: u32,
    req: &Requests,
    asked: RoomAsked<'_>,
) -> (Result<Vec<usize>, String>, Option<NodesSeen>) {
    let view = match crate::capacity::read(client, chunk, req).await {
        Ok((Some(view), _)) => view,
        Ok((None, warning)) => return (Err(warning.unwrap_or_default()), None),
        Err(e) => return (Err(e.to_string()), None),
    };
    let seen = NodesSeen {
        usable: view
            .nodes
            .iter()
            .filter_map(|n| Some((n.metadata.name.clone()?, room::room_signature(n)?)))
            .collect(),
        resource_version: view.nodes_resource_version.clone(),
    };
    let named: Vec<(String, Vec<Pod>)> = asked
        .candidates
        .iter()
        .map(|(_, name, pods)| (name.clone(), pods.clone()))
        .collect();
    let fits = crate::waves::fitting_now(&view, asked.closed, asked.reserved, &named, asked.limit)
        .map(|fits| {
            asked
                .candidates
                .iter()
                .filter(|(_, name, _)| fits.contains(name))
                .map(|(i, _, _)| *i)
                .collect()
        });
    (fits, Some(seen))
}

/// The clocks' current readings (the core reads none).
fn now() -> Now {
    Now {
        instant: Instant::now(),
        wall: jiff::Timestamp::now(),
    }
}

/// GETs the DaemonSet that controls a pod (as kubectl does) and says whether it exists.
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
