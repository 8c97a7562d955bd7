//! Waves: with several nodes, the plan says which nodes drain together (at most `--parallel`
//! at a time, the slowest first) and how long each wave may take; the drain runs them in
//! order. When the replacements do not all fit, the planned drain names the nodes that would
//! fit, refuses and changes nothing, where the same drain all at once (`--ignore-capacity`)
//! leaves replacements Pending.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use crate::common::cluster;

/// Four old nodes, one 1-CPU pod of its own Deployment each (grace periods 1 to 4 s), and a
/// spare node with `spare` CPU.
fn pool(spare: &str) -> String {
    let mut y = format!("nodes:\n  - {{name: spare, allocatable: {{cpu: \"{spare}\"}}}}\n");
    for i in 1..=4 {
        y.push_str(&format!(
            "  - {{name: old{i}, labels: {{pool: old}}, allocatable: {{cpu: \"4\"}}}}\n"
        ));
    }
    y.push_str("workloads:\n");
    for i in 1..=4 {
        y.push_str(&format!(
            "  - {{kind: Deployment, name: app{i}, namespace: shop, replicas: 1, nodes: [old{i}], requests: {{cpu: \"1\"}}, gracePeriodSeconds: {i}, terminationSeconds: 0.1, readySeconds: 0.1}}\n"
        ));
    }
    y
}

/// Pods no node took.
async fn pending(client: kube::Client) -> Vec<String> {
    let api: Api<Pod> = Api::all(client);
    let lp = ListParams::default().fields("spec.nodeName=");
    api.list(&lp)
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.name)
        .collect()
}

#[tokio::test]
async fn the_plan_shows_waves_and_the_drain_runs_them_in_order() {
    let c = cluster(&pool("8")).await;
    let r = c.run(&["plan", "-l", "pool=old", "--parallel", "2"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(
            "waves: 2 (each starts when the one before is drained; replacements placed after the earlier waves')\n"
        ),
        "{}",
        r.stdout
    );
    let rows: Vec<Vec<&str>> = r
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("waves:"))
        .skip(2)
        .take(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    // the slowest nodes (grace 4 s and 3 s) together, then the others
    assert_eq!(
        rows,
        [
            vec!["1", "old4,", "old3", "2", "4.0s"],
            vec!["2", "old2,", "old1", "2", "2.0s"]
        ],
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("worst case: 6.0s"), "{}", r.stdout);

    let d = c
        .run(&["drain", "-l", "pool=old", "--parallel", "2", "-o", "json"])
        .await;
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    let events: Vec<serde_json::Value> = d
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let planned = events.iter().find(|e| e["event"] == "planned").unwrap();
    assert_eq!(
        planned["plan"]["waves"][0]["nodes"],
        serde_json::json!(["old4", "old3"])
    );
    assert_eq!(planned["plan"]["waves"][1]["worst_case_seconds"], 2.0);
    // wave 2 starts after both nodes of wave 1 are drained, and before any of its own
    let order: Vec<String> = events
        .iter()
        .filter_map(|e| match e["event"].as_str()? {
            "wave_started" => Some(format!("wave {}", e["wave"])),
            "node_drained" => Some(e["node"].as_str()?.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(order.len(), 6, "{order:?}");
    assert_eq!(order[0], "wave 1");
    assert_eq!(order[3], "wave 2");
    let mut first: Vec<&str> = order[1..3].iter().map(String::as_str).collect();
    first.sort();
    assert_eq!(first, ["old3", "old4"], "{order:?}");
    assert!(pending(c.client()).await.is_empty());
    assert_eq!(c.pods_on("spare").await.len(), 4);
}

#[tokio::test]
async fn the_planned_drain_leaves_nothing_pending_where_all_at_once_does() {
    // room for two of the four replacements
    let c = cluster(&pool("2500m")).await;
    let r = c.run(&["drain", "-l", "pool=old", "--parallel", "4"]).await;
    assert_eq!(r.code, 7, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(
            "no room for the replacements of old4, old3 after the others: the replacements of 2 nodes fit (1 wave); add capacity, or drain only the nodes that fit"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(c.all_writes(), Vec::<String>::new(), "nothing changed");
    assert!(pending(c.client()).await.is_empty());
    let p = c.run(&["plan", "-l", "pool=old", "--parallel", "4"]).await;
    assert_eq!(p.code, 7);
    assert!(p.stdout.contains("  no room: old3, old4\n"), "{}", p.stdout);

    // the nodes that fit drain as their own wave, nothing Pending
    let d = c.run(&["drain", "old1", "old2"]).await;
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    assert!(pending(c.client()).await.is_empty());

    // all at once on a fresh cluster: two replacements stay Pending
    let c = cluster(&pool("2500m")).await;
    let a = c
        .run(&[
            "drain",
            "-l",
            "pool=old",
            "--parallel",
            "4",
            "--ignore-capacity",
        ])
        .await;
    assert_eq!(a.code, 0, "{}\n{}", a.stdout, a.stderr);
    assert_eq!(pending(c.client()).await.len(), 2);
}
