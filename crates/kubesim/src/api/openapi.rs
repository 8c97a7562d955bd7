//! `/openapi/v2` and `/openapi/v3` (index and per-group-version documents) for the kinds kubesim
//! serves, so `kubectl apply` finds the `fieldValidation` parameter and the strategic-merge
//! PATCH of each kind, and `kubectl explain` explains.
//!
//! The schemas are generated at first use from the k8s-openapi crate's `schemars` schemas (the
//! same definition names, types and descriptions as the real server's); the real server's
//! `x-kubernetes-*` patch and list extensions and required fields, which that crate does not carry
//! or has otherwise, come from
//! `openapi/extensions.json` (read from the v1.33.13 OpenAPI by `openapi/extensions.py`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use k8s_openapi::api::{apps, authorization, autoscaling, coordination, core, events, policy};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use std::sync::Arc;

use crate::crd::CrdDef;
use crate::resources::{RESOURCES, group_versions};

const EXTENSIONS: &str = include_str!("../../openapi/extensions.json");

const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

/// Which OpenAPI flavour a document is.
#[derive(Clone, Copy, PartialEq)]
enum Flavour {
    V2,
    V3,
}

impl Flavour {
    fn settings(self) -> SchemaSettings {
        match self {
            Flavour::V2 => SchemaSettings::draft07(),
            Flavour::V3 => SchemaSettings::openapi3(),
        }
    }

    fn reference(self, name: &str) -> Value {
        match self {
            Flavour::V2 => json!({"$ref": format!("#/definitions/{name}")}),
            Flavour::V3 => json!({"$ref": format!("#/components/schemas/{name}")}),
        }
    }
}

/// One kind of a document: its schema name and group/version/kind.
struct Kind {
    schema: String,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
}

fn add<T: JsonSchema + k8s_openapi::Resource>(g: &mut SchemaGenerator, kinds: &mut Vec<Kind>) {
    g.subschema_for::<T>();
    kinds.push(Kind {
        schema: T::schema_name().into_owned(),
        group: T::GROUP,
        version: T::VERSION,
        kind: T::KIND,
    });
}

/// Register the kinds of one group/version (all of them for `None`).
fn register(g: &mut SchemaGenerator, gv: Option<(&str, &str)>) -> Vec<Kind> {
    let mut k = Vec::new();
    let want = |group: &str| gv.is_none_or(|(g, _)| g == group);
    if want("") {
        add::<core::v1::Pod>(g, &mut k);
        add::<core::v1::Node>(g, &mut k);
        add::<core::v1::Namespace>(g, &mut k);
        add::<core::v1::Event>(g, &mut k);
        // The eviction subresource's body.
        add::<policy::v1::Eviction>(g, &mut k);
    }
    if want("apps") {
        add::<apps::v1::Deployment>(g, &mut k);
        add::<apps::v1::ReplicaSet>(g, &mut k);
        add::<apps::v1::StatefulSet>(g, &mut k);
        add::<apps::v1::DaemonSet>(g, &mut k);
        // The scale subresource's body.
        add::<autoscaling::v1::Scale>(g, &mut k);
    }
    if want("policy") {
        add::<policy::v1::PodDisruptionBudget>(g, &mut k);
        if gv.is_some() {
            add::<policy::v1::Eviction>(g, &mut k);
        }
    }
    if want("coordination.k8s.io") {
        add::<coordination::v1::Lease>(g, &mut k);
    }
    if want("apiextensions.k8s.io") {
        add::<apiextensions::v1::CustomResourceDefinition>(g, &mut k);
    }
    if want("events.k8s.io") {
        add::<events::v1::Event>(g, &mut k);
    }
    if want("authorization.k8s.io") {
        add::<authorization::v1::SelfSubjectAccessReview>(g, &mut k);
    }
    g.subschema_for::<metav1::DeleteOptions>();
    g.subschema_for::<metav1::Status>();
    k
}

/// The real server's extensions: definition → property ("" for the definition) → extensions.
type Extensions = BTreeMap<String, BTreeMap<String, Map<String, Value>>>;

fn extensions() -> &'static Extensions {
    static E: OnceLock<Extensions> = OnceLock::new();
    E.get_or_init(|| serde_json::from_str(EXTENSIONS).expect("openapi/extensions.json is valid"))
}

