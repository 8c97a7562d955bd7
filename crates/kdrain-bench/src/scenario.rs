//! The part of a kubesim scenario file that decides the floor: workloads (stop time, grace period,
//! readiness time, replicas, labels) and budgets. Read independently of kubesim's own parser, so the
//! floor is derived from the file's documented keys, not from the simulator's behaviour.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::floor::{FloorBudget, FloorPod};

/// The scenario keys the floor needs; every other key is ignored.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioModel {
    /// Workloads, as in the scenario's `workloads:` list.
    #[serde(default)]
    pub workloads: Vec<WorkloadModel>,
    /// Budgets, as in the scenario's `pdbs:` list.
    #[serde(default)]
    pub pdbs: Vec<BudgetModel>,
}

/// One `workloads:` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadModel {
    /// Deployment, StatefulSet, ReplicaSet, DaemonSet or Pod.
    pub kind: String,
    /// Object name; the pods' labels default to `app: <name>`.
    pub name: String,
    /// Namespace (scenario default: `default`).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Replica count (a bare pod counts as one).
    #[serde(default)]
    pub replicas: Option<u32>,
    /// Labels on the pods (kubesim's default when empty: `app: <name>`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// How long the app takes to stop once asked.
    #[serde(default)]
    pub termination_seconds: Option<f64>,
    /// The pod's grace period, which caps the stop time.
    #[serde(default)]
    pub grace_period_seconds: Option<f64>,
    /// How long a new pod takes to become Ready.
    #[serde(default)]
    pub ready_seconds: Option<f64>,
}

/// One `pdbs:` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetModel {
    /// Budget name.
    pub name: String,
    /// Namespace (scenario default: `default`).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Equality selector written as a label map (the bench scenarios use only this form); absent
    /// selects nothing, as in kubesim.
    #[serde(default)]
    pub selector: Option<BTreeMap<String, String>>,
    /// `maxUnavailable`: an integer or "N%".
    #[serde(default)]
    pub max_unavailable: Option<IntOrPercent>,
    /// `minAvailable`: an integer or "N%".
    #[serde(default)]
    pub min_available: Option<IntOrPercent>,
}

/// Kubernetes' IntOrString as scenarios write it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum IntOrPercent {
    /// An absolute count.
    Int(i64),
    /// A percentage such as "10%" (or a number written as a string).
    Text(String),
}

fn default_namespace() -> String {
    "default".to_string()
}

/// Kubernetes' default grace period, used when a workload sets none.
const DEFAULT_GRACE_SECONDS: f64 = 30.0;

/// kubesim's default readiness time of a new pod.
const DEFAULT_READY_SECONDS: f64 = 1.0;

impl IntOrPercent {
    /// The value scaled against `total`, rounding up as the disruption controller does.
    fn scaled(&self, total: u32) -> Result<u32> {
        match self {
            IntOrPercent::Int(n) => Ok((*n).max(0) as u32),
            IntOrPercent::Text(text) => {
                if let Some(percent) = text.strip_suffix('%') {
                    let p: u64 = percent
                        .trim()
                        .parse()
                        .with_context(|| format!("bad percentage {text:?}"))?;
                    Ok(((p * total as u64).div_ceil(100)) as u32)
                } else {
                    Ok(text
                        .trim()
                        .parse::<u32>()
                        .with_context(|| format!("bad count {text:?}"))?)
                }
            }
        }
    }
}

fn selects(selector: &Option<BTreeMap<String, String>>, labels: &BTreeMap<String, String>) -> bool {
    selector.as_ref().is_some_and(|s| subset(s, labels))
}

