//! One node, one active NodeDrain. A NodeDrain holds its nodes from the moment it resolves them
//! until it is Refused, Completed or deleted (a Drained or Failed one still holds them: they are
//! cordoned in its name). When two want the same node, the one created later is refused, naming
//! the other; the controller's own table settles races between drains not yet written to status.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::types::{NodeDrain, Phase, Stage};

/// The order of NodeDrains: creation time, then name.
fn rank(nd: &NodeDrain) -> (Option<jiff::Timestamp>, String) {
    (
        nd.metadata.creation_timestamp.as_ref().map(|t| t.0),
        nd.metadata.name.clone().unwrap_or_default(),
    )
}

/// True when `nd` holds (or is about to hold) its nodes.
pub fn is_active(nd: &NodeDrain) -> bool {
    if nd.metadata.deletion_timestamp.is_some() || nd.spec.stage == Stage::Complete {
        return false;
    }
    if crate::spec::check(&nd.spec).is_err() {
        return false;
    }
    !matches!(
        nd.status.as_ref().and_then(|s| s.phase),
        Some(Phase::Refused) | Some(Phase::Completed)
    )
}

/// The nodes `nd` holds as far as its object says: its named nodes, or the nodes its status
/// lists (a selector's nodes are known once resolved).
pub fn held_nodes(nd: &NodeDrain) -> Vec<String> {
    if let Some(names) = &nd.spec.node_names {
        return names.clone();
    }
    nd.status
        .as_ref()
        .map(|s| s.nodes.iter().map(|n| n.name.clone()).collect())
        .unwrap_or_default()
}

/// The first active NodeDrain created before `me` that holds one of `nodes`: `(its name, the
/// node)`.
pub fn earlier_claim(
    me: &NodeDrain,
    nodes: &[String],
    all: &[NodeDrain],
) -> Option<(String, String)> {
    let my_rank = rank(me);
    let mut others: Vec<&NodeDrain> = all
        .iter()
        .filter(|o| o.metadata.name != me.metadata.name && is_active(o) && rank(o) < my_rank)
        .collect();
    others.sort_by_key(|o| rank(o));
    others.into_iter().find_map(|o| {
        let held = held_nodes(o);
        nodes
            .iter()
            .find(|n| held.contains(n))
            .map(|n| (o.metadata.name.clone().unwrap_or_default(), n.clone()))
    })
}

/// The controller's table of nodes held, by node.
#[derive(Debug, Default)]
pub struct Claims {
    held: Mutex<HashMap<String, String>>,
}

impl Claims {
    /// Claims every node of `nodes` for `drain`, or none when one is held by another drain:
    /// then `(that drain, the node)`.
    pub fn claim(&self, drain: &str, nodes: &[String]) -> Result<(), (String, String)> {
        let mut held = self.held.lock().expect("claims lock");
        for n in nodes {
            if let Some(other) = held.get(n)
                && other != drain
            {
                return Err((other.clone(), n.clone()));
            }
        }
        for n in nodes {
            held.insert(n.clone(), drain.to_string());
        }
        Ok(())
    }

    /// Releases every node `drain` holds.
    pub fn release(&self, drain: &str) {
        self.held
            .lock()
            .expect("claims lock")
            .retain(|_, d| d != drain);
    }
}

/// The `Refused` message for a node held by another NodeDrain.
pub fn refusal(other: &str, node: &str) -> String {
    format!(
        "node {node} is claimed by NodeDrain {other}; set its stage to Complete or delete it, then recreate this one"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{NodeDrainSpec, NodeDrainStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn nd(name: &str, created: i64, nodes: &[&str]) -> NodeDrain {
        let mut n = NodeDrain::new(
            name,
            NodeDrainSpec {
                node_names: Some(nodes.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            },
        );
        n.metadata.creation_timestamp = Some(Time(
            jiff::Timestamp::from_second(1_800_000_000 + created).unwrap(),
        ));
        n
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_later_drain_is_refused_naming_the_earlier() {
        let a = nd("a", 0, &["n1", "n2"]);
        let b = nd("b", 10, &["n2", "n3"]);
        let all = vec![a.clone(), b.clone()];
        assert_eq!(earlier_claim(&a, &names(&["n1", "n2"]), &all), None);
        assert_eq!(
            earlier_claim(&b, &names(&["n2", "n3"]), &all),
            Some(("a".into(), "n2".into()))
        );
        assert_eq!(
            refusal("a", "n2"),
            "node n2 is claimed by NodeDrain a; set its stage to Complete or delete it, then recreate this one"
        );
    }

    #[test]
    fn refused_completed_deleted_and_completing_drains_hold_nothing() {
        let b = nd("b", 10, &["n1"]);
        let mut refused = nd("r", 0, &["n1"]);
        refused.status = Some(NodeDrainStatus {
            phase: Some(Phase::Refused),
            ..Default::default()
        });
        let mut done = nd("c", 1, &["n1"]);
        done.status = Some(NodeDrainStatus {
            phase: Some(Phase::Completed),
            ..Default::default()
        });
        let mut completing = nd("k", 2, &["n1"]);
        completing.spec.stage = Stage::Complete;
        let mut deleted = nd("d", 3, &["n1"]);
        deleted.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::now()));
        let mut invalid = nd("i", 4, &["n1"]);
        invalid.spec.node_selector = Some("x=y".into());
        let mut drained = nd("z", 5, &["n1"]);
        drained.status = Some(NodeDrainStatus {
            phase: Some(Phase::Drained),
            ..Default::default()
        });
        let all = vec![refused, done, completing, deleted, invalid, b.clone()];
        assert_eq!(earlier_claim(&b, &names(&["n1"]), &all), None);
        let all = vec![drained, b.clone()];
        assert_eq!(
            earlier_claim(&b, &names(&["n1"]), &all),
            Some(("z".into(), "n1".into())),
            "a drained node stays cordoned in the earlier drain's name"
        );
    }

    #[test]
    fn a_selector_drain_holds_the_nodes_its_status_lists() {
        let mut a = NodeDrain::new(
            "a",
            NodeDrainSpec {
                node_selector: Some("pool=x".into()),
                ..Default::default()
            },
        );
        a.metadata.creation_timestamp = Some(Time(jiff::Timestamp::from_second(1).unwrap()));
        let b = nd("b", 10, &["n7"]);
        assert_eq!(
            earlier_claim(&b, &names(&["n7"]), &[a.clone(), b.clone()]),
            None
        );
        a.status = Some(NodeDrainStatus {
            nodes: vec![crate::types::NodeProgress {
                name: "n7".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        assert_eq!(
            earlier_claim(&b, &names(&["n7"]), &[a, b.clone()]),
            Some(("a".into(), "n7".into()))
        );
    }

    #[test]
    fn the_table_gives_a_node_to_one_drain_at_a_time() {
        let c = Claims::default();
        assert_eq!(c.claim("a", &names(&["n1", "n2"])), Ok(()));
        assert_eq!(
            c.claim("a", &names(&["n1"])),
            Ok(()),
            "claiming again is fine"
        );
        assert_eq!(
            c.claim("b", &names(&["n3", "n2"])),
            Err(("a".into(), "n2".into()))
        );
        assert_eq!(
            c.claim("b", &names(&["n3"])),
            Ok(()),
            "nothing of the refused claim stuck"
        );
        c.release("a");
        assert_eq!(c.claim("b", &names(&["n1", "n2"])), Ok(()));
    }
}
