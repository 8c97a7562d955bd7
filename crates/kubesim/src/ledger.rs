//! Accounting: request counts by verb/resource/subresource/code, and the invariant log of
//! things a correct drain must never do.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use crate::resources::{DAEMONSETS, NODES, PDBS};
use crate::store::State;
use crate::{eviction, meta, pdb};

/// One row of the request counters (`GET /kubesim/requests`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RequestCount {
    /// Kubernetes verb (get, list, watch, create, update, patch, delete, deletecollection), or `get` for discovery.
    pub verb: String,
    /// Plural resource (`pods`), or the path for non-resource requests (`/api/v1`).
    pub resource: String,
    /// Subresource (`eviction`, `status`) or empty.
    pub subresource: String,
    /// HTTP status code.
    pub code: u16,
    /// Number of requests.
    pub count: u64,
}

/// One invariant violation (`GET /kubesim/violations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Violation {
    /// `BudgetBelowDesired`, `DaemonSetPodRemoved`, `MirrorPodRemoved` or `UncordonedNodePodRemoved`.
    pub kind: String,
    /// What happened, in words.
    pub message: String,
    /// The object concerned, `namespace/name`.
    pub object: String,
    /// When (RFC 3339).
    pub at: String,
}

/// Counters and invariant log.
#[derive(Default)]
pub struct Ledger {
    counts: Mutex<BTreeMap<(String, String, String, u16), u64>>,
    violations: Mutex<Vec<Violation>>,
}

impl Ledger {
    /// Count one request.
    pub fn count(&self, verb: &str, resource: &str, sub: &str, code: u16) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *c.entry((
            verb.to_string(),
            resource.to_string(),
            sub.to_string(),
            code,
        ))
        .or_default() += 1;
    }

    /// All counters.
    pub fn requests(&self) -> Vec<RequestCount> {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.iter()
            .map(
                |((verb, resource, subresource, code), count)| RequestCount {
                    verb: verb.clone(),
                    resource: resource.clone(),
                    subresource: subresource.clone(),
                    code: *code,
                    count: *count,
                },
            )
            .collect()
    }

    /// Zero the counters.
    pub fn reset_requests(&self) {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The invariant log.
    pub fn violations(&self) -> Vec<Violation> {
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn record(&self, kind: &str, message: String, object: String) {
        tracing::warn!(kind, %message, "invariant violation");
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Violation {
                kind: kind.into(),
                message,
                object,
                at: meta::now_rfc3339(),
            });
    }

    /// A client is deleting or evicting `pod` (`how` = "deleted"/"evicted"): log pods of an
    /// existing DaemonSet (not orphans), mirror pods, and pods on nodes that are not cordoned.
    pub fn client_removal(&self, st: &State, pod: &Value, how: &str) {
        if meta::is_terminating(pod) {
            return;
        }
        let object = format!("{}/{}", meta::namespace(pod), meta::name(pod));
        // An orphan (its DaemonSet is gone) is no longer managed: kubectl evicts it with --force.
        let managed_by_daemonset = meta::controller_ref(pod).is_some_and(|r| {
            r["kind"] == "DaemonSet"
                && st
                    .get(
                        DAEMONSETS,
                        meta::namespace(pod),
                        r["name"].as_str().unwrap_or(""),
                    )
                    .is_some_and(|ds| r["uid"].as_str().is_none_or(|u| u == meta::uid(&ds)))
        });
        if managed_by_daemonset {
            self.record(
                "DaemonSetPodRemoved",
                format!("DaemonSet pod {object} was {how} by a client"),
                object.clone(),
            );
        }
        if !pod["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_null() {
            self.record(
                "MirrorPodRemoved",
                format!("mirror pod {object} was {how} by a client"),
                object.clone(),
            );
        }
        let node = meta::node_name(pod);
        if !node.is_empty()
            && let Some(n) = st.get(NODES, "", node)
            && n["spec"]["unschedulable"].as_bool() != Some(true)
        {
            self.record(
                "UncordonedNodePodRemoved",
                format!("pod {object} was {how} by a client on node {node}, which is not cordoned"),
                object,
            );
        }
    }

    /// After an eviction of a healthy pod: log each budget whose live healthy count is now below desired.
    pub fn budget_check(&self, st: &State, ns: &str, pod: &str, pdbs: &[String]) {
        for name in pdbs {
            let Some(p) = st.get(PDBS, ns, name) else {
                continue;
            };
            let healthy = pdb::live_healthy(st, &p);
            if let Some(desired) = eviction::live_desired(st, &p)
                && healthy < desired
            {
                self.record(
                    "BudgetBelowDesired",
                    format!("evicting {ns}/{pod} left PodDisruptionBudget {ns}/{name} with {healthy} healthy pods, below the desired {desired}"),
                    format!("{ns}/{name}"),
                );
            }
        }
    }
}