/// The schemas of a document: generated, with the real extensions and each kind's GVK.
fn schemas(flavour: Flavour, gv: Option<(&str, &str)>) -> (Map<String, Value>, Vec<Kind>) {
    let mut g = SchemaGenerator::new(flavour.settings());
    let kinds = register(&mut g, gv);
    let mut defs = g.take_definitions(true);
    // Required fields are the real server's (k8s-openapi requires e.g. `metadata`).
    for d in defs.values_mut().filter_map(Value::as_object_mut) {
        d.remove("required");
    }
    for (name, props) in extensions() {
        let Some(d) = defs.get_mut(name).and_then(Value::as_object_mut) else {
            continue;
        };
        for (prop, ext) in props {
            let target = if prop.is_empty() {
                Some(&mut *d)
            } else {
                d.get_mut("properties")
                    .and_then(|p| p.get_mut(prop))
                    .and_then(Value::as_object_mut)
            };
            if let Some(t) = target {
                t.extend(ext.clone());
            }
        }
    }
    for k in &kinds {
        if let Some(d) = defs.get_mut(&k.schema).and_then(Value::as_object_mut) {
            d.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": k.group, "kind": k.kind, "version": k.version}]),
            );
        }
    }
    defs.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch".into(),
        json!({"description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.", "type": "object"}),
    );
    (defs, kinds)
}

fn query_param(flavour: Flavour, name: &str, ty: &str, description: &str) -> Value {
    match flavour {
        Flavour::V2 => {
            json!({"name": name, "in": "query", "type": ty, "uniqueItems": true, "description": description})
        }
        Flavour::V3 => {
            json!({"name": name, "in": "query", "schema": {"type": ty, "uniqueItems": true}, "description": description})
        }
    }
}

const FIELD_VALIDATION: &str = "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.";

/// One operation on a kind: parameters, request body and response, GVK and action.
fn operation(
    flavour: Flavour,
    action: &str,
    k: &Kind,
    body_types: &[&str],
    body_schema: &str,
) -> Value {
    let mut params = Vec::new();
    if action != "get" {
        params.push(query_param(
            flavour,
            "dryRun",
            "string",
            "When present, indicates that modifications should not be persisted.",
        ));
    }
    if matches!(action, "post" | "put" | "patch") {
        params.push(query_param(flavour, "fieldManager", "string", "fieldManager is a name associated with the actor or entity that is making these changes."));
        params.push(query_param(
            flavour,
            "fieldValidation",
            "string",
            FIELD_VALIDATION,
        ));
    }
    if action == "patch" {
        params.push(query_param(flavour, "force", "boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people."));
    }
    let response = flavour.reference(&k.schema);
    let mut op = json!({
        "description": format!("{action} the specified {}", k.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": k.group, "kind": k.kind, "version": k.version},
    });
    let body_ref = flavour.reference(body_schema);
    match flavour {
        Flavour::V2 => {
            if !body_types.is_empty() {
                params.push(
                    json!({"name": "body", "in": "body", "required": true, "schema": body_ref}),
                );
                op["consumes"] = json!(body_types);
            }
            op["produces"] = json!([
                "application/json",
                "application/yaml",
                "application/vnd.kubernetes.protobuf"
            ]);
            op["responses"] = json!({"200": {"description": "OK", "schema": response}, "401": {"description": "Unauthorized"}});
        }
        Flavour::V3 => {
            if !body_types.is_empty() {
                let content: Map<String, Value> = body_types
                    .iter()
                    .map(|t| (t.to_string(), json!({"schema": body_ref})))
                    .collect();
                op["requestBody"] = json!({"content": content, "required": true});
            }
            let content: Map<String, Value> = [
                "application/json",
                "application/yaml",
                "application/vnd.kubernetes.protobuf",
            ]
            .iter()
            .map(|t| (t.to_string(), json!({"schema": response})))
            .collect();
            op["responses"] = json!({"200": {"description": "OK", "content": content}, "401": {"description": "Unauthorized"}});
        }
    }
    op["parameters"] = Value::Array(params);
    op
}

/// The paths of a document: create on each collection; get, put, patch and delete on each object;
/// get, put and patch on each object's scale.
fn paths(flavour: Flavour, kinds: &[Kind]) -> Map<String, Value> {
    let mut out = Map::new();
    for r in RESOURCES {
        let Some(k) = kinds
            .iter()
            .find(|k| k.group == r.group && k.version == r.version && k.kind == r.kind)
        else {
            continue;
        };
        let base = if r.group.is_empty() {
            format!("/api/{}", r.version)
        } else {
            format!("/apis/{}/{}", r.group, r.version)
        };
        let coll = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{base}/{}", r.plural)
        };
        let json_body = [
            "application/json",
            "application/yaml",
            "application/vnd.kubernetes.protobuf",
        ];
        out.insert(
            coll.clone(),
            json!({"post": operation(flavour, "post", k, &json_body, &k.schema)}),
        );
        out.insert(
            format!("{coll}/{{name}}"),
            json!({
                "get": operation(flavour, "get", k, &[], &k.schema),
                "put": operation(flavour, "put", k, &json_body, &k.schema),
                "patch": operation(flavour, "patch", k, PATCH_TYPES, "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"),
                "delete": operation(flavour, "delete", k, &json_body, "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"),
            }),
        );
        if r.subresources.contains(&"scale")
            && let Some(s) = kinds.iter().find(|k| k.kind == "Scale")
        {
            out.insert(
                format!("{coll}/{{name}}/scale"),
                json!({
                    "get": operation(flavour, "get", s, &[], &s.schema),
                    "put": operation(flavour, "put", s, &json_body, &s.schema),
                    "patch": operation(flavour, "patch", s, PATCH_TYPES, "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"),
                }),
            );
        }
    }
    out
}

