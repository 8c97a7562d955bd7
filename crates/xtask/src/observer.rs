//! The invariants kubesim logs, observed on the real cluster from outside: watches of pods and
//! budgets plus the API server's audit log.
//!
//! Findings (the same kinds as kubesim's invariant log):
//! - `BudgetBelowDesired`: a budget's `currentHealthy` fell below its `desiredHealthy` after the
//!   drain client evicted or deleted a pod it covers;
//! - `DaemonSetPodRemoved` / `MirrorPodRemoved`: the client evicted or deleted such a pod;
//! - `NonTargetNodePodRemoved`: the client evicted or deleted a pod on a node it was not draining.
//!
//! Request counts by verb, resource, subresource, code and user agent come from the audit log.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use serde::Deserialize;

/// What the observer remembers of each pod it saw.
#[derive(Debug, Clone, Default)]
pub struct PodInfo {
    /// Controller kind (`DaemonSet`, `ReplicaSet`, ...) or empty.
    pub owner_kind: String,
    /// Whether it is a mirror pod.
    pub mirror: bool,
    /// Its node.
    pub node: String,
}

impl PodInfo {
    fn of(p: &Pod) -> PodInfo {
        let owner = p
            .metadata
            .owner_references
            .as_ref()
            .and_then(|o| o.iter().find(|r| r.controller == Some(true)));
        PodInfo {
            owner_kind: owner.map(|o| o.kind.clone()).unwrap_or_default(),
            mirror: p
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror")),
            node: p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default(),
        }
    }
}

/// One observation of a budget's status.
#[derive(Debug, Clone)]
struct BudgetSample {
    at: jiff::Timestamp,
    key: String,
    current: i32,
    desired: i32,
}

#[derive(Default)]
struct Seen {
    pods: HashMap<String, PodInfo>,
    budgets: Vec<BudgetSample>,
}

/// A running observer.
pub struct Observer {
    seen: Arc<Mutex<Seen>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// One invariant finding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// Kind, as in kubesim's invariant log.
    pub kind: String,
    /// The object, `namespace/name`.
    pub object: String,
    /// What happened.
    pub message: String,
}

/// Requests of one kind, from the audit log.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestKey {
    /// Verb.
    pub verb: String,
    /// Resource (or the path of a non-resource request).
    pub resource: String,
    /// Subresource or empty.
    pub subresource: String,
    /// HTTP code.
    pub code: u16,
    /// User agent (product only, e.g. `kubectl`).
    pub agent: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditEvent {
    stage: String,
    #[serde(default)]
    request_uri: String,
    verb: String,
    user: AuditUser,
    #[serde(default)]
    user_agent: String,
    #[serde(default)]
    object_ref: Option<ObjectRef>,
    #[serde(default)]
    response_status: Option<ResponseStatus>,
    request_received_timestamp: String,
    stage_timestamp: String,
}

#[derive(Debug, Deserialize)]
struct AuditUser {
    #[serde(default)]
    username: String,
}

#[derive(Debug, Deserialize)]
struct ObjectRef {
    #[serde(default)]
    resource: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    subresource: String,
}

#[derive(Debug, Deserialize)]
struct ResponseStatus {
    #[serde(default)]
    code: u16,
}

/// A request of the drain client, from the audit log.
#[derive(Debug, Clone)]
pub struct ClientRequest {
    /// Grouping key.
    pub key: RequestKey,
    /// `namespace/name` of the object, if any.
    pub object: String,
    /// When the answer was complete.
    pub done: jiff::Timestamp,
    /// Whether it was a dry run.
    pub dry_run: bool,
}

/// The drain client's complete requests received at or after `since`.
pub fn client_requests(
    audit_log: &Path,
    user: &str,
    since: jiff::Timestamp,
) -> Result<Vec<ClientRequest>> {
    let text = std::fs::read_to_string(audit_log)
        .with_context(|| format!("cannot read the audit log {}", audit_log.display()))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(ev) = serde_json::from_str::<AuditEvent>(line) else {
            continue;
        };
        let (Ok(received), Ok(done)) = (
            ev.request_received_timestamp.parse::<jiff::Timestamp>(),
            ev.stage_timestamp.parse::<jiff::Timestamp>(),
        ) else {
            continue;
        };
        if ev.user.username != user || ev.stage != "ResponseComplete" || received < since {
            continue;
        }
        let (resource, subresource, object) = match &ev.object_ref {
            Some(o) => (
                o.resource.clone(),
                o.subresource.clone(),
                if o.namespace.is_empty() {
                    o.name.clone()
                } else {
                    format!("{}/{}", o.namespace, o.name)
                },
            ),
            None => (
                ev.request_uri.split('?').next().unwrap_or("").to_string(),
                String::new(),
                String::new(),
            ),
        };
        let agent = ev.user_agent.split('/').next().unwrap_or("").to_string();
        out.push(ClientRequest {
            key: RequestKey {
                verb: ev.verb.clone(),
                resource,
                subresource,
                code: ev.response_status.map(|s| s.code).unwrap_or(0),
                agent,
            },
            object,
            done,
            dry_run: ev.request_uri.contains("dryRun="),
        });
    }
    Ok(out)
}

