//! PodDisruptionBudget arithmetic: which budgets cover a pod, whether an eviction spends budget,
//! and whether a budget can ever let the plan's pods go (spent jointly across all of them).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A budget field that is neither an integer nor "N%".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid budget value {0:?}: use an integer or a percentage such as \"25%\"")]
pub struct BadValue(pub String);

/// kubernetes' `GetScaledValueFromIntOrPercent`: an integer as is, a percentage of `total`
/// rounded up (`round_up`) or down.
pub(crate) fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, BadValue> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let p: i64 = s
                .strip_suffix('%')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| BadValue(s.clone()))?;
            // saturating: a hostile or absurd value must not overflow
            let prod = p.saturating_mul(i64::from(total));
            let v = if round_up {
                prod.saturating_add(99).div_euclid(100)
            } else {
                prod.div_euclid(100)
            };
            Ok(v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
        }
    }
}

/// The desired healthy count the disruption controller computes for a spec and `expected` pods.
pub fn desired_healthy(pdb: &PodDisruptionBudget, expected: i32) -> Result<i32, BadValue> {
    let spec = pdb.spec.as_ref();
    if let Some(mu) = spec.and_then(|s| s.max_unavailable.as_ref()) {
        let m = scaled_value(mu, expected, true)?;
        Ok(expected.saturating_sub(m).max(0))
    } else if let Some(ma) = spec.and_then(|s| s.min_available.as_ref()) {
        scaled_value(ma, expected, true)
    } else {
        Ok(0)
    }
}

/// Label selector semantics of a PDB: a missing selector matches nothing, an empty one
/// matches every pod of the namespace; an invalid one matches nothing (the server skips it).
/// It is `sched`'s matcher over the workspace's `selectors` crate, the one kubesim uses too, so
/// the simulator and the drainer cannot disagree about which pods a budget covers.
#[cfg(test)]
pub(crate) use sched::interpod::selector_matches;

/// `namespace/name` of an object.
pub(crate) fn key_of(ns: Option<&str>, name: Option<&str>) -> String {
    format!("{}/{}", ns.unwrap_or_default(), name.unwrap_or_default())
}

/// `namespace/name` of a budget.
pub(crate) fn pdb_key(pdb: &PodDisruptionBudget) -> String {
    key_of(
        pdb.metadata.namespace.as_deref(),
        pdb.metadata.name.as_deref(),
    )
}

/// Names a budget: its namespace and name (ordered by namespace, then name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct BudgetKey {
    /// The budget's namespace.
    pub namespace: String,
    /// The budget's name.
    pub name: String,
}

impl BudgetKey {
    /// The key of a budget.
    pub(crate) fn of(pdb: &PodDisruptionBudget) -> BudgetKey {
        BudgetKey {
            namespace: pdb.metadata.namespace.clone().unwrap_or_default(),
            name: pdb.metadata.name.clone().unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for BudgetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The budgets (of the pod's namespace) whose selector matches the pod.
#[cfg(test)]
pub(crate) fn budgets_for<'a>(
    pod: &Pod,
    pdbs: &'a [PodDisruptionBudget],
) -> Vec<&'a PodDisruptionBudget> {
    Compiled::new(pdbs).covering(pod)
}

/// Budgets with their selectors parsed once and their `namespace/name` keys made once, for a
/// caller that asks which budgets cover many pods (the plan: B4 asks it of 2,200 pods under
/// 110 budgets, and parsing each selector for each pod was half a million parses).
pub(crate) struct Compiled<'a> {
    items: Vec<CompiledBudget<'a>>,
}

struct CompiledBudget<'a> {
    pdb: &'a PodDisruptionBudget,
    key: String,
    /// The selector as `sched::interpod::selector_matches` reads it, parsed (None matches
    /// nothing).
    selector: Option<selectors::LabelSelector>,
}

impl<'a> Compiled<'a> {
    pub(crate) fn new(pdbs: &'a [PodDisruptionBudget]) -> Self {
        let items = pdbs
            .iter()
            .map(|pdb| CompiledBudget {
                pdb,
                key: pdb_key(pdb),
                selector: sched::interpod::compiled_selector(
                    pdb.spec.as_ref().and_then(|s| s.selector.as_ref()),
                ),
            })
            .collect();
        Compiled { items }
    }

    /// The budgets (of the pod's namespace) whose selector matches the pod, in the given order.
    pub(crate) fn covering(&self, pod: &Pod) -> Vec<&'a PodDisruptionBudget> {
        self.items
            .iter()
            .filter(|b| b.covers(pod))
            .map(|b| b.pdb)
            .collect()
    }

    /// The first budget whose `namespace/name` is `key`, and a test of whether it covers a pod.
    pub(crate) fn by_key(
        &self,
        key: &str,
    ) -> Option<(&'a PodDisruptionBudget, impl Fn(&Pod) -> bool + '_)> {
        let b = self.items.iter().find(|b| b.key == key)?;
        Some((b.pdb, move |p: &Pod| b.covers(p)))
    }
}

