//! Which pods a drain touches: kubectl's filter chain, in kubectl's order and with kubectl's
//! grouped error and warning texts, plus the ecosystem's opt-out annotations and custom filters.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::model::Action;
use crate::options::DrainOptions;

/// kubectl's error text for DaemonSet pods without `--ignore-daemonsets`.
pub(crate) const DAEMONSET_FATAL: &str =
    "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)";
/// kubectl's warning text for DaemonSet pods that are ignored.
pub(crate) const DAEMONSET_WARNING: &str = "ignoring DaemonSet-managed Pods";
/// kubectl's error text for emptyDir pods without `--delete-emptydir-data`.
pub(crate) const LOCAL_STORAGE_FATAL: &str =
    "Pods with local storage (use --delete-emptydir-data to override)";
/// kubectl's warning text for emptyDir pods that are drained (kubectl's later filters drop it).
pub(crate) const LOCAL_STORAGE_WARNING: &str = "deleting Pods with local storage";
/// kubectl's error text for controller-less pods without `--force` (the doubled "cannot delete"
/// in kubectl's output comes from this text).
pub(crate) const UNMANAGED_FATAL: &str =
    "cannot delete Pods that declare no controller (use --force to override)";
/// kubectl's warning text for controller-less pods drained with `--force`.
pub(crate) const UNMANAGED_WARNING: &str = "deleting Pods that declare no controller";

/// Annotation of cluster-autoscaler: `"false"` opts a pod out of eviction.
pub const SAFE_TO_EVICT: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict";
/// Annotation of Karpenter: `"true"` opts a pod out of eviction; a Go duration (`"5m"`) protects
/// it for that long after its start.
pub const DO_NOT_DISRUPT: &str = "karpenter.sh/do-not-disrupt";
/// Label (or annotation) of Cluster API: `skip` or `wait-completed`.
pub const CAPI_DRAIN: &str = "cluster.x-k8s.io/drain";
/// Annotation that marks a mirror (static) pod.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Error text for pods that opt out of eviction by annotation.
pub fn opt_out_fatal(annotation: &str, value: &str) -> String {
    format!("Pods annotated {annotation}={value} (use --override-opt-outs to override)")
}
/// Warning text for pods whose `karpenter.sh/do-not-disrupt` value is neither `"true"` nor a
/// duration: like Karpenter, kdrain treats the annotation as absent.
pub const DO_NOT_DISRUPT_INVALID_WARNING: &str =
    "ignoring karpenter.sh/do-not-disrupt values that are neither \"true\" nor a duration";
/// Warning text for pods Cluster API asks to skip.
pub(crate) const CAPI_SKIP_WARNING: &str = "skipping Pods labelled cluster.x-k8s.io/drain=skip";
/// Warning text for pods Cluster API asks to wait for.
pub(crate) const CAPI_WAIT_WARNING: &str =
    "waiting for Pods labelled cluster.x-k8s.io/drain=wait-completed to complete";

/// The decision of one filter about one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FilterVerdict {
    /// No objection: earlier decisions stand.
    Pass,
    /// Drain the pod, with a warning grouped under this text.
    Warn(String),
    /// Leave the pod alone, silently.
    Skip(String),
    /// Leave the pod alone, with a warning grouped under this text.
    SkipWarn(String),
    /// Do not drain this node: a kubectl-style error grouped under this text.
    Refuse(String),
    /// Do not evict the pod, but wait until it completes or disappears.
    Wait(String),
}

/// A filter supplied by a library user; it runs after kubectl's filters and the opt-outs, on pods
/// that are still to be drained. Think of kubectl's `AdditionalFilters`.
pub type PodFilter = Arc<dyn Fn(&Pod) -> FilterVerdict + Send + Sync>;

/// Whether the DaemonSet that controls a pod exists (kubectl GETs it for every DaemonSet pod).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonSetLookup {
    /// It exists.
    Found,
    /// It is gone: the pod is an orphan, drained with `force`.
    NotFound {
        /// The server's message, e.g. `daemonsets.apps "fluentd" not found`.
        message: String,
    },
    /// The lookup failed.
    Error {
        /// The error text.
        message: String,
    },
}

