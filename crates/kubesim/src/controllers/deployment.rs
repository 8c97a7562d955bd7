//! The Deployment controller: one ReplicaSet per pod template (named `<deployment>-<hash>`,
//! with the `pod-template-hash` label on it and its pods); when the template changes (for
//! example the `kubectl.kubernetes.io/restartedAt` annotation `kubectl rollout restart` sets),
//! a new ReplicaSet is created and the rollout follows the strategy as the real controller
//! does: RollingUpdate scales the new ReplicaSet up while the total stays within
//! `replicas + maxSurge`, and the old ones down while the available pods stay at least
//! `replicas - maxUnavailable` (defaults 25 % each, surge rounded up, unavailable rounded down,
//! and 1 unavailable when both are 0); Recreate scales the old ones to zero and starts the new
//! one once their pods are gone. A paused Deployment is not rolled. Old ReplicaSets are kept at
//! zero replicas (the revision history). The status carries what `kubectl rollout status`
//! reads: `observedGeneration`, `replicas`, `updatedReplicas`, `readyReplicas`,
//! `availableReplicas`, and the Available and Progressing conditions.

use std::sync::Arc;

use serde_json::{Value, json};

use super::workloads::{Params, counts, owns_pods};
use crate::api::prepare_create;
use crate::events::{Recorder, Source, Type};
use crate::meta;
use crate::objects;
use crate::resources::{DEPLOYMENTS, REPLICASETS};
use crate::store::State;

const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";

/// An int-or-percent value of `replicas`, rounded up or down; `default` when absent.
fn scaled(v: &Value, replicas: i64, round_up: bool, default: &str) -> i64 {
    let v = if v.is_null() {
        json!(default)
    } else {
        v.clone()
    };
    if let Some(n) = v.as_i64() {
        return n.max(0);
    }
    let Some(p) = v
        .as_str()
        .and_then(|s| s.strip_suffix('%'))
        .and_then(|p| p.parse::<i64>().ok())
    else {
        return 0;
    };
    let x = p * replicas;
    (if round_up { (x + 99) / 100 } else { x / 100 }).max(0)
}

/// A ReplicaSet's template equals the Deployment's, ignoring the `pod-template-hash` label.
fn same_template(rs: &Value, d: &Value) -> bool {
    let mut t = rs["spec"]["template"].clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove(HASH_LABEL);
    }
    let mut want = d["spec"]["template"].clone();
    if let Some(labels) = want["metadata"]["labels"].as_object_mut() {
        labels.remove(HASH_LABEL);
    }
    t == want
}

fn spec_replicas(rs: &Value) -> i64 {
    rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0)
}

