//! The disruption controller: recomputes PodDisruptionBudget status (C-1 to C-7).

use serde_json::{Value, json};

use crate::resources::PDBS;
use crate::store::State;
use crate::{meta, pdb};

/// Recompute and write one PDB's status. Returns the next disruptedPods expiry to requeue at.
pub fn sync(st: &mut State, ns: &str, name: &str) -> Option<jiff::Timestamp> {
    let obj = st.get(PDBS, ns, name)?.clone();
    let now = jiff::Timestamp::now();
    let mut next: Value = (*obj).clone();
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(0);
    if !next["status"].is_object() {
        next["status"] = json!({});
    }
    let expiry = match pdb::compute(st, &obj, now) {
        Ok(b) => {
            let s = &mut next["status"];
            s["currentHealthy"] = json!(b.healthy);
            s["desiredHealthy"] = json!(b.desired);
            s["expectedPods"] = json!(b.expected);
            s["disruptionsAllowed"] = json!(b.allowed);
            s["observedGeneration"] = json!(generation);
            if b.disrupted.is_empty() {
                if let Some(m) = s.as_object_mut() {
                    m.remove("disruptedPods");
                }
            } else {
                s["disruptedPods"] = json!(b.disrupted);
            }
            let (status, reason) = if b.allowed > 0 {
                ("True", "SufficientPods")
            } else {
                ("False", "InsufficientPods")
            };
            meta::set_condition(
                &mut next,
                json!({"type":"DisruptionAllowed","status":status,"reason":reason,"message":"",
                       "observedGeneration":generation,"lastTransitionTime":meta::now_rfc3339()}),
            );
            b.next_expiry
        }
        Err(msg) => {
            tracing::debug!(pdb = name, %msg, "disruption controller fail-safe");
            next["status"]["disruptionsAllowed"] = json!(0);
            let og = obj["status"]["observedGeneration"].as_i64();
            meta::set_condition(
                &mut next,
                json!({"type":"DisruptionAllowed","status":"False","reason":"SyncFailed","message":msg,
                       "observedGeneration": og.unwrap_or(0),"lastTransitionTime":meta::now_rfc3339()}),
            );
            None
        }
    };
    st.replace(PDBS, next);
    expiry
}
