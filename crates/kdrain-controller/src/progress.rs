//! A drain's progress, assembled from the kdrain library's events into the NodeDrain's status:
//! per node phase and pod counts, the pods that wait now (capped), the plan's summary and the
//! one-line "blocked by" of `kubectl get`.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kdrain::{Event, Plan, Stamped};

use crate::types::{Blocker, BudgetSummary, NodeDrainStatus, NodeProgress, PlanSummary};

/// How many waiting pods the status lists; the others are counted in `moreBlockers`.
pub const BLOCKERS_SHOWN: usize = 10;

#[derive(Debug, Clone, Default)]
struct NodeState {
    name: String,
    phase: &'static str,
    targets: HashSet<String>,
    gone: HashSet<String>,
    start: Option<jiff::Timestamp>,
    end: Option<jiff::Timestamp>,
    message: Option<String>,
    /// Pods seen gone by an earlier run of the same spec (before a restart or a new leader).
    carried: u32,
    /// The earlier run's total, shown until this run's plan says how many pods are left (so a
    /// resumed drain does not show 1/1 for a moment).
    carried_total: u32,
}

/// The progress of one NodeDrain's drain, fed with the library's events.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    nodes: Vec<NodeState>,
    /// Waiting pods by UID.
    blockers: BTreeMap<String, Blocker>,
    plan: Option<PlanSummary>,
    /// `waitForCapacity`: the nodes that wait for room while no wave drains.
    waiting_for_room: Vec<String>,
}

