//! `cargo xtask e2e`: the real-cluster tier. For every shipped scenario (small enough for this
//! machine), the real `kubectl drain` and `kdrain drain` run with the same flags, each on a
//! fresh control plane with the scenario materialised; their outcomes (exit class, nodes
//! cordoned, pods left on the drained nodes) must be the same and kdrain must cause no invariant
//! finding. kdrain also runs on kubesim with the same scenario and flags, for the differential
//! report (outcome and requests by kind on both).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::{Api, Client};
use kubesim::Scenario;

use crate::cluster::{self, UpOptions, client_for};
use crate::materialise::materialise;
use crate::observer::{self, Finding, Observer, RequestKey};
use crate::paths::workspace_root;
use crate::pki::{Pki, kubeconfig};

/// The drain client's user name on the real cluster (a client certificate in system:masters).
const CLIENT_USER: &str = "e2e-drain";

/// One drain to run with both tools.
#[derive(Debug, Clone)]
pub struct Case {
    /// Short id.
    pub id: &'static str,
    /// Scenario file, relative to the workspace.
    pub scenario: &'static str,
    /// Arguments after the program name, common to both tools.
    pub args: Vec<&'static str>,
    /// Extra arguments for kdrain only (e.g. `--parallel`).
    pub kdrain_extra: Vec<&'static str>,
    /// When kdrain leaves other nodes cordoned than kubectl by design (its plan refuses a drain
    /// before any change; `--uncordon-on-failure`): the nodes kdrain must leave cordoned, checked
    /// instead of comparing with kubectl (exit class and pods left are still compared).
    pub kdrain_cordoned: Option<Vec<&'static str>>,
    /// `--surge NAMESPACE/NAME` for kdrain: the Deployment must be surged, never evicted, and
    /// the drain must complete (kubectl, without surge, is only reported: its budget blocks).
    pub surge: Option<&'static str>,
}

fn case(id: &'static str, scenario: &'static str, args: Vec<&'static str>) -> Case {
    Case {
        id,
        scenario,
        args,
        kdrain_extra: vec![],
        kdrain_cordoned: None,
        surge: None,
    }
}

const FLAGS: [&str; 3] = ["--force", "--ignore-daemonsets", "--delete-emptydir-data"];

