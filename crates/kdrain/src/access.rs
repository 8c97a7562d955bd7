//! The permission check before the first write: kdrain asks the API server
//! (SelfSubjectAccessReview) whether its credentials allow every request a drain will send, so a
//! missing right stops the drain before the cordon instead of half-way through it.

use std::collections::BTreeSet;

use futures::future::join_all;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, PostParams};

use crate::error::DrainError;
use crate::options::DrainOptions;
use crate::requests::Requests;
use crate::select;

/// One right a drain needs: a verb on a resource (with its API group and subresource),
/// cluster-wide or in one namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Need {
    /// Kubernetes verb, e.g. `create`.
    pub verb: &'static str,
    /// API group ("" for core).
    pub group: &'static str,
    /// Plural resource, e.g. `pods`.
    pub resource: &'static str,
    /// Subresource or "".
    pub sub: &'static str,
    /// The namespace, or None for cluster-wide.
    pub namespace: Option<String>,
}

impl Need {
    fn new(verb: &'static str, group: &'static str, resource: &'static str) -> Need {
        Need {
            verb,
            group,
            resource,
            sub: "",
            namespace: None,
        }
    }

    fn sub(mut self, sub: &'static str) -> Need {
        self.sub = sub;
        self
    }

    fn r#in(mut self, ns: &str) -> Need {
        self.namespace = Some(ns.to_string());
        self
    }

    /// `pods/eviction`, `poddisruptionbudgets`...
    fn full_resource(&self) -> String {
        if self.sub.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}/{}", self.resource, self.sub)
        }
    }

    fn forbidden(&self) -> DrainError {
        let scope = match &self.namespace {
            Some(ns) => format!("in namespace {ns}"),
            None => "cluster-wide".to_string(),
        };
        DrainError::Forbidden {
            verb: self.verb.to_string(),
            resource: self.full_resource(),
            namespace: self.namespace.clone(),
            message: format!(
                "the API server's access review denies {} on {} {scope}; checked before any change",
                self.verb,
                self.full_resource()
            ),
        }
    }
}

/// What one review answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allowed,
    Denied,
    /// The review itself failed (not served, forbidden, unreachable): kdrain carries on.
    Unknown,
}

async fn review(client: &kube::Client, need: &Need, req: &Requests) -> Verdict {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let asked = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(need.verb.to_string()),
                group: Some(need.group.to_string()),
                resource: Some(need.resource.to_string()),
                subresource: Some(need.sub.to_string()).filter(|s| !s.is_empty()),
                namespace: need.namespace.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    req.count("create", "selfsubjectaccessreviews");
    match api.create(&PostParams::default(), &asked).await {
        Ok(r) => match r.status {
            Some(s) if s.allowed => Verdict::Allowed,
            Some(s) if s.denied == Some(true) || !s.allowed => Verdict::Denied,
            _ => Verdict::Unknown,
        },
        Err(e) => {
            tracing::debug!(?need, "access review failed, carrying on: {e}");
            Verdict::Unknown
        }
    }
}

async fn review_all(client: &kube::Client, needs: &[Need], req: &Requests) -> Vec<Verdict> {
    join_all(needs.iter().map(|n| review(client, n, req))).await
}

/// The cluster-wide rights a drain of nodes with `opts` needs, in the order they are reported.
fn cluster_needs(opts: &DrainOptions) -> Vec<Need> {
    let mut v = vec![
        Need::new("patch", "", "nodes"),
        Need::new("list", "", "pods"),
        Need::new("watch", "", "pods"),
    ];
    if opts.disable_eviction {
        v.push(Need::new("delete", "", "pods"));
    } else {
        v.push(Need::new("create", "", "pods").sub("eviction"));
        v.push(Need::new("list", "policy", "poddisruptionbudgets"));
        v.push(Need::new("watch", "policy", "poddisruptionbudgets"));
    }
    v.push(Need::new("get", "apps", "daemonsets"));
    v
}

