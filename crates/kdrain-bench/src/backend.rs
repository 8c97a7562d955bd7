//! The cluster a run drains: a fresh in-process kubesim, or a fresh real control plane (etcd,
//! kube-apiserver, kube-controller-manager, kube-scheduler and kwok, built by
//! `cargo xtask control-plane build`) with the scenario materialised on it.
//!
//! On kubesim the drain's requests come from kubesim's counters and the invariants from its log;
//! on the real control plane the drain runs as its own user (a client certificate in
//! system:masters), its requests are read from the API server's audit log and the invariants are
//! found by the observer of `cargo xtask e2e` (watches plus the audit log).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use anyhow::{Context, Result};
use control_plane::cluster::{self, Cluster, UpOptions};
use control_plane::observer::{self, Observer};
use control_plane::pki::{Pki, kubeconfig};

use crate::measure::RequestLine;

/// Which kind of cluster the benchmark drains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClusterKind {
    /// kubesim, in-process (the default).
    Kubesim,
    /// A real control plane on 127.0.0.1, one fresh cluster per run.
    Real,
}

/// The controller-manager's client rate limit for the real control planes this process starts
/// (`--controller-qps`); unset keeps the upstream default (20 requests/s).
static CONTROLLER_QPS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// Set the controller-manager's client rate limit of every real control plane started after
/// this (once, from the command line).
pub fn set_controller_qps(qps: u32) {
    let _ = CONTROLLER_QPS.set(qps);
}

/// The drain's user on the real control plane.
const DRAIN_USER: &str = "bench-drain";

/// A running cluster with a scenario loaded.
pub enum Backend {
    /// kubesim.
    Sim(kubesim::Sim),
    /// A real control plane.
    Real(Box<Real>),
}

/// A real control plane started for one run.
pub struct Real {
    cluster: Cluster,
    admin: kube::Client,
    drain_kubeconfig: String,
    observer: Option<Observer>,
    since: jiff::Timestamp,
}

impl Backend {
    /// Start a cluster of `kind` with the scenario at `path` loaded.
    pub async fn start(kind: ClusterKind, path: &Path, work: &Path) -> Result<Backend> {
        let scenario = kubesim::Scenario::from_file(path)
            .with_context(|| format!("kubesim cannot load {}", path.display()))?;
        match kind {
            ClusterKind::Kubesim => Ok(Backend::Sim(
                kubesim::Sim::start(scenario)
                    .await
                    .context("kubesim did not start")?,
            )),
            ClusterKind::Real => {
                let opts = UpOptions {
                    kubeconfig: None,
                    audit_log: None,
                    port_base: cluster::free_port_base(17490)?,
                    dir: work.join("control-plane"),
                    bin: control_plane::paths::bin_dir(),
                    controller_qps: CONTROLLER_QPS.get().copied(),
                };
                let cluster = cluster::up(&opts).await?;
                match Real::load(cluster, &scenario).await {
                    Ok(real) => Ok(Backend::Real(Box::new(real))),
                    Err((cluster, e)) => {
                        cluster.stop();
                        Err(e)
                    }
                }
            }
        }
    }

    /// Write a kubeconfig for the drain tool.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<()> {
        match self {
            Backend::Sim(sim) => sim
                .write_kubeconfig(path)
                .context("kubesim could not write a kubeconfig"),
            Backend::Real(r) => Ok(std::fs::write(path, &r.drain_kubeconfig)?),
        }
    }

    /// The harness's client (on the real cluster: the admin, not the drain's user).
    pub fn client(&self) -> kube::Client {
        match self {
            Backend::Sim(sim) => sim.client(),
            Backend::Real(r) => r.admin.clone(),
        }
    }

    /// Whether the harness's own requests are counted with the drain's (kubesim counts every
    /// client; the real cluster's audit log is read for the drain's user only).
    pub fn counts_harness(&self) -> bool {
        matches!(self, Backend::Sim(_))
    }

    /// Start counting the drain's requests (and, on the real cluster, observing).
    pub async fn start_counting(&mut self) -> Result<()> {
        match self {
            Backend::Sim(sim) => sim.reset_requests(),
            Backend::Real(r) => {
                r.observer = Some(Observer::start(&r.admin).await?);
                // Let the observer's first lists complete.
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                r.since = jiff::Timestamp::now();
            }
        }
        Ok(())
    }

    /// The drain's requests since counting started, by verb, resource and code, and the
    /// invariant findings (one line each).
    pub async fn finish(&mut self, targets: &[String]) -> Result<(Vec<RequestLine>, Vec<String>)> {
        match self {
            Backend::Sim(sim) => {
                let lines = sim
                    .requests()
                    .into_iter()
                    .map(|r| RequestLine {
                        verb: r.verb.clone(),
                        resource: if r.subresource.is_empty() {
                            r.resource.clone()
                        } else {
                            format!("{}/{}", r.resource, r.subresource)
                        },
                        code: r.code,
                        count: r.count,
                    })
                    .collect();
                let violations = sim.violations().iter().map(|v| format!("{v:?}")).collect();
                Ok((lines, violations))
            }
            Backend::Real(r) => {
                // The observer's watches lag the answers slightly.
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                let audit = r.cluster.state.audit_log.clone();
                let requests = observer::client_requests(&audit, DRAIN_USER, r.since)?;
                let targets: HashSet<String> = targets.iter().cloned().collect();
                let findings = match r.observer.take() {
                    Some(o) => {
                        let f = o.findings(&requests, &targets);
                        o.stop();
                        f
                    }
                    None => Vec::new(),
                };
                let mut by: BTreeMap<(String, String, u16), u64> = BTreeMap::new();
                for (k, n) in observer::count(&requests) {
                    let resource = if k.subresource.is_empty() {
                        k.resource
                    } else {
                        format!("{}/{}", k.resource, k.subresource)
                    };
                    *by.entry((k.verb, resource, k.code)).or_default() += n;
                }
                let lines = by
                    .into_iter()
                    .map(|((verb, resource, code), count)| RequestLine {
                        verb,
                        resource,
                        code,
                        count,
                    })
                    .collect();
                let findings = findings
                    .into_iter()
                    .map(|f| format!("{}: {} ({})", f.kind, f.message, f.object))
                    .collect();
                Ok((lines, findings))
            }
        }
    }

    /// Stop the cluster.
    pub async fn shutdown(self) {
        match self {
            Backend::Sim(sim) => sim.shutdown().await,
            Backend::Real(r) => {
                if let Some(o) = r.observer {
                    o.stop();
                }
                r.cluster.stop();
            }
        }
    }
}

impl Real {
    async fn load(
        cluster: Cluster,
        scenario: &kubesim::Scenario,
    ) -> std::result::Result<Real, (Cluster, anyhow::Error)> {
        let loaded = async {
            let state = &cluster.state;
            let admin = cluster::client_for(&std::fs::read_to_string(&state.kubeconfig)?).await?;
            let pki = Pki {
                dir: state.dir.join("pki"),
            };
            control_plane::materialise::materialise(&admin, &pki, &state.server, scenario).await?;
            let id = pki.client(DRAIN_USER, Some("system:masters"))?;
            let drain_kubeconfig = kubeconfig(&state.server, &pki.ca_pem()?, &id, DRAIN_USER);
            anyhow::Ok((admin, drain_kubeconfig))
        }
        .await;
        match loaded {
            Ok((admin, drain_kubeconfig)) => Ok(Real {
                cluster,
                admin,
                drain_kubeconfig,
                observer: None,
                since: jiff::Timestamp::now(),
            }),
            Err(e) => Err((cluster, e)),
        }
    }
}
