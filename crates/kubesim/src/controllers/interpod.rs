//! The default scheduler's filters that look at other pods, as kube-scheduler 1.33 runs them:
//! NodePorts (a host port already in use on the node), PodTopologySpread (constraints with
//! `whenUnsatisfiable: DoNotSchedule`) and InterPodAffinity (the pod's required pod affinity,
//! its required pod anti-affinity, then the running pods' required anti-affinity), with the real
//! reasons. What a pod needs is computed once per pod and scheduling pass ([`Context::new`]);
//! pods bound earlier in the pass count.
//!
//! Semantics followed (`pkg/scheduler/framework/plugins/podtopologyspread` and
//! `interpodaffinity`): a spread domain is every node with all of the pod's constraints'
//! topology keys that its node affinity accepts (`nodeAffinityPolicy: Honor`, the default) and,
//! with `nodeTaintsPolicy: Honor`, whose taints it tolerates; pods being deleted do not count;
//! `minDomains` makes the global minimum 0 when fewer domains exist. A nil label selector
//! matches nothing; `matchLabelKeys` (and `mismatchLabelKeys` for affinity terms) add the pod's
//! own values. Affinity terms cover the pod's namespace, the listed ones, or those a
//! `namespaceSelector` selects by the namespaces' labels (`{}`: all).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{PodAffinityTerm, PodSpec, Taint, TopologySpreadConstraint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use sched::diagnosis::NodeStatus;
use sched::interpod::{self, Spread, selector_matches, selector_with_keys, spread_counts};
use serde_json::Value;

use crate::meta;
use crate::resources::{NAMESPACES, PODS};
use crate::store::State;

pub use sched::diagnosis::{HOST_PORTS, POD_AFFINITY};

/// A node as these filters see it.
pub struct NodeView<'a> {
    /// Name.
    pub name: &'a str,
    /// Labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Taints.
    pub taints: &'a [Taint],
}

/// A running pod, as these filters need it.
struct Other {
    namespace: String,
    labels: BTreeMap<String, String>,
    terminating: bool,
}

fn other(p: &Value) -> Other {
    Other {
        namespace: meta::namespace(p).to_string(),
        labels: meta::labels(p),
        terminating: meta::is_terminating(p),
    }
}

/// A required affinity term of a pod in `own_ns` with `own_labels`, ready to match pods.
struct Term {
    key: String,
    selector: Option<LabelSelector>,
    /// `None`: every namespace.
    namespaces: Option<BTreeSet<String>>,
}

impl Term {
    fn new(
        st: &State,
        t: &PodAffinityTerm,
        own_ns: &str,
        own_labels: &BTreeMap<String, String>,
    ) -> Term {
        let mut listed: BTreeSet<String> = t.namespaces.iter().flatten().cloned().collect();
        let namespaces = match &t.namespace_selector {
            None if listed.is_empty() => Some(BTreeSet::from([own_ns.to_string()])),
            None => Some(listed),
            Some(s)
                if s.match_labels.as_ref().is_none_or(|m| m.is_empty())
                    && s.match_expressions.as_ref().is_none_or(|e| e.is_empty()) =>
            {
                None
            }
            Some(s) => {
                for (_, ns) in st.iter(NAMESPACES, None) {
                    if selector_matches(Some(s), &meta::labels(&ns)) {
                        listed.insert(meta::name(&ns).to_string());
                    }
                }
                Some(listed)
            }
        };
        Term {
            key: t.topology_key.clone(),
            selector: selector_with_keys(
                t.label_selector.as_ref(),
                t.match_label_keys.as_ref(),
                t.mismatch_label_keys.as_ref(),
                own_labels,
            ),
            namespaces,
        }
    }

    fn selects(&self, ns: &str, labels: &BTreeMap<String, String>) -> bool {
        self.namespaces.as_ref().is_none_or(|set| set.contains(ns))
            && selector_matches(self.selector.as_ref(), labels)
    }
}

fn required_terms(spec: &PodSpec, anti: bool) -> Vec<PodAffinityTerm> {
    let a = spec.affinity.as_ref();
    let terms = if anti {
        a.and_then(|a| a.pod_anti_affinity.as_ref()).and_then(|x| {
            x.required_during_scheduling_ignored_during_execution
                .clone()
        })
    } else {
        a.and_then(|a| a.pod_affinity.as_ref()).and_then(|x| {
            x.required_during_scheduling_ignored_during_execution
                .clone()
        })
    };
    terms.unwrap_or_default()
}

