//! Pure bookkeeping for B5, fed by the observer's samples (times in seconds since the drain
//! started): how long pods stayed Pending, and how long budgets held back pods that had to leave.

use std::collections::BTreeMap;

/// What is known about one pod created during the run.
#[derive(Debug, Clone, PartialEq)]
struct PodLife {
    /// First sample that saw it.
    first_seen: f64,
    /// The scheduler said it fits nowhere (`PodScheduled=False`) at some sample.
    unschedulable: bool,
    /// First sample that saw it bound to a node.
    bound_at: Option<f64>,
    /// First sample that no longer saw it, when it was never bound.
    gone_at: Option<f64>,
    /// Its start-up time (the workload's readySeconds).
    startup: f64,
    /// Its name and the scheduler's last message about it, for the report.
    name: String,
    message: String,
}

/// Pending times of the pods created during a run.
///
/// A pod counts as having gone Pending when the scheduler reported it could not be placed
/// (`PodScheduled=False`, reason Unschedulable); its Pending time runs from the first sample that
/// saw it (its creation, to one sample period) to the first sample that saw it bound, or that no
/// longer saw it, or the end of the run when neither happened. Pods bound at once are not counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PendingBook {
    pods: BTreeMap<String, PodLife>,
}

/// The Pending figures of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PendingSummary {
    /// Pods that went Pending.
    pub pods: usize,
    /// Pods still Pending at the end.
    pub left_pending: usize,
    /// The longest Pending time, in seconds.
    pub longest: f64,
    /// All Pending times added up, in seconds.
    pub total: f64,
    /// Pods Pending longer than their own start-up time.
    pub over_startup: usize,
    /// The longest-Pending pods (at most [`WORST`]), longest first.
    pub worst: Vec<PendingPod>,
}

/// How many of the longest-Pending pods the summary names.
pub const WORST: usize = 5;

/// One pod that went Pending.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PendingPod {
    /// Its name.
    pub name: String,
    /// Seconds Pending.
    pub seconds: f64,
    /// Its start-up time.
    pub startup: f64,
    /// The scheduler's last message about it.
    pub message: String,
}

impl PendingBook {
    /// Records one sample of a pod.
    pub fn observe(&mut self, uid: &str, at: f64, bound: bool, unschedulable: bool, startup: f64) {
        let life = self.pods.entry(uid.to_string()).or_insert(PodLife {
            first_seen: at,
            unschedulable: false,
            bound_at: None,
            gone_at: None,
            startup,
            name: String::new(),
            message: String::new(),
        });
        if life.bound_at.is_some() || life.gone_at.is_some() {
            return;
        }
        if bound {
            life.bound_at = Some(at);
        } else if unschedulable {
            life.unschedulable = true;
        }
    }

    /// Records a pod's name and the scheduler's message about it (kept while it is unbound).
    pub fn note(&mut self, uid: &str, name: &str, message: &str) {
        if let Some(life) = self.pods.get_mut(uid)
            && life.bound_at.is_none()
            && life.gone_at.is_none()
        {
            life.name = name.to_string();
            if !message.is_empty() {
                life.message = message.to_string();
            }
        }
    }

    /// Marks every known, never-bound pod that `present` no longer reports as gone at `at`.
    pub fn forget_absent(&mut self, at: f64, present: impl Fn(&str) -> bool) {
        for (uid, life) in &mut self.pods {
            if life.bound_at.is_none() && life.gone_at.is_none() && !present(uid) {
                life.gone_at = Some(at);
            }
        }
    }

    /// The figures, counting pods still Pending up to `end`.
    pub fn summary(&self, end: f64) -> PendingSummary {
        let mut out = PendingSummary::default();
        for life in self.pods.values().filter(|l| l.unschedulable) {
            let until = life.bound_at.or(life.gone_at).unwrap_or(end);
            let seconds = (until - life.first_seen).max(0.0);
            out.pods += 1;
            if life.bound_at.is_none() && life.gone_at.is_none() {
                out.left_pending += 1;
            }
            out.longest = out.longest.max(seconds);
            out.total += seconds;
            if seconds > life.startup {
                out.over_startup += 1;
            }
            out.worst.push(PendingPod {
                name: life.name.clone(),
                seconds,
                startup: life.startup,
                message: life.message.clone(),
            });
        }
        out.worst
            .sort_by(|a, b| b.seconds.total_cmp(&a.seconds).then(a.name.cmp(&b.name)));
        out.worst.truncate(WORST);
        out
    }
}

