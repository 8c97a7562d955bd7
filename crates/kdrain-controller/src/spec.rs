//! A NodeDrain's spec checked and turned into what the controller runs: the targets, the
//! library's [`DrainOptions`] and the node concurrency. Whatever the schema could not reject is
//! caught here, before anything changes, as one line naming the field and the fix (the
//! `Refused` condition's message).

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kdrain::DrainOptions;

use crate::types::{NodeDrainSpec, OnFailure, Stage};

/// The nodes a NodeDrain targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// By name (deduplicated, in the order given).
    Names(Vec<String>),
    /// By label selector (checked to parse).
    Selector(String),
}

/// How many of the selected nodes are drained at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxUnavailable {
    /// A count, at least one.
    Count(u32),
    /// A percent from 1 to 100 of the selected nodes (rounded down, at least one node).
    Percent(u32),
}

impl MaxUnavailable {
    /// The number of nodes drained at once out of `selected` (at least one).
    pub fn nodes_at_once(self, selected: usize) -> usize {
        let n = match self {
            MaxUnavailable::Count(c) => c as usize,
            MaxUnavailable::Percent(p) => selected * p as usize / 100,
        };
        n.clamp(1, selected.max(1))
    }
}

/// A spec that can be carried out.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The nodes.
    pub targets: Targets,
    /// The stage asked for.
    pub stage: Stage,
    /// The library's options (`parallel_nodes` is set by [`Request::options_for`]).
    pub options: DrainOptions,
    /// Nodes drained at once.
    pub max_unavailable: MaxUnavailable,
    /// What a failure does with the nodes this drain cordoned.
    pub on_failure: OnFailure,
}

impl Request {
    /// The library's options for a drain of `selected` nodes, with at most `cap` of them at
    /// once (the controller's `--max-concurrent-nodes`).
    pub fn options_for(&self, selected: usize, cap: usize) -> DrainOptions {
        DrainOptions {
            parallel_nodes: self.max_unavailable.nodes_at_once(selected).min(cap.max(1)),
            ..self.options.clone()
        }
    }
}

/// Checks a spec. The error is one line for the `Refused` condition.
pub fn check(spec: &NodeDrainSpec) -> Result<Request, String> {
    let targets = match (&spec.node_names, &spec.node_selector) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(
                "set exactly one of spec.nodeNames or spec.nodeSelector (a list of node names, or a label selector such as pool=a)".into(),
            );
        }
        (Some(names), None) => {
            if names.is_empty() || names.iter().any(|n| n.trim().is_empty()) {
                return Err(
                    "spec.nodeNames has an empty entry or is empty: list at least one node name"
                        .into(),
                );
            }
            let mut seen = std::collections::HashSet::new();
            Targets::Names(
                names
                    .iter()
                    .filter(|n| seen.insert(n.as_str()))
                    .cloned()
                    .collect(),
            )
        }
        (None, Some(sel)) => {
            selectors::LabelSelector::parse(sel).map_err(|e| {
                format!(
                    "spec.nodeSelector {sel:?} is not a label selector ({e}); use one such as pool=a,zone!=b"
                )
            })?;
            if sel.trim().is_empty() {
                return Err("spec.nodeSelector is empty: it would select every node; use a label selector such as pool=a".into());
            }
            Targets::Selector(sel.clone())
        }
    };
    if let Some(sel) = &spec.pod_selector {
        selectors::LabelSelector::parse(sel).map_err(|e| {
            format!(
                "spec.podSelector {sel:?} is not a label selector ({e}); use one such as app=web,tier!=db"
            )
        })?;
    }
    let timeout = match &spec.timeout {
        None => None,
        Some(t) => {
            let d =
                kdrain::duration::parse_go_duration(t).map_err(|e| format!("spec.timeout: {e}"))?;
            (!d.is_zero()).then_some(d)
        }
    };
    let grace_period = match spec.grace_period_seconds {
        Some(g) if g < -1 => {
            return Err(format!(
                "spec.gracePeriodSeconds {g} is below -1: use seconds >= 0, or -1 for each pod's own"
            ));
        }
        Some(g) if g >= 0 => Some(g),
        _ => None,
    };
    let skip_wait = match spec.skip_wait_for_delete_timeout_seconds {
        Some(s) if s < 0 => {
            return Err(format!(
                "spec.skipWaitForDeleteTimeoutSeconds {s} is negative: use seconds >= 0 (0 = never skip)"
            ));
        }
        Some(s) if s > 0 => Some(Duration::from_secs(s as u64)),
        _ => None,
    };
    let max_unavailable = max_unavailable(spec.max_unavailable_nodes.as_ref())?;
    let options = DrainOptions {
        force: spec.force,
        ignore_daemonsets: spec.ignore_daemon_sets,
        delete_emptydir_data: spec.delete_empty_dir_data,
        grace_period,
        timeout,
        pod_selector: spec.pod_selector.clone().filter(|s| !s.trim().is_empty()),
        disable_eviction: spec.disable_eviction,
        skip_wait_for_delete_timeout: skip_wait,
        override_opt_outs: spec.override_opt_outs,
        wait_for_capacity: spec.wait_for_capacity,
        // the controller restores per spec.onFailure, only what this NodeDrain cordoned
        uncordon_on_failure: false,
        ..DrainOptions::kubectl()
    };
    options.validate().map_err(|e| format!("spec: {e}"))?;
    Ok(Request {
        targets,
        stage: spec.stage,
        options,
        max_unavailable,
        on_failure: spec.on_failure,
    })
}

