//! List/watch filtering: namespace, label selector and field selector.

use selectors::{FieldOp, FieldSelector, LabelSelector};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::resources::ResId;

/// What a LIST or WATCH selects.
pub struct Filter {
    /// Resource type.
    pub res: ResId,
    /// Namespace restriction.
    pub ns: Option<String>,
    /// Parsed label selector.
    pub labels: Option<LabelSelector>,
    /// Parsed field selector.
    pub fields: Option<FieldSelector>,
}

fn bool_str(v: &Value) -> String {
    if v.as_bool().unwrap_or(false) {
        "true".into()
    } else {
        "false".into()
    }
}

/// Value of a selectable field of an object (None when the key is unknown).
pub fn field_value(res: ResId, o: &Value, key: &str) -> Option<String> {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    Some(match key {
        "metadata.name" => meta::name(o).to_string(),
        "metadata.namespace" => meta::namespace(o).to_string(),
        "spec.nodeName" | "spec.host" => s(&o["spec"]["nodeName"]),
        "spec.restartPolicy" => s(&o["spec"]["restartPolicy"]),
        "spec.schedulerName" => s(&o["spec"]["schedulerName"]),
        "spec.serviceAccountName" => s(&o["spec"]["serviceAccountName"]),
        "spec.hostNetwork" => bool_str(&o["spec"]["hostNetwork"]),
        "spec.unschedulable" => bool_str(&o["spec"]["unschedulable"]),
        "status.phase" => s(&o["status"]["phase"]),
        "status.podIP" => s(&o["status"]["podIP"]),
        "status.nominatedNodeName" => s(&o["status"]["nominatedNodeName"]),
        "status.replicas" => o["status"]["replicas"].as_i64().unwrap_or(0).to_string(),
        "involvedObject.name"
        | "involvedObject.kind"
        | "involvedObject.namespace"
        | "involvedObject.uid"
        | "involvedObject.apiVersion"
        | "involvedObject.resourceVersion"
        | "involvedObject.fieldPath" => s(&o["involvedObject"][&key["involvedObject.".len()..]]),
        "reportingComponent" => s(&o["reportingComponent"]),
        "reason" => s(&o["reason"]),
        "type" => s(&o["type"]),
        "source" => s(&o["source"]["component"]),
        _ => {
            let _ = res;
            return None;
        }
    })
}

impl Filter {
    /// Build from `labelSelector`/`fieldSelector` query values; 400 on parse errors or unknown field keys.
    pub fn new(
        res: ResId,
        ns: Option<String>,
        label: Option<&str>,
        field: Option<&str>,
    ) -> ApiResult<Self> {
        let labels = match label.filter(|s| !s.trim().is_empty()) {
            Some(s) => {
                Some(LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?)
            }
            None => None,
        };
        let fields = match field.filter(|s| !s.trim().is_empty()) {
            Some(s) => {
                let f =
                    FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?;
                let mut allowed: Vec<&str> = vec!["metadata.name", "metadata.namespace"];
                allowed.extend_from_slice(crate::resources::get(res).field_keys);
                f.check_keys(&allowed)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                Some(f)
            }
            None => None,
        };
        Ok(Filter {
            res,
            ns,
            labels,
            fields,
        })
    }

    /// Whether any selector is set (R-4: remainingItemCount only without selectors).
    pub fn has_selectors(&self) -> bool {
        self.labels.is_some() || self.fields.is_some()
    }

    /// The node a `spec.nodeName=X` term pins the selection to (not for an empty X).
    pub fn node(&self) -> Option<String> {
        let f = self.fields.as_ref()?;
        f.equals_value("spec.nodeName")
            .or_else(|| f.equals_value("spec.host"))
            // `spec.nodeName=` selects the unscheduled pods, which the index does not hold.
            .filter(|s| !s.is_empty())
            .map(|s| s.to_string())
    }

    /// Whether deciding needs the object itself (anything beyond the namespace, and beyond
    /// `spec.nodeName=<node>` when the pods-by-node index already chose the candidates).
    pub fn needs_object(&self, node: Option<&str>) -> bool {
        self.labels.is_some()
            || self.fields.as_ref().is_some_and(|f| {
                f.terms().iter().any(|t| {
                    !(matches!(t.key.as_str(), "spec.nodeName" | "spec.host")
                        && t.op == FieldOp::Equals
                        && Some(t.value.as_str()) == node)
                })
            })
    }

    /// Whether a stored object's key and `status.phase` are enough to decide (no label
    /// selector; field terms only on the name, the namespace, the phase, and
    /// `spec.nodeName=<node>` when the pods-by-node index already chose the candidates).
    pub fn decided_by_key_and_phase(&self, node: Option<&str>) -> bool {
        self.labels.is_none()
            && self.fields.as_ref().is_none_or(|f| {
                f.terms().iter().all(|t| match t.key.as_str() {
                    "metadata.name" | "metadata.namespace" | "status.phase" => true,
                    "spec.nodeName" | "spec.host" => {
                        t.op == FieldOp::Equals && Some(t.value.as_str()) == node
                    }
                    _ => false,
                })
            })
    }

    /// [`Filter::matches`] for an object known by its key and phase, when
    /// [`Filter::decided_by_key_and_phase`] says that is enough (`node`: the index's node).
    pub fn matches_key_and_phase(&self, key: &meta::Key, phase: &str, node: Option<&str>) -> bool {
        if let Some(ns) = &self.ns
            && key.0 != *ns
        {
            return false;
        }
        self.fields.as_ref().is_none_or(|f| {
            f.matches(|k| {
                Some(match k {
                    "metadata.name" => key.1.clone(),
                    "metadata.namespace" => key.0.clone(),
                    "status.phase" => phase.to_string(),
                    "spec.nodeName" | "spec.host" => node.unwrap_or("").to_string(),
                    _ => return None,
                })
            })
        })
    }

    /// Whether an object is selected.
    pub fn matches(&self, o: &Value) -> bool {
        if let Some(ns) = &self.ns
            && meta::namespace(o) != ns
        {
            return false;
        }
        if let Some(l) = &self.labels
            && !l.matches(&meta::labels(o))
        {
            return false;
        }
        if let Some(f) = &self.fields
            && !f.matches(|k| field_value(self.res, o, k))
        {
            return false;
        }
        true
    }
}
