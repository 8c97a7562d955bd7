//! The `pods/eviction` subresource, rule by rule (E-1 to E-12).

use axum::body::Bytes;
use axum::response::Response;
use serde_json::{Value, json};

use crate::api::{Query, Target, json_response};
use crate::error::{ApiError, ApiResult};
use crate::graceful::{self, DeleteOptions};
use crate::resources::{PDBS, PODS};
use crate::sim::Shared;
use crate::store::State;
use crate::{meta, pdb};

const VIOLATE: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

fn budget_429(cause: String) -> ApiError {
    let mut e = ApiError::new(429, "TooManyRequests", VIOLATE);
    e.details = Some(json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]}));
    e
}

/// The 429 "still being processed" error with Retry-After 10 (E-6 step 1).
fn still_processing(pdb_name: &str) -> ApiError {
    budget_429(format!(
        "The disruption budget {pdb_name} is still being processed by the server."
    ))
    .with_retry_after(10)
}

fn success() -> Response {
    json_response(
        201,
        &json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201}),
    )
}

/// Add the DisruptionTarget condition, then delete the pod (E-8, E-9), recording invariant checks.
fn condition_and_delete(
    shared: &Shared,
    st: &mut State,
    pod: &Value,
    mut opts: DeleteOptions,
    pdbs: &[String],
) -> ApiResult<Response> {
    let (ns, name) = (
        meta::namespace(pod).to_string(),
        meta::name(pod).to_string(),
    );
    graceful::check_preconditions(pod, "Pod", &opts)?;
    if opts.dry_run {
        graceful::delete_pod(st, &ns, &name, &opts)?;
        return Ok(success());
    }
    let was_healthy = meta::is_ready(pod) && !meta::is_terminating(pod);
    let mut next = pod.clone();
    meta::set_condition(
        &mut next,
        json!({"type":"DisruptionTarget","status":"True","reason":"EvictionByEvictionAPI",
               "message":"Eviction API: evicting","lastTransitionTime": meta::now_rfc3339()}),
    );
    let written = st.replace(PODS, next);
    if opts.rv.is_some() {
        opts.rv = Some(meta::rv(&written).to_string());
    }
    shared.ledger.client_removal(st, &written, "evicted");
    graceful::delete_pod(st, &ns, &name, &opts)?;
    if was_healthy {
        shared.ledger.budget_check(st, &ns, &name, pdbs);
    }
    Ok(success())
}

