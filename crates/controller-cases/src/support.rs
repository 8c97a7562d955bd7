//! What the cases share: creating and changing NodeDrains, bounded waits, reading nodes, pods
//! and conditions, as an administrator through the kube client.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kdrain_controller::{NodeDrain, Phase};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;

use crate::{Cluster, Query, Scope};

/// Every wait of a case is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(90);

/// The NodeDrains.
pub fn nodedrains<C: Cluster>(c: &C) -> Api<NodeDrain> {
    Api::all(c.client())
}

/// Creates a NodeDrain from the YAML of its spec (through the Rust types).
pub async fn create<C: Cluster>(c: &C, name: &str, spec_yaml: &str) -> Result<NodeDrain> {
    let spec = serde_yaml::from_str(spec_yaml).context("spec YAML")?;
    Ok(nodedrains(c)
        .create(&PostParams::default(), &NodeDrain::new(name, spec))
        .await?)
}

/// Creates a NodeDrain from the YAML of its spec as given, without the Rust types' checks (for
/// what only the server's schema rejects).
pub async fn create_raw<C: Cluster>(c: &C, name: &str, spec_yaml: &str) -> kube::Result<()> {
    let ar = ApiResource::erase::<NodeDrain>(&());
    let api: Api<DynamicObject> = Api::all_with(c.client(), &ar);
    let spec: serde_json::Value = serde_yaml::from_str(spec_yaml).unwrap_or_default();
    let mut obj = DynamicObject::new(name, &ar);
    obj.data = serde_json::json!({ "spec": spec });
    api.create(&PostParams::default(), &obj).await.map(|_| ())
}

