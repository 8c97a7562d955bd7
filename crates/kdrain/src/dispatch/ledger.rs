//! The budget ledger: the evictions spent under each disruption budget that the budget's status
//! may not count yet, shared by every dispatcher holding a clone of one [`BudgetLedger`].
//!
//! A budget's status says how many disruptions it allows, but it learns of an eviction only
//! after the server accepted it, and a watch delivers that status later still. So each
//! dispatcher counts, per budget, the evictions it has in flight and those accepted that no
//! status it has seen lists in `disruptedPods` yet, and sends only while the watched allowance
//! minus those is above zero. Two drains in one process that each kept that count alone would
//! each spend the same allowance, and learn of the other only from the server's 429s. The
//! ledger is that count for every drain sharing it: in flight, accepted and the last probe, per
//! [`BudgetKey`]. Each dispatcher keeps its own view of the budgets (its own watch) and
//! subtracts every drain's spending not yet visible in that view; the check and the spending
//! are one step under the ledger's lock, so two drains never both spend the last unit.
//!
//! Why a shared ledger rather than one long-lived dispatcher for every drain (issue 12): the
//! dispatcher's core takes its nodes, waves, options and event sink once, at the start of a
//! drain, and every per-drain decision (timeouts, `parallel_nodes`, waves, the report) is made
//! over that set. Making it accept nodes of other drains while it runs would mean per-node
//! options, sinks and reports through the whole core; the ledger moves only the budget
//! accounting (in flight, pending acknowledgement, probe time) out of the core into a
//! synchronous table, so the core stays I/O-free, each drain stays what it is (its own
//! cancellation, report and errors), and the budget rule holds across all of them. The CLI's
//! multi-node drain still runs in one dispatcher; a drain built without a shared ledger gets a
//! private one, which is exactly the accounting it had before.
//!
//! A unit one drain releases without a budget status to say so (its eviction answered, which
//! frees the unit for every view whose statuses counted it before the answer came, or refused
//! or failed; an acknowledgement expired; the drain dropped) wakes the other drains: the ledger
//! counts releases, each dispatcher's shell is told of a change ([`BudgetLedger::subscribe`])
//! and hands its core a tick, and the core, seeing releases by other drains since it last
//! looked, wakes its own pods whose budget now allows them. A drain's own releases wake
//! nothing more than they did before the ledger. A drain dropped mid-request releases its
//! in-flight units at once (an eviction accepted in that instant shows in the budget's status
//! soon after; until then a 429 is possible, never a broken budget: the server checks).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

use crate::budget::BudgetKey;

/// Evictions spent under disruption budgets, shared by the drains of one process that hold a
/// clone: an eviction in flight or accepted by any of them counts against its budget for all
/// (see [`crate::DrainerBuilder::shared_budgets`]). Each drain keeps its own dispatcher and
/// its own watch of the budgets; only this accounting is shared, under one lock, so a drain's
/// decisions stay synchronous and testable and drains stay independent (their own options,
/// cancellation and report), while no two of them spend the same allowance.
///
/// ```
/// let ledger = kdrain::BudgetLedger::new();
/// let for_another_drain = ledger.clone(); // the same ledger
/// # drop(for_another_drain);
/// ```
#[derive(Clone)]
pub struct BudgetLedger {
    book: Arc<Mutex<Book>>,
    /// The number of units released so far, for the shells waiting on [`Self::subscribe`].
    released: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for BudgetLedger {
    fn default() -> Self {
        BudgetLedger {
            book: Arc::default(),
            released: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }
}

impl std::fmt::Debug for BudgetLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let book = self.lock();
        f.debug_struct("BudgetLedger")
            .field("drains", &book.next_drain)
            .field("budgets", &book.budgets.len())
            .finish()
    }
}

impl BudgetLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        // the book stays consistent at every step: a panic elsewhere leaves it usable
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens one drain's account.
    pub(crate) fn open(&self) -> Account {
        let drain = {
            let mut book = self.lock();
            book.next_drain += 1;
            book.next_drain
        };
        Account {
            ledger: self.clone(),
            drain,
            mine: AtomicU64::new(0),
            seen: AtomicU64::new(self.lock().releases),
        }
    }

    /// Changes whenever a drain releases a unit (an answer, an expiry, a dropped drain).
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.released.subscribe()
    }
}

