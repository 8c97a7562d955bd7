//! `kdrain controller` (the in-cluster mode: leader election, NodeDrains drained in the
//! background, /metrics) and `kdrain request` (create a NodeDrain and follow it to its end).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, ValueEnum};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kdrain_controller::leader::{self, Election};
use kdrain_controller::metrics::Metrics;
use kdrain_controller::server::{self, Health};
use kdrain_controller::{NodeDrain, NodeDrainSpec, OnFailure, Phase, Stage};
use kube::Api;
use kube::api::PostParams;

use crate::args::{GlobalArgs, Target, TargetArgs};
use crate::exit::{self, CliError};

/// Flags of `kdrain controller`.
#[derive(Debug, Clone, Args)]
pub struct ControllerArgs {
    /// Where /metrics, /healthz and /readyz are served
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Nodes drained at once over every NodeDrain
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = parse_count)]
    pub max_concurrent_nodes: usize,
    /// Namespace of the leader-election Lease (default: the pod's namespace, else kdrain-system)
    #[arg(long, value_name = "NS")]
    pub lease_namespace: Option<String>,
    /// Seconds a leader's lease lasts without renewal (a standby takes over at most this long
    /// after the leader stops)
    #[arg(long, value_name = "SECONDS", default_value_t = 15, value_parser = parse_count_u64)]
    pub lease_seconds: u64,
    /// This instance's identity in the Lease and in Events (default: $POD_NAME, else host-pid)
    #[arg(long, value_name = "NAME")]
    pub identity: Option<String>,
}

/// How far a requested NodeDrain goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StageArg {
    /// Plan only, change nothing
    Idle,
    /// Plan and cordon
    Cordon,
    /// Plan, cordon and drain
    Drain,
}

/// Flags of `kdrain request`: the drain flags, as a NodeDrain's spec.
#[derive(Debug, Clone, Args)]
pub struct RequestArgs {
    /// The nodes
    #[command(flatten)]
    pub target: TargetArgs,
    /// The NodeDrain's name (default: drain-NODE or drain-SELECTOR, made a valid name, plus the time)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Why (kept on the NodeDrain and shown in its Events)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// How far to go
    #[arg(long, value_enum, default_value = "drain")]
    pub stage: StageArg,
    /// Continue even if there are pods that do not declare a controller
    #[arg(long)]
    pub force: bool,
    /// Ignore DaemonSet-managed pods
    #[arg(long)]
    pub ignore_daemonsets: bool,
    /// Continue even if there are pods using emptyDir (their data is lost)
    #[arg(long)]
    pub delete_emptydir_data: bool,
    /// Seconds given to each pod to stop; negative: the pod's own value
    #[arg(long, default_value_t = -1, allow_negative_numbers = true, value_name = "SECONDS")]
    pub grace_period: i64,
    /// How long each node may take, as a Go duration (90s, 5m, 1h30m); 0 waits forever
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Only evict pods matching this label selector
    #[arg(long, value_name = "SELECTOR")]
    pub pod_selector: Option<String>,
    /// Delete pods instead of evicting them, bypassing PodDisruptionBudgets
    #[arg(long)]
    pub disable_eviction: bool,
    /// Skip pods whose deletion began more than this many seconds ago; 0 never skips
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub skip_wait_for_delete_timeout: u64,
    /// Evict pods even if they opt out of disruption
    #[arg(long)]
    pub override_opt_outs: bool,
    /// Nodes drained at once: a count or a percent of the selected nodes (e.g. 2 or 25%)
    #[arg(long, value_name = "K", default_value = "1")]
    pub parallel: String,
    /// Uncordon the nodes this drain cordoned if it fails
    #[arg(long)]
    pub uncordon_on_failure: bool,
    /// Nodes whose pods' replacements have no room now wait for it instead of refusing the drain
    #[arg(long)]
    pub wait_for_capacity: bool,
    /// Create the NodeDrain and return at once (follow it with `kubectl get nodedrain NAME -w`)
    #[arg(long)]
    pub detach: bool,
}

fn parse_count(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "invalid value {v:?}: give a whole number, 1 or more"
        )),
    }
}

fn parse_count_u64(v: &str) -> Result<u64, String> {
    parse_count(v).map(|n| n as u64)
}

