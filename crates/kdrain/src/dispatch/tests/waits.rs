//! Every cause a pod can wait for, and what ends each wait.

use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::events::Healthy;

#[test]
fn a_budget_without_disruptions_holds_the_pod_until_a_status_allows_one() {
    let mut d = Drain::new(
        opts(),
        vec![pod("a", "n1", "web")],
        vec![pdb("web", "web", 0, 2, 2, &[])],
    );
    let c = d.start();
    assert!(c.contains(&Command::WatchPods {
        node: 0,
        name: "n1".into(),
        resource_version: "10".into()
    }));
    assert!(c.contains(&Command::WatchBudgets {
        resource_version: "10".into()
    }));
    assert!(sent(&c).is_empty(), "nothing the budget forbids is sent");
    assert_eq!(
        blocked(&c),
        [("a".into(), WaitsFor::Budget, Some("web".into()))]
    );
    let healthy = events(&c).into_iter().find_map(|e| match e {
        Event::Blocked { healthy, .. } => healthy,
        _ => None,
    });
    assert_eq!(healthy, Some(Healthy { needs: 2, has: 2 }));
    // the retry ceiling is the only timer
    assert_eq!(d.wake_at(), Some(secs(3600.0)));
    assert!(sent(&d.budget(pdb("web", "web", 0, 2, 1, &[]))).is_empty());
    // the first status that allows a disruption sends the eviction, without waiting for a timer
    let c = d.budget(pdb("web", "web", 1, 2, 3, &[]));
    assert_eq!(sent(&c), ["a"]);
}

#[test]
fn a_budget_view_that_never_changes_is_probed_once_per_ceiling() {
    let mut d = Drain::new(
        opts(),
        vec![pod("a", "n1", "web")],
        vec![pdb("web", "web", 0, 2, 2, &[])],
    );
    assert!(sent(&d.start()).is_empty());
    assert!(sent(&d.tick_at(secs(3599.0))).is_empty());
    assert_eq!(
        sent(&d.tick_at(secs(3600.0))),
        ["a"],
        "the view may be stale"
    );
    let c = d.answer(
        "a",
        Attempt::Blocked {
            budgets: vec!["web".into()],
            cause: "The disruption budget web needs 2 healthy pods and has 2 currently".into(),
            message: "Cannot evict pod as it would violate the pod's disruption budget.".into(),
            retry_after: None,
            multiple: false,
        },
    );
    assert!(sent(&c).is_empty());
    assert_eq!(d.wake_at(), Some(secs(7200.0)));
}

#[test]
fn a_pod_under_several_budgets_is_asked_for_once_per_ceiling() {
    let mut d = Drain::new(
        opts(),
        vec![pod("a", "n1", "web")],
        vec![
            pdb("web", "web", 1, 1, 2, &[]),
            pdb("all", "web", 1, 1, 2, &[]),
        ],
    );
    // the first attempt goes: the server decides
    assert_eq!(sent(&d.start()), ["a"]);
    let c = d.answer(
        "a",
        Attempt::Blocked {
            budgets: vec![],
            cause: "This pod has more than one PodDisruptionBudget".into(),
            message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.".into(),
            retry_after: None,
            multiple: true,
        },
    );
    assert_eq!(
        blocked(&c),
        [(
            "a".into(),
            WaitsFor::SeveralBudgets,
            Some("all, web".into())
        )]
    );
    assert_eq!(d.wake_at(), Some(secs(3600.0)));
    // a budget change wakes it, but the API refuses pods under several budgets: not asked again
    // before the ceiling
    d.at = secs(5.0);
    let c = d.budget(pdb("web", "web", 2, 1, 3, &[]));
    assert!(sent(&c).is_empty());
    // kdrain now holds it back itself, and says so in its own words
    let held = events(&c).into_iter().find_map(|e| match e {
        Event::Blocked {
            waits_for,
            budget,
            cause,
            ..
        } => Some((waits_for, budget, cause)),
        _ => None,
    });
    assert_eq!(
        held,
        Some((
            WaitsFor::SeveralBudgets,
            Some("all, web".into()),
            "the pod is covered by more than one disruption budget (all, web)".into()
        ))
    );
    assert!(
        blocked(&d.budget(pdb("web", "web", 2, 1, 3, &[]))).is_empty(),
        "the same wait is not reported twice"
    );
    // the hold is one ceiling from the budget change
    assert_eq!(d.wake_at(), Some(secs(3605.0)));
    assert!(sent(&d.tick_at(secs(3604.0))).is_empty());
    assert_eq!(sent(&d.tick_at(secs(3605.0))), ["a"]);
}

/// A plan that evicts `a`, protected by do-not-disrupt until `until` seconds past the start.
fn protected(until: f64) -> Drain {
    let p = pod("a", "n1", "web");
    let mut plan = evict(&p);
    plan.reason = "karpenter.sh/do-not-disrupt: protected for a while".into();
    plan.protected_until = Some(wall(until));
    Drain::planned(opts(), vec![("n1", vec![p], vec![plan])], vec![])
}