/// Checks, before the cordon, that the credentials allow every request a drain of `nodes`
/// sends. Rights granted only in some namespaces (a RoleBinding) are checked in the namespaces
/// of the pods on the nodes (one extra LIST per node, only then). Returns the first missing
/// right as [`DrainError::Forbidden`]; reviews that cannot be answered count as allowed.
pub(crate) async fn preflight(
    client: &kube::Client,
    opts: &DrainOptions,
    nodes: &[String],
    req: &Requests,
) -> Result<(), DrainError> {
    let needs = cluster_needs(opts);
    let verdicts = review_all(client, &needs, req).await;
    let mut per_namespace = Vec::new();
    for (need, verdict) in needs.into_iter().zip(verdicts) {
        if verdict != Verdict::Denied {
            continue;
        }
        // Removing pods and reading DaemonSets happen per namespace: a RoleBinding may grant
        // them where the pods are. Everything else must be cluster-wide.
        let namespaced = matches!(
            (need.verb, need.resource, need.sub),
            ("create", "pods", "eviction") | ("delete", "pods", "") | ("get", "daemonsets", "")
        );
        if !namespaced {
            return Err(need.forbidden());
        }
        per_namespace.push(need);
    }
    if per_namespace.is_empty() {
        return Ok(());
    }
    let (removed, daemonsets) = namespaces_on(client, opts, nodes, req).await?;
    let mut needs = Vec::new();
    for need in per_namespace {
        let namespaces = if need.resource == "daemonsets" {
            &daemonsets
        } else {
            &removed
        };
        needs.extend(namespaces.iter().map(|ns| need.clone().r#in(ns)));
    }
    let verdicts = review_all(client, &needs, req).await;
    match needs
        .iter()
        .zip(verdicts)
        .find(|(_, v)| *v == Verdict::Denied)
    {
        Some((need, _)) => Err(need.forbidden()),
        None => Ok(()),
    }
}

/// The namespaces of the pods a drain would remove, and of the DaemonSet pods whose DaemonSet
/// it looks up, on `nodes`.
async fn namespaces_on(
    client: &kube::Client,
    opts: &DrainOptions,
    nodes: &[String],
    req: &Requests,
) -> Result<(BTreeSet<String>, BTreeSet<String>), DrainError> {
    let api: Api<Pod> = Api::all(client.clone());
    let pod_selector = match &opts.pod_selector {
        Some(s) => Some(select::parse_pod_selector(s)?),
        None => None,
    };
    let mut removed = BTreeSet::new();
    let mut daemonsets = BTreeSet::new();
    for node in nodes {
        req.count("list", "pods");
        let list = api
            .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
            .await
            .map_err(|e| {
                DrainError::api(
                    format!("listing the pods of node {node}"),
                    "list",
                    "pods",
                    None,
                    e,
                )
            })?;
        for p in &list.items {
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            let labels = p.metadata.labels.clone().unwrap_or_default();
            if pod_selector.as_ref().is_some_and(|s| !s.matches(&labels)) {
                continue;
            }
            if select::is_daemonset_pod(p) {
                if !select::is_finished(p) {
                    daemonsets.insert(ns);
                }
                continue;
            }
            if select::is_mirror_pod(p) {
                continue;
            }
            removed.insert(ns);
        }
    }
    Ok((removed, daemonsets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_follow_the_options() {
        let mut opts = DrainOptions::kubectl();
        let names = |v: Vec<Need>| -> Vec<String> {
            v.iter()
                .map(|n| format!("{} {}", n.verb, n.full_resource()))
                .collect()
        };
        assert_eq!(
            names(cluster_needs(&opts)),
            [
                "patch nodes",
                "list pods",
                "watch pods",
                "create pods/eviction",
                "list poddisruptionbudgets",
                "watch poddisruptionbudgets",
                "get daemonsets"
            ]
        );
        opts.disable_eviction = true;
        assert_eq!(
            names(cluster_needs(&opts)),
            [
                "patch nodes",
                "list pods",
                "watch pods",
                "delete pods",
                "get daemonsets"
            ]
        );
        let e = Need::new("create", "", "pods")
            .sub("eviction")
            .r#in("shop")
            .forbidden();
        assert_eq!(e.exit_code(), 5);
        assert!(
            e.to_string()
                .starts_with("permission denied: needs create on pods/eviction in namespace shop"),
            "{e}"
        );
    }
}
