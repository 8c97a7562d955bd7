//! The installed `kubectl` against kubesim: cordon, uncordon, get and drain with its flags.
//! Every run uses its own HOME, kubeconfig and discovery cache directory.

use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;
use kubesim::Sim;

use crate::common::{eventually, sim};

/// Result of one kubectl run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn out_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// The installed kubectl with its own HOME, kubeconfig and cache directory.
pub struct Kubectl {
    dir: tempfile::TempDir,
}

impl Kubectl {
    pub fn new(s: &Sim) -> Kubectl {
        let dir = tempfile::tempdir().unwrap();
        s.write_kubeconfig(&dir.path().join("kubeconfig")).unwrap();
        Kubectl { dir }
    }

    /// kubectl acting as the user of `token` (kubectl sends tokens over HTTPS only).
    pub fn with_token(s: &Sim, token: &str) -> Kubectl {
        let dir = tempfile::tempdir().unwrap();
        s.write_kubeconfig_with_token(&dir.path().join("kubeconfig"), token)
            .unwrap();
        Kubectl { dir }
    }

    /// A file in this kubectl's directory with `text` in it; returns its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }

    /// `kubectl ARGS` with this kubectl's kubeconfig, cache and HOME, not started (for commands
    /// that run until stopped, such as `get -w`).
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(self.dir.path().join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        let kc = self.dir.path().join("kubeconfig");
        let cache = self.dir.path().join("cache");
        let mut cmd = tokio::process::Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&kc)
            .arg("--cache-dir")
            .arg(&cache)
            .args(args);
        cmd.env("HOME", self.dir.path()).env_remove("KUBECONFIG");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .expect("kubectl finished in time")
            .expect("kubectl is installed and on PATH");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `kubectl drain n1` with the flags that let it evict every kind of pod, then `extra`.
    async fn drain_n1_with_all_flags(&self, extra: &[&str]) -> Run {
        let mut args = vec![
            "drain",
            "n1",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--force",
        ];
        args.extend_from_slice(extra);
        self.run(&args).await
    }
}

/// How many `evicting pod ...` lines end with `suffix`.
fn evictions_ending(lines: &[&str], suffix: &str) -> usize {
    lines
        .iter()
        .filter(|l| l.starts_with("evicting pod ") && l.ends_with(suffix))
        .count()
}

const CLUSTER: &str = r#"
nodes: [{name: n1, labels: {pool: a}}, {name: n2, labels: {pool: a}}, {name: n3, labels: {pool: b}}]
workloads:
  - {kind: Deployment, name: web, replicas: 2, labels: {app: web}, nodes: [n1, n2], terminationSeconds: 0.3, readySeconds: 0.3}
  - {kind: ReplicaSet, name: cache, replicas: 2, labels: {app: cache}, nodes: [n1, n2], emptyDir: true, terminationSeconds: 0.2}
  - {kind: Pod, name: bare-pod, labels: {app: bare}, nodes: [n1]}
  - {kind: DaemonSet, name: fluentd, namespace: kube-system, labels: {app: fluentd}}
mirrorPods: [{name: kube-apiserver-n1, namespace: kube-system, node: n1}]
pdbs: [{name: web, selector: {app: web}, maxUnavailable: 1}]
"#;

async fn pods_on(s: &Sim, node: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::all(s.client());
    pods.list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .unwrap()
        .items
}

fn names(pods: &[Pod]) -> Vec<String> {
    let mut v: Vec<String> = pods
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    v.sort();
    v
}

async fn unschedulable(s: &Sim, node: &str) -> bool {
    let nodes: Api<Node> = Api::all(s.client());
    nodes.get(node).await.unwrap().spec.unwrap().unschedulable == Some(true)
}

fn count(s: &Sim, verb: &str, resource: &str, sub: &str) -> u64 {
    s.requests()
        .iter()
        .filter(|r| r.verb == verb && r.resource == resource && r.subresource == sub)
        .map(|r| r.count)
        .sum()
}

