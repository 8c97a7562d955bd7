//! Bearer-token authentication and RBAC-style authorization (401/403 with the real texts).

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{EvictParams, ListParams};
use kubesim::{Scenario, Sim, SimOptions};

use crate::common::{get_raw, kubectl_in, raw, sim};

const AUTH: &str = r#"
nodes: [{name: n1}]
namespaces: [{name: shop}]
workloads: [{kind: Pod, name: p, namespace: shop}, {kind: Pod, name: q}]
auth:
  users: [{name: drainer, token: t-drainer}]
  roles:
    - name: drain
      rules:
        - {verbs: [get, list, patch], resources: [nodes]}
        - {verbs: [get, list], resources: [pods]}
        - {verbs: [create], resources: [pods/eviction]}
  bindings:
    - {user: drainer, role: drain}
"#;

fn api_err(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test]
async fn tokens_are_authenticated_and_rules_enforced() {
    let s = sim(AUTH).await;
    let r = get_raw(&s, "/api/v1/nodes").await;
    assert_eq!(r.code, 401);
    assert_eq!(r.json()["message"], "Unauthorized");
    let r = raw(
        &s,
        "GET",
        "/api/v1/nodes",
        &[("Authorization", "Bearer wrong")],
        b"",
    )
    .await;
    assert_eq!(r.code, 401);
    // The simulator's own client uses the admin token.
    assert_eq!(
        Api::<Node>::all(s.client())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let c = s.client_with_token("t-drainer");
    let nodes: Api<Node> = Api::all(c.clone());
    nodes.cordon("n1").await.unwrap();
    let (code, msg) = api_err(nodes.delete("n1", &Default::default()).await.unwrap_err());
    assert_eq!(code, 403);
    assert_eq!(
        msg,
        "nodes \"n1\" is forbidden: User \"drainer\" cannot delete resource \"nodes\" in API group \"\" at the cluster scope"
    );
    let pods: Api<Pod> = Api::namespaced(c.clone(), "shop");
    let (code, msg) = api_err(pods.delete("p", &Default::default()).await.unwrap_err());
    assert_eq!(code, 403);
    assert_eq!(
        msg,
        "pods \"p\" is forbidden: User \"drainer\" cannot delete resource \"pods\" in API group \"\" in the namespace \"shop\""
    );
    pods.evict("p", &EvictParams::default()).await.unwrap();
    let codes: Vec<u16> = s
        .requests()
        .iter()
        .filter(|r| r.code == 403)
        .map(|r| r.code)
        .collect();
    assert_eq!(codes.len(), 2);
}

#[tokio::test]
async fn namespaced_bindings_and_kubectl_over_tls() {
    let yaml = AUTH.replace(
        "    - {user: drainer, role: drain}",
        "    - {user: drainer, role: drain, namespace: shop}",
    );
    let s = Sim::start_with(
        Scenario::from_yaml_str(&yaml).unwrap(),
        SimOptions {
            tls: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let c = s.client_with_token("t-drainer");
    let (code, msg) = api_err(
        Api::<Pod>::namespaced(c.clone(), "default")
            .evict("q", &EvictParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403);
    assert_eq!(
        msg,
        "pods \"q\" is forbidden: User \"drainer\" cannot create resource \"pods/eviction\" in API group \"\" in the namespace \"default\""
    );
    Api::<Pod>::namespaced(c, "shop").get("p").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    s.write_kubeconfig_with_token(&kc, "t-drainer").unwrap();
    let out = kubectl_in(dir.path(), &["get", "nodes"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nodes is forbidden: User \"drainer\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"),
        "{err}"
    );
}

fn review(verb: &str, resource: &str, sub: &str, ns: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": verb, "resource": resource, "subresource": sub, "namespace": ns, "group": ""}}
    })
}

async fn ask(s: &Sim, token: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let auth = format!("Bearer {token}");
    let r = raw(
        s,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ],
        &serde_json::to_vec(body).unwrap(),
    )
    .await;
    (r.code, r.json())
}

#[tokio::test]
async fn self_subject_access_reviews_answer_from_the_same_rules() {
    let s = sim(AUTH).await;
    let (code, v) = ask(
        &s,
        "t-drainer",
        &review("create", "pods", "eviction", "shop"),
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(v["kind"], "SelfSubjectAccessReview");
    assert_eq!(v["status"]["allowed"], true);
    assert_eq!(v["spec"]["resourceAttributes"]["subresource"], "eviction");
    let (_, v) = ask(&s, "t-drainer", &review("delete", "pods", "", "shop")).await;
    assert_eq!(v["status"]["allowed"], false);
    // subresources are never implied by the parent resource
    let (_, v) = ask(&s, "t-drainer", &review("create", "pods", "", "shop")).await;
    assert_eq!(v["status"]["allowed"], false);
    let (_, v) = ask(&s, "t-drainer", &review("patch", "nodes", "", "")).await;
    assert_eq!(v["status"]["allowed"], true);
    let (_, v) = ask(&s, "kubesim", &review("delete", "nodes", "", "")).await;
    assert_eq!(v["status"]["allowed"], true);
    let (code, _) = ask(&s, "wrong", &review("get", "nodes", "", "")).await;
    assert_eq!(code, 401);
    let (code, _) = ask(&s, "t-drainer", &serde_json::json!({"spec": {}})).await;
    assert_eq!(code, 422);
    // through the kube client's typed API, as kdrain asks
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(s.client_with_token("t-drainer"));
    let asked = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some("list".into()),
                resource: Some("pods".into()),
                namespace: Some("shop".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let got = api.create(&Default::default(), &asked).await.unwrap();
    assert!(got.status.unwrap().allowed);
    let counted = s
        .requests()
        .into_iter()
        .filter(|r| r.resource == "selfsubjectaccessreviews" && r.verb == "create")
        .map(|r| r.count)
        .sum::<u64>();
    assert_eq!(counted, 8);
}

#[tokio::test]
async fn without_an_auth_section_every_review_is_allowed() {
    let s = sim("nodes: [{name: n1}]").await;
    let (code, v) = ask(&s, "anything", &review("delete", "pods", "", "x")).await;
    assert_eq!(code, 201);
    assert_eq!(v["status"]["allowed"], true);
}
