//! One LIST + WATCH per collection (a node's pods, the budgets): resumes from the last
//! resourceVersion when a stream is cut, relists on 410 Expired, and reports changes to the
//! dispatcher over a channel. No per-object polling.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::AsyncReadExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use kube::api::{ListParams, WatchParams};
use kube::core::ObjectList;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::sync::mpsc::UnboundedSender;

use crate::error::DrainError;
use crate::kept_pod::ReadPod;
use crate::requests::Requests;
use crate::retry;
use crate::watch_stream::{self, Event};

/// A change seen on a watched collection.
#[derive(Debug, Clone)]
pub(crate) enum Change<K> {
    /// Added or modified.
    Upsert(K),
    /// Deleted (or no longer matching the selectors).
    Removed(K),
    /// After a 410 the collection was listed again: this is all of it now.
    Relisted(Vec<K>),
    /// The server refused the watch itself (403: the credentials lack `watch` on the
    /// resource), with its message. The watch carries on by listing the collection after
    /// each refusal (a [`Change::Relisted`] every few seconds) instead of seeing changes at
    /// once; sent at each refusal, the dispatcher says so once.
    Refused(String),
}

/// What a watch reports: which watch (`source`) and the change.
#[derive(Debug)]
pub(crate) struct Seen<K> {
    /// Index of the watch (node index, or `usize::MAX` for budgets).
    pub source: usize,
    /// The change.
    pub change: Change<K>,
}

/// A complete list of a collection, and the resourceVersion to watch from.
#[derive(Debug, Clone)]
pub(crate) struct Listed<K> {
    /// Every object.
    pub items: Vec<K>,
    /// The list's resourceVersion.
    pub resource_version: String,
}

/// How kdrain reads objects of a kind from the API: as [`Readable::Read`], turned into what it
/// keeps ([`Readable::keep`]). A pod is read slim ([`ReadPod`]); nodes and budgets whole.
pub(crate) trait Readable: Sized {
    /// What one object's JSON is deserialized into.
    type Read: DeserializeOwned + Clone + Send + 'static;
    /// The object kdrain keeps.
    fn keep(read: Self::Read) -> Self;
}

impl Readable for Pod {
    type Read = ReadPod;
    fn keep(read: ReadPod) -> Pod {
        read.into()
    }
}

impl Readable for Node {
    type Read = Node;
    fn keep(read: Node) -> Node {
        read
    }
}

impl Readable for PodDisruptionBudget {
    type Read = PodDisruptionBudget;
    fn keep(read: PodDisruptionBudget) -> PodDisruptionBudget {
        read
    }
}

/// LISTs every pod bound to `node` (field selector `spec.nodeName`), page by page: what the
/// plan, the permission probes and the dispatcher's catch-up and final LISTs read.
pub(crate) async fn list_node_pods(
    api: &Api<Pod>,
    node: &str,
    chunk: u32,
    req: &Requests,
) -> Result<Listed<Pod>, kube::Error> {
    let fields = format!("spec.nodeName={node}");
    list_all(api, Some(&fields), None, chunk, req, "pods").await
}

/// LISTs a collection page by page (`chunk` items a page; 0 = no paging), as kubectl does.
pub(crate) async fn list_all<K>(
    api: &Api<K>,
    fields: Option<&str>,
    labels: Option<&str>,
    chunk: u32,
    req: &Requests,
    resource: &str,
) -> Result<Listed<K>, kube::Error>
where
    K: Resource + Readable + Clone,
{
    let mut items = Vec::new();
    let resource_version = list_pages(api, fields, labels, chunk, req, resource, |page| {
        items.extend(page)
    })
    .await?;
    Ok(Listed {
        items,
        resource_version,
    })
}

/// LISTs a collection page by page, handing each page to `on_page` (so a caller can keep a
/// summary instead of every object); returns the list's resourceVersion. Each page is read as
/// kube's `Api::list` reads it (an `ObjectList`), its items as [`Readable::Read`].
pub(crate) async fn list_pages<K>(
    api: &Api<K>,
    fields: Option<&str>,
    labels: Option<&str>,
    chunk: u32,
    req: &Requests,
    resource: &str,
    mut on_page: impl FnMut(Vec<K>),
) -> Result<String, kube::Error>
where
    K: Resource + Readable + Clone,
{
    let client = kube::Client::from(api.clone());
    let buffers = Buffers::default();
    let parse = {
        let buffers = buffers.clone();
        move |body: Vec<u8>| {
            let page: ObjectList<K::Read> =
                serde_json::from_slice(&body).map_err(kube::Error::SerdeError)?;
            buffers.give(body);
            Ok((page.metadata, page.items))
        }
    };
    let on_page = |items: Vec<K::Read>| on_page(items.into_iter().map(K::keep).collect());
    let url = api.resource_url().to_string();
    let fetch = fetcher(client, url, buffers.clone());
    paged(fields, labels, chunk, req, resource, fetch, parse, on_page).await
}

