//! Scenario files: the YAML description of a simulated cluster (nodes, namespaces, workloads,
//! mirror pods, budgets, faults and simulator settings). Unknown keys are errors.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::faults::Fault;

/// Errors reading a scenario.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML is malformed or has unknown keys.
    #[error("invalid scenario: {}", yaml_detail(.0))]
    Yaml(#[from] serde_yaml::Error),
    /// The content is inconsistent (e.g. a node entry without name or namePrefix).
    #[error("invalid scenario: {0}")]
    Invalid(String),
}

/// serde_yaml's message, always with its location: serde_yaml leaves out "at line 1 column 1",
/// so an unknown first key would otherwise not say where it is.
fn yaml_detail(e: &serde_yaml::Error) -> String {
    let message = e.to_string();
    match e.location() {
        Some(at) if !message.contains(" at line ") => {
            format!("{message} at line {} column {}", at.line(), at.column())
        }
        _ => message,
    }
}

/// Most nodes a scenario may declare (all entries together).
pub const MAX_NODES: u64 = 100_000;
/// Most replicas one workload may declare.
pub const MAX_REPLICAS: u64 = 1_000_000;
/// Most pods a scenario may declare (replicas of all workloads plus one pod per node for
/// each DaemonSet).
pub const MAX_PODS: u64 = 1_000_000;
/// Longest duration, in seconds, any float seconds setting may give (one year).
pub const MAX_SECONDS: f64 = 31_536_000.0;

/// Check a float seconds value: finite, not negative, at most [`MAX_SECONDS`].
fn check_seconds(key: &str, v: f64) -> Result<(), ScenarioError> {
    if v.is_finite() && (0.0..=MAX_SECONDS).contains(&v) {
        return Ok(());
    }
    Err(ScenarioError::Invalid(format!(
        "{key}: {v} is not a valid number of seconds (give a number from 0 to {MAX_SECONDS})"
    )))
}

/// A whole scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// Simulator settings.
    #[serde(default)]
    pub settings: Settings,
    /// Nodes (single or generated with a prefix and count).
    #[serde(default)]
    pub nodes: Vec<NodeSpec>,
    /// Extra namespaces (default, kube-system, kube-public and kube-node-lease always exist).
    #[serde(default)]
    pub namespaces: Vec<NamespaceSpec>,
    /// Workloads and bare pods.
    #[serde(default)]
    pub workloads: Vec<Workload>,
    /// Mirror (static) pods.
    #[serde(default)]
    pub mirror_pods: Vec<MirrorPod>,
    /// PodDisruptionBudgets.
    #[serde(default)]
    pub pdbs: Vec<PdbSpec>,
    /// Faults active from the start.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Bearer-token users and RBAC-style grants; absent = everything allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<crate::auth::AuthSpec>,
    /// CustomResourceDefinitions installed and established at start (each a CRD object, as in a
    /// `crd.yaml`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crds: Vec<serde_json::Value>,
}

/// Simulator settings (all optional).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Number of watch events kept for resuming watches (W-8); older RVs get 410.
    #[serde(default = "default_history")]
    pub watch_history: usize,
    /// Interval of watch bookmarks when clients allow them.
    #[serde(default = "default_bookmark")]
    pub bookmark_seconds: f64,
    /// Delay before the disruption controller processes a change (C-1).
    #[serde(default)]
    pub disruption_delay_seconds: f64,
    /// Delay, from a namespace's deletion, before the namespace controller deletes its content.
    #[serde(default)]
    pub namespace_deletion_delay_seconds: f64,
    /// How long a paged LIST's snapshot stays readable after its last page was served; a
    /// continue token idle for longer gets 410 Expired (R-4), like one the real server compacted.
    #[serde(default = "default_list_snapshot")]
    pub list_snapshot_seconds: f64,
}

fn default_history() -> usize {
    10_000
}

fn default_bookmark() -> f64 {
    60.0
}

fn default_list_snapshot() -> f64 {
    300.0
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            watch_history: default_history(),
            bookmark_seconds: default_bookmark(),
            disruption_delay_seconds: 0.0,
            namespace_deletion_delay_seconds: 0.0,
            list_snapshot_seconds: default_list_snapshot(),
        }
    }
}

