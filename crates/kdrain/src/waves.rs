//! Which nodes drain together. With several nodes, the plan splits them into waves of at most
//! `parallel_nodes`: the nodes of a wave start together, and the next wave starts when every
//! node of the one before has ended. Every target node is cordoned before the first eviction,
//! so a replacement only ever lands on a node that stays (never on a node drained later, which
//! would evict it a second time), and the room the replacements find only shrinks from wave to
//! wave: a wave's replacements are placed ([`crate::placement`], largest first) on the nodes
//! that stay schedulable, after the replacements of every wave before it.
//!
//! A node joins the current wave when all its replacements fit after those already placed,
//! packed largest first and, unless each eviction will be admitted against the room
//! (`wait_for_capacity`, [`admissible`]), also placed smallest first where the most CPU is free
//! (as a spreading scheduler could cut the room up, [`fits_both`]); a
//! node whose replacements do not fit is left out of the waves and named (`no room`), so no
//! budget of a wave ever waits for a replacement that cannot be placed, and the plan says which
//! nodes could be drained now. Such a plan is refused (exit 7) unless capacity is ignored; with
//! `ignore_capacity` no waves are planned and the nodes run `parallel_nodes` at a time, as told.
//!
//! With `wait_for_capacity` the nodes left out are not a refusal: they wait for room
//! ([`Plan::waits_for_room`]). Spare capacity may come back while the drain runs (typically an
//! operator reboots each drained node and makes it schedulable again), so whenever room may
//! have come back (a node became schedulable and Ready, a node ended) the drain reads the nodes
//! and pods again and [`fitting_now`] picks, on that fresh view, the nodes whose replacements
//! fit now (packed), after the replacements still to come of the nodes draining: they start at
//! once, beside the nodes still draining (at most `parallel_nodes` running). Drained targets
//! that are schedulable again count as room; targets not drained yet stay closed. Then each
//! of their evictions is admitted against the room at that moment ([`admissible`]): a
//! replacement that would find no node waits, its pod not evicted, instead of staying Pending.
//!
//! Each wave gets its worst-case time: its slowest node ([`plan::node_seconds`]) plus, for each
//! budget that lets the wave's pods go in batches, every later batch's grace period and the
//! time replacements took to become ready here. The plan's worst case is the waves' sum.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use k8s_openapi::api::core::v1::Pod;

use crate::capacity::{self, ClusterView};
use crate::options::DrainOptions;
use crate::placement::{self, Engine};
use crate::plan::{self, Action, BudgetVerdict, NodeInput, Plan, RoomWait};
use crate::resident::Uid;

pub use crate::plan::Wave;

/// The waves, and the nodes whose replacements find no room after them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Waves {
    /// In order.
    pub waves: Vec<Vec<String>>,
    /// Nodes left out: their replacements do not fit (in plan order).
    pub no_room: Vec<String>,
}

/// The replacements each target node needs: its pods to evict or delete that an owner recreates.
fn replaced_per_node<'a>(plan: &Plan, inputs: &'a [NodeInput]) -> Vec<Vec<&'a Pod>> {
    plan.nodes
        .iter()
        .zip(inputs)
        .map(|(np, input)| {
            np.pods
                .iter()
                .zip(&input.pods)
                .filter(|(pp, pod)| {
                    matches!(pp.action, Action::Evict | Action::Delete)
                        && capacity::is_replaced(pod)
                })
                .map(|(_, pod)| pod)
                .collect()
        })
        .collect()
}

