//! kdrain's controller mode: the `NodeDrain` resource ([`types`]) and its CRD ([`crd`]).

#![deny(missing_docs)]

pub mod crd;
pub mod types;

pub use types::{NodeDrain, NodeDrainSpec, NodeDrainStatus, OnFailure, Phase, Stage};
