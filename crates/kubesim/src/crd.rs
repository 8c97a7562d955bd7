//! CustomResourceDefinitions: what a stored CRD serves (the `Served` index, kept current on every
//! CRD write by the store), the validation of CRDs themselves, and the status the real server's
//! naming and establishing controllers write.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::resources::{self, CRDS, ResId};
use crate::store::State;

/// What one CRD serves: its storage version as a resource type, with the parts of the CRD that
/// requests on its objects need.
#[derive(Debug, Clone, PartialEq)]
pub struct CrdDef {
    /// The resource type of its objects.
    pub res: ResId,
    /// The CRD's name (`<plural>.<group>`).
    pub name: String,
    /// API group.
    pub group: String,
    /// The served (storage) version.
    pub version: String,
    /// Plural name.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// List kind (`<Kind>List` unless the CRD names another).
    pub list_kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names for discovery.
    pub short_names: Vec<String>,
    /// Categories for discovery.
    pub categories: Vec<String>,
    /// Whether the `/status` subresource is enabled.
    pub status: bool,
    /// The version's `openAPIV3Schema`, if any.
    pub schema: Option<Value>,
    /// The version's `additionalPrinterColumns`.
    pub columns: Vec<Value>,
}

impl CrdDef {
    /// What a CRD object serves, or None when it lacks what is needed (no names, no storage
    /// version served).
    pub fn from_crd(crd: &Value) -> Option<CrdDef> {
        let spec = &crd["spec"];
        let names = &spec["names"];
        let text = |v: &Value| v.as_str().unwrap_or("").to_string();
        let group = text(&spec["group"]);
        let plural = text(&names["plural"]);
        let kind = text(&names["kind"]);
        if group.is_empty() || plural.is_empty() || kind.is_empty() {
            return None;
        }
        let versions = spec["versions"].as_array()?;
        let v = versions
            .iter()
            .find(|v| v["storage"] == true && v["served"] == true)?;
        let version = text(&v["name"]);
        let singular = match text(&names["singular"]) {
            s if s.is_empty() => kind.to_lowercase(),
            s => s,
        };
        let list_kind = match text(&names["listKind"]) {
            s if s.is_empty() => format!("{kind}List"),
            s => s,
        };
        let namespaced = spec["scope"] != "Cluster";
        let status = v["subresources"]["status"].is_object();
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let res = resources::intern_custom(
            &group, &version, &plural, &singular, &kind, namespaced, status,
        );
        Some(CrdDef {
            res,
            name: meta::name(crd).to_string(),
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            schema: Some(v["schema"]["openAPIV3Schema"].clone()).filter(|s| s.is_object()),
            columns: v["additionalPrinterColumns"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            group,
            version,
            plural,
            singular,
            kind,
            list_kind,
            namespaced,
            status,
        })
    }
}

/// The custom resources a simulator serves, by CRD name.
#[derive(Debug, Default)]
pub struct Served {
    defs: BTreeMap<String, Arc<CrdDef>>,
}

impl Served {
    /// The CRD serving `<group>/<version>` `<plural>`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<CrdDef>> {
        self.defs
            .values()
            .find(|d| d.group == group && d.version == version && d.plural == plural)
            .cloned()
    }

    /// Every served CRD, by name.
    pub fn all(&self) -> Vec<Arc<CrdDef>> {
        self.defs.values().cloned().collect()
    }

