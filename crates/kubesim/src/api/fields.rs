//! Field validation (`fieldValidation=Strict|Warn|Ignore`) of the objects in create, update and
//! patch requests, as the real server's strict decoding does it: fields the kind's schema does not
//! have are dropped in every mode; `Warn` (the default) answers a `Warning` header per field,
//! `Strict` refuses the request with the real messages.

use axum::http::HeaderValue;
use axum::response::Response;
use serde_json::Value;

use super::{Query, Target, openapi};
use crate::error::{ApiError, ApiResult};
use crate::resources::ResId;

/// The validation directive of a request.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Directive {
    /// Drop unknown fields silently.
    Ignore,
    /// Drop them and warn (the default).
    Warn,
    /// Refuse the request.
    Strict,
}

/// The request's `fieldValidation`; 422 for a value the real server does not support.
/// `options` is the options kind of the verb (`CreateOptions`, `UpdateOptions`, `PatchOptions`).
pub fn directive(q: &Query, options: &str) -> ApiResult<Directive> {
    match q.get("fieldValidation").unwrap_or("") {
        "" | "Warn" => Ok(Directive::Warn),
        "Ignore" => Ok(Directive::Ignore),
        "Strict" => Ok(Directive::Strict),
        other => Err(ApiError::invalid(
            options,
            "meta.k8s.io",
            "",
            &[(
                "FieldValueNotSupported",
                "fieldValidation",
                format!(
                    "Unsupported value: \"{other}\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
                ),
            )],
        )),
    }
}

/// The schema name of a kind (`io.k8s.api.apps.v1.Deployment`).
fn schema_name(res: ResId) -> String {
    let r = crate::resources::get(res);
    let pkg = match r.group {
        "" => "core",
        g => g.split('.').next().unwrap_or(g),
    };
    format!("io.k8s.api.{pkg}.{}.{}", r.version, r.kind)
}

/// Follow `$ref` and single-element `allOf` to the schema they name.
fn resolve<'a>(mut s: &'a Value, defs: &'a serde_json::Map<String, Value>) -> &'a Value {
    for _ in 0..8 {
        if let Some(r) = s["$ref"].as_str() {
            match defs.get(r.rsplit('/').next().unwrap_or("")) {
                Some(d) => s = d,
                None => return &Value::Null,
            }
        } else if let Some([one]) = s["allOf"].as_array().map(Vec::as_slice) {
            s = one;
        } else {
            break;
        }
    }
    s
}

fn walk(
    schema: &Value,
    v: &mut Value,
    path: &str,
    defs: &serde_json::Map<String, Value>,
    out: &mut Vec<String>,
) {
    let s = resolve(schema, defs);
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        Value::Object(m) => {
            if let Some(props) = s["properties"].as_object() {
                let unknown: Vec<String> = m
                    .keys()
                    .filter(|k| !props.contains_key(k.as_str()))
                    .cloned()
                    .collect();
                for k in unknown {
                    out.push(join(&k));
                    m.remove(&k);
                }
                for (k, child) in m.iter_mut() {
                    walk(&props[k.as_str()], child, &join(k), defs, out);
                }
            } else if s["additionalProperties"].is_object() {
                for (k, child) in m.iter_mut() {
                    walk(
                        &s["additionalProperties"],
                        child,
                        &format!("{path}[{k}]"),
                        defs,
                        out,
                    );
                }
            }
        }
        Value::Array(items) if s["items"].is_object() => {
            for (i, child) in items.iter_mut().enumerate() {
                walk(&s["items"], child, &format!("{path}[{i}]"), defs, out);
            }
        }
        _ => {}
    }
}

/// Drop the fields of `obj` its kind's schema does not have (for a custom resource: its CRD's
/// schema, as the real server prunes); returns their paths
/// (`spec.template.spec.containers[0].foo`) in order.
pub fn drop_unknown(t: &Target, obj: &mut Value) -> Vec<String> {
    if let Some(d) = &t.crd {
        return match &d.schema {
            Some(s) => crate::schema::prune(s, obj),
            None => Vec::new(),
        };
    }
    let res = t.res;
    let defs = openapi::definitions();
    let mut out = Vec::new();
    if let Some(schema) = defs.get(&schema_name(res)) {
        walk(schema, obj, "", defs, &mut out);
    }
    out
}

