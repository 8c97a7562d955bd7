//! One measured drain: a fresh in-process kubesim, the harness's pod tracker, the drain command as a
//! child process, and everything recorded about it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::ListParams;
use tokio::time::Instant;

use crate::backend::{Backend, ClusterKind};
use crate::cases::{BenchCase, Target};
use crate::child::{ChildOutcome, ChildSpec, RunningChild};
use crate::floor::drain_floor;
use crate::scenario::ScenarioModel;
use crate::tracker::{Observed, Tracker};

/// The two drain tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tool {
    /// This project's `kdrain`.
    Kdrain,
    /// The installed `kubectl drain`.
    Kubectl,
}

impl Tool {
    /// Name shown in the table and the chart.
    pub fn label(self) -> &'static str {
        match self {
            Tool::Kdrain => "kdrain",
            Tool::Kubectl => "kubectl",
        }
    }
}

/// Where the two programs are.
#[derive(Debug, Clone)]
pub struct Programs {
    /// The `kdrain` binary.
    pub kdrain: PathBuf,
    /// The `kubectl` binary.
    pub kubectl: PathBuf,
}

/// Requests of one kind seen by the simulator during the drain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RequestLine {
    /// Kubernetes verb (get, list, watch, create, patch, …).
    pub verb: String,
    /// Plural resource, with `/subresource` when there is one.
    pub resource: String,
    /// HTTP status code.
    pub code: u16,
    /// How many.
    pub count: u64,
}

/// Everything recorded about one drain.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Which tool drained.
    pub tool: Tool,
    /// Repetition number, from 0.
    pub rep: usize,
    /// The nodes drained.
    pub nodes: Vec<String>,
    /// What the harness's watch saw.
    pub observed: Observed,
    /// The floor for this cluster, or why there is none.
    pub floor: Result<f64, String>,
    /// The drain's requests, by verb/resource/code, harness requests already subtracted.
    pub requests: Vec<RequestLine>,
    /// The harness's own (list, watch) requests subtracted from `requests`.
    pub harness_requests: (u64, u64),
    /// The child process.
    pub child: ChildOutcome,
    /// kubesim's invariant log after the drain, one line each.
    pub violations: Vec<String>,
    /// Seconds kubesim took to load the scenario and start.
    pub load_seconds: f64,
}

impl RunResult {
    /// Requests in total.
    pub fn total_requests(&self) -> u64 {
        self.requests.iter().map(|r| r.count).sum()
    }

    /// 429 answers the drain received.
    pub fn throttled(&self) -> u64 {
        self.requests
            .iter()
            .filter(|r| r.code == 429)
            .map(|r| r.count)
            .sum()
    }

    /// The run completed: the child exited 0 and every target pod is gone.
    pub fn completed(&self) -> bool {
        self.child.exit_code == Some(0) && self.observed.wall_seconds.is_some()
    }
}

pub(crate) async fn resolve_nodes(client: &kube::Client, target: &Target) -> Result<Vec<String>> {
    match target {
        Target::Nodes(nodes) => Ok(nodes.clone()),
        Target::Selector(selector) => {
            let nodes: Api<Node> = Api::all(client.clone());
            let list = nodes.list(&ListParams::default().labels(selector)).await?;
            let mut names: Vec<String> = list
                .items
                .into_iter()
                .filter_map(|n| n.metadata.name)
                .collect();
            names.sort();
            if names.is_empty() {
                bail!("no node matches {selector}");
            }
            Ok(names)
        }
    }
}

