//! The [`Drainer`]: the entry point that validates, cordons, plans and drains nodes.

mod gather;
mod run;

pub use self::run::Prepared;

use k8s_openapi::api::core::v1::Node;
use kube::Api;

use crate::cordon::{self, CordonResult};
use crate::dispatch::BudgetLedger;
use crate::error::DrainError;
use crate::events::{Event, EventSender};
use crate::options::{DrainOptions, OptionsError};
use crate::plan::Plan;
use crate::report::Report;
use crate::requests::Requests;
use crate::select::PodFilter;
use crate::watch;

/// Drains nodes. Build one with a client and options, optionally attach an event channel and
/// custom filters, then call [`Drainer::drain`].
///
/// The client must be built with `default_retry = false`
/// (`let mut config = kube::Config::infer().await?; config.default_retry = false;`): otherwise the
/// `kube` client silently retries 429s for minutes, and kdrain cannot report or time blocked
/// evictions.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use kdrain::{Drainer, DrainOptions, Event};
///
/// let mut config = kube::Config::infer().await?;
/// config.default_retry = false;
/// let client = kube::Client::try_from(config)?;
///
/// let options = DrainOptions { ignore_daemonsets: true, delete_emptydir_data: true, ..DrainOptions::kubectl() };
/// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
/// let drainer = Drainer::new(client, options).with_events(tx);
/// tokio::spawn(async move {
///     while let Some(event) = rx.recv().await {
///         if let Event::Blocked { pod, cause, .. } = event {
///             eprintln!("{pod} blocked: {cause}");
///         }
///     }
/// });
/// match drainer.drain(&["node-1".to_string()]).await {
///     Ok(report) => println!("drained in {:.1}s", report.seconds),
///     Err(e) => eprintln!("{e} ({:?})", e.kind()),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Drainer {
    pub(crate) client: kube::Client,
    pub(crate) options: DrainOptions,
    pub(crate) events: Option<EventSender>,
    pub(crate) filters: Vec<PodFilter>,
    /// The options' check, done once: the parsed pod selector, or why the options are invalid
    /// (returned by the first call that would send a request).
    pub(crate) checked: Result<Option<selectors::LabelSelector>, OptionsError>,
    /// The ledger of evictions spent under budgets, shared with other drains (None: the
    /// drain's own; see [`crate::DrainerBuilder::shared_budgets`]).
    pub(crate) budgets: Option<BudgetLedger>,
}

impl Drainer {
    /// A drainer with `client` (built with `default_retry = false`) and `options`. Invalid
    /// options are reported by the first call that would send a request; use
    /// [`Drainer::builder`] to have them reported at once.
    pub fn new(client: kube::Client, options: DrainOptions) -> Self {
        let options = options.normalised();
        let checked = options.check();
        Drainer {
            client,
            options,
            events: None,
            filters: Vec::new(),
            checked,
            budgets: None,
        }
    }

    /// The parsed pod selector, or the options' error.
    fn pod_selector(&self) -> Result<Option<selectors::LabelSelector>, DrainError> {
        self.checked.clone().map_err(DrainError::Options)
    }

    /// Sends progress events to `tx` while working: an `UnboundedSender<Stamped>` receives each
    /// event with the time it happened, an `UnboundedSender<Event>` the events alone.
    pub fn with_events(mut self, tx: impl Into<EventSender>) -> Self {
        self.events = Some(tx.into());
        self
    }

    /// Adds a custom filter, run after kubectl's filters and the opt-outs (kubectl's
    /// `AdditionalFilters`).
    ///
    /// ```no_run
    /// # fn demo(drainer: kdrain::Drainer) -> kdrain::Drainer {
    /// use std::sync::Arc;
    /// use kdrain::FilterVerdict;
    /// drainer.with_filter(Arc::new(|pod: &k8s_openapi::api::core::v1::Pod| {
    ///     if pod.metadata.name.as_deref() == Some("my-operator-0") {
    ///         FilterVerdict::Skip("the operator running this drain".into())
    ///     } else {
    ///         FilterVerdict::Pass
    ///     }
    /// }))
    /// # }
    /// ```
    pub fn with_filter(mut self, filter: PodFilter) -> Self {
        self.filters.push(filter);
        self
    }

