//! Unit tests of the dispatcher's core, in the style of kube-runtime's `reflector/store.rs` and
//! linkerd's index tests: synthetic pods, budgets and answers go in, the commands that come out
//! are checked. The clock is the test's own: it moves only when a test moves it, and the core
//! reads no other.

mod acks;
mod admit;

mod answers;
mod index;
mod nodes;
mod room;
mod shared;
mod waits;

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::json;
use tokio::time::Instant;

use super::NodeSetup;
use super::answers::Answer;
use super::core::{Command, Config, Core, Input, ListPurpose, Now};
use crate::events::{Event, WaitsFor};
use crate::evict::Attempt;
use crate::options::DrainOptions;
use crate::plan::{Action, NodePlan, PodPlan};
use crate::report::{NodeReport, PodOutcome};
use crate::requests::Requests;
use crate::watch::{Change, Listed, Seen};

/// A Running, Ready pod of a ReplicaSet, labelled `app`, bound to `node`.
fn pod(name: &str, node: &str, app: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": "default", "uid": format!("uid-{name}"),
            "labels": {"app": app},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": app,
                                 "uid": format!("rs-{app}"), "controller": true}],
        },
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }))
    .expect("pod")
}

/// A processed budget over `app` with `allowed` disruptions left, `needs`/`has` healthy pods,
/// and `disrupted` listed in `disruptedPods`.
fn pdb(
    name: &str,
    app: &str,
    allowed: i32,
    needs: i32,
    has: i32,
    disrupted: &[&str],
) -> PodDisruptionBudget {
    let disrupted: serde_json::Map<String, serde_json::Value> = disrupted
        .iter()
        .map(|p| (p.to_string(), json!("2026-01-01T00:00:00Z")))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "generation": 1},
        "spec": {"selector": {"matchLabels": {"app": app}}, "maxUnavailable": 1},
        "status": {"observedGeneration": 1, "disruptionsAllowed": allowed, "desiredHealthy": needs,
                   "currentHealthy": has, "expectedPods": has, "disruptedPods": disrupted},
    }))
    .expect("pdb")
}

/// The plan's entry for a pod: evicted, tier 0.
fn evict(p: &Pod) -> PodPlan {
    PodPlan {
        namespace: "default".into(),
        name: p.metadata.name.clone().expect("name"),
        uid: p.metadata.uid.clone().expect("uid"),
        action: Action::Evict,
        reason: String::new(),
        budget: None,
        grace_seconds: 30,
        tier: 0,
        protected_until: None,
        placement: None,
    }
}

/// Options whose retry ceiling (1 h) never passes unless a test moves the clock that far.
fn opts() -> DrainOptions {
    DrainOptions {
        budget_retry_ceiling: Duration::from_secs(3600),
        ..DrainOptions::kubectl()
    }
}

/// A drain driven by hand: a core, its clock, and helpers to feed it.
struct Drain {
    core: Core,
    t0: Instant,
    w0: jiff::Timestamp,
    /// How far the clock is past its start.
    at: Duration,
    /// `wait_for_capacity`: answer every [`Command::AdmitRoom`] at once, admitting every pod
    /// (for tests of something else than the admissions).
    admit_all: bool,
}

impl Drain {
    /// One node `n1` with `pods`, each planned as evicted, under `pdbs`.
    fn new(opts: DrainOptions, pods: Vec<Pod>, pdbs: Vec<PodDisruptionBudget>) -> Drain {
        let plan = pods.iter().map(evict).collect();
        Drain::planned(opts, vec![("n1", pods, plan)], pdbs)
    }

    /// Nodes with their pods and plans.
    fn planned(
        opts: DrainOptions,
        nodes: Vec<(&str, Vec<Pod>, Vec<PodPlan>)>,
        pdbs: Vec<PodDisruptionBudget>,
    ) -> Drain {
        Drain::planned_in(opts, nodes, pdbs, Default::default(), Instant::now())
    }

    /// [`Drain::planned`] counting budgets in `ledger`, its clock starting at `t0`.
    fn planned_in(
        opts: DrainOptions,
        nodes: Vec<(&str, Vec<Pod>, Vec<PodPlan>)>,
        pdbs: Vec<PodDisruptionBudget>,
        ledger: super::BudgetLedger,
        t0: Instant,
    ) -> Drain {
        let setups = nodes
            .into_iter()
            .map(|(name, pods, plan)| NodeSetup {
                name: name.into(),
                was_cordoned: false,
                listed: Listed {
                    items: pods,
                    resource_version: "10".into(),
                },
                plan: NodePlan {
                    node: name.into(),
                    cordoned: true,
                    pods: plan,
                    errors: vec![],
                    warnings: vec![],
                },
                req: Requests::default(),
            })
            .collect();
        let budgets = (!opts.disable_eviction).then(|| Listed {
            items: pdbs,
            resource_version: "10".into(),
        });
        let cfg = Config {
            opts,
            filters: vec![],
            pod_selector: None,
            ds_cache: Default::default(),
            waves: vec![],
            budgets: ledger,
            waiting: vec![],
        };
        let w0 = wall(0.0);
        let now = Now {
            instant: t0,
            wall: w0,
        };
        Drain {
            core: Core::new(cfg, setups, budgets, now, 7),
            t0,
            w0,
            at: Duration::ZERO,
            admit_all: false,
        }
    }

