//! GET of one object and LIST with selectors, resourceVersion semantics and paging.

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};

use super::{Query, Target, json_bytes, json_response, table};
use crate::error::{ApiError, ApiResult};
use crate::filter::Filter;
use crate::meta::{self, Key};
use crate::resources::{PODS, RESOURCES};
use crate::sim::Shared;

/// Whether the client asked for metadata-only objects (`as=PartialObjectMetadata[List]`, X-4).
pub fn wants_metadata(headers: &HeaderMap) -> bool {
    headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .map(|a| {
            a.split(',')
                .next()
                .unwrap_or("")
                .contains("as=PartialObjectMetadata")
        })
        .unwrap_or(false)
}

/// Convert an object to PartialObjectMetadata.
pub fn to_metadata(o: &Value) -> Value {
    json!({"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":o["metadata"]})
}

/// `GET` one object (or its `status`).
pub fn get(shared: &Shared, t: &Target, q: &Query, headers: &HeaderMap) -> ApiResult<Response> {
    let r = &RESOURCES[t.res];
    let name = t.name.as_deref().unwrap_or("");
    if let Some(f) = q.non_empty("fieldSelector") {
        let filter = Filter::new(t.res, None, None, Some(f))?;
        if let Some(fs) = &filter.fields
            && let Some(n) = fs.equals_value("metadata.name")
            && n != name
        {
            return Err(ApiError::bad_request(
                "fieldSelector metadata.name doesn't match requested name",
            ));
        }
    }
    let obj = {
        let st = shared.store.lock();
        st.get(t.res, t.ns.as_deref().unwrap_or(""), name)
    }
    .ok_or_else(|| ApiError::not_found(r.group, r.plural, name))?;
    if wants_metadata(headers) {
        return Ok(json_response(200, &to_metadata(&obj)));
    }
    if table::wants_table(headers) {
        let md = json!({"resourceVersion": meta::rv(&obj)});
        return Ok(json_response(200, &table::table(t.res, &[&obj], md)));
    }
    Ok(json_response(200, &obj))
}

fn invalid_list(field: &str, reason: &str, msg: String) -> ApiError {
    ApiError::invalid("ListOptions", "meta.k8s.io", "", &[(reason, field, msg)])
}

/// Validate list options shared by LIST and WATCH.
pub fn validate_rv_options(q: &Query, watch: bool) -> ApiResult<()> {
    let rv = q.non_empty("resourceVersion");
    let rvm = q.non_empty("resourceVersionMatch");
    if let Some(m) = rvm {
        if !matches!(m, "Exact" | "NotOlderThan") {
            return Err(invalid_list(
                "resourceVersionMatch",
                "FieldValueNotSupported",
                format!(
                    "Unsupported value: \"{m}\": supported values: \"Exact\", \"NotOlderThan\", \"\""
                ),
            ));
        }
        if rv.is_none() && !(watch && q.flag("sendInitialEvents")) {
            return Err(invalid_list(
                "resourceVersionMatch",
                "FieldValueForbidden",
                "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
                    .into(),
            ));
        }
        if q.non_empty("continue").is_some() {
            return Err(invalid_list(
                "resourceVersionMatch",
                "FieldValueForbidden",
                "Forbidden: resourceVersionMatch is forbidden when continue is provided".into(),
            ));
        }
        if m == "Exact" && rv == Some("0") {
            return Err(invalid_list(
                "resourceVersionMatch",
                "FieldValueForbidden",
                "Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""
                    .into(),
            ));
        }
    }
    if q.get("sendInitialEvents").is_some() && !watch {
        return Err(invalid_list(
            "sendInitialEvents",
            "FieldValueForbidden",
            "Forbidden: sendInitialEvents is forbidden for list".into(),
        ));
    }
    Ok(())
}

/// One selected list item: a key to copy from the store, or an already unpacked object.
enum Item {
    Key(Key),
    Obj(Arc<Value>),
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: i64,
    start: String,
}

fn encode_continue(rv: u64, key: &Key, namespaced: bool) -> String {
    let start = if namespaced {
        format!("{}/{}\u{0}", key.0, key.1)
    } else {
        format!("{}\u{0}", key.1)
    };
    let tok = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv: rv as i64,
        start,
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&tok).unwrap_or_default())
}

