//! The orders in which an accepted eviction's answer, its budget statuses and its pod's deletion
//! can arrive (issue 10; the HTTP versions are `tests/it/orderings.rs`). In each, the next pod
//! goes on the first input after which the budget, as watched, allows it, and never before.
//!
//! Three pods of `web` under a maxUnavailable 1 budget: `a` is sent first; `b` and `c` wait.

use super::*;

fn chain() -> Drain {
    let mut d = Drain::new(
        opts(),
        vec![
            pod("a", "n1", "web"),
            pod("b", "n1", "web"),
            pod("c", "n1", "web"),
        ],
        vec![pdb("web", "web", 1, 2, 3, &[])],
    );
    let c = d.start();
    assert_eq!(sent(&c), ["a"]);
    assert_eq!(
        blocked(&c),
        [
            ("b".into(), WaitsFor::Budget, Some("web".into())),
            ("c".into(), WaitsFor::Budget, Some("web".into()))
        ]
    );
    d
}

/// The eviction's own status write: `a` disrupted, nothing allowed.
fn written() -> PodDisruptionBudget {
    pdb("web", "web", 0, 2, 2, &["a"])
}

/// The disruption controller's status once `a` terminates: `a` no longer listed.
fn recounted() -> PodDisruptionBudget {
    pdb("web", "web", 0, 2, 2, &[])
}

/// The status once a replacement is Ready: one disruption allowed again.
fn replaced() -> PodDisruptionBudget {
    pdb("web", "web", 1, 2, 3, &[])
}

#[test]
fn the_controllers_status_before_the_eviction_answer() {
    let mut d = chain();
    assert!(sent(&d.budget(written())).is_empty());
    assert!(sent(&d.pod_gone(0, pod("a", "n1", "web"))).is_empty());
    assert!(sent(&d.budget(recounted())).is_empty());
    // allowed again, but a's request is still in flight: its budget unit is not free yet
    assert!(sent(&d.budget(replaced())).is_empty());
    // the answer: the statuses already counted this eviction, so the budget is free at once
    let c = d.answer("a", Attempt::Accepted);
    assert_eq!(sent(&c), ["b"]);
    assert!(
        events(&c)
            .iter()
            .any(|e| matches!(e, Event::Evicted { .. }))
    );
}

#[test]
fn the_eviction_answer_before_any_status_or_deletion() {
    let mut d = chain();
    // accepted, and no status has counted it yet: it still holds the budget
    assert!(sent(&d.answer("a", Attempt::Accepted)).is_empty());
    assert!(sent(&d.budget(written())).is_empty());
    assert!(sent(&d.pod_gone(0, pod("a", "n1", "web"))).is_empty());
    assert!(sent(&d.budget(recounted())).is_empty());
    assert_eq!(sent(&d.budget(replaced())), ["b"]);
}

#[test]
fn the_deletion_first_then_the_answer_then_the_statuses() {
    let mut d = chain();
    let c = d.pod_gone(0, pod("a", "n1", "web"));
    assert!(events(&c).iter().any(|e| matches!(e, Event::Gone { .. })));
    assert!(sent(&c).is_empty());
    let c = d.answer("a", Attempt::Accepted);
    assert!(sent(&c).is_empty());
    assert!(
        events(&c)
            .iter()
            .any(|e| matches!(e, Event::Evicted { .. }))
    );
    assert!(sent(&d.budget(written())).is_empty());
    assert_eq!(sent(&d.budget(replaced())), ["b"]);
}

#[test]
fn the_deletion_first_then_the_statuses_then_the_answer() {
    let mut d = chain();
    d.pod_gone(0, pod("a", "n1", "web"));
    assert!(sent(&d.budget(written())).is_empty());
    assert!(sent(&d.budget(replaced())).is_empty());
    assert_eq!(sent(&d.answer("a", Attempt::Accepted)), ["b"]);
}

#[test]
fn a_status_from_before_the_eviction_does_not_free_its_budget() {
    let mut d = chain();
    d.answer("a", Attempt::Accepted);
    // a status that does not list a was written before the eviction: a still counts as spent
    assert!(sent(&d.budget(replaced())).is_empty());
    let ack = d.core.acks_due.expect("a pending acknowledgement") - d.t0;
    assert_eq!(ack, secs(7200.0), "twice the ceiling");
}

#[test]
fn an_acknowledgement_that_never_comes_expires() {
    // a 4 s ceiling: probes at 4 s and 8 s, the acknowledgement expires at 10 s
    let mut d = Drain::new(
        DrainOptions {
            budget_retry_ceiling: secs(4.0),
            ..opts()
        },
        vec![pod("a", "n1", "web"), pod("b", "n1", "web")],
        vec![pdb("web", "web", 1, 2, 3, &[])],
    );
    assert_eq!(sent(&d.start()), ["a"]);
    d.answer("a", Attempt::Accepted);
    assert!(sent(&d.budget(replaced())).is_empty());
    let refused = || Attempt::Blocked {
        budgets: vec!["web".into()],
        cause: "The disruption budget web needs 2 healthy pods and has 2 currently".into(),
        message: "Cannot evict pod".into(),
        retry_after: None,
        multiple: false,
    };
    assert_eq!(d.wake_at(), Some(secs(4.0)));
    assert_eq!(sent(&d.tick_at(secs(4.0))), ["b"], "one probe per ceiling");
    d.answer("b", refused());
    assert_eq!(sent(&d.tick_at(secs(8.0))), ["b"], "one probe per ceiling");
    d.answer("b", refused());
    assert_eq!(d.wake_at(), Some(secs(10.0)));
    // no probe is due (the last was at 8 s): b goes because the budget is free again
    assert_eq!(sent(&d.tick_at(secs(10.0))), ["b"]);
    assert!(d.core.acks_due.is_none());
}
