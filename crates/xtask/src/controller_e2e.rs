//! `kdrain controller` on the real control plane (issue 12): the CRD and the controller's RBAC
//! of deploy/controller applied through the API server, the controller run as a process with
//! its ServiceAccount's token, a NodeDrain for n1 of scenarios/demo.yaml followed to phase
//! Drained; then its status (pods gone/total, conditions), the Events on it and on the node,
//! the node's `kdrain.io/cordoned-by` annotation, and the observer's invariant findings.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::json;

use crate::cluster::{self, UpOptions, client_for};
use crate::materialise::materialise;
use crate::observer::{self, Observer};
use crate::paths::workspace_root;
use crate::pki::Pki;

const NAMESPACE: &str = "kdrain-system";
const SA: &str = "kdrain-controller";
const SA_USER: &str = "system:serviceaccount:kdrain-system:kdrain-controller";
/// How long the NodeDrain may take to reach Drained.
const DEADLINE: Duration = Duration::from_secs(180);

/// Returns the report section; errors when a check fails.
pub async fn check(up: &UpOptions, kdrain: &Path, kubectl: &Path, out: &Path) -> Result<String> {
    let cluster = cluster::up(up).await?;
    let result = check_on(&cluster.state, kdrain, kubectl, out).await;
    let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
    result
}

fn nodedrains() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kdrain.io", "v1alpha1", "NodeDrain"),
        "nodedrains",
    )
}

async fn kubectl_ok(kubectl: &Path, kubeconfig: &Path, args: &[&str], log: &Path) -> Result<()> {
    let out = tokio::process::Command::new(kubectl)
        .args(args)
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .output()
        .await
        .with_context(|| format!("cannot run {}", kubectl.display()))?;
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let mut prev = std::fs::read_to_string(log).unwrap_or_default();
    prev.push_str(&format!("$ kubectl {}\n{text}\n", args.join(" ")));
    std::fs::write(log, prev)?;
    if !out.status.success() {
        bail!("kubectl {} failed: {}", args.join(" "), text.trim());
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn check_on(
    state: &cluster::State,
    kdrain: &Path,
    kubectl: &Path,
    out: &Path,
) -> Result<String> {
    let admin = client_for(&std::fs::read_to_string(&state.kubeconfig)?).await?;
    let pki = Pki {
        dir: state.dir.join("pki"),
    };
    let sc = kubesim::Scenario::from_file(&workspace_root().join("scenarios/demo.yaml"))?;
    materialise(&admin, &pki, &state.server, &sc).await?;
    // the manifests, through the API server (not the Deployment: the controller runs here)
    let deploy = workspace_root().join("deploy").join("controller");
    let kubectl_log = out.join("controller-kubectl.log");
    let _ = std::fs::remove_file(&kubectl_log);
    let file = |name: &str| deploy.join(name).display().to_string();
    let (crd, ns, rbac) = (file("crd.yaml"), file("namespace.yaml"), file("rbac.yaml"));
    kubectl_ok(
        kubectl,
        &state.kubeconfig,
        &["apply", "-f", &crd, "-f", &ns, "-f", &rbac],
        &kubectl_log,
    )
    .await?;
    kubectl_ok(
        kubectl,
        &state.kubeconfig,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/nodedrains.kdrain.io",
        ],
        &kubectl_log,
    )
    .await?;
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), NAMESPACE);
    let req: TokenRequest = serde_json::from_value(
        json!({"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}),
    )?;
    let token: TokenRequest = sas
        .create_subresource("token", SA, &PostParams::default(), &req)
        .await?;
    let token = token.status.and_then(|s| s.token).unwrap_or_default();
    let kc = out.join("controller.kubeconfig");
    std::fs::write(
        &kc,
        crate::rbac::token_kubeconfig(&state.server, &pki.ca_pem()?, &token),
    )?;
    // the authorizer reads the new bindings from an informer: give it a moment
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let observer = Observer::start(&admin).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let since = jiff::Timestamp::now();
    let log = out.join("controller-real.log");
    let port = free_port()?;
    let mut controller = tokio::process::Command::new(kdrain)
        .args([
            "controller",
            &format!("--kubeconfig={}", kc.display()),
            &format!("--metrics-addr=127.0.0.1:{port}"),
            "--identity=e2e",
        ])
        .env("RUST_LOG", "info")
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::create(out.join("controller-real.err.log"))?)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {} controller", kdrain.display()))?;
    let result = follow(&admin, &mut controller, port).await;
    let _ = controller.kill().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reqs = observer::client_requests(&state.audit_log, SA_USER, since)?;
    let findings = observer.findings(&reqs, &HashSet::from(["n1".to_string()]));
    observer.stop();
    let mut report = result?;
    let forbidden: Vec<String> = reqs
        .iter()
        .filter(|r| r.key.code == 403)
        .map(|r| format!("{} {}", r.key.verb, r.key.resource))
        .collect();
    if !findings.is_empty() || !forbidden.is_empty() {
        bail!(
            "the controller caused {} invariant findings and {} refused requests ({}); log {}",
            findings.len(),
            forbidden.len(),
            forbidden.join(", "),
            log.display()
        );
    }
    let _ = writeln!(
        report,
        "- the controller's requests (its ServiceAccount, from the audit log): {} in all, none refused; 0 invariant findings\n",
        reqs.len()
    );
    Ok(report)
}

