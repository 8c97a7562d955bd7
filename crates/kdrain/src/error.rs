//! The drain error: what happened, to which node or pod, and what to do about it.

use crate::options::OptionsError;
use crate::report::{NodeOutcome, Report};

/// Why a drain (or a step of it) did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DrainError {
    /// A target node does not exist. Nothing was changed.
    #[error("node {node:?} not found; check the name with `kubectl get nodes`")]
    NodeNotFound {
        /// The missing node.
        node: String,
    },
    /// Several target nodes do not exist (all of them named). Nothing was changed.
    #[error(
        "nodes {} not found; check the names with `kubectl get nodes`",
        nodes.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
    )]
    NodesNotFound {
        /// The missing nodes, in the order given.
        nodes: Vec<String>,
    },
    /// The server refused a request for lack of permission.
    #[error(
        "permission denied: needs {verb} on {resource}{} ({message}); grant it to the drain's service account or user",
        namespace.as_deref().map(|n| format!(" in namespace {n}")).unwrap_or_default()
    )]
    Forbidden {
        /// The verb, e.g. `create`.
        verb: String,
        /// The resource, e.g. `pods/eviction`.
        resource: String,
        /// The namespace, for namespaced resources.
        namespace: Option<String>,
        /// The server's message.
        message: String,
    },
    /// The options are invalid.
    #[error("invalid options: {0}")]
    Options(#[from] OptionsError),
    /// The plan found pods that cannot be drained with these options (or budgets that can never
    /// allow it). Nothing was evicted.
    #[error("the drain was refused before any eviction: {}", errors.join("; "))]
    PlanRefused {
        /// kubectl's "cannot delete ..." groups, and budget errors.
        errors: Vec<String>,
        /// Only disruption budgets that can never pass stopped it (no pod was refused): exit 3.
        blocked_by_budgets: bool,
        /// The evicted pods' replacements would not fit on the nodes that stay schedulable (and
        /// no pod was refused): exit 7.
        no_room: bool,
    },
    /// [`crate::Drainer::execute`]: the cluster no longer matches the approved plan (a pod's
    /// action changed, or other nodes). Nothing was changed; plan again and review it.
    #[error(
        "the cluster no longer matches the approved plan: {}; nothing was changed: plan again and review it",
        departures.join("; ")
    )]
    PlanChanged {
        /// How the fresh plan departs from the approved one.
        departures: Vec<String>,
    },
    /// Some target pods were not seen gone (time out, blocked by budgets, failed).
    #[error("{}", incomplete_message(report))]
    Incomplete {
        /// What happened, including the pending pods.
        report: Box<Report>,
    },
    /// The API server answered with something kdrain cannot use (malformed JSON, the wrong
    /// kind, objects without name or UID, a list that never ends). Nothing more was sent.
    #[error(
        "{context}: the API server's answer cannot be used ({message}); check that the kubeconfig points at a Kubernetes API server"
    )]
    BadResponse {
        /// What was being done, with the object's name.
        context: String,
        /// What is wrong with the answer.
        message: String,
    },
    /// An API request failed.
    #[error("{context}: {source}")]
    Api {
        /// What was being done, with the object's name.
        context: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

/// The kind of a drain that ended without every target pod seen gone: budgets win over pods
/// left, which win over other failures.
pub fn report_kind(report: &Report) -> ErrorKind {
    let any = |o: NodeOutcome| report.nodes.iter().any(|n| n.outcome == o);
    if any(NodeOutcome::BlockedByBudgets) {
        ErrorKind::BlockedByBudgets
    } else if any(NodeOutcome::PodsLeft) {
        ErrorKind::PodsLeft
    } else {
        ErrorKind::Failed
    }
}

/// The kinds of [`DrainError`], coarse enough to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Unknown nodes or invalid options. Nothing was changed.
    BadInput,
    /// Disruption budgets blocked evictions until the timeout (or, in a plan, can never pass).
    BlockedByBudgets,
    /// Pods are left that could not be evicted (refused without a flag, or not gone in time).
    PodsLeft,
    /// The API server denied a request; the error names the verb and resource needed.
    PermissionDenied,
    /// The API server could not be reached.
    Unreachable,
    /// The evicted pods' replacements would not fit on the nodes that stay schedulable.
    NoRoom,
    /// Anything else.
    Failed,
}

