//! Unit tests of the waves ([`crate::waves`]) on synthetic nodes, pods and budgets.

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use crate::budget::tests::{pdb, with_status};
use crate::capacity_tests::{found, inputs_for, node, view, web};
use crate::options::DrainOptions;
use crate::plan::{self, Plan};
use crate::waves;

/// The plan for draining `targets` with the capacity check and the waves applied.
fn plan_for(
    opts: &DrainOptions,
    nodes: Vec<Node>,
    pods: &[Pod],
    targets: &[&str],
    pdbs: &[PodDisruptionBudget],
) -> Plan {
    let now = jiff::Timestamp::now();
    let inputs = inputs_for(pods, targets);
    let cluster = view(nodes, pods);
    let mut p = plan::build(opts, &inputs, pdbs, &found, &[], now);
    crate::fit::apply(&mut p, opts, &inputs, &cluster);
    waves::apply(&mut p, opts, &inputs, &cluster, now);
    p
}

/// Pods with a grace period of `grace` seconds.
fn graced(mut p: Pod, grace: i64) -> Pod {
    p.spec.as_mut().unwrap().termination_grace_period_seconds = Some(grace);
    p
}

fn nodes_of(p: &Plan) -> Vec<Vec<&str>> {
    p.waves
        .iter()
        .map(|w| w.nodes.iter().map(String::as_str).collect())
        .collect()
}

/// Four 4-CPU nodes to drain, each with one 1-CPU pod, and a big spare node.
fn pool(spare_cpu: &str) -> (Vec<Node>, Vec<Pod>) {
    let mut nodes = vec![node("spare", spare_cpu, json!({}))];
    let mut pods = Vec::new();
    for (i, grace) in [(1, 10), (2, 40), (3, 20), (4, 30)] {
        let n = format!("old{i}");
        nodes.push(node(&n, "4", json!({})));
        pods.push(graced(
            web("shop", &format!("app{i}"), 0, &n, "1", json!({})),
            grace,
        ));
    }
    (nodes, pods)
}

const OLD: [&str; 4] = ["old1", "old2", "old3", "old4"];

#[test]
fn when_everything_fits_the_slowest_nodes_go_together_parallel_at_a_time() {
    let (nodes, pods) = pool("8");
    let opts = DrainOptions {
        parallel_nodes: 2,
        ..Default::default()
    };
    let p = plan_for(&opts, nodes, &pods, &OLD, &[]);
    assert!(p.can_complete(), "{:?}", p.errors);
    // grace periods 40 and 30 together, then 20 and 10
    assert_eq!(nodes_of(&p), [["old2", "old4"], ["old3", "old1"]]);
    assert_eq!(p.waves[0].worst_case_seconds, 40.0);
    assert_eq!(p.waves[1].worst_case_seconds, 20.0);
    assert_eq!(p.waves[0].replacements, 2);
    assert_eq!(p.worst_case_seconds, 60.0);
    // one wave when --parallel covers every node
    let opts = DrainOptions {
        parallel_nodes: 10,
        ..Default::default()
    };
    let (nodes, pods) = pool("8");
    let p = plan_for(&opts, nodes, &pods, &OLD, &[]);
    assert_eq!(nodes_of(&p), [["old2", "old4", "old3", "old1"]]);
    assert_eq!(p.worst_case_seconds, 40.0);
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["waves"][0]["worst_case_seconds"], 40.0);
    assert_eq!(json["waves"][0]["nodes"][0], "old2");
}

#[test]
fn no_waves_for_one_node_or_when_capacity_is_ignored() {
    let (nodes, pods) = pool("8");
    let p = plan_for(&DrainOptions::default(), nodes, &pods, &["old1"], &[]);
    assert!(p.waves.is_empty());
    assert!(serde_json::to_value(&p).unwrap().get("waves").is_none());
    let (nodes, pods) = pool("2");
    let opts = DrainOptions {
        parallel_nodes: 4,
        ignore_capacity: true,
        ..Default::default()
    };
    let p = plan_for(&opts, nodes, &pods, &OLD, &[]);
    assert!(p.waves.is_empty());
    assert!(p.can_complete(), "{:?}", p.errors);
}