#[derive(Default)]
struct Book {
    next_drain: u64,
    budgets: HashMap<BudgetKey, Spending>,
    /// When accepted evictions stop counting, earliest first: (expiry, budget, pod). An entry
    /// whose pod was accepted again since (a later expiry) is stale and skipped, so an expiry
    /// looks at what expires and not at every accepted eviction.
    expiries: BinaryHeap<Reverse<(Instant, BudgetKey, String)>>,
    /// Units released so far by every drain (answered evictions, expired acknowledgements,
    /// dropped drains).
    releases: u64,
}

/// What is spent under one budget.
#[derive(Default)]
struct Spending {
    /// Evictions in flight, by pod name: the drain that sent it, and when.
    inflight: HashMap<String, (u64, Instant)>,
    /// Accepted evictions, by pod name: when sent, and until when they count unless a status
    /// seen after the send lists the pod.
    accepted: HashMap<String, Accepted>,
    /// The last request sent under the budget while it allowed nothing (one per ceiling).
    last_probe: Option<Instant>,
}

#[derive(Clone, Copy)]
struct Accepted {
    sent: Instant,
    expires: Instant,
}

/// A dispatcher's view of what a budget's status has counted: whether a status received at or
/// after `sent` listed `pod` as disrupted.
pub(crate) trait Counted {
    /// The allowance as watched (`disruptionsAllowed`, 0 until the controller observed it).
    fn allowed(&self) -> i32;
    /// True when a status received at or after `sent` listed `pod` in `disruptedPods`.
    fn counted_since(&self, pod: &str, sent: Instant) -> bool;
}

/// What [`Account::spend`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spend {
    /// The budget allows it: the unit is spent (in flight).
    Spent,
    /// The budget allows nothing as far as anyone knows, but no probe was sent for a ceiling:
    /// the unit is spent as a probe (the view may be stale; the server decides).
    Probe,
    /// Nothing is sent.
    Held,
}

/// One drain's handle on the ledger; dropping it releases the drain's evictions in flight.
pub(crate) struct Account {
    ledger: BudgetLedger,
    drain: u64,
    /// Units this drain released.
    mine: AtomicU64,
    /// Units the other drains had released when this drain last looked.
    seen: AtomicU64,
}

impl Account {
    /// The disruptions `key` still allows as `view` sees it: its allowance less every drain's
    /// evictions in flight and accepted ones the view has not seen counted.
    pub(crate) fn effective(&self, key: &BudgetKey, view: &impl Counted, now: Instant) -> i32 {
        let book = self.ledger.lock();
        effective(book.budgets.get(key), view, now)
    }

    /// Spends one unit of `key` for `pod` if the budget allows it as `view` sees it, or as a
    /// probe when `may_probe` and no probe went out under it for `ceiling`; all in one step, so
    /// two drains never spend the same unit.
    pub(crate) fn spend(
        &self,
        key: &BudgetKey,
        pod: &str,
        view: &impl Counted,
        now: Instant,
        ceiling: std::time::Duration,
        may_probe: bool,
    ) -> Spend {
        let mut book = self.ledger.lock();
        let s = book.budgets.entry(key.clone()).or_default();
        let decision = if effective(Some(s), view, now) > 0 {
            Spend::Spent
        } else if may_probe && s.last_probe.is_none_or(|p| now >= p + ceiling) {
            Spend::Probe
        } else {
            return Spend::Held;
        };
        s.inflight.insert(pod.to_string(), (self.drain, now));
        s.last_probe = Some(now);
        decision
    }

    /// The server answered the eviction of `pod` sent at `sent` under `key`: the unit in flight
    /// is released; an accepted one counts until a status seen after `sent` lists the pod, or
    /// until `expires`.
    pub(crate) fn answered(
        &self,
        key: &BudgetKey,
        pod: &str,
        accepted: bool,
        sent: Instant,
        expires: Instant,
    ) {
        let mut book = self.ledger.lock();
        let s = book.budgets.entry(key.clone()).or_default();
        let was_inflight = s.inflight.remove(pod).is_some();
        if accepted {
            s.accepted
                .insert(pod.to_string(), Accepted { sent, expires });
            book.expiries
                .push(Reverse((expires, key.clone(), pod.to_string())));
        }
        if was_inflight {
            // refused: the unit is free; accepted: it is free for every view whose statuses
            // already counted the eviction (they may have come before the answer)
            self.released(&mut book, 1);
        }
    }

