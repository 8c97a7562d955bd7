//! Watches the pods of the drained nodes from the harness, so the wall time ("last target pod gone")
//! and the pods-remaining curve are measured on the harness's clock, independent of the drain tool.
//!
//! One LIST + WATCH per target node (field selector `spec.nodeName`). The harness's own requests made
//! after the counters were reset are counted here, so they can be subtracted from the simulator's totals.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, WatchEvent, WatchParams};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the harness knows about one pod on a target node.
#[derive(Debug, Clone)]
pub struct TrackedPod {
    /// Namespace.
    pub namespace: String,
    /// Node it runs on.
    pub node: String,
    /// Labels, to find its workload.
    pub labels: BTreeMap<String, String>,
    /// Ready condition is True.
    pub ready: bool,
    /// Owned by a DaemonSet or a mirror pod: a drain leaves it alone.
    pub not_drained: bool,
    /// When the harness saw it gone.
    pub gone_at: Option<Instant>,
}

#[derive(Default)]
struct State {
    pods: HashMap<String, TrackedPod>,
    /// UIDs whose removal the run is timing (set by `start_timing`).
    targets: HashSet<String>,
    /// Target pods not yet gone (kept as a count so each deletion costs O(1)).
    left: usize,
    /// (moment, target pods left) every time a target pod goes.
    timeline: Vec<(Instant, usize)>,
    /// Nodes whose first LIST has finished.
    listed: HashSet<String>,
    /// Nodes whose WATCH the server has answered (so it was counted before the counters were
    /// reset, not after).
    watching: HashSet<String>,
}

impl State {
    fn remaining(&self) -> usize {
        self.left
    }

    fn mark_gone(&mut self, uid: &str, at: Instant) {
        let Some(pod) = self.pods.get_mut(uid) else {
            return;
        };
        if pod.gone_at.is_some() {
            return;
        }
        pod.gone_at = Some(at);
        if self.targets.contains(uid) {
            self.left -= 1;
            self.timeline.push((at, self.left));
        }
    }
}

/// Requests the tracker sent while counting was on (after the simulator's counters were reset).
#[derive(Debug, Default)]
pub struct OwnRequests {
    counting: AtomicBool,
    lists: AtomicU64,
    watches: AtomicU64,
}

impl OwnRequests {
    /// (list pods, watch pods) sent since counting started.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.lists.load(Ordering::SeqCst),
            self.watches.load(Ordering::SeqCst),
        )
    }
}

/// The result of one timed drain as the harness saw it.
#[derive(Debug, Clone)]
pub struct Observed {
    /// Seconds from the start until the last target pod was gone, or None if some remain.
    pub wall_seconds: Option<f64>,
    /// Target pods still present at the end.
    pub remaining: usize,
    /// Target pods at the start.
    pub targets: usize,
    /// (seconds since start, pods left) including the starting point.
    pub timeline: Vec<(f64, usize)>,
}