/// Sets the stage of NodeDrain `name`.
pub async fn set_stage<C: Cluster>(c: &C, name: &str, stage: &str) -> Result<()> {
    let body = serde_json::json!({"spec": {"stage": stage}});
    nodedrains(c)
        .patch(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
        .with_context(|| format!("setting stage {stage} of {name}"))?;
    Ok(())
}

/// Waits until `check` is true (an error naming `what` after [`LIMIT`]).
pub async fn until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !check().await {
        if tokio::time::Instant::now() > deadline {
            bail!("not {what} within {LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Waits until NodeDrain `name` satisfies `pred`; the error shows its last status.
pub async fn wait<C: Cluster>(
    c: &C,
    name: &str,
    what: &str,
    pred: impl Fn(&NodeDrain) -> bool,
) -> Result<NodeDrain> {
    let api = nodedrains(c);
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let nd = api.get_opt(name).await?;
        if let Some(nd) = &nd
            && pred(nd)
        {
            return Ok(nd.clone());
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "NodeDrain {name}: not {what} within {LIMIT:?}; last status: {}",
                serde_json::to_string(&nd.map(|n| n.status))?
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until NodeDrain `name` is in `phase`.
pub async fn wait_phase<C: Cluster>(c: &C, name: &str, phase: Phase) -> Result<NodeDrain> {
    wait(c, name, &format!("{phase:?}"), |nd| {
        phase_of(nd) == Some(phase)
    })
    .await
}

/// Waits until NodeDrain `name` is gone (finalized).
pub async fn wait_gone<C: Cluster>(c: &C, name: &str) -> Result<()> {
    let api = nodedrains(c);
    until(&format!("{name} finalized"), || {
        let api = api.clone();
        async move { matches!(api.get_opt(name).await, Ok(None)) }
    })
    .await
}

/// Node `name`.
pub async fn node<C: Cluster>(c: &C, name: &str) -> Result<Node> {
    Ok(Api::<Node>::all(c.client()).get(name).await?)
}

/// The names of the pods on node `name` that are not terminating.
pub async fn pods_on<C: Cluster>(c: &C, name: &str) -> Result<Vec<String>> {
    pods_on_node(&c.client(), name).await
}

/// The names of the pods on node `name` that are not terminating, read through `client`.
pub async fn pods_on_node(client: &kube::Client, name: &str) -> Result<Vec<String>> {
    let lp = ListParams::default().fields(&format!("spec.nodeName={name}"));
    let mut names: Vec<String> = Api::<Pod>::all(client.clone())
        .list(&lp)
        .await?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.name)
        .collect();
    names.sort();
    Ok(names)
}

/// The phase of a NodeDrain.
pub fn phase_of(nd: &NodeDrain) -> Option<Phase> {
    nd.status.as_ref().and_then(|s| s.phase)
}

/// The condition `type_` of a NodeDrain: (status, reason, message).
pub fn condition(nd: &NodeDrain, type_: &str) -> Option<(String, String, String)> {
    nd.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// `spec.unschedulable` and the `kdrain.io/cordoned-by` annotation of node `name`.
pub async fn cordon_state<C: Cluster>(c: &C, name: &str) -> Result<(bool, Option<String>)> {
    Ok(cordon_state_of(&node(c, name).await?))
}

/// `spec.unschedulable` and the `kdrain.io/cordoned-by` annotation of a node read already.
pub fn cordon_state_of(node: &Node) -> (bool, Option<String>) {
    (
        node.spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
        node.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("kdrain.io/cordoned-by").cloned()),
    )
}

/// Evictions of pods in `namespace` answered `code`.
pub async fn evictions<C: Cluster>(c: &C, namespace: &str, code: Option<u16>) -> Result<u64> {
    c.requests(Query {
        verb: "create",
        resource: "pods",
        subresource: "eviction",
        code,
        scope: Scope::Namespace(namespace),
    })
    .await
}

/// PATCHes of nodes `names` (cordons, uncordons).
pub async fn node_patches<C: Cluster>(c: &C, names: &[&str]) -> Result<u64> {
    c.requests(Query {
        verb: "patch",
        resource: "nodes",
        subresource: "",
        code: None,
        scope: Scope::Names(names),
    })
    .await
}

/// An error unless there is no invariant finding about `namespace` for a drain of `targets`.
pub async fn no_findings<C: Cluster>(c: &C, namespace: &str, targets: &[&str]) -> Result<()> {
    let findings = c.findings(namespace, targets).await?;
    if !findings.is_empty() {
        bail!("invariant findings: {findings:?}");
    }
    Ok(())
}

/// Every distinct phase NodeDrain `name` goes through, in order, from a watch (until dropped).
pub struct PhaseRecorder {
    seen: Arc<Mutex<Vec<Phase>>>,
    task: tokio::task::JoinHandle<()>,
}

impl PhaseRecorder {
    /// Starts watching NodeDrain `name`; returns once the watch is established (its first
    /// LIST answered), so that every change made after that is seen.
    pub async fn start<C: Cluster>(c: &C, name: &str) -> Result<PhaseRecorder> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let stream = watcher::watcher(nodedrains(c), cfg);
        let out = seen.clone();
        let (ready_tx, ready) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            let mut ready_tx = Some(ready_tx);
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(watcher::Event::InitDone) => {
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                        if let Some(p) = phase_of(&o) {
                            let mut v = out.lock().unwrap_or_else(|p| p.into_inner());
                            if v.last() != Some(&p) {
                                v.push(p);
                            }
                        }
                    }
                    _ => {}
                }
            }
        });
        let recorder = PhaseRecorder { seen, task };
        tokio::time::timeout(LIMIT, ready)
            .await
            .context("the NodeDrain watch did not start")?
            .context("the NodeDrain watch ended")?;
        Ok(recorder)
    }

    /// The phases seen so far.
    pub fn phases(&self) -> Vec<Phase> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for PhaseRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `Err(message)` unless `cond`.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            anyhow::bail!($($arg)+);
        }
    };
}

/// `Err` unless `left == right`, showing both.
#[macro_export]
macro_rules! check_eq {
    ($left:expr, $right:expr $(,)?) => {
        match (&$left, &$right) {
            (l, r) => {
                if l != r {
                    anyhow::bail!("{} == {}: {:?} != {:?}", stringify!($left), stringify!($right), l, r);
                }
            }
        }
    };
    ($left:expr, $right:expr, $($arg:tt)+) => {
        match (&$left, &$right) {
            (l, r) => {
                if l != r {
                    anyhow::bail!("{:?} != {:?}: {}", l, r, format!($($arg)+));
                }
            }
        }
    };
}

/// GET `path` from a controller's HTTP endpoint at `addr` (`/metrics`, `/healthz`, `/readyz`):
/// its status code and body. One plain HTTP/1.1 request, answered within 5 s.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out)).await??;
    let code = out.get(9..12).context("no status line")?.parse()?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}
