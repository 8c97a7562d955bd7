//! The capacity check's verdict applied to a plan ([`crate::capacity`] places the
//! replacements; this says what that means for the drain): each pod to evict or delete says
//! where its replacement goes, each workload whose replacements do not all fit refuses the
//! drain (a warning with `--ignore-capacity`), and a budget whose pods cannot all be replaced
//! becomes one that never passes. Kept apart from `capacity` so that the plan's types depend on
//! the capacity check's and not the reverse.

use std::collections::BTreeSet;

use crate::capacity::{ClusterView, check, is_replaced, plural};
use crate::model::Action;
use crate::options::DrainOptions;
use crate::plan::{BudgetVerdict, NodeInput, Plan};
use crate::select;

/// What a shortage of room does to the drain.
#[derive(Clone, Copy, PartialEq)]
enum Shortage {
    /// It refuses the drain (the default).
    Refuses,
    /// `--ignore-capacity`: a warning, and the replacements stay Pending.
    Ignored,
    /// `--wait-for-capacity`: a warning, and the nodes whose replacements do not fit wait
    /// for room ([`crate::waves`]).
    Waits,
}

/// The line for a capacity error in the plan: refused, or a warning.
fn push(plan: &mut Plan, mode: Shortage, line: String) {
    match mode {
        Shortage::Refuses => plan.errors.push(line),
        Shortage::Ignored => plan
            .warnings
            .push(format!("{line} (ignored: --ignore-capacity)")),
        Shortage::Waits => plan.warnings.push(format!(
            "{line} (the nodes wait for room: --wait-for-capacity)"
        )),
    }
}

/// Adds the capacity check to a plan built from `inputs` (the same nodes, in the same order):
/// each pod to evict or delete says where its replacement goes (or that nothing replaces it),
/// each workload whose replacements do not all fit gives one line that refuses the drain
/// (unless `ignore_capacity`: then a warning), and a budget whose pods cannot all be replaced
/// becomes one that never passes. With `wait_for_capacity` a shortage is a warning too and such
/// a budget still waits: the nodes whose replacements do not fit wait for room (a quantity
/// that does not parse still refuses: room cannot be checked at all).
pub fn apply(plan: &mut Plan, opts: &DrainOptions, inputs: &[NodeInput], view: &ClusterView) {
    let targets: BTreeSet<String> = inputs.iter().map(|n| n.node.clone()).collect();
    let mut replaced = Vec::new();
    let mut lost = Vec::new();
    let mut leaving = BTreeSet::new();
    for (np, input) in plan.nodes.iter().zip(inputs) {
        for (pp, pod) in np.pods.iter().zip(&input.pods) {
            if !matches!(pp.action, Action::Evict | Action::Delete) {
                continue;
            }
            leaving.insert(pp.uid.clone());
            if is_replaced(pod) {
                replaced.push(pod);
            } else if !select::is_finished(pod) {
                lost.push(pod);
            }
        }
    }
    let (mut cap, outcomes) = check(view, &targets, &replaced, &lost, &leaving);
    cap.enforced = !opts.ignore_capacity;
    let lost_keys: BTreeSet<&String> = cap.lost.iter().collect();
    for np in &mut plan.nodes {
        for pp in &mut np.pods {
            let key = format!("{}/{}", pp.namespace, pp.name);
            if lost_keys.contains(&key) {
                pp.placement = Some("lost: nothing replaces it".to_string());
            } else if let Some(o) = outcomes.get(&key) {
                let mut text = match (&o.node, &o.fit_error) {
                    (Some(n), _) => format!("replacement fits on {n}"),
                    (None, Some(e)) => format!("no room for its replacement: {e}"),
                    (None, None) => "no room for its replacement".to_string(),
                };
                if !o.not_checked.is_empty() {
                    text.push_str(&format!(
                        "; placement not checked: uses {}",
                        o.not_checked.join(", ")
                    ));
                }
                pp.placement = Some(text);
            }
        }
    }
    let enforced = if !cap.enforced {
        Shortage::Ignored
    } else {
        Shortage::Refuses
    };
    let shortage = if enforced == Shortage::Refuses && opts.wait_for_capacity {
        Shortage::Waits
    } else {
        enforced
    };
    cap.waits = shortage == Shortage::Waits;
    for e in &cap.errors {
        push(
            plan,
            enforced,
            format!(
                "cannot check room for the replacements: {e}; fix the object or use --ignore-capacity"
            ),
        );
    }
    for w in cap.short() {
        if let Some(p) = &w.problem {
            push(plan, shortage, p.clone());
        }
    }
    // Budgets: beyond what they allow now, each eviction waits for a replacement to become
    // ready; replacements with nowhere to go never do.
    let unplaced: BTreeSet<String> = outcomes
        .iter()
        .filter(|(_, o)| o.node.is_none())
        .map(|(k, _)| k.clone())
        .collect();
    let mut never = Vec::new();
    for b in &mut plan.budgets {
        if !matches!(b.verdict, BudgetVerdict::Waits { .. }) {
            continue;
        }
        let stuck = b.pods.iter().filter(|p| unplaced.contains(*p)).count();
        let needed = b.pods.len();
        let ever = b.disruptions_allowed.max(0) as usize + (needed - stuck);
        if stuck > 0 && ever < needed && shortage == Shortage::Waits {
            // the pods of the nodes that wait for room go once their replacements fit
            if let BudgetVerdict::Waits { reason } = &mut b.verdict {
                reason.push_str(&format!(
                    "; the replacements of {} find no room now: their nodes wait for room",
                    plural(stuck, "pod", "pods")
                ));
            }
        } else if stuck > 0 && ever < needed {
            let short: Vec<String> = cap
                .short()
                .filter(|w| w.pods.iter().any(|p| b.pods.contains(p)))
                .map(|w| w.key())
                .collect();
            let reason = format!(
                "it allows {} of the {needed} pods now and the replacements of {} cannot be placed ({}), so it will block for ever",
                b.disruptions_allowed.max(0),
                plural(stuck, "pod", "pods"),
                short.join(", ")
            );
            never.push(format!(
                "disruption budget {}/{} can never allow evicting {}: {reason}; add capacity or drain fewer nodes at once",
                b.namespace,
                b.name,
                b.pods.join(", ")
            ));
            b.verdict = BudgetVerdict::Never { reason };
        }
    }
    for line in never {
        push(plan, shortage, line);
    }
    plan.capacity = Some(cap);
}
