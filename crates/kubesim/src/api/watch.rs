//! WATCH streams: start point (W-2), too-old ERROR event (W-3), selector transitions (W-4),
//! bookmarks (W-5), timeouts (W-6) and streaming lists (W-7).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::list::{to_metadata, validate_rv_options, wants_metadata};
use super::{Query, Target};
use crate::error::{ApiError, ApiResult};
use crate::filter::Filter;

use crate::sim::Shared;
use crate::store::{Event, EventType};

struct Stream {
    pending: VecDeque<Bytes>,
    /// With an `eventLatencyMs` fault: live lines and when each may go out, in order.
    delayed: VecDeque<(Instant, Bytes)>,
    delay: Option<Duration>,
    rx: broadcast::Receiver<Arc<Event>>,
    filter: Filter,
    deadline: Instant,
    bookmark_every: Option<Duration>,
    next_bookmark: Instant,
    last_rv: u64,
    min_rv: u64,
    done: bool,
    shutdown: tokio::sync::watch::Receiver<bool>,
    metadata_only: bool,
    as_table: bool,
    /// The CRD of a custom resource's stream (its table columns).
    crd: Option<Arc<crate::crd::CrdDef>>,
    /// Core Events watched through events.k8s.io/v1 (objects translated).
    events_v1: bool,
    /// Counts the stream in [`Shared::open_watches`] while it lives.
    _open: OpenWatch,
}

/// One open watch stream in [`Shared::open_watches`], from its start to its drop.
struct OpenWatch(Arc<AtomicUsize>);

impl OpenWatch {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        OpenWatch(count.clone())
    }
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One watch event line: `{"object":...,"type":"..."}` (the keys in the order a JSON object
/// map writes them), serialized from the object in place.
fn line(ty: &str, obj: &Value) -> Bytes {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        object: &'a Value,
        #[serde(rename = "type")]
        ty: &'a str,
    }
    let mut v = serde_json::to_vec(&Line { object: obj, ty }).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

impl Stream {
    /// Queues a live line (a change or a bookmark), behind the fault's delay if there is one.
    fn push(&mut self, b: Bytes) {
        match self.delay {
            Some(d) => self.delayed.push_back((Instant::now() + d, b)),
            None => self.pending.push_back(b),
        }
    }

    fn object<'a>(&self, o: &'a Value) -> Cow<'a, Value> {
        if self.as_table {
            let md = json!({"resourceVersion": crate::meta::rv(o)});
            return Cow::Owned(super::table::table(
                self.filter.res,
                self.crd.as_deref(),
                &[o],
                md,
            ));
        }
        if self.metadata_only {
            Cow::Owned(to_metadata(o))
        } else if self.events_v1 {
            Cow::Owned(super::events_v1::from_core(o.clone()))
        } else {
            Cow::Borrowed(o)
        }
    }

    fn bookmark(&self, annotations: Option<Value>) -> Bytes {
        let r = crate::resources::get(self.filter.res);
        let (kind, av) = if self.metadata_only {
            (
                "PartialObjectMetadata".to_string(),
                "meta.k8s.io/v1".to_string(),
            )
        } else if self.events_v1 {
            ("Event".to_string(), "events.k8s.io/v1".to_string())
        } else {
            (r.kind.to_string(), r.api_version())
        };
        let mut md = json!({"resourceVersion": self.last_rv.to_string()});
        if let Some(a) = annotations {
            md["annotations"] = a;
        }
        line(
            "BOOKMARK",
            &json!({"kind": kind, "apiVersion": av, "metadata": md}),
        )
    }

    /// Translate a store event for this watcher, applying selector transitions (W-4).
    fn convert(&self, ev: &Event) -> Option<Bytes> {
        if ev.res != self.filter.res || ev.rv <= self.min_rv {
            return None;
        }
        match ev.ty {
            EventType::Added | EventType::Deleted => self
                .filter
                .matches(&ev.object)
                .then(|| line(ev.ty.as_str(), &self.object(&ev.object))),
            EventType::Modified => {
                let now = self.filter.matches(&ev.object);
                let before = ev.prev.as_ref().is_some_and(|p| self.filter.matches(p));
                match (before, now) {
                    (true, true) => Some(line("MODIFIED", &self.object(&ev.object))),
                    (false, true) => Some(line("ADDED", &self.object(&ev.object))),
                    (true, false) => {
                        let mut last = (**ev.prev.as_ref()?).clone();
                        last["metadata"]["resourceVersion"] = json!(ev.rv.to_string());
                        Some(line("DELETED", &self.object(&last)))
                    }
                    (false, false) => None,
                }
            }
        }
    }

    async fn next_chunk(mut self) -> Option<(Result<Bytes, std::io::Error>, Stream)> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Some((Ok(b), self));
            }
            if self.done {
                return None;
            }
            let now = Instant::now();
            if self.delayed.front().is_some_and(|(at, _)| *at <= now)
                && let Some((_, b)) = self.delayed.pop_front()
            {
                return Some((Ok(b), self));
            }
            let release_at = self
                .delayed
                .front()
                .map_or(self.deadline + Duration::from_secs(3600), |(at, _)| *at);
            let bookmark_at = if self.bookmark_every.is_some() {
                self.next_bookmark
            } else {
                self.deadline + Duration::from_secs(3600)
            };
            tokio::select! {
                ev = self.rx.recv() => match ev {
                    Ok(ev) => {
                        self.last_rv = self.last_rv.max(ev.rv);
                        if let Some(b) = self.convert(&ev) {
                            self.push(b);
                        }
                    }
                    Err(_) => self.done = true,
                },
                _ = tokio::time::sleep_until(release_at), if !self.delayed.is_empty() => {}
                _ = tokio::time::sleep_until(self.deadline) => {
                    if self.bookmark_every.is_some() && self.delayed.is_empty() {
                        let b = self.bookmark(None);
                        self.pending.push_back(b);
                    }
                    self.done = true;
                }
                _ = tokio::time::sleep_until(bookmark_at) => {
                    let b = self.bookmark(None);
                    self.push(b);
                    self.next_bookmark += self.bookmark_every.unwrap_or(Duration::from_secs(60));
                }
                _ = self.shutdown.changed() => self.done = true,
            }
        }
    }
}

