//! Every kind of answer to an eviction or delete, and what the pod does next.

use super::*;
use crate::options::DryRun;
use crate::report::NodeOutcome;

/// Drains one budget-free pod `a` on n1 and answers its first request with `attempt`.
fn answered(opts: DrainOptions, attempt: Attempt) -> (Drain, Vec<Command>) {
    let mut d = Drain::new(opts, vec![pod("a", "n1", "web")], vec![]);
    assert_eq!(sent(&d.start()), ["a"]);
    d.at = secs(1.0);
    let c = d.answer("a", attempt);
    (d, c)
}

fn failed(cmds: &[Command]) -> Vec<(crate::FailureKind, String)> {
    events(cmds)
        .into_iter()
        .filter_map(|e| match e {
            Event::PodFailed { error, kind, .. } => Some((kind, error)),
            _ => None,
        })
        .collect()
}

#[test]
fn accepted_is_followed_until_the_pod_is_gone() {
    let (mut d, c) = answered(opts(), Attempt::Accepted);
    assert!(
        events(&c)
            .iter()
            .any(|e| matches!(e, Event::Evicted { .. }))
    );
    assert!(lists(&c).is_empty(), "the pod is still there");
    let c = d.pod_gone(0, pod("a", "n1", "web"));
    assert!(events(&c).iter().any(|e| matches!(e, Event::Gone { .. })));
    assert_eq!(lists(&c), [(0, ListPurpose::Final)]);
    let report = &d.reports()[0].pods[0];
    assert_eq!(report.outcome, PodOutcome::Gone);
    assert_eq!(report.accepted, Some(wall(1.0)));
    assert_eq!(report.first_attempt, Some(wall(0.0)));
    assert_eq!(report.attempts, 1);
}

#[test]
fn a_server_dry_run_that_passes_ends_the_node_without_a_list() {
    let o = DrainOptions {
        dry_run: DryRun::Server,
        ..opts()
    };
    let mut d = Drain::new(o, vec![pod("a", "n1", "web")], vec![]);
    let c = d.start();
    assert!(
        !c.iter().any(|c| matches!(c, Command::WatchPods { .. })),
        "nothing changes in a dry run: nothing to watch"
    );
    assert_eq!(sent(&c), ["a"]);
    let c = d.answer("a", Attempt::DryRunPassed);
    assert!(lists(&c).is_empty());
    assert!(
        events(&c)
            .iter()
            .any(|e| matches!(e, Event::NodeDrained { .. }))
    );
    assert_eq!(d.outcome("a"), PodOutcome::DryRun);
    assert!(d.core.finished());
}

#[test]
fn not_found_means_gone() {
    let (d, c) = answered(opts(), Attempt::Gone);
    assert!(events(&c).iter().any(|e| matches!(e, Event::Gone { .. })));
    assert_eq!(lists(&c), [(0, ListPurpose::Final)]);
    assert_eq!(d.outcome("a"), PodOutcome::Gone);
    assert_eq!(d.reports()[0].pods[0].accepted, None);
}

#[test]
fn a_replaced_pod_is_gone_and_says_so() {
    let (d, _) = answered(opts(), Attempt::Replaced);
    let report = &d.reports()[0].pods[0];
    assert_eq!(report.outcome, PodOutcome::Gone);
    assert!(
        report
            .reason
            .ends_with("(replaced by a new pod of the same name)"),
        "{}",
        report.reason
    );
}

#[test]
fn blocked_by_the_server_waits_for_the_budget_it_names() {
    let mut d = Drain::new(
        opts(),
        vec![pod("a", "n1", "web")],
        vec![pdb("web", "web", 1, 2, 3, &[])],
    );
    assert_eq!(sent(&d.start()), ["a"]);
    let c = d.answer(
        "a",
        Attempt::Blocked {
            budgets: vec!["web".into()],
            cause: "The disruption budget web needs 3 healthy pods and has 3 currently".into(),
            message: "Cannot evict pod as it would violate the pod's disruption budget.".into(),
            retry_after: Some(secs(10.0)),
            multiple: false,
        },
    );
    assert_eq!(
        blocked(&c),
        [("a".into(), WaitsFor::Budget, Some("web".into()))]
    );
    assert!(
        sent(&c).is_empty(),
        "the server's word holds until the view changes"
    );
    assert_eq!(d.wake_at(), Some(secs(3600.0)));
    // a status that allows a disruption sends it at once, Retry-After or not
    d.at = secs(2.0);
    assert_eq!(sent(&d.budget(pdb("web", "web", 1, 2, 3, &[]))), ["a"]);
}

