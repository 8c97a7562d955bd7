//! The `/scale` subresource of Deployments, ReplicaSets and StatefulSets (autoscaling/v1
//! `Scale`), as `kubectl scale` and autoscalers use it: GET, PUT and PATCH.

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::write::{commit_update, parse_body, prepare_update};
use super::{Query, Target, json_response};
use crate::error::{ApiError, ApiResult};
use crate::meta;

use crate::sim::Shared;

/// A label selector as `metav1.LabelSelectorAsSelector(..).String()` prints it: requirements
/// sorted by key, `k=v`, `k in (a,b)`, `k notin (a)`, `k`, `!k`.
pub fn selector_string(sel: &Value) -> String {
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(m) = sel["matchLabels"].as_object() {
        for (k, v) in m {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or("").to_string();
        let mut values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        values.dedup();
        let text = match e["operator"].as_str().unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        };
        reqs.push((key, text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    reqs.into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

/// The Scale of a workload object.
fn scale_of(obj: &Value) -> Value {
    let m = &obj["metadata"];
    let mut md = json!({"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                        "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]});
    if let Some(o) = md.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    let mut spec = json!({});
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    if replicas != 0 {
        spec["replicas"] = json!(replicas);
    }
    let mut status = json!({"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0)});
    let sel = selector_string(&obj["spec"]["selector"]);
    if !sel.is_empty() {
        status["selector"] = json!(sel);
    }
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": md, "spec": spec, "status": status})
}

/// `GET .../{name}/scale`.
pub fn get(shared: &Shared, t: &Target) -> ApiResult<Response> {
    let r = crate::resources::get(t.res);
    let name = t.name.as_deref().unwrap_or("");
    let st = shared.store.lock();
    let obj = st
        .get(t.res, t.ns.as_deref().unwrap_or(""), name)
        .ok_or_else(|| ApiError::not_found(r.group, r.plural, name))?;
    Ok(json_response(200, &scale_of(&obj)))
}

/// Write the replicas of a Scale to its object: name, resourceVersion precondition and
/// validation as the real server's scale storage does them.
fn write(
    shared: &Shared,
    t: &Target,
    q: &Query,
    edit: impl FnOnce(Value) -> ApiResult<Value>,
) -> ApiResult<Response> {
    let r = crate::resources::get(t.res);
    let name = t.name.as_deref().unwrap_or("");
    let mut st = shared.store.lock();
    let old = st
        .get(t.res, t.ns.as_deref().unwrap_or(""), name)
        .ok_or_else(|| ApiError::not_found(r.group, r.plural, name))?;
    let scale = edit(scale_of(&old))?;
    let body_name = meta::name(&scale);
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let rv = meta::rv(&scale);
    if !rv.is_empty() && rv != meta::rv(&old) {
        return Err(ApiError::stale(r.group, r.plural, name));
    }
    let replicas = match &scale["spec"]["replicas"] {
        Value::Null => 0,
        v => v.as_i64().ok_or_else(|| {
            ApiError::bad_request(format!("Scale in version \"v1\" cannot be handled as a Scale: spec.replicas: {v} is not an integer"))
        })?,
    };
    if replicas < 0 {
        return Err(ApiError::invalid(
            "Scale",
            "autoscaling",
            name,
            &[(
                "FieldValueInvalid",
                "spec.replicas",
                format!("Invalid value: {replicas}: must be greater than or equal to 0"),
            )],
        ));
    }
    let mut next = (*old).clone();
    next["spec"]["replicas"] = json!(replicas);
    let next = prepare_update(t.res, &old, next, None);
    let out = commit_update(&mut st, t.res, next, q.dry_run());
    Ok(json_response(200, &scale_of(&out)))
}

/// `PUT .../{name}/scale` with a Scale.
pub fn update(shared: &Shared, t: &Target, q: &Query, body: &Bytes) -> ApiResult<Response> {
    let new = parse_body(body)?;
    write(shared, t, q, |_| Ok(new))
}

/// `PATCH .../{name}/scale`: the patch applies to the Scale (JSON, merge or strategic merge).
pub fn patch(
    shared: &Shared,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Response> {
    const TYPES: &[&str] = &[
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ];
    let ct = super::media_type(headers);
    if !TYPES.contains(&ct.as_str()) {
        return Err(ApiError::unsupported_media(TYPES));
    }
    let p: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    write(shared, t, q, |mut scale| {
        match ct.as_str() {
            "application/json-patch+json" => {
                let p: json_patch::Patch = serde_json::from_value(p)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                json_patch::patch(&mut scale, &p).map_err(|e| {
                    ApiError::new(
                        422,
                        "Invalid",
                        format!(
                            "the server rejected our request due to an error in our request: {e}"
                        ),
                    )
                })?;
            }
            "application/merge-patch+json" => json_patch::merge(&mut scale, &p),
            _ => crate::patch::merge(&mut scale, &p),
        }
        Ok(scale)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_print_like_label_selector_as_selector() {
        assert_eq!(
            selector_string(&json!({"matchLabels": {"tier": "web", "app": "shop"}})),
            "app=shop,tier=web"
        );
        assert_eq!(
            selector_string(
                &json!({"matchLabels": {"app": "shop"}, "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "zone", "operator": "NotIn", "values": ["b"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "beta", "operator": "Exists"}]})
            ),
            "app=shop,beta,!canary,env in (dev,prod),zone notin (b)"
        );
        assert_eq!(selector_string(&json!({})), "");
    }

    #[test]
    fn scale_of_a_deployment() {
        let d = json!({"metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "7"},
                       "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}},
                       "status": {"replicas": 2}});
        assert_eq!(
            scale_of(&d),
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                   "metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "7"},
                   "spec": {}, "status": {"replicas": 2, "selector": "app=web"}})
        );
    }
}
