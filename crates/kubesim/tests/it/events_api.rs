//! events.k8s.io/v1 Events: kube-runtime's `events::Recorder` (which writes events.k8s.io/v1 and
//! PATCHes an event's `series` when it recurs), and the same objects seen through core/v1.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event as CoreEvent, Node, ObjectReference};
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::runtime::events::{Event as RecorderEvent, EventType, Recorder, Reporter};
use kube::{Api, Resource};
use serde_json::json;

use crate::common::{WAIT, raw_json, sim};

fn recorder(c: kube::Client) -> Recorder {
    Recorder::new(
        c,
        Reporter {
            controller: "kdrain-controller".into(),
            instance: Some("kdrain-controller-0".into()),
        },
    )
}

fn cordoned() -> RecorderEvent {
    RecorderEvent {
        type_: EventType::Normal,
        reason: "Cordoned".into(),
        note: Some("cordoned by kdrain".into()),
        action: "Cordon".into(),
        secondary: None,
    }
}

#[tokio::test]
async fn the_recorders_events_are_one_object_seen_through_both_apis() {
    let s = sim("nodes: [{name: n1}]").await;
    let c = s.client();
    let node = Api::<Node>::all(c.clone()).get("n1").await.unwrap();
    let reference: ObjectReference = node.object_ref(&());
    let rec = recorder(c.clone());
    rec.publish(&cordoned(), &reference).await.unwrap();
    rec.publish(&cordoned(), &reference).await.unwrap();
    rec.publish(&cordoned(), &reference).await.unwrap();

    // One object in `default` (the node is cluster-scoped), its series counting three.
    let v1: Api<Event> = Api::namespaced(c.clone(), "default");
    let list = v1
        .list(&ListParams::default().fields("regarding.name=n1"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    let e = &list.items[0];
    assert_eq!(e.note.as_deref(), Some("cordoned by kdrain"));
    assert_eq!(e.regarding.as_ref().unwrap().kind.as_deref(), Some("Node"));
    assert_eq!(e.reporting_controller.as_deref(), Some("kdrain-controller"));
    assert_eq!(e.series.as_ref().map(|s| s.count), Some(3));
    assert!(e.deprecated_count.is_none() && e.deprecated_source.is_none());

    let core: Api<CoreEvent> = Api::namespaced(c.clone(), "default");
    let list = core
        .list(&ListParams::default().fields("involvedObject.name=n1,reason=Cordoned"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    let ce = &list.items[0];
    assert_eq!(ce.metadata.name, e.metadata.name);
    assert_eq!(ce.message.as_deref(), Some("cordoned by kdrain"));
    assert_eq!(ce.involved_object.name.as_deref(), Some("n1"));
    assert_eq!(ce.reporting_component.as_deref(), Some("kdrain-controller"));
    assert_eq!(
        ce.reporting_instance.as_deref(),
        Some("kdrain-controller-0")
    );
    assert_eq!(ce.action.as_deref(), Some("Cordon"));

    // An Event written through core/v1 reads through events.k8s.io/v1.
    let written = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "old-style"},
        "involvedObject": {"kind": "Node", "name": "n1"}, "reason": "Drained", "message": "all gone",
        "source": {"component": "kubectl"}, "count": 4, "type": "Normal"});
    let r = raw_json(&s, "POST", "/api/v1/namespaces/default/events", &written).await;
    assert_eq!(r.code, 201, "{}", r.text());
    let old = v1.get("old-style").await.unwrap();
    assert_eq!(old.note.as_deref(), Some("all gone"));
    assert_eq!(old.deprecated_count, Some(4));
    assert_eq!(
        old.deprecated_source.unwrap().component.as_deref(),
        Some("kubectl")
    );
    let missing = v1.get("nope").await.unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("events.events.k8s.io \"nope\" not found"),
        "{missing}"
    );
}

#[tokio::test]
async fn events_created_through_events_k8s_io_are_checked_as_by_the_real_server() {
    let s = sim("nodes: [{name: n1}]").await;
    let path = "/apis/events.k8s.io/v1/namespaces/default/events";
    let r = raw_json(
        &s,
        "POST",
        path,
        &json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
                "regarding": {"kind": "Node", "name": "n1"}, "type": "Normal", "note": "x"}),
    )
    .await;
    assert_eq!(r.code, 422);
    assert_eq!(
        r.json()["message"],
        "Event.events.k8s.io \"e\" is invalid: [reportingController: Required value, reportingInstance: Required value, action: Required value, reason: Required value, eventTime: Required value]"
    );
    let r = raw_json(
        &s,
        "GET",
        "/apis/events.k8s.io/v1/events?fieldSelector=involvedObject.name%3Dn1",
        &json!(null),
    )
    .await;
    assert_eq!(r.code, 400);
    assert_eq!(
        r.json()["message"],
        "field label not supported: involvedObject.name"
    );
}

#[tokio::test]
async fn a_watch_through_events_k8s_io_sees_events_in_its_shape() {
    let s = sim("nodes: [{name: n1}]").await;
    let c = s.client();
    let v1: Api<Event> = Api::all(c.clone());
    let mut stream = v1
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let node = Api::<Node>::all(c.clone()).get("n1").await.unwrap();
    recorder(c.clone())
        .publish(&cordoned(), &node.object_ref(&()))
        .await
        .unwrap();
    let e = loop {
        let ev = tokio::time::timeout(WAIT, stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match ev {
            WatchEvent::Added(e) if e.reason.as_deref() == Some("Cordoned") => break e,
            WatchEvent::Added(_) | WatchEvent::Bookmark(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(e.note.as_deref(), Some("cordoned by kdrain"));
    assert_eq!(e.regarding.unwrap().name.as_deref(), Some("n1"));
}