/// Count requests by kind.
pub fn count(requests: &[ClientRequest]) -> BTreeMap<RequestKey, u64> {
    let mut m = BTreeMap::new();
    for r in requests {
        *m.entry(r.key.clone()).or_default() += 1;
    }
    m
}

impl Observer {
    /// Start watching pods and budgets.
    pub async fn start(client: &Client) -> Result<Observer> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let pods: Api<Pod> = Api::all(client.clone());
        let s = seen.clone();
        let pod_task = tokio::spawn(async move {
            let mut stream = watcher::watcher(pods, watcher::Config::default()).boxed();
            while let Some(ev) = stream.next().await {
                if let Ok(Event::Apply(p) | Event::InitApply(p) | Event::Delete(p)) = ev {
                    let key = format!(
                        "{}/{}",
                        p.metadata.namespace.clone().unwrap_or_default(),
                        p.metadata.name.clone().unwrap_or_default()
                    );
                    let info = PodInfo::of(&p);
                    s.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .pods
                        .insert(key, info);
                }
            }
        });
        let pdbs: Api<PodDisruptionBudget> = Api::all(client.clone());
        let s = seen.clone();
        let pdb_task = tokio::spawn(async move {
            let mut stream = watcher::watcher(pdbs, watcher::Config::default()).boxed();
            while let Some(ev) = stream.next().await {
                if let Ok(Event::Apply(p) | Event::InitApply(p)) = ev {
                    let Some(st) = p.status.as_ref() else {
                        continue;
                    };
                    let key = format!(
                        "{}/{}",
                        p.metadata.namespace.clone().unwrap_or_default(),
                        p.metadata.name.clone().unwrap_or_default()
                    );
                    let sample = BudgetSample {
                        at: jiff::Timestamp::now(),
                        key,
                        current: st.current_healthy.unwrap_or(0),
                        desired: st.desired_healthy.unwrap_or(0),
                    };
                    s.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .budgets
                        .push(sample);
                }
            }
        });
        let o = Observer {
            seen,
            tasks: vec![pod_task, pdb_task],
        };
        Ok(o)
    }

    /// The findings for a drain of `targets` whose client requests are `requests`.
    pub fn findings(&self, requests: &[ClientRequest], targets: &HashSet<String>) -> Vec<Finding> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        let removals: Vec<&ClientRequest> = requests
            .iter()
            .filter(|r| !r.dry_run && r.key.resource == "pods")
            .filter(|r| {
                (r.key.verb == "create" && r.key.subresource == "eviction" && r.key.code == 201)
                    || (r.key.verb == "delete"
                        && r.key.subresource.is_empty()
                        && (r.key.code == 200 || r.key.code == 202))
            })
            .collect();
        for r in &removals {
            let how = if r.key.verb == "create" {
                "evicted"
            } else {
                "deleted"
            };
            let Some(info) = seen.pods.get(&r.object) else {
                continue;
            };
            if info.owner_kind == "DaemonSet" {
                out.push(Finding {
                    kind: "DaemonSetPodRemoved".into(),
                    object: r.object.clone(),
                    message: format!("DaemonSet pod {} was {how} by the client", r.object),
                });
            }
            if info.mirror {
                out.push(Finding {
                    kind: "MirrorPodRemoved".into(),
                    object: r.object.clone(),
                    message: format!("mirror pod {} was {how} by the client", r.object),
                });
            }
            if !info.node.is_empty() && !targets.contains(&info.node) {
                out.push(Finding {
                    kind: "NonTargetNodePodRemoved".into(),
                    object: r.object.clone(),
                    message: format!(
                        "pod {} was {how} by the client on node {}, which it was not draining",
                        r.object, info.node
                    ),
                });
            }
        }
        // Budgets: a drop below desiredHealthy after a client removal in the same namespace.
        let mut below: HashMap<&str, bool> = HashMap::new();
        for s in &seen.budgets {
            let was_below = below.get(s.key.as_str()).copied().unwrap_or(false);
            let is_below = s.current < s.desired;
            below.insert(&s.key, is_below);
            if !is_below || was_below {
                continue;
            }
            let ns = s.key.split('/').next().unwrap_or("");
            let cause = removals
                .iter()
                .filter(|r| r.done <= s.at && r.object.split('/').next() == Some(ns))
                .max_by_key(|r| r.done);
            if let Some(r) = cause {
                out.push(Finding {
                    kind: "BudgetBelowDesired".into(),
                    object: s.key.clone(),
                    message: format!(
                        "budget {} had {} healthy pods, below its desired {}, after the client removed {}",
                        s.key, s.current, s.desired, r.object
                    ),
                });
            }
        }
        out
    }

    /// Stop watching.
    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}
