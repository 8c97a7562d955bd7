//! The physical floor of a drain: the shortest time any tool could possibly take, given only what the
//! workloads impose (how long each pod takes to stop, how many disruptions each budget allows, and how
//! long a replacement takes to become Ready). Pure functions, no I/O.
//!
//! Model (the one kubesim implements): an eviction is accepted when the pod's budget has a disruption
//! left; the evicted pod stops counting as healthy at once, and its replacement is created at once and
//! becomes Ready `ready_seconds` later, giving the budget its disruption back. The pod itself is gone
//! `stop_seconds` after the eviction. Pods without a budget can all go at time zero. A pod under two
//! budgets cannot be evicted at all (the API server answers 500), so the model gives each pod at most
//! one budget; budgets are therefore independent of each other.
//!
//! Within one budget the simulation evicts the pods with the longest stop time first, which is optimal
//! when every pod of the budget has the same replacement readiness time (an exchange argument: the
//! evictions happen in fixed waves, and the longest stops belong in the earliest waves). With mixed
//! readiness times it is a good bound, not a proven minimum.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One pod that the drain must remove.
#[derive(Debug, Clone, PartialEq)]
pub struct FloorPod {
    /// Seconds from the eviction until the pod is gone (its app's stop time, capped by its grace period).
    pub stop_seconds: f64,
    /// Index into the budget list, or `None` when no budget covers the pod.
    pub budget: Option<usize>,
    /// Seconds until the replacement of this pod is Ready, or `None` when nothing replaces it (bare pod,
    /// or no room to schedule it): the budget then never gets this disruption back.
    pub replacement_ready_seconds: Option<f64>,
}

/// One disruption budget, as it stands when the drain starts.
#[derive(Debug, Clone, PartialEq)]
pub struct FloorBudget {
    /// `status.disruptionsAllowed` at the start: evictions the budget accepts before any replacement is Ready.
    pub disruptions_allowed: u32,
}

/// Why no floor exists: some pod can never be evicted.
#[derive(Debug, Clone, PartialEq)]
pub struct NoFloor {
    /// Pods (by index in the input) that the budgets can never let go.
    pub stuck_pods: Vec<usize>,
}

/// Seconds to a heap-friendly integer (microseconds), so the heap needs no float ordering.
fn to_micros(seconds: f64) -> u64 {
    (seconds.max(0.0) * 1_000_000.0).round() as u64
}

fn to_seconds(micros: u64) -> f64 {
    micros as f64 / 1_000_000.0
}

/// The earliest moment the last pod can be gone, in seconds after the drain starts.
///
/// Returns `Err(NoFloor)` when a budget can never let some pod go (no disruptions left and no
/// replacement that would give one back).
pub fn drain_floor(pods: &[FloorPod], budgets: &[FloorBudget]) -> Result<f64, NoFloor> {
    let mut finish = 0_u64;
    let mut stuck = Vec::new();
    // Pods without a budget all go at time zero.
    for pod in pods.iter().filter(|p| p.budget.is_none()) {
        finish = finish.max(to_micros(pod.stop_seconds));
    }
    for (index, budget) in budgets.iter().enumerate() {
        let mut members: Vec<usize> = (0..pods.len())
            .filter(|&i| pods[i].budget == Some(index))
            .collect();
        // Longest stop first; ties by index so the result is deterministic.
        members.sort_by(|&a, &b| {
            pods[b]
                .stop_seconds
                .total_cmp(&pods[a].stop_seconds)
                .then(a.cmp(&b))
        });
        // Moments (µs) at which a disruption becomes available.
        let mut free: BinaryHeap<Reverse<u64>> = (0..budget.disruptions_allowed)
            .map(|_| Reverse(0))
            .collect();
        for i in members {
            let Some(Reverse(at)) = free.pop() else {
                stuck.push(i);
                continue;
            };
            finish = finish.max(at + to_micros(pods[i].stop_seconds));
            if let Some(ready) = pods[i].replacement_ready_seconds {
                free.push(Reverse(at + to_micros(ready)));
            }
        }
    }
    // Pods pointing at a budget that does not exist can never be judged; treat them as stuck too.
    for (i, pod) in pods.iter().enumerate() {
        if pod.budget.is_some_and(|b| b >= budgets.len()) {
            stuck.push(i);
        }
    }
    if stuck.is_empty() {
        Ok(to_seconds(finish))
    } else {
        stuck.sort_unstable();
        Err(NoFloor { stuck_pods: stuck })
    }
}

#[cfg(test)]
mod tests {
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
}