/// The selection's verdict on one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Selected {
    /// What to do.
    pub action: Action,
    /// Why, in words.
    pub reason: String,
    /// Text under which the pod is grouped in warnings.
    pub warning: Option<String>,
    /// Text under which the pod is grouped in errors ("cannot delete `text`: pods").
    pub error: Option<String>,
    /// Not to be evicted before this moment (`karpenter.sh/do-not-disrupt` with a duration):
    /// the drain waits for it, then evicts the pod.
    pub protected_until: Option<jiff::Timestamp>,
}

/// The controller owner reference of an object, as `metav1.GetControllerOf` finds it.
pub(crate) fn controller_of(pod: &Pod) -> Option<&OwnerReference> {
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// Phase Succeeded or Failed.
pub fn is_finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

/// Controlled by a DaemonSet (kubectl compares the kind only).
pub fn is_daemonset_pod(pod: &Pod) -> bool {
    controller_of(pod).is_some_and(|r| r.kind == "DaemonSet")
}

/// A static pod's mirror.
pub(crate) fn is_mirror_pod(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
}

fn has_local_storage(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|v| v.iter().any(|v| v.empty_dir.is_some()))
}

/// Karpenter's tiers: 0 non-critical, 1 non-critical DaemonSet, 2 critical, 3 critical DaemonSet.
pub fn tier(pod: &Pod) -> u8 {
    let critical = matches!(
        pod.spec
            .as_ref()
            .and_then(|s| s.priority_class_name.as_deref()),
        Some("system-cluster-critical") | Some("system-node-critical")
    );
    let ds = is_daemonset_pod(pod);
    match (critical, ds) {
        (false, false) => 0,
        (false, true) => 1,
        (true, false) => 2,
        (true, true) => 3,
    }
}

/// Seconds since the pod's deletionTimestamp (negative while its grace period runs).
pub(crate) fn seconds_since_deletion(pod: &Pod, now: jiff::Timestamp) -> Option<f64> {
    let ts = pod.metadata.deletion_timestamp.as_ref()?.0;
    Some(now.duration_since(ts).as_secs_f64())
}

fn meta_value<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .or_else(|| pod.metadata.labels.as_ref().and_then(|l| l.get(key)))
        .map(String::as_str)
}

/// What a pod's `karpenter.sh/do-not-disrupt` annotation says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DoNotDisrupt {
    /// No annotation.
    Absent,
    /// `"true"` (or a duration ending beyond the range of timestamps): never disrupt it.
    Always,
    /// A duration: protected until the pod's start plus that duration.
    For {
        /// The annotation's value, e.g. `"5m"`.
        value: String,
        /// When the protection ends: `status.startTime` (else `creationTimestamp`, else now)
        /// plus the duration.
        until: jiff::Timestamp,
    },
    /// Neither `"true"` nor a duration: Karpenter treats it as absent.
    Invalid {
        /// The annotation's value.
        value: String,
    },
}

/// Reads `karpenter.sh/do-not-disrupt` as Karpenter does: `"true"`, or a Go duration counted
/// from the pod's start (`status.startTime`, else `creationTimestamp`, else `now`).
pub fn do_not_disrupt(pod: &Pod, now: jiff::Timestamp) -> DoNotDisrupt {
    let Some(value) = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DO_NOT_DISRUPT))
    else {
        return DoNotDisrupt::Absent;
    };
    if value == "true" {
        return DoNotDisrupt::Always;
    }
    let Ok(d) = crate::duration::parse_go_duration(value) else {
        return DoNotDisrupt::Invalid {
            value: value.clone(),
        };
    };
    let start = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .or(pod.metadata.creation_timestamp.as_ref())
        .map_or(now, |t| t.0);
    match jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| start.checked_add(d).ok())
    {
        Some(until) => DoNotDisrupt::For {
            value: value.clone(),
            until,
        },
        // Hundreds of years: for any drain, the same as "true".
        None => DoNotDisrupt::Always,
    }
}