#[test]
fn nodes_whose_replacements_find_no_room_are_left_out_and_named() {
    // 2.5 CPU on the spare: two replacements fit (the capacity check placed app1's and
    // app2's), then nothing more
    let (nodes, pods) = pool("2500m");
    let opts = DrainOptions {
        parallel_nodes: 10,
        ..Default::default()
    };
    let p = plan_for(&opts, nodes, &pods, &OLD, &[]);
    assert_eq!(nodes_of(&p), [["old2", "old1"]]);
    assert!(p.short_of_room());
    assert!(
        p.errors.contains(
            &"no room for the replacements of old4, old3 after the others: the replacements of 2 nodes fit (1 wave); add capacity, or drain only the nodes that fit"
                .to_string()
        ),
        "{:?}",
        p.errors
    );
    // nothing fits at all
    let (nodes, pods) = pool("500m");
    let p = plan_for(&opts, nodes, &pods, &OLD, &[]);
    assert!(p.waves.is_empty());
    assert!(p.errors.iter().any(|e| e.starts_with(
        "no room for the replacements of old2, old4, old3, old1 after the others: no node's replacements fit;"
    )));
}

#[test]
fn a_node_that_does_not_fit_does_not_stop_smaller_ones_after_it() {
    // old2's pod needs 4 CPU: with 3 CPU on the spare, it is left out and the others fit
    let (nodes, mut pods) = pool("3");
    pods[1] = graced(web("shop", "big", 0, "old2", "4", json!({})), 40);
    let opts = DrainOptions {
        parallel_nodes: 2,
        ..Default::default()
    };
    let p = plan_for(&opts, nodes, &pods, &OLD, &[]);
    assert_eq!(nodes_of(&p), [vec!["old4", "old3"], vec!["old1"]]);
    assert!(
        p.errors
            .iter()
            .any(|e| e.starts_with("no room for the replacements of old2 after the others: the replacements of 3 nodes fit (2 waves)")),
        "{:?}",
        p.errors
    );
}

#[test]
fn a_wave_waits_for_its_budgets_later_batches() {
    // one budget over app pods on every node, allowing 1 at a time: each wave's later batches
    // wait for a replacement (readiness unknown here: their grace period only)
    let (nodes, mut pods) = pool("8");
    for (i, p) in pods.iter_mut().enumerate() {
        *p = graced(
            web(
                "default",
                "web",
                i,
                p.spec.as_ref().unwrap().node_name.as_deref().unwrap(),
                "1",
                json!({}),
            ),
            10,
        );
    }
    let b = with_status(
        pdb("web", &[("app", "web")], Some(IntOrString::Int(1)), None),
        1,
        4,
        3,
        4,
    );
    let opts = DrainOptions {
        parallel_nodes: 2,
        ..Default::default()
    };
    let p = plan_for(&opts, nodes, &pods, &OLD, &[b]);
    assert!(p.can_complete(), "{:?}", p.errors);
    assert_eq!(p.waves.len(), 2);
    // each wave: 10 s for its nodes, then one more batch of 10 s
    assert_eq!(p.waves[0].worst_case_seconds, 20.0);
    assert_eq!(p.worst_case_seconds, 40.0);
}

fn waiting_opts(k: usize) -> DrainOptions {
    DrainOptions {
        parallel_nodes: k,
        wait_for_capacity: true,
        ..Default::default()
    }
}

#[test]
fn with_wait_for_capacity_the_nodes_without_room_wait_instead_of_refusing() {
    // 2.5 CPU on the spare: old2's and old1's replacements fit, old4's and old3's wait
    let (nodes, pods) = pool("2500m");
    let p = plan_for(&waiting_opts(10), nodes, &pods, &OLD, &[]);
    assert!(p.can_complete(), "{:?}", p.errors);
    assert_eq!(nodes_of(&p), [["old2", "old1"]]);
    let w = p.waits_for_room.as_ref().expect("nodes wait");
    assert_eq!(w.nodes, ["old4", "old3"]);
    assert_eq!(w.replacements, 2);
    assert_eq!(w.needs, "2 CPU");
    // the capacity lines are warnings that say so
    assert!(
        p.warnings
            .iter()
            .any(|l| l.ends_with("(the nodes wait for room: --wait-for-capacity)")),
        "{:?}",
        p.warnings
    );
    // a shortage that does not refuse: another error would not be taken for one (exit 7)
    assert!(!p.short_of_room());
    // the worst case is the waves' that fit now
    assert_eq!(p.worst_case_seconds, 40.0);
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["waits_for_room"]["nodes"][1], "old3");
    // without the flag, the same plan is refused and nothing waits
    let (nodes, pods) = pool("2500m");
    let opts = DrainOptions {
        parallel_nodes: 10,
        ..Default::default()
    };
    let p = plan_for(&opts, nodes, &pods, &OLD, &[]);
    assert!(!p.can_complete());
    assert!(p.waits_for_room.is_none());
    assert!(
        serde_json::to_value(&p)
            .unwrap()
            .get("waits_for_room")
            .is_none()
    );
}

