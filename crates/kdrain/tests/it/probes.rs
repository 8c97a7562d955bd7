//! The permission check without access reviews: when the server does not answer
//! SelfSubjectAccessReviews, every right is tried with a harmless request (dry-run PATCH,
//! eviction or DELETE, a watch closed at once, a LIST of one budget, a GET of a DaemonSet)
//! before the cordon. A refused one stops the drain with nothing changed; otherwise the drain
//! is the same as with reviews, plus exactly those requests.

use std::collections::BTreeMap;

use kdrain::{DrainError, DrainOptions, Drainer};
use kubesim::{AuthSpec, BindingSpec, Fault, RoleSpec, RuleSpec, Scenario, Sim, UserSpec};

use crate::*;

/// n1 carries two pods in `shop`, one in `blog` and a DaemonSet pod in `kube-system`.
const TWO_NAMESPACES: &str = r#"
nodes: [{name: n1}, {name: n2}]
namespaces: [{name: shop}, {name: blog}]
workloads:
  - {kind: Deployment, name: web, namespace: shop, replicas: 2, labels: {app: web}, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.1}
  - {kind: Deployment, name: api, namespace: blog, replicas: 1, labels: {app: api}, nodes: [n1], terminationSeconds: 0.1, readySeconds: 0.1}
  - {kind: DaemonSet, name: agent, namespace: kube-system, labels: {app: agent}}
"#;

const TOKEN: &str = "t-drainer";

/// Every (verb, resource) a drain sends, either way (evicting or deleting).
const RIGHTS: [(&str, &str); 10] = [
    ("get", "nodes"),
    ("list", "nodes"),
    ("patch", "nodes"),
    ("list", "pods"),
    ("watch", "pods"),
    ("delete", "pods"),
    ("create", "pods/eviction"),
    ("list", "poddisruptionbudgets"),
    ("watch", "poddisruptionbudgets"),
    ("get", "daemonsets"),
];

/// A simulator whose user `drainer` has every right but `missing` (cluster-wide), and whose
/// access reviews all fail with `review_status`.
async fn without_reviews(missing: Option<(&str, &str)>, review_status: u16) -> Sim {
    without_reviews_but(missing, None, review_status).await
}

/// [`without_reviews`], with `missing` granted again in one namespace (a RoleBinding).
async fn without_reviews_but(
    missing: Option<(&str, &str)>,
    granted_in: Option<&str>,
    review_status: u16,
) -> Sim {
    let mut scenario = Scenario::from_yaml_str(TWO_NAMESPACES).expect("scenario");
    scenario.auth = Some(AuthSpec {
        users: vec![UserSpec {
            name: "drainer".into(),
            token: TOKEN.into(),
        }],
        roles: vec![RoleSpec {
            name: "drain".into(),
            rules: RIGHTS
                .iter()
                .filter(|r| Some(**r) != missing)
                .map(|(verb, resource)| RuleSpec {
                    verbs: vec![verb.to_string()],
                    resources: vec![resource.to_string()],
                    api_groups: None,
                })
                .collect(),
        }],
        bindings: vec![BindingSpec {
            user: "drainer".into(),
            role: "drain".into(),
            namespace: None,
        }],
    });
    if let (Some((verb, resource)), Some(ns), Some(auth)) =
        (missing, granted_in, &mut scenario.auth)
    {
        auth.roles.push(RoleSpec {
            name: "here".into(),
            rules: vec![RuleSpec {
                verbs: vec![verb.to_string()],
                resources: vec![resource.to_string()],
                api_groups: None,
            }],
        });
        auth.bindings.push(BindingSpec {
            user: "drainer".into(),
            role: "here".into(),
            namespace: Some(ns.to_string()),
        });
    }
    let sim = Sim::start(scenario).await.expect("kubesim starts");
    refuse_reviews(&sim, review_status);
    sim.reset_requests();
    sim
}

fn refuse_reviews(sim: &Sim, status: u16) {
    sim.set_faults(vec![Fault {
        verb: Some("create".into()),
        resource: Some("selfsubjectaccessreviews".into()),
        status: Some(status),
        ..Fault::default()
    }]);
}

