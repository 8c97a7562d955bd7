//! `wait_for_capacity`: each pod whose owner replaces it is evicted (or deleted) only when its
//! replacement has room at that moment. A node starts draining when its replacements fit
//! ([`crate::waves`]), but its pods go one by one as their budgets allow, for seconds, beside
//! other nodes' pods, and the scheduler places each replacement where it scores best: smaller
//! replacements arriving first could cut up the room a larger one was counted on, and that one
//! would stay Pending. So before a gated pod is sent, the core asks for a fresh read of the
//! cluster ([`Command::AdmitRoom`], answered by [`Input::Admitted`]): the pods admitted
//! ([`crate::waves::admissible`]: largest first, room kept for the larger pods still to come)
//! are sent by the dispatch that follows the answer; the others wait for room
//! ([`WaitsFor::Room`], no request sent) and are asked for again after [`ROOM_RECHECK`], or at
//! once when the node watch sees a node become schedulable. A pod whose budget does not allow
//! it now is not asked for: it waits for its budget as any other (without probes).
//!
//! A read is a LIST of the nodes and of every pod of the cluster: cheap on a small cluster, not
//! on a large one. So a read comes no sooner after the last one than [`READ_SPACING`] times
//! what that one took: the drain spends at most a tenth of its time reading the cluster (a
//! 5 ms read on a cluster of 100 pods spaces them by 45 ms; a 2 s read of 100,000 pods by 18 s).
//!
//! [`Input::Admitted`]: super::core::Input::Admitted

use std::collections::HashSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use super::core::{Command, Core};
use super::track::St;
use crate::budget::{self, BudgetKey};
use crate::events::WaitsFor;
use crate::plan::Action;

/// How long a pod refused for lack of room waits before it is asked for again (sooner when
/// the node watch sees a node become schedulable).
pub(super) const ROOM_RECHECK: Duration = Duration::from_secs(1);

/// How long after its eviction was sent a pod's replacement is counted as still to come: the
/// owner's controller creates it a moment after the eviction is accepted, and a read before
/// that would not show it (counted twice at worst, which only delays).
pub(super) const REPLACEMENT_LAG: Duration = Duration::from_secs(1);

/// After a read that took `t`, the next one is sent no sooner than `READ_SPACING × t` later.
pub(crate) const READ_SPACING: u32 = 9;

/// The state of the admissions.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    /// A [`Command::AdmitRoom`] is in flight.
    pub(super) asking: bool,
    /// The next read is sent no sooner than this ([`READ_SPACING`]).
    pub(super) not_before: Option<tokio::time::Instant>,
    /// The tracks the last answer admitted: the dispatch that follows the answer sends them;
    /// any other input clears them (a later one is asked for again).
    pub(super) admitted: HashSet<usize>,
}

impl Core {
    /// Track `ix` must be admitted against the room before it is sent: `wait_for_capacity`,
    /// not a dry run, a pod to evict or delete whose owner replaces it.
    pub(super) fn gated(&self, ix: usize) -> bool {
        let t = self.tracks.at(ix);
        self.opts.wait_for_capacity
            && !self.dry().is_dry()
            && matches!(t.action, Action::Evict | Action::Delete)
            && crate::capacity::is_replaced(&t.pod)
    }

    /// The budget that holds back the eviction of track `ix` now, as watched: the one budget
    /// covering the pod, when the pod counts against it and it allows no disruption.
    pub(super) fn held_by(&mut self, ix: usize) -> Option<BudgetKey> {
        let t = self.tracks.at(ix);
        if t.action != Action::Evict {
            return None;
        }
        let cover = self.covering(&t.pod);
        let [key] = cover.as_slice() else {
            return None;
        };
        let key = key.clone();
        self.ensure_pdb_watch();
        let b = &self.budgets[&key];
        let t = self.tracks.at(ix);
        let counts = budget::consumes_budget(&t.pod, &b.pdb);
        (counts && self.account.effective(&key, b, self.now.instant) <= 0).then_some(key)
    }

