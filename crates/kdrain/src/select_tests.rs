//! Unit tests of [`super`], kept in their own file so that `select.rs` is the code alone.

use super::*;
use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, PodSpec, PodStatus, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use std::time::Duration;

pub(crate) fn pod(ns: &str, name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some("n1".into()),
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            ..Default::default()
        }),
    }
}

pub(crate) fn owned(mut p: Pod, kind: &str, name: &str) -> Pod {
    p.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "apps/v1".into(),
        kind: kind.into(),
        name: name.into(),
        uid: format!("uid-{name}"),
        controller: Some(true),
        ..Default::default()
    }]);
    p
}

fn with_emptydir(mut p: Pod) -> Pod {
    p.spec.as_mut().unwrap().volumes = Some(vec![Volume {
        name: "cache".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }]);
    p
}

fn annotated(mut p: Pod, k: &str, v: &str) -> Pod {
    p.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(k.into(), v.into());
    p
}

fn finished(mut p: Pod) -> Pod {
    p.status.as_mut().unwrap().phase = Some("Succeeded".into());
    p
}

fn found(_: &Pod) -> DaemonSetLookup {
    DaemonSetLookup::Found
}
fn gone(_: &Pod) -> DaemonSetLookup {
    DaemonSetLookup::NotFound {
        message: "daemonsets.apps \"fluentd\" not found".into(),
    }
}

fn sel(p: &Pod, o: &DrainOptions) -> Selected {
    select_pod(p, o, jiff::Timestamp::now(), &found, &[])
}

#[test]
fn kubectl_defaults_refuse_the_three_kinds() {
    let o = DrainOptions::default();
    let bare = pod("default", "bare-pod");
    let cache = with_emptydir(owned(pod("default", "cache-x"), "ReplicaSet", "cache"));
    let ds = owned(pod("kube-system", "fluentd-x"), "DaemonSet", "fluentd");
    let web = owned(pod("default", "web-1"), "ReplicaSet", "web");
    assert_eq!(sel(&bare, &o).error.as_deref(), Some(UNMANAGED_FATAL));
    assert_eq!(sel(&cache, &o).error.as_deref(), Some(LOCAL_STORAGE_FATAL));
    assert_eq!(sel(&ds, &o).error.as_deref(), Some(DAEMONSET_FATAL));
    assert_eq!(sel(&web, &o).action, Action::Evict);
    let lines = error_lines(
        [(&bare, &o), (&cache, &o), (&ds, &o), (&web, &o)]
            .iter()
            .filter_map(|(p, o)| {
                sel(p, o).error.map(|e| {
                    (
                        e,
                        format!(
                            "{}/{}",
                            p.metadata.namespace.as_ref().unwrap(),
                            p.metadata.name.as_ref().unwrap()
                        ),
                    )
                })
            }),
    );
    assert_eq!(
        lines,
        vec![
            "cannot delete cannot delete Pods that declare no controller (use --force to override): default/bare-pod",
            "cannot delete Pods with local storage (use --delete-emptydir-data to override): default/cache-x",
            "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): kube-system/fluentd-x",
        ]
    );
}

#[test]
fn flags_turn_errors_into_warnings() {
    let o = DrainOptions {
        force: true,
        ignore_daemonsets: true,
        delete_emptydir_data: true,
        ..Default::default()
    };
    let bare = sel(&pod("default", "bare-pod"), &o);
    assert_eq!(
        (bare.action, bare.warning.as_deref()),
        (Action::Evict, Some(UNMANAGED_WARNING))
    );
    let ds = sel(
        &owned(pod("kube-system", "fluentd-x"), "DaemonSet", "fluentd"),
        &o,
    );
    assert_eq!(
        (ds.action, ds.warning.as_deref()),
        (Action::Skip, Some(DAEMONSET_WARNING))
    );
    // kubectl's later filters drop the local-storage warning of a managed pod.
    let cache = sel(
        &with_emptydir(owned(pod("default", "cache-x"), "ReplicaSet", "cache")),
        &o,
    );
    assert_eq!((cache.action, cache.warning), (Action::Evict, None));
    // ... but not for a bare emptyDir pod: the unmanaged warning wins.
    let bare_cache = sel(&with_emptydir(pod("default", "c2")), &o);
    assert_eq!(bare_cache.warning.as_deref(), Some(UNMANAGED_WARNING));
    let w = warning_lines(vec![
        (
            DAEMONSET_WARNING.to_string(),
            "kube-system/fluentd-x".to_string(),
        ),
        (
            UNMANAGED_WARNING.to_string(),
            "default/bare-pod".to_string(),
        ),
    ]);
    assert_eq!(
        w.join("; "),
        "deleting Pods that declare no controller: default/bare-pod; ignoring DaemonSet-managed Pods: kube-system/fluentd-x"
    );
}

