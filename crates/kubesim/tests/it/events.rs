//! Events written by the simulated controllers where a real cluster's write them, read with
//! the installed kubectl: the scheduler's `Scheduled`/`FailedScheduling`, the workload
//! controllers' `SuccessfulCreate`/`ScalingReplicaSet`, the kubelet's `Killing`, correlated
//! like client-go's recorder.

use serde_json::Value;

use crate::common::{eventually, sim};
use crate::kubectl::Kubectl;

const CLUSTER: &str = r#"
nodes: [{name: n1}, {name: n2}, {name: n3}]
workloads:
  - {kind: Deployment, name: web, replicas: 2, labels: {app: web}, nodes: [n1], terminationSeconds: 0.2}
"#;

async fn events(k: &Kubectl) -> Vec<Value> {
    let r = k.run(&["get", "events", "-o", "json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    v["items"].as_array().cloned().unwrap_or_default()
}

fn with_reason<'a>(evs: &'a [Value], reason: &str) -> Vec<&'a Value> {
    evs.iter().filter(|e| e["reason"] == reason).collect()
}

#[tokio::test]
async fn a_drain_leaves_the_kubelet_controller_and_scheduler_events() {
    let s = sim(CLUSTER).await;
    let k = Kubectl::new(&s);
    let r = k.run(&["get", "events"]).await;
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, ""),
        "a fresh scenario has no events"
    );
    assert_eq!(r.stderr, "No resources found in default namespace.\n");
    let victims: Vec<String> = {
        let r = k
            .run(&[
                "get",
                "pods",
                "--field-selector=spec.nodeName=n1",
                "-o",
                "name",
            ])
            .await;
        r.out_lines()
            .iter()
            .map(|l| l.trim_start_matches("pod/").to_string())
            .collect()
    };
    assert_eq!(victims.len(), 2);
    let r = k.run(&["drain", "n1"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let evs = eventually("the replacements scheduled", || async {
        let evs = events(&k).await;
        (with_reason(&evs, "Scheduled").len() == 2).then_some(evs)
    })
    .await;
    let killing = with_reason(&evs, "Killing");
    assert_eq!(killing.len(), 2, "{evs:#?}");
    for e in &killing {
        assert_eq!(e["type"], "Normal");
        assert_eq!(e["message"], "Stopping container app");
        assert_eq!(e["involvedObject"]["fieldPath"], "spec.containers{app}");
        assert_eq!(e["source"]["component"], "kubelet");
        assert_eq!(e["source"]["host"], "n1");
        assert_eq!(e["count"], 1);
        assert!(victims.contains(&e["involvedObject"]["name"].as_str().unwrap().to_string()));
    }
    let created = with_reason(&evs, "SuccessfulCreate");
    assert_eq!(created.len(), 2, "{evs:#?}");
    for e in &created {
        assert_eq!(e["involvedObject"]["kind"], "ReplicaSet");
        assert_eq!(e["source"]["component"], "replicaset-controller");
        let m = e["message"].as_str().unwrap();
        assert!(m.starts_with("Created pod: web-"), "{m}");
    }
    for e in with_reason(&evs, "Scheduled") {
        let pod = e["involvedObject"]["name"].as_str().unwrap();
        let m = e["message"].as_str().unwrap();
        assert!(
            m.starts_with(&format!("Successfully assigned default/{pod} to n")),
            "{m}"
        );
        assert!(!m.ends_with(" to n1"), "{m}");
        assert_eq!(e["reportingComponent"], "default-scheduler");
        assert_eq!(e["action"], "Binding");
        assert!(e["eventTime"].is_string());
    }
    // `kubectl describe` shows an object's events.
    let scheduled = with_reason(&evs, "Scheduled");
    let pod = scheduled[0]["involvedObject"]["name"].as_str().unwrap();
    let r = k.run(&["describe", "pod", pod]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tail = &r.stdout[r.stdout.find("\nEvents:\n").expect("an Events section")..];
    assert!(tail.contains("Normal  Scheduled"), "{tail}");
    assert!(tail.contains("default-scheduler"), "{tail}");
    let r = k.run(&["describe", "replicaset"]).await;
    assert!(r.stdout.contains("SuccessfulCreate"), "{}", r.stdout);
    // The table kubectl prints by default.
    let r = k.run(&["get", "events"]).await;
    let lines = r.out_lines();
    assert!(
        lines[0].starts_with("LAST SEEN") && lines[0].contains("REASON"),
        "{}",
        r.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Killing") && l.contains("Stopping container app"))
    );
    let r = k
        .run(&[
            "get",
            "events",
            "--field-selector=reason=Killing",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(r.out_lines().len(), 2, "{}", r.stdout);
}

#[tokio::test]
async fn failed_scheduling_says_why_in_the_schedulers_words() {
    let s = sim(CLUSTER).await;
    let k = Kubectl::new(&s);
    for n in ["n1", "n2", "n3"] {
        assert_eq!(k.run(&["cordon", n]).await.code, 0);
    }
    let r = k.run(&["scale", "deployment/web", "--replicas=3"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let evs = eventually("FailedScheduling", || async {
        let evs = events(&k).await;
        (!with_reason(&evs, "FailedScheduling").is_empty()).then_some(evs)
    })
    .await;
    let failed = with_reason(&evs, "FailedScheduling");
    assert_eq!(failed.len(), 1, "{evs:#?}");
    assert_eq!(failed[0]["type"], "Warning");
    assert_eq!(
        failed[0]["message"],
        "0/3 nodes are available: 3 node(s) were unschedulable. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
    let scaled = with_reason(&evs, "ScalingReplicaSet");
    assert_eq!(scaled.len(), 1, "{evs:#?}");
    let m = scaled[0]["message"].as_str().unwrap();
    assert!(
        m.starts_with("Scaled up replica set web-") && m.ends_with(" from 2 to 3"),
        "{m}"
    );
    // Uncordoning one node lets the pod be scheduled there.
    assert_eq!(k.run(&["uncordon", "n2"]).await.code, 0);
    eventually("Scheduled to n2", || async {
        let evs = events(&k).await;
        with_reason(&evs, "Scheduled")
            .iter()
            .any(|e| e["message"].as_str().unwrap().ends_with(" to n2"))
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn from_the_tenth_distinct_message_events_are_combined() {
    let s = sim("nodes: [{name: n1, maxPods: 200}]\nworkloads: [{kind: ReplicaSet, name: cache, replicas: 1, labels: {app: cache}}]\n").await;
    let k = Kubectl::new(&s);
    let r = k.run(&["scale", "rs/cache", "--replicas=13"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let evs = eventually("12 creations recorded", || async {
        let evs = events(&k).await;
        let n: i64 = with_reason(&evs, "SuccessfulCreate")
            .iter()
            .map(|e| e["count"].as_i64().unwrap_or(0))
            .sum();
        (n == 12).then_some(evs)
    })
    .await;
    let created = with_reason(&evs, "SuccessfulCreate");
    let (combined, single): (Vec<&&Value>, Vec<&&Value>) = created.iter().partition(|e| {
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("(combined from similar events): ")
    });
    assert_eq!(single.len(), 9, "{created:#?}");
    assert!(single.iter().all(|e| e["count"] == 1));
    assert_eq!(combined.len(), 1, "{created:#?}");
    assert_eq!(combined[0]["count"], 3);
    assert!(
        combined[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("(combined from similar events): Created pod: cache-")
    );
}
