//! Loads a scenario into the store through the back door: objects are created directly in
//! their steady state (pods Running and Ready, K-5) without watch history.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{PodSpec, Taint};
use sched::resources::Resources;
use serde_json::{Value, json};

use crate::api::prepare_create;
use crate::meta::{self, Key};
use crate::objects::{self, PodParams};
use crate::resources::{
    DAEMONSETS, DEPLOYMENTS, NAMESPACES, NODES, PDBS, PODS, REPLICASETS, STATEFULSETS,
};
use crate::scenario::{IntOrPercent, Scenario, WorkloadKind};
use crate::scheduling;
use crate::store::State;

/// A node as the builder fills it.
#[derive(Default)]
struct Slot {
    cap: usize,
    pods: usize,
    labels: BTreeMap<String, String>,
    taints: Vec<Taint>,
    allocatable: Resources,
    used: Resources,
}

impl Slot {
    /// Whether an unpinned pod may go here: room for one more pod, its taints tolerated, its
    /// node selector and required affinity matched, and its requests within what is free.
    fn fits(&self, name: &str, spec: &PodSpec, reqs: &Resources) -> bool {
        let tolerations = spec.tolerations.as_deref().unwrap_or_default();
        self.pods < self.cap
            && sched::nodes::untolerated_taint(&self.taints, tolerations).is_none()
            && sched::nodes::affinity_matches(spec, &self.labels, name)
            && reqs.0.iter().all(|(r, want)| {
                r == sched::resources::PODS || *want <= self.allocatable.get(r) - self.used.get(r)
            })
    }
}

struct Placer {
    names: Vec<String>,
    slots: HashMap<String, Slot>,
    cursor: usize,
}

impl Placer {
    /// Count a pod on a node.
    fn count(&mut self, node: &str, reqs: &Resources) {
        let slot = self.slots.entry(node.to_string()).or_default();
        slot.pods += 1;
        slot.used.add(reqs);
    }

    /// The node for the next pod: round robin among `preferred` (with room for one more pod),
    /// or, when none is given, round robin among all nodes where the pod fits as the scheduler
    /// would decide it (else it is left to the scheduler, which leaves it Pending).
    fn place(
        &mut self,
        preferred: &[String],
        turn: usize,
        spec: &PodSpec,
        reqs: &Resources,
    ) -> Option<String> {
        let list: &[String] = if preferred.is_empty() {
            &self.names
        } else {
            preferred
        };
        if list.is_empty() {
            return None;
        }
        let start = if preferred.is_empty() {
            self.cursor
        } else {
            turn
        };
        for i in 0..list.len() {
            let n = &list[(start + i) % list.len()];
            let ok = self.slots.get(n).is_some_and(|s| {
                if preferred.is_empty() {
                    s.fits(n, spec, reqs)
                } else {
                    s.pods < s.cap
                }
            });
            if ok {
                let n = n.clone();
                if preferred.is_empty() {
                    self.cursor = (start + i + 1) % list.len();
                }
                self.count(&n, reqs);
                return Some(n);
            }
        }
        None
    }
}

fn unique_name(st: &State, ns: &str, prefix: &str) -> String {
    loop {
        let n = format!("{prefix}{}", meta::random_suffix(5));
        if !st.exists(PODS, ns, &n) {
            return n;
        }
    }
}

/// Store a pod from a template, Running and Ready when placed on a node. A placed pod is
/// dated as if it had started `ready_seconds` ago (rounded to whole seconds, as the API shows
/// times) and just became Ready, so its conditions show how long the workload takes to become
/// ready, as on a cluster that has been running.
#[allow(clippy::too_many_arguments)]
fn add_pod(
    st: &mut State,
    template: &Value,
    name: &str,
    ns: &str,
    owner: Option<&Value>,
    node: Option<String>,
    unplaced: &mut Vec<Key>,
    ready_seconds: f64,
) -> Value {
    if node.is_none() {
        unplaced.push((ns.to_string(), name.to_string()));
    }
    let pod = objects::pod_from_template(template, name, ns, owner, node.as_deref());
    let mut pod = prepare_create(PODS, pod, ns);
    if let Some(n) = &node {
        let ip = st
            .get(NODES, "", n)
            .map(|o| objects::node_ip(&o))
            .unwrap_or_default();
        // One instant for both times, so that the difference is exactly the whole seconds.
        let now = jiff::Timestamp::now();
        let started = now
            .checked_sub(jiff::SignedDuration::from_secs_f64(
                ready_seconds.max(0.0).round(),
            ))
            .unwrap_or(now);
        pod["metadata"]["creationTimestamp"] = json!(meta::fmt_time(started));
        pod["status"] = json!({ "startTime": meta::fmt_time(started) });
        let mut status = objects::running_status(&pod, true, &ip, &objects::pod_ip());
        if let Some(conditions) = status["conditions"].as_array_mut() {
            for c in conditions
                .iter_mut()
                .filter(|c| c["type"] == "Ready" || c["type"] == "ContainersReady")
            {
                c["lastTransitionTime"] = json!(meta::fmt_time(now));
            }
        }
        pod["status"] = status;
    }
    (*st.insert(PODS, pod)).clone()
}