/// One page of a LIST, its items read as `T`.
#[derive(serde::Deserialize)]
struct Page<T> {
    #[serde(default)]
    metadata: ListMeta,
    #[serde(default = "Option::default")]
    items: Option<Vec<T>>,
}

/// [`list_pages`] over the collection at `url_path` (`/api/v1/pods`) through the same client
/// (same retries and request counts), each page read in one pass into items of `T`: a type
/// that keeps only the few fields a caller needs of many objects. `on_page` also gets the
/// page's JSON, to read an item whole when it needs more ([`raw_items`]).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn list_parsed_pages<T: DeserializeOwned>(
    client: &kube::Client,
    url_path: &str,
    fields: Option<&str>,
    labels: Option<&str>,
    chunk: u32,
    req: &Requests,
    resource: &str,
    mut on_page: impl FnMut(&[u8], Vec<T>),
) -> Result<String, kube::Error> {
    let parse = |body: Vec<u8>| {
        let page: Page<T> = serde_json::from_slice(&body).map_err(kube::Error::SerdeError)?;
        Ok((page.metadata, (body, page.items.unwrap_or_default())))
    };
    let buffers = Buffers::default();
    let fetch = fetcher(client.clone(), url_path.to_string(), buffers.clone());
    let on_page = |(body, items): (Vec<u8>, Vec<T>)| {
        on_page(&body, items);
        buffers.give(body);
    };
    paged(fields, labels, chunk, req, resource, fetch, parse, on_page).await
}

/// The items of a LIST page's JSON, each left as its JSON text.
pub(crate) fn raw_items(json: &[u8]) -> Result<Vec<Box<RawValue>>, serde_json::Error> {
    let page: Page<Box<RawValue>> = serde_json::from_slice(json)?;
    Ok(page.items.unwrap_or_default())
}

/// The bodies of a LIST's pages, handed back once read so that the next page is written into
/// memory already in use: a page of 500 pods is about 800 kB, and a body read into new memory
/// (copied twice, as kube's `request_text` does) cost the capacity read of 110,000 pods a fifth
/// of its CPU in page faults and copies (perf).
#[derive(Clone, Default)]
struct Buffers(Arc<Mutex<Vec<Vec<u8>>>>);

impl Buffers {
    /// How many bodies are kept: the page being read and the one asked for ahead.
    const KEPT: usize = 2;

    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default()
    }

    fn give(&self, mut body: Vec<u8>) {
        body.clear();
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() < Self::KEPT {
            kept.push(body);
        }
    }
}

/// Sends one page's request (a LIST of the collection at `url`) and gives its body (JSON),
/// read into a buffer of `buffers`.
fn fetcher(
    client: kube::Client,
    url: String,
    buffers: Buffers,
) -> impl Fn(ListParams) -> BoxFuture<'static, Result<Vec<u8>, kube::Error>>
+ Clone
+ Send
+ Sync
+ 'static {
    move |lp: ListParams| {
        let built = kube::core::Request::new(&url).list(&lp);
        let client = client.clone();
        let buffers = buffers.clone();
        Box::pin(async move {
            let mut http = built.map_err(kube::Error::BuildRequest)?;
            http.extensions_mut().insert("list");
            // kube's error handling (a Status for a refused request), then the body as it
            // arrives, copied once
            let body = client.request_stream(http).await?;
            let mut body = std::pin::pin!(body);
            let mut buf = buffers.take();
            body.read_to_end(&mut buf)
                .await
                .map_err(kube::Error::ReadEvents)?;
            Ok(buf)
        })
    }
}

/// The next page, asked for while this one is read; its request is dropped with it.
struct Ahead {
    /// The continue token it was asked with.
    token: String,
    task: tokio::task::JoinHandle<Result<Vec<u8>, kube::Error>>,
}

