//! Where would the replacements go? A pure simulation, from what was read, of the scheduler
//! placing the replacements of the pods a drain evicts, all together, first fit, largest first
//! (as cluster-autoscaler's binpacking estimator does), on the nodes that stay schedulable (not
//! a drain target, not cordoned, Ready).
//!
//! A node is checked with the default scheduler's filters, in its order, and the same reasons:
//! NoSchedule/NoExecute taints against tolerations, `nodeSelector` and required node affinity,
//! host ports, pod count and requests against allocatable minus the requests already there,
//! topology spread constraints with `whenUnsatisfiable: DoNotSchedule` (any topology key: every
//! node with the key is a domain, drained and cordoned ones included, as for the scheduler), and
//! required pod anti-affinity (the pod's own and the running pods'). What is not evaluated is
//! named per pod (required pod affinity, a `namespaceSelector`, PersistentVolumeClaims, another
//! scheduler, scheduling gates, pod-level resources, resource claims): such a pod is still
//! placed by everything else, so "does not fit" stays certain and "fits" is conditional. Nothing
//! is preempted: a replacement that would only fit by preempting lower-priority pods counts as
//! not fitting.
//!
//! One file of about 620 lines on purpose (what is kept of each pod is in [`crate::resident`]):
//! the filters are one engine over private state (the slots, the spread domains, a pod's
//! context); split, that state would have to be visible to the whole crate, and the scheduler's
//! filter order would be spread over several files.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, PodAffinityTerm, PodSpec, Taint};
use sched::diagnosis::{self, NodeStatus};
use sched::interpod::{self, Spread, selector_matches, selector_with_keys, spread_counts};
use sched::resources::{self, Resources};

use crate::resident::required_anti_affinity;
pub use crate::resident::{Resident, Residents};

/// Where one replacement went, or why it went nowhere.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The node, when it fits.
    pub node: Option<String>,
    /// The scheduler's message when it fits nowhere (`0/5 nodes are available: ...`).
    pub fit_error: Option<String>,
    /// Every node's status when it fits nowhere.
    pub statuses: Vec<NodeStatus>,
    /// What was not evaluated (`pod affinity`, `PersistentVolumeClaim data-db-0`, ...).
    pub not_checked: Vec<String>,
}

/// One node. What does not change as replacements are placed is shared by the engine's clones
/// (the trial placements clone the engine; B4 has 1,000 nodes).
#[derive(Clone)]
struct Slot {
    name: Arc<str>,
    labels: Arc<BTreeMap<String, String>>,
    taints: Arc<[Taint]>,
    allocatable: Arc<Resources>,
    /// Requests of the pods there before any replacement.
    requested_before: Arc<Resources>,
    requested: Resources,
    pods: i128,
    /// Pods there before any replacement.
    pods_before: i128,
    /// Why it takes no replacement, as the scheduler would say it.
    closed: Option<Arc<str>>,
    /// Indexes into the engine's residents ([`Engine::resident`]).
    residents: Vec<usize>,
}

/// The cluster as the replacements will find it. Cloning it (once per trial wave) copies the
/// nodes' running totals, not the pods: the pods read from the cluster are shared.
#[derive(Clone)]
pub struct Engine {
    slots: Vec<Slot>,
    /// The pods read from the cluster (indexes `0..base.len()`), shared by every clone.
    base: Arc<Residents>,
    /// The replacements placed so far (indexes from `base.len()` on).
    added: Vec<Resident>,
    /// Residents with required anti-affinity terms, with their slot.
    with_anti_affinity: Vec<(usize, usize)>,
}

/// See [`Engine::context`].
struct Context {
    spread: Vec<Spread>,
    own: Vec<(String, BTreeSet<String>)>,
    existing: BTreeSet<(String, String)>,
}

/// The scheduler's reason for a not-Ready node (the node lifecycle controller's taint).
const NOT_READY: &str = "node(s) had untolerated taint {node.kubernetes.io/not-ready: }";

/// The namespaces an affinity term covers: `None` for all (an empty `namespaceSelector`);
/// `Err` when a non-empty `namespaceSelector` would need the namespaces' labels.
fn term_namespaces(term: &PodAffinityTerm, own: &str) -> Result<Option<BTreeSet<String>>, ()> {
    let listed: BTreeSet<String> = term.namespaces.iter().flatten().cloned().collect();
    match &term.namespace_selector {
        None if listed.is_empty() => Ok(Some(BTreeSet::from([own.to_string()]))),
        None => Ok(Some(listed)),
        Some(s)
            if s.match_labels.as_ref().is_none_or(|m| m.is_empty())
                && s.match_expressions.as_ref().is_none_or(|e| e.is_empty()) =>
        {
            Ok(None)
        }
        Some(_) => Err(()),
    }
}

