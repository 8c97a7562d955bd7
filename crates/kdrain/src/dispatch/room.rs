//! Waves and the wait for room (`wait_for_capacity`). Without nodes waiting, the plan's waves
//! start one after the other (a wave starts when every node of the one before has ended).
//! While nodes wait for room, nodes start one by one as room appears instead: whenever room
//! may have come back (a node ended, or the node watch saw a node become schedulable and
//! Ready), the core asks for a fresh read of the cluster ([`Command::ReadRoom`], answered by
//! [`Input::Room`]) and starts, among every node not started yet (the plan's later waves first,
//! then the waiting nodes), those whose replacements fit now after the replacements still to
//! come of the nodes draining, at most `parallel_nodes` running at once. A change seen while a
//! read is in flight asks again when it is answered. The node watch starts from the first
//! read's resourceVersion; as a fallback (room freed by pods leaving other nodes, a node watch
//! that cannot run) a read that finds no room is followed by another after 1 s, doubling, at
//! most every [`ROOM_CHECK_MAX`], until some fit or the wait has lasted the drain's timeout:
//! the nodes still waiting then end with [`FailureKind::NoRoom`], nothing evicted.
//!
//! [`Input::Room`]: super::core::Input::Room

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use tokio::time::Instant;

use super::core::{Command, Core, NodesSeen};
use super::track::St;
use crate::events::Event;
use crate::plan::Action;
use crate::report::{FailureKind, NodeOutcome};
use crate::watch::{Change, Seen};

/// The first re-read of the cluster after a read that found no room.
pub(super) const ROOM_CHECK_FIRST: Duration = Duration::from_secs(1);
/// The longest pause between two reads while nodes wait for room.
pub(super) const ROOM_CHECK_MAX: Duration = Duration::from_secs(5);

/// The state of the wait for room.
#[derive(Debug, Default)]
pub(crate) struct RoomWait {
    /// A [`Command::ReadRoom`] is in flight.
    pub(super) asking: bool,
    /// Room may have come back since the read in flight was asked: read again when answered.
    pub(super) again: bool,
    /// When to read again (none: not waiting, or a read is in flight).
    pub(super) next_check: Option<Instant>,
    /// The pause before the next read after one more that finds no room.
    pub(super) backoff: Duration,
    /// When the current wait began (the first read that found no room since the last start).
    pub(super) since: Option<Instant>,
    /// The wait was announced ([`Event::WaitingForRoom`]).
    pub(super) announced: bool,
    /// The node watch was asked for.
    pub(super) watching: bool,
    /// The nodes schedulable and Ready, as last seen (by the reads and the node watch), each
    /// with what else decides its room ([`room_signature`]).
    pub(super) usable: BTreeMap<String, String>,
}

/// What decides whether a node can take replacements, when it is schedulable and Ready (None
/// otherwise): its taints and allocatable. The node lifecycle controller removes the
/// `node.kubernetes.io/unschedulable` taint a moment after an uncordon, so a node uncordoned
/// is room only from that second change on.
pub(super) fn room_signature(n: &Node) -> Option<String> {
    if sched::nodes::is_cordoned(n) || !sched::nodes::is_ready(n) {
        return None;
    }
    let spec = n.spec.as_ref();
    let taints = spec.and_then(|s| s.taints.as_ref());
    let alloc = n.status.as_ref().and_then(|s| s.allocatable.as_ref());
    Some(serde_json::to_string(&(taints, alloc)).unwrap_or_default())
}

fn node_name(n: &Node) -> String {
    n.metadata.name.clone().unwrap_or_default()
}

/// Notes a node as seen; true when it is usable and was not, or its room may have grown.
fn note_node(usable: &mut BTreeMap<String, String>, n: &Node) -> bool {
    match room_signature(n) {
        Some(sig) => usable.insert(node_name(n), sig.clone()).as_ref() != Some(&sig),
        None => {
            usable.remove(&node_name(n));
            false
        }
    }
}

impl Core {
    fn names(&self, nodes: &[usize]) -> Vec<String> {
        nodes.iter().map(|&i| self.nodes[i].name.clone()).collect()
    }

    /// Starts the wave `self.wave` and says so.
    pub(super) fn begin_wave(&mut self) {
        let nodes = self.waves[self.wave].clone();
        self.emit(Event::WaveStarted {
            wave: self.wave + 1,
            of: self.waves.len(),
            nodes: self.names(&nodes),
            waiting_for_room: self.names(&self.waiting),
        });
        for i in nodes {
            self.activate(i);
        }
    }

