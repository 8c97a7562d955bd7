//! Medians, ratios, the issue's targets, and the markdown written to `bench/results/latest.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::measure::{RunResult, Tool};

/// The median of some values (mean of the middle two for an even count), None when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// All runs of one scenario.
#[derive(Debug, Clone)]
pub struct CaseResults {
    /// B1 … B4.
    pub id: String,
    /// Title.
    pub title: String,
    /// Chart file name, relative to the results directory.
    pub chart: String,
    /// Every run, both tools.
    pub runs: Vec<RunResult>,
    /// Why kubectl was not run, when it was not.
    pub kubectl_note: Option<String>,
}

/// Medians of one tool on one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSummary {
    /// Which tool.
    pub tool: Tool,
    /// Runs made.
    pub runs: usize,
    /// Runs that finished (exit 0, every target pod gone).
    pub completed: usize,
    /// Median wall seconds over completed runs.
    pub wall: Option<f64>,
    /// Median requests.
    pub requests: Option<f64>,
    /// Median 429s.
    pub throttled: Option<f64>,
    /// Median CPU seconds.
    pub cpu: Option<f64>,
    /// Median peak RSS in MiB.
    pub rss_mib: Option<f64>,
    /// Invariant violations over all runs.
    pub violations: usize,
}

impl CaseResults {
    /// The floor (the same for every run of a scenario).
    pub fn floor(&self) -> Option<f64> {
        self.runs.iter().find_map(|r| r.floor.clone().ok())
    }

    /// Medians for one tool, None when it never ran.
    pub fn summary(&self, tool: Tool) -> Option<ToolSummary> {
        let runs: Vec<&RunResult> = self.runs.iter().filter(|r| r.tool == tool).collect();
        if runs.is_empty() {
            return None;
        }
        let of = |f: &dyn Fn(&RunResult) -> Option<f64>| {
            median(&runs.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
        };
        Some(ToolSummary {
            tool,
            runs: runs.len(),
            completed: runs.iter().filter(|r| r.completed()).count(),
            wall: of(&|r| r.completed().then_some(r.observed.wall_seconds).flatten()),
            requests: of(&|r| Some(r.total_requests() as f64)),
            throttled: of(&|r| Some(r.throttled() as f64)),
            cpu: of(&|r| r.child.cpu_seconds),
            rss_mib: of(&|r| r.child.max_rss_bytes.map(|b| b as f64 / (1024.0 * 1024.0))),
            violations: runs.iter().map(|r| r.violations.len()).sum(),
        })
    }

    /// kdrain/kubectl wall ratio for each repetition where both completed.
    pub fn pair_ratios(&self) -> Vec<f64> {
        let mut by_rep: BTreeMap<usize, (Option<f64>, Option<f64>)> = BTreeMap::new();
        for run in self.runs.iter().filter(|r| r.completed()) {
            let entry = by_rep.entry(run.rep).or_default();
            match run.tool {
                Tool::Kdrain => entry.0 = run.observed.wall_seconds,
                Tool::Kubectl => entry.1 = run.observed.wall_seconds,
            }
        }
        by_rep
            .values()
            .filter_map(|pair| match pair {
                (Some(k), Some(c)) if *c > 0.0 => Some(k / c),
                _ => None,
            })
            .collect()
    }
}

fn num(value: Option<f64>, digits: usize) -> String {
    value.map_or("–".to_string(), |v| format!("{v:.digits$}"))
}

/// One line of the targets table: what the issue asks, what was measured, met or not.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetCheck {
    /// Scenario id.
    pub case: String,
    /// The target as the issue words it.
    pub target: String,
    /// The measured figure.
    pub measured: String,
    /// Met (None: not measurable in this run).
    pub met: Option<bool>,
}

fn check(case: &str, target: &str, value: Option<f64>, limit: f64, unit: &str) -> TargetCheck {
    let digits = if unit.is_empty() && value.is_some_and(|v| v.fract() == 0.0) {
        0
    } else {
        3
    };
    TargetCheck {
        case: case.to_string(),
        target: target.to_string(),
        measured: num(value, digits) + unit,
        met: value.map(|v| v <= limit),
    }
}

