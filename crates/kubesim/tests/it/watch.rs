//! WATCH: resume from a resourceVersion, the 410 ERROR event, bookmarks, selector transitions,
//! timeouts, and kube-rs's watcher/reflector across forced cuts and a 410.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kubesim::Fault;
use serde_json::{Value, json};

use crate::common::{eventually, get_json, get_raw, raw, sim};

const CORDONED: &str = "nodes: [{name: n1, unschedulable: true}]\n";

fn lines(body: &str) -> Vec<Value> {
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn current_rv(s: &kubesim::Sim) -> u64 {
    let l: Value = get_json(s, "/api/v1/namespaces/default/pods").await;
    l["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn pod(name: &str, app: &str) -> Pod {
    serde_json::from_value(json!({"metadata":{"name":name,"labels":{"app":app}},"spec":{"containers":[{"name":"c","image":"x"}]}})).unwrap()
}

#[tokio::test]
async fn watch_resumes_from_a_resource_version_in_order() {
    let s = sim(CORDONED).await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let rv = current_rv(&s).await;
    pods.create(&PostParams::default(), &pod("a", "x"))
        .await
        .unwrap();
    pods.delete("a", &DeleteParams::default()).await.unwrap();
    let r = get_raw(
        &s,
        &format!(
            "/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}&timeoutSeconds=1"
        ),
    )
    .await;
    assert_eq!(r.code, 200);
    let evs = lines(&r.text());
    let types: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"ADDED"));
    assert_eq!(types.last(), Some(&"DELETED"));
    let rvs: Vec<u64> = evs
        .iter()
        .map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(rvs.windows(2).all(|w| w[0] < w[1]), "{rvs:?}");
    let last = evs.last().unwrap();
    assert_eq!(last["object"]["kind"], "Pod");
    assert_eq!(last["object"]["metadata"]["deletionGracePeriodSeconds"], 0);
    assert_eq!(rvs.last().copied().unwrap(), current_rv(&s).await);
}

#[tokio::test]
async fn too_old_resource_version_is_an_error_event_in_a_200_stream() {
    let s = sim(&format!("settings: {{watchHistory: 3}}\n{CORDONED}")).await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let rv = current_rv(&s).await;
    for i in 0..5 {
        pods.create(&PostParams::default(), &pod(&format!("p{i}"), "x"))
            .await
            .unwrap();
    }
    let r = get_raw(
        &s,
        &format!("/api/v1/namespaces/default/pods?watch=1&resourceVersion={rv}"),
    )
    .await;
    assert_eq!(r.code, 200);
    let evs = lines(&r.text());
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["type"], "ERROR");
    let st = &evs[0]["object"];
    assert_eq!(
        (
            st["kind"].as_str(),
            st["code"].as_i64(),
            st["reason"].as_str()
        ),
        (Some("Status"), Some(410), Some("Expired"))
    );
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("too old resource version: {rv} ("))
    );
}

#[tokio::test]
async fn bookmarks_carry_kind_and_api_version() {
    let s = sim(&format!("settings: {{bookmarkSeconds: 0.2}}\n{CORDONED}")).await;
    let rv = current_rv(&s).await;
    let r = get_raw(
        &s,
        &format!(
            "/api/v1/pods?watch=true&allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=1"
        ),
    )
    .await;
    let evs = lines(&r.text());
    assert!(!evs.is_empty());
    for e in &evs {
        assert_eq!(e["type"], "BOOKMARK");
        assert_eq!(e["object"]["kind"], "Pod");
        assert_eq!(e["object"]["apiVersion"], "v1");
        assert_eq!(e["object"]["metadata"]["resourceVersion"], rv.to_string());
    }
}

