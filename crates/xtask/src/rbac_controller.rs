//! Each rule of the controller's ClusterRole and Lease Role (deploy/controller/rbac.yaml) is
//! needed, on the real control plane: with the rule removed, `kdrain controller` (its
//! ServiceAccount's token) names the missing verb and resource (its start-up check on stderr,
//! or the NodeDrain's condition `Refused`/`Forbidden` for the rights a drain checks before its
//! first change) and changes no node and no pod. One run per rule, each with a NodeDrain for a
//! node of its own; the rule is put back after its run. That the roles are enough is shown by
//! the cases (no request of the controller refused).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use kdrain_controller::NodeDrain;
use kdrain_controller_cases::Cluster;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

use crate::controller_e2e::{NAMESPACE, RealCluster, SA_USER};
use crate::observer;

/// Ten nodes, one per run, each with a pod of `web` and one of the DaemonSet `agent` (so that
/// the drain reads the DaemonSet), and a spare node for the replacements.
pub(crate) const SCENARIO: &str = r#"
nodes:
  - {name: rbac-1, labels: {case: rbac}}
  - {name: rbac-2, labels: {case: rbac}}
  - {name: rbac-3, labels: {case: rbac}}
  - {name: rbac-4, labels: {case: rbac}}
  - {name: rbac-5, labels: {case: rbac}}
  - {name: rbac-6, labels: {case: rbac}}
  - {name: rbac-7, labels: {case: rbac}}
  - {name: rbac-8, labels: {case: rbac}}
  - {name: rbac-9, labels: {case: rbac}}
  - {name: rbac-10, labels: {case: rbac}}
  - {name: rbac-11, labels: {case: rbac}}
workloads:
  - {kind: Deployment, name: web, namespace: rbac, replicas: 10, nodes: [rbac-1, rbac-2, rbac-3, rbac-4, rbac-5, rbac-6, rbac-7, rbac-8, rbac-9, rbac-10], nodeSelector: {case: rbac}, readySeconds: 0.2}
  - {kind: DaemonSet, name: agent, namespace: rbac, nodes: [rbac-1, rbac-2, rbac-3, rbac-4, rbac-5, rbac-6, rbac-7, rbac-8, rbac-9, rbac-10]}
"#;

/// How long the controller may take to name the missing right.
const LIMIT: Duration = Duration::from_secs(30);

fn describe(rule: &PolicyRule) -> (Vec<String>, Vec<String>, String) {
    let resources = rule.resources.clone().unwrap_or_default();
    let group = rule
        .api_groups
        .as_ref()
        .and_then(|g| g.first().cloned())
        .unwrap_or_default();
    (rule.verbs.clone(), resources, group)
}

/// The rule set with rule `i` of `kind` removed, or restored (`i` None).
async fn set_rules(
    admin: &kube::Client,
    kind: &str,
    cluster_rules: &[PolicyRule],
    lease_rules: &[PolicyRule],
    removed: Option<usize>,
) -> Result<()> {
    let keep = |rules: &[PolicyRule], mine: bool| -> Vec<PolicyRule> {
        rules
            .iter()
            .enumerate()
            .filter(|(j, _)| !(mine && removed == Some(*j)))
            .map(|(_, r)| r.clone())
            .collect()
    };
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    let mut role = roles.get("kdrain-controller").await?;
    role.rules = Some(keep(cluster_rules, kind == "ClusterRole"));
    roles
        .replace("kdrain-controller", &PostParams::default(), &role)
        .await?;
    let leases: Api<Role> = Api::namespaced(admin.clone(), NAMESPACE);
    let mut role = leases.get("kdrain-controller-lease").await?;
    role.rules = Some(keep(lease_rules, kind == "Role"));
    leases
        .replace("kdrain-controller-lease", &PostParams::default(), &role)
        .await?;
    Ok(())
}

/// Where the controller named each verb of the rule: the line, or None when it did not (yet).
fn named(
    log: &str,
    nd: Option<&NodeDrain>,
    verbs: &[String],
    resources: &[String],
) -> Option<String> {
    // Refused: reason Forbidden (the drain's own check), or PlanRefused when the plan's reads
    // were refused (a DaemonSet it could not read: the API server's 403 message)
    let condition = nd
        .and_then(|nd| nd.status.as_ref())
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Planned"))
        .filter(|c| c.status == "False")
        .map(|c| format!("{}: {}", c.reason, c.message));
    let mut found = Vec::new();
    for res in resources {
        for verb in verbs {
            let in_log = format!("missing permission: {verb} {res} ");
            let ours = format!("needs {verb} on {res}");
            let servers = format!("cannot {verb} resource \"{res}\"");
            if let Some(l) = log.lines().find(|l| l.contains(&in_log)) {
                // the right, as the line names it ("get nodes (API group core) cluster-wide")
                let right = l
                    .split_once("missing permission: ")
                    .map_or(l, |(_, r)| r.split(';').next().unwrap_or(r));
                found.push(format!("stderr: `missing permission: {right}`"));
            } else if let Some(m) = condition
                .as_ref()
                .filter(|m| m.contains(&ours) || m.contains(&servers))
            {
                found.push(format!("NodeDrain Refused, condition Planned=False {m}"));
            } else {
                return None;
            }
        }
    }
    found.dedup();
    Some(found.join(", "))
}