/// The path of a group/version's document under `/openapi/v3/` (`api/v1`, `apis/apps/v1`).
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn info() -> Value {
    json!({"title": "Kubernetes", "version": "v1.32.9"})
}

fn v3_doc(group: &str, version: &str) -> Vec<u8> {
    let (defs, kinds) = schemas(Flavour::V3, Some((group, version)));
    let doc = json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": paths(Flavour::V3, &kinds),
        "components": {"schemas": defs},
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// The schema name the real server gives a CRD's kind (`io.kubesim.test.v1alpha1.Maintenance`:
/// the group reversed).
fn crd_schema_name(d: &CrdDef) -> String {
    let group: Vec<&str> = d.group.split('.').rev().collect();
    format!("{}.{}.{}", group.join("."), d.version, d.kind)
}

/// The OpenAPI v3 document of a group/version the CRDs serve: each kind's schema (the CRD's
/// `openAPIV3Schema` with `apiVersion`, `kind` and `metadata` filled in as the real server
/// publishes it), the `meta/v1` schemas it refers to, and the paths of its objects.
pub fn crd_v3_doc(crds: &[Arc<CrdDef>], group: &str, version: &str) -> Option<Vec<u8>> {
    let mine: Vec<&Arc<CrdDef>> = crds
        .iter()
        .filter(|d| d.group == group && d.version == version)
        .collect();
    if mine.is_empty() {
        return None;
    }
    let (meta_defs, _) = schemas(Flavour::V3, Some(("coordination.k8s.io", "v1")));
    let mut defs: Map<String, Value> = meta_defs
        .into_iter()
        .filter(|(k, _)| k.starts_with("io.k8s.apimachinery.pkg.apis.meta.v1."))
        .collect();
    let mut paths = Map::new();
    for d in mine {
        let r = crate::resources::get(d.res);
        let name = crd_schema_name(d);
        let mut schema = d
            .schema
            .clone()
            .unwrap_or_else(|| json!({"type": "object"}));
        schema["properties"]["apiVersion"] = json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"});
        schema["properties"]["kind"] = json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"});
        schema["properties"]["metadata"] = json!({"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}], "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"});
        schema["x-kubernetes-group-version-kind"] =
            json!([{"group": r.group, "kind": r.kind, "version": r.version}]);
        defs.insert(name.clone(), schema);
        let k = Kind {
            schema: name.clone(),
            group: r.group,
            version: r.version,
            kind: r.kind,
        };
        let base = format!("/apis/{group}/{version}");
        let coll = if d.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", d.plural)
        } else {
            format!("{base}/{}", d.plural)
        };
        let body = ["application/json", "application/yaml"];
        let patch_types = super::custom::CUSTOM_PATCH_TYPES;
        let meta_patch = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
        let delete = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
        paths.insert(
            coll.clone(),
            json!({"post": operation(Flavour::V3, "post", &k, &body, &name)}),
        );
        paths.insert(
            format!("{coll}/{{name}}"),
            json!({
                "get": operation(Flavour::V3, "get", &k, &[], &name),
                "put": operation(Flavour::V3, "put", &k, &body, &name),
                "patch": operation(Flavour::V3, "patch", &k, patch_types, meta_patch),
                "delete": operation(Flavour::V3, "delete", &k, &body, delete),
            }),
        );
        if d.status {
            paths.insert(
                format!("{coll}/{{name}}/status"),
                json!({
                    "get": operation(Flavour::V3, "get", &k, &[], &name),
                    "put": operation(Flavour::V3, "put", &k, &body, &name),
                    "patch": operation(Flavour::V3, "patch", &k, patch_types, meta_patch),
                }),
            );
        }
    }
    let doc = json!({"openapi": "3.0.0", "info": info(), "paths": paths, "components": {"schemas": defs}});
    Some(serde_json::to_vec(&doc).unwrap_or_default())
}

/// The `/openapi/v3` index: the built-in documents and those of the CRDs' group/versions.
pub fn v3_index_with(crds: &[Arc<CrdDef>]) -> Vec<u8> {
    let mut index: Value =
        serde_json::from_slice(&v3_index()).unwrap_or_else(|_| json!({"paths": {}}));
    let mut gvs: Vec<(&str, &str)> = crds
        .iter()
        .map(|d| (d.group.as_str(), d.version.as_str()))
        .collect();
    gvs.sort();
    gvs.dedup();
    for (g, v) in gvs {
        if let Some(doc) = crd_v3_doc(crds, g, v) {
            let p = gv_path(g, v);
            index["paths"][&p] =
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash(&doc))});
        }
    }
    serde_json::to_vec(&index).unwrap_or_default()
}