    fn now(&self) -> Now {
        Now {
            instant: self.t0 + self.at,
            wall: self.w0 + self.at,
        }
    }

    fn on(&mut self, input: Input) -> Vec<Command> {
        let now = self.now();
        let mut out = self.core.on_all([input], now);
        while self.admit_all {
            let Some(asked) = out.iter().find_map(|c| match c {
                Command::AdmitRoom { asked, .. } => {
                    Some(asked.iter().map(|a| a.0).collect::<Vec<usize>>())
                }
                _ => None,
            }) else {
                break;
            };
            out.retain(|c| !matches!(c, Command::AdmitRoom { .. }));
            let fits = Ok(asked.clone());
            out.extend(self.core.on_all(
                [Input::Admitted {
                    asked,
                    fits,
                    took: Duration::ZERO,
                }],
                now,
            ));
        }
        out
    }

    /// Inputs that arrived together.
    fn on_all(&mut self, inputs: Vec<Input>) -> Vec<Command> {
        let now = self.now();
        self.core.on_all(inputs, now)
    }

    fn start(&mut self) -> Vec<Command> {
        self.on(Input::Start)
    }

    /// Moves the clock to `at` past the start and ticks.
    fn tick_at(&mut self, at: Duration) -> Vec<Command> {
        assert!(at >= self.at, "the clock only moves forward");
        self.at = at;
        self.on(Input::Tick)
    }

    /// How long after the start the core next wants a tick.
    fn wake_at(&self) -> Option<Duration> {
        self.core.next_wake().map(|w| w - self.t0)
    }

    fn answer(&mut self, pod: &str, attempt: Attempt) -> Vec<Command> {
        let uid = format!("uid-{pod}");
        self.on(Input::Answer(Answer { uid, attempt }))
    }

    fn budget(&mut self, b: PodDisruptionBudget) -> Vec<Command> {
        self.on(Input::Budgets(Box::new(Seen {
            source: super::BUDGETS,
            change: Change::Upsert(b),
        })))
    }

    fn pod_changed(&mut self, node: usize, p: Pod) -> Vec<Command> {
        self.on(Input::Pods(Box::new(Seen {
            source: node,
            change: Change::Upsert(p),
        })))
    }

    fn pod_gone(&mut self, node: usize, p: Pod) -> Vec<Command> {
        self.on(Input::Pods(Box::new(Seen {
            source: node,
            change: Change::Removed(p),
        })))
    }

    fn listed(&mut self, node: usize, purpose: ListPurpose, pods: Vec<Pod>) -> Vec<Command> {
        self.on(Input::Listed {
            node,
            purpose,
            result: Ok(Listed {
                items: pods,
                resource_version: "99".into(),
            }),
        })
    }

    fn reports(&self) -> Vec<NodeReport> {
        self.core.reports(self.now())
    }

    /// The outcome of a pod in the report.
    fn outcome(&self, pod: &str) -> PodOutcome {
        self.reports()
            .iter()
            .flat_map(|n| n.pods.clone())
            .find(|p| p.pod.name == pod)
            .expect("pod in the report")
            .outcome
    }
}

/// The pods sent an eviction or delete, in order.
fn sent(cmds: &[Command]) -> Vec<String> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Send { pod, .. } => Some(pod.name.clone()),
            _ => None,
        })
        .collect()
}

fn events(cmds: &[Command]) -> Vec<Event> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Emit(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// The `Blocked` events: pod, what it waits for, the budget named.
fn blocked(cmds: &[Command]) -> Vec<(String, WaitsFor, Option<String>)> {
    events(cmds)
        .into_iter()
        .filter_map(|e| match e {
            Event::Blocked {
                pod,
                waits_for,
                budget,
                ..
            } => Some((pod.name, waits_for, budget)),
            _ => None,
        })
        .collect()
}

/// The LISTs asked for: node index and purpose.
fn lists(cmds: &[Command]) -> Vec<(usize, ListPurpose)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::ListPods { node, purpose, .. } => Some((*node, *purpose)),
            _ => None,
        })
        .collect()
}

/// The wall clock `s` seconds past the test's start.
fn wall(s: f64) -> jiff::Timestamp {
    let w0: jiff::Timestamp = "2026-12-03T12:00:00Z".parse().expect("time");
    w0 + jiff::SignedDuration::from_secs_f64(s)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}
