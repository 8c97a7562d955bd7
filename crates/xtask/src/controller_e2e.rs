//! `kdrain controller` on the real control plane (issue 12): the controller's shared cases
//! (crates/controller-cases, the same bodies kdrain-controller's tests run on kubesim) with the
//! CRD, namespace and RBAC of deploy/controller applied through the API server by kubectl and
//! `kdrain controller` run as a process with its ServiceAccount's token.
//!
//! Two control planes side by side:
//! - the first runs every case that needs one running controller, all at once under one
//!   `kdrain controller` (their scenarios are materialised together: disjoint nodes and
//!   namespaces, pods kept on their case's nodes by a nodeSelector);
//! - the second runs, one after the other, the cases that start, kill or measure controllers of
//!   their own (metrics, restart, failover), then the RBAC check (rbac_controller.rs).
//!
//! The controller's requests are read from the API server's audit log (its ServiceAccount's
//! user), the invariant findings from the observer. Besides the report, it keeps for the reader
//! `kubectl get nodedrains -w` through the second cluster's drains, the YAML of a NodeDrain
//! blocked by its budget, and the metrics page after a drain.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use kdrain_controller_cases::{Case, Cluster, Query, Scope};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use crate::cluster::{self, UpOptions, client_for};
use crate::materialise::materialise;
use crate::observer::{self, Observer};
use crate::paths::workspace_root;
use crate::pki::Pki;

pub(crate) const NAMESPACE: &str = "kdrain-system";
const SA: &str = "kdrain-controller";
pub(crate) const SA_USER: &str = "system:serviceaccount:kdrain-system:kdrain-controller";
/// The controllers' lease (a standby takes over at most this long after the leader stops).
const LEASE_SECONDS: &str = "5";

/// Binaries and where the logs go.
#[derive(Clone)]
pub(crate) struct Tools {
    pub kdrain: PathBuf,
    pub kubectl: PathBuf,
    pub out: PathBuf,
}

/// A real control plane prepared for the controller: the scenarios materialised, the manifests
/// applied, a kubeconfig with the ServiceAccount's token.
pub(crate) struct RealCluster {
    pub admin: kube::Client,
    pub state: cluster::State,
    pub tools: Tools,
    /// The controller's kubeconfig (its ServiceAccount's token).
    pub sa_kubeconfig: PathBuf,
    /// A tag for log file names.
    pub tag: String,
    observer: Observer,
    since: jiff::Timestamp,
    instances: Mutex<HashMap<String, (tokio::process::Child, u16)>>,
}

pub(crate) async fn kubectl(tools: &Tools, kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new(&tools.kubectl)
        .args(args)
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .output()
        .await
        .with_context(|| format!("cannot run {}", tools.kubectl.display()))?;
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("kubectl {} failed: {}", args.join(" "), text.trim());
    }
    Ok(text)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The cases' scenarios (and `extra`) as one.
fn merged(cases: &[Case], extra: &[&str]) -> Result<kubesim::Scenario> {
    let mut all = kubesim::Scenario::default();
    let yamls = cases
        .iter()
        .map(|c| (c.id(), c.scenario()))
        .chain(extra.iter().map(|y| ("extra", *y)));
    for (id, yaml) in yamls {
        let sc = kubesim::Scenario::from_yaml_str(yaml)
            .with_context(|| format!("the scenario of case {id}"))?;
        all.nodes.extend(sc.nodes);
        all.namespaces.extend(sc.namespaces);
        all.workloads.extend(sc.workloads);
        all.pdbs.extend(sc.pdbs);
    }
    Ok(all)
}

