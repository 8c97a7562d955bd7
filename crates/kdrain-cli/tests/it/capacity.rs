//! Will the evicted pods fit? `plan` and `drain` check room for the replacements on the nodes
//! that stay schedulable, refuse (exit 7, nothing changed) when they do not fit, and agree with
//! the scheduler: with `--ignore-capacity` the replacements stay Pending with the very message
//! the plan gave.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use crate::common::{ALL_FLAGS, cluster};

const DEMO: &str = include_str!("../../../../scenarios/demo.yaml");

#[tokio::test]
async fn the_demo_pool_drained_at_once_has_nowhere_to_put_its_pods() {
    let c = cluster(DEMO).await;
    let mut args = vec!["plan", "-l", "pool=demo", "--parallel", "3"];
    args.extend(ALL_FLAGS);
    let r = c.run(&args).await;
    assert_eq!(r.code, 7, "{}\n{}", r.stdout, r.stderr);
    for w in ["shop/api", "shop/cache", "shop/db", "shop/web"] {
        assert!(
            r.stdout.contains(&format!("error: {w}: ")),
            "{w}: {}",
            r.stdout
        );
    }
    assert!(
        r.stdout.contains(
            "error: shop/web: 4 replacements have nowhere to go: no node stays schedulable (every node is drained, cordoned or not Ready); add nodes or drain fewer at once"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("replacements: no node stays schedulable"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("lost (nothing replaces them): default/debug-shell"),
        "{}",
        r.stdout
    );
    // The budgets of web and db can never let their pods go: nothing replaces them.
    assert!(
        r.stdout.contains("NEVER passes: it allows 1 of the 4 pods now and the replacements of 4 pods cannot be placed (shop/web), so it will block for ever"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("result: the drain cannot start: the evicted pods' replacements would not fit (exit 7; --ignore-capacity drains anyway)"),
        "{}",
        r.stdout
    );

    // drain refuses with the same verdict before any change.
    c.sim.reset_requests();
    let mut args = vec!["drain", "-l", "pool=demo", "--parallel", "3"];
    args.extend(ALL_FLAGS);
    let d = c.run(&args).await;
    assert_eq!(d.code, 7, "{}\n{}", d.stdout, d.stderr);
    let errors: Vec<&str> = d
        .err_lines()
        .into_iter()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", d.stderr);
    assert!(
        errors[0].contains("shop/web: 4 replacements have nowhere to go"),
        "{}",
        d.stderr
    );
    assert_eq!(
        c.all_writes(),
        Vec::<String>::new(),
        "no cordon, no eviction"
    );
    for n in ["n1", "n2", "n3"] {
        assert!(!c.cordoned(n).await, "{n} cordoned");
    }
    // One node at a time fits (two nodes stay schedulable).
    let c = cluster(DEMO).await;
    let mut args = vec!["plan", "n1"];
    args.extend(ALL_FLAGS);
    let one = c.run(&args).await;
    assert_eq!(one.code, 0, "{}\n{}", one.stdout, one.stderr);
    assert!(
        one.stdout
            .contains("replacements: 2 node(s) stay schedulable (n2, n3)"),
        "{}",
        one.stdout
    );
}

const TIGHT: &str = r#"
nodes:
  - {name: n1}
  - {name: n2, allocatable: {cpu: "2"}}
workloads:
  - {kind: Deployment, name: web, namespace: shop, replicas: 3, nodes: [n1], requests: {cpu: "1"}, readySeconds: 0.1}
  - {kind: Deployment, name: cache, namespace: shop, replicas: 1, nodes: [n2], requests: {cpu: 500m}}
"#;

#[tokio::test]
async fn a_shortage_is_named_and_with_ignore_capacity_the_scheduler_agrees() {
    let c = cluster(TIGHT).await;
    let r = c.run(&["plan", "n1"]).await;
    assert_eq!(r.code, 7, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(
            "error: shop/web: 3 replacements need 3 CPU, the 1 schedulable node has 1.5 CPU free (2 do not fit); add capacity or drain fewer nodes at once\n"
        ),
        "{}",
        r.stdout
    );
    let j = c.run(&["plan", "n1", "-o", "json"]).await;
    assert_eq!(j.code, 7);
    let lines: Vec<serde_json::Value> = j
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let result = lines.last().expect("a result line");
    assert_eq!(result["exit_code"], 7);
    assert_eq!(
        result["error"],
        "the drain cannot start: the evicted pods' replacements would not fit (exit 7; --ignore-capacity drains anyway)"
    );
    let v = lines
        .iter()
        .find(|l| l["event"] == "planned")
        .expect("planned event");
    let cap = &v["plan"]["capacity"];
    assert_eq!(cap["schedulable_nodes"], serde_json::json!(["n2"]));
    assert_eq!(cap["workloads"][0]["name"], "web");
    assert_eq!(cap["workloads"][0]["placed"], 1);
    let pods = v["plan"]["nodes"][0]["pods"].as_array().unwrap();
    let no_room: Vec<&str> = pods
        .iter()
        .filter_map(|p| p["placement"].as_str())
        .filter(|p| p.starts_with("no room"))
        .collect();
    assert_eq!(no_room.len(), 2, "{pods:?}");

    // Drain anyway: the evictions go through, and the scheduler leaves two replacements
    // Pending with the message the plan predicted.
    let d = c.run(&["drain", "n1", "--ignore-capacity"]).await;
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    let api: Api<Pod> = Api::namespaced(c.client(), "shop");
    let mut pending = Vec::new();
    for _ in 0..200 {
        pending = api
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|p| {
                p.status?
                    .conditions?
                    .into_iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "False")?
                    .message
            })
            .collect();
        if pending.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(pending.len(), 2, "{pending:?}");
    let predicted = no_room[0].trim_start_matches("no room for its replacement: ");
    assert!(
        pending.iter().all(|m| m == predicted),
        "{pending:?} vs {predicted}"
    );
}
