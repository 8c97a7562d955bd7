//! The simulated kubelet: starts bound pods (Running, then Ready after `readySeconds`) and stops
//! terminating pods after min(terminationSeconds, grace), writing a terminal phase and then
//! deleting with grace 0 and a UID precondition (K-1 to K-3).

use serde_json::{Value, json};

use crate::graceful::{self, DeleteOptions};
use crate::meta;
use crate::objects;
use crate::resources::{NODES, PODS};
use crate::store::State;

/// Mark a bound Pending pod Running (Ready at once when `ready` is true).
pub fn start(st: &mut State, pod: &Value, ready: bool) {
    let ip = st
        .get(NODES, "", meta::node_name(pod))
        .map(|n| objects::node_ip(&n))
        .unwrap_or_default();
    let pod_ip = pod["status"]["podIP"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(objects::pod_ip);
    let mut next = pod.clone();
    next["status"] = objects::running_status(pod, ready, &ip, &pod_ip);
    st.replace(PODS, next);
}

/// Stop a terminating pod: terminal phase (Succeeded if the app stopped within its grace period,
/// Failed if it had to be killed), Ready=False, then the kubelet's grace-0 UID-precondition delete.
pub fn stop(st: &mut State, pod: &Value, killed: bool) {
    let (ns, name, uid) = (
        meta::namespace(pod).to_string(),
        meta::name(pod).to_string(),
        meta::uid(pod).to_string(),
    );
    let now = meta::now_rfc3339();
    let mut next = pod.clone();
    if !meta::is_terminal(pod) {
        next["status"]["phase"] = json!(if killed { "Failed" } else { "Succeeded" });
        for t in ["Ready", "ContainersReady"] {
            meta::set_condition(
                &mut next,
                json!({"type":t,"status":"False","reason":"PodCompleted","lastTransitionTime":now}),
            );
        }
        if let Some(cs) = next["status"]["containerStatuses"].as_array_mut() {
            for c in cs {
                c["ready"] = json!(false);
                c["started"] = json!(false);
                c["state"] = json!({"terminated":{"exitCode": if killed {137} else {0}, "reason": if killed {"Error"} else {"Completed"},
                                    "startedAt": c["state"]["running"]["startedAt"], "finishedAt": now}});
            }
        }
        st.replace(PODS, next);
    }
    let opts = DeleteOptions {
        grace: Some(0),
        uid: Some(uid),
        ..Default::default()
    };
    if let Err(e) = graceful::delete_pod(st, &ns, &name, &opts) {
        tracing::debug!(pod = %name, error = %e, "kubelet final delete failed");
    }
}
