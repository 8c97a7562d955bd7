//! The read phase: the pods of each target node, the budgets, the DaemonSets their pods name,
//! every node and pod for the capacity check and the Deployments `--surge` names; then the plan
//! made from them.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;

use super::Drainer;
use crate::dispatch;
use crate::error::DrainError;
use crate::model::missing_identity;
use crate::plan::{self, NodeInput, Plan};
use crate::requests::Requests;
use crate::select::{self, DaemonSetLookup};
use crate::watch::{self, Listed, list_pods_of};

/// What the read phase found, for planning and draining.
pub(super) struct Gathered {
    pub(super) inputs: Vec<NodeInput>,
    pub(super) listed: Vec<Listed<Pod>>,
    pub(super) pdbs: Option<Listed<PodDisruptionBudget>>,
    pub(super) ds_cache: HashMap<(String, String), DaemonSetLookup>,
    /// Every node and pod, for the capacity check (`None` when they could not be listed).
    pub(super) cluster: Option<crate::capacity::ClusterView>,
    /// Warnings of the read phase (e.g. budgets that could not be listed).
    pub(super) warnings: Vec<String>,
}

impl Drainer {
    pub(super) async fn gather_and_plan(
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
}