#[test]
fn orphaned_daemonset_pods_need_force() {
    let p = owned(pod("kube-system", "fluentd-x"), "DaemonSet", "fluentd");
    let o = DrainOptions {
        ignore_daemonsets: true,
        ..Default::default()
    };
    let s = select_pod(&p, &o, jiff::Timestamp::now(), &gone, &[]);
    assert_eq!(
        s.error.as_deref(),
        Some("daemonsets.apps \"fluentd\" not found")
    );
    let o = DrainOptions {
        force: true,
        ..Default::default()
    };
    let s = select_pod(&p, &o, jiff::Timestamp::now(), &gone, &[]);
    assert_eq!(s.action, Action::Evict);
    // like kubectl, the orphan warning is overwritten by the later filters
    assert_eq!(s.warning, None);
}

#[test]
fn finished_pods_pass_every_filter() {
    let o = DrainOptions::default();
    for p in [
        finished(pod("default", "job-1")),
        finished(with_emptydir(pod("default", "job-2"))),
        finished(owned(pod("default", "ds-done"), "DaemonSet", "x")),
        finished(annotated(pod("default", "job-3"), SAFE_TO_EVICT, "false")),
    ] {
        let s = select_pod(
            &p,
            &o,
            jiff::Timestamp::now(),
            &|_| panic!("no DaemonSet lookup"),
            &[],
        );
        assert_eq!(s.action, Action::Evict, "{:?}", p.metadata.name);
    }
}

#[test]
fn mirror_pods_are_skipped_silently() {
    let p = annotated(
        owned(pod("kube-system", "etcd-n1"), "Node", "n1"),
        MIRROR_ANNOTATION,
        "x",
    );
    let s = sel(&p, &DrainOptions::default());
    assert_eq!((s.action, s.warning, s.error), (Action::Skip, None, None));
}