/// Splits the nodes into waves of at most `k`: a node joins when its replacements fit after
/// the replacements of the nodes already in waves; `engine` is the cluster with every target
/// closed and every leaving pod gone. `admitted`: each eviction will be admitted against the
/// room ([`admissible`], `wait_for_capacity`), so the replacements need only fit packed
/// largest first; otherwise also placed as a spreading scheduler could ([`fits_both`]). Pure.
pub fn split(engine: &Engine, replaced: &[(String, Vec<&Pod>)], k: usize, admitted: bool) -> Waves {
    let k = k.max(1);
    let mut working = engine.clone();
    let mut spread = engine.clone();
    let mut out = Waves::default();
    let mut current: Vec<String> = Vec::new();
    for (node, pods) in replaced {
        let mut order: Vec<&Pod> = pods.clone();
        order.sort_by_key(|p| (placement::size_key(p), capacity::placement_key(p)));
        let (mut trial, mut spread_trial) = (working.clone(), spread.clone());
        let fits = if admitted {
            fits_packed(&mut trial, &order)
        } else {
            fits_both(&mut trial, &mut spread_trial, &order)
        };
        if !fits {
            out.no_room.push(node.clone());
            continue;
        }
        working = trial;
        spread = spread_trial;
        current.push(node.clone());
        if current.len() == k {
            out.waves.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.waves.push(current);
    }
    out
}

/// Places `order` (largest first) packed on `packed`, and smallest first on the node with the
/// most CPU free on `spread`; true when every pod found a node on both. The scheduler places
/// replacements one by one as they come, each on the node it scores best (spreading), not
/// packed: placed smallest first that way the room is cut up the most, so pods that fit both
/// ways fit whatever the order they come in (a budget-held large pod coming last).
fn fits_both(packed: &mut Engine, spread: &mut Engine, order: &[&Pod]) -> bool {
    fits_packed(packed, order)
        && order
            .iter()
            .rev()
            .all(|p| spread.place_spread(p).is_ok_and(|o| o.node.is_some()))
}

/// Places `order` (largest first) packed on `packed`; true when every pod found a node.
fn fits_packed(packed: &mut Engine, order: &[&Pod]) -> bool {
    order
        .iter()
        .all(|p| packed.place(p).is_ok_and(|o| o.node.is_some()))
}

/// Worst-case time of a wave: its slowest node, plus for each budget that lets the wave's pods
/// go in batches (it allows fewer than the wave needs), each later batch's grace period and the
/// replacements' readiness time here (a budget that allows nothing now waits before each pod).
pub(crate) fn wave_seconds(plan: &Plan, nodes: &[String], now: jiff::Timestamp) -> f64 {
    let in_wave: Vec<&plan::NodePlan> = plan
        .nodes
        .iter()
        .filter(|n| nodes.contains(&n.node))
        .collect();
    let slowest = in_wave
        .iter()
        .map(|n| plan::node_seconds(n, now))
        .fold(0.0, f64::max);
    let mut grace: BTreeMap<String, i64> = BTreeMap::new();
    for pp in in_wave.iter().flat_map(|n| &n.pods) {
        let key = format!("{}/{}", pp.namespace, pp.name);
        grace.insert(key, pp.grace_seconds);
    }
    let mut extra = 0.0;
    for b in &plan.budgets {
        if !matches!(b.verdict, BudgetVerdict::Waits { .. }) {
            continue;
        }
        let mine: Vec<i64> = b
            .pods
            .iter()
            .filter_map(|p| grace.get(p).copied())
            .collect();
        let needed = mine.len() as i32;
        let at_once = b.disruptions_allowed.max(0).min(needed);
        if needed == 0 || at_once == needed {
            continue;
        }
        let waits = if at_once > 0 {
            (f64::from(needed) / f64::from(at_once)).ceil() - 1.0
        } else {
            f64::from(needed)
        };
        let g = mine.iter().copied().max().unwrap_or(0) as f64;
        extra += waits * (g + b.replacement_ready_seconds.unwrap_or(0.0));
    }
    slowest + extra
}

/// Adds the waves to a plan built from `inputs` (with the capacity check already applied from
/// `view`): nothing for one node or with `ignore_capacity`. The slowest nodes go first. When
/// every replacement fits, the nodes go `parallel_nodes` at a time; otherwise each node's replacements are
/// placed after the earlier waves' and the nodes that find no room are named in a plan error.
/// The plan's worst case becomes the sum of the waves'.
pub fn apply(
    plan: &mut Plan,
    opts: &DrainOptions,
    inputs: &[NodeInput],
    view: &ClusterView,
    now: jiff::Timestamp,
) {
    if opts.ignore_capacity {
        return;
    }
    let Some(cap) = &plan.capacity else {
        return;
    };
    let short = cap.short().next().is_some() || !cap.errors.is_empty();
    // one node has no waves, unless it waits for room
    if plan.nodes.len() < 2 && !(opts.wait_for_capacity && short) {
        return;
    }
    let k = opts.parallel_nodes.max(1);
    // Slowest nodes first, so that nodes of about the same length wait for one another; when
    // not everything fits, first the nodes whose replacements all found a node in the capacity
    // check (so that the waves and its lines name the same workloads).
    let mut order: Vec<usize> = (0..plan.nodes.len()).collect();
    let secs: Vec<f64> = plan
        .nodes
        .iter()
        .map(|n| plan::node_seconds(n, now))
        .collect();
    let placed: Vec<bool> = plan
        .nodes
        .iter()
        .map(|n| {
            n.pods.iter().all(|p| {
                p.placement
                    .as_deref()
                    .is_none_or(|t| !t.starts_with("no room"))
            })
        })
        .collect();
    order.sort_by(|&a, &b| placed[b].cmp(&placed[a]).then(secs[b].total_cmp(&secs[a])));
    let all = replaced_per_node(plan, inputs);
    let names: Vec<String> = order.iter().map(|&i| plan.nodes[i].node.clone()).collect();
    let replaced: Vec<Vec<&Pod>> = order.iter().map(|&i| all[i].clone()).collect();
    let split_result = if !short {
        Waves {
            waves: names.chunks(k).map(<[String]>::to_vec).collect(),
            no_room: Vec::new(),
        }
    } else {
        let targets: BTreeSet<String> = names.iter().cloned().collect();
        let leaving: HashSet<Uid> = plan
            .nodes
            .iter()
            .flat_map(|n| &n.pods)
            .filter(|p| matches!(p.action, Action::Evict | Action::Delete))
            .map(|p| Uid::from(p.uid.as_str()))
            .collect();
        let Ok(engine) = Engine::sharing(
            &view.nodes,
            view.residents.clone(),
            |r| !leaving.contains(&r.uid),
            &targets,
        ) else {
            // an allocatable that does not parse is already a plan error
            return;
        };
        let per_node: Vec<(String, Vec<&Pod>)> = names.iter().cloned().zip(replaced).collect();
        split(&engine, &per_node, k, opts.wait_for_capacity)
    };
    let counts: BTreeMap<&String, usize> = plan
        .nodes
        .iter()
        .zip(&all)
        .map(|(n, r)| (&n.node, r.len()))
        .collect();
    let waves: Vec<Wave> = split_result
        .waves
        .iter()
        .map(|nodes| Wave {
            replacements: nodes.iter().map(|n| counts[n]).sum(),
            worst_case_seconds: wave_seconds(plan, nodes, now),
            nodes: nodes.clone(),
        })
        .collect();
    if !split_result.no_room.is_empty() && opts.wait_for_capacity {
        let waiting: Vec<Vec<&Pod>> = split_result
            .no_room
            .iter()
            .filter_map(|n| plan.nodes.iter().position(|p| &p.node == n))
            .map(|i| all[i].clone())
            .collect();
        let pods: Vec<&Pod> = waiting.iter().flatten().copied().collect();
        plan.waits_for_room = Some(Box::new(RoomWait {
            nodes: split_result.no_room.clone(),
            replacements: pods.len(),
            needs: needs(&pods),
        }));
    } else if !split_result.no_room.is_empty() {
        let could = if waves.is_empty() {
            "no node's replacements fit".to_string()
        } else {
            format!(
                "the replacements of {} fit ({})",
                plural(waves.iter().map(|w| w.nodes.len()).sum(), "node", "nodes"),
                plural(waves.len(), "wave", "waves")
            )
        };
        plan.errors.push(format!(
            "no room for the replacements of {} after the others: {could}; add capacity, or drain only the nodes that fit",
            split_result.no_room.join(", ")
        ));
    }
    plan.worst_case_seconds = waves.iter().map(|w| w.worst_case_seconds).sum();
    plan.waves = waves;
}

/// What `pods` request together, for people: CPU and memory (`5.6 CPU, 3Gi memory`), or
/// empty when they request neither.
fn needs(pods: &[&Pod]) -> String {
    use sched::resources::{self, Amount, Resources};
    let mut total = Resources::default();
    for p in pods {
        if let Some(r) = p
            .spec
            .as_ref()
            .and_then(|s| resources::pod_requests(s).ok())
        {
            total.add(&r);
        }
    }
    [resources::CPU, resources::MEMORY]
        .into_iter()
        .filter(|r| total.get(r) > 0)
        .map(|r| Amount(r, total.get(r)).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `wait_for_capacity`, whenever room may have come back (a node became schedulable, a node
/// ended): which of the nodes not started yet (`candidates`, in order, each with the pods it
/// will evict that an owner replaces) start now, at most `k`. `view` is the cluster read
/// afresh; `closed` are the targets that take no replacement (every target not drained yet;
/// drained ones count as room when they are schedulable and Ready). Pods bound to no node yet
/// (`view.pending`, e.g. replacements the scheduler has not placed) take their room first,
/// then `reserved`: the replacements still to come of the nodes being drained now (their pods
/// not evicted yet), so that a node started beside them never takes their room. Pure; `Err`
/// names an allocatable that does not parse.
/// The placement engine over `view` without the pods `leaving` (they are evicted, or about to
/// be), the `closed` nodes taking no replacement.
fn engine_without<'a>(
    view: &ClusterView,
    closed: &BTreeSet<String>,
    leaving: impl Iterator<Item = &'a Pod>,
) -> Result<Engine, String> {
    let leaving: HashSet<Uid> = leaving
        .filter_map(|p| p.metadata.uid.as_deref())
        .map(Uid::from)
        .collect();
    Engine::sharing(
        &view.nodes,
        view.residents.clone(),
        |r| !leaving.contains(&r.uid),
        closed,
    )
}

pub(crate) fn fitting_now(
    view: &ClusterView,
    closed: &BTreeSet<String>,
    reserved: &[Pod],
    candidates: &[(String, Vec<Pod>)],
    k: usize,
) -> Result<Vec<String>, String> {
    let leaving = candidates.iter().flat_map(|(_, pods)| pods).chain(reserved);
    let mut engine = engine_without(view, closed, leaving)?;
    let mut pending: Vec<&Pod> = view.pending.iter().collect();
    pending.sort_by_key(|p| (placement::size_key(p), capacity::placement_key(p)));
    for p in pending {
        // one that fits nowhere takes nothing
        let _ = engine.place(p);
    }
    let mut coming: Vec<&Pod> = reserved.iter().collect();
    coming.sort_by_key(|p| (placement::size_key(p), capacity::placement_key(p)));
    // packed largest first: each eviction is admitted against the room then ([`admissible`]),
    // so no replacement is left Pending however the scheduler cuts the room up; one that fits
    // nowhere takes nothing
    for p in &coming {
        let _ = engine.place(p);
    }
    let mut out = Vec::new();
    for (name, pods) in candidates {
        if out.len() >= k.max(1) {
            break;
        }
        let mut order: Vec<&Pod> = pods.iter().collect();
        order.sort_by_key(|p| (placement::size_key(p), capacity::placement_key(p)));
        let mut packed = engine.clone();
        if fits_packed(&mut packed, &order) {
            engine = packed;
            out.push(name.clone());
        }
    }
    Ok(out)
}

/// `wait_for_capacity`, just before pods whose owner replaces them are evicted: which of
/// `asked` (indexes into it) may go now. Each, largest first, goes only when its replacement
/// fits on `view` after the pods bound to no node yet, the replacements of the `recent` pods
/// (evicted a moment ago: their replacements may not show yet) and those of the pods admitted
/// before it, with room kept for the `coming` pods larger than it (the replaced pods of the
/// nodes draining, not evicted yet): a smaller pod never takes the room a larger one still
/// needs, so the replacements take the room in the order the packing counted on, whatever
/// the order the budgets let the pods go in. `closed` as for [`fitting_now`]. Pure; `Err`
/// names an allocatable that does not parse.
pub(crate) fn admissible(
    view: &ClusterView,
    closed: &BTreeSet<String>,
    recent: &[Pod],
    coming: &[Pod],
    asked: &[Pod],
) -> Result<Vec<usize>, String> {
    let leaving = recent.iter().chain(coming).chain(asked);
    let mut engine = engine_without(view, closed, leaving)?;
    let by_size = |pods: &mut Vec<&Pod>| {
        pods.sort_by_key(|p| (placement::size_key(p), capacity::placement_key(p)));
    };
    let mut first: Vec<&Pod> = view.pending.iter().collect();
    by_size(&mut first);
    let mut recent: Vec<&Pod> = recent.iter().collect();
    by_size(&mut recent);
    for p in first.into_iter().chain(recent) {
        // one that fits nowhere takes nothing
        let _ = engine.place(p);
    }
    let mut coming: Vec<&Pod> = coming.iter().collect();
    by_size(&mut coming);
    let mut order: Vec<usize> = (0..asked.len()).collect();
    order.sort_by_key(|&i| {
        (
            placement::size_key(&asked[i]),
            capacity::placement_key(&asked[i]),
        )
    });
    let mut out = Vec::new();
    for i in order {
        let p = &asked[i];
        let size = placement::size_key(p);
        let mut trial = engine.clone();
        for c in coming.iter().filter(|c| placement::size_key(c) < size) {
            let _ = trial.place(c);
        }
        if trial.place(p).is_ok_and(|o| o.node.is_some()) {
            let _ = engine.place(p);
            out.push(i);
        }
    }
    Ok(out)
}

/// The plan's waves as indexes into its nodes, and the nodes that wait for room (in order);
/// no waves (the nodes then go `parallel_nodes` at a time) unless the waves and the waiting
/// nodes hold every node once.
pub(crate) fn indexes(plan: &Plan) -> (Vec<Vec<usize>>, Vec<usize>) {
    let index = |name: &String| plan.nodes.iter().position(|n| &n.node == name);
    let waves: Option<Vec<Vec<usize>>> = plan
        .waves
        .iter()
        .map(|w| w.nodes.iter().map(index).collect())
        .collect();
    let waiting: Option<Vec<usize>> = plan
        .waits_for_room
        .as_ref()
        .map(|w| w.nodes.iter().map(index).collect())
        .unwrap_or(Some(Vec::new()));
    let (Some(waves), Some(waiting)) = (waves, waiting) else {
        return (Vec::new(), Vec::new());
    };
    let mut all: Vec<usize> = waves.iter().flatten().chain(&waiting).copied().collect();
    let count = all.len();
    all.sort_unstable();
    all.dedup();
    if all.len() == plan.nodes.len() && count == all.len() {
        (waves, waiting)
    } else {
        (Vec::new(), Vec::new())
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
