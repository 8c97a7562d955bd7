//! Crash and resume, and concurrent runs: the real `kdrain` binary is SIGKILLed mid-drain
//! (while evictions are pending, and while a budget blocks), then the same command runs again
//! and completes without harm. The `kdrain.io/cordoned-by` annotation lets
//! `--uncordon-on-failure` and `kdrain uncordon` undo only what kdrain changed, even across a
//! crash. Two processes on one node, or on two nodes sharing a budget, both stay truthful.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;

use crate::common::{Cluster, Run, cluster, mask};
use crate::readme;

/// The longest any wait in these tests may take.
const LIMIT: Duration = Duration::from_secs(45);

/// A `kdrain` process running in the background, its output going to files.
struct Background {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Background {
    /// Starts `kdrain ARGS --kubeconfig <cluster>` without waiting for it.
    fn start(c: &Cluster, name: &str, args: &[&str]) -> Background {
        let out = c.dir.path().join(format!("{name}.out"));
        let err = c.dir.path().join(format!("{name}.err"));
        let child = Command::new(assert_cmd::cargo::cargo_bin("kdrain"))
            .args(args)
            .arg("--kubeconfig")
            .arg(&c.kubeconfig)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::from(File::create(&out).expect("stdout file")))
            .stderr(Stdio::from(File::create(&err).expect("stderr file")))
            .spawn()
            .expect("kdrain starts");
        Background { child, out, err }
    }

