//! Paged LISTs (R-4): later pages read the first page's snapshot and report its
//! resourceVersion; expired tokens get 410 with a fresh token; bad tokens get 400; kube's watcher
//! and `kubectl get --chunk-size` page through everything.

use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use crate::common::{
    WAIT, default_pods, eventually, get_json, get_raw, grace, kubectl_in, raw, sim,
};

/// Eight pods in `default` (a-0..a-3, b-0..b-3) and two in `other`.
const PODS: &str = r#"
nodes: [{name: n1, maxPods: 500}]
workloads:
  - {kind: Pod, name: a, replicas: 4, labels: {app: a}, nodes: [n1]}
  - {kind: Pod, name: b, replicas: 4, labels: {app: b}, nodes: [n1]}
  - {kind: Pod, name: c, namespace: other, replicas: 2, labels: {app: c}, nodes: [n1]}
"#;

const CONTINUE_TOO_OLD: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

fn new_pod(name: &str) -> Pod {
    serde_json::from_value(json!({"metadata":{"name":name,"labels":{"app":"new"}},"spec":{"containers":[{"name":"c","image":"x"}]}})).unwrap()
}

fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter().map(|p| p.name_any()).collect()
}

/// The JSON inside a continue token.
fn decode(token: &str) -> Value {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .expect("token is unpadded base64url");
    serde_json::from_slice(&raw).expect("token holds JSON")
}

fn paged(limit: u32, token: &str) -> ListParams {
    ListParams::default().limit(limit).continue_token(token)
}

/// The 410 `code` of a kube client error.
fn api_code(e: &kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected a Status error, got {other:?}"),
    }
}

#[tokio::test]
async fn later_pages_show_the_first_pages_snapshot_at_its_resource_version() {
    let s = sim(PODS).await;
    let pods = default_pods(&s);
    let first = pods.list(&ListParams::default().limit(3)).await.unwrap();
    assert_eq!(names(&first.items), ["a-0", "a-1", "a-2"]);
    assert_eq!(first.metadata.remaining_item_count, Some(5));
    let rv = first.metadata.resource_version.clone().unwrap();
    let token = first.metadata.continue_.clone().unwrap();
    let inside = decode(&token);
    assert_eq!(inside["v"], "meta.k8s.io/v1");
    assert_eq!(inside["rv"].to_string(), rv);
    assert_eq!(
        inside["start"], "a-2\u{0}",
        "a namespaced list's key is the bare name"
    );
    assert!(inside["id"].is_u64());

    // Change the rest of the list: a new pod inside its range, a deletion, a label change,
    // and a deletion on the page already served.
    pods.create(&PostParams::default(), &new_pod("a-9"))
        .await
        .unwrap();
    pods.delete("b-1", &grace(0)).await.unwrap();
    pods.patch(
        "b-2",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata":{"labels":{"changed":"yes"}}})),
    )
    .await
    .unwrap();
    pods.delete("a-0", &grace(0)).await.unwrap();

    let second = pods.list(&paged(3, &token)).await.unwrap();
    assert_eq!(names(&second.items), ["a-3", "b-0", "b-1"]);
    assert_eq!(
        second.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );
    assert_eq!(second.metadata.remaining_item_count, Some(2));
    let b1 = &second.items[2];
    assert!(b1.metadata.deletion_timestamp.is_none());
    let token2 = second.metadata.continue_.clone().unwrap();
    assert_eq!(
        decode(&token2)["id"],
        inside["id"],
        "one snapshot for the whole list"
    );
    let third = pods.list(&paged(3, &token2)).await.unwrap();
    assert_eq!(names(&third.items), ["b-2", "b-3"]);
    assert_eq!(
        third.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );
    assert!(third.metadata.continue_.is_none());
    assert_eq!(
        third.items[0].labels().get("changed"),
        None,
        "b-2 as it was at the list's resourceVersion"
    );
    let at: u64 = rv.parse().unwrap();
    for p in second.items.iter().chain(&third.items) {
        let item_rv: u64 = p.resource_version().unwrap().parse().unwrap();
        assert!(item_rv <= at, "{} is newer than the list", p.name_any());
    }

    // A new list sees the changes; an exact read at the old RV still sees the snapshot.
    let now = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        names(&now.items),
        ["a-1", "a-2", "a-3", "a-9", "b-0", "b-2", "b-3"]
    );
    assert_ne!(now.metadata.resource_version.as_deref(), Some(rv.as_str()));
    let exact: Value = get_json(
        &s,
        &format!("/api/v1/namespaces/default/pods?resourceVersion={rv}&resourceVersionMatch=Exact"),
    )
    .await;
    assert_eq!(exact["metadata"]["resourceVersion"], rv.as_str());
    let exact_names: Vec<&str> = exact["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        exact_names,
        ["a-0", "a-1", "a-2", "a-3", "b-0", "b-1", "b-2", "b-3"]
    );
}

