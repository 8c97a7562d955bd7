//! CustomResourceDefinitions and their custom resources through the real kube client: the CRD's
//! status, discovery, generic storage (get, list with selectors and pages, watch), patches, the
//! status subresource and generation, schema defaults, pruning and validation (CEL included),
//! finalizers, and the CRD's deletion.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams, WatchEvent, WatchParams,
};
use kube::runtime::wait::{Condition, await_condition, conditions};
use kube::{Api, Client, Discovery};
use serde_json::{Value, json};

use crate::common::{WAIT, raw, raw_json, sim};

/// The committed test CRD (shaped like kdrain's NodeDrain).
pub const CRD: &str = include_str!("../fixtures/maintenances-crd.yaml");

/// The test CRD's resource.
pub fn resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("test.kubesim.io", "v1alpha1", "Maintenance"),
        "maintenances",
    )
}

fn maintenances(c: Client) -> Api<DynamicObject> {
    Api::all_with(c, &resource())
}

fn maintenance(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "test.kubesim.io/v1alpha1", "kind": "Maintenance",
        "metadata": {"name": name, "labels": {"team": "a"}}, "spec": spec,
    }))
    .unwrap()
}

async fn create_crd(c: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    let crd: CustomResourceDefinition = serde_yaml::from_str(CRD).unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let established = await_condition(
        crds,
        "maintenances.test.kubesim.io",
        conditions::is_crd_established(),
    );
    tokio::time::timeout(WAIT, established)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_created_crd_is_established_and_its_resource_discovered() {
    let s = sim("nodes: [{name: n1}]").await;
    let c = s.client();
    create_crd(&c).await;
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    let crd = crds.get("maintenances.test.kubesim.io").await.unwrap();
    let status = crd.status.unwrap();
    let conds: Vec<(String, String, String)> = status
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| (c.type_, c.status, c.reason.unwrap()))
        .collect();
    assert_eq!(
        conds,
        [
            ("NamesAccepted".into(), "True".into(), "NoConflicts".into()),
            (
                "Established".into(),
                "True".into(),
                "InitialNamesAccepted".into()
            ),
        ]
    );
    assert_eq!(
        status.accepted_names.unwrap().list_kind.as_deref(),
        Some("MaintenanceList")
    );
    assert_eq!(status.stored_versions, Some(vec!["v1alpha1".to_string()]));
    assert_eq!(crd.metadata.generation, Some(1));

    let discovery = Discovery::new(c.clone()).run().await.unwrap();
    let (ar, caps) = discovery
        .groups()
        .find(|g| g.name() == "test.kubesim.io")
        .expect("the CRD's group is discovered")
        .recommended_kind("Maintenance")
        .expect("its kind");
    assert_eq!(ar.plural, "maintenances");
    assert_eq!(caps.scope, kube::discovery::Scope::Cluster);
    assert!(caps.subresources.iter().any(|(r, _)| r.plural == "status"));
    let gv = crate::common::get_json(&s, "/apis/test.kubesim.io/v1alpha1").await;
    assert_eq!(gv["resources"][0]["shortNames"], json!(["mnt"]));
    assert_eq!(gv["resources"][0]["categories"], json!(["kubesim"]));

    // A bad CRD is refused with the real server's field errors.
    let mut bad: Value = serde_yaml::from_str(CRD).unwrap();
    bad["metadata"]["name"] = json!("wrong.test.kubesim.io");
    bad["spec"]["scope"] = json!("Global");
    let r = raw_json(
        &s,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &bad,
    )
    .await;
    assert_eq!(r.code, 422, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "CustomResourceDefinition.apiextensions.k8s.io \"wrong.test.kubesim.io\" is invalid: [metadata.name: Invalid value: \"wrong.test.kubesim.io\": must be spec.names.plural+\".\"+spec.group, spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\"]"
    );
}

