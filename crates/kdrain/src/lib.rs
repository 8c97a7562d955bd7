//! kdrain: drain Kubernetes nodes with `kubectl drain`'s meaning, driven by watches instead of
//! polling, with budget-aware dispatch, a plan before any write, typed progress events and a
//! per-pod report.

#![deny(missing_docs)]

pub mod budget;
pub mod cordon;
mod dispatch;
mod drainer;
pub mod error;
pub mod events;
pub mod evict;
pub mod options;
pub mod plan;
pub mod report;
mod requests;
pub mod select;
mod serde_secs;
mod watch;

pub use cordon::CordonResult;
pub use drainer::Drainer;
pub use error::DrainError;
pub use events::{Event, PodRef};
pub use options::{DrainOptions, DryRun, OptionsError, Policy};
pub use plan::{Action, BudgetPlan, BudgetVerdict, NodePlan, Plan, PodPlan};
pub use report::{NodeOutcome, NodeReport, PodOutcome, PodReport, Report};
pub use select::{FilterVerdict, PodFilter};
