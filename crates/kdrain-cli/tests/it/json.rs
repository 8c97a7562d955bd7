//! `-o json`: one JSON event per line, then a final result object.

use serde_json::Value;

use crate::common::{ALL_FLAGS, BASIC, cluster, run_raw};

fn parse_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The schema `kdrain schema events` prints, compiled.
async fn schema() -> jsonschema::Validator {
    let r = run_raw(vec!["schema".into(), "events".into()], vec![]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let schema: Value = serde_json::from_str(&r.stdout).expect("the schema is JSON");
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{schema}"
    );
    jsonschema::draft202012::new(&schema).expect("a valid JSON Schema")
}

/// Every line is valid against the published schema, and carries `schema_version` 1 and a
/// `time` in RFC 3339 UTC with exactly three fractional digits.
fn check_lines(validator: &jsonschema::Validator, lines: &[Value]) {
    for line in lines {
        let errors: Vec<String> = validator.iter_errors(line).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{line}\n{errors:#?}");
        assert_eq!(line["schema_version"], 1, "{line}");
        let time = line["time"]
            .as_str()
            .unwrap_or_else(|| panic!("no time: {line}"));
        let parsed: jiff::Timestamp = time.parse().unwrap_or_else(|e| panic!("{time}: {e}"));
        assert_eq!(kdrain::events::rfc3339_ms(&parsed), time, "{line}");
        assert!(time.ends_with('Z') && time.len() == "2026-01-02T03:04:05.678Z".len());
    }
}

/// The times of the lines never go back, and the result line is dated when the engine was done.
fn check_times_in_order(lines: &[Value]) {
    let times: Vec<jiff::Timestamp> = lines
        .iter()
        .map(|l| l["time"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let done = lines.iter().find(|l| l["event"] == "done");
    if let Some(done) = done {
        assert_eq!(done["time"], lines.last().unwrap()["time"]);
    }
}

/// Numbers of seconds have at most three decimals.
fn check_millis(value: &Value, path: &str) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k.ends_with("seconds")
                    && let Some(x) = v.as_f64()
                {
                    assert_eq!((x * 1000.0).round() / 1000.0, x, "{path}.{k} = {x}");
                }
                check_millis(v, &format!("{path}.{k}"));
            }
        }
        Value::Array(items) => items.iter().for_each(|v| check_millis(v, path)),
        _ => {}
    }
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
    check_lines(&schema().await, &lines);
    check_times_in_order(&lines);
    for line in &lines {
        check_millis(line, "");
    }
    let done = lines.iter().find(|l| l["event"] == "done").unwrap();
    assert_eq!(done["succeeded"], true);
    assert!(
        done.get("report").is_none(),
        "the report is carried once: {done}"
    );
    // A pod's events come in causal order, and the report's times agree with them.
    let last = lines.last().unwrap();
    for pod in last["report"]["nodes"][0]["pods"].as_array().unwrap() {
        let uid = &pod["pod"]["uid"];
        let time_of = |kind: &str| -> Option<jiff::Timestamp> {
            lines
                .iter()
                .find(|l| l["event"] == kind && l["pod"]["uid"] == *uid)
                .map(|l| l["time"].as_str().unwrap().parse().unwrap())
        };
        if let (Some(sent), Some(gone)) = (time_of("eviction_sent"), time_of("gone")) {
            assert!(sent <= gone, "{pod}");
            let first: jiff::Timestamp = pod["first_attempt"].as_str().unwrap().parse().unwrap();
            let seen_gone: jiff::Timestamp = pod["gone"].as_str().unwrap().parse().unwrap();
            assert!(first <= gone && seen_gone <= gone, "{pod}");
        }
    }
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
    check_lines(&schema().await, &lines);
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
    check_lines(&schema().await, &lines);
    let blocked: Vec<&Value> = lines.iter().filter(|v| v["event"] == "blocked").collect();
    assert!(!blocked.is_empty());
    assert_eq!(blocked[0]["budget"], "web");
    assert_eq!(blocked[0]["waits_for"], "budget");
    // the typed counts are the ones the cause states
    let healthy = &blocked[0]["healthy"];
    assert_eq!(healthy["needs"], 1, "{}", blocked[0]);
    assert_eq!(
        blocked[0]["cause"],
        format!(
            "The disruption budget web needs 1 healthy pods and has {} currently",
            healthy["has"]
        )
    );
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

