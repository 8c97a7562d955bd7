//! The budget gate's bookkeeping: each watched budget as this drain's watch sees it (the
//! evictions in flight and accepted ones no status has counted yet are in the ledger, shared
//! with other drains: [`super::ledger`]), and the wake-ups a budget change or a released budget
//! gives the pods waiting for it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use tokio::time::Instant;

use super::core::{Command, Core};
use super::ledger::Counted;
use super::track::St;
use crate::budget::{self, BudgetKey, BudgetNow};
use crate::events::{Healthy, WaitsFor};
use crate::options::DryRun;
use crate::watch::{Change, Seen};

pub(super) struct BudgetState {
    pub(super) pdb: PodDisruptionBudget,
    /// The budget's selector, parsed once per version of the budget (every pod event asks
    /// which budgets cover the pod; B4 has 110 budgets).
    selector: Option<selectors::LabelSelector>,
    /// When each pod name was last seen in the status's `disruptedPods`. The eviction's own
    /// status write lists the pod, and every later status in the watch's order reflects the
    /// eviction even once the disruption controller drops the terminating pod from the map. So
    /// a pod listed in any status received after its eviction was sent is counted by this
    /// view, whether the answer came before or after that status; until then the ledger
    /// ([`super::ledger`]) counts it as spent (or until [`ack_ttl`]).
    pub(super) seen_disrupted: HashMap<String, Instant>,
}

impl BudgetState {
    pub(super) fn new(pdb: PodDisruptionBudget, now: Instant) -> Self {
        let mut b = BudgetState {
            selector: selector_of(&pdb),
            pdb,
            seen_disrupted: HashMap::new(),
        };
        b.note_disrupted(now);
        b
    }

    /// A new version of the budget, as the watch saw it. The selector is parsed again only
    /// when it changed (most versions are status writes: one or more per eviction).
    pub(super) fn update(&mut self, pdb: PodDisruptionBudget) {
        if spec_selector(&pdb) != spec_selector(&self.pdb) {
            self.selector = selector_of(&pdb);
        }
        self.pdb = pdb;
    }

    /// Whether the budget selects a pod with `labels` (`sched::interpod::selector_matches`).
    pub(super) fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector.as_ref().is_some_and(|s| s.matches(labels))
    }

    /// Records the pods the current status lists as disrupted.
    pub(super) fn note_disrupted(&mut self, now: Instant) {
        let listed = self
            .pdb
            .status
            .as_ref()
            .and_then(|s| s.disrupted_pods.as_ref());
        for name in listed.into_iter().flat_map(|m| m.keys()) {
            self.seen_disrupted.insert(name.clone(), now);
        }
    }
}

fn spec_selector(
    pdb: &PodDisruptionBudget,
) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector> {
    pdb.spec.as_ref().and_then(|s| s.selector.as_ref())
}

fn selector_of(pdb: &PodDisruptionBudget) -> Option<selectors::LabelSelector> {
    sched::interpod::compiled_selector(spec_selector(pdb))
}

impl Counted for BudgetState {
    fn allowed(&self) -> i32 {
        let now = BudgetNow::of(&self.pdb);
        if now.observed { now.allowed } else { 0 }
    }

    fn counted_since(&self, pod: &str, sent: Instant) -> bool {
        self.seen_disrupted.get(pod).is_some_and(|at| *at >= sent)
    }
}

/// How long an accepted eviction counts as spent against its budget while no budget status
/// acknowledges it.
pub(super) fn ack_ttl(ceiling: Duration) -> Duration {
    (ceiling * 2).max(Duration::from_secs(10))
}

impl Core {
    /// Starts the budget watch, once, in a drain that changes something.
    pub(super) fn ensure_pdb_watch(&mut self) {
        if self.budget_watch || self.dry() != DryRun::None {
            return;
        }
        let Some(rv) = self.budgets_rv.clone() else {
            return;
        };
        self.budget_watch = true;
        self.out.push(Command::WatchBudgets {
            resource_version: rv,
        });
    }

