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
    // B's eviction refused by the server after all (a 429): the unit is free again, and A
    // takes it on its next look
    let refused = Attempt::Blocked {
        budgets: vec!["web".into()],
        cause: "The disruption budget web needs 3 healthy pods and has 3 currently".into(),
        message: "Cannot evict pod as it would violate the pod's disruption budget.".into(),
        retry_after: None,
        multiple: false,
    };
    assert!(sent(&b.answer("b1", refused)).is_empty());
    assert_eq!(sent(&a.budget(web(0, &[]))), ["a2"]);
    assert!(sent(&b.budget(web(0, &[]))).is_empty());
}

#[test]
fn without_a_shared_ledger_both_drains_spend_the_same_unit() {
    // the control: what each drain did alone before the ledger
    let (mut a, mut b) = pair(false);
    assert_eq!(sent(&a.start()), ["a1"]);
    assert_eq!(sent(&b.start()), ["b1"]);
}

/// A budget server for [`under_any_interleaving_the_budget_is_never_overspent`]: it answers
/// evictions by the budget's true state and writes statuses each drain's watch delivers in
/// order, at times of the test's choosing.
#[derive(Default)]
struct Server {
    /// Accepted evictions whose replacement is not Ready yet.
    unhealthy: Vec<String>,
    /// Evictions refused for the budget (a 429 each).
    refused: usize,
    accepted: Vec<String>,
}

impl Server {
    fn allowed(&self) -> i32 {
        1 - self.unhealthy.len() as i32
    }

    fn status(&self, disrupted: &[&str]) -> PodDisruptionBudget {
        web(self.unhealthy.len() as i32, disrupted)
    }
}

#[test]
fn under_any_interleaving_the_budget_is_never_overspent() {
    for seed in 0..300u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let (a, b) = pair(true);
        let mut drains = [a, b];
        let mut server = Server::default();
        // per drain: requests sent and not yet at the server, answers not yet delivered, and
        // statuses its watch has not delivered yet
        let mut outbox: [Vec<String>; 2] = Default::default();
        let mut answers: [Vec<(String, bool)>; 2] = Default::default();
        let mut watch: [std::collections::VecDeque<PodDisruptionBudget>; 2] = Default::default();
        let mut clock = Duration::ZERO;
        for (i, d) in drains.iter_mut().enumerate() {
            outbox[i].extend(sent(&d.start()));
        }
        for _step in 0..400 {
            if server.accepted.len() == 4 {
                break;
            }
            let i = rng.usize(0..2);
            match rng.u8(0..5) {
                // a request reaches the server
                0 if !outbox[i].is_empty() => {
                    let pod = outbox[i].remove(rng.usize(0..outbox[i].len()));
                    let ok = server.allowed() > 0;
                    if ok {
                        server.unhealthy.push(pod.clone());
                        server.accepted.push(pod.clone());
                        let s = server.status(&[pod.as_str()]);
                        watch.iter_mut().for_each(|w| w.push_back(s.clone()));
                    } else {
                        server.refused += 1;
                    }
                    answers[i].push((pod, ok));
                }
                // an answer reaches its drain
                1 if !answers[i].is_empty() => {
                    let (pod, ok) = answers[i].remove(rng.usize(0..answers[i].len()));
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
                    outbox[i].extend(sent(&drains[i].answer(&pod, attempt)));
                }
                // a drain's watch delivers its next status
                2 if !watch[i].is_empty() => {
                    let s = watch[i].pop_front().expect("status");
                    outbox[i].extend(sent(&drains[i].budget(s)));
                }
                // a replacement becomes Ready
                3 if !server.unhealthy.is_empty() => {
                    server.unhealthy.remove(0);
                    let s = server.status(&[]);
                    watch.iter_mut().for_each(|w| w.push_back(s.clone()));
                }
                // time passes (less than the retry ceiling)
                4 => {
                    clock += secs(0.1);
                    outbox[i].extend(sent(&drains[i].tick_at(clock)));
                }
                _ => {}
            }
            // sent and not yet at the server, plus accepted and not yet replaced: never more
            // than the one unit the budget has
            let in_flight = outbox.iter().map(Vec::len).sum::<usize>();
            assert!(
                in_flight + server.unhealthy.len() <= 1,
                "seed {seed}: {in_flight} evictions in flight and {:?} not replaced under a budget allowing one",
                server.unhealthy
            );
        }
        assert_eq!(
            server.refused, 0,
            "seed {seed}: a drain spent a unit already spent"
        );
    }
}