/// Time during which a condition held, from samples: the interval up to a sample counts when the
/// condition held at the sample before it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlockedClock {
    last: Option<(f64, bool)>,
    total: f64,
}

impl BlockedClock {
    /// Records the condition at `at` (samples in time order).
    pub fn tick(&mut self, at: f64, blocked: bool) {
        if let Some((then, was)) = self.last
            && was
        {
            self.total += (at - then).max(0.0);
        }
        self.last = Some((at, blocked));
    }

    /// Seconds the condition held.
    pub fn total(&self) -> f64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_pod_bound_at_once_never_went_pending() {
        let mut book = PendingBook::default();
        book.observe("a", 1.0, true, false, 2.0);
        book.observe("a", 1.5, true, false, 2.0);
        book.note("a", "web-a", "ignored: it is bound");
        assert_eq!(book.summary(10.0), PendingSummary::default());
    }

    #[test]
    fn pending_runs_from_first_sight_to_binding() {
        let mut book = PendingBook::default();
        // Seen unscheduled at 2.0, told it fits nowhere at 2.05, bound at 5.0: 3 s, startup 1 s.
        book.observe("a", 2.0, false, false, 1.0);
        book.observe("a", 2.05, false, true, 1.0);
        book.note("a", "web-a", "0/3 nodes are available: 3 Insufficient cpu.");
        // An empty message keeps the last one.
        book.note("a", "web-a", "");
        book.observe("a", 5.0, true, false, 1.0);
        // Later samples change nothing.
        book.observe("a", 6.0, false, true, 1.0);
        // Pending 0.5 s, startup 2 s: within its start-up time.
        book.observe("b", 3.0, false, true, 2.0);
        book.observe("b", 3.5, true, false, 2.0);
        let s = book.summary(10.0);
        assert_eq!(s.worst.len(), 2);
        assert_eq!(s.worst[0].name, "web-a");
        assert_eq!(
            s.worst[0].message,
            "0/3 nodes are available: 3 Insufficient cpu."
        );
        assert!(close(s.worst[0].seconds, 3.0));
        assert_eq!(s.pods, 2);
        assert_eq!(s.left_pending, 0);
        assert!(close(s.longest, 3.0));
        assert!(close(s.total, 3.5));
        assert_eq!(s.over_startup, 1);
    }

    #[test]
    fn pods_still_pending_count_up_to_the_end() {
        let mut book = PendingBook::default();
        book.observe("a", 4.0, false, true, 3.0);
        book.observe("b", 1.0, false, true, 3.0);
        let s = book.summary(6.0);
        assert_eq!(s.pods, 2);
        assert_eq!(s.left_pending, 2);
        assert!(close(s.longest, 5.0));
        assert!(close(s.total, 7.0));
        assert_eq!(s.over_startup, 1);
    }

    #[test]
    fn a_pending_pod_that_disappears_stops_counting() {
        let mut book = PendingBook::default();
        book.observe("a", 1.0, false, true, 1.0);
        book.observe("b", 1.0, false, true, 1.0);
        book.forget_absent(1.5, |uid| uid == "b");
        // Seen again after it was gone: ignored.
        book.observe("a", 9.0, true, false, 1.0);
        let s = book.summary(4.0);
        assert_eq!(s.pods, 2);
        assert_eq!(s.left_pending, 1);
        assert!(close(s.total, 0.5 + 3.0));
        assert_eq!(s.over_startup, 1);
    }

    #[test]
    fn blocked_clock_adds_the_intervals_after_blocked_samples() {
        let mut clock = BlockedClock::default();
        for (at, blocked) in [
            (0.0, false),
            (1.0, true),
            (1.5, true),
            (2.0, false),
            (3.0, true),
            (3.25, false),
        ] {
            clock.tick(at, blocked);
        }
        // [1.0, 2.0) and [3.0, 3.25).
        assert!(close(clock.total(), 1.25));
        assert!(close(BlockedClock::default().total(), 0.0));
    }
}