    /// The options in use.
    pub fn options(&self) -> &DrainOptions {
        &self.options
    }

    fn emit(&self, ev: Event) {
        if let Some(tx) = &self.events {
            tx.send(ev);
        }
    }

    /// The names of the nodes matching a label selector (kubectl `-l`), sorted.
    pub async fn resolve_nodes(&self, selector: &str) -> Result<Vec<String>, DrainError> {
        selectors::LabelSelector::parse(selector).map_err(|e| {
            DrainError::Options(OptionsError::BadNodeSelector {
                selector: selector.to_string(),
                message: e.to_string(),
            })
        })?;
        let api: Api<Node> = Api::all(self.client.clone());
        let req = Requests::default();
        let listed = watch::list_all(
            &api,
            None,
            Some(selector),
            self.options.chunk_size,
            &req,
            "nodes",
        )
        .await
        .map_err(|e| {
            DrainError::api(
                format!("listing nodes with selector {selector:?}"),
                "list",
                "nodes",
                None,
                e,
            )
        })?;
        let mut nodes: Vec<String> = listed
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        nodes.sort();
        self.emit(Event::NodesResolved {
            nodes: nodes.clone(),
        });
        Ok(nodes)
    }

    /// Cordons one node (nothing is sent if it already is unschedulable). Honours the dry-run option.
    pub async fn cordon(&self, node: &str) -> Result<CordonResult, DrainError> {
        let req = Requests::default();
        let n = cordon::get_node(&self.client, node, &req).await?;
        let r = cordon::cordon(&self.client, &n, self.options.dry_run, &req).await?;
        self.emit(Event::Cordoned {
            node: r.node.clone(),
            already: r.already,
            dry_run: self.options.dry_run,
        });
        Ok(r)
    }

    /// Makes one node schedulable again (and removes kdrain's cordon annotation).
    pub async fn uncordon(&self, node: &str) -> Result<CordonResult, DrainError> {
        let req = Requests::default();
        let n = cordon::get_node(&self.client, node, &req).await?;
        let r = cordon::uncordon(&self.client, &n, false, self.options.dry_run, &req)
            .await?
            .expect("uncordon without the kdrain condition always answers");
        self.emit(Event::Uncordoned {
            node: r.node.clone(),
            already: r.already,
        });
        Ok(r)
    }

    /// Computes the plan for `nodes` from reads only: nothing is changed.
    pub async fn plan(&self, nodes: &[String]) -> Result<Plan, DrainError> {
        Ok(self.prepare(nodes).await?.plan().clone())
    }

    /// [`Drainer::plan`], keeping the reads the plan was made from, so that
    /// [`Drainer::execute_prepared`] carries out this very plan without reading the pods,
    /// budgets and cluster again (a caller that plans, then decides, then drains reads once).
    pub async fn prepare(&self, nodes: &[String]) -> Result<Prepared, DrainError> {
        let (prepared, _) = self.read(nodes).await?;
        let plan = prepared.plan();
        self.emit_plan(plan, &prepared.gathered_warnings(), &prepared.node_names());
        Ok(prepared)
    }

    /// Sends the plan's events: the read phase's warnings, `Planned`, then each node's warnings.
    fn emit_plan(&self, plan: &Plan, read_warnings: &[String], nodes: &[String]) {
        for w in read_warnings {
            for n in nodes {
                self.emit(Event::Warning {
                    node: n.clone(),
                    message: w.clone(),
                });
            }
        }
        self.emit(Event::Planned { plan: plan.clone() });
        for n in &plan.nodes {
            if !n.warnings.is_empty() {
                self.emit(Event::Warning {
                    node: n.node.clone(),
                    message: n.warnings.join("; "),
                });
            }
        }
    }

