//! B5's cluster side: the patch-and-reboot operator the harness plays, and the observer that
//! records what happens to every pod and budget while a drain rotates the pool.
//!
//! Both read one set of watch caches (kube-runtime reflectors on nodes, pods and budgets, through
//! the harness's kube client: real HTTP watches, as any operator has). The operator does what the
//! OS-update operator kdrain grew from does: when it sees a pool node drained (cordoned, and no pod
//! left on it but DaemonSet and mirror pods), it "patches and reboots" it, modelled as keeping it
//! cordoned for `reboot` more seconds, then uncordons it (one merge PATCH, which also labels it
//! `kdrain-bench/patched=true`). Each node is rotated once. The same operator runs, unchanged, for
//! every tool.
//!
//! The observer samples the caches every [`SAMPLE`] and feeds the pure bookkeeping of
//! `rotation_metrics.rs`: pods the scheduler could not place (Pending) and for how long, the time
//! budgets held back pods that still had to leave, and pods evicted that were not on the pool when
//! the drain started (re-evictions).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use sched::nodes::is_cordoned;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::rotation_metrics::{BlockedClock, PendingBook, PendingSummary};
use crate::tracker::stays_on_node;

/// How often the observer and the operator look at the caches.
pub const SAMPLE: Duration = Duration::from_millis(50);

/// The label the operator puts on a node it patched.
pub const PATCHED_LABEL: &str = "kdrain-bench/patched";

/// Watch caches of the objects B5 looks at.
#[derive(Clone)]
pub struct Caches {
    nodes: Store<Node>,
    pods: Store<Pod>,
    pdbs: Store<PodDisruptionBudget>,
}

fn spawn_reflector<K>(api: Api<K>) -> (Store<K>, JoinHandle<()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store::<K>();
    let stream = reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
        .default_backoff()
        .for_each(|_| futures::future::ready(()));
    (reader, tokio::spawn(stream))
}

impl Caches {
    /// Starts the three watches and waits (bounded) until each has listed once.
    pub async fn start(client: &kube::Client) -> Result<(Caches, Vec<JoinHandle<()>>)> {
        let (nodes, a) = spawn_reflector::<Node>(Api::all(client.clone()));
        let (pods, b) = spawn_reflector::<Pod>(Api::all(client.clone()));
        let (pdbs, c) = spawn_reflector::<PodDisruptionBudget>(Api::all(client.clone()));
        let caches = Caches { nodes, pods, pdbs };
        let ready = async {
            caches.nodes.wait_until_ready().await?;
            caches.pods.wait_until_ready().await?;
            caches.pdbs.wait_until_ready().await
        };
        tokio::time::timeout(Duration::from_secs(60), ready)
            .await
            .context("the harness's watches did not list nodes, pods and budgets within 60 s")?
            .context("a watch of the harness stopped")?;
        Ok((caches, vec![a, b, c]))
    }
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
}

/// What the operator did to one node, in seconds since the drain started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeRotation {
    /// When the operator saw it drained and started its reboot.
    pub drained_at: Option<f64>,
    /// When it uncordoned it.
    pub back_at: Option<f64>,
}

/// The patch-and-reboot operator, running until stopped.
pub struct Operator {
    log: Arc<Mutex<BTreeMap<String, NodeRotation>>>,
    task: JoinHandle<()>,
}

impl Operator {
    /// Starts watching `pool` (node names) through `caches`; times are relative to `origin`.
    pub fn start(
        client: kube::Client,
        caches: Caches,
        pool: &[String],
        reboot: Duration,
        origin: Instant,
    ) -> Operator {
        let log: Arc<Mutex<BTreeMap<String, NodeRotation>>> = Arc::new(Mutex::new(
            pool.iter()
                .map(|n| (n.clone(), NodeRotation::default()))
                .collect(),
        ));
        let task = tokio::spawn(operate(client, caches, log.clone(), reboot, origin));
        Operator { log, task }
    }

    /// Every pool node's rotation so far.
    pub fn rotations(&self) -> BTreeMap<String, NodeRotation> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) until every pool node is back (after a drain that finished).
    pub async fn wait_all_back(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let all_back = self
                .log
                .lock()
                .unwrap()
                .values()
                .all(|r| r.back_at.is_some());
            if all_back {
                return;
            }
            tokio::time::sleep(SAMPLE).await;
        }
    }

    /// Stops the operator (reboots in flight are abandoned).
    pub fn stop(self) {
        self.task.abort();
    }
}

