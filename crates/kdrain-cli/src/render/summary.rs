//! The summary table printed after a drain on a terminal and by `kdrain demo`: one row per node,
//! then every pod that was left behind and why.

use std::fmt::Write;

use kdrain::{NodeOutcome, PodOutcome, Report};

use crate::duration::format_short;

/// Pads cells to column widths.
pub fn columns(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Short words for a node outcome.
pub fn outcome_word(outcome: &NodeOutcome) -> String {
    match outcome {
        NodeOutcome::Drained => "drained".to_string(),
        NodeOutcome::BlockedByBudgets => "blocked by budgets".to_string(),
        NodeOutcome::PodsLeft => "pods left".to_string(),
        NodeOutcome::Failed { .. } => "failed".to_string(),
        _ => "unknown".to_string(),
    }
}

/// The table: NODE, RESULT, GONE, SKIPPED, LEFT, EVICTIONS, 429s, LONGEST BLOCK, TIME.
pub fn table(report: &Report) -> String {
    let mut rows = vec![vec![
        "NODE".to_string(),
        "RESULT".to_string(),
        "GONE".to_string(),
        "SKIPPED".to_string(),
        "LEFT".to_string(),
        "REQUESTS".to_string(),
        "LONGEST BLOCK".to_string(),
        "TIME".to_string(),
    ]];
    for n in &report.nodes {
        let gone = n
            .pods
            .iter()
            .filter(|p| p.outcome == PodOutcome::Gone)
            .count();
        let dry = n
            .pods
            .iter()
            .filter(|p| p.outcome == PodOutcome::DryRun)
            .count();
        let skipped = n
            .pods
            .iter()
            .filter(|p| p.outcome == PodOutcome::Skipped)
            .count();
        let left = n.pending().count();
        let writes: u64 = n
            .requests
            .iter()
            .filter(|(k, _)| {
                !k.starts_with("get ") && !k.starts_with("list ") && !k.starts_with("watch ")
            })
            .map(|(_, v)| *v)
            .sum();
        let longest = n.pods.iter().map(|p| p.blocked_seconds).fold(0.0, f64::max);
        rows.push(vec![
            n.node.clone(),
            outcome_word(&n.outcome),
            if dry > 0 {
                format!("{gone} (+{dry} dry run)")
            } else {
                gone.to_string()
            },
            skipped.to_string(),
            left.to_string(),
            writes.to_string(),
            if longest > 0.0 {
                format_short(longest)
            } else {
                "-".to_string()
            },
            format_short(n.seconds),
        ]);
    }
    let mut out = String::new();
    out.push('\n');
    out.push_str(&columns(&rows));
    for n in &report.nodes {
        if let NodeOutcome::Failed { error } = &n.outcome {
            let _ = writeln!(out, "node/{}: {}", n.node, crate::config::one_line(error));
        }
        for p in n.pending() {
            let why = match &p.outcome {
                PodOutcome::Failed { error, .. } => error.clone(),
                _ => match &p.blocked_by {
                    Some(b) => format!("blocked by {b}"),
                    None => p.reason.clone(),
                },
            };
            let _ = writeln!(
                out,
                "  left on {}: {} ({})",
                n.node,
                p.pod,
                crate::config::one_line(&why)
            );
        }
    }
    let total_requests: u64 = report.requests.values().sum();
    let _ = writeln!(
        out,
        "{} node(s) in {}, {} API request(s)",
        report.nodes.len(),
        format_short(report.seconds),
        total_requests
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let rows = vec![
            vec!["A".to_string(), "BB".to_string(), "C".to_string()],
            vec!["long".to_string(), "x".to_string(), "y".to_string()],
        ];
        assert_eq!(columns(&rows), "A     BB  C\nlong  x   y\n");
    }
}