/// FNV-1a, for the documents' `hash` (an ETag-like value the client caches by).
fn hash(b: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in b {
        h ^= u64::from(*x);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

struct V3 {
    /// `(path, hash, document)` for each group/version served.
    docs: Vec<(String, String, Vec<u8>)>,
}

fn v3() -> &'static V3 {
    static D: OnceLock<V3> = OnceLock::new();
    D.get_or_init(|| {
        let mut gvs = group_versions();
        if !gvs.contains(&("authorization.k8s.io", "v1")) {
            gvs.push(("authorization.k8s.io", "v1"));
        }
        let docs = gvs
            .into_iter()
            .map(|(g, v)| {
                let doc = v3_doc(g, v);
                (gv_path(g, v), hash(&doc), doc)
            })
            .collect();
        V3 { docs }
    })
}

/// `GET /openapi/v3`: the index of group/version documents.
pub fn v3_index() -> Vec<u8> {
    let paths: Map<String, Value> = v3()
        .docs
        .iter()
        .map(|(p, h, _)| {
            (
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={h}")}),
            )
        })
        .collect();
    serde_json::to_vec(&json!({"paths": paths})).unwrap_or_default()
}

/// `GET /openapi/v3/<group-version path>`: None for a group/version not served.
pub fn v3_group_version(path: &str) -> Option<&'static [u8]> {
    v3().docs
        .iter()
        .find(|(p, _, _)| p == path)
        .map(|(_, _, d)| d.as_slice())
}

/// The Swagger 2.0 definitions of everything served, by schema name (for field validation).
pub fn definitions() -> &'static Map<String, Value> {
    static D: OnceLock<Map<String, Value>> = OnceLock::new();
    D.get_or_init(|| schemas(Flavour::V2, None).0)
}

/// `GET /openapi/v2`: one Swagger 2.0 document for everything served.
pub fn v2() -> &'static [u8] {
    static D: OnceLock<Vec<u8>> = OnceLock::new();
    D.get_or_init(|| {
        let (defs, kinds) = schemas(Flavour::V2, None);
        let doc = json!({
            "swagger": "2.0",
            "info": info(),
            "paths": paths(Flavour::V2, &kinds),
            "definitions": defs,
        });
        serde_json::to_vec(&doc).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(path: &str) -> Value {
        serde_json::from_slice(v3_group_version(path).unwrap()).unwrap()
    }

    #[test]
    fn v3_apps_has_kinds_with_gvk_extensions_and_patch_with_field_validation() {
        let d = doc("apis/apps/v1");
        let s = &d["components"]["schemas"];
        assert_eq!(
            s["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        let containers = &s["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(
            containers["items"]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.Container"
        );
        let patch = &d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        assert!(
            patch["requestBody"]["content"]["application/strategic-merge-patch+json"].is_object()
        );
        assert!(
            d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"].is_object()
        );
    }

    #[test]
    fn v3_index_lists_every_group_version_with_a_hash() {
        let idx: Value = serde_json::from_slice(&v3_index()).unwrap();
        for p in [
            "api/v1",
            "apis/apps/v1",
            "apis/policy/v1",
            "apis/coordination.k8s.io/v1",
        ] {
            let url = idx["paths"][p]["serverRelativeURL"].as_str().unwrap();
            assert!(url.starts_with(&format!("/openapi/v3/{p}?hash=")), "{url}");
        }
    }

    #[test]
    fn v2_refs_point_at_definitions() {
        let d: Value = serde_json::from_slice(v2()).unwrap();
        let pod = &d["definitions"]["io.k8s.api.core.v1.Pod"];
        assert_eq!(
            pod["x-kubernetes-group-version-kind"],
            json!([{"group": "", "kind": "Pod", "version": "v1"}])
        );
        let text = String::from_utf8_lossy(v2());
        assert!(!text.contains("#/components/"));
        assert!(text.contains("#/definitions/io.k8s.api.core.v1.PodSpec"));
    }
}
