//! `kdrain plan` output: per node every pod with its action and reason, every budget that will
//! block and whether it can ever pass (with how long replacements took to become ready in this
//! cluster), and the worst-case time.

use std::fmt::Write;

use kdrain::capacity::Capacity;
use kdrain::{Action, BudgetPlan, BudgetVerdict, Plan};

use super::summary::columns;
use crate::duration::format_short;
use crate::exit::{BLOCKED_BY_BUDGETS, NO_ROOM, OK, PODS_LEFT};

/// Exit code of `plan`, the one `drain` would exit with: 0 when the drain can complete (with
/// `--wait-for-capacity`, also when nodes wait for room: the drain starts), 4 when
/// pods are refused (they win, even if a budget can never pass too: fixing the budget alone
/// would not help), 7 when the replacements would not fit (budgets then block because of it),
/// 3 when only budgets that can never pass stand in the way.
pub fn exit_code(plan: &Plan) -> i32 {
    if plan.can_complete() {
        return OK;
    }
    let pods_refused = plan.nodes.iter().any(|n| !n.errors.is_empty());
    if plan.short_of_room() && !pods_refused {
        return NO_ROOM;
    }
    let budget_never = plan
        .budgets
        .iter()
        .any(|b| matches!(b.verdict, BudgetVerdict::Never { .. }));
    if budget_never && !pods_refused {
        BLOCKED_BY_BUDGETS
    } else {
        PODS_LEFT
    }
}

fn action_word(action: &Action) -> &'static str {
    match action {
        Action::Evict => "evict",
        Action::Delete => "delete",
        Action::Skip => "skip",
        Action::Wait => "wait",
        Action::Refuse => "REFUSE",
        _ => "other",
    }
}

/// How long a budget's replacements will take to become ready, from what its pods showed.
fn readiness(b: &BudgetPlan) -> String {
    match b.replacement_ready_seconds {
        Some(secs) => format!("replacements became ready in ~{} here", format_short(secs)),
        None => "how long replacements take to become ready is unknown here".to_string(),
    }
}

/// The capacity section: where the replacements go, per workload.
fn capacity(cap: &Capacity) -> String {
    let mut out = String::new();
    let nodes = if cap.schedulable_nodes.is_empty() {
        "no node stays schedulable".to_string()
    } else {
        format!(
            "{} node(s) stay schedulable ({})",
            cap.schedulable_nodes.len(),
            cap.schedulable_nodes.join(", ")
        )
    };
    if cap.workloads.is_empty() {
        let _ = writeln!(out, "replacements: none needed; {nodes}");
    } else {
        let _ = writeln!(out, "replacements: {nodes}");
        let mut rows = vec![vec![
            "  WORKLOAD".to_string(),
            "REPLACEMENTS".to_string(),
            "PLACED".to_string(),
            "WHERE".to_string(),
        ]];
        for w in &cap.workloads {
            let mut place: Vec<String> = w.nodes.iter().map(|(n, k)| format!("{n}:{k}")).collect();
            if !w.fits() {
                place.push("NO ROOM".to_string());
            }
            if !w.not_checked.is_empty() {
                place.push(format!(
                    "placement not checked: uses {}",
                    w.not_checked.join(", ")
                ));
            }
            rows.push(vec![
                format!("  {} {}", w.kind, w.key()),
                w.pods.len().to_string(),
                w.placed.to_string(),
                place.join(" "),
            ]);
        }
        out.push_str(&columns(&rows));
    }
    if !cap.lost.is_empty() {
        let _ = writeln!(out, "lost (nothing replaces them): {}", cap.lost.join(", "));
    }
    out
}

/// The waves section: which nodes drain together, in order, and how long each may take.
fn waves(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.waves.is_empty() {
        return out;
    }
    let in_waves: usize = plan.waves.iter().map(|w| w.nodes.len()).sum();
    let left_out = plan.nodes.len() - in_waves.min(plan.nodes.len());
    let _ = writeln!(
        out,
        "waves: {} (each starts when the one before is drained; replacements placed after the earlier waves')",
        plan.waves.len()
    );
    let mut rows = vec![vec![
        "  WAVE".to_string(),
        "NODES".to_string(),
        "REPLACEMENTS".to_string(),
        "WORST CASE".to_string(),
    ]];
    for (i, w) in plan.waves.iter().enumerate() {
        rows.push(vec![
            format!("  {}", i + 1),
            w.nodes.join(", "),
            w.replacements.to_string(),
            format_short(w.worst_case_seconds),
        ]);
    }
    out.push_str(&columns(&rows));
    if left_out > 0 {
        let names: Vec<&str> = plan
            .nodes
            .iter()
            .filter(|n| !plan.waves.iter().any(|w| w.nodes.contains(&n.node)))
            .map(|n| n.node.as_str())
            .collect();
        if plan.waits_for_room.is_none() {
            let _ = writeln!(out, "  no room: {}", names.join(", "));
        }
    }
    out
}

