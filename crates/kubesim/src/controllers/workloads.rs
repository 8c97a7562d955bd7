//! ReplicaSet, Deployment, StatefulSet and DaemonSet controllers: keep the declared number of
//! pods (replacing deleted or terminating ones), and a workload status kubectl can show.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use crate::api::prepare_create;
use crate::events::{Recorder, Source, Type};
use crate::graceful::{self, DeleteOptions};
use crate::meta;
use crate::meta::Key;
use crate::objects::{self, PodParams};
use crate::resources::{DAEMONSETS, DEPLOYMENTS, NODES, PODS, REPLICASETS, ResId, STATEFULSETS};
use crate::store::{Child, State};

/// Pod parameters by owner or pod UID.
pub type Params = HashMap<String, PodParams>;

/// Pods owned by a workload, as (key, summary), without unpacking them.
pub(super) fn owned_pods(st: &State, owner: &Value) -> Vec<(Key, Child)> {
    st.child_infos(meta::uid(owner))
        .into_iter()
        .filter(|(r, _, _)| *r == PODS)
        .map(|(_, k, c)| (k, c))
        .collect()
}

/// (active, ready) pod counts of a workload (kept by the store: a big workload's pods are
/// not scanned).
pub(super) fn counts(st: &State, owner: &Value) -> (usize, usize) {
    let n = st.pod_counts(meta::uid(owner));
    (n.active, n.ready)
}

/// Whether a workload owns any pod (finished or not).
pub(super) fn owns_pods(st: &State, owner: &Value) -> bool {
    st.pod_counts(meta::uid(owner)).pods > 0
}

fn unique_pod_name(st: &State, ns: &str, prefix: &str) -> String {
    loop {
        let n = format!("{prefix}{}", meta::random_suffix(5));
        if !st.exists(PODS, ns, &n) {
            return n;
        }
    }
}

/// Create a pod of a workload and record the controller's `SuccessfulCreate` event.
#[allow(clippy::too_many_arguments)]
fn create_pod(
    st: &mut State,
    rec: &mut Recorder,
    res: ResId,
    owner: &Value,
    template: &Value,
    name: &str,
    node: Option<&str>,
) {
    let ns = meta::namespace(owner);
    let pod = objects::pod_from_template(template, name, ns, Some(owner), node);
    let pod = prepare_create(PODS, pod, ns);
    st.insert(PODS, pod);
    let (component, message) = match res {
        STATEFULSETS => (
            "statefulset-controller",
            format!(
                "create Pod {name} in StatefulSet {} successful",
                meta::name(owner)
            ),
        ),
        DAEMONSETS => ("daemonset-controller", format!("Created pod: {name}")),
        _ => ("replicaset-controller", format!("Created pod: {name}")),
    };
    rec.event(
        st,
        res,
        owner,
        "",
        Type::Normal,
        "SuccessfulCreate",
        message,
        Source::controller(component),
    );
}

fn write_status(st: &mut State, res: ResId, obj: &Value, status: Value) {
    let mut next = obj.clone();
    next["status"] = status;
    st.replace(res, next);
}

/// Reconcile one workload object.
pub fn reconcile(
    st: &mut State,
    params: &mut Params,
    rec: &mut Recorder,
    res: ResId,
    ns: &str,
    name: &str,
) {
    let Some(obj) = st.get(res, ns, name) else {
        return;
    };
    if meta::is_terminating(&obj) {
        return;
    }
    match res {
        REPLICASETS => replica_set(st, rec, &obj),
        DEPLOYMENTS => super::deployment::deployment(st, params, rec, &obj),
        STATEFULSETS => stateful_set(st, rec, &obj),
        DAEMONSETS => daemon_set(st, rec, &obj),
        _ => {}
    }
}

fn delete_pod(st: &mut State, key: &Key) {
    let _ = graceful::delete_pod(st, &key.0, &key.1, &DeleteOptions::default());
}