#[tokio::test]
async fn initial_events_and_streaming_list_bookmark() {
    let s = sim(&format!(
        "{CORDONED}workloads: [{{kind: Pod, name: a}}, {{kind: Pod, name: b}}]\n"
    ))
    .await;
    let r = get_raw(
        &s,
        "/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=1",
    )
    .await;
    let evs = lines(&r.text());
    let names: Vec<&str> = evs
        .iter()
        .map(|e| e["object"]["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["a", "b"]);
    assert!(evs.iter().all(|e| e["type"] == "ADDED"));
    let r = get_raw(&s, "/api/v1/namespaces/default/pods?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1").await;
    let evs = lines(&r.text());
    assert_eq!(evs[2]["type"], "BOOKMARK");
    assert_eq!(
        evs[2]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    let r = get_raw(
        &s,
        "/api/v1/namespaces/default/pods?watch=true&sendInitialEvents=true",
    )
    .await;
    assert_eq!(r.code, 422);
}

#[tokio::test]
async fn selector_transitions_become_added_and_deleted() {
    let s = sim(&format!(
        "{CORDONED}workloads: [{{kind: Pod, name: a, labels: {{app: y}}}}]\n"
    ))
    .await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let rv = current_rv(&s).await;
    pods.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata":{"labels":{"app":"x"}}})),
    )
    .await
    .unwrap();
    pods.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata":{"labels":{"app":"z"}}})),
    )
    .await
    .unwrap();
    let r = get_raw(&s, &format!("/api/v1/namespaces/default/pods?watch=true&labelSelector=app%3Dx&resourceVersion={rv}&timeoutSeconds=1")).await;
    let evs = lines(&r.text());
    let types: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["ADDED", "DELETED"]);
    assert_eq!(
        evs[1]["object"]["metadata"]["labels"]["app"], "x",
        "DELETED carries the previous content"
    );
}

