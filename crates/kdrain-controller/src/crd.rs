//! The CustomResourceDefinition of [`NodeDrain`], generated from the Rust types; the committed
//! copy is `deploy/controller/crd.yaml` (a test fails when they differ; regenerate with
//! `KDRAIN_UPDATE_CRD=1 cargo test -p kdrain-controller crd`).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::types::NodeDrain;

/// The CRD object. The spec's optional fields are not `nullable` (as derived from `Option`):
/// a `null` there would count as set for the "exactly one of nodeNames or nodeSelector" rule.
pub fn crd() -> CustomResourceDefinition {
    let mut value = serde_json::to_value(NodeDrain::crd()).expect("a CRD serializes");
    for version in value["spec"]["versions"]
        .as_array_mut()
        .expect("the CRD has versions")
    {
        let spec = &mut version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
        if let Some(props) = spec.as_object_mut() {
            for prop in props.values_mut() {
                if let Some(p) = prop.as_object_mut() {
                    p.remove("nullable");
                }
            }
        }
    }
    serde_json::from_value(value).expect("the CRD still deserializes")
}

/// The CRD as the YAML committed in `deploy/controller/crd.yaml`.
pub fn crd_yaml() -> String {
    let body = serde_yaml::to_string(&crd()).expect("a CRD serializes");
    format!(
        "# Generated from crates/kdrain-controller/src/types.rs: do not edit.\n\
         # Regenerate with KDRAIN_UPDATE_CRD=1 cargo test -p kdrain-controller crd\n{body}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/controller/crd.yaml")
    }

    #[test]
    fn crd_yaml_matches_the_committed_file() {
        let path = committed_path();
        let fresh = crd_yaml();
        if std::env::var_os("KDRAIN_UPDATE_CRD").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &fresh).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "deploy/controller/crd.yaml is not what the types generate; run \
             KDRAIN_UPDATE_CRD=1 cargo test -p kdrain-controller crd and commit it"
        );
    }

    #[test]
    fn crd_is_cluster_scoped_with_status_and_columns() {
        let c = crd();
        assert_eq!(c.spec.group, "kdrain.io");
        assert_eq!(c.spec.scope, "Cluster");
        assert_eq!(c.spec.names.kind, "NodeDrain");
        let v = &c.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        assert!(v.subresources.as_ref().unwrap().status.is_some());
        let cols: Vec<&str> = v
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            cols,
            ["Stage", "Phase", "Nodes", "Gone/Total", "Blocked By", "Age"]
        );
    }

    #[test]
    fn schema_carries_the_rules_it_can_express() {
        let text = serde_json::to_string(&crd()).unwrap();
        for rule in [
            "has(self.nodeNames) != has(self.nodeSelector)",
            "maxUnavailableNodes must be a count of at least 1",
            "nodeNames cannot change",
        ] {
            assert!(text.contains(rule), "missing rule {rule}");
        }
        let v = serde_json::to_value(crd()).unwrap();
        let spec = &v["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(
            spec["properties"]["stage"]["enum"],
            serde_json::json!(["Idle", "Cordon", "Drain", "Complete"])
        );
        assert_eq!(
            spec["properties"]["onFailure"]["enum"],
            serde_json::json!(["KeepCordoned", "Uncordon"])
        );
        assert_eq!(
            spec["properties"]["gracePeriodSeconds"]["minimum"].as_f64(),
            Some(-1.0)
        );
        assert!(spec["properties"]["nodeNames"].get("nullable").is_none());
        assert_eq!(
            spec["properties"]["timeout"]["pattern"],
            r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$"
        );
    }
}