fn replica_set(st: &mut State, rec: &mut Recorder, rs: &Value) {
    let replicas = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
    let ns = meta::namespace(rs).to_string();
    let live_count = counts(st, rs).0;
    if live_count < replicas {
        for _ in live_count..replicas {
            let name = unique_pod_name(st, &ns, &format!("{}-", meta::name(rs)));
            create_pod(
                st,
                rec,
                REPLICASETS,
                rs,
                &rs["spec"]["template"],
                &name,
                None,
            );
        }
    } else if live_count > replicas {
        let mut live: Vec<(Key, Child)> = owned_pods(st, rs)
            .into_iter()
            .filter(|(_, c)| c.active)
            .collect();
        // Scale down: unscheduled first, then not ready, then by name.
        live.sort_by_key(|(k, c)| (!c.node.is_empty(), c.ready, k.1.clone()));
        for (k, _) in live.iter().take(live.len() - replicas) {
            delete_pod(st, k);
            rec.event(
                st,
                REPLICASETS,
                rs,
                "",
                Type::Normal,
                "SuccessfulDelete",
                format!("Deleted pod: {}", k.1),
                Source::controller("replicaset-controller"),
            );
        }
    }
    let (active, ready) = counts(st, rs);
    write_status(
        st,
        REPLICASETS,
        rs,
        json!({"replicas": active, "fullyLabeledReplicas": active, "readyReplicas": ready,
               "availableReplicas": ready, "observedGeneration": rs["metadata"]["generation"]}),
    );
}

fn stateful_set(st: &mut State, rec: &mut Recorder, s: &Value) {
    let replicas = s["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
    let ns = meta::namespace(s).to_string();
    let base = meta::name(s).to_string();
    let owned: HashSet<String> = owned_pods(st, s).into_iter().map(|(k, _)| k.1).collect();
    for i in 0..replicas {
        let name = format!("{base}-{i}");
        if !owned.contains(&name) && !st.exists(PODS, &ns, &name) {
            let mut tpl = s["spec"]["template"].clone();
            tpl["spec"]["hostname"] = json!(name);
            tpl["spec"]["subdomain"] = s["spec"]["serviceName"].clone();
            tpl["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] = json!(name);
            create_pod(st, rec, STATEFULSETS, s, &tpl, &name, None);
        }
    }
    for (k, c) in owned_pods(st, s) {
        let ordinal =
            k.1.rsplit('-')
                .next()
                .and_then(|o| o.parse::<i64>().ok())
                .unwrap_or(0);
        if ordinal >= replicas && c.active {
            delete_pod(st, &k);
        }
    }
    let (active, ready) = counts(st, s);
    write_status(
        st,
        STATEFULSETS,
        s,
        json!({"replicas": active, "readyReplicas": ready, "currentReplicas": active, "updatedReplicas": active,
               "availableReplicas": ready, "observedGeneration": s["metadata"]["generation"]}),
    );
}

/// Whether a DaemonSet's template allows a node (nodeSelector and metadata.name matchFields).
fn ds_allows(tpl: &Value, node: &Value) -> bool {
    let labels = meta::labels(node);
    if !meta::string_map(&tpl["spec"]["nodeSelector"])
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    let terms = &tpl["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"];
    let Some(terms) = terms.as_array() else {
        return true;
    };
    terms.iter().any(|t| {
        t["matchFields"].as_array().is_none_or(|fs| {
            fs.iter().all(|f| {
                f["key"] != "metadata.name"
                    || f["values"]
                        .as_array()
                        .is_some_and(|vs| vs.iter().any(|v| v == meta::name(node)))
            })
        })
    })
}

fn daemon_set(st: &mut State, rec: &mut Recorder, ds: &Value) {
    let tpl = &ds["spec"]["template"];
    let nodes: Vec<String> = st
        .iter(NODES, None)
        .filter(|(_, n)| ds_allows(tpl, n))
        .map(|(_, n)| meta::name(&n).to_string())
        .collect();
    let pods = owned_pods(st, ds);
    let ns = meta::namespace(ds).to_string();
    let covered: HashSet<&str> = pods
        .iter()
        .filter(|(_, c)| c.active)
        .map(|(_, c)| c.node.as_str())
        .collect();
    let allowed: HashSet<&str> = nodes.iter().map(|n| n.as_str()).collect();
    for node in &nodes {
        if !covered.contains(node.as_str()) {
            let name = unique_pod_name(st, &ns, &format!("{}-", meta::name(ds)));
            create_pod(st, rec, DAEMONSETS, ds, tpl, &name, Some(node));
        }
    }
    for (k, c) in &pods {
        if c.active && !allowed.contains(c.node.as_str()) {
            delete_pod(st, k);
        }
    }
    let (active, ready) = counts(st, ds);
    write_status(
        st,
        DAEMONSETS,
        ds,
        json!({"desiredNumberScheduled": nodes.len(), "currentNumberScheduled": active, "numberReady": ready,
               "numberAvailable": ready, "updatedNumberScheduled": active, "numberMisscheduled": 0,
               "observedGeneration": ds["metadata"]["generation"]}),
    );
}