/// The ecosystem's opt-outs; `Pass` when the pod has none. A `karpenter.sh/do-not-disrupt`
/// duration is not an opt-out here: [`select_pod`] weighs it against the drain's deadline.
pub(crate) fn opt_out_filter(pod: &Pod) -> FilterVerdict {
    if let Some(v) = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SAFE_TO_EVICT))
        && v == "false"
    {
        return FilterVerdict::Refuse(opt_out_fatal(SAFE_TO_EVICT, "false"));
    }
    if let Some(v) = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DO_NOT_DISRUPT))
        && v == "true"
    {
        return FilterVerdict::Refuse(opt_out_fatal(DO_NOT_DISRUPT, "true"));
    }
    match meta_value(pod, CAPI_DRAIN) {
        Some("skip") => FilterVerdict::SkipWarn(CAPI_SKIP_WARNING.to_string()),
        Some("wait-completed") => FilterVerdict::Wait(CAPI_WAIT_WARNING.to_string()),
        _ => FilterVerdict::Pass,
    }
}

/// Runs kubectl's filter chain, then the opt-outs (unless overridden), then the custom filters.
/// The first filter that keeps the pod on the node ends the chain, as in kubectl. `ds` answers
/// whether a pod's DaemonSet exists (called only for unfinished DaemonSet pods). `opts` are
/// [normalised](DrainOptions::normalised) (a zero timeout is `None`), as a `Drainer`'s are.
pub(crate) fn select_pod(
    pod: &Pod,
    opts: &DrainOptions,
    now: jiff::Timestamp,
    ds: &dyn Fn(&Pod) -> DaemonSetLookup,
    custom: &[PodFilter],
) -> Selected {
    let drain_action = if opts.disable_eviction {
        Action::Delete
    } else {
        Action::Evict
    };
    let evict = |reason: &str, warning: Option<String>| Selected {
        action: drain_action,
        reason: reason.to_string(),
        warning,
        error: None,
        protected_until: None,
    };
    let refuse = |msg: String| Selected {
        action: Action::Refuse,
        reason: format!("cannot delete {msg}"),
        warning: None,
        error: Some(msg),
        protected_until: None,
    };
    let skip = |reason: &str, warning: Option<String>| Selected {
        action: Action::Skip,
        reason: reason.to_string(),
        warning,
        error: None,
        protected_until: None,
    };
    let wait = |reason: String, warning: String| Selected {
        action: Action::Wait,
        reason,
        warning: Some(warning),
        error: None,
        protected_until: None,
    };
    let finished = is_finished(pod);

    // 1. skipDeletedFilter
    if let Some(limit) = opts.skip_wait_for_delete_timeout
        && let Some(age) = seconds_since_deletion(pod, now)
        && age.floor() > limit.as_secs() as f64
    {
        return skip(
            &format!("deletionTimestamp older than {} seconds", limit.as_secs()),
            None,
        );
    }
    // 2. daemonSetFilter. kubectl keeps the status of the last filter that ran, and the
    // unreplicated filter (5) always runs last, so only its warning survives; the reasons
    // collected here are for the report.
    let mut reason: Option<String> = None;
    if let Some(owner) = controller_of(pod)
        && owner.kind == "DaemonSet"
        && !finished
    {
        match ds(pod) {
            DaemonSetLookup::NotFound { .. } if opts.force => {
                reason = Some("orphaned DaemonSet pod (--force)".into());
            }
            DaemonSetLookup::NotFound { message } | DaemonSetLookup::Error { message } => {
                return refuse(message);
            }
            DaemonSetLookup::Found if !opts.ignore_daemonsets => {
                return refuse(DAEMONSET_FATAL.to_string());
            }
            DaemonSetLookup::Found => {
                return skip("DaemonSet-managed", Some(DAEMONSET_WARNING.to_string()));
            }
        }
    }
    // 3. mirrorPodFilter
    if is_mirror_pod(pod) {
        return skip("mirror pod", None);
    }
    // 4. localStorageFilter
    if has_local_storage(pod) && !finished {
        if !opts.delete_emptydir_data {
            return refuse(LOCAL_STORAGE_FATAL.to_string());
        }
        reason.get_or_insert_with(|| "has emptyDir data (--delete-emptydir-data)".into());
    }
    // 5. unreplicatedFilter
    let mut current = if finished {
        evict("finished", None)
    } else if let Some(owner) = controller_of(pod) {
        let r = reason.unwrap_or_else(|| format!("managed by {} {}", owner.kind, owner.name));
        evict(&r, None)
    } else if opts.force {
        evict(
            "declares no controller (--force)",
            Some(UNMANAGED_WARNING.into()),
        )
    } else {
        return refuse(UNMANAGED_FATAL.to_string());
    };
    // 6. opt-outs; finished pods pass, as they do every kubectl filter.
    if !opts.override_opt_outs && !finished {
        match opt_out_filter(pod) {
            FilterVerdict::Refuse(msg) => return refuse(msg),
            FilterVerdict::SkipWarn(w) => return skip("cluster.x-k8s.io/drain=skip", Some(w)),
            FilterVerdict::Wait(w) => {
                return wait(
                    "cluster.x-k8s.io/drain=wait-completed: waiting for it to complete".into(),
                    w,
                );
            }
            _ => {}
        }
        match do_not_disrupt(pod, now) {
            DoNotDisrupt::For { value, until } if until > now => {
                let deadline = opts
                    .timeout
                    .and_then(|t| jiff::SignedDuration::try_from(t).ok())
                    .and_then(|t| now.checked_add(t).ok());
                if deadline.is_some_and(|d| until >= d) {
                    let mut s = refuse(opt_out_fatal(DO_NOT_DISRUPT, &value));
                    s.reason = format!(
                        "{} (protected until {until}, past the drain's timeout)",
                        s.reason
                    );
                    return s;
                }
                current.reason =
                    format!("wait until {until} ({DO_NOT_DISRUPT}: {value} from start)");
                current.protected_until = Some(until);
            }
            DoNotDisrupt::Invalid { value } => {
                current.reason = format!(
                    "{}; ignoring {DO_NOT_DISRUPT}={value:?} (neither \"true\" nor a duration)",
                    current.reason
                );
                current
                    .warning
                    .get_or_insert_with(|| DO_NOT_DISRUPT_INVALID_WARNING.to_string());
            }
            DoNotDisrupt::Always => {
                // "true" was refused above: this is a duration beyond the timestamps' range.
                let value = pod
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DO_NOT_DISRUPT))
                    .map_or("true", String::as_str);
                return refuse(opt_out_fatal(DO_NOT_DISRUPT, value));
            }
            // A protection already over leaves an ordinary pod.
            DoNotDisrupt::For { .. } | DoNotDisrupt::Absent => {}
        }
    }
    // 7. custom filters
    for f in custom {
        match f(pod) {
            FilterVerdict::Pass => {}
            FilterVerdict::Warn(w) => {
                current = Selected {
                    protected_until: current.protected_until,
                    ..evict(&w, Some(w.clone()))
                }
            }
            FilterVerdict::Skip(r) => return skip(&r, None),
            FilterVerdict::SkipWarn(w) => return skip(&w, Some(w.clone())),
            FilterVerdict::Refuse(msg) => return refuse(msg),
            FilterVerdict::Wait(w) => return wait(w.clone(), w),
        }
    }
    current
}