/// Host ports of a pod's containers, as (protocol, port).
pub fn host_ports(spec: &Value) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for list in [&spec["containers"], &spec["initContainers"]] {
        for c in list.as_array().into_iter().flatten() {
            for p in c["ports"].as_array().into_iter().flatten() {
                if let Some(port) = p["hostPort"].as_i64().filter(|h| *h > 0) {
                    let proto = p["protocol"].as_str().unwrap_or("TCP").to_string();
                    out.push((proto, port));
                }
            }
        }
    }
    out
}

/// NodePorts: whether a pod on `node` uses one of `ports`.
pub fn ports_taken(st: &State, node: &str, ports: &[(String, i64)]) -> bool {
    st.pods_on_node(node).into_iter().flatten().any(|k| {
        st.get(PODS, &k.0, &k.1).is_some_and(|p| {
            !meta::is_terminal(&p) && host_ports(&p["spec"]).iter().any(|hp| ports.contains(hp))
        })
    })
}

/// What the inter-pod filters need to know for one pod in one pass.
pub struct Context {
    spread: Vec<Spread>,
    /// Required pod affinity: the terms' keys, the (key, value) pairs with pods matching all
    /// terms, and whether the pod matches all its own terms (the first of a group may go
    /// anywhere when no pod matches yet).
    affinity: Vec<String>,
    affinity_pairs: BTreeSet<(String, String)>,
    affinity_self: bool,
    /// The pod's required anti-affinity: per term, its key and the values where a pod it
    /// selects runs.
    anti: Vec<(String, BTreeSet<String>)>,
    /// (key, value) pairs where a running pod's required anti-affinity selects this pod.
    existing: BTreeSet<(String, String)>,
}

/// Whether the pod has anything these filters check or a running pod has required
/// anti-affinity (most often not: then nothing is computed).
pub fn needed(st: &State, spec: &PodSpec) -> bool {
    spec.topology_spread_constraints
        .iter()
        .flatten()
        .any(|c| c.when_unsatisfiable == "DoNotSchedule")
        || !required_terms(spec, false).is_empty()
        || !required_terms(spec, true).is_empty()
        || !st.pods_with_anti_affinity().is_empty()
}

