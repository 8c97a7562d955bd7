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

/// One incarnation of a pod name (a StatefulSet's replacement has the same name).
#[derive(Debug, Clone)]
struct Incarnation {
    uid: String,
    first_seen: jiff::Timestamp,
    info: PodInfo,
}

#[derive(Default)]
struct Seen {
    pods: HashMap<String, Vec<Incarnation>>,
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
    #[serde(default, rename = "requestURI")]
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
    /// The whole User-Agent header (e.g. `kdrain/v0.1.0 (linux/amd64)`).
    pub user_agent: String,
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
            user_agent: ev.user_agent.clone(),
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
                    let uid = p.metadata.uid.clone().unwrap_or_default();
                    let info = PodInfo::of(&p);
                    let mut seen = s.lock().unwrap_or_else(|p| p.into_inner());
                    let all = seen.pods.entry(key).or_default();
                    match all.last_mut() {
                        Some(last) if last.uid == uid => last.info = info,
                        _ => all.push(Incarnation {
                            uid,
                            first_seen: jiff::Timestamp::now(),
                            info,
                        }),
                    }
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
            // The incarnation that existed when the request was answered.
            let Some(info) = seen.pods.get(&r.object).and_then(|all| {
                all.iter()
                    .rev()
                    .find(|i| i.first_seen <= r.done)
                    .or(all.first())
                    .map(|i| &i.info)
            }) else {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn observer(seen: Seen) -> Observer {
        Observer {
            seen: Arc::new(Mutex::new(seen)),
            tasks: Vec::new(),
        }
    }

    fn info(owner: &str, node: &str, mirror: bool) -> PodInfo {
        PodInfo {
            owner_kind: owner.into(),
            mirror,
            node: node.into(),
        }
    }

    fn inc(uid: &str, at: &str, i: PodInfo) -> Incarnation {
        Incarnation {
            uid: uid.into(),
            first_seen: ts(at),
            info: i,
        }
    }

    fn eviction(object: &str, at: &str) -> ClientRequest {
        ClientRequest {
            key: RequestKey {
                verb: "create".into(),
                resource: "pods".into(),
                subresource: "eviction".into(),
                code: 201,
                agent: String::new(),
            },
            object: object.into(),
            done: ts(at),
            dry_run: false,
            user_agent: String::new(),
        }
    }

    #[test]
    fn audit_lines_of_the_client_are_counted_and_dry_runs_marked() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        let line = |user: &str, uri: &str, stage: &str, received: &str| {
            serde_json::json!({"kind":"Event","stage":stage,"requestURI":uri,"verb":"create",
                "user":{"username":user},"userAgent":"kubectl/v1.33.1 (linux/amd64)",
                "objectRef":{"resource":"pods","namespace":"ns","name":"p","subresource":"eviction"},
                "responseStatus":{"code":201},"requestReceivedTimestamp":received,
                "stageTimestamp":received})
            .to_string()
        };
        let text = [
            line(
                "e2e-drain",
                "/api/v1/namespaces/ns/pods/p/eviction",
                "ResponseComplete",
                "2026-01-01T00:00:02.5Z",
            ),
            line(
                "e2e-drain",
                "/api/v1/namespaces/ns/pods/p/eviction?dryRun=All",
                "ResponseComplete",
                "2026-01-01T00:00:03Z",
            ),
            line(
                "someone",
                "/api/v1/namespaces/ns/pods/p/eviction",
                "ResponseComplete",
                "2026-01-01T00:00:03Z",
            ),
            line(
                "e2e-drain",
                "/api/v1/namespaces/ns/pods/p/eviction",
                "ResponseStarted",
                "2026-01-01T00:00:03Z",
            ),
            line(
                "e2e-drain",
                "/api/v1/namespaces/ns/pods/p/eviction",
                "ResponseComplete",
                "2026-01-01T00:00:00Z",
            ),
        ]
        .join("\n");
        std::fs::write(&log, text).unwrap();
        let got = client_requests(&log, "e2e-drain", ts("2026-01-01T00:00:01Z")).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got.iter().filter(|r| r.dry_run).count(), 1);
        assert_eq!(got[0].object, "ns/p");
        assert_eq!(got[0].key.agent, "kubectl");
        let counts = count(&got);
        assert_eq!(counts.values().copied().collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn removals_of_daemonset_mirror_and_non_target_pods_are_findings() {
        let mut seen = Seen::default();
        let t0 = "2026-01-01T00:00:00Z";
        seen.pods.insert(
            "ns/ds".into(),
            vec![inc("1", t0, info("DaemonSet", "n1", false))],
        );
        seen.pods.insert(
            "ns/mirror".into(),
            vec![inc("2", t0, info("Node", "n1", true))],
        );
        seen.pods.insert(
            "ns/elsewhere".into(),
            vec![inc("3", t0, info("ReplicaSet", "n2", false))],
        );
        seen.pods.insert(
            "ns/fine".into(),
            vec![inc("4", t0, info("ReplicaSet", "n1", false))],
        );
        let o = observer(seen);
        let at = "2026-01-01T00:00:05Z";
        let reqs = ["ns/ds", "ns/mirror", "ns/elsewhere", "ns/fine"].map(|p| eviction(p, at));
        let targets = HashSet::from(["n1".to_string()]);
        let mut kinds: Vec<String> = o
            .findings(&reqs, &targets)
            .into_iter()
            .map(|f| f.kind)
            .collect();
        kinds.sort();
        assert_eq!(
            kinds,
            [
                "DaemonSetPodRemoved",
                "MirrorPodRemoved",
                "NonTargetNodePodRemoved"
            ]
        );
    }

    #[test]
    fn a_same_name_replacement_on_another_node_is_not_the_evicted_pod() {
        let mut seen = Seen::default();
        seen.pods.insert(
            "ns/db-0".into(),
            vec![
                inc(
                    "old",
                    "2026-01-01T00:00:00Z",
                    info("StatefulSet", "n1", false),
                ),
                inc(
                    "new",
                    "2026-01-01T00:00:09Z",
                    info("StatefulSet", "n3", false),
                ),
            ],
        );
        let o = observer(seen);
        let targets = HashSet::from(["n1".to_string()]);
        assert!(
            o.findings(&[eviction("ns/db-0", "2026-01-01T00:00:05Z")], &targets)
                .is_empty()
        );
        // Evicting the replacement on n3 later is a finding.
        let f = o.findings(&[eviction("ns/db-0", "2026-01-01T00:00:10Z")], &targets);
        assert_eq!(f.len(), 1, "{f:?}");
    }

    #[test]
    fn a_budget_falling_below_desired_after_a_client_removal_is_a_finding() {
        let mut seen = Seen::default();
        seen.pods.insert(
            "ns/a".into(),
            vec![inc(
                "1",
                "2026-01-01T00:00:00Z",
                info("ReplicaSet", "n1", false),
            )],
        );
        let sample = |at: &str, current| BudgetSample {
            at: ts(at),
            key: "ns/web".into(),
            current,
            desired: 2,
        };
        seen.budgets = vec![
            sample("2026-01-01T00:00:01Z", 3),
            sample("2026-01-01T00:00:06Z", 1),
            sample("2026-01-01T00:00:07Z", 1),
        ];
        let o = observer(seen);
        let targets = HashSet::from(["n1".to_string()]);
        let f = o.findings(&[eviction("ns/a", "2026-01-01T00:00:05Z")], &targets);
        assert_eq!(f.len(), 1, "one drop, one finding: {f:?}");
        assert_eq!(f[0].kind, "BudgetBelowDesired");
        // Without a client removal before it, the drop is not the client's.
        assert!(
            o.findings(&[eviction("ns/a", "2026-01-01T00:00:08Z")], &targets)
                .is_empty()
        );
    }
}
