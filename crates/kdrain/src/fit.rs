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

/// The line for a capacity error in the plan: refused, or (with `--ignore-capacity`) a warning.
fn push(plan: &mut Plan, enforced: bool, line: String) {
    if enforced {
        plan.errors.push(line);
    } else {
        plan.warnings
            .push(format!("{line} (ignored: --ignore-capacity)"));
    }
}

/// Adds the capacity check to a plan built from `inputs` (the same nodes, in the same order):
/// each pod to evict or delete says where its replacement goes (or that nothing replaces it),
/// each workload whose replacements do not all fit gives one line that refuses the drain
/// (unless `ignore_capacity`: then a warning), and a budget whose pods cannot all be replaced
/// becomes one that never passes.
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
    let enforced = cap.enforced;
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
            push(plan, enforced, p.clone());
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
        if stuck > 0 && ever < needed {
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
        push(plan, enforced, line);
    }
    plan.capacity = Some(cap);
}
