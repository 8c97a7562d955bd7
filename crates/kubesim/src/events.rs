//! core/v1 Events written by the simulated controllers, correlated like client-go's recorder
//! (`tools/record/events_cache.go`): identical events within the cache raise `count` and
//! `lastTimestamp` of the first one; from the 10th distinct message with the same source,
//! object, type and reason within 10 minutes the messages are combined into one event
//! ("(combined from similar events): ..."); a token bucket per source and object (burst 25, one
//! token per 300 s) drops the rest, as the real spam filter does.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::api::prepare_create;
use crate::meta;
use crate::resources::{EVENTS, ResId};
use crate::store::State;

const MAX_EVENTS: usize = 10;
const AGGREGATE_INTERVAL: Duration = Duration::from_secs(600);
const SPAM_BURST: f64 = 25.0;
const SPAM_QPS: f64 = 1.0 / 300.0;
/// Entries kept per cache before it is cleared (client-go keeps an LRU of 4096).
const CACHE_ENTRIES: usize = 4096;

/// Who reports an event.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    /// `source.component` (`kubelet`, `replicaset-controller`), or the reporting controller of
    /// events/v1 recorders (`default-scheduler`).
    pub component: &'a str,
    /// `source.host` (the node, for the kubelet).
    pub host: &'a str,
    /// Whether the reporter uses the events/v1 recorder (the scheduler): `eventTime`,
    /// `action`, `reportingComponent`/`reportingInstance`, no `source`.
    pub events_v1_action: Option<&'a str>,
}

impl Source<'static> {
    /// A controller-manager controller.
    pub const fn controller(component: &'static str) -> Self {
        Source {
            component,
            host: "",
            events_v1_action: None,
        }
    }
}

struct Logged {
    ns: String,
    name: String,
    count: i64,
}

struct Aggregate {
    messages: HashSet<String>,
    last: Instant,
}

/// The correlating event recorder of the simulated cluster.
#[derive(Default)]
pub struct Recorder {
    logged: HashMap<String, Logged>,
    aggregates: HashMap<String, Aggregate>,
    buckets: HashMap<String, (f64, Instant)>,
}

/// `reason` for `type`, as kubectl prints them.
#[derive(Clone, Copy, PartialEq)]
pub enum Type {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

impl Type {
    fn as_str(self) -> &'static str {
        match self {
            Type::Normal => "Normal",
            Type::Warning => "Warning",
        }
    }
}

fn bounded<K, V>(m: &mut HashMap<K, V>) {
    if m.len() >= CACHE_ENTRIES {
        m.clear();
    }
}

impl Recorder {
    /// Record an event about `obj` (of type `res`), `field_path` naming a part of it
    /// (`spec.containers{nginx}`).
    #[allow(clippy::too_many_arguments)]
    pub fn event(
        &mut self,
        st: &mut State,
        res: ResId,
        obj: &Value,
        field_path: &str,
        ty: Type,
        reason: &str,
        message: String,
        src: Source<'_>,
    ) {
        let r = crate::resources::get(res);
        let (ns, name, uid) = (meta::namespace(obj), meta::name(obj), meta::uid(obj));
        let ns = if ns.is_empty() { "default" } else { ns };
        let object_key = [
            src.component,
            src.host,
            r.kind,
            ns,
            name,
            uid,
            &r.api_version(),
            ty.as_str(),
        ]
        .join("\u{0}");
        let now = Instant::now();
        // Aggregation by reason.
        let agg_key = format!("{object_key}\u{0}{reason}");
        bounded(&mut self.aggregates);
        let agg = self
            .aggregates
            .entry(agg_key.clone())
            .or_insert_with(|| Aggregate {
                messages: HashSet::new(),
                last: now,
            });
        if now.duration_since(agg.last) > AGGREGATE_INTERVAL {
            agg.messages.clear();
        }
        agg.messages.insert(message.clone());
        agg.last = now;
        let (message, key) = if agg.messages.len() < MAX_EVENTS {
            (
                message.clone(),
                format!("{object_key}\u{0}{field_path}\u{0}{reason}\u{0}{message}"),
            )
        } else {
            if let Some(m) = agg.messages.iter().next().cloned() {
                agg.messages.remove(&m);
            }
            (
                format!("(combined from similar events): {message}"),
                agg_key,
            )
        };
        // Spam filter: one token per event, per source and object.
        bounded(&mut self.buckets);
        let (tokens, at) = self.buckets.entry(object_key).or_insert((SPAM_BURST, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * SPAM_QPS).min(SPAM_BURST);
        *at = now;
        if *tokens < 1.0 {
            return;
        }
        *tokens -= 1.0;
        let ts = meta::now_rfc3339();
        // An identical event seen before: count it on the first one.
        if let Some(l) = self.logged.get_mut(&key)
            && let Some(prev) = st.get(EVENTS, &l.ns, &l.name)
        {
            l.count += 1;
            let mut next = (*prev).clone();
            next["message"] = json!(message);
            if src.events_v1_action.is_some() {
                next["series"] = json!({"count": l.count, "lastObservedTime": micro_now()});
            } else {
                next["count"] = json!(l.count);
                next["lastTimestamp"] = json!(ts);
            }
            st.replace(EVENTS, next);
            return;
        }
        let mut involved = json!({"kind": r.kind, "namespace": meta::namespace(obj), "name": name, "uid": uid,
                                  "apiVersion": r.api_version(), "resourceVersion": meta::rv(obj)});
        if !r.namespaced {
            involved["namespace"] = json!("");
        }
        if !field_path.is_empty() {
            involved["fieldPath"] = json!(field_path);
        }
        let mut ev = json!({
            "metadata": {"name": event_name(st, ns, name)},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": ty.as_str(),
        });
        match src.events_v1_action {
            Some(action) => {
                ev["source"] = json!({});
                ev["eventTime"] = json!(micro_now());
                ev["action"] = json!(action);
                ev["reportingComponent"] = json!(src.component);
                ev["reportingInstance"] = json!(format!("{}-kubesim", src.component));
                ev["firstTimestamp"] = Value::Null;
                ev["lastTimestamp"] = Value::Null;
            }
            None => {
                let mut source = json!({"component": src.component});
                if !src.host.is_empty() {
                    source["host"] = json!(src.host);
                }
                ev["source"] = source;
                ev["count"] = json!(1);
                ev["firstTimestamp"] = json!(ts);
                ev["lastTimestamp"] = json!(ts);
                ev["eventTime"] = Value::Null;
                ev["reportingComponent"] = json!(src.component);
                ev["reportingInstance"] = json!(src.host);
            }
        }
        let ev = st.insert(EVENTS, prepare_create(EVENTS, ev, ns));
        bounded(&mut self.logged);
        self.logged.insert(
            key,
            Logged {
                ns: ns.to_string(),
                name: meta::name(&ev).to_string(),
                count: 1,
            },
        );
    }
}

/// `MicroTime` now (`2006-01-02T15:04:05.000000Z`).
fn micro_now() -> String {
    let t = jiff::Timestamp::now();
    format!(
        "{}.{:06}Z",
        t.strftime("%Y-%m-%dT%H:%M:%S"),
        t.subsec_microsecond()
    )
}

/// `<object name>.<unix nanoseconds in hex>`, as the recorder names events.
fn event_name(st: &State, ns: &str, name: &str) -> String {
    let mut n = jiff::Timestamp::now().as_nanosecond();
    loop {
        let candidate = format!("{name}.{n:x}");
        if !st.exists(EVENTS, ns, &candidate) {
            return candidate;
        }
        n += 1;
    }
}
