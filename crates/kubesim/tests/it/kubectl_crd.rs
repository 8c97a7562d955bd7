//! The installed kubectl with a CustomResourceDefinition and its custom resources: apply, get
//! (printer columns, short name, category, `-o wide`, `-w`), describe, patch (merge, status),
//! delete, and `get events` with events written through events.k8s.io/v1.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{WAIT, sim};
use crate::crd::CRD;
use crate::kubectl::{Kubectl, Run};

const CR: &str = r#"apiVersion: test.kubesim.io/v1alpha1
kind: Maintenance
metadata:
  name: m1
spec:
  hosts: [n1]
  reason: kernel
"#;

/// The words of each output line (kubectl pads columns with spaces).
fn rows(r: &Run) -> Vec<Vec<String>> {
    r.stdout
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

fn ok(r: &Run) -> &Run {
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    r
}

#[tokio::test]
async fn kubectl_applies_a_crd_and_manages_its_resources() {
    let s = sim("nodes: [{name: n1}]").await;
    let k = Kubectl::new(&s);
    let crd = k.file("crd.yaml", CRD);
    let r = k.run(&["apply", "-f", &crd]).await;
    assert_eq!(
        ok(&r).stdout.trim(),
        "customresourcedefinition.apiextensions.k8s.io/maintenances.test.kubesim.io created"
    );
    let r = k.run(&["get", "crd"]).await;
    let got = rows(ok(&r));
    assert_eq!(got[0], ["NAME", "CREATED", "AT"]);
    assert_eq!(got[1][0], "maintenances.test.kubesim.io");
    assert!(got[1][1].ends_with('Z'), "{:?}", got[1]);
    let r = k
        .run(&[
            "wait",
            "--for=condition=Established",
            "crd/maintenances.test.kubesim.io",
        ])
        .await;
    assert_eq!(
        ok(&r).stdout.trim(),
        "customresourcedefinition.apiextensions.k8s.io/maintenances.test.kubesim.io condition met"
    );

    let cr = k.file("cr.yaml", CR);
    let r = k.run(&["apply", "-f", &cr]).await;
    assert_eq!(
        ok(&r).stdout.trim(),
        "maintenance.test.kubesim.io/m1 created"
    );
    let r = k.run(&["get", "maintenances"]).await;
    let got = rows(ok(&r));
    assert_eq!(got[0], ["NAME", "MODE", "PHASE", "DONE", "AGE"]);
    assert_eq!(
        &got[1][..2],
        ["m1", "Run"],
        "the defaulted mode; phase and done are empty"
    );
    assert_eq!(got[1].len(), 3, "name, mode, age: {:?}", got[1]);
    for alias in ["mnt", "kubesim", "maintenance.test.kubesim.io"] {
        let r = k.run(&["get", alias, "-o", "name"]).await;
        assert_eq!(
            ok(&r).stdout.trim(),
            "maintenance.test.kubesim.io/m1",
            "{alias}"
        );
    }

    let r = k
        .run(&[
            "patch",
            "maintenance",
            "m1",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"mode":"Plan"}}"#,
        ])
        .await;
    assert_eq!(
        ok(&r).stdout.trim(),
        "maintenance.test.kubesim.io/m1 patched"
    );
    let status = r#"{"status":{"phase":"Draining","done":2,"blockedBy":"pdb/web"}}"#;
    let r = k
        .run(&[
            "patch",
            "maintenance",
            "m1",
            "--subresource",
            "status",
            "--type",
            "merge",
            "-p",
            status,
        ])
        .await;
    ok(&r);
    let r = k.run(&["get", "mnt", "m1", "-o", "wide"]).await;
    let got = rows(ok(&r));
    assert_eq!(
        got[0],
        ["NAME", "MODE", "PHASE", "DONE", "BLOCKED", "BY", "AGE"]
    );
    assert_eq!(&got[1][..5], ["m1", "Plan", "Draining", "2", "pdb/web"]);
    let r = k
        .run(&[
            "patch",
            "maintenance",
            "m1",
            "--type",
            "strategic",
            "-p",
            r#"{"spec":{"mode":"Run"}}"#,
        ])
        .await;
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("the body of the request was in an unknown format"),
        "{}",
        r.stderr
    );

    // A second apply of a changed manifest patches it (kubectl's three-way JSON merge patch).
    let changed = k.file("cr2.yaml", &CR.replace("kernel", "firmware"));
    let r = k.run(&["apply", "-f", &changed]).await;
    assert_eq!(
        ok(&r).stdout.trim(),
        "maintenance.test.kubesim.io/m1 configured"
    );
    let r = k
        .run(&[
            "get",
            "mnt",
            "m1",
            "-o",
            "jsonpath={.spec.reason} {.metadata.generation}",
        ])
        .await;
    assert_eq!(ok(&r).stdout, "firmware 3");

    let r = k.run(&["describe", "maintenance", "m1"]).await;
    let out = &ok(&r).stdout;
    for want in [
        "Name:",
        "m1",
        "API Version:  test.kubesim.io/v1alpha1",
        "Kind:         Maintenance",
        "Spec:",
        "Hosts:",
        "Reason:  firmware",
        "Status:",
        "Phase:",
        "Draining",
    ] {
        assert!(out.contains(want), "{want:?} in:\n{out}");
    }
    let bad = k.file("bad.yaml", &CR.replace("  hosts: [n1]\n", ""));
    let r = k.run(&["apply", "-f", &bad]).await;
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains(
            "spec: Invalid value: \"object\": exactly one of hosts or hostSelector must be set"
        ),
        "{}",
        r.stderr
    );

    let r = k.run(&["delete", "maintenance", "m1"]).await;
    assert_eq!(
        ok(&r).stdout.trim(),
        "maintenance.test.kubesim.io \"m1\" deleted"
    );
    let r = k.run(&["get", "maintenances"]).await;
    assert_eq!(ok(&r).stderr.trim(), "No resources found");
    let r = k.run(&["delete", "-f", &crd]).await;
    assert_eq!(
        ok(&r).stdout.trim(),
        "customresourcedefinition.apiextensions.k8s.io \"maintenances.test.kubesim.io\" deleted"
    );
}

