//! `cargo xtask e2e --only capacity`: the plan's fit verdicts against the real scheduler.
//!
//! The capacity scenario (`crates/xtask/scenarios/capacity.yaml`: resource requests against
//! allocatable for cpu, memory and pods, `nodeSelector`, required node affinity, NoSchedule and
//! NoExecute taints, required pod anti-affinity by hostname, topology spread `DoNotSchedule` by
//! hostname and by zone, and required pod affinity, which kdrain does not evaluate) is
//! materialised on a real control plane and loaded in kubesim. On each: `kdrain plan n1 -o json`
//! gives every evicted pod's verdict ("replacement fits on X", "no room for its replacement:
//! ..."), then `kdrain drain n1 --ignore-capacity` evicts them all and the scheduler places the
//! replacements the workloads' controllers create. Per workload, a "fits" verdict agrees with a
//! replacement bound to a schedulable node, a "no room" verdict with one left Pending (its
//! `FailedScheduling` text is kept). Replacements of one workload are interchangeable, so the
//! count is per workload: min(fits, bound) + min(no room, Pending). Pods whose placement kdrain
//! says it does not check are counted apart. The part fails on a disagreement of the plan with
//! the real scheduler, and on kubesim's scheduler binding or leaving Pending other replacements
//! than the real one (except where the plan says the result depends on the order of the
//! evictions); the schedulers' texts (PodScheduled message, FailedScheduling event) are compared
//! and reported.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::ListParams;
use kube::{Api, Client};
use kubesim::Scenario;

use crate::cluster::{self, UpOptions, client_for};
use crate::materialise::materialise;
use crate::paths::workspace_root;
use crate::pki::Pki;

/// The scenario, relative to the workspace.
pub const SCENARIO: &str = "crates/xtask/scenarios/capacity.yaml";
/// The drained node.
const TARGET: &str = "n1";
const FLAGS: [&str; 3] = ["--force", "--ignore-daemonsets", "--delete-emptydir-data"];
/// How long the replacements may take to be bound or found unschedulable.
const DECIDE_TIMEOUT: Duration = Duration::from_secs(90);

/// What the plan said of one evicted pod.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Fits,
    NoRoom(String),
    /// "placement not checked: uses ..." (the part after "uses ").
    NotChecked(String),
}

/// Where one replacement went.
#[derive(Debug, Clone)]
struct Replacement {
    workload: String,
    node: Option<String>,
    /// The scheduler's message when it stayed Pending (its PodScheduled condition).
    message: Option<String>,
    /// Its last FailedScheduling event's text (the recorder cuts it at 1 kB).
    event: Option<String>,
}

/// One cluster's run.
#[derive(Debug, Default)]
struct Side {
    /// Per workload, the evicted pods' verdicts.
    verdicts: BTreeMap<String, Vec<Verdict>>,
    replacements: Vec<Replacement>,
    plan_code: i32,
    drain_code: i32,
}

impl Side {
    fn bound(&self, w: &str) -> usize {
        self.replacements
            .iter()
            .filter(|r| r.workload == w && r.node.is_some())
            .count()
    }

    fn pending(&self, w: &str) -> Vec<&Replacement> {
        self.replacements
            .iter()
            .filter(|r| r.workload == w && r.node.is_none())
            .collect()
    }
}

/// The Deployment (or other owner) of a pod: its controller's name, without the ReplicaSet's
/// `-<pod-template-hash>`.
fn workload_of(p: &Pod) -> String {
    let md = &p.metadata;
    let owner = md
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    let ns = md.namespace.clone().unwrap_or_default();
    match owner {
        None => format!("{ns}/{}", md.name.clone().unwrap_or_default()),
        Some(o) => {
            let hash = md
                .labels
                .as_ref()
                .and_then(|l| l.get("pod-template-hash"))
                .map(|h| format!("-{h}"))
                .unwrap_or_default();
            let name = o.name.strip_suffix(&hash).unwrap_or(&o.name);
            format!("{ns}/{name}")
        }
    }
}