#[tokio::test]
async fn custom_resources_are_stored_listed_and_paged_like_built_in_ones() {
    let s = sim("nodes: [{name: n1}]").await;
    s.install_crd(CRD).unwrap();
    let api = maintenances(s.client());
    let pp = PostParams::default();
    for (name, team) in [("a", "x"), ("b", "y"), ("c", "x")] {
        let mut m = maintenance(name, json!({"hosts": ["n1"]}));
        m.metadata.labels = Some([("team".to_string(), team.to_string())].into());
        api.create(&pp, &m).await.unwrap();
    }
    let got = api.get("b").await.unwrap();
    assert_eq!(
        got.data["spec"]["mode"], "Run",
        "the schema's default is applied"
    );
    assert_eq!(got.metadata.generation, Some(1));
    let names = |l: kube::core::ObjectList<DynamicObject>| -> Vec<String> {
        l.items
            .into_iter()
            .map(|o| o.metadata.name.unwrap())
            .collect()
    };
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("team=x"))
                .await
                .unwrap()
        ),
        ["a", "c"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=b"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    let first = api.list(&ListParams::default().limit(2)).await.unwrap();
    let token = first.metadata.continue_.clone().expect("a second page");
    assert_eq!(names(first), ["a", "b"]);
    let second = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(names(second), ["c"]);
    let e = api
        .create(&pp, &maintenance("a", json!({"hosts": ["n1"]})))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("maintenances.test.kubesim.io \"a\" already exists"),
        "{e}"
    );
    let missing = api.get("zzz").await.unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("maintenances.test.kubesim.io \"zzz\" not found"),
        "{missing}"
    );
    // Namespaced paths do not serve a cluster-scoped resource.
    let r = raw(
        &s,
        "GET",
        "/apis/test.kubesim.io/v1alpha1/namespaces/default/maintenances",
        &[],
        b"",
    )
    .await;
    assert_eq!(r.code, 404);
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("team=x"),
    )
    .await
    .unwrap();
    assert_eq!(
        names(api.list(&ListParams::default()).await.unwrap()),
        ["b"]
    );
}