    /// Drains `nodes`: checks that all exist (bad input changes nothing), plans from reads only
    /// and stops on plan errors before any change (no cordon, no eviction), cordons every node
    /// (pods that land between the plan and the cordon are drained too), then drains up to
    /// `options.parallel_nodes` nodes at once with one budget-aware dispatcher.
    ///
    /// Returns the report when every target pod was seen gone, and
    /// [`DrainError::Incomplete`] (with the report) otherwise.
    pub async fn drain(&self, nodes: &[String]) -> Result<Report, DrainError> {
        self.drain_until(nodes, std::future::pending()).await
    }

    /// [`Drainer::drain`] that stops when `stop` completes (e.g. on Ctrl-C): no request is sent
    /// after that, the answers to requests already in flight are awaited (at most 10 s), one
    /// fresh LIST per node catches up with pods already gone, and the drain returns
    /// [`DrainError::Incomplete`] whose report names every pod left (outcome `Blocked`, or
    /// `Failed` with an error starting with "interrupted"). Nodes stay cordoned unless
    /// `uncordon_on_failure` is set. `stop` is checked once evictions begin; the reads and
    /// cordons before them take a few requests.
    ///
    /// ```no_run
    /// # async fn demo(drainer: kdrain::Drainer) {
    /// let ctrl_c = async {
    ///     let _ = tokio::signal::ctrl_c().await;
    /// };
    /// if let Err(e) = drainer.drain_until(&["node-1".to_string()], ctrl_c).await
    ///     && let Some(report) = e.report()
    /// {
    ///     for pod in report.pending() {
    ///         eprintln!("left: {} ({:?})", pod.pod, pod.outcome);
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn drain_until(
        &self,
        nodes: &[String],
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<Report, DrainError> {
        self.run(nodes, stop, None).await
    }

    /// Drains the nodes of `approved`, a plan from [`Drainer::plan`] that the caller reviewed,
    /// so that the approved plan is the one that runs: before any change, the plan is made
    /// again from fresh reads and compared with it ([`crate::approval`]). If a pod's action
    /// changed (a pod that was to stay would now be evicted, or the reverse) or the nodes
    /// differ, nothing is changed and [`DrainError::PlanChanged`] says how. Pods that appeared
    /// since are drained by the same rules, as [`Drainer::drain`] drains pods that land on a
    /// node before its cordon. Otherwise as [`Drainer::drain`].
    pub async fn execute(&self, approved: &Plan) -> Result<Report, DrainError> {
        self.execute_until(approved, std::future::pending()).await
    }

    /// [`Drainer::execute`] that stops when `stop` completes, as [`Drainer::drain_until`].
    pub async fn execute_until(
        &self,
        approved: &Plan,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<Report, DrainError> {
        let nodes: Vec<String> = approved.nodes.iter().map(|n| n.node.clone()).collect();
        self.run(&nodes, stop, Some(approved)).await
    }

    /// Checks, changing nothing, that the credentials allow every request carrying out
    /// `prepared` would send: the permission check [`Drainer::execute_prepared`] makes before
    /// its cordon, for a caller that changes the nodes itself first (kdrain's controller
    /// cordons before it executes). A missing right is [`DrainError::Forbidden`], naming the
    /// verb and the resource.
    pub async fn check_access(&self, prepared: &Prepared) -> Result<(), DrainError> {
        self.check_prepared(prepared).await
    }

    /// Carries out a plan from [`Drainer::prepare`] with the reads it was made from: each node
    /// is read again for its cordon (nothing is sent to a node already unschedulable, e.g.
    /// cordoned by the caller), then as [`Drainer::drain_until`] from the cordon on: a plan
    /// that cannot complete is refused with nothing changed, and the drain stops when `stop`
    /// completes.
    pub async fn execute_prepared(
        &self,
        prepared: Prepared,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<Report, DrainError> {
        self.run_prepared(prepared, stop).await
    }
}

fn dedup(nodes: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    nodes
        .iter()
        .filter(|n| seen.insert(n.as_str()))
        .cloned()
        .collect()
}
