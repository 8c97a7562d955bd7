//! The shipped ClusterRole (deploy/rbac.yaml) with a real ServiceAccount token on the real
//! control plane: enough for a full drain and for a `--wait-for-capacity` rotation (which
//! watches the nodes), and without any one of its rules kdrain stops before any change (no
//! cordon, no eviction, no deletion in the audit log); but for `watch` on nodes, without which
//! the rotation still drains every node and says once that it lists the nodes instead.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use crate::cluster::{self, UpOptions, client_for};
use crate::materialise::materialise;
use crate::observer::{self, Observer};
use crate::paths::workspace_root;
use crate::pki::Pki;

const SA_USER: &str = "system:serviceaccount:kube-system:kdrain";

/// The documents of deploy/rbac.yaml.
fn shipped() -> Result<(ServiceAccount, ClusterRole, ClusterRoleBinding)> {
    let path = workspace_root().join("deploy").join("rbac.yaml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let (mut sa, mut role, mut binding) = (None, None, None);
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v: serde_json::Value = serde::Deserialize::deserialize(doc)?;
        match v["kind"].as_str() {
            Some("ServiceAccount") => sa = Some(serde_json::from_value(v)?),
            Some("ClusterRole") => role = Some(serde_json::from_value(v)?),
            Some("ClusterRoleBinding") => binding = Some(serde_json::from_value(v)?),
            _ => {}
        }
    }
    match (sa, role, binding) {
        (Some(a), Some(b), Some(c)) => Ok((a, b, c)),
        _ => bail!(
            "{} lacks a ServiceAccount, ClusterRole or ClusterRoleBinding",
            path.display()
        ),
    }
}

/// A pool rotation beside the demo (tainted, so that the demo's pods stay off it, and its pods
/// select its nodes), `POOL` standing for the pool's name: POOL-1 and POOL-2 (label
/// rot=POOL-old) each run the two 1-CPU pods of their own Deployment; POOL-spare has room for
/// one node's. Drained with `--wait-for-capacity`, one node waits until the other is drained and
/// brought back ([`bring_back`]). Each rotation runs on a pool of its own ([`POOLS`]), so each
/// starts from that state, whatever the one before left (a node still cordoned, pods moved).
const ROTATION: &str = r#"
nodes:
  - {name: POOL-spare, labels: {rot: POOL-spare, rotation: POOL}, allocatable: {cpu: "2"}, taints: [{key: kdrain.dev/rotation, effect: NoSchedule}]}
  - {name: POOL-1, labels: {rot: POOL-old, rotation: POOL}, allocatable: {cpu: "2"}, taints: [{key: kdrain.dev/rotation, effect: NoSchedule}]}
  - {name: POOL-2, labels: {rot: POOL-old, rotation: POOL}, allocatable: {cpu: "2"}, taints: [{key: kdrain.dev/rotation, effect: NoSchedule}]}
workloads:
  - {kind: Deployment, name: POOL-a, namespace: rotation, replicas: 2, nodes: [POOL-1], requests: {cpu: "1"}, nodeSelector: {rotation: POOL}, tolerations: [{key: kdrain.dev/rotation, operator: Exists, effect: NoSchedule}], terminationSeconds: 0.5, readySeconds: 0.5}
  - {kind: Deployment, name: POOL-b, namespace: rotation, replicas: 2, nodes: [POOL-2], requests: {cpu: "1"}, nodeSelector: {rotation: POOL}, tolerations: [{key: kdrain.dev/rotation, operator: Exists, effect: NoSchedule}], terminationSeconds: 0.5, readySeconds: 0.5}
"#;

/// The rotations' pools: the first for the run without watch on nodes, the second for the run
/// with every rule.
const POOLS: [&str; 2] = ["rot", "rot2"];

/// The rotation's drain of `pool`.
fn rotate_args(pool: &str) -> Vec<String> {
    let selector = format!("rot={pool}-old");
    [
        "drain",
        "-l",
        &selector,
        "--parallel",
        "10",
        "--wait-for-capacity",
    ]
    .map(str::to_string)
    .to_vec()
}