#[test]
fn one_node_without_room_waits_too_and_ignore_capacity_wins() {
    // the spare and old1 alone
    let (mut nodes, mut pods) = pool("500m");
    nodes.truncate(2);
    pods.truncate(1);
    let p = plan_for(&waiting_opts(1), nodes, &pods, &["old1"], &[]);
    assert!(p.can_complete(), "{:?}", p.errors);
    assert!(p.waves.is_empty());
    assert_eq!(p.waits_for_room.unwrap().nodes, ["old1"]);
    let (nodes, pods) = pool("500m");
    let opts = DrainOptions {
        ignore_capacity: true,
        ..waiting_opts(4)
    };
    let p = plan_for(&opts, nodes, &pods, &OLD, &[]);
    assert!(p.waits_for_room.is_none() && p.waves.is_empty());
}

#[test]
fn a_budget_whose_replacements_wait_for_room_waits_instead_of_never_passing() {
    // one budget over a pod on each node allowing 1; the spare takes 1 replacement only
    let (nodes, mut pods) = pool("1500m");
    for (i, p) in pods.iter_mut().enumerate() {
        let node = p.spec.as_ref().unwrap().node_name.clone().unwrap();
        *p = web("default", "web", i, &node, "1", json!({}));
    }
    let b = with_status(
        pdb("web", &[("app", "web")], Some(IntOrString::Int(1)), None),
        1,
        4,
        3,
        4,
    );
    let p = plan_for(
        &waiting_opts(4),
        nodes,
        &pods,
        &OLD,
        std::slice::from_ref(&b),
    );
    assert!(p.can_complete(), "{:?}", p.errors);
    assert!(
        matches!(&p.budgets[0].verdict, plan::BudgetVerdict::Waits { reason } if reason.ends_with("find no room now: their nodes wait for room")),
        "{:?}",
        p.budgets[0].verdict
    );
    let (nodes, _) = pool("1500m");
    let p = plan_for(&DrainOptions::default(), nodes, &pods, &OLD, &[b]);
    assert!(matches!(
        &p.budgets[0].verdict,
        plan::BudgetVerdict::Never { .. }
    ));
}

/// The pods of `node` among `pods`.
fn on(pods: &[Pod], node: &str) -> Vec<Pod> {
    pods.iter()
        .filter(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some(node))
        .cloned()
        .collect()
}

#[test]
fn fitting_now_counts_drained_targets_made_schedulable_again_and_keeps_the_others_closed() {
    // old1 was drained (its pod's replacement is on the spare, now full) and is schedulable
    // again; old2, old3 wait; each needs 1 CPU, old1 has 4
    let (mut nodes, mut pods) = pool("1");
    pods.retain(|p| p.spec.as_ref().unwrap().node_name.as_deref() != Some("old1"));
    pods.push(web("shop", "app1", 9, "spare", "1", json!({})));
    let view_of = |nodes: Vec<Node>, pods: &[Pod]| view(nodes, pods);
    let candidates = vec![
        ("old2".to_string(), on(&pods, "old2")),
        ("old3".to_string(), on(&pods, "old3")),
    ];
    let closed: std::collections::BTreeSet<String> =
        ["old2", "old3", "old4"].map(String::from).into();
    let v = view_of(nodes.clone(), &pods);
    assert_eq!(
        waves::fitting_now(&v, &closed, &[], &candidates, 10).unwrap(),
        ["old2", "old3"]
    );
    // at most k
    assert_eq!(
        waves::fitting_now(&v, &closed, &[], &candidates, 1).unwrap(),
        ["old2"]
    );
    // old1 still cordoned: no room anywhere
    nodes[1] = node("old1", "4", json!({"spec": {"unschedulable": true}}));
    let v = view_of(nodes.clone(), &pods);
    assert!(
        waves::fitting_now(&v, &closed, &[], &candidates, 10)
            .unwrap()
            .is_empty()
    );
    // schedulable but not Ready: no room either
    nodes[1] = node(
        "old1",
        "4",
        json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
    );
    let v = view_of(nodes.clone(), &pods);
    assert!(
        waves::fitting_now(&v, &closed, &[], &candidates, 10)
            .unwrap()
            .is_empty()
    );
    // a target not drained yet stays closed even when schedulable
    nodes[1] = node("old1", "4", json!({}));
    let mut closed_too = closed.clone();
    closed_too.insert("old1".into());
    let v = view_of(nodes.clone(), &pods);
    assert!(
        waves::fitting_now(&v, &closed_too, &[], &candidates, 10)
            .unwrap()
            .is_empty()
    );
    // pods not bound yet take their room first: 3 CPU pending leave room for one more
    let mut v = view_of(nodes.clone(), &pods);
    let mut pending = web("shop", "other", 0, "x", "3", json!({}));
    pending.spec.as_mut().unwrap().node_name = None;
    v.pending.push(pending);
    assert_eq!(
        waves::fitting_now(&v, &closed, &[], &candidates, 10).unwrap(),
        ["old2"]
    );
}