/// `unknown field "<path>"`, the real strict decoder's text.
fn texts(paths: &[String]) -> Vec<String> {
    paths
        .iter()
        .map(|p| format!("unknown field \"{p}\""))
        .collect()
}

/// Validate a create or update body: unknown fields dropped; Strict refuses with 400
/// `<Kind> in version "<v>" cannot be handled as a <Kind>: strict decoding error: ...`.
/// Returns the warnings to send.
pub fn check_body(t: &Target, obj: &mut Value, d: Directive) -> ApiResult<Vec<String>> {
    let unknown = texts(&drop_unknown(t, obj));
    if unknown.is_empty() || d == Directive::Ignore {
        return Ok(Vec::new());
    }
    if d == Directive::Strict {
        let r = crate::resources::get(t.res);
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
            unknown.join(", "),
            kind = r.kind,
            v = r.version,
        )));
    }
    Ok(unknown)
}

/// Validate a patched object: the fields it has that the stored one did not have in the
/// schema's eyes; Strict refuses with 422 ` "" is invalid: patch: Invalid value: "<patched
/// object>": strict decoding error: ...`.
pub fn check_patched(
    t: &Target,
    old: &Value,
    doc: &mut Value,
    d: Directive,
) -> ApiResult<Vec<String>> {
    let before = drop_unknown(t, &mut old.clone());
    let patched_text = serde_json::to_string(&*doc).unwrap_or_default();
    let unknown: Vec<String> = drop_unknown(t, doc)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    let unknown = texts(&unknown);
    if unknown.is_empty() || d == Directive::Ignore {
        return Ok(Vec::new());
    }
    if d == Directive::Strict {
        let quoted = serde_json::to_string(&patched_text).unwrap_or_default();
        return Err(ApiError::invalid(
            "",
            "",
            "",
            &[(
                "FieldValueInvalid",
                "patch",
                format!(
                    "Invalid value: {quoted}: strict decoding error: {}",
                    unknown.join(", ")
                ),
            )],
        ));
    }
    Ok(unknown)
}

/// Add `Warning: 299 - "<text>"` headers to a response.
pub fn with_warnings(mut r: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let quoted = format!("299 - {}", serde_json::to_string(w).unwrap_or_default());
        if let Ok(v) = HeaderValue::from_str(&quoted) {
            r.headers_mut().append("warning", v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{DEPLOYMENTS, PODS};
    use serde_json::json;

    fn target(res: ResId) -> Target {
        Target {
            res,
            ns: None,
            name: None,
            sub: None,
            crd: None,
            events_v1: false,
        }
    }

    #[test]
    fn unknown_fields_are_found_at_every_depth_and_dropped() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"any": "thing"}, "bogus": 1},
            "spec": {"replicas": 1, "replica": 2, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"rollingUpdate": {"maxSurge": "25%"}},
                     "template": {"spec": {"containers": [
                         {"name": "a", "image": "x", "resources": {"limits": {"cpu": "1"}}},
                         {"name": "b", "imagen": "y"}]}}}});
        let unknown = drop_unknown(&target(DEPLOYMENTS), &mut d);
        assert_eq!(
            unknown,
            [
                "metadata.bogus",
                "spec.replica",
                "spec.template.spec.containers[1].imagen"
            ]
        );
        assert!(d["spec"].get("replica").is_none());
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][1],
            json!({"name": "b"})
        );
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    }

    #[test]
    fn strict_refuses_warn_warns_ignore_is_silent() {
        let body = json!({"metadata": {"name": "p"}, "spec": {"containers": [], "nodeNme": "n1"}});
        let e = check_body(&target(PODS), &mut body.clone(), Directive::Strict).unwrap_err();
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.nodeNme\""
        );
        assert_eq!(
            check_body(&target(PODS), &mut body.clone(), Directive::Warn).unwrap(),
            ["unknown field \"spec.nodeNme\""]
        );
        assert!(
            check_body(&target(PODS), &mut body.clone(), Directive::Ignore)
                .unwrap()
                .is_empty()
        );
        let q = Query::parse("fieldValidation=Loose");
        let e = directive(&q, "CreateOptions").unwrap_err();
        assert_eq!(
            e.message,
            "CreateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"Loose\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
        );
    }
}
