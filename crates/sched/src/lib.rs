//! Scheduling predicates shared by kdrain's placement check and kubesim's scheduler, so both
//! sides agree on what "fits" means (and both follow the real kube-scheduler, which wins where
//! they differ):
//!
//! * [`quantity`]: exact parsing of resource quantities (`500m`, `1.5Gi`, `1e3`);
//! * [`resources`]: a pod's effective requests and a node's allocatable, in scheduler units;
//! * [`nodes`]: readiness, cordon, `nodeSelector` and required node affinity, taints and
//!   tolerations;
//! * [`interpod`]: label selectors, topology spread and pod anti-affinity as the inter-pod
//!   filters read them;
//! * [`diagnosis`]: the scheduler's `0/N nodes are available: ...` message.
//!
//! ```
//! use sched::quantity::Quantity;
//! assert_eq!(Quantity::parse("1.5").unwrap().milli(), 1500);
//! assert_eq!(Quantity::parse("2Gi").unwrap().value(), 2 << 30);
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod diagnosis;
pub mod interpod;
pub mod nodes;
pub mod quantity;
pub mod resources;
