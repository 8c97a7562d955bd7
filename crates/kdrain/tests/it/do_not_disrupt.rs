//! Karpenter's `karpenter.sh/do-not-disrupt` with a duration: the pod is protected until its
//! start plus that duration. The drain waits for the end when it comes before the deadline,
//! refuses the pod like `"true"` when it does not, and ignores values that are not durations.

use std::time::Duration;

use kdrain::select::{DO_NOT_DISRUPT_INVALID_WARNING, opt_out_fatal};
use kdrain::{Action, DrainError, DrainOptions, DryRun, Event, PodOutcome};

use crate::*;

/// One protected pod (`karp`) and one ordinary pod (`web`) on n1, with `value` on `karp`.
fn scenario(value: &str) -> String {
    format!(
        r#"
nodes: [{{name: n1}}, {{name: n2}}]
workloads:
  - {{kind: Deployment, name: karp, replicas: 1, nodes: [n1], podAnnotations: {{karpenter.sh/do-not-disrupt: "{value}"}}, terminationSeconds: 0.1, readySeconds: 0.1}}
  - {{kind: Deployment, name: web, replicas: 1, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.1}}
"#
    )
}

/// The pod named `prefix-...` in the plan the drain sent.
fn planned<'a>(events: &'a [Event], prefix: &str) -> &'a kdrain::PodPlan {
    events
        .iter()
        .find_map(|e| match e {
            Event::Planned { plan } => plan.nodes[0]
                .pods
                .iter()
                .find(|p| p.name.starts_with(prefix)),
            _ => None,
        })
        .expect("the pod is in the plan")
}

#[tokio::test]
async fn a_protection_ending_before_the_deadline_is_waited_for_then_evicted() {
    // The pods started when the simulator did; "6s" from then ends after the plan is made
    // (start times are whole seconds, so at least 5 s after the start).
    let sim = sim(&scenario("6s")).await;
    let opts = DrainOptions {
        timeout: Some(Duration::from_secs(50)),
        ..fast()
    };
    let (res, events) = drain(&sim, opts, &["n1"]).await;
    let report = res.expect("the drain waits for the protection, then completes");
    let pod = planned(&events, "karp-");
    let until = pod.protected_until.expect("protected when planned");
    assert_eq!(pod.action, Action::Evict);
    assert!(
        pod.reason.starts_with("wait until ")
            && pod
                .reason
                .ends_with(" (karpenter.sh/do-not-disrupt: 6s from start)"),
        "{}",
        pod.reason
    );
    // The event stream says it waits, and why, before anything is sent for it.
    let karp = |p: &kdrain::PodRef| p.name.starts_with("karp-");
    let held = events
        .iter()
        .position(|e| {
            matches!(e, Event::Blocked { pod, budget: None, cause, message, .. }
                if karp(pod)
                    && cause.contains("karpenter.sh/do-not-disrupt: 6s from start")
                    && message.contains("no request sent"))
        })
        .expect("a Blocked event for the protected pod");
    let sent = events
        .iter()
        .position(|e| matches!(e, Event::EvictionSent { pod, .. } if karp(pod)))
        .expect("evicted once the protection ended");
    assert!(held < sent);
    // Both pods are gone, one eviction each; the protected one was not asked for before its
    // protection ended (allowing for the monotonic and the wall clock drifting apart a little).
    assert!(
        report.nodes[0]
            .pods
            .iter()
            .all(|p| p.outcome == PodOutcome::Gone)
    );
    assert_eq!(count(&sim, "create", "pods", "eviction"), 2);
    let r = report.nodes[0]
        .pods
        .iter()
        .find(|p| karp(&p.pod))
        .expect("in the report");
    assert_eq!(r.attempts, 1);
    let first = r.first_attempt.expect("sent");
    assert!(
        first >= until - jiff::SignedDuration::from_millis(100),
        "sent at {first}, protected until {until}"
    );
    no_violations(&sim);
}

#[tokio::test]
async fn a_protection_already_over_is_an_ordinary_pod() {
    let sim = sim(&scenario("1s")).await;
    // start times are whole seconds: 2 s after the start, "1s" has surely ended
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (res, events) = drain(&sim, fast(), &["n1"]).await;
    let report = res.expect("drained");
    let pod = planned(&events, "karp-");
    assert_eq!(pod.protected_until, None);
    assert!(
        pod.reason.starts_with("managed by ReplicaSet karp-"),
        "{}",
        pod.reason
    );
    assert!(
        report.nodes[0]
            .pods
            .iter()
            .all(|p| p.outcome == PodOutcome::Gone)
    );
    assert!(
        !events.iter().any(|e| matches!(e, Event::Blocked { .. })),
        "nothing held back"
    );
    assert_eq!(count(&sim, "create", "pods", "eviction"), 2);
    no_violations(&sim);
}