    /// After a node ended. While nodes wait for room, every node not started yet (the plan's
    /// later waves first) becomes a candidate and the room is read again: the node that ended
    /// may have freed a place among the `parallel_nodes`, and its replacements are all made.
    /// Otherwise, when every node of the current wave has ended, the next wave starts.
    pub(super) fn next_wave(&mut self) {
        if !self.waiting.is_empty() {
            let from = (self.wave + 1).min(self.waves.len());
            let later: Vec<usize> = self.waves.drain(from..).flatten().collect();
            self.waiting.splice(0..0, later);
            self.room_changed();
            return;
        }
        let ended = self
            .waves
            .get(self.wave)
            .is_none_or(|w| w.iter().all(|&n| self.nodes[n].outcome.is_some()));
        if ended && self.wave + 1 < self.waves.len() {
            self.wave += 1;
            self.begin_wave();
        }
    }

    /// Room may have come back: read it now, or again once the read in flight is answered.
    pub(super) fn room_changed(&mut self) {
        if self.waiting.is_empty() || self.interrupted.is_some() {
            return;
        }
        if self.room.asking {
            self.room.again = true;
        } else {
            self.ask_room();
        }
    }

    /// Nodes not ended among those started: they count against `parallel_nodes`.
    fn running(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.active && n.outcome.is_none())
            .count()
    }

    /// A change on the node watch: a node that became schedulable and Ready (or appeared so),
    /// or one whose taints or allocatable changed while it is, may be room for the waiting
    /// nodes.
    pub(super) fn on_nodes(&mut self, seen: Seen<Node>) {
        let usable = &mut self.room.usable;
        let opened = match seen.change {
            Change::Upsert(n) => note_node(usable, &n),
            Change::Removed(n) => {
                usable.remove(&node_name(&n));
                false
            }
            Change::Relisted(all) => {
                let names: BTreeSet<String> = all.iter().map(node_name).collect();
                usable.retain(|n, _| names.contains(n));
                let mut opened = false;
                for n in &all {
                    opened |= note_node(usable, n);
                }
                opened
            }
            Change::Refused(error) => {
                self.watch_refused("nodes", error);
                false
            }
        };
        if opened {
            self.wake_room_waiters();
            self.room_changed();
        }
    }

    /// The targets that take no replacement: every target not drained yet (drained ones count
    /// as room when they are schedulable and Ready).
    pub(super) fn closed_targets(&self) -> BTreeSet<String> {
        self.nodes
            .iter()
            .filter(|n| n.outcome != Some(NodeOutcome::Drained))
            .map(|n| n.name.clone())
            .collect()
    }

    /// The pods of node `i` still to evict (or delete) whose owner replaces them.
    fn replaced_pods(&self, i: usize) -> Vec<Pod> {
        self.nodes[i]
            .order
            .iter()
            .map(|&ix| self.tracks.at(ix))
            .filter(|t| matches!(t.action, Action::Evict | Action::Delete) && !t.done())
            .filter(|t| crate::capacity::is_replaced(&t.pod))
            .map(|t| t.pod.clone())
            .collect()
    }

    /// The replaced pods of the nodes draining now that are not evicted yet: their
    /// replacements are still to come.
    fn reserved_pods(&self) -> Vec<Pod> {
        self.live()
            .map(|(_, t)| t)
            .filter(|t| matches!(t.action, Action::Evict | Action::Delete))
            .filter(|t| matches!(t.st(), St::Queued | St::Waiting(_) | St::InFlight))
            .filter(|t| crate::capacity::is_replaced(&t.pod))
            .map(|t| t.pod.clone())
            .collect()
    }

    /// Asks the shell to read the room for the waiting nodes (once at a time), when a node
    /// may start (fewer than `parallel_nodes` running).
    pub(super) fn ask_room(&mut self) {
        if self.room.asking || self.interrupted.is_some() || self.waiting.is_empty() {
            return;
        }
        let limit = self
            .opts
            .parallel_nodes
            .max(1)
            .saturating_sub(self.running());
        if limit == 0 {
            // a node ending asks again
            self.room.next_check = None;
            return;
        }
        self.room.asking = true;
        self.room.again = false;
        self.room.next_check = None;
        let candidates = self
            .waiting
            .iter()
            .map(|&i| (i, self.nodes[i].name.clone(), self.replaced_pods(i)))
            .collect();
        let closed = self.closed_targets();
        let reserved = self.reserved_pods();
        self.out.push(Command::ReadRoom {
            candidates,
            closed,
            reserved,
            limit,
        });
    }

    /// Reads again when the pause after a read that found no room is over.
    pub(super) fn check_room(&mut self) {
        if self.room.next_check.is_some_and(|t| t <= self.now.instant) {
            self.ask_room();
        }
    }

    /// The answer to a [`Command::ReadRoom`]: the nodes that fit start now (at most
    /// `parallel_nodes` running); when none does, the wait goes on (or ends at the timeout).
    /// The first answer that read the nodes starts the node watch.
    pub(super) fn on_room(&mut self, fits: Result<Vec<usize>, String>, nodes: Option<NodesSeen>) {
        self.room.asking = false;
        if self.interrupted.is_some() || self.waiting.is_empty() {
            return;
        }
        if let Some(seen) = nodes
            && !self.room.watching
            && !self.opts.dry_run.is_dry()
        {
            self.room.watching = true;
            self.room.usable = seen.usable;
            self.out.push(Command::WatchNodes {
                resource_version: seen.resource_version,
            });
        }
        let slots = self
            .opts
            .parallel_nodes
            .max(1)
            .saturating_sub(self.running());
        if slots == 0 {
            // a node ending asks again
            return;
        }
        let (fits, reason) = match fits {
            Ok(f) => (
                f.into_iter()
                    .filter(|i| self.waiting.contains(i))
                    .take(slots)
                    .collect::<Vec<usize>>(),
                "their replacements fit on no schedulable node now".to_string(),
            ),
            Err(e) => (Vec::new(), format!("cannot read the cluster's room: {e}")),
        };
        let again = std::mem::take(&mut self.room.again);
        if !fits.is_empty() {
            self.waiting.retain(|i| !fits.contains(i));
            let (watching, usable) = (self.room.watching, std::mem::take(&mut self.room.usable));
            self.room = RoomWait {
                watching,
                usable,
                ..RoomWait::default()
            };
            self.waves.push(fits);
            self.wave = self.waves.len() - 1;
            self.begin_wave();
            if self.waiting.is_empty() {
                self.stop_watching_nodes();
            } else if again {
                self.ask_room();
            } else {
                // the fallback read, should no watched change come
                self.room.next_check = Some(self.now.instant + ROOM_CHECK_MAX);
            }
            return;
        }
        let now = self.now.instant;
        let since = *self.room.since.get_or_insert(now);
        if !std::mem::replace(&mut self.room.announced, true) {
            let nodes = self.names(&self.waiting);
            self.emit(Event::WaitingForRoom { nodes, reason });
        }
        let deadline = self.opts.timeout.map(|t| since + t);
        if deadline.is_some_and(|d| now >= d) {
            self.no_room_left();
            return;
        }
        if again {
            self.ask_room();
            return;
        }
        let pause = self.room.backoff.max(ROOM_CHECK_FIRST);
        self.room.backoff = (pause * 2).min(ROOM_CHECK_MAX);
        let at = now + pause;
        self.room.next_check = Some(deadline.map_or(at, |d| at.min(d)));
    }

    /// Nothing waits for room any more: the node watch stops.
    fn stop_watching_nodes(&mut self) {
        self.room.next_check = None;
        if std::mem::take(&mut self.room.watching) {
            self.out.push(Command::StopWatchingNodes);
        }
    }

    /// The wait for room timed out: every node still waiting ends, nothing evicted from it.
    fn no_room_left(&mut self) {
        let waited = self.opts.timeout.unwrap_or_default().as_secs_f64();
        let pod_error = format!(
            "no room for its replacement: waited {waited}s for a schedulable node with room (--wait-for-capacity); not evicted"
        );
        let node_error = format!(
            "no room for the replacements of its pods: waited {waited}s for schedulable nodes with room (--wait-for-capacity); nothing was evicted"
        );
        self.stop_watching_nodes();
        for i in std::mem::take(&mut self.waiting) {
            let pending = self.fail_left(i, &pod_error, FailureKind::NoRoom);
            let n = &mut self.nodes[i];
            n.outcome = Some(NodeOutcome::PodsLeft);
            let node = n.name.clone();
            self.emit(Event::NodeFailed {
                node,
                error: node_error.clone(),
                pending,
            });
        }
    }
}