#[test]
fn stale_terminating_pods_are_skipped_only_with_the_flag() {
    let mut p = owned(pod("default", "web-1"), "ReplicaSet", "web");
    let now = jiff::Timestamp::now();
    p.metadata.deletion_timestamp = Some(Time(now - jiff::SignedDuration::from_secs(100)));
    let o = DrainOptions::default();
    assert_eq!(select_pod(&p, &o, now, &found, &[]).action, Action::Evict);
    let o = DrainOptions {
        skip_wait_for_delete_timeout: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    assert_eq!(select_pod(&p, &o, now, &found, &[]).action, Action::Skip);
    let o = DrainOptions {
        skip_wait_for_delete_timeout: Some(Duration::from_secs(200)),
        ..Default::default()
    };
    assert_eq!(select_pod(&p, &o, now, &found, &[]).action, Action::Evict);
}

#[test]
fn opt_outs_block_unless_overridden() {
    let base = || owned(pod("default", "web-1"), "ReplicaSet", "web");
    let o = DrainOptions::default();
    let s = sel(&annotated(base(), SAFE_TO_EVICT, "false"), &o);
    assert_eq!(s.action, Action::Refuse);
    assert_eq!(
        error_lines([(s.error.unwrap(), "default/web-1".to_string())]),
        vec![
            "cannot delete Pods annotated cluster-autoscaler.kubernetes.io/safe-to-evict=false (use --override-opt-outs to override): default/web-1"
        ]
    );
    assert_eq!(
        sel(&annotated(base(), SAFE_TO_EVICT, "true"), &o).action,
        Action::Evict
    );
    assert_eq!(
        sel(&annotated(base(), DO_NOT_DISRUPT, "true"), &o).action,
        Action::Refuse
    );
    let mut labelled = base();
    labelled.metadata.labels = Some([(CAPI_DRAIN.to_string(), "skip".to_string())].into());
    let s = sel(&labelled, &o);
    assert_eq!(
        (s.action, s.warning.as_deref()),
        (Action::Skip, Some(CAPI_SKIP_WARNING))
    );
    assert_eq!(
        sel(&annotated(base(), CAPI_DRAIN, "wait-completed"), &o).action,
        Action::Wait
    );
    let o = DrainOptions {
        override_opt_outs: true,
        ..Default::default()
    };
    assert_eq!(
        sel(&annotated(base(), SAFE_TO_EVICT, "false"), &o).action,
        Action::Evict
    );
    assert_eq!(sel(&labelled, &o).action, Action::Evict);
}

fn started(mut p: Pod, at: jiff::Timestamp) -> Pod {
    p.status.as_mut().unwrap().start_time = Some(Time(at));
    p
}

#[test]
fn do_not_disrupt_durations_count_from_the_start() {
    let now: jiff::Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
    let ago = |s: i64| now - jiff::SignedDuration::from_secs(s);
    let base = || owned(pod("default", "web-1"), "ReplicaSet", "web");
    let karp =
        |v: &str, start: jiff::Timestamp| annotated(started(base(), start), DO_NOT_DISRUPT, v);
    let at = |p: &Pod, o: &DrainOptions| select_pod(p, o, now, &found, &[]);
    let no_timeout = DrainOptions::default();
    let timeout = |secs| DrainOptions {
        timeout: Some(Duration::from_secs(secs)),
        ..Default::default()
    };

    // over: an ordinary pod
    let s = at(&karp("1s", ago(30)), &no_timeout);
    assert_eq!((s.action, s.protected_until), (Action::Evict, None));
    assert_eq!(s.reason, "managed by ReplicaSet web");
    // still protected, no timeout: wait until start + 5m, then evict
    let s = at(&karp("5m", ago(60)), &no_timeout);
    assert_eq!(s.action, Action::Evict);
    assert_eq!(s.protected_until, Some(ago(60 - 300)));
    assert_eq!(
        s.reason,
        "wait until 2026-01-01T12:04:00Z (karpenter.sh/do-not-disrupt: 5m from start)"
    );
    assert_eq!((s.error, s.warning), (None, None));
    // Go forms: 1h30m and 1.5h are the same moment
    assert_eq!(
        at(&karp("1h30m", now), &no_timeout).protected_until,
        at(&karp("1.5h", now), &no_timeout).protected_until
    );
    // protected past the deadline: a blocker like "true"
    let s = at(&karp("10m", ago(60)), &timeout(60));
    assert_eq!(s.action, Action::Refuse);
    assert_eq!(
        s.error.as_deref(),
        Some(
            "Pods annotated karpenter.sh/do-not-disrupt=10m (use --override-opt-outs to override)"
        )
    );
    assert!(
        s.reason
            .ends_with("(protected until 2026-01-01T12:09:00Z, past the drain's timeout)"),
        "{}",
        s.reason
    );
    // ends before the deadline: waits
    assert_eq!(
        at(&karp("2m", ago(60)), &timeout(120)).protected_until,
        Some(ago(-60))
    );
    // a zero timeout is no timeout (said once, by the options' normalisation)
    assert_eq!(
        at(&karp("10m", now), &timeout(0).normalised()).action,
        Action::Evict
    );
    // no startTime: creationTimestamp; neither: now
    let mut created = annotated(base(), DO_NOT_DISRUPT, "2m");
    created.metadata.creation_timestamp = Some(Time(ago(100)));
    assert_eq!(at(&created, &no_timeout).protected_until, Some(ago(-20)));
    let bare = annotated(base(), DO_NOT_DISRUPT, "2m");
    assert_eq!(at(&bare, &no_timeout).protected_until, Some(ago(-120)));
    // centuries: past any deadline
    let s = at(&karp("2562047h", now), &timeout(3600));
    assert_eq!(s.action, Action::Refuse);
    assert_eq!(
        do_not_disrupt(&karp("true", now), now),
        DoNotDisrupt::Always
    );
    // invalid: absent, with a warning and the reason saying so
    let s = at(&karp("banana", now), &timeout(60));
    assert_eq!((s.action, s.protected_until), (Action::Evict, None));
    assert_eq!(s.warning.as_deref(), Some(DO_NOT_DISRUPT_INVALID_WARNING));
    assert_eq!(
        s.reason,
        "managed by ReplicaSet web; ignoring karpenter.sh/do-not-disrupt=\"banana\" (neither \"true\" nor a duration)"
    );
    for v in ["True", "-5m", "5", ""] {
        assert!(
            matches!(
                do_not_disrupt(&karp(v, now), now),
                DoNotDisrupt::Invalid { .. }
            ),
            "{v}"
        );
    }
    // the override ignores all of it
    let o = DrainOptions {
        override_opt_outs: true,
        timeout: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let s = at(&karp("10m", now), &o);
    assert_eq!((s.action, s.protected_until), (Action::Evict, None));
    assert_eq!(at(&karp("banana", now), &o).warning, None);
    // a custom warning keeps the protection
    let f: PodFilter = Arc::new(|_: &Pod| FilterVerdict::Warn("mine".into()));
    let s = select_pod(&karp("5m", now), &no_timeout, now, &found, &[f]);
    assert_eq!(s.protected_until, Some(ago(-300)));
}

#[test]
fn custom_filters_run_last() {
    let f: PodFilter = Arc::new(|p: &Pod| {
        if p.metadata.name.as_deref() == Some("mine") {
            FilterVerdict::Skip("my own pod".into())
        } else {
            FilterVerdict::Pass
        }
    });
    let o = DrainOptions::default();
    let p = owned(pod("default", "mine"), "ReplicaSet", "x");
    let s = select_pod(
        &p,
        &o,
        jiff::Timestamp::now(),
        &found,
        std::slice::from_ref(&f),
    );
    assert_eq!((s.action, s.reason.as_str()), (Action::Skip, "my own pod"));
    // the chain stops before custom filters when kubectl already refused
    let bare = pod("default", "mine");
    assert_eq!(
        select_pod(&bare, &o, jiff::Timestamp::now(), &found, &[f]).action,
        Action::Refuse
    );
}

#[test]
fn delete_mode_and_tiers() {
    let o = DrainOptions {
        disable_eviction: true,
        ..Default::default()
    };
    assert_eq!(
        sel(&owned(pod("a", "b"), "ReplicaSet", "x"), &o).action,
        Action::Delete
    );
    let mut crit = owned(pod("kube-system", "dns"), "ReplicaSet", "dns");
    crit.spec.as_mut().unwrap().priority_class_name = Some("system-cluster-critical".into());
    assert_eq!(tier(&crit), 2);
    assert_eq!(tier(&owned(pod("a", "ds"), "DaemonSet", "x")), 1);
    assert_eq!(tier(&pod("a", "b")), 0);
}