async fn operate(
    client: kube::Client,
    caches: Caches,
    log: Arc<Mutex<BTreeMap<String, NodeRotation>>>,
    reboot: Duration,
    origin: Instant,
) {
    let nodes: Api<Node> = Api::all(client);
    let mut reboots: Vec<JoinHandle<()>> = Vec::new();
    loop {
        let waiting: Vec<String> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, r)| r.drained_at.is_none())
            .map(|(n, _)| n.clone())
            .collect();
        if waiting.is_empty() {
            break;
        }
        let busy: BTreeSet<String> = caches
            .pods
            .state()
            .iter()
            .filter(|p| !stays_on_node(p))
            .filter_map(|p| node_of(p).map(str::to_string))
            .collect();
        for name in waiting {
            let drained = caches
                .nodes
                .state()
                .iter()
                .any(|n| n.metadata.name.as_deref() == Some(&name) && is_cordoned(n))
                && !busy.contains(&name);
            if !drained {
                continue;
            }
            if let Some(r) = log.lock().unwrap().get_mut(&name) {
                r.drained_at = Some(origin.elapsed().as_secs_f64());
            }
            let (nodes, log, name) = (nodes.clone(), log.clone(), name.clone());
            reboots.push(tokio::spawn(async move {
                tokio::time::sleep(reboot).await;
                let patch = json!({
                    "metadata": {"labels": {PATCHED_LABEL: "true"}},
                    "spec": {"unschedulable": null}
                });
                // A failed PATCH is retried: the node must come back for the run to be fair.
                loop {
                    match nodes
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        Ok(_) => break,
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
                if let Some(r) = log.lock().unwrap().get_mut(&name) {
                    r.back_at = Some(origin.elapsed().as_secs_f64());
                }
            }));
        }
        tokio::time::sleep(SAMPLE).await;
    }
    for r in reboots {
        let _ = r.await;
    }
}

/// What the observer recorded over a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observations {
    /// Pods the scheduler could not place, and for how long.
    pub pending: PendingSummary,
    /// Seconds during which at least one budget allowed no disruption while a pod it covers still
    /// had to leave a cordoned pool node.
    pub budget_blocked_seconds: f64,
    /// Pods evicted (deletion started) that were not on the pool when the drain started: the
    /// replacements some tool moved twice.
    pub re_evicted: usize,
}

/// Samples the caches until stopped.
pub struct Observer {
    state: Arc<Mutex<ObserverState>>,
    task: JoinHandle<()>,
}

struct ObserverState {
    pending: PendingBook,
    blocked: BlockedClock,
    deleting_new: BTreeSet<String>,
}

/// Start-up time (readySeconds) of a pod's workload, by (namespace, labels).
pub type StartupOf = Arc<dyn Fn(&str, &BTreeMap<String, String>) -> f64 + Send + Sync>;

impl Observer {
    /// Starts sampling. `targets` are the UIDs of the pods the drain must remove (fixed at the
    /// start), `pool` the drained nodes, `startup` the start-up time of a pod's workload.
    pub fn start(
        caches: Caches,
        pool: &[String],
        targets: BTreeSet<String>,
        startup: StartupOf,
        origin: Instant,
    ) -> Observer {
        let state = Arc::new(Mutex::new(ObserverState {
            pending: PendingBook::default(),
            blocked: BlockedClock::default(),
            deleting_new: BTreeSet::new(),
        }));
        let pool: BTreeSet<String> = pool.iter().cloned().collect();
        let task = tokio::spawn(observe(
            caches,
            pool,
            targets,
            startup,
            state.clone(),
            origin,
        ));
        Observer { state, task }
    }

    /// Stops sampling and returns what was seen, with times up to `end` (seconds since origin).
    pub fn finish(self, end: f64) -> Observations {
        self.task.abort();
        let state = self.state.lock().unwrap();
        Observations {
            pending: state.pending.summary(end),
            budget_blocked_seconds: state.blocked.total(),
            re_evicted: state.deleting_new.len(),
        }
    }
}

/// The scheduler's message when it could not place the pod (`PodScheduled=False`).
fn unschedulable(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")
                .map(|c| c.message.clone().unwrap_or_default())
        })
}

fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn selector_matches(pdb: &PodDisruptionBudget, labels: &BTreeMap<String, String>) -> bool {
    // The bench scenarios write budgets with matchLabels only.
    let Some(selector) = pdb.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    if selector
        .match_expressions
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        return false;
    }
    selector
        .match_labels
        .as_ref()
        .is_some_and(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

async fn observe(
    caches: Caches,
    pool: BTreeSet<String>,
    targets: BTreeSet<String>,
    startup: StartupOf,
    state: Arc<Mutex<ObserverState>>,
    origin: Instant,
) {
    loop {
        let now = origin.elapsed().as_secs_f64();
        let pods = caches.pods.state();
        let cordoned_pool: BTreeSet<String> = caches
            .nodes
            .state()
            .iter()
            .filter(|n| is_cordoned(n))
            .filter_map(|n| n.metadata.name.clone())
            .filter(|n| pool.contains(n))
            .collect();
        // Pods that still have to leave: the drain's targets, still on a cordoned pool node, not
        // yet being deleted; by namespace, their labels.
        let waiting: Vec<(String, BTreeMap<String, String>)> = pods
            .iter()
            .filter(|p| p.metadata.uid.as_ref().is_some_and(|u| targets.contains(u)))
            .filter(|p| !terminating(p))
            .filter(|p| node_of(p).is_some_and(|n| cordoned_pool.contains(n)))
            .map(|p| {
                (
                    p.metadata.namespace.clone().unwrap_or_default(),
                    p.metadata.labels.clone().unwrap_or_default(),
                )
            })
            .collect();
        let blocked = caches.pdbs.state().iter().any(|pdb| {
            pdb.status
                .as_ref()
                .is_some_and(|s| s.disruptions_allowed == Some(0))
                && waiting.iter().any(|(ns, labels)| {
                    pdb.metadata.namespace.as_deref() == Some(ns.as_str())
                        && selector_matches(pdb, labels)
                })
        });
        let mut present: HashMap<String, bool> = HashMap::new();
        {
            let mut st = state.lock().unwrap();
            st.blocked.tick(now, blocked);
            for pod in &pods {
                let Some(uid) = pod.metadata.uid.clone() else {
                    continue;
                };
                if stays_on_node(pod) {
                    continue;
                }
                let bound = node_of(pod).is_some();
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                let labels = pod.metadata.labels.clone().unwrap_or_default();
                if !targets.contains(&uid) {
                    let refused = unschedulable(pod);
                    st.pending
                        .observe(&uid, now, bound, refused.is_some(), startup(&ns, &labels));
                    st.pending.note(
                        &uid,
                        pod.metadata.name.as_deref().unwrap_or_default(),
                        refused.as_deref().unwrap_or_default(),
                    );
                    if terminating(pod) {
                        st.deleting_new.insert(uid.clone());
                    }
                }
                present.insert(uid, bound);
            }
            st.pending
                .forget_absent(now, |uid| present.contains_key(uid));
        }
        tokio::time::sleep(SAMPLE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::{DeleteParams, ListParams};

    const CLUSTER: &str = r#"
nodes:
  - {name: old-0, labels: {pool: old}}
  - {name: old-1, labels: {pool: old}}
  - {name: spare-0}
workloads:
  - {kind: Deployment, name: web, replicas: 2, labels: {app: web}, nodes: [old-0, old-1], terminationSeconds: 0.1, readySeconds: 0.1}
  - {kind: DaemonSet, name: agent, labels: {app: agent}}
"#;

    /// The operator over HTTP on kubesim: a cordoned node emptied of all but its DaemonSet pod is
    /// uncordoned and labelled once; a node never cordoned is left alone.
    #[tokio::test]
    async fn operator_brings_back_a_drained_node_only() {
        let scenario = kubesim::Scenario::from_yaml_str(CLUSTER).unwrap();
        let sim = kubesim::Sim::start(scenario).await.unwrap();
        let client = sim.client();
        let outcome = tokio::time::timeout(Duration::from_secs(60), async {
            let (caches, watches) = Caches::start(&client).await.unwrap();
            let pool = vec!["old-0".to_string(), "old-1".to_string()];
            let operator = Operator::start(
                client.clone(),
                caches,
                &pool,
                Duration::from_millis(200),
                Instant::now(),
            );
            let nodes: Api<Node> = Api::all(client.clone());
            let cordon = json!({"spec": {"unschedulable": true}});
            nodes
                .patch("old-0", &PatchParams::default(), &Patch::Merge(&cordon))
                .await
                .unwrap();
            // Its web pod is replaced on another node; the DaemonSet pod stays.
            let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
            let on_old0 = pods
                .list(&ListParams::default().fields("spec.nodeName=old-0"))
                .await
                .unwrap();
            for p in on_old0.items.iter().filter(|p| !stays_on_node(p)) {
                pods.delete(
                    p.metadata.name.as_deref().unwrap(),
                    &DeleteParams::default(),
                )
                .await
                .unwrap();
            }
            loop {
                if operator.rotations()["old-0"].back_at.is_some() {
                    break;
                }
                tokio::time::sleep(SAMPLE).await;
            }
            let rotations = operator.rotations();
            operator.stop();
            for w in watches {
                w.abort();
            }
            let old0 = nodes.get("old-0").await.unwrap();
            let old1 = nodes.get("old-1").await.unwrap();
            (rotations, old0, old1)
        })
        .await
        .expect("the operator test took over 60 s");
        sim.shutdown().await;
        let (rotations, old0, old1) = outcome;
        assert!(rotations["old-0"].drained_at.is_some());
        assert_eq!(rotations["old-1"], NodeRotation::default());
        assert!(!is_cordoned(&old0));
        assert_eq!(
            old0.metadata
                .labels
                .unwrap()
                .get(PATCHED_LABEL)
                .map(String::as_str),
            Some("true")
        );
        assert!(!is_cordoned(&old1));
        assert!(!old1.metadata.labels.unwrap().contains_key(PATCHED_LABEL));
    }
}