/// `verb resource[/sub] code` → count, as the simulator saw them.
fn ledger(sim: &Sim) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for r in sim.requests() {
        let res = if r.subresource.is_empty() {
            r.resource
        } else {
            format!("{}/{}", r.resource, r.subresource)
        };
        *m.entry(format!("{} {res} {}", r.verb, r.code)).or_default() += r.count;
    }
    m
}

fn expect(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Pods of the report seen gone.
fn gone(report: &kdrain::Report) -> usize {
    report
        .nodes
        .iter()
        .flat_map(|n| &n.pods)
        .filter(|p| p.outcome == kdrain::PodOutcome::Gone)
        .count()
}

async fn drain_as_drainer(
    sim: &Sim,
    opts: DrainOptions,
) -> Result<kdrain::Report, kdrain::DrainError> {
    let d = Drainer::new(sim.client_with_token(TOKEN), opts);
    bounded(d.drain(&["n1".to_string()])).await
}

#[tokio::test]
async fn without_reviews_a_drain_sends_exactly_the_probes_more() {
    // the same drain twice: with access reviews, and with reviews answered 404
    let mut seen = Vec::new();
    for reviews in [None, Some(404)] {
        let sim = sim(TWO_NAMESPACES).await;
        if let Some(status) = reviews {
            refuse_reviews(&sim, status);
        }
        sim.reset_requests();
        let (res, _) = drain(&sim, all_flags(), &["n1"]).await;
        let report = res.expect("drained");
        assert_eq!(gone(&report), 3, "{report:#?}");
        assert_eq!(pods_on(&sim, "n1").await.len(), 1, "only the DaemonSet pod");
        no_violations(&sim);
        let mut l = ledger(&sim);
        let reviews = l
            .remove(&format!(
                "create selfsubjectaccessreviews {}",
                reviews.unwrap_or(201)
            ))
            .expect("reviews");
        // one review per right, but the pod and budget LISTs the plan has just sent
        assert_eq!(
            reviews, 5,
            "one review per right the plan's reads did not use"
        );
        seen.push((l, report.requests));
    }
    let (with, without) = (&seen[0].0, &seen[1].0);
    let mut more = BTreeMap::new();
    for (k, v) in without {
        let d = v - with.get(k).copied().unwrap_or(0);
        if d > 0 {
            more.insert(k.clone(), d);
        }
    }
    assert!(
        with.iter()
            .all(|(k, v)| without.get(k).copied().unwrap_or(0) >= *v),
        "{with:#?}\n{without:#?}"
    );
    assert_eq!(
        more,
        expect(&[
            // the cordon with dryRun=All
            ("patch nodes 200", 1),
            // a watch of n1's pods, closed at once
            ("watch pods 200", 1),
            // one eviction with dryRun=All in each namespace with pods to remove
            ("create pods/eviction 201", 2),
            // a LIST of one budget and a watch of budgets, closed at once
            ("list poddisruptionbudgets 200", 1),
            ("watch poddisruptionbudgets 200", 1),
            // the GET of the DaemonSet of kube-system's pod
            ("get daemonsets 200", 1),
        ]),
        "with reviews: {with:#?}\nwithout: {without:#?}"
    );
    // kdrain's own counts say the same
    let (with, without) = (&seen[0].1, &seen[1].1);
    assert_eq!(
        without["create pods/eviction"],
        with["create pods/eviction"] + 2
    );
    assert_eq!(without["patch nodes"], with["patch nodes"] + 1);
}

/// `verb resource code` → how many.
type Sent = Vec<(&'static str, u64)>;

#[tokio::test]
async fn a_refused_probe_stops_the_drain_before_the_cordon() {
    // the right taken away, what the error must say, and every request the server saw
    // the plan's reads come first: the node's pods, then every node and pod (the capacity check);
    // the permission check then uses the plan's LIST (the budgets and the DaemonSet the plan
    // reads are added per case below: they are refused in some)
    let base = [
        ("get nodes 200", 1),
        ("list pods 200", 2),
        ("list nodes 200", 1),
    ];
    let cases: Vec<(&str, &str, &str, Sent)> = vec![
        (
            "patch",
            "nodes",
            "needs patch on nodes (",
            vec![("patch nodes 403", 1)],
        ),
        (
            "watch",
            "pods",
            "needs watch on pods (",
            vec![("patch nodes 200", 1), ("watch pods 403", 1)],
        ),
        (
            "create",
            "pods/eviction",
            // both namespaces are tried at once; blog is named first
            "needs create on pods/eviction in namespace blog (",
            vec![
                ("patch nodes 200", 1),
                ("watch pods 200", 1),
                ("create pods/eviction 403", 2),
            ],
        ),
        (
            "list",
            "poddisruptionbudgets",
            "needs list on poddisruptionbudgets (",
            vec![
                ("patch nodes 200", 1),
                ("watch pods 200", 1),
                ("create pods/eviction 201", 2),
                ("list poddisruptionbudgets 403", 1),
            ],
        ),
        (
            "watch",
            "poddisruptionbudgets",
            "needs watch on poddisruptionbudgets (",
            vec![
                ("patch nodes 200", 1),
                ("watch pods 200", 1),
                ("create pods/eviction 201", 2),
                ("list poddisruptionbudgets 200", 1),
                ("watch poddisruptionbudgets 403", 1),
            ],
        ),
        (
            "get",
            "daemonsets",
            "needs get on daemonsets in namespace kube-system (",
            vec![
                ("patch nodes 200", 1),
                ("watch pods 200", 1),
                ("create pods/eviction 201", 2),
                ("list poddisruptionbudgets 200", 1),
                ("watch poddisruptionbudgets 200", 1),
                ("get daemonsets 403", 1),
            ],
        ),
    ];
    for (verb, resource, says, sent) in cases {
        // reviews not served (404) and reviews forbidden (403) are the same to kdrain
        let review_status = if verb == "get" { 403 } else { 404 };
        let sim = without_reviews(Some((verb, resource)), review_status).await;
        let before = pod_names_on(&sim, "n1").await;
        sim.reset_requests();
        let err = drain_as_drainer(&sim, all_flags())
            .await
            .expect_err("a right is missing");
        let what = format!("without {verb} {resource}: {err}");
        assert!(matches!(err, DrainError::Forbidden { .. }), "{what}");
        assert_eq!(err.kind(), kdrain::ErrorKind::PermissionDenied, "{what}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("permission denied: {says}")),
            "{what}"
        );
        assert!(msg.contains("before any change"), "{what}");
        assert!(msg.contains(&format!("cannot {verb} resource")), "{what}");
        let mut want = expect(&base);
        for (k, v) in expect(&sent) {
            *want.entry(k).or_default() += v;
        }
        let status = |v: &str, r: &str| if (verb, resource) == (v, r) { 403 } else { 200 };
        for read in [
            format!(
                "list poddisruptionbudgets {}",
                status("list", "poddisruptionbudgets")
            ),
            format!("get daemonsets {}", status("get", "daemonsets")),
        ] {
            *want.entry(read).or_default() += 1;
        }
        // one review per right the plan's reads did not use: the pod LIST always, the budget
        // LIST unless it was refused (then the check asks and probes it)
        let plan_listed_budgets = (verb, resource) != ("list", "poddisruptionbudgets");
        want.insert(
            format!("create selfsubjectaccessreviews {review_status}"),
            if plan_listed_budgets { 5 } else { 6 },
        );
        assert_eq!(ledger(&sim), want, "{what}");
        assert!(
            !kdrain::cordon::is_cordoned(&node(&sim, "n1").await),
            "{what}"
        );
        assert_eq!(pod_names_on(&sim, "n1").await, before, "{what}");
        assert!(
            pods_on(&sim, "n1")
                .await
                .iter()
                .all(|p| p.metadata.deletion_timestamp.is_none()),
            "{what}"
        );
        no_violations(&sim);
    }
}

#[tokio::test]
async fn without_reviews_a_refused_list_or_delete_changes_nothing() {
    // the plan's LIST of the node's pods is the first request after the node is read
    let sim = without_reviews(Some(("list", "pods")), 404).await;
    let err = drain_as_drainer(&sim, all_flags())
        .await
        .expect_err("cannot list pods");
    assert_eq!(err.kind(), kdrain::ErrorKind::PermissionDenied, "{err}");
    assert!(
        err.to_string()
            .starts_with("permission denied: needs list on pods ("),
        "{err}"
    );
    assert_eq!(
        ledger(&sim),
        expect(&[("get nodes 200", 1), ("list pods 403", 1)])
    );
    assert!(!kdrain::cordon::is_cordoned(&node(&sim, "n1").await));
    // deleting instead of evicting: a DELETE with dryRun=All per namespace, no budget probes
    let sim = without_reviews(Some(("delete", "pods")), 404).await;
    let err = drain_as_drainer(
        &sim,
        DrainOptions {
            disable_eviction: true,
            ..all_flags()
        },
    )
    .await
    .expect_err("cannot delete pods");
    assert_eq!(err.kind(), kdrain::ErrorKind::PermissionDenied, "{err}");
    assert!(
        err.to_string()
            .starts_with("permission denied: needs delete on pods in namespace blog ("),
        "{err}"
    );
    assert_eq!(
        ledger(&sim),
        expect(&[
            ("get nodes 200", 1),
            ("create selfsubjectaccessreviews 404", 4),
            // the plan's reads (no budgets with --disable-eviction), then the probes
            ("list pods 200", 2),
            ("list nodes 200", 1),
            ("get daemonsets 200", 1),
            ("patch nodes 200", 1),
            ("watch pods 200", 1),
            ("delete pods 403", 2),
        ])
    );
    assert!(!kdrain::cordon::is_cordoned(&node(&sim, "n1").await));
    assert_eq!(pods_on(&sim, "n1").await.len(), 4);
    no_violations(&sim);
    // deleting granted in shop only: shop's dry-run DELETE passes and leaves its pod alone
    let sim = without_reviews_but(Some(("delete", "pods")), Some("shop"), 404).await;
    let err = drain_as_drainer(
        &sim,
        DrainOptions {
            disable_eviction: true,
            ..all_flags()
        },
    )
    .await
    .expect_err("cannot delete pods in blog");
    assert!(
        err.to_string()
            .starts_with("permission denied: needs delete on pods in namespace blog ("),
        "{err}"
    );
    let l = ledger(&sim);
    assert_eq!(l.get("delete pods 200"), Some(&1), "{l:#?}");
    assert_eq!(l.get("delete pods 403"), Some(&1), "{l:#?}");
    let pods = pods_on(&sim, "n1").await;
    assert_eq!(pods.len(), 4);
    assert!(
        pods.iter().all(|p| p.metadata.deletion_timestamp.is_none()),
        "a dry-run DELETE changes nothing"
    );
    no_violations(&sim);
}

#[tokio::test]
async fn without_reviews_the_probes_pass_and_the_drain_completes_with_the_right_role() {
    let sim = without_reviews(None, 403).await;
    let report = drain_as_drainer(&sim, all_flags())
        .await
        .expect("every right is there");
    assert_eq!(gone(&report), 3, "{report:#?}");
    assert!(kdrain::cordon::is_cordoned(&node(&sim, "n1").await));
    assert_eq!(pods_on(&sim, "n1").await.len(), 1);
    let l = ledger(&sim);
    assert!(
        l.keys()
            .all(|k| !k.ends_with(" 403") || k.starts_with("create selfsubjectaccessreviews")),
        "{l:#?}"
    );
    no_violations(&sim);
}

#[tokio::test]
async fn a_node_already_cordoned_needs_no_patch_and_a_client_dry_run_sends_no_probe() {
    let sim = without_reviews(Some(("patch", "nodes")), 404).await;
    // cordoned beforehand by someone else: the drain sends no PATCH, so needs none
    let admin: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(sim.client());
    admin
        .patch(
            "n1",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"spec": {"unschedulable": true}})),
        )
        .await
        .expect("cordon as admin");
    sim.reset_requests();
    let report = drain_as_drainer(&sim, all_flags())
        .await
        .expect("no patch needed");
    assert_eq!(gone(&report), 3);
    assert!(
        !ledger(&sim).keys().any(|k| k.starts_with("patch nodes")),
        "{:#?}",
        ledger(&sim)
    );
    // a client dry run sends no write and no review at all
    let sim = without_reviews(Some(("create", "pods/eviction")), 404).await;
    let report = drain_as_drainer(
        &sim,
        DrainOptions {
            dry_run: kdrain::DryRun::Client,
            ..all_flags()
        },
    )
    .await
    .expect("client dry run");
    assert_eq!(report.nodes[0].pods.len(), 4);
    let l = ledger(&sim);
    assert!(
        l.keys()
            .all(|k| k.starts_with("get ") || k.starts_with("list ")),
        "{l:#?}"
    );
}