impl Progress {
    /// Nothing happened yet on `nodes`.
    pub fn new(nodes: &[String]) -> Self {
        Progress {
            nodes: nodes
                .iter()
                .map(|n| NodeState {
                    name: n.clone(),
                    phase: "Pending",
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn node(&mut self, name: &str) -> Option<&mut NodeState> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }

    /// Goes on from an earlier run of the same spec (a restart, a new leader): its pods seen
    /// gone count as gone (the new plan no longer lists them) and its start times stay.
    pub fn carry(&mut self, earlier: &[NodeProgress]) {
        for e in earlier {
            if let Some(n) = self.node(&e.name) {
                n.carried = e.pods_gone;
                n.carried_total = e.pods_total;
                n.start = e.start_time.as_ref().map(|t| t.0);
            }
        }
    }

    /// Marks `node` as in `phase` (e.g. `Cordoned`, `Uncordoned`).
    pub fn set_node_phase(&mut self, node: &str, phase: &'static str) {
        if let Some(n) = self.node(node) {
            n.phase = phase;
        }
    }

    /// Takes one library event in.
    pub fn observe(&mut self, stamped: &Stamped) {
        let at = stamped.time;
        match &stamped.event {
            Event::Planned { plan } => self.planned(plan),
            Event::Cordoned { node, .. } => {
                if let Some(n) = self.node(node)
                    && n.phase == "Pending"
                {
                    n.phase = "Cordoned";
                }
            }
            Event::EvictionSent { node, pod, .. } | Event::DeleteSent { node, pod, .. } => {
                if let Some(n) = self.node(node) {
                    n.draining(at);
                    n.targets.insert(pod.uid.clone());
                }
            }
            Event::Blocked {
                node,
                pod,
                waits_for,
                budget,
                healthy,
                cause,
                message,
                since,
                ..
            } => {
                if let Some(n) = self.node(node) {
                    n.draining(at);
                    n.targets.insert(pod.uid.clone());
                }
                let cause_name = serde_json::to_value(waits_for)
                    .ok()
                    .and_then(|v| v.as_str().map(camel))
                    .unwrap_or_default();
                self.blockers.insert(
                    pod.uid.clone(),
                    Blocker {
                        pod: pod.to_string(),
                        node: node.clone(),
                        cause: cause_name,
                        budget: budget.as_ref().map(|b| format!("{}/{b}", pod.namespace)),
                        needs: healthy.map(|h| h.needs),
                        has: healthy.map(|h| h.has),
                        since: Time(*since),
                        held_by_kdrain: message.contains("no request sent"),
                        message: cause.clone(),
                    },
                );
            }
            Event::Evicted { pod, .. } | Event::PodFailed { pod, .. } => {
                self.blockers.remove(&pod.uid);
            }
            Event::Terminating { node, pod, .. } => {
                self.blockers.remove(&pod.uid);
                if let Some(n) = self.node(node) {
                    n.draining(at);
                }
            }
            Event::Gone { node, pod } => {
                self.blockers.remove(&pod.uid);
                if let Some(n) = self.node(node) {
                    n.targets.insert(pod.uid.clone());
                    n.gone.insert(pod.uid.clone());
                }
            }
            Event::NodeDrained { node, .. } => {
                self.blockers.retain(|_, b| &b.node != node);
                if let Some(n) = self.node(node) {
                    n.start.get_or_insert(at);
                    n.phase = "Drained";
                    n.end = Some(at);
                }
            }
            Event::NodeFailed { node, error, .. } => {
                self.blockers.retain(|_, b| &b.node != node);
                if let Some(n) = self.node(node) {
                    n.start.get_or_insert(at);
                    n.phase = "Failed";
                    n.end = Some(at);
                    n.message = Some(error.clone());
                }
            }
            Event::WaitingForRoom { nodes, .. } => self.waiting_for_room = nodes.clone(),
            Event::WaveStarted { .. } => self.waiting_for_room.clear(),
            Event::NodesResolved { .. }
            | Event::RolloutRestarted { .. }
            | Event::Warning { .. }
            | Event::Uncordoned { .. }
            | Event::Skipped { .. }
            | Event::Done { .. } => {}
            // events added to the library later change nothing here until handled
            _ => {}
        }
    }

    fn planned(&mut self, plan: &Plan) {
        for np in &plan.nodes {
            let targets: HashSet<String> = np
                .pods
                .iter()
                .filter(|p| p.action.is_target())
                .map(|p| p.uid.clone())
                .collect();
            if let Some(n) = self.node(&np.node) {
                n.targets.extend(targets);
            }
        }
        self.plan = Some(summarize(plan));
    }

    /// The plan's summary, once planned.
    pub fn plan(&self) -> Option<&PlanSummary> {
        self.plan.as_ref()
    }

    /// A node's target pods in total: this run's targets and those gone before it; before this
    /// run's plan, at least the earlier run's total.
    fn total(&self, n: &NodeState) -> u32 {
        let total = n.targets.len() as u32 + n.carried;
        if self.plan.is_none() {
            total.max(n.carried_total)
        } else {
            total
        }
    }

    /// Target pods gone and in total, over all nodes.
    pub fn pods(&self) -> (usize, usize) {
        self.nodes.iter().fold((0, 0), |(g, t), n| {
            let c = n.carried as usize;
            (g + n.gone.len() + c, t + self.total(n) as usize)
        })
    }

    /// The nodes drained.
    pub fn drained(&self) -> usize {
        self.nodes.iter().filter(|n| n.phase == "Drained").count()
    }

    /// The waiting pods, longest-waiting first.
    pub fn waiting(&self) -> Vec<&Blocker> {
        let mut all: Vec<&Blocker> = self.blockers.values().collect();
        all.sort_by(|a, b| a.since.cmp(&b.since).then(a.pod.cmp(&b.pod)));
        all
    }

    /// What holds the drain back, in a few words: the cause (or budget) most pods wait for.
    pub fn blocked_by(&self) -> Option<String> {
        if self.blockers.is_empty() && !self.waiting_for_room.is_empty() {
            return Some(format!(
                "room for the pods of {}",
                self.waiting_for_room.join(", ")
            ));
        }
        let mut groups: BTreeMap<String, usize> = BTreeMap::new();
        for b in self.blockers.values() {
            let key = match (&b.budget, b.needs, b.has) {
                (Some(budget), Some(n), Some(h)) => format!("budget {budget} needs {n} has {h}"),
                (Some(budget), _, _) => format!("budget {budget}"),
                (None, _, _) => b.cause.clone(),
            };
            *groups.entry(key).or_default() += 1;
        }
        let total = groups.len();
        let (top, pods) = groups
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))?;
        let plural = if pods == 1 { "pod" } else { "pods" };
        let more = match total - 1 {
            0 => String::new(),
            1 => " (+1 other cause)".to_string(),
            n => format!(" (+{n} other causes)"),
        };
        Some(format!("{top} ({pods} {plural}){more}"))
    }

    /// Writes the progress into `status`: nodes, blockers, plan and the summaries.
    pub fn fill(&self, status: &mut NodeDrainStatus) {
        status.nodes = self
            .nodes
            .iter()
            .map(|n| {
                let total = self.total(n);
                let gone = n.gone.len() as u32 + n.carried;
                NodeProgress {
                    name: n.name.clone(),
                    phase: n.phase.to_string(),
                    pods_total: total,
                    pods_gone: gone,
                    pods_left: total.saturating_sub(gone),
                    start_time: n.start.map(Time),
                    end_time: n.end.map(Time),
                    message: n.message.clone(),
                }
            })
            .collect();
        let waiting = self.waiting();
        status.blockers = waiting
            .iter()
            .take(BLOCKERS_SHOWN)
            .map(|b| (*b).clone())
            .collect();
        status.more_blockers =
            (waiting.len() > BLOCKERS_SHOWN).then(|| (waiting.len() - BLOCKERS_SHOWN) as u32);
        if self.plan.is_some() {
            status.plan = self.plan.clone();
        }
        let (gone, total) = self.pods();
        status.pods_summary = Some(format!("{gone}/{total}"));
        status.nodes_summary = Some(format!("{}/{}", self.drained(), self.nodes.len()));
        status.blocked_by = self.blocked_by();
    }
}

impl NodeState {
    fn draining(&mut self, at: jiff::Timestamp) {
        self.start.get_or_insert(at);
        if matches!(self.phase, "Pending" | "Cordoned") {
            self.phase = "Draining";
        }
    }
}

/// `several_budgets` → `SeveralBudgets`.
fn camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The plan in a few numbers and lines.
pub fn summarize(plan: &Plan) -> PlanSummary {
    use kdrain::{Action, BudgetVerdict};
    let pods = plan.nodes.iter().flat_map(|n| &n.pods);
    let evictions = pods
        .clone()
        .filter(|p| matches!(p.action, Action::Evict | Action::Delete))
        .count() as u32;
    let skipped = pods.clone().filter(|p| p.action == Action::Skip).count() as u32;
    let refused_pods = pods
        .filter(|p| p.action == Action::Refuse)
        .map(|p| format!("{}/{}: {}", p.namespace, p.name, p.reason))
        .collect();
    let budgets = plan
        .budgets
        .iter()
        .map(|b| {
            let (verdict, reason) = match &b.verdict {
                BudgetVerdict::Passes => ("Passes", None),
                BudgetVerdict::Waits { reason } => ("Waits", Some(reason.clone())),
                BudgetVerdict::Never { reason } => ("Never", Some(reason.clone())),
                _ => ("Unknown", None),
            };
            BudgetSummary {
                name: format!("{}/{}", b.namespace, b.name),
                verdict: verdict.into(),
                reason,
                disruptions_allowed: b.disruptions_allowed,
                pods: b.pods.len() as u32,
            }
        })
        .collect();
    PlanSummary {
        evictions,
        skipped,
        budgets,
        refused_pods,
        warnings: plan.warnings.clone(),
        worst_case_seconds: plan.worst_case_seconds.ceil() as i64,
    }
}

#[cfg(test)]
#[path = "progress_tests.rs"]
mod tests;
