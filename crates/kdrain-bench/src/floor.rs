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
//!
//! B5 (pool rotation) adds room: replacements need CPU, and drained nodes come back after a reboot.
//! [`rotation_floor`] is the largest of the budget bound above, a capacity bound (generations of
//! nodes that can be empty before the room of earlier ones is back) and a chain bound (budget
//! chains that must resume on the room of the first nodes back); its doc gives the arguments.

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

/// One node of a pool rotation (B5), CPU in millicores.
#[derive(Debug, Clone, PartialEq)]
pub struct RotationNode {
    /// CPU requested by the pods the drain removes from it.
    pub load: i64,
    /// CPU it offers replacements once it is back (allocatable minus the pods that stay on it,
    /// DaemonSet and mirror pods).
    pub room_back: i64,
    /// CPU free on it when the drain starts.
    pub free_now: i64,
    /// The budget floor of its pods alone: [`drain_floor`] over them, with every budget's
    /// disruptions for them.
    pub alone_floor: f64,
}

/// Everything the rotation floor depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct RotationInput {
    /// The pool's nodes.
    pub nodes: Vec<RotationNode>,
    /// CPU free on the schedulable nodes outside the pool (the spares) when the drain starts.
    pub spare_free: i64,
    /// CPU of replacements that may wait without room: for each budget, its disruptions allowed
    /// times the largest request among its pods; plus every pod under no budget.
    pub slack: i64,
    /// [`drain_floor`] over all the pool's pods.
    pub budget_floor: f64,
    /// Seconds a drained node takes to be patched, rebooted and uncordoned.
    pub reboot_seconds: f64,
    /// The shortest start-up time (readiness) of a replacement.
    pub min_ready: f64,
    /// The shortest stop time of a pod drained.
    pub min_stop: f64,
    /// The pool's pods per budget (for the chain bound); empty: no chain bound.
    pub chains: Vec<RotationChain>,
}

/// The pool's pods under one budget, for the chain bound (CPU in millicores).
#[derive(Debug, Clone, PartialEq)]
pub struct RotationChain {
    /// Its pods on the pool.
    pub pods: u32,
    /// Disruptions it allows at the start.
    pub allowed: u32,
    /// The smallest CPU request among them.
    pub cpu: i64,
    /// The shortest start-up (readiness) of their replacements.
    pub ready: f64,
    /// The shortest stop time among them.
    pub stop: f64,
    /// How many of them each pool node runs (same order as [`RotationInput::nodes`]).
    pub per_node: Vec<u32>,
}

/// The rotation floor and its parts.
#[derive(Debug, Clone, PartialEq)]
pub struct RotationFloor {
    /// The floor: the larger of the two bounds.
    pub seconds: f64,
    /// The budget bound ([`RotationInput::budget_floor`]).
    pub budget_floor: f64,
    /// The capacity bound: `first_empty + (generations - 1) × (reboot + min_ready + min_stop)`.
    pub capacity_floor: f64,
    /// The chain bound ([`chain_floor`]).
    pub chain_floor: f64,
    /// Generations of nodes the pool needs at least: nodes emptied before any node is back, then
    /// before the room of the first generation is usable, and so on.
    pub generations: usize,
}

/// The most pool nodes that can be empty at once when the nodes with `back` of the largest
/// rooms have returned: the `m` lightest nodes' load must fit in the spares' free CPU, the slack,
/// the room of the returned nodes and the free CPU of the `n - m` roomiest nodes still there.
fn most_empty(input: &RotationInput, back: usize) -> usize {
    let mut loads: Vec<i64> = input.nodes.iter().map(|n| n.load).collect();
    loads.sort_unstable();
    let mut rooms: Vec<i64> = input.nodes.iter().map(|n| n.room_back).collect();
    rooms.sort_unstable_by(|a, b| b.cmp(a));
    let mut frees: Vec<i64> = input.nodes.iter().map(|n| n.free_now).collect();
    frees.sort_unstable_by(|a, b| b.cmp(a));
    let returned: i64 = rooms.iter().take(back).sum();
    let n = loads.len();
    (0..=n)
        .filter(|&m| {
            let moved: i64 = loads.iter().take(m).sum();
            let staying: i64 = frees.iter().take(n - m).sum();
            moved <= input.spare_free + input.slack + returned + staying
        })
        .max()
        .unwrap_or(0)
}

/// A lower bound on the time until the last pod of a rotated pool is gone, for any tool, when a
/// node drained comes back `reboot_seconds` after it is empty (B5).
///
/// Two bounds; the floor is the larger:
/// - **budgets**: [`drain_floor`] over all the pool's pods (room ignored);
/// - **capacity**: when the pool's load cannot leave at once, nodes must come back first. At the
///   moment the last pod of a set E of emptied nodes is evicted, every budget lets at most its
///   allowed disruptions wait on replacements that are not Ready, so all but `slack` of E's load
///   runs Ready somewhere: on the spares, on pool nodes not in E (their free CPU, counted even
///   though the three tools cordon the whole pool first), or on nodes back since at least
///   `min_ready` before. A node is back `reboot_seconds` after it is empty, and the last pod of E is
///   gone `min_stop` after its eviction at the soonest. So with D = reboot + min_ready + min_stop,
///   the nodes empty by time t number at most M(nodes empty by t - D), where M(k) is
///   [`most_empty`] (fractional packing: lightest nodes first, roomiest nodes back). No node is empty
///   before `first_empty` = the smallest `alone_floor`. If G = the number of applications of M from
///   0 needed to reach every node, the last pod is gone no sooner than `first_empty + (G - 1) × D`.
///
/// Returns `Err` with a reason when the pool cannot be emptied even with every node back.
pub fn rotation_floor(input: &RotationInput) -> Result<RotationFloor, String> {
    let n = input.nodes.len();
    let mut empty = 0;
    let mut generations = 0;
    while empty < n {
        let next = most_empty(input, empty);
        if next <= empty {
            return Err(format!(
                "the pool's load does not fit even with {empty} of its {n} nodes back"
            ));
        }
        empty = next;
        generations += 1;
    }
    let first_empty = input
        .nodes
        .iter()
        .map(|n| n.alone_floor)
        .fold(f64::INFINITY, f64::min);
    let capacity_floor = if generations <= 1 {
        0.0
    } else {
        first_empty
            + (generations - 1) as f64 * (input.reboot_seconds + input.min_ready + input.min_stop)
    };
    let chain_floor = chain_floor(input, first_empty);
    Ok(RotationFloor {
        seconds: input.budget_floor.max(capacity_floor).max(chain_floor),
        budget_floor: input.budget_floor,
        capacity_floor,
        chain_floor,
        generations,
    })
}

