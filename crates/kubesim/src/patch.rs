//! Strategic merge patch for built-in kinds (P-1, P-4): JSON merge patch plus merge-by-key for
//! the lists that have a patch-merge key, union for merge-strategy primitive lists, and the
//! `$patch`, `$retainKeys`, `$setElementOrder` and `$deleteFromPrimitiveList` directives.

use serde_json::{Map, Value};

/// The patch-merge key of a list field, by field name.
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "conditions" | "addresses" => "type",
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => "name",
        "ownerReferences" => "uid",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => "containerPort",
        "hostAliases" => "ip",
        "readinessGates" => "conditionType",
        _ => return None,
    })
}

/// Lists of scalars merged as sets.
fn primitive_merge(field: &str) -> bool {
    matches!(field, "finalizers")
}

/// Remove directive keys from a value that is inserted as a whole.
fn strip(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
        other => other.clone(),
    }
}

fn merge_list(field: &str, target: &mut Vec<Value>, patch: &[Value]) {
    if let Some(key) = merge_key(field) {
        for item in patch {
            let Some(id) = item.get(key) else {
                target.push(strip(item));
                continue;
            };
            let pos = target.iter().position(|t| t.get(key) == Some(id));
            match (item.get("$patch").and_then(Value::as_str), pos) {
                (Some("delete"), Some(p)) => {
                    target.remove(p);
                }
                (Some("delete"), None) => {}
                (Some("replace"), Some(p)) => target[p] = strip(item),
                (_, Some(p)) => merge(&mut target[p], item),
                (_, None) => target.push(strip(item)),
            }
        }
    } else if primitive_merge(field) {
        for item in patch {
            if !target.contains(item) {
                target.push(item.clone());
            }
        }
    } else {
        *target = patch.iter().map(strip).collect();
    }
}

/// Apply a strategic merge patch to `target` in place.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = strip(patch);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    if let Some(Value::Array(keep)) = p.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        t.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, pv) in p {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(del)) = (t.get_mut(field), pv) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        match pv {
            Value::Null => {
                t.remove(k);
            }
            Value::Object(_) if pv.get("$patch").and_then(Value::as_str) == Some("delete") => {
                t.remove(k);
            }
            Value::Object(_) => {
                let entry = t.entry(k.clone()).or_insert(Value::Null);
                merge(entry, pv);
            }
            Value::Array(items) => match t.get_mut(k) {
                Some(Value::Array(existing)) => merge_list(k, existing, items),
                _ => {
                    t.insert(
                        k.clone(),
                        Value::Array(
                            items
                                .iter()
                                .filter(|i| i.get("$patch").is_none())
                                .map(strip)
                                .collect(),
                        ),
                    );
                }
            },
            other => {
                t.insert(k.clone(), other.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uncordon_null_clears_field() {
        let mut n = json!({"spec":{"unschedulable":true,"podCIDR":"x"}});
        merge(&mut n, &json!({"spec":{"unschedulable":null}}));
        assert_eq!(n, json!({"spec":{"podCIDR":"x"}}));
    }

    #[test]
    fn conditions_merge_by_type() {
        let mut p = json!({"status":{"conditions":[{"type":"Ready","status":"True"},{"type":"PodScheduled","status":"True"}]}});
        merge(
            &mut p,
            &json!({"status":{"conditions":[{"type":"Ready","status":"False"},{"type":"DisruptionTarget","status":"True"}]}}),
        );
        assert_eq!(
            p["status"]["conditions"],
            json!([{"type":"Ready","status":"False"},{"type":"PodScheduled","status":"True"},{"type":"DisruptionTarget","status":"True"}])
        );
    }

    #[test]
    fn delete_directive_and_finalizer_union() {
        let mut p = json!({"metadata":{"finalizers":["a"]},"spec":{"containers":[{"name":"a","image":"x"},{"name":"b"}]}});
        merge(
            &mut p,
            &json!({"metadata":{"finalizers":["b"]},"spec":{"containers":[{"name":"b","$patch":"delete"},{"name":"a","image":"y"}]}}),
        );
        assert_eq!(p["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(p["spec"]["containers"], json!([{"name":"a","image":"y"}]));
        merge(
            &mut p,
            &json!({"$deleteFromPrimitiveList/finalizers":["a"],"metadata":{}}),
        );
        merge(
            &mut p["metadata"],
            &json!({"$deleteFromPrimitiveList/finalizers":["a"]}),
        );
        assert_eq!(p["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn taints_are_replaced_whole() {
        let mut n = json!({"spec":{"taints":[{"key":"a","effect":"NoSchedule"}]}});
        merge(
            &mut n,
            &json!({"spec":{"taints":[{"key":"b","effect":"NoExecute"}]}}),
        );
        assert_eq!(
            n["spec"]["taints"],
            json!([{"key":"b","effect":"NoExecute"}])
        );
    }
}
