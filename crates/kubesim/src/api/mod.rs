//! The HTTP front end: path parsing, verb classification, fault injection, accounting and
//! dispatch to the handlers of each verb.

mod admin;
mod custom;
mod custom_table;
mod delete;
mod delete_options;
mod discovery;
mod events_v1;
mod fields;
mod list;
mod openapi;
mod ownership;
mod protobuf;
mod query;
mod scale;
mod table;
mod watch;
mod write;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;

use crate::crd::CrdDef;
use crate::error::{ApiError, ApiResult};
use crate::filter::Filter;
use crate::resources::{self, ResId};
use crate::sim::Shared;

pub use query::Query;
pub use write::{admit_namespace, prepare_create};

/// A parsed resource path.
#[derive(Debug, Clone)]
pub struct Target {
    /// Resource type.
    pub res: ResId,
    /// Namespace from the path, if the path is namespaced.
    pub ns: Option<String>,
    /// Object name, if any.
    pub name: Option<String>,
    /// Subresource, if any.
    pub sub: Option<String>,
    /// The CRD serving the type, for custom resources.
    pub crd: Option<Arc<CrdDef>>,
    /// Core Events asked for through `events.k8s.io/v1` (answers are translated).
    pub events_v1: bool,
}

impl Target {
    /// The objects a LIST, WATCH or collection DELETE selects: this target's type and
    /// namespace narrowed by the request's `labelSelector`/`fieldSelector` (400 when either is bad).
    fn filter(&self, q: &Query) -> ApiResult<Filter> {
        Filter::new(
            self.res,
            self.ns.clone(),
            q.get("labelSelector"),
            q.get("fieldSelector"),
        )
    }
}

enum Route {
    Version,
    Api,
    Apis,
    GroupVersion(String, String),
    Resource(Target),
    Admin(String),
    /// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`.
    AccessReview,
    /// `/openapi/v2`, `/openapi/v3` and `/openapi/v3/<group-version path>`.
    OpenApi(String),
}

fn parse_path(shared: &Shared, path: &str) -> Option<Route> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segs.as_slice() {
        ["version"] => return Some(Route::Version),
        ["api"] => return Some(Route::Api),
        ["apis"] => return Some(Route::Apis),
        ["kubesim", rest @ ..] => return Some(Route::Admin(rest.join("/"))),
        ["openapi", rest @ ..] => return Some(Route::OpenApi(rest.join("/"))),
        [
            "apis",
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
        ] => {
            return Some(Route::AccessReview);
        }
        _ => {}
    }
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    // A built-in type, or the custom resource a CRD serves.
    let lookup = |plural: &str| -> Option<(ResId, Option<Arc<CrdDef>>)> {
        if let Some(r) = resources::find(group, version, plural) {
            return Some((r, None));
        }
        let d = shared.store.lock().crds.find(group, version, plural)?;
        Some((d.res, Some(d)))
    };
    if rest.is_empty() {
        let served = resources::group_versions().contains(&(group, version))
            || shared
                .store
                .lock()
                .crds
                .group_versions()
                .iter()
                .any(|(g, v)| g == group && v == version);
        return served.then(|| Route::GroupVersion(group.to_string(), version.to_string()));
    }
    let namespaced = rest.len() >= 3 && rest[0] == "namespaces";
    let nested = if namespaced { lookup(rest[2]) } else { None };
    let (ns, rest, found) = match nested {
        Some(f) if resources::get(f.0).namespaced => (Some(rest[1].to_string()), &rest[2..], f),
        _ => (None, rest, lookup(rest[0])?),
    };
    let (res, crd) = found;
    if ns.is_some() && !resources::get(res).namespaced {
        return None;
    }
    let name = rest.get(1).map(|s| s.to_string());
    let sub = rest.get(2).map(|s| s.to_string());
    if rest.len() > 3 {
        return None;
    }
    if let Some(s) = &sub
        && !resources::get(res).subresources.contains(&s.as_str())
    {
        return None;
    }
    Some(Route::Resource(Target {
        res,
        ns,
        name,
        sub,
        crd,
        events_v1: false,
    }))
}

