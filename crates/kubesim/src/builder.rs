//! Loads a scenario into the store through the back door: objects are created directly in
//! their steady state (pods Running and Ready, K-5) without watch history.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use crate::api::prepare_create;
use crate::meta::{self, Key};
use crate::objects::{self, PodParams};
use crate::resources::{
    DAEMONSETS, DEPLOYMENTS, NAMESPACES, NODES, PDBS, PODS, REPLICASETS, STATEFULSETS,
};
use crate::scenario::{IntOrPercent, Scenario, WorkloadKind};
use crate::store::State;

struct Placer {
    names: Vec<String>,
    used: HashMap<String, usize>,
    cap: HashMap<String, usize>,
    cursor: usize,
}

impl Placer {
    /// Next node with room among `preferred` (or all nodes), round robin.
    fn place(&mut self, preferred: &[String], turn: usize) -> Option<String> {
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
            let used = self.used.get(n).copied().unwrap_or(0);
            if used < self.cap.get(n).copied().unwrap_or(110) {
                *self.used.entry(n.clone()).or_default() += 1;
                if preferred.is_empty() {
                    self.cursor = (start + i + 1) % list.len();
                }
                return Some(n.clone());
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

/// Load every object of the scenario. `params` receives pod behaviour by owner or pod UID.
/// Returns the pods that could not be placed (no node with room), for the scheduler.
pub fn load(sc: &Scenario, st: &mut State, params: &mut HashMap<String, PodParams>) -> Vec<Key> {
    let mut unplaced = Vec::new();
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
        let mut ns = prepare_create(NAMESPACES, objects::namespace(&name), "");
        if terminating {
            ns["status"]["phase"] = json!("Terminating");
            ns["metadata"]["deletionTimestamp"] = json!(meta::now_rfc3339());
            ns["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        }
        st.insert(NAMESPACES, ns);
    }
    let mut placer = Placer {
        names: Vec::new(),
        used: HashMap::new(),
        cap: HashMap::new(),
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
            let node = prepare_create(
                NODES,
                objects::node(&n, &spec.labels, spec.max_pods, spec.unschedulable, index),
                "",
            );
            st.insert(NODES, node);
            placer.cap.insert(n.clone(), spec.max_pods);
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
        st.insert(PDBS, prepare_create(PDBS, obj, &p.namespace));
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
        *placer.used.entry(m.node.clone()).or_default() += 1;
        let mut pod = prepare_create(PODS, pod, &m.namespace);
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
        let tpl = objects::pod_template(
            &labels,
            &w.pod_annotations,
            w.grace_period_seconds,
            w.empty_dir,
            w.priority_class_name.as_deref(),
        );
        let n = w.replicas.max(0) as usize;
        match w.kind {
            WorkloadKind::Deployment => {
                let d = prepare_create(
                    DEPLOYMENTS,
                    objects::workload("Deployment", &w.name, ns, Some(w.replicas), &labels, &tpl),
                    ns,
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
                let rs = st.insert(REPLICASETS, prepare_create(REPLICASETS, rs, ns));
                params.insert(meta::uid(&d).to_string(), p);
                params.insert(meta::uid(&rs).to_string(), p);
                for i in 0..n {
                    let node = placer.place(&w.nodes, i);
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
                let rs = prepare_create(
                    REPLICASETS,
                    objects::workload("ReplicaSet", &w.name, ns, Some(w.replicas), &labels, &tpl),
                    ns,
                );
                let rs = st.insert(REPLICASETS, rs);
                params.insert(meta::uid(&rs).to_string(), p);
                for i in 0..n {
                    let node = placer.place(&w.nodes, i);
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
                let s = prepare_create(
                    STATEFULSETS,
                    objects::workload("StatefulSet", &w.name, ns, Some(w.replicas), &labels, &tpl),
                    ns,
                );
                let s = st.insert(STATEFULSETS, s);
                params.insert(meta::uid(&s).to_string(), p);
                for i in 0..n {
                    let node = placer.place(&w.nodes, i);
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
                let ds = prepare_create(
                    DAEMONSETS,
                    objects::workload("DaemonSet", &w.name, ns, None, &labels, &tpl),
                    ns,
                );
                let ds = st.insert(DAEMONSETS, ds);
                params.insert(meta::uid(&ds).to_string(), p);
                let targets: Vec<String> = if w.nodes.is_empty() {
                    placer.names.clone()
                } else {
                    w.nodes.clone()
                };
                for node in targets {
                    *placer.used.entry(node.clone()).or_default() += 1;
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
                    let node = placer.place(&w.nodes, i);
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
