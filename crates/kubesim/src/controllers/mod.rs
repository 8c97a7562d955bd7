//! The cluster behaviour behind the API: kubelet, scheduler, workload controllers, garbage
//! collector and disruption controller, driven by the store's event stream: a write wakes the
//! loop (after a short debounce that coalesces bursts), the loop otherwise sleeps until the
//! earliest known deadline (a pod's stop or readiness time, a budget's requeue time), and a slow
//! fallback tick covers time-based work without a tracked deadline (namespace deletion delay).

mod deployment;
mod disruption;
mod interpod;
mod kubelet;
mod scheduler;
mod workloads;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::events::{Recorder, Source, Type};
use crate::graceful::{self, DeleteOptions};
use crate::meta::{self, Key};
use crate::objects::PodParams;
use crate::resources::{
    DAEMONSETS, DEPLOYMENTS, NAMESPACES, NODES, PDBS, PODS, REPLICASETS, ResId, STATEFULSETS,
};
use crate::sim::Shared;
use crate::store::{Event, EventType, State};

/// Fallback wake-up when nothing else is due (time-based work without a tracked deadline).
const FALLBACK_TICK: Duration = Duration::from_millis(50);
/// How long to coalesce a burst of writes before reacting, and the shortest gap between two
/// settle runs. The gap also grows to four times the last run's duration (up to [`MAX_GAP`]),
/// so on a big cluster the controllers hold the store lock at most about a fifth of the time
/// and a write storm is coalesced into fewer, larger runs ([`settle_gap`]).
const DEBOUNCE: Duration = Duration::from_millis(3);
/// Upper bound on controller passes per wake-up (a chain of reactions settles well within it).
const MAX_PASSES: usize = 16;
/// The longest gap after a settle run (see [`settle_gap`]); pods' stops are not held by it.
const MAX_GAP: Duration = Duration::from_secs(1);
const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

struct Terminating {
    key: Key,
    start: Instant,
    due: Instant,
    killed: bool,
}

struct Starting {
    key: Key,
    ready_at: Option<Instant>,
}

/// All simulated controllers with their work queues.
pub struct Controllers {
    shared: Arc<Shared>,
    terminating: HashMap<String, Terminating>,
    starting: HashMap<String, Starting>,
    unscheduled: BTreeSet<Key>,
    parked: BTreeSet<Key>,
    wake_parked: bool,
    taint_nodes: BTreeSet<String>,
    dirty_owners: HashSet<String>,
    /// Owners of pods that were removed: their own owners (a Deployment waiting, in a
    /// Recreate rollout, for the old pods to be gone) are reconciled too.
    emptied_owners: HashSet<String>,
    dirty_workloads: HashSet<(ResId, Key)>,
    all_daemonsets: bool,
    pdb_due: BTreeMap<Key, Instant>,
    pdb_label_checks: Vec<(String, BTreeMap<String, String>)>,
    pdb_namespaces: HashSet<String>,
    gc: Vec<String>,
    events: tokio::sync::broadcast::Receiver<Arc<Event>>,
    recorder: Recorder,
    /// Pods the kubelet started to stop, for its `Killing` events.
    killing: Vec<(Key, String)>,
}

fn is_workload(res: ResId) -> bool {
    matches!(res, REPLICASETS | DEPLOYMENTS | STATEFULSETS | DAEMONSETS)
}

impl Controllers {
    /// New controllers over the shared simulator state.
    pub fn new(shared: Arc<Shared>) -> Self {
        let events = shared.store.lock().subscribe();
        Controllers {
            events,
            shared,
            terminating: HashMap::new(),
            starting: HashMap::new(),
            unscheduled: BTreeSet::new(),
            parked: BTreeSet::new(),
            wake_parked: false,
            taint_nodes: BTreeSet::new(),
            dirty_owners: HashSet::new(),
            emptied_owners: HashSet::new(),
            dirty_workloads: HashSet::new(),
            all_daemonsets: false,
            pdb_due: BTreeMap::new(),
            pdb_label_checks: Vec::new(),
            pdb_namespaces: HashSet::new(),
            gc: Vec::new(),
            recorder: Recorder::default(),
            killing: Vec::new(),
        }
    }