/// The pod's namespace when running in a cluster.
fn own_namespace() -> Option<String> {
    std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `kdrain controller`: serves the endpoints, runs for leader, and while leading drains every
/// NodeDrain. Stops on SIGTERM or Ctrl-C (the lease is released for a standby).
pub async fn controller(global: &GlobalArgs, args: &ControllerArgs) -> anyhow::Result<i32> {
    let cluster =
        crate::config::connect(global.kubeconfig.as_deref(), global.context.as_deref()).await?;
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let listener = server::bind(args.metrics_addr).await.map_err(|e| {
        CliError::usage(format!(
            "cannot listen on --metrics-addr {}: {e}; pick a free address such as 127.0.0.1:9090",
            args.metrics_addr
        ))
    })?;
    let addr = listener.local_addr()?;
    eprintln!("kdrain controller: metrics on http://{addr}/metrics");
    let health = Health {
        metrics: metrics.clone(),
        ready: ready.clone(),
    };
    tokio::spawn(server::serve(listener, health));
    let identity = args.identity.clone().unwrap_or_else(|| {
        std::env::var("POD_NAME").unwrap_or_else(|_| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        })
    });
    let election = Election {
        namespace: args
            .lease_namespace
            .clone()
            .or_else(own_namespace)
            .unwrap_or_else(|| "kdrain-system".into()),
        identity: identity.clone(),
        lease_seconds: args.lease_seconds,
        renew_before_seconds: (args.lease_seconds / 3).max(1),
    };
    let settings = kdrain_controller::Settings {
        max_concurrent_nodes: args.max_concurrent_nodes,
        instance: Some(identity),
    };
    // nothing is done (no lease, no NodeDrain read) until every right is granted
    let stop = shutdown_signal();
    tokio::pin!(stop);
    if !rights_granted(&cluster.client, &election.namespace, &mut stop).await {
        return Ok(exit::OK);
    }
    ready.store(true, Ordering::Relaxed);
    let client = cluster.client.clone();
    let work_metrics = metrics.clone();
    let work = move || {
        kdrain_controller::run(
            client.clone(),
            settings.clone(),
            work_metrics.clone(),
            std::future::pending(),
        )
    };
    leader::lead(cluster.client, election, metrics, work, stop).await?;
    Ok(exit::OK)
}

