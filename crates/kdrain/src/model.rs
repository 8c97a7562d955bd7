//! The shared vocabulary at the bottom of the module graph: how a pod is named, what the drain
//! does with it, and why one was not seen gone. Every other module may use these; this one
//! uses none of them.

use std::fmt;

use k8s_openapi::api::core::v1::Pod;
use schemars::JsonSchema;
use serde::Serialize;

/// Names one pod, with the UID that tells it apart from a replacement of the same name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
pub struct PodRef {
    /// Namespace of the pod.
    pub namespace: String,
    /// Name of the pod.
    pub name: String,
    /// UID of the pod.
    pub uid: String,
}

impl fmt::Display for PodRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The first identity field a pod lacks (kdrain addresses pods by namespace, name and UID).
pub(crate) fn missing_identity(pod: &Pod) -> Option<&'static str> {
    let m = &pod.metadata;
    let empty = |v: &Option<String>| v.as_deref().is_none_or(str::is_empty);
    if empty(&m.name) {
        Some("metadata.name")
    } else if empty(&m.namespace) {
        Some("metadata.namespace")
    } else if empty(&m.uid) {
        Some("metadata.uid")
    } else {
        None
    }
}

/// What the drain will do with a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Evict it through the Eviction API (respecting budgets).
    Evict,
    /// DELETE it (`disable_eviction`), bypassing budgets.
    Delete,
    /// Leave it on the node (DaemonSet, mirror, opt-out, stale terminating pod...).
    Skip,
    /// Do not evict it, but wait until it completes or disappears (`cluster.x-k8s.io/drain=wait-completed`).
    Wait,
    /// It cannot be drained with these options: kubectl's "cannot delete ..." error.
    Refuse,
}

impl Action {
    /// The pod has to leave the node (or finish) for the drain to succeed.
    pub fn is_target(self) -> bool {
        matches!(self, Action::Evict | Action::Delete | Action::Wait)
    }
}

/// Why a pod that had to leave was not seen gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// The plan refused it: it needs a flag (`--force`, `--delete-emptydir-data`, ...).
    Refused,
    /// The server denied its eviction or delete for lack of permission.
    PermissionDenied,
    /// The server rejected its eviction or delete for another reason (the error has the code).
    Rejected,
    /// The drain was interrupted before the pod was seen gone.
    Interrupted,
    /// The drain's timeout ran out before the pod was seen gone.
    TimedOut,
    /// The drain ended before the pod's node was drained (another node failed, or the drain
    /// was cancelled before this node started).
    Unfinished,
    /// `wait_for_capacity`: its replacements found no room before the wait for room timed
    /// out, so it was never evicted.
    NoRoom,
}