/// Watches every pod on the target nodes.
pub struct Tracker {
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    own: Arc<OwnRequests>,
    tasks: Vec<JoinHandle<()>>,
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A DaemonSet or mirror pod: a drain leaves it (and the B5 operator does not wait for it).
pub(crate) fn stays_on_node(pod: &Pod) -> bool {
    let mirror = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    let daemon = pod
        .metadata
        .owner_references
        .as_ref()
        .is_some_and(|refs| refs.iter().any(|r| r.kind == "DaemonSet"));
    mirror || daemon
}

fn tracked(pod: &Pod) -> Option<(String, TrackedPod)> {
    let uid = pod.metadata.uid.clone()?;
    Some((
        uid,
        TrackedPod {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            node: pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default(),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            ready: is_ready(pod),
            not_drained: stays_on_node(pod),
            gone_at: None,
        },
    ))
}

impl Tracker {
    /// Starts one LIST + WATCH loop per node and waits (bounded) until each has listed once and
    /// its watch is answered: a watch still on its way when the simulator's counters are reset
    /// would be counted as the drain's.
    pub async fn start(client: kube::Client, nodes: &[String]) -> Result<Self> {
        let state = Arc::new(Mutex::new(State::default()));
        let changed = Arc::new(Notify::new());
        let own = Arc::new(OwnRequests::default());
        let tasks = nodes
            .iter()
            .map(|node| {
                tokio::spawn(watch_node(
                    Api::all(client.clone()),
                    node.clone(),
                    state.clone(),
                    changed.clone(),
                    own.clone(),
                ))
            })
            .collect();
        let tracker = Tracker {
            state,
            changed,
            own,
            tasks,
        };
        let want = nodes.len();
        tracker
            .wait_until(Duration::from_secs(120), |s| {
                s.listed.len() >= want && s.watching.len() >= want
            })
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "the harness could not list the pods of the target nodes within 120 s"
                )
            })?;
        Ok(tracker)
    }

    async fn wait_until(&self, limit: Duration, done: impl Fn(&State) -> bool) -> Result<(), ()> {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            if done(&self.state.lock().unwrap()) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(());
            }
        }
    }

    /// Waits until every pod a drain would remove is Ready (bounded).
    pub async fn wait_all_ready(&self, limit: Duration) -> Result<()> {
        let ok = self
            .wait_until(limit, |s| {
                s.pods
                    .values()
                    .filter(|p| p.gone_at.is_none() && !p.not_drained)
                    .all(|p| p.ready)
            })
            .await;
        if ok.is_err() {
            bail!("pods on the target nodes were not all Ready within {limit:?}");
        }
        Ok(())
    }

    /// The pods a drain will remove, as (namespace, labels), present now.
    pub fn target_pods(&self) -> Vec<(String, BTreeMap<String, String>)> {
        let state = self.state.lock().unwrap();
        state
            .pods
            .values()
            .filter(|p| p.gone_at.is_none() && !p.not_drained)
            .map(|p| (p.namespace.clone(), p.labels.clone()))
            .collect()
    }

    /// Fixes the set of target pods (all drainable pods present now) and starts counting own requests.
    pub fn start_timing(&self) {
        let mut state = self.state.lock().unwrap();
        let targets: HashSet<String> = state
            .pods
            .iter()
            .filter(|(_, p)| p.gone_at.is_none() && !p.not_drained)
            .map(|(uid, _)| uid.clone())
            .collect();
        state.left = targets.len();
        state.targets = targets;
        state.timeline.clear();
        self.own.counting.store(true, Ordering::SeqCst);
    }

    /// The harness's own requests since `start_timing`.
    pub fn own_requests(&self) -> &OwnRequests {
        &self.own
    }

    /// Waits (bounded) until no target pod is left; true when none is.
    pub async fn wait_all_gone(&self, limit: Duration) -> bool {
        self.wait_until(limit, |s| s.remaining() == 0).await.is_ok()
    }

    /// Summarises the run relative to `origin` (the moment the drain was started).
    pub fn observed(&self, origin: Instant) -> Observed {
        let state = self.state.lock().unwrap();
        let targets = state.targets.len();
        let remaining = state.remaining();
        let mut timeline = vec![(0.0, targets)];
        timeline.extend(
            state
                .timeline
                .iter()
                .map(|(at, left)| (at.saturating_duration_since(origin).as_secs_f64(), *left)),
        );
        let wall_seconds = (remaining == 0).then(|| {
            state
                .targets
                .iter()
                .filter_map(|uid| state.pods.get(uid).and_then(|p| p.gone_at))
                .max()
                .map_or(0.0, |last| {
                    last.saturating_duration_since(origin).as_secs_f64()
                })
        });
        Observed {
            wall_seconds,
            remaining,
            targets,
            timeline,
        }
    }

    /// Stops the watch loops.
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