#[tokio::test]
async fn kube_watcher_survives_cuts_and_a_410() {
    let s = sim(&format!("settings: {{watchHistory: 5}}\n{CORDONED}")).await;
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let (reader, writer) = reflector::store::<Pod>();
    let stream = reflector(
        writer,
        watcher(pods.clone(), watcher::Config::default()).default_backoff(),
    )
    .applied_objects();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {}
    });
    s.set_faults(vec![Fault {
        verb: Some("watch".into()),
        resource: Some("pods".into()),
        watch_cut_seconds: Some(0.3),
        ..Fault::default()
    }]);
    for i in 0..3 {
        pods.create(&PostParams::default(), &pod(&format!("c{i}"), "x"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    eventually("reflector to hold 3 pods across cuts", || async {
        (reader.state().len() == 3).then_some(())
    })
    .await;
    // Make watches fail while more than the history window of changes happens, then let them through.
    s.set_faults(vec![Fault {
        verb: Some("watch".into()),
        resource: Some("pods".into()),
        status: Some(500),
        ..Fault::default()
    }]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lists_before: u64 = s
        .requests()
        .iter()
        .filter(|r| r.verb == "list" && r.resource == "pods")
        .map(|r| r.count)
        .sum();
    for i in 0..10 {
        pods.create(&PostParams::default(), &pod(&format!("d{i}"), "x"))
            .await
            .unwrap();
    }
    s.set_faults(vec![]);
    eventually(
        "reflector to relist after the 410 and hold 13 pods",
        || async { (reader.state().len() == 13).then_some(()) },
    )
    .await;
    let lists_after: u64 = s
        .requests()
        .iter()
        .filter(|r| r.verb == "list" && r.resource == "pods")
        .map(|r| r.count)
        .sum();
    assert!(lists_after > lists_before, "the 410 forced a relist");
    let watches: u64 = s
        .requests()
        .iter()
        .filter(|r| r.verb == "watch" && r.resource == "pods" && r.code == 200)
        .map(|r| r.count)
        .sum();
    assert!(watches >= 3, "cuts forced re-watches: {watches}");
    task.abort();
}

#[tokio::test]
async fn table_watches_for_kubectl_get_w() {
    let s = sim(&format!("{CORDONED}workloads: [{{kind: Pod, name: a}}]\n")).await;
    let r = raw(
        &s,
        "GET",
        "/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=1",
        &[(
            "Accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )],
        b"",
    )
    .await;
    let evs = lines(&r.text());
    assert_eq!(evs[0]["type"], "ADDED");
    let t = &evs[0]["object"];
    assert_eq!(
        (t["kind"].as_str(), t["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    assert_eq!(t["rows"][0]["cells"][0], "a");
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
}

/// A watch's timeoutSeconds and a fault's watchCutSeconds may be any float: huge or infinite
/// timeouts are clamped (the stream stays open), negative cuts end the stream at once, and no
/// request panics the handler (a panic drops the connection instead of answering 200).
#[tokio::test]
async fn hostile_watch_timeouts_and_cuts_never_panic() {
    let s = sim(CORDONED).await;
    for t in ["inf", "1e300", "18446744073709551616"] {
        let path = format!("/api/v1/namespaces/default/pods?watch=true&timeoutSeconds={t}");
        let fut = raw(&s, "GET", &path, &[], b"");
        // The stream stays open (clamped to a year): the read times out, the server lives.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), fut)
                .await
                .is_err(),
            "timeoutSeconds={t}"
        );
    }
    for cut in [-5.0, f64::NAN, 1e300] {
        s.set_faults(vec![Fault {
            verb: Some("watch".into()),
            resource: Some("pods".into()),
            watch_cut_seconds: Some(cut),
            ..Fault::default()
        }]);
        let r = get_raw(
            &s,
            "/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=0.2",
        )
        .await;
        assert_eq!(r.code, 200, "watchCutSeconds={cut}");
    }
    s.set_faults(vec![]);
    let r = get_raw(&s, "/api/v1/namespaces/default/pods").await;
    assert_eq!(r.code, 200);
}

#[tokio::test]
async fn a_lagging_watch_delivers_every_change_in_order_after_the_writer_has_its_answer() {
    // eventLatencyMs: the writer's answer and a plain GET already show the change while the
    // lagging watch has not delivered it; it then comes, in order, with the same versions.
    let s = sim(CORDONED).await;
    s.set_faults(vec![Fault {
        verb: Some("watch".into()),
        resource: Some("pods".into()),
        event_latency_ms: Some(5_000),
        ..Fault::default()
    }]);
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let rv = current_rv(&s).await;
    let mut stream = pods
        .watch(
            &kube::api::WatchParams::default().timeout(30),
            &rv.to_string(),
        )
        .await
        .unwrap()
        .boxed();
    let created = pods
        .create(&PostParams::default(), &pod("a", "x"))
        .await
        .unwrap();
    let deleted = pods.delete("a", &DeleteParams::default()).await.unwrap();
    // The answers are in; the lagging watch has not delivered anything yet.
    assert!(
        futures::FutureExt::now_or_never(stream.next()).is_none(),
        "the watch delivered a change before its delay"
    );
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
            Ok(Some(Ok(kube::api::WatchEvent::Added(p)))) => seen.push(("ADDED", p)),
            Ok(Some(Ok(kube::api::WatchEvent::Deleted(p)))) => seen.push(("DELETED", p)),
            Ok(Some(Ok(_))) => {}
            other => panic!("watch ended early: {other:?}"),
        }
    }
    assert_eq!(seen[0].0, "ADDED");
    assert_eq!(seen[1].0, "DELETED");
    assert_eq!(
        seen[0].1.metadata.resource_version,
        created.metadata.resource_version
    );
    let deleted_rv = deleted.left().and_then(|p| p.metadata.resource_version);
    assert!(deleted_rv.is_some());
    let rvs: Vec<u64> = seen
        .iter()
        .map(|(_, p)| {
            p.metadata
                .resource_version
                .as_deref()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(rvs[0] < rvs[1], "{rvs:?}");
}
