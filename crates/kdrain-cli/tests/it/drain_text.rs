//! Plain-text output (not a terminal): kubectl's exact lines, and every drain flag's effect.

use crate::common::{ALL_FLAGS, BASIC, cluster, mask, sorted};

fn with_flags<'a>(base: &[&'a str]) -> Vec<&'a str> {
    let mut v = base.to_vec();
    v.extend(ALL_FLAGS);
    v
}

#[tokio::test]
async fn full_drain_prints_kubectls_lines() {
    let c = cluster(BASIC).await;
    let r = c.run(&with_flags(&["drain", "n1"])).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let out = r.out_lines();
    assert_eq!(out.first(), Some(&"node/n1 cordoned"));
    assert_eq!(out.last(), Some(&"node/n1 drained"));
    let masked: Vec<String> = out.iter().map(|l| mask(l, &["web", "cache"])).collect();
    let masked: Vec<&str> = masked.iter().map(String::as_str).collect();
    assert_eq!(
        sorted(&masked),
        vec![
            "evicting pod default/bare-pod",
            "evicting pod default/cache-*",
            "evicting pod default/web-*",
            "node/n1 cordoned",
            "node/n1 drained",
            "pod/bare-pod evicted",
            "pod/cache-* evicted",
            "pod/web-* evicted",
        ]
    );
    // Each evicted pod's line comes after its evicting line.
    let err = r.err_lines();
    assert_eq!(err.len(), 1, "{}", r.stderr);
    assert!(err[0].starts_with("Warning: "), "{}", err[0]);
    assert!(
        err[0].contains("deleting Pods that declare no controller: default/bare-pod"),
        "{}",
        err[0]
    );
    assert!(
        err[0].contains("ignoring DaemonSet-managed Pods: kube-system/fluentd-"),
        "{}",
        err[0]
    );
    assert!(c.cordoned("n1").await);
    let left = c.pods_on("n1").await;
    assert_eq!(
        left.len(),
        2,
        "only the DaemonSet and mirror pods stay: {left:?}"
    );
    assert!(c.sim.violations().is_empty(), "{:?}", c.sim.violations());
}

#[tokio::test]
async fn without_flags_prints_kubectls_error_block_and_evicts_nothing() {
    let c = cluster(BASIC).await;
    let r = c.run(&["drain", "n1"]).await;
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    // refused by the plan before any change: unlike kubectl, no cordon
    assert_eq!(r.out_lines(), Vec::<String>::new());
    assert!(!c.cordoned("n1").await);
    let err: Vec<String> = r
        .err_lines()
        .iter()
        .map(|l| mask(l, &["cache", "fluentd"]))
        .collect();
    let first = &err[0];
    assert!(
        first.starts_with("error: unable to drain node \"n1\" due to error: ["),
        "{first}"
    );
    assert!(first.ends_with("], continuing command..."), "{first}");
    assert!(first.contains("cannot delete cannot delete Pods that declare no controller (use --force to override): default/bare-pod"), "{first}");
    assert_eq!(err[1], "There are pending nodes to be drained:");
    assert_eq!(err[2], " n1");
    let mut rest = err[3..].to_vec();
    rest.sort();
    assert_eq!(
        rest,
        vec![
            "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): kube-system/fluentd-*",
            "cannot delete Pods with local storage (use --delete-emptydir-data to override): default/cache-*",
            "cannot delete cannot delete Pods that declare no controller (use --force to override): default/bare-pod",
        ]
    );
    assert_eq!(c.count("create", "pods", "eviction"), 0);
    assert_eq!(c.count("delete", "pods", ""), 0);
    assert_eq!(c.pods_on("n1").await.len(), 5);
}

#[tokio::test]
async fn already_cordoned_node() {
    let c = cluster(BASIC).await;
    let r = c.run(&["cordon", "n1"]).await;
    assert_eq!(r.out_lines(), vec!["node/n1 cordoned"]);
    let r = c.run(&with_flags(&["drain", "n1"])).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.out_lines()[0], "node/n1 already cordoned");
    assert_eq!(r.out_lines().last(), Some(&"node/n1 drained"));
    assert_eq!(
        c.count("patch", "nodes", ""),
        1,
        "only the cordon command patched"
    );
}

