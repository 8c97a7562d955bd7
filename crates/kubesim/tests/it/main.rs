//! kubesim integration tests: real HTTP against an in-process simulator.

mod accounting;
mod auth;
mod common;
mod controllers;
mod crd;
mod deletion;
mod discovery;
mod events;
mod events_api;
mod eviction;
mod interpod;
mod kubectl;
mod kubectl_crd;
mod kubectl_everyday;
mod leases;
mod list;
mod paging;
mod patch;
mod pdb_status;
mod rollout;
mod scenario_fuzz;
mod scheduling;
mod tls;
mod watch;