    /// Records `n` units released by this drain and tells the other drains' shells.
    fn released(&self, book: &mut Book, n: u64) {
        if n == 0 {
            return;
        }
        book.releases += n;
        self.mine.fetch_add(n, Ordering::Relaxed);
        let total = book.releases;
        self.ledger.released.send_replace(total);
    }

    /// The ledger this account is in.
    pub(crate) fn ledger(&self) -> &BudgetLedger {
        &self.ledger
    }

    /// True when other drains released units since the last call (their pods' budgets may
    /// allow this drain's pods now).
    pub(crate) fn others_released(&self) -> bool {
        let others = self.ledger.lock().releases - self.mine.load(Ordering::Relaxed);
        self.seen.swap(others, Ordering::Relaxed) != others
    }

    /// Forgets the accepted evictions expired by `now`; returns the budgets that had some, and
    /// the next expiry of those left.
    pub(crate) fn expire(&self, now: Instant) -> (Vec<BudgetKey>, Option<Instant>) {
        let mut book = self.ledger.lock();
        let book = &mut *book;
        let mut released = BTreeSet::new();
        let mut next = None;
        let mut count = 0;
        while let Some(Reverse((at, key, pod))) = book.expiries.peek() {
            let s = book.budgets.get_mut(key);
            let current = s.as_ref().and_then(|s| s.accepted.get(pod.as_str()));
            if current.is_some_and(|a| a.expires == *at) {
                if now < *at {
                    next = Some(*at);
                    break;
                }
                if let Some(s) = s {
                    s.accepted.remove(pod.as_str());
                }
                count += 1;
                released.insert(key.clone());
            }
            // expired now, or stale (the pod was accepted again, or is no longer counted)
            book.expiries.pop();
        }
        self.released(book, count);
        (released.into_iter().collect(), next)
    }

    /// The evictions in flight under `key`, by every drain.
    #[cfg(test)]
    pub(crate) fn inflight(&self, key: &BudgetKey) -> usize {
        let book = self.ledger.lock();
        book.budgets.get(key).map_or(0, |s| s.inflight.len())
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let mut book = self.ledger.lock();
        let mut count = 0;
        for s in book.budgets.values_mut() {
            let before = s.inflight.len();
            s.inflight.retain(|_, (drain, _)| *drain != self.drain);
            count += (before - s.inflight.len()) as u64;
        }
        self.released(&mut book, count);
    }
}