#[tokio::test]
async fn dry_run_client_reads_only() {
    let c = cluster(BASIC).await;
    let before = c.pods_on("n1").await;
    c.sim.reset_requests();
    for flag in ["--dry-run", "--dry-run=client"] {
        let r = c.run(&with_flags(&["drain", "n1", flag])).await;
        assert_eq!(r.code, 0, "{flag}: {}", r.stderr);
        let out: Vec<String> = r
            .out_lines()
            .iter()
            .map(|l| mask(l, &["web", "cache"]))
            .collect();
        assert_eq!(
            out,
            vec![
                "node/n1 cordoned (dry run)",
                "evicting pod default/bare-pod (dry run)",
                "evicting pod default/cache-* (dry run)",
                "evicting pod default/web-* (dry run)",
                "node/n1 drained (dry run)",
            ],
            "{flag}"
        );
        assert!(r.stderr.starts_with("Warning: "), "{}", r.stderr);
    }
    assert_eq!(c.all_writes(), Vec::<String>::new());
    assert!(!c.cordoned("n1").await);
    assert_eq!(c.pods_on("n1").await, before);
}

#[tokio::test]
async fn dry_run_server_sends_dry_writes() {
    let c = cluster(BASIC).await;
    let before = c.pods_on("n1").await;
    c.sim.reset_requests();
    let r = c
        .run(&with_flags(&["drain", "n1", "--dry-run=server"]))
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut out: Vec<String> = r
        .out_lines()
        .iter()
        .map(|l| mask(l, &["web", "cache"]))
        .collect();
    out[1..4].sort();
    assert_eq!(
        out,
        vec![
            "node/n1 cordoned (server dry run)",
            "evicting pod default/bare-pod (server dry run)",
            "evicting pod default/cache-* (server dry run)",
            "evicting pod default/web-* (server dry run)",
            "node/n1 drained (server dry run)",
        ]
    );
    assert_eq!(
        c.count("create", "pods", "eviction"),
        3,
        "dry-run evictions are sent"
    );
    assert_eq!(c.count("patch", "nodes", ""), 1, "dry-run cordon is sent");
    assert!(!c.cordoned("n1").await, "a server dry run persists nothing");
    assert_eq!(c.pods_on("n1").await, before);
}

#[tokio::test]
async fn disable_eviction_deletes_pods() {
    let c = cluster(BASIC).await;
    let r = c
        .run(&with_flags(&["drain", "n1", "--disable-eviction"]))
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut out: Vec<String> = r
        .out_lines()
        .iter()
        .map(|l| mask(l, &["web", "cache"]))
        .collect();
    let n = out.len();
    out[1..n - 1].sort();
    assert_eq!(
        out,
        vec![
            "node/n1 cordoned",
            "pod/bare-pod deleted",
            "pod/cache-* deleted",
            "pod/web-* deleted",
            "node/n1 drained"
        ]
    );
    assert_eq!(c.count("create", "pods", "eviction"), 0);
    assert_eq!(c.count("delete", "pods", ""), 3);
}

#[tokio::test]
async fn pod_selector_limits_the_drain() {
    let c = cluster(BASIC).await;
    let r = c.run(&["drain", "n1", "--pod-selector", "app=web"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out: Vec<String> = r.out_lines().iter().map(|l| mask(l, &["web"])).collect();
    assert_eq!(
        out,
        vec![
            "node/n1 cordoned",
            "evicting pod default/web-*",
            "pod/web-* evicted",
            "node/n1 drained"
        ]
    );
    let left = c.pods_on("n1").await;
    assert!(
        left.iter().any(|p| p.starts_with("default/bare-pod/")),
        "{left:?}"
    );
    assert!(
        left.iter().any(|p| p.starts_with("default/cache-")),
        "{left:?}"
    );
    assert!(
        !left.iter().any(|p| p.starts_with("default/web-")),
        "{left:?}"
    );
}

#[tokio::test]
async fn chunk_size_pages_the_pod_list() {
    let c = cluster(BASIC).await;
    let r = c.run(&with_flags(&["plan", "n1", "--chunk-size=1"])).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let paged = c.count("list", "pods", "");
    assert!(
        paged >= 5,
        "5 pods in pages of 1 need at least 5 lists, saw {paged}"
    );
    c.sim.reset_requests();
    let r = c.run(&with_flags(&["plan", "n1"])).await;
    assert_eq!(r.code, 0);
    assert_eq!(
        c.count("list", "pods", ""),
        2,
        "the default chunk of 500 needs one list of the node's pods and one of every pod (capacity)"
    );
}

const SLOW_STOP: &str = r#"
nodes:
  - {name: n1}
  - {name: n2}
workloads:
  - {kind: Deployment, name: slow, replicas: 1, nodes: [n1], terminationSeconds: 120, gracePeriodSeconds: 120}
"#;

#[tokio::test]
async fn grace_period_caps_the_stop_time() {
    let c = cluster(SLOW_STOP).await;
    // The app needs 120 s to stop; with --grace-period=1 the kubelet kills it after 1 s, so the
    // drain ends long before its 20 s timeout.
    let r = c
        .run(&["drain", "n1", "--grace-period=1", "--timeout=20s"])
        .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.out_lines().last(), Some(&"node/n1 drained"));
    let plan = c
        .run(&["plan", "n1", "--grace-period=1", "-o", "json"])
        .await;
    let v: serde_json::Value = plan
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["event"] == "planned")
        .expect("a planned event");
    assert!(
        v["plan"]["nodes"][0]["pods"].as_array().unwrap().is_empty(),
        "n1 is empty now"
    );
}

