//! The read phase: the pods of each target node, the budgets, the DaemonSets their pods name,
//! every node and pod for the capacity check and the Deployments `--surge` names; then the plan
//! made from them.

use std::collections::HashMap;

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;

use super::Drainer;
use crate::capacity::ClusterView;
use crate::dispatch;
use crate::error::DrainError;
use crate::model::missing_identity;
use crate::plan::{self, NodeInput, Plan};
use crate::requests::Requests;
use crate::select::{self, DaemonSetLookup};
use crate::watch::{self, Listed, list_pods_of};

/// How many target nodes' pod LISTs the read phase has in flight at once.
const NODE_LISTS_AT_ONCE: usize = 4;

/// What the read phase found, for planning and draining. Each node's LIST is kept once: the
/// pods the pod selector selects in `inputs` (what the plan reads), the others in `unselected`
/// (the dispatcher ignores them); [`Gathered::into_lists`] puts them back together, moving the
/// pods, for the drain.
pub(super) struct Gathered {
    pub(super) inputs: Vec<NodeInput>,
    /// Per node, the pods of its LIST that the pod selector leaves out.
    pub(super) unselected: Vec<Vec<Pod>>,
    /// Per node, its LIST's resourceVersion.
    pub(super) resource_versions: Vec<String>,
    pub(super) pdbs: Option<Listed<PodDisruptionBudget>>,
    pub(super) ds_cache: HashMap<(String, String), DaemonSetLookup>,
    /// Warnings of the read phase (e.g. budgets that could not be listed).
    pub(super) warnings: Vec<String>,
}

impl Gathered {
    /// Each node's LIST as the dispatcher takes it (its selected pods, then the others), the
    /// pods moved, not copied.
    pub(super) fn into_lists(
        inputs: Vec<NodeInput>,
        unselected: Vec<Vec<Pod>>,
        resource_versions: Vec<String>,
    ) -> Vec<Listed<Pod>> {
        inputs
            .into_iter()
            .zip(unselected)
            .zip(resource_versions)
            .map(|((input, others), resource_version)| {
                let mut items = input.pods;
                items.extend(others);
                Listed {
                    items,
                    resource_version,
                }
            })
            .collect()
    }
}

/// The pods of each target node, in the nodes' order: the first node's LIST alone, then
/// [`NODE_LISTS_AT_ONCE`] in flight; when the first fails, only its error.
async fn list_targets(
    api: &Api<Pod>,
    nodes: &[String],
    reqs: &[Requests],
    chunk: u32,
) -> Vec<Result<Listed<Pod>, DrainError>> {
    let mut waiting = nodes.iter().zip(reqs);
    let mut running = FuturesOrdered::new();
    let mut lists = Vec::with_capacity(nodes.len());
    if let Some((node, req)) = waiting.next() {
        let first = list_pods_of(api, node, chunk, req).await;
        let failed = first.is_err();
        lists.push(first);
        if failed {
            return lists;
        }
    }
    loop {
        while running.len() < NODE_LISTS_AT_ONCE {
            let Some((node, req)) = waiting.next() else {
                break;
            };
            running.push_back(list_pods_of(api, node, chunk, req));
        }
        match running.next().await {
            Some(listed) => lists.push(listed),
            None => return lists,
        }
    }
}

impl Drainer {
    pub(super) async fn gather_and_plan(
        &self,
        nodes: &[String],
        cordoned: &[bool],
        reqs: &[Requests],
        req: &Requests,
    ) -> Result<(Plan, Gathered), DrainError> {
        // The cluster view (every node and pod) serves the plan only: it is dropped when the
        // plan is made (a room check during the drain reads the cluster again).
        let (g, cluster) = self.gather(nodes, cordoned, reqs, req).await?;
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
        if let Some(view) = &cluster {
            crate::fit::apply(&mut plan, &self.options, &g.inputs, view);
        }
        if !self.options.surge.is_empty() {
            let deployments = self.read_deployments(&g.inputs, req).await?;
            crate::surge::apply(&mut plan, &self.options.surge, &g.inputs, &deployments);
        }
        if let Some(view) = &cluster {
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
    ) -> Result<(Gathered, Option<ClusterView>), DrainError> {
        let pod_sel = self.pod_selector()?;
        let api: Api<Pod> = Api::all(self.client.clone());
        let chunk = self.options.chunk_size;
        // The target nodes' LISTs: the first one alone (a refused or failing LIST stops the
        // read before any other request, as reading one node after the other did), then the
        // others a few at a time; what they found is taken node by node, in order (the same
        // first error, the DaemonSet lookups counted on the same node). The budgets' LIST and
        // the capacity read follow, as before: the capacity read keeps both cores busy on its
        // own (its pages are parsed while the server writes the next).
        let lists = list_targets(&api, nodes, reqs, chunk).await;
        let mut inputs = Vec::new();
        let mut unselected = Vec::new();
        let mut resource_versions = Vec::new();
        let mut ds_cache: HashMap<(String, String), DaemonSetLookup> = HashMap::new();
        for (i, (node, listed)) in nodes.iter().zip(lists).enumerate() {
            let listed = listed?;
            if let Some(message) = listed.items.iter().enumerate().find_map(|(i, p)| {
                missing_identity(p).map(|field| format!("pod #{i} of the list has no {field}"))
            }) {
                return Err(DrainError::BadResponse {
                    context: format!("listing the pods of node {node}"),
                    message,
                });
            }
            // the selected pods stay in the LIST's vector (no copy of every pod into vectors
            // grown by doubling); the others are taken out, in order
            let mut pods = listed.items;
            let others: Vec<Pod> = match &pod_sel {
                None => Vec::new(),
                Some(s) => pods
                    .extract_if(.., |p| {
                        !s.matches(p.metadata.labels.as_ref().unwrap_or(&Default::default()))
                    })
                    .collect(),
            };
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
            unselected.push(others);
            resource_versions.push(listed.resource_version);
        }
        let mut warnings = Vec::new();
        let pdbs = if self.options.disable_eviction {
            None
        } else {
            let api: Api<PodDisruptionBudget> = Api::all(self.client.clone());
            match watch::list_all(&api, None, None, chunk, req, "poddisruptionbudgets").await {
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
        let gathered = Gathered {
            inputs,
            unselected,
            resource_versions,
            pdbs,
            ds_cache,
            warnings,
        };
        Ok((gathered, cluster))
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