#[test]
fn fitting_now_keeps_room_for_the_replacements_still_to_come_of_the_nodes_draining_now() {
    // old1 is back with 4 CPU free; old4 is being drained and has not evicted its 3-CPU pod
    // yet: its replacement will need that room, so only one of old2, old3 (1 CPU each) starts
    let (nodes, mut pods) = pool("1");
    pods.retain(|p| p.spec.as_ref().unwrap().node_name.as_deref() != Some("old1"));
    pods.push(web("shop", "app1", 9, "spare", "1", json!({})));
    let draining = web("shop", "big", 0, "old4", "3", json!({}));
    pods.push(draining.clone());
    let candidates = vec![
        ("old2".to_string(), on(&pods, "old2")),
        ("old3".to_string(), on(&pods, "old3")),
    ];
    let closed: std::collections::BTreeSet<String> =
        ["old2", "old3", "old4"].map(String::from).into();
    let v = view(nodes, &pods);
    assert_eq!(
        waves::fitting_now(&v, &closed, &[], &candidates, 10).unwrap(),
        ["old2", "old3"],
        "without the reservation both fit"
    );
    assert_eq!(
        waves::fitting_now(&v, &closed, &[draining], &candidates, 10).unwrap(),
        ["old2"]
    );
}

#[test]
fn fitting_now_starts_a_node_whose_replacements_fit_packed() {
    // Two open nodes with 2 CPU each; old2 leaves a 2-CPU pod and two 1-CPU pods. Packed
    // largest first they fit (2 on one node, 1 + 1 on the other): it starts. A scheduler that
    // spreads could put the 1-CPU pods on both nodes first; each eviction is admitted against
    // the room then, the larger pods' room kept (admissible below), so none is left Pending.
    let nodes = vec![
        node("a", "2", json!({})),
        node("b", "2", json!({})),
        node("old2", "8", json!({})),
    ];
    let mut pods = vec![web("shop", "big", 0, "old2", "2", json!({}))];
    pods.push(web("shop", "one", 0, "old2", "1", json!({})));
    pods.push(web("shop", "one", 1, "old2", "1", json!({})));
    let closed: std::collections::BTreeSet<String> = ["old2".to_string()].into();
    let candidates = vec![("old2".to_string(), pods.clone())];
    let v = view(nodes.clone(), &pods);
    assert_eq!(
        waves::fitting_now(&v, &closed, &[], &candidates, 10).unwrap(),
        ["old2"]
    );
    // with 1.5 CPU on b, 3.5 CPU in all: it waits
    let mut less = nodes;
    less[1] = node("b", "1500m", json!({}));
    let v = view(less, &pods);
    assert!(
        waves::fitting_now(&v, &closed, &[], &candidates, 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_plan_packs_a_node_with_wait_for_capacity_and_spreads_it_without() {
    // a and b have 2 CPU each; old1 leaves 2 + 1 + 1 CPU, old2 3 CPU (no room for it now)
    let nodes = vec![
        node("a", "2", json!({})),
        node("b", "2", json!({})),
        node("old1", "8", json!({})),
        node("old2", "8", json!({})),
    ];
    let pods = vec![
        graced(web("shop", "big", 0, "old1", "2", json!({})), 40),
        web("shop", "one", 0, "old1", "1", json!({})),
        web("shop", "one", 1, "old1", "1", json!({})),
        web("shop", "huge", 0, "old2", "3", json!({})),
    ];
    // without the flag nothing admits the evictions one by one: old1's replacements must fit
    // however a spreading scheduler cuts the room up, and they do not
    let opts = DrainOptions {
        parallel_nodes: 10,
        ..Default::default()
    };
    let p = plan_for(&opts, nodes.clone(), &pods, &["old1", "old2"], &[]);
    assert!(p.waves.is_empty(), "{:?}", p.waves);
    assert!(!p.can_complete());
    // with it, each eviction is admitted against the room: packed, old1 fits and goes first
    let p = plan_for(&waiting_opts(10), nodes, &pods, &["old1", "old2"], &[]);
    assert_eq!(nodes_of(&p), [["old1"]]);
    assert_eq!(p.waits_for_room.as_ref().expect("waits").nodes, ["old2"]);
}

#[test]
fn admissible_keeps_room_for_the_larger_pods_still_to_come() {
    // a and b have 2 CPU free each; old1 (draining) leaves a 2-CPU pod its budget holds back and
    // two 1-CPU pods; old2 (draining too) a 2-CPU pod. Evicted now, the 1-CPU pods could land
    // one on a and one on b, and neither 2-CPU pod would find a node.
    let nodes = vec![
        node("a", "2", json!({})),
        node("b", "2", json!({})),
        node("old1", "8", json!({})),
        node("old2", "8", json!({})),
    ];
    let big1 = web("shop", "big", 0, "old1", "2", json!({}));
    let big2 = web("shop", "big", 1, "old2", "2", json!({}));
    let one = web("shop", "one", 0, "old1", "1", json!({}));
    let one_more = web("shop", "one", 1, "old1", "1", json!({}));
    let pods = vec![big1.clone(), big2.clone(), one.clone(), one_more.clone()];
    let closed: std::collections::BTreeSet<String> = ["old1", "old2"].map(String::from).into();
    let v = view(nodes.clone(), &pods);
    // both big pods still to come: the 1-CPU pods wait
    let asked = [one.clone(), one_more.clone()];
    let coming = [big1.clone(), big2.clone()];
    assert!(
        waves::admissible(&v, &closed, &[], &coming, &asked)
            .unwrap()
            .is_empty()
    );
    // the big pods go first, whenever their budget lets them
    assert_eq!(
        waves::admissible(
            &v,
            &closed,
            &[],
            std::slice::from_ref(&one),
            std::slice::from_ref(&big1)
        )
        .unwrap(),
        [0]
    );
    // big1 evicted a moment ago (its replacement may not show yet), big2 still to come: the
    // 1-CPU pods wait still
    assert!(
        waves::admissible(
            &v,
            &closed,
            std::slice::from_ref(&big1),
            std::slice::from_ref(&big2),
            &asked
        )
        .unwrap()
        .is_empty()
    );
    // both big replacements on a and b: no room for any 1-CPU pod
    let mut placed = pods.clone();
    placed.push(web("shop", "big", 2, "a", "2", json!({})));
    placed.push(web("shop", "big", 3, "b", "2", json!({})));
    let v = view(nodes.clone(), &placed);
    assert!(
        waves::admissible(&v, &closed, &[], &[], &asked)
            .unwrap()
            .is_empty()
    );
    // a third node with 1.5 CPU free: one of them goes (largest first, then in order)
    let mut more = nodes;
    more.push(node("c", "1500m", json!({})));
    let v = view(more, &placed);
    assert_eq!(
        waves::admissible(&v, &closed, &[], &[], &asked).unwrap(),
        [0]
    );
    // a pod bound to no node yet takes its room first
    let mut v = v;
    let mut pending = web("shop", "other", 0, "x", "1", json!({}));
    pending.spec.as_mut().unwrap().node_name = None;
    v.pending.push(pending);
    assert!(
        waves::admissible(&v, &closed, &[], &[], &asked)
            .unwrap()
            .is_empty()
    );
}
