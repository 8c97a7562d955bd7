//! `/version`, `/api`, `/apis` (legacy and aggregated v2) and per-group-version resource lists
//! (rules D-1 to D-5).

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::{json_bytes, json_response};
use crate::resources::{RESOURCES, group_versions, verbs};
use crate::sim::Shared;

/// What discovery says of one resource type, built-in or custom.
struct Entry {
    group: String,
    version: String,
    plural: String,
    singular: String,
    kind: String,
    namespaced: bool,
    short_names: Vec<String>,
    categories: Vec<String>,
    subresources: Vec<&'static str>,
}

/// Every resource type the simulator serves now: the built-in ones and those of its CRDs.
fn entries(shared: &Shared) -> Vec<Entry> {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    let mut out: Vec<Entry> = RESOURCES
        .iter()
        .map(|r| Entry {
            group: r.group.into(),
            version: r.version.into(),
            plural: r.plural.into(),
            singular: r.singular.into(),
            kind: r.kind.into(),
            namespaced: r.namespaced,
            short_names: strings(r.short_names),
            categories: strings(r.categories),
            subresources: r.subresources.to_vec(),
        })
        .collect();
    for d in shared.store.lock().crds.all() {
        out.push(Entry {
            group: d.group.clone(),
            version: d.version.clone(),
            plural: d.plural.clone(),
            singular: d.singular.clone(),
            kind: d.kind.clone(),
            namespaced: d.namespaced,
            short_names: d.short_names.clone(),
            categories: d.categories.clone(),
            subresources: if d.status { vec!["status"] } else { vec![] },
        });
    }
    out
}

/// The group/versions served: the built-in ones, then those of the CRDs (by group).
fn all_group_versions(shared: &Shared) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = group_versions()
        .into_iter()
        .map(|(g, v)| (g.to_string(), v.to_string()))
        .collect();
    for gv in shared.store.lock().crds.group_versions() {
        if !out.contains(&gv) {
            out.push(gv);
        }
    }
    out
}

const AGGREGATED_CT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// `GET /version`: minor "32" so the gcloud kubectl dispatcher runs kubectl 1.32 (D-1).
pub fn version() -> Response {
    json_response(
        200,
        &json!({
            "major": "1", "minor": "32", "gitVersion": "v1.32.9", "gitCommit": "kubesim",
            "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.12",
            "compiler": "gc", "platform": "linux/amd64"
        }),
    )
}

/// Whether the Accept header asks for aggregated v2 discovery.
fn wants_aggregated(headers: &HeaderMap) -> bool {
    headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .map(|a| {
            a.split(',').any(|t| {
                let params: Vec<&str> = t.split(';').map(str::trim).collect();
                params.contains(&"g=apidiscovery.k8s.io")
                    && params.contains(&"v=v2")
                    && params.contains(&"as=APIGroupDiscoveryList")
            })
        })
        .unwrap_or(false)
}

fn subresource_verbs(sub: &str) -> Vec<&'static str> {
    if sub == "eviction" {
        vec!["create"]
    } else {
        vec!["get", "patch", "update"]
    }
}

/// The resources of a group/version in the real server's discovery order (by name), which is
/// also the order `kubectl get all` prints them in.
fn resources_of<'a>(all: &'a [Entry], group: &str, version: &str) -> Vec<&'a Entry> {
    let mut v: Vec<&Entry> = all
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    v.sort_by(|a, b| a.plural.cmp(&b.plural));
    v
}

fn aggregated_version(all: &[Entry], group: &str, version: &str) -> Value {
    let resources: Vec<Value> = resources_of(all, group, version)
        .into_iter()
        .map(|r| {
            let subs: Vec<Value> = r
                .subresources
                .iter()
                .map(|s| {
                    let kind = if *s == "eviction" {
                        json!({"group":"policy","version":"v1","kind":"Eviction"})
                    } else if *s == "scale" {
                        json!({"group":"autoscaling","version":"v1","kind":"Scale"})
                    } else {
                        json!({"group":r.group,"version":r.version,"kind":r.kind})
                    };
                    json!({"subresource": s, "responseKind": kind, "verbs": subresource_verbs(s)})
                })
                .collect();
            let mut v = json!({
                "resource": r.plural,
                "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                "singularResource": r.singular,
                "verbs": verbs(),
                "subresources": subs,
            });
            if !r.short_names.is_empty() {
                v["shortNames"] = json!(r.short_names);
            }
            if !r.categories.is_empty() {
                v["categories"] = json!(r.categories);
            }
            v
        })
        .collect();
    json!({"version": version, "resources": resources, "freshness": "Current"})
}

fn aggregated(all: &[Entry], groups: &[(String, String)]) -> Response {
    let items: Vec<Value> = groups
        .iter()
        .map(|(g, v)| {
            let metadata = if g.is_empty() {
                json!({})
            } else {
                json!({"name": g})
            };
            json!({"metadata": metadata, "versions": [aggregated_version(all, g, v)]})
        })
        .collect();
    let body = json!({"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","metadata":{},"items":items});
    json_bytes(
        200,
        serde_json::to_vec(&body).unwrap_or_default(),
        AGGREGATED_CT,
    )
}

/// `GET /api` (D-2).
pub fn api(shared: &Shared, headers: &HeaderMap) -> Response {
    if wants_aggregated(headers) {
        return aggregated(&entries(shared), &[(String::new(), "v1".into())]);
    }
    json_response(
        200,
        &json!({"kind":"APIVersions","versions":["v1"],
                "serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":shared.addr.to_string()}]}),
    )
}

/// `GET /apis` (D-3).
pub fn apis(shared: &Shared, headers: &HeaderMap) -> Response {
    let gvs: Vec<(String, String)> = all_group_versions(shared)
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .collect();
    if wants_aggregated(headers) {
        return aggregated(&entries(shared), &gvs);
    }
    let groups: Vec<Value> = gvs
        .iter()
        .map(|(g, v)| {
            let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json_response(
        200,
        &json!({"kind":"APIGroupList","apiVersion":"v1","groups":groups}),
    )
}

fn legacy_entries(r: &Entry) -> Vec<Value> {
    let mut main = json!({
        "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
        "kind": r.kind, "verbs": verbs(),
    });
    if !r.short_names.is_empty() {
        main["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        main["categories"] = json!(r.categories);
    }
    let mut out = vec![main];
    for s in &r.subresources {
        if *s == "eviction" {
            out.push(json!({"name": format!("{}/eviction", r.plural), "singularName": "", "namespaced": r.namespaced,
                            "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]}));
        } else if *s == "scale" {
            out.push(json!({"name": format!("{}/scale", r.plural), "singularName": "", "namespaced": r.namespaced,
                            "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": subresource_verbs(s)}));
        } else {
            out.push(json!({"name": format!("{}/{s}", r.plural), "singularName": "", "namespaced": r.namespaced,
                            "kind": r.kind, "verbs": subresource_verbs(s)}));
        }
    }
    out
}

/// `GET /api/v1`, `GET /apis/<g>/<v>` (D-4).
pub fn group_version(shared: &Shared, group: &str, version: &str) -> Response {
    let all = entries(shared);
    let resources: Vec<Value> = resources_of(&all, group, version)
        .into_iter()
        .flat_map(legacy_entries)
        .collect();
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json_response(
        200,
        &json!({"kind":"APIResourceList","apiVersion":"v1","groupVersion":gv,"resources":resources}),
    )
}
