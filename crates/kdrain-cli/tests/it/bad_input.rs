//! Every kind of bad input: one clear line on stderr, a distinct exit code, nothing changed.

use crate::common::{ALL_FLAGS, BASIC, Cluster, cluster, drain_n1_with_kubeconfig, run_raw};

/// Asserts that the cluster saw no accepted write and that n1 is untouched.
async fn assert_unchanged(c: &Cluster, pods_before: &[String]) {
    assert_eq!(
        c.accepted_writes(),
        Vec::<String>::new(),
        "no write may succeed"
    );
    assert!(!c.cordoned("n1").await, "n1 must not be cordoned");
    assert_eq!(c.pods_on("n1").await, pods_before, "pods on n1 untouched");
}

fn with_flags<'a>(base: &[&'a str]) -> Vec<&'a str> {
    let mut v = base.to_vec();
    v.extend(ALL_FLAGS);
    v
}

#[tokio::test]
async fn unknown_node_changes_nothing() {
    let c = cluster(BASIC).await;
    let before = c.pods_on("n1").await;
    c.sim.reset_requests();
    let r = c.run(&with_flags(&["drain", "n1", "nx"])).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(r.err_lines().len(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("\"nx\" not found"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert_unchanged(&c, &before).await;
}

#[tokio::test]
async fn unknown_context_changes_nothing() {
    let c = cluster(BASIC).await;
    let before = c.pods_on("n1").await;
    c.sim.reset_requests();
    let r = c
        .run(&with_flags(&["drain", "n1", "--context", "prod"]))
        .await;
    assert_eq!(r.code, 2);
    assert_eq!(
        r.err_lines(),
        vec![format!(
            "error: context \"prod\" not found in kubeconfig {} (available: kubesim); pick one with --context",
            c.kubeconfig.display()
        )]
    );
    assert!(c.sim.requests().is_empty(), "not even a read was sent");
    assert_unchanged(&c, &before).await;
}

#[tokio::test]
async fn unreadable_kubeconfig_changes_nothing() {
    let c = cluster(BASIC).await;
    let before = c.pods_on("n1").await;
    c.sim.reset_requests();
    let missing = c.dir.path().join("missing");
    let r = drain_n1_with_kubeconfig(&missing).await;
    assert_eq!(r.code, 2);
    assert_eq!(r.err_lines().len(), 1);
    assert!(
        r.stderr.starts_with(&format!(
            "error: cannot read kubeconfig {}",
            missing.display()
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("--kubeconfig"),
        "names the fix: {}",
        r.stderr
    );

    let garbage = c.dir.path().join("garbage");
    std::fs::write(&garbage, "clusters: [\n").unwrap();
    let r = drain_n1_with_kubeconfig(&garbage).await;
    assert_eq!(r.code, 2);
    assert_eq!(r.err_lines().len(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("cannot read kubeconfig"), "{}", r.stderr);
    assert!(c.sim.requests().is_empty());
    assert_unchanged(&c, &before).await;
}

#[tokio::test]
async fn no_kubeconfig_and_not_in_cluster() {
    let home = tempfile::tempdir().unwrap();
    let r = run_raw(
        vec!["drain".into(), "n1".into()],
        vec![
            ("HOME".into(), home.path().display().to_string()),
            ("KUBECONFIG".into(), String::new()),
            ("KUBERNETES_SERVICE_HOST".into(), String::new()),
        ],
    )
    .await;
    assert_eq!(r.code, 2);
    assert_eq!(r.err_lines().len(), 1);
    assert!(r.stderr.contains("no kubeconfig found"), "{}", r.stderr);
    assert!(r.stderr.contains("pass --kubeconfig PATH"), "{}", r.stderr);
}

#[tokio::test]
async fn malformed_selectors_change_nothing() {
    let c = cluster(BASIC).await;
    let before = c.pods_on("n1").await;
    c.sim.reset_requests();
    let r = c.run(&with_flags(&["drain", "-l", "pool in (a"])).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(r.err_lines().len(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("invalid --selector \"pool in (a\""),
        "{}",
        r.stderr
    );

    let r = c
        .run(&with_flags(&[
            "drain",
            "n1",
            "--pod-selector",
            "app in (web",
        ]))
        .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(r.err_lines().len(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("--pod-selector"), "{}", r.stderr);
    assert!(
        c.sim.requests().is_empty(),
        "rejected before connecting: {:?}",
        c.sim.requests()
    );
    assert_unchanged(&c, &before).await;
}

#[tokio::test]
async fn unreachable_server_exit_6() {
    // A port that was open a moment ago and is closed now.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kc");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
        ),
    )
    .unwrap();
    let r = drain_n1_with_kubeconfig(&kc).await;
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert_eq!(r.err_lines().len(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "cannot reach the Kubernetes API at http://127.0.0.1:{port}"
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Connection refused"), "{}", r.stderr);
}

#[tokio::test]
async fn missing_permission_to_cordon_names_verb_and_resource() {
    let c = cluster(BASIC).await;
    let before = c.pods_on("n1").await;
    c.sim.reset_requests();
    c.sim.set_faults(vec![
        serde_json::from_value(serde_json::json!({
            "verb": "patch", "resource": "nodes", "status": 403
        }))
        .unwrap(),
    ]);
    let r = c.run(&with_flags(&["drain", "n1"])).await;
    assert_eq!(r.code, 5, "{}\n{}", r.stdout, r.stderr);
    let errors: Vec<&str> = r
        .err_lines()
        .into_iter()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", r.stderr);
    assert!(errors[0].contains("needs patch on nodes"), "{}", r.stderr);
    assert_eq!(c.count("create", "pods", "eviction"), 0);
    assert_unchanged(&c, &before).await;
}

#[tokio::test]
async fn missing_permission_to_list_pods_in_plan() {
    let c = cluster(BASIC).await;
    c.sim.set_faults(vec![
        serde_json::from_value(serde_json::json!({
            "verb": "list", "resource": "pods", "status": 403
        }))
        .unwrap(),
    ]);
    let r = c.run(&with_flags(&["plan", "n1"])).await;
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert_eq!(r.err_lines().len(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("needs list on pods"), "{}", r.stderr);
    assert!(c.all_writes().is_empty());
}

#[tokio::test]
async fn plan_of_unknown_node_is_bad_input() {
    let c = cluster(BASIC).await;
    let r = c.run(&["plan", "n1", "nx"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(r.err_lines().len(), 1);
    assert!(r.stderr.contains("\"nx\" not found"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(c.all_writes().is_empty());
}

/// Every unknown node is named, for plan, drain and cordon alike, and nothing changes.
#[tokio::test]
async fn every_unknown_node_is_named() {
    let c = cluster(BASIC).await;
    let before = c.pods_on("n1").await;
    c.sim.reset_requests();
    let expected =
        "error: nodes \"n9\", \"n8\" not found; check the names with `kubectl get nodes`";
    for args in [
        vec!["plan", "n9", "n8"],
        vec!["plan", "n1", "n9", "n8"],
        with_flags(&["drain", "n1", "n9", "n8"]),
        vec!["cordon", "n1", "n9", "n8"],
    ] {
        let r = c.run(&args).await;
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert_eq!(r.err_lines(), [expected], "{args:?}");
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
    let json = c.run(&["drain", "n9", "n1", "n8", "-o", "json"]).await;
    assert_eq!(json.code, 2);
    let last: serde_json::Value =
        serde_json::from_str(json.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        last["error"],
        "nodes \"n9\", \"n8\" not found; check the names with `kubectl get nodes`"
    );
    assert!(!c.cordoned("n1").await);
    assert_unchanged(&c, &before).await;
}

#[tokio::test]
async fn selector_matching_no_node_changes_nothing() {
    let c = cluster(BASIC).await;
    let before = c.pods_on("n1").await;
    c.sim.reset_requests();
    let r = c.run(&with_flags(&["drain", "-l", "pool=nothing"])).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(
        r.err_lines(),
        vec![
            "error: no nodes match --selector \"pool=nothing\"; check the labels with `kubectl get nodes --show-labels`"
        ]
    );
    assert_unchanged(&c, &before).await;
}

#[tokio::test]
async fn server_error_is_exit_1_with_one_line() {
    let c = cluster(BASIC).await;
    c.sim.set_faults(vec![
        serde_json::from_value(serde_json::json!({
            "verb": "list", "resource": "pods", "status": 500
        }))
        .unwrap(),
    ]);
    let r = c.run(&with_flags(&["plan", "n1", "-o", "text"])).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.err_lines().len(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("listing the pods of node n1"),
        "{}",
        r.stderr
    );
    assert!(c.all_writes().is_empty());
}