impl RealCluster {
    /// Materialises `cases`' scenarios on the running control plane `state`, applies
    /// deploy/controller's CRD, namespace and RBAC with kubectl and gets the ServiceAccount a
    /// token.
    pub(crate) async fn prepare(
        state: cluster::State,
        cases: &[Case],
        extra: &[&str],
        tools: &Tools,
        tag: &str,
    ) -> Result<RealCluster> {
        let admin = client_for(&std::fs::read_to_string(&state.kubeconfig)?).await?;
        let pki = Pki {
            dir: state.dir.join("pki"),
        };
        materialise(&admin, &pki, &state.server, &merged(cases, extra)?).await?;
        let deploy = workspace_root().join("deploy").join("controller");
        let file = |name: &str| deploy.join(name).display().to_string();
        let (crd, ns, rbac) = (file("crd.yaml"), file("namespace.yaml"), file("rbac.yaml"));
        let kc = &state.kubeconfig;
        kubectl(tools, kc, &["apply", "-f", &crd, "-f", &ns, "-f", &rbac]).await?;
        kubectl(
            tools,
            kc,
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/nodedrains.kdrain.io",
            ],
        )
        .await?;
        let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), NAMESPACE);
        let req: TokenRequest = serde_json::from_value(
            json!({"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}),
        )?;
        let token: TokenRequest = sas
            .create_subresource("token", SA, &PostParams::default(), &req)
            .await?;
        let token = token.status.and_then(|s| s.token).unwrap_or_default();
        let sa_kubeconfig = tools.out.join(format!("controller-{tag}.kubeconfig"));
        std::fs::write(
            &sa_kubeconfig,
            crate::rbac::token_kubeconfig(&state.server, &pki.ca_pem()?, &token),
        )?;
        // the authorizer reads the new bindings from an informer: give it a moment
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let observer = Observer::start(&admin).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(RealCluster {
            admin,
            state,
            tools: tools.clone(),
            sa_kubeconfig,
            tag: tag.to_string(),
            observer,
            since: jiff::Timestamp::now(),
            instances: Mutex::new(HashMap::new()),
        })
    }

    /// The controller's requests since the cluster was prepared.
    pub(crate) fn controller_requests(&self) -> Result<Vec<observer::ClientRequest>> {
        observer::client_requests(&self.state.audit_log, SA_USER, self.since)
    }

    /// The log file of instance `id`.
    pub(crate) fn log(&self, id: &str) -> PathBuf {
        self.tools
            .out
            .join(format!("controller-{}-{id}.log", self.tag))
    }

    /// Ends every instance still running.
    pub(crate) async fn kill_all(&self) {
        let ids: Vec<String> = self.instances.lock().unwrap().keys().cloned().collect();
        for id in ids {
            let _ = self.kill_controller(&id).await;
        }
    }

    fn take(&self, id: &str) -> Option<(tokio::process::Child, u16)> {
        self.instances
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
    }
}

impl Cluster for RealCluster {
    fn client(&self) -> kube::Client {
        self.admin.clone()
    }

    fn lease_namespace(&self) -> &str {
        NAMESPACE
    }

    async fn start_controller(&self, id: &str) -> Result<()> {
        let port = free_port()?;
        let log = std::fs::File::create(self.log(id))?;
        let child = tokio::process::Command::new(&self.tools.kdrain)
            .args([
                "controller",
                &format!("--kubeconfig={}", self.sa_kubeconfig.display()),
                &format!("--metrics-addr=127.0.0.1:{port}"),
                &format!("--identity={id}"),
                &format!("--lease-seconds={LEASE_SECONDS}"),
                "--max-concurrent-nodes=50",
            ])
            .env("RUST_LOG", "info")
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {} controller", self.tools.kdrain.display()))?;
        self.instances
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), (child, port));
        Ok(())
    }

    async fn kill_controller(&self, id: &str) -> Result<()> {
        let (mut child, _) = self.take(id).context("no such controller")?;
        child.kill().await?;
        Ok(())
    }

    async fn stop_controller(&self, id: &str) -> Result<()> {
        let Some((mut child, _)) = self.take(id) else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .is_err()
        {
            child.kill().await?;
            bail!("controller {id} did not stop within 20 s of SIGTERM");
        }
        Ok(())
    }

    async fn http_get(&self, id: &str, path: &str) -> Result<(u16, String)> {
        let port = self
            .instances
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map(|(_, p)| *p)
            .context("no such controller")?;
        kdrain_controller_cases::support::http_get(([127, 0, 0, 1], port).into(), path).await
    }

    async fn requests(&self, q: Query<'_>) -> Result<u64> {
        let reqs = self.controller_requests()?;
        Ok(reqs
            .iter()
            .filter(|r| {
                r.key.verb == q.verb
                    && r.key.resource == q.resource
                    && r.key.subresource == q.subresource
                    && !r.dry_run
            })
            .filter(|r| q.code.is_none_or(|c| r.key.code == c))
            .filter(|r| match q.scope {
                Scope::Namespace(ns) => r.object.split_once('/').is_some_and(|(n, _)| n == ns),
                Scope::Names(names) => names.contains(&r.object.as_str()),
            })
            .count() as u64)
    }

    async fn findings(&self, namespace: &str, targets: &[&str]) -> Result<Vec<String>> {
        // the observer's watches lag the answers slightly
        tokio::time::sleep(Duration::from_millis(500)).await;
        let reqs = self.controller_requests()?;
        let targets: HashSet<String> = targets.iter().map(|s| s.to_string()).collect();
        Ok(self
            .observer
            .findings(&reqs, &targets)
            .into_iter()
            .filter(|f| {
                f.object
                    .split_once('/')
                    .is_some_and(|(n, _)| n == namespace)
            })
            .map(|f| format!("{}: {}", f.kind, f.message))
            .collect())
    }
}