/// `--wait-for-capacity`: the nodes that wait for room, in one line.
fn waits_for_room(plan: &Plan) -> String {
    let Some(w) = &plan.waits_for_room else {
        return String::new();
    };
    let their = match (w.replacements, w.needs.is_empty()) {
        (1, true) => "their replacement".to_string(),
        (1, false) => format!("their replacement needs {}", w.needs),
        (n, true) => format!("their {n} replacements"),
        (n, false) => format!("their {n} replacements need {}", w.needs),
    };
    format!(
        "waits for room: {} ({their}; they start when nodes become schedulable with room for them)\n",
        w.nodes.join(", ")
    )
}

/// The human-readable plan.
pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    for node in &plan.nodes {
        let state = if node.cordoned {
            "already cordoned"
        } else {
            "schedulable, will be cordoned"
        };
        let _ = writeln!(out, "node/{} ({state})", node.node);
        if node.pods.is_empty() {
            let _ = writeln!(out, "  no pods");
        } else {
            let mut rows = vec![vec![
                "  ACTION".to_string(),
                "POD".to_string(),
                "GRACE".to_string(),
                "BUDGET".to_string(),
                "REASON".to_string(),
            ]];
            for pod in &node.pods {
                rows.push(vec![
                    format!("  {}", action_word(&pod.action)),
                    format!("{}/{}", pod.namespace, pod.name),
                    if matches!(pod.action, Action::Evict | Action::Delete | Action::Wait) {
                        format!("{}s", pod.grace_seconds)
                    } else {
                        "-".to_string()
                    },
                    pod.budget.clone().unwrap_or_else(|| "-".to_string()),
                    // The kubectl error text doubles "cannot delete"; the table only needs why.
                    pod.reason.trim_start_matches("cannot delete ").to_string(),
                ]);
            }
            out.push_str(&columns(&rows));
        }
        out.push('\n');
    }
    if plan.budgets.is_empty() {
        let _ = writeln!(out, "budgets: none cover the pods to evict");
    } else {
        let _ = writeln!(out, "budgets:");
        let mut rows = vec![vec![
            "  BUDGET".to_string(),
            "ALLOWED".to_string(),
            "HEALTHY".to_string(),
            "DESIRED".to_string(),
            "EXPECTED".to_string(),
            "PODS TO EVICT".to_string(),
            "VERDICT".to_string(),
        ]];
        for b in &plan.budgets {
            let verdict = match &b.verdict {
                BudgetVerdict::Passes => "passes".to_string(),
                BudgetVerdict::Waits { reason } => {
                    format!("waits: {reason}; {}", readiness(b))
                }
                BudgetVerdict::Never { reason } => format!("NEVER passes: {reason}"),
                _ => "unknown".to_string(),
            };
            rows.push(vec![
                format!("  {}/{}", b.namespace, b.name),
                b.disruptions_allowed.to_string(),
                b.current_healthy.to_string(),
                b.desired_healthy.to_string(),
                b.expected_pods.to_string(),
                b.pods.len().to_string(),
                verdict,
            ]);
        }
        out.push_str(&columns(&rows));
    }
    if let Some(cap) = &plan.capacity {
        out.push_str(&capacity(cap));
    }
    out.push_str(&waves(plan));
    out.push_str(&waits_for_room(plan));
    for s in &plan.surges {
        let what = if s.kind.is_empty() {
            String::new()
        } else {
            format!("{} ", s.kind)
        };
        if s.restart {
            let _ = writeln!(out, "surge: {what}{}: {}", s.key(), s.reason);
        } else {
            let _ = writeln!(out, "surge: {what}{}: CANNOT surge: {}", s.key(), s.reason);
        }
    }
    for w in &plan.warnings {
        let _ = writeln!(out, "Warning: {w}");
    }
    for e in &plan.errors {
        let _ = writeln!(out, "error: {e}");
    }
    // Budgets whose later batches wait for replacements nobody can time: the worst case
    // leaves that wait out, so say so.
    let untimed: Vec<String> = plan
        .budgets
        .iter()
        .filter(|b| matches!(b.verdict, BudgetVerdict::Waits { .. }))
        .filter(|b| b.replacement_ready_seconds.is_none())
        .map(|b| format!("{}/{}", b.namespace, b.name))
        .collect();
    let unknown = if untimed.is_empty() {
        String::new()
    } else {
        format!(
            "; replacement readiness unknown for {}, not counted",
            untimed.join(", ")
        )
    };
    let room = if plan.waits_for_room.is_some() {
        " for the nodes that fit now; the nodes that wait for room take longer, depending on when room comes back"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "worst case: {}{room} (grace periods, budgets permitting{unknown})",
        format_short(plan.worst_case_seconds)
    );
    let _ = writeln!(out, "result: {}", verdict(plan));
    out
}