/// A node or a generated group of nodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSpec {
    /// Node name (or use `namePrefix` + `count`).
    #[serde(default)]
    pub name: Option<String>,
    /// Prefix of generated names (`pool-a-` gives pool-a-0, pool-a-1, ...).
    #[serde(default)]
    pub name_prefix: Option<String>,
    /// How many nodes to generate with `namePrefix`.
    #[serde(default)]
    pub count: Option<usize>,
    /// Node labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Pod capacity (default 110).
    #[serde(default = "default_max_pods")]
    pub max_pods: usize,
    /// Start cordoned.
    #[serde(default)]
    pub unschedulable: bool,
    /// `status.allocatable` (and capacity) by resource name, as quantities (`cpu: "4"`,
    /// `memory: 16Gi`, `ephemeral-storage`, `pods`, extended resources); unnamed resources keep
    /// the defaults (8 CPU, 32Gi memory, 100Gi ephemeral storage, `maxPods` pods).
    #[serde(default)]
    pub allocatable: BTreeMap<String, String>,
    /// Taints (`key`, `value`, `effect` NoSchedule|PreferNoSchedule|NoExecute).
    #[serde(default)]
    pub taints: Vec<crate::scheduling::TaintSpec>,
    /// The node's Ready condition is False (and it has the `node.kubernetes.io/not-ready`
    /// NoSchedule taint, as the node lifecycle controller gives it).
    #[serde(default)]
    pub not_ready: bool,
}

fn default_max_pods() -> usize {
    110
}

/// A namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceSpec {
    /// Name.
    pub name: String,
    /// Whether the namespace is being deleted (phase Terminating).
    #[serde(default)]
    pub terminating: bool,
}

/// Workload kinds a scenario can declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkloadKind {
    /// apps/v1 Deployment (with a ReplicaSet).
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 ReplicaSet.
    ReplicaSet,
    /// apps/v1 DaemonSet (one pod per node).
    DaemonSet,
    /// Bare pods without a controller.
    Pod,
}

/// A workload and the behaviour of its pods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workload {
    /// Kind.
    pub kind: WorkloadKind,
    /// Name.
    pub name: String,
    /// Namespace (default `default`).
    #[serde(default = "default_ns")]
    pub namespace: String,
    /// Replicas (ignored for DaemonSets; for bare pods the number of pods). Default 1.
    #[serde(default = "default_replicas")]
    pub replicas: i64,
    /// Pod labels (default `{app: <name>}`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Nodes for the first pods (round robin); default all nodes.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Seconds the app takes to stop once asked (capped by the grace period).
    #[serde(default)]
    pub termination_seconds: f64,
    /// terminationGracePeriodSeconds (default 30).
    #[serde(default = "default_grace")]
    pub grace_period_seconds: i64,
    /// Seconds a new pod takes to become Ready (default 1).
    #[serde(default = "default_ready")]
    pub ready_seconds: f64,
    /// Give pods an emptyDir volume.
    #[serde(default)]
    pub empty_dir: bool,
    /// priorityClassName of the pods.
    #[serde(default)]
    pub priority_class_name: Option<String>,
    /// Annotations of the pods.
    #[serde(default)]
    pub pod_annotations: BTreeMap<String, String>,
    /// Resource requests of the pod's container, as quantities (`cpu: 500m`, `memory: 1Gi`).
    #[serde(default)]
    pub requests: BTreeMap<String, String>,
    /// The pods' `nodeSelector`.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// The pods' `affinity` (the Kubernetes object as YAML).
    #[serde(default)]
    pub affinity: Option<serde_json::Value>,
    /// The pods' `tolerations` (the Kubernetes objects as YAML).
    #[serde(default)]
    pub tolerations: Vec<serde_json::Value>,
    /// The pods' `topologySpreadConstraints` (the Kubernetes objects as YAML).
    #[serde(default)]
    pub topology_spread_constraints: Vec<serde_json::Value>,
}

fn default_ns() -> String {
    "default".into()
}

fn default_replicas() -> i64 {
    1
}

fn default_grace() -> i64 {
    30
}

fn default_ready() -> f64 {
    1.0
}

/// A mirror pod (static pod shown by the kubelet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MirrorPod {
    /// Pod name.
    pub name: String,
    /// Namespace (default kube-system).
    #[serde(default = "default_mirror_ns")]
    pub namespace: String,
    /// Node it runs on.
    pub node: String,
}

fn default_mirror_ns() -> String {
    "kube-system".into()
}

/// An integer or a percentage string such as "25%" (a budget's minAvailable/maxUnavailable).
///
/// Loading refuses, with a message naming the accepted forms, what the API server's
/// validation refuses: a negative integer, a malformed percentage, or one over 100%.
/// A string without `%` loads (the disruption controller then fails safe, C-7).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum IntOrPercent {
    /// Integer.
    Int(i64),
    /// String: "N%" with N in 0..=100, or a string without `%` (which fails safe).
    Str(String),
}

/// What a budget's minAvailable/maxUnavailable accepts, for error messages.
const INT_OR_PERCENT_FORMS: &str =
    "a non-negative integer or a percentage from \"0%\" to \"100%\" (e.g. 1 or \"25%\")";