/// The issue's targets, evaluated on the medians.
pub fn targets(cases: &[CaseResults]) -> Vec<TargetCheck> {
    let mut out = Vec::new();
    for case in cases {
        let k = case.summary(Tool::Kdrain);
        let wall = k.as_ref().and_then(|s| s.wall);
        let floor = case.floor();
        let overhead = wall.zip(floor).map(|(w, f)| w - f);
        let ratio = median(&case.pair_ratios());
        let id = case.id.as_str();
        match id {
            "B1" => {
                out.push(check(id, "kdrain overhead ≤ 0.1 s", overhead, 0.1, " s"));
                out.push(check(
                    id,
                    "kdrain requests ≤ 125",
                    k.as_ref().and_then(|s| s.requests),
                    125.0,
                    "",
                ));
            }
            "B2" => {
                out.push(check(
                    id,
                    "kdrain wall ≤ floor + 0.5 s (overhead ≤ 0.5 s)",
                    overhead,
                    0.5,
                    " s",
                ));
                out.push(check(
                    id,
                    "kdrain/kubectl wall ratio ≤ 0.35",
                    ratio,
                    0.35,
                    "",
                ));
            }
            "B3" => out.push(check(id, "kdrain/kubectl wall ratio ≤ 0.2", ratio, 0.2, "")),
            "B4" => {
                out.push(check(
                    id,
                    "kdrain peak RSS ≤ 150 MB",
                    k.as_ref().and_then(|s| s.rss_mib),
                    150.0,
                    " MiB",
                ));
                out.push(check(
                    id,
                    "kdrain CPU ≤ 3 s",
                    k.as_ref().and_then(|s| s.cpu),
                    3.0,
                    " s",
                ));
                let violations = k.as_ref().map(|s| s.violations as f64);
                out.push(check(
                    id,
                    "zero invariant violations (kdrain)",
                    violations,
                    0.0,
                    "",
                ));
            }
            _ => {}
        }
    }
    out
}

/// Facts about the run printed above the table.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// When (RFC 3339, UTC).
    pub when: String,
    /// The command line.
    pub command: String,
    /// Repetitions per tool.
    pub reps: usize,
    /// CPU cores.
    pub cores: usize,
    /// kubectl's version line.
    pub kubectl_version: String,
    /// Quick smoke-test run.
    pub quick: bool,
    /// On the real control plane (`--cluster real`) rather than kubesim.
    pub real: bool,
}

