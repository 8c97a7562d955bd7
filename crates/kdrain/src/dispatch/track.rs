//! One pod's state in the dispatcher ([`Track`]) and the table of all of them ([`Tracks`]),
//! with the indexes that let the core's per-batch work follow what changed rather than the
//! number of pods: per node, its queued tracks in dispatch order and its open targets by tier;
//! every waiting track by when it is due; the tracks waiting for a budget. A track's state is
//! only changed through [`Tracks::set_st`], which keeps them; the unit tests check them
//! against a full scan after every batch of inputs ([`Tracks::check_index`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::time::Instant;

use crate::budget::BudgetKey;
use crate::events::{PodRef, WaitsFor};
use crate::plan::{Action, pod_ref};
use crate::report::PodOutcome;
use crate::select;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum St {
    /// Waiting for its first attempt.
    Queued,
    /// A request is in flight (the budget it spends, if any, is [`Track::inflight_budget`]:
    /// the answer releases it even when the pod is done before the answer comes).
    InFlight,
    /// Accepted (or waiting for completion / namespace deletion): following it to deletion.
    Following,
    /// Waiting to be tried again.
    Waiting(Wait),
    /// Finished.
    Done(PodOutcome),
}

impl St {
    /// The wait, while the pod waits.
    pub(super) fn waiting(&self) -> Option<&Wait> {
        match self {
            St::Waiting(w) => Some(w),
            _ => None,
        }
    }

    /// Waiting for a disruption budget (one or several).
    pub(super) fn waits_for_budget(&self) -> bool {
        self.waiting().is_some_and(|w| w.cause.is_budget())
    }
}

/// Why and until when a pod waits.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Wait {
    /// What it waits for.
    pub(super) cause: WaitsFor,
    /// Tried again then at the latest (sooner when a watched budget allows it).
    pub(super) next_at: Instant,
    /// Not tried before this (the server's Retry-After).
    pub(super) not_before: Option<Instant>,
}

impl Wait {
    /// When it is tried again, as things stand.
    pub(super) fn due(&self) -> Instant {
        self.next_at.max(self.not_before.unwrap_or(self.next_at))
    }
}

/// One pod of the drain: what the plan decided, where it is, and what happened to it.
pub(super) struct Track {
    pub(super) uid: String,
    pub(super) node: usize,
    pub(super) r: PodRef,
    pub(super) pod: Pod,
    pub(super) action: Action,
    pub(super) reason: String,
    pub(super) tier: u8,
    /// Where it is: read with [`Track::st`], changed with [`Tracks::set_st`] (the indexes
    /// follow it).
    st: St,
    pub(super) attempts: u32,
    pub(super) first_attempt: Option<jiff::Timestamp>,
    pub(super) accepted: Option<jiff::Timestamp>,
    pub(super) gone: Option<jiff::Timestamp>,
    pub(super) blocked_by: Option<String>,
    /// What it waited for last (kept when it is sent again).
    pub(super) last_wait: Option<WaitsFor>,
    pub(super) blocked_since: Option<Instant>,
    pub(super) blocked_first: Option<jiff::Timestamp>,
    pub(super) blocked_total: Duration,
    pub(super) last_cause: Option<String>,
    pub(super) backoff: Option<crate::backoff::Backoff>,
    pub(super) inflight_budget: Option<BudgetKey>,
    pub(super) terminating_seen: bool,
    pub(super) last_sent: Option<Instant>,
    pub(super) seq: usize,
    /// Not sent before this moment (`karpenter.sh/do-not-disrupt` with a duration).
    pub(super) protected_until: Option<jiff::Timestamp>,
    /// The server refused its eviction or delete for lack of permission: its message.
    pub(super) denied: Option<String>,
}

impl Track {
    /// Where the pod is.
    pub(super) fn st(&self) -> &St {
        &self.st
    }

    pub(super) fn is_target(&self) -> bool {
        self.action.is_target()
    }

    pub(super) fn done(&self) -> bool {
        matches!(self.st, St::Done(_))
    }

    pub(super) fn unblock(&mut self, now: Instant) {
        if let Some(s) = self.blocked_since.take() {
            self.blocked_total += now - s;
        }
    }
}

