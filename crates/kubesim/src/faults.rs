//! Fault injection: per verb/resource error rates (500, 503, 429 + Retry-After as API priority
//! and fairness sends it), added latency and watch streams cut after N seconds.

use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// One fault rule (the scenario `faults` entries and `PUT /kubesim/faults` use this shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    /// Kubernetes verb to match (`create`, `get`, ...); absent or `*` matches all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
    /// `pods`, `pods/eviction`, `pods/*`; absent or `*` matches all resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// HTTP status to answer with (500, 503, 429, 504, ...); absent = no error.
    /// `0` resets the connection instead of answering (the client sees an incomplete response).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Probability in [0, 1] that the rule fires on a matching request (default 1).
    #[serde(default = "one")]
    pub probability: f64,
    /// Retry-After for 429/503 answers (429 defaults to 1 s, like priority and fairness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
    /// Added latency in milliseconds before the request is served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Added latency in milliseconds after the request is served, before the answer goes
    /// out: the change is already visible (to watches, to other clients) while the caller
    /// still waits, as when a response is slow on the network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_latency_ms: Option<u64>,
    /// Watch streams matched by this rule end after this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_cut_seconds: Option<f64>,
    /// Watch streams matched by this rule deliver each change this many milliseconds after it
    /// happened (in order, bookmarks included), as a lagging watch cache or a slow network does:
    /// other clients, other watches and the answers to requests already see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_latency_ms: Option<u64>,
}

fn one() -> f64 {
    1.0
}

impl Default for Fault {
    /// A rule matching every request, always firing, doing nothing until a field is set.
    fn default() -> Self {
        Fault {
            verb: None,
            resource: None,
            status: None,
            probability: 1.0,
            retry_after_seconds: None,
            latency_ms: None,
            answer_latency_ms: None,
            watch_cut_seconds: None,
            event_latency_ms: None,
        }
    }
}

impl Fault {
    fn matches(&self, verb: &str, resource: &str, sub: &str) -> bool {
        let verb_ok = self.verb.as_deref().is_none_or(|v| v == "*" || v == verb);
        let res_ok = match self.resource.as_deref() {
            None | Some("*") => true,
            Some(r) => match r.split_once('/') {
                Some((res, "*")) => res == resource,
                Some((res, s)) => res == resource && s == sub,
                None => r == resource && sub.is_empty(),
            },
        };
        verb_ok && res_ok
    }

    fn make_error(&self, status: u16) -> ApiError {
        match status {
            429 => ApiError::new(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
            )
            .with_retry_after(self.retry_after_seconds.unwrap_or(1)),
            503 => {
                let e = ApiError::new(
                    503,
                    "ServiceUnavailable",
                    "the server is currently unable to handle the request (injected fault)",
                );
                match self.retry_after_seconds {
                    Some(s) => e.with_retry_after(s),
                    None => e,
                }
            }
            500 => ApiError::internal("injected fault"),
            504 => ApiError::new(
                504,
                "Timeout",
                "Timeout: request did not complete within the allowed duration (injected fault)",
            ),
            s => ApiError::new(s, "", format!("injected fault with status {s}")),
        }
    }
}

/// What the faults decided for one request.
#[derive(Debug, Default)]
pub struct Applied {
    /// Total added latency.
    pub latency_ms: Option<u64>,
    /// Total added latency after serving, before answering.
    pub answer_latency_ms: Option<u64>,
    /// Shortest watch cut.
    pub watch_cut_seconds: Option<f64>,
    /// Total delay of each watch event.
    pub event_latency_ms: Option<u64>,
    /// Break the connection.
    pub reset: bool,
    error: Option<ApiError>,
}

impl Applied {
    /// The error to answer with, if any rule fired with a status.
    pub fn error(&self) -> Option<ApiError> {
        self.error.clone()
    }
}

/// The current fault rules, changeable at run time.
#[derive(Default)]
pub struct FaultSet {
    rules: RwLock<Vec<Fault>>,
}

impl FaultSet {
    /// Replace all rules.
    pub fn set(&self, faults: Vec<Fault>) {
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    /// The current rules.
    pub fn get(&self) -> Vec<Fault> {
        self.rules.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Roll the dice for one request.
    pub fn pick(&self, verb: &str, resource: &str, sub: &str) -> Option<Applied> {
        let rules = self.rules.read().unwrap_or_else(|p| p.into_inner());
        if rules.is_empty() {
            return None;
        }
        let mut out = Applied::default();
        let mut any = false;
        for f in rules.iter().filter(|f| f.matches(verb, resource, sub)) {
            if fastrand::f64() >= f.probability {
                continue;
            }
            any = true;
            if let Some(ms) = f.latency_ms {
                out.latency_ms = Some(out.latency_ms.unwrap_or(0).saturating_add(ms));
            }
            if let Some(ms) = f.answer_latency_ms {
                out.answer_latency_ms = Some(out.answer_latency_ms.unwrap_or(0).saturating_add(ms));
            }
            if let Some(ms) = f.event_latency_ms {
                out.event_latency_ms = Some(out.event_latency_ms.unwrap_or(0).saturating_add(ms));
            }
            out.reset |= f.status == Some(0);
            if let Some(c) = f.watch_cut_seconds {
                out.watch_cut_seconds = Some(out.watch_cut_seconds.map_or(c, |o: f64| o.min(c)));
            }
            if out.error.is_none()
                && let Some(s) = f.status.filter(|s| *s != 0)
            {
                out.error = Some(f.make_error(s));
            }
        }
        any.then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(verb: &str, resource: &str) -> Fault {
        Fault {
            verb: Some(verb.into()),
            resource: Some(resource.into()),
            status: Some(429),
            probability: 1.0,
            retry_after_seconds: None,
            latency_ms: None,
            answer_latency_ms: None,
            watch_cut_seconds: None,
            event_latency_ms: None,
        }
    }

    #[test]
    fn matching_by_verb_and_subresource() {
        let f = fault("create", "pods/eviction");
        assert!(f.matches("create", "pods", "eviction"));
        assert!(!f.matches("create", "pods", ""));
        assert!(!f.matches("get", "pods", "eviction"));
        assert!(fault("*", "pods/*").matches("patch", "pods", "status"));
        assert!(fault("get", "pods").matches("get", "pods", ""));
    }

    #[test]
    fn latencies_add_up_without_overflowing() {
        let set = FaultSet::default();
        let slow = Fault {
            status: None,
            latency_ms: Some(u64::MAX),
            answer_latency_ms: None,
            ..fault("get", "pods")
        };
        set.set(vec![slow.clone(), slow]);
        let applied = set.pick("get", "pods", "").unwrap();
        assert_eq!(applied.latency_ms, Some(u64::MAX));
    }

    #[test]
    fn apf_429_carries_retry_after() {
        let set = FaultSet::default();
        set.set(vec![fault("create", "pods/eviction")]);
        let e = set
            .pick("create", "pods", "eviction")
            .unwrap()
            .error()
            .unwrap();
        assert_eq!((e.code, e.retry_after()), (429, Some(1)));
        assert!(set.pick("get", "pods", "").is_none());
    }
}
