//! kdrain-bench: kdrain against the installed `kubectl drain` on identical kubesim clusters, both
//! measured against the floor the workloads impose. Writes `bench/results/latest.md` and one SVG chart
//! per scenario.
//!
//! `cargo run --release -p kdrain-bench -- [--quick] [--reps N] [--scenario B1 ...]`
//! B5 (pool rotation, three runs side by side) writes `bench/results/b5.md`.

mod b5;
mod b5_floor;
mod b5_report;
mod backend;
mod cases;
mod chart;
mod child;
mod floor;
mod measure;
mod report;
mod rotation;
mod rotation_metrics;
mod scenario;
mod tracker;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;

use crate::backend::ClusterKind;
use crate::cases::all_cases;
use crate::measure::{Programs, Tool, run_once};
use crate::report::{CaseResults, RunInfo};
use crate::scenario::ScenarioModel;

/// Benchmark kdrain against kubectl drain on kubesim.
#[derive(Debug, Parser)]
#[command(name = "kdrain-bench", version)]
struct Args {
    /// Tiny versions of each scenario, one repetition: checks the harness works and no invariant is
    /// violated (a smoke test, not a measurement). Results go to target/kdrain-bench-quick unless --out.
    #[arg(long)]
    quick: bool,
    /// Repetitions per tool (kdrain and kubectl alternate).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Only these scenarios (B1, B2, B3, B4, B5); repeat the flag for several. Default: all
    /// (with --quick: B1–B4 only; B5 quick runs when named).
    #[arg(long = "scenario", value_name = "ID")]
    scenarios: Vec<String>,
    /// The kdrain binary. Default: build kdrain-cli with the same profile as this program and use it.
    #[arg(long)]
    kdrain: Option<PathBuf>,
    /// The kubectl binary.
    #[arg(long, default_value = "kubectl")]
    kubectl: PathBuf,
    /// Run kdrain only.
    #[arg(long)]
    skip_kubectl: bool,
    /// B5: seconds the harness's operator takes to patch and reboot a drained node (default 3;
    /// quick 1). Another value writes b5-reboot-<R>s.md instead of b5.md.
    #[arg(long, value_name = "SECONDS", value_parser = parse_reboot)]
    reboot_seconds: Option<u64>,
    /// B4 at its medium size (scenarios/bench/medium/b4-big.yaml: 100 nodes × 110 pods, 10
    /// drained) instead of 110,000 pods, as --cluster real runs it: the same scenario on both
    /// clusters. Use with --out, so the full-size results are not overwritten.
    #[arg(long)]
    b4_medium: bool,
    /// The cluster: kubesim (in-process) or a real control plane (etcd, kube-apiserver,
    /// kube-controller-manager, kube-scheduler and kwok on 127.0.0.1, one fresh cluster per run;
    /// build it once with `cargo xtask control-plane build`). Real: results go to real.md and
    /// real-*.svg, and B4 runs at its medium size (100 nodes × 110 pods, 10 drained; its quick
    /// size with --quick): 110,000 pods do not fit a real control plane on a 2-core machine.
    #[arg(long, value_enum, default_value = "kubesim")]
    cluster: ClusterKind,
    /// With --cluster real: the controller-manager's client rate limit in requests/s (its
    /// --kube-api-qps, burst twice that) instead of the upstream 20/s, e.g. to see how much of
    /// a drain's time the disruption controller's budget status writes cost.
    #[arg(long, value_name = "QPS", value_parser = clap::value_parser!(u32).range(1..))]
    controller_qps: Option<u32>,
    /// Directory for latest.md and the charts. Default: bench/results (quick: target/kdrain-bench-quick).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("..").join("..");
    root.canonicalize().unwrap_or(root)
}

/// Builds kdrain-cli with this program's profile (a no-op when up to date) and returns the binary.
fn locate_kdrain(root: &Path) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let dir = exe.parent().context("this program has no directory")?;
    let release = dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut build = std::process::Command::new(&cargo);
    build
        .current_dir(root)
        .args(["build", "-p", "kdrain-cli", "--bin", "kdrain"]);
    if release {
        build.arg("--release");
    }
    eprintln!("building kdrain: {build:?}");
    match build.status() {
        Ok(status) if status.success() => {}
        Ok(status) => {
            bail!("building kdrain failed ({status}); pass --kdrain PATH to use a prebuilt binary")
        }
        Err(e) => eprintln!("cannot run cargo ({e}); using whatever kdrain binary is there"),
    }
    let path = dir.join("kdrain");
    if !path.exists() {
        bail!(
            "{} does not exist; build it or pass --kdrain PATH",
            path.display()
        );
    }
    Ok(path)
}