#[tokio::test]
async fn skip_wait_for_delete_timeout_skips_old_terminating_pods() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, DeleteParams, PostParams};
    let c = cluster(SLOW_STOP).await;
    // A pod held by a finalizer: deleted with grace 0, it stays on the node, terminating,
    // with a deletionTimestamp in the past (a pod stuck on a dead kubelet looks the same).
    let api: Api<Pod> = Api::namespaced(c.client(), "default");
    let stuck: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "stuck", "finalizers": ["example.com/hold"]},
        "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "busybox"}]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &stuck).await.unwrap();
    api.delete("stuck", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let r = c
        .run(&[
            "drain",
            "n1",
            "--force",
            "--skip-wait-for-delete-timeout=1",
            "--grace-period=1",
            "--timeout=20s",
        ])
        .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let out: Vec<String> = r.out_lines().iter().map(|l| mask(l, &["slow"])).collect();
    assert_eq!(
        out.first().map(String::as_str),
        Some("node/n1 cordoned"),
        "{out:?}"
    );
    assert_eq!(
        out.last().map(String::as_str),
        Some("node/n1 drained"),
        "{out:?}"
    );
    assert!(
        out.contains(&"evicting pod default/slow-*".to_string()),
        "{out:?}"
    );
    assert_eq!(
        out.iter().filter(|l| *l == "pod/slow-* evicted").count(),
        1,
        "{out:?}"
    );
    assert!(
        !r.stdout.contains("stuck") && !r.stderr.contains("stuck"),
        "the stuck pod is neither evicted nor waited for: {}\n{}",
        r.stdout,
        r.stderr
    );
    let left = c.pods_on("n1").await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].starts_with("default/stuck/"),
        "the stuck pod was skipped, not waited for"
    );
}

const SLOW_BUDGET: &str = r#"
nodes:
  - {name: n1}
  - {name: n2}
workloads:
  - {kind: Deployment, name: web, replicas: 2, labels: {app: web}, nodes: [n1, n1], terminationSeconds: 0.1, readySeconds: 60}
pdbs:
  - {name: web, namespace: default, selector: {app: web}, minAvailable: 1}
"#;

#[tokio::test]
async fn timeout_with_blocking_budget_exits_3_and_uncordons_on_failure() {
    let c = cluster(SLOW_BUDGET).await;
    let r = c
        .run(&["drain", "n1", "--timeout=2s", "--uncordon-on-failure"])
        .await;
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    let out: Vec<String> = r.out_lines().iter().map(|l| mask(l, &["web"])).collect();
    assert_eq!(
        out,
        vec![
            "node/n1 cordoned",
            "evicting pod default/web-*",
            "pod/web-* evicted",
            "node/n1 uncordoned"
        ]
    );
    let err = r.err_lines();
    let retry_lines = err
        .iter()
        .filter(|l| l.contains("(will retry after"))
        .count();
    assert_eq!(
        retry_lines, 1,
        "one retry line while the cause stays the same: {}",
        r.stderr
    );
    assert!(
        err.iter().any(
            |l| l.starts_with("There are pending pods in node \"n1\" when an error occurred: ")
        ),
        "{}",
        r.stderr
    );
    assert!(
        err.iter()
            .any(|l| l.starts_with("error: unable to drain node \"n1\" due to error: ")),
        "{}",
        r.stderr
    );
    assert!(
        err.contains(&"There are pending nodes to be drained:"),
        "{}",
        r.stderr
    );
    assert!(!c.cordoned("n1").await, "restored by --uncordon-on-failure");
    assert!(c.sim.violations().is_empty());
}

#[tokio::test]
async fn timeout_without_uncordon_leaves_node_cordoned() {
    let c = cluster(SLOW_BUDGET).await;
    let r = c.run(&["drain", "n1", "--timeout=1s"]).await;
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(c.cordoned("n1").await);
}

const OPT_OUT: &str = r#"
nodes:
  - {name: n1}
  - {name: n2}
workloads:
  - {kind: Deployment, name: keep, replicas: 1, nodes: [n1], terminationSeconds: 0.1, podAnnotations: {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}}
"#;