#[tokio::test]
async fn all_namespace_pages_keep_the_snapshot_and_the_count() {
    let s = sim(PODS).await;
    let first: Value = get_json(&s, "/api/v1/pods?limit=4").await;
    let rv = first["metadata"]["resourceVersion"].clone();
    assert_eq!(first["metadata"]["remainingItemCount"], 6);
    let mut cont = first["metadata"]["continue"].as_str().unwrap().to_string();
    assert_eq!(decode(&cont)["start"], "default/a-3\u{0}");
    let pods = default_pods(&s);
    pods.delete("b-0", &grace(0)).await.unwrap();
    let others: Api<Pod> = Api::namespaced(s.client(), "other");
    others
        .create(&PostParams::default(), &new_pod("c-5"))
        .await
        .unwrap();
    let mut all = Vec::new();
    loop {
        let page: Value = get_json(&s, &format!("/api/v1/pods?limit=4&continue={cont}")).await;
        assert_eq!(page["metadata"]["resourceVersion"], rv);
        for p in page["items"].as_array().unwrap() {
            all.push(p["metadata"]["name"].as_str().unwrap().to_string());
        }
        match page["metadata"]["continue"].as_str() {
            Some(c) => {
                assert_eq!(page["metadata"]["remainingItemCount"], 2);
                cont = c.to_string();
            }
            None => break,
        }
    }
    assert_eq!(all, ["b-0", "b-1", "b-2", "b-3", "c-0", "c-1"]);
}

#[tokio::test]
async fn an_expired_token_gets_410_and_a_token_that_continues_live() {
    let s = sim(PODS).await;
    let pods = default_pods(&s);
    let first = pods.list(&ListParams::default().limit(3)).await.unwrap();
    let rv: u64 = first.metadata.resource_version.unwrap().parse().unwrap();
    let token = first.metadata.continue_.unwrap();
    assert_eq!(s.expire_list_snapshots(), 1);
    pods.create(&PostParams::default(), &new_pod("a-9"))
        .await
        .unwrap();

    let err = pods.list(&paged(3, &token)).await.unwrap_err();
    assert_eq!(api_code(&err), 410);
    let r = get_raw(
        &s,
        &format!("/api/v1/namespaces/default/pods?limit=3&continue={token}"),
    )
    .await;
    assert_eq!(r.code, 410);
    let status = r.json();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Expired");
    assert_eq!(status["code"], 410);
    assert_eq!(status["message"], CONTINUE_TOO_OLD);
    let fresh = status["metadata"]["continue"].as_str().unwrap().to_string();
    assert_eq!(
        decode(&fresh),
        json!({"v": "meta.k8s.io/v1", "rv": -1, "start": "a-2\u{0}"})
    );

    // The fresh token goes on after a-2 in the live store (so a-9 shows up) at a newer RV,
    // and opens a snapshot of its own for the pages after it.
    let live = pods.list(&paged(3, &fresh)).await.unwrap();
    assert_eq!(names(&live.items), ["a-3", "a-9", "b-0"]);
    let live_rv: u64 = live.metadata.resource_version.unwrap().parse().unwrap();
    assert!(live_rv > rv);
    let next = live.metadata.continue_.unwrap();
    assert_eq!(decode(&next)["rv"], live_rv);
    pods.create(&PostParams::default(), &new_pod("b-10"))
        .await
        .unwrap();
    let rest = pods.list(&paged(3, &next)).await.unwrap();
    assert_eq!(names(&rest.items), ["b-1", "b-2", "b-3"]);
    assert_eq!(rest.metadata.resource_version, Some(live_rv.to_string()));

    // The HTTP hook expires snapshots too.
    let again = pods.list(&ListParams::default().limit(3)).await.unwrap();
    let r = raw(&s, "DELETE", "/kubesim/list-snapshots", &[], b"").await;
    assert_eq!(r.json()["expired"], 2);
    let err = pods
        .list(&paged(3, again.metadata.continue_.as_deref().unwrap()))
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), 410);
}