#[tokio::test]
async fn plan_speaks_the_drain_vocabulary() {
    let c = cluster(BASIC).await;
    let r = c.run(&["plan", "n1", "-o", "json"]).await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    let lines = parse_lines(&r.stdout);
    check_lines(&schema().await, &lines);
    check_times_in_order(&lines);
    let kinds: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"planned"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"result"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "planned").count(), 1);
    let last = lines.last().unwrap();
    assert_eq!(last["exit_code"], 4);
    assert_eq!(last["succeeded"], false);
    assert_eq!(
        last["error"],
        "the drain cannot complete: pods would be left on the node (exit 4)"
    );
    assert_eq!(last["report"], Value::Null);
    let mut args = vec!["plan", "n1", "-o", "json"];
    args.extend(ALL_FLAGS);
    let ok = c.run(&args).await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let lines = parse_lines(&ok.stdout);
    let last = lines.last().unwrap();
    assert_eq!(
        (last["succeeded"].clone(), last["error"].clone()),
        (Value::Bool(true), Value::Null)
    );
    assert!(c.all_writes().is_empty(), "{:?}", c.all_writes());
}

#[tokio::test]
async fn a_client_dry_run_counts_the_attempts_it_shows() {
    let c = cluster(BASIC).await;
    let mut args = vec!["drain", "n1", "-o", "json", "--dry-run=client"];
    args.extend(ALL_FLAGS);
    let r = c.run(&args).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = parse_lines(&r.stdout);
    check_lines(&schema().await, &lines);
    let report = &lines.last().unwrap()["report"];
    let sent: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "eviction_sent" || l["event"] == "delete_sent")
        .collect();
    assert_eq!(sent.len(), 3);
    for event in sent {
        let pod = report["nodes"][0]["pods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pod"]["uid"] == event["pod"]["uid"])
            .unwrap();
        assert_eq!(pod["attempts"], event["attempt"], "{pod}\n{event}");
        assert_eq!(pod["outcome"]["outcome"], "dry_run");
    }
    assert!(c.all_writes().is_empty(), "{:?}", c.all_writes());
}

#[tokio::test]
async fn cordon_lines_are_engine_events() {
    let c = cluster(BASIC).await;
    let r = c.run(&["cordon", "n1", "n2", "-o", "json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = parse_lines(&r.stdout);
    check_lines(&schema().await, &lines);
    let nodes: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l["event"].as_str().unwrap(), l["node"].as_str().unwrap()))
        .collect();
    assert_eq!(nodes, [("cordoned", "n1"), ("cordoned", "n2")]);
}

/// `drain -l` names the nodes it resolved first, as `plan -l` does.
#[tokio::test]
async fn drain_by_selector_starts_with_the_resolved_nodes() {
    let c = cluster(BASIC).await;
    let mut args = vec!["drain", "-l", "pool=a", "-o", "json", "--dry-run=client"];
    args.extend(ALL_FLAGS);
    let r = c.run(&args).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = parse_lines(&r.stdout);
    check_lines(&schema().await, &lines);
    check_times_in_order(&lines);
    assert_eq!(lines[0]["event"], "nodes_resolved", "{}", lines[0]);
    assert_eq!(lines[0]["nodes"], serde_json::json!(["n1", "n2"]));
    let plan = c.run(&["plan", "-l", "pool=a", "-o", "json"]).await;
    assert_eq!(parse_lines(&plan.stdout)[0]["event"], "nodes_resolved");
}