fn incomplete_message(report: &Report) -> String {
    let mut parts = Vec::new();
    for n in &report.nodes {
        if n.outcome == NodeOutcome::Drained {
            continue;
        }
        let pending: Vec<String> = n.pending().map(|p| p.pod.to_string()).collect();
        let what = match &n.outcome {
            NodeOutcome::BlockedByBudgets => "blocked by disruption budgets".to_string(),
            NodeOutcome::PodsLeft => "pods left".to_string(),
            NodeOutcome::Failed { error } => error.clone(),
            NodeOutcome::Drained => unreachable!(),
        };
        if pending.is_empty() {
            parts.push(format!("node {}: {what}", n.node));
        } else {
            parts.push(format!("node {}: {what}: {}", n.node, pending.join(", ")));
        }
    }
    format!(
        "drain incomplete, pods were not seen gone ({}); see the report for each pod, then retry or raise the timeout",
        parts.join("; ")
    )
}

impl DrainError {
    /// What kind of failure this is, for callers that branch on it (the command maps each kind
    /// to its exit code): bad input, budgets that block, pods left, permissions, an unreachable
    /// cluster, no room for the replacements, or anything else.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DrainError::NodeNotFound { .. }
            | DrainError::NodesNotFound { .. }
            | DrainError::Options(_) => ErrorKind::BadInput,
            DrainError::BadResponse { .. } | DrainError::PlanChanged { .. } => ErrorKind::Failed,
            DrainError::Forbidden { .. } => ErrorKind::PermissionDenied,
            DrainError::PlanRefused { no_room: true, .. } => ErrorKind::NoRoom,
            DrainError::PlanRefused {
                blocked_by_budgets: true,
                ..
            } => ErrorKind::BlockedByBudgets,
            DrainError::PlanRefused { .. } => ErrorKind::PodsLeft,
            DrainError::Incomplete { report } => report_kind(report),
            DrainError::Api { source, .. } => match source {
                kube::Error::Api(s) if s.code == 403 => ErrorKind::PermissionDenied,
                kube::Error::Api(_) => ErrorKind::Failed,
                _ => ErrorKind::Unreachable,
            },
        }
    }

    /// Wraps a client error with context, turning 403s into [`DrainError::Forbidden`] and
    /// undecodable answers into [`DrainError::BadResponse`].
    pub(crate) fn api(
        context: impl Into<String>,
        verb: &str,
        resource: &str,
        namespace: Option<&str>,
        source: kube::Error,
    ) -> Self {
        if let kube::Error::SerdeError(e) = &source {
            return DrainError::BadResponse {
                context: context.into(),
                message: e.to_string(),
            };
        }
        if let kube::Error::Api(s) = &source
            && s.code == 403
            && !is_namespace_terminating(s)
        {
            return DrainError::Forbidden {
                verb: verb.to_string(),
                resource: resource.to_string(),
                namespace: namespace.map(str::to_string),
                message: s.message.clone(),
            };
        }
        DrainError::Api {
            context: context.into(),
            source,
        }
    }

    /// The report, when the drain ran far enough to have one.
    pub fn report(&self) -> Option<&Report> {
        match self {
            DrainError::Incomplete { report } => Some(report),
            _ => None,
        }
    }
}

/// A 403 caused by a namespace being deleted (cause `NamespaceTerminating`), not by permissions.
pub(crate) fn is_namespace_terminating(s: &kube::core::Status) -> bool {
    s.details
        .as_ref()
        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_refusals_are_budget_blocks_only_for_budgets_alone() {
        let refused = |blocked_by_budgets, no_room| DrainError::PlanRefused {
            errors: vec!["x".into()],
            blocked_by_budgets,
            no_room,
        };
        assert_eq!(refused(true, false).kind(), ErrorKind::BlockedByBudgets);
        // refused pods win over budgets that never pass
        assert_eq!(refused(false, false).kind(), ErrorKind::PodsLeft);
        // no room for the replacements wins over budgets (they block because of it)
        assert_eq!(refused(true, true).kind(), ErrorKind::NoRoom);
    }
}