pub(super) fn new_track(
    uid: String,
    node: usize,
    pod: Pod,
    action: Action,
    reason: String,
    st: St,
    seq: usize,
) -> Track {
    Track {
        uid,
        node,
        r: pod_ref(&pod),
        tier: select::tier(&pod),
        pod,
        action,
        reason,
        st,
        attempts: 0,
        first_attempt: None,
        accepted: None,
        gone: None,
        blocked_by: None,
        last_wait: None,
        blocked_since: None,
        blocked_first: None,
        blocked_total: Duration::ZERO,
        last_cause: None,
        backoff: None,
        inflight_budget: None,
        terminating_seen: false,
        last_sent: None,
        protected_until: None,
        denied: None,
        seq,
    }
}

/// Every pod's track, stored once and reached either by uid or, on the paths run at every event,
/// by its index (no hashing); with the indexes of their states ([`Index`]).
#[derive(Default)]
pub(super) struct Tracks {
    slab: Vec<Track>,
    by_uid: HashMap<String, usize>,
    index: Index,
}

/// Where the tracks are, kept as their states change, so that what runs after every batch of
/// inputs visits the tracks concerned only.
#[derive(Default, Debug, PartialEq, Clone)]
struct Index {
    /// Per node: its target tracks not done, counted by tier (the lowest is the node's open
    /// tier, and none left means no target is open).
    open: Vec<BTreeMap<u8, usize>>,
    /// Per node: its tracks not done (of any action).
    live: Vec<usize>,
    /// Per node: its tracks to evict or delete that wait for their first attempt, in dispatch
    /// order (tier, seq, track index).
    queued: Vec<BTreeSet<(u8, usize, usize)>>,
    /// Every waiting track, by when it is due ([`Wait::due`]).
    waiting: BTreeSet<(Instant, usize)>,
    /// The waiting tracks whose wait is for one or several budgets.
    budget_waiting: BTreeSet<usize>,
}

impl Index {
    fn grow(&mut self, node: usize) {
        if self.open.len() <= node {
            self.open.resize_with(node + 1, BTreeMap::new);
            self.live.resize(node + 1, 0);
            self.queued.resize_with(node + 1, BTreeSet::new);
        }
    }

    /// Counts track `ix` in (`add`) or out of the indexes.
    fn account(&mut self, t: &Track, ix: usize, add: bool) {
        self.grow(t.node);
        if !t.done() {
            bump(&mut self.live[t.node], add);
            if t.is_target() {
                let n = self.open[t.node].entry(t.tier).or_default();
                bump(n, add);
                if *n == 0 {
                    self.open[t.node].remove(&t.tier);
                }
            }
        }
        match &t.st {
            St::Queued if matches!(t.action, Action::Evict | Action::Delete) => {
                let key = (t.tier, t.seq, ix);
                if add {
                    self.queued[t.node].insert(key);
                } else {
                    self.queued[t.node].remove(&key);
                }
            }
            St::Waiting(w) => {
                let budget = w.cause.is_budget();
                if add {
                    self.waiting.insert((w.due(), ix));
                    if budget {
                        self.budget_waiting.insert(ix);
                    }
                } else {
                    self.waiting.remove(&(w.due(), ix));
                    if budget {
                        self.budget_waiting.remove(&ix);
                    }
                }
            }
            _ => {}
        }
    }
}

fn bump(n: &mut usize, add: bool) {
    if add {
        *n += 1;
    } else {
        *n -= 1;
    }
}

impl Tracks {
    /// Room for `n` more tracks, allocated once (a track holds a whole pod: growing the slab by
    /// doubling would keep up to twice the room, and copy it).
    pub(super) fn reserve(&mut self, n: usize) {
        self.slab.reserve_exact(n);
        self.by_uid.reserve(n);
    }

    /// Stores a track (replacing one with the same uid) and returns its index.
    pub(super) fn insert(&mut self, t: Track) -> usize {
        if let Some(&ix) = self.by_uid.get(&t.uid) {
            self.index.account(&self.slab[ix], ix, false);
            self.index.account(&t, ix, true);
            self.slab[ix] = t;
            return ix;
        }
        let ix = self.slab.len();
        self.by_uid.insert(t.uid.clone(), ix);
        self.index.account(&t, ix, true);
        self.slab.push(t);
        ix
    }