impl CompiledBudget<'_> {
    fn covers(&self, pod: &Pod) -> bool {
        if self.pdb.metadata.namespace != pod.metadata.namespace {
            return false;
        }
        let empty = BTreeMap::new();
        let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
        self.selector.as_ref().is_some_and(|s| s.matches(labels))
    }
}

/// A budget's status as last written by the controller (or by evictions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BudgetNow {
    /// `status.disruptionsAllowed`.
    pub allowed: i32,
    /// `status.currentHealthy`.
    pub current_healthy: i32,
    /// `status.desiredHealthy`.
    pub desired_healthy: i32,
    /// `status.expectedPods`.
    pub expected: i32,
    /// The controller has processed the current spec (`observedGeneration >= generation`).
    pub observed: bool,
}

impl BudgetNow {
    /// Reads the status of a budget.
    pub fn of(pdb: &PodDisruptionBudget) -> BudgetNow {
        let st = pdb.status.as_ref();
        let generation = pdb.metadata.generation.unwrap_or(0);
        BudgetNow {
            allowed: st.and_then(|s| s.disruptions_allowed).unwrap_or(0),
            current_healthy: st.and_then(|s| s.current_healthy).unwrap_or(0),
            desired_healthy: st.and_then(|s| s.desired_healthy).unwrap_or(0),
            expected: st.and_then(|s| s.expected_pods).unwrap_or(0),
            observed: st.and_then(|s| s.observed_generation).unwrap_or(0) >= generation
                && st.is_some(),
        }
    }
}

/// Ready condition True.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Whether evicting this pod spends one unit of this budget, following the API server: pending,
/// finished and terminating pods bypass budgets; an unready pod is free under `AlwaysAllow`, or
/// when the budget is satisfied (`currentHealthy >= desiredHealthy > 0`).
pub(crate) fn consumes_budget(pod: &Pod, pdb: &PodDisruptionBudget) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Pending") | Some("Succeeded") | Some("Failed")) {
        return false;
    }
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    if !is_ready(pod) {
        let policy = pdb
            .spec
            .as_ref()
            .and_then(|s| s.unhealthy_pod_eviction_policy.as_deref());
        if policy == Some("AlwaysAllow") {
            return false;
        }
        let now = BudgetNow::of(pdb);
        if now.current_healthy >= now.desired_healthy && now.desired_healthy > 0 {
            return false;
        }
    }
    true
}

/// Why a budget can never allow a disruption, if it cannot: maxUnavailable 0, minAvailable at or
/// above the expected pods, or no expected pods at all.
pub(crate) fn never_reason(pdb: &PodDisruptionBudget) -> Option<String> {
    let now = BudgetNow::of(pdb);
    let spec = pdb.spec.as_ref()?;
    if let Some(mu) = &spec.max_unavailable {
        return match scaled_value(mu, now.expected.max(1), true) {
            Ok(0) => Some(format!("maxUnavailable is {}", show(mu))),
            Err(e) => Some(e.to_string()),
            Ok(_) if now.observed && now.expected == 0 => Some(
                "it expects 0 pods (its pods declare no controller), so it allows no disruption"
                    .into(),
            ),
            Ok(_) => None,
        };
    }
    if let Some(ma) = &spec.min_available {
        return match ma {
            IntOrString::String(s)
                if s.trim_end_matches('%')
                    .parse::<i64>()
                    .is_ok_and(|p| p >= 100) =>
            {
                Some(format!("minAvailable is {s}"))
            }
            IntOrString::Int(n) if now.observed && *n >= now.expected => Some(format!(
                "minAvailable {n} is not below its {} expected pods",
                now.expected
            )),
            IntOrString::String(_) if now.observed && now.expected == 0 => Some(
                "it expects 0 pods (its pods declare no controller), so it allows no disruption"
                    .into(),
            ),
            IntOrString::String(s) if scaled_value(ma, 1, true).is_err() => {
                Some(BadValue(s.clone()).to_string())
            }
            _ => None,
        };
    }
    None
}

