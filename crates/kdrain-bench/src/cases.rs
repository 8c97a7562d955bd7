//! The benchmark scenarios B1–B4: which scenario file, which nodes to drain, and the flags each tool gets.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which nodes a case drains.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Nodes named on the command line.
    Nodes(Vec<String>),
    /// Nodes chosen by a label selector (`-l`).
    Selector(String),
}

/// One benchmark scenario with the drain it measures.
#[derive(Debug, Clone)]
pub struct BenchCase {
    /// Short id used on the command line and in the table: B1 … B4.
    pub id: &'static str,
    /// Human title for the table and the chart.
    pub title: &'static str,
    /// File stem under `scenarios/bench/` (full) and `scenarios/bench/quick/` (smoke test).
    pub stem: &'static str,
    /// The nodes to drain.
    pub target: Target,
    /// kdrain's `--parallel` (None: not passed, one node at a time).
    pub kdrain_parallel: Option<usize>,
    /// kubectl's `--timeout` (per node in kubectl; None: wait for ever). kdrain gets none: the
    /// harness deadline bounds it.
    pub kubectl_timeout: Option<Duration>,
    /// The harness gives up on a kdrain run after this long and kills it.
    pub deadline: Duration,
    /// The harness gives up on a kubectl run after this long and kills it.
    pub kubectl_deadline: Duration,
    /// kubectl runs in at most this many repetitions (None: every one), with the reason.
    pub kubectl_runs: Option<(usize, &'static str)>,
}

impl BenchCase {
    /// The scenario file for this case.
    pub fn scenario_path(&self, root: &Path, quick: bool) -> PathBuf {
        let dir = root.join("scenarios").join("bench");
        let dir = if quick { dir.join("quick") } else { dir };
        dir.join(format!("{}.yaml", self.stem))
    }

    /// The medium size of the case's scenario (`scenarios/bench/medium/`), if it has one: B4 at
    /// 100 nodes × 110 pods, the size a real control plane on this machine holds.
    pub fn medium_scenario_path(&self, root: &Path) -> Option<PathBuf> {
        let path = root
            .join("scenarios")
            .join("bench")
            .join("medium")
            .join(format!("{}.yaml", self.stem));
        path.exists().then_some(path)
    }

    /// The arguments after the program name that drain this case's nodes, common to both tools.
    pub fn drain_args(&self, kubeconfig: &Path) -> Vec<String> {
        let mut args = vec!["drain".to_string()];
        match &self.target {
            Target::Nodes(nodes) => args.extend(nodes.iter().cloned()),
            Target::Selector(selector) => {
                args.push("-l".to_string());
                args.push(selector.clone());
            }
        }
        args.push(format!("--kubeconfig={}", kubeconfig.display()));
        args.push("--ignore-daemonsets".to_string());
        args.push("--delete-emptydir-data".to_string());
        args
    }

    /// Whether kubectl runs in repetition `rep`.
    pub fn kubectl_runs_in(&self, rep: usize) -> bool {
        self.kubectl_runs.is_none_or(|(n, _)| rep < n)
    }
}

/// All four cases, full size or quick, in order B1 … B4.
pub fn all_cases(quick: bool) -> Vec<BenchCase> {
    let scale = |full: u64, small: u64| Duration::from_secs(if quick { small } else { full });
    vec![
        BenchCase {
            id: "B1",
            title: "B1 wide: 1 node, 110 pods, no budgets",
            stem: "b1-wide",
            target: Target::Nodes(vec!["n1".to_string()]),
            kdrain_parallel: None,
            kubectl_timeout: None,
            deadline: scale(180, 90),
            kubectl_deadline: scale(180, 90),
            kubectl_runs: None,
        },
        BenchCase {
            id: "B2",
            title: "B2 budgets: 1 node, 5 × 4 pods under maxUnavailable 1",
            stem: "b2-budgets",
            target: Target::Nodes(vec!["n1".to_string()]),
            kdrain_parallel: None,
            kubectl_timeout: None,
            deadline: scale(180, 90),
            kubectl_deadline: scale(180, 90),
            kubectl_runs: None,
        },
        BenchCase {
            id: "B3",
            title: "B3 pool: 10 nodes × 30 pods, 10% budgets, by label",
            stem: "b3-pool",
            target: Target::Selector("pool=b3".to_string()),
            kdrain_parallel: Some(if quick { 3 } else { 10 }),
            kubectl_timeout: None,
            deadline: scale(600, 120),
            kubectl_deadline: scale(600, 120),
            kubectl_runs: None,
        },
        BenchCase {
            id: "B4",
            title: "B4 big: 1,000 nodes × 110 pods, drain 20 by label",
            stem: "b4-big",
            target: Target::Selector("bench=drain".to_string()),
            kdrain_parallel: Some(if quick { 3 } else { 20 }),
            kubectl_timeout: Some(Duration::from_secs(120)),
            deadline: scale(600, 120),
            kubectl_deadline: scale(300, 120),
            kubectl_runs: Some((
                1,
                "kubectl is held back by client-go's client-side rate limiter (its stderr shows \
                 \"Waited for … due to client-side throttling\"); in a first run it removed about 4 pods/s, \
                 so the 2,200 pods would take about 9 minutes. It runs in the first repetition only and is \
                 stopped after 300 s; the pods it had left then are reported",
            )),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ScenarioModel;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn every_case_has_a_full_and_a_quick_scenario_that_parses() {
        for quick in [false, true] {
            for case in all_cases(quick) {
                let path = case.scenario_path(&root(), quick);
                let model = ScenarioModel::from_file(&path).unwrap();
                assert!(!model.workloads.is_empty(), "{}", path.display());
                model.disruptions_allowed().unwrap();
            }
        }
    }

    #[test]
    fn full_scenarios_have_the_sizes_the_issue_names() {
        let total = |stem: &str| -> u32 {
            let path = root().join("scenarios/bench").join(format!("{stem}.yaml"));
            ScenarioModel::from_file(&path)
                .unwrap()
                .workloads
                .iter()
                .map(|w| w.replicas.unwrap_or(1))
                .sum()
        };
        assert_eq!(total("b1-wide"), 110);
        assert_eq!(total("b2-budgets"), 20);
        assert_eq!(total("b3-pool"), 300);
        assert_eq!(total("b4-big"), 110_000);
        assert_eq!(total("medium/b4-big"), 11_000);
        let cases = all_cases(false);
        assert!(cases[3].medium_scenario_path(&root()).is_some());
        assert!(cases[0].medium_scenario_path(&root()).is_none());
    }

    #[test]
    fn drain_args_name_nodes_or_selector() {
        let cases = all_cases(false);
        let args = cases[0].drain_args(Path::new("/tmp/kc"));
        assert_eq!(
            args,
            [
                "drain",
                "n1",
                "--kubeconfig=/tmp/kc",
                "--ignore-daemonsets",
                "--delete-emptydir-data"
            ]
        );
        let args = cases[3].drain_args(Path::new("/tmp/kc"));
        assert_eq!(&args[1..3], ["-l", "bench=drain"]);
        assert!(cases[3].kubectl_runs_in(0) && !cases[3].kubectl_runs_in(1));
        assert!(cases[0].kubectl_runs_in(7));
    }
}
