//! Hostile input: a tiny HTTP server in the test answers the real `kube` client with malformed
//! responses (truncated JSON, wrong kinds, missing fields, endless or huge lists). The engine
//! must end with a clear error, never panic, and change nothing it should not.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kdrain::{DrainError, DrainOptions, Drainer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::*;

/// One request the hostile server received.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    /// Path and query.
    target: String,
}

impl Req {
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
    fn is_watch(&self) -> bool {
        self.target.contains("watch=true") || self.target.contains("watch=1")
    }
    fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }
}

/// What the server sends back: a status and a body (sent whole, with a correct length), or
/// raw bytes written as they are before the connection is closed.
enum Reply {
    Json(u16, String),
    Raw(Vec<u8>),
    /// Never answer (the connection stays open until the client gives up).
    Silence,
}

type Router = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

/// A server that answers every request with whatever the router says, one request per
/// connection, and remembers every request.
struct Hostile {
    url: String,
    seen: Arc<Mutex<Vec<Req>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Hostile {
    async fn start(router: Router) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let router = router.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut sock).await else {
                        return;
                    };
                    log.lock().unwrap().push(req.clone());
                    let bytes = match router(&req) {
                        Reply::Silence => {
                            let mut rest = [0u8; 64];
                            let _ = sock.read(&mut rest).await;
                            return;
                        }
                        Reply::Json(code, body) => format!(
                            "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .into_bytes(),
                        Reply::Raw(b) => b,
                    };
                    let _ = sock.write_all(&bytes).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Hostile { url, seen, task }
    }

    fn client(&self) -> kube::Client {
        self.client_with_read_timeout(Duration::from_secs(5))
    }

    fn client_with_read_timeout(&self, t: Duration) -> kube::Client {
        let mut c = kube::Config::new(self.url.parse().expect("url"));
        c.default_retry = false;
        c.read_timeout = Some(t);
        kube::Client::try_from(c).expect("client")
    }

    fn writes(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.is_write())
            .map(|r| format!("{} {}", r.method, r.path()))
            // access reviews (kdrain's permission check) change nothing on the server
            .filter(|w| !w.ends_with("/selfsubjectaccessreviews"))
            .collect()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request head (and its body, by Content-Length).
async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Req> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut first = head.lines().next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(Req { method, target })
}

/// Node n1; cordoned by kdrain (with its annotation) or not.
fn node_json(cordoned: bool) -> String {
    let mut n = serde_json::json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "n1", "uid": "node-uid", "resourceVersion": "3"},
        "spec": {"unschedulable": cordoned}
    });
    if cordoned {
        n["metadata"]["annotations"] = serde_json::json!({"kdrain.io/cordoned-by": "kdrain"});
    }
    n.to_string()
}

fn pod_json(i: usize) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("web-{i}"), "namespace": "default", "uid": format!("uid-{i}"),
            "resourceVersion": "4",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs", "controller": true}]
        },
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}]},
        "status": {"phase": "Running"}
    })
}

fn pod_list(items: Vec<serde_json::Value>, cont: Option<&str>) -> String {
    let mut meta = serde_json::json!({"resourceVersion": "5"});
    if let Some(c) = cont {
        meta["continue"] = c.into();
    }
    serde_json::json!({"apiVersion": "v1", "kind": "PodList", "metadata": meta, "items": items})
        .to_string()
}

const NO_BUDGETS: &str = r#"{"apiVersion":"policy/v1","kind":"PodDisruptionBudgetList","metadata":{"resourceVersion":"5"},"items":[]}"#;

const ALLOWED: &str = r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{},"status":{"allowed":true}}"#;

