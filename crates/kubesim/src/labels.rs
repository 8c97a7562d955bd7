//! Adapters from Kubernetes JSON to the workspace `selectors` crate.

use std::collections::BTreeMap;

use selectors::LabelSelector;
use serde_json::Value;

/// Convert a `metav1.LabelSelector` JSON value (policy/v1 semantics, R-7): null matches nothing,
/// `{}` matches everything. Returns None when the selector is invalid.
pub fn from_json(sel: &Value) -> Option<LabelSelector> {
    if sel.is_null() {
        return Some(LabelSelector::nothing());
    }
    let match_labels: Option<BTreeMap<String, String>> = sel
        .get("matchLabels")
        .filter(|v| !v.is_null())
        .map(crate::meta::string_map);
    let mut exprs: Vec<(String, String, Vec<String>)> = Vec::new();
    if let Some(list) = sel.get("matchExpressions").and_then(|v| v.as_array()) {
        for e in list {
            let key = e["key"].as_str()?.to_string();
            let op = e["operator"].as_str()?.to_string();
            let values = e["values"]
                .as_array()
                .map(|vs| {
                    vs.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            exprs.push((key, op, values));
        }
    }
    LabelSelector::from_parts(match_labels.as_ref(), &exprs).ok()
}

/// Whether a selector matches an object's labels.
pub fn matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    sel.matches(labels)
}
