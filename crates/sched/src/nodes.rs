//! Node predicates: readiness, `spec.unschedulable`, `nodeSelector` and required node affinity
//! (`k8s.io/component-helpers/scheduling/corev1/nodeaffinity`), and taints against tolerations
//! (`v1helper.FindMatchingUntoleratedTaint` with the NoSchedule/NoExecute filter).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, PodSpec, Taint, Toleration,
};

/// Whether the node's `Ready` condition is `True` (a node without conditions counts as Ready,
/// as a freshly registered one in a test cluster does).
pub fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_none_or(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Whether `spec.unschedulable` is set (cordoned).
pub fn is_cordoned(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
}

/// The node's labels (empty when none).
pub fn labels(node: &Node) -> BTreeMap<String, String> {
    node.metadata.labels.clone().unwrap_or_default()
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), [bound]) = (value, values) else {
                return false;
            };
            let (Ok(v), Ok(bound)) = (v.parse::<i64>(), bound.parse::<i64>()) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// Whether one node selector term matches: all its expressions (on labels) and fields (only
/// `metadata.name` exists) hold; a term with neither matches nothing.
pub fn term_matches(
    term: &NodeSelectorTerm,
    labels: &BTreeMap<String, String>,
    name: &str,
) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(name)))
}

/// Whether the pod's `nodeSelector` and required node affinity
/// (`requiredDuringSchedulingIgnoredDuringExecution`, terms ORed) accept the node.
pub fn affinity_matches(spec: &PodSpec, labels: &BTreeMap<String, String>, name: &str) -> bool {
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    if !selector_ok {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        None => true,
        Some(sel) => sel
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, labels, name)),
    }
}

/// Whether a toleration tolerates a taint (`Toleration.ToleratesTaint`): same effect (or the
/// toleration names none), same key (or an empty key with `Exists`, which matches all), and
/// `Exists`, or `Equal` (the default) with the same value.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty())
        && e != taint.effect
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or_default();
    let op = t.operator.as_deref().unwrap_or("Equal");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match op {
        "Exists" => true,
        "Equal" | "" => {
            !key.is_empty()
                && t.value.as_deref().unwrap_or_default()
                    == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

/// The first NoSchedule or NoExecute taint no toleration tolerates.
pub fn untolerated_taint<'a>(taints: &'a [Taint], tolerations: &[Toleration]) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
}

/// The scheduler's reason for an untolerated taint: `node(s) had untolerated taint {k: v}`.
pub fn taint_reason(taint: &Taint) -> String {
    format!(
        "node(s) had untolerated taint {{{}: {}}}",
        taint.key,
        taint.value.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Affinity, NodeAffinity, NodeSelector};

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn with_terms(terms: Vec<NodeSelectorTerm>) -> PodSpec {
        PodSpec {
            affinity: Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: terms,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn term(exprs: Vec<NodeSelectorRequirement>) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: Some(exprs),
            match_fields: None,
        }
    }

    #[test]
    fn operators() {
        let l = labels(&[("zone", "a"), ("gen", "5")]);
        let ok = |r: NodeSelectorRequirement| {
            affinity_matches(&with_terms(vec![term(vec![r])]), &l, "n1")
        };
        assert!(ok(req("zone", "In", &["a", "b"])));
        assert!(!ok(req("zone", "In", &["b"])));
        assert!(ok(req("zone", "NotIn", &["b"])));
        assert!(ok(req("missing", "NotIn", &["b"])));
        assert!(ok(req("zone", "Exists", &[])));
        assert!(ok(req("missing", "DoesNotExist", &[])));
        assert!(ok(req("gen", "Gt", &["4"])));
        assert!(!ok(req("gen", "Gt", &["5"])));
        assert!(ok(req("gen", "Lt", &["6"])));
        assert!(!ok(req("zone", "Gt", &["1"])));
        assert!(!ok(req("zone", "Near", &["a"])));
    }

    #[test]
    fn terms_are_ored_expressions_anded_empty_term_matches_nothing() {
        let l = labels(&[("zone", "a"), ("disk", "ssd")]);
        let spec = with_terms(vec![
            term(vec![req("zone", "In", &["b"])]),
            term(vec![req("zone", "In", &["a"]), req("disk", "In", &["ssd"])]),
        ]);
        assert!(affinity_matches(&spec, &l, "n1"));
        let spec = with_terms(vec![term(vec![
            req("zone", "In", &["a"]),
            req("disk", "In", &["hdd"]),
        ])]);
        assert!(!affinity_matches(&spec, &l, "n1"));
        assert!(!affinity_matches(&with_terms(vec![term(vec![])]), &l, "n1"));
        let by_name = NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![req("metadata.name", "In", &["n2"])]),
        };
        assert!(affinity_matches(
            &with_terms(vec![by_name.clone()]),
            &l,
            "n2"
        ));
        assert!(!affinity_matches(&with_terms(vec![by_name]), &l, "n1"));
    }

    #[test]
    fn node_selector_must_match_too() {
        let l = labels(&[("pool", "a")]);
        let mut spec = PodSpec {
            node_selector: Some([("pool".to_string(), "a".to_string())].into()),
            ..Default::default()
        };
        assert!(affinity_matches(&spec, &l, "n1"));
        spec.node_selector = Some([("pool".to_string(), "b".to_string())].into());
        assert!(!affinity_matches(&spec, &l, "n1"));
    }

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: (!value.is_empty()).then(|| value.to_string()),
            effect: effect.into(),
            time_added: None,
        }
    }

    fn tol(key: &str, op: &str, value: &str, effect: &str) -> Toleration {
        Toleration {
            key: (!key.is_empty()).then(|| key.to_string()),
            operator: (!op.is_empty()).then(|| op.to_string()),
            value: (!value.is_empty()).then(|| value.to_string()),
            effect: (!effect.is_empty()).then(|| effect.to_string()),
            toleration_seconds: None,
        }
    }

    #[test]
    fn tolerations() {
        let gpu = taint("dedicated", "gpu", "NoSchedule");
        assert!(tolerates(
            &tol("dedicated", "Equal", "gpu", "NoSchedule"),
            &gpu
        ));
        assert!(tolerates(&tol("dedicated", "", "gpu", ""), &gpu));
        assert!(!tolerates(
            &tol("dedicated", "Equal", "cpu", "NoSchedule"),
            &gpu
        ));
        assert!(tolerates(&tol("dedicated", "Exists", "", ""), &gpu));
        assert!(!tolerates(
            &tol("dedicated", "Exists", "", "NoExecute"),
            &gpu
        ));
        assert!(tolerates(&tol("", "Exists", "", ""), &gpu));
        assert!(!tolerates(&tol("", "Equal", "", ""), &gpu));
        let taints = vec![
            taint("soft", "", "PreferNoSchedule"),
            gpu.clone(),
            taint("evict", "", "NoExecute"),
        ];
        let found = untolerated_taint(&taints, &[tol("dedicated", "Exists", "", "")]).unwrap();
        assert_eq!(found.key, "evict");
        assert_eq!(
            taint_reason(found),
            "node(s) had untolerated taint {evict: }"
        );
        assert!(untolerated_taint(&taints, &[tol("", "Exists", "", "")]).is_none());
    }
}
