//! Kubernetes Events (events.k8s.io/v1, through kube-runtime's [`Recorder`]) on a NodeDrain and
//! on its Nodes: cordoned, drain started, blocked by a budget (with needs/has), drained, failed,
//! uncordoned. Identical events on one object become one Event with a growing series (the
//! Recorder's aggregation); a budget block is published once per budget and needs/has change,
//! never per retry.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::types::NodeDrain;

/// The controller's name in Events (`reportingController`).
pub const CONTROLLER: &str = "kdrain.io/controller";

/// Publishes Events; failures are logged, never fatal (Events are best effort).
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

/// A reference to a Node, for Events about it.
pub fn node_ref(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Node".into()),
        name: Some(name.into()),
        ..Default::default()
    }
}

/// A reference to a NodeDrain.
pub fn drain_ref(nd: &NodeDrain) -> ObjectReference {
    ObjectReference {
        api_version: Some("kdrain.io/v1alpha1".into()),
        kind: Some("NodeDrain".into()),
        name: nd.metadata.name.clone(),
        uid: nd.metadata.uid.clone(),
        ..Default::default()
    }
}

impl Events {
    /// Events reported as `instance` of the controller.
    pub fn new(client: kube::Client, instance: Option<String>) -> Self {
        Events {
            recorder: Recorder::new(
                client,
                Reporter {
                    controller: CONTROLLER.into(),
                    instance,
                },
            ),
        }
    }

    /// Publishes one Event about `regarding`, related to `related`.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        related: Option<ObjectReference>,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: related,
        };
        if let Err(e) = self.recorder.publish(&ev, regarding).await {
            tracing::warn!(reason, "cannot publish an Event: {e}");
        }
    }
}

/// Remembers which budget blocks were already published by one drain run, so that a block is
/// said once per budget and needs/has, not once per pod or retry.
#[derive(Debug, Default)]
pub struct BudgetBlocks {
    said: HashSet<(String, Option<i32>, Option<i32>)>,
}

impl BudgetBlocks {
    /// True the first time this budget blocks with these counts.
    pub fn first(&mut self, budget: &str, needs: Option<i32>, has: Option<i32>) -> bool {
        self.said.insert((budget.to_string(), needs, has))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_block_is_said_once_per_counts() {
        let mut b = BudgetBlocks::default();
        assert!(b.first("shop/web", Some(2), Some(2)));
        assert!(!b.first("shop/web", Some(2), Some(2)));
        assert!(b.first("shop/web", Some(3), Some(2)));
        assert!(b.first("shop/db", Some(2), Some(2)));
    }
}