fn kubectl_version(kubectl: &Path) -> String {
    std::process::Command::new(kubectl)
        .args(["version", "--client"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "not found".to_string())
}

fn describe(run: &measure::RunResult) -> String {
    format!(
        "wall {} s, {} pods left, {} requests, {} × 429, cpu {} s, rss {} MiB, exit {:?}, {} violations",
        run.observed
            .wall_seconds
            .map_or("–".to_string(), |w| format!("{w:.3}")),
        run.observed.remaining,
        run.total_requests(),
        run.throttled(),
        run.child
            .cpu_seconds
            .map_or("–".to_string(), |c| format!("{c:.2}")),
        run.child.max_rss_bytes.map_or("–".to_string(), |b| format!(
            "{:.1}",
            b as f64 / 1048576.0
        )),
        run.child.exit_code,
        run.violations.len()
    )
}

async fn run(args: Args) -> Result<bool> {
    let root = workspace_root();
    if let Some(qps) = args.controller_qps {
        if args.cluster != ClusterKind::Real {
            bail!(
                "--controller-qps sets the real controller-manager's rate limit: add --cluster real, or drop it"
            );
        }
        backend::set_controller_qps(qps);
    }
    let quick = args.quick;
    let reps = if quick { 1 } else { args.reps.max(1) };
    let programs = Programs {
        kdrain: match &args.kdrain {
            Some(path) => path.clone(),
            None => locate_kdrain(&root)?,
        },
        kubectl: args.kubectl.clone(),
    };
    let out = args.out.clone().unwrap_or_else(|| {
        if quick {
            root.join("target").join("kdrain-bench-quick")
        } else {
            root.join("bench").join("results")
        }
    });
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let wanted: Vec<String> = args.scenarios.iter().map(|s| s.to_uppercase()).collect();
    let cases: Vec<_> = all_cases(quick)
        .into_iter()
        .filter(|c| wanted.is_empty() || wanted.iter().any(|w| w == c.id))
        .collect();
    let want_b5 = if quick {
        wanted.iter().any(|w| w == "B5")
    } else {
        wanted.is_empty() || wanted.iter().any(|w| w == "B5")
    };
    if cases.is_empty() && !want_b5 {
        bail!(
            "no scenario matches {:?}; use B1, B2, B3, B4 or B5",
            args.scenarios
        );
    }
    let info = RunInfo {
        when: jiff::Timestamp::now()
            .strftime("%Y-%m-%d %H:%M UTC")
            .to_string(),
        command: std::iter::once("kdrain-bench".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
        reps,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kubectl_version: kubectl_version(&programs.kubectl),
        quick,
        real: args.cluster == ClusterKind::Real,
    };
    let real = info.real;
    let report_name = if real { "real.md" } else { "latest.md" };

    let mut results: Vec<CaseResults> = Vec::new();
    let mut ok = true;
    for case in &cases {
        // B4 full size (110,000 pods) does not fit a real control plane on this machine: it runs
        // at its medium size there (and on kubesim with --b4-medium, to compare the two).
        let medium = (real || args.b4_medium) && !quick;
        let medium_path = medium.then(|| case.medium_scenario_path(&root)).flatten();
        let path = medium_path
            .clone()
            .unwrap_or_else(|| case.scenario_path(&root, quick));
        let model = ScenarioModel::from_file(&path)?;
        let mut runs = Vec::new();
        for rep in 0..reps {
            let order = if rep % 2 == 0 {
                [Tool::Kdrain, Tool::Kubectl]
            } else {
                [Tool::Kubectl, Tool::Kdrain]
            };
            for tool in order {
                if tool == Tool::Kubectl && (args.skip_kubectl || !case.kubectl_runs_in(rep)) {
                    continue;
                }
                eprintln!("{} rep {rep} {}: running", case.id, tool.label());
                let result = run_once(case, &path, &model, tool, rep, &programs, args.cluster)
                    .await
                    .with_context(|| {
                        format!(
                            "{} rep {rep} with {}: the harness failed",
                            case.id,
                            tool.label()
                        )
                    })?;
                eprintln!(
                    "{} rep {rep} {}: {}",
                    case.id,
                    tool.label(),
                    describe(&result)
                );
                if !result.violations.is_empty() {
                    ok = false;
                }
                if quick && !result.completed() {
                    eprintln!("{}", result.child.output_tail);
                    ok = false;
                }
                runs.push(result);
            }
        }
        let chart = if real {
            format!("real-{}.svg", case.stem)
        } else {
            format!("{}.svg", case.stem)
        };
        let floor = runs.iter().find_map(|r| r.floor.clone().ok());
        chart::draw(&out.join(&chart), case.title, &runs, floor)?;
        results.push(CaseResults {
            id: case.id.to_string(),
            title: if medium_path.is_some() {
                "B4 big at its medium size: 100 nodes × 110 pods, 10 drained by label (1,100 pods)"
                    .to_string()
            } else {
                case.title.to_string()
            },
            chart,
            runs,
            kubectl_note: args
                .skip_kubectl
                .then(|| "--skip-kubectl was given".to_string()),
        });
        // Written after every scenario, so a long run leaves its partial results behind.
        let md = report::markdown(&info, &results);
        std::fs::write(out.join(report_name), &md)?;
    }
    if !results.is_empty() {
        let md = report::markdown(&info, &results);
        let table_end = md.find("\n## Targets").unwrap_or(md.len());
        println!("{}", &md[..table_end]);
        eprintln!("results written to {}", out.join(report_name).display());
    }
    if want_b5 {
        if real {
            eprintln!(
                "B5 runs on kubesim only (its operator and figures are not built for the real control plane); skipped"
            );
        } else if !run_b5(&root, &out, &info, &programs, reps, args.reboot_seconds).await? {
            ok = false;
        }
    }
    Ok(ok)
}

/// B5: the three rotations, `reps` times each, written to `b5.md`. False when a run violated an
/// invariant or (quick) a run that must finish did not.
async fn run_b5(
    root: &Path,
    out: &Path,
    info: &RunInfo,
    programs: &Programs,
    reps: usize,
    reboot_seconds: Option<u64>,
) -> Result<bool> {
    use crate::b5::{Variant, has_wait_for_capacity, rotation_case, run_rotation};
    let mut rc = rotation_case(info.quick);
    let file = match reboot_seconds {
        Some(r) if r != rc.reboot.as_secs() => {
            rc.reboot = std::time::Duration::from_secs(r);
            format!("b5-reboot-{r}s.md")
        }
        _ => "b5.md".to_string(),
    };
    let path = rc.case.scenario_path(root, info.quick);
    let model = ScenarioModel::from_file(&path)?;
    let planned_pending = (!has_wait_for_capacity(&programs.kdrain)).then(|| {
        format!(
            "{} has no {} yet",
            programs.kdrain.display(),
            b5::WAIT_FOR_CAPACITY
        )
    });
    let mut variants = vec![Variant::Kubectl, Variant::AllAtOnce];
    if planned_pending.is_none() {
        variants.push(Variant::Planned);
    }
    let mut results = b5_report::RotationResults {
        case: rc.clone(),
        runs: Vec::new(),
        planned_pending,
    };
    let mut ok = true;
    for rep in 0..reps {
        let mut order = variants.clone();
        if rep % 2 == 1 {
            order.reverse();
        }
        for variant in order {
            eprintln!("B5 rep {rep} {}: running", variant.label());
            let run = run_rotation(&rc, &path, &model, variant, rep, programs)
                .await
                .with_context(|| format!("B5 rep {rep} {}: the harness failed", variant.label()))?;
            eprintln!(
                "B5 rep {rep} {}: exit {:?}, wall {} s, {} pool pods left, {} went Pending ({} left), longest {:.2} s, {} over start-up, budget-blocked {:.1} s, {} evictions, {} re-evicted, {} × 429, {} violations",
                variant.label(),
                run.child.exit_code,
                run.observed
                    .wall_seconds
                    .map_or("–".to_string(), |w| format!("{w:.3}")),
                run.observed.remaining,
                run.seen.pending.pods,
                run.seen.pending.left_pending,
                run.seen.pending.longest,
                run.seen.pending.over_startup,
                run.seen.budget_blocked_seconds,
                run.evictions,
                run.seen.re_evicted,
                run.throttled,
                run.violations.len()
            );
            if !run.violations.is_empty() {
                ok = false;
            }
            // All at once is expected to stall: only the other two must finish in the smoke run.
            if info.quick && variant != Variant::AllAtOnce && !run.completed() {
                eprintln!("{}", run.child.output_tail);
                ok = false;
            }
            results.runs.push(run);
            std::fs::write(out.join(&file), b5_report::markdown(info, &results))?;
        }
    }
    let md = b5_report::markdown(info, &results);
    let end = md.find("\n## Floor").unwrap_or(md.len());
    println!("{}", &md[..end]);
    eprintln!("results written to {}", out.join(&file).display());
    Ok(ok)
}

fn parse_reboot(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(r) if (1..=600).contains(&r) => Ok(r),
        _ => Err(format!(
            "{text:?} is not a whole number of seconds from 1 to 600; give e.g. --reboot-seconds 3"
        )),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!(
                "kdrain-bench: some run violated an invariant or (with --quick) did not complete"
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("kdrain-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}