/// Check a percentage string: digits followed by `%`, at most 100. A string without `%`
/// (such as "1") is let through on purpose: the disruption controller's fail-safe (C-7)
/// for such values is part of what the simulator models.
fn check_percent(s: &str) -> Result<(), String> {
    let Some(digits) = s.strip_suffix('%') else {
        return Ok(());
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "invalid percentage {s:?}: expected {INT_OR_PERCENT_FORMS}"
        ));
    }
    // Many digits: certainly over 100 (and would not fit a u32).
    match digits.parse::<u32>() {
        Ok(n) if n <= 100 => Ok(()),
        _ => Err(format!(
            "percentage {s:?} is over 100%: expected {INT_OR_PERCENT_FORMS}"
        )),
    }
}

impl<'de> Deserialize<'de> for IntOrPercent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = IntOrPercent;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(INT_OR_PERCENT_FORMS)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<IntOrPercent, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "invalid value {v}: expected {INT_OR_PERCENT_FORMS}"
                    ))),
                }
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<IntOrPercent, E> {
                // Kubernetes' IntOrString holds an int32.
                match i32::try_from(v) {
                    Ok(v) => Ok(IntOrPercent::Int(i64::from(v))),
                    Err(_) => Err(E::custom(format!(
                        "invalid value {v}: too large, expected {INT_OR_PERCENT_FORMS}"
                    ))),
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<IntOrPercent, E> {
                check_percent(v).map_err(E::custom)?;
                Ok(IntOrPercent::Str(v.to_owned()))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// A PodDisruptionBudget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PdbSpec {
    /// Name.
    pub name: String,
    /// Namespace (default `default`).
    #[serde(default = "default_ns")]
    pub namespace: String,
    /// Label selector: a map of labels (matchLabels), or a full selector with
    /// `matchLabels`/`matchExpressions`. Absent = nil selector (matches nothing).
    #[serde(default)]
    pub selector: Option<serde_json::Value>,
    /// maxUnavailable.
    #[serde(default)]
    pub max_unavailable: Option<IntOrPercent>,
    /// minAvailable.
    #[serde(default)]
    pub min_available: Option<IntOrPercent>,
    /// IfHealthyBudget or AlwaysAllow.
    #[serde(default)]
    pub unhealthy_pod_eviction_policy: Option<String>,
}

impl Scenario {
    /// Parse a scenario from YAML.
    pub fn from_yaml_str(s: &str) -> Result<Scenario, ScenarioError> {
        let sc: Scenario = serde_yaml::from_str(s)?;
        sc.validate()?;
        Ok(sc)
    }

    /// Read and parse a scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let s = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml_str(&s)
    }

    /// Refuse counts and durations the simulator cannot honour: too many nodes, replicas
    /// or pods (checked with arithmetic only, nothing is built), and float seconds that are
    /// negative, not finite or beyond [`MAX_SECONDS`].
    fn validate_limits(&self) -> Result<(), ScenarioError> {
        let bad = |m: String| Err(ScenarioError::Invalid(m));
        let mut nodes: u64 = 0;
        for (i, n) in self.nodes.iter().enumerate() {
            let count = n.count.unwrap_or(1) as u64;
            if count > MAX_NODES {
                return bad(format!(
                    "nodes[{i}].count: {count} is over the limit of {MAX_NODES} nodes"
                ));
            }
            nodes += count;
            if nodes > MAX_NODES {
                return bad(format!(
                    "nodes: {nodes} nodes declared (up to nodes[{i}]), over the limit of {MAX_NODES}"
                ));
            }
        }
        let s = &self.settings;
        for (key, v) in [
            ("settings.bookmarkSeconds", s.bookmark_seconds),
            (
                "settings.disruptionDelaySeconds",
                s.disruption_delay_seconds,
            ),
            (
                "settings.namespaceDeletionDelaySeconds",
                s.namespace_deletion_delay_seconds,
            ),
            ("settings.listSnapshotSeconds", s.list_snapshot_seconds),
        ] {
            check_seconds(key, v)?;
        }
        for (i, f) in self.faults.iter().enumerate() {
            if let Some(cut) = f.watch_cut_seconds {
                check_seconds(&format!("faults[{i}].watchCutSeconds"), cut)?;
            }
            if !(0.0..=1.0).contains(&f.probability) {
                return bad(format!(
                    "faults[{i}].probability: {} must be from 0 to 1",
                    f.probability
                ));
            }
        }
        let mut pods: u64 = 0;
        for (i, w) in self.workloads.iter().enumerate() {
            let at = format!("workloads[{i}] ({})", w.name);
            check_seconds(&format!("{at}.terminationSeconds"), w.termination_seconds)?;
            check_seconds(&format!("{at}.readySeconds"), w.ready_seconds)?;
            if w.grace_period_seconds < 0 {
                return bad(format!(
                    "{at}.gracePeriodSeconds: {} must not be negative",
                    w.grace_period_seconds
                ));
            }
            if w.replicas < 0 {
                return bad(format!(
                    "{at}.replicas: {} must not be negative",
                    w.replicas
                ));
            }
            if w.replicas as u64 > MAX_REPLICAS {
                return bad(format!(
                    "{at}.replicas: {} is over the limit of {MAX_REPLICAS}",
                    w.replicas
                ));
            }
            pods += if w.kind == WorkloadKind::DaemonSet {
                nodes
            } else {
                w.replicas as u64
            };
            if pods > MAX_PODS {
                return bad(format!(
                    "workloads: {pods} pods declared (up to {at}), over the limit of {MAX_PODS} pods"
                ));
            }
        }
        Ok(())
    }

    /// Node names in declaration order.
    pub fn node_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for n in &self.nodes {
            match (&n.name, &n.name_prefix) {
                (Some(name), _) => out.push(name.clone()),
                (None, Some(p)) => out.extend((0..n.count.unwrap_or(1)).map(|i| format!("{p}{i}"))),
                (None, None) => {}
            }
        }
        out
    }

    /// Check sizes, durations and cross-field consistency. Sizes are checked before
    /// anything is built, so a hostile count fails fast instead of allocating.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |m: String| Err(ScenarioError::Invalid(m));
        self.validate_limits()?;
        for (i, crd) in self.crds.iter().enumerate() {
            if let Err(e) = crate::crd::validate(crd) {
                return bad(format!("crds[{i}]: {}", e.message));
            }
        }
        crate::scheduling::validate(self)?;
        for (i, n) in self.nodes.iter().enumerate() {
            match (&n.name, &n.name_prefix) {
                (Some(_), Some(_)) => {
                    return bad(format!(
                        "nodes[{i}]: give either name or namePrefix, not both"
                    ));
                }
                (None, None) => return bad(format!("nodes[{i}]: needs name or namePrefix")),
                (Some(_), None) if n.count.is_some() => {
                    return bad(format!("nodes[{i}]: count needs namePrefix"));
                }
                _ => {}
            }
        }
        let names = self.node_names();
        let mut seen = std::collections::HashSet::new();
        for n in &names {
            if !seen.insert(n) {
                return bad(format!("node {n} is declared twice"));
            }
        }
        for w in &self.workloads {
            for n in &w.nodes {
                if !seen.contains(n) {
                    return bad(format!("workload {}: unknown node {n}", w.name));
                }
            }
        }
        for m in &self.mirror_pods {
            if !seen.contains(&m.node) {
                return bad(format!("mirror pod {}: unknown node {}", m.name, m.node));
            }
        }
        for p in &self.pdbs {
            if p.max_unavailable.is_some() && p.min_available.is_some() {
                return bad(format!(
                    "pdb {}: give minAvailable or maxUnavailable, not both",
                    p.name
                ));
            }
            if let Some(pol) = &p.unhealthy_pod_eviction_policy
                && pol != "IfHealthyBudget"
                && pol != "AlwaysAllow"
            {
                return bad(format!(
                    "pdb {}: unhealthyPodEvictionPolicy must be IfHealthyBudget or AlwaysAllow",
                    p.name
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_example_parses() {
        let s = r#"
nodes:
  - name: n1
    labels: {pool: a}
    maxPods: 110
    unschedulable: false
  - {namePrefix: pool-a-, count: 3}
namespaces:
  - name: team-a
    terminating: false
workloads:
  - kind: Deployment
    name: web
    namespace: default
    replicas: 4
    labels: {app: web}
    nodes: [n1]
    terminationSeconds: 0.5
    gracePeriodSeconds: 30
    readySeconds: 1
    emptyDir: false
    priorityClassName: system-cluster-critical
    podAnnotations: {}
mirrorPods:
  - {name: etcd-n1, namespace: kube-system, node: n1}
pdbs:
  - name: web
    namespace: default
    selector: {app: web}
    maxUnavailable: 1
    unhealthyPodEvictionPolicy: IfHealthyBudget
  - {name: p, selector: {app: x}, minAvailable: "50%"}
faults:
  - {verb: create, resource: pods/eviction, status: 500, probability: 0.05}
"#;
        let sc = Scenario::from_yaml_str(s).unwrap();
        assert_eq!(
            sc.node_names(),
            vec!["n1", "pool-a-0", "pool-a-1", "pool-a-2"]
        );
        assert_eq!(
            sc.pdbs[1].min_available,
            Some(IntOrPercent::Str("50%".into()))
        );
        assert_eq!(sc.faults[0].probability, 0.05);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = Scenario::from_yaml_str("nodes: [{name: n1, maxpods: 3}]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `maxpods`"), "{e}");
        let e = Scenario::from_yaml_str("workloads: [{kind: Job, name: x}]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Job"), "{e}");
        let e = Scenario::from_yaml_str("workloads: [{kind: Pod, name: x, nodes: [nope]}]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown node nope"), "{e}");
    }
}
