//! Least privilege and credentials: the ClusterRole in deploy/rbac.yaml is enough for every
//! command and each of its rules is needed; TLS is verified; tokens never reach the output.

use std::path::PathBuf;

use kubesim::{AuthSpec, BindingSpec, RoleSpec, RuleSpec, Scenario, Sim, SimOptions, UserSpec};

use crate::common::{ALL_FLAGS, Run, run_raw};
use crate::wait_for_capacity::{DRAIN, operator, rotation};

/// A distinctive token, so grepping the output for it cannot match anything else.
const TOKEN: &str = "kdrain-secret-token-7f3a9c1e5b";

/// n1 (label pool=a) carries a Deployment and a bare pod in `shop`, the Deployment under a
/// budget, and a DaemonSet pod in `kube-system`.
const CLUSTER: &str = r#"
nodes: [{name: n1, labels: {pool: a}}, {name: n2}]
namespaces: [{name: shop}]
workloads:
  - {kind: Deployment, name: web, namespace: shop, replicas: 2, labels: {app: web}, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.1}
  - {kind: Pod, name: bare, namespace: shop, nodes: [n1], terminationSeconds: 0.1}
  - {kind: DaemonSet, name: agent, namespace: kube-system, labels: {app: agent}}
pdbs:
  - {name: web, namespace: shop, selector: {app: web}, maxUnavailable: 1}
"#;

fn rbac_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rbac.yaml")
}

/// The ClusterRole's rules from deploy/rbac.yaml, as kubesim rules (one verb × one resource
/// each, so any single one can be taken away).
fn shipped_rules() -> Vec<RuleSpec> {
    let text = std::fs::read_to_string(rbac_path()).expect("deploy/rbac.yaml");
    let mut rules = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v = <serde_yaml::Value as serde::Deserialize>::deserialize(doc).expect("YAML");
        if v["kind"].as_str() != Some("ClusterRole") {
            continue;
        }
        assert_eq!(v["metadata"]["name"].as_str(), Some("kdrain"));
        for r in v["rules"].as_sequence().expect("rules") {
            let list = |k: &str| -> Vec<String> {
                r[k].as_sequence()
                    .unwrap_or_else(|| panic!("rule without {k}: {r:?}"))
                    .iter()
                    .map(|x| x.as_str().expect("string").to_string())
                    .collect()
            };
            let groups = list("apiGroups");
            for res in list("resources") {
                for verb in list("verbs") {
                    rules.push(RuleSpec {
                        verbs: vec![verb],
                        resources: vec![res.clone()],
                        api_groups: Some(groups.clone()),
                    });
                }
            }
        }
    }
    assert!(
        !rules.is_empty(),
        "no ClusterRole kdrain in deploy/rbac.yaml"
    );
    rules
}

fn auth(rules: Vec<RuleSpec>) -> AuthSpec {
    AuthSpec {
        users: vec![UserSpec {
            name: "system:serviceaccount:kube-system:kdrain".into(),
            token: TOKEN.into(),
        }],
        roles: vec![RoleSpec {
            name: "kdrain".into(),
            rules,
        }],
        bindings: vec![BindingSpec {
            user: "system:serviceaccount:kube-system:kdrain".into(),
            role: "kdrain".into(),
            namespace: None,
        }],
    }
}

/// A kubesim with `rules` for kdrain's user, over TLS, and a kubeconfig with kdrain's token.
struct Secured {
    sim: Sim,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

async fn secured(yaml: &str, rules: Option<Vec<RuleSpec>>) -> Secured {
    secured_with(yaml, rules.map(auth)).await
}

async fn secured_with(yaml: &str, auth: Option<AuthSpec>) -> Secured {
    let mut scenario = Scenario::from_yaml_str(yaml).expect("scenario");
    scenario.auth = auth;
    let sim = Sim::start_with(
        scenario,
        SimOptions {
            tls: true,
            ..SimOptions::default()
        },
    )
    .await
    .expect("kubesim starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig_with_token(&kubeconfig, TOKEN)
        .expect("kubeconfig");
    wait_budgets(&sim).await;
    sim.reset_requests();
    Secured {
        sim,
        _dir: dir,
        kubeconfig,
    }
}

async fn wait_budgets(sim: &Sim) {
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    let api: kube::Api<PodDisruptionBudget> = kube::Api::all(sim.client());
    let wait = async {
        loop {
            let l = api.list(&Default::default()).await.expect("budgets");
            if l.items.iter().all(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.observed_generation)
                    .is_some()
            }) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), wait)
        .await
        .expect("budgets processed");
}