/// The chain bound: the budget chains must resume on the room of the first nodes back.
///
/// Assumes what all three tools of B5 do: the whole pool is cordoned first, so no replacement
/// lands on a pool node before that node has been drained and is back (each pod is evicted
/// once). No node is back before `t1 = first_empty + reboot`, so before t1 replacements are
/// placed on the spares only (`spare_free`); say `P_j` of budget j's pods are.
///
/// *Tokens.* A budget allowing `a` disruptions holds `a` tokens: an eviction takes one, and it
/// comes back when the replacement is Ready, `ready` after it is placed (at the soonest), the
/// placement coming no sooner than the eviction. Tokens back before `t1 + ready` are the `a`
/// initial ones and those of the `P_j` pods placed before t1, so the other `m = n - a - P_j`
/// evictions use tokens returned from pods placed at t1 or later: the k-th late use of a token
/// is at `t1 + k × ready` at the soonest, so the last eviction is at `t1 + ceil(m / a) × ready`
/// and the drain ends `stop` later. For a drain ending at T: `P_j ≥ n - a - a × q_j(T)` with
/// `q_j(T) = floor((T - t1 - stop) / ready)`.
///
/// *Room.* Every replacement but the slack (the last `a` of each budget, pods under none) is
/// placed before the eviction that needs its token, so by `T_p = T - min(ready + stop)`. While
/// `T_p - reboot < t1`, the nodes back by T_p were emptied before any node was back: their pods'
/// replacements went to the spares, except at most `a` per budget waiting unplaced at t1. If
/// the spares and the roomiest N - 1 nodes back cannot hold the load less the slack, at least
/// N nodes were emptied so, and `P_j ≥ (budget j's pods on the N nodes with fewest) - a`.
///
/// Both together must fit on the spares: `Σ cpu_j × P_j ≤ spare_free`. The bound is the least T
/// for which they do (the conditions loosen as T grows; past `t1 + reboot + min(ready + stop)`
/// the argument says nothing and the bound stops there).
pub fn chain_floor(input: &RotationInput, first_empty: f64) -> f64 {
    if input.chains.is_empty() || input.nodes.is_empty() || !first_empty.is_finite() {
        return 0.0;
    }
    let t1 = first_empty + input.reboot_seconds;
    let lead = input
        .chains
        .iter()
        .map(|c| c.ready + c.stop)
        .fold(f64::INFINITY, f64::min);
    let limit = t1 + input.reboot_seconds + lead;
    // nodes that must be back by T_p (the roomiest first)
    let total: i64 = input.nodes.iter().map(|n| n.load).sum();
    let must = total - input.slack;
    let mut rooms: Vec<i64> = input.nodes.iter().map(|n| n.room_back).collect();
    rooms.sort_unstable_by(|a, b| b.cmp(a));
    let mut back = 0;
    let mut room = input.spare_free;
    while room < must && back < rooms.len() {
        room += rooms[back];
        back += 1;
    }
    let mut loads: Vec<i64> = input.nodes.iter().map(|n| n.load).collect();
    loads.sort_unstable();
    let emptied: i64 = loads.iter().take(back).sum();
    if room < must || emptied > input.spare_free + input.slack {
        // no drain ends before `limit` at all
        return limit;
    }
    let base: Vec<i64> = input
        .chains
        .iter()
        .map(|c| {
            let mut counts = c.per_node.clone();
            counts.sort_unstable();
            let on: u32 = counts.iter().take(back).sum();
            i64::from(on.saturating_sub(c.allowed))
        })
        .collect();
    let fits = |t: f64| -> bool {
        let used: i64 = input
            .chains
            .iter()
            .zip(&base)
            .map(|(c, &b)| {
                let q = if t >= t1 + c.stop && c.ready > 0.0 {
                    ((t - t1 - c.stop) / c.ready).floor() as i64
                } else if t >= t1 + c.stop {
                    i64::from(c.pods)
                } else {
                    0
                };
                let a = i64::from(c.allowed);
                let chain = i64::from(c.pods) - a - a * q;
                c.cpu * b.max(chain).max(0)
            })
            .sum();
        used <= input.spare_free
    };
    if fits(0.0) {
        return 0.0;
    }
    // the least T that fits, to a microsecond (fits is monotone in T)
    let (mut lo, mut hi) = (0.0, limit);
    if !fits(hi) {
        return limit;
    }
    while hi - lo > 1e-6 {
        let mid = (lo + hi) / 2.0;
        if fits(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    (hi * 1000.0).round() / 1000.0
}

#[cfg(test)]
#[path = "floor_tests.rs"]
mod tests;
