//! The markdown of B5's results (`bench/results/b5.md`).

use std::fmt::Write as _;

use crate::b5::{RotationCase, RotationRun, Variant, WAIT_FOR_CAPACITY};
use crate::report::{RunInfo, median};

/// All of B5: the runs made and, when the planned run could not be made, why.
#[derive(Debug, Clone)]
pub struct RotationResults {
    /// Settings.
    pub case: RotationCase,
    /// Every run.
    pub runs: Vec<RotationRun>,
    /// Why the planned run is missing, when it is.
    pub planned_pending: Option<String>,
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.digits$}"))
}

/// Medians of one variant.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantSummary {
    /// Runs made.
    pub runs: usize,
    /// Runs that finished (exit 0, every pool pod gone).
    pub completed: usize,
    /// Median wall seconds over finished runs.
    pub wall: Option<f64>,
    /// Median pods that went Pending.
    pub pending: Option<f64>,
    /// Median pods still Pending at the end.
    pub left_pending: Option<f64>,
    /// Median longest Pending seconds.
    pub longest: Option<f64>,
    /// Median total Pending seconds.
    pub total: Option<f64>,
    /// Median pods Pending longer than their start-up time.
    pub over_startup: Option<f64>,
    /// Median budget-blocked seconds.
    pub blocked: Option<f64>,
    /// Median evictions per pool pod.
    pub evictions_per_pod: Option<f64>,
    /// Median re-evicted pods.
    pub re_evicted: Option<f64>,
    /// Median 429s.
    pub throttled: Option<f64>,
    /// Median time the last pool node was back (runs where all came back).
    pub pool_back: Option<f64>,
    /// Violations over all runs.
    pub violations: usize,
}

impl RotationResults {
    /// The floor (the same cluster for every run).
    pub fn floor(&self) -> Option<&crate::floor::RotationFloor> {
        self.runs.iter().find_map(|r| r.floor.as_ref().ok())
    }

    /// Medians of one variant, None when it never ran.
    pub fn summary(&self, variant: Variant) -> Option<VariantSummary> {
        let runs: Vec<&RotationRun> = self.runs.iter().filter(|r| r.variant == variant).collect();
        if runs.is_empty() {
            return None;
        }
        let of = |f: &dyn Fn(&RotationRun) -> Option<f64>| {
            median(&runs.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
        };
        Some(VariantSummary {
            runs: runs.len(),
            completed: runs.iter().filter(|r| r.completed()).count(),
            wall: of(&|r| r.completed().then_some(r.observed.wall_seconds).flatten()),
            pending: of(&|r| Some(r.seen.pending.pods as f64)),
            left_pending: of(&|r| Some(r.seen.pending.left_pending as f64)),
            longest: of(&|r| Some(r.seen.pending.longest)),
            total: of(&|r| Some(r.seen.pending.total)),
            over_startup: of(&|r| Some(r.seen.pending.over_startup as f64)),
            blocked: of(&|r| Some(r.seen.budget_blocked_seconds)),
            evictions_per_pod: of(&|r| {
                (r.observed.targets > 0).then(|| r.evictions as f64 / r.observed.targets as f64)
            }),
            re_evicted: of(&|r| Some(r.seen.re_evicted as f64)),
            throttled: of(&|r| Some(r.throttled as f64)),
            pool_back: of(&|r| r.rotation_end()),
            violations: runs.iter().map(|r| r.violations.len()).sum(),
        })
    }
}

/// The issue's B5 targets on the planned run's medians: (target, measured, met; None = not measured).
pub fn targets(results: &RotationResults) -> Vec<(String, String, Option<bool>)> {
    let planned = results.summary(Variant::Planned);
    let floor = results.floor().map(|f| f.seconds);
    let finished = planned.as_ref().map(|s| (s.completed, s.runs));
    let over = planned.as_ref().and_then(|s| s.over_startup);
    let ratio = planned
        .as_ref()
        .and_then(|s| s.wall)
        .zip(floor)
        .map(|(w, f)| w / f);
    vec![
        (
            "planned run finishes".to_string(),
            finished.map_or("not run".to_string(), |(c, n)| format!("{c}/{n} finished")),
            finished.map(|(c, n)| c == n),
        ),
        (
            "no pod Pending longer than its start-up time (planned)".to_string(),
            num(over, 0) + " pods over",
            over.map(|o| o == 0.0),
        ),
        (
            "planned wall ≤ 1.2 × floor".to_string(),
            num(ratio, 3) + " × floor",
            ratio.map(|r| r <= 1.2),
        ),
    ]
}

fn met(m: Option<bool>) -> &'static str {
    match m {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "not measured",
    }
}

