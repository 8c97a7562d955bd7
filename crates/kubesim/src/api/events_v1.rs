//! `events.k8s.io/v1` Events: the core/v1 Events seen through the newer API, as the real server
//! serves both from one storage. A request is translated to core/v1 (body, patch and field
//! selector), served by the core handlers, and its answer translated back; watch streams
//! translate each object (`watch.rs`). The field mapping is the real conversion's
//! (`pkg/apis/events/v1/conversion.go`): `note`/`message`, `regarding`/`involvedObject`,
//! `reportingController`/`reportingComponent`, `deprecatedSource`/`source`,
//! `deprecatedFirstTimestamp`/`firstTimestamp`, `deprecatedLastTimestamp`/`lastTimestamp`,
//! `deprecatedCount`/`count`; the other fields (`eventTime`, `series`, `action`, `reason`,
//! `type`, `related`, `reportingInstance`) have the same names.

use axum::body::{Body, Bytes};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{Query, Target};
use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::resources::EVENTS;

/// (events.k8s.io/v1 name, core/v1 name) of the fields that differ.
const FIELDS: &[(&str, &str)] = &[
    ("note", "message"),
    ("regarding", "involvedObject"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// The field selector keys of events.k8s.io/v1 and the core/v1 keys they select.
const SELECTORS: &[(&str, &str)] = &[
    ("regarding.kind", "involvedObject.kind"),
    ("regarding.namespace", "involvedObject.namespace"),
    ("regarding.name", "involvedObject.name"),
    ("regarding.uid", "involvedObject.uid"),
    ("regarding.apiVersion", "involvedObject.apiVersion"),
    (
        "regarding.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("regarding.fieldPath", "involvedObject.fieldPath"),
    ("reportingController", "reportingComponent"),
    ("reason", "reason"),
    ("type", "type"),
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
];

fn rename(m: &mut Map<String, Value>, to_core: bool) {
    for (v1, core) in FIELDS {
        let (from, to) = if to_core { (v1, core) } else { (core, v1) };
        if let Some(v) = m.remove(*from) {
            m.insert(to.to_string(), v);
        }
    }
}

/// An events.k8s.io/v1 Event (or a merge/apply patch of one) as core/v1.
pub fn to_core(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        rename(m, true);
        if m.contains_key("apiVersion") {
            m.insert("apiVersion".into(), json!("v1"));
        }
    }
    v
}

/// A core/v1 Event as events.k8s.io/v1 (zero values of the core-only shape dropped, as the
/// real conversion leaves them unset).
pub fn from_core(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        rename(m, false);
        m.insert("apiVersion".into(), json!("events.k8s.io/v1"));
        if m.get("deprecatedCount").and_then(Value::as_i64) == Some(0) {
            m.remove("deprecatedCount");
        }
        if m.get("deprecatedSource")
            .and_then(Value::as_object)
            .is_some_and(|s| s.values().all(|v| v.as_str().is_none_or(str::is_empty)))
        {
            m.remove("deprecatedSource");
        }
        for k in ["deprecatedFirstTimestamp", "deprecatedLastTimestamp"] {
            if m.get(k).is_some_and(Value::is_null) {
                m.remove(k);
            }
        }
    }
    v
}

/// An answer of the core handlers as events.k8s.io/v1: Events and EventLists are translated,
/// a Status names the events.k8s.io resource, anything else (Table, PartialObjectMetadata) is
/// left as it is.
pub fn answer(v: Value) -> Value {
    match v["kind"].as_str() {
        Some("Status") if v["details"]["kind"] == "events" && v["details"]["group"].is_null() => {
            let mut v = v;
            v["details"]["group"] = json!("events.k8s.io");
            if let Some(m) = v["message"].as_str()
                && let Some(rest) = m.strip_prefix("events \"")
            {
                v["message"] = json!(format!("events.events.k8s.io \"{rest}"));
            }
            v
        }
        Some("Event") => from_core(v),
        Some("EventList") => {
            let mut v = v;
            v["apiVersion"] = json!("events.k8s.io/v1");
            if let Some(items) = v["items"].as_array_mut() {
                for i in items.iter_mut() {
                    *i = from_core(std::mem::take(i));
                }
            }
            v
        }
        _ => v,
    }
}

/// A JSON patch's operations with events.k8s.io/v1 paths rewritten to core/v1 ones.
pub fn json_patch_to_core(mut ops: Value) -> Value {
    if let Some(list) = ops.as_array_mut() {
        for op in list {
            for k in ["path", "from"] {
                if let Some(p) = op[k].as_str() {
                    let mut segs: Vec<String> = p.split('/').map(String::from).collect();
                    if let Some(first) = segs.get_mut(1)
                        && let Some((_, core)) = FIELDS.iter().find(|(v1, _)| v1 == first)
                    {
                        *first = core.to_string();
                    }
                    op[k] = json!(segs.join("/"));
                }
            }
        }
    }
    ops
}

/// The request's query with an events.k8s.io/v1 field selector rewritten to core/v1 keys (400
/// for a key events.k8s.io/v1 does not support, with the real message).
pub fn query_to_core(q: &Query) -> ApiResult<Query> {
    let Some(fs) = q.non_empty("fieldSelector") else {
        return Ok(q.clone());
    };
    let mut terms = Vec::new();
    for term in fs.split(',') {
        let (key, op_value) = match term.find(['=', '!']) {
            Some(i) => term.split_at(i),
            None => (term, ""),
        };
        let key = key.trim();
        let Some((_, core)) = SELECTORS.iter().find(|(v1, _)| *v1 == key) else {
            return Err(ApiError::bad_request(format!(
                "field label not supported: {key}"
            )));
        };
        terms.push(format!("{core}{op_value}"));
    }
    let mut q = q.clone();
    q.set("fieldSelector", &terms.join(","));
    Ok(q)
}

/// The core/v1 request an events.k8s.io/v1 request stands for: the same path on core Events,
/// the field selector and the body translated (a created Event checked first, as the real
/// server checks Events created through events.k8s.io/v1).
pub fn request(
    t: &Target,
    q: &Query,
    verb: &str,
    content_type: &str,
    body: &Bytes,
) -> ApiResult<(Target, Query, Bytes)> {
    let core = Target {
        res: EVENTS,
        events_v1: true,
        ..t.clone()
    };
    let q = query_to_core(q)?;
    if body.is_empty() || !matches!(verb, "create" | "update" | "patch") {
        return Ok((core, q, body.clone()));
    }
    let apply = content_type == "application/apply-patch+yaml";
    let v: Value = if apply {
        serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
        })?
    };
    if verb == "create" {
        validate_create(&v, t.ns.as_deref().unwrap_or(""))?;
    }
    let v = match content_type {
        "application/json-patch+json" => json_patch_to_core(v),
        _ => to_core(v),
    };
    Ok((
        core,
        q,
        Bytes::from(serde_json::to_vec(&v).unwrap_or_default()),
    ))
}