#[tokio::test]
async fn cordon_uncordon_and_get() {
    let s = sim(CLUSTER).await;
    let k = Kubectl::new(&s);
    let r = k.run(&["cordon", "n1"]).await;
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "node/n1 cordoned\n"),
        "{}",
        r.stderr
    );
    assert!(unschedulable(&s, "n1").await);
    let r = k.run(&["cordon", "n1"]).await;
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "node/n1 already cordoned\n")
    );
    let r = k.run(&["uncordon", "n1"]).await;
    assert_eq!((r.code, r.stdout.as_str()), (0, "node/n1 uncordoned\n"));
    assert!(!unschedulable(&s, "n1").await);
    let r = k.run(&["uncordon", "n1"]).await;
    assert_eq!(r.stdout, "node/n1 already uncordoned\n");
    let r = k.run(&["get", "nodes", "-o", "name"]).await;
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "node/n1\nnode/n2\nnode/n3\n")
    );
    let r = k
        .run(&[
            "get",
            "pods",
            "-n",
            "kube-system",
            "-o",
            "jsonpath={.items[*].spec.nodeName}",
        ])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.split(' ').filter(|n| *n == "n1").count(),
        2,
        "fluentd and the mirror pod: {}",
        r.stdout
    );
    let r = k
        .run(&[
            "get",
            "pdb",
            "web",
            "-o",
            "jsonpath={.status.disruptionsAllowed}",
        ])
        .await;
    assert_eq!(r.stdout, "1");
    let r = k.run(&["get", "node", "nx"]).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("nodes \"nx\" not found"), "{}", r.stderr);
}

#[tokio::test]
async fn drain_with_all_flags_evicts_everything_but_daemonsets_and_mirror_pods() {
    let s = sim(CLUSTER).await;
    let k = Kubectl::new(&s);
    let before = names(&pods_on(&s, "n1").await);
    let r = k.drain_n1_with_all_flags(&[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let lines = r.out_lines();
    assert_eq!(lines.first(), Some(&"node/n1 cordoned"));
    assert_eq!(lines.last(), Some(&"node/n1 drained"));
    let evicted: Vec<&str> = before
        .iter()
        .map(|s| s.as_str())
        .filter(|n| !n.starts_with("fluentd") && !n.starts_with("kube-apiserver"))
        .collect();
    assert_eq!(evicted.len(), 3);
    for n in &evicted {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("evicting pod ") && l.ends_with(&format!("/{n}"))),
            "{n}: {lines:?}"
        );
        assert!(
            lines.contains(&format!("pod/{n} evicted").as_str()),
            "{n}: {lines:?}"
        );
    }
    assert!(r.stderr.contains("Warning: "), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("deleting Pods that declare no controller: default/bare-pod"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("ignoring DaemonSet-managed Pods: kube-system/fluentd-"),
        "{}",
        r.stderr
    );
    let left = names(&pods_on(&s, "n1").await);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left.iter().any(|n| n.starts_with("fluentd-"))
            && left.contains(&"kube-apiserver-n1".to_string())
    );
    assert!(unschedulable(&s, "n1").await);
    assert!(s.violations().is_empty(), "{:?}", s.violations());
    assert_eq!(count(&s, "create", "pods", "eviction"), 3);
}

#[tokio::test]
async fn drain_without_flags_refuses_and_only_cordons() {
    let s = sim(CLUSTER).await;
    let k = Kubectl::new(&s);
    let r = k.run(&["drain", "n1"]).await;
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "node/n1 cordoned\n");
    assert!(r.stderr.contains("cannot delete Pods that declare no controller (use --force to override): default/bare-pod"), "{}", r.stderr);
    assert!(r.stderr.contains("cannot delete Pods with local storage (use --delete-emptydir-data to override): default/cache-"), "{}", r.stderr);
    assert!(r.stderr.contains("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): kube-system/fluentd-"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("There are pending nodes to be drained:\n n1\n"),
        "{}",
        r.stderr
    );
    assert_eq!(count(&s, "create", "pods", "eviction"), 0);
    assert_eq!(pods_on(&s, "n1").await.len(), 5);
    assert!(s.violations().is_empty());
}

