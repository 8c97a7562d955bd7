//! DELETE of one object and of a collection (G-1 to G-8).

use axum::body::Bytes;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Query, Target, delete_options, json_response};
use crate::error::{ApiError, ApiResult};
use crate::graceful::{self, DeleteOptions};
use crate::meta;
use crate::resources::{CRDS, NAMESPACES, PODS};
use crate::sim::Shared;
use crate::store::State;

/// Delete one object with resolved options; returns the response body.
fn delete_one(
    shared: &Shared,
    st: &mut State,
    t: &Target,
    name: &str,
    opts: &DeleteOptions,
) -> ApiResult<Value> {
    let r = crate::resources::get(t.res);
    let ns = t.ns.as_deref().unwrap_or("");
    match t.res {
        PODS => {
            if !opts.dry_run
                && let Some(pod) = st.get(PODS, ns, name)
                && graceful::check_preconditions(&pod, "Pod", opts).is_ok()
            {
                shared.ledger.client_removal(st, &pod, "deleted");
            }
            Ok((*graceful::delete_pod(st, ns, name, opts)?).clone())
        }
        NAMESPACES => {
            let obj = st
                .get(NAMESPACES, "", name)
                .ok_or_else(|| ApiError::not_found("", "namespaces", name))?;
            graceful::check_preconditions(&obj, r.kind, opts)?;
            let mut next = (*obj).clone();
            if next["metadata"]["deletionTimestamp"].is_null() {
                next["metadata"]["deletionTimestamp"] = json!(meta::now_rfc3339());
                next["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            }
            next["status"]["phase"] = json!("Terminating");
            if opts.dry_run {
                return Ok(next);
            }
            Ok((*st.replace(NAMESPACES, next)).clone())
        }
        _ => {
            let obj = st
                .get(t.res, ns, name)
                .ok_or_else(|| ApiError::not_found(r.group, r.plural, name))?;
            graceful::check_preconditions(&obj, r.kind, opts)?;
            let finalizers = obj["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty());
            if finalizers {
                // Kept until its finalizers are removed (U-5), marked for deletion once.
                if !obj["metadata"]["deletionTimestamp"].is_null() {
                    return Ok((*obj).clone());
                }
                let mut next = (*obj).clone();
                next["metadata"]["deletionTimestamp"] = json!(meta::now_rfc3339());
                next["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                if let Some(g) = obj["metadata"]["generation"].as_i64().filter(|g| *g > 0) {
                    next["metadata"]["generation"] = json!(g + 1);
                }
                if opts.dry_run {
                    return Ok(next);
                }
                return Ok((*st.replace(t.res, next)).clone());
            }
            if !opts.dry_run {
                if t.res == CRDS {
                    crate::crd::remove_objects(st, name);
                }
                st.remove(t.res, ns, name);
            }
            let mut details = json!({"name": name, "kind": r.plural, "uid": meta::uid(&obj)});
            if !r.group.is_empty() {
                details["group"] = json!(r.group);
            }
            Ok(
                json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":details}),
            )
        }
    }
}

/// `DELETE` one object.
pub fn delete(shared: &Shared, t: &Target, q: &Query, body: &Bytes) -> ApiResult<Response> {
    if t.sub.is_some() {
        return Err(ApiError::method_not_allowed("DELETE"));
    }
    let opts = delete_options::from_request(q, body)?;
    let name = t.name.clone().unwrap_or_default();
    let mut st = shared.store.lock();
    let out = delete_one(shared, &mut st, t, &name, &opts)?;
    Ok(json_response(200, &out))
}

/// `DELETE` a collection: every selected object, returned as a list.
pub fn delete_collection(
    shared: &Shared,
    t: &Target,
    q: &Query,
    body: &Bytes,
) -> ApiResult<Response> {
    let opts = delete_options::from_request(q, body)?;
    let filter = t.filter(q)?;
    let r = crate::resources::get(t.res);
    let mut st = shared.store.lock();
    let keys: Vec<(String, String)> = st
        .iter(t.res, t.ns.as_deref())
        .filter(|(_, o)| filter.matches(o))
        .map(|(k, _)| k.clone())
        .collect();
    let mut items = Vec::new();
    for (ns, name) in keys {
        let one = Target {
            res: t.res,
            ns: Some(ns).filter(|n| !n.is_empty()),
            name: Some(name.clone()),
            sub: None,
            crd: t.crd.clone(),
            events_v1: t.events_v1,
        };
        if let Ok(v) = delete_one(shared, &mut st, &one, &name, &opts)
            && v["kind"] != "Status"
        {
            items.push(v);
        }
    }
    let rv = st.rv().to_string();
    Ok(json_response(
        200,
        &json!({"kind": format!("{}List", r.kind), "apiVersion": r.api_version(), "metadata": {"resourceVersion": rv}, "items": items}),
    ))
}
