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

const WORKLOADS: &str = r#"
nodes: [{name: n1}, {name: n2}, {name: n3}]
workloads:
  - {kind: Deployment, name: web, replicas: 2, labels: {app: web}}
  - {kind: ReplicaSet, name: cache, replicas: 1, labels: {app: cache}}
  - {kind: StatefulSet, name: db, replicas: 1, labels: {app: db}}
  - {kind: DaemonSet, name: agent, labels: {app: agent}}
"#;

async fn jsonpath(k: &Kubectl, what: &[&str], path: &str) -> String {
    let jp = format!("jsonpath={path}");
    let r = k.run(&[what, &["-o", jp.as_str()]].concat()).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout
}

#[tokio::test]
async fn scale_uses_the_scale_subresource_of_deployments_replicasets_and_statefulsets() {
    let s = sim(WORKLOADS).await;
    let k = Kubectl::new(&s);
    for (what, out) in [
        ("deployment/web", "deployment.apps/web scaled\n"),
        ("rs/cache", "replicaset.apps/cache scaled\n"),
        ("sts/db", "statefulset.apps/db scaled\n"),
    ] {
        let r = k.run(&["scale", what, "--replicas=4"]).await;
        assert_eq!((r.code, r.stdout.as_str()), (0, out), "{}", r.stderr);
        assert_eq!(jsonpath(&k, &["get", what], "{.spec.replicas}").await, "4");
        eventually("4 pods ready", || async {
            (jsonpath(&k, &["get", what], "{.status.readyReplicas}").await == "4").then_some(())
        })
        .await;
    }
    // The Scale object itself, as `kubectl get --subresource=scale` shows it.
    let r = k
        .run(&[
            "get",
            "deployment",
            "web",
            "--subresource=scale",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let scale: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 4);
    assert_eq!(scale["status"]["replicas"], 4);
    assert_eq!(scale["status"]["selector"], "app=web");
    // A precondition that does not hold changes nothing.
    let r = k
        .run(&[
            "scale",
            "deployment/web",
            "--current-replicas=3",
            "--replicas=1",
        ])
        .await;
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr, "error: Expected replicas to be 3, was 4\n",
        "{}",
        r.stdout
    );
    assert_eq!(
        jsonpath(&k, &["get", "deployment/web"], "{.spec.replicas}").await,
        "4"
    );
    let r = k
        .run(&[
            "scale",
            "deployment/web",
            "--current-replicas=4",
            "--replicas=0",
        ])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    eventually("no pods of web", || async {
        let r = k.run(&["get", "pods", "-l", "app=web", "-o", "name"]).await;
        r.stdout.is_empty().then_some(())
    })
    .await;
    let r = k.run(&["scale", "daemonset/agent", "--replicas=2"]).await;
    assert_eq!(r.code, 1);
    let r = k.run(&["scale", "deployment/nope", "--replicas=2"]).await;
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "error: no objects passed to scale deployments.apps \"nope\" not found\n"
    );
}