impl Secured {
    async fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, Vec::new()).await
    }

    async fn run_env(&self, args: &[&str], env: Vec<(String, String)>) -> Run {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.push("--kubeconfig".into());
        all.push(self.kubeconfig.display().to_string());
        run_raw(all, env).await
    }

    /// Evictions and deletes of pods the server accepted.
    fn removals(&self) -> u64 {
        self.sim
            .requests()
            .iter()
            .filter(|r| {
                (r.verb == "create" && r.resource == "pods" && r.subresource == "eviction")
                    || (r.verb == "delete" && r.resource == "pods")
            })
            .filter(|r| (200..300).contains(&r.code))
            .map(|r| r.count)
            .sum()
    }

    async fn cordoned(&self, node: &str) -> bool {
        let api: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(self.sim.client());
        let n = api.get(node).await.expect("node");
        n.spec.and_then(|s| s.unschedulable).unwrap_or(false)
    }

    async fn pods_on(&self, node: &str) -> usize {
        let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::all(self.sim.client());
        api.list(&kube::api::ListParams::default().fields(&format!("spec.nodeName={node}")))
            .await
            .expect("pods")
            .items
            .len()
    }

    /// `verb resource[/sub] code` of every request, sorted, without counts.
    fn requests(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .sim
            .requests()
            .into_iter()
            .filter(|r| !r.resource.starts_with('/'))
            .map(|r| {
                let res = if r.subresource.is_empty() {
                    r.resource
                } else {
                    format!("{}/{}", r.resource, r.subresource)
                };
                format!("{} {res} {}", r.verb, r.code)
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

fn drain_args(extra: &[&'static str]) -> Vec<&'static str> {
    let mut v = vec!["drain", "n1", "--timeout", "30s"];
    v.extend(ALL_FLAGS);
    v.extend(extra);
    v
}

fn error_lines(r: &Run) -> Vec<&str> {
    r.err_lines()
        .into_iter()
        .filter(|l| l.starts_with("error:"))
        .collect()
}

/// The shipped role, without the one (verb, resource) pair.
/// Adds a role allowing `create pods/eviction` and binds it to the user in `namespace` only.
fn grant_evictions_in(spec: &mut AuthSpec, namespace: &str) {
    spec.roles.push(RoleSpec {
        name: "evict".into(),
        rules: vec![RuleSpec {
            verbs: vec!["create".into()],
            resources: vec!["pods/eviction".into()],
            api_groups: Some(vec![String::new()]),
        }],
    });
    spec.bindings.push(BindingSpec {
        user: spec.users[0].name.clone(),
        role: "evict".into(),
        namespace: Some(namespace.into()),
    });
}

fn without(verb: &str, resource: &str) -> Vec<RuleSpec> {
    let all = shipped_rules();
    let before = all.len();
    let kept: Vec<RuleSpec> = all
        .into_iter()
        .filter(|r| !(r.verbs[0] == verb && r.resources[0] == resource))
        .collect();
    assert_eq!(kept.len() + 1, before, "{verb} {resource} is in the role");
    kept
}

#[tokio::test]
async fn the_shipped_role_is_exactly_what_the_engine_uses() {
    let mut shipped: Vec<String> = shipped_rules()
        .iter()
        .map(|r| format!("{} {}", r.verbs[0], r.resources[0]))
        .collect();
    shipped.sort();
    // every request of a full drain (both ways), plan, cordon, uncordon and drain -l, as admin
    let mut used = Vec::new();
    for extra in [&[][..], &["--disable-eviction"][..]] {
        let c = secured(CLUSTER, None).await;
        let r = c.run(&drain_args(extra)).await;
        assert_eq!(r.code, 0, "{r:?}");
        used.extend(c.requests());
        c.sim.reset_requests();
        for cmd in [
            // n1 is cordoned now: n2's replacements have nowhere to go
            &[
                "plan",
                "n2",
                "--force",
                "--ignore-daemonsets",
                "--ignore-capacity",
            ][..],
            &["uncordon", "n1"],
            &["cordon", "n1"],
            &["drain", "-l", "pool=a", "--force", "--ignore-daemonsets"],
        ] {
            let r = c.run(cmd).await;
            assert_eq!(r.code, 0, "{cmd:?}: {r:?}");
        }
        used.extend(c.requests());
    }
    // a drain whose waiting nodes start as room comes back (--wait-for-capacity: it watches
    // the nodes), the test playing the operator that brings each drained node back
    let c = secured(&rotation(), None).await;
    let op = tokio::spawn(operator(c.sim.client()));
    let mut args = DRAIN.to_vec();
    args.push("json");
    let r = c.run(&args).await;
    op.abort();
    assert_eq!(r.code, 0, "{r:?}");
    used.extend(c.requests());
    let mut used: Vec<String> = used
        .into_iter()
        .map(|l| l.rsplit_once(' ').expect("code").0.to_string())
        // access reviews are allowed to every authenticated user (system:basic-user)
        .filter(|l| l != "create selfsubjectaccessreviews")
        .collect();
    used.sort();
    used.dedup();
    assert_eq!(used, shipped, "the role grants exactly what kdrain sends");
}

#[tokio::test]
async fn the_shipped_role_is_enough_for_drain_plan_cordon_and_uncordon() {
    let c = secured(CLUSTER, Some(shipped_rules())).await;
    let r = c
        .run(&["plan", "n1", "--force", "--ignore-daemonsets"])
        .await;
    assert_eq!(r.code, 0, "{r:?}");
    let r = c.run(&["cordon", "n2"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(c.cordoned("n2").await);
    let r = c.run(&["uncordon", "n2"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!c.cordoned("n2").await);
    let r = c.run(&drain_args(&[])).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(c.pods_on("n1").await, 1, "only the DaemonSet pod stays");
    assert_eq!(c.removals(), 3);
    assert!(
        c.requests()
            .iter()
            .all(|l| !l.ends_with(" 403") && !l.ends_with(" 401")),
        "{:#?}",
        c.requests()
    );
    assert!(c.sim.violations().is_empty(), "{:?}", c.sim.violations());
    // by label, and deleting instead of evicting, with the same role
    let c = secured(CLUSTER, Some(shipped_rules())).await;
    let r = c
        .run(&[
            "drain",
            "-l",
            "pool=a",
            "--force",
            "--ignore-daemonsets",
            "--disable-eviction",
        ])
        .await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(c.pods_on("n1").await, 1);
    assert!(c.sim.violations().is_empty(), "{:?}", c.sim.violations());
}

#[tokio::test]
async fn each_rule_is_needed_and_its_absence_stops_kdrain_before_any_change() {
    // (verb, resource without it, the command that needs it, what the message must say)
    let cases: [(&str, &str, Vec<&'static str>, &str); 11] = [
        ("get", "nodes", drain_args(&[]), "needs get on nodes"),
        (
            "list",
            "nodes",
            vec!["drain", "-l", "pool=a", "--force", "--ignore-daemonsets"],
            "needs list on nodes",
        ),
        ("patch", "nodes", drain_args(&[]), "needs patch on nodes"),
        ("list", "pods", drain_args(&[]), "needs list on pods"),
        ("watch", "pods", drain_args(&[]), "needs watch on pods"),
        (
            "create",
            "pods/eviction",
            drain_args(&[]),
            "needs create on pods/eviction in namespace shop",
        ),
        (
            "delete",
            "pods",
            drain_args(&["--disable-eviction"]),
            "needs delete on pods in namespace shop",
        ),
        (
            "list",
            "poddisruptionbudgets",
            drain_args(&[]),
            "needs list on poddisruptionbudgets",
        ),
        (
            "watch",
            "poddisruptionbudgets",
            drain_args(&[]),
            "needs watch on poddisruptionbudgets",
        ),
        (
            "get",
            "daemonsets",
            drain_args(&[]),
            "needs get on daemonsets in namespace kube-system",
        ),
        // cordon and uncordon need the same patch; shown for cordon
        (
            "patch",
            "nodes",
            vec!["cordon", "n1"],
            "needs patch on nodes",
        ),
    ];
    // and watch on nodes, without which a drain carries on with less (the next test)
    assert_eq!(
        cases
            .iter()
            .map(|c| (c.0, c.1))
            .chain([("watch", "nodes")])
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        shipped_rules().len(),
        "every rule of the role is tried"
    );
    for (verb, resource, cmd, says) in cases {
        let c = secured(CLUSTER, Some(without(verb, resource))).await;
        let before = c.pods_on("n1").await;
        let r = c.run(&cmd).await;
        let what = format!("without {verb} {resource}: {cmd:?}: {r:?}");
        assert_eq!(r.code, 5, "{what}");
        let errors = error_lines(&r);
        assert_eq!(errors.len(), 1, "{what}");
        assert!(errors[0].contains(says), "{what}");
        assert_eq!(c.removals(), 0, "{what}");
        assert!(!c.cordoned("n1").await, "nothing changed: {what}");
        assert_eq!(c.pods_on("n1").await, before, "{what}");
        assert!(c.sim.violations().is_empty(), "{what}");
    }
}

/// Without watch on nodes, `--wait-for-capacity` still drains every node as room comes back
/// (the refused watch lists the nodes instead), and says so once.
#[tokio::test]
async fn without_watch_on_nodes_a_waiting_drain_still_drains_and_says_so_once() {
    let c = secured(&rotation(), Some(without("watch", "nodes"))).await;
    let op = tokio::spawn(operator(c.sim.client()));
    let r = c.run(&DRAIN[..6]).await;
    op.abort();
    assert_eq!(r.code, 0, "{r:?}");
    let warnings: Vec<&str> = r
        .err_lines()
        .into_iter()
        .filter(|l| l.starts_with("Warning: cannot watch nodes: "))
        .collect();
    assert_eq!(warnings.len(), 1, "said once: {r:?}");
    assert!(
        warnings[0].contains("cannot watch resource \"nodes\"")
            && warnings[0].ends_with(
                "; following the nodes by listing them every few seconds instead: a node waiting for room may start up to 5s after room appears (grant watch on nodes to start it at once)"
            ),
        "{}",
        warnings[0]
    );
    // the watch was tried and refused; every node drained, each pod evicted once
    assert!(c.requests().contains(&"watch nodes 403".to_string()));
    assert_eq!(c.removals(), 6);
    for n in ["old1", "old2", "old3"] {
        assert_eq!(c.pods_on(n).await, if n == "old3" { 0 } else { 2 }, "{n}");
    }
    assert!(c.sim.violations().is_empty(), "{:?}", c.sim.violations());
}

#[tokio::test]
async fn rights_granted_only_in_the_pods_namespaces_are_enough() {
    let mut spec = auth(without("create", "pods/eviction"));
    // a RoleBinding in shop (where the pods are) is enough
    grant_evictions_in(&mut spec, "shop");
    let c = secured_with(CLUSTER, Some(spec.clone())).await;
    let r = c.run(&drain_args(&[])).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(c.removals(), 3);
    // ...but one in another namespace is not
    spec.bindings.last_mut().expect("binding").namespace = Some("elsewhere".into());
    let c = secured_with(CLUSTER, Some(spec)).await;
    let r = c.run(&drain_args(&[])).await;
    assert_eq!(r.code, 5, "{r:?}");
    assert!(
        error_lines(&r)[0].contains("needs create on pods/eviction in namespace shop"),
        "{r:?}"
    );
    assert_eq!(c.removals(), 0);
    assert!(!c.cordoned("n1").await);
}

/// n1 of [`CLUSTER`] plus a Deployment in a second namespace, `blog`.
const TWO_NAMESPACES: &str = r#"
nodes: [{name: n1, labels: {pool: a}}, {name: n2}]
namespaces: [{name: shop}, {name: blog}]
workloads:
  - {kind: Deployment, name: web, namespace: shop, replicas: 2, labels: {app: web}, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.1}
  - {kind: Pod, name: bare, namespace: shop, nodes: [n1], terminationSeconds: 0.1}
  - {kind: Deployment, name: api, namespace: blog, replicas: 1, labels: {app: api}, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.1}
  - {kind: DaemonSet, name: agent, namespace: kube-system, labels: {app: agent}}
pdbs:
  - {name: web, namespace: shop, selector: {app: web}, maxUnavailable: 1}
"#;

impl Secured {
    /// Access reviews answered `status` (404: not served, 403: forbidden to this user).
    fn refuse_reviews(&self, status: u16) {
        self.sim.set_faults(vec![
            serde_json::from_value(serde_json::json!({
                "verb": "create", "resource": "selfsubjectaccessreviews", "status": status
            }))
            .expect("fault"),
        ]);
    }

    /// `verb resource[/sub] code` → count of every API request (discovery left out).
    fn ledger(&self) -> std::collections::BTreeMap<String, u64> {
        let mut m = std::collections::BTreeMap::new();
        for r in self.sim.requests() {
            if r.resource.starts_with('/') {
                continue;
            }
            let res = if r.subresource.is_empty() {
                r.resource
            } else {
                format!("{}/{}", r.resource, r.subresource)
            };
            *m.entry(format!("{} {res} {}", r.verb, r.code)).or_default() += r.count;
        }
        m
    }
}

fn counts(pairs: &[(&str, u64)]) -> std::collections::BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// The requests of a drain of n1 whose access reviews are not served and that stops at a
/// refused probe: the node, the plan's reads (the node's pods, every node and pod for the
/// capacity check, the DaemonSet of the DaemonSet pod, the budgets when `evicting`), one review
/// per right the plan's reads did not exercise (5 when evicting: not the pod and budget LISTs
/// the plan sent; 4 when deleting), then `sent` (the probes).
fn probed(evicting: bool, sent: &[(&str, u64)]) -> std::collections::BTreeMap<String, u64> {
    let reviews = if evicting { 5 } else { 4 };
    let mut m = counts(&[
        ("get nodes 200", 1),
        ("create selfsubjectaccessreviews 404", reviews),
        ("list pods 200", 2),
        ("list nodes 200", 1),
        ("get daemonsets 200", 1),
    ]);
    if evicting {
        m.extend(counts(&[("list poddisruptionbudgets 200", 1)]));
    }
    m.extend(counts(sent));
    m
}

#[tokio::test]
async fn without_access_reviews_a_denied_eviction_is_exit_5_before_the_cordon() {
    // a server that does not answer access reviews: kdrain tries the eviction itself with
    // dryRun=All (after a dry-run cordon and a watch closed at once) before changing anything
    let c = secured(CLUSTER, Some(without("create", "pods/eviction"))).await;
    c.refuse_reviews(404);
    let r = c.run(&drain_args(&["-o", "json"])).await;
    assert_eq!(r.code, 5, "{r:?}");
    let result: serde_json::Value = serde_json::from_str(
        r.out_lines()
            .into_iter()
            .find(|l| l.contains("\"event\":\"result\""))
            .expect("result line"),
    )
    .expect("JSON");
    assert_eq!(result["exit_code"], 5, "{result}");
    let error = result["error"].as_str().expect("error");
    assert!(
        error.contains("needs create on pods/eviction in namespace shop"),
        "{error}"
    );
    assert!(
        error.contains("cannot create resource \"pods/eviction\""),
        "{error}"
    );
    assert!(
        error.contains("found with a dry-run eviction, before any change"),
        "{error}"
    );
    assert!(
        !r.stdout.contains("\"event\":\"cordoned\""),
        "no cordon: {r:?}"
    );
    assert_eq!(
        c.ledger(),
        probed(
            true,
            &[
                ("patch nodes 200", 1),
                ("watch pods 200", 1),
                ("create pods/eviction 403", 1),
            ]
        )
    );
    assert!(!c.cordoned("n1").await, "nothing cordoned");
    assert_eq!(c.pods_on("n1").await, 4);
    // text mode prints the same one clear line (not kubectl's failure block), which names
    // the right needed and quotes the server's denial; reviews forbidden are the same
    c.sim.reset_requests();
    c.refuse_reviews(403);
    let r = c.run(&drain_args(&[])).await;
    assert_eq!(r.code, 5, "{r:?}");
    let errors: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{r:?}");
    assert!(
        errors[0].starts_with(
            "error: permission denied: needs create on pods/eviction in namespace shop ("
        ),
        "{r:?}"
    );
    assert!(
        errors[0].contains(
            "cannot create resource \"pods/eviction\" in API group \"\" in the namespace \"shop\""
        ),
        "{r:?}"
    );
    assert!(!r.stderr.contains("There are pending nodes"), "{r:?}");
    assert!(!r.stderr.contains("unable to drain node"), "{r:?}");
    assert!(!r.stdout.contains("cordoned"), "{r:?}");
    assert_eq!(c.removals(), 0);
    assert_eq!(
        c.ledger()
            .get("create selfsubjectaccessreviews 403")
            .copied(),
        Some(5)
    );
    assert_eq!(c.ledger().get("create pods/eviction 403").copied(), Some(1));
    assert!(!c.cordoned("n1").await, "nothing cordoned");
    assert_eq!(c.pods_on("n1").await, 4);
    assert!(c.sim.violations().is_empty());
}

#[tokio::test]
async fn without_access_reviews_a_denied_cordon_is_found_with_a_dry_run_patch() {
    let c = secured(CLUSTER, Some(without("patch", "nodes"))).await;
    c.refuse_reviews(404);
    let r = c.run(&drain_args(&[])).await;
    assert_eq!(r.code, 5, "{r:?}");
    let errors = error_lines(&r);
    assert_eq!(errors.len(), 1, "{r:?}");
    assert!(
        errors[0].starts_with("error: permission denied: needs patch on nodes ("),
        "{r:?}"
    );
    assert!(
        errors[0].contains("found with a dry-run cordon, before any change"),
        "{r:?}"
    );
    assert_eq!(c.ledger(), probed(true, &[("patch nodes 403", 1)]));
    assert!(!c.cordoned("n1").await);
    assert_eq!(c.pods_on("n1").await, 4);
    assert!(c.sim.violations().is_empty());
}

#[tokio::test]
async fn without_access_reviews_an_eviction_denied_in_one_namespace_stops_before_the_cordon() {
    // evictions granted in shop only (a RoleBinding), the drain also has a pod in blog
    let mut spec = auth(without("create", "pods/eviction"));
    grant_evictions_in(&mut spec, "shop");
    let c = secured_with(TWO_NAMESPACES, Some(spec)).await;
    c.refuse_reviews(404);
    let r = c.run(&drain_args(&[])).await;
    assert_eq!(r.code, 5, "{r:?}");
    let errors = error_lines(&r);
    assert_eq!(errors.len(), 1, "{r:?}");
    assert!(
        errors[0].starts_with(
            "error: permission denied: needs create on pods/eviction in namespace blog ("
        ),
        "{r:?}"
    );
    assert!(errors[0].contains("in the namespace \"blog\""), "{r:?}");
    // one dry-run eviction per namespace: shop's passes (201, nothing evicted), blog's is refused
    assert_eq!(
        c.ledger(),
        probed(
            true,
            &[
                ("patch nodes 200", 1),
                ("watch pods 200", 1),
                ("create pods/eviction 201", 1),
                ("create pods/eviction 403", 1),
            ]
        )
    );
    assert!(!c.cordoned("n1").await);
    assert_eq!(c.pods_on("n1").await, 5, "nothing evicted");
    assert!(c.sim.violations().is_empty());
}

#[tokio::test]
async fn without_access_reviews_a_denied_delete_is_found_with_a_dry_run_delete() {
    let c = secured(CLUSTER, Some(without("delete", "pods"))).await;
    c.refuse_reviews(404);
    let r = c.run(&drain_args(&["--disable-eviction"])).await;
    assert_eq!(r.code, 5, "{r:?}");
    let errors = error_lines(&r);
    assert_eq!(errors.len(), 1, "{r:?}");
    assert!(
        errors[0].starts_with("error: permission denied: needs delete on pods in namespace shop ("),
        "{r:?}"
    );
    assert!(
        errors[0].contains("found with a dry-run DELETE, before any change"),
        "{r:?}"
    );
    // four rights to review without evictions; no budget probe
    assert_eq!(
        c.ledger(),
        probed(
            false,
            &[
                ("patch nodes 200", 1),
                ("watch pods 200", 1),
                ("delete pods 403", 1),
            ]
        )
    );
    assert!(!c.cordoned("n1").await);
    assert_eq!(c.pods_on("n1").await, 4);
    assert!(c.sim.violations().is_empty());
}

#[tokio::test]
async fn without_access_reviews_the_shipped_role_still_drains() {
    let c = secured(TWO_NAMESPACES, Some(shipped_rules())).await;
    c.refuse_reviews(404);
    let r = c.run(&drain_args(&[])).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(c.pods_on("n1").await, 1, "only the DaemonSet pod stays");
    let l = c.ledger();
    // the probes: one dry-run cordon on top of the real one, one dry-run eviction per namespace
    assert_eq!(l.get("patch nodes 200").copied(), Some(2), "{l:#?}");
    assert!(
        l.keys()
            .all(|k| !k.ends_with(" 403") && !k.ends_with(" 401")),
        "{l:#?}"
    );
    assert!(c.sim.violations().is_empty());
}

#[tokio::test]
async fn a_wrong_ca_is_refused_with_one_line_and_nothing_changes() {
    let c = secured(CLUSTER, Some(shipped_rules())).await;
    let other = Sim::start_with(
        Scenario::from_yaml_str("nodes: [{name: x}]").expect("scenario"),
        SimOptions {
            tls: true,
            ..SimOptions::default()
        },
    )
    .await
    .expect("second kubesim");
    let ours = c.sim.kubeconfig_yaml_with_token(TOKEN);
    let theirs = other.kubeconfig_yaml_with_token(TOKEN);
    let ca = |k: &str| {
        k.lines()
            .find(|l| l.trim_start().starts_with("certificate-authority-data:"))
            .expect("CA line")
            .to_string()
    };
    let wrong = ours.replace(&ca(&ours), &ca(&theirs));
    assert_ne!(wrong, ours);
    let path = c._dir.path().join("wrong-ca");
    std::fs::write(&path, wrong).expect("write");
    let r = run_raw(
        vec![
            "drain".into(),
            "n1".into(),
            "--force".into(),
            "--ignore-daemonsets".into(),
            "--kubeconfig".into(),
            path.display().to_string(),
        ],
        Vec::new(),
    )
    .await;
    assert_eq!(r.code, 6, "{r:?}");
    assert_eq!(r.err_lines().len(), 1, "{r:?}");
    let line = r.err_lines()[0];
    assert!(
        line.starts_with("error: cannot reach the Kubernetes API at https://"),
        "{line}"
    );
    assert!(line.contains("certificate"), "{line}");
    assert!(
        line.contains("certificate-authority"),
        "names the fix: {line}"
    );
    assert!(c.sim.requests().is_empty(), "no request got through");
    assert!(!c.cordoned("n1").await);
    assert_eq!(c.pods_on("n1").await, 4);
}

#[tokio::test]
async fn tokens_and_client_keys_never_reach_the_output_at_any_verbosity() {
    let c = secured(CLUSTER, Some(shipped_rules())).await;
    let (cert, key) = kubesim::client_identity_pem("kdrain-test-client").expect("client identity");
    let cert_path = c._dir.path().join("client.crt");
    let key_path = c._dir.path().join("client.key");
    std::fs::write(&cert_path, &cert).expect("cert");
    std::fs::write(&key_path, &key).expect("key");
    let kubeconfig = c.sim.kubeconfig_yaml_with_token(TOKEN).replace(
        &format!("    token: {TOKEN}\n"),
        &format!(
            "    token: {TOKEN}\n    client-certificate: {}\n    client-key: {}\n",
            cert_path.display(),
            key_path.display()
        ),
    );
    assert!(kubeconfig.contains("client-key:"));
    std::fs::write(&c.kubeconfig, kubeconfig).expect("kubeconfig");
    // the secrets as they could appear: the token and every line of the key's PEM body
    let mut secrets = vec![TOKEN.to_string()];
    secrets.extend(
        key.lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 20)
            .map(str::to_string),
    );
    assert!(secrets.len() >= 2, "{key}");
    let trace = vec![("RUST_LOG".to_string(), "trace".to_string())];
    let mut outputs = Vec::new();
    let r = c
        .run_env(
            &[
                "plan",
                "n1",
                "-vvv",
                "-o",
                "json",
                "--force",
                "--ignore-daemonsets",
            ],
            trace.clone(),
        )
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr.lines().last().unwrap_or(""));
    outputs.push(r);
    let r = c
        .run_env(&drain_args(&["-vvv", "-o", "json"]), trace.clone())
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr.lines().last().unwrap_or(""));
    outputs.push(r);
    let r = c.run_env(&["uncordon", "n1", "-vvv"], trace.clone()).await;
    assert_eq!(r.code, 0);
    outputs.push(r);
    // a failure path too: a denied request, its error message and the JSON result
    let denied = secured(CLUSTER, Some(without("patch", "nodes"))).await;
    std::fs::copy(&c.kubeconfig, &denied.kubeconfig).expect("same credentials");
    let mut kc = std::fs::read_to_string(&denied.kubeconfig).expect("read");
    kc = kc.replace(&c.sim.url(), &denied.sim.url()).replace(
        &ca_line(&c.sim.kubeconfig_yaml()),
        &ca_line(&denied.sim.kubeconfig_yaml()),
    );
    std::fs::write(&denied.kubeconfig, kc).expect("write");
    let r = denied
        .run_env(&drain_args(&["-vvv", "-o", "json"]), trace)
        .await;
    assert_eq!(r.code, 5, "{}", r.stderr.lines().last().unwrap_or(""));
    outputs.push(r);
    let mut logged = 0;
    for r in &outputs {
        logged += r.stderr.lines().count();
        for s in &secrets {
            assert!(!r.stdout.contains(s.as_str()), "secret {s:?} in stdout");
            assert!(!r.stderr.contains(s.as_str()), "secret {s:?} in stderr");
        }
    }
    // the trace really was on (hundreds of lines), so the grep means something
    assert!(logged > 200, "only {logged} log lines");
}

fn ca_line(kubeconfig: &str) -> String {
    kubeconfig
        .lines()
        .find(|l| l.trim_start().starts_with("certificate-authority-data:"))
        .expect("CA line")
        .to_string()
}
