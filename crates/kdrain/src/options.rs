//! Drain options: kubectl's drain flags with kubectl's defaults, plus kdrain's own knobs.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;

use crate::serde_secs;

/// How much of a drain is really carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DryRun {
    /// A real drain: cordon, evict, wait.
    #[default]
    None,
    /// Read only: list, filter and plan, but send no write at all (kubectl `--dry-run=client`).
    Client,
    /// Send the cordon patch and the evictions with `dryRun=All`, so the server validates them
    /// without persisting anything; nothing is waited for (kubectl `--dry-run=server`).
    Server,
}

impl DryRun {
    /// True for both dry-run modes.
    pub fn is_dry(self) -> bool {
        self != DryRun::None
    }
}

/// Ready-made option sets, for users who want a known behaviour rather than single flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Exactly kubectl's defaults: refuse emptyDir pods, controller-less pods and DaemonSet pods.
    Kubectl,
    /// The choices of the seed operator (brupop): evict emptyDir and controller-less pods, skip
    /// DaemonSet and mirror pods. For operators migrating from it.
    Seed,
}

/// Every knob of a drain. `Default` gives kubectl's defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrainOptions {
    /// kubectl `--force`: also drain pods that declare no controller, and orphaned DaemonSet pods.
    pub force: bool,
    /// kubectl `--ignore-daemonsets`: skip DaemonSet-managed pods instead of refusing the drain.
    pub ignore_daemonsets: bool,
    /// kubectl `--delete-emptydir-data`: drain pods with emptyDir volumes (their data is lost).
    pub delete_emptydir_data: bool,
    /// kubectl `--grace-period`: seconds given to each pod to stop; `None` = the pod's own (kubectl -1).
    pub grace_period: Option<i64>,
    /// kubectl `--timeout` for each node; `None` = wait forever (kubectl 0).
    #[serde(with = "serde_secs::option")]
    pub timeout: Option<Duration>,
    /// kubectl `--pod-selector`: only pods matching this label selector are drained.
    pub pod_selector: Option<String>,
    /// kubectl `--disable-eviction`: DELETE pods instead of evicting them. This bypasses budgets.
    pub disable_eviction: bool,
    /// kubectl `--skip-wait-for-delete-timeout`: pods whose deletionTimestamp is older than this are
    /// neither drained nor waited for. `None` = never skip (kubectl 0).
    #[serde(with = "serde_secs::option")]
    pub skip_wait_for_delete_timeout: Option<Duration>,
    /// kubectl `--chunk-size`: page size of pod lists; 0 = no paging.
    pub chunk_size: u32,
    /// kubectl `--dry-run`.
    pub dry_run: DryRun,
    /// How many eviction (or delete) requests may be in flight at once; budget-free pods go as
    /// fast as this allows, pods under a budget also wait for the budget.
    pub max_concurrent_evictions: usize,
    /// Evict pods even when they opt out (`cluster-autoscaler.kubernetes.io/safe-to-evict: "false"`,
    /// `karpenter.sh/do-not-disrupt: "true"`, `cluster.x-k8s.io/drain: skip|wait-completed`).
    pub override_opt_outs: bool,
    /// Uncordon a node again when its drain failed, but only if kdrain cordoned it.
    pub uncordon_on_failure: bool,
    /// Longest wait between two eviction attempts of a pod blocked by a budget (a budget change
    /// seen on the watch triggers an earlier retry).
    #[serde(with = "serde_secs")]
    pub budget_retry_ceiling: Duration,
    /// How many nodes are drained at the same time (all share one budget-aware dispatcher).
    pub parallel_nodes: usize,
    /// Drain even when the plan finds no room for the evicted pods' replacements on the nodes
    /// that stay schedulable (the shortage is then a warning; the replacements stay Pending).
    pub ignore_capacity: bool,
    /// `--wait-for-capacity`: nodes whose replacements find no room now do not refuse the
    /// drain; they wait for room ([`crate::waves`]). Every target is still cordoned before the
    /// first eviction; when a wave ends, the drain reads the nodes and pods again and the
    /// waiting nodes whose replacements now fit (on nodes that are schedulable, including
    /// targets already drained that someone made schedulable again) start as the next wave.
    /// A wait for room lasts at most `timeout`; nodes still without room then end with
    /// [`crate::FailureKind::NoRoom`] and nothing evicted. `ignore_capacity` wins over it.
    pub wait_for_capacity: bool,
    /// `--surge`: Deployments (`namespace/name`) whose pods on the target nodes are replaced by
    /// restarting their rollout when their budget can never let them be evicted
    /// ([`crate::surge`]).
    pub surge: Vec<String>,
}

impl Default for DrainOptions {
    fn default() -> Self {
        DrainOptions {
            force: false,
            ignore_daemonsets: false,
            delete_emptydir_data: false,
            grace_period: None,
            timeout: None,
            pod_selector: None,
            disable_eviction: false,
            skip_wait_for_delete_timeout: None,
            chunk_size: 500,
            dry_run: DryRun::None,
            max_concurrent_evictions: 50,
            override_opt_outs: false,
            uncordon_on_failure: false,
            budget_retry_ceiling: Duration::from_secs(5),
            parallel_nodes: 1,
            ignore_capacity: false,
            wait_for_capacity: false,
            surge: Vec::new(),
        }
    }
}

