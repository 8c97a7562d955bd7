//! POST (create), PUT (update) and PATCH, with the system-field, status/spec and generation
//! rules of U-1 to U-5 and P-1.

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::fields::{self, with_warnings};
use super::{Query, Target, json_response};
use super::{custom, ownership};
use crate::error::{ApiError, ApiResult};
use crate::resources::{DEPLOYMENTS, NAMESPACES, PDBS, PODS, ResId};
use crate::sim::Shared;
use crate::store::State;
use crate::{eviction, meta, patch};

/// Namespace lifecycle admission (U-1, E-2): 404 for a missing namespace, 403 while terminating.
pub fn admit_namespace(st: &State, res: ResId, ns: &str, name: &str) -> ApiResult<()> {
    let r = crate::resources::get(res);
    let Some(nso) = st.get(NAMESPACES, "", ns) else {
        return Err(ApiError::not_found("", "namespaces", ns));
    };
    if nso["status"]["phase"] == "Terminating" {
        return Err(ApiError::namespace_terminating(r.group, r.plural, name, ns));
    }
    Ok(())
}

pub(super) fn parse_body(body: &Bytes) -> ApiResult<Value> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
    })?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    Ok(v)
}

fn check_namespace_matches(obj: &Value, t: &Target) -> ApiResult<()> {
    let body_ns = meta::namespace(obj);
    if let Some(ns) = &t.ns
        && !body_ns.is_empty()
        && body_ns != ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// Apply create-time defaults and system fields (U-1).
pub fn prepare_create(res: ResId, mut obj: Value, ns: &str) -> Value {
    let r = crate::resources::get(res);
    obj["kind"] = json!(r.kind);
    obj["apiVersion"] = json!(r.api_version());
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    let m = obj["metadata"].as_object_mut().expect("object");
    for k in [
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
        "generation",
        "resourceVersion",
    ] {
        m.remove(k);
    }
    m.insert("uid".into(), json!(meta::new_uid()));
    m.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
    if r.namespaced {
        m.insert("namespace".into(), json!(ns));
    } else {
        m.remove("namespace");
    }
    if r.generational {
        m.insert("generation".into(), json!(1));
    }
    match res {
        PODS => {
            if obj["spec"]["terminationGracePeriodSeconds"].is_null() {
                obj["spec"]["terminationGracePeriodSeconds"] = json!(30);
            }
            for (k, v) in [
                ("restartPolicy", "Always"),
                ("schedulerName", "default-scheduler"),
                ("dnsPolicy", "ClusterFirst"),
            ] {
                if obj["spec"][k].is_null() {
                    obj["spec"][k] = json!(v);
                }
            }
            obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        }
        DEPLOYMENTS => {
            default_deployment_spec(&mut obj["spec"]);
            obj["status"] = json!({});
        }
        PDBS => {
            obj["status"] = json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0});
        }
        NAMESPACES => {
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        // A custom resource with the status subresource is created without status.
        _ if crate::resources::is_custom(res) && r.subresources.contains(&"status") => {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        _ if crate::resources::is_custom(res) => {}
        _ if r.subresources.contains(&"status") && res != crate::resources::NODES => {
            obj["status"] = json!({});
        }
        _ => {}
    }
    obj
}

/// The API server's defaults for a Deployment's spec (apps/v1 `SetDefaults_Deployment`): one
/// replica, a RollingUpdate strategy of 25% unavailable and 25% surge, 10 old ReplicaSets kept and
/// a 600 s progress deadline. `kubectl describe` shows them (`StrategyType`,
/// `RollingUpdateStrategy`).
fn default_deployment_spec(spec: &mut Value) {
    if !spec.is_object() {
        *spec = json!({});
    }
    if spec["replicas"].is_null() {
        spec["replicas"] = json!(1);
    }
    if !spec["strategy"].is_object() {
        spec["strategy"] = json!({});
    }
    let strategy = &mut spec["strategy"];
    if strategy["type"].is_null() {
        strategy["type"] = json!("RollingUpdate");
    }
    if strategy["type"] == "RollingUpdate" {
        if !strategy["rollingUpdate"].is_object() {
            strategy["rollingUpdate"] = json!({});
        }
        for k in ["maxUnavailable", "maxSurge"] {
            if strategy["rollingUpdate"][k].is_null() {
                strategy["rollingUpdate"][k] = json!("25%");
            }
        }
    }
    if spec["revisionHistoryLimit"].is_null() {
        spec["revisionHistoryLimit"] = json!(10);
    }
    if spec["progressDeadlineSeconds"].is_null() {
        spec["progressDeadlineSeconds"] = json!(600);
    }
}

/// Insert a prepared object, or 409 AlreadyExists.
pub fn insert_new(st: &mut State, res: ResId, obj: Value, dry_run: bool) -> ApiResult<Value> {
    let r = crate::resources::get(res);
    if st
        .get(res, meta::namespace(&obj), meta::name(&obj))
        .is_some()
    {
        return Err(ApiError::already_exists(
            r.group,
            r.plural,
            meta::name(&obj),
        ));
    }
    if dry_run {
        return Ok(obj);
    }
    Ok((*st.insert(res, obj)).clone())
}

/// `POST` a collection (or the eviction subresource).
pub fn create(
    shared: &Shared,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Response> {
    if t.sub.as_deref() == Some("eviction") {
        return eviction::evict(shared, t, q, body);
    }
    if t.name.is_some() {
        return Err(ApiError::method_not_allowed("POST"));
    }
    let r = crate::resources::get(t.res);
    let directive = fields::directive(q, "CreateOptions")?;
    let mut obj = parse_body(body)?;
    let warnings = fields::check_body(t, &mut obj, directive)?;
    check_namespace_matches(&obj, t)?;
    if meta::name(&obj).is_empty() {
        match obj["metadata"]["generateName"].as_str() {
            Some(g) if !g.is_empty() => {
                obj["metadata"]["name"] = json!(format!("{g}{}", meta::random_suffix(5)))
            }
            _ => {
                return Err(ApiError::invalid(
                    r.kind,
                    r.group,
                    "",
                    &[(
                        "FieldValueRequired",
                        "metadata.name",
                        "Required value: name or generateName is required".into(),
                    )],
                ));
            }
        }
    }
    let ns = t.ns.clone().unwrap_or_default();
    let mut st = shared.store.lock();
    if r.namespaced {
        admit_namespace(&st, t.res, &ns, meta::name(&obj))?;
    }
    let mut obj = prepare_create(t.res, obj, &ns);
    custom::admit(t, &mut obj, None)?;
    owned(t, q, headers, None, &mut obj, None)?;
    let out = insert_new(&mut st, t.res, obj, q.dry_run())?;
    custom::after_write(&mut st, t, &out, q.dry_run());
    Ok(with_warnings(json_response(201, &out), &warnings))
}

/// Record the write in the object's `managedFields` (an Apply may conflict: 409).
fn owned(
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    old: Option<&Value>,
    next: &mut Value,
    apply: Option<&Value>,
) -> ApiResult<()> {
    let manager = ownership::manager(q.non_empty("fieldManager"), headers);
    let api_version = crate::resources::get(t.res).api_version();
    ownership::record(
        old,
        next,
        &ownership::Write {
            manager: &manager,
            sub: t.sub.as_deref().unwrap_or(""),
            api_version: &api_version,
            apply: apply.map(|a| (a, q.flag("force"))),
        },
    )
}

/// Merge a client-supplied new version onto the stored one (U-2, U-3, U-4).
pub(super) fn prepare_update(res: ResId, old: &Value, new: Value, sub: Option<&str>) -> Value {
    let r = crate::resources::get(res);
    let mut next = if sub == Some("status") {
        let mut n = old.clone();
        n["status"] = new["status"].clone();
        n
    } else {
        let mut n = new;
        if r.subresources.contains(&"status") {
            n["status"] = old["status"].clone();
            if old["status"].is_null()
                && let Some(m) = n.as_object_mut()
            {
                m.remove("status");
            }
        }
        n
    };
    next["kind"] = json!(r.kind);
    next["apiVersion"] = json!(r.api_version());
    if !next["metadata"].is_object() {
        next["metadata"] = json!({});
    }
    for k in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "namespace",
        "name",
    ] {
        match &old["metadata"][k] {
            Value::Null => {
                if let Some(m) = next["metadata"].as_object_mut() {
                    m.remove(k);
                }
            }
            v => next["metadata"][k] = v.clone(),
        }
    }
    let changed = match crate::resources::is_custom(res) {
        true => custom::spec_changed(r, old, &next),
        false => old["spec"] != next["spec"],
    };
    if r.generational && sub != Some("status") && changed {
        let g = old["metadata"]["generation"].as_i64().unwrap_or(0);
        next["metadata"]["generation"] = json!(g + 1);
    }
    next
}

/// Persist an updated object: delete-on-update when the last finalizer goes (U-5), dry-run aware.
pub(super) fn commit_update(st: &mut State, res: ResId, next: Value, dry_run: bool) -> Value {
    if dry_run {
        return next;
    }
    let no_finalizers = next["metadata"]["finalizers"]
        .as_array()
        .is_none_or(|f| f.is_empty());
    let grace = next["metadata"]["deletionGracePeriodSeconds"]
        .as_i64()
        .unwrap_or(0);
    let written = st.replace(res, next);
    if meta::is_terminating(&written)
        && no_finalizers
        && grace == 0
        && let Some(gone) = st.remove(res, meta::namespace(&written), meta::name(&written))
    {
        return (*gone).clone();
    }
    (*written).clone()
}

/// `PUT` an object or its status.
pub fn update(
    shared: &Shared,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Response> {
    if t.sub.as_deref().is_some_and(|s| s != "status") {
        return Err(ApiError::method_not_allowed("PUT"));
    }
    let r = crate::resources::get(t.res);
    let name = t.name.as_deref().unwrap_or("");
    let directive = fields::directive(q, "UpdateOptions")?;
    let mut obj = parse_body(body)?;
    let warnings = fields::check_body(t, &mut obj, directive)?;
    check_namespace_matches(&obj, t)?;
    if meta::name(&obj) != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            meta::name(&obj)
        )));
    }
    let mut st = shared.store.lock();
    let old = st
        .get(t.res, t.ns.as_deref().unwrap_or(""), name)
        .ok_or_else(|| ApiError::not_found(r.group, r.plural, name))?;
    match meta::rv(&obj) {
        "" if !r.unconditional_update => {
            return Err(ApiError::invalid(
                r.plural,
                r.group,
                name,
                &[(
                    "FieldValueInvalid",
                    "metadata.resourceVersion",
                    "Invalid value: 0x0: must be specified for an update".into(),
                )],
            ));
        }
        "" => {}
        rv if rv != meta::rv(&old) => return Err(ApiError::stale(r.group, r.plural, name)),
        _ => {}
    }
    let mut next = prepare_update(t.res, &old, obj, t.sub.as_deref());
    custom::admit(t, &mut next, Some(&old))?;
    owned(t, q, headers, Some(&old), &mut next, None)?;
    let out = commit_update(&mut st, t.res, next, q.dry_run());
    custom::after_write(&mut st, t, &out, q.dry_run());
    Ok(with_warnings(json_response(200, &out), &warnings))
}

