//! Sending: which queued pods go now (tier order, the concurrency limit, each pod's budget as
//! watched), the requests themselves, and the `Blocked` bookkeeping of pods that wait.

use std::time::Duration;

use tokio::time::Instant;

use super::core::{Command, Core};
use super::ledger::Spend;
use super::track::{St, Wait};
use crate::budget::{self, BudgetKey, BudgetNow};
use crate::events::{Event, WaitsFor};
use crate::options::DryRun;
use crate::plan::Action;

impl Core {
    pub(super) fn dispatch(&mut self) {
        let now = self.now.instant;
        let max = self.opts.max_concurrent_evictions.max(1);
        if self.inflight >= max {
            return;
        }
        let open = self.open_tiers();
        let mut due = self.due(&open, now);
        #[cfg(test)]
        {
            let mut all = Vec::new();
            let mut probe = self.due(&open, now);
            while let Some(k) = probe.next(self) {
                all.push(k);
            }
            assert_eq!(
                all,
                self.due_by_scan(&open, now),
                "the due tracks, indexed and scanned"
            );
        }
        let mut want = Vec::new();
        // in dispatch order (tier, seq), each at most once; only the track handled changes
        while let Some((_, _, ix)) = due.next(self) {
            if self.inflight >= max {
                break;
            }
            if self.gated(ix) && !self.admission.admitted.contains(&ix) {
                // admitted against the room first ([`super::admit`]), once its budget allows
                if let Some(key) = self.held_by(ix) {
                    let uid = self.tracks.at(ix).uid.clone();
                    self.block_locally(&uid, &key, now);
                } else if !self.admission.asking {
                    want.push(ix);
                }
                continue;
            }
            self.admission.admitted.remove(&ix);
            let uid = self.tracks.at(ix).uid.clone();
            let action = self.tracks[&uid].action;
            let mut spend: Option<BudgetKey> = None;
            if action == Action::Evict && self.dry() == DryRun::None {
                let cover = self.covering(&self.tracks[&uid].pod);
                if cover.len() == 1 {
                    let key = cover[0].clone();
                    self.ensure_pdb_watch();
                    let b = &self.budgets[&key];
                    if budget::consumes_budget(&self.tracks[&uid].pod, &b.pdb) {
                        // Spent in one step with every drain sharing the ledger. Blocked by
                        // the budget as seen: nothing is sent, except one probe per budget and
                        // ceiling in case the view is stale.
                        let may_probe = self.tracks[&uid].st().waits_for_budget();
                        let pod = self.tracks[&uid].r.name.clone();
                        let ceiling = self.opts.budget_retry_ceiling;
                        match self.account.spend(&key, &pod, b, now, ceiling, may_probe) {
                            Spend::Spent | Spend::Probe => spend = Some(key),
                            Spend::Held => {
                                self.block_locally(&uid, &key, now);
                                continue;
                            }
                        }
                    }
                } else if cover.len() > 1 {
                    // The server answers 500 for a pod under several budgets: ask only once per
                    // ceiling (in case our view is stale), and say which budgets.
                    self.ensure_pdb_watch();
                    let ceiling = self.opts.budget_retry_ceiling;
                    let probe = self.tracks[&uid]
                        .last_sent
                        .is_none_or(|l| now >= l + ceiling);
                    if !probe {
                        let names: Vec<&str> = cover.iter().map(|k| k.name.as_str()).collect();
                        let by = names.join(", ");
                        self.set_blocked(
                            &uid,
                            Some(by.clone()),
                            WaitsFor::SeveralBudgets,
                            format!("the pod is covered by more than one disruption budget ({by})"),
                            "the eviction API refuses pods under several budgets; waiting for the budgets to change (no request sent)".into(),
                            now + ceiling,
                            None,
                            now,
                        );
                        continue;
                    }
                }
            }
            self.send(&uid, spend, now);
        }
        self.ask_admission(want);
    }