/// Returns the report section; errors on the first rule not proven needed.
pub(crate) async fn check(c: &RealCluster) -> Result<String> {
    let admin = c.client();
    let cluster_rules = Api::<ClusterRole>::all(admin.clone())
        .get("kdrain-controller")
        .await?
        .rules
        .unwrap_or_default();
    let lease_rules = Api::<Role>::namespaced(admin.clone(), NAMESPACE)
        .get("kdrain-controller-lease")
        .await?
        .rules
        .unwrap_or_default();
    let runs: Vec<(&str, usize, PolicyRule)> = cluster_rules
        .iter()
        .enumerate()
        .map(|(i, r)| ("ClusterRole", i, r.clone()))
        .chain(
            lease_rules
                .iter()
                .enumerate()
                .map(|(i, r)| ("Role", i, r.clone())),
        )
        .collect();
    let started = Instant::now();
    let mut report = String::from(
        "### RBAC: each rule of deploy/controller/rbac.yaml needed\n\n| rule removed | the controller said | changes to nodes and pods |\n|---|---|---|\n",
    );
    let api: Api<NodeDrain> = Api::all(admin.clone());
    for (n, (kind, i, rule)) in runs.iter().enumerate() {
        let (verbs, resources, group) = describe(rule);
        let what = format!(
            "{kind} `{}` {} ({})",
            verbs.join(","),
            resources.join(","),
            if group.is_empty() { "core" } else { &group }
        );
        set_rules(&admin, kind, &cluster_rules, &lease_rules, Some(*i)).await?;
        // the authorizer reads roles from an informer: give it a moment
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let since = jiff::Timestamp::now();
        let id = format!("rbac-{}", n + 1);
        let deletion = resources.iter().any(|r| r == "pods") && verbs.iter().any(|v| v == "delete");
        c.start_controller(&id).await?;
        let spec =
            format!("{{nodeNames: [{id}], ignoreDaemonSets: true, disableEviction: {deletion}}}");
        let nd = NodeDrain::new(&id, serde_yaml::from_str(&spec)?);
        api.create(&PostParams::default(), &nd).await?;
        let deadline = Instant::now() + LIMIT;
        let said = loop {
            let log = std::fs::read_to_string(c.log(&id)).unwrap_or_default();
            let now = api.get_opt(&id).await?;
            if let Some(line) = named(&log, now.as_ref(), &verbs, &resources) {
                break Some(line);
            }
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        c.kill_controller(&id).await?;
        let reqs = observer::client_requests(&c.state.audit_log, SA_USER, since)?;
        let changes: Vec<String> = reqs
            .iter()
            .filter(|r| !r.dry_run && r.key.code < 300)
            .filter(|r| {
                (r.key.verb == "patch" && r.key.resource == "nodes")
                    || (r.key.resource == "pods"
                        && (r.key.subresource == "eviction" || r.key.verb == "delete"))
            })
            .map(|r| format!("{} {} {}", r.key.verb, r.key.resource, r.object))
            .collect();
        // clean up: the NodeDrain (its finalizer, if the controller added it, removed first)
        let _ = api
            .patch(
                &id,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
            )
            .await;
        let _ = api.delete(&id, &Default::default()).await;
        set_rules(&admin, kind, &cluster_rules, &lease_rules, None).await?;
        let Some(said) = said else {
            bail!(
                "without {what}: the controller did not name {} on {} within {LIMIT:?} (log {})",
                verbs.join(","),
                resources.join(","),
                c.log(&id).display()
            );
        };
        if !changes.is_empty() {
            bail!(
                "without {what}: the controller changed {}",
                changes.join(", ")
            );
        }
        let writes = reqs
            .iter()
            .filter(|r| !r.dry_run && r.key.code < 300)
            .filter(|r| {
                matches!(
                    r.key.verb.as_str(),
                    "create" | "patch" | "update" | "delete"
                )
            })
            .filter(|r| r.key.resource != "selfsubjectaccessreviews")
            .count();
        let _ = writeln!(
            report,
            "| {what}{} | {} | none ({writes} writes in all: its NodeDrain's finalizer and status, Events) |",
            if deletion {
                " (NodeDrain with disableEviction)"
            } else {
                ""
            },
            said.replace('|', "\\|")
        );
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = writeln!(
        report,
        "\n{} rules, each found missing and nothing changed to a node or a pod, in {:.0} s.\n",
        runs.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(report)
}