fn with_flags(mut args: Vec<&'static str>) -> Vec<&'static str> {
    args.extend(FLAGS);
    args
}

/// The cases: the shipped scenarios that fit this machine. scenarios/big.yaml and
/// scenarios/bench/b4-big.yaml (110,000 pods) do not, and are left out.
pub fn cases(full: bool) -> Vec<Case> {
    let mut v = vec![
        case(
            "basic-n1",
            "scenarios/basic.yaml",
            with_flags(vec!["drain", "n1"]),
        ),
        // kdrain's plan refuses this drain before any change (fc4aead); kubectl cordons first.
        Case {
            kdrain_cordoned: Some(vec![]),
            ..case(
                "basic-n1-no-flags",
                "scenarios/basic.yaml",
                vec!["drain", "n1"],
            )
        },
        case(
            "basic-pool-a",
            "scenarios/basic.yaml",
            with_flags(vec!["drain", "-l", "pool=a"]),
        ),
        case(
            "demo-n1",
            "scenarios/demo.yaml",
            with_flags(vec!["drain", "n1"]),
        ),
        case(
            "quick-b1",
            "scenarios/bench/quick/b1-wide.yaml",
            with_flags(vec!["drain", "n1"]),
        ),
        case(
            "quick-b2",
            "scenarios/bench/quick/b2-budgets.yaml",
            with_flags(vec!["drain", "n1"]),
        ),
        Case {
            kdrain_extra: vec!["--parallel", "3"],
            ..case(
                "quick-b3",
                "scenarios/bench/quick/b3-pool.yaml",
                with_flags(vec!["drain", "-l", "pool=b3"]),
            )
        },
        Case {
            kdrain_extra: vec!["--parallel", "3"],
            ..case(
                "quick-b4",
                "scenarios/bench/quick/b4-big.yaml",
                with_flags(vec!["drain", "-l", "bench=drain"]),
            )
        },
    ];
    v.extend([
        case(
            "basic-dry-run-server",
            "scenarios/basic.yaml",
            with_flags(vec!["drain", "n1", "--dry-run=server"]),
        ),
        case(
            "basic-disable-eviction",
            "scenarios/basic.yaml",
            with_flags(vec!["drain", "n1", "--disable-eviction"]),
        ),
        case(
            "budgets-one-node",
            "crates/xtask/scenarios/budgets.yaml",
            with_flags(vec!["drain", "n1"]),
        ),
        Case {
            kdrain_extra: vec!["--parallel", "2"],
            ..case(
                "budgets-shared-parallel",
                "crates/xtask/scenarios/budgets.yaml",
                with_flags(vec!["drain", "-l", "pool=drain"]),
            )
        },
        case(
            "statefulset-same-name",
            "crates/xtask/scenarios/statefulset.yaml",
            with_flags(vec!["drain", "n1"]),
        ),
        // kdrain's plan refuses this drain before any change (fc4aead); kubectl cordons first.
        Case {
            kdrain_cordoned: Some(vec![]),
            ..case(
                "unsatisfiable-budget",
                "crates/xtask/scenarios/unsatisfiable.yaml",
                with_flags(vec!["drain", "n1", "--timeout=5s"]),
            )
        },
        Case {
            kdrain_extra: vec!["--uncordon-on-failure"],
            kdrain_cordoned: Some(vec![]),
            ..case(
                "uncordon-on-failure",
                "crates/xtask/scenarios/unsatisfiable.yaml",
                with_flags(vec!["drain", "n1", "--timeout=5s"]),
            )
        },
        // kdrain's plan refuses this drain before any change (fc4aead); kubectl cordons first.
        Case {
            kdrain_cordoned: Some(vec![]),
            ..case(
                "two-budgets-one-pod",
                "crates/xtask/scenarios/two-budgets.yaml",
                with_flags(vec!["drain", "n1", "--timeout=10s"]),
            )
        },
        case(
            "terminating-namespace",
            "crates/xtask/scenarios/terminating-namespace.yaml",
            with_flags(vec!["drain", "n1"]),
        ),
        Case {
            kdrain_extra: vec!["--surge", "shop/solo"],
            surge: Some("shop/solo"),
            ..case(
                "surge",
                "crates/xtask/scenarios/surge.yaml",
                with_flags(vec!["drain", "n1", "--timeout=15s"]),
            )
        },
    ]);
    if full {
        v.extend([
            case(
                "b1-wide",
                "scenarios/bench/b1-wide.yaml",
                with_flags(vec!["drain", "n1"]),
            ),
            case(
                "b2-budgets",
                "scenarios/bench/b2-budgets.yaml",
                with_flags(vec!["drain", "n1"]),
            ),
            Case {
                kdrain_extra: vec!["--parallel", "10"],
                ..case(
                    "b3-pool",
                    "scenarios/bench/b3-pool.yaml",
                    with_flags(vec!["drain", "-l", "pool=b3"]),
                )
            },
        ]);
    }
    v
}

/// The nodes a case drains: the names given, or those matching `-l k=v`.
fn targets(sc: &Scenario, args: &[&str]) -> HashSet<String> {
    if let Some(i) = args.iter().position(|a| *a == "-l") {
        let sel = args.get(i + 1).copied().unwrap_or("");
        let (k, v) = sel.split_once('=').unwrap_or((sel, ""));
        let mut out = HashSet::new();
        for spec in &sc.nodes {
            if spec.labels.get(k).map(String::as_str) != Some(v) {
                continue;
            }
            match (&spec.name, &spec.name_prefix) {
                (Some(n), _) => {
                    out.insert(n.clone());
                }
                (None, Some(p)) => {
                    out.extend((0..spec.count.unwrap_or(1)).map(|i| format!("{p}{i}")))
                }
                _ => {}
            }
        }
        return out;
    }
    args.iter()
        .skip(1)
        .take_while(|a| !a.starts_with('-'))
        .map(|s| s.to_string())
        .collect()
}

/// What a drain left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the tool exited 0.
    pub success: bool,
    /// The exit code.
    pub code: i32,
    /// Cordoned nodes.
    pub cordoned: Vec<String>,
    /// Pods left (not terminating) on the drained nodes, described by their owner.
    pub left: BTreeMap<String, usize>,
}

