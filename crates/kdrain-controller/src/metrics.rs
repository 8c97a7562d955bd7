//! The controller's Prometheus metrics, all prefixed `kdrain_`:
//! - `kdrain_drains_total{result}`: NodeDrains ended, by result (`drained`, `failed`, `refused`,
//!   `completed`);
//! - `kdrain_evictions_total{code}`: eviction answers by HTTP code as the library reports them
//!   (`201` accepted; `429` refused by a budget or throttled; `500` several budgets; `403`
//!   terminating namespace; `error` anything else);
//! - `kdrain_blocked_pods{cause}`: pods waiting now, over every NodeDrain, by cause;
//! - `kdrain_drain_duration_seconds`: how long drains took from their start to their end;
//! - `kdrain_leader`: 1 while this instance is the leader;
//! - `kdrain_active_drains`: NodeDrains whose stage is being carried out (a Drained one
//!   resting until its stage changes or it is deleted does not count).

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabel {
    cause: String,
}

/// Every metric of the controller, and its registry.
pub struct Metrics {
    registry: Registry,
    drains: Family<ResultLabel, Counter>,
    evictions: Family<CodeLabel, Counter>,
    blocked: Family<CauseLabel, Gauge>,
    duration: Histogram,
    leader: Gauge,
    active: Gauge,
    /// Each drain's waiting pods by cause, summed into `blocked`.
    blocked_by_drain: Mutex<HashMap<String, HashMap<String, i64>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kdrain");
        let drains = Family::<ResultLabel, Counter>::default();
        let evictions = Family::<CodeLabel, Counter>::default();
        let blocked = Family::<CauseLabel, Gauge>::default();
        // 1 s to about 4.5 h
        let duration = Histogram::new(exponential_buckets(1.0, 2.0, 15));
        let leader: Gauge = Gauge::default();
        let active: Gauge = Gauge::default();
        registry.register("drains", "NodeDrains ended, by result", drains.clone());
        registry.register(
            "evictions",
            "Eviction answers, by HTTP code (201 accepted, 429 budget or throttled, 500 several budgets, 403 terminating namespace)",
            evictions.clone(),
        );
        registry.register(
            "blocked_pods",
            "Pods waiting now, by cause",
            blocked.clone(),
        );
        registry.register(
            "drain_duration_seconds",
            "Time from a drain's start to its end",
            duration.clone(),
        );
        registry.register("leader", "1 while this instance leads", leader.clone());
        registry.register(
            "active_drains",
            "NodeDrains whose stage is being carried out (not those resting in the phase it ended in)",
            active.clone(),
        );
        Metrics {
            registry,
            drains,
            evictions,
            blocked,
            duration,
            leader,
            active,
            blocked_by_drain: Mutex::default(),
        }
    }

    /// The metrics in Prometheus' text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// A NodeDrain ended with `result` after `seconds` (drains only: `None` for others).
    pub fn drain_ended(&self, result: &str, seconds: Option<f64>) {
        self.drains
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
        if let Some(s) = seconds {
            self.duration.observe(s);
        }
    }

    /// An eviction was answered with `code`.
    pub fn eviction(&self, code: &str) {
        self.evictions
            .get_or_create(&CodeLabel { code: code.into() })
            .inc();
    }

    /// NodeDrain `drain` now has these waiting pods by cause (empty when it stops).
    pub fn set_blocked(&self, drain: &str, by_cause: HashMap<String, i64>) {
        let mut all = self.blocked_by_drain.lock().expect("metrics lock");
        if by_cause.is_empty() {
            all.remove(drain);
        } else {
            all.insert(drain.to_string(), by_cause);
        }
        let mut sums: HashMap<String, i64> = HashMap::new();
        for per in all.values() {
            for (cause, n) in per {
                *sums.entry(cause.clone()).or_default() += n;
            }
        }
        // causes seen before and now absent go to 0
        for cause in [
            "Budget",
            "SeveralBudgets",
            "Protection",
            "Throttling",
            "NamespaceTermination",
            "Error",
            "Room",
        ] {
            sums.entry(cause.to_string()).or_default();
        }
        for (cause, n) in sums {
            self.blocked.get_or_create(&CauseLabel { cause }).set(n);
        }
    }

    /// This instance leads (or not).
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// A drain started (+1) or stopped (-1) being worked on.
    pub fn active(&self, delta: i64) {
        self.active.inc_by(delta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix_and_values_add_up() {
        let m = Metrics::new();
        m.drain_ended("drained", Some(12.0));
        m.drain_ended("refused", None);
        m.eviction("201");
        m.eviction("201");
        m.eviction("429");
        m.set_blocked("a", HashMap::from([("Budget".to_string(), 2)]));
        m.set_blocked("b", HashMap::from([("Budget".to_string(), 1)]));
        m.set_leader(true);
        let text = m.encode();
        for line in [
            "kdrain_drains_total{result=\"drained\"} 1",
            "kdrain_drains_total{result=\"refused\"} 1",
            "kdrain_evictions_total{code=\"201\"} 2",
            "kdrain_evictions_total{code=\"429\"} 1",
            "kdrain_blocked_pods{cause=\"Budget\"} 3",
            "kdrain_drain_duration_seconds_count 1",
            "kdrain_drain_duration_seconds_sum 12.0",
            "kdrain_leader 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        m.set_blocked("a", HashMap::new());
        assert!(
            m.encode()
                .lines()
                .any(|l| l == "kdrain_blocked_pods{cause=\"Budget\"} 1")
        );
        m.set_blocked("b", HashMap::new());
        assert!(
            m.encode()
                .lines()
                .any(|l| l == "kdrain_blocked_pods{cause=\"Budget\"} 0")
        );
    }
}