/// The whole markdown report.
pub fn markdown(info: &RunInfo, cases: &[CaseResults]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# kdrain vs kubectl drain: benchmark results\n");
    if info.quick {
        let _ = writeln!(
            md,
            "**Quick smoke run (tiny scenarios, one repetition): not a measurement.**\n"
        );
    }
    let _ = writeln!(
        md,
        "`{}` at {}, {} CPU cores, {} repetition(s) per tool, alternating kdrain and kubectl. kubectl: {}.\n",
        info.command, info.when, info.cores, info.reps, info.kubectl_version
    );
    if info.real {
        let _ = writeln!(
            md,
            "**On a real control plane** (`--cluster real`): each run starts a fresh kube-apiserver, \
             kube-controller-manager and kube-scheduler {k8s}, etcd {etcd} and kwok {kwok} on 127.0.0.1 \
             (`cargo xtask control-plane build` builds them), materialises the scenario through the API \
             (pods on the nodes it names; the real controllers and scheduler make every replacement; kwok \
             applies the scenario's start-up and stop times), waits until every target pod is Ready and every \
             budget's status is computed, and starts the drain as its own user (a client certificate). \
             **Requests** are that user's requests in the API server's audit log (so the harness's own \
             requests are not among them); **violations** are the findings of the observer of `cargo xtask e2e` \
             (watches plus the audit log).\n",
            k8s = control_plane::paths::K8S_VERSION,
            etcd = control_plane::paths::ETCD_VERSION,
            kwok = control_plane::paths::KWOK_VERSION,
        );
    }
    if !info.real {
        let _ = write!(
            md,
            "Each run starts a fresh in-process kubesim from the scenario file, waits until every target pod is \
             Ready and every budget's status is computed, then resets kubesim's request counters and starts the \
             drain command as a child process. **Requests** are kubesim's counters after the drain; the harness's \
             own LIST/WATCH requests made after the reset are counted by the harness and subtracted. "
        );
    }
    let _ = writeln!(
        md,
        "**Wall** runs from spawning the command to the moment the harness's own watch (one LIST + WATCH per \
         target node, on the harness clock) saw the last target pod gone. \
         **CPU** (user + system) and **peak RSS** of the drain process come from GNU time (the kernel's rusage \
         of the reaped child). **Floor**: the earliest the last pod could be gone given the scenario's stop \
         times, budgets and replacement readiness (simulated, see `crates/kdrain-bench/src/floor.rs`); \
         **overhead** = wall − floor. Medians over completed runs; the ratio is the median of kdrain/kubectl \
         per repetition pair.\n"
    );
    let _ = writeln!(
        md,
        "| Scenario | Tool | Completed | Wall median (s) | Floor (s) | Overhead (s) | kdrain/kubectl | Requests | 429s | CPU (s) | Peak RSS (MiB) | Violations |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for case in cases {
        let floor = case.floor();
        let ratio = median(&case.pair_ratios());
        for tool in [Tool::Kdrain, Tool::Kubectl] {
            let Some(s) = case.summary(tool) else {
                if tool == Tool::Kubectl
                    && let Some(note) = &case.kubectl_note
                {
                    let _ = writeln!(
                        md,
                        "| {} | kubectl | skipped: {note} | | | | | | | | | |",
                        case.id
                    );
                }
                continue;
            };
            let overhead = s.wall.zip(floor).map(|(w, f)| w - f);
            let ratio_cell = if tool == Tool::Kdrain {
                num(ratio, 3)
            } else {
                String::new()
            };
            let _ = writeln!(
                md,
                "| {} | {} | {}/{} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                case.id,
                tool.label(),
                s.completed,
                s.runs,
                num(s.wall, 3),
                num(floor, 3),
                num(overhead, 3),
                ratio_cell,
                num(s.requests, 0),
                num(s.throttled, 0),
                num(s.cpu, 2),
                num(s.rss_mib, 1),
                s.violations
            );
        }
    }

    let checks = targets(cases);
    if !checks.is_empty() {
        let _ = writeln!(md, "\n## Targets (issue 5)\n");
        let _ = writeln!(md, "| Scenario | Target | Measured | Met |");
        let _ = writeln!(md, "|---|---|---|---|");
        for c in &checks {
            let met = match c.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "not measured",
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                c.case, c.target, c.measured, met
            );
        }
    }

    let _ = writeln!(md, "\n## Scenarios\n");
    for case in cases {
        let _ = writeln!(md, "### {}\n", case.title);
        if let Some(first) = case.runs.first() {
            let _ = writeln!(
                md,
                "Drained nodes: {} ({} target pods). {}: {:.2} s.",
                summarize_nodes(&first.nodes),
                first.observed.targets,
                if info.real {
                    "Control plane start + scenario materialised"
                } else {
                    "kubesim load + start"
                },
                first.load_seconds
            );
            if let Err(why) = &first.floor {
                let _ = writeln!(md, "No floor: {why}.");
            }
        }
        if let Some(note) = &case.kubectl_note {
            let _ = writeln!(md, "Note on kubectl: {note}.");
        }
        let ratios = case.pair_ratios();
        if !ratios.is_empty() {
            let list: Vec<String> = ratios.iter().map(|r| format!("{r:.3}")).collect();
            let _ = writeln!(
                md,
                "kdrain/kubectl wall ratio per pair: {}.",
                list.join(", ")
            );
        }
        let _ = writeln!(md, "\n![{}]({})\n", case.id, case.chart);
        let _ = writeln!(
            md,
            "| Rep | Tool | Exit | Wall (s) | Pods left | Requests | 429s | CPU (s) | Peak RSS (MiB) | Harness list/watch subtracted | Violations |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
        for run in &case.runs {
            let exit = match (run.child.exit_code, run.child.killed_at_deadline) {
                (_, true) => "killed at deadline".to_string(),
                (Some(code), false) => code.to_string(),
                (None, false) => "signal".to_string(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {}/{} | {} |",
                run.rep,
                run.tool.label(),
                exit,
                num(run.observed.wall_seconds, 3),
                run.observed.remaining,
                run.total_requests(),
                run.throttled(),
                num(run.child.cpu_seconds, 2),
                num(run.child.max_rss_bytes.map(|b| b as f64 / 1048576.0), 1),
                run.harness_requests.0,
                run.harness_requests.1,
                run.violations.len()
            );
        }
        for tool in [Tool::Kdrain, Tool::Kubectl] {
            let Some(run) = representative(case, tool) else {
                continue;
            };
            let _ = writeln!(
                md,
                "\n{} requests by verb, resource and status (repetition {}):\n",
                tool.label(),
                run.rep
            );
            let _ = writeln!(md, "| Verb | Resource | Code | Count |\n|---|---|---|---|");
            for line in &run.requests {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} |",
                    line.verb, line.resource, line.code, line.count
                );
            }
        }
        let failed: Vec<&RunResult> = case.runs.iter().filter(|r| !r.completed()).collect();
        for run in failed {
            let _ = writeln!(
                md,
                "\n{} repetition {} did not complete. Last output:\n\n```\n{}\n```",
                run.tool.label(),
                run.rep,
                run.child.output_tail
            );
        }
        for run in case.runs.iter().filter(|r| !r.violations.is_empty()) {
            let _ = writeln!(
                md,
                "\nInvariant violations, {} repetition {}:\n",
                run.tool.label(),
                run.rep
            );
            for v in run.violations.iter().take(20) {
                let _ = writeln!(md, "- `{v}`");
            }
        }
        let _ = writeln!(md);
    }
    md
}

