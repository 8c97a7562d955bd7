//! Waves and the wait for room (`wait_for_capacity`): the plan's waves start one after the
//! other; while nodes wait for room, the next wave is chosen when the one before has ended,
//! from a fresh read of the cluster ([`Command::ReadRoom`], answered by [`Input::Room`]), among
//! every node not started yet. When none fits, the core re-reads less and less often (1 s,
//! doubling, at most every [`ROOM_CHECK_MAX`]) until some do, or until the wait has lasted the
//! drain's timeout: the nodes still waiting then end with [`FailureKind::NoRoom`], nothing
//! evicted.
//!
//! [`Input::Room`]: super::core::Input::Room

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::time::Instant;

use super::core::{Command, Core};
use super::track::St;
use crate::events::Event;
use crate::plan::Action;
use crate::report::{FailureKind, NodeOutcome, PodOutcome};

/// The first re-read of the cluster after a read that found no room.
pub(super) const ROOM_CHECK_FIRST: Duration = Duration::from_secs(1);
/// The longest pause between two reads while nodes wait for room.
pub(super) const ROOM_CHECK_MAX: Duration = Duration::from_secs(5);

/// The state of the wait for room.
#[derive(Debug, Default)]
pub(crate) struct RoomWait {
    /// A [`Command::ReadRoom`] is in flight.
    pub(super) asking: bool,
    /// When to read again (none: not waiting, or a read is in flight).
    pub(super) next_check: Option<Instant>,
    /// The pause before the next read after one more that finds no room.
    pub(super) backoff: Duration,
    /// When the current wait began (the first read that found no room since the last wave).
    pub(super) since: Option<Instant>,
    /// The wait was announced ([`Event::WaitingForRoom`]).
    pub(super) announced: bool,
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

    /// After a node ended: when every node of the current wave has ended, the next wave
    /// starts; while nodes wait for room, it is chosen from a fresh read of the cluster among
    /// every node not started yet (the plan's later waves first, then the waiting nodes).
    pub(super) fn next_wave(&mut self) {
        let ended = self
            .waves
            .get(self.wave)
            .is_none_or(|w| w.iter().all(|&n| self.nodes[n].outcome.is_some()));
        if !ended {
            return;
        }
        if !self.waiting.is_empty() {
            let from = (self.wave + 1).min(self.waves.len());
            let later: Vec<usize> = self.waves.drain(from..).flatten().collect();
            self.waiting.splice(0..0, later);
            self.ask_room();
            return;
        }
        if self.wave + 1 < self.waves.len() {
            self.wave += 1;
            self.begin_wave();
        }
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

    /// Asks the shell to read the room for the waiting nodes (once at a time).
    pub(super) fn ask_room(&mut self) {
        if self.room.asking || self.interrupted.is_some() || self.waiting.is_empty() {
            return;
        }
        self.room.asking = true;
        self.room.next_check = None;
        let candidates = self
            .waiting
            .iter()
            .map(|&i| (i, self.nodes[i].name.clone(), self.replaced_pods(i)))
            .collect();
        let closed: BTreeSet<String> = self
            .nodes
            .iter()
            .filter(|n| n.outcome != Some(NodeOutcome::Drained))
            .map(|n| n.name.clone())
            .collect();
        self.out.push(Command::ReadRoom {
            candidates,
            closed,
            limit: self.opts.parallel_nodes.max(1),
        });
    }

    /// Reads again when the pause after a read that found no room is over.
    pub(super) fn check_room(&mut self) {
        if self.room.next_check.is_some_and(|t| t <= self.now.instant) {
            self.ask_room();
        }
    }

    /// The answer to a [`Command::ReadRoom`]: the nodes that fit start as the next wave; when
    /// none does, the wait goes on (or ends at the timeout).
    pub(super) fn on_room(&mut self, fits: Result<Vec<usize>, String>) {
        self.room.asking = false;
        if self.interrupted.is_some() || self.waiting.is_empty() {
            return;
        }
        let k = self.opts.parallel_nodes.max(1);
        let (fits, reason) = match fits {
            Ok(f) => (
                f.into_iter()
                    .filter(|i| self.waiting.contains(i))
                    .take(k)
                    .collect::<Vec<usize>>(),
                "their replacements fit on no schedulable node now".to_string(),
            ),
            Err(e) => (Vec::new(), format!("cannot read the cluster's room: {e}")),
        };
        if !fits.is_empty() {
            self.waiting.retain(|i| !fits.contains(i));
            self.room = RoomWait::default();
            self.waves.push(fits);
            self.wave = self.waves.len() - 1;
            self.begin_wave();
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
        let pause = self.room.backoff.max(ROOM_CHECK_FIRST);
        self.room.backoff = (pause * 2).min(ROOM_CHECK_MAX);
        let at = now + pause;
        self.room.next_check = Some(deadline.map_or(at, |d| at.min(d)));
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
        self.room.next_check = None;
        for i in std::mem::take(&mut self.waiting) {
            let mut pending = Vec::new();
            for ix in self.nodes[i].order.clone() {
                let t = self.tracks.at_mut(ix);
                if !t.is_target() || t.done() {
                    continue;
                }
                t.st = St::Done(PodOutcome::Failed {
                    error: pod_error.clone(),
                    kind: FailureKind::NoRoom,
                });
                pending.push(t.r.clone());
            }
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