impl Ahead {
    async fn body(&mut self) -> Result<Vec<u8>, kube::Error> {
        match (&mut self.task).await {
            Ok(fetched) => fetched,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(kube::Error::Service(Box::new(e))),
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The paging loop of [`list_pages`] and [`list_parsed_pages`]: `fetch` sends one page's
/// request (counted and retried here) and gives its body, `parse` reads the body into the
/// page's list metadata and what `on_page` gets. Page k+1 is asked for as soon as page k's
/// continue token is read from the start of its body ([`continue_token`]), before page k is
/// parsed: the server writes one page while kdrain parses the one before. The pages, their
/// requests and the errors are those of reading one page after the other (a page that does not
/// parse fails the LIST with its parse error; a token sent twice is not asked for again and
/// fails the LIST after that page).
#[allow(clippy::too_many_arguments)]
async fn paged<P>(
    fields: Option<&str>,
    labels: Option<&str>,
    chunk: u32,
    req: &Requests,
    resource: &str,
    fetch: impl Fn(ListParams) -> BoxFuture<'static, Result<Vec<u8>, kube::Error>>
    + Clone
    + Send
    + Sync
    + 'static,
    mut parse: impl FnMut(Vec<u8>) -> Result<(ListMeta, P), kube::Error>,
    mut on_page: impl FnMut(P),
) -> Result<String, kube::Error> {
    let ask = |token: Option<String>| {
        let mut lp = ListParams::default();
        if let Some(f) = fields {
            lp = lp.fields(f);
        }
        if let Some(l) = labels {
            lp = lp.labels(l);
        }
        if chunk > 0 {
            lp = lp.limit(chunk);
        }
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let (fetch, req, resource) = (fetch.clone(), req.clone(), resource.to_string());
        async move {
            retry::idempotent("list", || {
                req.count("list", &resource);
                fetch(lp.clone())
            })
            .await
        }
    };
    let mut token: Option<String> = None;
    let mut ahead: Option<Ahead> = None;
    let mut rv = String::new();
    loop {
        let body = match ahead.take() {
            Some(mut a) if token.as_ref() == Some(&a.token) => a.body().await?,
            _ => ask(token.clone()).await?,
        };
        if let Some(next) = continue_token(&body).filter(|c| token.as_ref() != Some(c)) {
            let task = tokio::spawn(ask(Some(next.clone())));
            ahead = Some(Ahead { token: next, task });
            // Let the request go out before the parse: a task spawned on one of tokio's
            // workers waits in that worker's own slot, which no other worker takes, until the
            // spawning task yields. Without this, page k+1 was asked for only once page k was
            // parsed (`kdrain drain`, which reads on a worker: the capacity read of 110,000
            // pods took 0.54 s against 0.34 s in `kdrain plan`, which reads on the main thread).
            tokio::task::yield_now().await;
        }
        let (metadata, items) = parse(body)?;
        if rv.is_empty() {
            rv = metadata.resource_version.clone().unwrap_or_default();
        }
        on_page(items);
        match metadata.continue_.filter(|c| !c.is_empty()) {
            // A server that hands out the same token again would be listed forever.
            Some(c) if token.as_ref() == Some(&c) => {
                return Err(kube::Error::SerdeError(serde::de::Error::custom(format!(
                    "the list of {resource} never ends: the server sent the continue token {c:?} twice"
                ))));
            }
            Some(c) => token = Some(c),
            None => break,
        }
    }
    Ok(rv)
}

/// The continue token of a LIST page's JSON, read from the list metadata at its start
/// (API servers write `metadata` before `items`) without reading the items; `None` when there
/// is none, or when the items come first (the page is then read whole before the next one is
/// asked for).
fn continue_token(json: &[u8]) -> Option<String> {
    struct Head<'a>(&'a mut Option<ListMeta>);
    impl<'de> serde::de::Visitor<'de> for Head<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                match key.as_str() {
                    "metadata" => {
                        *self.0 = Some(map.next_value()?);
                        // stop here: what follows is the items, read by the page's parse
                        return Err(serde::de::Error::custom("read up to the list metadata"));
                    }
                    "items" => return Err(serde::de::Error::custom("the items come first")),
                    _ => {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
            }
            Ok(())
        }
    }
    let mut meta = None;
    let mut de = serde_json::Deserializer::from_slice(json);
    let _ = serde::Deserializer::deserialize_map(&mut de, Head(&mut meta));
    meta?.continue_.filter(|c| !c.is_empty())
}

/// Watches `api` (with a field selector) from `rv` until the receiver goes away. Cut streams are
/// resumed from the last resourceVersion seen; a 410 leads to a fresh LIST, reported whole.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<K>(
    api: Api<K>,
    fields: Option<String>,
    mut rv: String,
    chunk: u32,
    source: usize,
    tx: UnboundedSender<Seen<K>>,
    req: Requests,
    resource: &'static str,
) where
    K: Resource + Readable + Clone + Debug + Send + 'static,
{
    let client = kube::Client::from(api.clone());
    let url = api.resource_url().to_string();
    let mut backoff = new_backoff();
    let send = |change: Change<K>| tx.send(Seen { source, change }).is_ok();
    loop {
        if tx.is_closed() {
            return;
        }
        let mut wp = WatchParams::default().timeout(290);
        if let Some(f) = &fields {
            wp = wp.fields(f);
        }
        req.count("watch", resource);
        let mut relist = false;
        let mut got_event = false;
        match watch_stream::open::<K::Read>(&client, &url, &wp, &rv).await {
            Ok(mut stream) => {
                while let Some(ev) = stream.next().await {
                    got_event = true;
                    match ev {
                        Ok(Event::Added(o)) | Ok(Event::Modified(o)) => {
                            let o = K::keep(o);
                            note_rv(&mut rv, &o);
                            backoff = new_backoff();
                            if !send(Change::Upsert(o)) {
                                return;
                            }
                        }
                        Ok(Event::Deleted(o)) => {
                            let o = K::keep(o);
                            note_rv(&mut rv, &o);
                            if !send(Change::Removed(o)) {
                                return;
                            }
                        }
                        Ok(Event::Bookmark(version)) => {
                            if !version.is_empty() {
                                rv = version;
                            }
                        }
                        Ok(Event::Error(s)) if s.code == 410 => {
                            tracing::debug!(source, "watch expired (410): relisting");
                            relist = true;
                            break;
                        }
                        Ok(Event::Error(s)) => {
                            tracing::debug!(source, "watch error event: {}", s.message);
                            got_event = false;
                            break;
                        }
                        Err(e) => {
                            tracing::debug!(source, "watch stream failed: {e}");
                            got_event = false;
                            break;
                        }
                    }
                }
                if !got_event && !relist {
                    // an empty or failed stream: do not spin
                    sleep_backoff(&mut backoff).await;
                }
            }
            Err(kube::Error::Api(s)) if s.code == 410 => relist = true,
            Err(kube::Error::Api(s)) if s.code == 403 => {
                // not allowed to watch: follow the collection by listing it instead
                tracing::debug!(source, "watch refused: {}", s.message);
                if !send(Change::Refused(s.message)) {
                    return;
                }
                sleep_backoff(&mut backoff).await;
                relist = true;
            }
            Err(e) => {
                // The watch could not even start (server error, missing permission...): catch up
                // with a LIST after the backoff, so deletions are still seen if watching keeps
                // failing.
                tracing::debug!(source, "watch request failed: {e}");
                sleep_backoff(&mut backoff).await;
                relist = true;
            }
        }
        if relist {
            loop {
                if tx.is_closed() {
                    return;
                }
                match list_all(&api, fields.as_deref(), None, chunk, &req, resource).await {
                    Ok(l) => {
                        rv = l.resource_version;
                        if !send(Change::Relisted(l.items)) {
                            return;
                        }
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(source, "relist failed: {e}");
                        sleep_backoff(&mut backoff).await;
                    }
                }
            }
        }
    }
}