/// A well-behaved server for everything the `pods` closure does not answer. Each PATCH of the
/// node flips it between cordoned and schedulable (kdrain cordons, then may restore).
fn router(pods: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Router {
    let cordoned = std::sync::atomic::AtomicBool::new(false);
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    Arc::new(move |r: &Req| match (r.method.as_str(), r.path()) {
        ("GET", "/api/v1/nodes/n1") => Reply::Json(200, node_json(cordoned.load(relaxed))),
        ("PATCH", "/api/v1/nodes/n1") => {
            let now = !cordoned.fetch_xor(true, relaxed);
            Reply::Json(200, node_json(now))
        }
        // the capacity check's LIST of every node: n1 and an empty n2 with room
        ("GET", "/api/v1/nodes") if !r.is_watch() => {
            let mut n2: serde_json::Value = serde_json::from_str(&node_json(false)).expect("node");
            n2["metadata"]["name"] = "n2".into();
            n2["metadata"]["uid"] = "uid-n2".into();
            n2["status"] =
                serde_json::json!({"allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"}});
            let n1: serde_json::Value =
                serde_json::from_str(&node_json(cordoned.load(relaxed))).expect("node");
            Reply::Json(
                200,
                serde_json::json!({"apiVersion": "v1", "kind": "NodeList",
                    "metadata": {"resourceVersion": "5"}, "items": [n1, n2]})
                .to_string(),
            )
        }
        ("GET", "/apis/policy/v1/poddisruptionbudgets") if !r.is_watch() => {
            Reply::Json(200, NO_BUDGETS.into())
        }
        // every right allowed, so the permission check needs no dry-run requests
        ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews") => {
            Reply::Json(201, ALLOWED.into())
        }
        _ => pods(r),
    })
}

fn opts() -> DrainOptions {
    DrainOptions {
        timeout: Some(Duration::from_secs(3)),
        uncordon_on_failure: true,
        ..fast()
    }
}

async fn drain_hostile(h: &Hostile) -> Result<kdrain::Report, DrainError> {
    let d = Drainer::new(h.client(), opts());
    bounded(d.drain(&["n1".to_string()])).await
}

#[tokio::test]
async fn a_truncated_node_is_a_clear_error_and_nothing_is_written() {
    let full = node_json(false);
    let cut = full[..full.len() / 2].to_string();
    let h = Hostile::start(Arc::new(move |_: &Req| Reply::Json(200, cut.clone()))).await;
    let err = drain_hostile(&h).await.expect_err("malformed node");
    let msg = err.to_string();
    assert!(msg.contains("reading node n1"), "{msg}");
    assert!(matches!(err, DrainError::BadResponse { .. }), "{err:?}");
    assert_eq!(err.kind(), kdrain::ErrorKind::Failed);
    assert_eq!(h.writes(), Vec::<String>::new());
}

#[tokio::test]
async fn a_body_cut_by_the_connection_is_retried_then_a_clear_error() {
    let full = node_json(false);
    let raw = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        full.len(),
        &full[..10]
    );
    let h = Hostile::start(Arc::new(move |_: &Req| {
        Reply::Raw(raw.clone().into_bytes())
    }))
    .await;
    let err = drain_hostile(&h).await.expect_err("cut body");
    assert!(err.to_string().contains("reading node n1"), "{err}");
    assert_eq!(
        h.seen.lock().unwrap().len(),
        6,
        "retried as a transient failure"
    );
    assert_eq!(h.writes(), Vec::<String>::new());
}

#[tokio::test]
async fn a_wrong_kind_is_a_clear_error_and_nothing_is_written() {
    let pod = pod_json(0).to_string();
    let h = Hostile::start(Arc::new(move |_: &Req| Reply::Json(200, pod.clone()))).await;
    let err = drain_hostile(&h)
        .await
        .expect_err("a Pod where a Node belongs");
    let msg = err.to_string();
    assert!(
        msg.contains("reading node n1") && msg.contains("Node"),
        "{msg}"
    );
    assert_eq!(h.writes(), Vec::<String>::new());
}

