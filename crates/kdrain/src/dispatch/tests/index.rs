//! The tracks' indexes (`track.rs`) against full scans, after random sequences of inputs: every
//! batch ends with [`super::super::track::Tracks::check_index`] and every dispatch compares the
//! tracks it finds due with a scan (both under `cfg(test)` in the core itself); here random
//! drains run through answers of every kind, budget changes, pods terminating and going, LISTs,
//! ticks and a stop, and the wake-up time is compared with a scan too.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use proptest::prelude::*;

use super::*;
use crate::dispatch::core::Core;
use crate::dispatch::node::IN_FLIGHT_GRACE;
use crate::dispatch::track::St;

const NODES: usize = 3;
const PODS: usize = 4;
const APPS: [&str; 3] = ["web", "db", "free"];

fn name(node: usize, i: usize) -> String {
    format!("p{node}{i}")
}

/// Pod `i` of node `node`: app by `i`, the second pod of each node system-critical (a later
/// tier).
fn pod_of(node: usize, i: usize) -> Pod {
    let mut p = pod(&name(node, i), &format!("n{node}"), APPS[i % APPS.len()]);
    if i == 1 {
        p.spec.as_mut().expect("spec").priority_class_name = Some("system-cluster-critical".into());
    }
    p
}

/// Budgets over `web` and `db` (none over `free`).
fn budget(app: usize, allowed: i32, disrupted: &[&str]) -> PodDisruptionBudget {
    pdb(APPS[app], APPS[app], allowed, 2, 2 + allowed, disrupted)
}

/// One input, drawn at random (pods and budgets by index, reduced modulo what exists).
#[derive(Debug, Clone)]
enum Step {
    /// Answer the `n`th request in flight with answer kind `kind`.
    Answer(usize, u8),
    /// A budget status: app, allowance, whether it lists the first pod sent.
    Budget(usize, i32, bool),
    /// A pod's deletion is seen (terminating).
    Terminating(usize),
    /// A pod is gone.
    Gone(usize),
    /// The LISTs asked for are answered, the pods in `keep` (a bit set) still there.
    Lists(u16),
    /// The clock moves on by this many tenths of a second.
    Tick(u16),
    /// Stop.
    Stop,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (any::<usize>(), 0u8..9).prop_map(|(n, k)| Step::Answer(n, k)),
        2 => (0usize..2, 0i32..3, any::<bool>()).prop_map(|(a, n, d)| Step::Budget(a, n, d)),
        2 => (0..NODES * PODS).prop_map(Step::Terminating),
        3 => (0..NODES * PODS).prop_map(Step::Gone),
        2 => any::<u16>().prop_map(Step::Lists),
        4 => (0u16..400).prop_map(Step::Tick),
        1 => Just(Step::Stop),
    ]
}

fn attempt(kind: u8) -> Attempt {
    match kind {
        0 | 1 => Attempt::Accepted,
        2 => Attempt::Gone,
        3 => Attempt::Blocked {
            budgets: vec!["web".into()],
            cause: "The disruption budget web needs 2 healthy pods and has 2 currently".into(),
            message: "Cannot evict pod as it would violate the pod's disruption budget.".into(),
            retry_after: Some(Duration::from_secs(2)),
            multiple: false,
        },
        4 => Attempt::Throttled {
            retry_after: Some(Duration::from_secs(1)),
            message: "too many requests".into(),
        },
        5 => Attempt::NamespaceTerminating {
            message: "namespace is terminating".into(),
        },
        6 => Attempt::Rejected {
            code: 422,
            message: "no".into(),
        },
        7 => Attempt::Replaced,
        _ => Attempt::Transient {
            code: Some(500),
            message: "oops".into(),
        },
    }
}

/// [`Core::next_wake`] as it was before the indexes: a scan of every track in play.
fn next_wake_by_scan(core: &Core) -> Option<Instant> {
    let mut wake: Option<Instant> = None;
    let last = core.now.instant;
    let mut at = |t: Instant| {
        if t > last {
            wake = Some(wake.map_or(t, |w| w.min(t)));
        }
    };
    for (_, t) in core.live() {
        if let St::Waiting(w) = t.st() {
            at(w.due());
        }
        if let Some(limit) = core.opts.skip_wait_for_delete_timeout
            && matches!(t.st(), St::Following | St::Waiting(_))
            && let Some(dt) = t.pod.metadata.deletion_timestamp.as_ref()
        {
            let due = dt.0 + jiff::SignedDuration::from_secs(limit.as_secs() as i64 + 1);
            let secs = due.duration_since(core.now.wall).as_secs_f64().max(0.0);
            at(core.now.instant + Duration::from_secs_f64(secs));
        }
    }
    for (i, n) in core.nodes.iter().enumerate() {
        if n.outcome.is_none() {
            match (n.deadline, n.expired) {
                (_, Some(e)) => at(e + IN_FLIGHT_GRACE),
                (Some(d), None) => at(d),
                (None, None) => {}
            }
            if let Some(r) = n.final_list_retry {
                at(r);
            }
            if let Some(until) = core.answer_due(i) {
                at(until);
            }
        }
    }
    if let Some(due) = core.acks_due {
        at(due);
    }
    if let Some(check) = core.room.next_check {
        at(check);
    }
    if let Some(next) = core.admission.not_before {
        at(next);
    }
    wake
}

