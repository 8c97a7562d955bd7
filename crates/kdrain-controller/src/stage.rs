//! What a NodeDrain's stage asks the controller to do, the phase that ends it, the conditions a
//! person reads, and the pace of status writes. All pure: the worker (`worker.rs`) acts on it.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use tokio::time::Instant;

use crate::types::{NodeDrainStatus, Phase, Stage};

/// The phase a stage ends in when all goes well.
pub fn goal(stage: Stage) -> Phase {
    match stage {
        Stage::Idle => Phase::Planned,
        Stage::Cordon => Phase::Cordoned,
        Stage::Drain => Phase::Drained,
        Stage::Complete => Phase::Completed,
    }
}

/// True when the status already shows the end of `stage` for `generation`: nothing to do. Any
/// other status (a new generation, a phase on the way, a controller restarted mid-drain) means
/// the stage's work runs (again); every step of it is idempotent.
pub fn settled(stage: Stage, generation: Option<i64>, status: Option<&NodeDrainStatus>) -> bool {
    let Some(s) = status else {
        return false;
    };
    if s.observed_generation != generation {
        return false;
    }
    match s.phase {
        Some(p) if p == goal(stage) => true,
        Some(Phase::Refused) | Some(Phase::Failed) => true,
        _ => false,
    }
}

/// The phases a stage passes through, in order (for the Events and the tests).
pub fn path(stage: Stage) -> &'static [Phase] {
    match stage {
        Stage::Idle => &[Phase::Pending, Phase::Planned],
        Stage::Cordon => &[Phase::Pending, Phase::Planned, Phase::Cordoned],
        Stage::Drain => &[
            Phase::Pending,
            Phase::Planned,
            Phase::Cordoned,
            Phase::Draining,
            Phase::Drained,
        ],
        Stage::Complete => &[Phase::Completed],
    }
}

/// Sets condition `type_` (keeping its transition time when its status does not change).
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    ok: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: jiff::Timestamp,
) {
    let status = if ok { "True" } else { "False" }.to_string();
    let message = message.into();
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status {
            c.last_transition_time = Time(now);
        }
        c.status = status;
        c.reason = reason.into();
        c.message = message;
        c.observed_generation = generation;
        return;
    }
    conditions.push(Condition {
        type_: type_.into(),
        status,
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: Time(now),
    });
}

/// The condition of type `type_`, if set.
pub fn condition<'a>(status: &'a NodeDrainStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

/// Status writes: only on change, and at most one per [`Throttle::EVERY`] unless the write is
/// urgent (a phase change, a final state).
#[derive(Debug, Default)]
pub struct Throttle {
    last_at: Option<Instant>,
    last: Option<serde_json::Value>,
}

impl Throttle {
    /// The shortest time between two ordinary writes of one object.
    pub const EVERY: Duration = Duration::from_secs(1);

    /// Whether `status` should be written now. `urgent` skips the pacing, never the change check.
    pub fn due(&self, status: &serde_json::Value, urgent: bool, now: Instant) -> bool {
        if self.last.as_ref() == Some(status) {
            return false;
        }
        urgent
            || self
                .last_at
                .is_none_or(|t| now.duration_since(t) >= Self::EVERY)
    }

    /// When an ordinary write held back now may go.
    pub fn next_at(&self) -> Option<Instant> {
        self.last_at.map(|t| t + Self::EVERY)
    }

    /// Records a write.
    pub fn wrote(&mut self, status: serde_json::Value, now: Instant) {
        self.last = Some(status);
        self.last_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(generation: i64, phase: Phase) -> NodeDrainStatus {
        NodeDrainStatus {
            observed_generation: Some(generation),
            phase: Some(phase),
            ..Default::default()
        }
    }

    #[test]
    fn a_stage_is_settled_only_at_its_goal_for_this_generation() {
        assert!(!settled(Stage::Drain, Some(1), None));
        assert!(!settled(
            Stage::Drain,
            Some(1),
            Some(&status(1, Phase::Draining))
        ));
        assert!(settled(
            Stage::Drain,
            Some(1),
            Some(&status(1, Phase::Drained))
        ));
        assert!(settled(
            Stage::Drain,
            Some(1),
            Some(&status(1, Phase::Failed))
        ));
        assert!(settled(
            Stage::Drain,
            Some(1),
            Some(&status(1, Phase::Refused))
        ));
        // the spec changed (e.g. stage Drain -> Complete): work again
        assert!(!settled(
            Stage::Complete,
            Some(2),
            Some(&status(1, Phase::Drained))
        ));
        assert!(settled(
            Stage::Complete,
            Some(2),
            Some(&status(2, Phase::Completed))
        ));
        assert!(settled(
            Stage::Idle,
            Some(1),
            Some(&status(1, Phase::Planned))
        ));
        assert!(!settled(
            Stage::Cordon,
            Some(1),
            Some(&status(1, Phase::Planned))
        ));
        assert!(settled(
            Stage::Cordon,
            Some(1),
            Some(&status(1, Phase::Cordoned))
        ));
    }

    #[test]
    fn each_stage_ends_at_the_last_phase_of_its_path() {
        for stage in [Stage::Idle, Stage::Cordon, Stage::Drain, Stage::Complete] {
            assert_eq!(path(stage).last(), Some(&goal(stage)));
        }
        assert!(
            !path(Stage::Idle).contains(&Phase::Cordoned),
            "Idle changes nothing"
        );
        assert!(!path(Stage::Cordon).contains(&Phase::Draining));
    }

    #[test]
    fn conditions_keep_their_transition_time_while_unchanged() {
        let mut c = Vec::new();
        let t0 = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let t1 = jiff::Timestamp::from_second(1_800_000_100).unwrap();
        set_condition(
            &mut c,
            "Drained",
            false,
            "Draining",
            "2 pods left",
            Some(1),
            t0,
        );
        set_condition(
            &mut c,
            "Drained",
            false,
            "BlockedByBudget",
            "budget web",
            Some(1),
            t1,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].last_transition_time, Time(t0));
        assert_eq!(c[0].reason, "BlockedByBudget");
        set_condition(
            &mut c,
            "Drained",
            true,
            "Drained",
            "every pod is gone",
            Some(1),
            t1,
        );
        assert_eq!(c[0].last_transition_time, Time(t1));
        assert_eq!(c[0].status, "True");
    }

    #[test]
    fn status_writes_happen_on_change_at_most_once_a_second() {
        let t0 = Instant::now();
        let mut th = Throttle::default();
        let a = serde_json::json!({"phase": "Draining", "podsSummary": "0/3"});
        let b = serde_json::json!({"phase": "Draining", "podsSummary": "1/3"});
        let c = serde_json::json!({"phase": "Drained", "podsSummary": "3/3"});
        assert!(th.due(&a, false, t0));
        th.wrote(a.clone(), t0);
        assert!(
            !th.due(&a, false, t0 + Duration::from_secs(5)),
            "unchanged: no write"
        );
        assert!(
            !th.due(&b, false, t0 + Duration::from_millis(300)),
            "too soon"
        );
        assert_eq!(th.next_at(), Some(t0 + Throttle::EVERY));
        assert!(th.due(&b, false, t0 + Duration::from_millis(1000)));
        assert!(
            th.due(&c, true, t0 + Duration::from_millis(10)),
            "urgent goes at once"
        );
        th.wrote(c.clone(), t0 + Duration::from_millis(10));
        assert!(
            !th.due(&c, true, t0 + Duration::from_millis(20)),
            "urgent but unchanged"
        );
    }
}
