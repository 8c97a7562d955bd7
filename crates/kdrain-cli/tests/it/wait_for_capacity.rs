//! `--wait-for-capacity`: a pool rotation where room comes back as drained nodes are made
//! schedulable again (the test plays the operator that reboots and uncordons them). The waves
//! follow the room there is: every node drains, one wave per node that fits, each pod evicted
//! once; without the flag the drain is refused; with nobody making room, the waiting nodes end
//! at --timeout with no room, nothing evicted from them.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::common::{Cluster, cluster};

/// Three old nodes of 2 CPU, each with the two 1-CPU pods of its own Deployment, and a spare
/// of 2 CPU: room for one old node's replacements.
pub(crate) fn rotation() -> String {
    let mut y = "nodes:\n  - {name: spare, allocatable: {cpu: \"2\"}}\n".to_string();
    for i in 1..=3 {
        y.push_str(&format!(
            "  - {{name: old{i}, labels: {{pool: old}}, allocatable: {{cpu: \"2\"}}}}\n"
        ));
    }
    y.push_str("workloads:\n");
    for i in 1..=3 {
        y.push_str(&format!(
            "  - {{kind: Deployment, name: app{i}, namespace: shop, replicas: 2, nodes: [old{i}], requests: {{cpu: \"1\"}}, gracePeriodSeconds: 1, terminationSeconds: 0.1, readySeconds: 0.1}}\n"
        ));
    }
    y
}

pub(crate) const DRAIN: [&str; 7] = [
    "drain",
    "-l",
    "pool=old",
    "--parallel",
    "10",
    "--wait-for-capacity",
    "-o",
];