/// Kubernetes verb name of a request on a resource path.
fn verb_of(method: &Method, t: &Target, q: &Query) -> &'static str {
    match *method {
        Method::GET if t.name.is_none() && q.flag("watch") => "watch",
        Method::GET if t.name.is_none() => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if t.name.is_none() => "deletecollection",
        Method::DELETE => "delete",
        _ => "unknown",
    }
}

/// Build a JSON response.
pub fn json_response(code: u16, body: &Value) -> Response {
    json_bytes(
        code,
        serde_json::to_vec(body).unwrap_or_default(),
        "application/json",
    )
}

fn json_bytes(code: u16, body: Vec<u8>, content_type: &str) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    h.insert(
        "cache-control",
        HeaderValue::from_static("no-cache, private"),
    );
    r
}

/// Build the response of an API error, with `Retry-After` when the Status carries one (D-0.3).
pub fn error_response(e: &ApiError) -> Response {
    let mut r = json_response(e.code, &e.to_status());
    if let Some(s) = e.retry_after()
        && let Ok(v) = HeaderValue::from_str(&s.to_string())
    {
        r.headers_mut().insert("retry-after", v);
    }
    r
}

/// A response whose body fails at once: the server drops the connection mid-response, which
/// the client sees as a reset connection.
fn broken_response() -> Response {
    let body = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected connection reset",
        ))
    });
    let mut r = Response::new(Body::from_stream(body));
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

fn respond(r: ApiResult<Response>) -> Response {
    r.unwrap_or_else(|e| error_response(&e))
}

/// Whether the client accepts JSON (D-0.4): 406 only when nothing acceptable is offered.
fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(a) = headers.get("accept").and_then(|v| v.to_str().ok()) else {
        return true;
    };
    a.split(',').any(|t| {
        let t = t.trim();
        t.is_empty()
            || t.starts_with("application/json")
            || t.starts_with("*/*")
            || t.starts_with("application/*")
    })
}

