//! kdrain: drain Kubernetes nodes with `kubectl drain`'s meaning, driven by watches instead of
//! polling, with budget-aware dispatch, a plan before any write, typed progress events and a
//! per-pod report.
//!
//! The entry point is [`Drainer`]. A drain:
//! 1. checks that every node exists (bad input changes nothing) and cordons them all;
//! 2. lists their pods and runs kubectl's filter chain ([`select`]), the ecosystem's opt-outs and
//!    your own filters, and lists the disruption budgets;
//! 3. builds a [`Plan`]: every pod with its [`Action`], every budget with its [`BudgetVerdict`]
//!    (budgets are spent jointly over all pods of all nodes), and whether the evicted pods'
//!    replacements fit on the nodes that stay schedulable ([`capacity`]). Errors stop the drain
//!    before any eviction ([`DrainError::PlanRefused`]);
//! 4. evicts through one budget-aware dispatcher (never more requests in flight for a budget than
//!    it allows), follows every pod through one LIST + WATCH per node, retries blocked pods the
//!    moment a watched budget allows it, and ends each node with a fresh LIST;
//! 5. returns a [`Report`], or [`DrainError::Incomplete`] (carrying the report) whenever a target
//!    pod was not seen gone. At a timeout, or when [`Drainer::drain_until`]'s stop future fires
//!    (Ctrl-C), nothing more is sent, requests in flight are answered first and a fresh LIST
//!    catches up, so every pod reported left is really still there.
//!
//! Reads and the cordon patches are retried on 429, 5xx and broken connections (6 attempts);
//! evictions are retried by the dispatcher until the timeout. Answers kdrain cannot use
//! (malformed JSON, wrong kinds, pods without identity, endless lists) end the drain with
//! [`DrainError::BadResponse`] before anything more is written.
//!
//! The `kube::Client` must be built with `default_retry = false`: the client's own retry layer
//! would otherwise swallow 429s for minutes.
//!
//! # Example
//!
//! Draining a node of an in-process simulated cluster (the workspace's `kubesim` crate):
//!
//! ```
//! # #[tokio::main]
//! # async fn main() {
//! use kdrain::{DrainOptions, Drainer, PodOutcome};
//!
//! let scenario = kubesim::Scenario::from_yaml_str(r#"
//! nodes: [{name: n1}, {name: n2}]
//! workloads:
//!   - {kind: Deployment, name: web, replicas: 3, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.1}
//! pdbs:
//!   - {name: web, selector: {app: web}, maxUnavailable: 1}
//! "#).unwrap();
//! let sim = kubesim::Sim::start(scenario).await.unwrap();
//!
//! let drainer = Drainer::new(sim.client(), DrainOptions::kubectl());
//! let plan = drainer.plan(&["n1".to_string()]).await.unwrap();
//! assert_eq!(plan.evictions(), 3);
//! assert!(plan.can_complete());
//!
//! let report = drainer.drain(&["n1".to_string()]).await.unwrap();
//! assert!(report.nodes[0].pods.iter().all(|p| p.outcome == PodOutcome::Gone));
//! assert_eq!(report.requests["create pods/eviction"], 3);
//! # }
//! ```

#![deny(missing_docs)]

mod access;
pub mod approval;
mod backoff;
pub mod budget;
mod builder;
pub mod capacity;
#[cfg(test)]
mod capacity_tests;
pub mod cordon;
mod dispatch;
mod drainer;
pub mod duration;
pub mod error;
pub mod events;
pub mod evict;
pub mod fit;
mod kept_pod;
pub mod model;
pub mod options;
pub mod placement;
pub mod plan;
pub mod report;
mod requests;
pub mod resident;
mod retry;
pub mod select;
mod serde_secs;
mod slim_pod;
pub mod surge;
mod watch;
mod watch_stream;
pub mod waves;
#[cfg(test)]
mod waves_tests;

pub use builder::DrainerBuilder;
pub use cordon::CordonResult;
pub use dispatch::BudgetLedger;
pub use drainer::{Drainer, Prepared};
pub use error::{DrainError, ErrorKind};
pub use events::{Event, Healthy, PodRef, Stamped, WaitsFor};
pub use options::{DrainOptions, DryRun, OptionsError, Policy};
pub use plan::{Action, BudgetPlan, BudgetVerdict, NodePlan, Plan, PodPlan};
pub use report::{FailureKind, NodeOutcome, NodeReport, PodOutcome, PodReport, Report};
pub use select::{FilterVerdict, PodFilter};