async fn watch_node(
    api: Api<Pod>,
    node: String,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    own: Arc<OwnRequests>,
) {
    let fields = format!("spec.nodeName={node}");
    loop {
        // LIST: replaces what is known about this node's pods.
        if own.counting.load(Ordering::SeqCst) {
            own.lists.fetch_add(1, Ordering::SeqCst);
        }
        let list = match api.list(&ListParams::default().fields(&fields)).await {
            Ok(list) => list,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let now = Instant::now();
        {
            let mut s = state.lock().unwrap();
            let present: HashSet<String> = list
                .items
                .iter()
                .filter_map(|p| p.metadata.uid.clone())
                .collect();
            let on_node: Vec<String> = s
                .pods
                .iter()
                .filter(|(uid, p)| p.gone_at.is_none() && p.node == node && !present.contains(*uid))
                .map(|(uid, _)| uid.clone())
                .collect();
            for uid in on_node {
                s.mark_gone(&uid, now);
            }
            for pod in &list.items {
                if let Some((uid, info)) = tracked(pod) {
                    upsert(&mut s, uid, info);
                }
            }
            s.listed.insert(node.clone());
        }
        changed.notify_waiters();
        let mut version = list.metadata.resource_version.unwrap_or_default();
        // WATCH until the server ends the stream or answers 410.
        'watch: loop {
            if own.counting.load(Ordering::SeqCst) {
                own.watches.fetch_add(1, Ordering::SeqCst);
            }
            let params = WatchParams::default().fields(&fields).timeout(290);
            let mut stream = match api.watch(&params, &version).await {
                Ok(stream) => {
                    if state.lock().unwrap().watching.insert(node.clone()) {
                        changed.notify_waiters();
                    }
                    stream.boxed()
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    break 'watch;
                }
            };
            while let Some(event) = stream.next().await {
                let now = Instant::now();
                match event {
                    Ok(WatchEvent::Added(pod)) | Ok(WatchEvent::Modified(pod)) => {
                        version = pod.metadata.resource_version.clone().unwrap_or(version);
                        if let Some((uid, info)) = tracked(&pod) {
                            upsert(&mut state.lock().unwrap(), uid, info);
                        }
                    }
                    Ok(WatchEvent::Deleted(pod)) => {
                        version = pod.metadata.resource_version.clone().unwrap_or(version);
                        if let Some(uid) = &pod.metadata.uid {
                            state.lock().unwrap().mark_gone(uid, now);
                        }
                    }
                    Ok(WatchEvent::Bookmark(mark)) => {
                        version = mark.metadata.resource_version;
                    }
                    // 410 Expired or any other error event: list again.
                    Ok(WatchEvent::Error(_)) | Err(_) => break 'watch,
                }
                changed.notify_waiters();
            }
        }
    }
}

fn upsert(state: &mut State, uid: String, info: TrackedPod) {
    match state.pods.get_mut(&uid) {
        Some(existing) if existing.gone_at.is_some() => {}
        Some(existing) => {
            existing.ready = info.ready;
            existing.labels = info.labels;
        }
        None => {
            state.pods.insert(uid, info);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::DeleteParams;

    const CLUSTER: &str = r#"
nodes:
  - name: n1
  - name: n2
workloads:
  - {kind: Deployment, name: web, replicas: 2, labels: {app: web}, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.1}
  - {kind: Deployment, name: other, replicas: 1, labels: {app: other}, nodes: [n2], readySeconds: 0.1}
"#;

    #[tokio::test]
    async fn times_the_removal_of_the_target_nodes_pods() {
        let scenario = kubesim::Scenario::from_yaml_str(CLUSTER).unwrap();
        let sim = kubesim::Sim::start(scenario).await.unwrap();
        let client = sim.client();
        let result = tokio::time::timeout(Duration::from_secs(60), async {
            let tracker = Tracker::start(client.clone(), &["n1".to_string()])
                .await
                .unwrap();
            tracker
                .wait_all_ready(Duration::from_secs(30))
                .await
                .unwrap();
            let targets = tracker.target_pods();
            assert_eq!(targets.len(), 2, "only n1's pods are tracked");
            assert!(
                targets
                    .iter()
                    .all(|(ns, l)| ns == "default" && l["app"] == "web")
            );
            tracker.start_timing();
            let origin = Instant::now();
            let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
            let names: Vec<String> = pods
                .list(&ListParams::default().fields("spec.nodeName=n1"))
                .await
                .unwrap()
                .items
                .into_iter()
                .filter_map(|p| p.metadata.name)
                .collect();
            for name in &names {
                pods.delete(name, &DeleteParams::default()).await.unwrap();
            }
            assert!(tracker.wait_all_gone(Duration::from_secs(30)).await);
            let observed = tracker.observed(origin);
            let own = tracker.own_requests().counts();
            tracker.stop();
            (observed, own)
        })
        .await
        .expect("the tracker test took over 60 s");
        sim.shutdown().await;
        let (observed, own) = result;
        assert_eq!(observed.targets, 2);
        assert_eq!(observed.remaining, 0);
        assert!(observed.wall_seconds.is_some());
        // Start point plus one step per pod gone, counting down to zero.
        let counts: Vec<usize> = observed.timeline.iter().map(|p| p.1).collect();
        assert_eq!(counts, vec![2, 1, 0]);
        // The watch was open before timing started: no harness request is counted after it.
        assert_eq!(own, (0, 0));
    }
}