const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// `PATCH` an object or its status (P-1).
pub fn patch(
    shared: &Shared,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Response> {
    if t.sub.as_deref().is_some_and(|s| s != "status") {
        return Err(ApiError::method_not_allowed("PATCH"));
    }
    let r = crate::resources::get(t.res);
    let name = t.name.as_deref().unwrap_or("");
    let ct = super::media_type(headers);
    let accepted = match t.crd {
        Some(_) => custom::CUSTOM_PATCH_TYPES,
        None => PATCH_TYPES,
    };
    if !accepted.contains(&ct.as_str()) {
        return Err(ApiError::unsupported_media(accepted));
    }
    let apply = ct == "application/apply-patch+yaml";
    let directive = fields::directive(q, "PatchOptions")?;
    if apply && q.non_empty("fieldManager").is_none() {
        return Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            &[(
                "FieldValueRequired",
                "fieldManager",
                "Required value: is required for apply patch".into(),
            )],
        ));
    }
    if !apply && q.get("force").is_some() {
        return Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            &[(
                "FieldValueForbidden",
                "force",
                "Forbidden: may not be specified for non-apply patch".into(),
            )],
        ));
    }
    let patch_value: Value = if apply {
        serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
    };
    let ns = t.ns.clone().unwrap_or_default();
    let mut st = shared.store.lock();
    let Some(old) = st.get(t.res, &ns, name) else {
        if apply && t.sub.is_none() {
            if r.namespaced {
                admit_namespace(&st, t.res, &ns, name)?;
            }
            let mut obj = patch_value.clone();
            obj["metadata"]["name"] = json!(name);
            let warnings = fields::check_body(t, &mut obj, directive)?;
            let mut obj = prepare_create(t.res, obj, &ns);
            custom::admit(t, &mut obj, None)?;
            owned(t, q, headers, None, &mut obj, Some(&patch_value))?;
            let out = insert_new(&mut st, t.res, obj, q.dry_run())?;
            custom::after_write(&mut st, t, &out, q.dry_run());
            return Ok(with_warnings(json_response(201, &out), &warnings));
        }
        return Err(ApiError::not_found(r.group, r.plural, name));
    };
    let mut doc = (*old).clone();
    match ct.as_str() {
        "application/json-patch+json" => {
            let p: json_patch::Patch = serde_json::from_value(patch_value.clone())
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            json_patch::patch(&mut doc, &p).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
        }
        "application/merge-patch+json" => json_patch::merge(&mut doc, &patch_value),
        _ => patch::merge(&mut doc, &patch_value),
    }
    let warnings = fields::check_patched(t, &old, &mut doc, directive)?;
    if meta::rv(&doc) != meta::rv(&old) && !meta::rv(&doc).is_empty() {
        return Err(ApiError::stale(r.group, r.plural, name));
    }
    let mut next = prepare_update(t.res, &old, doc, t.sub.as_deref());
    custom::admit(t, &mut next, Some(&old))?;
    owned(
        t,
        q,
        headers,
        Some(&old),
        &mut next,
        apply.then_some(&patch_value),
    )?;
    let out = commit_update(&mut st, t.res, next, q.dry_run());
    custom::after_write(&mut st, t, &out, q.dry_run());
    Ok(with_warnings(json_response(200, &out), &warnings))
}