#[tokio::test]
async fn kubectl_get_watch_prints_each_change_of_a_custom_resource() {
    let s = sim("nodes: [{name: n1}]").await;
    s.install_crd(CRD).unwrap();
    let k = Kubectl::new(&s);
    let cr = k.file("cr.yaml", CR);
    ok(&k.run(&["apply", "-f", &cr]).await);
    let mut child = k
        .command(&["get", "maintenances", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || -> Vec<String> {
        let l = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        l.split_whitespace().map(String::from).collect()
    };
    assert_eq!(next().await, ["NAME", "MODE", "PHASE", "DONE", "AGE"]);
    assert_eq!(&next().await[..2], ["m1", "Run"]);
    let status = r#"{"status":{"phase":"Draining","done":1}}"#;
    ok(&k
        .run(&[
            "patch",
            "mnt",
            "m1",
            "--subresource",
            "status",
            "--type",
            "merge",
            "-p",
            status,
        ])
        .await);
    assert_eq!(&next().await[..4], ["m1", "Run", "Draining", "1"]);
    ok(&k
        .run(&[
            "patch",
            "mnt",
            "m1",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"mode":"Done"}}"#,
        ])
        .await);
    assert_eq!(&next().await[..4], ["m1", "Done", "Draining", "1"]);
    child.kill().await.unwrap();
}

#[tokio::test]
async fn kubectl_get_events_shows_events_written_through_events_k8s_io() {
    use k8s_openapi::api::core::v1::Node;
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    use kube::{Api, Resource};
    let s = sim("nodes: [{name: n1}]").await;
    let node = Api::<Node>::all(s.client()).get("n1").await.unwrap();
    let rec = Recorder::new(
        s.client(),
        Reporter {
            controller: "kdrain-controller".into(),
            instance: None,
        },
    );
    let ev = Event {
        type_: EventType::Warning,
        reason: "BlockedByBudget".into(),
        note: Some("The disruption budget web needs 3 healthy pods and has 3 currently".into()),
        action: "Evict".into(),
        secondary: None,
    };
    for _ in 0..3 {
        rec.publish(&ev, &node.object_ref(&())).await.unwrap();
    }
    let k = Kubectl::new(&s);
    let r = k.run(&["get", "events", "-o", "wide"]).await;
    let out = &ok(&r).stdout;
    let line = out
        .lines()
        .find(|l| l.contains("BlockedByBudget"))
        .unwrap_or_else(|| panic!("no event line in:\n{out}"));
    for want in [
        "Warning",
        "node/n1",
        "kdrain-controller",
        "The disruption budget web needs 3 healthy pods and has 3 currently",
        " 3 ",
    ] {
        assert!(line.contains(want), "{want:?} in {line:?}");
    }
    let r = k.run(&["get", "events.events.k8s.io", "-o", "name"]).await;
    assert!(
        ok(&r).stdout.trim().starts_with("event.events.k8s.io/n1."),
        "{}",
        r.stdout
    );
}