#[tokio::test]
async fn a_protection_past_the_deadline_blocks_like_true() {
    let sim = sim(&scenario("10m")).await;
    let opts = DrainOptions {
        timeout: Some(Duration::from_secs(5)),
        ..fast()
    };
    let (res, _) = drain(&sim, opts.clone(), &["n1"]).await;
    let err = res.expect_err("a blocker");
    assert_eq!(err.kind(), kdrain::ErrorKind::PodsLeft);
    let DrainError::PlanRefused { errors, .. } = err else {
        panic!("not a plan refusal: {err}")
    };
    let karp = pod_names_on(&sim, "n1")
        .await
        .into_iter()
        .find(|n| n.starts_with("karp-"))
        .expect("still there");
    assert_eq!(
        errors,
        vec![format!(
            "cannot delete {}: default/{karp}",
            opt_out_fatal("karpenter.sh/do-not-disrupt", "10m")
        )]
    );
    assert_eq!(count(&sim, "create", "pods", "eviction"), 0);

    // the plan says why, pod by pod
    let (d, _) = drainer(&sim, opts.clone());
    let plan = bounded(d.plan(&["n1".to_string()])).await.expect("plan");
    let p = plan.nodes[0]
        .pods
        .iter()
        .find(|p| p.name == karp)
        .expect("planned");
    assert_eq!(p.action, Action::Refuse);
    assert!(
        p.reason.ends_with(", past the drain's timeout)"),
        "{}",
        p.reason
    );

    // without a timeout the drain would wait: the plan says until when
    let (d, _) = drainer(&sim, fast());
    let plan = bounded(d.plan(&["n1".to_string()])).await.expect("plan");
    let p = plan.nodes[0]
        .pods
        .iter()
        .find(|p| p.name == karp)
        .expect("planned");
    assert_eq!(p.action, Action::Evict);
    assert!(p.protected_until.is_some());
    assert!(
        plan.worst_case_seconds > 60.0,
        "{}",
        plan.worst_case_seconds
    );

    // --override-opt-outs evicts it at once
    let (res, events) = drain(
        &sim,
        DrainOptions {
            override_opt_outs: true,
            ..opts
        },
        &["n1"],
    )
    .await;
    res.expect("overridden");
    assert_eq!(planned(&events, "karp-").protected_until, None);
    assert_eq!(count(&sim, "create", "pods", "eviction"), 2);
    no_violations(&sim);
}

#[tokio::test]
async fn an_invalid_value_counts_as_absent_with_a_warning() {
    let sim = sim(&scenario("banana")).await;
    let karp = pod_names_on(&sim, "n1")
        .await
        .into_iter()
        .find(|n| n.starts_with("karp-"))
        .expect("there");
    let opts = DrainOptions {
        timeout: Some(Duration::from_secs(50)),
        ..fast()
    };
    let (res, events) = drain(&sim, opts, &["n1"]).await;
    let report = res.expect("drained");
    assert!(
        report.nodes[0]
            .pods
            .iter()
            .all(|p| p.outcome == PodOutcome::Gone)
    );
    assert_eq!(count(&sim, "create", "pods", "eviction"), 2);
    let warning = format!("{DO_NOT_DISRUPT_INVALID_WARNING}: default/{karp}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Warning { message, .. } if message == &warning)),
        "{events:#?}"
    );
    let pod = planned(&events, "karp-");
    assert!(
        pod.reason
            .contains("ignoring karpenter.sh/do-not-disrupt=\"banana\"")
    );
    no_violations(&sim);
}

#[tokio::test]
async fn dry_runs_do_not_wait_for_protections() {
    let sim = sim(&scenario("1h")).await;
    let opts = DrainOptions {
        dry_run: DryRun::Server,
        ..fast()
    };
    let (res, events) = drain(&sim, opts, &["n1"]).await;
    let report = res.expect("a dry run");
    assert!(
        report.nodes[0]
            .pods
            .iter()
            .all(|p| p.outcome == PodOutcome::DryRun)
    );
    assert!(planned(&events, "karp-").protected_until.is_some());
    assert_eq!(pod_names_on(&sim, "n1").await.len(), 2);
    no_violations(&sim);
}
