//! Unit tests of [`super`], kept in their own file so that `plan.rs` is the code alone.

use super::*;
use crate::budget::tests::{pdb, ready, with_status};
use crate::select::tests::{owned, pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

fn web(name: &str) -> Pod {
    let mut p = ready(owned(pod("default", name), "ReplicaSet", "web"), true);
    p.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    p.spec.as_mut().unwrap().termination_grace_period_seconds = Some(10);
    p
}

fn found(_: &Pod) -> DaemonSetLookup {
    DaemonSetLookup::Found
}

fn plan_of(opts: &DrainOptions, nodes: Vec<NodeInput>, pdbs: &[PodDisruptionBudget]) -> Plan {
    build(opts, &nodes, pdbs, &found, &[], jiff::Timestamp::now())
}

fn node(name: &str, pods: Vec<Pod>) -> NodeInput {
    NodeInput {
        node: name.into(),
        cordoned: false,
        pods,
    }
}

#[test]
fn budget_spent_jointly_across_nodes() {
    let b = with_status(
        pdb("web", &[("app", "web")], Some(IntOrString::Int(1)), None),
        1,
        3,
        2,
        3,
    );
    let p = plan_of(
        &DrainOptions::default(),
        vec![node("n1", vec![web("w1")]), node("n2", vec![web("w2")])],
        &[b],
    );
    assert!(p.can_complete(), "{:?}", p.errors);
    assert_eq!(p.budgets.len(), 1);
    assert_eq!(p.budgets[0].pods, vec!["default/w1", "default/w2"]);
    assert!(
        matches!(&p.budgets[0].verdict, BudgetVerdict::Waits { reason } if reason.contains("allows 1 of the 2"))
    );
    assert_eq!(p.nodes[0].pods[0].budget.as_deref(), Some("web"));
    // the pods carry no Ready transition time: readiness unknown, nothing added for it
    assert_eq!(p.budgets[0].replacement_ready_seconds, None);
    // two rounds of 10 s in one lane per node: 10 + 10 (per node) + one extra budget round
    assert_eq!(p.worst_case_seconds, 30.0);
}

/// A web pod started at `start` that became Ready `ready_after` seconds later.
fn web_ready_after(name: &str, start: jiff::Timestamp, ready_after: i64) -> Pod {
    let mut p = web(name);
    let st = p.status.as_mut().unwrap();
    st.start_time = Some(Time(start));
    st.conditions.as_mut().unwrap()[0].last_transition_time =
        Some(Time(start + jiff::SignedDuration::from_secs(ready_after)));
    p
}

#[test]
fn later_batches_wait_for_replacements_as_long_as_they_took_here() {
    let now: jiff::Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
    let start = now - jiff::SignedDuration::from_secs(3600);
    let b = with_status(
        pdb("web", &[("app", "web")], Some(IntOrString::Int(1)), None),
        1,
        3,
        2,
        3,
    );
    let pods = vec![
        web_ready_after("w1", start, 4),
        web_ready_after("w2", start, 8),
    ];
    let p = build(
        &DrainOptions::default(),
        &[node("n1", pods)],
        std::slice::from_ref(&b),
        &found,
        &[],
        now,
    );
    assert!(p.can_complete(), "{:?}", p.errors);
    // median of 4 s and 8 s
    assert_eq!(p.budgets[0].replacement_ready_seconds, Some(6.0));
    // one node: its tier takes 10 s; the budget lets 1 of 2 go, so one later batch waits
    // 6 s for the replacement and takes 10 s more: 10 + (2 - 1) * (10 + 6)
    assert_eq!(p.worst_case_seconds, 26.0);

    // nothing allowed now: both pods wait for a replacement first: 10 + 2 * (10 + 6)
    let spent = with_status(b.clone(), 0, 2, 2, 3);
    let pods = vec![
        web_ready_after("w1", start, 4),
        web_ready_after("w2", start, 8),
    ];
    let p = build(
        &DrainOptions::default(),
        &[node("n1", pods)],
        &[spent],
        &found,
        &[],
        now,
    );
    assert_eq!(p.worst_case_seconds, 42.0);

    // a budget that passes at once adds nothing, but still tells its estimate
    let roomy = with_status(b, 2, 3, 1, 3);
    let pods = vec![web_ready_after("w1", start, 3)];
    let p = build(
        &DrainOptions::default(),
        &[node("n1", pods)],
        &[roomy],
        &found,
        &[],
        now,
    );
    assert_eq!(p.budgets[0].verdict, BudgetVerdict::Passes);
    assert_eq!(p.budgets[0].replacement_ready_seconds, Some(3.0));
    assert_eq!(p.worst_case_seconds, 10.0);
}

#[test]
fn readiness_median_uses_ready_pods_with_both_times() {
    let start: jiff::Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
    let a = web_ready_after("a", start, 2);
    let b = web_ready_after("b", start, 30);
    let c = web_ready_after("c", start, 5);
    assert_eq!(median_ready_seconds([&a, &b, &c]), Some(5.0));
    // not Ready now: says nothing
    let mut unready = web_ready_after("d", start, 100);
    unready
        .status
        .as_mut()
        .unwrap()
        .conditions
        .as_mut()
        .unwrap()[0]
        .status = "False".into();
    assert_eq!(ready_after_start(&unready), None);
    // no startTime: creationTimestamp
    let mut created = web_ready_after("e", start, 7);
    created.status.as_mut().unwrap().start_time = None;
    created.metadata.creation_timestamp = Some(Time(start));
    assert_eq!(ready_after_start(&created), Some(7.0));
    // Ready before its start (clock skew): ignored
    assert_eq!(ready_after_start(&web_ready_after("f", start, -5)), None);
    // no time at all
    assert_eq!(median_ready_seconds([&web("g")]), None);
    assert_eq!(median_ready_seconds([&a, &unready, &b]), Some(16.0));
}

#[test]
fn protected_pods_wait_in_the_plan_and_its_worst_case() {
    let now: jiff::Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
    let mut p = web("w1");
    p.status.as_mut().unwrap().start_time = Some(Time(now - jiff::SignedDuration::from_secs(60)));
    p.metadata.annotations = Some([(select::DO_NOT_DISRUPT.to_string(), "5m".to_string())].into());
    let plan = build(
        &DrainOptions::default(),
        &[node("n1", vec![p.clone(), web("w2")])],
        &[],
        &found,
        &[],
        now,
    );
    assert!(plan.can_complete());
    let pp = &plan.nodes[0].pods[0];
    assert_eq!(pp.action, Action::Evict);
    assert_eq!(
        pp.reason,
        "wait until 2026-01-01T12:04:00Z (karpenter.sh/do-not-disrupt: 5m from start)"
    );
    assert_eq!(
        pp.protected_until,
        Some(now + jiff::SignedDuration::from_secs(240))
    );
    assert_eq!(plan.nodes[0].pods[1].protected_until, None);
    // 240 s of protection left, then its 10 s grace period
    assert_eq!(plan.worst_case_seconds, 250.0);
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(
        json["nodes"][0]["pods"][0]["protected_until"],
        "2026-01-01T12:04:00.000Z"
    );
    assert!(json["nodes"][0]["pods"][1].get("protected_until").is_none());

    // past the deadline: a blocker, as "true" is
    let opts = DrainOptions {
        timeout: Some(std::time::Duration::from_secs(120)),
        ..Default::default()
    };
    let plan = build(&opts, &[node("n1", vec![p])], &[], &found, &[], now);
    assert_eq!(
        plan.errors,
        vec![
            "cannot delete Pods annotated karpenter.sh/do-not-disrupt=5m (use --override-opt-outs to override): default/w1"
        ]
    );
    assert_eq!(plan.evictions(), 0);
}

#[test]
fn unsatisfiable_budgets_are_errors() {
    let b = with_status(
        pdb("web", &[("app", "web")], None, Some(IntOrString::Int(3))),
        0,
        3,
        3,
        3,
    );
    let p = plan_of(
        &DrainOptions::default(),
        vec![node("n1", vec![web("w1")])],
        &[b],
    );
    assert!(!p.can_complete());
    assert_eq!(
        p.errors,
        vec![
            "disruption budget default/web can never allow evicting default/w1: minAvailable 3 is not below its 3 expected pods; fix or delete the budget, or use --disable-eviction"
        ]
    );
    assert!(matches!(p.budgets[0].verdict, BudgetVerdict::Never { .. }));
}

#[test]
fn pod_under_two_budgets() {
    let a = with_status(
        pdb("a", &[("app", "web")], Some(IntOrString::Int(1)), None),
        1,
        3,
        2,
        3,
    );
    let b = with_status(pdb("b", &[], Some(IntOrString::Int(1)), None), 1, 3, 2, 3);
    let mut b = b;
    b.spec.as_mut().unwrap().selector = Some(Default::default());
    let p = plan_of(
        &DrainOptions::default(),
        vec![node("n1", vec![web("w1")])],
        &[a, b],
    );
    assert_eq!(p.nodes[0].pods[0].budget.as_deref(), Some("a, b"));
    assert!(
        p.errors
            .iter()
            .any(|e| e.contains("more than one disruption budget (default/a, default/b)"))
    );
    assert_eq!(p.budgets.len(), 2);
    assert!(
        p.budgets
            .iter()
            .all(|b| matches!(b.verdict, BudgetVerdict::Never { .. }))
    );
}

#[test]
fn budget_spent_by_unhealthy_pods_waits() {
    let b = with_status(
        pdb("web", &[("app", "web")], Some(IntOrString::Int(1)), None),
        0,
        2,
        2,
        3,
    );
    let p = plan_of(
        &DrainOptions::default(),
        vec![node("n1", vec![web("w1")])],
        &[b],
    );
    assert!(p.can_complete());
    assert!(
        matches!(&p.budgets[0].verdict, BudgetVerdict::Waits { reason } if reason.contains("1 of its 3 expected pods are not healthy"))
    );
}

#[test]
fn refusals_group_per_node_and_stop_the_plan() {
    let p = plan_of(
        &DrainOptions::default(),
        vec![node("n1", vec![pod("default", "bare"), web("w1")])],
        &[],
    );
    assert_eq!(
        p.errors,
        vec![
            "cannot delete cannot delete Pods that declare no controller (use --force to override): default/bare"
        ]
    );
    assert_eq!(p.nodes[0].pods[0].action, Action::Refuse);
    assert_eq!(p.nodes[0].pods[1].action, Action::Evict);
    assert_eq!(p.evictions(), 1);
}

#[test]
fn grace_override_and_lanes() {
    let opts = DrainOptions {
        grace_period: Some(3),
        parallel_nodes: 2,
        ..Default::default()
    };
    let p = plan_of(
        &opts,
        vec![
            node("n1", vec![web("w1")]),
            node("n2", vec![web("w2")]),
            node("n3", vec![web("w3")]),
        ],
        &[],
    );
    assert!(p.nodes.iter().all(|n| n.pods[0].grace_seconds == 3));
    assert_eq!(p.worst_case_seconds, 6.0);
    let opts = DrainOptions {
        disable_eviction: true,
        ..Default::default()
    };
    let p = plan_of(&opts, vec![node("n1", vec![web("w1")])], &[]);
    assert_eq!(p.nodes[0].pods[0].action, Action::Delete);
}

fn int_or_percent() -> impl proptest::strategy::Strategy<Value = Option<IntOrString>> {
    use proptest::prelude::*;
    proptest::option::of(prop_oneof![
        any::<i32>().prop_map(IntOrString::Int),
        any::<i64>().prop_map(|p| IntOrString::String(format!("{p}%"))),
        ".{0,12}".prop_map(IntOrString::String),
    ])
}

proptest::proptest! {
    /// Budgets as a hostile or broken server might send them (any numbers, any values)
    /// never make the plan panic, and whatever it says stays within the pods it was given.
    #[test]
    fn hostile_budgets_never_break_the_plan(
        mu in int_or_percent(),
        ma in int_or_percent(),
        status in proptest::option::of(proptest::array::uniform4(proptest::prelude::any::<i32>())),
        generation in proptest::prelude::any::<i64>(),
        pods in 0usize..5,
        two in proptest::prelude::any::<bool>(),
    ) {
        let mut b = pdb("web", &[("app", "web")], mu.clone(), ma);
        b.metadata.generation = Some(generation);
        if let Some([a, h, d, e]) = status {
            b = with_status(b, a, h, d, e);
        }
        let mut budgets = vec![b];
        if two {
            budgets.push(pdb("web2", &[("app", "web")], mu, None));
        }
        let pods: Vec<Pod> = (0..pods).map(|i| web(&format!("w{i}"))).collect();
        let n = pods.len();
        let p = plan_of(&DrainOptions::default(), vec![node("n1", pods)], &budgets);
        proptest::prop_assert_eq!(p.nodes[0].pods.len(), n);
        proptest::prop_assert!(p.evictions() <= n);
    }
}
