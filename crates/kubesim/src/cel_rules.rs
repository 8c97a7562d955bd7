//! `x-kubernetes-validations` rules of CRD schemas, evaluated with the `cel` crate (cel-rust) as
//! the real server evaluates them with cel-go: `self` is the value the rule is attached to; a
//! rule that is false gives the rule's `message` (or `failed rule: <rule>`) as a field error on
//! that value (or on its `fieldPath`). Transition rules (those using `oldSelf`) are not
//! evaluated, and the Kubernetes CEL libraries (`quantity`, `url`, `isSorted`, ...) are not
//! there; see the README.

use std::collections::HashMap;

use serde_json::Value;

use crate::schema::Cause;

/// A JSON value as a CEL value (JSON integers are CEL `int`, as in the real server's conversion
/// of integer-typed fields).
fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => cel::Value::Int(i),
            None => cel::Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => cel::Value::String(s.clone().into()),
        Value::Array(a) => a.iter().map(to_cel).collect::<Vec<_>>().into(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), to_cel(v)))
            .collect::<HashMap<String, cel::Value>>()
            .into(),
    }
}

/// Whether a rule is a transition rule (compares with the old value).
fn is_transition(rule: &str) -> bool {
    rule.contains("oldSelf")
}

/// The compile error of a rule, if it does not compile (the real server refuses such a CRD).
pub fn compile_error(rule: &str) -> Option<String> {
    cel::Program::compile(rule).err().map(|e| e.to_string())
}

fn type_word(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::Null => "null",
    }
}

/// Evaluate the rules attached to the value `v` at `path`, adding a cause per failing rule.
pub fn check_rules(rules: &[Value], v: &Value, path: &str, out: &mut Vec<Cause>) {
    for r in rules {
        let Some(rule) = r["rule"].as_str() else {
            continue;
        };
        if is_transition(rule) {
            continue;
        }
        let field = match r["fieldPath"].as_str() {
            Some(f) if !f.is_empty() => format!("{path}{f}").trim_start_matches('.').to_string(),
            _ => path.to_string(),
        };
        let verdict = cel::Program::compile(rule)
            .map_err(|e| format!("compilation failed: {e}"))
            .and_then(|p| {
                let mut ctx = cel::Context::default();
                ctx.add_variable_from_value("self", to_cel(v));
                p.execute(&ctx).map_err(|e| e.to_string())
            });
        let message = match verdict {
            Ok(cel::Value::Bool(true)) => continue,
            Ok(cel::Value::Bool(false)) => r["message"]
                .as_str()
                .filter(|m| !m.is_empty())
                .map_or_else(|| format!("failed rule: {rule}"), String::from),
            Ok(other) => format!("rule did not evaluate to a boolean: {other:?}"),
            Err(e) => e,
        };
        let (reason, text) = match r["reason"].as_str() {
            Some("FieldValueForbidden") => ("FieldValueForbidden", format!("Forbidden: {message}")),
            Some("FieldValueRequired") => {
                ("FieldValueRequired", format!("Required value: {message}"))
            }
            Some("FieldValueDuplicate") => (
                "FieldValueDuplicate",
                format!("Duplicate value: {:?}", type_word(v)),
            ),
            _ => (
                "FieldValueInvalid",
                format!("Invalid value: {:?}: {message}", type_word(v)),
            ),
        };
        out.push(Cause {
            reason,
            field,
            message: text,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(rule: &str, v: Value) -> Vec<String> {
        let mut out = Vec::new();
        check_rules(
            &[json!({"rule": rule, "message": "exactly one of a or b"})],
            &v,
            "spec",
            &mut out,
        );
        out.into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn rules_kdrain_needs_evaluate_as_in_the_real_server() {
        let one_of = "has(self.a) != has(self.b)";
        assert!(run(one_of, json!({"a": 1})).is_empty());
        assert_eq!(
            run(one_of, json!({"a": 1, "b": 2})),
            ["spec: Invalid value: \"object\": exactly one of a or b"]
        );
        assert_eq!(run(one_of, json!({})).len(), 1);
        assert!(
            run(
                "size(self.a) > 0 && self.n == 3",
                json!({"a": ["x"], "n": 3})
            )
            .is_empty()
        );
        assert_eq!(run("self.n == 3", json!({"n": 4})).len(), 1);
        assert!(run("self.s == 'x'", json!({"s": "x"})).is_empty());
        assert!(run("self.s.matches('^[0-9]+(s|m)$')", json!({"s": "30s"})).is_empty());
        assert_eq!(
            run("self.s.matches('^[0-9]+(s|m)$')", json!({"s": "soon"})).len(),
            1
        );
        assert!(compile_error("self.a ==").is_some());
        assert!(compile_error("has(self.a)").is_none());
    }
}
