//! B5, pool rotation (issue 13): the same pool rotated three ways on identical fresh kubesim
//! clusters, with the harness playing the patch-and-reboot operator (`rotation.rs`) in all three:
//! `kubectl drain -l pool=old` (one node at a time), `kdrain drain -l pool=old --parallel 10
//! --ignore-capacity` (all at once) and `kdrain drain -l pool=old --parallel 10
//! --wait-for-capacity` (planned waves).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use tokio::time::Instant;

use crate::b5_floor::floor_of;
use crate::backend::{Backend, ClusterKind};
use crate::cases::{BenchCase, Target};
use crate::child::{ChildOutcome, ChildSpec, RunningChild};
use crate::floor::RotationFloor;
use crate::measure::{Programs, resolve_nodes, wait_budgets_settled};
use crate::rotation::{Caches, NodeRotation, Observations, Observer, Operator};
use crate::scenario::ScenarioModel;
use crate::tracker::stays_on_node;
use crate::tracker::{Observed, Tracker};

/// The three ways B5 rotates the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Variant {
    /// `kubectl drain -l pool=old`: one node at a time.
    Kubectl,
    /// `kdrain drain --parallel N --ignore-capacity`: every node at once.
    AllAtOnce,
    /// `kdrain drain --parallel N --wait-for-capacity`: waves that follow the room.
    Planned,
}

impl Variant {
    /// Row label.
    pub fn label(self) -> &'static str {
        match self {
            Variant::Kubectl => "kubectl (one by one)",
            Variant::AllAtOnce => "kdrain all at once",
            Variant::Planned => "kdrain planned waves",
        }
    }
}

/// The flag the planned run needs; when the kdrain binary lacks it, the run is reported pending.
pub const WAIT_FOR_CAPACITY: &str = "--wait-for-capacity";

/// B5's settings, full size or quick.
#[derive(Debug, Clone)]
pub struct RotationCase {
    /// The drain target and common flags (B1–B4's structure; `kdrain_parallel` is the pool size).
    pub case: BenchCase,
    /// Seconds the operator takes to patch and reboot a drained node.
    pub reboot: Duration,
    /// `--timeout` of the all-at-once run (kdrain stops there, exit 3).
    pub all_at_once_timeout: Duration,
    /// The harness kills any run after this long.
    pub deadline: Duration,
}

/// B5 at full size (10 + 3 nodes) or quick (4 + 1).
pub fn rotation_case(quick: bool) -> RotationCase {
    let secs = |full: u64, small: u64| Duration::from_secs(if quick { small } else { full });
    RotationCase {
        case: BenchCase {
            id: "B5",
            title: if quick {
                "B5 rotation (quick): 4 nodes at 70 % CPU, 1 spare, reboot 1 s"
            } else {
                "B5 rotation: 10 nodes at 70 % CPU, 3 spares, reboot 3 s"
            },
            stem: "b5-rotation",
            target: Target::Selector("pool=old".to_string()),
            kdrain_parallel: Some(if quick { 4 } else { 10 }),
            kubectl_timeout: None,
            deadline: secs(300, 60),
            kubectl_deadline: secs(420, 60),
            kubectl_runs: None,
        },
        reboot: secs(3, 1),
        all_at_once_timeout: secs(180, 8),
        deadline: secs(420, 60),
    }
}

/// Everything recorded about one B5 run.
#[derive(Debug, Clone)]
pub struct RotationRun {
    /// Which way.
    pub variant: Variant,
    /// Repetition, from 0.
    pub rep: usize,
    /// The command line (program name and flags after `drain`).
    pub command: String,
    /// Target pods and when the last was gone.
    pub observed: Observed,
    /// The drain process.
    pub child: ChildOutcome,
    /// Evictions accepted (201) and refused (429), from kubesim's counters (the harness evicts nothing).
    pub evictions: u64,
    /// 429 answers to evictions.
    pub throttled: u64,
    /// Pending, budget-blocked time and re-evictions.
    pub seen: Observations,
    /// What the operator did to each pool node.
    pub rotations: BTreeMap<String, NodeRotation>,
    /// kubesim's invariant log.
    pub violations: Vec<String>,
    /// The floor of this cluster, or why there is none.
    pub floor: Result<RotationFloor, String>,
    /// kdrain's wave lines (`wave N of M…`, `waiting for room…`) with the second the harness read
    /// them from its output (polled every 100 ms).
    pub wave_lines: Vec<(f64, String)>,
}