#[tokio::test]
async fn drain_with_pod_selector_and_disable_eviction() {
    let s = sim(CLUSTER).await;
    let k = Kubectl::new(&s);
    let r = k.run(&["drain", "n1", "--pod-selector", "app=web"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let web: Vec<String> = names(&pods_on(&s, "n1").await)
        .into_iter()
        .filter(|n| n.starts_with("web-"))
        .collect();
    assert!(web.is_empty());
    assert_eq!(count(&s, "create", "pods", "eviction"), 1);
    let r = k
        .run(&[
            "drain",
            "n2",
            "--disable-eviction",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
        ])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = r.out_lines();
    assert!(
        !lines.iter().any(|l| l.starts_with("evicting")),
        "{lines:?}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.ends_with(" deleted")).count(),
        2,
        "{lines:?}"
    );
    assert_eq!(lines.last(), Some(&"node/n2 drained"));
    assert_eq!(count(&s, "delete", "pods", ""), 2);
    assert_eq!(count(&s, "create", "pods", "eviction"), 1);
    assert_eq!(
        names(&pods_on(&s, "n2").await).len(),
        1,
        "only the DaemonSet pod is left"
    );
    assert!(s.violations().is_empty(), "{:?}", s.violations());
}

#[tokio::test]
async fn dry_runs_change_nothing() {
    let s = sim(CLUSTER).await;
    let k = Kubectl::new(&s);
    let before = names(&pods_on(&s, "n1").await);
    let r = k.drain_n1_with_all_flags(&["--dry-run=client"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = r.out_lines();
    assert_eq!(lines.first(), Some(&"node/n1 cordoned (dry run)"));
    assert_eq!(lines.last(), Some(&"node/n1 drained (dry run)"));
    assert_eq!(evictions_ending(&lines, " (dry run)"), 3);
    assert_eq!(
        count(&s, "patch", "nodes", "") + count(&s, "create", "pods", "eviction"),
        0
    );
    let r = k.drain_n1_with_all_flags(&["--dry-run=server"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = r.out_lines();
    assert_eq!(lines.first(), Some(&"node/n1 cordoned (server dry run)"));
    assert_eq!(lines.last(), Some(&"node/n1 drained (server dry run)"));
    assert_eq!(evictions_ending(&lines, " (server dry run)"), 3);
    assert_eq!(count(&s, "create", "pods", "eviction"), 3);
    assert!(!unschedulable(&s, "n1").await);
    assert_eq!(names(&pods_on(&s, "n1").await), before);
    assert!(s.violations().is_empty());
}

#[tokio::test]
async fn drain_passes_the_grace_period() {
    let s = sim("nodes: [{name: n1}, {name: n2}]\nworkloads: [{kind: Deployment, name: slow, replicas: 1, nodes: [n1], terminationSeconds: 600}]\n").await;
    let k = Kubectl::new(&s);
    let pods: Api<Pod> = Api::namespaced(s.client(), "default");
    let name = names(&pods_on(&s, "n1").await).remove(0);
    let watch = async {
        eventually("the pod to terminate with grace 1", || async {
            pods.get_opt(&name)
                .await
                .unwrap()
                .and_then(|p| p.metadata.deletion_grace_period_seconds)
                .filter(|g| *g == 1)
        })
        .await
    };
    let (r, grace) = tokio::join!(k.run(&["drain", "n1", "--grace-period=1"]), watch);
    assert_eq!(grace, 1);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(&format!("pod/{name} evicted")));
}

#[tokio::test]
async fn drain_times_out_on_a_budget_that_never_allows() {
    let s = sim("nodes: [{name: n1}, {name: n2}]\nworkloads: [{kind: Deployment, name: one, replicas: 1, nodes: [n1]}]\npdbs: [{name: one, selector: {app: one}, minAvailable: 1}]\n").await;
    let k = Kubectl::new(&s);
    let r = k.run(&["drain", "n1", "--timeout=3s"]).await;
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget."), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("There are pending pods in node \"n1\" when an error occurred"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("There are pending nodes to be drained:\n n1\n"),
        "{}",
        r.stderr
    );
    assert_eq!(pods_on(&s, "n1").await.len(), 1);
    assert!(s.violations().is_empty());
}

#[tokio::test]
async fn drain_by_label_does_nodes_one_after_the_other() {
    let s = sim(CLUSTER).await;
    let k = Kubectl::new(&s);
    let r = k
        .run(&[
            "drain",
            "-l",
            "pool=a",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--force",
        ])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = r.out_lines();
    assert_eq!(&lines[..2], &["node/n1 cordoned", "node/n2 cordoned"]);
    let d1 = lines.iter().position(|l| *l == "node/n1 drained").unwrap();
    let d2 = lines.iter().position(|l| *l == "node/n2 drained").unwrap();
    assert!(d1 < d2 && d2 == lines.len() - 1);
    let n1_pods: Vec<String> = names(&pods_on(&s, "n1").await);
    let n2_pods: Vec<String> = names(&pods_on(&s, "n2").await);
    assert_eq!((n1_pods.len(), n2_pods.len()), (2, 1));
    // Replacements went to the only schedulable node.
    let n3 = names(&pods_on(&s, "n3").await);
    assert_eq!(
        n3.iter().filter(|n| n.starts_with("web-")).count(),
        2,
        "{n3:?}"
    );
    assert!(s.violations().is_empty(), "{:?}", s.violations());
}

#[tokio::test]
async fn budget_blocks_until_replacements_are_ready_then_drain_completes() {
    let s = sim(
        r#"
nodes: [{name: n1}, {name: n2}]
workloads: [{kind: Deployment, name: api, replicas: 2, labels: {app: api}, nodes: [n1], terminationSeconds: 0.2, readySeconds: 1}]
pdbs: [{name: api, selector: {app: api}, maxUnavailable: 1}]
"#,
    )
    .await;
    let k = Kubectl::new(&s);
    let r = k.run(&["drain", "n1"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget."),
        "{}",
        r.stderr
    );
    let lines = r.out_lines();
    assert_eq!(
        lines.iter().filter(|l| l.ends_with(" evicted")).count(),
        2,
        "{lines:?}"
    );
    assert_eq!(lines.last(), Some(&"node/n1 drained"));
    assert!(pods_on(&s, "n1").await.is_empty());
    assert_eq!(pods_on(&s, "n2").await.len(), 2);
    assert!(s.violations().is_empty(), "{:?}", s.violations());
    assert!(
        count(&s, "create", "pods", "eviction") >= 3,
        "one 429 at least"
    );
}

#[tokio::test]
async fn get_prints_kubectl_tables() {
    let s = sim(CLUSTER).await;
    let k = Kubectl::new(&s);
    k.run(&["cordon", "n2"]).await;
    let r = k.run(&["get", "nodes"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = r.out_lines();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, vec!["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    let n2: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!((n2[0], n2[1]), ("n2", "Ready,SchedulingDisabled"));
    let r = k.run(&["get", "pods", "-o", "wide"]).await;
    let header: Vec<&str> = r.out_lines()[0].split_whitespace().collect();
    // the real server's wide pod columns
    assert_eq!(
        header,
        vec![
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ]
    );
    let bare: Vec<&str> = r
        .out_lines()
        .iter()
        .find(|l| l.starts_with("bare-pod"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        (bare[1], bare[2], bare[6], bare[7], bare[8]),
        ("1/1", "Running", "n1", "<none>", "<none>")
    );
    let r = eventually("deployment status", || async {
        let r = k.run(&["get", "deployment", "web", "--no-headers"]).await;
        r.stdout
            .split_whitespace()
            .nth(1)
            .filter(|c| *c == "2/2")
            .map(|_| r.stdout.clone())
    })
    .await;
    assert!(r.starts_with("web "));
    let r = k.run(&["get", "pdb", "-A"]).await;
    let row: Vec<&str> = r.out_lines()[1].split_whitespace().collect();
    assert_eq!(row, vec!["default", "web", "N/A", "1", "1", row[5]]);
}

/// A scenario's pods are dated as started `readySeconds` ago; the nodes, namespaces, budgets and
/// workloads they belong to are never younger than them (kubectl's AGE column).
#[tokio::test]
async fn no_pod_is_older_than_its_node_or_owner() {
    use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
    let s = sim(r#"
nodes: [{name: n1}, {name: n2}]
workloads:
  - {kind: Deployment, name: slow, replicas: 2, nodes: [n1, n2], readySeconds: 30}
  - {kind: Deployment, name: quick, replicas: 1, nodes: [n1], readySeconds: 2}
"#)
    .await;
    let client = s.client();
    let created = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        m.creation_timestamp.clone().expect("creationTimestamp").0
    };
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    let mut owners: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta> = Vec::new();
    owners.extend(
        Api::<Deployment>::all(client.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|d| d.metadata),
    );
    owners.extend(
        Api::<ReplicaSet>::all(client.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|r| r.metadata),
    );
    let oldest_pod = pods
        .items
        .iter()
        .map(|p| created(&p.metadata))
        .min()
        .unwrap();
    let slow_started = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(30);
    assert!(
        oldest_pod <= slow_started,
        "pods are dated back: {oldest_pod}"
    );
    for n in &nodes.items {
        assert!(created(&n.metadata) <= oldest_pod, "{:?}", n.metadata.name);
    }
    for o in &owners {
        assert!(created(o) <= oldest_pod, "{:?}", o.name);
    }
}