    /// Moves track `ix` to `st`.
    pub(super) fn set_st(&mut self, ix: usize, st: St) {
        let t = &mut self.slab[ix];
        self.index.account(t, ix, false);
        t.st = st;
        self.index.account(t, ix, true);
    }

    /// [`Self::set_st`] by uid.
    pub(super) fn set_st_of(&mut self, uid: &str, st: St) {
        let ix = self.idx(uid).expect("track");
        self.set_st(ix, st);
    }

    pub(super) fn idx(&self, uid: &str) -> Option<usize> {
        self.by_uid.get(uid).copied()
    }

    pub(super) fn at(&self, ix: usize) -> &Track {
        &self.slab[ix]
    }

    pub(super) fn at_mut(&mut self, ix: usize) -> &mut Track {
        &mut self.slab[ix]
    }

    pub(super) fn get(&self, uid: &str) -> Option<&Track> {
        self.idx(uid).map(|ix| &self.slab[ix])
    }

    pub(super) fn get_mut(&mut self, uid: &str) -> Option<&mut Track> {
        self.idx(uid).map(|ix| &mut self.slab[ix])
    }

    pub(super) fn contains_key(&self, uid: &str) -> bool {
        self.by_uid.contains_key(uid)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&String, &Track)> {
        self.slab.iter().map(|t| (&t.uid, t))
    }

    /// The lowest tier among node `node`'s target tracks not done (None: none is left).
    pub(super) fn open_tier(&self, node: usize) -> Option<u8> {
        self.index
            .open
            .get(node)
            .and_then(|m| m.first_key_value())
            .map(|(t, _)| *t)
    }

    /// Node `node`'s tracks not done (of any action).
    pub(super) fn live_count(&self, node: usize) -> usize {
        self.index.live.get(node).copied().unwrap_or(0)
    }

    /// The first of node `node`'s queued tracks to evict or delete after `after` in dispatch
    /// order (tier, seq, track index).
    pub(super) fn next_queued(
        &self,
        node: usize,
        after: Option<(u8, usize, usize)>,
    ) -> Option<(u8, usize, usize)> {
        use std::ops::Bound::{Excluded, Unbounded};
        let q = self.index.queued.get(node)?;
        match after {
            None => q.first().copied(),
            Some(a) => q.range((Excluded(a), Unbounded)).next().copied(),
        }
    }

    /// The waiting tracks due at or before `now` (track indexes, by due time).
    pub(super) fn due_by(&self, now: Instant) -> impl Iterator<Item = usize> + '_ {
        self.index
            .waiting
            .range(..=(now, usize::MAX))
            .map(|&(_, ix)| ix)
    }

    /// The waiting tracks due after `after`, by due time (due time, track index).
    pub(super) fn due_after(&self, after: Instant) -> impl Iterator<Item = (Instant, usize)> + '_ {
        use std::ops::Bound::{Excluded, Unbounded};
        self.index
            .waiting
            .range((Excluded((after, usize::MAX)), Unbounded))
            .copied()
    }

    /// Every waiting track (by due time).
    pub(super) fn waiting(&self) -> impl Iterator<Item = usize> + '_ {
        self.index.waiting.iter().map(|&(_, ix)| ix)
    }

    /// The tracks waiting for one or several budgets (by index).
    pub(super) fn budget_waiting(&self) -> impl Iterator<Item = usize> + '_ {
        self.index.budget_waiting.iter().copied()
    }

    /// Panics unless the indexes agree with a full scan of the tracks.
    #[cfg(test)]
    pub(super) fn check_index(&self) {
        let mut scan = Index::default();
        for (ix, t) in self.slab.iter().enumerate() {
            scan.account(t, ix, true);
        }
        let mut kept = self.index.clone();
        // nodes with no track left have empty entries in the kept index only
        scan.grow(kept.open.len().saturating_sub(1));
        kept.grow(scan.open.len().saturating_sub(1));
        assert_eq!(kept, scan, "the track indexes disagree with a full scan");
    }
}

impl<Q: std::borrow::Borrow<str> + ?Sized> std::ops::Index<&Q> for Tracks {
    type Output = Track;
    fn index(&self, uid: &Q) -> &Track {
        self.get(uid.borrow()).expect("track")
    }
}