#[tokio::test]
async fn override_opt_outs() {
    let c = cluster(OPT_OUT).await;
    let r = c.run(&["drain", "n1"]).await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("safe-to-evict=false (use --override-opt-outs to override)"),
        "{}",
        r.stderr
    );
    assert_eq!(c.count("create", "pods", "eviction"), 0);
    let r = c.run(&["drain", "n1", "--override-opt-outs"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out: Vec<String> = r.out_lines().iter().map(|l| mask(l, &["keep"])).collect();
    assert_eq!(
        out,
        vec![
            // the refused first run left the node as it was
            "node/n1 cordoned",
            "evicting pod default/keep-*",
            "pod/keep-* evicted",
            "node/n1 drained"
        ]
    );
}

#[tokio::test]
async fn selector_cordons_all_then_drains_each() {
    let c = cluster(BASIC).await;
    let r = c.run(&with_flags(&["drain", "-l", "pool=a"])).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.out_lines();
    assert_eq!(&out[..2], &["node/n1 cordoned", "node/n2 cordoned"]);
    assert_eq!(out.iter().filter(|l| l.ends_with(" drained")).count(), 2);
    assert!(out.contains(&"node/n1 drained") && out.contains(&"node/n2 drained"));
    assert!(!c.cordoned("n3").await);
    assert_eq!(
        r.err_lines()
            .iter()
            .filter(|l| l.starts_with("Warning: "))
            .count(),
        2,
        "one Warning per node"
    );
    assert!(c.sim.violations().is_empty());
}

#[tokio::test]
async fn server_429_prints_one_retry_line_per_cause() {
    let c = cluster(BASIC).await;
    // Every eviction is refused with 429 (Retry-After 1 s): kdrain retries on its own schedule
    // and prints kubectl's retry line once, not once per attempt.
    c.sim.set_faults(vec![
        serde_json::from_value(serde_json::json!({
            "verb": "create", "resource": "pods/eviction", "status": 429, "retryAfterSeconds": 1
        }))
        .unwrap(),
    ]);
    let r = c
        .run(&["drain", "n1", "--pod-selector", "app=web", "--timeout=4s"])
        .await;
    assert_ne!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let attempts = c.count("create", "pods", "eviction");
    assert!(attempts >= 2, "retried: {attempts}");
    let retry_lines: Vec<&str> = r
        .err_lines()
        .into_iter()
        .filter(|l| l.contains("(will retry after "))
        .collect();
    assert_eq!(retry_lines.len(), 1, "{}", r.stderr);
    assert!(
        retry_lines[0].starts_with("error when evicting pods/\"web-"),
        "{}",
        retry_lines[0]
    );
    assert!(
        retry_lines[0].contains(" -n \"default\" (will retry after "),
        "{}",
        retry_lines[0]
    );
    let evicting = r
        .out_lines()
        .iter()
        .filter(|l| l.starts_with("evicting pod default/web-"))
        .count();
    assert_eq!(
        evicting, 2,
        "the first attempt and the one after the cause changed: {}",
        r.stdout
    );
}

#[tokio::test]
async fn terminating_namespace_prints_kubectls_retry_line() {
    let c = cluster(
        r#"
settings: {namespaceDeletionDelaySeconds: 30}
nodes: [{name: n1}, {name: n2}]
namespaces:
  - {name: leaving, terminating: true}
workloads:
  - {kind: Deployment, name: app, namespace: leaving, replicas: 1, nodes: [n1], terminationSeconds: 0.1}
"#,
    )
    .await;
    let r = c.run(&["drain", "n1", "--timeout=2s"]).await;
    assert_ne!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let lines: Vec<String> = r
        .err_lines()
        .iter()
        .filter(|l| l.contains("terminating namespace"))
        .map(|l| mask(l, &["app"]))
        .collect();
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    assert!(
        lines[0].starts_with("error when evicting pod \"app-"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("\" from terminating namespace \"leaving\" (will retry after "),
        "{}",
        lines[0]
    );
}

#[tokio::test]
async fn ctrl_c_stops_and_says_how_to_undo() {
    let c = cluster(SLOW_BUDGET).await;
    let bin = assert_cmd::cargo::cargo_bin("kdrain");
    let kubeconfig = c.kubeconfig.clone();
    let job = tokio::task::spawn_blocking(move || {
        let child = std::process::Command::new(bin)
            .args(["drain", "n1", "--kubeconfig"])
            .arg(&kubeconfig)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn kdrain");
        // Let it cordon and get blocked by the budget, then press Ctrl-C.
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let sent = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill -INT");
        assert!(sent.success());
        child.wait_with_output().expect("kdrain output")
    });
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), job)
        .await
        .expect("kdrain stopped after Ctrl-C")
        .unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("interrupted: the drain stopped; cordoned nodes stay cordoned (undo with `kdrain uncordon n1`)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("pods left on node/n1: default/web-"),
        "names the pod still on the node: {stderr}"
    );
    assert!(c.cordoned("n1").await);
}