fn effective(s: Option<&Spending>, view: &impl Counted, now: Instant) -> i32 {
    let allowed = view.allowed();
    let Some(s) = s else {
        return allowed;
    };
    let uncounted = s
        .accepted
        .iter()
        .filter(|(pod, a)| now < a.expires && !view.counted_since(pod, a.sent))
        .count();
    allowed
        .saturating_sub(s.inflight.len() as i32)
        .saturating_sub(uncounted as i32)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;

    /// A view: the allowance and when each pod was last seen in `disruptedPods`.
    struct View(i32, HashMap<String, Instant>);

    impl Counted for View {
        fn allowed(&self) -> i32 {
            self.0
        }
        fn counted_since(&self, pod: &str, sent: Instant) -> bool {
            self.1.get(pod).is_some_and(|at| *at >= sent)
        }
    }

    fn key() -> BudgetKey {
        BudgetKey {
            namespace: "shop".into(),
            name: "web".into(),
        }
    }

    const CEILING: Duration = Duration::from_secs(3600);

    #[test]
    fn two_accounts_never_spend_the_same_unit() {
        let ledger = BudgetLedger::new();
        let (a, b) = (ledger.open(), ledger.open());
        let t0 = Instant::now();
        let view = View(1, HashMap::new());
        assert_eq!(
            a.spend(&key(), "a1", &view, t0, CEILING, false),
            Spend::Spent
        );
        assert_eq!(
            b.spend(&key(), "b1", &view, t0, CEILING, false),
            Spend::Held
        );
        assert_eq!(b.effective(&key(), &view, t0), 0);
        // accepted: still spent for a view that has not seen it counted ...
        let expires = t0 + Duration::from_secs(10);
        a.answered(&key(), "a1", true, t0, expires);
        assert_eq!(b.effective(&key(), &view, t0), 0);
        // ... and not for one that has (its allowance already says so)
        let seen = View(0, HashMap::from([("a1".to_string(), t0)]));
        assert_eq!(b.effective(&key(), &seen, t0), 0);
        let later = View(1, HashMap::from([("a1".to_string(), t0)]));
        assert_eq!(b.effective(&key(), &later, t0), 1);
        // expired: no longer spent, and said so once
        assert_eq!(a.expire(expires), (vec![key()], None));
        assert_eq!(b.effective(&key(), &view, expires), 1);
    }

    #[test]
    fn acknowledgements_expire_one_by_one_and_a_pod_accepted_again_counts_until_its_new_expiry() {
        let ledger = BudgetLedger::new();
        let a = ledger.open();
        let other = BudgetKey {
            namespace: "shop".into(),
            name: "db".into(),
        };
        let t0 = Instant::now();
        let s = Duration::from_secs;
        a.answered(&key(), "a1", true, t0, t0 + s(10));
        a.answered(&other, "d1", true, t0, t0 + s(12));
        a.answered(&key(), "a2", true, t0, t0 + s(14));
        // a1 accepted again later (a retried eviction): its first expiry no longer applies
        a.answered(&key(), "a1", true, t0 + s(5), t0 + s(15));
        let view = View(5, HashMap::new());
        assert_eq!(a.expire(t0 + s(9)), (vec![], Some(t0 + s(12))));
        assert_eq!(a.expire(t0 + s(10)), (vec![], Some(t0 + s(12))));
        assert_eq!(a.effective(&key(), &view, t0 + s(10)), 3);
        assert_eq!(
            a.expire(t0 + s(12)),
            (vec![other.clone()], Some(t0 + s(14)))
        );
        assert_eq!(a.expire(t0 + s(14)), (vec![key()], Some(t0 + s(15))));
        assert_eq!(a.effective(&key(), &view, t0 + s(14)), 4);
        assert_eq!(a.expire(t0 + s(20)), (vec![key()], None));
        assert_eq!(a.effective(&key(), &view, t0 + s(20)), 5);
        assert_eq!(a.expire(t0 + s(30)), (vec![], None));
    }

    #[test]
    fn a_refused_eviction_frees_its_unit_and_a_dropped_drain_its_units_in_flight() {
        let ledger = BudgetLedger::new();
        let (a, b) = (ledger.open(), ledger.open());
        let t0 = Instant::now();
        let view = View(1, HashMap::new());
        assert_eq!(
            a.spend(&key(), "a1", &view, t0, CEILING, false),
            Spend::Spent
        );
        a.answered(&key(), "a1", false, t0, t0);
        assert_eq!(
            b.spend(&key(), "b1", &view, t0, CEILING, false),
            Spend::Spent
        );
        assert_eq!(a.inflight(&key()), 1);
        drop(b);
        assert_eq!(a.inflight(&key()), 0);
    }

    #[test]
    fn one_probe_per_ceiling_over_every_drain() {
        let ledger = BudgetLedger::new();
        let (a, b) = (ledger.open(), ledger.open());
        let t0 = Instant::now();
        let none = View(0, HashMap::new());
        let ceiling = Duration::from_secs(5);
        assert_eq!(
            a.spend(&key(), "a1", &none, t0, ceiling, true),
            Spend::Probe
        );
        a.answered(&key(), "a1", false, t0, t0);
        assert_eq!(
            b.spend(
                &key(),
                "b1",
                &none,
                t0 + Duration::from_secs(4),
                ceiling,
                true
            ),
            Spend::Held
        );
        assert_eq!(
            b.spend(&key(), "b1", &none, t0 + ceiling, ceiling, true),
            Spend::Probe
        );
    }
}