impl Outcome {
    /// The parts both tools must agree on.
    fn comparable(&self) -> (bool, &Vec<String>, &BTreeMap<String, usize>) {
        (self.success, &self.cordoned, &self.left)
    }

    fn summary(&self) -> String {
        let left: Vec<String> = self.left.iter().map(|(k, n)| format!("{k}×{n}")).collect();
        format!(
            "exit {} · cordoned [{}] · left [{}]",
            self.code,
            self.cordoned.join(", "),
            left.join(", ")
        )
    }
}

/// Describe a pod by what owns it (names with random parts are left out).
fn describe(p: &Pod) -> String {
    let md = &p.metadata;
    if md
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"))
    {
        return format!("mirror/{}", md.name.clone().unwrap_or_default());
    }
    let owner = md
        .owner_references
        .as_ref()
        .and_then(|o| o.iter().find(|r| r.controller == Some(true)));
    match owner {
        None => format!("Pod/{}", md.name.clone().unwrap_or_default()),
        Some(o) if o.kind == "ReplicaSet" => {
            let hashed = md
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key("pod-template-hash"));
            match (hashed, o.name.rsplit_once('-')) {
                (true, Some((deploy, _))) => format!("Deployment/{deploy}"),
                _ => format!("ReplicaSet/{}", o.name),
            }
        }
        Some(o) => format!("{}/{}", o.kind, o.name),
    }
}

async fn outcome(client: &Client, targets: &HashSet<String>, code: i32) -> Result<Outcome> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut cordoned: Vec<String> = nodes
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|n| n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true))
        .filter_map(|n| n.metadata.name)
        .collect();
    cordoned.sort();
    let pods: Api<Pod> = Api::all(client.clone());
    let mut left = BTreeMap::new();
    for p in pods.list(&ListParams::default()).await?.items {
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        if targets.contains(&node) && p.metadata.deletion_timestamp.is_none() {
            *left.entry(describe(&p)).or_default() += 1;
        }
    }
    Ok(Outcome {
        success: code == 0,
        code,
        cordoned,
        left,
    })
}

/// One drain on one cluster.
#[derive(Debug, Clone)]
pub struct Run {
    /// Tool name.
    pub tool: &'static str,
    /// Outcome.
    pub outcome: Outcome,
    /// Invariant findings.
    pub findings: Vec<Finding>,
    /// Requests by kind (real cluster: from the audit log; kubesim: its counters).
    pub requests: BTreeMap<RequestKey, u64>,
    /// Seconds the drain took.
    pub seconds: f64,
    /// The User-Agent headers of its requests (real cluster: from the audit log; kubesim: none).
    pub agents: BTreeSet<String>,
    /// With `--surge`: what became of the surged Deployment.
    pub surge: Option<SurgeFacts>,
}

/// What a drain with `--surge` left on the surged Deployment.
#[derive(Debug, Clone)]
pub struct SurgeFacts {
    /// `kdrain.io/surged-at` and `kdrain.io/surged-from` on the Deployment.
    pub annotations: BTreeMap<String, String>,
    /// Its pods that are not being deleted: (node, Ready).
    pub pods: Vec<(String, bool)>,
    /// Eviction requests for its pods, from the audit log (real cluster only; on kubesim the
    /// evictions are compared by count with the real cluster's).
    pub evicted: Option<Vec<String>>,
}