/// `GET ...?watch=true`.
pub fn watch(
    shared: &Arc<Shared>,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    cut_after: Option<f64>,
    event_delay: Option<Duration>,
) -> ApiResult<Response> {
    validate_rv_options(q, true)?;
    let send_initial = q.flag("sendInitialEvents");
    if send_initial
        && (q.get("resourceVersionMatch") != Some("NotOlderThan") || !q.flag("allowWatchBookmarks"))
    {
        return Err(ApiError::invalid(
            "ListOptions",
            "meta.k8s.io",
            "",
            &[(
                "FieldValueForbidden",
                "sendInitialEvents",
                "Forbidden: sendInitialEvents is forbidden unless resourceVersionMatch=NotOlderThan and allowWatchBookmarks=true".into(),
            )],
        ));
    }
    let filter = t.filter(q)?;
    let metadata_only = wants_metadata(headers);
    let timeout = match q.get("timeoutSeconds").and_then(|s| s.parse::<f64>().ok()) {
        // Clamped: any float a client sends (1e300, inf) must become a valid Duration.
        Some(s) if s > 0.0 => s.min(MAX_WATCH_SECONDS),
        _ => 1800.0 + fastrand::f64() * 1800.0,
    };
    // A fault's cut may be any float (negative cuts at once; NaN is ignored by `min`).
    let timeout = cut_after
        .map_or(timeout, |c| timeout.min(c))
        .clamp(0.0, MAX_WATCH_SECONDS);
    let rv_param = q.non_empty("resourceVersion");
    let settings = &shared.settings;
    let st = shared.store.lock();
    let rx = st.subscribe();
    let current = st.rv();
    let mut s = Stream {
        pending: VecDeque::new(),
        delayed: VecDeque::new(),
        delay: event_delay,
        rx,
        filter,
        deadline: Instant::now() + Duration::from_secs_f64(timeout),
        bookmark_every: q
            .flag("allowWatchBookmarks")
            .then(|| bookmark_every(settings.bookmark_seconds)),
        next_bookmark: Instant::now() + bookmark_every(settings.bookmark_seconds),
        last_rv: current,
        min_rv: current,
        done: false,
        shutdown: shared.shutdown.clone(),
        metadata_only,
        as_table: super::table::wants_table(headers),
        crd: t.crd.clone(),
        events_v1: t.events_v1,
        _open: OpenWatch::new(&shared.open_watches),
    };
    let from_scratch = send_initial || rv_param.is_none_or(|v| v == "0");
    if from_scratch {
        for (_, o) in st.iter(t.res, t.ns.as_deref()) {
            if s.filter.matches(&o) {
                let b = line("ADDED", &s.object(&o));
                s.pending.push_back(b);
            }
        }
        if send_initial {
            let b = s.bookmark(Some(json!({"k8s.io/initial-events-end": "true"})));
            s.pending.push_back(b);
        }
    } else {
        let n: u64 = rv_param.unwrap_or("0").parse().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid resource version: {}",
                rv_param.unwrap_or("")
            ))
        })?;
        match st.events_since(n) {
            Ok(events) => {
                s.min_rv = n;
                for ev in events {
                    if let Some(b) = s.convert(&ev) {
                        s.pending.push_back(b);
                    }
                }
                s.min_rv = n.max(current);
                if n > current {
                    s.min_rv = n;
                }
            }
            Err(floor) => {
                let e = ApiError::expired(format!("too old resource version: {n} ({floor})"));
                s.pending.push_back(line("ERROR", &e.to_status()));
                s.done = true;
            }
        }
    }
    drop(st);
    let body = Body::from_stream(futures::stream::unfold(s, |s| s.next_chunk()));
    let mut r = Response::new(body);
    r.headers_mut().insert(
        "content-type",
        axum::http::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        "cache-control",
        axum::http::HeaderValue::from_static("no-cache, private"),
    );
    Ok(r)
}

/// Longest watch a client can ask for with timeoutSeconds (one year).
const MAX_WATCH_SECONDS: f64 = 31_536_000.0;

/// The bookmark interval from the settings: at least 0.1 s, and a valid Duration whatever
/// the number (scenario loading already refuses non-finite or huge values).
fn bookmark_every(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds.clamp(0.1, MAX_WATCH_SECONDS))
        .unwrap_or(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookmark_interval_is_a_valid_duration_for_any_number() {
        assert_eq!(bookmark_every(5.0), Duration::from_secs(5));
        assert_eq!(bookmark_every(0.0), Duration::from_millis(100));
        assert_eq!(bookmark_every(-3.0), Duration::from_millis(100));
        let max = Duration::from_secs_f64(MAX_WATCH_SECONDS);
        assert_eq!(bookmark_every(f64::INFINITY), max);
        assert_eq!(bookmark_every(1e300), max);
        assert_eq!(bookmark_every(f64::NAN), Duration::from_secs(60));
    }
}