/// The rank of a message group, so that grouped texts come out in a stable order (kubectl's
/// order is random; this is one of the orders it prints).
fn group_rank(msg: &str) -> u8 {
    match msg {
        UNMANAGED_FATAL | UNMANAGED_WARNING => 0,
        LOCAL_STORAGE_FATAL | LOCAL_STORAGE_WARNING => 1,
        DAEMONSET_FATAL | DAEMONSET_WARNING => 2,
        _ => 3,
    }
}

/// Groups `(message, "ns/name")` pairs as kubectl does: one entry per message, pods joined by ", ".
pub fn group(items: impl IntoIterator<Item = (String, String)>) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (msg, pod) in items {
        match index.get(&msg) {
            Some(&i) => groups[i].1.push(pod),
            None => {
                index.insert(msg.clone(), groups.len());
                groups.push((msg, vec![pod]));
            }
        }
    }
    groups.sort_by_key(|(m, _)| group_rank(m));
    groups
}

/// kubectl's grouped error lines: `cannot delete <msg>: ns/a, ns/b`.
pub fn error_lines(items: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    group(items)
        .into_iter()
        .map(|(m, pods)| format!("cannot delete {m}: {}", pods.join(", ")))
        .collect()
}

/// kubectl's grouped warnings: `<msg>: ns/a, ns/b` (kubectl prints them joined by "; ").
pub(crate) fn warning_lines(items: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    group(items)
        .into_iter()
        .map(|(m, pods)| format!("{m}: {}", pods.join(", ")))
        .collect()
}

#[cfg(test)]
#[path = "select_tests.rs"]
pub(crate) mod tests;
