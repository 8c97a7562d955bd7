//! kdrain's controller mode: the `NodeDrain` resource ([`types`]) and its CRD ([`crd`]), drained
//! in the background by the kdrain library.
//!
//! - pure parts, unit-tested: the spec checked into drain options ([`spec`]), the stages and
//!   status pacing ([`stage`]), the status assembled from the library's events ([`progress`]),
//!   node claims ([`claims`]), metrics ([`metrics`]);
//! - the running parts: [`controller::run`] (kube-runtime's Controller handing each NodeDrain to
//!   its own worker task, so reconciles never wait), cordon ownership ([`nodes`]), Events
//!   ([`recorder`]), leader election ([`leader`]) and the HTTP endpoints ([`server`]).
//!
//! Each NodeDrain's drain is one run of the library ([`kdrain::Drainer`]) with its own
//! budget-aware dispatcher; across NodeDrains, the API server's Eviction API keeps budgets
//! (a refused eviction is retried), and `--max-concurrent-nodes` bounds the nodes draining at once.

#![deny(missing_docs)]

pub mod claims;
mod context;
pub mod controller;
pub mod crd;
pub mod leader;
pub mod metrics;
pub mod nodes;
pub mod progress;
pub mod recorder;
mod run;
pub mod server;
pub mod spec;
pub mod stage;
pub mod types;
mod worker;

pub use controller::{Settings, run};
pub use types::{NodeDrain, NodeDrainSpec, NodeDrainStatus, OnFailure, Phase, Stage};
