//! The in-memory object store: one table of JSON objects per resource type, one global
//! resourceVersion counter (D-0.7), indexes (pods by node, children by owner, objects by UID,
//! PDB membership) and the watch event history (W-8).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::meta::{self, Key};
use crate::pdb_index::PdbIndex;
use crate::resources::{CRDS, PDBS, PODS, RESOURCES, ResId};

/// Type of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

impl EventType {
    /// The wire name (`ADDED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change to the store, as kept in the history and fanned out to watchers.
#[derive(Debug)]
pub struct Event {
    /// The resourceVersion this change produced.
    pub rv: u64,
    /// Resource type.
    pub res: ResId,
    /// What happened.
    pub ty: EventType,
    /// The object after the change (for DELETED: its last state carrying the deletion RV).
    pub object: Arc<Value>,
    /// The object before the change (MODIFIED only), for selector transitions (W-4).
    pub prev: Option<Arc<Value>>,
    /// The object as it was stored before its deletion (DELETED only, with its own
    /// resourceVersion), so a paged LIST can still be served as of an older RV.
    pub removed: Option<Arc<Value>>,
    /// When the change was made: the simulated kubelet starts a pod's graceful stop from the
    /// time its deletion was written, not from when the controllers get to the event.
    pub at: tokio::time::Instant,
}

/// How an object is kept: parsed (recently written), or packed as JSON bytes (bulk-loaded pods,
/// about ten times smaller than a parsed `Value`, parsed again on each read) with its
/// `status.phase` when it is one of [`PHASES`] (a LIST selecting by phase reads it unpacked).
enum Slot {
    Hot(Arc<Value>),
    Cold(Box<[u8]>, Option<&'static str>),
}

/// The pod phases a packed pod keeps beside its JSON ("" for no phase).
const PHASES: [&str; 6] = ["", "Pending", "Running", "Succeeded", "Failed", "Unknown"];

impl Slot {
    fn value(&self) -> Arc<Value> {
        match self {
            Slot::Hot(v) => v.clone(),
            Slot::Cold(b, _) => Arc::new(serde_json::from_slice(b).unwrap_or(Value::Null)),
        }
    }

    /// `status.phase` ("" when absent or not a string), without unpacking when it is kept.
    fn phase(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Slot::Hot(v) => v["status"]["phase"].as_str().unwrap_or("").into(),
            Slot::Cold(_, Some(p)) => (*p).into(),
            Slot::Cold(..) => self.value()["status"]["phase"]
                .as_str()
                .unwrap_or("")
                .to_string()
                .into(),
        }
    }
}

/// What workload controllers need to know about an owned object, kept so they never unpack pods.
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    /// Not terminating and (for pods) not Succeeded/Failed.
    pub active: bool,
    /// Has a `Ready=True` condition.
    pub ready: bool,
    /// `spec.nodeName` for pods ("" when unscheduled or not a pod).
    pub node: String,
}

impl Child {
    fn of(o: &Value) -> Child {
        Child {
            active: !meta::is_terminating(o) && !meta::is_terminal(o),
            ready: meta::is_ready(o),
            node: meta::node_name(o).to_string(),
        }
    }
}

/// The pods of one controller owner, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PodCounts {
    /// Pods it owns (finished or not).
    pub pods: usize,
    /// Of those, the active ones ([`Child::active`]).
    pub active: usize,
    /// Of the active ones, the Ready ones.
    pub ready: usize,
}

impl PodCounts {
    fn change(&mut self, c: &Child, add: bool) {
        let step = |n: &mut usize, on: bool| {
            if on {
                *n = if add { *n + 1 } else { n.saturating_sub(1) };
            }
        };
        step(&mut self.pods, true);
        step(&mut self.active, c.active);
        step(&mut self.ready, c.active && c.ready);
    }
}