impl Context {
    /// `None` when the pod has nothing these filters check and no running pod has required
    /// anti-affinity (the common case: nothing to compute).
    pub fn new(st: &State, nodes: &[NodeView<'_>], spec: &PodSpec, pod: &Value) -> Option<Context> {
        let constraints: Vec<&TopologySpreadConstraint> = spec
            .topology_spread_constraints
            .iter()
            .flatten()
            .filter(|c| c.when_unsatisfiable == "DoNotSchedule")
            .collect();
        let affinity_terms = required_terms(spec, false);
        let anti_terms = required_terms(spec, true);
        if constraints.is_empty()
            && affinity_terms.is_empty()
            && anti_terms.is_empty()
            && st.pods_with_anti_affinity().is_empty()
        {
            return None;
        }
        let ns = meta::namespace(pod);
        let labels = meta::labels(pod);
        let node_labels: BTreeMap<&str, &BTreeMap<String, String>> =
            nodes.iter().map(|n| (n.name, n.labels)).collect();
        // Every running pod by node, read once.
        let need_all =
            !constraints.is_empty() || !affinity_terms.is_empty() || !anti_terms.is_empty();
        let mut by_node: Vec<Vec<Other>> = Vec::new();
        if need_all {
            for n in nodes {
                let pods = st
                    .pods_on_node(n.name)
                    .into_iter()
                    .flatten()
                    .filter_map(|k| st.get(PODS, &k.0, &k.1))
                    .filter(|p| !meta::is_terminal(p))
                    .map(|p| other(&p))
                    .collect();
                by_node.push(pods);
            }
        }
        let tolerations = spec.tolerations.as_deref().unwrap_or_default();
        let mut spread = Vec::new();
        for c in &constraints {
            let sel = selector_with_keys(
                c.label_selector.as_ref(),
                c.match_label_keys.as_ref(),
                None,
                &labels,
            );
            let mut counts: BTreeMap<String, i64> = BTreeMap::new();
            for (i, n) in nodes.iter().enumerate() {
                if !constraints
                    .iter()
                    .all(|c| n.labels.contains_key(&c.topology_key))
                {
                    continue;
                }
                if c.node_affinity_policy.as_deref() != Some("Ignore")
                    && !sched::nodes::affinity_matches(spec, n.labels, n.name)
                {
                    continue;
                }
                if c.node_taints_policy.as_deref() == Some("Honor")
                    && sched::nodes::untolerated_taint(n.taints, tolerations).is_some()
                {
                    continue;
                }
                let here = by_node[i]
                    .iter()
                    .filter(|o| !o.terminating && o.namespace == ns)
                    .filter(|o| spread_counts(sel.as_ref(), &o.labels))
                    .count() as i64;
                *counts.entry(n.labels[&c.topology_key].clone()).or_default() += here;
            }
            spread.push(Spread::new(
                &c.topology_key,
                counts,
                c.min_domains,
                selector_matches(sel.as_ref(), &labels),
                c.max_skew,
            ));
        }
        let terms: Vec<Term> = affinity_terms
            .iter()
            .map(|t| Term::new(st, t, ns, &labels))
            .collect();
        let mut affinity_pairs = BTreeSet::new();
        for (i, n) in nodes.iter().enumerate().filter(|_| !terms.is_empty()) {
            if by_node[i]
                .iter()
                .any(|o| terms.iter().all(|t| t.selects(&o.namespace, &o.labels)))
            {
                for t in &terms {
                    if let Some(v) = n.labels.get(&t.key) {
                        affinity_pairs.insert((t.key.clone(), v.clone()));
                    }
                }
            }
        }
        let affinity_self = terms.iter().all(|t| t.selects(ns, &labels));
        let mut anti = Vec::new();
        for t in &anti_terms {
            let term = Term::new(st, t, ns, &labels);
            let values = nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| {
                    let v = n.labels.get(&term.key)?;
                    by_node[i]
                        .iter()
                        .any(|o| term.selects(&o.namespace, &o.labels))
                        .then(|| v.clone())
                })
                .collect();
            anti.push((term.key, values));
        }
        let mut existing = BTreeSet::new();
        for k in st.pods_with_anti_affinity() {
            let Some(p) = st.get(PODS, &k.0, &k.1) else {
                continue;
            };
            let Some(at) = node_labels.get(meta::node_name(&p)) else {
                continue;
            };
            let Ok(other_spec) = serde_json::from_value::<PodSpec>(p["spec"].clone()) else {
                continue;
            };
            let (other_ns, other_labels) = (meta::namespace(&p), meta::labels(&p));
            for t in required_terms(&other_spec, true) {
                let term = Term::new(st, &t, other_ns, &other_labels);
                if let Some(v) = at.get(&term.key)
                    && term.selects(ns, &labels)
                {
                    existing.insert((term.key.clone(), v.clone()));
                }
            }
        }
        Some(Context {
            spread,
            affinity: terms.into_iter().map(|t| t.key).collect(),
            affinity_pairs,
            affinity_self,
            anti,
            existing,
        })
    }

    /// PodTopologySpread, then InterPodAffinity, for one node.
    pub fn check(&self, labels: &BTreeMap<String, String>) -> Result<(), NodeStatus> {
        let fail = |r: &str, resolvable: bool| {
            Err(NodeStatus {
                reasons: vec![r.to_string()],
                resolvable,
            })
        };
        interpod::spread_fits(&self.spread, labels)?;
        if !self.affinity.is_empty() {
            let mut all = true;
            for key in &self.affinity {
                match labels.get(key) {
                    None => return fail(POD_AFFINITY, false),
                    Some(v) => all &= self.affinity_pairs.contains(&(key.clone(), v.clone())),
                }
            }
            // The first of a group with affinity to itself may go anywhere.
            let first_of_group = self.affinity_pairs.is_empty() && self.affinity_self;
            if !(all || first_of_group) {
                return fail(POD_AFFINITY, false);
            }
        }
        interpod::anti_affinity_fits(&self.anti, &self.existing, labels)
    }
}