fn note_rv<K: Resource>(rv: &mut String, o: &K) {
    if let Some(v) = o.meta().resource_version.as_ref().filter(|v| !v.is_empty()) {
        rv.clone_from(v);
    }
}

use crate::backoff::{Backoff, rewatch as new_backoff};

async fn sleep_backoff(b: &mut Backoff) {
    let d = b.next().unwrap_or(crate::backoff::REWATCH_MAX);
    tokio::time::sleep(d).await;
}

/// The pods bound to `node`, with a failed LIST said as a drain error naming the node.
pub(crate) async fn list_pods_of(
    api: &Api<Pod>,
    node: &str,
    chunk: u32,
    req: &Requests,
) -> Result<Listed<Pod>, DrainError> {
    list_node_pods(api, node, chunk, req).await.map_err(|e| {
        DrainError::api(
            format!("listing the pods of node {node}"),
            "list",
            "pods",
            None,
            e,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_continue_token_is_read_from_the_metadata_before_the_items() {
        let page = |meta: &str, items: &str| {
            format!(r#"{{"kind":"PodList","apiVersion":"v1","metadata":{meta},"items":{items}}}"#)
        };
        let token = |text: &str| continue_token(text.as_bytes());
        let items = r#"[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}]"#;
        assert_eq!(
            token(&page(r#"{"resourceVersion":"7","continue":"next"}"#, items)).as_deref(),
            Some("next")
        );
        // the items after the metadata are not read: a page cut there still tells its token
        let whole = page(r#"{"continue":"next"}"#, items);
        assert_eq!(token(&whole[..whole.len() - 20]).as_deref(), Some("next"));
        // no token, an empty one, no metadata, the items first, not a list: none
        assert_eq!(token(&page(r#"{"resourceVersion":"7"}"#, items)), None);
        assert_eq!(token(&page(r#"{"continue":""}"#, items)), None);
        assert_eq!(token(&format!(r#"{{"items":{items}}}"#)), None);
        assert_eq!(
            token(&format!(
                r#"{{"items":{items},"metadata":{{"continue":"next"}}}}"#
            )),
            None
        );
        assert_eq!(token("[]"), None);
        assert_eq!(token(r#"{"metadata":{"continue":3}}"#), None);
    }
}