/// The patch operator of the rotation: makes each node of `pool` (rot=POOL-old) that is cordoned and empty (but
/// for DaemonSet pods) schedulable again, once. Runs until aborted.
async fn bring_back(admin: kube::Client, pool: String) -> Result<()> {
    use k8s_openapi::api::core::v1::{Node, Pod};
    use kube::api::{ListParams, Patch, PatchParams};
    let nodes: Api<Node> = Api::all(admin.clone());
    let pods: Api<Pod> = Api::all(admin);
    let mut done = HashSet::new();
    loop {
        for n in nodes
            .list(&ListParams::default().labels(&format!("rot={pool}-old")))
            .await?
            .items
        {
            let name = n.metadata.name.clone().unwrap_or_default();
            let cordoned = n.spec.and_then(|s| s.unschedulable).unwrap_or(false);
            if !cordoned || done.contains(&name) {
                continue;
            }
            let on = pods
                .list(&ListParams::default().fields(&format!("spec.nodeName={name}")))
                .await?;
            let daemon = |p: &Pod| {
                p.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.kind == "DaemonSet")
            };
            if on.items.iter().all(daemon) {
                let body = json!({"spec": {"unschedulable": false}});
                nodes
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&body))
                    .await?;
                done.insert(name);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the rotation's drain with `kubeconfig` while [`bring_back`] plays the operator: its
/// exit code and the lines its output says it cannot watch nodes.
async fn rotate(
    pool: &str,
    admin: &kube::Client,
    kdrain: &Path,
    kubeconfig: &Path,
    log: &Path,
) -> Result<(i32, Vec<String>)> {
    let operator = tokio::spawn(bring_back(admin.clone(), pool.to_string()));
    let args = rotate_args(pool);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let code = run_command(kdrain, kubeconfig, log, &args).await;
    operator.abort();
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let refused = text
        .lines()
        .filter(|l| l.starts_with("Warning: cannot watch nodes: "))
        .map(str::to_string)
        .collect();
    Ok((code?, refused))
}

pub(crate) fn token_kubeconfig(server: &str, ca_pem: &str, token: &str) -> String {
    use base64::Engine as _;
    let doc = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "real", "cluster": {"server": server, "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(ca_pem)}}],
        "users": [{"name": "kdrain", "user": {"token": token}}],
        "contexts": [{"name": "real", "context": {"cluster": "real", "user": "kdrain"}}],
        "current-context": "real",
    });
    serde_yaml::to_string(&doc).unwrap_or_default()
}

async fn run_kdrain(kdrain: &Path, kubeconfig: &Path, log: &Path, extra: &[&str]) -> Result<i32> {
    let mut args = vec![
        "drain",
        "n1",
        "--force",
        "--ignore-daemonsets",
        "--delete-emptydir-data",
    ];
    args.extend(extra);
    run_command(kdrain, kubeconfig, log, &args).await
}

async fn run_command(kdrain: &Path, kubeconfig: &Path, log: &Path, args: &[&str]) -> Result<i32> {
    let out = std::fs::File::create(log)?;
    let err = out.try_clone()?;
    let status = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(kdrain)
            .args(args)
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .status(),
    )
    .await
    .context("kdrain did not finish within 120 s")??;
    Ok(status.code().unwrap_or(-1))
}

/// Returns the report section; errors when a check fails.
pub async fn check(up: &UpOptions, kdrain: &Path, out: &Path) -> Result<String> {
    let cluster = cluster::up(up).await?;
    let result = check_on(&cluster.state, kdrain, out).await;
    cluster.stop();
    result
}