    fn params_for(&self, pod: &Value) -> PodParams {
        let params = self.shared.params.lock().unwrap_or_else(|p| p.into_inner());
        meta::controller_ref(pod)
            .and_then(|r| r["uid"].as_str())
            .and_then(|u| params.get(u))
            .or_else(|| params.get(meta::uid(pod)))
            .copied()
            .unwrap_or_default()
    }

    fn delay(&self) -> Duration {
        seconds(self.shared.settings.disruption_delay_seconds)
    }

    fn dirty_pdb(&mut self, key: Key, at: Instant) {
        let e = self.pdb_due.entry(key).or_insert(at);
        if at < *e {
            *e = at;
        }
    }

    /// Queue everything for a full pass (after the event stream lagged).
    pub fn full_resync(&mut self) {
        self.resync(None);
    }

    /// Queue workloads and budgets, and the given pods (None: scan every pod). At start-up the
    /// bulk-loaded pods are in their steady state, so only the unplaced ones need the scheduler.
    pub fn resync(&mut self, only_pods: Option<&[Key]>) {
        let st = self.shared.store.lock();
        let pods: Vec<Arc<Value>> = match only_pods {
            None => st.iter(PODS, None).map(|(_, p)| p).collect(),
            Some(keys) => keys
                .iter()
                .filter_map(|k| st.get(PODS, &k.0, &k.1))
                .collect(),
        };
        let mut workloads = Vec::new();
        for res in [REPLICASETS, DEPLOYMENTS, STATEFULSETS, DAEMONSETS] {
            workloads.extend(st.keys(res, None).into_iter().map(|k| (res, k)));
        }
        let pdbs: Vec<Key> = st.keys(PDBS, None);
        drop(st);
        let now = Instant::now();
        for p in pods {
            self.observe_pod(&p, None, false, now);
        }
        self.dirty_workloads.extend(workloads);
        for k in pdbs {
            self.dirty_pdb(k, now);
        }
    }

