//! A watch's HTTP stream read line by line, each event's object deserialized straight from its
//! line into the type the caller keeps (a pod read slim). kube's `Api::watch` reads each line as
//! a `WatchEvent<K>`, whose adjacently tagged enum buffers the whole object through serde's
//! `Content` when the server writes `object` before `type` (kubesim does): here the line's
//! `object` is only located (a borrowed raw value), then read once as what its `type` says.
//! Everything else is what `kube::Client::request_events` does: the same request (compression
//! off), a 4xx/5xx answer as `Error::Api`, a line that does not parse as an error (`Error::Api`
//! when it is a `Status`), an incomplete last line skipped, an unexpected end of the body as
//! the end of the stream.

use std::pin::Pin;

use futures::{AsyncBufRead, AsyncBufReadExt};
use kube::api::WatchParams;
use kube::core::Status;
use kube::core::watch::Bookmark;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

/// One event of a watch.
pub(crate) enum Event<R> {
    Added(R),
    Modified(R),
    Deleted(R),
    /// A bookmark: the resourceVersion to resume from.
    Bookmark(String),
    Error(Box<Status>),
}

/// An open watch: its events, one line at a time.
pub(crate) struct Events<R> {
    body: Pin<Box<dyn AsyncBufRead + Send>>,
    line: String,
    _read: std::marker::PhantomData<fn() -> R>,
}

/// Starts a watch of the collection at `url` from `rv`.
pub(crate) async fn open<R: DeserializeOwned>(
    client: &kube::Client,
    url: &str,
    wp: &WatchParams,
    rv: &str,
) -> Result<Events<R>, kube::Error> {
    let mut request = kube::core::Request::new(url)
        .watch(wp, rv)
        .map_err(kube::Error::BuildRequest)?;
    request.extensions_mut().insert("watch");
    // as kube does: watch streams are not compressed (one gzip member per event)
    request
        .headers_mut()
        .entry(http::header::ACCEPT_ENCODING)
        .or_insert(http::HeaderValue::from_static("identity"));
    let body = client.request_stream(request).await?;
    Ok(Events {
        body: Box::pin(body),
        line: String::new(),
        _read: std::marker::PhantomData,
    })
}

impl<R: DeserializeOwned> Events<R> {
    /// The next event; `None` when the stream ended.
    pub(crate) async fn next(&mut self) -> Option<Result<Event<R>, kube::Error>> {
        loop {
            self.line.clear();
            match self.body.read_line(&mut self.line).await {
                Ok(0) => return None,
                Ok(_) => {
                    if let Some(event) = parse_line(&self.line) {
                        return Some(event);
                    }
                }
                // kube's client timeout: wait on
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                // the body ended early (a resumable end of the watch)
                Err(e) if unexpected_eof(&e) => return None,
                Err(e) => return Some(Err(kube::Error::ReadEvents(e))),
            }
        }
    }
}

/// A line of the stream: its type and where its object is.
#[derive(serde::Deserialize)]
struct Line<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    object: &'a RawValue,
}

/// One line read as an event, `None` for a line cut at the end of the stream.
fn parse_line<R: DeserializeOwned>(line: &str) -> Option<Result<Event<R>, kube::Error>> {
    match event(line) {
        Ok(event) => Some(Ok(event)),
        Err(e) if e.is_eof() => None,
        Err(e) => Some(Err(match serde_json::from_str::<Status>(line) {
            Ok(status) => kube::Error::Api(status.boxed()),
            Err(_) => kube::Error::SerdeError(e),
        })),
    }
}

fn event<R: DeserializeOwned>(line: &str) -> Result<Event<R>, serde_json::Error> {
    let Line { kind, object } = serde_json::from_str(line)?;
    let object = object.get();
    Ok(match kind {
        "ADDED" => Event::Added(serde_json::from_str(object)?),
        "MODIFIED" => Event::Modified(serde_json::from_str(object)?),
        "DELETED" => Event::Deleted(serde_json::from_str(object)?),
        "BOOKMARK" => {
            let b: Bookmark = serde_json::from_str(object)?;
            Event::Bookmark(b.metadata.resource_version)
        }
        "ERROR" => Event::Error(serde_json::from_str(object)?),
        other => {
            return Err(serde::de::Error::unknown_variant(
                other,
                &["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"],
            ));
        }
    })
}