/// Runs `steps` on a drain of three nodes of four pods each; the core checks its indexes after
/// every batch, and the wake-up time is checked here.
fn run(steps: Vec<Step>, skip_wait: bool, parallel: usize) {
    let mut o = opts();
    o.budget_retry_ceiling = Duration::from_secs(5);
    o.max_concurrent_evictions = 2;
    o.parallel_nodes = parallel;
    o.timeout = Some(Duration::from_secs(30));
    if skip_wait {
        o.skip_wait_for_delete_timeout = Some(Duration::from_secs(3));
    }
    let nodes: Vec<(String, Vec<Pod>)> = (0..NODES)
        .map(|n| (format!("n{n}"), (0..PODS).map(|i| pod_of(n, i)).collect()))
        .collect();
    let planned = nodes
        .iter()
        .map(|(name, pods)| {
            let plan = pods.iter().map(evict).collect();
            (name.as_str(), pods.clone(), plan)
        })
        .collect();
    let mut d = Drain::planned(o, planned, vec![budget(0, 1, &[]), budget(1, 0, &[])]);
    let mut inflight: Vec<String> = Vec::new();
    let mut gone: BTreeSet<String> = BTreeSet::new();
    let mut lists: Vec<usize> = Vec::new();
    let mut first_sent: Option<String> = None;
    let note = |c: &[Command],
                inflight: &mut Vec<String>,
                lists: &mut Vec<usize>,
                first_sent: &mut Option<String>| {
        for p in sent(c) {
            first_sent.get_or_insert(p.clone());
            inflight.push(p);
        }
        lists.extend(self::lists(c).into_iter().map(|(n, _)| n));
    };
    let c = d.start();
    note(&c, &mut inflight, &mut lists, &mut first_sent);
    for s in steps {
        let c = match s {
            Step::Answer(n, kind) => {
                if inflight.is_empty() {
                    continue;
                }
                let p = inflight.remove(n % inflight.len());
                d.answer(&p, attempt(kind))
            }
            Step::Budget(app, allowed, listed) => {
                let first = first_sent.clone();
                let disrupted: Vec<&str> = first
                    .iter()
                    .filter(|_| listed)
                    .map(|s| s.as_str())
                    .collect();
                d.budget(budget(app, allowed, &disrupted))
            }
            Step::Terminating(k) => {
                let (n, i) = (k / PODS, k % PODS);
                if gone.contains(&name(n, i)) {
                    continue;
                }
                let mut p = pod_of(n, i);
                p.metadata.deletion_timestamp = Some(Time(d.now().wall));
                d.pod_changed(n, p)
            }
            Step::Gone(k) => {
                let (n, i) = (k / PODS, k % PODS);
                gone.insert(name(n, i));
                d.pod_gone(n, pod_of(n, i))
            }
            Step::Lists(keep) => {
                let asked = std::mem::take(&mut lists);
                let mut out = Vec::new();
                for n in asked {
                    let purpose = if d.core.nodes[n].listing == Some(ListPurpose::CatchUp) {
                        ListPurpose::CatchUp
                    } else {
                        ListPurpose::Final
                    };
                    let pods = (0..PODS)
                        .filter(|i| keep & (1 << (n * PODS + i)) != 0)
                        .filter(|&i| !gone.contains(&name(n, i)))
                        .map(|i| pod_of(n, i))
                        .collect();
                    out.extend(d.listed(n, purpose, pods));
                }
                out
            }
            Step::Tick(tenths) => {
                let at = d.at + Duration::from_millis(u64::from(tenths) * 100);
                d.tick_at(at)
            }
            Step::Stop => d.on(Input::Stop),
        };
        note(&c, &mut inflight, &mut lists, &mut first_sent);
        assert_eq!(
            d.core.next_wake(),
            next_wake_by_scan(&d.core),
            "next wake-up"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_indexes_agree_with_full_scans(
        steps in prop::collection::vec(step(), 1..60),
        skip_wait in any::<bool>(),
        parallel in 1usize..4,
    ) {
        run(steps, skip_wait, parallel);
    }
}