/// The request's media type: its `Content-Type` without parameters (`; charset=...`).
pub(crate) fn media_type(headers: &HeaderMap) -> String {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// The request body as JSON: a protobuf body (kubectl's typed clients) is decoded into the
/// JSON object the real server would read from it; any other body is passed on as it is.
fn json_body(headers: &HeaderMap, body: Bytes) -> ApiResult<Bytes> {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if body.is_empty() || !(protobuf::is_protobuf(ct) || body.starts_with(protobuf::MAGIC)) {
        return Ok(body);
    }
    let v = protobuf::decode(&body).map_err(ApiError::bad_request)?;
    Ok(Bytes::from(serde_json::to_vec(&v).unwrap_or_default()))
}

/// The real server answers protobuf to a client that lists it first in `Accept`: a JSON answer
/// of a kind the schema has is re-encoded (others, such as Tables, stay JSON).
async fn protobuf_answer(headers: &HeaderMap, resp: Response) -> Response {
    let accept = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let json_ct = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !protobuf::wants_protobuf(accept) || !json_ct {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let encoded = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| protobuf::encode(&v));
    match encoded {
        Some(pb) => {
            parts.headers.insert(
                "content-type",
                HeaderValue::from_static(protobuf::MEDIA_TYPE),
            );
            parts.headers.remove("content-length");
            Response::from_parts(parts, Body::from(pb))
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// A SelfSubjectAccessReview, answered from the same rules as every request (every
/// authenticated user may ask, as with the real `system:basic-user` role).
fn access_review(shared: &Shared, user: Option<&str>, body: &Bytes) -> ApiResult<Response> {
    let mut review: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("decoding SelfSubjectAccessReview: {e}")))?;
    let ra = &review["spec"]["resourceAttributes"];
    if !ra.is_object() {
        return Err(ApiError::new(
            422,
            "Invalid",
            "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    let text = |k: &str| ra[k].as_str().unwrap_or("").to_string();
    let (verb, group, resource, sub, ns, name) = (
        text("verb"),
        text("group"),
        text("resource"),
        text("subresource"),
        text("namespace"),
        text("name"),
    );
    let decision = match &shared.authz {
        None => Ok(()),
        Some(authz) => authz.authorize(
            user,
            &crate::auth::Attributes {
                verb: &verb,
                group: &group,
                resource: &resource,
                sub: &sub,
                namespace: Some(ns.as_str()).filter(|n| !n.is_empty()),
                name: Some(name.as_str()).filter(|n| !n.is_empty()),
            },
        ),
    };
    review["apiVersion"] = Value::from("authorization.k8s.io/v1");
    review["kind"] = Value::from("SelfSubjectAccessReview");
    review["metadata"]["creationTimestamp"] = Value::Null;
    review["status"] = match decision {
        Ok(()) => serde_json::json!({"allowed": true, "reason": "allowed by kubesim rules"}),
        Err(_) => serde_json::json!({"allowed": false}),
    };
    Ok(json_response(201, &review))
}

/// The one axum handler: everything goes through here.
pub async fn handle(
    AxState(shared): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let q = Query::parse(uri.query().unwrap_or(""));
    let Some(route) = parse_path(&shared, uri.path()) else {
        shared.ledger.count("get", uri.path(), "", 404);
        return error_response(&ApiError::path_not_found());
    };
    let (verb, resource, sub) = match &route {
        Route::Resource(t) => (
            verb_of(&method, t, &q),
            crate::resources::get(t.res).plural.to_string(),
            t.sub.clone().unwrap_or_default(),
        ),
        Route::Admin(_) => ("", String::new(), String::new()),
        Route::AccessReview => ("create", "selfsubjectaccessreviews".into(), String::new()),
        _ => ("get", uri.path().to_string(), String::new()),
    };
    if let Route::Admin(p) = &route {
        return admin::handle(&shared, &method, p, &body);
    }
    let mut user: Option<String> = None;
    if let Some(authz) = &shared.authz {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let decision = authz.authenticate(token).inspect(|who| user = who.clone());
        let decision = decision.and_then(|user| match &route {
            Route::Resource(t) => {
                let r = crate::resources::get(t.res);
                let attrs = crate::auth::Attributes {
                    verb,
                    group: r.group,
                    resource: r.plural,
                    sub: &sub,
                    namespace: t.ns.as_deref(),
                    name: t.name.as_deref(),
                };
                authz.authorize(user.as_deref(), &attrs)
            }
            _ => Ok(()),
        });
        if let Err(e) = decision {
            shared.ledger.count(verb, &resource, &sub, e.code);
            return error_response(&e);
        }
    }
    if !accepts_json(&headers) {
        let e = ApiError::new(
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json",
        );
        shared.ledger.count(verb, &resource, &sub, 406);
        return error_response(&e);
    }
    let fault = shared.faults.pick(verb, &resource, &sub);
    if let Some(f) = &fault {
        if let Some(ms) = f.latency_ms.filter(|m| *m > 0) {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        if f.reset {
            shared.ledger.count(verb, &resource, &sub, 0);
            return broken_response();
        }
        if let Some(e) = f.error() {
            shared.ledger.count(verb, &resource, &sub, e.code);
            return error_response(&e);
        }
    }
    let body = match json_body(&headers, body) {
        Ok(b) => b,
        Err(e) => {
            shared.ledger.count(verb, &resource, &sub, e.code);
            return error_response(&e);
        }
    };
    let is_resource = matches!(route, Route::Resource(_) | Route::AccessReview);
    let resp = match route {
        Route::Version => discovery::version(),
        Route::Api => discovery::api(&shared, &headers),
        Route::Apis => discovery::apis(&shared, &headers),
        Route::GroupVersion(g, v) => discovery::group_version(&shared, &g, &v),
        Route::AccessReview if method == Method::POST => {
            respond(access_review(&shared, user.as_deref(), &body))
        }
        Route::AccessReview => error_response(&ApiError::method_not_allowed(method.as_str())),
        Route::OpenApi(_) if method != Method::GET => {
            error_response(&ApiError::method_not_allowed(method.as_str()))
        }
        Route::OpenApi(p) => {
            let crds = shared.store.lock().crds.all();
            let custom = || {
                let (g, v) = p.strip_prefix("v3/apis/")?.split_once('/')?;
                openapi::crd_v3_doc(&crds, g, v)
            };
            match p.as_str() {
                "v2" => json_bytes(200, openapi::v2().to_vec(), "application/json"),
                "v3" => json_bytes(200, openapi::v3_index_with(&crds), "application/json"),
                _ => match p.strip_prefix("v3/").and_then(openapi::v3_group_version) {
                    Some(d) => json_bytes(200, d.to_vec(), "application/json"),
                    None => match custom() {
                        Some(d) => json_bytes(200, d, "application/json"),
                        None => error_response(&ApiError::path_not_found()),
                    },
                },
            }
        }
        Route::Resource(t) => {
            let (t, q, body) = if t.res == resources::EVENTS_V1 {
                match events_v1::request(&t, &q, verb, &media_type(&headers), &body) {
                    Ok(translated) => translated,
                    Err(e) => {
                        let e = events_v1::answer(e.to_status());
                        let code = e["code"].as_u64().unwrap_or(500) as u16;
                        shared.ledger.count(verb, &resource, &sub, code);
                        return json_response(code, &e);
                    }
                }
            } else {
                (t, q.clone(), body)
            };
            let watch_cut = fault.as_ref().and_then(|f| f.watch_cut_seconds);
            let event_delay = fault
                .as_ref()
                .and_then(|f| f.event_latency_ms)
                .filter(|m| *m > 0)
                .map(std::time::Duration::from_millis);
            let scale = t.sub.as_deref() == Some("scale");
            let r = match (verb, t.name.is_some()) {
                ("get", _) if scale => scale::get(&shared, &t),
                ("update", _) if scale => scale::update(&shared, &t, &q, &body),
                ("patch", _) if scale => scale::patch(&shared, &t, &q, &headers, &body),
                _ if scale => Err(ApiError::method_not_allowed(method.as_str())),
                ("watch", _) => watch::watch(&shared, &t, &q, &headers, watch_cut, event_delay),
                ("list", _) => list::list(&shared, &t, &q, &headers).await,
                ("get", _) => list::get(&shared, &t, &q, &headers),
                ("create", _) => write::create(&shared, &t, &q, &headers, &body),
                ("update", _) => write::update(&shared, &t, &q, &headers, &body),
                ("patch", _) => write::patch(&shared, &t, &q, &headers, &body),
                ("delete", _) => delete::delete(&shared, &t, &q, &body),
                ("deletecollection", _) => delete::delete_collection(&shared, &t, &q, &body),
                _ => Err(ApiError::method_not_allowed(method.as_str())),
            };
            match t.events_v1 && verb != "watch" {
                true => events_v1::respond(respond(r)).await,
                false => respond(r),
            }
        }
        Route::Admin(_) => unreachable!("handled above"),
    };
    let resp = if is_resource && verb != "watch" {
        protobuf_answer(&headers, resp).await
    } else {
        resp
    };
    shared
        .ledger
        .count(verb, &resource, &sub, resp.status().as_u16());
    if let Some(ms) = fault
        .as_ref()
        .and_then(|f| f.answer_latency_ms)
        .filter(|m| *m > 0)
    {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    resp
}