fn subset(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

impl WorkloadModel {
    /// The labels its pods carry (kubesim's default `app: <name>` when the scenario gives none).
    pub fn pod_labels(&self) -> BTreeMap<String, String> {
        if self.labels.is_empty() {
            BTreeMap::from([("app".to_string(), self.name.clone())])
        } else {
            self.labels.clone()
        }
    }
}

impl ScenarioModel {
    /// Reads the floor-relevant keys from a scenario file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read scenario {}", path.display()))?;
        Self::from_yaml_str(&text).with_context(|| format!("in scenario {}", path.display()))
    }

    /// Reads the floor-relevant keys from scenario YAML text.
    pub fn from_yaml_str(text: &str) -> Result<Self> {
        Ok(serde_yaml::from_str(text)?)
    }

    /// The workload whose pods carry these labels in this namespace.
    pub fn workload_for(
        &self,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> Option<&WorkloadModel> {
        self.workloads
            .iter()
            .filter(|w| w.namespace == namespace)
            .find(|w| subset(&w.pod_labels(), labels))
    }

    /// `status.disruptionsAllowed` of each budget once every pod is Ready, in `pdbs:` order.
    pub fn disruptions_allowed(&self) -> Result<Vec<u32>> {
        self.pdbs
            .iter()
            .map(|pdb| {
                let expected: u32 = self
                    .workloads
                    .iter()
                    .filter(|w| {
                        w.namespace == pdb.namespace && selects(&pdb.selector, &w.pod_labels())
                    })
                    .map(|w| w.replicas.unwrap_or(1))
                    .sum();
                let desired = match (&pdb.min_available, &pdb.max_unavailable) {
                    (Some(min), None) => min.scaled(expected)?,
                    (None, Some(max)) => expected.saturating_sub(max.scaled(expected)?),
                    (None, None) => bail!(
                        "budget {} sets neither minAvailable nor maxUnavailable",
                        pdb.name
                    ),
                    (Some(_), Some(_)) => bail!(
                        "budget {} sets both minAvailable and maxUnavailable",
                        pdb.name
                    ),
                };
                Ok(expected.saturating_sub(desired))
            })
            .collect()
    }

    /// Floor inputs for the given target pods (namespace and labels of each), or an error naming a pod
    /// that belongs to no workload of the scenario.
    pub fn floor_inputs(
        &self,
        targets: &[(String, BTreeMap<String, String>)],
    ) -> Result<(Vec<FloorPod>, Vec<FloorBudget>)> {
        let allowed = self.disruptions_allowed()?;
        let budgets = allowed
            .iter()
            .map(|&a| FloorBudget {
                disruptions_allowed: a,
            })
            .collect();
        let mut pods = Vec::with_capacity(targets.len());
        for (namespace, labels) in targets {
            let workload = self.workload_for(namespace, labels).with_context(|| {
                format!("a pod in {namespace} with labels {labels:?} matches no workload of the scenario")
            })?;
            let stop = workload.termination_seconds.unwrap_or(0.0).min(
                workload
                    .grace_period_seconds
                    .unwrap_or(DEFAULT_GRACE_SECONDS),
            );
            let ready = workload.ready_seconds.unwrap_or(DEFAULT_READY_SECONDS);
            let replacement_ready_seconds = match workload.kind.as_str() {
                "Deployment" | "ReplicaSet" => Some(ready),
                // A StatefulSet recreates the pod under the same name only once the old one is gone.
                "StatefulSet" => Some(stop + ready),
                _ => None,
            };
            let matching: Vec<usize> = self
                .pdbs
                .iter()
                .enumerate()
                .filter(|(_, p)| p.namespace == *namespace && selects(&p.selector, labels))
                .map(|(i, _)| i)
                .collect();
            let budget = match matching.as_slice() {
                [] => None,
                [one] => Some(*one),
                // Two budgets: the API server refuses the eviction; point at no budget that exists.
                _ => Some(usize::MAX),
            };
            pods.push(FloorPod {
                stop_seconds: stop,
                budget,
                replacement_ready_seconds,
            });
        }
        Ok((pods, budgets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::floor::drain_floor;

    const B2_LIKE: &str = r#"
nodes:
  - name: n1
workloads:
  - {kind: Deployment, name: a, replicas: 4, labels: {app: a}, nodes: [n1], terminationSeconds: 0.5, readySeconds: 1}
  - {kind: Deployment, name: b, replicas: 4, labels: {app: b}, nodes: [n1], terminationSeconds: 2, readySeconds: 1, gracePeriodSeconds: 1}
pdbs:
  - {name: a, selector: {app: a}, maxUnavailable: 1}
  - {name: b, selector: {app: b}, minAvailable: "50%"}
"#;

    fn labels(app: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("app".to_string(), app.to_string())])
    }

    #[test]
    fn budgets_scale_like_the_disruption_controller() {
        let model = ScenarioModel::from_yaml_str(B2_LIKE).unwrap();
        assert_eq!(model.disruptions_allowed().unwrap(), vec![1, 2]);
        let pct = ScenarioModel::from_yaml_str(
            "workloads: [{kind: Deployment, name: w, replicas: 30, labels: {app: w}}]\n\
             pdbs: [{name: w, selector: {app: w}, maxUnavailable: \"10%\"}]",
        )
        .unwrap();
        assert_eq!(pct.disruptions_allowed().unwrap(), vec![3]);
        let odd = ScenarioModel::from_yaml_str(
            "workloads: [{kind: Deployment, name: w, replicas: 15, labels: {app: w}}]\n\
             pdbs: [{name: w, selector: {app: w}, maxUnavailable: \"10%\"}]",
        )
        .unwrap();
        // 10% of 15 rounds up to 2.
        assert_eq!(odd.disruptions_allowed().unwrap(), vec![2]);
    }

    #[test]
    fn floor_of_a_budget_chain_from_yaml() {
        let model = ScenarioModel::from_yaml_str(B2_LIKE).unwrap();
        let targets: Vec<_> = (0..4)
            .map(|_| ("default".to_string(), labels("a")))
            .chain((0..4).map(|_| ("default".to_string(), labels("b"))))
            .collect();
        let (pods, budgets) = model.floor_inputs(&targets).unwrap();
        // b's 2 s stop is capped by its 1 s grace period.
        assert_eq!(pods[4].stop_seconds, 1.0);
        // a: 3 × 1 + 0.5 = 3.5; b (2 allowed of 4): two waves → 1 + 1 = 2.
        assert_eq!(drain_floor(&pods, &budgets).unwrap(), 3.5);
    }

    #[test]
    fn unknown_pod_is_an_error() {
        let model = ScenarioModel::from_yaml_str(B2_LIKE).unwrap();
        let err = model
            .floor_inputs(&[("default".to_string(), labels("zzz"))])
            .unwrap_err();
        assert!(err.to_string().contains("matches no workload"));
    }
}