/// kdrain's JSON events about waves (`wave_started`, `waiting_for_room`) in words; None for others.
pub fn wave_line(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let names = |key: &str| {
        v[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    match v["event"].as_str()? {
        "wave_started" => {
            let waiting = names("waiting_for_room");
            let waiting = if waiting.is_empty() {
                String::new()
            } else {
                format!(" (waiting for room: {waiting})")
            };
            Some(format!(
                "wave {} of {}: {}{waiting}",
                v["wave"],
                v["of"],
                names("nodes")
            ))
        }
        "waiting_for_room" => Some(format!(
            "waiting for room: {} ({})",
            names("nodes"),
            v["reason"].as_str().unwrap_or_default()
        )),
        _ => None,
    }
}

/// Wave lines read so far, with the second each was read.
type WaveLines = Arc<std::sync::Mutex<Vec<(f64, String)>>>;

/// Reads the lines of `path` that name waves or the wait for room as they appear, with the
/// seconds since `origin`, until aborted.
fn follow_wave_lines(path: PathBuf, origin: Instant) -> (WaveLines, tokio::task::JoinHandle<()>) {
    let lines: WaveLines = Arc::default();
    let out = lines.clone();
    let task = tokio::spawn(async move {
        let mut seen = 0;
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            // Only whole lines; a line being written is read on the next poll.
            let whole = text.rfind('\n').map_or("", |end| &text[..end]);
            let all: Vec<&str> = whole.lines().collect();
            if all.len() > seen {
                let at = origin.elapsed().as_secs_f64();
                let mut out = out.lock().unwrap();
                out.extend(
                    all[seen..]
                        .iter()
                        .filter_map(|l| wave_line(l))
                        .map(|l| (at, l)),
                );
                seen = all.len();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (lines, task)
}

impl RotationRun {
    /// The drain exited 0 and every target pod is gone.
    pub fn completed(&self) -> bool {
        self.child.exit_code == Some(0) && self.observed.wall_seconds.is_some()
    }

    /// When the last pool node was back, if all were.
    pub fn rotation_end(&self) -> Option<f64> {
        self.rotations
            .values()
            .map(|r| r.back_at)
            .collect::<Option<Vec<f64>>>()
            .and_then(|v| v.into_iter().reduce(f64::max))
    }
}

/// Whether this kdrain has `--wait-for-capacity` (`kdrain drain --help` names it).
pub fn has_wait_for_capacity(kdrain: &Path) -> bool {
    std::process::Command::new(kdrain)
        .args(["drain", "--help"])
        .output()
        .ok()
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains(WAIT_FOR_CAPACITY))
}

/// The program and arguments of one variant.
pub fn command_for(
    rc: &RotationCase,
    variant: Variant,
    programs: &Programs,
    kubeconfig: &Path,
    work: &Path,
) -> (PathBuf, Vec<String>) {
    let mut args = rc.case.drain_args(kubeconfig);
    let parallel = rc.case.kdrain_parallel.unwrap_or(1);
    match variant {
        Variant::Kubectl => {
            args.push(format!("--cache-dir={}", work.join("kube-cache").display()));
            (programs.kubectl.clone(), args)
        }
        Variant::AllAtOnce => {
            args.push(format!("--parallel={parallel}"));
            args.push("--ignore-capacity".to_string());
            args.push("--output=json".to_string());
            args.push(format!("--timeout={}s", rc.all_at_once_timeout.as_secs()));
            (programs.kdrain.clone(), args)
        }
        Variant::Planned => {
            args.push(format!("--parallel={parallel}"));
            args.push(WAIT_FOR_CAPACITY.to_string());
            args.push("--output=json".to_string());
            (programs.kdrain.clone(), args)
        }
    }
}

/// Start-up time of a pod's workload per the scenario (its readySeconds; kubesim's default 1 s).
fn startup_lookup(model: &ScenarioModel) -> crate::rotation::StartupOf {
    let model = model.clone();
    Arc::new(move |ns: &str, labels: &BTreeMap<String, String>| {
        model
            .workload_for(ns, labels)
            .and_then(|w| w.ready_seconds)
            .unwrap_or(1.0)
    })
}

/// Runs one variant of B5 on a fresh kubesim.
pub async fn run_rotation(
    rc: &RotationCase,
    scenario: &Path,
    model: &ScenarioModel,
    variant: Variant,
    rep: usize,
    programs: &Programs,
) -> Result<RotationRun> {
    let work = tempfile::tempdir()?;
    let mut backend = Backend::start(ClusterKind::Kubesim, scenario, work.path()).await?;
    let result = drive(rc, model, variant, rep, programs, &mut backend, work.path()).await;
    backend.shutdown().await;
    result
}

async fn drive(
    rc: &RotationCase,
    model: &ScenarioModel,
    variant: Variant,
    rep: usize,
    programs: &Programs,
    backend: &mut Backend,
    work: &Path,
) -> Result<RotationRun> {
    let kubeconfig = work.join("kubeconfig");
    backend.write_kubeconfig(&kubeconfig)?;
    let home = work.join("home");
    std::fs::create_dir_all(&home)?;
    let client = backend.client();
    let pool = resolve_nodes(&client, &rc.case.target).await?;
    let tracker = Tracker::start(client.clone(), &pool).await?;
    tracker.wait_all_ready(Duration::from_secs(120)).await?;
    wait_budgets_settled(&client, model, Duration::from_secs(120)).await?;
    let floor = floor_of(&client, model, &pool, rc.reboot).await;
    let (caches, watches) = Caches::start(&client).await?;
    let targets: BTreeSet<String> = caches_target_uids(&client, &pool).await?;

    let (program, args) = command_for(rc, variant, programs, &kubeconfig, work);
    let command = std::iter::once(
        program
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
    )
    .chain(
        args.iter()
            .filter(|a| !a.starts_with("--kubeconfig") && !a.starts_with("--cache-dir"))
            .cloned(),
    )
    .collect::<Vec<_>>()
    .join(" ");
    let spec = ChildSpec {
        program,
        args,
        env: vec![
            ("HOME".to_string(), home.display().to_string()),
            (
                "PATH".to_string(),
                std::env::var("PATH").unwrap_or_default(),
            ),
            ("LANG".to_string(), "C.UTF-8".to_string()),
        ],
        dir: work.to_path_buf(),
    };

    backend.start_counting().await?;
    tracker.start_timing();
    let origin = Instant::now();
    let operator = Operator::start(client.clone(), caches.clone(), &pool, rc.reboot, origin);
    let observer = Observer::start(caches, &pool, targets, startup_lookup(model), origin);
    let (wave_lines, follower) = follow_wave_lines(work.join("stdout.txt"), origin);
    let child = RunningChild::spawn(spec)?.wait(rc.deadline).await?;
    if child.exit_code == Some(0) {
        tracker.wait_all_gone(Duration::from_secs(10)).await;
        operator
            .wait_all_back(rc.reboot + Duration::from_secs(5))
            .await;
    }
    let observed = tracker.observed(origin);
    let seen = observer.finish(origin.elapsed().as_secs_f64());
    let rotations = operator.rotations();
    operator.stop();
    tokio::time::sleep(Duration::from_millis(150)).await;
    follower.abort();
    let wave_lines = wave_lines.lock().unwrap().clone();
    for w in watches {
        w.abort();
    }
    tracker.stop();
    let (lines, violations) = backend.finish(&pool).await?;
    let count = |code: u16| {
        lines
            .iter()
            .filter(|l| l.verb == "create" && l.resource == "pods/eviction" && l.code == code)
            .map(|l| l.count)
            .sum()
    };
    Ok(RotationRun {
        variant,
        rep,
        command,
        observed,
        evictions: count(201),
        throttled: count(429),
        child,
        seen,
        rotations,
        violations,
        floor,
        wave_lines,
    })
}

/// UIDs of the drainable pods on the pool now (the tracker's target set, read again for the observer).
async fn caches_target_uids(client: &kube::Client, pool: &[String]) -> Result<BTreeSet<String>> {
    let pods = Api::<Pod>::all(client.clone());
    let mut uids = BTreeSet::new();
    for node in pool {
        let list = pods
            .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
            .await
            .with_context(|| format!("cannot list the pods of {node}"))?;
        uids.extend(
            list.items
                .iter()
                .filter(|p| !stays_on_node(p))
                .filter_map(|p| p.metadata.uid.clone()),
        );
    }
    Ok(uids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn b5_scenarios_parse_and_have_the_pool_the_issue_names() {
        for quick in [false, true] {
            let rc = rotation_case(quick);
            let path = rc.case.scenario_path(&root(), quick);
            let model = ScenarioModel::from_file(&path).unwrap();
            // Every budget lets exactly one pod go at a time.
            assert!(model.disruptions_allowed().unwrap().iter().all(|&a| a == 1));
            let scenario = kubesim::Scenario::from_file(&path).unwrap();
            let pool = scenario
                .nodes
                .iter()
                .filter(|n| n.labels.get("pool").map(String::as_str) == Some("old"))
                .count();
            assert_eq!(pool, if quick { 4 } else { 10 });
        }
    }

    #[test]
    fn the_three_commands() {
        let rc = rotation_case(false);
        let programs = Programs {
            kdrain: PathBuf::from("/bin/kdrain"),
            kubectl: PathBuf::from("/bin/kubectl"),
        };
        let kc = Path::new("/tmp/kc");
        let work = Path::new("/tmp/w");
        let (p, args) = command_for(&rc, Variant::Kubectl, &programs, kc, work);
        assert_eq!(p, PathBuf::from("/bin/kubectl"));
        assert_eq!(&args[..3], ["drain", "-l", "pool=old"]);
        assert!(args.contains(&"--ignore-daemonsets".to_string()));
        assert!(!args.iter().any(|a| a.starts_with("--parallel")));
        let (p, args) = command_for(&rc, Variant::AllAtOnce, &programs, kc, work);
        assert_eq!(p, PathBuf::from("/bin/kdrain"));
        assert!(args.contains(&"--parallel=10".to_string()));
        assert!(args.contains(&"--ignore-capacity".to_string()));
        assert!(args.contains(&"--timeout=180s".to_string()));
        let (_, args) = command_for(&rc, Variant::Planned, &programs, kc, work);
        assert!(args.contains(&"--parallel=10".to_string()));
        assert!(args.contains(&WAIT_FOR_CAPACITY.to_string()));
        assert!(!args.contains(&"--ignore-capacity".to_string()));
        assert!(args.contains(&"--output=json".to_string()));
    }

    #[test]
    fn wave_events_in_words() {
        let started = r#"{"event":"wave_started","wave":2,"of":3,"nodes":["old-04","old-05"],"waiting_for_room":["old-06"]}"#;
        assert_eq!(
            wave_line(started).unwrap(),
            "wave 2 of 3: old-04, old-05 (waiting for room: old-06)"
        );
        let first = r#"{"event":"wave_started","wave":1,"of":1,"nodes":["a"]}"#;
        assert_eq!(wave_line(first).unwrap(), "wave 1 of 1: a");
        let waiting = r#"{"event":"waiting_for_room","nodes":["old-06"],"reason":"no room"}"#;
        assert_eq!(
            wave_line(waiting).unwrap(),
            "waiting for room: old-06 (no room)"
        );
        assert_eq!(wave_line(r#"{"event":"evicted"}"#), None);
        assert_eq!(wave_line("node/old-00 cordoned"), None);
    }
}