/// What the cases of one cluster gave.
struct Outcome {
    lines: Vec<String>,
    failures: Vec<String>,
    passed: usize,
}

async fn run_cases(c: &RealCluster, cases: &[Case], together: bool) -> Outcome {
    let mut out = Outcome {
        lines: Vec::new(),
        failures: Vec::new(),
        passed: 0,
    };
    let timed = |case: Case| async move {
        let t = Instant::now();
        let r = case.run(c).await;
        (case, r, t.elapsed().as_secs_f64())
    };
    let results = if together {
        futures::future::join_all(cases.iter().map(|case| timed(*case))).await
    } else {
        let mut v = Vec::new();
        for case in cases {
            v.push(timed(*case).await);
        }
        v
    };
    for (case, r, secs) in results {
        match r {
            Ok(line) => {
                out.passed += 1;
                let first = line.lines().next().unwrap_or("").to_string();
                out.lines
                    .push(format!("- `{}` passed ({secs:.1} s): {first}", case.id()));
                let _ = std::fs::write(
                    c.tools
                        .out
                        .join(format!("controller-case-{}.txt", case.id())),
                    &line,
                );
            }
            Err(e) => {
                out.lines
                    .push(format!("- `{}` **FAILED** ({secs:.1} s): {e:#}", case.id()));
                out.failures
                    .push(format!("controller {}: {e:#}", case.id()));
            }
        }
    }
    out
}

/// Starts `kubectl get nodedrains -w` into `file` (ended by the caller).
fn watch(c: &RealCluster, file: &Path) -> Result<tokio::process::Child> {
    let f = std::fs::File::create(file)?;
    Ok(tokio::process::Command::new(&c.tools.kubectl)
        .args(["get", "nodedrains", "-w"])
        .arg(format!("--kubeconfig={}", c.state.kubeconfig.display()))
        .stdout(f.try_clone()?)
        .stderr(f)
        .kill_on_drop(true)
        .spawn()?)
}

/// The first cluster: the cases that share one controller, all at once. Also keeps the YAML of
/// the NodeDrain its budget blocks (events-blocked, blocked until the end).
async fn shared(state: cluster::State, tools: &Tools) -> Result<(Outcome, usize, usize)> {
    let cases: Vec<Case> = Case::ALL
        .into_iter()
        .filter(|c| !c.own_controller())
        .collect();
    let c = RealCluster::prepare(state, &cases, &[], tools, "shared").await?;
    let mut w = watch(&c, &tools.out.join("controller-shared-watch.txt"))?;
    c.start_controller("controller-0").await?;
    let mut out = run_cases(&c, &cases, true).await;
    match kubectl(
        tools,
        &c.state.kubeconfig,
        &["get", "nodedrain", "events-blocked", "-o", "yaml"],
    )
    .await
    {
        Ok(yaml) => std::fs::write(tools.out.join("controller-blocked.yaml"), yaml)?,
        Err(e) => out.failures.push(format!("kubectl get -o yaml: {e:#}")),
    }
    c.kill_all().await;
    let _ = w.kill().await;
    let reqs = c.controller_requests()?;
    let forbidden = reqs.iter().filter(|r| r.key.code == 403).count();
    if forbidden > 0 {
        out.failures.push(format!(
            "{forbidden} requests of the controller refused (403)"
        ));
    }
    c.observer.stop();
    Ok((out, cases.len(), reqs.len()))
}