fn int_or_percent(v: &IntOrPercent) -> Value {
    match v {
        IntOrPercent::Int(i) => json!(i),
        IntOrPercent::Str(s) => json!(s),
    }
}

/// Convert the scenario selector shorthand (`{app: web}`) or a full selector to JSON.
fn selector_json(sel: &Option<Value>) -> Value {
    match sel {
        None => Value::Null,
        Some(Value::Object(m))
            if m.keys()
                .all(|k| k == "matchLabels" || k == "matchExpressions")
                && !m.is_empty() =>
        {
            Value::Object(m.clone())
        }
        Some(Value::Object(m)) => json!({"matchLabels": m}),
        Some(other) => other.clone(),
    }
}

/// When the scenario's cluster came up: as long ago as its slowest workload takes to become
/// ready (whole seconds, as pods are dated), so every pod is as old as its node or younger.
fn cluster_epoch(sc: &Scenario) -> jiff::Timestamp {
    let slowest = sc
        .workloads
        .iter()
        .map(|w| w.ready_seconds.max(0.0).round())
        .fold(0.0, f64::max);
    let now = jiff::Timestamp::now();
    now.checked_sub(jiff::SignedDuration::from_secs_f64(slowest))
        .unwrap_or(now)
}

/// `obj` created at `at`.
fn dated(mut obj: Value, at: jiff::Timestamp) -> Value {
    obj["metadata"]["creationTimestamp"] = json!(meta::fmt_time(at));
    obj
}

