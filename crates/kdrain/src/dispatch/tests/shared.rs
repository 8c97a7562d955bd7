//! Two drains sharing one budget ledger (issue 12: budgets hold across every active drain). Each
//! drain has its own core and its own view of the budgets (its own watch); only the ledger is
//! shared. `web` allows one disruption (maxUnavailable 1 over four pods): drain A has `a1`,
//! `a2` on n1, drain B `b1`, `b2` on n2.

use super::*;
use crate::dispatch::BudgetLedger;

/// Budget `web` with `unhealthy` of its four pods disrupted and not replaced yet, listing
/// `disrupted`.
fn web(unhealthy: i32, disrupted: &[&str]) -> PodDisruptionBudget {
    pdb("web", "web", 1 - unhealthy, 3, 4 - unhealthy, disrupted)
}

fn drain(node: &str, pods: [&str; 2], ledger: &BudgetLedger, t0: Instant) -> Drain {
    let pods: Vec<Pod> = pods.iter().map(|p| pod(p, node, "web")).collect();
    let plan = pods.iter().map(evict).collect();
    Drain::planned_in(
        opts(),
        vec![(node, pods, plan)],
        vec![web(0, &[])],
        ledger.clone(),
        t0,
    )
}

/// Drains A and B sharing `ledger` (or each its own when `shared` is false).
fn pair(shared: bool) -> (Drain, Drain) {
    let t0 = Instant::now();
    let ledger = BudgetLedger::new();
    let other = if shared {
        ledger.clone()
    } else {
        BudgetLedger::new()
    };
    (
        drain("n1", ["a1", "a2"], &ledger, t0),
        drain("n2", ["b1", "b2"], &other, t0),
    )
}

#[test]
fn the_second_drain_waits_for_the_unit_the_first_spent() {
    let (mut a, mut b) = pair(true);
    assert_eq!(sent(&a.start()), ["a1"]);
    let c = b.start();
    assert!(
        sent(&c).is_empty(),
        "the budget's one unit is in flight for A"
    );
    assert_eq!(
        blocked(&c),
        [
            ("b1".into(), WaitsFor::Budget, Some("web".into())),
            ("b2".into(), WaitsFor::Budget, Some("web".into()))
        ]
    );
    // accepted: B's view has not seen a status counting it, so the unit is still spent
    assert!(sent(&a.answer("a1", Attempt::Accepted)).is_empty());
    assert!(sent(&b.tick_at(secs(1.0))).is_empty());
    // the eviction's own status write, then the replacement Ready: one unit again, taken by
    // whichever drain hears first; the other sends nothing
    for d in [&mut a, &mut b] {
        assert!(sent(&d.budget(web(1, &["a1"]))).is_empty());
    }
    assert_eq!(sent(&b.budget(web(0, &[]))), ["b1"]);
    assert!(sent(&a.budget(web(0, &[]))).is_empty());
    // B's eviction refused by the server after all (a 429): the unit is free again with no
    // budget status to say so; the ledger tells A, whose next look (the tick its shell gets
    // from the ledger) takes it
    let refused = Attempt::Blocked {
        budgets: vec!["web".into()],
        cause: "The disruption budget web needs 3 healthy pods and has 3 currently".into(),
        message: "Cannot evict pod as it would violate the pod's disruption budget.".into(),
        retry_after: None,
        multiple: false,
    };
    assert!(sent(&b.answer("b1", refused)).is_empty());
    assert_eq!(sent(&a.tick_at(secs(1.0))), ["a2"]);
    assert!(sent(&b.tick_at(secs(1.0))).is_empty());
}

#[test]
fn without_a_shared_ledger_both_drains_spend_the_same_unit() {
    // the control: what each drain did alone before the ledger
    let (mut a, mut b) = pair(false);
    assert_eq!(sent(&a.start()), ["a1"]);
    assert_eq!(sent(&b.start()), ["b1"]);
}

/// The world of [`under_any_interleaving_the_budget_is_never_overspent`]: two drains and a
/// budget server that answers evictions by the budget's true state and writes statuses each
/// drain's watch delivers in order, at times of the test's choosing.
struct World {
    drains: [Drain; 2],
    /// Accepted evictions whose replacement is not Ready yet.
    unhealthy: Vec<String>,
    /// Evictions refused for the budget (a 429 each).
    refused: usize,
    accepted: Vec<String>,
    /// Per drain: requests sent and not yet at the server.
    outbox: [Vec<String>; 2],
    /// Per drain: answers not yet delivered.
    answers: [Vec<(String, bool)>; 2],
    /// Per drain: statuses its watch has not delivered yet.
    watch: [std::collections::VecDeque<PodDisruptionBudget>; 2],
    clock: Duration,
}