    pub(super) fn covering(&self, pod: &Pod) -> Vec<BudgetKey> {
        let empty = BTreeMap::new();
        let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
        self.budgets
            .iter()
            .filter(|(_, b)| b.pdb.metadata.namespace == pod.metadata.namespace)
            .filter(|(_, b)| b.selects(labels))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The budget that, as far as the watched budgets say, keeps this pod from being evicted
    /// now: its single covering budget allows no disruption, or several budgets cover it.
    pub(super) fn budget_holding(&self, pod: &Pod) -> Option<String> {
        let cover = self.covering(pod);
        let short = |k: &BudgetKey| k.name.clone();
        match cover.as_slice() {
            [] => None,
            [key] => {
                let b = &self.budgets[key];
                (budget::consumes_budget(pod, &b.pdb) && self.effective(key) <= 0)
                    .then(|| short(key))
            }
            many => Some(many.iter().map(short).collect::<Vec<_>>().join(", ")),
        }
    }

    /// The healthy-pod counts of the one watched budget a pod waits for, once its controller
    /// has processed it.
    pub(super) fn healthy_of(
        &self,
        uid: &str,
        by: Option<&str>,
        waits_for: WaitsFor,
    ) -> Option<Healthy> {
        if waits_for != WaitsFor::Budget {
            return None;
        }
        let key = BudgetKey {
            namespace: self.tracks[uid].r.namespace.clone(),
            name: by?.to_string(),
        };
        let st = BudgetNow::of(&self.budgets.get(&key)?.pdb);
        st.observed.then_some(Healthy {
            needs: st.desired_healthy,
            has: st.current_healthy,
        })
    }

    pub(super) fn on_budgets(&mut self, s: Seen<PodDisruptionBudget>) {
        let now = self.now.instant;
        let mut touched: Vec<BudgetKey> = Vec::new();
        match s.change {
            Change::Upsert(b) => {
                let key = BudgetKey::of(&b);
                let ttl = ack_ttl(self.opts.budget_retry_ceiling);
                match self.budgets.get_mut(&key) {
                    Some(e) => {
                        e.update(b);
                        e.seen_disrupted.retain(|_, at| now < *at + ttl);
                        e.note_disrupted(now);
                    }
                    None => {
                        self.budgets.insert(key.clone(), BudgetState::new(b, now));
                    }
                }
                touched.push(key);
            }
            Change::Removed(b) => {
                let key = BudgetKey::of(&b);
                self.budgets.remove(&key);
                touched.push(key);
            }
            Change::Relisted(all) => {
                let old: BTreeMap<BudgetKey, BudgetState> = std::mem::take(&mut self.budgets);
                for b in all {
                    let key = BudgetKey::of(&b);
                    self.budgets.insert(key.clone(), BudgetState::new(b, now));
                    touched.push(key);
                }
                touched.extend(old.into_keys());
            }
            Change::Refused(error) => {
                self.watch_refused("poddisruptionbudgets", error);
                return;
            }
        }
        self.wake_blocked_by(&touched, now);
    }

    /// Wakes the pods blocked by these budgets: their retry is due now if the budget allows.
    /// A budget event also wakes the pods under no known budget or under several (the list of
    /// budgets changed); a budget released by kdrain's own bookkeeping only wakes its own pods.
    pub(super) fn wake_blocked_by(&mut self, touched: &[BudgetKey], now: Instant) {
        self.wake(touched, true, now);
    }

    pub(super) fn wake_own_pods(&mut self, touched: &[BudgetKey], now: Instant) {
        self.wake(touched, false, now);
    }

    pub(super) fn wake(&mut self, touched: &[BudgetKey], any_change: bool, now: Instant) {
        // the pods waiting for a budget, on the nodes draining now (each is woken or not on
        // its own: the order does not matter)
        let ixs: Vec<usize> = self
            .tracks
            .budget_waiting()
            .filter(|&ix| self.is_live(self.tracks.at(ix).node))
            .collect();
        for ix in ixs {
            let cover = self.covering(&self.tracks.at(ix).pod);
            let hit = cover.iter().any(|k| touched.contains(k))
                || (any_change && (cover.is_empty() || cover.len() > 1));
            if !hit {
                continue;
            }
            let allows = cover.len() != 1
                || (self.budgets.contains_key(&cover[0]) && self.effective(&cover[0]) > 0);
            if allows && let St::Waiting(w) = self.tracks.at(ix).st() {
                let mut w = w.clone();
                w.next_at = now;
                w.not_before = None;
                self.tracks.set_st(ix, St::Waiting(w));
            }
        }
    }

    pub(super) fn expire_acks(&mut self) {
        let now = self.now.instant;
        if self.acks_due.is_none_or(|d| now < d) {
            return;
        }
        let (released, due) = self.account.expire(now);
        self.acks_due = due;
        self.wake_own_pods(&released, now);
    }

    /// The disruptions a watched budget still allows as this drain sees it, less every
    /// sharing drain's evictions in flight and accepted ones this view has not seen counted.
    pub(super) fn effective(&self, key: &BudgetKey) -> i32 {
        match self.budgets.get(key) {
            Some(b) => self.account.effective(key, b, self.now.instant),
            None => 0,
        }
    }
}
