//! An operator's use of kdrain, end to end, against an in-process kubesim cluster:
//! build a drainer, plan, inspect what will block and why, execute the approved plan while
//! following its events, and cancel it when the operator's own deadline comes.
//!
//! Run it with `cargo run -p kdrain --example operator`.

use std::time::Duration;

use kdrain::{BudgetVerdict, DrainError, DrainOptions, Drainer, Event, Stamped};

const CLUSTER: &str = r#"
nodes: [{name: n1}, {name: n2}, {name: n3}]
workloads:
  - {kind: Deployment, name: web, replicas: 3, nodes: [n1], terminationSeconds: 0.5, readySeconds: 1}
  - {kind: Deployment, name: api, replicas: 1, nodes: [n1], terminationSeconds: 0.5, readySeconds: 1}
  - {kind: DaemonSet, name: agent, namespace: kube-system}
pdbs:
  - {name: web, selector: {app: web}, maxUnavailable: 1}
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // In an operator: `let client = Drainer::client_from_config(kube::Config::infer().await?)?;`
    let sim = kubesim::Sim::start(kubesim::Scenario::from_yaml_str(CLUSTER)?).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Stamped>();
    let drainer = Drainer::builder(sim.client())
        .options(DrainOptions {
            ignore_daemonsets: true,
            timeout: Some(Duration::from_secs(60)),
            ..DrainOptions::kubectl()
        })
        .events(tx)
        .build()?;

    // 1. Plan: reads only. Which pods go, which budget holds them back, and can it complete?
    let nodes = vec!["n1".to_string()];
    let plan = drainer.plan(&nodes).await?;
    println!(
        "plan: {} evictions, worst case {:.0}s, can complete: {}",
        plan.evictions(),
        plan.worst_case_seconds,
        plan.can_complete()
    );
    for b in &plan.budgets {
        let verdict = match &b.verdict {
            BudgetVerdict::Passes => "lets every pod go at once".to_string(),
            BudgetVerdict::Waits { reason } => format!("waits: {reason}"),
            BudgetVerdict::Never { reason } => format!("never passes: {reason}"),
            _ => "unknown".to_string(),
        };
        println!("  budget {}/{}: {verdict}", b.namespace, b.name);
    }
    if !plan.can_complete() {
        eprintln!("refusing: {}", plan.errors.join("; "));
        return Ok(());
    }

    // 2. Follow the drain's events as they happen (a real operator would update its status).
    let follower = tokio::spawn(async move {
        while let Some(Stamped { time, event }) = rx.recv().await {
            match event {
                Event::Blocked {
                    pod, budget, cause, ..
                } => println!(
                    "{time} {pod} waits for {}: {cause}",
                    budget.unwrap_or_default()
                ),
                Event::Gone { pod, .. } => println!("{time} {pod} gone"),
                Event::NodeDrained { node, .. } => println!("{time} node {node} drained"),
                _ => {}
            }
        }
    });

    // 3. Execute the approved plan, with the operator's own cancellation (here: 30 s).
    let cancel = tokio::time::sleep(Duration::from_secs(30));
    let result = drainer.execute_until(&plan, cancel).await;
    drop(drainer); // closes the event channel
    follower.await?;
    match result {
        Ok(report) => println!(
            "drained in {:.1}s with {} API requests",
            report.seconds,
            report.requests.values().sum::<u64>()
        ),
        Err(DrainError::PlanChanged { departures }) => {
            eprintln!("the cluster changed since the plan: {departures:?}")
        }
        Err(e) => {
            eprintln!("not drained: {e}");
            if let Some(report) = e.report() {
                for p in report.pending() {
                    eprintln!("  left: {} ({:?})", p.pod, p.outcome);
                }
            }
        }
    }
    Ok(())
}
