//! `-o json`: one JSON event per line, then a final result object.

use serde_json::Value;

use crate::common::{ALL_FLAGS, BASIC, cluster};

fn parse_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[tokio::test]
async fn drain_emits_events_and_a_final_report() {
    let c = cluster(BASIC).await;
    let mut args = vec!["drain", "n1", "-o", "json"];
    args.extend(ALL_FLAGS);
    let r = c.run(&args).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.is_empty(),
        "json mode keeps stderr quiet: {}",
        r.stderr
    );
    let lines = parse_lines(&r.stdout);
    let kinds: Vec<&str> = lines
        .iter()
        .map(|v| v["event"].as_str().expect("every line has an event"))
        .collect();
    assert_eq!(kinds[0], "cordoned");
    assert_eq!(lines[0]["node"], "n1");
    assert_eq!(lines[0]["already"], false);
    for k in [
        "planned",
        "warning",
        "skipped",
        "eviction_sent",
        "evicted",
        "gone",
        "node_drained",
        "done",
    ] {
        assert!(kinds.contains(&k), "missing {k} in {kinds:?}");
    }
    assert_eq!(kinds.iter().filter(|k| **k == "eviction_sent").count(), 3);
    assert_eq!(kinds.iter().filter(|k| **k == "gone").count(), 3);
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "result");
    assert_eq!(last["exit_code"], 0);
    assert_eq!(last["succeeded"], true);
    assert_eq!(last["error"], Value::Null);
    assert_eq!(last["report"]["nodes"][0]["node"], "n1");
    assert_eq!(last["report"]["nodes"][0]["outcome"]["outcome"], "drained");
    assert_eq!(
        last["report"]["nodes"][0]["requests"]["create pods/eviction"],
        3
    );
}

#[tokio::test]
async fn failure_is_a_result_line_too() {
    let c = cluster(BASIC).await;
    let r = c.run(&["drain", "nx", "-o", "json"]).await;
    assert_eq!(r.code, 2);
    let lines = parse_lines(&r.stdout);
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "result");
    assert_eq!(last["exit_code"], 2);
    assert_eq!(last["succeeded"], false);
    assert!(last["error"].as_str().unwrap().contains("\"nx\" not found"));
    assert_eq!(r.err_lines().len(), 1);
}

#[tokio::test]
async fn blocked_event_names_budget_and_cause() {
    let c = cluster(
        r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: web, replicas: 2, labels: {app: web}, nodes: [n1, n1], terminationSeconds: 0.1, readySeconds: 60}
pdbs:
  - {name: web, namespace: default, selector: {app: web}, minAvailable: 1}
"#,
    )
    .await;
    let r = c.run(&["drain", "n1", "--timeout=1s", "-o", "json"]).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    let lines = parse_lines(&r.stdout);
    let blocked: Vec<&Value> = lines.iter().filter(|v| v["event"] == "blocked").collect();
    assert!(!blocked.is_empty());
    assert_eq!(blocked[0]["budget"], "web");
    assert!(
        blocked[0]["cause"]
            .as_str()
            .unwrap()
            .contains("needs 1 healthy pods"),
        "{}",
        blocked[0]
    );
    let last = lines.last().unwrap();
    assert_eq!(last["exit_code"], 3);
    assert_eq!(
        last["report"]["nodes"][0]["outcome"]["outcome"],
        "blocked_by_budgets"
    );
}