/// The operator of a patch rotation: each old node it sees drained (cordoned, no pod left),
/// it makes schedulable again, once. Runs until aborted.
pub(crate) async fn operator(client: kube::Client) {
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::all(client);
    let mut done: BTreeSet<String> = BTreeSet::new();
    loop {
        let list = nodes
            .list(&ListParams::default().labels("pool=old"))
            .await
            .expect("list nodes");
        for n in list.items {
            let name = n.metadata.name.clone().unwrap_or_default();
            let cordoned = n.spec.and_then(|s| s.unschedulable).unwrap_or(false);
            if !cordoned || done.contains(&name) {
                continue;
            }
            let on = pods
                .list(&ListParams::default().fields(&format!("spec.nodeName={name}")))
                .await
                .expect("list pods");
            if on.items.is_empty() {
                let patch = json!({"spec": {"unschedulable": false}});
                nodes
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .expect("uncordon");
                done.insert(name);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The JSON lines of a run.
fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Pods no node took.
async fn pending(c: &Cluster) -> usize {
    let api: Api<Pod> = Api::all(c.client());
    api.list(&ListParams::default().fields("spec.nodeName="))
        .await
        .expect("list pods")
        .items
        .len()
}

#[tokio::test]
async fn the_waves_follow_the_room_that_comes_back() {
    let c = cluster(&rotation()).await;
    // the plan: old1 fits now, old2 and old3 wait for room; not a refusal
    let p = c
        .run(&[
            "plan",
            "-l",
            "pool=old",
            "--parallel",
            "10",
            "--wait-for-capacity",
        ])
        .await;
    assert_eq!(p.code, 0, "{}\n{}", p.stdout, p.stderr);
    assert!(
        p.stdout.contains(
            "waits for room: old2, old3 (their 4 replacements need 4 CPU; they start when nodes become schedulable with room for them)\n"
        ),
        "{}",
        p.stdout
    );
    assert!(
        p.stdout
            .contains("result: the drain can complete if room comes back"),
        "{}",
        p.stdout
    );

    let op = tokio::spawn(operator(c.client()));
    let mut args = DRAIN.to_vec();
    args.push("json");
    let d = c.run(&args).await;
    op.abort();
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    let events = lines(&d.stdout);
    let planned = events.iter().find(|e| e["event"] == "planned").unwrap();
    assert_eq!(
        planned["plan"]["waits_for_room"]["nodes"],
        json!(["old2", "old3"])
    );
    // one wave per node: each found room on the node drained before it
    let waves: Vec<(u64, Value, Value)> = events
        .iter()
        .filter(|e| e["event"] == "wave_started")
        .map(|e| {
            (
                e["wave"].as_u64().unwrap(),
                e["nodes"].clone(),
                e["waiting_for_room"].clone(),
            )
        })
        .collect();
    assert_eq!(
        waves,
        [
            (1, json!(["old1"]), json!(["old2", "old3"])),
            (2, json!(["old2"]), json!(["old3"])),
            (3, json!(["old3"]), Value::Null),
        ]
    );
    // every pod evicted once, nothing Pending, the replacements where the room was
    assert_eq!(c.count("create", "pods", "eviction"), 6);
    // while nodes waited, kdrain watched the nodes (a node made schedulable again is room)
    assert!(c.count("watch", "nodes", "") >= 1, "{:?}", c.sim.requests());
    let result = events.last().unwrap();
    for n in result["report"]["nodes"].as_array().unwrap() {
        assert_eq!(n["outcome"]["outcome"], "drained", "{n}");
        for p in n["pods"].as_array().unwrap() {
            assert_eq!(p["attempts"], 1, "{p}");
        }
    }
    assert_eq!(pending(&c).await, 0);
    assert_eq!(c.pods_on("spare").await.len(), 2);
    assert_eq!(c.pods_on("old1").await.len(), 2);
    assert_eq!(c.pods_on("old2").await.len(), 2);
    assert_eq!(c.pods_on("old3").await.len(), 0);
}

#[tokio::test]
async fn without_the_flag_the_drain_is_refused_and_without_room_the_wait_ends_at_the_timeout() {
    let c = cluster(&rotation()).await;
    let r = c
        .run(&["drain", "-l", "pool=old", "--parallel", "10"])
        .await;
    assert_eq!(r.code, 7, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(c.all_writes(), Vec::<String>::new(), "nothing changed");

    // nobody makes room: old1 drains, old2 and old3 wait until --timeout, then end with no
    // room and their pods untouched
    let before = [c.pods_on("old2").await, c.pods_on("old3").await];
    let mut args = DRAIN.to_vec();
    args.extend(["json", "--timeout", "2s"]);
    let d = c.run(&args).await;
    assert_eq!(d.code, 4, "{}\n{}", d.stdout, d.stderr);
    let events = lines(&d.stdout);
    let waiting: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "waiting_for_room")
        .collect();
    assert_eq!(waiting.len(), 1, "said once");
    assert_eq!(waiting[0]["nodes"], json!(["old2", "old3"]));
    let failed: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["event"] == "node_failed")
        .map(|e| (e["node"].as_str().unwrap(), e["error"].as_str().unwrap()))
        .collect();
    let error = "no room for the replacements of its pods: waited 2s for schedulable nodes with room (--wait-for-capacity); nothing was evicted";
    assert_eq!(failed, [("old2", error), ("old3", error)]);
    let result = events.last().unwrap();
    let nodes = result["report"]["nodes"].as_array().unwrap();
    assert_eq!(nodes[0]["outcome"]["outcome"], "drained");
    for n in &nodes[1..] {
        assert_eq!(n["outcome"]["outcome"], "pods_left", "{n}");
        for p in n["pods"].as_array().unwrap() {
            assert_eq!(p["attempts"], 0, "{p}");
            assert_eq!(p["outcome"]["kind"], "no_room", "{p}");
        }
    }
    assert_eq!(c.count("create", "pods", "eviction"), 2, "old1's only");
    assert_eq!(
        [c.pods_on("old2").await, c.pods_on("old3").await],
        before,
        "nothing evicted from the waiting nodes"
    );
    assert_eq!(pending(&c).await, 0);
}
