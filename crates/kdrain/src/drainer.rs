//! The [`Drainer`]: the entry point that validates, cordons, plans and drains nodes.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use tokio::time::Instant;

use crate::cordon::{self, CordonResult};
use crate::dispatch::{self, Denied, Dispatcher, NodeSetup, Shared};
use crate::error::DrainError;
use crate::events::{Event, EventSender};
use crate::model::missing_identity;
use crate::options::{DrainOptions, DryRun, OptionsError};
use crate::plan::{self, Action, NodeInput, Plan};
use crate::report::{NodeOutcome, NodeReport, PodOutcome, PodReport, Report};
use crate::requests::Requests;
use crate::select::{self, DaemonSetLookup, PodFilter};
use crate::watch::list_pods_of;
use crate::watch::{self, Listed};

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
}

/// What the read phase found, for planning and draining.
struct Gathered {
    inputs: Vec<NodeInput>,
    listed: Vec<Listed<Pod>>,
    pdbs: Option<Listed<PodDisruptionBudget>>,
    ds_cache: HashMap<(String, String), DaemonSetLookup>,
    /// Every node and pod, for the capacity check (`None` when they could not be listed).
    cluster: Option<crate::capacity::ClusterView>,
    /// Warnings of the read phase (e.g. budgets that could not be listed).
    warnings: Vec<String>,
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
        self.pod_selector()?;
        let nodes = dedup(nodes);
        let req = Requests::default();
        let mut objs = Vec::new();
        for n in &nodes {
            objs.push(cordon::get_node(&self.client, n, &req).await?);
        }
        let cordoned: Vec<bool> = objs.iter().map(cordon::is_cordoned).collect();
        let reqs: Vec<Requests> = nodes.iter().map(|_| req.child()).collect();
        let (plan, g) = self.gather_and_plan(&nodes, &cordoned, &reqs, &req).await?;
        self.emit_plan(&plan, &g.warnings, &nodes);
        Ok(plan)
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

    async fn gather_and_plan(
        &self,
        nodes: &[String],
        cordoned: &[bool],
        reqs: &[Requests],
        req: &Requests,
    ) -> Result<(Plan, Gathered), DrainError> {
        let g = self.gather(nodes, cordoned, reqs, req).await?;
        let pdbs: Vec<PodDisruptionBudget> =
            g.pdbs.as_ref().map(|l| l.items.clone()).unwrap_or_default();
        let cache = g.ds_cache.clone();
        let lookup = move |p: &Pod| {
            let key = (
                p.metadata.namespace.clone().unwrap_or_default(),
                select::controller_of(p)
                    .map(|o| o.name.clone())
                    .unwrap_or_default(),
            );
            cache.get(&key).cloned().unwrap_or(DaemonSetLookup::Found)
        };
        let now = jiff::Timestamp::now();
        let mut plan = plan::build(&self.options, &g.inputs, &pdbs, &lookup, &self.filters, now);
        if let Some(view) = &g.cluster {
            crate::fit::apply(&mut plan, &self.options, &g.inputs, view);
        }
        if !self.options.surge.is_empty() {
            let deployments = self.read_deployments(&g.inputs, req).await?;
            crate::surge::apply(&mut plan, &self.options.surge, &g.inputs, &deployments);
        }
        if let Some(view) = &g.cluster {
            crate::waves::apply(&mut plan, &self.options, &g.inputs, view, now);
        }
        plan.warnings.extend(g.warnings.iter().cloned());
        Ok((plan, g))
    }