/// Whether a read error of the body is its unexpected end: an `UnexpectedEof` in the error's
/// chain (TLS stacks nest one) or a chunk decoder's "unexpected EOF during chunk", as kube
/// tells them.
fn unexpected_eof(e: &std::io::Error) -> bool {
    // `request_stream` wraps the body's error in an `io::Error`
    let Some(inner) = e.get_ref() else {
        return e.kind() == std::io::ErrorKind::UnexpectedEof;
    };
    if inner.to_string().contains("unexpected EOF during chunk") {
        return true;
    }
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(inner);
    for _ in 0..16 {
        let Some(err) = current else {
            return false;
        };
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::UnexpectedEof
        {
            return true;
        }
        current = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::WatchEvent;
    use serde_json::json;

    use super::*;
    use crate::kept_pod::ReadPod;

    fn pod() -> serde_json::Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u", "resourceVersion": "9",
                            "managedFields": [{"manager": "m"}]},
               "spec": {"containers": [{"name": "c"}]},
               "status": {"phase": "Running", "podIP": "10.0.0.1"}})
    }

    /// A line as read here.
    type Ours = Option<Result<Event<ReadPod>, kube::Error>>;

    /// The line read here and by kube's `WatchEvent`, the object kept as kdrain keeps it.
    fn both(line: &str) -> (Ours, serde_json::Result<WatchEvent<Pod>>) {
        (parse_line(line), serde_json::from_str(line))
    }

    #[test]
    fn events_read_in_either_key_order_are_kube_s_events_kept_slim() {
        for kind in ["ADDED", "MODIFIED", "DELETED"] {
            for line in [
                json!({"type": kind, "object": pod()}).to_string(),
                format!(r#"{{"object":{},"type":"{kind}"}}"#, pod()),
            ] {
                let (ours, kube) = both(&line);
                let ours = match ours.unwrap().unwrap() {
                    Event::Added(p) | Event::Modified(p) | Event::Deleted(p) => Pod::from(p),
                    _ => panic!("{line}"),
                };
                let whole = match kube.unwrap() {
                    WatchEvent::Added(p) | WatchEvent::Modified(p) | WatchEvent::Deleted(p) => p,
                    _ => panic!("{line}"),
                };
                assert_eq!(ours.metadata.name, whole.metadata.name);
                assert_eq!(ours.metadata.resource_version.as_deref(), Some("9"));
                assert!(ours.metadata.managed_fields.is_none());
                assert!(whole.metadata.managed_fields.is_some());
                assert_eq!(ours.status.unwrap().phase.as_deref(), Some("Running"));
            }
        }
    }

    #[test]
    fn bookmarks_errors_and_bad_lines_are_told_as_kube_tells_them() {
        let bookmark = r#"{"object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12"}},"type":"BOOKMARK"}"#;
        assert!(
            matches!(parse_line::<ReadPod>(bookmark), Some(Ok(Event::Bookmark(rv))) if rv == "12")
        );
        let gone = r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old","reason":"Expired","code":410}}"#;
        assert!(matches!(parse_line::<ReadPod>(gone), Some(Ok(Event::Error(s))) if s.code == 410));
        // a line cut at the end of the stream is skipped, as kube's `is_eof` check does
        let cut = &json!({"type": "ADDED", "object": pod()}).to_string()[..40];
        assert!(parse_line::<ReadPod>(cut).is_none());
        assert!(parse_line::<ReadPod>("\n").is_none());
        // a Status in place of an event is an API error
        let status =
            r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"no","code":500}"#;
        assert!(
            matches!(parse_line::<ReadPod>(status), Some(Err(kube::Error::Api(s))) if s.code == 500)
        );
        // an unknown type, or an object that is not a pod, is an error, as for kube
        for bad in [
            json!({"type": "TOUCHED", "object": pod()}).to_string(),
            json!({"type": "ADDED", "object": {"kind": "Node"}}).to_string(),
        ] {
            assert!(serde_json::from_str::<WatchEvent<Pod>>(&bad).is_err());
            assert!(matches!(parse_line::<ReadPod>(&bad), Some(Err(_))), "{bad}");
        }
    }
}