fn decode_continue(s: &str, namespaced: bool) -> ApiResult<(u64, Key)> {
    let bad = |m: &str| ApiError::bad_request(format!("invalid continue token: {m}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|e| bad(&e.to_string()))?;
    let tok: ContinueToken = serde_json::from_slice(&raw).map_err(|e| bad(&e.to_string()))?;
    if tok.v != "meta.k8s.io/v1" {
        return Err(bad("continue key is not supported"));
    }
    if tok.rv <= 0 {
        return Err(bad("continue key has an invalid resource version"));
    }
    let start = tok.start.trim_end_matches('\u{0}');
    let key = if namespaced {
        let (ns, name) = start
            .split_once('/')
            .ok_or_else(|| bad("continue key has no namespace"))?;
        (ns.to_string(), name.to_string())
    } else {
        (String::new(), start.to_string())
    };
    Ok((tok.rv as u64, key))
}

/// `GET` a collection.
pub async fn list(
    shared: &Shared,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    validate_rv_options(q, false)?;
    let r = &RESOURCES[t.res];
    let filter = t.filter(q)?;
    let rv_param = q.non_empty("resourceVersion");
    let cont = q.non_empty("continue");
    if cont.is_some() && rv_param.is_some_and(|v| v != "0") {
        return Err(ApiError::bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }
    let mut limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
    if rv_param == Some("0") {
        limit = 0;
    }
    if let Some(rvs) = rv_param.filter(|v| *v != "0") {
        let n: u64 = rvs
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rvs}")))?;
        let exact = q.get("resourceVersionMatch") == Some("Exact")
            || (q.non_empty("resourceVersionMatch").is_none() && limit > 0);
        let mut waited = 0;
        while shared.store.lock().rv() < n && waited < 30 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += 1;
        }
        let current = shared.store.lock().rv();
        if current < n {
            let e = ApiError::new(
                504,
                "Timeout",
                format!("Timeout: Too large resource version: {n}, current: {current}"),
            );
            let mut e = e.with_retry_after(1);
            if let Some(Value::Object(d)) = e.details.as_mut() {
                d.insert("causes".into(), json!([{"reason":"ResourceVersionTooLarge","message":"Too large resource version"}]));
            }
            return Err(e);
        }
        if exact && current != n {
            return Err(ApiError::expired(
                "The resourceVersion for the provided list is too old.",
            ));
        }
    }
    let (start, snapshot_rv) = match cont {
        Some(c) => {
            let (rv, key) = decode_continue(c, r.namespaced)?;
            (Some(key), Some(rv))
        }
        None => (None, None),
    };
    let st = shared.store.lock();
    let list_rv = snapshot_rv.unwrap_or(st.rv());
    let metadata_only = wants_metadata(headers);
    let as_table = table::wants_table(headers);
    let node = if t.res == PODS { filter.node() } else { None };
    let parse = metadata_only || as_table || filter.needs_object(node.as_deref());
    let keys: Box<dyn Iterator<Item = &Key>> = match &node {
        Some(n) => match st.pods_on_node(n) {
            Some(set) => match &start {
                Some(s) => Box::new(set.range::<Key, _>(s.clone()..)),
                None => Box::new(set.iter()),
            },
            None => Box::new(std::iter::empty()),
        },
        None => st.keys_from(t.res, t.ns.as_deref(), start.as_ref()),
    };
    let mut items: Vec<Item> = Vec::new();
    let mut next: Option<Key> = None;
    let mut remaining: usize = 0;
    let mut keys = keys.filter(|k| t.ns.as_ref().is_none_or(|ns| k.0 == *ns));
    for k in keys.by_ref() {
        let item = if parse {
            let Some(o) = st.get(t.res, &k.0, &k.1) else {
                continue;
            };
            if !filter.matches(&o) {
                continue;
            }
            Item::Obj(o)
        } else {
            Item::Key(k.clone())
        };
        if limit > 0 && items.len() == limit {
            next = Some(k.clone());
            remaining = 1;
            break;
        }
        items.push(item);
    }
    if next.is_some() && !filter.has_selectors() {
        remaining += keys.count();
    } else {
        drop(keys);
    }
    let mut md = json!({"resourceVersion": list_rv.to_string()});
    if let Some(k) = &next {
        md["continue"] = json!(encode_continue(list_rv, k, r.namespaced));
        if !filter.has_selectors() {
            md["remainingItemCount"] = json!(remaining);
        }
    }
    if as_table {
        let objs: Vec<&Value> = items
            .iter()
            .filter_map(|i| {
                if let Item::Obj(o) = i {
                    Some(&**o)
                } else {
                    None
                }
            })
            .collect();
        let out = serde_json::to_vec(&table::table(t.res, &objs, md)).unwrap_or_default();
        drop(st);
        return Ok(json_bytes(200, out, "application/json"));
    }
    let (kind, api_version) = if metadata_only {
        (
            "PartialObjectMetadataList".to_string(),
            "meta.k8s.io/v1".to_string(),
        )
    } else {
        (format!("{}List", r.kind), r.api_version())
    };
    let mut out = Vec::with_capacity(items.len() * 1024 + 256);
    out.extend_from_slice(b"{\"kind\":");
    serde_json::to_writer(&mut out, &kind).ok();
    out.extend_from_slice(b",\"apiVersion\":");
    serde_json::to_writer(&mut out, &api_version).ok();
    out.extend_from_slice(b",\"metadata\":");
    serde_json::to_writer(&mut out, &md).ok();
    out.extend_from_slice(b",\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match item {
            Item::Obj(o) if metadata_only => {
                serde_json::to_writer(&mut out, &to_metadata(o)).is_ok()
            }
            Item::Obj(o) => serde_json::to_writer(&mut out, &**o).is_ok(),
            Item::Key(k) => st.write_json(t.res, k, &mut out),
        };
    }
    drop(st);
    out.extend_from_slice(b"]}");
    Ok(json_bytes(200, out, "application/json"))
}
