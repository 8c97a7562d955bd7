//! Integration tests: the drain engine against a real in-process kubesim over HTTP.

mod api;
mod budgets;
mod capacity;
mod concurrency;
mod deadline;
mod do_not_disrupt;
mod filters;
mod hostile;
mod interrupt;
mod module_graph;
mod orderings;
mod outcomes;
mod probes;
mod readiness;
mod requests;
mod soak;
mod watching;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kdrain::{DrainOptions, Drainer, Event};
use kube::Api;
use kube::api::ListParams;
use kubesim::{Scenario, Sim};
use tokio::sync::mpsc::UnboundedReceiver;

/// Every wait in the tests is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(60);

/// Starts a simulator from YAML.
pub async fn sim(yaml: &str) -> Sim {
    let sc = Scenario::from_yaml_str(yaml).expect("scenario");
    Sim::start(sc).await.expect("kubesim starts")
}

/// A drainer on `sim` plus the receiving end of its events.
pub fn drainer(sim: &Sim, opts: DrainOptions) -> (Drainer, UnboundedReceiver<Event>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (Drainer::new(sim.client(), opts).with_events(tx), rx)
}

/// Runs a future with the test time limit.
pub async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("finished within the test time limit")
}

/// Drains `nodes` and returns the result with every event sent.
pub async fn drain(
    sim: &Sim,
    opts: DrainOptions,
    nodes: &[&str],
) -> (Result<kdrain::Report, kdrain::DrainError>, Vec<Event>) {
    let (d, mut rx) = drainer(sim, opts);
    let nodes: Vec<String> = nodes.iter().map(|s| s.to_string()).collect();
    let res = bounded(d.drain(&nodes)).await;
    drop(d);
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (res, events)
}

/// Requests the simulator counted for (verb, resource, subresource), over all codes.
pub fn count(sim: &Sim, verb: &str, resource: &str, sub: &str) -> u64 {
    sim.requests()
        .iter()
        .filter(|r| r.verb == verb && r.resource == resource && r.subresource == sub)
        .map(|r| r.count)
        .sum()
}

/// Requests with one HTTP code.
pub fn count_code(sim: &Sim, verb: &str, resource: &str, sub: &str, code: u16) -> u64 {
    sim.requests()
        .iter()
        .filter(|r| {
            r.verb == verb && r.resource == resource && r.subresource == sub && r.code == code
        })
        .map(|r| r.count)
        .sum()
}

/// Asserts the simulator recorded no invariant violation.
pub fn no_violations(sim: &Sim) {
    let v = sim.violations();
    assert!(v.is_empty(), "invariant violations: {v:#?}");
}

/// The pods on a node.
pub async fn pods_on(sim: &Sim, node: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::all(sim.client());
    api.list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .expect("list")
        .items
}

/// Names of the pods on a node.
pub async fn pod_names_on(sim: &Sim, node: &str) -> Vec<String> {
    let mut v: Vec<String> = pods_on(sim, node)
        .await
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    v.sort();
    v
}

/// A node object.
pub async fn node(sim: &Sim, name: &str) -> Node {
    Api::<Node>::all(sim.client())
        .get(name)
        .await
        .expect("node")
}

/// Waits until `check` holds on the pods of `node` (polling the simulator; test-side only).
pub async fn wait_pods(sim: &Sim, node: &str, check: impl Fn(&[Pod]) -> bool) {
    bounded(async {
        loop {
            if check(&pods_on(sim, node).await) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// Options with fast retries for tests.
pub fn fast() -> DrainOptions {
    DrainOptions {
        budget_retry_ceiling: Duration::from_millis(500),
        ..DrainOptions::kubectl()
    }
}

/// Options that drain everything kubectl can drain.
pub fn all_flags() -> DrainOptions {
    DrainOptions {
        force: true,
        ignore_daemonsets: true,
        delete_emptydir_data: true,
        ..fast()
    }
}