#[tokio::test]
async fn a_truncated_pod_list_stops_before_any_change() {
    let h = Hostile::start(router(|_| {
        let l = pod_list(vec![pod_json(0), pod_json(1)], None);
        Reply::Json(200, l[..l.len() - 7].to_string())
    }))
    .await;
    let err = drain_hostile(&h).await.expect_err("malformed list");
    assert!(
        err.to_string().contains("listing the pods of node n1"),
        "{err}"
    );
    assert_eq!(
        h.writes(),
        Vec::<String>::new(),
        "the plan reads before any write: no cordon, no eviction"
    );
}

#[tokio::test]
async fn pods_missing_their_identity_are_refused_not_evicted() {
    let h = Hostile::start(router(|_| {
        let mut nameless = pod_json(1);
        nameless["metadata"]
            .as_object_mut()
            .unwrap()
            .retain(|k, _| k != "uid" && k != "name");
        Reply::Json(200, pod_list(vec![pod_json(0), nameless], None))
    }))
    .await;
    let err = drain_hostile(&h)
        .await
        .expect_err("a pod without name or uid");
    assert!(matches!(err, DrainError::BadResponse { .. }), "{err:?}");
    assert!(err.to_string().contains("metadata"), "{err}");
    assert!(
        h.writes()
            .iter()
            .all(|w| w.starts_with("PATCH /api/v1/nodes/")),
        "no eviction: {:?}",
        h.writes()
    );
}

#[tokio::test]
async fn a_list_that_never_ends_is_refused() {
    let h = Hostile::start(router(|_| {
        Reply::Json(200, pod_list(vec![pod_json(0)], Some("again")))
    }))
    .await;
    let err = drain_hostile(&h).await.expect_err("endless paging");
    assert!(err.to_string().contains("continue"), "{err}");
    let lists = h
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path() == "/api/v1/pods")
        .count();
    assert!(lists <= 3, "{lists} pages requested");
    assert!(
        h.writes()
            .iter()
            .all(|w| w.starts_with("PATCH /api/v1/nodes/"))
    );
}

#[tokio::test]
async fn a_huge_list_is_planned_without_trouble() {
    let h = Hostile::start(router(|_| {
        Reply::Json(200, pod_list((0..20_000).map(pod_json).collect(), None))
    }))
    .await;
    let d = Drainer::new(h.client(), opts());
    let plan = bounded(d.plan(&["n1".to_string()])).await.expect("plan");
    assert_eq!(plan.evictions(), 20_000);
    assert_eq!(h.writes(), Vec::<String>::new(), "a plan only reads");
}

#[tokio::test]
async fn garbage_answers_to_evictions_end_in_a_truthful_report() {
    // Node, list and budgets are fine; every eviction gets an HTML error page; watches end at once.
    let h = Hostile::start(router(|r| {
        if r.method == "POST" {
            return Reply::Json(500, "<html>oops".into());
        }
        if r.is_watch() {
            return Reply::Json(200, String::new());
        }
        Reply::Json(200, pod_list(vec![pod_json(0)], None))
    }))
    .await;
    let err = drain_hostile(&h)
        .await
        .expect_err("nothing could be evicted");
    let report = err.report().expect("a report");
    let pod = &report.nodes[0].pods[0];
    assert!(pod.is_pending());
    assert!(pod.accepted.is_none());
    assert_eq!(err.kind(), kdrain::ErrorKind::PodsLeft);
    let evictions = h
        .writes()
        .iter()
        .filter(|w| w.ends_with("/eviction"))
        .count();
    assert!(
        evictions >= 1 && evictions as u32 == pod.attempts,
        "{evictions} vs {}",
        pod.attempts
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_clear_error_in_bounded_time() {
    let h = Hostile::start(Arc::new(|_: &Req| Reply::Silence)).await;
    let d = Drainer::new(
        h.client_with_read_timeout(Duration::from_millis(300)),
        opts(),
    );
    let err = bounded(d.drain(&["n1".to_string()]))
        .await
        .expect_err("no answer");
    assert!(err.to_string().contains("reading node n1"), "{err}");
    assert_eq!(h.seen.lock().unwrap().len(), 6, "retried, then given up");
    assert_eq!(h.writes(), Vec::<String>::new());
}