/// The second cluster: the cases with controllers of their own, one after the other, under
/// `kubectl get nodedrains -w`; then the RBAC check.
async fn own(state: cluster::State, tools: &Tools) -> Result<(Outcome, String)> {
    let cases: Vec<Case> = Case::ALL
        .into_iter()
        .filter(|c| c.own_controller())
        .collect();
    let c = RealCluster::prepare(
        state,
        &cases,
        &[crate::rbac_controller::SCENARIO],
        tools,
        "own",
    )
    .await?;
    let mut w = watch(&c, &tools.out.join("controller-watch.txt"))?;
    let out = run_cases(&c, &cases, false).await;
    c.kill_all().await;
    let _ = w.kill().await;
    let rbac = crate::rbac_controller::check(&c).await;
    c.kill_all().await;
    c.observer.stop();
    let rbac = match rbac {
        Ok(section) => section,
        Err(e) => format!("### RBAC: each rule needed\n\n**FAILED**: {e:#}\n"),
    };
    Ok((out, rbac))
}

/// Returns the report section and the failures.
pub async fn check(
    up: &UpOptions,
    kdrain: &Path,
    kubectl: &Path,
    out: &Path,
) -> Result<(String, Vec<String>)> {
    let tools = Tools {
        kdrain: kdrain.to_path_buf(),
        kubectl: kubectl.to_path_buf(),
        out: out.to_path_buf(),
    };
    let second = UpOptions {
        kubeconfig: None,
        audit_log: None,
        port_base: cluster::free_port_base(up.port_base + 10)?,
        dir: up.dir.with_file_name("controller-2"),
        bin: up.bin.clone(),
        controller_qps: up.controller_qps,
    };
    let started = Instant::now();
    let first_run = async {
        let cluster = cluster::up(up).await?;
        let r = shared(cluster.state.clone(), &tools).await;
        let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
        r
    };
    let second_run = async {
        let cluster = cluster::up(&second).await?;
        let r = own(cluster.state.clone(), &tools).await;
        let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
        r
    };
    let (first, second) = tokio::join!(first_run, second_run);
    let mut report = String::from(
        "## `kdrain controller` on the real control plane (deploy/controller applied with kubectl, the controller run with its ServiceAccount token)\n\n",
    );
    let mut failures = Vec::new();
    let mut passed = 0;
    let mut total = 0;
    match first {
        Ok((o, n, requests)) => {
            let _ = writeln!(
                report,
                "{n} cases at once on one control plane under one `kdrain controller` ({requests} requests of its ServiceAccount in the audit log):\n"
            );
            for l in &o.lines {
                let _ = writeln!(report, "{l}");
            }
            total += n;
            passed += o.passed;
            failures.extend(o.failures);
        }
        Err(e) => {
            let _ = writeln!(report, "**FAILED** (shared controller): {e:#}");
            failures.push(format!("controller (shared): {e:#}"));
        }
    }
    let rbac = match second {
        Ok((o, rbac)) => {
            let _ = writeln!(
                report,
                "\nOn a second control plane, one after the other, with controllers of their own ({} s leases):\n",
                LEASE_SECONDS
            );
            for l in &o.lines {
                let _ = writeln!(report, "{l}");
            }
            total += o.lines.len();
            passed += o.passed;
            failures.extend(o.failures);
            rbac
        }
        Err(e) => {
            let _ = writeln!(report, "**FAILED** (own controllers): {e:#}");
            failures.push(format!("controller (own): {e:#}"));
            String::new()
        }
    };
    if rbac.contains("**FAILED**") {
        failures.push("controller RBAC: see the report".into());
    }
    let _ = writeln!(
        report,
        "\n{passed} of {total} controller cases passed in {:.0} s (both control planes' start included); logs and `kubectl get nodedrains -w` in target/e2e/controller-*.\n\n{rbac}",
        started.elapsed().as_secs_f64()
    );
    Ok((report, failures))
}