/// Check the budget and take one disruption from it (E-6). Persists unless dry-run.
fn check_and_decrement(
    st: &mut State,
    pdb_obj: &Value,
    pod_name: &str,
    dry_run: bool,
) -> ApiResult<()> {
    let pdb_name = meta::name(pdb_obj);
    let status = &pdb_obj["status"];
    let observed = status["observedGeneration"].as_i64().unwrap_or(0);
    let generation = pdb_obj["metadata"]["generation"].as_i64().unwrap_or(0);
    if observed < generation {
        return Err(still_processing(pdb_name));
    }
    let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
    if allowed < 0 {
        return Err(ApiError::forbidden(
            "policy",
            "poddisruptionbudget",
            pdb_name,
            "pdb disruptions allowed is negative",
        ));
    }
    if status["disruptedPods"]
        .as_object()
        .is_some_and(|m| m.len() > 2000)
    {
        return Err(ApiError::forbidden(
            "policy",
            "poddisruptionbudget",
            pdb_name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if allowed == 0 {
        return Err(budget_429(format!(
            "The disruption budget {pdb_name} needs {} healthy pods and has {} currently",
            status["desiredHealthy"].as_i64().unwrap_or(0),
            status["currentHealthy"].as_i64().unwrap_or(0)
        )));
    }
    if dry_run {
        return Ok(());
    }
    let mut next = pdb_obj.clone();
    next["status"]["disruptionsAllowed"] = json!(allowed - 1);
    if allowed - 1 == 0 {
        meta::set_condition(
            &mut next,
            json!({"type":"DisruptionAllowed","status":"False","reason":"InsufficientPods","message":"",
                   "observedGeneration": observed, "lastTransitionTime": meta::now_rfc3339()}),
        );
    }
    if !next["status"]["disruptedPods"].is_object() {
        next["status"]["disruptedPods"] = json!({});
    }
    next["status"]["disruptedPods"][pod_name] = json!(meta::now_rfc3339());
    st.replace(PDBS, next);
    Ok(())
}

/// `POST /api/v1/namespaces/{ns}/pods/{name}/eviction`.
pub fn evict(shared: &Shared, t: &Target, q: &Query, body: &Bytes) -> ApiResult<Response> {
    let ns = t.ns.clone().unwrap_or_default();
    let name = t.name.clone().unwrap_or_default();
    let ev: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
        })?
    };
    let body_name = meta::name(&ev);
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let body_ns = meta::namespace(&ev);
    if !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let mut opts = DeleteOptions::from_json(&ev["deleteOptions"])?;
    let body_dry = ev["deleteOptions"]["dryRun"]
        .as_array()
        .filter(|a| !a.is_empty())
        .cloned();
    if let (Some(qd), Some(bd)) = (q.get("dryRun").filter(|s| !s.is_empty()), &body_dry)
        && (bd.len() != 1 || bd[0] != qd)
    {
        return Err(ApiError::internal(&format!(
            "Non-matching dry-run options in request and content: [{qd}] and {}",
            Value::Array(bd.clone())
        )));
    }
    opts.dry_run |= q.dry_run();
    let unknown: Vec<String> = ev
        .as_object()
        .map(|m| {
            m.keys()
                .filter(|k| {
                    !matches!(
                        k.as_str(),
                        "kind" | "apiVersion" | "metadata" | "deleteOptions"
                    )
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut resp = evict_checked(shared, &ns, &name, opts)?;
    for k in unknown {
        // D-0.6: unknown fields are dropped with a warning (fieldValidation=Warn).
        if let Ok(v) =
            axum::http::HeaderValue::from_str(&format!("299 - \"unknown field \\\"{k}\\\"\""))
        {
            resp.headers_mut().append("warning", v);
        }
    }
    Ok(resp)
}

/// The eviction proper, after the body has been decoded.
fn evict_checked(
    shared: &Shared,
    ns: &str,
    name: &str,
    mut opts: DeleteOptions,
) -> ApiResult<Response> {
    let (ns, name) = (ns.to_string(), name.to_string());
    let mut st = shared.store.lock();
    crate::api::admit_namespace(&st, PODS, &ns, &name)?;
    let pod = st
        .get(PODS, &ns, &name)
        .ok_or_else(|| ApiError::not_found("", "pods", &name))?;
    let phase = meta::phase(&pod);
    if matches!(phase, "Succeeded" | "Failed" | "Pending") || meta::is_terminating(&pod) {
        if phase == "Pending" && opts.rv.is_none() {
            opts.rv = Some(meta::rv(&pod).to_string());
        }
        return condition_and_delete(shared, &mut st, &pod, opts, &[]);
    }
    let pdbs = st.pdbs.matching(&ns, &meta::labels(&pod));
    if pdbs.is_empty() {
        return condition_and_delete(shared, &mut st, &pod, opts, &pdbs);
    }
    if pdbs.len() > 1 {
        return Err(ApiError::new(
            500,
            "",
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        ));
    }
    let pdb_obj = st
        .get(PDBS, &ns, &pdbs[0])
        .ok_or_else(|| ApiError::internal("PodDisruptionBudget vanished"))?;
    if !meta::is_ready(&pod) {
        let status = &pdb_obj["status"];
        let current = status["currentHealthy"].as_i64().unwrap_or(0);
        let desired = status["desiredHealthy"].as_i64().unwrap_or(0);
        let always = pdb_obj["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow";
        if always || (current >= desired && desired > 0) {
            let client_rv = opts.rv.is_some();
            if opts.rv.is_none() {
                opts.rv = Some(meta::rv(&pod).to_string());
            }
            return match condition_and_delete(shared, &mut st, &pod, opts, &pdbs) {
                Err(e) if e.code == 409 && !client_rv => Err(still_processing(&pdbs[0])),
                other => other,
            };
        }
    }
    check_and_decrement(&mut st, &pdb_obj, &name, opts.dry_run)?;
    condition_and_delete(shared, &mut st, &pod, opts, &pdbs)
}

/// Desired healthy count of a PDB computed from live state (for the invariant ledger).
pub fn live_desired(st: &State, pdb_obj: &Value) -> Option<i64> {
    pdb::compute(st, pdb_obj, jiff::Timestamp::now())
        .ok()
        .map(|b| b.desired)
}