async fn check_on(state: &cluster::State, kdrain: &Path, out: &Path) -> Result<String> {
    let admin = client_for(&std::fs::read_to_string(&state.kubeconfig)?).await?;
    let pki = Pki {
        dir: state.dir.join("pki"),
    };
    let mut sc = kubesim::Scenario::from_file(&workspace_root().join("scenarios/demo.yaml"))?;
    // the demo's DaemonSets stay on the demo's nodes (the rotation's are tainted)
    let demo_nodes: Vec<String> = sc.nodes.iter().filter_map(|n| n.name.clone()).collect();
    for w in &mut sc.workloads {
        if w.kind == kubesim::WorkloadKind::DaemonSet && w.nodes.is_empty() {
            w.nodes = demo_nodes.clone();
        }
    }
    for pool in POOLS {
        let rotation = kubesim::Scenario::from_yaml_str(&ROTATION.replace("POOL", pool))?;
        sc.nodes.extend(rotation.nodes);
        sc.workloads.extend(rotation.workloads);
    }
    materialise(&admin, &pki, &state.server, &sc).await?;
    let (sa, role, binding) = shipped()?;
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "kube-system");
    sas.create(&PostParams::default(), &sa).await?;
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    let role = roles.create(&PostParams::default(), &role).await?;
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&PostParams::default(), &binding)
        .await?;
    let req: TokenRequest = serde_json::from_value(
        json!({"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}),
    )?;
    let token: TokenRequest = sas
        .create_subresource("token", "kdrain", &PostParams::default(), &req)
        .await?;
    let token = token.status.and_then(|s| s.token).unwrap_or_default();
    let kc = out.join("rbac.kubeconfig");
    std::fs::write(&kc, token_kubeconfig(&state.server, &pki.ca_pem()?, &token))?;
    let mut report = String::from(
        "## The shipped ClusterRole with a ServiceAccount token (scenarios/demo.yaml, drain n1)\n\n",
    );
    let rules = role.rules.clone().unwrap_or_default();
    let watches_nodes = |r: &k8s_openapi::api::rbac::v1::PolicyRule| {
        r.verbs == ["watch"] && r.resources.as_deref() == Some(&["nodes".to_string()][..])
    };
    if !rules.iter().any(watches_nodes) {
        bail!("deploy/rbac.yaml has no rule of its own for watch on nodes");
    }
    // Without each rule: kdrain must stop before any change (without watch on nodes, the
    // rotation must still drain, saying so once).
    for (i, rule) in rules.iter().enumerate() {
        let mut fewer = role.clone();
        let mut rs = rules.clone();
        rs.remove(i);
        fewer.rules = Some(rs);
        fewer.metadata.resource_version = None;
        let current = roles.get("kdrain").await?;
        fewer.metadata.resource_version = current.metadata.resource_version;
        roles
            .replace("kdrain", &PostParams::default(), &fewer)
            .await?;
        // The authorizer reads roles from an informer: give it a moment.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let what = format!(
            "{:?} {:?}",
            rule.verbs,
            rule.resources.clone().unwrap_or_default()
        );
        if watches_nodes(rule) {
            let since = jiff::Timestamp::now();
            let log = out.join(format!("rbac-without-rule-{i}.log"));
            let (code, refused) = rotate(POOLS[0], &admin, kdrain, &kc, &log).await?;
            let reqs = observer::client_requests(&state.audit_log, SA_USER, since)?;
            let watch = |code: u16| {
                reqs.iter()
                    .filter(|r| {
                        r.key.verb == "watch" && r.key.resource == "nodes" && r.key.code == code
                    })
                    .count()
            };
            let evictions = reqs
                .iter()
                .filter(|r| r.key.subresource == "eviction" && r.key.code == 201 && !r.dry_run)
                .count();
            if code != 0 || refused.len() != 1 || watch(403) == 0 || evictions != 4 {
                bail!(
                    "without {what}: the rotation exited {code} after {evictions} evictions (4 expected), {} watches of nodes refused, saying {} time(s) that it cannot watch nodes (once expected; log {})",
                    watch(403),
                    refused.len(),
                    log.display()
                );
            }
            let _ = writeln!(
                report,
                "- without {what}: the `--wait-for-capacity` rotation (rot-1, rot-2; one waits for the other to come back) still drains: exit 0, {evictions} evictions, {} watches of nodes refused (403), said once: \"{}\"",
                watch(403),
                refused[0]
            );
            continue;
        }
        let deletion = rule.verbs.iter().any(|v| v == "delete");
        let extra: &[&str] = if deletion {
            &["--disable-eviction"]
        } else {
            &[]
        };
        let since = jiff::Timestamp::now();
        let log = out.join(format!("rbac-without-rule-{i}.log"));
        let code = run_kdrain(kdrain, &kc, &log, extra).await?;
        let reqs = observer::client_requests(&state.audit_log, SA_USER, since)?;
        let changes = reqs
            .iter()
            .filter(|r| {
                !r.dry_run
                    && matches!(
                        r.key.verb.as_str(),
                        "patch" | "update" | "delete" | "create"
                    )
            })
            .filter(|r| r.key.code < 300 && r.key.resource != "selfsubjectaccessreviews")
            .count();
        let msg = std::fs::read_to_string(&log).unwrap_or_default();
        let line = msg
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .to_string();
        if code == 0 || changes > 0 {
            bail!(
                "without {what}{}: kdrain exited {code} after {changes} changes (log {})",
                if deletion {
                    " (with --disable-eviction)"
                } else {
                    ""
                },
                log.display()
            );
        }
        let _ = writeln!(
            report,
            "- without {what}: exit {code}, no change; \"{line}\""
        );
    }
    let mut full = role.clone();
    full.metadata.resource_version = roles.get("kdrain").await?.metadata.resource_version;
    roles
        .replace("kdrain", &PostParams::default(), &full)
        .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let observer = Observer::start(&admin).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let since = jiff::Timestamp::now();
    let log = out.join("rbac-full-role.log");
    let code = run_kdrain(kdrain, &kc, &log, &[]).await?;
    let reqs = observer::client_requests(&state.audit_log, SA_USER, since)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let findings = observer.findings(&reqs, &HashSet::from(["n1".to_string()]));
    observer.stop();
    let forbidden = reqs.iter().filter(|r| r.key.code == 403).count();
    if code != 0 || !findings.is_empty() || forbidden > 0 {
        bail!(
            "with the shipped role: kdrain exited {code}, {} findings, {forbidden} requests refused (log {})",
            findings.len(),
            log.display()
        );
    }
    // the rotation again, with every rule: it watches the nodes, nothing refused
    let since = jiff::Timestamp::now();
    let log = out.join("rbac-full-role-rotation.log");
    let (code, refused) = rotate(POOLS[1], &admin, kdrain, &kc, &log).await?;
    let rot = observer::client_requests(&state.audit_log, SA_USER, since)?;
    let forbidden = rot.iter().filter(|r| r.key.code == 403).count();
    let watched = rot
        .iter()
        .filter(|r| r.key.verb == "watch" && r.key.resource == "nodes" && r.key.code == 200)
        .count();
    if code != 0 || forbidden > 0 || watched == 0 || !refused.is_empty() {
        bail!(
            "with the shipped role the rotation exited {code}, {forbidden} requests refused, {watched} watches of nodes (log {})",
            log.display()
        );
    }
    let _ = writeln!(
        report,
        "- with every rule: exit 0, {} requests, none refused, 0 findings; the `--wait-for-capacity` rotation: exit 0, {} requests ({watched} watches of nodes), none refused\n",
        reqs.len(),
        rot.len()
    );
    Ok(report)
}
