//! The drain itself: cordon, `--surge` restarts, the dispatcher, and what is restored when a
//! node fails.

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use tokio::time::Instant;

use super::gather::Gathered;
use super::{Drainer, dedup};
use crate::cordon;
use crate::dispatch::{Denied, Dispatcher, NodeSetup, Shared};
use crate::error::DrainError;
use crate::events::Event;
use crate::options::DryRun;
use crate::plan::{Action, Plan};
use crate::report::{NodeOutcome, NodeReport, PodOutcome, PodReport, Report};
use crate::requests::Requests;

/// A plan and the reads it was made from, from [`Drainer::prepare`]: [`Drainer::execute_prepared`]
/// carries it out without reading the pods, budgets and cluster again. The drain's watches
/// start at the plan's LISTs' resourceVersions, so whatever changed since (a pod gone, one
/// scheduled before the cordon, a budget's status) reaches the drain as it happens, exactly as
/// between the reads and the cordon of [`Drainer::drain`].
pub struct Prepared {
    plan: Plan,
    nodes: Vec<String>,
    /// Each node was unschedulable when read.
    was: Vec<bool>,
    gathered: Gathered,
    req: Requests,
    reqs: Vec<Requests>,
}

impl Prepared {
    /// The plan, for the caller to inspect before executing it.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub(super) fn gathered_warnings(&self) -> Vec<String> {
        self.gathered.warnings.clone()
    }

    pub(super) fn node_names(&self) -> Vec<String> {
        self.nodes.clone()
    }
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

impl Drainer {
    /// Reads the nodes and what the plan needs, and plans: nothing is changed.
    pub(super) async fn read(&self, nodes: &[String]) -> Result<(Prepared, Vec<Node>), DrainError> {
        self.pod_selector()?;
        let nodes = dedup(nodes);
        let req = Requests::default();
        let reqs: Vec<Requests> = nodes.iter().map(|_| req.child()).collect();
        let mut objs = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            objs.push(cordon::get_node(&self.client, n, &reqs[i]).await?);
        }
        let was: Vec<bool> = objs.iter().map(cordon::is_cordoned).collect();
        let (plan, gathered) = self.gather_and_plan(&nodes, &was, &reqs, &req).await?;
        let prepared = Prepared {
            plan,
            nodes,
            was,
            gathered,
            req,
            reqs,
        };
        Ok((prepared, objs))
    }

    pub(super) async fn run(
        &self,
        nodes: &[String],
        stop: impl std::future::Future<Output = ()> + Send + 'static,
        approved: Option<&Plan>,
    ) -> Result<Report, DrainError> {
        // Plan first, from reads only: a refused plan changes nothing (no cordon, no eviction).
        // Pods that land on a node between the plan's LIST and its cordon are taken in by the
        // dispatcher's watch, which starts at that LIST's resourceVersion.
        let (prepared, objs) = self.read(nodes).await?;
        if let Some(approved) = approved {
            let departures = crate::approval::departures(approved, &prepared.plan);
            if !departures.is_empty() {
                return Err(DrainError::PlanChanged { departures });
            }
        }
        self.carry_out(prepared, objs, stop).await
    }

    /// The permission check of [`Self::carry_out`] alone, for `prepared`: each node is read
    /// again (the check's harmless probes need it), nothing is changed.
    pub(super) async fn check_prepared(&self, prepared: &Prepared) -> Result<(), DrainError> {
        if self.options.dry_run == DryRun::Client {
            return Ok(());
        }
        let mut objs = Vec::new();
        for (i, n) in prepared.nodes.iter().enumerate() {
            objs.push(cordon::get_node(&self.client, n, &prepared.reqs[i]).await?);
        }
        let found = crate::access::OnNodes::from_inputs(
            &prepared.gathered.inputs,
            &prepared.gathered.resource_versions,
        );
        crate::access::preflight(
            &self.client,
            &self.options,
            &objs,
            &found,
            prepared.gathered.pdbs.is_some(),
            &prepared.req,
        )
        .await
    }

    /// Reads each node again (for its cordon) and carries out `prepared`.
    pub(super) async fn run_prepared(
        &self,
        prepared: Prepared,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<Report, DrainError> {
        self.pod_selector()?;
        let mut objs = Vec::new();
        for (i, n) in prepared.nodes.iter().enumerate() {
            objs.push(cordon::get_node(&self.client, n, &prepared.reqs[i]).await?);
        }
        self.carry_out(prepared, objs, stop).await
    }

    /// From the plan on: the permission check, the cordons, `--surge` restarts, the dispatcher
    /// and the report. `objs` are the nodes as last read (the cordon sends nothing to one
    /// already unschedulable).
    async fn carry_out(
        &self,
        prepared: Prepared,
        objs: Vec<Node>,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<Report, DrainError> {
        let started = jiff::Timestamp::now();
        let t0 = Instant::now();
        let Prepared {
            plan,
            nodes,
            was,
            gathered: g,
            req,
            reqs,
        } = prepared;
        let Gathered {
            inputs,
            unselected,
            resource_versions,
            pdbs,
            ds_cache,
            warnings,
        } = g;
        let dry = self.options.dry_run;
        if dry != DryRun::Client {
            // the permission check looks at the pods the plan's LIST found
            let found = crate::access::OnNodes::from_inputs(&inputs, &resource_versions);
            let budgets_listed = pdbs.is_some();
            crate::access::preflight(
                &self.client,
                &self.options,
                &objs,
                &found,
                budgets_listed,
                &req,
            )
            .await?;
        }
        if !plan.can_complete() {
            self.emit_plan(&plan, &warnings, &nodes);
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
        self.emit_plan(&plan, &warnings, &nodes);
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
            let (waves, waiting) = crate::waves::indexes(&plan);
            let shared = Shared {
                client: self.client.clone(),
                opts: self.options.clone(),
                events: self.events.clone(),
                filters: self.filters.clone(),
                pod_selector,
                req: req.clone(),
                ds_cache,
                waves,
                waiting,
            };
            // the plan's pods are handed to the dispatcher, not copied
            let lists = Gathered::into_lists(inputs, unselected, resource_versions);
            let setups: Vec<NodeSetup> = plan
                .nodes
                .iter()
                .zip(lists)
                .enumerate()
                .map(|(i, (np, listed))| NodeSetup {
                    name: np.node.clone(),
                    was_cordoned: was[i],
                    listed,
                    plan: np.clone(),
                    req: reqs[i].clone(),
                })
                .collect();
            let mut dispatcher = Dispatcher::new(shared, setups, pdbs);
            if let Some(ledger) = &self.budgets {
                dispatcher = dispatcher.with_budgets(ledger);
            }
            dispatcher.with_stop(Box::pin(stop)).run().await
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
