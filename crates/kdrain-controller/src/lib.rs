//! kdrain's controller mode: the `NodeDrain` resource ([`types`]) and its CRD ([`crd`]), drained
//! in the background by the kdrain library.
//!
//! - pure parts, unit-tested: the spec checked into drain options ([`spec`]), the stages and
//!   status pacing ([`stage`]), the status assembled from the library's events ([`progress`]),
//!   node claims ([`claims`]), metrics ([`metrics`]);
//! - the running parts: [`controller::run`] (kube-runtime's Controller handing each NodeDrain to
//!   its own worker task, so reconciles never wait), its rights checked at start ([`access`]),
//!   cordon ownership ([`nodes`]), Events
//!   ([`recorder`]), leader election ([`leader`]) and the HTTP endpoints ([`server`]).
//!
//! Each NodeDrain's drain is one run of the library ([`kdrain::Drainer`]): planned once
//! ([`kdrain::Drainer::prepare`]) and carried out from the same reads
//! ([`kdrain::Drainer::execute_prepared`]), by its own dispatcher. Budgets hold across
//! NodeDrains through one [`kdrain::BudgetLedger`] shared by every drain of the controller: an
//! eviction in flight (or accepted and not yet counted by the budget's status) in one drain
//! counts against its budget in all, so two NodeDrains never spend the same allowance (why a
//! shared ledger rather than one dispatcher for every drain: see the ledger's documentation).
//! `--max-concurrent-nodes` bounds the nodes draining at once, over every NodeDrain.

#![deny(missing_docs)]

pub mod access;
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
