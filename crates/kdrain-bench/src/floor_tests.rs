//! Unit tests of the floors (`floor.rs`).

use super::*;

fn pod(stop: f64, budget: Option<usize>, ready: Option<f64>) -> FloorPod {
    FloorPod {
        stop_seconds: stop,
        budget,
        replacement_ready_seconds: ready,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn no_budget_is_the_longest_stop() {
    let pods = [
        pod(1.0, None, Some(1.0)),
        pod(4.5, None, None),
        pod(2.0, None, Some(3.0)),
    ];
    assert!(close(drain_floor(&pods, &[]).unwrap(), 4.5));
}

#[test]
fn empty_drain_takes_no_time() {
    assert!(close(drain_floor(&[], &[]).unwrap(), 0.0));
}

#[test]
fn one_at_a_time_chain_matches_the_closed_form() {
    // n = 4, readiness 1 s, stop 0.5 s: (n - 1) × 1 + 0.5.
    let pods: Vec<_> = (0..4).map(|_| pod(0.5, Some(0), Some(1.0))).collect();
    let budgets = [FloorBudget {
        disruptions_allowed: 1,
    }];
    assert!(close(drain_floor(&pods, &budgets).unwrap(), 3.5));
}

#[test]
fn chain_puts_the_shortest_stop_last() {
    // Stops 3, 1, 2 with readiness 1: order 3, 2, 1 → max(0+3, 1+2, 2+1) = 3.
    let pods = [
        pod(3.0, Some(0), Some(1.0)),
        pod(1.0, Some(0), Some(1.0)),
        pod(2.0, Some(0), Some(1.0)),
    ];
    let budgets = [FloorBudget {
        disruptions_allowed: 1,
    }];
    assert!(close(drain_floor(&pods, &budgets).unwrap(), 3.0));
}

#[test]
fn wider_budget_evicts_in_waves() {
    // 30 pods, 3 allowed, readiness 1, stop 5: 10 waves → 9 × 1 + 5.
    let pods: Vec<_> = (0..30).map(|_| pod(5.0, Some(0), Some(1.0))).collect();
    let budgets = [FloorBudget {
        disruptions_allowed: 3,
    }];
    assert!(close(drain_floor(&pods, &budgets).unwrap(), 14.0));
}

#[test]
fn independent_budgets_take_the_slowest() {
    let mut pods: Vec<_> = (0..4).map(|_| pod(0.5, Some(0), Some(1.0))).collect();
    pods.extend((0..2).map(|_| pod(2.0, Some(1), Some(0.25))));
    pods.push(pod(1.0, None, None));
    let budgets = [
        FloorBudget {
            disruptions_allowed: 1,
        },
        FloorBudget {
            disruptions_allowed: 1,
        },
    ];
    // Budget 0: 3.5; budget 1: 0.25 + 2 = 2.25; free pod: 1.
    assert!(close(drain_floor(&pods, &budgets).unwrap(), 3.5));
}

#[test]
fn budget_with_no_disruptions_and_no_replacement_has_no_floor() {
    let pods = [
        pod(1.0, Some(0), None),
        pod(1.0, Some(0), None),
        pod(1.0, None, None),
    ];
    let budgets = [FloorBudget {
        disruptions_allowed: 1,
    }];
    let err = drain_floor(&pods, &budgets).unwrap_err();
    assert_eq!(err.stuck_pods, vec![1]);
}

#[test]
fn zero_disruptions_allowed_blocks_everything_in_the_budget() {
    let pods = [pod(1.0, Some(0), Some(1.0)), pod(1.0, Some(0), Some(1.0))];
    let budgets = [FloorBudget {
        disruptions_allowed: 0,
    }];
    assert_eq!(
        drain_floor(&pods, &budgets).unwrap_err().stuck_pods,
        vec![0, 1]
    );
}

#[test]
fn unknown_budget_index_is_stuck() {
    let pods = [pod(1.0, Some(3), Some(1.0))];
    assert_eq!(drain_floor(&pods, &[]).unwrap_err().stuck_pods, vec![0]);
}
fn rotation(nodes: usize, load: i64, spare_free: i64, slack: i64) -> RotationInput {
    RotationInput {
        nodes: (0..nodes)
            .map(|_| RotationNode {
                load,
                room_back: 7900,
                free_now: 7900 - load,
                alone_floor: 3.0,
            })
            .collect(),
        spare_free,
        slack,
        budget_floor: 30.0,
        reboot_seconds: 3.0,
        min_ready: 1.0,
        min_stop: 0.5,
        chains: Vec::new(),
    }
}

/// B5 (`scenarios/bench/b5-rotation.yaml`): 10 nodes each running 1 big (2 CPU, start-up
/// and stop 3 s), 2 medium (1 CPU, 2 s, two budgets), 2 small (500m, 1 s) and 2 tiny
/// (250m, start-up 1 s, stop 0.5 s), each budget allowing one; spares 23.7 CPU free.
fn b5(reboot: f64) -> RotationInput {
    let chain = |per: u32, cpu: i64, ready: f64, stop: f64| RotationChain {
        pods: per * 10,
        allowed: 1,
        cpu,
        ready,
        stop,
        per_node: vec![per; 10],
    };
    RotationInput {
        nodes: (0..10)
            .map(|_| RotationNode {
                load: 5500,
                room_back: 7900,
                free_now: 2400,
                alone_floor: 3.0,
            })
            .collect(),
        spare_free: 23_700,
        slack: 4_750,
        budget_floor: 30.0,
        reboot_seconds: reboot,
        min_ready: 1.0,
        min_stop: 0.5,
        chains: vec![
            chain(1, 2000, 3.0, 3.0),
            chain(1, 1000, 2.0, 2.0),
            chain(1, 1000, 2.0, 2.0),
            chain(2, 500, 1.0, 1.0),
            chain(2, 250, 1.0, 0.5),
        ],
    }
}

#[test]
fn b5_with_long_reboots_is_bound_by_the_chains_resuming_on_the_first_node_back() {
    // t1 = 3 + 20 = 23. 4 nodes must be back (23.7 + 3 x 7.9 < 55 - 4.75), so their 4
    // big, 4 + 4 medium, 8 small, 8 tiny less one of each (17.25 CPU) go to the spares
    // before t1, leaving 6.45 CPU. At T = 37: big needs 9 - floor(11 / 3) = 6 before t1
    // (12 CPU), the mediums 3 each, small 7, tiny 7: 23.25 <= 23.7. At T just below 37 the
    // mediums need 4 each: 25.25 > 23.7.
    let f = rotation_floor(&b5(20.0)).unwrap();
    assert!(close(f.chain_floor, 37.0), "{f:?}");
    assert!(close(f.seconds, 37.0));
    assert!(close(f.budget_floor, 30.0));
}

#[test]
fn b5_with_short_reboots_is_the_budget_floor() {
    let f = rotation_floor(&b5(3.0)).unwrap();
    assert!(f.chain_floor <= 6.0 + 3.0 + 1.5, "{f:?}");
    assert!(close(f.seconds, 30.0));
}

#[test]
fn a_pool_whose_load_fits_on_the_spares_has_no_chain_bound() {
    let mut input = b5(20.0);
    input.spare_free = 60_000;
    assert!(close(chain_floor(&input, 3.0), 0.0));
}

#[test]
fn rotation_that_fits_on_the_spares_is_the_budget_floor() {
    let f = rotation_floor(&rotation(3, 5500, 23_700, 0)).unwrap();
    assert_eq!(f.generations, 1);
    assert!(close(f.capacity_floor, 0.0));
    assert!(close(f.seconds, 30.0));
}

#[test]
fn b5_pool_needs_two_generations() {
    // 10 nodes of 5.5 CPU, 23.7 CPU on the spares, 4.75 CPU of slack: 6 can be empty
    // before any is back (7.9 × 6 ≤ 52.45), then all 10. Capacity: 3 + (3 + 1 + 0.5).
    let input = rotation(10, 5500, 23_700, 4_750);
    assert_eq!(most_empty(&input, 0), 6);
    assert_eq!(most_empty(&input, 6), 10);
    let f = rotation_floor(&input).unwrap();
    assert_eq!(f.generations, 2);
    assert!(close(f.capacity_floor, 7.5));
    assert!(close(f.seconds, 30.0));
}

#[test]
fn capacity_bound_wins_when_room_is_scarce() {
    // Full nodes (no free CPU) and one node's worth of spare room: one node per generation.
    let mut input = rotation(4, 7900, 7_900, 0);
    input.budget_floor = 5.0;
    assert_eq!(most_empty(&input, 0), 1);
    assert_eq!(most_empty(&input, 1), 2);
    let f = rotation_floor(&input).unwrap();
    assert_eq!(f.generations, 4);
    // 3 + 3 × 4.5.
    assert!(close(f.capacity_floor, 16.5));
    assert!(close(f.seconds, 16.5));
}

#[test]
fn rotation_without_room_has_no_floor() {
    let input = rotation(2, 7900, 0, 0);
    let err = rotation_floor(&input).unwrap_err();
    assert!(
        err.contains("does not fit even with 0 of its 2 nodes back"),
        "{err}"
    );
}