    /// The process id, for `kill`.
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process gets no chance to clean up.
    fn kill_hard(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Waits for the process to exit (bounded) and returns what it printed.
    async fn finish(mut self) -> Run {
        let status = tokio::time::timeout(LIMIT, async {
            loop {
                if let Some(s) = self.child.try_wait().expect("try_wait") {
                    return s;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| {
            let _ = self.child.kill();
            panic!("kdrain did not exit in time")
        });
        Run {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.err).unwrap_or_default(),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // a test that failed half-way must not leave a drain running
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends a signal by name with the system's `kill` command.
fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// The pods on a node.
async fn pods_on(c: &Cluster, node: &str) -> Vec<Pod> {
    Api::<Pod>::all(c.client())
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .expect("list pods")
        .items
}

fn name(p: &Pod) -> &str {
    p.metadata.name.as_deref().unwrap_or_default()
}

fn terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

/// Polls the cluster until `check` holds on the pods of `node`.
async fn wait_for(c: &Cluster, node: &str, what: &str, check: impl Fn(&[Pod]) -> bool) {
    tokio::time::timeout(LIMIT, async {
        loop {
            if check(&pods_on(c, node).await) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for: {what}"));
}

/// The node's `kdrain.io/cordoned-by` annotation.
async fn cordoned_by(c: &Cluster, node: &str) -> Option<String> {
    let n = Api::<Node>::all(c.client()).get(node).await.expect("node");
    n.metadata
        .annotations
        .and_then(|a| a.get("kdrain.io/cordoned-by").cloned())
}

/// Every non-DaemonSet pod has left `node`.
async fn only_daemonsets_left(c: &Cluster, node: &str) -> Vec<String> {
    pods_on(c, node)
        .await
        .iter()
        .filter(|p| !name(p).starts_with("agent-"))
        .map(|p| name(p).to_string())
        .collect()
}

fn no_violations(c: &Cluster) {
    assert_eq!(c.sim.violations(), vec![], "kubesim's invariant log");
}

/// Four web pods that take 2 s to stop, two evicted at a time. Their replacements take 3 s to
/// become Ready, so the other two wait for the budget while the test acts on the first two (a
/// drain reacts to the budget within milliseconds: a shorter start-up raced the test's polling).
const SLOW_STOP: &str = r#"
nodes: [{name: n1}, {name: n2}, {name: n3}]
workloads:
  - {kind: Deployment, name: web, replicas: 4, nodes: [n1], terminationSeconds: 2.0, gracePeriodSeconds: 30, readySeconds: 3.0}
  - {kind: DaemonSet, name: agent, namespace: kube-system}
pdbs:
  - {name: web, selector: {app: web}, maxUnavailable: 2}
"#;

/// Two web pods under a budget of one; replacements take `READY` seconds to become ready.
fn blocking(ready: f64, unschedulable: bool) -> String {
    format!(
        r#"
nodes: [{{name: n1, unschedulable: {unschedulable}}}, {{name: n2}}, {{name: n3}}]
workloads:
  - {{kind: Deployment, name: web, replicas: 2, nodes: [n1], terminationSeconds: 0.1, readySeconds: {ready}}}
  - {{kind: DaemonSet, name: agent, namespace: kube-system}}
pdbs:
  - {{name: web, selector: {{app: web}}, maxUnavailable: 1}}
"#
    )
}

const DRAIN: [&str; 4] = ["drain", "n1", "--ignore-daemonsets", "--timeout=40s"];

/// A drain that gives up quickly on a blocking budget and asks for n1 to be uncordoned then.
const DRAIN_OR_UNCORDON: [&str; 5] = [
    "drain",
    "n1",
    "--ignore-daemonsets",
    "--timeout=2s",
    "--uncordon-on-failure",
];

/// Waits until one web pod has left n1 (or terminates) while the other is still untouched:
/// the drain is blocked by the budget. Then lets the blocked state last a moment.
async fn wait_blocked(c: &Cluster) {
    wait_for(
        c,
        "n1",
        "one web pod evicted, the other held back",
        |pods| {
            let web: Vec<&Pod> = pods
                .iter()
                .filter(|p| name(p).starts_with("web-"))
                .collect();
            web.iter().filter(|p| !terminating(p)).count() == 1
                && (web.len() == 1 || web.iter().any(|p| terminating(p)))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
}

#[tokio::test]
async fn killed_while_evictions_are_pending_the_same_command_completes() {
    let c = cluster(SLOW_STOP).await;
    let first = Background::start(&c, "first", &DRAIN);
    wait_for(&c, "n1", "evictions accepted, pods terminating", |pods| {
        pods.iter().any(terminating)
    })
    .await;
    first.kill_hard();
    let pods = pods_on(&c, "n1").await;
    let web: Vec<&Pod> = pods
        .iter()
        .filter(|p| name(p).starts_with("web-"))
        .collect();
    assert!(
        web.iter().any(|p| !terminating(p)),
        "killed mid-way: some web pods were not evicted yet: {:?}",
        web.iter().map(|p| name(p)).collect::<Vec<_>>()
    );
    assert!(c.cordoned("n1").await, "the crash leaves the node cordoned");
    assert_eq!(cordoned_by(&c, "n1").await.as_deref(), Some("kdrain"));

    let again = c.run(&DRAIN).await;
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(
        again.out_lines().contains(&"node/n1 already cordoned"),
        "{}",
        again.stdout
    );
    assert!(
        again.out_lines().contains(&"node/n1 drained"),
        "{}",
        again.stdout
    );
    assert_eq!(only_daemonsets_left(&c, "n1").await, Vec::<String>::new());
    assert!(c.cordoned("n1").await);
    no_violations(&c);
    // The 4 web pods (and their replacements elsewhere) are all that was disrupted.
    let web_now = Api::<Pod>::all(c.client())
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items;
    assert_eq!(
        web_now.iter().filter(|p| !terminating(p)).count(),
        4,
        "the deployment still has its 4 replicas"
    );
}

#[tokio::test]
async fn killed_while_a_budget_blocks_the_same_command_completes() {
    let c = cluster(&blocking(3.0, false)).await;
    let first = Background::start(&c, "first", &DRAIN);
    wait_blocked(&c).await;
    first.kill_hard();
    assert!(c.cordoned("n1").await);
    assert_eq!(cordoned_by(&c, "n1").await.as_deref(), Some("kdrain"));

    let again = c.run(&DRAIN).await;
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert_eq!(only_daemonsets_left(&c, "n1").await, Vec::<String>::new());
    assert!(c.cordoned("n1").await, "a drained node stays cordoned");
    no_violations(&c);

    // `kdrain uncordon` undoes the cordon and kdrain's mark.
    let r = c.run(&["uncordon", "n1"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!c.cordoned("n1").await);
    assert_eq!(cordoned_by(&c, "n1").await, None);
}

#[tokio::test]
async fn uncordon_on_failure_after_a_crash_restores_the_node_kdrain_cordoned() {
    // replacements never become ready within the test: the second web pod stays blocked
    let c = cluster(&blocking(120.0, false)).await;
    let first = Background::start(&c, "first", &DRAIN);
    wait_blocked(&c).await;
    first.kill_hard();
    assert_eq!(cordoned_by(&c, "n1").await.as_deref(), Some("kdrain"));

    let r = c.run(&DRAIN_OR_UNCORDON).await;
    assert_eq!(
        r.code, 3,
        "blocked by the budget: {}\n{}",
        r.stdout, r.stderr
    );
    assert!(
        !c.cordoned("n1").await,
        "kdrain cordoned n1 (in the crashed run), so it is restored"
    );
    assert_eq!(cordoned_by(&c, "n1").await, None, "and its mark is gone");
    let web_left = only_daemonsets_left(&c, "n1").await;
    assert_eq!(
        web_left.len(),
        1,
        "the blocked pod is still there: {web_left:?}"
    );
    assert!(r.stderr.contains(&web_left[0]) || r.stdout.contains(&web_left[0]));
    no_violations(&c);
}

#[tokio::test]
async fn uncordon_on_failure_leaves_a_node_someone_else_cordoned() {
    let c = cluster(&blocking(120.0, true)).await;
    assert!(c.cordoned("n1").await);
    let r = c.run(&DRAIN_OR_UNCORDON).await;
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(
        c.cordoned("n1").await,
        "n1 was cordoned before kdrain came: it stays cordoned"
    );
    assert_eq!(cordoned_by(&c, "n1").await, None);
    assert_eq!(
        c.count("patch", "nodes", ""),
        0,
        "the node was never written"
    );
    no_violations(&c);
}

#[tokio::test]
async fn ctrl_c_stops_cleanly_says_what_is_left_and_exits_130() {
    let c = cluster(&blocking(120.0, false)).await;
    let first = Background::start(&c, "first", &DRAIN);
    wait_blocked(&c).await;
    signal(first.pid(), "INT");
    let r = first.finish().await;
    assert_eq!(r.code, 130, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("interrupted"), "{}", r.stderr);
    let left = only_daemonsets_left(&c, "n1").await;
    assert_eq!(left.len(), 1);
    let interrupted: Vec<&str> = r
        .stderr
        .lines()
        .skip_while(|l| !l.contains("interrupted"))
        .collect();
    assert!(
        interrupted.iter().any(|l| l.contains(&left[0])),
        "the pod left is named after the interruption: {}\n{}",
        r.stdout,
        r.stderr
    );
    assert!(
        interrupted.contains(&"interrupted: the drain stopped; cordoned nodes stay cordoned (undo with `kdrain uncordon n1`)"),
        "{}",
        r.stderr
    );
    assert!(
        interrupted.contains(
            &format!("pods left on node/n1: default/{} (blocked by web)", left[0]).as_str()
        ),
        "the pod left is named with the budget holding it: {}",
        r.stderr
    );
    let stopping = r.stderr.lines().position(|l| l.starts_with("stopping: "));
    let done = r
        .stderr
        .lines()
        .position(|l| l.starts_with("interrupted: "));
    assert!(
        stopping.is_some() && stopping < done,
        "the first Ctrl-C is acknowledged before the drain has stopped: {}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("unable to drain node"),
        "an interruption is not reported as a failed node: {}",
        r.stderr
    );
    // the README's Ctrl-C sample is this run's stderr from the first Ctrl-C on
    let from_stop: Vec<String> = r
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("stopping: "))
        .map(str::to_string)
        .collect();
    readme::keep(
        "ctrl-c",
        &from_stop,
        |l| mask(l, &["web"]),
        "ctrl_c_stops_cleanly",
    );
    assert!(c.cordoned("n1").await, "the node stays cordoned");
    let writes_before = c.all_writes();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        c.all_writes(),
        writes_before,
        "nothing is sent after the exit"
    );
    no_violations(&c);
}

/// Waits (bounded) until the file `path` contains `text`.
async fn wait_for_output(path: &std::path::Path, text: &str) {
    tokio::time::timeout(LIMIT, async {
        loop {
            if std::fs::read_to_string(path).is_ok_and(|s| s.contains(text)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {text:?} in {}", path.display()));
}

#[tokio::test]
async fn ctrl_c_with_json_output_ends_with_a_result_naming_every_pod_left() {
    let c = cluster(SLOW_STOP).await;
    let mut args = DRAIN.to_vec();
    args.extend(["-o", "json"]);
    let first = Background::start(&c, "first", &args);
    wait_for(&c, "n1", "evictions accepted, pods terminating", |pods| {
        pods.iter().any(terminating)
    })
    .await;
    signal(first.pid(), "INT");
    let r = first.finish().await;
    assert_eq!(r.code, 130, "{}\n{}", r.stdout, r.stderr);
    let lines: Vec<serde_json::Value> = r
        .out_lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["event"] == "stopping"),
        "the stop request is an event too: {}",
        r.stdout
    );
    let result = lines.last().expect("a result line");
    assert_eq!(result["event"], "result", "{}", r.stdout);
    assert_eq!(result["exit_code"], 130);
    assert_eq!(result["succeeded"], false);
    assert!(
        result["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("interrupted: the drain stopped")),
        "{result}"
    );
    // The report names every pod that had to go and is not gone, and stderr names them too.
    let pending: Vec<String> = result["report"]["nodes"][0]["pods"]
        .as_array()
        .expect("the report lists the pods")
        .iter()
        .filter(|p| {
            matches!(
                p["outcome"]["outcome"].as_str(),
                Some("blocked") | Some("failed")
            )
        })
        .map(|p| p["pod"]["name"].as_str().expect("pod name").to_string())
        .collect();
    assert!(!pending.is_empty(), "interrupted mid-way: {result}");
    for pod in &pending {
        assert!(
            r.stderr.contains(&format!("default/{pod} (")),
            "{pod} is named on stderr: {}",
            r.stderr
        );
    }
    // Every web pod still on n1 and not terminating was left, and is in the report.
    for p in pods_on(&c, "n1").await {
        if name(&p).starts_with("web-") && !terminating(&p) {
            assert!(
                pending.iter().any(|n| n == name(&p)),
                "{} is on n1 but not reported left: {pending:?}",
                name(&p)
            );
        }
    }
    assert!(c.cordoned("n1").await);
    no_violations(&c);
}

#[tokio::test]
async fn a_second_ctrl_c_quits_at_once_and_names_the_pods_left() {
    let c = cluster(SLOW_STOP).await;
    // Evictions hang for a long time: after the first Ctrl-C kdrain waits for their answers.
    c.sim.set_faults(vec![kubesim::Fault {
        verb: Some("create".into()),
        resource: Some("pods/eviction".into()),
        latency_ms: Some(30_000),
        ..kubesim::Fault::default()
    }]);
    let first = Background::start(&c, "first", &DRAIN);
    wait_for_output(&first.out, "evicting pod ").await;
    signal(first.pid(), "INT");
    wait_for_output(&first.err, "stopping: ").await;
    signal(first.pid(), "INT");
    let r = first.finish().await;
    assert_eq!(r.code, 130, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(
            "interrupted: quit at once; answers to requests in flight were not awaited; cordoned nodes stay cordoned (undo with `kdrain uncordon n1`)"
        ),
        "{}",
        r.stderr
    );
    let left: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("pods left on node/n1: "))
        .collect();
    assert_eq!(left.len(), 1, "{}", r.stderr);
    assert_eq!(
        left[0].matches("default/web-").count(),
        4,
        "no eviction was answered, so all four web pods are named: {}",
        r.stderr
    );
    assert!(c.cordoned("n1").await);
}

/// Two nodes whose web and db pods share one budget each.
const SHARED: &str = r#"
nodes: [{name: n1}, {name: n2}, {name: n3}, {name: n4}]
workloads:
  - {kind: Deployment, name: web, replicas: 6, nodes: [n1, n2], terminationSeconds: 0.2, readySeconds: 0.3}
  - {kind: StatefulSet, name: db, replicas: 4, nodes: [n1, n2], terminationSeconds: 0.2, readySeconds: 0.3}
  - {kind: DaemonSet, name: agent, namespace: kube-system}
pdbs:
  - {name: web, selector: {app: web}, maxUnavailable: 1}
  - {name: db, selector: {app: db}, minAvailable: 3}
"#;

#[tokio::test]
async fn two_processes_on_the_same_node_both_succeed_without_harm() {
    let c = cluster(SHARED).await;
    let a = Background::start(&c, "a", &DRAIN);
    let b = Background::start(&c, "b", &DRAIN);
    let (a, b) = (a.finish().await, b.finish().await);
    for r in [&a, &b] {
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
        assert!(r.out_lines().contains(&"node/n1 drained"), "{}", r.stdout);
        assert!(!r.stderr.contains("error:"), "{}", r.stderr);
    }
    assert_eq!(only_daemonsets_left(&c, "n1").await, Vec::<String>::new());
    // Between them they report every pod of n1 evicted or gone, and nothing twice per process.
    for r in [&a, &b] {
        let evicted: Vec<&str> = r
            .out_lines()
            .into_iter()
            .filter(|l| l.ends_with(" evicted") || l.ends_with(" deleted"))
            .collect();
        let unique: std::collections::HashSet<&&str> = evicted.iter().collect();
        assert_eq!(unique.len(), evicted.len(), "{}", r.stdout);
    }
    assert!(c.cordoned("n1").await);
    no_violations(&c);
}

#[tokio::test]
async fn two_processes_on_two_nodes_sharing_budgets_never_break_them() {
    let c = cluster(SHARED).await;
    let a = Background::start(&c, "a", &DRAIN);
    let b = Background::start(
        &c,
        "b",
        &["drain", "n2", "--ignore-daemonsets", "--timeout=40s"],
    );
    let (a, b) = (a.finish().await, b.finish().await);
    for (r, node) in [(&a, "n1"), (&b, "n2")] {
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
        assert!(
            r.out_lines()
                .contains(&format!("node/{node} drained").as_str()),
            "{}",
            r.stdout
        );
        assert_eq!(only_daemonsets_left(&c, node).await, Vec::<String>::new());
    }
    no_violations(&c);
}
