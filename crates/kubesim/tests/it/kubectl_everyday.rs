//! The kubectl commands people type every day (issue 15), with the installed kubectl: typed
//! clients' protobuf bodies (`create deployment`, `create pdb`, `auth can-i`), `scale`,
//! `get all`, `apply`, `explain`, `get events` and field validation.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kubesim::{Scenario, Sim, SimOptions};

use crate::common::{eventually, sim};
use crate::kubectl::Kubectl;

const NODES: &str = "nodes: [{name: n1}, {name: n2}, {name: n3}]\n";

#[tokio::test]
async fn create_deployment_sends_protobuf_and_the_deployment_runs() {
    let s = sim(NODES).await;
    let k = Kubectl::new(&s);
    let r = k
        .run(&[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--replicas=3",
        ])
        .await;
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "deployment.apps/web created\n"),
        "{}",
        r.stderr
    );
    let d = Api::<Deployment>::default_namespaced(s.client())
        .get("web")
        .await
        .unwrap();
    let spec = d.spec;
    assert_eq!(spec.replicas, Some(3));
    let labels = spec.selector.match_labels.unwrap();
    assert_eq!(labels.get("app").map(String::as_str), Some("web"));
    let c = &spec.template.spec.unwrap().containers[0];
    assert_eq!(
        (c.name.as_str(), c.image.as_deref()),
        ("nginx", Some("nginx"))
    );
    let r = eventually("3 ready pods", || async {
        let r = k
            .run(&[
                "get",
                "deployment",
                "web",
                "-o",
                "jsonpath={.status.readyReplicas}",
            ])
            .await;
        (r.stdout == "3").then_some(r)
    })
    .await;
    assert_eq!(r.code, 0);
    // Zero replicas are kept (a pointer field), not defaulted to 1.
    let r = k
        .run(&[
            "create",
            "deployment",
            "idle",
            "--image=nginx",
            "--replicas=0",
        ])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let d = Api::<Deployment>::default_namespaced(s.client())
        .get("idle")
        .await
        .unwrap();
    assert_eq!(d.spec.replicas, Some(0));
    let r = k
        .run(&["create", "deployment", "web", "--image=nginx"])
        .await;
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "error: failed to create deployment: deployments.apps \"web\" already exists\n"
    );
}

#[tokio::test]
async fn create_pdb_sends_protobuf_and_the_budget_is_computed() {
    let s = sim(&format!(
        "{NODES}workloads: [{{kind: Deployment, name: web, replicas: 3, labels: {{app: web}}}}]\n"
    ))
    .await;
    let k = Kubectl::new(&s);
    let r = k
        .run(&[
            "create",
            "pdb",
            "web",
            "--selector=app=web",
            "--max-unavailable=1",
        ])
        .await;
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "poddisruptionbudget.policy/web created\n"),
        "{}",
        r.stderr
    );
    let r = k
        .run(&[
            "create",
            "pdb",
            "half",
            "--selector=app=web",
            "--min-available=50%",
        ])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let pdbs = Api::<PodDisruptionBudget>::default_namespaced(s.client());
    let web = pdbs.get("web").await.unwrap().spec.unwrap();
    assert_eq!(web.max_unavailable, Some(IntOrString::Int(1)));
    assert_eq!(web.min_available, None);
    let half = pdbs.get("half").await.unwrap().spec.unwrap();
    assert_eq!(half.min_available, Some(IntOrString::String("50%".into())));
    eventually("the disruption controller's status", || async {
        let r = k
            .run(&[
                "get",
                "pdb",
                "web",
                "-o",
                "jsonpath={.status.disruptionsAllowed}",
            ])
            .await;
        (r.stdout == "1").then_some(())
    })
    .await;
}

const CAN_I: &str = r#"
nodes: [{name: n1}]
namespaces: [{name: shop}]
auth:
  users: [{name: drainer, token: t-drainer}]
  roles:
    - name: evict
      rules: [{verbs: [create], resources: [pods/eviction]}]
  bindings:
    - {user: drainer, role: evict, namespace: shop}
"#;

#[tokio::test]
async fn auth_can_i_sends_a_protobuf_review_and_answers_yes_or_no() {
    let opts = SimOptions {
        tls: true,
        ..Default::default()
    };
    let s = Sim::start_with(Scenario::from_yaml_str(CAN_I).unwrap(), opts)
        .await
        .unwrap();
    let k = Kubectl::with_token(&s, "t-drainer");
    let evict = ["auth", "can-i", "create", "pods", "--subresource=eviction"];
    let r = k.run(&[&evict[..], &["-n", "shop"]].concat()).await;
    assert_eq!((r.code, r.stdout.as_str()), (0, "yes\n"), "{}", r.stderr);
    let r = k.run(&[&evict[..], &["-n", "default"]].concat()).await;
    assert_eq!((r.code, r.stdout.as_str()), (1, "no\n"), "{}", r.stderr);
    // As on a real cluster, `pods/eviction` names a pod called "eviction", not the subresource.
    let r = k
        .run(&["auth", "can-i", "create", "pods/eviction", "-n", "shop"])
        .await;
    assert_eq!((r.code, r.stdout.as_str()), (1, "no\n"), "{}", r.stderr);
    let r = k
        .run(&["auth", "can-i", "delete", "pods", "-n", "shop"])
        .await;
    assert_eq!((r.code, r.stdout.as_str()), (1, "no\n"), "{}", r.stderr);
    let admin = Kubectl::new(&s);
    let r = admin.run(&["auth", "can-i", "delete", "nodes"]).await;
    assert_eq!((r.code, r.stdout.as_str()), (0, "yes\n"), "{}", r.stderr);
}