impl SurgeFacts {
    fn summary(&self) -> String {
        let pods: Vec<String> = self
            .pods
            .iter()
            .map(|(n, r)| format!("{n}{}", if *r { " (Ready)" } else { "" }))
            .collect();
        let ann: Vec<String> = self
            .annotations
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let evicted = match &self.evicted {
            Some(e) => format!("; evictions of its pods in the audit log: {}", e.len()),
            None => String::new(),
        };
        format!(
            "its pods on [{}]; annotations [{}]{evicted}",
            pods.join(", "),
            ann.join(", "),
        )
    }

    /// Why the surge did not go as it should, if it did not.
    fn problems(&self, spare_not: &HashSet<String>) -> Vec<String> {
        let mut out = Vec::new();
        for k in ["kdrain.io/surged-at", "kdrain.io/surged-from"] {
            if !self.annotations.contains_key(k) {
                out.push(format!("the Deployment lacks the annotation {k}"));
            }
        }
        if let Some(e) = self.evicted.as_ref().filter(|e| !e.is_empty()) {
            out.push(format!("its pods were evicted: {}", e.join(", ")));
        }
        if self.pods.len() != 1 || !self.pods.iter().all(|(n, r)| *r && !spare_not.contains(n)) {
            out.push(format!(
                "it should run one Ready pod on a node not drained, it has [{}]",
                self.pods
                    .iter()
                    .map(|(n, r)| format!("{n} ready={r}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out
    }
}

/// The surged Deployment's annotations and pods.
async fn surge_facts(
    client: &Client,
    target: &str,
    evicted: Option<Vec<String>>,
) -> Result<SurgeFacts> {
    use k8s_openapi::api::apps::v1::Deployment;
    let (ns, name) = target.split_once('/').unwrap_or(("default", target));
    let d = Api::<Deployment>::namespaced(client.clone(), ns)
        .get(name)
        .await?;
    let annotations = d
        .metadata
        .annotations
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k.starts_with("kdrain.io/surged-"))
        .collect();
    let selector = d
        .spec
        .selector
        .match_labels
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            (p.spec.and_then(|s| s.node_name).unwrap_or_default(), ready)
        })
        .collect();
    Ok(SurgeFacts {
        annotations,
        pods,
        evicted,
    })
}

async fn run_tool(program: &Path, args: &[String], log: &Path, deadline: Duration) -> Result<i32> {
    let out = std::fs::File::create(log)?;
    let err = out.try_clone()?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {}", program.display()))?;
    match tokio::time::timeout(deadline, child.wait()).await {
        Ok(status) => Ok(status?.code().unwrap_or(-1)),
        Err(_) => {
            let _ = child.kill().await;
            bail!(
                "{} did not finish within {} s (log {})",
                program.display(),
                deadline.as_secs(),
                log.display()
            )
        }
    }
}

/// Options of the e2e tier.
pub struct E2eOptions {
    /// Also the full-size B1–B3 scenarios.
    pub full: bool,
    /// Only cases whose id contains one of these.
    pub only: Vec<String>,
    /// The kdrain binary.
    pub kdrain: PathBuf,
    /// The kubectl binary.
    pub kubectl: PathBuf,
    /// Cluster options (ports, binaries, directory).
    pub up: UpOptions,
    /// Where the report goes.
    pub out: PathBuf,
}

const DRAIN_DEADLINE: Duration = Duration::from_secs(240);

/// Run one tool on a fresh real cluster with the scenario materialised.
async fn run_real(
    opts: &E2eOptions,
    up: &UpOptions,
    case: &Case,
    tool: &'static str,
    sc: &Scenario,
) -> Result<Run> {
    let cluster = cluster::up(up).await?;
    let result = run_real_on(opts, case, tool, sc, &cluster.state).await;
    // Stopping waits for each process: not on the task the other drains share.
    let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
    result
}

async fn run_real_on(
    opts: &E2eOptions,
    case: &Case,
    tool: &'static str,
    sc: &Scenario,
    state: &cluster::State,
) -> Result<Run> {
    let admin = client_for(&std::fs::read_to_string(&state.kubeconfig)?).await?;
    let pki = Pki {
        dir: state.dir.join("pki"),
    };
    materialise(&admin, &pki, &state.server, sc).await?;
    let id = pki.client(CLIENT_USER, Some("system:masters"))?;
    let kc = state.dir.join("drain.kubeconfig");
    std::fs::write(
        &kc,
        kubeconfig(&state.server, &pki.ca_pem()?, &id, CLIENT_USER),
    )?;
    let observer = Observer::start(&admin).await?;
    // Let the observer's first lists complete before the drain starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let since = jiff::Timestamp::now();
    let mut args: Vec<String> = case.args.iter().map(|s| s.to_string()).collect();
    args.push(format!("--kubeconfig={}", kc.display()));
    let program = if tool == "kdrain" {
        args.extend(case.kdrain_extra.iter().map(|s| s.to_string()));
        &opts.kdrain
    } else {
        &opts.kubectl
    };
    let log = opts.out.join(format!("{}-{tool}-real.log", case.id));
    let started = Instant::now();
    let code = run_tool(program, &args, &log, DRAIN_DEADLINE).await?;
    let seconds = started.elapsed().as_secs_f64();
    let targets = targets(sc, &case.args);
    let outcome = outcome(&admin, &targets, code).await?;
    // The observer's watches lag the answers slightly.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests = observer::client_requests(&state.audit_log, CLIENT_USER, since)?;
    let findings = observer.findings(&requests, &targets);
    let surge = match case.surge.filter(|_| tool == "kdrain") {
        Some(target) => {
            let name = target.split_once('/').map_or(target, |(_, n)| n);
            let evicted = requests
                .iter()
                .filter(|r| r.key.subresource == "eviction")
                .filter(|r| {
                    r.object
                        .split_once('/')
                        .is_some_and(|(_, pod)| pod.starts_with(&format!("{name}-")))
                })
                .map(|r| r.object.clone())
                .collect();
            Some(surge_facts(&admin, target, Some(evicted)).await?)
        }
        None => None,
    };
    observer.stop();
    let agents = requests.iter().map(|r| r.user_agent.clone()).collect();
    // Kept for the report's reader: the API server's own record of the drain.
    let _ = std::fs::copy(
        &state.audit_log,
        opts.out
            .join(format!("{}-{tool}-real-audit.jsonl", case.id)),
    );
    Ok(Run {
        tool,
        outcome,
        findings,
        requests: observer::count(&requests),
        seconds,
        agents,
        surge,
    })
}

/// kdrain on kubesim with the same scenario and flags.
async fn run_kubesim(opts: &E2eOptions, case: &Case, sc: &Scenario) -> Result<Run> {
    let sim = kubesim::Sim::start(sc.clone()).await?;
    let kc = opts.out.join(format!("{}-kubesim.kubeconfig", case.id));
    sim.write_kubeconfig(&kc)?;
    let mut args: Vec<String> = case.args.iter().map(|s| s.to_string()).collect();
    args.push(format!("--kubeconfig={}", kc.display()));
    args.extend(case.kdrain_extra.iter().map(|s| s.to_string()));
    let log = opts.out.join(format!("{}-kdrain-kubesim.log", case.id));
    sim.reset_requests();
    let started = Instant::now();
    let code = run_tool(&opts.kdrain, &args, &log, DRAIN_DEADLINE).await?;
    let seconds = started.elapsed().as_secs_f64();
    let targets = targets(sc, &case.args);
    // The counters first: reading the outcome makes requests too.
    let counted = sim.requests();
    let outcome = outcome(&sim.client(), &targets, code).await?;
    let surge = match case.surge {
        Some(target) => Some(surge_facts(&sim.client(), target, None).await?),
        None => None,
    };
    let mut requests = BTreeMap::new();
    for r in counted {
        *requests
            .entry(RequestKey {
                verb: r.verb,
                resource: r.resource,
                subresource: r.subresource,
                code: r.code,
                agent: String::new(),
            })
            .or_default() += r.count;
    }
    let findings = sim
        .violations()
        .into_iter()
        .map(|v| Finding {
            kind: v.kind,
            object: v.object,
            message: v.message,
        })
        .collect();
    sim.shutdown().await;
    Ok(Run {
        tool: "kdrain",
        outcome,
        findings,
        requests,
        seconds,
        agents: BTreeSet::new(),
        surge,
    })
}

fn requests_text(r: &BTreeMap<RequestKey, u64>) -> String {
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    for (k, n) in r {
        let res = if k.subresource.is_empty() {
            k.resource.clone()
        } else {
            format!("{}/{}", k.resource, k.subresource)
        };
        if res.starts_with('/') {
            continue;
        }
        *by.entry(format!("{} {res} {}", k.verb, k.code))
            .or_default() += n;
    }
    by.iter()
        .map(|(k, n)| format!("{k}×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The report with the workspace's paths relative to it (it is committed as
/// tools/control-plane/differential.md, whatever the checkout's directory).
fn relative(report: &str, root: &Path) -> String {
    report.replace(&format!("{}/", root.display()), "")
}

/// Run the tier. Returns an error when an outcome differs or kdrain caused a finding.
pub async fn run(opts: E2eOptions) -> Result<()> {
    std::fs::create_dir_all(&opts.out)?;
    let root = workspace_root();
    let mut report = String::from("# Real control plane: e2e and differential report\n\n");
    let _ = writeln!(
        report,
        "Produced by `cargo xtask e2e{}` at {} on a machine with {} CPU cores (written to `{}`).\n",
        std::env::args()
            .skip(2)
            .map(|a| format!(" {a}"))
            .collect::<String>(),
        jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC"),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        opts.out.join("report.md").display()
    );
    let _ = writeln!(
        report,
        "Each tool drained on a fresh control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler {}, kwok {}) with the scenario materialised; kdrain also on kubesim.\n",
        crate::paths::K8S_VERSION,
        crate::paths::KWOK_VERSION
    );
    let mut failures = Vec::new();
    let (mut real_runs, mut sim_runs, mut same_requests) = (0, 0, 0);
    // The controller part runs cases, not drains: its section counts them.
    let mut controller_part = false;
    let started = Instant::now();
    if opts.only.is_empty() {
        eprintln!("e2e: bad input and faults of control-plane up/down");
        let lines = crate::faults::run(&opts.up.bin, &opts.out, opts.up.port_base)?;
        let _ = writeln!(
            report,
            "## Bad input and faults of `control-plane up`/`down`\n"
        );
        for l in lines {
            let _ = writeln!(report, "- {l}");
        }
        let _ = writeln!(report);
    }
    if opts.only.is_empty() || opts.only.iter().any(|o| o == "rbac") {
        eprintln!("e2e rbac: the shipped ClusterRole with a ServiceAccount token");
        match crate::rbac::check(&opts.up, &opts.kdrain, &opts.out).await {
            Ok(section) => report.push_str(&section),
            Err(e) => {
                let _ = writeln!(report, "## The shipped ClusterRole\n\n**FAILED**: {e:#}\n");
                failures.push(format!("rbac: {e:#}"));
            }
        }
        real_runs += 7;
    }
    if opts.only.is_empty() || opts.only.iter().any(|o| o == "controller") {
        eprintln!(
            "e2e controller: the controller cases (crates/controller-cases) on two real control planes"
        );
        match crate::controller_e2e::check(&opts.up, &opts.kdrain, &opts.kubectl, &opts.out).await {
            Ok((section, failed)) => {
                report.push_str(&section);
                failures.extend(failed);
            }
            Err(e) => {
                let _ = writeln!(report, "## `kdrain controller`\n\n**FAILED**: {e:#}\n");
                failures.push(format!("controller: {e:#}"));
            }
        }
        controller_part = true;
    }
    if opts.only.is_empty() || opts.only.iter().any(|o| o == "everyday") {
        eprintln!(
            "e2e everyday: the everyday kubectl commands on kubesim and on the real control plane"
        );
        match crate::everyday::run(&opts.kubectl, &opts.up, &opts.out).await {
            Ok((section, unexplained)) => {
                report.push_str(&section);
                failures.extend(unexplained);
            }
            Err(e) => {
                let _ = writeln!(
                    report,
                    "## The everyday kubectl commands\n\n**FAILED**: {e:#}\n"
                );
                failures.push(format!("everyday: {e:#}"));
            }
        }
    }
    if opts.only.is_empty() || opts.only.iter().any(|o| o == "capacity") {
        eprintln!("e2e capacity: the plan's fit verdicts against the real scheduler and kubesim's");
        match crate::capacity::run(&opts.kdrain, &opts.up, &opts.out).await {
            Ok((section, failed)) => {
                report.push_str(&section);
                failures.extend(failed);
            }
            Err(e) => {
                let _ = writeln!(report, "## Capacity\n\n**FAILED**: {e:#}\n");
                failures.push(format!("capacity: {e:#}"));
            }
        }
    }
    // The second control plane, for the drains that run beside the first's.
    let second = UpOptions {
        kubeconfig: None,
        audit_log: None,
        port_base: cluster::free_port_base(opts.up.port_base + 10)?,
        dir: opts.up.dir.with_file_name("cluster-2"),
        bin: opts.up.bin.clone(),
        controller_qps: opts.up.controller_qps,
    };
    for case in cases(opts.full) {
        if !opts.only.is_empty() && !opts.only.iter().any(|o| case.id.contains(o.as_str())) {
            continue;
        }
        let sc = Scenario::from_file(&root.join(case.scenario))?;
        let _ = writeln!(
            report,
            "## {} — `{}` on {}\n",
            case.id,
            case.args.join(" "),
            case.scenario
        );
        // The three drains run side by side, each on its own cluster: most of a real run is
        // waiting for start-up and for the controllers, so this halves the tier's time.
        let runs = async {
            eprintln!(
                "e2e {}: kubectl and kdrain on two real control planes, kdrain on kubesim",
                case.id
            );
            let (kubectl, kdrain, sim) = tokio::join!(
                run_real(&opts, &opts.up, &case, "kubectl", &sc),
                run_real(&opts, &second, &case, "kdrain", &sc),
                run_kubesim(&opts, &case, &sc)
            );
            anyhow::Ok((kubectl?, kdrain?, sim?))
        };
        let (kubectl, kdrain, sim) = match runs.await {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(report, "**FAILED**: {e:#}\n");
                failures.push(format!("{}: {e:#}", case.id));
                continue;
            }
        };
        real_runs += 2;
        sim_runs += 1;
        for (place, r) in [("real", &kubectl), ("real", &kdrain), ("kubesim", &sim)] {
            let label = format!("{}, {place}", r.tool);
            let _ = writeln!(
                report,
                "- **{label}** ({:.1} s): {}; findings {}; requests: {}",
                r.seconds,
                r.outcome.summary(),
                r.findings.len(),
                requests_text(&r.requests)
            );
            if place == "real" {
                let agents: Vec<&str> = r.agents.iter().map(String::as_str).collect();
                let _ = writeln!(
                    report,
                    "  - user agents in the audit log: {}",
                    agents.join(", ")
                );
            }
            for f in &r.findings {
                let _ = writeln!(report, "  - finding {}: {}", f.kind, f.message);
            }
        }
        let mut verdict = Vec::new();
        let drained = targets(&sc, &case.args);
        if case.surge.is_some() {
            // kubectl has no surge: its budget blocks it, so it is only reported. kdrain must
            // complete, leave nothing behind, and have surged (not evicted) the Deployment.
            for (place, r) in [("real", &kdrain), ("kubesim", &sim)] {
                if !r.outcome.success || !r.outcome.left.is_empty() {
                    verdict.push(format!(
                        "kdrain --surge on {place} should complete with nothing left: {}",
                        r.outcome.summary()
                    ));
                }
                match &r.surge {
                    Some(f) => {
                        let _ = writeln!(report, "- surge, {place}: {}", f.summary());
                        verdict.extend(
                            f.problems(&drained)
                                .into_iter()
                                .map(|p| format!("surge on {place}: {p}")),
                        );
                    }
                    None => verdict.push(format!("surge on {place}: nothing observed")),
                }
            }
        } else if let Some(want) = &case.kdrain_cordoned {
            let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            if kdrain.outcome.cordoned != want
                || kdrain.outcome.success != kubectl.outcome.success
                || kdrain.outcome.left != kubectl.outcome.left
            {
                verdict.push(format!(
                    "kdrain{} should leave cordoned [{}], otherwise end like kubectl: {} vs {}",
                    case.kdrain_extra
                        .iter()
                        .map(|a| format!(" {a}"))
                        .collect::<String>(),
                    want.join(", "),
                    kdrain.outcome.summary(),
                    kubectl.outcome.summary()
                ));
            }
        } else if kubectl.outcome.comparable() != kdrain.outcome.comparable() {
            verdict.push(format!(
                "kdrain's outcome differs from kubectl's on the real cluster: {} vs {}",
                kdrain.outcome.summary(),
                kubectl.outcome.summary()
            ));
        }
        // kdrain names itself (and its version) in every request, as kubectl does.
        let agent = format!("kdrain/v{} (", env!("CARGO_PKG_VERSION"));
        if kdrain.agents.is_empty() || !kdrain.agents.iter().all(|a| a.starts_with(&agent)) {
            verdict.push(format!(
                "kdrain's requests should all carry the User-Agent {agent}OS/ARCH), the audit log has [{}]",
                kdrain.agents.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if !kdrain.findings.is_empty() {
            verdict.push(format!(
                "kdrain caused {} invariant findings",
                kdrain.findings.len()
            ));
        }
        if sim.outcome.comparable() != kdrain.outcome.comparable() {
            let _ = writeln!(
                report,
                "\n  Divergence: kdrain's outcome on kubesim ({}) differs from the real one.",
                sim.outcome.summary()
            );
        }
        let (real_req, sim_req) = (
            requests_text(&kdrain.requests),
            requests_text(&sim.requests),
        );
        if real_req == sim_req {
            let _ = writeln!(
                report,
                "\nkdrain's requests by kind: the same on kubesim and on the real control plane."
            );
            same_requests += 1;
        } else {
            let _ = writeln!(
                report,
                "\n  Divergence: kdrain's requests by kind differ between kubesim and the real control plane (timing can change retries and watches; see the lines above)."
            );
        }
        if verdict.is_empty() {
            let same = if case.surge.is_some() {
                "As expected: kdrain --surge completed on both clusters without evicting the surged Deployment's pod, whose new pod runs Ready on another node; kubectl (no surge) stayed blocked by its budget"
            } else if case.kdrain_cordoned.is_some() {
                "As expected: kdrain left no node cordoned, otherwise it ended like kubectl"
            } else {
                "Same outcome"
            };
            let _ = writeln!(report, "\n{same}; kdrain caused no finding.\n");
        } else {
            for v in &verdict {
                let _ = writeln!(report, "\n**FAILED**: {v}\n");
            }
            failures.extend(verdict.into_iter().map(|v| format!("{}: {v}", case.id)));
        }
        std::fs::write(opts.out.join("report.md"), relative(&report, &root))?;
    }
    let _ = writeln!(
        report,
        "\n{} drains ({real_runs} on real control planes, {sim_runs} on kubesim){} in {:.0} s; kdrain's requests by kind the same on both clusters in {same_requests} of {sim_runs} cases; {} failures.",
        real_runs + sim_runs,
        if controller_part {
            " and the controller's cases (their section counts them)"
        } else {
            ""
        },
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    let report = relative(&report, &root);
    std::fs::write(opts.out.join("report.md"), &report)?;
    println!("{}", report);
    println!("report: {}", opts.out.join("report.md").display());
    if !failures.is_empty() {
        bail!("e2e failed:\n{}", failures.join("\n"));
    }
    Ok(())
}