impl World {
    fn new() -> World {
        let (a, b) = pair(true);
        let mut w = World {
            drains: [a, b],
            unhealthy: vec![],
            refused: 0,
            accepted: vec![],
            outbox: Default::default(),
            answers: Default::default(),
            watch: Default::default(),
            clock: Duration::ZERO,
        };
        for i in 0..2 {
            let c = w.drains[i].start();
            w.outbox[i].extend(sent(&c));
        }
        w
    }

    fn status(&self, disrupted: &[&str]) -> PodDisruptionBudget {
        web(self.unhealthy.len() as i32, disrupted)
    }

    /// Carries out action `kind` for drain `i` (`pick` chooses among what is pending); false
    /// when there was nothing to do.
    fn act(&mut self, kind: u8, i: usize, pick: &mut impl FnMut(usize) -> usize) -> bool {
        match kind {
            // a request reaches the server
            0 if !self.outbox[i].is_empty() => {
                let pod = self.outbox[i].remove(pick(self.outbox[i].len()));
                let ok = self.unhealthy.is_empty();
                if ok {
                    self.unhealthy.push(pod.clone());
                    self.accepted.push(pod.clone());
                    let s = self.status(&[pod.as_str()]);
                    self.watch.iter_mut().for_each(|w| w.push_back(s.clone()));
                } else {
                    self.refused += 1;
                }
                self.answers[i].push((pod, ok));
            }
            // an answer reaches its drain
            1 if !self.answers[i].is_empty() => {
                let (pod, ok) = self.answers[i].remove(pick(self.answers[i].len()));
                let attempt = if ok {
                    Attempt::Accepted
                } else {
                    Attempt::Blocked {
                        budgets: vec!["web".into()],
                        cause: "no".into(),
                        message: "no".into(),
                        retry_after: None,
                        multiple: false,
                    }
                };
                let c = self.drains[i].answer(&pod, attempt);
                self.outbox[i].extend(sent(&c));
            }
            // the drain's watch delivers its next status
            2 if !self.watch[i].is_empty() => {
                let s = self.watch[i].pop_front().expect("status");
                let c = self.drains[i].budget(s);
                self.outbox[i].extend(sent(&c));
            }
            // a replacement becomes Ready
            3 if !self.unhealthy.is_empty() => {
                self.unhealthy.remove(0);
                let s = self.status(&[]);
                self.watch.iter_mut().for_each(|w| w.push_back(s.clone()));
            }
            // time passes (less than the retry ceiling): the tick a shell also gets when the
            // ledger says another drain released a unit
            4 => {
                // one clock for both, as in a process
                self.clock += secs(0.1);
                self.drains.iter_mut().for_each(|d| d.at = self.clock);
                let c = self.drains[i].on(Input::Tick);
                self.outbox[i].extend(sent(&c));
            }
            _ => return false,
        }
        true
    }
}

#[test]
fn under_any_interleaving_the_budget_is_never_overspent() {
    for seed in 0..300u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut w = World::new();
        let check = |w: &World| {
            // sent and not yet at the server, plus accepted and not yet replaced: never more
            // than the one unit the budget has
            let in_flight = w.outbox.iter().map(Vec::len).sum::<usize>();
            assert!(
                in_flight + w.unhealthy.len() <= 1,
                "seed {seed}: {in_flight} evictions in flight and {:?} not replaced under a budget allowing one",
                w.unhealthy
            );
        };
        let mut pick = |n: usize| rng.usize(0..n);
        let mut choices = fastrand::Rng::with_seed(seed ^ 0x5eed);
        for _ in 0..400 {
            let (i, kind) = (choices.usize(0..2), choices.u8(0..5));
            w.act(kind, i, &mut pick);
            check(&w);
        }
        // then everything pending arrives, in order, until nothing changes: every pod goes
        for _ in 0..100 {
            for kind in 0..5 {
                for i in 0..2 {
                    while kind < 4 && w.act(kind, i, &mut |_| 0) {
                        check(&w);
                    }
                    if kind == 4 {
                        w.act(4, i, &mut |_| 0);
                        check(&w);
                    }
                }
            }
        }
        assert_eq!(
            w.refused, 0,
            "seed {seed}: a drain spent a unit already spent"
        );
        let key = crate::budget::BudgetKey {
            namespace: "default".into(),
            name: "web".into(),
        };
        assert_eq!(
            w.accepted.len(),
            4,
            "seed {seed}: {:?} evicted; A: {:?} {:?}, B: {:?}",
            w.accepted,
            w.drains[0].core.effective(&key),
            w.drains[0]
                .core
                .tracks
                .get("uid-a2")
                .map(|t| format!("{:?}", t.st())),
            w.drains[1].core.effective(&key),
        );
    }
}