    async fn gather(
        &self,
        nodes: &[String],
        cordoned: &[bool],
        reqs: &[Requests],
        req: &Requests,
    ) -> Result<Gathered, DrainError> {
        let pod_sel = self.pod_selector()?;
        let api: Api<Pod> = Api::all(self.client.clone());
        let mut inputs = Vec::new();
        let mut listed_all = Vec::new();
        let mut ds_cache: HashMap<(String, String), DaemonSetLookup> = HashMap::new();
        for (i, node) in nodes.iter().enumerate() {
            let listed = list_pods_of(&api, node, self.options.chunk_size, &reqs[i]).await?;
            if let Some(message) = listed.items.iter().enumerate().find_map(|(i, p)| {
                missing_identity(p).map(|field| format!("pod #{i} of the list has no {field}"))
            }) {
                return Err(DrainError::BadResponse {
                    context: format!("listing the pods of node {node}"),
                    message,
                });
            }
            let pods: Vec<Pod> = listed
                .items
                .iter()
                .filter(|p| {
                    pod_sel
                        .as_ref()
                        .is_none_or(|s| s.matches(&p.metadata.labels.clone().unwrap_or_default()))
                })
                .cloned()
                .collect();
            for p in &pods {
                if select::is_daemonset_pod(p) && !select::is_finished(p) {
                    let key = (
                        p.metadata.namespace.clone().unwrap_or_default(),
                        select::controller_of(p)
                            .map(|o| o.name.clone())
                            .unwrap_or_default(),
                    );
                    if let std::collections::hash_map::Entry::Vacant(slot) = ds_cache.entry(key) {
                        let (ns, name) = slot.key().clone();
                        slot.insert(
                            dispatch::lookup_daemonset(&self.client, &ns, &name, &reqs[i]).await,
                        );
                    }
                }
            }
            inputs.push(NodeInput {
                node: node.clone(),
                cordoned: cordoned[i],
                pods,
            });
            listed_all.push(listed);
        }
        let mut warnings = Vec::new();
        let pdbs = if self.options.disable_eviction {
            None
        } else {
            let api: Api<PodDisruptionBudget> = Api::all(self.client.clone());
            match watch::list_all(
                &api,
                None,
                None,
                self.options.chunk_size,
                req,
                "poddisruptionbudgets",
            )
            .await
            {
                Ok(l) => Some(l),
                // Without the right to list budgets the plan cannot check them, but the
                // evictions still respect them (the server does): go on, and say so.
                Err(kube::Error::Api(s)) if s.code == 403 => {
                    warnings.push(format!(
                        "cannot list disruption budgets ({}): the plan does not check budgets; evictions still respect them",
                        s.message
                    ));
                    None
                }
                Err(e) => {
                    return Err(DrainError::api(
                        "listing disruption budgets",
                        "list",
                        "poddisruptionbudgets",
                        None,
                        e,
                    ));
                }
            }
        };
        let (cluster, warning) =
            crate::capacity::read(&self.client, self.options.chunk_size, req).await?;
        warnings.extend(warning);
        Ok(Gathered {
            inputs,
            listed: listed_all,
            pdbs,
            ds_cache,
            cluster,
            warnings,
        })
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

    async fn run(
        &self,
        nodes: &[String],
        stop: impl std::future::Future<Output = ()> + Send + 'static,
        approved: Option<&Plan>,
    ) -> Result<Report, DrainError> {
        let started = jiff::Timestamp::now();
        let t0 = Instant::now();
        self.pod_selector()?;
        let nodes = dedup(nodes);
        let dry = self.options.dry_run;
        let req = Requests::default();
        let reqs: Vec<Requests> = nodes.iter().map(|_| req.child()).collect();
        let mut objs = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            objs.push(cordon::get_node(&self.client, n, &reqs[i]).await?);
        }
        let was: Vec<bool> = objs.iter().map(cordon::is_cordoned).collect();
        // Plan first, from reads only: a refused plan changes nothing (no cordon, no eviction).
        // Pods that land on a node between the plan's LIST and its cordon are taken in by the
        // dispatcher's watch, which starts at that LIST's resourceVersion.
        let (plan, g) = self.gather_and_plan(&nodes, &was, &reqs, &req).await?;
        if let Some(approved) = approved {
            let departures = crate::approval::departures(approved, &plan);
            if !departures.is_empty() {
                return Err(DrainError::PlanChanged { departures });
            }
        }
        if dry != DryRun::Client {
            // the permission check looks at the pods the plan's LIST found
            let pod_selector = self.pod_selector()?;
            let found =
                crate::access::OnNodes::from_lists(&nodes, &g.listed, pod_selector.as_ref());
            crate::access::preflight(&self.client, &self.options, &objs, &found, &req).await?;
        }
        if !plan.can_complete() {
            self.emit_plan(&plan, &g.warnings, &nodes);
            // refused pods need a flag (exit 4); only budgets that never pass are exit 3
            let pods_refused = plan.nodes.iter().any(|n| !n.errors.is_empty());
            let budget_never = plan
                .budgets
                .iter()
                .any(|b| matches!(b.verdict, crate::plan::BudgetVerdict::Never { .. }));
            return Err(DrainError::PlanRefused {
                no_room: plan.short_of_room() && !pods_refused,
                errors: plan.errors,
                blocked_by_budgets: budget_never && !pods_refused,
            });
        }
        for (i, n) in objs.iter().enumerate() {
            match cordon::cordon(&self.client, n, dry, &reqs[i]).await {
                Ok(r) => self.emit(Event::Cordoned {
                    node: r.node,
                    already: r.already,
                    dry_run: dry,
                }),
                Err(e) => {
                    self.restore(&nodes[..i], &nodes, &reqs).await;
                    return Err(e);
                }
            }
        }
        // kubectl's order: the cordon lines first, then the plan's warnings.
        self.emit_plan(&plan, &g.warnings, &nodes);
        // --surge: the targets are cordoned, so the new pods start elsewhere.
        for s in plan.surges.iter().filter(|s| s.restart) {
            if let Err(e) = self
                .restart_rollout(&s.namespace, &s.name, &nodes, &req)
                .await
            {
                self.restore(&nodes, &nodes, &reqs).await;
                return Err(e);
            }
        }
        let (node_reports, denied) = if dry == DryRun::Client {
            (self.client_dry_run(&plan, &was, &reqs), None)
        } else {
            let pod_selector = self.pod_selector()?;
            let shared = Shared {
                client: self.client.clone(),
                opts: self.options.clone(),
                events: self.events.clone(),
                filters: self.filters.clone(),
                pod_selector,
                req: req.clone(),
                ds_cache: g.ds_cache,
                waves: wave_indexes(&plan),
            };
            let setups: Vec<NodeSetup> = plan
                .nodes
                .iter()
                .zip(g.listed)
                .enumerate()
                .map(|(i, (np, listed))| NodeSetup {
                    name: np.node.clone(),
                    was_cordoned: was[i],
                    listed,
                    plan: np.clone(),
                    req: reqs[i].clone(),
                })
                .collect();
            Dispatcher::new(shared, setups, g.pdbs)
                .with_stop(Box::pin(stop))
                .run()
                .await
        };
        let failed: Vec<String> = node_reports
            .iter()
            .filter(|n| n.outcome != NodeOutcome::Drained)
            .map(|n| n.node.clone())
            .collect();
        if !failed.is_empty() {
            self.restore(&failed, &nodes, &reqs).await;
        }
        if let Some(denied) = denied {
            return Err(self.forbidden(denied));
        }
        let mut node_reports = node_reports;
        for (i, n) in node_reports.iter_mut().enumerate() {
            n.requests = reqs[i].snapshot();
        }
        let report = Report {
            nodes: node_reports,
            started,
            seconds: t0.elapsed().as_secs_f64(),
            requests: req.snapshot(),
        };
        self.emit(Event::Done {
            succeeded: report.succeeded(),
            seconds: report.seconds,
        });
        if report.succeeded() {
            Ok(report)
        } else {
            Err(DrainError::Incomplete {
                report: Box::new(report),
            })
        }
    }