fn key(p: &Pod) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.clone().unwrap_or_default(),
        p.metadata.name.clone().unwrap_or_default()
    )
}

fn unschedulable_message(p: &Pod) -> Option<String> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .map(|c| c.message.clone().unwrap_or_default())
}

async fn run_kdrain(kdrain: &Path, args: &[String], log: &Path) -> Result<(i32, String)> {
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new(kdrain)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .with_context(|| format!("kdrain {} did not finish within 180 s", args.join(" ")))?
    .with_context(|| format!("cannot run {}", kdrain.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    std::fs::write(
        log,
        format!(
            "{stdout}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    )?;
    Ok((out.status.code().unwrap_or(-1), stdout))
}

/// The verdicts of `kdrain plan -o json`, by pod.
fn verdicts(json_lines: &str) -> Result<BTreeMap<String, Verdict>> {
    let planned = json_lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "planned")
        .context("kdrain plan -o json printed no planned event")?;
    let mut out = BTreeMap::new();
    for node in planned["plan"]["nodes"].as_array().into_iter().flatten() {
        for p in node["pods"].as_array().into_iter().flatten() {
            let Some(text) = p["placement"].as_str() else {
                continue;
            };
            let pod = format!(
                "{}/{}",
                p["namespace"].as_str().unwrap_or(""),
                p["name"].as_str().unwrap_or("")
            );
            let v = if let Some((_, what)) = text.split_once("placement not checked: uses ") {
                Verdict::NotChecked(what.to_string())
            } else if text.starts_with("replacement fits on ") {
                Verdict::Fits
            } else if let Some(m) = text.strip_prefix("no room for its replacement") {
                Verdict::NoRoom(m.trim_start_matches(": ").to_string())
            } else {
                continue;
            };
            out.insert(pod, v);
        }
    }
    Ok(out)
}

/// Plan, drain with `--ignore-capacity`, and see where the replacements went.
async fn side(
    client: &Client,
    kdrain: &Path,
    kubeconfig: &Path,
    out: &Path,
    label: &str,
) -> Result<Side> {
    let kc = format!("--kubeconfig={}", kubeconfig.display());
    let pods: Api<Pod> = Api::all(client.clone());
    let before = pods.list(&ListParams::default()).await?.items;
    let workload: BTreeMap<String, String> =
        before.iter().map(|p| (key(p), workload_of(p))).collect();
    let old: BTreeSet<String> = before
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    let mut args: Vec<String> = ["plan", TARGET, "-o", "json"]
        .iter()
        .chain(FLAGS.iter())
        .map(|s| s.to_string())
        .collect();
    args.push(kc.clone());
    let (plan_code, stdout) = run_kdrain(
        kdrain,
        &args,
        &out.join(format!("capacity-plan-{label}.log")),
    )
    .await?;
    let mut result = Side {
        plan_code,
        ..Side::default()
    };
    for (pod, v) in verdicts(&stdout)? {
        let w = workload.get(&pod).cloned().unwrap_or(pod);
        result.verdicts.entry(w).or_default().push(v);
    }
    let mut args: Vec<String> = ["drain", TARGET, "--ignore-capacity", "--timeout=120s"]
        .iter()
        .chain(FLAGS.iter())
        .map(|s| s.to_string())
        .collect();
    args.push(kc);
    let (drain_code, _) = run_kdrain(
        kdrain,
        &args,
        &out.join(format!("capacity-drain-{label}.log")),
    )
    .await?;
    result.drain_code = drain_code;
    let wanted: usize = result.verdicts.values().map(Vec::len).sum();
    // Wait until every replacement is bound or was found unschedulable, then once more a
    // little later: a Pending one must stay Pending.
    let deadline = Instant::now() + DECIDE_TIMEOUT;
    let mut settled_once = false;
    loop {
        let now = pods.list(&ListParams::default()).await?.items;
        let new: Vec<&Pod> = now
            .iter()
            .filter(|p| !p.metadata.uid.as_ref().is_some_and(|u| old.contains(u)))
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let decided = new.iter().all(|p| {
            p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
                || unschedulable_message(p).is_some()
        });
        if new.len() >= wanted && decided {
            if settled_once {
                let events: Api<Event> = Api::all(client.clone());
                let mut failed: BTreeMap<String, String> = BTreeMap::new();
                for e in events.list(&ListParams::default()).await?.items {
                    if e.reason.as_deref() == Some("FailedScheduling") {
                        let o = &e.involved_object;
                        failed.insert(
                            format!(
                                "{}/{}",
                                o.namespace.clone().unwrap_or_default(),
                                o.name.clone().unwrap_or_default()
                            ),
                            e.message.clone().unwrap_or_default(),
                        );
                    }
                }
                result.replacements = new
                    .iter()
                    .map(|p| {
                        let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
                        let pending = node.is_none();
                        Replacement {
                            workload: workload_of(p),
                            message: unschedulable_message(p).filter(|_| pending),
                            event: failed.get(&key(p)).cloned().filter(|_| pending),
                            node,
                        }
                    })
                    .collect();
                return Ok(result);
            }
            settled_once = true;
            tokio::time::sleep(Duration::from_secs(3)).await;
            continue;
        }
        settled_once = false;
        if Instant::now() > deadline {
            bail!(
                "{label}: after the drain, {} of {wanted} replacements exist and not all were bound or found unschedulable within {} s",
                new.len(),
                DECIDE_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn real_side(kdrain: &Path, up: &UpOptions, sc: &Scenario, out: &Path) -> Result<Side> {
    let cluster = cluster::up(up).await?;
    let state = cluster.state.clone();
    let result = async {
        let admin = client_for(&std::fs::read_to_string(&state.kubeconfig)?).await?;
        let pki = Pki {
            dir: state.dir.join("pki"),
        };
        materialise(&admin, &pki, &state.server, sc).await?;
        side(&admin, kdrain, &state.kubeconfig, out, "real").await
    }
    .await;
    let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
    result
}

async fn sim_side(kdrain: &Path, sc: &Scenario, out: &Path) -> Result<Side> {
    let sim = kubesim::Sim::start(sc.clone()).await?;
    let kc: PathBuf = out.join("capacity-kubesim.kubeconfig");
    sim.write_kubeconfig(&kc)?;
    let result = side(&sim.client(), kdrain, &kc, out, "kubesim").await;
    sim.shutdown().await;
    result
}

/// Per workload: (fits, no room, not checked) verdicts.
fn tally(v: &[Verdict]) -> (usize, usize, usize) {
    let fits = v.iter().filter(|x| **x == Verdict::Fits).count();
    let none = v.iter().filter(|x| matches!(x, Verdict::NoRoom(_))).count();
    (fits, none, v.len() - fits - none)
}

/// The agreement of one side's plan with one side's scheduler: (agreeing pods, pods with a
/// checked verdict, disagreements).
fn agreement(plan: &Side, sched: &Side, what: &str) -> (usize, usize, Vec<String>) {
    let (mut agree, mut total, mut bad) = (0, 0, Vec::new());
    for (w, v) in &plan.verdicts {
        let (fits, none, unchecked) = tally(v);
        if unchecked > 0 {
            continue;
        }
        let (bound, pending) = (sched.bound(w), sched.pending(w).len());
        total += fits + none;
        agree += fits.min(bound) + none.min(pending);
        if fits != bound || none != pending {
            bad.push(format!(
                "{w}: the plan says {fits} fit and {none} do not; {what} bound {bound} and left {pending} Pending"
            ));
        }
    }
    (agree, total, bad)
}

/// Run the part: the report section, and the failures (disagreements of the plan with the
/// real scheduler).
pub async fn run(kdrain: &Path, up: &UpOptions, out: &Path) -> Result<(String, Vec<String>)> {
    let sc = Scenario::from_file(&workspace_root().join(SCENARIO))?;
    let (real, sim) = tokio::join!(real_side(kdrain, up, &sc, out), sim_side(kdrain, &sc, out));
    let (real, sim) = (real?, sim?);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Capacity: the plan's fit verdicts and the scheduler ({SCENARIO}, `kdrain plan {TARGET} -o json`, then `kdrain drain {TARGET} --ignore-capacity`)\n"
    );
    let _ = writeln!(
        s,
        "Each group of workloads has its own tainted spare nodes, so no two groups compete for room. The plan exited {} on the real cluster ({} on kubesim); the drain exited {} ({}).\n",
        real.plan_code, sim.plan_code, real.drain_code, sim.drain_code
    );
    let _ = writeln!(
        s,
        "| workload | plan: fit / no room (real; kubesim) | real scheduler: bound / Pending | kubesim's scheduler: bound / Pending |"
    );
    let _ = writeln!(s, "|---|---|---|---|");
    for (w, v) in &real.verdicts {
        let (f, n, u) = tally(v);
        let (sf, sn, _) = tally(sim.verdicts.get(w).map(Vec::as_slice).unwrap_or(&[]));
        let plan = if u > 0 {
            let what = v
                .iter()
                .find_map(|x| match x {
                    Verdict::NotChecked(w) => Some(w.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            format!("placement not checked (uses {what})")
        } else {
            format!("{f} / {n} ({sf} / {sn})")
        };
        let _ = writeln!(
            s,
            "| {w} | {plan} | {} / {} | {} / {} |",
            real.bound(w),
            real.pending(w).len(),
            sim.bound(w),
            sim.pending(w).len()
        );
    }
    let (agree, total, bad) = agreement(&real, &real, "the real scheduler");
    let line = format!("fit verdicts agree with the real scheduler in {agree} of {total} pods");
    eprintln!("e2e capacity: {line}");
    let _ = writeln!(s, "\n**{line}**.");
    let (sagree, stotal, sbad) = agreement(&sim, &sim, "kubesim's scheduler");
    let _ = writeln!(
        s,
        "On kubesim, the plan and kubesim's scheduler agree in {sagree} of {stotal} pods."
    );
    let unchecked: Vec<String> = real
        .verdicts
        .iter()
        .filter(|(_, v)| tally(v).2 > 0)
        .map(|(w, v)| {
            format!(
                "{w} ({} pods: the real scheduler bound {} and left {} Pending)",
                v.len(),
                real.bound(w),
                real.pending(w).len()
            )
        })
        .collect();
    if !unchecked.is_empty() {
        let _ = writeln!(
            s,
            "Not counted, as the plan names them \"placement not checked\": {}.",
            unchecked.join("; ")
        );
    }
    // The scheduler's text: the plan's prediction and kubesim's, against the real one.
    let (mut texts, mut checked, mut same_plan, mut same_sim, mut same_event) = (0, 0, 0, 0, 0);
    let mut text_diffs = Vec::new();
    for (w, v) in &real.verdicts {
        let Some(r) = real.pending(w).first().copied() else {
            continue;
        };
        let m = r.message.clone().unwrap_or_default();
        texts += 1;
        let is_checked = tally(v).2 == 0;
        checked += usize::from(is_checked);
        let planned = v.iter().any(|x| matches!(x, Verdict::NoRoom(p) if *p == m));
        let simmed = sim.pending(w).first().copied();
        same_plan += usize::from(planned);
        if simmed.is_some_and(|x| x.message.as_deref() == Some(m.as_str())) {
            same_sim += 1;
        } else {
            text_diffs.push(format!(
                "{w}: kubesim's PodScheduled message {} differs from the real `{m}`",
                simmed
                    .and_then(|x| x.message.clone())
                    .map_or("(none: not Pending)".to_string(), |t| format!("`{t}`"))
            ));
        }
        if simmed.is_some_and(|x| x.event == r.event) {
            same_event += 1;
        } else {
            text_diffs.push(format!(
                "{w}: kubesim's FailedScheduling event {} differs from the real `{}`",
                simmed
                    .and_then(|x| x.event.clone())
                    .map_or("(none)".to_string(), |t| format!("`{t}`")),
                r.event.clone().unwrap_or_default()
            ));
        }
        if is_checked && !planned {
            text_diffs.push(format!(
                "{w}: the plan's text differs from the real scheduler's `{m}`"
            ));
        }
    }
    let _ = writeln!(
        s,
        "Of the {texts} workloads left Pending on the real cluster, the real scheduler's message (PodScheduled condition) is the plan's word for word in {same_plan} of the {checked} whose placement the plan checks, and kubesim's in {same_sim} of {texts}; its FailedScheduling event text (cut at 1 kB) is kubesim's in {same_event} of {texts}."
    );
    for d in &text_diffs {
        let _ = writeln!(s, "- {d}");
    }
    let mut failures = Vec::new();
    for b in &bad {
        let _ = writeln!(s, "\n**FAILED**: plan vs the real scheduler: {b}");
        failures.push(format!("capacity: {b}"));
    }
    if real.drain_code != 0 {
        failures.push(format!(
            "capacity: kdrain drain --ignore-capacity exited {} on the real cluster",
            real.drain_code
        ));
    }
    // kubesim against the real scheduler, per workload.
    let mut sim_diffs = Vec::new();
    for w in real.verdicts.keys() {
        let (rb, rp) = (real.bound(w), real.pending(w).len());
        let (sb, sp) = (sim.bound(w), sim.pending(w).len());
        if (rb, rp) != (sb, sp) {
            let order_dependent = real.verdicts[w].iter().any(
                |v| matches!(v, Verdict::NotChecked(x) if x.contains("order of the evictions")),
            );
            sim_diffs.push((
                format!(
                    "{w}: the real scheduler bound {rb} and left {rp} Pending, kubesim's bound {sb} and left {sp}"
                ),
                order_dependent,
            ));
        }
    }
    for d in &sbad {
        let _ = writeln!(s, "\n  Divergence (kubesim): {d}");
    }
    for (d, order_dependent) in &sim_diffs {
        if *order_dependent {
            let _ = writeln!(
                s,
                "\n  Divergence (kubesim), not counted: {d}; where these replacements go depends on the order of the evictions (the plan says so)"
            );
        } else {
            let _ = writeln!(s, "\n**FAILED**: kubesim's scheduler vs the real one: {d}");
            failures.push(format!("capacity: kubesim's scheduler: {d}"));
        }
    }
    let _ = writeln!(s);
    Ok((s, failures))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_read_from_the_planned_event() {
        let planned = serde_json::json!({"event": "planned", "plan": {"nodes": [{"pods": [
            {"namespace": "a", "name": "p1", "placement": "replacement fits on n2"},
            {"namespace": "a", "name": "p2", "placement": "no room for its replacement: 0/2 nodes are available: x."},
            {"namespace": "a", "name": "p3", "placement": "replacement fits on n2; placement not checked: uses pod affinity"},
            {"namespace": "a", "name": "p4"}]}]}});
        let json = format!("{{\"event\":\"started\"}}\n{planned}\n");
        let v = verdicts(&json).unwrap();
        assert_eq!(v["a/p1"], Verdict::Fits);
        assert_eq!(
            v["a/p2"],
            Verdict::NoRoom("0/2 nodes are available: x.".into())
        );
        assert_eq!(v["a/p3"], Verdict::NotChecked("pod affinity".into()));
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn agreement_counts_per_workload() {
        let plan = Side {
            verdicts: BTreeMap::from([(
                "a/w".to_string(),
                vec![Verdict::Fits, Verdict::Fits, Verdict::NoRoom(String::new())],
            )]),
            ..Side::default()
        };
        let rep = |node: Option<&str>| Replacement {
            workload: "a/w".into(),
            node: node.map(str::to_string),
            message: None,
            event: None,
        };
        let sched = Side {
            replacements: vec![rep(Some("n2")), rep(None), rep(None)],
            ..Side::default()
        };
        let (agree, total, bad) = agreement(&plan, &sched, "it");
        assert_eq!((agree, total), (2, 3));
        assert_eq!(
            bad,
            vec!["a/w: the plan says 2 fit and 1 do not; it bound 1 and left 2 Pending"]
        );
    }
}
