//! `kdrain controller` and `kdrain request` as real processes against kubesim: a request
//! followed to its end with drain's exit codes, and the leader killed with SIGKILL mid-drain
//! while a standby takes over and finishes.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kdrain_controller::metrics::Metrics;
use kdrain_controller::{NodeDrain, NodeDrainSpec, Phase};
use kube::Api;
use kube::api::PostParams;

use crate::common::{self, Cluster};

const SLOW: &str = r#"
nodes: [{name: n1}, {name: n2}, {name: n3}]
workloads:
  - {kind: Deployment, name: web, namespace: shop, replicas: 4, nodes: [n1], terminationSeconds: 0.2, readySeconds: 1.5}
  - {kind: Pod, name: lonely, nodes: [n2]}
pdbs:
  - {name: web, namespace: shop, selector: {app: web}, maxUnavailable: 1}
"#;

async fn with_crd(yaml: &str) -> Cluster {
    let c = common::cluster(yaml).await;
    c.sim
        .install_crd(&kdrain_controller::crd::crd_yaml())
        .expect("CRD");
    c
}

/// Runs a controller in the test process until the returned sender is dropped.
fn in_process_controller(c: &Cluster) -> tokio::sync::oneshot::Sender<()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(kdrain_controller::run(
        c.client(),
        Default::default(),
        Arc::new(Metrics::new()),
        async move {
            let _ = rx.await;
        },
    ));
    tx
}

#[tokio::test]
async fn request_follows_the_drain_to_its_end() {
    let c = with_crd(SLOW).await;
    let _controller = in_process_controller(&c);
    let run = c
        .run(&[
            "request",
            "n1",
            "--name",
            "n1-kernel",
            "--reason",
            "kernel 6.12",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.out_lines();
    assert_eq!(lines[0], "nodedrain.kdrain.io/n1-kernel created");
    assert!(
        lines.iter().any(|l| l.starts_with("n1-kernel  Draining")),
        "{lines:?}"
    );
    let last = lines.last().unwrap();
    assert!(
        last.starts_with("n1-kernel  Drained   nodes 1/1   pods gone 4/4"),
        "{last}"
    );
    assert!(c.pods_on("n1").await.is_empty());
}

#[tokio::test]
async fn request_ends_with_drains_exit_codes() {
    let c = with_crd(SLOW).await;
    let _controller = in_process_controller(&c);
    // a bare pod without --force: the plan refuses it, nothing changes (drain's exit 4)
    let run = c.run(&["request", "n2", "--name", "bare"]).await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stdout.contains("bare  Refused"), "{}", run.stdout);
    assert!(run.stdout.contains("cannot delete"), "{}", run.stdout);
    assert!(!c.cordoned("n2").await);
    // an unknown node: Refused with one line (exit 2)
    let run = c.run(&["request", "n9", "--name", "unknown"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout
            .contains("node n9 not found; check spec.nodeNames"),
        "{}",
        run.stdout
    );
    // bad flags are refused before anything is created
    let run = c.run(&["request", "n1", "--timeout", "5 minutes"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.err_lines(),
        [
            "error: --timeout: invalid duration \"5 minutes\" (unknown unit \" minutes\"): use a number with a unit, like 90s, 5m, 1h30m or 0"
        ]
    );
    let run = c.run(&["request", "n1", "--parallel", "0"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.err_lines(),
        ["error: --parallel is 0: use a count of at least 1 or a percent from 1% to 100%"]
    );
    let run = c
        .run(&["request", "n1", "--detach", "--name", "later"])
        .await;
    assert_eq!(
        (run.code, run.out_lines()),
        (0, vec!["nodedrain.kdrain.io/later created"])
    );
    let api: Api<NodeDrain> = Api::all(c.client());
    assert_eq!(api.list(&Default::default()).await.unwrap().items.len(), 3);
}

/// A `kdrain controller` process.
fn spawn_controller(c: &Cluster, identity: &str) -> tokio::process::Child {
    tokio::process::Command::new(assert_cmd::cargo::cargo_bin("kdrain"))
        .args([
            "controller",
            "--kubeconfig",
            &c.kubeconfig.display().to_string(),
            "--metrics-addr",
            "127.0.0.1:0",
            "--lease-namespace",
            "default",
            "--lease-seconds",
            "3",
            "--identity",
            identity,
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("kdrain controller starts")
}

async fn holder(c: &Cluster) -> Option<String> {
    Api::<Lease>::namespaced(c.client(), "default")
        .get_opt("kdrain-controller")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity)
}

async fn until<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + common::RUN_LIMIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "not {what} in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_standby_takes_over_when_the_leader_is_killed_mid_drain() {
    let c = with_crd(SLOW).await;
    let t0 = tokio::time::Instant::now();
    let mut a = spawn_controller(&c, "controller-a");
    until("a leading", || async {
        holder(&c).await.as_deref() == Some("controller-a")
    })
    .await;
    let mut b = spawn_controller(&c, "controller-b");
    let api: Api<NodeDrain> = Api::all(c.client());
    let spec = NodeDrainSpec {
        node_names: Some(vec!["n1".into()]),
        ..Default::default()
    };
    api.create(&PostParams::default(), &NodeDrain::new("failover", spec))
        .await
        .unwrap();
    let gone = |api: Api<NodeDrain>| async move {
        api.get("failover")
            .await
            .ok()
            .and_then(|nd| nd.status)
            .and_then(|s| s.nodes.first().map(|n| n.pods_gone))
            .unwrap_or(0)
    };
    until("a pod gone", || {
        let api = api.clone();
        async move { gone(api).await >= 1 }
    })
    .await;
    let killed_at = t0.elapsed();
    a.start_kill().expect("SIGKILL");
    let _ = a.wait().await;
    until("b leading", || async {
        holder(&c).await.as_deref() == Some("controller-b")
    })
    .await;
    let took_over_at = t0.elapsed();
    until("drained", || async {
        api.get("failover")
            .await
            .ok()
            .and_then(|nd| nd.status?.phase)
            == Some(Phase::Drained)
    })
    .await;
    let drained_at = t0.elapsed();
    eprintln!(
        "failover timeline: leader SIGKILLed at {:.1}s, standby leading at {:.1}s ({:.1}s later, lease 3s), drained at {:.1}s",
        killed_at.as_secs_f64(),
        took_over_at.as_secs_f64(),
        (took_over_at - killed_at).as_secs_f64(),
        drained_at.as_secs_f64()
    );
    assert!(c.pods_on("n1").await.is_empty());
    assert!(c.sim.violations().is_empty(), "{:?}", c.sim.violations());
    let accepted = c
        .sim
        .requests()
        .iter()
        .filter(|r| r.verb == "create" && r.subresource == "eviction" && r.code == 201)
        .map(|r| r.count)
        .sum::<u64>();
    assert_eq!(accepted, 4, "every pod evicted once, none twice");
    b.start_kill().expect("kill b");
    let _ = b.wait().await;
}