    /// Reads the Deployments `--surge` names whose pods are on the target nodes (one GET each);
    /// a 404 or 403 is said in words for the plan.
    async fn read_deployments(
        &self,
        inputs: &[NodeInput],
        req: &Requests,
    ) -> Result<
        std::collections::BTreeMap<
            (String, String),
            Result<k8s_openapi::api::apps::v1::Deployment, String>,
        >,
        DrainError,
    > {
        use k8s_openapi::api::apps::v1::Deployment;
        let mut out = std::collections::BTreeMap::new();
        for (ns, name) in crate::surge::deployments_to_read(&self.options.surge, inputs) {
            let api: Api<Deployment> = Api::namespaced(self.client.clone(), &ns);
            req.count("get", "deployments");
            let got = match api.get(&name).await {
                Ok(d) => Ok(d),
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 403 => {
                    Err(format!("cannot read the Deployment: {}", s.message))
                }
                Err(e) => {
                    return Err(DrainError::api(
                        format!("reading Deployment {ns}/{name}"),
                        "get",
                        "deployments",
                        Some(&ns),
                        e,
                    ));
                }
            };
            out.insert((ns, name), got);
        }
        Ok(out)
    }

    /// `--surge`: restarts a Deployment's rollout as `kubectl rollout restart` does, and records
    /// it on the Deployment. Honours the dry-run option.
    async fn restart_rollout(
        &self,
        ns: &str,
        name: &str,
        nodes: &[String],
        req: &Requests,
    ) -> Result<(), DrainError> {
        use k8s_openapi::api::apps::v1::Deployment;
        let dry = self.options.dry_run;
        if dry != DryRun::Client {
            let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
            let patch = crate::surge::restart_patch(jiff::Timestamp::now(), nodes);
            let pp = kube::api::PatchParams {
                dry_run: dry == DryRun::Server,
                ..Default::default()
            };
            req.count("patch", "deployments");
            api.patch(name, &pp, &kube::api::Patch::Strategic(&patch))
                .await
                .map_err(|e| {
                    DrainError::api(
                        format!("restarting the rollout of Deployment {ns}/{name} (--surge)"),
                        "patch",
                        "deployments",
                        Some(ns),
                        e,
                    )
                })?;
        }
        self.emit(Event::RolloutRestarted {
            namespace: ns.to_string(),
            name: name.to_string(),
            dry_run: dry,
        });
        Ok(())
    }

