//! Kubernetes label and field selectors, shared by the kdrain engine and the kubesim API simulator so both sides
//! agree on what a selector means.
//!
//! * [`LabelSelector`]: the `labelSelector=` grammar (`k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`,
//!   `k notin (a,b)`, `k>N`, `k<N`), `metav1.LabelSelector` conversion with PodDisruptionBudget semantics
//!   ([`LabelSelector::from_parts`], [`LabelSelector::nothing`]) and matching.
//! * [`FieldSelector`]: the `fieldSelector=` grammar (`k=v`, `k==v`, `k!=v`, backslash escapes) and matching.
//!
//! Parsing, canonical string forms and error messages follow `k8s.io/apimachinery` (`pkg/labels`,
//! `pkg/fields`, `pkg/util/validation`), so a simulator can return the real server's 400 texts.
//!
//! ```
//! use std::collections::BTreeMap;
//! use selectors::{FieldSelector, LabelSelector};
//!
//! let sel: LabelSelector = "app in (web,api), tier!=db".parse().unwrap();
//! let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
//! assert!(sel.matches(&labels));
//! assert_eq!(sel.to_string(), "app in (api,web),tier!=db");
//!
//! let fields = FieldSelector::parse("spec.nodeName=node-1").unwrap();
//! assert_eq!(fields.equals_value("spec.nodeName"), Some("node-1"));
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod field;
pub mod label;
mod validation;

pub use field::{FieldOp, FieldSelector, FieldSelectorError, FieldTerm};
pub use label::{LabelSelector, LabelSelectorError, Operator, Requirement};
pub use validation::{is_valid_label_key, is_valid_label_value};
