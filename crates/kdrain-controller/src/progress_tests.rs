use kdrain::{Action, BudgetPlan, BudgetVerdict, Healthy, NodePlan, PodPlan, PodRef, WaitsFor};

use super::*;

fn t(secs: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn at(secs: i64, event: Event) -> Stamped {
    Stamped {
        time: t(secs),
        event,
    }
}

fn pod(name: &str) -> PodRef {
    PodRef {
        namespace: "shop".into(),
        name: name.into(),
        uid: format!("uid-{name}"),
    }
}

fn pod_plan(name: &str, action: Action) -> PodPlan {
    PodPlan {
        namespace: "shop".into(),
        name: name.into(),
        uid: format!("uid-{name}"),
        action,
        reason: "managed by ReplicaSet web".into(),
        budget: Some("web".into()),
        grace_seconds: 30,
        tier: 0,
        protected_until: None,
        placement: None,
    }
}

fn plan() -> Plan {
    Plan {
        nodes: vec![
            NodePlan {
                node: "n1".into(),
                cordoned: false,
                pods: vec![
                    pod_plan("web-1", Action::Evict),
                    pod_plan("web-2", Action::Evict),
                    pod_plan("agent-x", Action::Skip),
                ],
                errors: vec![],
                warnings: vec![],
            },
            NodePlan {
                node: "n2".into(),
                cordoned: false,
                pods: vec![pod_plan("web-3", Action::Evict)],
                errors: vec![],
                warnings: vec![],
            },
        ],
        budgets: vec![BudgetPlan {
            namespace: "shop".into(),
            name: "web".into(),
            disruptions_allowed: 1,
            current_healthy: 3,
            desired_healthy: 2,
            expected_pods: 3,
            pods: vec![
                "shop/web-1".into(),
                "shop/web-2".into(),
                "shop/web-3".into(),
            ],
            verdict: BudgetVerdict::Waits {
                reason: "allows 1 at a time".into(),
            },
            replacement_ready_seconds: Some(2.0),
        }],
        errors: vec![],
        warnings: vec!["ignoring DaemonSet-managed Pods: shop/agent-x".into()],
        worst_case_seconds: 64.2,
        capacity: None,
        waves: Vec::new(),
        waits_for_room: None,
        surges: Vec::new(),
    }
}

fn blocked(secs: i64, node: &str, name: &str, held: bool) -> Stamped {
    at(
        secs,
        Event::Blocked {
            node: node.into(),
            pod: pod(name),
            waits_for: WaitsFor::Budget,
            budget: Some("web".into()),
            healthy: Some(Healthy { needs: 2, has: 2 }),
            cause: "The disruption budget web needs 2 healthy pods and has 2 currently".into(),
            message: if held {
                "waiting for the budget to allow a disruption (no request sent)".into()
            } else {
                "Cannot evict pod as it would violate the pod's disruption budget.".into()
            },
            retry_in_seconds: 5.0,
            since: t(secs),
        },
    )
}

fn status_of(p: &Progress) -> NodeDrainStatus {
    let mut s = NodeDrainStatus::default();
    p.fill(&mut s);
    s
}

#[test]
fn a_plan_fills_totals_and_the_summary() {
    let mut p = Progress::new(&["n1".into(), "n2".into()]);
    p.observe(&at(0, Event::Planned { plan: plan() }));
    let s = status_of(&p);
    assert_eq!(s.pods_summary.as_deref(), Some("0/3"));
    assert_eq!(s.nodes_summary.as_deref(), Some("0/2"));
    assert_eq!(s.nodes[0].pods_total, 2, "the DaemonSet pod is no target");
    assert_eq!(s.nodes[0].phase, "Pending");
    let plan = s.plan.unwrap();
    assert_eq!((plan.evictions, plan.skipped), (3, 1));
    assert_eq!(plan.worst_case_seconds, 65);
    assert_eq!(plan.budgets[0].name, "shop/web");
    assert_eq!(plan.budgets[0].verdict, "Waits");
    assert_eq!(plan.budgets[0].pods, 3);
    assert_eq!(s.blocked_by, None);
}

#[test]
fn events_move_nodes_and_pods_along() {
    let mut p = Progress::new(&["n1".into(), "n2".into()]);
    p.observe(&at(0, Event::Planned { plan: plan() }));
    p.observe(&at(
        1,
        Event::Cordoned {
            node: "n1".into(),
            already: false,
            dry_run: kdrain::DryRun::None,
        },
    ));
    assert_eq!(status_of(&p).nodes[0].phase, "Cordoned");
    p.observe(&at(
        2,
        Event::EvictionSent {
            node: "n1".into(),
            pod: pod("web-1"),
            attempt: 1,
            dry_run: kdrain::DryRun::None,
        },
    ));
    p.observe(&blocked(2, "n1", "web-2", true));
    let s = status_of(&p);
    assert_eq!(s.nodes[0].phase, "Draining");
    assert_eq!(s.nodes[0].start_time, Some(Time(t(2))));
    assert_eq!(s.blockers.len(), 1);
    let b = &s.blockers[0];
    assert_eq!(b.pod, "shop/web-2");
    assert_eq!(b.cause, "Budget");
    assert_eq!(b.budget.as_deref(), Some("shop/web"));
    assert_eq!((b.needs, b.has), (Some(2), Some(2)));
    assert!(b.held_by_kdrain);
    assert_eq!(
        s.blocked_by.as_deref(),
        Some("budget shop/web needs 2 has 2 (1 pod)")
    );
    p.observe(&at(
        3,
        Event::Gone {
            node: "n1".into(),
            pod: pod("web-1"),
        },
    ));
    p.observe(&at(
        4,
        Event::Evicted {
            node: "n1".into(),
            pod: pod("web-2"),
        },
    ));
    p.observe(&at(
        5,
        Event::Gone {
            node: "n1".into(),
            pod: pod("web-2"),
        },
    ));
    p.observe(&at(
        6,
        Event::NodeDrained {
            node: "n1".into(),
            dry_run: kdrain::DryRun::None,
        },
    ));
    let s = status_of(&p);
    assert!(s.blockers.is_empty() && s.blocked_by.is_none());
    assert_eq!(s.nodes[0].phase, "Drained");
    assert_eq!((s.nodes[0].pods_gone, s.nodes[0].pods_left), (2, 0));
    assert_eq!(s.nodes[0].end_time, Some(Time(t(6))));
    assert_eq!(s.pods_summary.as_deref(), Some("2/3"));
    assert_eq!(s.nodes_summary.as_deref(), Some("1/2"));
    p.observe(&at(
        9,
        Event::NodeFailed {
            node: "n2".into(),
            error: "timed out after 5s with 1 pod left".into(),
            pending: vec![pod("web-3")],
        },
    ));
    let s = status_of(&p);
    assert_eq!(s.nodes[1].phase, "Failed");
    assert_eq!(s.nodes[1].pods_left, 1);
    assert_eq!(
        s.nodes[1].message.as_deref(),
        Some("timed out after 5s with 1 pod left")
    );
}

#[test]
fn blockers_are_capped_and_counted() {
    let nodes: Vec<String> = vec!["n1".into()];
    let mut p = Progress::new(&nodes);
    for i in 0..25 {
        p.observe(&blocked(100 - i, "n1", &format!("web-{i:02}"), false));
    }
    p.observe(&at(
        200,
        Event::Blocked {
            node: "n1".into(),
            pod: pod("cache-0"),
            waits_for: WaitsFor::SeveralBudgets,
            budget: Some("a, b".into()),
            healthy: None,
            cause: "several budgets".into(),
            message: "This pod has more than one PodDisruptionBudget".into(),
            retry_in_seconds: 5.0,
            since: t(200),
        },
    ));
    let s = status_of(&p);
    assert_eq!(s.blockers.len(), BLOCKERS_SHOWN);
    assert_eq!(s.more_blockers, Some(26 - BLOCKERS_SHOWN as u32));
    assert_eq!(s.blockers[0].pod, "shop/web-24", "longest-waiting first");
    assert!(!s.blockers[0].held_by_kdrain);
    assert_eq!(
        s.blocked_by.as_deref(),
        Some("budget shop/web needs 2 has 2 (25 pods) (+1 other cause)")
    );
    let cache = p
        .waiting()
        .into_iter()
        .find(|b| b.pod == "shop/cache-0")
        .unwrap();
    assert_eq!(cache.cause, "SeveralBudgets");
}

#[test]
fn a_resumed_drain_keeps_the_pods_gone_before() {
    let mut p = Progress::new(&["n1".into(), "n2".into()]);
    p.carry(&[NodeProgress {
        name: "n1".into(),
        phase: "Draining".into(),
        pods_total: 2,
        pods_gone: 1,
        pods_left: 1,
        start_time: Some(Time(t(-30))),
        end_time: None,
        message: None,
    }]);
    // before the new plan: the earlier total, not 1/1 (seen on the real control plane, in
    // `kubectl get nodedrains -w` right after a new leader took over)
    let s = status_of(&p);
    assert_eq!((s.nodes[0].pods_total, s.nodes[0].pods_gone), (2, 1));
    // the new plan lists only the pod left on n1
    let mut again = plan();
    again.nodes[0].pods.remove(0);
    p.observe(&at(0, Event::Planned { plan: again }));
    let s = status_of(&p);
    assert_eq!((s.nodes[0].pods_total, s.nodes[0].pods_gone), (2, 1));
    assert_eq!(s.nodes[0].start_time, Some(Time(t(-30))));
    assert_eq!(s.pods_summary.as_deref(), Some("1/3"));
}

#[test]
fn nodes_waiting_for_room_are_what_blocks_while_no_wave_drains() {
    let mut p = Progress::new(&["n1".into(), "n2".into()]);
    p.observe(&at(0, Event::Planned { plan: plan() }));
    p.observe(&at(
        1,
        Event::WaitingForRoom {
            nodes: vec!["n1".into(), "n2".into()],
            reason: "no node has room".into(),
        },
    ));
    assert_eq!(
        status_of(&p).blocked_by.as_deref(),
        Some("room for the pods of n1, n2")
    );
    p.observe(&at(
        2,
        Event::WaveStarted {
            wave: 1,
            of: 2,
            nodes: vec!["n1".into()],
            waiting_for_room: vec!["n2".into()],
        },
    ));
    assert_eq!(status_of(&p).blocked_by, None);
}
