//! kdrain's controller mode: the `NodeDrain` resource ([`types`]) and its CRD ([`crd`]), the
//! spec checked into drain options ([`spec`]), the stages and status pacing ([`stage`]), and the
//! status assembled from the library's events ([`progress`]).

#![deny(missing_docs)]

pub mod crd;
pub mod progress;
pub mod spec;
pub mod stage;
pub mod types;

pub use types::{NodeDrain, NodeDrainSpec, NodeDrainStatus, OnFailure, Phase, Stage};