fn max_unavailable(value: Option<&IntOrString>) -> Result<MaxUnavailable, String> {
    const FIX: &str = "use a count of at least 1 or a percent from 1% to 100%";
    match value {
        None => Ok(MaxUnavailable::Count(1)),
        Some(IntOrString::Int(n)) if *n >= 1 => Ok(MaxUnavailable::Count(*n as u32)),
        Some(IntOrString::Int(n)) => Err(format!("spec.maxUnavailableNodes is {n}: {FIX}")),
        Some(IntOrString::String(s)) => {
            let pct = s
                .strip_suffix('%')
                .and_then(|p| p.parse::<u32>().ok())
                .filter(|p| (1..=100).contains(p));
            match pct {
                Some(p) => Ok(MaxUnavailable::Percent(p)),
                None => Err(format!("spec.maxUnavailableNodes is {s:?}: {FIX}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> NodeDrainSpec {
        NodeDrainSpec {
            node_names: Some(n.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_kubectls_with_one_node_at_a_time() {
        let r = check(&names(&["n1", "n2", "n1"])).unwrap();
        assert_eq!(r.targets, Targets::Names(vec!["n1".into(), "n2".into()]));
        assert_eq!(r.stage, Stage::Drain);
        assert_eq!(r.on_failure, OnFailure::KeepCordoned);
        assert_eq!(r.options, DrainOptions::kubectl());
        assert_eq!(r.options_for(2, 10).parallel_nodes, 1);
    }

    #[test]
    fn options_map_to_the_library() {
        let spec = NodeDrainSpec {
            force: true,
            ignore_daemon_sets: true,
            delete_empty_dir_data: true,
            grace_period_seconds: Some(5),
            timeout: Some("1m30s".into()),
            skip_wait_for_delete_timeout_seconds: Some(20),
            pod_selector: Some("app=web".into()),
            override_opt_outs: true,
            disable_eviction: true,
            wait_for_capacity: true,
            ..names(&["n1"])
        };
        let o = check(&spec).unwrap().options;
        assert!(o.force && o.ignore_daemonsets && o.delete_emptydir_data);
        assert!(o.override_opt_outs && o.disable_eviction && !o.uncordon_on_failure);
        assert!(o.wait_for_capacity && !o.ignore_capacity);
        assert_eq!(o.grace_period, Some(5));
        assert_eq!(o.timeout, Some(Duration::from_secs(90)));
        assert_eq!(
            o.skip_wait_for_delete_timeout,
            Some(Duration::from_secs(20))
        );
        assert_eq!(o.pod_selector.as_deref(), Some("app=web"));
        // kubectl's "no limit" values
        let spec = NodeDrainSpec {
            grace_period_seconds: Some(-1),
            timeout: Some("0".into()),
            skip_wait_for_delete_timeout_seconds: Some(0),
            ..names(&["n1"])
        };
        let o = check(&spec).unwrap().options;
        assert_eq!((o.grace_period, o.timeout), (None, None));
        assert_eq!(o.skip_wait_for_delete_timeout, None);
    }

    #[test]
    fn max_unavailable_counts_and_percents() {
        let with = |v: IntOrString| {
            check(&NodeDrainSpec {
                max_unavailable_nodes: Some(v),
                ..names(&["n1"])
            })
            .map(|r| r.max_unavailable)
        };
        assert_eq!(with(IntOrString::Int(3)), Ok(MaxUnavailable::Count(3)));
        assert_eq!(
            with(IntOrString::String("50%".into())),
            Ok(MaxUnavailable::Percent(50))
        );
        assert_eq!(MaxUnavailable::Percent(50).nodes_at_once(5), 2);
        assert_eq!(MaxUnavailable::Percent(10).nodes_at_once(5), 1);
        assert_eq!(MaxUnavailable::Percent(100).nodes_at_once(5), 5);
        assert_eq!(MaxUnavailable::Count(9).nodes_at_once(3), 3);
        let r = check(&NodeDrainSpec {
            max_unavailable_nodes: Some(IntOrString::Int(4)),
            ..names(&["a", "b", "c", "d"])
        })
        .unwrap();
        assert_eq!(
            r.options_for(4, 2).parallel_nodes,
            2,
            "--max-concurrent-nodes caps it"
        );
        for bad in [
            IntOrString::Int(0),
            IntOrString::Int(-2),
            IntOrString::String("0%".into()),
            IntOrString::String("150%".into()),
            IntOrString::String("two".into()),
        ] {
            let e = with(bad.clone()).unwrap_err();
            assert!(e.starts_with("spec.maxUnavailableNodes is "), "{e}");
            assert!(e.ends_with("a percent from 1% to 100%"), "{e}");
        }
    }

    #[test]
    fn bad_specs_are_one_line_naming_the_field_and_the_fix() {
        let cases: Vec<(NodeDrainSpec, &str)> = vec![
            (
                NodeDrainSpec::default(),
                "set exactly one of spec.nodeNames or spec.nodeSelector",
            ),
            (
                NodeDrainSpec {
                    node_selector: Some("pool=a".into()),
                    ..names(&["n1"])
                },
                "set exactly one of",
            ),
            (names(&[]), "spec.nodeNames has an empty entry or is empty"),
            (names(&["n1", " "]), "spec.nodeNames has an empty entry"),
            (
                NodeDrainSpec {
                    node_selector: Some("pool in (a".into()),
                    ..Default::default()
                },
                "spec.nodeSelector \"pool in (a\" is not a label selector",
            ),
            (
                NodeDrainSpec {
                    pod_selector: Some("app in (web".into()),
                    ..names(&["n1"])
                },
                "spec.podSelector \"app in (web\" is not a label selector",
            ),
            (
                NodeDrainSpec {
                    timeout: Some("5 minutes".into()),
                    ..names(&["n1"])
                },
                "spec.timeout: invalid duration \"5 minutes\"",
            ),
            (
                NodeDrainSpec {
                    grace_period_seconds: Some(-3),
                    ..names(&["n1"])
                },
                "spec.gracePeriodSeconds -3 is below -1",
            ),
            (
                NodeDrainSpec {
                    skip_wait_for_delete_timeout_seconds: Some(-1),
                    ..names(&["n1"])
                },
                "spec.skipWaitForDeleteTimeoutSeconds -1 is negative",
            ),
        ];
        for (spec, start) in cases {
            let e = check(&spec).unwrap_err();
            assert!(e.starts_with(start), "{e:?} should start with {start:?}");
            assert!(!e.contains('\n'), "one line: {e:?}");
        }
    }
}
