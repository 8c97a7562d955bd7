//! The pieces of the default scheduler's inter-pod filters (PodTopologySpread and
//! InterPodAffinity) that kdrain's placement check and kubesim's scheduler both need: label
//! selectors as those plugins read them, a spread constraint's counts, and the three checks
//! against a node's labels with the scheduler's reasons. Each side gathers the pods its own way
//! (summaries read from the API, or the simulator's store) and hands the results here.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use crate::diagnosis::{self, NodeStatus};

/// Whether `sel` selects `labels`: a missing selector matches nothing, an empty one everything,
/// an invalid one nothing (as the API server's disruption controller and scheduler skip it).
/// The matching is the workspace's `selectors` crate.
pub fn selector_matches(sel: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    compiled_selector(sel).is_some_and(|s| s.matches(labels))
}

/// `sel` parsed once, for a caller that tests many label sets against it:
/// `compiled_selector(sel).is_some_and(|s| s.matches(labels))` is [`selector_matches`]. None
/// for a missing selector or one that does not parse (both match nothing).
pub fn compiled_selector(sel: Option<&LabelSelector>) -> Option<selectors::LabelSelector> {
    let sel = sel?;
    let expressions: Vec<(String, String, Vec<String>)> = sel
        .match_expressions
        .iter()
        .flatten()
        .map(|e| {
            (
                e.key.clone(),
                e.operator.clone(),
                e.values.clone().unwrap_or_default(),
            )
        })
        .collect();
    selectors::LabelSelector::from_parts(sel.match_labels.as_ref(), &expressions).ok()
}

/// Whether a spread constraint with selector `sel` counts a pod with `labels` in its domain:
/// as `countPodsMatchSelector` (kube-scheduler 1.33, `podtopologyspread/common.go`), an empty
/// selector (`labelSelector: {}`, which `metav1.LabelSelectorAsSelector` makes
/// `labels.Everything()`, whose `Empty()` is true) counts no pod, although it matches the
/// incoming pod itself (the filter's self-match, [`selector_matches`]); a missing one
/// (`labels.Nothing()`) matches and counts nothing.
pub fn spread_counts(sel: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    let Some(s) = sel else { return false };
    let empty = s.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && s.match_expressions.as_ref().is_none_or(|e| e.is_empty());
    !empty && selector_matches(sel, labels)
}

/// The selector of an affinity term or spread constraint with `matchLabelKeys` (`In` the pod's
/// own value) and `mismatchLabelKeys` (`NotIn`) added; `None` (matches nothing) when it has none.
pub fn selector_with_keys(
    sel: Option<&LabelSelector>,
    match_keys: Option<&Vec<String>>,
    mismatch_keys: Option<&Vec<String>>,
    pod_labels: &BTreeMap<String, String>,
) -> Option<LabelSelector> {
    let mut sel = sel?.clone();
    for (keys, op) in [(match_keys, "In"), (mismatch_keys, "NotIn")] {
        for k in keys.into_iter().flatten() {
            if let Some(v) = pod_labels.get(k) {
                sel.match_expressions
                    .get_or_insert_with(Vec::new)
                    .push(LabelSelectorRequirement {
                        key: k.clone(),
                        operator: op.into(),
                        values: Some(vec![v.clone()]),
                    });
            }
        }
    }
    Some(sel)
}

/// One `DoNotSchedule` spread constraint, counted for one pod.
#[derive(Debug, Clone)]
pub struct Spread {
    key: String,
    counts: BTreeMap<String, i64>,
    min: i64,
    self_match: i64,
    max_skew: i64,
}

impl Spread {
    /// `counts`: matching pods per domain (value of `key`); `min_domains` makes the global
    /// minimum 0 when fewer domains exist; `self_match`: whether the pod matches its own selector.
    pub fn new(
        key: &str,
        counts: BTreeMap<String, i64>,
        min_domains: Option<i32>,
        self_match: bool,
        max_skew: i32,
    ) -> Spread {
        let min = if (counts.len() as i64) < i64::from(min_domains.unwrap_or(1)) {
            0
        } else {
            counts.values().copied().min().unwrap_or(0)
        };
        Spread {
            key: key.to_string(),
            counts,
            min,
            self_match: i64::from(self_match),
            max_skew: i64::from(max_skew),
        }
    }
}

fn fail(reason: &str, resolvable: bool) -> Result<(), NodeStatus> {
    Err(NodeStatus {
        reasons: vec![reason.to_string()],
        resolvable,
    })
}

