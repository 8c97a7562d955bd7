//! The structural OpenAPI v3 schemas of CustomResourceDefinitions, applied to custom resources
//! as the real server does: defaults, pruning of unknown fields (`preserveUnknownFields: false`)
//! and validation with the real server's field errors (kube-openapi's messages turned into
//! `field.Error`s by apiextensions-apiserver).

use serde_json::{Map, Value};

/// One validation failure, as a `StatusCause`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, ...
    pub reason: &'static str,
    /// The field path (`spec.nodeNames[0]`).
    pub field: String,
    /// The message after the field (`Required value`, `Invalid value: 0: ...`).
    pub message: String,
}

fn child(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

fn preserves(s: &Value) -> bool {
    s["x-kubernetes-preserve-unknown-fields"] == true
}

/// Fill in the schema's `default`s for absent fields, outside in (a defaulted object gets its
/// own properties' defaults too), as the real server does on writes.
pub fn default(s: &Value, v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(props) = s["properties"].as_object() {
                for (k, ps) in props {
                    if !m.contains_key(k)
                        && let Some(d) = ps.get("default")
                    {
                        m.insert(k.clone(), d.clone());
                    }
                }
                for (k, child) in m.iter_mut() {
                    if let Some(ps) = props.get(k) {
                        default(ps, child);
                    }
                }
            } else if s["additionalProperties"].is_object() {
                for child in m.values_mut() {
                    default(&s["additionalProperties"], child);
                }
            }
        }
        Value::Array(items) if s["items"].is_object() => {
            for child in items {
                default(&s["items"], child);
            }
        }
        _ => {}
    }
}

/// Drop the fields the schema does not specify (unless it preserves unknown fields there), the
/// object's `apiVersion`, `kind` and `metadata` aside; returns their paths in order.
pub fn prune(s: &Value, v: &mut Value) -> Vec<String> {
    let mut out = Vec::new();
    prune_at(s, v, "", true, &mut out);
    out
}

fn prune_at(s: &Value, v: &mut Value, path: &str, root: bool, out: &mut Vec<String>) {
    let embedded = root || s["x-kubernetes-embedded-resource"] == true;
    match v {
        Value::Object(m) => {
            let props = s["properties"].as_object();
            let additional = s["additionalProperties"].is_object();
            let keep_unknown = preserves(s) || additional || s["additionalProperties"] == true;
            let unknown: Vec<String> = m
                .keys()
                .filter(|k| {
                    let system =
                        embedded && matches!(k.as_str(), "apiVersion" | "kind" | "metadata");
                    !(system || props.is_some_and(|p| p.contains_key(k.as_str())))
                })
                .cloned()
                .collect();
            if !keep_unknown {
                for k in unknown {
                    out.push(child(path, &k));
                    m.remove(&k);
                }
            }
            for (k, c) in m.iter_mut() {
                if let Some(ps) = props.and_then(|p| p.get(k)) {
                    prune_at(ps, c, &child(path, k), false, out);
                } else if additional {
                    prune_at(
                        &s["additionalProperties"],
                        c,
                        &format!("{path}[{k}]"),
                        false,
                        out,
                    );
                }
            }
        }
        Value::Array(items) if s["items"].is_object() => {
            for (i, c) in items.iter_mut().enumerate() {
                prune_at(&s["items"], c, &format!("{path}[{i}]"), false, out);
            }
        }
        _ => {}
    }
}

/// A value as field errors print it: numbers and booleans bare, strings quoted.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "\"null\"".into(),
        Value::Number(_) | Value::Bool(_) => v.to_string(),
        other => format!("{:?}", other.to_string()),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_ok(want: &str, v: &Value) -> bool {
    match want {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => v.is_number(),
        _ => true,
    }
}

/// Validate an object against its CRD's schema. `old` is the stored object of an update (for the
/// CEL transition rules, which are not evaluated; see the README).
pub fn validate(s: &Value, v: &Value, old: Option<&Value>) -> Vec<Cause> {
    let _ = old;
    let mut out = Vec::new();
    let mut root = v.clone();
    if let Some(m) = root.as_object_mut() {
        for k in ["apiVersion", "kind", "metadata"] {
            m.remove(k);
        }
    }
    check(s, &root, "", &mut out);
    out
}