/// Whether a pod has required pod anti-affinity terms.
fn has_required_anti_affinity(pod: &Value) -> bool {
    pod["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        .as_array()
        .is_some_and(|t| !t.is_empty())
}

/// The table of a type that has no objects yet.
static EMPTY: BTreeMap<Key, Slot> = BTreeMap::new();

/// The mutable state behind the store's lock.
pub struct State {
    rv: u64,
    tables: Vec<BTreeMap<Key, Slot>>,
    pack_pods: bool,
    pods_by_node: HashMap<String, BTreeSet<Key>>,
    /// Pods bound to a node with required pod anti-affinity terms (the scheduler checks them
    /// against every pod it places).
    anti_affinity_pods: BTreeSet<Key>,
    children: HashMap<String, BTreeMap<(ResId, Key), Child>>,
    /// Per controller owner UID: how many pods it owns, how many are active, how many of
    /// those are Ready (kept with `children`, so workload controllers count without a scan).
    pod_counts: HashMap<String, PodCounts>,
    by_uid: HashMap<String, (ResId, Key)>,
    history: VecDeque<Arc<Event>>,
    history_cap: usize,
    history_floor: u64,
    record_history: bool,
    tx: broadcast::Sender<Arc<Event>>,
    /// PDB selectors and their member pods, kept current on every write.
    pub pdbs: PdbIndex,
    /// The custom resources served for the stored CRDs, kept current on every CRD write.
    pub crds: crate::crd::Served,
}

/// The store: state behind one lock, so compound operations (eviction) are serialized.
pub struct Store {
    state: Mutex<State>,
}

impl Store {
    /// A new empty store keeping `history_cap` watch events.
    pub fn new(history_cap: usize) -> Self {
        let (tx, _) = broadcast::channel(65536);
        Store {
            state: Mutex::new(State {
                rv: 1,
                tables: RESOURCES.iter().map(|_| BTreeMap::new()).collect(),
                pack_pods: false,
                pods_by_node: HashMap::new(),
                anti_affinity_pods: BTreeSet::new(),
                children: HashMap::new(),
                pod_counts: HashMap::new(),
                by_uid: HashMap::new(),
                history: VecDeque::new(),
                history_cap: history_cap.max(1),
                history_floor: 1,
                record_history: true,
                tx,
                pdbs: PdbIndex::default(),
                crds: crate::crd::Served::default(),
            }),
        }
    }

    /// Lock the state.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    fn table(&self, res: ResId) -> &BTreeMap<Key, Slot> {
        self.tables.get(res).unwrap_or(&EMPTY)
    }

    fn table_mut(&mut self, res: ResId) -> &mut BTreeMap<Key, Slot> {
        if self.tables.len() <= res {
            self.tables.resize_with(res + 1, BTreeMap::new);
        }
        &mut self.tables[res]
    }

    /// The types that have (or had) objects, built-in types first.
    pub fn types(&self) -> std::ops::Range<ResId> {
        0..self.tables.len()
    }

    /// Give the objects of type `from` to type `to` (a CRD changed its objects' description).
    pub fn move_objects(&mut self, from: ResId, to: ResId) {
        let moved = std::mem::take(self.table_mut(from));
        for key in moved.keys() {
            if let Some(e) = self
                .by_uid
                .values_mut()
                .find(|e| e.0 == from && e.1 == *key)
            {
                e.0 = to;
            }
        }
        *self.table_mut(to) = moved;
    }

    /// The current global resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// Turn history recording off (bulk load: pods are also stored packed) or on; turning it on
    /// starts history at the current RV.
    pub fn set_recording(&mut self, on: bool) {
        self.record_history = on;
        self.pack_pods = !on;
        if on {
            self.history.clear();
            self.history_floor = self.rv;
        }
    }

    /// Subscribe to live events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Events with RV > `since`, or Err(floor) when they are no longer all retained.
    pub fn events_since(&self, since: u64) -> Result<Vec<Arc<Event>>, u64> {
        if since < self.history_floor {
            return Err(self.history_floor);
        }
        let start = self.history.partition_point(|e| e.rv <= since);
        Ok(self.history.iter().skip(start).cloned().collect())
    }

    /// What a read as of resourceVersion `rv` sees differently from now, for objects of `res`
    /// (in namespace `ns` if given, at or after key `from`): each object written since `rv`, with
    /// its state at `rv` (`None` when it did not exist then). Objects not in the map are unchanged
    /// since `rv`. `Err(floor)` when the history no longer reaches back to `rv` (compacted).
    pub fn changed_since(
        &self,
        res: ResId,
        rv: u64,
        ns: Option<&str>,
        from: Option<&Key>,
    ) -> Result<BTreeMap<Key, Option<Arc<Value>>>, u64> {
        if rv < self.history_floor {
            return Err(self.history_floor);
        }
        let start = self.history.partition_point(|e| e.rv <= rv);
        let mut past: BTreeMap<Key, Option<Arc<Value>>> = BTreeMap::new();
        for ev in self.history.iter().skip(start) {
            if ev.res != res {
                continue;
            }
            let (o_ns, o_name) = (meta::namespace(&ev.object), meta::name(&ev.object));
            if ns.is_some_and(|n| n != o_ns)
                || from.is_some_and(|f| (o_ns, o_name) < (f.0.as_str(), f.1.as_str()))
            {
                continue;
            }
            past.entry((o_ns.to_string(), o_name.to_string()))
                .or_insert_with(|| match ev.ty {
                    EventType::Added => None,
                    EventType::Modified => ev.prev.clone(),
                    EventType::Deleted => ev.removed.clone(),
                });
        }
        Ok(past)
    }

    /// One object.
    pub fn get(&self, res: ResId, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.table(res)
            .get(&(ns.to_string(), name.to_string()))
            .map(Slot::value)
    }

    /// Whether an object exists (without unpacking it).
    pub fn exists(&self, res: ResId, ns: &str, name: &str) -> bool {
        self.table(res)
            .contains_key(&(ns.to_string(), name.to_string()))
    }

    /// Object by UID.
    pub fn get_by_uid(&self, uid: &str) -> Option<(ResId, Arc<Value>)> {
        let (res, key) = self.by_uid.get(uid)?;
        self.table(*res).get(key).map(|o| (*res, o.value()))
    }

    /// All objects of a type, optionally in one namespace, in key order.
    pub fn iter(
        &self,
        res: ResId,
        ns: Option<&str>,
    ) -> Box<dyn Iterator<Item = (&Key, Arc<Value>)> + '_> {
        match ns {
            None => Box::new(self.table(res).iter().map(|(k, v)| (k, v.value()))),
            Some(ns) => {
                let ns = ns.to_string();
                let start = (ns.clone(), String::new());
                Box::new(
                    self.table(res)
                        .range(start..)
                        .take_while(move |(k, _)| k.0 == ns)
                        .map(|(k, v)| (k, v.value())),
                )
            }
        }
    }

    /// Keys of all objects of a type in a namespace (or all), in order, without unpacking.
    pub fn keys(&self, res: ResId, ns: Option<&str>) -> Vec<Key> {
        match ns {
            None => self.table(res).keys().cloned().collect(),
            Some(ns) => {
                let start = (ns.to_string(), String::new());
                self.table(res)
                    .range(start..)
                    .take_while(|(k, _)| k.0 == ns)
                    .map(|(k, _)| k.clone())
                    .collect()
            }
        }
    }

    /// Keys in order from `start` (inclusive), within a namespace if given, without unpacking.
    pub fn keys_from<'a>(
        &'a self,
        res: ResId,
        ns: Option<&'a str>,
        start: Option<&Key>,
    ) -> Box<dyn Iterator<Item = &'a Key> + 'a> {
        let floor = (ns.unwrap_or("").to_string(), String::new());
        let from = match start {
            Some(s) if *s > floor => s.clone(),
            _ => floor,
        };
        let it = self.table(res).range(from..).map(|(k, _)| k);
        match ns {
            Some(ns) => Box::new(it.take_while(move |k| k.0 == ns)),
            None => Box::new(it),
        }
    }

    /// Append an object's JSON to `out` (packed objects are copied as they are). False if missing.
    pub fn write_json(&self, res: ResId, key: &Key, out: &mut Vec<u8>) -> bool {
        match self.table(res).get(key) {
            Some(Slot::Cold(b, _)) => {
                out.extend_from_slice(b);
                true
            }
            Some(Slot::Hot(v)) => serde_json::to_writer(out, &**v).is_ok(),
            None => false,
        }
    }

    /// An object's `status.phase` ("" when it has none) without unpacking it; None if missing.
    pub fn phase(&self, res: ResId, key: &Key) -> Option<std::borrow::Cow<'_, str>> {
        self.table(res).get(key).map(Slot::phase)
    }

    /// Keys of the pods bound to a node that have required pod anti-affinity terms.
    pub fn pods_with_anti_affinity(&self) -> &BTreeSet<Key> {
        &self.anti_affinity_pods
    }

    /// Keys of pods bound to a node, in key order.
    pub fn pods_on_node(&self, node: &str) -> Option<&BTreeSet<Key>> {
        self.pods_by_node.get(node)
    }

    /// Objects whose controller owner has this UID.
    pub fn children_of(&self, owner_uid: &str) -> Vec<(ResId, Arc<Value>)> {
        self.children
            .get(owner_uid)
            .map(|set| {
                set.keys()
                    .filter_map(|(r, k)| self.table(*r).get(k).map(|o| (*r, o.value())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The pods whose controller owner has this UID, counted (no scan).
    pub fn pod_counts(&self, owner_uid: &str) -> PodCounts {
        self.pod_counts.get(owner_uid).copied().unwrap_or_default()
    }

    /// Summaries of the objects whose controller owner has this UID (no unpacking).
    pub fn child_infos(&self, owner_uid: &str) -> Vec<(ResId, Key, Child)> {
        self.children
            .get(owner_uid)
            .map(|m| {
                m.iter()
                    .map(|((r, k), c)| (*r, k.clone(), c.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn index_add(&mut self, res: ResId, o: &Value) {
        let key = meta::key(o);
        if res == PODS {
            let node = meta::node_name(o);
            if !node.is_empty() {
                self.pods_by_node
                    .entry(node.to_string())
                    .or_default()
                    .insert(key.clone());
                if has_required_anti_affinity(o) {
                    self.anti_affinity_pods.insert(key.clone());
                }
            }
        }
        if let Some(owner) = meta::controller_ref(o).and_then(|r| r["uid"].as_str()) {
            let child = Child::of(o);
            if res == PODS {
                self.pod_counts
                    .entry(owner.to_string())
                    .or_default()
                    .change(&child, true);
            }
            if let Some(replaced) = self
                .children
                .entry(owner.to_string())
                .or_default()
                .insert((res, key.clone()), child)
                && res == PODS
                && let Some(n) = self.pod_counts.get_mut(owner)
            {
                n.change(&replaced, false);
            }
        }
        let uid = meta::uid(o);
        if !uid.is_empty() {
            self.by_uid.insert(uid.to_string(), (res, key));
        }
    }

    fn index_remove(&mut self, res: ResId, o: &Value) {
        let key = meta::key(o);
        if res == PODS {
            let node = meta::node_name(o);
            if let Some(set) = self.pods_by_node.get_mut(node) {
                set.remove(&key);
                if set.is_empty() {
                    self.pods_by_node.remove(node);
                }
            }
            self.anti_affinity_pods.remove(&key);
        }
        if let Some(owner) = meta::controller_ref(o).and_then(|r| r["uid"].as_str())
            && let Some(set) = self.children.get_mut(owner)
        {
            if let Some(gone) = set.remove(&(res, key.clone()))
                && res == PODS
                && let Some(n) = self.pod_counts.get_mut(owner)
            {
                n.change(&gone, false);
                if n.pods == 0 {
                    self.pod_counts.remove(owner);
                }
            }
            if set.is_empty() {
                self.children.remove(owner);
            }
        }
        self.by_uid.remove(meta::uid(o));
    }

    fn emit(&mut self, ev: Event) {
        let ev = Arc::new(ev);
        if self.record_history {
            self.history.push_back(ev.clone());
            while self.history.len() > self.history_cap {
                if let Some(old) = self.history.pop_front() {
                    self.history_floor = old.rv;
                }
            }
        }
        let _ = self.tx.send(ev);
    }

    fn after_write(&mut self, res: ResId, old: Option<&Arc<Value>>, new: Option<&Arc<Value>>) {
        if res == CRDS {
            crate::crd::sync(self, old.map(|v| &**v), new.map(|v| &**v));
        } else if res == PODS {
            self.pdbs.pod_changed(old.map(|v| &**v), new.map(|v| &**v));
        } else if res == PDBS {
            match (old, new) {
                (Some(o), Some(n)) if o["spec"]["selector"] == n["spec"]["selector"] => {}
                (_, Some(n)) => {
                    let ns = meta::namespace(n).to_string();
                    let pods: Vec<Arc<Value>> =
                        self.iter(PODS, Some(&ns)).map(|(_, p)| p).collect();
                    let pods: Vec<&Value> = pods.iter().map(|p| &**p).collect();
                    let entry = PdbIndex::build_entry(n, &pods);
                    self.pdbs.set(&ns, meta::name(n), entry);
                }
                (Some(o), None) => self.pdbs.remove(meta::namespace(o), meta::name(o)),
                (None, None) => {}
            }
        }
    }

    /// Insert a new object (the caller has validated it): stamps the next RV and emits ADDED.
    pub fn insert(&mut self, res: ResId, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let obj = Arc::new(obj);
        self.index_add(res, &obj);
        let slot = if self.pack_pods && res == PODS {
            let phase = obj["status"]["phase"].as_str().unwrap_or("");
            Slot::Cold(
                serde_json::to_vec(&*obj)
                    .unwrap_or_default()
                    .into_boxed_slice(),
                PHASES.iter().find(|p| **p == phase).copied(),
            )
        } else {
            Slot::Hot(obj.clone())
        };
        self.table_mut(res).insert(meta::key(&obj), slot);
        self.after_write(res, None, Some(&obj));
        self.emit(Event {
            rv: self.rv,
            res,
            ty: EventType::Added,
            object: obj.clone(),
            prev: None,
            removed: None,
            at: tokio::time::Instant::now(),
        });
        obj
    }

    /// Replace an existing object. A byte-identical write is a no-op: no RV bump, no event (D-0.7).
    pub fn replace(&mut self, res: ResId, mut obj: Value) -> Arc<Value> {
        let key = meta::key(&obj);
        let Some(old) = self.table(res).get(&key).map(Slot::value) else {
            return self.insert(res, obj);
        };
        obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if *old == obj {
            return old;
        }
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let obj = Arc::new(obj);
        self.index_remove(res, &old);
        self.index_add(res, &obj);
        self.table_mut(res).insert(key, Slot::Hot(obj.clone()));
        self.after_write(res, Some(&old), Some(&obj));
        self.emit(Event {
            rv: self.rv,
            res,
            ty: EventType::Modified,
            object: obj.clone(),
            prev: Some(old),
            removed: None,
            at: tokio::time::Instant::now(),
        });
        obj
    }

    /// Remove an object; the DELETED event carries its last state with the deletion's RV (W-4).
    pub fn remove(&mut self, res: ResId, ns: &str, name: &str) -> Option<Arc<Value>> {
        let key = (ns.to_string(), name.to_string());
        let old = self.table_mut(res).remove(&key)?.value();
        self.index_remove(res, &old);
        self.rv += 1;
        let mut last = (*old).clone();
        last["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let last = Arc::new(last);
        self.after_write(res, Some(&old), None);
        self.emit(Event {
            rv: self.rv,
            res,
            ty: EventType::Deleted,
            object: last.clone(),
            prev: None,
            removed: Some(old),
            at: tokio::time::Instant::now(),
        });
        Some(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::NODES;

    fn pod(name: &str, label: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default", "labels": {"l": label}}})
    }

    #[test]
    fn changed_since_gives_each_objects_state_at_the_old_version() {
        let store = Store::new(100);
        let mut st = store.lock();
        st.insert(PODS, pod("a", "1"));
        st.insert(PODS, pod("b", "1"));
        st.insert(NODES, json!({"metadata": {"name": "n1"}}));
        let at = st.rv();
        let b_then = st.get(PODS, "default", "b").unwrap();
        st.insert(PODS, pod("c", "1"));
        st.replace(PODS, pod("b", "2"));
        st.replace(PODS, pod("b", "3"));
        st.remove(PODS, "default", "b");
        st.remove(PODS, "default", "a");
        st.remove(NODES, "", "n1");
        let past = st.changed_since(PODS, at, Some("default"), None).unwrap();
        assert_eq!(
            past.len(),
            3,
            "a, b and c changed; the node is another type"
        );
        assert_eq!(
            past[&("default".into(), "c".into())],
            None,
            "c did not exist"
        );
        assert_eq!(
            past[&("default".into(), "b".into())].as_deref(),
            Some(&*b_then)
        );
        let a = past[&("default".into(), "a".into())].clone().unwrap();
        assert_eq!(meta::rv(&a), "2", "a as stored, not its deletion record");
        let from = ("default".to_string(), "b".to_string());
        let later = st.changed_since(PODS, at, None, Some(&from)).unwrap();
        assert_eq!(
            later.keys().map(|k| k.1.as_str()).collect::<Vec<_>>(),
            ["b", "c"]
        );
        assert!(
            st.changed_since(PODS, st.rv(), None, None)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn owner_pod_counts_follow_every_write_and_packed_pods_keep_their_phase() {
        let store = Store::new(100);
        let mut st = store.lock();
        let owned = |name: &str, phase: &str, ready: bool| {
            let mut p = pod(name, "1");
            p["metadata"]["ownerReferences"] =
                json!([{"kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true}]);
            p["status"] = json!({"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]});
            p
        };
        st.set_recording(false);
        st.insert(PODS, owned("a", "Running", true));
        st.insert(PODS, owned("b", "Running", false));
        st.insert(PODS, owned("c", "Succeeded", false));
        st.set_recording(true);
        let n = st.pod_counts("u1");
        assert_eq!((n.pods, n.active, n.ready), (3, 2, 1));
        let key = |n: &str| ("default".to_string(), n.to_string());
        assert_eq!(st.phase(PODS, &key("c")).as_deref(), Some("Succeeded"));
        assert_eq!(st.phase(PODS, &key("zz")), None);
        st.replace(PODS, owned("b", "Running", true));
        let n = st.pod_counts("u1");
        assert_eq!((n.pods, n.active, n.ready), (3, 2, 2));
        st.remove(PODS, "default", "a");
        st.remove(PODS, "default", "c");
        let n = st.pod_counts("u1");
        assert_eq!((n.pods, n.active, n.ready), (1, 1, 1));
        st.remove(PODS, "default", "b");
        assert_eq!(st.pod_counts("u1"), PodCounts::default());
    }

    #[test]
    fn changed_since_refuses_versions_the_history_no_longer_reaches() {
        let store = Store::new(2);
        let mut st = store.lock();
        let at = st.rv();
        for name in ["a", "b", "c"] {
            st.insert(PODS, pod(name, "1"));
        }
        assert!(st.changed_since(PODS, at, None, None).is_err());
        assert!(st.changed_since(PODS, at + 1, None, None).is_ok());
    }
}