/// Invalid drain options, found before anything is sent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// The pod selector does not parse.
    #[error(
        "invalid --pod-selector {selector:?}: {message}; use a label selector such as app=web,tier!=db"
    )]
    BadPodSelector {
        /// The selector as given.
        selector: String,
        /// The parser's explanation.
        message: String,
    },
    /// The node selector does not parse.
    #[error("invalid node selector {selector:?}: {message}; use a label selector such as pool=a")]
    BadNodeSelector {
        /// The selector as given.
        selector: String,
        /// The parser's explanation.
        message: String,
    },
    /// A `--surge` value that is not `namespace/name`.
    #[error("invalid --surge {0:?}: name a Deployment as namespace/name, such as shop/web")]
    BadSurge(String),
    /// A grace period below -1.
    #[error("invalid --grace-period {0}: use a number of seconds >= 0, or -1 for each pod's own")]
    BadGracePeriod(i64),
    /// A count that must be at least one is zero.
    #[error("{0} must be at least 1")]
    ZeroCount(&'static str),
    /// A duration that must be positive is zero.
    #[error("{0} must be longer than zero")]
    ZeroDuration(&'static str),
}

impl DrainOptions {
    /// kubectl's defaults (same as `Default`).
    pub fn kubectl() -> Self {
        Self::default()
    }

    /// The options of a [`Policy`] preset.
    pub fn from_policy(policy: Policy) -> Self {
        match policy {
            Policy::Kubectl => Self::default(),
            Policy::Seed => DrainOptions {
                force: true,
                ignore_daemonsets: true,
                delete_emptydir_data: true,
                ..Self::default()
            },
        }
    }

    /// Checks the options before any request is sent.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if let Some(sel) = &self.pod_selector {
            parse_pod_selector(sel)?;
        }
        if let Some(g) = self.grace_period
            && g < -1
        {
            return Err(OptionsError::BadGracePeriod(g));
        }
        for s in &self.surge {
            match s.split_once('/') {
                Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {}
                _ => return Err(OptionsError::BadSurge(s.clone())),
            }
        }
        if self.max_concurrent_evictions == 0 {
            return Err(OptionsError::ZeroCount("max_concurrent_evictions"));
        }
        if self.parallel_nodes == 0 {
            return Err(OptionsError::ZeroCount("parallel_nodes"));
        }
        if self.budget_retry_ceiling.is_zero() {
            return Err(OptionsError::ZeroDuration("budget_retry_ceiling"));
        }
        Ok(())
    }

    /// The options with kubectl's "zero means no limit" values said once, as `None`: a zero
    /// `timeout` (wait forever) and a zero `skip_wait_for_delete_timeout` (never skip).
    /// [`crate::Drainer`] normalises its options with this, so nothing after it checks for zeros.
    pub fn normalised(mut self) -> Self {
        self.timeout = self.timeout.filter(|t| !t.is_zero());
        self.skip_wait_for_delete_timeout =
            self.skip_wait_for_delete_timeout.filter(|t| !t.is_zero());
        self
    }

    /// Validates the options and parses the pod selector, once.
    pub(crate) fn check(&self) -> Result<Option<selectors::LabelSelector>, OptionsError> {
        self.validate()?;
        self.pod_selector
            .as_deref()
            .map(parse_pod_selector)
            .transpose()
    }

    /// The grace period to send, treating kubectl's -1 as "the pod's own".
    pub(crate) fn grace_override(&self) -> Option<i64> {
        self.grace_period.filter(|g| *g >= 0)
    }
}

/// Parses a `--pod-selector`.
pub(crate) fn parse_pod_selector(sel: &str) -> Result<selectors::LabelSelector, OptionsError> {
    selectors::LabelSelector::parse(sel).map_err(|e| OptionsError::BadPodSelector {
        selector: sel.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kubectls() {
        let o = DrainOptions::default();
        assert!(!o.force && !o.ignore_daemonsets && !o.delete_emptydir_data && !o.disable_eviction);
        assert_eq!(o.grace_period, None);
        assert_eq!(o.timeout, None);
        assert_eq!(o.chunk_size, 500);
        assert_eq!(o.dry_run, DryRun::None);
        assert_eq!(o, DrainOptions::kubectl());
        assert!(o.validate().is_ok());
    }

    #[test]
    fn seed_policy_evicts_emptydir_and_bare_pods() {
        let o = DrainOptions::from_policy(Policy::Seed);
        assert!(o.force && o.ignore_daemonsets && o.delete_emptydir_data);
    }

    #[test]
    fn validation_catches_bad_values() {
        let o = DrainOptions {
            grace_period: Some(-2),
            ..Default::default()
        };
        assert_eq!(o.validate(), Err(OptionsError::BadGracePeriod(-2)));
        let o = DrainOptions {
            max_concurrent_evictions: 0,
            ..Default::default()
        };
        assert!(o.validate().is_err());
        let o = DrainOptions {
            pod_selector: Some("a in (".into()),
            ..Default::default()
        };
        assert!(matches!(
            o.validate(),
            Err(OptionsError::BadPodSelector { .. })
        ));
        let o = DrainOptions {
            grace_period: Some(-1),
            ..Default::default()
        };
        assert_eq!(o.grace_override(), None);
    }

    #[test]
    fn durations_serialize_as_seconds() {
        let o = DrainOptions {
            timeout: Some(Duration::from_millis(1500)),
            ..Default::default()
        };
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["timeout"], 1.5);
        assert_eq!(v["budget_retry_ceiling"], 5.0);
        assert_eq!(v["skip_wait_for_delete_timeout"], serde_json::Value::Null);
        assert_eq!(v["dry_run"], "none");
    }
}
