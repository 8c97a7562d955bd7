//! Table columns of CustomResourceDefinitions (`NAME`, `CREATED AT`) and of custom resources:
//! `Name` then the version's `additionalPrinterColumns` (or `Age` when it has none), with cells
//! as apiextensions-apiserver's table convertor makes them from the columns' JSONPaths.

use serde_json::{Value, json};

use crate::crd::CrdDef;
use crate::meta;

/// The columns of a CRD's objects.
pub fn columns(def: &CrdDef) -> Vec<Value> {
    let mut out = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    for c in printer_columns(def) {
        let path = c["jsonPath"].as_str().unwrap_or("");
        let description = c["description"]
            .as_str()
            .filter(|d| !d.is_empty())
            .map_or_else(
                || format!("Custom resource definition column (in JSONPath format): {path}"),
                String::from,
            );
        out.push(json!({
            "name": c["name"], "type": c["type"], "format": c["format"].as_str().unwrap_or(""),
            "description": description, "priority": c["priority"].as_i64().unwrap_or(0),
        }));
    }
    out
}

/// The version's printer columns, or the `Age` column the real server serves when it has none.
fn printer_columns(def: &CrdDef) -> Vec<Value> {
    if def.columns.is_empty() {
        return vec![
            json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "description": "CreationTimestamp is a timestamp representing the server time when this object was created."}),
        ];
    }
    def.columns.clone()
}

/// One object's cells.
pub fn cells(def: &CrdDef, o: &Value, since: impl Fn(&Value) -> String) -> Vec<Value> {
    let mut out = vec![json!(meta::name(o))];
    for c in printer_columns(def) {
        let found = jsonpath(o, c["jsonPath"].as_str().unwrap_or(""));
        let cell = match (c["type"].as_str().unwrap_or("string"), found) {
            (_, None) => Value::Null,
            ("string", Some(v)) => json!(go_text(v)),
            ("integer", Some(v)) => v.as_f64().map_or(Value::Null, |f| json!(f as i64)),
            ("number", Some(v)) => v.as_f64().map_or(Value::Null, |f| json!(f)),
            ("boolean", Some(v)) if v.is_boolean() => v.clone(),
            ("date", Some(v)) if v.is_string() => match v.as_str().and_then(meta::parse_time) {
                Some(_) => json!(since(v)),
                None => json!("<invalid>"),
            },
            _ => Value::Null,
        };
        out.push(cell);
    }
    out
}

/// A value as client-go's JSONPath printer prints it (strings bare, the rest as JSON).
fn go_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The first result of a printer column's JSONPath (`.status.phase`, `.spec.nodeNames[0]`,
/// `.spec.items[*].name`, `.status.conditions[?(@.type=="Ready")].status`).
pub fn jsonpath<'a>(o: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let mut cur: Vec<&Value> = vec![o];
    let mut rest = path.trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            rest = &r[end..];
            if key.is_empty() {
                continue;
            }
            cur = cur.into_iter().filter_map(|v| v.get(key)).collect();
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let sel = &r[..end];
            rest = &r[end + 1..];
            cur = select(cur, sel);
        } else {
            return None;
        }
    }
    cur.into_iter().next()
}

fn select<'a>(cur: Vec<&'a Value>, sel: &str) -> Vec<&'a Value> {
    let items = cur
        .into_iter()
        .filter_map(|v| v.as_array())
        .flat_map(|a| a.iter());
    if sel == "*" {
        return items.collect();
    }
    if let Ok(i) = sel.parse::<i64>() {
        let all: Vec<&Value> = items.collect();
        let i = if i < 0 { all.len() as i64 + i } else { i };
        return all.get(i.max(0) as usize).copied().into_iter().collect();
    }
    // `?(@.key=="value")` (also with '' quotes).
    let Some(cond) = sel.strip_prefix("?(@.").and_then(|c| c.strip_suffix(')')) else {
        return Vec::new();
    };
    let Some((key, want)) = cond.split_once("==") else {
        return Vec::new();
    };
    let want = want.trim().trim_matches(['"', '\'']);
    items.filter(|v| go_text(&v[key.trim()]) == want).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_finds_what_printer_columns_ask_for() {
        let o = json!({"spec": {"nodeNames": ["a", "b"]}, "status": {"phase": "Draining",
            "conditions": [{"type": "Planned", "status": "True"}, {"type": "Drained", "status": "False"}]}});
        assert_eq!(jsonpath(&o, ".status.phase"), Some(&json!("Draining")));
        assert_eq!(jsonpath(&o, ".spec.nodeNames[1]"), Some(&json!("b")));
        assert_eq!(jsonpath(&o, ".spec.nodeNames[*]"), Some(&json!("a")));
        assert_eq!(
            jsonpath(&o, ".status.conditions[?(@.type==\"Drained\")].status"),
            Some(&json!("False"))
        );
        assert_eq!(jsonpath(&o, ".status.missing"), None);
    }
}