    /// Asks the shell whether the replacements of `want` (track indexes, due and allowed by
    /// their budgets) have room now.
    pub(super) fn ask_admission(&mut self, want: Vec<usize>) {
        if self.admission.asking || want.is_empty() {
            return;
        }
        if self
            .admission
            .not_before
            .is_some_and(|next| self.now.instant < next)
        {
            // asked again at that time (next_wake), the pods then due
            return;
        }
        self.admission.asking = true;
        let now = self.now.instant;
        let mut recent = Vec::new();
        let mut coming = Vec::new();
        for (ix, t) in self
            .nodes
            .iter()
            .filter(|n| n.active)
            .flat_map(|n| n.order.iter())
            .map(|&ix| (ix, self.tracks.at(ix)))
        {
            if !matches!(t.action, Action::Evict | Action::Delete)
                || !crate::capacity::is_replaced(&t.pod)
                || want.contains(&ix)
            {
                continue;
            }
            let sent_lately = t.last_sent.is_some_and(|s| now < s + REPLACEMENT_LAG);
            match t.st() {
                // not evicted yet (never sent, or refused): its replacement is still to come
                St::Queued | St::Waiting(_) => coming.push(t.pod.clone()),
                St::InFlight => recent.push(t.pod.clone()),
                St::Following | St::Done(_) if sent_lately => recent.push(t.pod.clone()),
                _ => {}
            }
        }
        let asked: Vec<(usize, Pod)> = want
            .into_iter()
            .map(|ix| (ix, self.tracks.at(ix).pod.clone()))
            .collect();
        let closed = self.closed_targets();
        self.out.push(Command::AdmitRoom {
            asked,
            closed,
            recent,
            coming,
        });
    }

    /// The answer to a [`Command::AdmitRoom`] for `asked`: the admitted ones are sent by the
    /// dispatch that follows; the others wait for room (or, when the cluster could not be
    /// read, for the same pause).
    pub(super) fn on_admitted(
        &mut self,
        asked: Vec<usize>,
        fits: Result<Vec<usize>, String>,
        took: Duration,
    ) {
        self.admission.asking = false;
        let now = self.now.instant;
        let next_read = now + took * READ_SPACING;
        self.admission.not_before = Some(next_read);
        let again = (now + ROOM_RECHECK).max(next_read);
        let (fits, cause) = match fits {
            Ok(f) => (
                f,
                "no schedulable node has room for its replacement now, after the larger ones still to come (--wait-for-capacity)".to_string(),
            ),
            Err(e) => (
                Vec::new(),
                format!("cannot read the cluster's room: {e} (--wait-for-capacity)"),
            ),
        };
        for ix in asked {
            let t = self.tracks.at(ix);
            if t.done() || !matches!(t.st(), St::Queued | St::Waiting(_)) {
                continue;
            }
            if fits.contains(&ix) {
                self.admission.admitted.insert(ix);
                continue;
            }
            let uid = t.uid.clone();
            self.set_blocked(
                &uid,
                None,
                WaitsFor::Room,
                cause.clone(),
                format!(
                    "waiting for room for its replacement (no request sent); read again in {}s or when a node becomes schedulable",
                    (again - now).as_secs_f64().ceil()
                ),
                again,
                None,
                now,
            );
        }
    }

    /// Room may have come back: the pods waiting for room are due now.
    pub(super) fn wake_room_waiters(&mut self) {
        let now = self.now.instant;
        let ixs: Vec<usize> = self
            .tracks
            .waiting()
            .filter(|&ix| self.is_live(self.tracks.at(ix).node))
            .filter(|&ix| {
                let t = self.tracks.at(ix);
                t.st().waiting().is_some_and(|w| w.cause == WaitsFor::Room)
            })
            .collect();
        for ix in ixs {
            if let St::Waiting(w) = self.tracks.at(ix).st() {
                let mut w = w.clone();
                w.next_at = now;
                self.tracks.set_st(ix, St::Waiting(w));
            }
        }
    }
}