/// A core handler's JSON answer as events.k8s.io/v1.
pub async fn respond(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) => {
            parts.headers.remove("content-length");
            let out = serde_json::to_vec(&answer(v)).unwrap_or_default();
            Response::from_parts(parts, Body::from(out))
        }
        Err(_) => Response::from_parts(parts, Body::from(bytes)),
    }
}

fn has(v: &Value, k: &str) -> bool {
    match &v[k] {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// The checks the real server makes of an Event created through events.k8s.io/v1
/// (`ValidateEventCreate`), on the events.k8s.io/v1 body, with its messages.
pub fn validate_create(ev: &Value, ns: &str) -> ApiResult<()> {
    let mut causes: Vec<(&str, &str, String)> = Vec::new();
    let required = |f: &'static str| ("FieldValueRequired", f, "Required value".to_string());
    let invalid = |f: &'static str, msg: &str| {
        (
            "FieldValueInvalid",
            f,
            format!("Invalid value: \"\": {msg}"),
        )
    };
    let regarding_ns = ev["regarding"]["namespace"].as_str().unwrap_or("");
    if regarding_ns.is_empty() && ns != "default" && ns != "kube-system" {
        causes.push((
            "FieldValueInvalid",
            "involvedObject.namespace",
            "Invalid value: \"\": does not match event.namespace".into(),
        ));
    }
    if !has(ev, "reportingController") {
        causes.push(required("reportingController"));
    }
    if !has(ev, "reportingInstance") {
        causes.push(required("reportingInstance"));
    }
    if !has(ev, "action") {
        causes.push(required("action"));
    }
    if !has(ev, "reason") {
        causes.push(required("reason"));
    }
    if ev["series"].is_object() {
        if ev["series"]["count"].as_i64().unwrap_or(0) < 2 {
            causes.push(invalid("series.count", "should be at least 2"));
        }
        if !has(&ev["series"], "lastObservedTime") {
            causes.push(required("series.lastObservedTime"));
        }
    }
    if !has(ev, "eventTime") {
        causes.push(required("eventTime"));
    }
    let ty = ev["type"].as_str().unwrap_or("");
    if ty != "Normal" && ty != "Warning" {
        causes.push((
            "FieldValueInvalid",
            "type",
            format!("Invalid value: \"\": has invalid value: {ty}"),
        ));
    }
    for (k, f) in [
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
    ] {
        if has(ev, k) {
            causes.push(invalid(f, "needs to be unset"));
        }
    }
    if ev["deprecatedCount"].as_i64().unwrap_or(0) != 0 {
        causes.push(invalid("count", "needs to be unset"));
    }
    if has(&ev["deprecatedSource"], "component") || has(&ev["deprecatedSource"], "host") {
        causes.push(invalid("source", "needs to be unset"));
    }
    if causes.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        "Event",
        "events.k8s.io",
        meta::name(ev),
        &causes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_apis_map_fields_as_the_real_conversion() {
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "note": "hi", "regarding": {"kind": "Node", "name": "n1"}, "reportingController": "kdrain",
            "reportingInstance": "kdrain-0", "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:00.000000Z"}});
        let core = to_core(v1.clone());
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["message"], "hi");
        assert_eq!(core["involvedObject"]["name"], "n1");
        assert_eq!(core["reportingComponent"], "kdrain");
        assert_eq!(from_core(core), v1);
        let q = query_to_core(&Query::parse(
            "fieldSelector=regarding.name%3Dn1,reportingController!%3Dx",
        ))
        .unwrap();
        assert_eq!(
            q.get("fieldSelector"),
            Some("involvedObject.name=n1,reportingComponent!=x")
        );
        assert!(query_to_core(&Query::parse("fieldSelector=involvedObject.name%3Dn1")).is_err());
        assert_eq!(
            json_patch_to_core(json!([{"op": "replace", "path": "/note", "value": "x"}])),
            json!([{"op": "replace", "path": "/message", "value": "x"}])
        );
    }
}
