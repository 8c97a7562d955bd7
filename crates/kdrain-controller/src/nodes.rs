//! The nodes of a NodeDrain: resolving its targets, cordoning them with the NodeDrain's name in
//! the `kdrain.io/cordoned-by` annotation, and uncordoning only the nodes carrying that name
//! (found from the cluster, so a restarted controller restores exactly what it cordoned).

use k8s_openapi::api::core::v1::Node;
use kdrain::cordon::{CORDONED_BY, is_cordoned};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};

use crate::spec::Targets;

/// The annotation value that marks a node cordoned by NodeDrain `name`.
pub fn owner_mark(name: &str) -> String {
    format!("nodedrain/{name}")
}

/// True when `node` was cordoned by NodeDrain `name`.
pub fn cordoned_by(node: &Node, name: &str) -> bool {
    node.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CORDONED_BY))
        .is_some_and(|v| *v == owner_mark(name))
}

/// Why targets could not be resolved: a one-line message for the `Refused` condition, or an
/// API error to retry.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The spec names nodes that do not exist, or its selector matches none.
    #[error("{message}")]
    Refused {
        /// The condition's reason.
        reason: &'static str,
        /// One line naming the problem and the fix.
        message: String,
    },
    /// The API failed.
    #[error("reading nodes: {0}")]
    Api(#[from] kube::Error),
}

/// The node names a NodeDrain targets, sorted by the order given (names) or by name (selector).
pub async fn resolve(
    client: &kube::Client,
    targets: &Targets,
) -> Result<Vec<String>, ResolveError> {
    let api: Api<Node> = Api::all(client.clone());
    match targets {
        Targets::Names(names) => {
            let mut unknown = Vec::new();
            for n in names {
                if api.get_opt(n).await?.is_none() {
                    unknown.push(n.clone());
                }
            }
            if unknown.is_empty() {
                Ok(names.clone())
            } else {
                let (what, list) = match unknown.as_slice() {
                    [one] => ("node", one.clone()),
                    many => ("nodes", many.join(", ")),
                };
                Err(ResolveError::Refused {
                    reason: "NodeNotFound",
                    message: format!(
                        "{what} {list} not found; check spec.nodeNames against `kubectl get nodes`"
                    ),
                })
            }
        }
        Targets::Selector(sel) => {
            let list = api.list(&ListParams::default().labels(sel)).await?;
            let mut names: Vec<String> = list
                .items
                .into_iter()
                .filter_map(|n| n.metadata.name)
                .collect();
            names.sort();
            if names.is_empty() {
                return Err(ResolveError::Refused {
                    reason: "NoNodesMatch",
                    message: format!(
                        "no nodes match spec.nodeSelector {sel:?}; check the labels with `kubectl get nodes --show-labels`"
                    ),
                });
            }
            Ok(names)
        }
    }
}

/// What a cordon did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cordoned {
    /// Nodes this NodeDrain cordoned now or earlier (they carry its mark).
    pub ours: Vec<String>,
    /// Nodes already unschedulable for another reason: left as they are, never uncordoned.
    pub already: Vec<String>,
}

/// Cordons `nodes` for NodeDrain `name`: a node not yet unschedulable gets
/// `spec.unschedulable: true` and the mark; one already unschedulable is left as it is.
pub async fn cordon(
    client: &kube::Client,
    name: &str,
    nodes: &[String],
) -> Result<Cordoned, kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    let mut out = Cordoned::default();
    for n in nodes {
        let node = api.get(n).await?;
        if cordoned_by(&node, name) {
            out.ours.push(n.clone());
        } else if is_cordoned(&node) {
            out.already.push(n.clone());
        } else {
            let body = serde_json::json!({
                "metadata": {"annotations": {CORDONED_BY: owner_mark(name)}},
                "spec": {"unschedulable": true},
            });
            api.patch(n, &PatchParams::default(), &Patch::Merge(&body))
                .await?;
            out.ours.push(n.clone());
        }
    }
    Ok(out)
}

/// Uncordons every node that carries NodeDrain `name`'s mark (and removes the mark); returns
/// their names. Nodes cordoned by anyone else are not touched.
pub async fn uncordon_own(client: &kube::Client, name: &str) -> Result<Vec<String>, kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    let mut done = Vec::new();
    for node in api.list(&ListParams::default()).await?.items {
        if !cordoned_by(&node, name) {
            continue;
        }
        let n = node.metadata.name.clone().unwrap_or_default();
        let body = serde_json::json!({
            "metadata": {"annotations": {CORDONED_BY: null}},
            "spec": {"unschedulable": false},
        });
        api.patch(&n, &PatchParams::default(), &Patch::Merge(&body))
            .await?;
        done.push(n);
    }
    done.sort();
    Ok(done)
}