#[tokio::test]
async fn snapshots_expire_when_idle_past_the_setting_or_compacted_out_of_the_history() {
    let s = sim(&format!("settings: {{listSnapshotSeconds: 0.05}}\n{PODS}")).await;
    let pods = default_pods(&s);
    let first = pods.list(&ListParams::default().limit(3)).await.unwrap();
    let token = first.metadata.continue_.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = pods.list(&paged(3, &token)).await.unwrap_err();
    assert_eq!(api_code(&err), 410);

    let s = sim(&format!("settings: {{watchHistory: 3}}\n{PODS}")).await;
    let pods = default_pods(&s);
    let first = pods.list(&ListParams::default().limit(3)).await.unwrap();
    let rv = first.metadata.resource_version.unwrap();
    let token = first.metadata.continue_.unwrap();
    let others: Api<Pod> = Api::namespaced(s.client(), "other");
    for i in 0..4 {
        others
            .create(&PostParams::default(), &new_pod(&format!("x-{i}")))
            .await
            .unwrap();
    }
    let r = get_raw(
        &s,
        &format!("/api/v1/namespaces/default/pods?limit=3&continue={token}"),
    )
    .await;
    assert_eq!(r.code, 410, "{}", r.text());
    assert_eq!(r.json()["message"], CONTINUE_TOO_OLD);
    let r = get_raw(
        &s,
        &format!("/api/v1/namespaces/default/pods?resourceVersion={rv}&resourceVersionMatch=Exact"),
    )
    .await;
    assert_eq!(r.code, 410);
    assert_eq!(
        r.json()["message"],
        "The resourceVersion for the provided list is too old."
    );
}