    /// Queue the work a pod's change makes; `now` is when the change was written (a pod's
    /// graceful stop starts then).
    fn observe_pod(&mut self, pod: &Value, prev: Option<&Value>, deleted: bool, now: Instant) {
        let uid = meta::uid(pod).to_string();
        let key = meta::key(pod);
        let ns = meta::namespace(pod).to_string();
        self.pdb_label_checks.push((ns.clone(), meta::labels(pod)));
        if let Some(p) = prev
            && p["metadata"]["labels"] != pod["metadata"]["labels"]
        {
            self.pdb_label_checks.push((ns, meta::labels(p)));
        }
        if let Some(owner) = meta::controller_ref(pod).and_then(|r| r["uid"].as_str()) {
            self.dirty_owners.insert(owner.to_string());
            if deleted {
                self.emptied_owners.insert(owner.to_string());
            }
        }
        if deleted {
            self.terminating.remove(&uid);
            self.starting.remove(&uid);
            self.unscheduled.remove(&key);
            self.parked.remove(&key);
            self.wake_parked = true;
            return;
        }
        let node = meta::node_name(pod);
        if meta::is_terminating(pod) {
            self.starting.remove(&uid);
            self.unscheduled.remove(&key);
            self.parked.remove(&key);
            if node.is_empty() {
                return;
            }
            let grace = pod["metadata"]["deletionGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(0)
                .max(0) as f64;
            let term = self.params_for(pod).termination_seconds.max(0.0);
            let start = self.terminating.get(&uid).map_or(now, |t| t.start);
            let due = start + seconds(term.min(grace));
            let killed = term > grace;
            match self.terminating.get_mut(&uid) {
                Some(t) if due < t.due => {
                    t.due = due;
                    t.killed = killed;
                }
                Some(_) => {}
                None => {
                    self.killing.push((key.clone(), uid.clone()));
                    self.terminating.insert(
                        uid,
                        Terminating {
                            key,
                            start,
                            due,
                            killed,
                        },
                    );
                }
            }
            return;
        }
        if node.is_empty() {
            if !meta::is_terminal(pod) && !self.parked.contains(&key) {
                self.unscheduled.insert(key);
            }
            return;
        }
        self.unscheduled.remove(&key);
        if meta::phase(pod) == "Pending" && !self.starting.contains_key(&uid) {
            self.starting.insert(
                uid,
                Starting {
                    key,
                    ready_at: None,
                },
            );
        }
    }

    /// React to one store event.
    pub fn observe(&mut self, ev: &Event) {
        let deleted = ev.ty == EventType::Deleted;
        match ev.res {
            PODS => self.observe_pod(&ev.object, ev.prev.as_deref(), deleted, ev.at),
            PDBS => {
                let at = Instant::now() + self.delay();
                self.dirty_pdb(meta::key(&ev.object), at);
            }
            NODES => {
                self.wake_parked = true;
                if !deleted {
                    self.taint_nodes.insert(meta::name(&ev.object).to_string());
                }
                if ev.ty != EventType::Modified
                    || ev
                        .prev
                        .as_ref()
                        .is_some_and(|p| p["metadata"]["labels"] != ev.object["metadata"]["labels"])
                {
                    self.all_daemonsets = true;
                }
            }
            r if is_workload(r) => {
                if !deleted {
                    self.dirty_workloads.insert((r, meta::key(&ev.object)));
                }
                if ev
                    .prev
                    .as_ref()
                    .is_none_or(|p| p["spec"] != ev.object["spec"])
                {
                    self.pdb_namespaces
                        .insert(meta::namespace(&ev.object).to_string());
                }
                if let Some(owner) =
                    meta::controller_ref(&ev.object).and_then(|r| r["uid"].as_str())
                {
                    self.dirty_owners.insert(owner.to_string());
                }
            }
            _ => {}
        }
        if deleted && !meta::uid(&ev.object).is_empty() {
            self.gc.push(meta::uid(&ev.object).to_string());
        }
    }

    /// Do all work that is due, in dependency order: garbage collection and workload
    /// controllers create or delete pods, the scheduler binds them, the kubelet starts and stops
    /// them, and the disruption controller recomputes budgets from the result.
    pub fn step(&mut self) {
        let now = Instant::now();
        let shared = self.shared.clone();
        let mut st = shared.store.lock();
        let t = std::time::Instant::now();
        self.garbage_collect(&mut st);
        self.namespaces(&mut st);
        self.workloads(&mut st);
        let t1 = t.elapsed();
        self.node_lifecycle(&mut st);
        self.schedule(&mut st);
        let t2 = t.elapsed();
        self.kubelet(&mut st, now);
        let t3 = t.elapsed();
        self.disruption(&mut st, now);
        let t4 = t.elapsed();
        if t4 > Duration::from_millis(10) {
            tracing::debug!(?t1, ?t2, ?t3, ?t4, "slow controller step");
        }
    }

    /// Whether queued work is due now (without waiting for any deadline).
    fn work_pending(&self, now: Instant) -> bool {
        !self.unscheduled.is_empty()
            || (self.wake_parked && !self.parked.is_empty())
            || !self.taint_nodes.is_empty()
            || !self.dirty_owners.is_empty()
            || !self.emptied_owners.is_empty()
            || !self.dirty_workloads.is_empty()
            || self.all_daemonsets
            || !self.pdb_label_checks.is_empty()
            || !self.pdb_namespaces.is_empty()
            || !self.gc.is_empty()
            || self.next_deadline().is_some_and(|d| d <= now)
    }

    /// The earliest time-based work: a pod's stop time, a pod's start or readiness time, a
    /// budget's requeue time.
    fn next_deadline(&self) -> Option<Instant> {
        let starts = self
            .starting
            .values()
            .map(|s| s.ready_at.unwrap_or_else(Instant::now));
        let budgets = self.pdb_due.values().copied();
        self.next_stop()
            .into_iter()
            .chain(starts)
            .chain(budgets)
            .min()
    }

    /// Take every queued store event; true when there was at least one.
    fn drain_events(&mut self, rx: &mut tokio::sync::broadcast::Receiver<Arc<Event>>) -> bool {
        let mut any = false;
        loop {
            match rx.try_recv() {
                Ok(ev) => {
                    self.observe(&ev);
                    any = true;
                }
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {
                    self.full_resync();
                    any = true;
                }
                Err(_) => return any,
            }
        }
    }

    /// Run passes until one makes no change and nothing more is due (bounded), so a chain of
    /// reactions (replacement created, scheduled, started, budget recomputed) completes at once.
    fn settle(&mut self, rx: &mut tokio::sync::broadcast::Receiver<Arc<Event>>) {
        self.drain_events(rx);
        for _ in 0..MAX_PASSES {
            self.step();
            let changed = self.drain_events(rx);
            if !changed && !self.work_pending(Instant::now()) {
                break;
            }
        }
    }

    fn kubelet(&mut self, st: &mut State, now: Instant) {
        self.kubelet_stops(st, now);
        self.kubelet_starts(st, now);
    }

    /// The earliest stop time of a terminating pod.
    fn next_stop(&self) -> Option<Instant> {
        self.terminating.values().map(|t| t.due).min()
    }

    /// The kubelet's `Killing` events for the pods that began terminating, and the stops that
    /// are due.
    fn kubelet_stops(&mut self, st: &mut State, now: Instant) {
        for (key, uid) in std::mem::take(&mut self.killing) {
            if let Some(pod) = st.get(PODS, &key.0, &key.1)
                && meta::uid(&pod) == uid
            {
                let node = meta::node_name(&pod).to_string();
                let names: Vec<String> = pod["spec"]["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["name"].as_str().map(String::from))
                    .collect();
                for c in names {
                    self.recorder.event(
                        st,
                        PODS,
                        &pod,
                        &format!("spec.containers{{{c}}}"),
                        Type::Normal,
                        "Killing",
                        format!("Stopping container {c}"),
                        Source {
                            component: "kubelet",
                            host: &node,
                            events_v1_action: None,
                        },
                    );
                }
            }
        }
        let due: Vec<String> = self
            .terminating
            .iter()
            .filter(|(_, t)| t.due <= now)
            .map(|(u, _)| u.clone())
            .collect();
        for uid in due {
            let Some(t) = self.terminating.remove(&uid) else {
                continue;
            };
            if let Some(pod) = st.get(PODS, &t.key.0, &t.key.1)
                && meta::uid(&pod) == uid
            {
                kubelet::stop(st, &pod, t.killed);
            }
        }
    }

    /// Starts the bound pods and marks Ready those whose readiness time is due.
    fn kubelet_starts(&mut self, st: &mut State, now: Instant) {
        // A pod waiting for its readiness time is only looked at once it is due: a pod that
        // was deleted or began terminating meanwhile already left `starting` (observe_pod).
        let uids: Vec<String> = self
            .starting
            .iter()
            .filter(|(_, s)| s.ready_at.is_none_or(|at| at <= now))
            .map(|(u, _)| u.clone())
            .collect();
        for uid in uids {
            let Some(s) = self.starting.get(&uid) else {
                continue;
            };
            let Some(pod) = st
                .get(PODS, &s.key.0, &s.key.1)
                .filter(|p| meta::uid(p) == uid && !meta::is_terminating(p))
            else {
                self.starting.remove(&uid);
                continue;
            };
            match s.ready_at {
                None => {
                    let ready_secs = self.params_for(&pod).ready_seconds.max(0.0);
                    let ready = ready_secs == 0.0;
                    kubelet::start(st, &pod, ready);
                    if ready {
                        self.starting.remove(&uid);
                    } else if let Some(s) = self.starting.get_mut(&uid) {
                        s.ready_at = Some(now + seconds(ready_secs));
                    }
                }
                Some(at) if at <= now => {
                    kubelet::start(st, &pod, true);
                    self.starting.remove(&uid);
                }
                Some(_) => {}
            }
        }
    }

    /// Keep the `node.kubernetes.io/unschedulable:NoSchedule` taint in line with
    /// `spec.unschedulable`, as the node lifecycle controller does (P-5).
    fn node_lifecycle(&mut self, st: &mut State) {
        for name in std::mem::take(&mut self.taint_nodes) {
            let Some(node) = st.get(NODES, "", &name) else {
                continue;
            };
            let want = node["spec"]["unschedulable"].as_bool() == Some(true);
            let taints = node["spec"]["taints"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let has = taints.iter().any(|t| t["key"] == UNSCHEDULABLE_TAINT);
            if want == has {
                continue;
            }
            let mut next = (*node).clone();
            let mut kept: Vec<Value> = taints
                .into_iter()
                .filter(|t| t["key"] != UNSCHEDULABLE_TAINT)
                .collect();
            if want {
                kept.push(serde_json::json!({"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule", "timeAdded": meta::now_rfc3339()}));
            }
            if kept.is_empty() {
                if let Some(spec) = next["spec"].as_object_mut() {
                    spec.remove("taints");
                }
            } else {
                next["spec"]["taints"] = Value::Array(kept);
            }
            st.replace(NODES, next);
        }
    }

    fn schedule(&mut self, st: &mut State) {
        if std::mem::take(&mut self.wake_parked) {
            let parked = std::mem::take(&mut self.parked);
            self.unscheduled.extend(parked);
        }
        if self.unscheduled.is_empty() {
            return;
        }
        let mut nodes = scheduler::candidates(st);
        let keys: Vec<Key> = std::mem::take(&mut self.unscheduled).into_iter().collect();
        for key in keys {
            let Some(pod) = st.get(PODS, &key.0, &key.1) else {
                continue;
            };
            if !meta::node_name(&pod).is_empty() || meta::is_terminating(&pod) {
                continue;
            }
            if !scheduler::bind(st, &mut nodes, &pod, &mut self.recorder) {
                self.parked.insert(key);
            }
        }
    }

    fn garbage_collect(&mut self, st: &mut State) {
        for uid in std::mem::take(&mut self.gc) {
            for (res, child) in st.children_of(&uid) {
                if res == PODS {
                    if !meta::is_terminating(&child) {
                        let _ = graceful::delete_pod(
                            st,
                            meta::namespace(&child),
                            meta::name(&child),
                            &DeleteOptions::default(),
                        );
                    }
                } else {
                    st.remove(res, meta::namespace(&child), meta::name(&child));
                }
            }
        }
    }

    /// The namespace controller: a terminating namespace loses its other objects at once and its
    /// pods through graceful deletion (the kubelet stops them), then goes away once empty.
    fn namespaces(&mut self, st: &mut State) {
        let delay = self
            .shared
            .settings
            .namespace_deletion_delay_seconds
            .max(0.0);
        let now = jiff::Timestamp::now();
        let due = |ns: &Value| {
            let since = ns["metadata"]["deletionTimestamp"]
                .as_str()
                .and_then(meta::parse_time)
                .map_or(f64::MAX, |t| now.duration_since(t).as_secs_f64());
            since >= delay
        };
        let terminating: Vec<String> = st
            .iter(NAMESPACES, None)
            .filter(|(_, ns)| ns["status"]["phase"] == "Terminating" && due(ns))
            .map(|(k, _)| k.1.clone())
            .collect();
        for ns in terminating {
            for res in st.types() {
                if !crate::resources::get(res).namespaced || res == PODS {
                    continue;
                }
                for (_, name) in st.keys(res, Some(&ns)) {
                    st.remove(res, &ns, &name);
                }
            }
            let pods = st.keys(PODS, Some(&ns));
            if pods.is_empty() {
                st.remove(NAMESPACES, "", &ns);
                continue;
            }
            for (_, name) in pods {
                if st
                    .get(PODS, &ns, &name)
                    .is_some_and(|p| !meta::is_terminating(&p))
                {
                    let _ = graceful::delete_pod(st, &ns, &name, &DeleteOptions::default());
                }
            }
        }
    }

    fn workloads(&mut self, st: &mut State) {
        for uid in std::mem::take(&mut self.emptied_owners) {
            if let Some((_, o)) = st.get_by_uid(&uid)
                && let Some(up) = meta::controller_ref(&o).and_then(|r| r["uid"].as_str())
            {
                self.dirty_owners.insert(up.to_string());
            }
        }
        for uid in std::mem::take(&mut self.dirty_owners) {
            if let Some((res, o)) = st.get_by_uid(&uid)
                && is_workload(res)
            {
                self.dirty_workloads.insert((res, meta::key(&o)));
            }
        }
        if std::mem::take(&mut self.all_daemonsets) {
            let all: Vec<Key> = st.keys(DAEMONSETS, None);
            self.dirty_workloads
                .extend(all.into_iter().map(|k| (DAEMONSETS, k)));
        }
        let dirty: Vec<(ResId, Key)> = self.dirty_workloads.drain().collect();
        let mut params = self.shared.params.lock().unwrap_or_else(|p| p.into_inner());
        for (res, (ns, name)) in dirty {
            let t = std::time::Instant::now();
            workloads::reconcile(st, &mut params, &mut self.recorder, res, &ns, &name);
            if t.elapsed() > Duration::from_millis(2) {
                tracing::debug!(res, %name, took = ?t.elapsed(), "slow reconcile");
            }
        }
    }

    fn disruption(&mut self, st: &mut State, now: Instant) {
        let at = now + self.delay();
        for (ns, labels) in std::mem::take(&mut self.pdb_label_checks) {
            for name in st.pdbs.matching(&ns, &labels) {
                self.dirty_pdb((ns.clone(), name), at);
            }
        }
        for ns in std::mem::take(&mut self.pdb_namespaces) {
            let names: Vec<Key> = st.keys(PDBS, Some(&ns));
            for k in names {
                self.dirty_pdb(k, at);
            }
        }
        let due: Vec<Key> = self
            .pdb_due
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.pdb_due.remove(&key);
            if let Some(expiry) = disruption::sync(st, &key.0, &key.1) {
                let ms = expiry.as_millisecond() - jiff::Timestamp::now().as_millisecond();
                let wait = Duration::from_millis(ms.max(0) as u64);
                self.dirty_pdb(key, now + wait + Duration::from_millis(10));
            }
        }
    }

    /// Run until shutdown.
    pub async fn run(mut self) {
        let mut rx = self.events.resubscribe();
        // Catch up with what the initial pass wrote before the loop started.
        loop {
            match self.events.try_recv() {
                Ok(ev) => self.observe(&ev),
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => self.full_resync(),
                Err(_) => break,
            }
        }
        let mut shutdown = self.shared.shutdown.clone();
        let started = Instant::now();
        self.settle(&mut rx);
        let mut last_settle = Instant::now();
        let mut gap = settle_gap(last_settle - started);
        // When the first change since the last settle run arrived.
        let mut burst: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let earliest = last_settle + gap;
            // Settle when work is queued: a burst of changes is coalesced for the debounce time,
            // and never sooner than the gap after the previous run. Otherwise sleep until the
            // earliest deadline, never past the fallback tick.
            let settle_at = if self.work_pending(now) {
                earliest.max(burst.map_or(now, |b| b + DEBOUNCE))
            } else {
                self.next_deadline()
                    .map_or(now + FALLBACK_TICK, |d| d.min(now + FALLBACK_TICK))
                    .max(earliest)
            };
            // A pod's stop is due at its own time, even within the gap.
            let stop_at = self.next_stop().filter(|d| *d < settle_at);
            tokio::select! {
                ev = rx.recv() => {
                    match ev {
                        Ok(ev) => self.observe(&ev),
                        Err(RecvError::Lagged(_)) => self.full_resync(),
                        Err(RecvError::Closed) => break,
                    }
                    self.drain_events(&mut rx);
                    burst.get_or_insert_with(Instant::now);
                    // Take a storm's changes a few at a time, not one wake-up each.
                    tokio::select! {
                        _ = tokio::time::sleep(DEBOUNCE) => {}
                        _ = shutdown.changed() => break,
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(stop_at.unwrap_or(settle_at)), if stop_at.is_some() => {
                    let shared = self.shared.clone();
                    let mut st = shared.store.lock();
                    self.kubelet_stops(&mut st, Instant::now());
                    continue;
                }
                _ = tokio::time::sleep_until(settle_at) => {}
                _ = shutdown.changed() => break,
            }
            let started = Instant::now();
            self.settle(&mut rx);
            burst = None;
            last_settle = Instant::now();
            let took = last_settle - started;
            gap = settle_gap(took);
            if took > Duration::from_millis(10) {
                tracing::debug!(?took, ?gap, "slow settle run");
            }
        }
    }
}

/// How long the controllers leave the store to the API after a settle run that took `took`:
/// four times as long (so under load they hold its lock about a fifth of the time, as the real
/// controllers, rate-limited clients of the API server, do not starve it), at least the
/// debounce time, at most [`MAX_GAP`].
fn settle_gap(took: Duration) -> Duration {
    took.saturating_mul(4).clamp(DEBOUNCE, MAX_GAP)
}

/// A float number of seconds as a Duration, clamped to `0..=MAX_SECONDS` (NaN gives zero):
/// scenario loading refuses bad values, and this keeps a value that slipped through (or a
/// huge deletionGracePeriodSeconds) from panicking a controller.
fn seconds(v: f64) -> Duration {
    let v = if v.is_nan() {
        0.0
    } else {
        v.clamp(0.0, crate::scenario::MAX_SECONDS)
    };
    Duration::from_secs_f64(v)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn controllers(params: HashMap<String, PodParams>) -> Controllers {
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        Controllers::new(Arc::new(Shared {
            store: crate::store::Store::new(100),
            ledger: crate::ledger::Ledger::default(),
            faults: crate::faults::FaultSet::default(),
            settings: crate::scenario::Settings::default(),
            shutdown,
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            params: std::sync::Mutex::new(params),
            authz: None,
            snapshots: crate::paging::Snapshots::new(Duration::from_secs(1)),
            open_watches: Arc::default(),
        }))
    }

    fn deleted_pod(uid: &str, grace: i64) -> Arc<Value> {
        Arc::new(json!({
            "metadata": {"name": uid, "namespace": "shop", "uid": uid,
                         "deletionTimestamp": "2026-12-04T08:00:00Z",
                         "deletionGracePeriodSeconds": grace},
            "spec": {"nodeName": "n1"},
            "status": {"phase": "Running"}
        }))
    }

    fn modified(object: Arc<Value>, at: Instant) -> Event {
        Event {
            rv: 2,
            res: PODS,
            ty: EventType::Modified,
            object,
            prev: None,
            removed: None,
            at,
        }
    }

    #[test]
    fn a_pods_stop_counts_from_its_deletion_not_from_when_the_controllers_see_it() {
        let params = |term| PodParams {
            termination_seconds: term,
            ready_seconds: 0.0,
        };
        let mut c = controllers(HashMap::from([
            ("slow".to_string(), params(2.0)),
            ("killed".to_string(), params(60.0)),
        ]));
        // the controllers get to the events 0.7 s after the deletions were written (a long
        // settle run, or the gap after one)
        let deleted_at = Instant::now() - Duration::from_millis(700);
        c.observe(&modified(deleted_pod("slow", 30), deleted_at));
        assert_eq!(c.next_stop(), Some(deleted_at + Duration::from_secs(2)));
        // an app slower than its grace period is killed when the grace period ends
        c.observe(&modified(deleted_pod("killed", 1), deleted_at));
        assert_eq!(c.next_stop(), Some(deleted_at + Duration::from_secs(1)));
        assert!(c.terminating["killed"].killed);
        // seen again later (a status write), the stop keeps its time
        c.observe(&modified(deleted_pod("slow", 30), Instant::now()));
        assert_eq!(
            c.terminating["slow"].due,
            deleted_at + Duration::from_secs(2)
        );
    }

    #[test]
    fn the_controllers_leave_the_store_four_times_as_long_as_they_held_it() {
        assert_eq!(settle_gap(Duration::ZERO), DEBOUNCE);
        assert_eq!(
            settle_gap(Duration::from_millis(20)),
            Duration::from_millis(80)
        );
        assert_eq!(
            settle_gap(Duration::from_millis(200)),
            Duration::from_millis(800)
        );
        assert_eq!(settle_gap(Duration::from_secs(2)), MAX_GAP);
    }

    #[test]
    fn seconds_clamp_instead_of_panicking() {
        assert_eq!(seconds(1.5), Duration::from_millis(1500));
        assert_eq!(seconds(-1.0), Duration::ZERO);
        assert_eq!(seconds(f64::NAN), Duration::ZERO);
        let max = Duration::from_secs_f64(crate::scenario::MAX_SECONDS);
        assert_eq!(seconds(f64::INFINITY), max);
        assert_eq!(seconds(9.2e18), max);
    }
}
