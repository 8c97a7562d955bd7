//! The shipped ClusterRole (deploy/rbac.yaml) with a real ServiceAccount token on the real
//! control plane: enough for a full drain, and without any one of its rules kdrain stops before
//! any change (no cordon, no eviction, no deletion in the audit log).

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
    let out = std::fs::File::create(log)?;
    let err = out.try_clone()?;
    let mut args = vec![
        "drain",
        "n1",
        "--force",
        "--ignore-daemonsets",
        "--delete-emptydir-data",
    ];
    args.extend(extra);
    let status = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(kdrain)
            .args(&args)
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
    let sc = kubesim::Scenario::from_file(&workspace_root().join("scenarios/demo.yaml"))?;
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
    // Without each rule: kdrain must stop before any change.
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
    let _ = writeln!(
        report,
        "- with every rule: exit 0, {} requests, none refused, 0 findings\n",
        reqs.len()
    );
    Ok(report)
}