/// Creates the NodeDrain, waits for Drained and checks what it left; returns the report lines.
async fn follow(
    admin: &kube::Client,
    controller: &mut tokio::process::Child,
    port: u16,
) -> Result<String> {
    let ar = nodedrains();
    let api: Api<DynamicObject> = Api::all_with(admin.clone(), &ar);
    let mut nd = DynamicObject::new("e2e-n1", &ar);
    nd.data = json!({"spec": {
        "nodeNames": ["n1"], "reason": "e2e", "force": true,
        "ignoreDaemonSets": true, "deleteEmptyDirData": true, "timeout": "150s",
    }});
    let started = Instant::now();
    api.create(&PostParams::default(), &nd).await?;
    let mut phases: Vec<String> = Vec::new();
    let drained = loop {
        if let Some(status) = controller.try_wait()? {
            bail!("the controller exited ({status}) before the NodeDrain was drained");
        }
        let now = api.get("e2e-n1").await?;
        let phase = now.data["status"]["phase"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if !phase.is_empty() && phases.last() != Some(&phase) {
            phases.push(phase.clone());
        }
        match phase.as_str() {
            "Drained" => break now,
            "Failed" | "Refused" => bail!(
                "the NodeDrain ended {phase}: {}",
                serde_json::to_string(&now.data["status"]["conditions"])?
            ),
            _ => {}
        }
        if started.elapsed() > DEADLINE {
            bail!(
                "the NodeDrain was not Drained within {DEADLINE:?} (phases {phases:?}); status {}",
                serde_json::to_string(&now.data["status"])?
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    let status = &drained.data["status"];
    let mut problems = Vec::new();
    // pods gone / total
    let pods = status["podsSummary"].as_str().unwrap_or("").to_string();
    match pods.split_once('/') {
        Some((gone, total)) if gone == total && gone != "0" => {}
        _ => problems.push(format!("podsSummary {pods:?}, want every pod gone")),
    }
    let condition = |t: &str| {
        status["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == t))
            .map(|c| {
                (
                    c["status"].as_str().unwrap_or("").to_string(),
                    c["reason"].as_str().unwrap_or("").to_string(),
                )
            })
    };
    for (t, reason) in [
        ("Planned", "Planned"),
        ("Cordoned", "Cordoned"),
        ("Drained", "Drained"),
    ] {
        if condition(t) != Some(("True".into(), reason.into())) {
            problems.push(format!(
                "condition {t}: {:?}, want True/{reason}",
                condition(t)
            ));
        }
    }
    // the node: cordoned, marked as this NodeDrain's
    let node = Api::<Node>::all(admin.clone()).get("n1").await?;
    let unschedulable = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let mark = node
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kdrain.io/cordoned-by").cloned());
    if !unschedulable || mark.as_deref() != Some("nodedrain/e2e-n1") {
        problems.push(format!(
            "node n1: unschedulable {unschedulable}, kdrain.io/cordoned-by {mark:?}; want true and \"nodedrain/e2e-n1\""
        ));
    }
    // the Events, on the NodeDrain and on the node
    let events = Api::<Event>::all(admin.clone())
        .list(&Default::default())
        .await?;
    let reasons = |kind: &str, name: &str| -> Vec<String> {
        let mut r: Vec<String> = events
            .items
            .iter()
            .filter(|e| {
                e.regarding.as_ref().is_some_and(|o| {
                    o.kind.as_deref() == Some(kind) && o.name.as_deref() == Some(name)
                })
            })
            .filter_map(|e| e.reason.clone())
            .collect();
        r.sort();
        r.dedup();
        r
    };
    let on_drain = reasons("NodeDrain", "e2e-n1");
    let on_node = reasons("Node", "n1");
    for want in ["Planned", "DrainStarted", "Drained"] {
        if !on_drain.iter().any(|r| r == want) {
            problems.push(format!(
                "no {want} Event on the NodeDrain (has {on_drain:?})"
            ));
        }
    }
    for want in ["Cordoned", "Drained"] {
        if !on_node.iter().any(|r| r == want) {
            problems.push(format!("no {want} Event on node n1 (has {on_node:?})"));
        }
    }
    // the metrics endpoint answers with the drain counted
    let metrics = metrics_page(port).await.unwrap_or_default();
    let counted = "kdrain_drains_total{result=\"drained\"} 1";
    if !metrics.lines().any(|l| l == counted) {
        problems.push(format!("the /metrics page lacks the line {counted}"));
    }
    if !problems.is_empty() {
        bail!("after the drain: {}", problems.join("; "));
    }
    Ok(format!(
        "## `kdrain controller` with its ServiceAccount token (deploy/controller applied; scenarios/demo.yaml, NodeDrain for n1)\n\n\
         - phases {}, Drained in {seconds:.1} s; pods {pods}; conditions Planned, Cordoned, Drained True\n\
         - node n1 unschedulable with kdrain.io/cordoned-by=nodedrain/e2e-n1\n\
         - Events on the NodeDrain: {}; on node n1: {}\n\
         - /metrics: {counted}\n",
        phases.join(" → "),
        on_drain.join(", "),
        on_node.join(", "),
    ))
}

/// GETs /metrics from the controller (plain HTTP/1.0 on a TcpStream: no HTTP client crate
/// needed for one page).
async fn metrics_page(port: u16) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await?;
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut body)).await??;
    Ok(body)
}