#[tokio::test]
async fn status_is_a_subresource_and_generation_follows_the_spec() {
    let s = sim("nodes: [{name: n1}]").await;
    s.install_crd(CRD).unwrap();
    let api = maintenances(s.client());
    let mut m = maintenance("m", json!({"hosts": ["n1"]}));
    m.data["status"] = json!({"phase": "Done"});
    let created = api.create(&PostParams::default(), &m).await.unwrap();
    assert!(
        created.data.get("status").is_none(),
        "status is dropped on create"
    );
    let pp = PatchParams::default();
    let st = api
        .patch_status(
            "m",
            &pp,
            &Patch::Merge(
                json!({"status": {"phase": "Draining", "done": 1}, "spec": {"mode": "Done"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(st.data["status"]["phase"], "Draining");
    assert_eq!(st.data["spec"]["mode"], "Run", "/status ignores the spec");
    assert_eq!(
        st.metadata.generation,
        Some(1),
        "a status change keeps the generation"
    );
    let mut next = st.clone();
    next.data["status"]["phase"] = json!("Lost");
    next.data["spec"]["reason"] = json!("kernel");
    let up = api
        .replace("m", &PostParams::default(), &next)
        .await
        .unwrap();
    assert_eq!(
        up.data["status"]["phase"], "Draining",
        "the main resource ignores status"
    );
    assert_eq!(up.metadata.generation, Some(2));
    let labelled = api
        .patch(
            "m",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        labelled.metadata.generation,
        Some(2),
        "metadata changes keep the generation"
    );
    let jp: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/spec/mode", "value": "Plan"}]))
            .unwrap();
    let patched = api.patch("m", &pp, &Patch::<()>::Json(jp)).await.unwrap();
    assert_eq!(
        (
            patched.data["spec"]["mode"].clone(),
            patched.metadata.generation
        ),
        (json!("Plan"), Some(3))
    );
    // An update without resourceVersion is refused, a stale one conflicts.
    let mut stale = up.clone();
    stale.data["spec"]["reason"] = json!("again");
    let e = api
        .replace("m", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert!(matches!(&e, kube::Error::Api(s) if s.code == 409), "{e}");
    stale.metadata.resource_version = None;
    let e = api
        .replace("m", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert!(matches!(&e, kube::Error::Api(s) if s.code == 422), "{e}");
    // Strategic merge patches are refused for custom resources, as by the real server.
    let e = api
        .patch(
            "m",
            &pp,
            &Patch::Strategic(json!({"spec": {"mode": "Run"}})),
        )
        .await
        .unwrap_err();
    match e {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 415);
            assert_eq!(
                s.message,
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
            );
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn the_schema_prunes_and_validates_with_the_real_servers_errors() {
    let s = sim("nodes: [{name: n1}]").await;
    s.install_crd(CRD).unwrap();
    let path = "/apis/test.kubesim.io/v1alpha1/maintenances";
    let post = |spec: Value| {
        let body = json!({"apiVersion": "test.kubesim.io/v1alpha1", "kind": "Maintenance", "metadata": {"name": "m"}, "spec": spec});
        let s = &s;
        async move { raw_json(s, "POST", path, &body).await }
    };
    let r = post(json!({"hosts": ["n1"], "hostSelector": "a=b"})).await;
    assert_eq!(r.code, 422);
    assert_eq!(
        r.json()["message"],
        "Maintenance.test.kubesim.io \"m\" is invalid: spec: Invalid value: \"object\": exactly one of hosts or hostSelector must be set"
    );
    assert_eq!(r.json()["details"]["causes"][0]["field"], "spec");
    let r = post(json!({})).await;
    assert_eq!(r.code, 422, "neither of the two: {}", r.text());
    let r = post(json!({"hosts": ["n1"], "mode": "Later", "maxParallel": 0})).await;
    assert_eq!(r.code, 422);
    let causes: Vec<String> = r.json()["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}: {}",
                c["field"].as_str().unwrap(),
                c["message"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        causes,
        [
            "spec.maxParallel: Invalid value: 0: spec.maxParallel in body should be greater than or equal to 1",
            "spec.mode: Unsupported value: \"Later\": supported values: \"Plan\", \"Run\", \"Done\"",
        ]
    );
    let r = post(json!({"hosts": "n1"})).await;
    assert_eq!(r.code, 422);
    assert!(r.text().contains("spec.hosts: Invalid value: \\\"string\\\": spec.hosts in body must be of type array: \\\"string\\\""), "{}", r.text());
    // Unknown fields are pruned, with a warning (fieldValidation=Warn) or a refusal (Strict).
    let r = post(json!({"hosts": ["n1"], "colour": "red"})).await;
    assert_eq!(r.code, 201, "{}", r.text());
    assert_eq!(
        r.header("warning"),
        Some("299 - \"unknown field \\\"spec.colour\\\"\"")
    );
    assert!(r.json()["spec"].get("colour").is_none());
    let strict = json!({"apiVersion": "test.kubesim.io/v1alpha1", "kind": "Maintenance", "metadata": {"name": "n"}, "spec": {"hosts": ["n1"], "colour": "red"}});
    let r = raw_json(
        &s,
        "POST",
        &format!("{path}?fieldValidation=Strict"),
        &strict,
    )
    .await;
    assert_eq!(r.code, 400);
    assert_eq!(
        r.json()["message"],
        "Maintenance in version \"v1alpha1\" cannot be handled as a Maintenance: strict decoding error: unknown field \"spec.colour\""
    );
}

#[tokio::test]
async fn finalizers_hold_a_deleted_custom_resource_until_they_are_removed() {
    let s = sim("nodes: [{name: n1}]").await;
    s.install_crd(CRD).unwrap();
    let api = maintenances(s.client());
    let mut m = maintenance("m", json!({"hosts": ["n1"]}));
    m.metadata.finalizers = Some(vec!["test.kubesim.io/cleanup".into()]);
    api.create(&PostParams::default(), &m).await.unwrap();
    let deleted = api.delete("m", &DeleteParams::default()).await.unwrap();
    let held = deleted.left().expect("the object, still there");
    assert!(held.metadata.deletion_timestamp.is_some());
    assert_eq!(held.metadata.generation, Some(2));
    let pp = PatchParams::default();
    api.patch(
        "m",
        &pp,
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(
        api.get_opt("m").await.unwrap().is_none(),
        "gone with its last finalizer"
    );
}

#[tokio::test]
async fn watches_of_custom_resources_resume_and_bookmark() {
    let s = sim("settings: {bookmarkSeconds: 0.2}\nnodes: [{name: n1}]").await;
    s.install_crd(CRD).unwrap();
    let api = maintenances(s.client());
    let created = api
        .create(
            &PostParams::default(),
            &maintenance("m", json!({"hosts": ["n1"]})),
        )
        .await
        .unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    let wp = WatchParams::default();
    let mut stream = api.watch(&wp, &rv).await.unwrap().boxed();
    api.patch_status(
        "m",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Draining"}})),
    )
    .await
    .unwrap();
    api.delete("m", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    let mut bookmarks = 0;
    while seen.len() < 2 || bookmarks == 0 {
        let ev = tokio::time::timeout(WAIT, stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match ev {
            WatchEvent::Modified(o) => seen.push(("MODIFIED", o.data["status"]["phase"].clone())),
            WatchEvent::Deleted(o) => seen.push(("DELETED", o.data["status"]["phase"].clone())),
            WatchEvent::Bookmark(_) => bookmarks += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            ("MODIFIED", json!("Draining")),
            ("DELETED", json!("Draining"))
        ]
    );
}

#[tokio::test]
async fn deleting_the_crd_removes_its_objects_and_stops_serving_them() {
    let s = sim("nodes: [{name: n1}]").await;
    let c = s.client();
    create_crd(&c).await;
    let api = maintenances(c.clone());
    api.create(
        &PostParams::default(),
        &maintenance("m", json!({"hostSelector": "a"})),
    )
    .await
    .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    crds.delete("maintenances.test.kubesim.io", &DeleteParams::default())
        .await
        .unwrap();
    let e = api.list(&ListParams::default()).await.unwrap_err();
    assert!(matches!(&e, kube::Error::Api(s) if s.code == 404), "{e}");
    let apis = crate::common::get_json(&s, "/apis").await;
    assert!(!apis.to_string().contains("test.kubesim.io"));
    // Created again, it starts empty.
    create_crd(&c).await;
    assert!(
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn a_scenario_installs_its_crds_at_start() {
    let crd: Value = serde_yaml::from_str(CRD).unwrap();
    let yaml = serde_yaml::to_string(&json!({"nodes": [{"name": "n1"}], "crds": [crd]})).unwrap();
    let s = sim(&yaml).await;
    let api = maintenances(s.client());
    api.create(
        &PostParams::default(),
        &maintenance("m", json!({"hosts": ["n1"]})),
    )
    .await
    .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(s.client());
    let established = crds.get("maintenances.test.kubesim.io").await.unwrap();
    assert!(conditions::is_crd_established().matches_object(Some(&established)));
    let mut bad = crd_value();
    bad["spec"]["scope"] = json!("Global");
    let yaml = serde_yaml::to_string(&json!({"crds": [bad]})).unwrap();
    let e = kubesim::Scenario::from_yaml_str(&yaml).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid scenario: crds[0]: CustomResourceDefinition.apiextensions.k8s.io \"maintenances.test.kubesim.io\" is invalid: spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\""
    );
}

fn crd_value() -> Value {
    serde_yaml::from_str(CRD).unwrap()
}
