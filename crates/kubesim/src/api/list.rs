//! GET of one object and LIST with selectors, resourceVersion semantics and paging.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Query, Target, json_bytes, json_response, table};
use crate::error::{ApiError, ApiResult};
use crate::filter::Filter;
use crate::meta::{self, Key};
use crate::paging::{ContinueToken, Scope};
use crate::resources::PODS;
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
    let r = crate::resources::get(t.res);
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
        return Ok(json_response(
            200,
            &table::table(t.res, t.crd.as_deref(), &[&obj], md),
        ));
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

/// The 410 of a list whose resourceVersion is no longer in the history.
const LIST_TOO_OLD: &str = "The resourceVersion for the provided list is too old.";

/// The 410 message of an expired continue token (`storage/etcd3/errors.go`).
const CONTINUE_TOO_OLD: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// 410 Expired for a continue token whose snapshot is gone, carrying in `metadata.continue` a
/// token that goes on from the same key in the live store (rv -1).
fn expired_continue(tok: &ContinueToken) -> Response {
    let mut status = ApiError::expired(CONTINUE_TOO_OLD).to_status();
    status["metadata"]["continue"] = json!(tok.inconsistent().encode());
    json_response(410, &status)
}

/// One object a page may hold, in key order: a live key (unchanged since the list's RV) or an
/// object's state at the list's RV when it changed since.
enum Entry<'a> {
    Live(&'a Key),
    Past(&'a Key, &'a Arc<Value>),
}

/// The live keys corrected by `past` (what changed since the list's RV): live keys present in
/// `past` are replaced by their past state, or dropped when they did not exist then.
struct AtVersion<'a, L: Iterator<Item = &'a Key>> {
    live: std::iter::Peekable<L>,
    past: std::iter::Peekable<std::collections::btree_map::Iter<'a, Key, Option<Arc<Value>>>>,
}

impl<'a, L: Iterator<Item = &'a Key>> Iterator for AtVersion<'a, L> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        loop {
            let live_first = match (self.live.peek(), self.past.peek()) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(l), Some((p, _))) => *l < *p,
            };
            if live_first {
                return self.live.next().map(Entry::Live);
            }
            let (k, then) = self.past.next()?;
            if self.live.peek() == Some(&k) {
                self.live.next();
            }
            if let Some(o) = then {
                return Some(Entry::Past(k, o));
            }
        }
    }
}

/// `GET` a collection. Paged lists read every page after the first at the first page's
/// resourceVersion: the live store corrected by the changes made since, taken from the history.
pub async fn list(
    shared: &Shared,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    validate_rv_options(q, false)?;
    let r = crate::resources::get(t.res);
    let filter = t.filter(q)?;
    let rv_param = q.non_empty("resourceVersion");
    let cont = q.non_empty("continue");
    if cont.is_some() && rv_param.is_some_and(|v| v != "0") {
        return Err(ApiError::bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }
    let token = cont.map(ContinueToken::decode).transpose()?;
    let mut limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
    if rv_param == Some("0") && token.is_none() {
        limit = 0;
    }
    let mut exact_at: Option<u64> = None;
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
            exact_at = Some(n);
        }
    }
    let scope = Scope {
        namespaced: r.namespaced,
        in_namespace: t.ns.is_some(),
    };
    let start = token
        .as_ref()
        .map(|tok| tok.start_key(scope, t.ns.as_deref()));
    let now = Instant::now();
    if let Some(tok) = &token
        && tok.rv > 0
        && let Some(id) = tok.id
        && !shared.snapshots.touch(id, tok.rv as u64, now)
    {
        return Ok(expired_continue(tok));
    }
    // The RV this page is read at when it is not the current one: the token's (rv -1 means
    // the live store), or the exact one asked for.
    let read_at = match &token {
        Some(tok) if tok.rv > 0 => Some(tok.rv as u64),
        Some(_) => None,
        None => exact_at,
    };
    let st = shared.store.lock();
    if let Some(at) = read_at
        && at > st.rv()
    {
        return Err(ApiError::bad_request(
            "invalid continue token: continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    let past = match read_at {
        Some(at) => match st.changed_since(t.res, at, t.ns.as_deref(), start.as_ref()) {
            Ok(past) => past,
            Err(_) => {
                drop(st);
                return match &token {
                    Some(tok) => Ok(expired_continue(tok)),
                    None => Err(ApiError::expired(LIST_TOO_OLD)),
                };
            }
        },
        None => BTreeMap::new(),
    };
    let list_rv = read_at.unwrap_or(st.rv());
    let metadata_only = wants_metadata(headers);
    let as_table = table::wants_table(headers);
    let node = if t.res == PODS { filter.node() } else { None };
    let parse = metadata_only || as_table || filter.needs_object(node.as_deref());
    // Pods selected by phase (the capacity read of a drain lists every unfinished pod) are
    // decided from their key and kept phase and copied as stored, not unpacked.
    let by_phase =
        parse && !metadata_only && !as_table && filter.decided_by_key_and_phase(node.as_deref());
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
    let live = keys.filter(|k| t.ns.as_ref().is_none_or(|ns| k.0 == *ns));
    let mut entries = AtVersion {
        live: live.peekable(),
        past: past.iter().peekable(),
    };
    let mut items: Vec<Item> = Vec::new();
    let mut last: Option<&Key> = None;
    let mut more = false;
    for entry in entries.by_ref() {
        let (k, item) = match entry {
            Entry::Live(k) if by_phase => {
                let Some(phase) = st.phase(t.res, k) else {
                    continue;
                };
                if !filter.matches_key_and_phase(k, &phase, node.as_deref()) {
                    continue;
                }
                (k, Item::Key(k.clone()))
            }
            Entry::Live(k) if parse => {
                let Some(o) = st.get(t.res, &k.0, &k.1) else {
                    continue;
                };
                if !filter.matches(&o) {
                    continue;
                }
                (k, Item::Obj(o))
            }
            Entry::Live(k) => (k, Item::Key(k.clone())),
            Entry::Past(k, o) => {
                if !filter.matches(o) {
                    continue;
                }
                (k, Item::Obj(o.clone()))
            }
        };
        if limit > 0 && items.len() == limit {
            more = true;
            break;
        }
        last = Some(k);
        items.push(item);
    }
    let remaining = if more && !filter.has_selectors() {
        1 + entries.count()
    } else {
        drop(entries);
        0
    };
    let mut md = json!({"resourceVersion": list_rv.to_string()});
    if more && let Some(k) = last {
        let id = match &token {
            Some(tok) if tok.rv > 0 && tok.id.is_some() => tok.id,
            _ => Some(shared.snapshots.open(list_rv, now)),
        };
        md["continue"] = json!(ContinueToken::after(list_rv, k, scope, id).encode());
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
        let out = serde_json::to_vec(&table::table(t.res, t.crd.as_deref(), &objs, md))
            .unwrap_or_default();
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