/// A ReplicaSet's revision (1 for one without the annotation, as a scenario's first one).
fn revision(o: &Value) -> i64 {
    o["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1)
}

fn scaling_event(st: &mut State, rec: &mut Recorder, d: &Value, rs: &Value, from: i64, to: i64) {
    let dir = if to > from { "up" } else { "down" };
    rec.event(
        st,
        DEPLOYMENTS,
        d,
        "",
        Type::Normal,
        "ScalingReplicaSet",
        format!(
            "Scaled {dir} replica set {} from {from} to {to}",
            meta::name(rs)
        ),
        Source::controller("deployment-controller"),
    );
}

/// Sets a ReplicaSet's replicas (and records the scaling).
fn scale(st: &mut State, rec: &mut Recorder, d: &Value, rs: &Arc<Value>, to: i64) -> Arc<Value> {
    let from = spec_replicas(rs);
    if from == to {
        return rs.clone();
    }
    let mut next = (**rs).clone();
    next["spec"]["replicas"] = json!(to);
    let g = next["metadata"]["generation"].as_i64().unwrap_or(1);
    next["metadata"]["generation"] = json!(g + 1);
    let rs = st.replace(REPLICASETS, next);
    scaling_event(st, rec, d, &rs, from, to);
    rs
}

/// Creates the ReplicaSet of the Deployment's current template, with `replicas`.
fn create_rs(
    st: &mut State,
    params: &mut Params,
    rec: &mut Recorder,
    d: &Value,
    replicas: i64,
    revision: i64,
    params_from: Option<&str>,
) -> Arc<Value> {
    let ns = meta::namespace(d).to_string();
    let tpl = &d["spec"]["template"];
    let hash = meta::stable_hash(tpl);
    let mut labels = meta::labels(&json!({"metadata": tpl["metadata"]}));
    labels.insert(HASH_LABEL.into(), hash.clone());
    let mut rs_tpl = tpl.clone();
    rs_tpl["metadata"]["labels"] = json!(labels);
    let mut name = format!("{}-{hash}", meta::name(d));
    let mut n = 0;
    while st.exists(REPLICASETS, &ns, &name) {
        n += 1;
        name = format!("{}-{hash}{n}", meta::name(d));
    }
    let mut rs = objects::workload("ReplicaSet", &name, &ns, Some(replicas), &labels, &rs_tpl);
    rs["metadata"]["ownerReferences"] = json!([meta::owner_ref(d)]);
    rs["metadata"]["annotations"][REVISION] = json!(revision.to_string());
    let rs = st.insert(REPLICASETS, prepare_create(REPLICASETS, rs, &ns));
    scaling_event(st, rec, d, &rs, 0, replicas);
    let p = params
        .get(meta::uid(d))
        .or_else(|| params_from.and_then(|u| params.get(u)))
        .copied()
        .unwrap_or_default();
    params.insert(meta::uid(&rs).to_string(), p);
    rs
}

/// Reconciles one Deployment: its ReplicaSets, the rollout step that is due, and its status.
pub fn deployment(st: &mut State, params: &mut Params, rec: &mut Recorder, d: &Value) {
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
    let mut sets: Vec<Arc<Value>> = st
        .children_of(meta::uid(d))
        .into_iter()
        .filter(|(r, _)| *r == REPLICASETS)
        .map(|(_, o)| o)
        .collect();
    sets.sort_by(|a, b| {
        let c = |o: &Value| {
            o["metadata"]["creationTimestamp"]
                .as_str()
                .map(String::from)
        };
        c(a).cmp(&c(b)).then(meta::name(a).cmp(meta::name(b)))
    });
    let (current, mut olds): (Vec<Arc<Value>>, Vec<Arc<Value>>) =
        sets.into_iter().partition(|rs| same_template(rs, d));
    let mut new_rs = current.into_iter().next_back();
    let paused = d["spec"]["paused"].as_bool() == Some(true);
    let recreate = d["spec"]["strategy"]["type"].as_str() == Some("Recreate");
    let max_revision = olds.iter().map(|rs| revision(rs)).max().unwrap_or(0);
    if new_rs.is_none() && !paused {
        let start = if olds.is_empty() { replicas } else { 0 };
        let from = olds.last().map(|rs| meta::uid(rs).to_string());
        new_rs = Some(create_rs(
            st,
            params,
            rec,
            d,
            start,
            max_revision + 1,
            from.as_deref(),
        ));
    }
    if let Some(rs) = new_rs.clone()
        && !paused
    {
        new_rs = Some(if recreate {
            roll_recreate(st, rec, d, &rs, &mut olds, replicas)
        } else {
            roll_rolling(st, rec, d, &rs, &mut olds, replicas)
        });
    }
    write_status(st, d, new_rs.as_deref(), &olds, replicas);
}

/// Recreate: the old ReplicaSets go to zero; the new one starts when their pods are gone.
fn roll_recreate(
    st: &mut State,
    rec: &mut Recorder,
    d: &Value,
    new_rs: &Arc<Value>,
    olds: &mut [Arc<Value>],
    replicas: i64,
) -> Arc<Value> {
    for rs in olds.iter_mut() {
        *rs = scale(st, rec, d, rs, 0);
    }
    let old_pods = olds.iter().any(|rs| owns_pods(st, rs));
    if old_pods {
        return new_rs.clone();
    }
    scale(st, rec, d, new_rs, replicas)
}

/// RollingUpdate: up within the surge, down within the unavailability, as the real controller.
fn roll_rolling(
    st: &mut State,
    rec: &mut Recorder,
    d: &Value,
    new_rs: &Arc<Value>,
    olds: &mut [Arc<Value>],
    replicas: i64,
) -> Arc<Value> {
    let ru = &d["spec"]["strategy"]["rollingUpdate"];
    let surge = scaled(&ru["maxSurge"], replicas, true, "25%");
    let mut unavailable = scaled(&ru["maxUnavailable"], replicas, false, "25%");
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    let old_total: i64 = olds.iter().map(|rs| spec_replicas(rs)).sum();
    let mut new_rs = new_rs.clone();
    let new_spec = spec_replicas(&new_rs);
    if new_spec > replicas || old_total == 0 {
        new_rs = scale(st, rec, d, &new_rs, replicas);
    } else if new_spec < replicas {
        let room = replicas + surge - (old_total + new_spec);
        let up = room.min(replicas - new_spec);
        if up > 0 {
            new_rs = scale(st, rec, d, &new_rs, new_spec + up);
        }
    }
    if old_total == 0 {
        return new_rs;
    }
    // Old ReplicaSets go down while enough pods stay available: first their pods that are not
    // available (they count for nothing), then as far as the available ones allow.
    let min_available = replicas - unavailable;
    let all_spec = old_total + spec_replicas(&new_rs);
    let new_ready = counts(st, &new_rs).1 as i64;
    let new_unavailable = (spec_replicas(&new_rs) - new_ready).max(0);
    let mut budget = all_spec - min_available - new_unavailable;
    if budget <= 0 {
        return new_rs;
    }
    for rs in olds.iter_mut() {
        let (active, ready) = counts(st, rs);
        let unhealthy = (active as i64 - ready as i64).max(0).min(spec_replicas(rs));
        let down = unhealthy.min(budget);
        if down > 0 {
            let to = spec_replicas(rs) - down;
            *rs = scale(st, rec, d, rs, to);
            budget -= down;
        }
    }
    let available: i64 = olds
        .iter()
        .map(|rs| (counts(st, rs).1 as i64).min(spec_replicas(rs)))
        .sum::<i64>()
        + new_ready;
    let mut down_total = available - min_available;
    for rs in olds.iter_mut() {
        if down_total <= 0 {
            break;
        }
        let down = spec_replicas(rs).min(down_total);
        if down > 0 {
            *rs = scale(st, rec, d, rs, spec_replicas(rs) - down);
            down_total -= down;
        }
    }
    new_rs
}

fn write_status(
    st: &mut State,
    d: &Value,
    new_rs: Option<&Value>,
    olds: &[Arc<Value>],
    replicas: i64,
) {
    let (new_active, new_ready) = new_rs.map_or((0, 0), |rs| counts(st, rs));
    let (mut active, mut ready) = (new_active, new_ready);
    for rs in olds {
        let (a, r) = counts(st, rs);
        active += a;
        ready += r;
    }
    let (active, ready) = (active as i64, ready as i64);
    let unavailable_allowed = if d["spec"]["strategy"]["type"].as_str() == Some("Recreate") {
        0
    } else {
        let ru = &d["spec"]["strategy"]["rollingUpdate"];
        let surge = scaled(&ru["maxSurge"], replicas, true, "25%");
        let u = scaled(&ru["maxUnavailable"], replicas, false, "25%");
        if surge == 0 && u == 0 { 1 } else { u }
    };
    let available = if ready >= replicas - unavailable_allowed {
        "True"
    } else {
        "False"
    };
    let mut next = d.clone();
    next["status"]["replicas"] = json!(active);
    next["status"]["updatedReplicas"] = json!(new_active);
    next["status"]["readyReplicas"] = json!(ready);
    next["status"]["availableReplicas"] = json!(ready);
    next["status"]["unavailableReplicas"] = json!((replicas - ready).max(0));
    next["status"]["observedGeneration"] = d["metadata"]["generation"].clone();
    if let Some(rs) = new_rs {
        let rev = json!(revision(rs).to_string());
        if !next["metadata"]["annotations"].is_object() {
            next["metadata"]["annotations"] = json!({});
        }
        next["metadata"]["annotations"][REVISION] = rev;
    }
    let now = meta::now_rfc3339();
    let keep_times = |next: &mut Value, ty: &str| {
        if let Some(c) = next["status"]["conditions"]
            .as_array_mut()
            .and_then(|cs| cs.iter_mut().find(|c| c["type"] == ty))
            && let Some(old) = d["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
        {
            if old["status"] == c["status"] {
                c["lastTransitionTime"] = old["lastTransitionTime"].clone();
            }
            if old["status"] == c["status"] && old["reason"] == c["reason"] {
                c["lastUpdateTime"] = old["lastUpdateTime"].clone();
            }
        }
    };
    meta::set_condition(
        &mut next,
        json!({"type":"Available","status":available,"reason": if available == "True" {"MinimumReplicasAvailable"} else {"MinimumReplicasUnavailable"},
               "message": if available == "True" {"Deployment has minimum availability."} else {"Deployment does not have minimum availability."},
               "lastTransitionTime":now,"lastUpdateTime":now}),
    );
    keep_times(&mut next, "Available");
    let rs_name = new_rs.map(meta::name).unwrap_or_default();
    let complete =
        new_active as i64 == replicas && new_ready as i64 >= replicas && active == replicas;
    let (reason, message) = if complete {
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
    meta::set_condition(
        &mut next,
        json!({"type":"Progressing","status":"True","reason":reason,"message":message,
               "lastTransitionTime":now,"lastUpdateTime":now}),
    );
    keep_times(&mut next, "Progressing");
    st.replace(DEPLOYMENTS, next);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surge_rounds_up_and_unavailability_down() {
        assert_eq!(scaled(&Value::Null, 1, true, "25%"), 1);
        assert_eq!(scaled(&Value::Null, 1, false, "25%"), 0);
        assert_eq!(scaled(&json!("50%"), 3, true, "25%"), 2);
        assert_eq!(scaled(&json!("50%"), 3, false, "25%"), 1);
        assert_eq!(scaled(&json!(2), 3, false, "25%"), 2);
        assert_eq!(scaled(&json!("x%"), 3, false, "25%"), 0);
    }

    #[test]
    fn templates_compare_without_the_hash_label() {
        let d = json!({"spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}}});
        let rs = json!({"spec": {"template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}}, "spec": {"containers": []}}}});
        assert!(same_template(&rs, &d));
        let mut restarted = d.clone();
        restarted["spec"]["template"]["metadata"]["annotations"] =
            json!({"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"});
        assert!(!same_template(&rs, &restarted));
    }
}