#[test]
fn blocked_in_a_server_dry_run_is_the_pods_outcome() {
    let o = DrainOptions {
        dry_run: DryRun::Server,
        ..opts()
    };
    let (d, c) = answered(
        o,
        Attempt::Blocked {
            budgets: vec!["web".into()],
            cause: "The disruption budget web needs 3 healthy pods and has 3 currently".into(),
            message: "Cannot evict pod".into(),
            retry_after: None,
            multiple: false,
        },
    );
    assert_eq!(d.outcome("a"), PodOutcome::Blocked);
    assert_eq!(d.reports()[0].pods[0].blocked_by.as_deref(), Some("web"));
    assert_eq!(d.reports()[0].outcome, NodeOutcome::BlockedByBudgets);
    assert!(
        events(&c)
            .iter()
            .any(|e| matches!(e, Event::NodeFailed { .. }))
    );
}

#[test]
fn forbidden_fails_the_pod_as_a_permission_error() {
    let (d, c) = answered(
        opts(),
        Attempt::Forbidden {
            message: "pods \"a\" is forbidden".into(),
        },
    );
    assert_eq!(
        failed(&c),
        [(
            crate::FailureKind::PermissionDenied,
            format!(
                "{}pods \"a\" is forbidden",
                super::super::answers::PERMISSION_DENIED
            )
        )]
    );
    assert!(sent(&c).is_empty(), "retrying will not help");
    assert_eq!(
        d.core.denied(),
        Some(crate::dispatch::Denied {
            pod: crate::plan::pod_ref(&pod("a", "n1", "web")),
            message: "pods \"a\" is forbidden".into()
        })
    );
    assert_eq!(
        d.core.next_wake(),
        None,
        "nothing left to wait for but the LIST"
    );
    assert_eq!(lists(&c), [(0, ListPurpose::Final)]);
}

#[test]
fn rejected_fails_the_pod_with_the_code() {
    let (mut d, c) = answered(
        opts(),
        Attempt::Rejected {
            code: 422,
            message: "invalid".into(),
        },
    );
    assert_eq!(
        failed(&c),
        [(
            crate::FailureKind::Rejected,
            "rejected (422): invalid".into()
        )]
    );
    // the final LIST still shows it: the node ends with the pod left
    let c = d.listed(0, ListPurpose::Final, vec![pod("a", "n1", "web")]);
    assert!(events(&c).iter().any(|e| matches!(
        e,
        Event::NodeFailed { pending, .. } if pending.len() == 1
    )));
    assert_eq!(d.reports()[0].outcome, NodeOutcome::PodsLeft);
}

#[test]
fn a_late_answer_for_a_pod_already_gone_still_reports_the_eviction() {
    let mut d = Drain::new(opts(), vec![pod("a", "n1", "web")], vec![]);
    d.start();
    // the watch saw it go first: the node waits for the answer before its final LIST
    let c = d.pod_gone(0, pod("a", "n1", "web"));
    assert!(lists(&c).is_empty());
    assert_eq!(d.wake_at(), Some(secs(10.0)), "at most IN_FLIGHT_GRACE");
    let c = d.answer("a", Attempt::Accepted);
    assert!(
        events(&c)
            .iter()
            .any(|e| matches!(e, Event::Evicted { .. }))
    );
    assert_eq!(lists(&c), [(0, ListPurpose::Final)]);
    assert!(d.reports()[0].pods[0].accepted.is_some());
}
