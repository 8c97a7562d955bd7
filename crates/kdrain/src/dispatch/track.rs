//! One pod's state in the dispatcher ([`Track`]) and the table of all of them ([`Tracks`]).

use std::collections::HashMap;
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
    pub(super) st: St,
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
/// by its index (no hashing).
#[derive(Default)]
pub(super) struct Tracks {
    slab: Vec<Track>,
    by_uid: HashMap<String, usize>,
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
            self.slab[ix] = t;
            return ix;
        }
        let ix = self.slab.len();
        self.by_uid.insert(t.uid.clone(), ix);
        self.slab.push(t);
        ix
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
}

impl<Q: std::borrow::Borrow<str> + ?Sized> std::ops::Index<&Q> for Tracks {
    type Output = Track;
    fn index(&self, uid: &Q) -> &Track {
        self.get(uid.borrow()).expect("track")
    }
}