    /// The tracks due now, in dispatch order: queued ones and waits that are over, to evict or
    /// delete, on the nodes draining and not timed out, of their node's open tier or lower.
    fn due(&self, open: &[u8], now: Instant) -> Due {
        let nodes: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.is_live(i) && self.nodes[i].expired.is_none())
            .collect();
        let mut waits: Vec<(u8, usize, usize)> = self
            .tracks
            .due_by(now)
            .map(|ix| (ix, self.tracks.at(ix)))
            .filter(|(_, t)| matches!(t.action, Action::Evict | Action::Delete))
            .filter(|(_, t)| self.is_live(t.node) && self.nodes[t.node].expired.is_none())
            .filter(|(_, t)| t.tier <= open[t.node])
            .map(|(ix, t)| (t.tier, t.seq, ix))
            .collect();
        waits.sort_unstable();
        Due {
            nodes,
            open: open.to_vec(),
            waits,
            next_wait: 0,
            after: None,
        }
    }

    /// [`Self::due`] by a scan of every track in play (what the indexes replace), for the
    /// tests that check they agree.
    #[cfg(test)]
    fn due_by_scan(&self, open: &[u8], now: Instant) -> Vec<(u8, usize, usize)> {
        let mut due: Vec<(u8, usize, usize)> = self
            .live_ix()
            .filter(|(_, t)| matches!(t.action, Action::Evict | Action::Delete))
            .filter(|(_, t)| match t.st() {
                St::Queued => true,
                St::Waiting(w) => w.next_at <= now,
                _ => false,
            })
            .filter(|(_, t)| {
                t.st()
                    .waiting()
                    .and_then(|w| w.not_before)
                    .is_none_or(|n| n <= now)
            })
            .filter(|(_, t)| t.tier <= open[t.node])
            .filter(|(_, t)| self.nodes[t.node].expired.is_none())
            .map(|(ix, t)| (t.tier, t.seq, ix))
            .collect();
        due.sort_unstable();
        due
    }

    pub(super) fn block_locally(&mut self, uid: &str, key: &BudgetKey, now: Instant) {
        let st = BudgetNow::of(&self.budgets[key].pdb);
        let name = key.name.clone();
        let cause = if st.observed {
            format!(
                "The disruption budget {name} needs {} healthy pods and has {} currently",
                st.desired_healthy, st.current_healthy
            )
        } else {
            format!("The disruption budget {name} is still being processed by the server.")
        };
        let ceiling = self.opts.budget_retry_ceiling;
        self.set_blocked(
            uid,
            Some(name),
            WaitsFor::Budget,
            cause,
            "waiting for the budget to allow a disruption (no request sent)".into(),
            now + ceiling,
            None,
            now,
        );
    }

    /// A pod protected by `karpenter.sh/do-not-disrupt` for a while yet: nothing is sent before
    /// the protection ends, and a `Blocked` event (no budget) says until when and why. Dry runs
    /// change nothing, so they do not wait.
    pub(super) fn hold_if_protected(&mut self, ix: usize) {
        let t = self.tracks.at(ix);
        let Some(until) = t.protected_until else {
            return;
        };
        if *t.st() != St::Queued || self.dry() != DryRun::None {
            return;
        }
        let now = self.now.instant;
        let left = until.duration_since(self.now.wall);
        let Ok(left) = Duration::try_from(left) else {
            return; // already over
        };
        let Some(next) = now.checked_add(left) else {
            return;
        };
        let uid = t.uid.clone();
        let reason = t.reason.clone();
        self.set_blocked(
            &uid,
            None,
            WaitsFor::Protection,
            format!("protected: {reason}"),
            format!("{reason}; no request sent before then"),
            next,
            None,
            now,
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn set_blocked(
        &mut self,
        uid: &str,
        by: Option<String>,
        waits_for: WaitsFor,
        cause: String,
        message: String,
        next: Instant,
        not_before: Option<Instant>,
        now: Instant,
    ) {
        let by_budget = waits_for.is_budget();
        let wall = self.now.wall;
        let healthy = self.healthy_of(uid, by.as_deref(), waits_for);
        let ix = self.tracks.idx(uid).expect("track");
        self.tracks.set_st(
            ix,
            St::Waiting(Wait {
                cause: waits_for,
                next_at: next,
                not_before,
            }),
        );
        let t = self.tracks.at_mut(ix);
        let node = self.nodes[t.node].name.clone();
        t.last_wait = Some(waits_for);
        t.blocked_by = by.clone().or_else(|| Some(cause.clone()));
        if by_budget {
            t.blocked_since.get_or_insert(now);
        }
        let since = *t.blocked_first.get_or_insert(wall);
        let key = format!("{by:?}|{cause}");
        if t.last_cause.as_deref() != Some(key.as_str()) {
            t.last_cause = Some(key);
            let ev = Event::Blocked {
                node,
                pod: t.r.clone(),
                waits_for,
                budget: by,
                healthy,
                cause,
                message,
                retry_in_seconds: (next.max(not_before.unwrap_or(next)) - now).as_secs_f64(),
                since,
            };
            self.emit(ev);
        }
    }

    pub(super) fn send(&mut self, uid: &str, spend: Option<BudgetKey>, now: Instant) {
        let dry = self.dry();
        let wall = self.now.wall;
        let ix = self.tracks.idx(uid).expect("track");
        self.tracks.set_st(ix, St::InFlight);
        let t = self.tracks.at_mut(ix);
        t.attempts += 1;
        t.first_attempt.get_or_insert(wall);
        t.inflight_budget = spend;
        t.last_sent = Some(now);
        let n = &mut self.nodes[t.node];
        n.awaiting += 1;
        n.last_sent = t.last_sent;
        self.inflight += 1;
        let node = t.node;
        let name = self.nodes[node].name.clone();
        let r = t.r.clone();
        let action = t.action;
        let attempt = t.attempts;
        if action == Action::Delete {
            self.emit(Event::DeleteSent {
                node: name,
                pod: r.clone(),
                dry_run: dry,
            });
        } else {
            self.emit(Event::EvictionSent {
                node: name,
                pod: r.clone(),
                attempt,
                dry_run: dry,
            });
        }
        self.out.push(Command::Send {
            uid: uid.to_string(),
            pod: r,
            action,
            node,
        });
    }

    pub(super) fn retry_jitter(&mut self) -> Duration {
        let cap = (self.opts.budget_retry_ceiling / 10).min(Duration::from_millis(500));
        Duration::from_millis(self.rng.u64(0..=cap.as_millis() as u64))
    }
}

/// The tracks due at the start of a dispatch, handed out in dispatch order (tier, seq, track
/// index), each at most once: the queued ones are read from each node's queue as they are
/// needed (a dispatch that fills the free slots visits those it sends, not the whole queue),
/// the waits that are over were taken when it started.
pub(super) struct Due {
    /// The nodes whose tracks may go.
    nodes: Vec<usize>,
    /// Each node's open tier.
    open: Vec<u8>,
    /// The waits over at the start, in dispatch order.
    waits: Vec<(u8, usize, usize)>,
    next_wait: usize,
    /// The last track handed out.
    after: Option<(u8, usize, usize)>,
}

impl Due {
    /// The next track due after the last one handed out. A track handed out and still queued
    /// (not sent) is not handed out again, nor is one whose wait begins now.
    fn next(&mut self, core: &Core) -> Option<(u8, usize, usize)> {
        let queued = self
            .nodes
            .iter()
            .filter_map(|&i| core.tracks.next_queued(i, self.after))
            .filter(|&(tier, _, ix)| tier <= self.open[core.tracks.at(ix).node])
            .min();
        let wait = self.waits.get(self.next_wait).copied();
        let next = match (queued, wait) {
            (Some(q), Some(w)) if w < q => {
                self.next_wait += 1;
                w
            }
            (Some(q), _) => q,
            (None, Some(w)) => {
                self.next_wait += 1;
                w
            }
            (None, None) => return None,
        };
        self.after = Some(next);
        Some(next)
    }
}
