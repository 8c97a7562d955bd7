//! One pass of a NodeDrain's stage: the status being built (phase, conditions, progress), its
//! paced writes, and the Events and metrics that go with each step.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kdrain::{DrainError, Event, Stamped};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use tokio::time::Instant;

use crate::context::Ctx;
use crate::nodes::{self, Cordoned};
use crate::progress::Progress;
use crate::recorder::{BudgetBlocks, drain_ref, node_ref};
use crate::stage::{self, Throttle, set_condition};
use crate::types::{NodeDrain, NodeDrainStatus, OnFailure, Phase, Stage};
use crate::worker::StepError;

/// The status keys a write always carries, so that a value that went away is cleared (a merge
/// patch leaves absent keys as they were).
const STATUS_KEYS: [&str; 12] = [
    "observedGeneration",
    "phase",
    "conditions",
    "nodes",
    "blockers",
    "moreBlockers",
    "plan",
    "startTime",
    "completionTime",
    "nodesSummary",
    "podsSummary",
    "blockedBy",
];

/// One pass of a stage.
pub(crate) struct Run {
    ctx: Arc<Ctx>,
    nd: NodeDrain,
    name: String,
    generation: Option<i64>,
    status: NodeDrainStatus,
    progress: Option<Progress>,
    throttle: Throttle,
    blocks: BudgetBlocks,
    answers: Answers,
    started: Instant,
}

impl Run {
    pub(crate) fn new(ctx: Arc<Ctx>, nd: &NodeDrain) -> Self {
        let generation = nd.metadata.generation;
        // a restart, a new leader or a new stage goes on from the status as it is
        let status = nd.status.clone().unwrap_or_default();
        Run {
            ctx,
            name: nd.name_any(),
            nd: nd.clone(),
            generation,
            status,
            progress: None,
            throttle: Throttle::default(),
            blocks: BudgetBlocks::default(),
            answers: Answers::default(),
            started: Instant::now(),
        }
    }

    fn now() -> jiff::Timestamp {
        jiff::Timestamp::now()
    }

    fn condition(&mut self, type_: &str, ok: bool, reason: &str, message: impl Into<String>) {
        set_condition(
            &mut self.status.conditions,
            type_,
            ok,
            reason,
            message,
            self.generation,
            Self::now(),
        );
    }

    async fn event(&self, warning: bool, reason: &str, action: &str, note: String) {
        self.ctx
            .events
            .publish(&drain_ref(&self.nd), None, warning, reason, action, note)
            .await;
    }