/// Waits until every budget reports the disruptions the scenario implies (its status is computed).
pub(crate) async fn wait_budgets_settled(
    client: &kube::Client,
    model: &ScenarioModel,
    limit: Duration,
) -> Result<()> {
    let expected = model.disruptions_allowed()?;
    if expected.is_empty() {
        return Ok(());
    }
    let api: Api<PodDisruptionBudget> = Api::all(client.clone());
    let deadline = Instant::now() + limit;
    loop {
        let list = api.list(&ListParams::default()).await?;
        let actual: BTreeMap<(String, String), i32> = list
            .items
            .iter()
            .filter_map(|p| {
                let status = p.status.as_ref()?;
                status.observed_generation?;
                Some((
                    (p.metadata.namespace.clone()?, p.metadata.name.clone()?),
                    status.disruptions_allowed?,
                ))
            })
            .collect();
        let mismatched: Vec<String> = model
            .pdbs
            .iter()
            .zip(&expected)
            .filter(|(pdb, want)| {
                actual.get(&(pdb.namespace.clone(), pdb.name.clone())) != Some(&(**want as i32))
            })
            .map(|(pdb, want)| format!("{}/{} (want {want})", pdb.namespace, pdb.name))
            .collect();
        if mismatched.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "budgets did not reach the disruptionsAllowed the scenario implies within {limit:?}: {}",
                mismatched.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Subtracts the harness's own requests (LIST and WATCH of pods answered 200) from the simulator's counts.
fn subtract_harness(mut lines: Vec<RequestLine>, lists: u64, watches: u64) -> Vec<RequestLine> {
    for (verb, mut n) in [("list", lists), ("watch", watches)] {
        for line in lines
            .iter_mut()
            .filter(|l| l.verb == verb && l.resource == "pods" && l.code == 200)
        {
            let take = n.min(line.count);
            line.count -= take;
            n -= take;
        }
    }
    lines.retain(|l| l.count > 0);
    lines.sort();
    lines
}

/// Runs one drain of `case` with `tool` on a fresh cluster of `kind`.
#[allow(clippy::too_many_arguments)]
pub async fn run_once(
    case: &BenchCase,
    scenario_path: &Path,
    model: &ScenarioModel,
    tool: Tool,
    rep: usize,
    programs: &Programs,
    kind: ClusterKind,
) -> Result<RunResult> {
    let work = tempfile::tempdir()?;
    let loading = Instant::now();
    let mut backend = Backend::start(kind, scenario_path, work.path()).await?;
    let load_seconds = loading.elapsed().as_secs_f64();
    let result = drive(
        case,
        model,
        tool,
        rep,
        programs,
        &mut backend,
        work.path(),
        load_seconds,
    )
    .await;
    backend.shutdown().await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    case: &BenchCase,
    model: &ScenarioModel,
    tool: Tool,
    rep: usize,
    programs: &Programs,
    backend: &mut Backend,
    work: &Path,
    load_seconds: f64,
) -> Result<RunResult> {
    let kubeconfig = work.join("kubeconfig");
    backend.write_kubeconfig(&kubeconfig)?;
    let home = work.join("home");
    std::fs::create_dir_all(&home)?;
    let client = backend.client();

    let nodes = resolve_nodes(&client, &case.target).await?;
    let tracker = Tracker::start(client.clone(), &nodes).await?;
    tracker.wait_all_ready(Duration::from_secs(120)).await?;
    wait_budgets_settled(&client, model, Duration::from_secs(120)).await?;
    let floor = model
        .floor_inputs(&tracker.target_pods())
        .and_then(|(pods, budgets)| {
            drain_floor(&pods, &budgets).map_err(|e| {
                anyhow::anyhow!("{} target pods can never be evicted", e.stuck_pods.len())
            })
        })
        .map_err(|e| e.to_string());

    let mut args = case.drain_args(&kubeconfig);
    let program = match tool {
        Tool::Kdrain => {
            if let Some(parallel) = case.kdrain_parallel {
                args.push(format!("--parallel={parallel}"));
            }
            programs.kdrain.clone()
        }
        Tool::Kubectl => {
            if let Some(timeout) = case.kubectl_timeout {
                args.push(format!("--timeout={}s", timeout.as_secs()));
            }
            args.push(format!("--cache-dir={}", work.join("kube-cache").display()));
            programs.kubectl.clone()
        }
    };
    let deadline = match tool {
        Tool::Kdrain => case.deadline,
        Tool::Kubectl => case.kubectl_deadline,
    };
    let env = vec![
        ("HOME".to_string(), home.display().to_string()),
        (
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_default(),
        ),
        ("LANG".to_string(), "C.UTF-8".to_string()),
    ];
    let spec = ChildSpec {
        program,
        args,
        env,
        dir: work.to_path_buf(),
    };

    backend.start_counting().await?;
    tracker.start_timing();
    let origin = Instant::now();
    let running = RunningChild::spawn(spec)?;
    let child = running.wait(deadline).await?;
    // The drain has returned; let the harness's watch catch up with the last deletions (bounded).
    if child.exit_code == Some(0) {
        tracker.wait_all_gone(Duration::from_secs(10)).await;
    }
    let observed = tracker.observed(origin);
    let (raw, violations) = backend.finish(&nodes).await?;
    let (lists, watches) = if backend.counts_harness() {
        tracker.own_requests().counts()
    } else {
        (0, 0)
    };
    let requests = subtract_harness(raw, lists, watches);
    tracker.stop();
    Ok(RunResult {
        tool,
        rep,
        nodes,
        observed,
        floor,
        requests,
        harness_requests: (lists, watches),
        child,
        violations,
        load_seconds,
    })
}

/// A made-up completed run, for tests of the report and the chart.
#[cfg(test)]
pub(crate) fn sample_run(tool: Tool, rep: usize, wall: f64, requests: u64) -> RunResult {
    RunResult {
        tool,
        rep,
        nodes: vec!["n1".into()],
        observed: Observed {
            wall_seconds: Some(wall),
            remaining: 0,
            targets: 2,
            timeline: vec![(0.0, 2), (wall, 0)],
        },
        floor: Ok(3.5),
        requests: vec![RequestLine {
            verb: "create".into(),
            resource: "pods/eviction".into(),
            code: 201,
            count: requests,
        }],
        harness_requests: (0, 0),
        child: ChildOutcome {
            exit_code: Some(0),
            cpu_seconds: Some(0.1),
            max_rss_bytes: Some(20 * 1048576),
            ..ChildOutcome::default()
        },
        violations: vec![],
        load_seconds: 0.01,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(verb: &str, resource: &str, code: u16, count: u64) -> RequestLine {
        RequestLine {
            verb: verb.into(),
            resource: resource.into(),
            code,
            count,
        }
    }

    /// The whole harness path with the installed kubectl on the quick B1 cluster (9 pods, no budgets).
    #[tokio::test]
    async fn kubectl_drain_of_quick_b1_is_measured() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let case = crate::cases::all_cases(true).remove(0);
        let path = case.scenario_path(&root, true);
        let model = ScenarioModel::from_file(&path).unwrap();
        let programs = Programs {
            kdrain: PathBuf::from("/nonexistent/kdrain"),
            kubectl: PathBuf::from("kubectl"),
        };
        let run = tokio::time::timeout(
            Duration::from_secs(120),
            run_once(
                &case,
                &path,
                &model,
                Tool::Kubectl,
                0,
                &programs,
                ClusterKind::Kubesim,
            ),
        )
        .await
        .expect("the run took over 120 s")
        .unwrap();
        assert!(run.completed(), "{}", run.child.output_tail);
        assert_eq!(run.observed.targets, 9);
        assert_eq!(run.observed.remaining, 0);
        assert_eq!(run.floor, Ok(0.6));
        assert!(run.violations.is_empty(), "{:?}", run.violations);
        let evictions: u64 = run
            .requests
            .iter()
            .filter(|r| r.verb == "create" && r.resource == "pods/eviction" && r.code == 201)
            .map(|r| r.count)
            .sum();
        assert_eq!(evictions, 9);
        // kubectl cordons with one PATCH and lists the node's pods once.
        assert!(run.requests.contains(&RequestLine {
            verb: "patch".into(),
            resource: "nodes".into(),
            code: 200,
            count: 1
        }));
        assert!(run.child.max_rss_bytes.is_none_or(|b| b > 0));
    }

    #[test]
    fn harness_requests_are_subtracted_exactly() {
        let raw = vec![
            line("watch", "pods", 200, 3),
            line("list", "pods", 200, 1),
            line("create", "pods/eviction", 201, 110),
            line("create", "pods/eviction", 429, 4),
        ];
        let out = subtract_harness(raw, 1, 2);
        assert_eq!(
            out,
            vec![
                line("create", "pods/eviction", 201, 110),
                line("create", "pods/eviction", 429, 4),
                line("watch", "pods", 200, 1),
            ]
        );
    }
}