#[tokio::test]
async fn get_all_lists_the_all_category_and_short_names_resolve() {
    let s = sim(WORKLOADS).await;
    let k = Kubectl::new(&s);
    eventually("every workload pod running", || async {
        let r = k
            .run(&[
                "get",
                "pods",
                "--field-selector=status.phase!=Running",
                "-o",
                "name",
            ])
            .await;
        (r.code == 0 && r.stdout.is_empty()).then_some(())
    })
    .await;
    let r = k.run(&["get", "all", "-o", "name"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut lines = r.out_lines();
    let kinds: Vec<&str> = {
        let mut k: Vec<&str> = lines.iter().map(|l| l.split('/').next().unwrap()).collect();
        k.dedup();
        k
    };
    assert_eq!(
        kinds,
        [
            "pod",
            "daemonset.apps",
            "deployment.apps",
            "replicaset.apps",
            "statefulset.apps"
        ],
        "{}",
        r.stdout
    );
    lines.retain(|l| !l.starts_with("pod/"));
    assert_eq!(lines.len(), 5, "{}", r.stdout);
    assert_eq!(
        lines[..3],
        [
            "daemonset.apps/agent",
            "deployment.apps/web",
            "replicaset.apps/cache"
        ]
    );
    assert!(lines[3].starts_with("replicaset.apps/web-"), "{}", lines[3]);
    assert_eq!(lines[4], "statefulset.apps/db");
    assert_eq!(
        r.out_lines()
            .iter()
            .filter(|l| l.starts_with("pod/"))
            .count(),
        2 + 1 + 1 + 3
    );
    // The table form: one table per kind, each with its own header.
    let r = k.run(&["get", "all"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let headers: Vec<&str> = r
        .out_lines()
        .into_iter()
        .filter(|l| l.starts_with("NAME "))
        .collect();
    assert_eq!(headers.len(), 5, "{}", r.stdout);
    for short in ["po", "deploy", "rs", "sts", "ds", "pdb", "ev", "no", "ns"] {
        let r = k.run(&["get", short]).await;
        assert_eq!(r.code, 0, "kubectl get {short}: {}", r.stderr);
    }
    let r = k.run(&["get", "deploy,sts", "-o", "name"]).await;
    assert_eq!(
        r.stdout, "deployment.apps/web\nstatefulset.apps/db\n",
        "{}",
        r.stderr
    );
}

#[tokio::test]
async fn explain_reads_the_openapi_v3_documents() {
    let s = sim(NODES).await;
    let k = Kubectl::new(&s);
    let r = k.run(&["explain", "pods"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = r.out_lines();
    assert_eq!(lines[..2], ["KIND:       Pod", "VERSION:    v1"]);
    assert!(
        lines.contains(&"DESCRIPTION:") && lines.contains(&"FIELDS:"),
        "{}",
        r.stdout
    );
    for field in [
        "  apiVersion\t<string>",
        "  kind\t<string>",
        "  metadata\t<ObjectMeta>",
        "  spec\t<PodSpec>",
        "  status\t<PodStatus>",
    ] {
        assert!(lines.contains(&field), "{field:?} in\n{}", r.stdout);
    }
    let r = k.run(&["explain", "deployment.spec.replicas"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n\nFIELD: replicas <integer>\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Number of desired pods."), "{}", r.stdout);
    // Required fields and list types are the real server's.
    let r = k.run(&["explain", "pods.spec.containers"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("FIELD: containers <[]Container>"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("  name\t<string> -required-"),
        "{}",
        r.stdout
    );
    let r = k.run(&["explain", "pdb.spec.maxUnavailable"]).await;
    assert!(
        r.stdout.contains("FIELD: maxUnavailable <IntOrString>"),
        "{}",
        r.stdout
    );
    let r = k.run(&["explain", "sts.spec", "--recursive"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("\n  serviceName\t<string>\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("\n  template\t<PodTemplateSpec> -required-\n"),
        "{}",
        r.stdout
    );
    let r = k.run(&["explain", "pods.spec.nope"]).await;
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "error: field \"nope\" does not exist\n")
    );
    let r = k.run(&["explain", "nopes"]).await;
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "the server doesn't have a resource type \"nopes\"\n"
    );
}

const DEPLOYMENT_YAML: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports: [{containerPort: 80}]
      - name: sidecar
        image: busybox
";

fn deployments(s: &Sim) -> Api<Deployment> {
    Api::default_namespaced(s.client())
}

#[tokio::test]
async fn apply_creates_configures_and_leaves_unchanged() {
    let s = sim(NODES).await;
    let k = Kubectl::new(&s);
    let f = k.file("deployment.yaml", DEPLOYMENT_YAML);
    let r = k.run(&["apply", "-f", &f]).await;
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "deployment.apps/web created\n", "")
    );
    let d = deployments(&s).get("web").await.unwrap();
    assert!(
        d.metadata
            .annotations
            .unwrap()
            .contains_key("kubectl.kubernetes.io/last-applied-configuration")
    );
    let r = k.run(&["apply", "-f", &f]).await;
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "deployment.apps/web unchanged\n")
    );
    // One container fewer and another replica count: the strategic merge patch computed from
    // the OpenAPI v3 patch metadata removes the container by name.
    let changed = DEPLOYMENT_YAML
        .replace("replicas: 2", "replicas: 3")
        .replace("      - name: sidecar\n        image: busybox\n", "");
    let f = k.file("deployment.yaml", &changed);
    let r = k.run(&["apply", "-f", &f]).await;
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "deployment.apps/web configured\n", "")
    );
    let d = deployments(&s).get("web").await.unwrap();
    assert_eq!(d.spec.replicas, Some(3));
    let names: Vec<String> = d
        .spec
        .template
        .spec
        .unwrap()
        .containers
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["nginx"]);
    // kubectl found what it needs (fieldValidation support, patch metadata) in the v3 documents.
    let paths: Vec<String> = s.requests().iter().map(|r| r.resource.clone()).collect();
    assert!(
        paths.contains(&"/openapi/v3/apis/apps/v1".to_string()),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.starts_with("/openapi/v2")),
        "{paths:?}"
    );
    eventually("3 ready replicas", || async {
        let d = deployments(&s).get("web").await.unwrap();
        (d.status.and_then(|st| st.ready_replicas) == Some(3)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn field_validation_strict_warn_and_ignore() {
    let s = sim(NODES).await;
    let k = Kubectl::new(&s);
    let typo = DEPLOYMENT_YAML.replace("  replicas: 2\n", "  replicas: 2\n  replica: 5\n");
    let f = k.file("typo.yaml", &typo);
    // kubectl's default is strict: the server refuses and nothing is created.
    let r = k.run(&["apply", "-f", &f]).await;
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        format!(
            "Error from server (BadRequest): error when creating \"{f}\": Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replica\"\n"
        )
    );
    assert!(deployments(&s).get_opt("web").await.unwrap().is_none());
    // Warn: created without the field, one warning.
    let r = k.run(&["create", "-f", &f, "--validate=warn"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "deployment.apps/web created\n");
    assert_eq!(r.stderr, "Warning: unknown field \"spec.replica\"\n");
    let stored = serde_json::to_value(deployments(&s).get("web").await.unwrap()).unwrap();
    assert!(stored["spec"].get("replica").is_none(), "{stored}");
    // Ignore: silent, and the field is dropped all the same.
    let other = typo.replace("name: web\n  labels", "name: web2\n  labels");
    let f2 = k.file("typo2.yaml", &other);
    let r = k.run(&["create", "-f", &f2, "--validate=false"]).await;
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    let stored = serde_json::to_value(deployments(&s).get("web2").await.unwrap()).unwrap();
    assert!(stored["spec"].get("replica").is_none(), "{stored}");
    // A patch that adds an unknown field: strict refuses with the real 422 (kubectl patch sends
    // no fieldValidation, so the kube client asks for Strict here).
    let pp = kube::api::PatchParams {
        field_validation: Some(kube::api::ValidationDirective::Strict),
        ..Default::default()
    };
    let patch = serde_json::json!({"spec": {"paused": true, "pausd": true}});
    let e = deployments(&s)
        .patch("web", &pp, &kube::api::Patch::Merge(&patch))
        .await
        .unwrap_err();
    let kube::Error::Api(st) = e else {
        panic!("an API error: {e}")
    };
    assert_eq!((st.code, st.reason.as_str()), (422, "Invalid"));
    assert!(
        st.message
            .starts_with(" \"\" is invalid: patch: Invalid value: \"{"),
        "{}",
        st.message
    );
    assert!(
        st.message
            .ends_with("}\": strict decoding error: unknown field \"spec.pausd\""),
        "{}",
        st.message
    );
    assert_eq!(deployments(&s).get("web").await.unwrap().spec.paused, None);
    let r = k
        .run(&[
            "patch",
            "deployment",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"paused":true,"pausd":true}}"#,
        ])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "Warning: unknown field \"spec.pausd\"\n");
    assert_eq!(
        deployments(&s).get("web").await.unwrap().spec.paused,
        Some(true)
    );
}

#[tokio::test]
async fn create_namespace_sends_protobuf_and_run_and_force_delete_work() {
    let s = sim(NODES).await;
    let k = Kubectl::new(&s);
    let r = k.run(&["create", "namespace", "shop"]).await;
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "namespace/shop created\n"),
        "{}",
        r.stderr
    );
    let r = k
        .run(&[
            "run",
            "web",
            "--image=nginx",
            "-n",
            "shop",
            "--labels=app=web,tier=front",
        ])
        .await;
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "pod/web created\n"),
        "{}",
        r.stderr
    );
    let r = k
        .run(&[
            "get",
            "pod",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.metadata.labels.tier} {.spec.containers[0].image}",
        ])
        .await;
    assert_eq!(r.stdout, "front nginx");
    eventually("web running", || async {
        let r = k
            .run(&[
                "get",
                "pod",
                "web",
                "-n",
                "shop",
                "-o",
                "jsonpath={.status.phase}",
            ])
            .await;
        (r.stdout == "Running").then_some(())
    })
    .await;
    let r = k
        .run(&[
            "delete",
            "pod",
            "web",
            "-n",
            "shop",
            "--grace-period=0",
            "--force",
        ])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("pod \"web\" force deleted"),
        "{}",
        r.stdout
    );
    let r = k.run(&["get", "pods", "-n", "shop", "-o", "name"]).await;
    assert_eq!(r.stdout, "");
}
