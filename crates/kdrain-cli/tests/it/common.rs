//! Shared test plumbing: an in-process kubesim, a kubeconfig for it in a temp dir, and a way
//! to run the real `kdrain` binary against it with a bounded wait.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;
use kubesim::{Scenario, Sim};

/// The longest any single `kdrain` run may take in a test.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// A small cluster: n1 and n2 in pool a, n3 in pool b; on n1 a web pod (ReplicaSet), a cache
/// pod with emptyDir, a bare pod, a DaemonSet pod and a mirror pod.
pub const BASIC: &str = r#"
nodes:
  - {name: n1, labels: {pool: a}}
  - {name: n2, labels: {pool: a}}
  - {name: n3, labels: {pool: b}}
workloads:
  - {kind: Deployment, name: web, replicas: 2, labels: {app: web}, nodes: [n1, n2], terminationSeconds: 0.2, readySeconds: 0.2}
  - {kind: Deployment, name: cache, replicas: 1, labels: {app: cache}, nodes: [n1], emptyDir: true, terminationSeconds: 0.1, readySeconds: 0.2}
  - {kind: DaemonSet, name: fluentd, namespace: kube-system, labels: {app: fluentd}}
  - {kind: Pod, name: bare-pod, labels: {app: bare}, nodes: [n1], terminationSeconds: 0.1}
mirrorPods:
  - {name: kube-apiserver-n1, namespace: kube-system, node: n1}
"#;

/// kubectl's flags that let the BASIC node drain.
pub const ALL_FLAGS: [&str; 3] = ["--force", "--ignore-daemonsets", "--delete-emptydir-data"];

/// What one `kdrain` run produced.
#[derive(Debug)]
pub struct Run {
    /// Exit status.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Non-empty stdout lines.
    pub fn out_lines(&self) -> Vec<&str> {
        self.stdout.lines().filter(|l| !l.is_empty()).collect()
    }
    /// Non-empty stderr lines.
    pub fn err_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| !l.is_empty()).collect()
    }
}

/// A running simulator with a kubeconfig file pointing at it.
pub struct Cluster {
    /// The simulator.
    pub sim: Sim,
    /// Keeps the temp dir alive.
    pub dir: tempfile::TempDir,
    /// The kubeconfig path.
    pub kubeconfig: PathBuf,
}