    /// A pod the server refused to remove for lack of permission (403 not caused by a
    /// terminating namespace or a budget): the drain fails as [`DrainError::Forbidden`] naming
    /// the verb, resource and namespace, not as a pod left behind.
    fn forbidden(&self, denied: Denied) -> DrainError {
        let (verb, resource) = if self.options.disable_eviction {
            ("delete", "pods")
        } else {
            ("create", "pods/eviction")
        };
        DrainError::Forbidden {
            verb: verb.into(),
            resource: resource.into(),
            namespace: Some(denied.pod.namespace),
            message: denied.message,
        }
    }

    /// Client dry run: every pod the plan would evict is reported, nothing is sent.
    fn client_dry_run(&self, plan: &Plan, was: &[bool], reqs: &[Requests]) -> Vec<NodeReport> {
        plan.nodes
            .iter()
            .enumerate()
            .map(|(i, np)| {
                let pods = np
                    .pods
                    .iter()
                    .map(|p| {
                        let r = p.pod_ref();
                        let outcome = match p.action {
                            Action::Evict | Action::Wait => {
                                self.emit(Event::EvictionSent {
                                    node: np.node.clone(),
                                    pod: r.clone(),
                                    attempt: 1,
                                    dry_run: DryRun::Client,
                                });
                                PodOutcome::DryRun
                            }
                            Action::Delete => {
                                self.emit(Event::DeleteSent {
                                    node: np.node.clone(),
                                    pod: r.clone(),
                                    dry_run: DryRun::Client,
                                });
                                PodOutcome::DryRun
                            }
                            Action::Skip => PodOutcome::Skipped,
                            Action::Refuse => PodOutcome::Failed {
                                error: p.reason.clone(),
                                kind: crate::report::FailureKind::Refused,
                            },
                        };
                        // The request that would have been sent counts, as in a server dry run.
                        let attempts = u32::from(outcome == PodOutcome::DryRun);
                        PodReport {
                            pod: r,
                            action: p.action,
                            reason: p.reason.clone(),
                            attempts,
                            first_attempt: None,
                            accepted: None,
                            gone: None,
                            blocked_by: None,
                            blocked_seconds: 0.0,
                            outcome,
                        }
                    })
                    .collect();
                self.emit(Event::NodeDrained {
                    node: np.node.clone(),
                    dry_run: DryRun::Client,
                });
                NodeReport {
                    node: np.node.clone(),
                    was_cordoned: was[i],
                    seconds: 0.0,
                    pods,
                    requests: reqs[i].snapshot(),
                    outcome: NodeOutcome::Drained,
                }
            })
            .collect()
    }

    /// With `uncordon_on_failure`, uncordons the given nodes if kdrain cordoned them.
    async fn restore(&self, nodes: &[String], all: &[String], reqs: &[Requests]) {
        if !self.options.uncordon_on_failure || self.options.dry_run.is_dry() {
            return;
        }
        for n in nodes {
            let req = all
                .iter()
                .position(|a| a == n)
                .map(|i| reqs[i].clone())
                .unwrap_or_default();
            let node = match cordon::get_node(&self.client, n, &req).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(node = %n, "cannot restore the node: {e}");
                    continue;
                }
            };
            match cordon::uncordon(&self.client, &node, true, DryRun::None, &req).await {
                Ok(Some(r)) => self.emit(Event::Uncordoned {
                    node: r.node,
                    already: r.already,
                }),
                Ok(None) => {}
                Err(e) => tracing::warn!(node = %n, "cannot uncordon the node: {e}"),
            }
        }
    }
}

/// The plan's waves as indexes into its nodes; empty unless the waves hold every node once.
fn wave_indexes(plan: &Plan) -> Vec<Vec<usize>> {
    let index = |name: &String| plan.nodes.iter().position(|n| &n.node == name);
    let waves: Option<Vec<Vec<usize>>> = plan
        .waves
        .iter()
        .map(|w| w.nodes.iter().map(index).collect())
        .collect();
    let waves = waves.unwrap_or_default();
    let mut all: Vec<usize> = waves.iter().flatten().copied().collect();
    all.sort_unstable();
    all.dedup();
    if all.len() == plan.nodes.len() && waves.iter().map(Vec::len).sum::<usize>() == all.len() {
        waves
    } else {
        Vec::new()
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
