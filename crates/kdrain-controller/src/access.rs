//! The controller's own rights, checked at start with SelfSubjectAccessReviews: every
//! cluster-wide rule of deploy/controller/rbac.yaml and the Lease rule in the Lease's
//! namespace. A right that is missing is named (verb, resource, API group, scope) before the
//! controller does anything; `kdrain controller` says so and waits until it is granted.
//!
//! The rights a drain needs only where its pods are (evictions, deletions for
//! `disableEviction`, reading DaemonSets), which a RoleBinding may grant per namespace, are not
//! checked here: each drain checks them before its first change
//! ([`kdrain::Drainer::check_access`]) and a missing one ends the NodeDrain `Refused` with
//! reason `Forbidden`.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

/// One right the controller needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Right {
    /// The verb.
    pub verb: &'static str,
    /// The API group ("" for core).
    pub group: &'static str,
    /// The plural resource.
    pub resource: &'static str,
    /// The subresource or "".
    pub subresource: &'static str,
    /// The namespace, or None for cluster-wide.
    pub namespace: Option<String>,
}

impl std::fmt::Display for Right {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let res = if self.subresource.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        };
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        match &self.namespace {
            Some(ns) => write!(
                f,
                "{} {res} (API group {group}) in namespace {ns}",
                self.verb
            ),
            None => write!(f, "{} {res} (API group {group}) cluster-wide", self.verb),
        }
    }
}

fn right(verb: &'static str, group: &'static str, resource: &'static str) -> Right {
    Right {
        verb,
        group,
        resource,
        subresource: "",
        namespace: None,
    }
}

/// The rights checked at start, with the Lease in `lease_namespace`.
pub fn rights(lease_namespace: &str) -> Vec<Right> {
    let mut v = vec![
        right("get", "", "nodes"),
        right("list", "", "nodes"),
        right("patch", "", "nodes"),
        // spec.waitForCapacity follows the nodes (without it the drain lists them instead)
        right("watch", "", "nodes"),
        right("list", "", "pods"),
        right("watch", "", "pods"),
        right("list", "policy", "poddisruptionbudgets"),
        right("watch", "policy", "poddisruptionbudgets"),
        right("list", "kdrain.io", "nodedrains"),
        right("watch", "kdrain.io", "nodedrains"),
        right("patch", "kdrain.io", "nodedrains"),
        Right {
            subresource: "status",
            ..right("patch", "kdrain.io", "nodedrains")
        },
        right("create", "events.k8s.io", "events"),
        right("patch", "events.k8s.io", "events"),
    ];
    for verb in ["get", "create", "patch"] {
        v.push(Right {
            namespace: Some(lease_namespace.to_string()),
            ..right(verb, "coordination.k8s.io", "leases")
        });
    }
    v
}

/// The rights of [`rights`] the API server's access reviews deny. A review that fails (not
/// served, unreachable) counts as allowed: the requests themselves will say.
pub async fn missing(client: &kube::Client, lease_namespace: &str) -> Vec<Right> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let reviews = rights(lease_namespace).into_iter().map(|r| {
        let api = api.clone();
        async move {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        verb: Some(r.verb.into()),
                        group: Some(r.group.into()),
                        resource: Some(r.resource.into()),
                        subresource: (!r.subresource.is_empty()).then(|| r.subresource.into()),
                        namespace: r.namespace.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let allowed = match api.create(&PostParams::default(), &review).await {
                Ok(answer) => answer.status.is_none_or(|s| s.allowed),
                Err(e) => {
                    tracing::debug!("access review of {r}: {e}");
                    true
                }
            };
            (!allowed).then_some(r)
        }
    });
    futures::future::join_all(reviews)
        .await
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_right_names_verb_resource_group_and_scope() {
        let status = Right {
            subresource: "status",
            ..right("patch", "kdrain.io", "nodedrains")
        };
        assert_eq!(
            status.to_string(),
            "patch nodedrains/status (API group kdrain.io) cluster-wide"
        );
        let lease = &rights("kdrain-system")[14];
        assert_eq!(
            lease.to_string(),
            "get leases (API group coordination.k8s.io) in namespace kdrain-system"
        );
        assert_eq!(
            right("get", "", "nodes").to_string(),
            "get nodes (API group core) cluster-wide"
        );
    }
}