#[tokio::test]
async fn bad_tokens_and_resource_versions_with_continue_get_400() {
    let s = sim(PODS).await;
    let r = get_raw(&s, "/api/v1/pods?limit=2&continue=a!b").await;
    assert_eq!(r.code, 400);
    assert_eq!(r.json()["reason"], "BadRequest");
    assert_eq!(
        r.json()["message"],
        "invalid continue token: continue key is not valid: illegal base64 data at input byte 1"
    );
    let enc = |j: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(j);
    let zero = enc(r#"{"v":"meta.k8s.io/v1","rv":0,"start":"default/a-0\u0000"}"#);
    let r = get_raw(&s, &format!("/api/v1/pods?limit=2&continue={zero}")).await;
    assert_eq!(r.code, 400);
    assert_eq!(
        r.json()["message"],
        "invalid continue token: continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
    );
    let future = enc(r#"{"v":"meta.k8s.io/v1","rv":999999,"start":"default/a-0\u0000"}"#);
    let r = get_raw(&s, &format!("/api/v1/pods?limit=2&continue={future}")).await;
    assert_eq!(r.code, 400);

    let first: Value = get_json(&s, "/api/v1/pods?limit=2").await;
    let cont = first["metadata"]["continue"].as_str().unwrap();
    let r = get_raw(
        &s,
        &format!("/api/v1/pods?limit=2&continue={cont}&resourceVersion=3"),
    )
    .await;
    assert_eq!(r.code, 400);
    assert_eq!(
        r.json()["message"],
        "specifying resource version is not allowed when using continue"
    );
    let r = get_raw(
        &s,
        &format!("/api/v1/pods?limit=2&continue={cont}&resourceVersion=3&resourceVersionMatch=NotOlderThan"),
    )
    .await;
    assert_eq!(r.code, 422);
    // rv=0 alone ignores the limit, but with a token the list goes on page by page.
    let page: Value = get_json(
        &s,
        &format!("/api/v1/pods?limit=2&continue={cont}&resourceVersion=0"),
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        page["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    // A token written by hand without a snapshot id is served while the history covers it.
    let rv = first["metadata"]["resourceVersion"].as_str().unwrap();
    let by_hand = enc(&format!(
        r#"{{"v":"meta.k8s.io/v1","rv":{rv},"start":"default/b-3\u0000"}}"#
    ));
    let page: Value = get_json(&s, &format!("/api/v1/pods?limit=5&continue={by_hand}")).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "c-0 and c-1");
    assert!(page["metadata"]["continue"].is_null());
}

#[tokio::test]
async fn only_lists_with_more_pages_open_a_snapshot() {
    let s = sim(PODS).await;
    let pods = default_pods(&s);
    pods.list(&ListParams::default()).await.unwrap();
    pods.list(&ListParams::default().limit(8)).await.unwrap();
    pods.list(
        &ListParams::default()
            .limit(3)
            .labels("app=b")
            .fields("metadata.name!=b-0"),
    )
    .await
    .unwrap();
    get_json(&s, "/api/v1/pods?limit=2&resourceVersion=0").await;
    get_json(&s, "/api/v1/pods?limit=2&labelSelector=app%3Dc").await;
    assert_eq!(s.open_list_snapshots(), 0);
    let mut page = pods.list(&ListParams::default().limit(3)).await.unwrap();
    while let Some(c) = page.metadata.continue_.clone() {
        page = pods.list(&paged(3, &c)).await.unwrap();
    }
    assert_eq!(s.open_list_snapshots(), 1);
    let selected = pods
        .list(&ListParams::default().limit(2).labels("app=b"))
        .await
        .unwrap();
    assert_eq!(selected.items.len(), 2);
    assert_eq!(selected.metadata.remaining_item_count, None);
    assert_eq!(s.open_list_snapshots(), 2);
    let r = get_json(&s, "/kubesim/list-snapshots").await;
    assert_eq!(r["open"], 2);
}

#[tokio::test]
async fn kube_watcher_pages_through_a_changing_list_and_converges() {
    let s = sim(r#"
nodes: [{name: n1, maxPods: 500}]
workloads:
  - {kind: Pod, name: p, replicas: 60, labels: {app: p}, nodes: [n1]}
"#)
    .await;
    let pods = default_pods(&s);
    let (reader, writer) = reflector::store::<Pod>();
    let stream = reflector(
        writer,
        watcher(pods.clone(), watcher::Config::default().page_size(7)).default_backoff(),
    )
    .applied_objects();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {}
    });
    let churn = {
        let pods = pods.clone();
        async move {
            for i in 0..15 {
                pods.create(&PostParams::default(), &new_pod(&format!("p-new-{i}")))
                    .await
                    .unwrap();
                pods.delete(&format!("p-{}", i * 3), &grace(0))
                    .await
                    .unwrap();
            }
        }
    };
    tokio::time::timeout(WAIT, churn).await.unwrap();
    let mut want = names(&pods.list(&ListParams::default()).await.unwrap().items);
    want.sort();
    assert_eq!(want.len(), 60);
    eventually("the reflector to hold exactly the live pods", || {
        let reader = reader.clone();
        let want = want.clone();
        async move {
            let mut got: Vec<String> = reader.state().iter().map(|p| p.name_any()).collect();
            got.sort();
            (got == want).then_some(())
        }
    })
    .await;
    let pages: u64 = s
        .requests()
        .iter()
        .filter(|r| r.verb == "list" && r.resource == "pods" && r.code == 200)
        .map(|r| r.count)
        .sum();
    assert!(
        pages >= 9,
        "60 pods at 7 a page take at least 9 pages, saw {pages}"
    );
    task.abort();
}

#[tokio::test]
async fn kubectl_get_with_a_small_chunk_size_lists_every_pod() {
    let s = sim(PODS).await;
    let dir = tempfile::tempdir().unwrap();
    s.write_kubeconfig(&dir.path().join("kubeconfig")).unwrap();
    s.reset_requests();
    let out = kubectl_in(
        dir.path(),
        &["get", "pods", "-A", "--chunk-size=2", "--no-headers"],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let listed: Vec<(&str, &str)> = stdout
        .lines()
        .map(|l| {
            let mut cols = l.split_whitespace();
            (cols.next().unwrap(), cols.next().unwrap())
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("default", "a-0"),
            ("default", "a-1"),
            ("default", "a-2"),
            ("default", "a-3"),
            ("default", "b-0"),
            ("default", "b-1"),
            ("default", "b-2"),
            ("default", "b-3"),
            ("other", "c-0"),
            ("other", "c-1"),
        ]
    );
    let lists: u64 = s
        .requests()
        .iter()
        .filter(|r| r.verb == "list" && r.resource == "pods")
        .map(|r| r.count)
        .sum();
    assert_eq!(lists, 5, "ten pods two at a time");
}