fn show(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// Joint spending: `allowed` disruptions for `needed` pods, of which `replaceable` are managed by
/// a controller that will bring replacements. Returns how many can go at once, and whether the
/// rest could ever go.
pub(crate) fn joint_spend(allowed: i32, needed: i32, replaceable: i32) -> (i32, bool) {
    let now = allowed.max(0).min(needed);
    let rest = needed - now;
    // Each replaced pod restores one unit once its replacement is Ready; bare pods never do.
    let ever = rest == 0 || replaceable > 0;
    (now, ever)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::select::tests::{owned, pod};
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::api::policy::v1::{PodDisruptionBudgetSpec, PodDisruptionBudgetStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
        LabelSelector, LabelSelectorRequirement, ObjectMeta,
    };
    use proptest::prelude::*;

    pub(crate) fn pdb(
        name: &str,
        labels: &[(&str, &str)],
        max_unavailable: Option<IntOrString>,
        min_available: Option<IntOrString>,
    ) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: ObjectMeta {
                namespace: Some("default".into()),
                name: Some(name.into()),
                generation: Some(1),
                ..Default::default()
            },
            spec: Some(PodDisruptionBudgetSpec {
                selector: Some(LabelSelector {
                    match_labels: Some(
                        labels
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    ),
                    match_expressions: None,
                }),
                max_unavailable,
                min_available,
                ..Default::default()
            }),
            status: None,
        }
    }

    pub(crate) fn with_status(
        mut b: PodDisruptionBudget,
        allowed: i32,
        healthy: i32,
        desired: i32,
        expected: i32,
    ) -> PodDisruptionBudget {
        b.status = Some(PodDisruptionBudgetStatus {
            disruptions_allowed: Some(allowed),
            current_healthy: Some(healthy),
            desired_healthy: Some(desired),
            expected_pods: Some(expected),
            observed_generation: Some(1),
            ..Default::default()
        });
        b
    }

    pub(crate) fn ready(mut p: Pod, ready: bool) -> Pod {
        p.status = Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        p
    }

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn nil_selector_matches_nothing_and_empty_matches_all() {
        let l = labels(&[("app", "web")]);
        assert!(!selector_matches(None, &l));
        assert!(selector_matches(Some(&LabelSelector::default()), &l));
        assert!(selector_matches(
            Some(&LabelSelector::default()),
            &BTreeMap::new()
        ));
        let expr = |op: &str, vals: &[&str]| LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "app".into(),
                operator: op.into(),
                values: if vals.is_empty() {
                    None
                } else {
                    Some(vals.iter().map(|s| s.to_string()).collect())
                },
            }]),
        };
        assert!(selector_matches(Some(&expr("In", &["web", "db"])), &l));
        assert!(!selector_matches(Some(&expr("NotIn", &["web"])), &l));
        assert!(selector_matches(
            Some(&expr("NotIn", &["x"])),
            &BTreeMap::new()
        ));
        assert!(selector_matches(Some(&expr("Exists", &[])), &l));
        assert!(!selector_matches(Some(&expr("DoesNotExist", &[])), &l));
        assert!(!selector_matches(Some(&expr("Bogus", &[])), &l));
    }

    #[test]
    fn budgets_match_in_the_pods_namespace_only() {
        let mut p = pod("default", "web-1");
        p.metadata.labels = Some(labels(&[("app", "web")]));
        let mut other = pdb(
            "other-ns",
            &[("app", "web")],
            Some(IntOrString::Int(1)),
            None,
        );
        other.metadata.namespace = Some("shop".into());
        let pdbs = vec![
            pdb("web", &[("app", "web")], Some(IntOrString::Int(1)), None),
            other,
            pdb("db", &[("app", "db")], None, None),
        ];
        let m = budgets_for(&p, &pdbs);
        assert_eq!(m.len(), 1);
        assert_eq!(pdb_key(m[0]), "default/web");
    }

    #[test]
    fn percent_rounds_up() {
        assert_eq!(
            scaled_value(&IntOrString::String("25%".into()), 3, true),
            Ok(1)
        );
        assert_eq!(
            scaled_value(&IntOrString::String("50%".into()), 3, true),
            Ok(2)
        );
        assert_eq!(
            scaled_value(&IntOrString::String("0%".into()), 3, true),
            Ok(0)
        );
        assert_eq!(scaled_value(&IntOrString::Int(7), 3, true), Ok(7));
        assert!(scaled_value(&IntOrString::String("7".into()), 3, true).is_err());
        let b = pdb("web", &[], Some(IntOrString::String("25%".into())), None);
        assert_eq!(desired_healthy(&b, 3), Ok(2));
        let b = pdb("web", &[], None, Some(IntOrString::String("50%".into())));
        assert_eq!(desired_healthy(&b, 3), Ok(2));
    }

    #[test]
    fn who_consumes_budget() {
        let b = with_status(pdb("web", &[], Some(IntOrString::Int(1)), None), 1, 3, 2, 3);
        assert!(consumes_budget(&ready(pod("default", "a"), true), &b));
        // unready pod, budget satisfied: free
        assert!(!consumes_budget(&ready(pod("default", "a"), false), &b));
        // unready, budget not satisfied: spends
        let tight = with_status(pdb("web", &[], Some(IntOrString::Int(1)), None), 0, 1, 2, 3);
        assert!(consumes_budget(&ready(pod("default", "a"), false), &tight));
        let mut always = tight.clone();
        always.spec.as_mut().unwrap().unhealthy_pod_eviction_policy = Some("AlwaysAllow".into());
        assert!(!consumes_budget(
            &ready(pod("default", "a"), false),
            &always
        ));
        let mut pending = pod("default", "p");
        pending.status.as_mut().unwrap().phase = Some("Pending".into());
        assert!(!consumes_budget(&pending, &tight));
    }

    #[test]
    fn never_passing_budgets() {
        let b = with_status(pdb("a", &[], Some(IntOrString::Int(0)), None), 0, 3, 3, 3);
        assert_eq!(never_reason(&b).as_deref(), Some("maxUnavailable is 0"));
        let b = with_status(
            pdb("a", &[], Some(IntOrString::String("0%".into())), None),
            0,
            3,
            3,
            3,
        );
        assert!(never_reason(&b).is_some());
        let b = with_status(pdb("a", &[], None, Some(IntOrString::Int(3))), 0, 3, 3, 3);
        assert_eq!(
            never_reason(&b).as_deref(),
            Some("minAvailable 3 is not below its 3 expected pods")
        );
        let b = with_status(
            pdb("a", &[], None, Some(IntOrString::String("100%".into()))),
            0,
            3,
            3,
            3,
        );
        assert!(never_reason(&b).is_some());
        let b = with_status(pdb("a", &[], None, Some(IntOrString::Int(2))), 1, 3, 2, 3);
        assert_eq!(never_reason(&b), None);
        let b = with_status(pdb("a", &[], Some(IntOrString::Int(1)), None), 0, 0, 0, 0);
        assert!(never_reason(&b).unwrap().contains("expects 0 pods"));
        // spent by unhealthy pods: not "never"
        let b = with_status(pdb("a", &[], Some(IntOrString::Int(1)), None), 0, 2, 2, 3);
        assert_eq!(never_reason(&b), None);
        let _ = owned(pod("a", "b"), "ReplicaSet", "x");
    }

    #[test]
    fn joint_spending() {
        assert_eq!(joint_spend(1, 3, 3), (1, true));
        assert_eq!(joint_spend(3, 3, 0), (3, true));
        assert_eq!(joint_spend(1, 3, 0), (1, false));
        assert_eq!(joint_spend(0, 2, 2), (0, true));
        assert_eq!(joint_spend(5, 2, 2), (2, true));
    }

    proptest! {
        #[test]
        fn percent_matches_float_ceiling(p in 0i32..=200, total in 0i32..=5000) {
            let v = scaled_value(&IntOrString::String(format!("{p}%")), total, true).unwrap();
            let exact = (f64::from(p) * f64::from(total) / 100.0).ceil() as i32;
            prop_assert_eq!(v, exact);
            let down = scaled_value(&IntOrString::String(format!("{p}%")), total, false).unwrap();
            prop_assert_eq!(down, (f64::from(p) * f64::from(total) / 100.0).floor() as i32);
        }

        #[test]
        fn desired_is_clamped_and_bounded(m in 0i32..200, expected in 0i32..1000, pct in proptest::bool::ANY) {
            let v = if pct { IntOrString::String(format!("{m}%")) } else { IntOrString::Int(m) };
            let b = pdb("x", &[], Some(v), None);
            let d = desired_healthy(&b, expected).unwrap();
            prop_assert!(d >= 0 && d <= expected);
        }

        #[test]
        fn hostile_budget_values_never_panic(s in ".*", p in any::<i64>(), total in any::<i32>(), up in any::<bool>()) {
            let _ = scaled_value(&IntOrString::String(s), total, up);
            let pct = IntOrString::String(format!("{p}%"));
            prop_assert!(scaled_value(&pct, total, up).is_ok());
        }

        #[test]
        fn hostile_desired_never_panics(v in any::<i32>(), expected in any::<i32>(), mu in any::<bool>()) {
            let b = if mu {
                pdb("x", &[], Some(IntOrString::Int(v)), None)
            } else {
                pdb("x", &[], None, Some(IntOrString::Int(v)))
            };
            let d = desired_healthy(&b, expected).unwrap();
            if mu { prop_assert!(d >= 0); }
        }

        #[test]
        fn joint_spend_never_exceeds_allowed_or_needed(allowed in -3i32..20, needed in 0i32..20, repl in 0i32..20) {
            let repl = repl.min(needed);
            let (now, ever) = joint_spend(allowed, needed, repl);
            prop_assert!(now >= 0 && now <= needed && now <= allowed.max(0));
            if now == needed { prop_assert!(ever); }
            if repl == 0 && now < needed { prop_assert!(!ever); }
        }
    }
}
