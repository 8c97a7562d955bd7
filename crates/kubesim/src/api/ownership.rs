//! Field ownership of server-side apply (`metadata.managedFields`), as the real server's field
//! manager keeps it for the writes of the API: an Update (create, update, non-apply patch) gives
//! its manager the fields it set or changed and takes them from the other managers; an Apply
//! owns exactly the fields of its configuration, and is refused with the real 409 when it would
//! change a field another manager owns (unless `force=true`, which takes it over). Fields a
//! manager applied before and no longer applies are removed when no one else owns them.
//!
//! Simplified: lists are atomic (owned as a whole, never merged by key), only `labels`,
//! `annotations`, `finalizers` and `ownerReferences` of `metadata` are tracked, and the
//! simulator's own controllers' writes are not recorded.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::HeaderMap;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::meta;

/// A field's path as the real server prints it (`.spec.holderIdentity`).
type Path = String;

/// The leaf fields of an object that ownership tracks, with their values.
pub fn leaves(v: &Value) -> BTreeMap<Path, Value> {
    let mut out = BTreeMap::new();
    if let Some(m) = v.as_object() {
        for (k, c) in m {
            match k.as_str() {
                "apiVersion" | "kind" => {}
                "metadata" => {
                    for mk in ["labels", "annotations", "finalizers", "ownerReferences"] {
                        if !c[mk].is_null() {
                            walk(&c[mk], &format!(".metadata.{mk}"), &mut out);
                        }
                    }
                }
                _ => walk(c, &format!(".{k}"), &mut out),
            }
        }
    }
    out
}

fn walk(v: &Value, path: &str, out: &mut BTreeMap<Path, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                walk(c, &format!("{path}.{k}"), out);
            }
        }
        Value::Null => {}
        _ => {
            out.insert(path.to_string(), v.clone());
        }
    }
}

/// One `managedFields` entry: who, how, and the fields it owns.
struct Entry {
    manager: String,
    operation: String,
    subresource: String,
    api_version: String,
    time: Value,
    fields: BTreeSet<Path>,
}

impl Entry {
    fn same(&self, manager: &str, operation: &str, sub: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == sub
    }

    /// How a conflict names this manager (`"m"`, `"m" using v1 at <time>`).
    fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
            if let Some(t) = self.time.as_str() {
                s.push_str(&format!(" at {t}"));
            }
        }
        s
    }

    fn to_json(&self) -> Value {
        let mut f = Map::new();
        for p in &self.fields {
            let mut node = &mut f;
            for seg in p.trim_start_matches('.').split('.') {
                node = node
                    .entry(format!("f:{seg}"))
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .expect("an object");
            }
        }
        let mut e = json!({"manager": self.manager, "operation": self.operation,
            "apiVersion": self.api_version, "time": self.time, "fieldsType": "FieldsV1", "fieldsV1": f});
        if !self.subresource.is_empty() {
            e["subresource"] = json!(self.subresource);
        }
        e
    }
}

fn fields_of(f: &Value, path: &str, out: &mut BTreeSet<Path>) {
    let Some(m) = f.as_object() else {
        return;
    };
    let children: Vec<(&String, &Value)> = m.iter().filter(|(k, _)| k.starts_with("f:")).collect();
    if children.is_empty() || m.keys().any(|k| k.starts_with("k:") || k.starts_with("v:")) {
        if !path.is_empty() {
            out.insert(path.to_string());
        }
        return;
    }
    for (k, c) in children {
        fields_of(c, &format!("{path}.{}", &k[2..]), out);
    }
}