/// Load every object of the scenario. `params` receives pod behaviour by owner or pod UID.
/// Returns the pods that could not be placed (no node with room), for the scheduler.
pub fn load(sc: &Scenario, st: &mut State, params: &mut HashMap<String, PodParams>) -> Vec<Key> {
    let mut unplaced = Vec::new();
    // The scenario's nodes, namespaces, budgets and workloads were there before its oldest pod
    // started (pods are dated `readySeconds` back), as on a running cluster: no pod is older
    // than its node or its owner.
    let created = cluster_epoch(sc);
    st.set_recording(false);
    let mut namespaces: Vec<(String, bool)> =
        ["default", "kube-system", "kube-public", "kube-node-lease"]
            .iter()
            .map(|n| (n.to_string(), false))
            .collect();
    let referenced = sc
        .namespaces
        .iter()
        .map(|n| (n.name.clone(), n.terminating))
        .chain(sc.workloads.iter().map(|w| (w.namespace.clone(), false)))
        .chain(sc.mirror_pods.iter().map(|m| (m.namespace.clone(), false)))
        .chain(sc.pdbs.iter().map(|p| (p.namespace.clone(), false)));
    for (name, term) in referenced {
        match namespaces.iter_mut().find(|(n, _)| *n == name) {
            Some(e) => e.1 |= term,
            None => namespaces.push((name, term)),
        }
    }
    for (name, terminating) in namespaces {
        let mut ns = dated(
            prepare_create(NAMESPACES, objects::namespace(&name), ""),
            created,
        );
        if terminating {
            ns["status"]["phase"] = json!("Terminating");
            ns["metadata"]["deletionTimestamp"] = json!(meta::now_rfc3339());
            ns["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        }
        st.insert(NAMESPACES, ns);
    }
    let mut placer = Placer {
        names: Vec::new(),
        slots: HashMap::new(),
        cursor: 0,
    };
    let mut index = 0;
    for spec in &sc.nodes {
        let names: Vec<String> = match (&spec.name, &spec.name_prefix) {
            (Some(n), _) => vec![n.clone()],
            (None, Some(p)) => (0..spec.count.unwrap_or(1))
                .map(|i| format!("{p}{i}"))
                .collect(),
            _ => vec![],
        };
        for n in names {
            index += 1;
            let mut node =
                objects::node(&n, &spec.labels, spec.max_pods, spec.unschedulable, index);
            scheduling::apply_to_node(&mut node, spec);
            let allocatable = scheduling::node_allocatable(&node);
            let slot = Slot {
                cap: usize::try_from(allocatable.get(sched::resources::PODS)).unwrap_or(0),
                pods: 0,
                labels: meta::labels(&node),
                // A node that starts cordoned was cordoned after its pods came: the scenario's
                // pods may still be placed there.
                taints: serde_json::from_value::<Vec<Taint>>(node["spec"]["taints"].clone())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|t| t.key != "node.kubernetes.io/unschedulable")
                    .collect(),
                allocatable,
                used: Resources::default(),
            };
            st.insert(NODES, dated(prepare_create(NODES, node, ""), created));
            placer.slots.insert(n.clone(), slot);
            placer.names.push(n);
        }
    }
    // Budgets first, so each pod insert updates their membership without rescans.
    for p in &sc.pdbs {
        let mut spec = json!({"selector": selector_json(&p.selector)});
        if let Some(v) = &p.max_unavailable {
            spec["maxUnavailable"] = int_or_percent(v);
        }
        if let Some(v) = &p.min_available {
            spec["minAvailable"] = int_or_percent(v);
        }
        if let Some(pol) = &p.unhealthy_pod_eviction_policy {
            spec["unhealthyPodEvictionPolicy"] = json!(pol);
        }
        let obj = json!({"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":p.name,"namespace":p.namespace},"spec":spec});
        st.insert(
            PDBS,
            dated(prepare_create(PDBS, obj, &p.namespace), created),
        );
    }
    for m in &sc.mirror_pods {
        let node_uid = st
            .get(NODES, "", &m.node)
            .map(|n| meta::uid(&n).to_string())
            .unwrap_or_default();
        let tpl = objects::pod_template(
            &BTreeMap::from([("component".to_string(), m.name.clone())]),
            &BTreeMap::new(),
            30,
            false,
            Some("system-node-critical"),
        );
        let mut pod = objects::pod_from_template(&tpl, &m.name, &m.namespace, None, Some(&m.node));
        pod["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": meta::random_suffix(10),
                                               "kubernetes.io/config.source": "file", "kubernetes.io/config.hash": meta::random_suffix(10)});
        pod["metadata"]["ownerReferences"] = json!([{"apiVersion":"v1","kind":"Node","name":m.node,"uid":node_uid,"controller":true}]);
        placer.count(&m.node, &Resources::default());
        let mut pod = dated(prepare_create(PODS, pod, &m.namespace), created);
        let ip = st
            .get(NODES, "", &m.node)
            .map(|o| objects::node_ip(&o))
            .unwrap_or_default();
        pod["status"] = objects::running_status(&pod, true, &ip, &ip);
        st.insert(PODS, pod);
    }
    for w in &sc.workloads {
        let labels = if w.labels.is_empty() {
            BTreeMap::from([("app".to_string(), w.name.clone())])
        } else {
            w.labels.clone()
        };
        let p = PodParams {
            termination_seconds: w.termination_seconds,
            ready_seconds: w.ready_seconds,
        };
        let ns = w.namespace.as_str();
        let mut tpl = objects::pod_template(
            &labels,
            &w.pod_annotations,
            w.grace_period_seconds,
            w.empty_dir,
            w.priority_class_name.as_deref(),
        );
        scheduling::apply_to_template(&mut tpl, w);
        let spec: PodSpec = serde_json::from_value(tpl["spec"].clone()).unwrap_or_default();
        let reqs = scheduling::pod_requests(&tpl["spec"]);
        let n = w.replicas.max(0) as usize;
        match w.kind {
            WorkloadKind::Deployment => {
                let d = dated(
                    prepare_create(
                        DEPLOYMENTS,
                        objects::workload(
                            "Deployment",
                            &w.name,
                            ns,
                            Some(w.replicas),
                            &labels,
                            &tpl,
                        ),
                        ns,
                    ),
                    created,
                );
                let d = st.insert(DEPLOYMENTS, d);
                let hash = meta::stable_hash(&tpl);
                let mut rs_labels = labels.clone();
                rs_labels.insert("pod-template-hash".into(), hash.clone());
                let mut rs_tpl = tpl.clone();
                rs_tpl["metadata"]["labels"] = json!(rs_labels);
                let mut rs = objects::workload(
                    "ReplicaSet",
                    &format!("{}-{hash}", w.name),
                    ns,
                    Some(w.replicas),
                    &rs_labels,
                    &rs_tpl,
                );
                rs["metadata"]["ownerReferences"] = json!([meta::owner_ref(&d)]);
                rs["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "1"});
                let rs = st.insert(
                    REPLICASETS,
                    dated(prepare_create(REPLICASETS, rs, ns), created),
                );
                params.insert(meta::uid(&d).to_string(), p);
                params.insert(meta::uid(&rs).to_string(), p);
                for i in 0..n {
                    let node = placer.place(&w.nodes, i, &spec, &reqs);
                    let name = unique_name(st, ns, &format!("{}-", meta::name(&rs)));
                    add_pod(
                        st,
                        &rs_tpl,
                        &name,
                        ns,
                        Some(&rs),
                        node,
                        &mut unplaced,
                        p.ready_seconds,
                    );
                }
            }
            WorkloadKind::ReplicaSet => {
                let rs = dated(
                    prepare_create(
                        REPLICASETS,
                        objects::workload(
                            "ReplicaSet",
                            &w.name,
                            ns,
                            Some(w.replicas),
                            &labels,
                            &tpl,
                        ),
                        ns,
                    ),
                    created,
                );
                let rs = st.insert(REPLICASETS, rs);
                params.insert(meta::uid(&rs).to_string(), p);
                for i in 0..n {
                    let node = placer.place(&w.nodes, i, &spec, &reqs);
                    let name = unique_name(st, ns, &format!("{}-", w.name));
                    add_pod(
                        st,
                        &tpl,
                        &name,
                        ns,
                        Some(&rs),
                        node,
                        &mut unplaced,
                        p.ready_seconds,
                    );
                }
            }
            WorkloadKind::StatefulSet => {
                let s = dated(
                    prepare_create(
                        STATEFULSETS,
                        objects::workload(
                            "StatefulSet",
                            &w.name,
                            ns,
                            Some(w.replicas),
                            &labels,
                            &tpl,
                        ),
                        ns,
                    ),
                    created,
                );
                let s = st.insert(STATEFULSETS, s);
                params.insert(meta::uid(&s).to_string(), p);
                for i in 0..n {
                    let node = placer.place(&w.nodes, i, &spec, &reqs);
                    let mut t = tpl.clone();
                    t["spec"]["hostname"] = json!(format!("{}-{i}", w.name));
                    t["spec"]["subdomain"] = json!(w.name);
                    t["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] =
                        json!(format!("{}-{i}", w.name));
                    add_pod(
                        st,
                        &t,
                        &format!("{}-{i}", w.name),
                        ns,
                        Some(&s),
                        node,
                        &mut unplaced,
                        p.ready_seconds,
                    );
                }
            }
            WorkloadKind::DaemonSet => {
                let ds = dated(
                    prepare_create(
                        DAEMONSETS,
                        objects::workload("DaemonSet", &w.name, ns, None, &labels, &tpl),
                        ns,
                    ),
                    created,
                );
                let ds = st.insert(DAEMONSETS, ds);
                params.insert(meta::uid(&ds).to_string(), p);
                let targets: Vec<String> = if w.nodes.is_empty() {
                    placer.names.clone()
                } else {
                    w.nodes.clone()
                };
                for node in targets {
                    placer.count(&node, &reqs);
                    let name = unique_name(st, ns, &format!("{}-", w.name));
                    add_pod(
                        st,
                        &tpl,
                        &name,
                        ns,
                        Some(&ds),
                        Some(node),
                        &mut unplaced,
                        p.ready_seconds,
                    );
                }
            }
            WorkloadKind::Pod => {
                for i in 0..n {
                    let node = placer.place(&w.nodes, i, &spec, &reqs);
                    let name = if n == 1 {
                        w.name.clone()
                    } else {
                        format!("{}-{i}", w.name)
                    };
                    let pod = add_pod(
                        st,
                        &tpl,
                        &name,
                        ns,
                        None,
                        node,
                        &mut unplaced,
                        p.ready_seconds,
                    );
                    params.insert(meta::uid(&pod).to_string(), p);
                }
            }
        }
    }
    st.set_recording(true);
    unplaced
}
