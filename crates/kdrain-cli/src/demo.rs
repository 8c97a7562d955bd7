//! `kdrain demo`: starts kubesim in-process with a small, lively cluster and drains one node
//! with the normal renderers, so a newcomer sees kdrain work with no cluster at all.

use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::ListParams;
use kubesim::{Scenario, Sim};

use crate::args::{DemoArgs, GlobalArgs, OutputFormat};
use crate::exit::CliError;
use crate::render::{self, Mode};

/// The built-in scenario: three nodes, deployments, a StatefulSet, a DaemonSet, a bare pod,
/// a mirror pod, and two budgets (one of which holds the second `web` pod back for a moment).
const DEMO_SCENARIO: &str = include_str!("../../../scenarios/demo.yaml");

/// How long the demo drain may take before it gives up (it normally takes about 15 s).
const DEMO_TIMEOUT: Duration = Duration::from_secs(45);

/// Runs the demo and returns the drain's exit code.
pub async fn run(global: &GlobalArgs, args: &DemoArgs) -> anyhow::Result<i32> {
    if args.kubeconfig.is_some() || args.context.is_some() {
        return Err(CliError::usage(
            "demo runs its own cluster in the process; --kubeconfig and --context do not apply (drop them, or use `kdrain drain` for a real cluster)",
        )
        .into());
    }
    let scenario = match &args.scenario {
        Some(path) => Scenario::from_file(path).map_err(|e| {
            CliError::usage(format!(
                "cannot load scenario {}: {e}; pass a kubesim scenario YAML file",
                path.display()
            ))
        })?,
        None => Scenario::from_yaml_str(DEMO_SCENARIO)
            .context("the built-in demo scenario is invalid")?,
    };
    let names = scenario.node_names();
    let node = match &args.node {
        // The demo cluster lives only in this process: name its nodes, not `kubectl get nodes`.
        Some(n) if !names.contains(n) => {
            return Err(CliError::usage(format!(
                "node {n:?} is not in the demo cluster; pick one of its nodes with --node: {}",
                some_names(&names)
            ))
            .into());
        }
        Some(n) => n.clone(),
        None => names
            .into_iter()
            .next()
            .ok_or_else(|| CliError::usage("the scenario has no nodes to drain"))?,
    };
    let sim = Sim::start(scenario)
        .await
        .context("cannot start the in-process kubesim")?;
    let mode = render::choose(global.output);
    if mode != Mode::Json {
        let banner = format!(
            "kubesim is serving a demo cluster at {}; draining node/{node} (--force --ignore-daemonsets --delete-emptydir-data)",
            sim.url()
        );
        for line in fitted(mode, &banner) {
            eprintln!("{line}");
        }
    }
    let client = sim.client();
    wait_for_budgets(&client).await;
    if args.controller {
        let code = through_the_controller(&sim, &node).await?;
        print_violations(&sim, global, mode);
        sim.shutdown().await;
        return Ok(code);
    }
    let options = kdrain::DrainOptions {
        force: true,
        ignore_daemonsets: true,
        delete_emptydir_data: true,
        timeout: Some(DEMO_TIMEOUT),
        ..kdrain::DrainOptions::kubectl()
    };
    let (code, report) = crate::drain_with(client, options, vec![node], mode, Vec::new()).await?;
    // The progress view prints its own summary; plain text gets the same table at the end.
    if mode == Mode::Text
        && let Some(report) = &report
    {
        print!("{}", render::summary::table(report));
    }
    print_violations(&sim, global, mode);
    sim.shutdown().await;
    Ok(code)
}

/// `demo --controller`: the CRD installed, the controller running in this process, a NodeDrain
/// for `node` followed as `kdrain request` follows it, then the controller's metrics.
async fn through_the_controller(sim: &Sim, node: &str) -> anyhow::Result<i32> {
    use kdrain_controller::{NodeDrain, NodeDrainSpec, Stage};
    sim.install_crd(&kdrain_controller::crd::crd_yaml())
        .context("cannot install the NodeDrain CRD in the demo cluster")?;
    let metrics = std::sync::Arc::new(kdrain_controller::metrics::Metrics::new());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(kdrain_controller::run(
        sim.client(),
        kdrain_controller::Settings::default(),
        metrics.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    let name = format!("demo-{node}");
    let spec = NodeDrainSpec {
        node_names: Some(vec![node.to_string()]),
        reason: Some("kdrain demo".into()),
        force: true,
        ignore_daemon_sets: true,
        delete_empty_dir_data: true,
        timeout: Some(format!("{}s", DEMO_TIMEOUT.as_secs())),
        ..Default::default()
    };
    let api: Api<NodeDrain> = Api::all(sim.client());
    api.create(&Default::default(), &NodeDrain::new(&name, spec))
        .await
        .context("cannot create the demo NodeDrain")?;
    println!("nodedrain.kdrain.io/{name} created; the controller drains it in this process");
    let code = crate::follow::follow(&api, &name, Stage::Drain).await?;
    let _ = stop.send(());
    let _ = controller.await;
    println!("controller metrics:");
    for line in metrics.encode().lines() {
        if line.starts_with("kdrain_") && !line.contains("_bucket") && !line.ends_with(" 0") {
            println!("  {line}");
        }
    }
    Ok(code)
}

/// The invariant log's verdict, as the last lines.
fn print_violations(sim: &Sim, global: &GlobalArgs, mode: Mode) {
    let violations = sim.violations();
    if global.output != Some(OutputFormat::Json) {
        if violations.is_empty() {
            for line in fitted(
                mode,
                "kubesim invariant log: no violations (no budget broken, no DaemonSet or mirror pod removed)",
            ) {
                println!("{line}");
            }
        } else {
            for v in &violations {
                println!("kubesim violation: {} {}: {}", v.kind, v.object, v.message);
            }
        }
    }
}

/// In the live view, `text` wrapped at words to the terminal's width; otherwise as it is.
fn fitted(mode: Mode, text: &str) -> Vec<String> {
    if mode == Mode::Progress {
        render::fit::wrap(text, render::fit::terminal_width(), "  ")
    } else {
        vec![text.to_string()]
    }
}

/// Up to ten names, then how many there are in all.
fn some_names(names: &[String]) -> String {
    const SHOWN: usize = 10;
    if names.len() <= SHOWN {
        return names.join(", ");
    }
    format!(
        "{}, ... ({} in all)",
        names[..SHOWN].join(", "),
        names.len()
    )
}

/// Waits (briefly) until the disruption controller has processed every budget, so the first
/// evictions are judged on real numbers rather than "still being processed".
async fn wait_for_budgets(client: &kube::Client) {
    let api: Api<PodDisruptionBudget> = Api::all(client.clone());
    for _ in 0..50 {
        if let Ok(list) = api.list(&ListParams::default()).await {
            let processed = list.items.iter().all(|p| {
                let generation = p.metadata.generation.unwrap_or(0);
                p.status
                    .as_ref()
                    .and_then(|s| s.observed_generation)
                    .is_some_and(|g| g >= generation)
            });
            if processed {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