fn entries(o: &Value) -> Vec<Entry> {
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    o["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    let mut fields = BTreeSet::new();
                    fields_of(&e["fieldsV1"], "", &mut fields);
                    Entry {
                        manager: text(&e["manager"]),
                        operation: text(&e["operation"]),
                        subresource: text(&e["subresource"]),
                        api_version: text(&e["apiVersion"]),
                        time: e["time"].clone(),
                        fields,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The manager of a write: `fieldManager`, else the User-Agent's product (as the real server).
pub fn manager(field_manager: Option<&str>, headers: &HeaderMap) -> String {
    if let Some(m) = field_manager.filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    let ua = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    ua.split('/')
        .next()
        .unwrap_or(ua)
        .chars()
        .take(128)
        .collect()
}

/// What a write is, for ownership.
pub struct Write<'a> {
    /// The field manager.
    pub manager: &'a str,
    /// The subresource written ("" or "status").
    pub sub: &'a str,
    /// The object's apiVersion.
    pub api_version: &'a str,
    /// For an Apply: its configuration and `force`.
    pub apply: Option<(&'a Value, bool)>,
}

/// Record a write of `next` over `old` (None for a create) in `next`'s `managedFields`. An
/// Apply that would change fields other managers own without `force` is refused with the real
/// 409 `Apply failed with N conflict(s): ...`.
pub fn record(old: Option<&Value>, next: &mut Value, w: &Write<'_>) -> Result<(), ApiError> {
    let before = old.map(leaves).unwrap_or_default();
    let mut list = old.map(entries).unwrap_or_default();
    let owners_before: Vec<(String, String, String, BTreeSet<Path>)> = list
        .iter()
        .map(|e| {
            (
                e.manager.clone(),
                e.operation.clone(),
                e.subresource.clone(),
                e.fields.clone(),
            )
        })
        .collect();
    let op = if w.apply.is_some() { "Apply" } else { "Update" };
    if let Some((config, force)) = w.apply {
        let applied = leaves(config);
        let mut conflicts: Vec<(String, Path)> = Vec::new();
        for (p, v) in &applied {
            if before.get(p).is_none_or(|b| b == v) {
                continue;
            }
            for e in list.iter().filter(|e| !e.same(w.manager, op, w.sub)) {
                if e.fields.contains(p) {
                    conflicts.push((e.describe(), p.clone()));
                }
            }
        }
        if !conflicts.is_empty() && !force {
            return Err(conflict_error(&conflicts));
        }
        // Fields this manager applied before and no longer applies go unless someone else
        // owns them.
        let dropped: Vec<Path> = list
            .iter()
            .find(|e| e.same(w.manager, op, w.sub))
            .map(|e| {
                e.fields
                    .iter()
                    .filter(|p| !applied.contains_key(*p))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for p in dropped {
            let others = list
                .iter()
                .any(|e| !e.same(w.manager, op, w.sub) && e.fields.contains(&p));
            if !others {
                remove_path(next, &p);
            }
        }
    }
    let after = leaves(next);
    let changed: BTreeSet<Path> = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(*v))
        .map(|(p, _)| p.clone())
        .chain(before.keys().filter(|p| !after.contains_key(*p)).cloned())
        .collect();
    let mine: BTreeSet<Path> = match w.apply {
        Some((config, _)) => leaves(config)
            .into_keys()
            .filter(|p| after.contains_key(p))
            .collect(),
        None => changed
            .iter()
            .filter(|p| after.contains_key(*p))
            .cloned()
            .collect(),
    };
    for e in list.iter_mut() {
        let writer = e.same(w.manager, op, w.sub);
        e.fields
            .retain(|p| after.contains_key(p) && (writer || !changed.contains(p)));
    }
    let now = json!(meta::now_rfc3339());
    match list.iter_mut().find(|e| e.same(w.manager, op, w.sub)) {
        Some(e) if w.apply.is_some() => {
            e.fields = mine;
            e.time = now;
        }
        Some(e) => {
            e.fields.extend(mine);
            e.time = now;
        }
        None => list.push(Entry {
            manager: w.manager.to_string(),
            operation: op.to_string(),
            subresource: w.sub.to_string(),
            api_version: w.api_version.to_string(),
            time: now,
            fields: mine,
        }),
    }
    list.retain(|e| !e.fields.is_empty());
    let owners_after: Vec<(String, String, String, BTreeSet<Path>)> = list
        .iter()
        .map(|e| {
            (
                e.manager.clone(),
                e.operation.clone(),
                e.subresource.clone(),
                e.fields.clone(),
            )
        })
        .collect();
    // A write that changes nothing leaves managedFields (and so the resourceVersion) alone.
    if let Some(o) = old
        && changed.is_empty()
        && owners_before == owners_after
    {
        match o["metadata"].get("managedFields") {
            Some(m) => next["metadata"]["managedFields"] = m.clone(),
            None => {
                if let Some(m) = next["metadata"].as_object_mut() {
                    m.remove("managedFields");
                }
            }
        }
        return Ok(());
    }
    next["metadata"]["managedFields"] = Value::Array(list.iter().map(Entry::to_json).collect());
    Ok(())
}

fn remove_path(v: &mut Value, path: &str) {
    let segs: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let Some((last, parents)) = segs.split_last() else {
        return;
    };
    let mut node = v;
    for s in parents {
        match node.get_mut(*s) {
            Some(n) => node = n,
            None => return,
        }
    }
    if let Some(m) = node.as_object_mut() {
        m.remove(*last);
    }
}

fn conflict_error(conflicts: &[(String, Path)]) -> ApiError {
    let message = if conflicts.len() == 1 {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            conflicts[0].0, conflicts[0].1
        )
    } else {
        let mut by: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (m, p) in conflicts {
            by.entry(m).or_default().push(p);
        }
        let mut lines = Vec::new();
        for (m, ps) in by {
            lines.push(format!("conflicts with {m}:"));
            lines.extend(ps.iter().map(|p| format!("- {p}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": p}))
        .collect();
    let mut e = ApiError::new(409, "Conflict", message);
    e.details = Some(json!({"causes": causes}));
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write<'a>(manager: &'a str, apply: Option<(&'a Value, bool)>) -> Write<'a> {
        Write {
            manager,
            sub: "",
            api_version: "coordination.k8s.io/v1",
            apply,
        }
    }

    #[test]
    fn a_second_applier_conflicts_on_fields_the_first_owns() {
        let a = json!({"spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}});
        let mut obj = json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}});
        record(None, &mut obj, &write("mgr-a", Some((&a, false)))).unwrap();
        assert_eq!(
            obj["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:spec": {"f:holderIdentity": {}, "f:leaseDurationSeconds": {}}})
        );
        let b = json!({"spec": {"holderIdentity": "b", "leaseDurationSeconds": 15}});
        let mut next = obj.clone();
        next["spec"]["holderIdentity"] = json!("b");
        let e = record(Some(&obj), &mut next, &write("mgr-b", Some((&b, false)))).unwrap_err();
        assert_eq!(e.code, 409);
        assert_eq!(
            e.message,
            "Apply failed with 1 conflict: conflict with \"mgr-a\": .spec.holderIdentity"
        );
        // An update that removes the field frees it; then the second applier takes it.
        let mut cleared = obj.clone();
        cleared["spec"]
            .as_object_mut()
            .unwrap()
            .remove("holderIdentity");
        record(Some(&obj), &mut cleared, &write("mgr-b", None)).unwrap();
        let mut taken = cleared.clone();
        taken["spec"]["holderIdentity"] = json!("b");
        record(
            Some(&cleared),
            &mut taken,
            &write("mgr-b", Some((&b, false))),
        )
        .unwrap();
        // With force a conflicting apply takes the field over.
        let mut forced = taken.clone();
        forced["spec"]["holderIdentity"] = json!("a");
        record(Some(&taken), &mut forced, &write("mgr-a", Some((&a, true)))).unwrap();
        let owners: Vec<&str> = forced["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["fieldsV1"]["f:spec"].get("f:holderIdentity").is_some())
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(owners, ["mgr-a"]);
    }
}