    /// Writes the status when it changed (at most once a second unless `urgent`).
    pub(crate) async fn write(&mut self, urgent: bool) {
        if let Some(p) = &self.progress {
            p.fill(&mut self.status);
            if self.status.phase == Some(Phase::Draining) {
                let (reason, message) = draining_condition(p);
                self.condition("Drained", false, reason, message);
            }
        }
        self.status.observed_generation = self.generation;
        let mut value = serde_json::to_value(&self.status).expect("a status serializes");
        let obj = value.as_object_mut().expect("a status is an object");
        for key in STATUS_KEYS {
            obj.entry(key).or_insert(serde_json::Value::Null);
        }
        let now = Instant::now();
        if !self.throttle.due(&value, urgent, now) {
            return;
        }
        let api: Api<NodeDrain> = Api::all(self.ctx.client.clone());
        let body = serde_json::json!({ "status": value });
        let attempts = if urgent { 3 } else { 1 };
        for attempt in 1..=attempts {
            match api
                .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&body))
                .await
            {
                Ok(_) => {
                    self.throttle.wrote(value, now);
                    return;
                }
                Err(e) if attempt == attempts => {
                    tracing::warn!(nodedrain = %self.name, "cannot write the status: {e}");
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
            }
        }
    }

    /// Moves the phase forward along the stage's path (a new pass of a stage plans and cordons
    /// again without going back), or to a final phase.
    fn advance(&mut self, phase: Phase) {
        let rank = |p: Phase| stage::path(Stage::Drain).iter().position(|q| *q == p);
        let current = self.status.phase;
        let forward = match (current.and_then(rank), rank(phase)) {
            (Some(now), Some(new)) => new > now,
            _ => true,
        };
        if forward || current.is_some_and(Phase::is_final) {
            self.set_phase(phase);
        }
    }

    fn set_phase(&mut self, phase: Phase) {
        self.status.phase = Some(phase);
        if phase.is_final() || phase == stage::goal(self.nd.spec.stage) {
            self.status.completion_time = Some(Time(Self::now()));
        } else {
            self.status.completion_time = None;
        }
    }

    /// The spec cannot be carried out: `Refused`, nothing changed, one line saying why.
    pub(crate) async fn refuse(&mut self, reason: &str, message: String) -> Result<(), StepError> {
        self.ctx.claims.release(&self.name);
        self.status.start_time.get_or_insert(Time(Self::now()));
        self.set_phase(Phase::Refused);
        self.condition("Planned", false, reason, message.clone());
        self.write(true).await;
        self.ctx.metrics.drain_ended("refused", None);
        self.event(true, reason, "Plan", message).await;
        Ok(())
    }

    /// Stage Complete: every node this NodeDrain cordoned is made schedulable again.
    pub(crate) async fn complete(&mut self) -> Result<(), StepError> {
        let restored = nodes::uncordon_own(&self.ctx.client, &self.name).await?;
        self.ctx.claims.release(&self.name);
        for node in self.status.nodes.iter_mut() {
            if restored.contains(&node.name) {
                node.phase = "Uncordoned".into();
            }
        }
        for n in &restored {
            self.ctx
                .events
                .publish(
                    &node_ref(n),
                    Some(drain_ref(&self.nd)),
                    false,
                    "Uncordoned",
                    "Uncordon",
                    format!(
                        "NodeDrain {} completed: the node is schedulable again",
                        self.name
                    ),
                )
                .await;
        }
        let message = if restored.is_empty() {
            "no node was cordoned by this NodeDrain; nothing to uncordon".to_string()
        } else {
            format!(
                "uncordoned {} (cordoned by this NodeDrain); nodes cordoned by others are left as they were",
                restored.join(", ")
            )
        };
        self.condition("Cordoned", false, "Uncordoned", message.clone());
        self.status.blockers.clear();
        self.status.more_blockers = None;
        self.status.blocked_by = None;
        self.set_phase(Phase::Completed);
        self.write(true).await;
        self.ctx.metrics.drain_ended("completed", None);
        self.event(false, "Completed", "Uncordon", message).await;
        Ok(())
    }

    /// The nodes are resolved and claimed.
    pub(crate) async fn start(&mut self, nodes: &[String]) {
        let mut progress = Progress::new(nodes);
        if self.status.observed_generation == self.generation
            && self.status.phase == Some(Phase::Draining)
        {
            progress.carry(&self.status.nodes);
        }
        self.progress = Some(progress);
        self.status.start_time.get_or_insert(Time(Self::now()));
        self.status.completion_time = None;
        if self.status.phase.is_none() || self.status.phase.is_some_and(Phase::is_final) {
            self.status.phase = Some(Phase::Pending);
        }
        self.write(true).await;
    }

    /// Takes one library event in: status, metrics, Events.
    pub(crate) async fn observe(&mut self, ev: &Stamped) {
        if let Some(p) = &mut self.progress {
            p.observe(ev);
        }
        for code in self.answers.observe(&ev.event) {
            self.ctx.metrics.eviction(code);
        }
        match &ev.event {
            Event::Blocked {
                node,
                pod,
                waits_for,
                budget: Some(budget),
                healthy,
                cause,
                ..
            } if waits_for.is_budget() => {
                let full = format!("{}/{budget}", pod.namespace);
                let (needs, has) = (healthy.map(|h| h.needs), healthy.map(|h| h.has));
                if self.blocks.first(&full, needs, has) {
                    let note = format!("pod {pod} on node {node} waits: {cause}");
                    // a new Event per budget and needs/has (the recorder would fold them into
                    // the first one's note)
                    crate::recorder::Events::new(
                        self.ctx.client.clone(),
                        self.ctx.instance.clone(),
                    )
                    .publish(
                        &drain_ref(&self.nd),
                        None,
                        true,
                        "BlockedByBudget",
                        "Evict",
                        note,
                    )
                    .await;
                }
            }
            Event::NodeDrained { node, .. } => {
                self.ctx
                    .events
                    .publish(
                        &node_ref(node),
                        Some(drain_ref(&self.nd)),
                        false,
                        "Drained",
                        "Drain",
                        format!("every target pod is gone (NodeDrain {})", self.name),
                    )
                    .await;
            }
            Event::NodeFailed { node, error, .. } => {
                self.ctx
                    .events
                    .publish(
                        &node_ref(node),
                        Some(drain_ref(&self.nd)),
                        true,
                        "DrainFailed",
                        "Drain",
                        error.clone(),
                    )
                    .await;
            }
            Event::WatchRefused {
                resource,
                error,
                fallback,
            } => {
                // the drain carries on without it (said once per drain and resource)
                let note = format!("cannot watch {resource}: {error}; {fallback}");
                tracing::warn!(nodedrain = %self.name, "{note}");
                self.event(true, "WatchRefused", "Drain", note).await;
            }
            _ => {}
        }
        if let Some(p) = &self.progress {
            let mut by_cause: HashMap<String, i64> = HashMap::new();
            for b in p.waiting() {
                *by_cause.entry(b.cause.clone()).or_default() += 1;
            }
            self.ctx.metrics.set_blocked(&self.name, by_cause);
        }
    }

    /// The plan can complete.
    pub(crate) async fn planned(&mut self, plan: &kdrain::Plan) {
        let budgets = plan.budgets.len();
        let message = format!(
            "{} pods to evict on {} nodes under {budgets} budget{}; worst case {:.0}s",
            plan.evictions(),
            plan.nodes.len(),
            if budgets == 1 { "" } else { "s" },
            plan.worst_case_seconds
        );
        self.condition("Planned", true, "Planned", message.clone());
        self.advance(Phase::Planned);
        self.write(true).await;
        self.event(false, "Planned", "Plan", message).await;
    }

    /// The nodes are cordoned.
    pub(crate) async fn cordoned(&mut self, c: &Cordoned) {
        if let Some(p) = &mut self.progress {
            for n in c.ours.iter().chain(&c.already) {
                p.set_node_phase(n, "Cordoned");
            }
        }
        let mut message = format!("cordoned {}", c.ours.join(", "));
        if c.ours.is_empty() {
            message = "no node needed cordoning".into();
        }
        if !c.already.is_empty() {
            message.push_str(&format!(
                "; {} already unschedulable, left as found (never uncordoned by this NodeDrain)",
                c.already.join(", ")
            ));
        }
        self.condition("Cordoned", true, "Cordoned", message);
        self.advance(Phase::Cordoned);
        self.write(true).await;
        for n in &c.ours {
            self.ctx
                .events
                .publish(
                    &node_ref(n),
                    Some(drain_ref(&self.nd)),
                    false,
                    "Cordoned",
                    "Cordon",
                    format!("cordoned by NodeDrain {}", self.name),
                )
                .await;
        }
    }

    /// The end of stage Idle or Cordon.
    pub(crate) async fn finish(&mut self, phase: Phase) -> Result<(), StepError> {
        self.set_phase(phase);
        self.status.completion_time = Some(Time(Self::now()));
        self.write(true).await;
        Ok(())
    }

    /// `--max-concurrent-nodes` nodes are draining already.
    pub(crate) async fn waiting_for_capacity(&mut self, max: usize) {
        self.condition(
            "Drained",
            false,
            "WaitingForCapacity",
            format!(
                "waiting: {max} nodes are draining already (the controller's --max-concurrent-nodes); this drain starts when one ends"
            ),
        );
        self.write(true).await;
    }

    /// Evictions begin.
    pub(crate) async fn draining(&mut self) {
        self.started = Instant::now();
        self.condition("Drained", false, "Draining", "evicting pods");

        self.advance(Phase::Draining);
        self.write(true).await;
        self.event(
            false,
            "DrainStarted",
            "Drain",
            format!("draining {}", self.nodes_text()),
        )
        .await;
    }

    fn nodes_text(&self) -> String {
        self.status
            .nodes
            .iter()
            .map(|n| n.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The object asked for other work mid-drain: the drain stopped; the next step takes over.
    pub(crate) async fn interrupted(&mut self) {
        self.ctx.metrics.set_blocked(&self.name, HashMap::new());
        self.write(true).await;
    }

    /// Every target pod is gone.
    pub(crate) async fn drained(&mut self, seconds: f64) -> Result<(), StepError> {
        let message = format!(
            "every target pod is gone from {} in {seconds:.0}s; set stage Complete to uncordon",
            self.nodes_text()
        );
        self.condition("Drained", true, "Drained", message.clone());
        self.set_phase(Phase::Drained);
        self.write(true).await;
        self.ctx.metrics.set_blocked(&self.name, HashMap::new());
        self.ctx
            .metrics
            .drain_ended("drained", Some(self.started.elapsed().as_secs_f64()));
        self.event(false, "Drained", "Drain", message).await;
        Ok(())
    }

    /// The drain ended with pods left or an error.
    pub(crate) async fn failed(
        &mut self,
        e: &DrainError,
        on_failure: OnFailure,
    ) -> Result<(), StepError> {
        let reason = match e {
            DrainError::Incomplete { report }
                if report.pending().iter().any(|p| p.blocked_by.is_some()) =>
            {
                "BlockedTimeout"
            }
            DrainError::Incomplete { .. } => "PodsLeft",
            DrainError::PlanRefused { .. } => "PlanRefused",
            DrainError::Forbidden { .. } => "Forbidden",
            _ => "Error",
        };
        let what = one_line(&e.to_string());
        let after = match on_failure {
            OnFailure::KeepCordoned => {
                "the nodes stay cordoned (onFailure KeepCordoned); change the spec (e.g. timeout) to try again, or set stage Complete to uncordon".to_string()
            }
            OnFailure::Uncordon => match nodes::uncordon_own(&self.ctx.client, &self.name).await {
                Ok(restored) => {
                    for node in self.status.nodes.iter_mut() {
                        if restored.contains(&node.name) {
                            node.phase = "Uncordoned".into();
                        }
                    }
                    format!("uncordoned {} (onFailure Uncordon)", restored.join(", "))
                }
                Err(err) => format!("uncordoning failed ({err}); set stage Complete to try again"),
            },
        };
        let message = format!("{what}; {after}");
        self.condition("Drained", false, reason, message.clone());
        self.set_phase(Phase::Failed);
        self.write(true).await;
        self.ctx.metrics.set_blocked(&self.name, HashMap::new());
        self.ctx
            .metrics
            .drain_ended("failed", Some(self.started.elapsed().as_secs_f64()));
        self.event(true, "DrainFailed", "Drain", message).await;
        Ok(())
    }
}

/// The `Drained` condition while pods are evicted: how far, and what holds it back.
fn draining_condition(p: &Progress) -> (&'static str, String) {
    let (gone, total) = p.pods();
    let waiting = p.waiting();
    let Some(blocked_by) = p.blocked_by() else {
        return ("Draining", format!("{gone}/{total} pods gone; evicting"));
    };
    let reason = if waiting.iter().any(|b| b.budget.is_some()) {
        "BlockedByBudget"
    } else {
        "Waiting"
    };
    let held = waiting.iter().filter(|b| b.held_by_kdrain).count();
    let how = if held == waiting.len() {
        "kdrain holds them back until the budget allows a disruption (no request sent)"
    } else {
        "evictions are retried the moment the budget allows one"
    };
    (
        reason,
        format!("{gone}/{total} pods gone; waiting for {blocked_by}; {how}"),
    )
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Turns the library's events into eviction answers by HTTP code. The library reports a refusal
/// only when what a pod waits for changes, so a refusal for the same cause shows as the pod's
/// next request going out while the previous one was neither accepted nor reported.
#[derive(Debug, Default)]
pub(crate) struct Answers {
    /// By pod UID: a request is out, and the code of the pod's last refusal.
    pods: HashMap<String, (bool, Option<&'static str>)>,
}

impl Answers {
    /// The answer codes `ev` reveals.
    pub(crate) fn observe(&mut self, ev: &Event) -> Vec<&'static str> {
        use kdrain::WaitsFor;
        let code_of = |w: WaitsFor| match w {
            WaitsFor::Budget | WaitsFor::Throttling => Some("429"),
            WaitsFor::SeveralBudgets => Some("500"),
            WaitsFor::NamespaceTermination => Some("403"),
            WaitsFor::Error => Some("error"),
            WaitsFor::Protection => None,
            _ => None,
        };
        match ev {
            Event::EvictionSent { pod, .. } | Event::DeleteSent { pod, .. } => {
                let slot = self.pods.entry(pod.uid.clone()).or_default();
                let unreported = slot.0.then_some(slot.1).flatten();
                slot.0 = true;
                unreported.into_iter().collect()
            }
            Event::Blocked {
                pod,
                waits_for,
                message,
                ..
            } => {
                let held = message.contains("no request sent");
                let slot = self.pods.entry(pod.uid.clone()).or_default();
                let code = code_of(*waits_for);
                slot.1 = code;
                if slot.0 && !held {
                    slot.0 = false;
                    code.into_iter().collect()
                } else {
                    vec![]
                }
            }
            Event::Evicted { pod, .. } => {
                self.pods.remove(&pod.uid);
                vec!["201"]
            }
            Event::Gone { pod, .. } | Event::PodFailed { pod, .. } => {
                self.pods.remove(&pod.uid);
                vec![]
            }
            _ => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kdrain::{PodRef, WaitsFor};

    fn pod() -> PodRef {
        PodRef {
            namespace: "shop".into(),
            name: "web-1".into(),
            uid: "u1".into(),
        }
    }

    fn sent() -> Event {
        Event::EvictionSent {
            node: "n1".into(),
            pod: pod(),
            attempt: 1,
            dry_run: kdrain::DryRun::None,
        }
    }

    fn blocked(held: bool) -> Event {
        Event::Blocked {
            node: "n1".into(),
            pod: pod(),
            waits_for: WaitsFor::Budget,
            budget: Some("web".into()),
            healthy: None,
            cause: "The disruption budget web needs 2 healthy pods and has 2 currently".into(),
            message: if held {
                "no request sent".into()
            } else {
                "Cannot evict pod".into()
            },
            retry_in_seconds: 5.0,
            since: jiff::Timestamp::now(),
        }
    }

    #[test]
    fn refusals_repeated_without_a_new_event_are_counted_on_the_next_request() {
        let mut a = Answers::default();
        let mut codes = Vec::new();
        for ev in [
            blocked(true), // held back: no request, no answer
            sent(),
            blocked(false), // the first 429
            sent(),         // the second request: ...
            sent(),         // ... was refused the same way (no event): a 429
            Event::Evicted {
                node: "n1".into(),
                pod: pod(),
            },
            Event::Gone {
                node: "n1".into(),
                pod: pod(),
            },
        ] {
            codes.extend(a.observe(&ev));
        }
        assert_eq!(codes, ["429", "429", "201"]);
        assert!(a.pods.is_empty());
    }
}