fn invalid(out: &mut Vec<Cause>, path: &str, v: &Value, detail: String) {
    out.push(Cause {
        reason: "FieldValueInvalid",
        field: path.to_string(),
        message: format!("Invalid value: {}: {detail}", shown(v)),
    });
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => f.to_string(),
        None => v.to_string(),
    }
}

fn check(s: &Value, v: &Value, path: &str, out: &mut Vec<Cause>) {
    let at = if path.is_empty() { "." } else { path };
    if v.is_null() {
        if s["nullable"] != true && s["type"].is_string() {
            out.push(Cause {
                reason: "FieldValueTypeInvalid",
                field: path.to_string(),
                message: format!(
                    "Invalid value: \"null\": {at} in body must be of type {}: \"null\"",
                    s["type"].as_str().unwrap_or("")
                ),
            });
        }
        return;
    }
    let int_or_string = s["x-kubernetes-int-or-string"] == true;
    if int_or_string {
        if !(v.is_string() || type_ok("integer", v)) {
            out.push(Cause {
                reason: "FieldValueTypeInvalid",
                field: path.to_string(),
                message: format!(
                    "Invalid value: \"{t}\": {at} in body must be of type integer,string: \"{t}\"",
                    t = type_name(v)
                ),
            });
            return;
        }
    } else if let Some(t) = s["type"].as_str()
        && !type_ok(t, v)
    {
        out.push(Cause {
            reason: "FieldValueTypeInvalid",
            field: path.to_string(),
            message: format!(
                "Invalid value: \"{n}\": {at} in body must be of type {t}: \"{n}\"",
                n = type_name(v)
            ),
        });
        return;
    }
    if let Some(values) = s["enum"].as_array()
        && !values.contains(v)
    {
        let supported: Vec<String> = values
            .iter()
            .map(|e| match e {
                Value::String(s) => format!("{s:?}"),
                other => format!("{:?}", other.to_string()),
            })
            .collect();
        out.push(Cause {
            reason: "FieldValueNotSupported",
            field: path.to_string(),
            message: format!(
                "Unsupported value: {}: supported values: {}",
                shown(v),
                supported.join(", ")
            ),
        });
    }
    if let Some(f) = v.as_f64() {
        let exclusive = |k: &str| s[k] == true;
        if let Some(min) = s["minimum"].as_f64() {
            if exclusive("exclusiveMinimum") && f <= min {
                invalid(
                    out,
                    path,
                    v,
                    format!("{at} in body should be greater than {}", num(&s["minimum"])),
                );
            } else if f < min {
                invalid(
                    out,
                    path,
                    v,
                    format!(
                        "{at} in body should be greater than or equal to {}",
                        num(&s["minimum"])
                    ),
                );
            }
        }
        if let Some(max) = s["maximum"].as_f64() {
            if exclusive("exclusiveMaximum") && f >= max {
                invalid(
                    out,
                    path,
                    v,
                    format!("{at} in body should be less than {}", num(&s["maximum"])),
                );
            } else if f > max {
                invalid(
                    out,
                    path,
                    v,
                    format!(
                        "{at} in body should be less than or equal to {}",
                        num(&s["maximum"])
                    ),
                );
            }
        }
    }
    if let Some(text) = v.as_str() {
        let len = text.chars().count() as u64;
        if let Some(max) = s["maxLength"].as_u64()
            && len > max
        {
            out.push(Cause {
                reason: "FieldValueTooLong",
                field: path.to_string(),
                message: format!("Too long: may not be more than {max} bytes"),
            });
        }
        if let Some(min) = s["minLength"].as_u64()
            && len < min
        {
            invalid(
                out,
                path,
                v,
                format!("{at} in body should be at least {min} chars long"),
            );
        }
        if let Some(p) = s["pattern"].as_str()
            && regex::Regex::new(p).is_ok_and(|re| !re.is_match(text))
        {
            invalid(out, path, v, format!("{at} in body should match '{p}'"));
        }
    }
    match v {
        Value::Object(m) => check_object(s, m, path, at, out),
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(max) = s["maxItems"].as_u64()
                && n > max
            {
                out.push(Cause {
                    reason: "FieldValueTooMany",
                    field: path.to_string(),
                    message: format!("Too many: {n}: must have at most {max} items"),
                });
            }
            if let Some(min) = s["minItems"].as_u64()
                && n < min
            {
                invalid(
                    out,
                    path,
                    v,
                    format!("{at} in body should have at least {min} items"),
                );
            }
            if s["items"].is_object() {
                for (i, c) in items.iter().enumerate() {
                    check(&s["items"], c, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
    for (k, want) in [("allOf", usize::MAX), ("anyOf", 1), ("oneOf", 0)] {
        let Some(alts) = s[k].as_array() else {
            continue;
        };
        let results: Vec<Vec<Cause>> = alts
            .iter()
            .map(|a| {
                let mut o = Vec::new();
                check(a, v, path, &mut o);
                o
            })
            .collect();
        let passing = results.iter().filter(|r| r.is_empty()).count();
        match want {
            usize::MAX => out.extend(results.into_iter().flatten()),
            1 if passing == 0 => out.extend(results.into_iter().flatten()),
            0 if passing != 1 => invalid(
                out,
                path,
                v,
                format!("{at} in body must validate one and only one schema (oneOf)"),
            ),
            _ => {}
        }
    }
    if let Some(rules) = s["x-kubernetes-validations"].as_array() {
        crate::cel_rules::check_rules(rules, v, path, out);
    }
}

fn check_object(s: &Value, m: &Map<String, Value>, path: &str, at: &str, out: &mut Vec<Cause>) {
    if let Some(req) = s["required"].as_array() {
        for k in req.iter().filter_map(Value::as_str) {
            if !m.contains_key(k) {
                out.push(Cause {
                    reason: "FieldValueRequired",
                    field: child(path, k),
                    message: "Required value".into(),
                });
            }
        }
    }
    let n = m.len() as u64;
    if let Some(max) = s["maxProperties"].as_u64()
        && n > max
    {
        out.push(Cause {
            reason: "FieldValueTooMany",
            field: path.to_string(),
            message: format!("Too many: {n}: must have at most {max} items"),
        });
    }
    if let Some(min) = s["minProperties"].as_u64()
        && n < min
    {
        invalid(
            out,
            path,
            &Value::Object(m.clone()),
            format!("{at} in body should have at least {min} properties"),
        );
    }
    let props = s["properties"].as_object();
    for (k, c) in m {
        if let Some(ps) = props.and_then(|p| p.get(k)) {
            check(ps, c, &child(path, k), out);
        } else if s["additionalProperties"].is_object() {
            check(&s["additionalProperties"], c, &format!("{path}[{k}]"), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["count"], "properties": {
            "count": {"type": "integer", "minimum": 1},
            "stage": {"type": "string", "enum": ["Idle", "Drain"], "default": "Drain"},
            "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "items": {"type": "array", "maxItems": 1, "items": {"type": "string"}}
        }}}})
    }

    fn messages(v: Value) -> Vec<String> {
        validate(&schema(), &v, None)
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn defaults_fill_absent_fields_and_pruning_drops_unknown_ones() {
        let mut o = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
            "spec": {"count": 1, "bogus": 1, "labels": {"a": "b"}, "free": {"any": {"thing": 1}}}, "extra": true});
        default(&schema(), &mut o);
        assert_eq!(o["spec"]["stage"], "Drain");
        assert_eq!(prune(&schema(), &mut o), ["extra", "spec.bogus"]);
        assert_eq!(o["spec"]["free"]["any"]["thing"], 1);
        assert_eq!(o["metadata"]["name"], "a");
    }

    #[test]
    fn validation_gives_the_real_servers_field_errors() {
        let mut got = messages(
            json!({"spec": {"stage": "Foo", "count": 0, "name": "ABCDEFG", "items": ["a", "b"]}}),
        );
        got.sort();
        assert_eq!(
            got,
            [
                "spec.count: Invalid value: 0: spec.count in body should be greater than or equal to 1",
                "spec.items: Too many: 2: must have at most 1 items",
                "spec.name: Invalid value: \"ABCDEFG\": spec.name in body should match '^[a-z]+$'",
                "spec.name: Too long: may not be more than 5 bytes",
                "spec.stage: Unsupported value: \"Foo\": supported values: \"Idle\", \"Drain\"",
            ]
        );
        assert_eq!(
            messages(json!({"spec": {"count": "3"}})),
            [
                "spec.count: Invalid value: \"string\": spec.count in body must be of type integer: \"string\""
            ]
        );
        assert_eq!(
            messages(json!({"spec": {}})),
            ["spec.count: Required value"]
        );
    }
}