/// The run closest to the median wall time of a tool (the first run when none completed).
fn representative(case: &CaseResults, tool: Tool) -> Option<&RunResult> {
    let runs: Vec<&RunResult> = case.runs.iter().filter(|r| r.tool == tool).collect();
    let wall = case.summary(tool)?.wall;
    match wall {
        Some(m) => runs
            .iter()
            .filter(|r| r.completed())
            .min_by(|a, b| {
                let da = (a.observed.wall_seconds.unwrap_or(f64::MAX) - m).abs();
                let db = (b.observed.wall_seconds.unwrap_or(f64::MAX) - m).abs();
                da.total_cmp(&db)
            })
            .copied(),
        None => runs.first().copied(),
    }
}

fn summarize_nodes(nodes: &[String]) -> String {
    if nodes.len() <= 4 {
        nodes.join(", ")
    } else {
        format!(
            "{}, …, {} ({} nodes)",
            nodes[0],
            nodes[nodes.len() - 1],
            nodes.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::sample_run as run;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn summaries_ratios_and_targets() {
        let case = CaseResults {
            id: "B2".into(),
            title: "B2".into(),
            chart: "b2.svg".into(),
            runs: vec![
                run(Tool::Kdrain, 0, 3.8, 20),
                run(Tool::Kubectl, 0, 16.0, 60),
                run(Tool::Kubectl, 1, 15.0, 58),
                run(Tool::Kdrain, 1, 4.2, 22),
            ],
            kubectl_note: None,
        };
        let k = case.summary(Tool::Kdrain).unwrap();
        assert_eq!(k.wall, Some(4.0));
        assert_eq!(k.requests, Some(21.0));
        assert_eq!(k.completed, 2);
        let ratios = case.pair_ratios();
        assert_eq!(ratios.len(), 2);
        assert!((ratios[0] - 3.8 / 16.0).abs() < 1e-9);
        let checks = targets(std::slice::from_ref(&case));
        assert_eq!(checks.len(), 2);
        // Overhead 4.0 − 3.5 = 0.5 s meets "≤ floor + 0.5 s"; ratio median ≈ 0.259 meets 0.35.
        assert_eq!(checks[0].met, Some(true));
        assert_eq!(checks[1].met, Some(true));
        let md = markdown(
            &RunInfo {
                when: "now".into(),
                command: "kdrain-bench".into(),
                reps: 2,
                cores: 2,
                kubectl_version: "v1.32.4".into(),
                quick: false,
                real: false,
            },
            &[case],
        );
        assert!(md.contains("| B2 | kdrain | 2/2 | 4.000 | 3.500 | 0.500 |"));
    }
}