/// PodTopologySpread on a node with `labels`.
pub fn spread_fits(spread: &[Spread], labels: &BTreeMap<String, String>) -> Result<(), NodeStatus> {
    for sp in spread {
        let Some(value) = labels.get(&sp.key) else {
            return fail(diagnosis::TOPOLOGY_LABEL, false);
        };
        let here = sp.counts.get(value).copied().unwrap_or(0);
        if here + sp.self_match - sp.min > sp.max_skew {
            return fail(diagnosis::TOPOLOGY_SPREAD, true);
        }
    }
    Ok(())
}

/// The pod's own required anti-affinity (per term: its key and the values where a pod it
/// selects runs), then the running pods' required anti-affinity that selects it (`existing`:
/// (key, value) pairs), on a node with `labels`.
pub fn anti_affinity_fits(
    own: &[(String, BTreeSet<String>)],
    existing: &BTreeSet<(String, String)>,
    labels: &BTreeMap<String, String>,
) -> Result<(), NodeStatus> {
    for (key, values) in own {
        if labels.get(key).is_some_and(|v| values.contains(v)) {
            return fail(diagnosis::ANTI_AFFINITY, true);
        }
    }
    if labels
        .iter()
        .any(|(k, v)| existing.contains(&(k.clone(), v.clone())))
    {
        return fail(diagnosis::EXISTING_ANTI_AFFINITY, true);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_missing_selector_matches_nothing_and_an_empty_one_everything() {
        let l = labels(&[("app", "web")]);
        assert!(!selector_matches(None, &l));
        assert!(selector_matches(Some(&LabelSelector::default()), &l));
    }

    #[test]
    fn a_spread_with_an_empty_selector_counts_no_pod_but_matches_its_own() {
        let l = labels(&[("app", "web")]);
        let empty = LabelSelector::default();
        assert!(
            !spread_counts(Some(&empty), &l),
            "countPodsMatchSelector: Empty() -> 0"
        );
        assert!(selector_matches(Some(&empty), &l), "the self-match");
        assert!(!spread_counts(None, &l));
        let web = LabelSelector {
            match_labels: Some(BTreeMap::from([("app".into(), "web".into())])),
            ..Default::default()
        };
        assert!(spread_counts(Some(&web), &l));
        assert!(!spread_counts(Some(&web), &labels(&[("app", "db")])));
        // matchLabelKeys make an empty selector count the pods with the pod's own value
        let keys = vec!["app".to_string()];
        let with = selector_with_keys(Some(&empty), Some(&keys), None, &l);
        assert!(spread_counts(with.as_ref(), &l));
    }

    #[test]
    fn match_label_keys_add_the_pods_own_value() {
        let sel = LabelSelector {
            match_labels: Some(BTreeMap::from([("app".into(), "web".into())])),
            ..Default::default()
        };
        let keys = vec!["track".to_string()];
        let own = labels(&[("app", "web"), ("track", "a")]);
        let s = selector_with_keys(Some(&sel), Some(&keys), None, &own);
        assert!(selector_matches(s.as_ref(), &own));
        assert!(!selector_matches(
            s.as_ref(),
            &labels(&[("app", "web"), ("track", "b")])
        ));
        assert!(selector_with_keys(None, Some(&keys), None, &own).is_none());
    }

    #[test]
    fn spread_counts_skew_against_the_global_minimum() {
        let counts = BTreeMap::from([("a".to_string(), 2), ("b".to_string(), 1)]);
        let sp = [Spread::new("zone", counts.clone(), None, true, 1)];
        assert!(spread_fits(&sp, &labels(&[("zone", "b")])).is_ok());
        let err = spread_fits(&sp, &labels(&[("zone", "a")])).unwrap_err();
        assert_eq!(err.reasons, [diagnosis::TOPOLOGY_SPREAD]);
        assert!(err.resolvable);
        let err = spread_fits(&sp, &labels(&[])).unwrap_err();
        assert_eq!(err.reasons, [diagnosis::TOPOLOGY_LABEL]);
        // fewer domains than minDomains: the minimum is 0
        let sp = [Spread::new("zone", counts, Some(3), true, 1)];
        assert!(spread_fits(&sp, &labels(&[("zone", "b")])).is_err());
    }

    #[test]
    fn own_anti_affinity_comes_before_the_running_pods() {
        let own = vec![("host".to_string(), BTreeSet::from(["n1".to_string()]))];
        let existing = BTreeSet::from([("host".to_string(), "n2".to_string())]);
        let on = |n: &str| anti_affinity_fits(&own, &existing, &labels(&[("host", n)]));
        assert_eq!(on("n1").unwrap_err().reasons, [diagnosis::ANTI_AFFINITY]);
        assert_eq!(
            on("n2").unwrap_err().reasons,
            [diagnosis::EXISTING_ANTI_AFFINITY]
        );
        assert!(on("n3").is_ok());
    }
}