/// Starts kubesim with `yaml` and writes its kubeconfig.
pub async fn cluster(yaml: &str) -> Cluster {
    let scenario = Scenario::from_yaml_str(yaml).expect("test scenario parses");
    let sim = Sim::start(scenario).await.expect("kubesim starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("write kubeconfig");
    let c = Cluster {
        sim,
        dir,
        kubeconfig,
    };
    c.wait_budgets_processed().await;
    c.sim.reset_requests();
    c
}

/// Runs `kdrain ARGS` with no kubeconfig flag added, and a bounded wait.
pub async fn run_raw(args: Vec<String>, env: Vec<(String, String)>) -> Run {
    let job = tokio::task::spawn_blocking(move || {
        let mut cmd = assert_cmd::Command::cargo_bin("kdrain").expect("kdrain binary");
        cmd.args(&args).timeout(RUN_LIMIT).env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run kdrain")
    });
    let out = tokio::time::timeout(RUN_LIMIT + Duration::from_secs(5), job)
        .await
        .expect("kdrain finished in time")
        .expect("runner thread");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `kdrain drain n1 --kubeconfig PATH`, for tests of bad or unusable kubeconfig files.
pub async fn drain_n1_with_kubeconfig(path: &std::path::Path) -> Run {
    run_raw(
        vec![
            "drain".into(),
            "n1".into(),
            "--kubeconfig".into(),
            path.display().to_string(),
        ],
        vec![],
    )
    .await
}

impl Cluster {
    /// Runs `kdrain ARGS --kubeconfig <this cluster>`.
    pub async fn run(&self, args: &[&str]) -> Run {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.push("--kubeconfig".into());
        all.push(self.kubeconfig.display().to_string());
        run_raw(all, Vec::new()).await
    }

    /// A client for assertions.
    pub fn client(&self) -> kube::Client {
        self.sim.client()
    }

    /// Whether a node is unschedulable.
    pub async fn cordoned(&self, node: &str) -> bool {
        let api: Api<Node> = Api::all(self.client());
        let n = api.get(node).await.expect("node exists");
        n.spec.and_then(|s| s.unschedulable).unwrap_or(false)
    }

    /// `namespace/name/uid` of every pod on a node, sorted.
    pub async fn pods_on(&self, node: &str) -> Vec<String> {
        let api: Api<Pod> = Api::all(self.client());
        let list = api
            .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
            .await
            .expect("list pods");
        let mut v: Vec<String> = list
            .items
            .iter()
            .map(|p| {
                format!(
                    "{}/{}/{}",
                    p.metadata.namespace.clone().unwrap_or_default(),
                    p.metadata.name.clone().unwrap_or_default(),
                    p.metadata.uid.clone().unwrap_or_default()
                )
            })
            .collect();
        v.sort();
        v
    }

    /// Write requests (patch, create, update, delete) the server accepted (2xx).
    pub fn accepted_writes(&self) -> Vec<String> {
        self.writes(|code| (200..300).contains(&code))
    }

    /// All write requests, whatever the answer.
    pub fn all_writes(&self) -> Vec<String> {
        self.writes(|_| true)
    }

    /// Write requests whose answer `code` passes, as `verb resource/sub code xN`.
    fn writes(&self, code: impl Fn(u16) -> bool) -> Vec<String> {
        self.sim
            .requests()
            .into_iter()
            .filter(|r| {
                matches!(
                    r.verb.as_str(),
                    "patch" | "create" | "update" | "delete" | "deletecollection"
                ) && r.resource != "selfsubjectaccessreviews" // a question, it stores nothing
            })
            .filter(|r| code(r.code))
            .map(|r| {
                format!(
                    "{} {}/{} {} x{}",
                    r.verb, r.resource, r.subresource, r.code, r.count
                )
            })
            .collect()
    }

    /// How many requests matched verb, resource and subresource.
    pub fn count(&self, verb: &str, resource: &str, subresource: &str) -> u64 {
        self.sim
            .requests()
            .iter()
            .filter(|r| r.verb == verb && r.resource == resource && r.subresource == subresource)
            .map(|r| r.count)
            .sum()
    }

    /// Waits until the disruption controller has set every budget's status.
    async fn wait_budgets_processed(&self) {
        use k8s_openapi::api::policy::v1::PodDisruptionBudget;
        let api: Api<PodDisruptionBudget> = Api::all(self.client());
        let wait = async {
            loop {
                let list = api
                    .list(&ListParams::default())
                    .await
                    .expect("list budgets");
                if list.items.iter().all(|p| {
                    let g = p.metadata.generation.unwrap_or(0);
                    p.status
                        .as_ref()
                        .and_then(|s| s.observed_generation)
                        .is_some_and(|o| o >= g)
                }) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("budgets processed in time");
    }
}

/// Replaces generated pod-name suffixes (`web-7d4b9c-abcde` -> `web-*`) for the given prefixes.
pub fn mask(line: &str, prefixes: &[&str]) -> String {
    line.split(' ')
        .map(|word| {
            for p in prefixes {
                for lead in ["", "pod/", "default/", "kube-system/"] {
                    let full = format!("{lead}{p}-");
                    if let Some(rest) = word.strip_prefix(&full) {
                        let tail: String = rest
                            .chars()
                            .skip_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                            .collect();
                        return format!("{full}*{tail}");
                    }
                }
            }
            word.to_string()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The stdout lines with the line order of parallel evictions normalised.
pub fn sorted(lines: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// How many of `lines` start with `prefix`.
pub fn count_starting(lines: &[&str], prefix: &str) -> usize {
    lines.iter().filter(|l| l.starts_with(prefix)).count()
}

/// How many of `lines` end with `suffix`.
pub fn count_ending(lines: &[&str], suffix: &str) -> usize {
    lines.iter().filter(|l| l.ends_with(suffix)).count()
}
