//! The kubectl commands people type every day (issue 15), run against kubesim and against the
//! real control plane with the same scenario, the same kubectl and the same steps; each step's
//! outcome (exit code and the meaningful shape of its output, with names, ages, uids and IPs
//! normalised) is compared. A difference either is a kubesim defect (fix kubesim, with a test) or
//! is listed in `crates/kubesim/README.md` ("Known differences from the real control plane") and
//! here in [`Step::known`], with the reason; an unlisted difference fails the tier.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::LazyLock;
use std::time::Duration;

use anyhow::{Context, Result};
use regex::Regex;

use crate::cluster::{self, UpOptions, client_for};
use crate::materialise::materialise;
use crate::pki::Pki;

/// Three empty nodes: the commands create everything else.
const SCENARIO: &str = "nodes: [{name: n1}, {name: n2}, {name: n3}]\n";

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: nginx
          image: nginx
";

/// The same Deployment with a misspelt field: kubectl's validation is `Strict` by default.
const BAD: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: bad
spec:
  replicaz: 3
  selector:
    matchLabels: {app: bad}
  template:
    metadata:
      labels: {app: bad}
    spec:
      containers:
        - name: nginx
          image: nginx
";

/// What of a command's output is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Every line (normalised).
    Whole,
    /// The last line of stdout (progress lines before it depend on timing).
    LastLine,
    /// The set of distinct normalised lines (the order depends on timing).
    LineSet,
    /// The same, with pod and node names made `<pod>` and `<node>`: which pod lands on which
    /// node is the scheduler's choice, at random among equals on a real cluster.
    AnyPlacement,
    /// `explain`: KIND, VERSION and the field names with their types.
    Fields,
    /// `get events`: the set of (type, reason, object kind) triples.
    Events,
}

/// One kubectl command of the script.
#[derive(Debug, Clone)]
pub struct Step {
    /// Short id.
    pub id: &'static str,
    /// kubectl arguments; `{web}` and `{bad}` stand for the manifests' paths.
    pub args: Vec<&'static str>,
    /// What is compared.
    pub shape: Shape,
    /// When kubesim is known to answer differently: the reason (the same as in kubesim's README).
    pub known: Option<&'static str>,
}

/// The reasons of the known differences (also in crates/kubesim/README.md).
const KNOWN_SERVICES: &str = "kubesim serves no Services, so `get all` has no `service/kubernetes`";
const KNOWN_KWOK_VERSION: &str = "kwok's nodes report kwok's version as their kubelet version (`kwok-0.7.0`), kubesim's the version it serves";
const KNOWN_EVENTS: &str = "kwok is not a kubelet and writes no `Killing` events (a real kubelet and kubesim do); kubesim has no node lifecycle controller and writes no `RegisteredNode`";

impl Step {
    fn known(mut self, why: &'static str) -> Step {
        self.known = Some(why);
        self
    }
}

fn step(id: &'static str, shape: Shape, args: &[&'static str]) -> Step {
    Step {
        id,
        args: args.to_vec(),
        shape,
        known: None,
    }
}

/// The script, in order: set up a workload and a budget, look around, drain, look again.
pub fn steps() -> Vec<Step> {
    use Shape::*;
    vec![
        step("apply", Whole, &["apply", "-f", "{web}"]),
        step("apply-unknown-field", Whole, &["apply", "-f", "{bad}"]),
        step(
            "create-deployment",
            Whole,
            &[
                "create",
                "deployment",
                "api",
                "--image=nginx",
                "--replicas=2",
            ],
        ),
        step(
            "can-i-evict",
            Whole,
            &["auth", "can-i", "create", "pods", "--subresource=eviction"],
        ),
        step(
            "can-i-pods/eviction",
            Whole,
            &["auth", "can-i", "create", "pods/eviction"],
        ),
        step(
            "rollout-status",
            LastLine,
            &["rollout", "status", "deployment/web", "--timeout=120s"],
        ),
        // After the rollout: a budget created before its pods exist gets a NoPods event.
        step(
            "create-pdb",
            Whole,
            &[
                "create",
                "pdb",
                "web",
                "--selector=app=web",
                // Two: whatever the scheduler put on n1 (at most 2 of 4), the drain needs no retry.
                "--max-unavailable=2",
            ],
        ),
        step(
            "scale",
            Whole,
            &["scale", "deployment", "web", "--replicas=4"],
        ),
        step(
            "rollout-status-scaled",
            LastLine,
            &["rollout", "status", "deployment/web", "--timeout=120s"],
        ),
        step(
            "wait-pdb",
            Whole,
            &[
                "wait",
                "--for=jsonpath={.status.disruptionsAllowed}=2",
                "pdb/web",
                "--timeout=60s",
            ],
        ),
        step("get-deployment", Whole, &["get", "deployment", "web"]),
        step("get-pdb", Whole, &["get", "pdb"]),
        step("get-all", LineSet, &["get", "all"]).known(KNOWN_SERVICES),
        step(
            "get-pods-wide",
            AnyPlacement,
            &["get", "pods", "-o", "wide"],
        ),
        step(
            "describe-deployment",
            Whole,
            &["describe", "deployment", "web"],
        ),
        step("explain-pods", Fields, &["explain", "pods"]),
        step(
            "drain",
            AnyPlacement,
            &[
                "drain",
                "n1",
                "--ignore-daemonsets",
                "--delete-emptydir-data",
                "--force",
                "--timeout=120s",
            ],
        ),
        step(
            "rollout-status-after-drain",
            LastLine,
            &["rollout", "status", "deployment/web", "--timeout=120s"],
        ),
        step("get-nodes", Whole, &["get", "nodes"]).known(KNOWN_KWOK_VERSION),
        step("get-events", Events, &["get", "events"]).known(KNOWN_EVENTS),
    ]
}