/// Whether `term` (of a pod in `own_ns` with `own_labels`) selects a pod in `ns` with `labels`.
fn term_selects(
    term: &PodAffinityTerm,
    own_ns: &str,
    own_labels: &BTreeMap<String, String>,
    ns: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    let Ok(namespaces) = term_namespaces(term, own_ns) else {
        return false;
    };
    if namespaces.is_some_and(|set| !set.contains(ns)) {
        return false;
    }
    let sel = selector_with_keys(
        term.label_selector.as_ref(),
        term.match_label_keys.as_ref(),
        term.mismatch_label_keys.as_ref(),
        own_labels,
    );
    selector_matches(sel.as_ref(), labels)
}

/// What the engine does not evaluate in a pod's spec.
fn not_checked(spec: &PodSpec) -> Vec<String> {
    let mut out = Vec::new();
    let affinity = spec.affinity.as_ref();
    if affinity
        .and_then(|a| a.pod_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_some_and(|t| !t.is_empty())
    {
        out.push("pod affinity".to_string());
    }
    if required_anti_affinity(spec)
        .iter()
        .any(|t| term_namespaces(t, "").is_err())
    {
        out.push("pod anti-affinity with a namespaceSelector".to_string());
    }
    for v in spec.volumes.iter().flatten() {
        if let Some(c) = &v.persistent_volume_claim {
            out.push(format!("PersistentVolumeClaim {}", c.claim_name));
        }
        if v.ephemeral.is_some() {
            out.push(format!("ephemeral volume {}", v.name));
        }
    }
    if let Some(s) = spec
        .scheduler_name
        .as_deref()
        .filter(|s| !s.is_empty() && *s != "default-scheduler")
    {
        out.push(format!("scheduler {s}"));
    }
    if spec
        .scheduling_gates
        .as_ref()
        .is_some_and(|g| !g.is_empty())
    {
        out.push("scheduling gates".to_string());
    }
    if spec.resources.is_some() {
        out.push("pod-level resources".to_string());
    }
    if spec.resource_claims.as_ref().is_some_and(|c| !c.is_empty()) {
        out.push("resource claims".to_string());
    }
    out
}

/// Order of resource reasons: the scheduler checks cpu, memory, ephemeral-storage, then the
/// others.
fn resource_rank(name: &str) -> (u8, &str) {
    match name {
        resources::CPU => (0, name),
        resources::MEMORY => (1, name),
        resources::EPHEMERAL_STORAGE => (2, name),
        _ => (3, name),
    }
}

impl Engine {
    /// The cluster: every node, the pods bound to nodes (`residents`, without the pods that
    /// leave), and the drain's target nodes. `Err` names an allocatable that does not parse.
    pub fn new(
        nodes: &[Node],
        residents: Vec<Resident>,
        targets: &BTreeSet<String>,
    ) -> Result<Engine, String> {
        Engine::sharing(
            nodes,
            Arc::new(residents.into_iter().collect()),
            |_| true,
            targets,
        )
    }

    /// [`Engine::new`] over residents shared with the caller (no copy of them is made), of
    /// which only those `stays` keeps count (the pods that leave are left out).
    pub fn sharing(
        nodes: &[Node],
        residents: Arc<Residents>,
        stays: impl Fn(&Resident) -> bool,
        targets: &BTreeSet<String>,
    ) -> Result<Engine, String> {
        let mut slots: Vec<Slot> = Vec::new();
        let mut index: std::collections::HashMap<&str, usize> = Default::default();
        let mut sorted: Vec<&Node> = nodes.iter().collect();
        sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        for node in sorted {
            let name = node.metadata.name.clone().unwrap_or_default();
            let allocatable =
                resources::allocatable(node).map_err(|e| format!("node {name}: {e}"))?;
            let closed = if targets.contains(&name) || sched::nodes::is_cordoned(node) {
                Some(diagnosis::UNSCHEDULABLE.into())
            } else if !sched::nodes::is_ready(node) {
                Some(NOT_READY.into())
            } else {
                None
            };
            index.insert(
                node.metadata.name.as_deref().unwrap_or_default(),
                slots.len(),
            );
            slots.push(Slot {
                labels: Arc::new(sched::nodes::labels(node)),
                taints: node
                    .spec
                    .as_ref()
                    .and_then(|s| s.taints.clone())
                    .unwrap_or_default()
                    .into(),
                allocatable: Arc::new(allocatable),
                requested_before: Arc::default(),
                requested: Resources::default(),
                pods: 0,
                pods_before: 0,
                closed,
                residents: Vec::new(),
                name: name.into(),
            });
        }
        let mut with_anti_affinity = Vec::new();
        for (i, r) in residents.iter().enumerate() {
            if !stays(r) {
                continue;
            }
            if let Some(&s) = index.get(&*r.node) {
                let slot = &mut slots[s];
                slot.requested.add(&r.requests);
                slot.pods += 1;
                slot.residents.push(i);
                if !r.anti_affinity().is_empty() {
                    with_anti_affinity.push((i, s));
                }
            }
        }
        for s in &mut slots {
            s.requested_before = Arc::new(s.requested.clone());
            s.pods_before = s.pods;
        }
        Ok(Engine {
            slots,
            base: residents,
            added: Vec::new(),
            with_anti_affinity,
        })
    }

    /// Resident `i`: a pod read from the cluster, or a replacement placed.
    fn resident(&self, i: usize) -> &Resident {
        match i.checked_sub(self.base.len()) {
            None => &self.base[i],
            Some(j) => &self.added[j],
        }
    }

    /// Names of the nodes that take replacements.
    pub(crate) fn open_nodes(&self) -> Vec<String> {
        self.slots
            .iter()
            .filter(|s| s.closed.is_none())
            .map(|s| s.name.to_string())
            .collect()
    }

    /// Whether `spec` may run on the slot at all (taints and node affinity), ignoring room.
    fn admits(&self, s: &Slot, spec: &PodSpec) -> bool {
        let tolerations = spec.tolerations.as_deref().unwrap_or_default();
        sched::nodes::untolerated_taint(&s.taints, tolerations).is_none()
            && sched::nodes::affinity_matches(spec, &s.labels, &s.name)
    }

    /// The open nodes a pod may run on (taints, node affinity), and what they had free of each
    /// resource before any replacement: for messages.
    pub(crate) fn room_for(&self, spec: &PodSpec) -> (usize, Resources) {
        let mut free = Resources::default();
        let mut n = 0;
        for s in self.slots.iter().filter(|s| s.closed.is_none()) {
            if !self.admits(s, spec) {
                continue;
            }
            n += 1;
            let mut f = Resources::clone(&s.allocatable);
            f.sub(&s.requested_before);
            for v in f.0.values_mut() {
                *v = (*v).max(0);
            }
            f.0.insert(
                resources::PODS.to_string(),
                (s.allocatable.get(resources::PODS) - s.pods_before).max(0),
            );
            free.add(&f);
        }
        (n, free)
    }

    /// What the inter-pod checks of one replacement need, computed once for every node:
    /// topology spread counts per domain, the domains the pod's own anti-affinity rules out,
    /// and the domains running pods' anti-affinity rules out for it.
    fn context(&self, spec: &PodSpec, me: &Resident) -> Context {
        let (ns, labels) = (&*me.namespace, &me.labels);
        let tolerations = spec.tolerations.as_deref().unwrap_or_default();
        let constraints: Vec<_> = spec
            .topology_spread_constraints
            .iter()
            .flatten()
            .filter(|c| c.when_unsatisfiable == "DoNotSchedule")
            .collect();
        let mut spread = Vec::new();
        for c in &constraints {
            let sel = selector_with_keys(
                c.label_selector.as_ref(),
                c.match_label_keys.as_ref(),
                None,
                labels,
            );
            let mut counts: BTreeMap<String, i64> = BTreeMap::new();
            for s in &self.slots {
                // Domains: nodes with every constraint's key, that the pod's node affinity
                // accepts (nodeAffinityPolicy Honor, the default) and, with nodeTaintsPolicy
                // Honor, whose taints it tolerates. Pods being deleted do not count.
                if !constraints
                    .iter()
                    .all(|c| s.labels.contains_key(&c.topology_key))
                {
                    continue;
                }
                if c.node_affinity_policy.as_deref() != Some("Ignore")
                    && !sched::nodes::affinity_matches(spec, &s.labels, &s.name)
                {
                    continue;
                }
                if c.node_taints_policy.as_deref() == Some("Honor")
                    && sched::nodes::untolerated_taint(&s.taints, tolerations).is_some()
                {
                    continue;
                }
                let n = s
                    .residents
                    .iter()
                    .map(|&i| self.resident(i))
                    .filter(|r| !r.terminating && *r.namespace == *ns)
                    .filter(|r| spread_counts(sel.as_ref(), &r.labels))
                    .count() as i64;
                *counts.entry(s.labels[&c.topology_key].clone()).or_default() += n;
            }
            spread.push(Spread::new(
                &c.topology_key,
                counts,
                c.min_domains,
                selector_matches(sel.as_ref(), labels),
                c.max_skew,
            ));
        }
        let mut own = Vec::new();
        for term in required_anti_affinity(spec) {
            if term_namespaces(&term, ns).is_err() {
                continue;
            }
            let values: BTreeSet<String> = self
                .slots
                .iter()
                .filter_map(|s| {
                    let v = s.labels.get(&term.topology_key)?;
                    s.residents
                        .iter()
                        .map(|&i| self.resident(i))
                        .any(|r| term_selects(&term, ns, labels, &r.namespace, &r.labels))
                        .then(|| v.clone())
                })
                .collect();
            own.push((term.topology_key.clone(), values));
        }
        let mut existing = BTreeSet::new();
        for &(i, at) in &self.with_anti_affinity {
            let r = self.resident(i);
            for term in r.anti_affinity() {
                if let Some(v) = self.slots[at].labels.get(&term.topology_key)
                    && term_selects(term, &r.namespace, &r.labels, ns, labels)
                {
                    existing.insert((term.topology_key.clone(), v.clone()));
                }
            }
        }
        Context {
            spread,
            own,
            existing,
        }
    }

    /// Topology spread and required pod anti-affinity on slot `at`, in the scheduler's order.
    fn inter_pod(&self, at: usize, ctx: &Context) -> Result<(), NodeStatus> {
        let node_labels = &self.slots[at].labels;
        interpod::spread_fits(&ctx.spread, node_labels)?;
        interpod::anti_affinity_fits(&ctx.own, &ctx.existing, node_labels)
    }

    /// The scheduler's filters for one node, in order; the first failing gives the status.
    fn filter(
        &self,
        at: usize,
        spec: &PodSpec,
        me: &Resident,
        ctx: &Context,
    ) -> Result<(), NodeStatus> {
        let s = &self.slots[at];
        let unresolvable = |r: String| {
            Err(NodeStatus {
                reasons: vec![r],
                resolvable: false,
            })
        };
        if let Some(r) = &s.closed {
            return unresolvable(r.to_string());
        }
        let tolerations = spec.tolerations.as_deref().unwrap_or_default();
        if let Some(t) = sched::nodes::untolerated_taint(&s.taints, tolerations) {
            return unresolvable(sched::nodes::taint_reason(t));
        }
        if !sched::nodes::affinity_matches(spec, &s.labels, &s.name) {
            return unresolvable(diagnosis::NODE_AFFINITY.to_string());
        }
        if !me.host_ports().is_empty()
            && s.residents.iter().any(|&i| {
                self.resident(i)
                    .host_ports()
                    .iter()
                    .any(|p| me.host_ports().contains(p))
            })
        {
            return Err(NodeStatus {
                reasons: vec![diagnosis::HOST_PORTS.to_string()],
                resolvable: true,
            });
        }
        let mut reasons = Vec::new();
        if s.pods + 1 > s.allocatable.get(resources::PODS) {
            reasons.push(diagnosis::TOO_MANY_PODS.to_string());
        }
        let mut names: Vec<&String> = me.requests.0.keys().collect();
        names.sort_by_key(|n| resource_rank(n));
        for name in names {
            let want = me.requests.get(name);
            if name != resources::PODS
                && want > 0
                && want > s.allocatable.get(name) - s.requested.get(name)
            {
                reasons.push(diagnosis::insufficient(name));
            }
        }
        if !reasons.is_empty() {
            return Err(NodeStatus {
                reasons,
                resolvable: true,
            });
        }
        self.inter_pod(at, ctx)
    }

    /// Place one replacement of `pod` on the first node (by name) that takes it, and count it
    /// there.
    pub fn place(&mut self, pod: &Pod) -> Result<Outcome, String> {
        self.place_by(pod, false)
    }

    /// [`Self::place`] on the node with the most CPU free among those that fit (then the first
    /// by name), as a spreading scheduler would choose: kube-scheduler's LeastAllocated score,
    /// kubesim's least loaded node. Placing pods smallest first this way leaves the room most
    /// cut up, so what still fits after it fits whatever node the scheduler picks.
    pub fn place_spread(&mut self, pod: &Pod) -> Result<Outcome, String> {
        self.place_by(pod, true)
    }

    fn place_by(&mut self, pod: &Pod, spread: bool) -> Result<Outcome, String> {
        let mut me = Resident::of(pod)?;
        me.uid = Default::default();
        me.terminating = false;
        let mut spec = pod.spec.clone().unwrap_or_default();
        spec.node_name = None;
        let ctx = self.context(&spec, &me);
        let mut statuses = Vec::new();
        let mut chosen: Option<usize> = None;
        let free = |s: &Slot| s.allocatable.get(resources::CPU) - s.requested.get(resources::CPU);
        for at in 0..self.slots.len() {
            match self.filter(at, &spec, &me, &ctx) {
                Ok(()) => {
                    if !spread {
                        chosen = Some(at);
                        break;
                    }
                    if chosen.is_none_or(|c| free(&self.slots[at]) > free(&self.slots[c])) {
                        chosen = Some(at);
                    }
                }
                Err(s) => statuses.push(s),
            }
        }
        let not_checked = not_checked(&spec);
        let Some(at) = chosen else {
            let fit_error = diagnosis::fit_error(
                &statuses,
                spec.preemption_policy.as_deref() == Some("Never"),
            );
            return Ok(Outcome {
                node: None,
                fit_error: Some(fit_error),
                statuses,
                not_checked,
            });
        };
        let slot = &mut self.slots[at];
        slot.requested.add(&me.requests);
        slot.pods += 1;
        me.node = slot.name.clone();
        let index = self.base.len() + self.added.len();
        slot.residents.push(index);
        if !me.anti_affinity().is_empty() {
            self.with_anti_affinity.push((index, at));
        }
        let node = slot.name.to_string();
        self.added.push(me);
        Ok(Outcome {
            node: Some(node),
            fit_error: None,
            statuses: Vec::new(),
            not_checked,
        })
    }
}

/// What a replacement's topology spread constraints (`DoNotSchedule`) cannot be checked
/// against: other pods that leave in the same drain and that the constraint counts. The plan
/// counts them all gone, but they are evicted one by one while the first replacements are
/// scheduled, so the counts pass through states in between and where a replacement goes
/// depends on the order of the evictions (seen on the real scheduler: of two pods leaving zone
/// a under a zone spread the plan found no room for, one replacement was bound to zone b
/// while the other pod was still counted in zone a).
pub fn spread_order_dependent(pod: &Pod, leaving: &[&Pod]) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let mut keys = Vec::new();
    let mut peers = 0;
    for c in spec.topology_spread_constraints.iter().flatten() {
        if c.when_unsatisfiable != "DoNotSchedule" {
            continue;
        }
        let sel = selector_with_keys(
            c.label_selector.as_ref(),
            c.match_label_keys.as_ref(),
            None,
            &labels,
        );
        let n = leaving
            .iter()
            .filter(|p| p.metadata.uid != pod.metadata.uid || p.metadata.name != pod.metadata.name)
            .filter(|p| p.metadata.namespace.as_deref().unwrap_or_default() == ns)
            .filter(|p| spread_counts(sel.as_ref(), &p.metadata.labels.clone().unwrap_or_default()))
            .count();
        if n > 0 {
            keys.push(c.topology_key.clone());
            peers = peers.max(n);
        }
    }
    if keys.is_empty() {
        return None;
    }
    Some(format!(
        "topology spread by {} while {} it counts {} (the result depends on the order of the evictions)",
        keys.join(", "),
        if peers == 1 {
            "1 other pod"
        } else {
            "other pods"
        },
        if peers == 1 {
            "leaves too"
        } else {
            "leave too"
        },
    ))
}

/// Sort key for "largest first": CPU, then memory, descending.
pub(crate) fn size_key(pod: &Pod) -> (i128, i128) {
    let r = pod
        .spec
        .as_ref()
        .and_then(|s| resources::pod_requests(s).ok())
        .unwrap_or_default();
    (-r.get(resources::CPU), -r.get(resources::MEMORY))
}
