//! `kdrain plan`: reads only; per node every pod with action and reason, budgets and verdicts.

use crate::common::{ALL_FLAGS, BASIC, cluster};

const WAITS: &str = r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 2, labels: {app: web}, nodes: [n1, n1], terminationSeconds: 0.1, gracePeriodSeconds: 40}
pdbs:
  - {name: web, namespace: default, selector: {app: web}, minAvailable: 1}
"#;

const NEVER: &str = r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: db, replicas: 2, labels: {app: db}, nodes: [n1, n2]}
pdbs:
  - {name: db, namespace: default, selector: {app: db}, minAvailable: 2}
"#;

#[tokio::test]
async fn blocking_budget_waits_but_can_complete() {
    let c = cluster(WAITS).await;
    let r = c.run(&["plan", "n1"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("node/n1 (schedulable, will be cordoned)"),
        "{}",
        r.stdout
    );
    assert_eq!(
        r.stdout.matches("  evict   default/web-").count(),
        2,
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("default/web "), "{}", r.stdout);
    assert!(r.stdout.contains("waits: "), "{}", r.stdout);
    // the simulator dates its first pods as Ready 1 s (its default readySeconds) after start
    assert!(
        r.stdout.contains(
            "the rest wait for replacements to become ready; replacements became ready in ~1.0s here"
        ),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("worst case: "), "{}", r.stdout);
    assert!(
        r.stdout.contains("result: the drain can complete"),
        "{}",
        r.stdout
    );
    let j = c.run(&["plan", "n1", "-o", "json"]).await;
    let v = planned_and_result(&j.stdout);
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["plan"]["budgets"][0]["verdict"]["verdict"], "waits");
    assert_eq!(v["plan"]["budgets"][0]["replacement_ready_seconds"], 1.0);
    assert_eq!(v["plan"]["nodes"][0]["pods"][0]["grace_seconds"], 40);
    assert!(v["plan"]["worst_case_seconds"].as_f64().unwrap() >= 40.0);
    assert!(
        c.all_writes().is_empty(),
        "plan changes nothing: {:?}",
        c.all_writes()
    );
    assert!(!c.cordoned("n1").await);
}

#[tokio::test]
async fn unsatisfiable_budget_exits_3() {
    let c = cluster(NEVER).await;
    let r = c.run(&["plan", "n1"]).await;
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("NEVER passes: "), "{}", r.stdout);
    assert!(r.stdout.contains(
        "result: the drain cannot complete: a disruption budget can never allow it (exit 3)"
    ));
    assert!(c.all_writes().is_empty());
}

/// A budget that can never pass and a pod that is refused, on the same node.
const NEVER_AND_REFUSED: &str = r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: db, replicas: 2, labels: {app: db}, nodes: [n1, n2]}
  - {kind: Pod, name: bare-pod, nodes: [n1]}
pdbs:
  - {name: db, namespace: default, selector: {app: db}, minAvailable: 2}
"#;

#[tokio::test]
async fn refused_pods_win_over_a_never_budget_in_plan_as_in_drain() {
    let c = cluster(NEVER_AND_REFUSED).await;
    let plan = c.run(&["plan", "n1"]).await;
    assert!(plan.stdout.contains("NEVER passes: "), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("  REFUSE  default/bare-pod"),
        "{}",
        plan.stdout
    );
    assert_eq!(plan.code, 4, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout
            .contains("result: the drain cannot complete: pods would be left on the node (exit 4)"),
        "{}",
        plan.stdout
    );
    let json = c.run(&["plan", "n1", "-o", "json"]).await;
    assert_eq!(json.code, 4, "{}", json.stderr);
    let v = planned_and_result(&json.stdout);
    assert_eq!(v["exit_code"], 4);
    let drain = c.run(&["drain", "n1"]).await;
    assert_eq!(drain.code, plan.code, "{}\n{}", drain.stdout, drain.stderr);
    assert!(
        c.all_writes().iter().all(|w| !w.contains("eviction")),
        "{:?}",
        c.all_writes()
    );
}

#[tokio::test]
async fn refused_pods_exit_4_and_name_the_flag() {
    let c = cluster(BASIC).await;
    let r = c.run(&["plan", "n1"]).await;
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("  REFUSE  default/bare-pod"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("Pods that declare no controller (use --force to override)")
    );
    assert!(
        r.stdout.contains("  skip    kube-system/kube-apiserver-n1"),
        "{}",
        r.stdout
    );
    let mut args = vec!["plan", "n1"];
    args.extend(ALL_FLAGS);
    let r = c.run(&args).await;
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout.contains("  evict   default/bare-pod"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("budgets: none"), "{}", r.stdout);
    assert!(c.all_writes().is_empty());
}

#[tokio::test]
async fn plan_by_selector_covers_each_node() {
    let c = cluster(BASIC).await;
    let mut args = vec!["plan", "-l", "pool=a"];
    args.extend(ALL_FLAGS);
    let r = c.run(&args).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("node/n1 ("));
    assert!(r.stdout.contains("node/n2 ("));
    assert!(!r.stdout.contains("node/n3 ("));
}

/// `plan -o json`'s `planned` event with the result line's `exit_code` added.
fn planned_and_result(stdout: &str) -> serde_json::Value {
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let mut planned = lines
        .iter()
        .find(|l| l["event"] == "planned")
        .unwrap_or_else(|| panic!("no planned event: {stdout}"))
        .clone();
    let result = lines.last().expect("a result line");
    assert_eq!(result["event"], "result", "{stdout}");
    planned["exit_code"] = result["exit_code"].clone();
    planned
}