    /// The group/versions the CRDs serve, sorted.
    pub fn group_versions(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .defs
            .values()
            .map(|d| (d.group.clone(), d.version.clone()))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Keep `st.crds` current after a CRD was written (`new`) or removed (`new` None). A CRD whose
/// change gives its objects another resource type (a renamed kind, the status subresource
/// turned on or off) moves its objects to the new type.
pub fn sync(st: &mut State, old: Option<&Value>, new: Option<&Value>) {
    let name = meta::name(new.or(old).unwrap_or(&Value::Null)).to_string();
    let before = st.crds.defs.remove(&name);
    let Some(def) = new.and_then(CrdDef::from_crd) else {
        return;
    };
    if let Some(b) = before
        && b.res != def.res
    {
        st.move_objects(b.res, def.res);
    }
    st.crds.defs.insert(name, Arc::new(def));
}

fn invalid(name: &str, causes: Vec<(&str, String, String)>) -> ApiError {
    let c: Vec<(&str, &str, String)> = causes
        .iter()
        .map(|(r, f, m)| (*r, f.as_str(), m.clone()))
        .collect();
    ApiError::invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, &c)
}

/// The real server's validation of a CRD's names, scope and versions (the part a test or a
/// controller can trip over), with its messages.
pub fn validate(crd: &Value) -> ApiResult<()> {
    let name = meta::name(crd);
    let spec = &crd["spec"];
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let (group, plural) = (text(&spec["group"]), text(&spec["names"]["plural"]));
    let mut causes: Vec<(&str, String, String)> = Vec::new();
    let required = |field: &str| {
        (
            "FieldValueRequired",
            field.to_string(),
            "Required value".to_string(),
        )
    };
    if group.is_empty() {
        causes.push(required("spec.group"));
    }
    if plural.is_empty() {
        causes.push(required("spec.names.plural"));
    }
    if text(&spec["names"]["kind"]).is_empty() {
        causes.push(required("spec.names.kind"));
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        causes.push(required("spec.versions"));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        causes.push((
            "FieldValueInvalid",
            "metadata.name".into(),
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    match spec["scope"].as_str() {
        Some("Namespaced" | "Cluster") => {}
        Some(other) => causes.push((
            "FieldValueNotSupported",
            "spec.scope".into(),
            format!(
                "Unsupported value: \"{other}\": supported values: \"Cluster\", \"Namespaced\""
            ),
        )),
        None => causes.push(required("spec.scope")),
    }
    let storage = versions.iter().filter(|v| v["storage"] == true).count();
    if !versions.is_empty() && storage != 1 {
        causes.push((
            "FieldValueInvalid",
            "spec.versions".into(),
            "Invalid value: []apiextensions.CustomResourceDefinitionVersion{...}: must have exactly one version marked as storage version".to_string(),
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        let schema = &v["schema"]["openAPIV3Schema"];
        if schema.is_null() {
            causes.push((
                "FieldValueRequired",
                format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "Required value: schemas are required".into(),
            ));
        }
        rule_errors(
            schema,
            &format!("spec.versions[{i}].schema.openAPIV3Schema"),
            &mut causes,
        );
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(invalid(name, causes))
    }
}

/// The `x-kubernetes-validations` rules of a schema that do not compile, as the real server
/// refuses them.
fn rule_errors(s: &Value, path: &str, out: &mut Vec<(&str, String, String)>) {
    if let Some(rules) = s["x-kubernetes-validations"].as_array() {
        for (i, r) in rules.iter().enumerate() {
            let rule = r["rule"].as_str().unwrap_or("");
            if let Some(e) = crate::cel_rules::compile_error(rule) {
                out.push((
                    "FieldValueInvalid",
                    format!("{path}.x-kubernetes-validations[{i}].rule"),
                    format!("Invalid value: {rule:?}: compilation failed: {e}"),
                ));
            }
        }
    }
    if let Some(props) = s["properties"].as_object() {
        for (k, p) in props {
            rule_errors(p, &format!("{path}.properties[{k}]"), out);
        }
    }
    for k in ["items", "additionalProperties"] {
        if s[k].is_object() {
            rule_errors(&s[k], &format!("{path}.{k}"), out);
        }
    }
}

/// The status the naming and establishing controllers give a CRD: accepted names, the
/// `NamesAccepted` and `Established` conditions, the stored versions. Conditions keep their
/// transition time while their status stays.
pub fn status(crd: &Value) -> Value {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let kind = names["kind"].as_str().unwrap_or("");
    let mut accepted = json!({
        "plural": names["plural"],
        "kind": kind,
        "singular": names["singular"].as_str().map_or_else(|| kind.to_lowercase(), String::from),
        "listKind": names["listKind"].as_str().map_or_else(|| format!("{kind}List"), String::from),
    });
    for k in ["shortNames", "categories"] {
        if names[k].is_array() {
            accepted[k] = names[k].clone();
        }
    }
    let old = crd["status"]["conditions"].as_array();
    let now = meta::now_rfc3339();
    let cond = |ty: &str, reason: &str, message: &str| {
        let since = old
            .and_then(|cs| cs.iter().find(|c| c["type"] == ty && c["status"] == "True"))
            .map_or(json!(now), |c| c["lastTransitionTime"].clone());
        json!({"type": ty, "status": "True", "lastTransitionTime": since, "reason": reason, "message": message})
    };
    let mut stored: Vec<Value> = crd["status"]["storedVersions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if let Some(v) = spec["versions"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["storage"] == true))
        && !stored.contains(&v["name"])
    {
        stored.push(v["name"].clone());
    }
    json!({
        "conditions": [
            cond("NamesAccepted", "NoConflicts", "no conflicts found"),
            cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "acceptedNames": accepted,
        "storedVersions": stored,
    })
}

/// Write the controllers' status on a stored CRD (a no-op when it is already current).
pub fn establish(st: &mut State, name: &str) {
    let Some(crd) = st.get(CRDS, "", name) else {
        return;
    };
    let mut next = (*crd).clone();
    next["status"] = status(&crd);
    st.replace(CRDS, next);
}

/// Remove every object of the CRD `name` serves (the real server's cleanup on CRD deletion).
pub fn remove_objects(st: &mut State, name: &str) {
    let Some(def) = st.crds.defs.get(name).cloned() else {
        return;
    };
    for (ns, n) in st.keys(def.res, None) {
        st.remove(def.res, &ns, &n);
    }
}

/// Create or replace a CRD in-process (the simulator's own API for tests): validated like one
/// sent to the API, established at once. Returns the stored CRD.
pub fn install(st: &mut State, mut crd: Value) -> ApiResult<Value> {
    crd["apiVersion"] = json!("apiextensions.k8s.io/v1");
    crd["kind"] = json!("CustomResourceDefinition");
    validate(&crd)?;
    let name = meta::name(&crd).to_string();
    match st.get(CRDS, "", &name) {
        Some(old) => {
            let mut next = (*old).clone();
            next["spec"] = crd["spec"].clone();
            if old["spec"] != next["spec"] {
                let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
                next["metadata"]["generation"] = json!(g + 1);
            }
            st.replace(CRDS, next);
        }
        None => {
            let obj = crate::api::prepare_create(CRDS, crd, "");
            st.insert(CRDS, obj);
        }
    }
    establish(st, &name);
    Ok(st
        .get(CRDS, "", &name)
        .map(|o| (*o).clone())
        .unwrap_or_default())
}