/// The plan's verdict in one line, e.g. "the drain cannot complete: pods would be left on the
/// node (exit 4)".
pub fn verdict(plan: &Plan) -> String {
    match exit_code(plan) {
        OK if plan.waits_for_room.is_some() => {
            "the drain can complete if room comes back: it starts now, and the nodes that wait for room start when their replacements fit (--wait-for-capacity)".to_string()
        }
        OK => "the drain can complete".to_string(),
        BLOCKED_BY_BUDGETS => {
            "the drain cannot complete: a disruption budget can never allow it (exit 3)".to_string()
        }
        NO_ROOM => {
            "the drain cannot start: the evicted pods' replacements would not fit (exit 7; --ignore-capacity drains anyway)".to_string()
        }
        _ => "the drain cannot complete: pods would be left on the node (exit 4)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kdrain::plan::NodePlan;

    fn plan_with(ready: Option<f64>) -> Plan {
        Plan {
            nodes: vec![NodePlan {
                node: "n1".into(),
                cordoned: false,
                pods: Vec::new(),
                errors: Vec::new(),
                warnings: Vec::new(),
            }],
            budgets: vec![BudgetPlan {
                namespace: "default".into(),
                name: "web".into(),
                disruptions_allowed: 1,
                current_healthy: 3,
                desired_healthy: 2,
                expected_pods: 3,
                pods: vec!["default/w1".into(), "default/w2".into()],
                verdict: BudgetVerdict::Waits {
                    reason: "it allows 1 of the 2 pods now".into(),
                },
                replacement_ready_seconds: ready,
            }],
            errors: Vec::new(),
            warnings: Vec::new(),
            worst_case_seconds: 42.0,
            capacity: None,
            waves: Vec::new(),
            waits_for_room: None,
            surges: Vec::new(),
        }
    }

    #[test]
    fn waiting_budgets_say_how_long_replacements_took() {
        let out = text(&plan_with(Some(12.4)));
        assert!(
            out.contains(
                "waits: it allows 1 of the 2 pods now; replacements became ready in ~12s here"
            ),
            "{out}"
        );
        assert!(
            out.contains("worst case: 42s (grace periods, budgets permitting)\n"),
            "{out}"
        );
        let out = text(&plan_with(None));
        assert!(
            out.contains("; how long replacements take to become ready is unknown here"),
            "{out}"
        );
        assert!(
            out.contains(
                "worst case: 42s (grace periods, budgets permitting; replacement readiness unknown for default/web, not counted)"
            ),
            "{out}"
        );
    }

    #[test]
    fn nodes_waiting_for_room_are_not_a_refusal() {
        let mut p = plan_with(Some(2.0));
        p.waits_for_room = Some(Box::new(kdrain::plan::RoomWait {
            nodes: vec!["old2".into(), "old3".into()],
            replacements: 4,
            needs: "4 CPU".into(),
        }));
        p.capacity = Some(Capacity {
            workloads: vec![kdrain::capacity::WorkloadFit {
                namespace: "shop".into(),
                kind: "Deployment".into(),
                name: "web".into(),
                pods: vec!["shop/w1".into()],
                placed: 0,
                nodes: Default::default(),
                not_checked: Vec::new(),
                problem: Some("shop/web: no room".into()),
            }],
            enforced: true,
            waits: true,
            ..Default::default()
        });
        assert_eq!(exit_code(&p), OK);
        let out = text(&p);
        assert!(
            out.contains("waits for room: old2, old3 (their 4 replacements need 4 CPU; they start when nodes become schedulable with room for them)\n"),
            "{out}"
        );
        assert!(
            out.contains("result: the drain can complete if room comes back"),
            "{out}"
        );
        // a budget that never passes for another reason is still exit 3, not a lack of room
        p.budgets[0].verdict = BudgetVerdict::Never {
            reason: "minAvailable equals the replicas".into(),
        };
        p.errors
            .push("disruption budget default/web can never allow it".into());
        assert_eq!(exit_code(&p), BLOCKED_BY_BUDGETS);
    }
}
