//! kubesim: a Kubernetes API simulator that the real `kubectl` and the `kube` crate accept.
//!
//! It serves the REST/JSON protocol of kube-apiserver 1.32 for the kinds a node drain touches
//! (Namespace, Node, Pod with `status` and `eviction`, PodDisruptionBudget, DaemonSet, ReplicaSet,
//! Deployment, StatefulSet, Lease, Event) and simulates the controller-manager and kubelet parts
//! a drain depends on. Start one in-process with [`Sim::start`] from a [`Scenario`].
#![deny(missing_docs)]

mod api;
mod auth;
mod builder;
mod cel_rules;
mod controllers;
mod crd;
mod error;
mod events;
mod eviction;
mod faults;
mod filter;
mod graceful;
mod labels;
mod ledger;
mod meta;
mod objects;
mod paging;
mod patch;
mod pdb;
mod pdb_index;
mod resources;
mod scenario;
mod scheduling;
mod schema;
mod sim;
mod store;
mod tls;

pub use auth::{AuthSpec, BindingSpec, RoleSpec, RuleSpec, UserSpec};
pub use error::ApiError;
pub use faults::Fault;
pub use ledger::{RequestCount, Violation};
pub use scenario::{
    IntOrPercent, MirrorPod, NamespaceSpec, NodeSpec, PdbSpec, Scenario, ScenarioError, Settings,
    Workload, WorkloadKind,
};
pub use scheduling::TaintSpec;
pub use sim::{Sim, SimError, SimOptions};
pub use tls::{TlsError, client_identity_pem};