/// Waits until the access reviews grant every right the controller needs, saying on stderr
/// which are missing (again when that changes), checked every 10 s; false when `stop` came
/// first. /readyz answers 503 meanwhile.
async fn rights_granted(
    client: &kube::Client,
    lease_namespace: &str,
    stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> bool {
    let mut said = Vec::new();
    loop {
        let missing = kdrain_controller::access::missing(client, lease_namespace).await;
        if missing.is_empty() {
            if !said.is_empty() {
                eprintln!("kdrain controller: every right is granted now; starting");
            }
            return true;
        }
        if missing != said {
            for right in &missing {
                eprintln!(
                    "kdrain controller: missing permission: {right}; grant it to this controller's ServiceAccount (deploy/controller/rbac.yaml)"
                );
            }
            eprintln!(
                "kdrain controller: nothing is done until every permission is granted (checked again every 10 s)"
            );
            said = missing;
        }
        tokio::select! {
            _ = stop.as_mut() => return false,
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
    }
}

/// SIGTERM (a pod being stopped) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The spec a `kdrain request` asks for.
pub fn spec_of(args: &RequestArgs) -> Result<NodeDrainSpec, CliError> {
    let (node_names, node_selector) = match args.target.target()? {
        Target::Names(n) => (Some(n), None),
        Target::Selector(s) => (None, Some(s)),
    };
    let parallel = match args.parallel.parse::<i32>() {
        Ok(n) => IntOrString::Int(n),
        Err(_) => IntOrString::String(args.parallel.clone()),
    };
    let spec = NodeDrainSpec {
        node_names,
        node_selector,
        reason: args.reason.clone(),
        stage: match args.stage {
            StageArg::Idle => Stage::Idle,
            StageArg::Cordon => Stage::Cordon,
            StageArg::Drain => Stage::Drain,
        },
        pod_selector: args.pod_selector.clone(),
        force: args.force,
        ignore_daemon_sets: args.ignore_daemonsets,
        delete_empty_dir_data: args.delete_emptydir_data,
        grace_period_seconds: (args.grace_period >= 0).then_some(args.grace_period),
        timeout: args.timeout.clone(),
        skip_wait_for_delete_timeout_seconds: (args.skip_wait_for_delete_timeout > 0)
            .then_some(args.skip_wait_for_delete_timeout as i64),
        disable_eviction: args.disable_eviction,
        override_opt_outs: args.override_opt_outs,
        max_unavailable_nodes: Some(parallel),
        on_failure: if args.uncordon_on_failure {
            OnFailure::Uncordon
        } else {
            OnFailure::KeepCordoned
        },
        wait_for_capacity: args.wait_for_capacity,
    };
    // the controller's own check: bad input is refused here, before anything is created
    kdrain_controller::spec::check(&spec).map_err(|e| CliError::usage(flag_words(&e)))?;
    Ok(spec)
}

/// The controller's message with the spec's field names turned into this command's flags.
fn flag_words(message: &str) -> String {
    [
        ("spec.timeout", "--timeout"),
        ("spec.podSelector", "--pod-selector"),
        ("spec.nodeSelector", "--selector"),
        ("spec.maxUnavailableNodes", "--parallel"),
        ("spec.gracePeriodSeconds", "--grace-period"),
        (
            "spec.skipWaitForDeleteTimeoutSeconds",
            "--skip-wait-for-delete-timeout",
        ),
    ]
    .iter()
    .fold(message.to_string(), |m, (field, flag)| {
        m.replace(field, flag)
    })
}

/// A valid object name from `hint` and the current time.
fn default_name(hint: &str) -> String {
    let mut base: String = hint
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    base.truncate(40);
    let base = base.trim_matches(|c: char| c == '-' || c == '.');
    let stamp = jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S");
    format!("drain-{base}-{stamp}")
}

/// `kdrain request`: creates the NodeDrain, then follows it to the end of its stage (unless
/// `--detach`), with the exit codes of `kdrain drain`.
pub async fn request(global: &GlobalArgs, args: &RequestArgs) -> anyhow::Result<i32> {
    let spec = spec_of(args)?;
    let cluster =
        crate::config::connect(global.kubeconfig.as_deref(), global.context.as_deref()).await?;
    let hint = spec
        .node_names
        .as_ref()
        .map(|n| n.join("-"))
        .or(spec.node_selector.clone())
        .unwrap_or_default();
    let name = args.name.clone().unwrap_or_else(|| default_name(&hint));
    let api: Api<NodeDrain> = Api::all(cluster.client.clone());
    let stage = spec.stage;
    match api
        .create(&PostParams::default(), &NodeDrain::new(&name, spec))
        .await
    {
        Ok(_) => println!("nodedrain.kdrain.io/{name} created"),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Err(CliError::usage(
                "the cluster does not know NodeDrains; install the CRD with `kubectl apply -f deploy/controller/crd.yaml` and run `kdrain controller`",
            )
            .into());
        }
        Err(kube::Error::Api(s)) if s.code == 422 || s.code == 409 => {
            return Err(CliError::usage(format!(
                "{}; fix the flags (see `kdrain request --help`)",
                s.message
            ))
            .into());
        }
        Err(e) => return Err(e.into()),
    }
    if args.detach {
        return Ok(exit::OK);
    }
    crate::follow::follow(&api, &name, stage).await
}

/// The exit code of a NodeDrain that stopped in `phase` (as `kdrain drain` would have ended).
pub fn exit_code(nd: &NodeDrain) -> i32 {
    let status = nd.status.clone().unwrap_or_default();
    let reason = |t: &str| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == t)
            .map(|c| c.reason.clone())
            .unwrap_or_default()
    };
    match status.phase {
        Some(Phase::Drained | Phase::Completed | Phase::Planned | Phase::Cordoned) => exit::OK,
        Some(Phase::Refused) => match reason("Planned").as_str() {
            "PlanRefused" => {
                let plan = status.plan.unwrap_or_default();
                if !plan.refused_pods.is_empty() {
                    exit::PODS_LEFT
                } else if plan.budgets.iter().any(|b| b.verdict == "Never") {
                    exit::BLOCKED_BY_BUDGETS
                } else {
                    exit::NO_ROOM
                }
            }
            _ => exit::USAGE,
        },
        Some(Phase::Failed) => match reason("Drained").as_str() {
            "BlockedTimeout" => exit::BLOCKED_BY_BUDGETS,
            "PodsLeft" => exit::PODS_LEFT,
            "Forbidden" => exit::PERMISSION_DENIED,
            _ => exit::FAILED,
        },
        _ => exit::FAILED,
    }
}

/// How often `request` reads the NodeDrain while following it.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(300);
