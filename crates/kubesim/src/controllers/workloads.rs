//! ReplicaSet, Deployment, StatefulSet and DaemonSet controllers: keep the declared number of
//! pods (replacing deleted or terminating ones), and a workload status kubectl can show.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

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
fn owned_pods(st: &State, owner: &Value) -> Vec<(Key, Child)> {
    st.child_infos(meta::uid(owner))
        .into_iter()
        .filter(|(r, _, _)| *r == PODS)
        .map(|(_, k, c)| (k, c))
        .collect()
}

/// (active, ready) pod counts of a workload.
fn counts(st: &State, owner: &Value) -> (usize, usize) {
    let pods = owned_pods(st, owner);
    let active = pods.iter().filter(|(_, c)| c.active).count();
    let ready = pods.iter().filter(|(_, c)| c.active && c.ready).count();
    (active, ready)
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
        DEPLOYMENTS => deployment(st, params, rec, &obj),
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
    let mut live: Vec<(Key, Child)> = owned_pods(st, rs)
        .into_iter()
        .filter(|(_, c)| c.active)
        .collect();
    if live.len() < replicas {
        for _ in live.len()..replicas {
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
    } else if live.len() > replicas {
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

fn deployment(st: &mut State, params: &mut Params, rec: &mut Recorder, d: &Value) {
    let ns = meta::namespace(d).to_string();
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let sets: Vec<Arc<Value>> = st
        .children_of(meta::uid(d))
        .into_iter()
        .filter(|(r, _)| *r == REPLICASETS)
        .map(|(_, o)| o)
        .collect();
    let rs = match sets.first() {
        Some(rs) => {
            let old = rs["spec"]["replicas"].as_i64().unwrap_or(1);
            if old != replicas {
                let mut next = (**rs).clone();
                next["spec"]["replicas"] = json!(replicas);
                let g = next["metadata"]["generation"].as_i64().unwrap_or(1);
                next["metadata"]["generation"] = json!(g + 1);
                let rs = st.replace(REPLICASETS, next);
                let dir = if replicas > old { "up" } else { "down" };
                rec.event(
                    st,
                    DEPLOYMENTS,
                    d,
                    "",
                    Type::Normal,
                    "ScalingReplicaSet",
                    format!(
                        "Scaled {dir} replica set {} from {old} to {replicas}",
                        meta::name(&rs)
                    ),
                    Source::controller("deployment-controller"),
                );
                rs
            } else {
                rs.clone()
            }
        }
        None => {
            let tpl = &d["spec"]["template"];
            let hash = meta::stable_hash(tpl);
            let mut labels = meta::labels(&json!({"metadata": tpl["metadata"]}));
            labels.insert("pod-template-hash".into(), hash.clone());
            let mut rs_tpl = tpl.clone();
            rs_tpl["metadata"]["labels"] = json!(labels);
            let revision = json!({REVISION: "1"});
            let mut rs = objects::workload(
                "ReplicaSet",
                &format!("{}-{hash}", meta::name(d)),
                &ns,
                Some(replicas),
                &labels,
                &rs_tpl,
            );
            rs["metadata"]["ownerReferences"] = json!([meta::owner_ref(d)]);
            rs["metadata"]["annotations"] = revision;
            let rs = st.insert(REPLICASETS, prepare_create(REPLICASETS, rs, &ns));
            rec.event(
                st,
                DEPLOYMENTS,
                d,
                "",
                Type::Normal,
                "ScalingReplicaSet",
                format!(
                    "Scaled up replica set {} from 0 to {replicas}",
                    meta::name(&rs)
                ),
                Source::controller("deployment-controller"),
            );
            let p = params.get(meta::uid(d)).copied().unwrap_or_default();
            params.insert(meta::uid(&rs).to_string(), p);
            rs
        }
    };
    let s = &rs["status"];
    let ready = s["readyReplicas"].as_i64().unwrap_or(0);
    let available = if ready >= replicas { "True" } else { "False" };
    let mut next = d.clone();
    next["status"]["replicas"] = json!(s["replicas"].as_i64().unwrap_or(0));
    next["status"]["updatedReplicas"] = json!(s["replicas"].as_i64().unwrap_or(0));
    next["status"]["readyReplicas"] = json!(ready);
    next["status"]["availableReplicas"] = json!(ready);
    next["status"]["observedGeneration"] = d["metadata"]["generation"].clone();
    meta::set_condition(
        &mut next,
        json!({"type":"Available","status":available,"reason": if available == "True" {"MinimumReplicasAvailable"} else {"MinimumReplicasUnavailable"},
               "message": if available == "True" {"Deployment has minimum availability."} else {"Deployment does not have minimum availability."},
               "lastTransitionTime":meta::now_rfc3339(),"lastUpdateTime":meta::now_rfc3339()}),
    );
    if let Some(c) = next["status"]["conditions"]
        .as_array_mut()
        .and_then(|cs| cs.iter_mut().find(|c| c["type"] == "Available"))
        && let Some(old) = d["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Available"))
        && old["status"] == c["status"]
    {
        c["lastUpdateTime"] = old["lastUpdateTime"].clone();
    }
    // The Progressing condition: complete once the new ReplicaSet has all its replicas ready.
    let rs_name = meta::name(&rs).to_string();
    let (reason, message) = if available == "True" {
        (
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
        )
    } else {
        (
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{rs_name}\" is progressing."),
        )
    };
    let old = d["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Progressing"));
    let unchanged = old.is_some_and(|o| o["reason"] == reason);
    meta::set_condition(
        &mut next,
        json!({"type":"Progressing","status":"True","reason":reason,"message":message,
        "lastTransitionTime":meta::now_rfc3339(),
        "lastUpdateTime": match old {
            Some(o) if unchanged => o["lastUpdateTime"].clone(),
            _ => json!(meta::now_rfc3339()),
        }}),
    );
    // The revision the Deployment is at (kubesim never starts a second ReplicaSet).
    if next["metadata"]["annotations"][REVISION].is_null() {
        if !next["metadata"]["annotations"].is_object() {
            next["metadata"]["annotations"] = json!({});
        }
        next["metadata"]["annotations"][REVISION] = json!("1");
    }
    st.replace(DEPLOYMENTS, next);
}

/// The annotation a Deployment and its ReplicaSets carry with the rollout's revision.
const REVISION: &str = "deployment.kubernetes.io/revision";

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