/// The whole results file.
pub fn markdown(info: &RunInfo, results: &RotationResults) -> String {
    let rc = &results.case;
    let r = rc.reboot.as_secs_f64();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# B5 pool rotation: kubectl one by one, kdrain all at once, kdrain in planned waves\n"
    );
    let _ = writeln!(
        md,
        "`{}` at {}, {} CPU cores, {} repetition(s) per run. kubectl: {}.\n",
        info.command, info.when, info.cores, info.reps, info.kubectl_version
    );
    let _ = writeln!(
        md,
        "Scenario: {}, `scenarios/bench/{}{}.yaml`.\n",
        rc.case.title,
        if info.quick { "quick/" } else { "" },
        rc.case.stem
    );
    let _ = writeln!(
        md,
        "**Design (decided by the lead).** With 10 nodes at 70 % of their CPU and 3 spares of the same size, \
         the pool's load (7 nodes' worth) cannot all fit on the spares while drained nodes stay away. B5 \
         therefore models a patch rotation as the OS-update operator kdrain grew from does it: the harness \
         plays that operator (`crates/kdrain-bench/src/rotation.rs`, kube-runtime watches of nodes and pods \
         through the kube client). When it sees a pool node drained (cordoned, no pod left but DaemonSet and \
         mirror pods) it patches and reboots it, modelled as R = {r} s more cordoned, then uncordons it with \
         one PATCH (label `kdrain-bench/patched=true`). The operator runs identically in all three runs; \
         each runs on its own fresh kubesim loaded from the same file. All three get \
         `--ignore-daemonsets --delete-emptydir-data`. kubectl drain cordons every selected node before \
         it drains the first (`RunDrain` calls `RunCordonOrUncordon` on all of them first, \
         kubernetes/kubectl `pkg/cmd/drain/drain.go`), so its replacements never land on pool nodes not \
         yet drained: they go to the spares and to nodes already back. kdrain cordons every target first \
         too, and its dispatcher sends evictions in plan order (node by node within a tier), never more \
         per budget than the budget allows.\n"
    );
    let _ = writeln!(
        md,
        "**Measures.** *Wall*: from starting the command until the harness's watch saw the last pool pod \
         (present at the start) gone. *Pending*: pods created during the run that the scheduler could not \
         place (`PodScheduled=False`), counted from the first sample that saw them to the first that saw \
         them bound (or gone, or the end of the run; samples every 50 ms); *over start-up*: Pending longer \
         than their workload's `readySeconds`. *Budget-blocked*: seconds during which at least one budget \
         had `disruptionsAllowed: 0` while a pool pod it covers, not yet being deleted, was still on a \
         cordoned pool node (the harness's watch of budgets, pods and nodes, sampled every 50 ms; the same \
         measure for every tool, whether or not the tool was asking at that moment; the 429 answers kubesim \
         counted are shown beside it). *Evictions / pod*: evictions kubesim accepted (201) divided by the \
         pool's pods; *re-evicted*: pods created during the run that were evicted again. *Pool back*: when \
         the operator uncordoned the last pool node. Medians over the repetitions (wall: over finished runs).\n"
    );
    let _ = writeln!(
        md,
        "| Run | Command | Finished | Wall (s) | Wall / floor | Pods Pending | Left Pending | Longest Pending (s) | Total Pending (s) | Pending > start-up | Budget-blocked (s) | Evictions / pod | Re-evicted | 429s | Pool back (s) | Violations |"
    );
    let _ = writeln!(
        md,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let floor = results.floor().map(|f| f.seconds);
    for variant in [Variant::Kubectl, Variant::AllAtOnce, Variant::Planned] {
        let command = results
            .runs
            .iter()
            .find(|x| x.variant == variant)
            .map(|x| format!("`{}`", x.command))
            .unwrap_or_default();
        match results.summary(variant) {
            Some(s) => {
                let _ = writeln!(
                    md,
                    "| {} | {} | {}/{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    variant.label(),
                    command,
                    s.completed,
                    s.runs,
                    num(s.wall, 3),
                    num(s.wall.zip(floor).map(|(w, f)| w / f), 2),
                    num(s.pending, 0),
                    num(s.left_pending, 0),
                    num(s.longest, 2),
                    num(s.total, 1),
                    num(s.over_startup, 0),
                    num(s.blocked, 1),
                    num(s.evictions_per_pod, 2),
                    num(s.re_evicted, 0),
                    num(s.throttled, 0),
                    num(s.pool_back, 1),
                    s.violations
                );
            }
            None => {
                let why = if variant == Variant::Planned {
                    results.planned_pending.clone().unwrap_or_default()
                } else {
                    "not run".to_string()
                };
                let _ = writeln!(
                    md,
                    "| {} | pending: {why} | – | – | – | – | – | – | – | – | – | – | – | – | – | – |",
                    variant.label()
                );
            }
        }
    }
    let _ = writeln!(md, "\n## Floor\n");
    match results.floor() {
        Some(f) => {
            let _ = writeln!(
                md,
                "Floor = max(budget bound, capacity bound, chain bound) = max({:.3}, {:.3}, {:.3}) = **{:.3} s** \
                 (`rotation_floor` in `crates/kdrain-bench/src/floor.rs`), a lower bound no tool that \
                 evicts each pod once (the pool cordoned first, as all three do) can beat:\n",
                f.budget_floor, f.capacity_floor, f.chain_floor, f.seconds
            );
            let _ = writeln!(
                md,
                "- *Budget bound*: every pool pod must be evicted through its budget, and a budget gets a \
                 disruption back only when a replacement is Ready (`readySeconds` after the eviction, \
                 placing it at once); the last pod is gone its stop time after its eviction. Simulated per \
                 budget, longest stops first (`drain_floor`, as B1–B4), with room ignored.\n\
                 - *Capacity bound*: at the last eviction of the pods of a set of emptied nodes, all but the \
                 budgets' slack (disruptions allowed × largest request, per budget) of their CPU must run \
                 Ready somewhere: on the spares, on pool nodes still there (their free CPU, counted although \
                 all three tools cordon the pool first), or on nodes back at least a start-up time before. \
                 A node is back R after it is empty. With D = R + shortest start-up + shortest stop, the \
                 nodes that can be empty by t are at most M(nodes empty by t − D) (M: fractional packing, \
                 lightest nodes first); none is empty before the fastest node alone could be drained. So \
                 with G generations (applications of M from 0 to reach the whole pool), the bound is \
                 first empty + (G − 1) × D. Here G = {}: {:.3} s.\n",
                f.generations, f.capacity_floor
            );
            let _ = writeln!(
                md,
                "- *Chain bound*: no node is back before t1 = first empty + R, so until then replacements \
                 go to the spares only. A budget allowing a disruptions has a tokens: an eviction takes one, \
                 it comes back when the replacement is Ready (start-up after its placement). Tokens back \
                 before t1 + start-up are the a initial ones and those of the P pods placed before t1, so the \
                 other n − a − P evictions wait for tokens of pods placed at t1 or later, a start-up each: \
                 a drain ending at T needs P ≥ n − a − a × floor((T − t1 − stop) / start-up). Every \
                 replacement but the slack is placed a start-up and a stop before the end, so nodes back by \
                 then must hold it: while they were emptied before t1, their pods went to the spares (all \
                 but a per budget), which raises P further. The spares must hold Σ P × request; the least T \
                 for which they can is the bound. Here {:.3} s.\n",
                f.chain_floor
            );
        }
        None => {
            let why = results
                .runs
                .iter()
                .find_map(|r| r.floor.clone().err())
                .unwrap_or_else(|| "no run".to_string());
            let _ = writeln!(md, "No floor: {why}.\n");
        }
    }
    let _ = writeln!(md, "## Targets (issue 13)\n");
    let _ = writeln!(md, "| Target | Measured | Met |\n|---|---|---|");
    for (target, measured, m) in targets(results) {
        let _ = writeln!(md, "| {target} | {measured} | {} |", met(m));
    }
    if let Some(why) = &results.planned_pending {
        let _ = writeln!(
            md,
            "\nThe planned run is **pending**: {why}. It runs as soon as the kdrain binary has `{WAIT_FOR_CAPACITY}`."
        );
    }
    let _ = writeln!(md, "\n## Every run\n");
    let _ = writeln!(
        md,
        "| Rep | Run | Exit | Wall (s) | Pool pods left | Pods Pending | Left Pending | Longest Pending (s) | Total Pending (s) | Pending > start-up | Budget-blocked (s) | Evictions | Re-evicted | 429s | Pool back (s) | Violations |"
    );
    let _ = writeln!(
        md,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for run in &results.runs {
        let exit = match (run.child.exit_code, run.child.killed_at_deadline) {
            (_, true) => "killed at deadline".to_string(),
            (Some(c), _) => c.to_string(),
            (None, _) => "signal".to_string(),
        };
        let p = &run.seen.pending;
        let _ = writeln!(
            md,
            "| {} | {} | {exit} | {} | {}/{} | {} | {} | {:.2} | {:.1} | {} | {:.1} | {} | {} | {} | {} | {} |",
            run.rep,
            run.variant.label(),
            num(run.observed.wall_seconds, 3),
            run.observed.remaining,
            run.observed.targets,
            p.pods,
            p.left_pending,
            p.longest,
            p.total,
            p.over_startup,
            run.seen.budget_blocked_seconds,
            run.evictions,
            run.seen.re_evicted,
            run.throttled,
            num(run.rotation_end(), 1),
            run.violations.len()
        );
    }
    if let Some(run) = results
        .runs
        .iter()
        .filter(|r| r.variant == Variant::Planned)
        .min_by_key(|r| r.rep)
    {
        let _ = writeln!(
            md,
            "\n## The planned run's waves (rep {})\n\nkdrain's wave events (`--output=json`, both kdrain runs), with the second the harness read them \
             (its output polled every 100 ms), and when the operator saw each pool node drained and brought it back.\n",
            run.rep
        );
        let _ = writeln!(md, "```");
        for (at, line) in &run.wave_lines {
            let _ = writeln!(md, "{at:7.1} s  {line}");
        }
        let _ = writeln!(md, "```\n");
        let _ = writeln!(md, "| Node | Drained (s) | Back (s) |\n|---|---|---|");
        for (node, r) in &run.rotations {
            let _ = writeln!(
                md,
                "| {node} | {} | {} |",
                num(r.drained_at, 1),
                num(r.back_at, 1)
            );
        }
    }
    let mut first = true;
    for run in results
        .runs
        .iter()
        .filter(|r| !r.seen.pending.worst.is_empty())
    {
        if first {
            let _ = writeln!(
                md,
                "\n## Longest Pending pods\n\nPer run, up to {} pods, with the scheduler's last message.\n",
                crate::rotation_metrics::WORST
            );
            let _ = writeln!(
                md,
                "| Rep | Run | Pod | Pending (s) | Start-up (s) | Scheduler |\n|---|---|---|---|---|---|"
            );
            first = false;
        }
        for p in &run.seen.pending.worst {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.2} | {} | {} |",
                run.rep,
                run.variant.label(),
                p.name,
                p.seconds,
                p.startup,
                p.message.replace('|', "\\|")
            );
        }
    }
    for run in results.runs.iter().filter(|r| !r.violations.is_empty()) {
        let _ = writeln!(
            md,
            "\nViolations, rep {} {}:\n\n```\n{}\n```",
            run.rep,
            run.variant.label(),
            run.violations.join("\n")
        );
    }
    md
}