/// One command's result.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Exit code.
    pub code: i32,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl Answer {
    /// What is compared: the exit code and the shape of the output (stderr too when it failed).
    pub fn shape(&self, shape: Shape) -> (i32, Vec<String>) {
        let text = if self.code == 0 {
            self.stdout.clone()
        } else {
            format!("{}{}", self.stdout, self.stderr)
        };
        (self.code, shape_of(&text, shape))
    }
}

static RS_POD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([a-z][a-z0-9-]*?)-[bcdfghjklmnpqrstvwxz2456789]{6,10}-[bcdfghjklmnpqrstvwxz2456789]{5}\b").unwrap()
});
static RS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([a-z][a-z0-9-]*?)-[bcdfghjklmnpqrstvwxz2456789]{6,10}\b").unwrap()
});
static POD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[a-z][a-z0-9-]*-<hash>-<id>").unwrap());
static NODE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bn\d+\b").unwrap());
static AGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(^|\s)(\d+(\.\d+)?[smhd])+(\d+[smh])?(\s|$)").unwrap());
static IP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b").unwrap());
static UID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b").unwrap()
});
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}\b")
        .unwrap()
});

/// Names with generated parts, ages, uids, IPs and dates replaced; runs of blanks made one.
pub fn normalise_line(line: &str) -> String {
    let s = UID.replace_all(line, "<uid>");
    let s = DATE.replace_all(&s, "<date>");
    let s = RS_POD.replace_all(&s, "$1-<hash>-<id>");
    let s = RS.replace_all(&s, "$1-<hash>");
    let s = IP.replace_all(&s, "<ip>");
    // Twice: adjacent ages share the blank between them.
    let s = AGE.replace_all(&s, "$1<age>$5");
    let s = AGE.replace_all(&s, "$1<age>$5");
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn shape_of(text: &str, shape: Shape) -> Vec<String> {
    let mut lines = text.lines().map(normalise_line).filter(|l| !l.is_empty());
    match shape {
        Shape::Whole => lines.collect(),
        Shape::LastLine => lines.next_back().into_iter().collect(),
        Shape::LineSet => lines.collect::<BTreeSet<_>>().into_iter().collect(),
        Shape::AnyPlacement => lines
            .map(|l| {
                NODE.replace_all(&POD.replace_all(&l, "<pod>"), "<node>")
                    .into_owned()
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        Shape::Fields => {
            let mut out = Vec::new();
            let mut in_fields = false;
            for l in text.lines() {
                if l.starts_with("KIND:") || l.starts_with("VERSION:") {
                    out.push(normalise_line(l));
                } else if l.starts_with("FIELDS:") {
                    in_fields = true;
                } else if in_fields && l.starts_with("  ") && !l.starts_with("    ") {
                    out.push(normalise_line(l));
                }
            }
            out
        }
        Shape::Events => {
            let mut set = BTreeSet::new();
            let mut first = true;
            for l in text.lines() {
                if std::mem::take(&mut first) && l.starts_with("LAST SEEN") {
                    continue;
                }
                // LAST SEEN, TYPE, REASON, OBJECT, MESSAGE.
                let cols: Vec<&str> = l.split_whitespace().collect();
                if cols.len() >= 4 {
                    let kind = cols[3].split('/').next().unwrap_or("");
                    set.insert(format!("{} {} {kind}", cols[1], cols[2]));
                }
            }
            set.into_iter().collect()
        }
    }
}

/// A kubectl with its own HOME, kubeconfig and discovery cache.
struct Kubectl {
    program: PathBuf,
    dir: PathBuf,
}

impl Kubectl {
    fn new(program: &Path, dir: PathBuf, kubeconfig: &str) -> Result<Kubectl> {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("kubeconfig"), kubeconfig)?;
        std::fs::write(dir.join("web.yaml"), WEB)?;
        std::fs::write(dir.join("bad.yaml"), BAD)?;
        Ok(Kubectl {
            program: program.to_path_buf(),
            dir,
        })
    }

    async fn run(&self, args: &[&str]) -> Result<Answer> {
        let web = self.dir.join("web.yaml").display().to_string();
        let bad = self.dir.join("bad.yaml").display().to_string();
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("{web}", &web).replace("{bad}", &bad))
            .collect();
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.arg("--kubeconfig")
            .arg(self.dir.join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .args(&args)
            .env("HOME", &self.dir)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(180), cmd.output())
            .await
            .with_context(|| format!("kubectl {} did not finish in 180 s", args.join(" ")))?
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        // The files' paths differ between the two runs.
        let dir = self.dir.display().to_string();
        let text = |b: &[u8]| String::from_utf8_lossy(b).replace(&dir, "<dir>");
        Ok(Answer {
            code: out.status.code().unwrap_or(-1),
            stdout: text(&out.stdout),
            stderr: text(&out.stderr),
        })
    }

    async fn script(&self, steps: &[Step]) -> Result<(String, Vec<Answer>)> {
        let version = self.run(&["version"]).await?;
        let mut out = Vec::new();
        for s in steps {
            out.push(self.run(&s.args).await?);
        }
        Ok((version.stdout.lines().collect::<Vec<_>>().join("; "), out))
    }
}

/// Run the script on kubesim and on a fresh real control plane; returns the report section and
/// the unexplained differences.
pub async fn run(kubectl: &Path, up: &UpOptions, out: &Path) -> Result<(String, Vec<String>)> {
    let steps = steps();
    let scenario = kubesim::Scenario::from_yaml_str(SCENARIO)?;
    let dir = out.join("everyday");
    let _ = std::fs::remove_dir_all(&dir);

    let sim = kubesim::Sim::start(scenario.clone()).await?;
    sim.write_kubeconfig(&dir.join("kubesim.kubeconfig"))
        .or_else(|_| {
            std::fs::create_dir_all(&dir)?;
            sim.write_kubeconfig(&dir.join("kubesim.kubeconfig"))
        })?;
    let kc = std::fs::read_to_string(dir.join("kubesim.kubeconfig"))?;
    let on_sim = Kubectl::new(kubectl, dir.join("kubesim"), &kc)?;
    let sim_result = on_sim.script(&steps).await;
    sim.shutdown().await;
    let (sim_version, sim_answers) = sim_result?;

    let cluster = cluster::up(up).await?;
    let real_result = async {
        let state = &cluster.state;
        let kc = std::fs::read_to_string(&state.kubeconfig)?;
        let admin = client_for(&kc).await?;
        let pki = Pki {
            dir: state.dir.join("pki"),
        };
        materialise(&admin, &pki, &state.server, &scenario).await?;
        let on_real = Kubectl::new(kubectl, dir.join("real"), &kc)?;
        on_real.script(&steps).await
    }
    .await;
    cluster.stop();
    let (real_version, real_answers) = real_result?;

    let mut md =
        String::from("## The everyday kubectl commands: kubesim and the real control plane\n\n");
    let _ = writeln!(
        md,
        "The same kubectl script on kubesim and on a fresh real control plane, each with three empty nodes (n1-n3). Compared: the exit code and the shape of the output (names' generated parts, ages, uids and IPs normalised; for `rollout status` the last line, for `get all` the set of lines, for `get pods -o wide` and `drain` the set of lines with pod and node names left out (placement is the scheduler's choice), for `explain` the fields and their types, for `get events` the (type, reason, object kind) triples).\n\nkubectl on kubesim: {sim_version}  \nkubectl on the real control plane: {real_version}\n"
    );
    let _ = writeln!(
        md,
        "| step | command | exit kubesim / real | output shape |\n|---|---|---|---|"
    );
    let mut unexplained = Vec::new();
    let mut details = String::new();
    for ((s, a_sim), a_real) in steps.iter().zip(&sim_answers).zip(&real_answers) {
        let (cs, ss) = a_sim.shape(s.shape);
        let (cr, sr) = a_real.shape(s.shape);
        let same = cs == cr && ss == sr;
        let verdict = match (same, s.known) {
            (true, None) => "same".to_string(),
            (true, Some(_)) => "same (listed as a known difference: no longer differs)".to_string(),
            (false, Some(why)) => format!("differs, known: {why}"),
            (false, None) => {
                unexplained.push(format!(
                    "everyday {}: `kubectl {}` differs between kubesim and the real control plane",
                    s.id,
                    s.args.join(" ")
                ));
                "**DIFFERS**".to_string()
            }
        };
        let _ = writeln!(
            md,
            "| {} | `kubectl {}` | {cs} / {cr} | {verdict} |",
            s.id,
            s.args.join(" ").replace('|', "\\|")
        );
        if !same {
            let only_sim: Vec<&String> = ss.iter().filter(|l| !sr.contains(l)).collect();
            let only_real: Vec<&String> = sr.iter().filter(|l| !ss.contains(l)).collect();
            let _ = writeln!(details, "- **{}**: kubesim exit {cs}, real exit {cr}", s.id);
            for l in only_sim {
                let _ = writeln!(details, "  - only on kubesim: `{}`", l.replace('`', "'"));
            }
            for l in only_real {
                let _ = writeln!(
                    details,
                    "  - only on the real control plane: `{}`",
                    l.replace('`', "'")
                );
            }
            if ss.len() == sr.len() && ss.iter().all(|l| sr.contains(l)) {
                let _ = writeln!(details, "  - same lines in another order");
            }
        }
        let log = dir.join(format!("{}.txt", s.id));
        let _ = std::fs::write(
            log,
            format!(
                "$ kubectl {}\n--- kubesim (exit {}):\n{}{}\n--- real (exit {}):\n{}{}",
                s.args.join(" "),
                a_sim.code,
                a_sim.stdout,
                a_sim.stderr,
                a_real.code,
                a_real.stdout,
                a_real.stderr
            ),
        );
    }
    if !details.is_empty() {
        let _ = writeln!(md, "\nWhere they differ (normalised lines):\n\n{details}");
    }
    let _ = writeln!(
        md,
        "\nEach step's full output on both: `{}/<step>.txt`.\n",
        dir.display()
    );
    Ok((md, unexplained))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_ages_and_addresses_are_normalised() {
        assert_eq!(
            normalise_line("pod/web-7c5ddbdf54-x8z9q   1/1     Running   0          12s"),
            "pod/web-<hash>-<id> 1/1 Running 0 <age>"
        );
        assert_eq!(
            normalise_line("replicaset.apps/web-65d846d465   4         4         4       3m2s"),
            "replicaset.apps/web-<hash> 4 4 4 <age>"
        );
        assert_eq!(
            normalise_line("web-2xf68hlwjt-8lcx7 1/1 Running 0 5s 10.0.0.7 n2 <none> <none>"),
            "web-<hash>-<id> 1/1 Running 0 <age> <ip> n2 <none> <none>"
        );
        assert_eq!(
            normalise_line("n1   Ready,SchedulingDisabled   <none>   40s   v1.33.13"),
            "n1 Ready,SchedulingDisabled <none> <age> v1.33.13"
        );
        assert_eq!(
            normalise_line("CreationTimestamp:      Thu, 03 Dec 2026 19:40:01 +0000"),
            "CreationTimestamp: <date>"
        );
    }

    #[test]
    fn shapes_keep_what_is_meaningful() {
        let events = "LAST SEEN   TYPE     REASON             OBJECT                       MESSAGE\n\
                      5s          Normal   Scheduled          pod/web-7c5ddbdf54-x8z9q     Successfully assigned default/web-7c5ddbdf54-x8z9q to n2\n\
                      4s          Normal   Scheduled          pod/web-7c5ddbdf54-abcde     Successfully assigned\n\
                      6s          Normal   ScalingReplicaSet  deployment/web               Scaled up replica set web-7c5ddbdf54 from 0 to 3\n";
        assert_eq!(
            shape_of(events, Shape::Events),
            vec![
                "Normal ScalingReplicaSet deployment",
                "Normal Scheduled pod"
            ]
        );
        let explain = "KIND:       Pod\nVERSION:    v1\n\nDESCRIPTION:\n    Pod is a collection.\n\nFIELDS:\n  apiVersion\t<string>\n    APIVersion defines\n  kind\t<string>\n";
        assert_eq!(
            shape_of(explain, Shape::Fields),
            vec![
                "KIND: Pod",
                "VERSION: v1",
                "apiVersion <string>",
                "kind <string>"
            ]
        );
        assert_eq!(
            shape_of(
                "evicting pod default/api-65d846d465-x8z9q\npod/web-2xf68hlwjt-8lcx7 evicted\nnode/n1 drained\n",
                Shape::AnyPlacement
            ),
            vec![
                "evicting pod default/<pod>",
                "node/<node> drained",
                "pod/<pod> evicted"
            ]
        );
        assert_eq!(
            shape_of(
                "Waiting...\ndeployment \"web\" successfully rolled out\n",
                Shape::LastLine
            ),
            vec!["deployment \"web\" successfully rolled out"]
        );
    }
}
