//! Cordon and uncordon, remembering on the node that kdrain cordoned it, so that a failed drain
//! restores only what kdrain changed.

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde::Serialize;

use crate::error::DrainError;
use crate::options::DryRun;
use crate::requests::Requests;
use crate::retry;

/// Annotation kdrain puts on a node it cordoned (value `kdrain`).
pub const CORDONED_BY: &str = "kdrain.io/cordoned-by";

/// The result of a cordon or uncordon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CordonResult {
    /// Node name.
    pub node: String,
    /// The node already was in the wanted state; nothing was sent.
    pub already: bool,
}

/// `spec.unschedulable` of a node.
pub fn is_cordoned(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
}

/// The node carries kdrain's cordon annotation.
pub fn cordoned_by_kdrain(node: &Node) -> bool {
    node.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CORDONED_BY))
        .is_some_and(|v| v == "kdrain")
}

/// GETs a node; 404 becomes [`DrainError::NodeNotFound`].
pub(crate) async fn get_node(
    client: &kube::Client,
    name: &str,
    req: &Requests,
) -> Result<Node, DrainError> {
    let api = Api::<Node>::all(client.clone());
    let got = retry::idempotent("get node", || {
        req.count("get", "nodes");
        api.get(name)
    })
    .await;
    match got {
        Ok(n) => Ok(n),
        Err(kube::Error::Api(s)) if s.code == 404 => Err(DrainError::NodeNotFound {
            node: name.to_string(),
        }),
        Err(e) => Err(DrainError::api(
            format!("reading node {name}"),
            "get",
            "nodes",
            None,
            e,
        )),
    }
}

fn patch_params(dry: DryRun) -> PatchParams {
    let pp = PatchParams::default();
    if dry == DryRun::Server {
        pp.dry_run()
    } else {
        pp
    }
}

/// Sends a merge patch to a node, retried on transient errors (the patch is idempotent).
async fn send_patch(
    client: &kube::Client,
    name: &str,
    dry: DryRun,
    body: &serde_json::Value,
    req: &Requests,
) -> Result<Node, kube::Error> {
    let api = Api::<Node>::all(client.clone());
    let pp = patch_params(dry);
    let patch = Patch::Merge(body);
    retry::idempotent("patch node", || {
        req.count("patch", "nodes");
        api.patch(name, &pp, &patch)
    })
    .await
}

/// Cordons a node unless it already is unschedulable (then nothing is sent, like kubectl).
/// A client dry run sends nothing; a server dry run sends the patch with `dryRun=All`.
pub(crate) async fn cordon(
    client: &kube::Client,
    node: &Node,
    dry: DryRun,
    req: &Requests,
) -> Result<CordonResult, DrainError> {
    let name = node.metadata.name.clone().unwrap_or_default();
    if is_cordoned(node) {
        return Ok(CordonResult {
            node: name,
            already: true,
        });
    }
    if dry == DryRun::Client {
        return Ok(CordonResult {
            node: name,
            already: false,
        });
    }
    let body = serde_json::json!({
        "metadata": {"annotations": {CORDONED_BY: "kdrain"}},
        "spec": {"unschedulable": true},
    });
    send_patch(client, &name, dry, &body, req)
        .await
        .map_err(|e| {
            DrainError::api(format!("cordoning node {name}"), "patch", "nodes", None, e)
        })?;
    Ok(CordonResult {
        node: name,
        already: false,
    })
}

/// Makes a node schedulable again and drops kdrain's annotation. With `only_if_kdrain`, a node
/// that kdrain did not cordon is left alone (and `None` is returned).
pub(crate) async fn uncordon(
    client: &kube::Client,
    node: &Node,
    only_if_kdrain: bool,
    dry: DryRun,
    req: &Requests,
) -> Result<Option<CordonResult>, DrainError> {
    let name = node.metadata.name.clone().unwrap_or_default();
    if only_if_kdrain && !cordoned_by_kdrain(node) {
        return Ok(None);
    }
    if !is_cordoned(node) && !cordoned_by_kdrain(node) {
        return Ok(Some(CordonResult {
            node: name,
            already: true,
        }));
    }
    if dry == DryRun::Client {
        return Ok(Some(CordonResult {
            node: name,
            already: false,
        }));
    }
    let body = serde_json::json!({
        "metadata": {"annotations": {CORDONED_BY: null}},
        "spec": {"unschedulable": null},
    });
    send_patch(client, &name, dry, &body, req)
        .await
        .map_err(|e| {
            DrainError::api(
                format!("uncordoning node {name}"),
                "patch",
                "nodes",
                None,
                e,
            )
        })?;
    Ok(Some(CordonResult {
        node: name,
        already: !is_cordoned(node),
    }))
}