#[test]
fn an_opt_out_protection_holds_the_pod_until_its_time() {
    let mut d = protected(30.0);
    let c = d.start();
    assert!(sent(&c).is_empty());
    assert_eq!(blocked(&c), [("a".into(), WaitsFor::Protection, None)]);
    assert_eq!(d.wake_at(), Some(secs(30.0)));
    assert!(sent(&d.tick_at(secs(29.9))).is_empty());
    assert_eq!(sent(&d.tick_at(secs(30.0))), ["a"]);
}

#[test]
fn a_protection_already_over_holds_nothing() {
    let mut d = protected(-1.0);
    assert_eq!(sent(&d.start()), ["a"]);
}

#[test]
fn throttling_waits_for_retry_after_and_a_little_jitter() {
    let mut d = Drain::new(opts(), vec![pod("a", "n1", "web")], vec![]);
    assert_eq!(sent(&d.start()), ["a"]);
    let c = d.answer(
        "a",
        Attempt::Throttled {
            retry_after: Some(secs(5.0)),
            message: "too many requests".into(),
        },
    );
    assert_eq!(blocked(&c), [("a".into(), WaitsFor::Throttling, None)]);
    let wake = d.wake_at().expect("a retry time");
    // jitter: at most a tenth of the ceiling, capped at 0.5 s
    assert!(wake >= secs(5.0) && wake <= secs(5.5), "{wake:?}");
    assert!(sent(&d.tick_at(secs(4.99))).is_empty());
    assert_eq!(sent(&d.tick_at(wake)), ["a"]);
    assert_eq!(d.reports()[0].pods[0].attempts, 2);
}

#[test]
fn throttling_without_retry_after_waits_a_second() {
    let mut d = Drain::new(opts(), vec![pod("a", "n1", "web")], vec![]);
    d.start();
    d.answer(
        "a",
        Attempt::Throttled {
            retry_after: None,
            message: "slow down".into(),
        },
    );
    let wake = d.wake_at().expect("a retry time");
    assert!(wake >= secs(1.0) && wake <= secs(1.5), "{wake:?}");
}

#[test]
fn a_terminating_namespace_is_left_to_delete_the_pod() {
    let p = pod("a", "n1", "web");
    let mut d = Drain::new(opts(), vec![p.clone()], vec![]);
    assert_eq!(sent(&d.start()), ["a"]);
    let c = d.answer(
        "a",
        Attempt::NamespaceTerminating {
            message: "namespace default is being terminated".into(),
        },
    );
    assert_eq!(
        blocked(&c),
        [("a".into(), WaitsFor::NamespaceTermination, None)]
    );
    assert_eq!(d.wake_at(), Some(secs(3600.0)));
    // the namespace controller deletes it: followed, not asked again
    let mut gone = p.clone();
    gone.metadata.deletion_timestamp = Some(Time(wall(30.0)));
    let c = d.pod_changed(0, gone.clone());
    assert!(
        events(&c)
            .iter()
            .any(|e| matches!(e, Event::Terminating { grace_left_seconds, .. } if *grace_left_seconds == 30.0))
    );
    assert!(sent(&d.tick_at(secs(3600.0))).is_empty());
    let c = d.pod_gone(0, gone);
    assert!(events(&c).iter().any(|e| matches!(e, Event::Gone { .. })));
    assert_eq!(d.outcome("a"), PodOutcome::Gone);
}

#[test]
fn a_transient_error_backs_off_exponentially() {
    let mut d = Drain::new(opts(), vec![pod("a", "n1", "web")], vec![]);
    d.start();
    let error = || Attempt::Transient {
        code: Some(500),
        message: "etcd timeout".into(),
    };
    let c = d.answer("a", error());
    assert_eq!(blocked(&c), [("a".into(), WaitsFor::Error, None)]);
    // 200 ms, doubling, each plus up to as much again of jitter
    let first = d.wake_at().expect("a retry time");
    assert!(first >= secs(0.2) && first < secs(0.4), "{first:?}");
    assert!(sent(&d.tick_at(first - secs(0.01))).is_empty());
    assert_eq!(sent(&d.tick_at(first)), ["a"]);
    // the same cause again: no new Blocked event, and a longer wait
    let c = d.answer("a", error());
    assert!(blocked(&c).is_empty());
    let second = d.wake_at().expect("a retry time") - first;
    assert!(second >= secs(0.4) && second < secs(0.8), "{second:?}");
    assert_eq!(sent(&d.tick_at(first + second)), ["a"]);
    assert_eq!(d.reports()[0].pods[0].attempts, 3);
}

#[test]
fn a_budget_whose_selector_changes_no_longer_holds_the_pods_it_stopped_selecting() {
    let mut d = Drain::new(
        opts(),
        vec![pod("a", "n1", "web")],
        vec![pdb("web", "web", 0, 2, 2, &[])],
    );
    assert!(sent(&d.start()).is_empty(), "held by web");
    // a status write, the selector unchanged: still held
    assert!(sent(&d.budget(pdb("web", "web", 0, 2, 1, &[]))).is_empty());
    // the same budget now selects other pods: nothing covers `a`, which goes at once
    assert_eq!(sent(&d.budget(pdb("web", "other", 0, 2, 2, &[]))), ["a"]);
}
