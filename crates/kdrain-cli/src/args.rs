//! The command line: kubectl drain's flags with kubectl's spellings and defaults, plus what
//! kdrain adds (`--parallel`, `--uncordon-on-failure`, `-o json`, `plan`, `demo`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::parse_go_duration;
use crate::exit::{CliError, EXIT_CODES_HELP};

/// Help heading of the options every subcommand takes.
const GLOBAL: &str = "Global options";
/// Help heading of the options kdrain adds to kubectl's.
const KDRAIN: &str = "kdrain options (not in kubectl)";

/// `kdrain`: the whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "kdrain",
    version,
    about = "Drain Kubernetes nodes like `kubectl drain`, with live progress, a plan, and many nodes at once",
    long_about = None,
    after_help = EXIT_CODES_HELP,
    after_long_help = EXIT_CODES_HELP,
)]
pub struct Cli {
    /// Connection and output options shared by every subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand accepts (kubectl's global flags that matter here).
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster config)
    #[arg(long, global = true, value_name = "PATH", help_heading = GLOBAL, display_order = 100)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: the current context)
    #[arg(long, global = true, value_name = "NAME", help_heading = GLOBAL, display_order = 101)]
    pub context: Option<String>,
    /// Output format (default: a live progress view on a terminal, kubectl's lines otherwise)
    #[arg(
        short = 'o',
        long,
        global = true,
        value_enum,
        value_name = "FORMAT",
        help_heading = GLOBAL,
        display_order = 102
    )]
    pub output: Option<OutputFormat>,
    /// Debug logs on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides
    #[arg(
        short = 'v',
        long = "verbose",
        global = true,
        action = clap::ArgAction::Count,
        help_heading = GLOBAL,
        display_order = 103
    )]
    pub verbose: u8,
}

/// `-o/--output` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// The lines kubectl prints (what scripts that parse kubectl expect)
    Text,
    /// One JSON event per line, then a result line (`kdrain schema events` describes them)
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Cordon nodes, then evict their pods (kubectl drain, budget-aware, many nodes at once)
    #[command(after_help = EXIT_CODES_HELP)]
    Drain(DrainArgs),
    /// Show what a drain would do and what will block it; changes nothing
    #[command(after_help = EXIT_CODES_HELP)]
    Plan(DrainArgs),
    /// Mark nodes unschedulable (kubectl cordon)
    Cordon(CordonArgs),
    /// Mark nodes schedulable again (kubectl uncordon)
    Uncordon(CordonArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell to generate completions for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Start a simulated cluster in-process and drain one of its nodes, with no real cluster needed
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
    /// Run the in-cluster controller: drains the cluster's NodeDrains in the background
    /// (leader election, /metrics, /healthz, /readyz)
    Controller(crate::controller_cmd::ControllerArgs),
    /// Ask the controller to drain nodes (create a NodeDrain) and follow it to its end
    #[command(after_help = EXIT_CODES_HELP)]
    Request(crate::controller_cmd::RequestArgs),
    /// Print the JSON Schema of `-o json`'s lines (every event and the result line)
    Schema {
        /// What to describe
        #[arg(value_enum)]
        what: SchemaKind,
    },
}

/// `kdrain schema` subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// Every line `-o json` prints: the events, `stopping` and the result line
    Events,
}

/// Which nodes: names, or a label selector (never both, as in kubectl).
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Nodes to act on
    #[arg(value_name = "NODE")]
    pub nodes: Vec<String>,
    /// Select nodes by label instead of by name (e.g. pool=a,zone!=b)
    #[arg(
        short = 'l',
        long = "selector",
        value_name = "SELECTOR",
        display_order = 9
    )]
    pub selector: Option<String>,
}

/// The target as resolved from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Nodes named on the command line.
    Names(Vec<String>),
    /// Nodes matching this label selector.
    Selector(String),
}

impl TargetArgs {
    /// Checks names vs selector with kubectl's rule and wording.
    pub fn target(&self) -> Result<Target, CliError> {
        match (&self.selector, self.nodes.is_empty()) {
            (Some(_), false) => Err(CliError::usage(
                "cannot specify both a node name and a --selector option",
            )),
            (Some(selector), true) => Ok(Target::Selector(selector.clone())),
            (None, false) => Ok(Target::Names(self.nodes.clone())),
            (None, true) => Err(CliError::usage(
                "name at least one node or give --selector (usage: kdrain drain NODE... | -l SELECTOR)",
            )),
        }
    }
}

/// `--dry-run` values (kubectl: none, client, server; the bare flag means client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRunArg {
    /// Change the cluster.
    None,
    /// Only read; print what would be done.
    Client,
    /// Send every write with dryRun=All.
    Server,
}

/// Parses `--dry-run` the way kubectl does, including the bare flag and the deprecated booleans.
pub fn parse_dry_run(value: &str) -> Result<DryRunArg, String> {
    match value {
        "none" | "false" => Ok(DryRunArg::None),
        // kubectl's bare `--dry-run` sets "unchanged", which it treats as client.
        "client" | "unchanged" | "true" => Ok(DryRunArg::Client),
        "server" => Ok(DryRunArg::Server),
        other => Err(format!(
            "Invalid dry-run value ({other}). Must be \"none\", \"server\", or \"client\"."
        )),
    }
}

fn parse_duration_arg(value: &str) -> Result<Duration, String> {
    parse_go_duration(value)
}

fn parse_grace_period(value: &str) -> Result<i64, String> {
    value.parse::<i64>().map_err(|_| {
        "give whole seconds, e.g. 30 (negative: each pod's own grace period; 0: at once, with --force)"
            .to_string()
    })
}

fn parse_seconds(value: &str) -> Result<u64, String> {
    value
        .parse::<u64>()
        .map_err(|_| "give whole seconds, e.g. 30 (0: never skip)".to_string())
}

fn parse_chunk_size(value: &str) -> Result<u32, String> {
    value.parse::<u32>().map_err(|_| {
        "give a whole number of pods per request, e.g. 500 (0: all in one)".to_string()
    })
}

fn parse_parallel(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) | Err(_) => Err(format!(
            "invalid --parallel \"{value}\": give a whole number of nodes to drain at once, 1 or more"
        )),
        Ok(n) => Ok(n),
    }
}

/// Flags of `drain` (and `plan`, which must see the same filters to say the same thing).
#[derive(Debug, Clone, Args)]
pub struct DrainArgs {
    /// The nodes
    #[command(flatten)]
    pub target: TargetArgs,
    /// Continue even if there are pods that do not declare a controller
    #[arg(long, display_order = 5)]
    pub force: bool,
    /// Ignore DaemonSet-managed pods
    #[arg(long, display_order = 7)]
    pub ignore_daemonsets: bool,
    /// Continue even if there are pods using emptyDir (local data that will be deleted when the node is drained)
    #[arg(long, display_order = 2)]
    pub delete_emptydir_data: bool,
    /// Seconds given to each pod to terminate gracefully; negative: the pod's own value; 0: immediately (with --force)
    #[arg(long, display_order = 6, default_value_t = -1, allow_negative_numbers = true, value_parser = parse_grace_period, value_name = "SECONDS")]
    pub grace_period: i64,
    /// How long to wait before giving up, as a Go duration (90s, 5m, 1h30m); 0 waits forever
    #[arg(long, display_order = 11, default_value = "0s", value_parser = parse_duration_arg, value_name = "DURATION")]
    pub timeout: Duration,
    /// Only evict pods matching this label selector
    #[arg(long, value_name = "SELECTOR", display_order = 8)]
    pub pod_selector: Option<String>,
    /// Delete pods instead of evicting them, bypassing PodDisruptionBudgets (use with caution)
    #[arg(long, display_order = 3)]
    pub disable_eviction: bool,
    /// Skip waiting for pods whose deletion began more than this many seconds ago; 0 never skips
    #[arg(long, display_order = 10, default_value_t = 0, value_parser = parse_seconds, value_name = "SECONDS")]
    pub skip_wait_for_delete_timeout: u64,
    /// Pods listed per request; 0 lists everything in one request
    #[arg(long, display_order = 1, default_value_t = 500, value_parser = parse_chunk_size, value_name = "N")]
    pub chunk_size: u32,
    /// --dry-run
    #[command(flatten)]
    pub dry_run: DryRunFlag,
    /// Drain up to K nodes at once, with one budget-aware dispatcher across them (default 1, like kubectl)
    #[arg(long, help_heading = KDRAIN, display_order = 20, default_value = "1", value_parser = parse_parallel, value_name = "K")]
    pub parallel: usize,
    /// Uncordon a node again if its drain fails, but only if kdrain cordoned it
    #[arg(long, help_heading = KDRAIN, display_order = 21)]
    pub uncordon_on_failure: bool,
    /// Evict pods even if they opt out of disruption (cluster-autoscaler safe-to-evict=false,
    /// karpenter.sh/do-not-disrupt, cluster.x-k8s.io/drain=skip)
    #[arg(long, help_heading = KDRAIN, display_order = 22)]
    pub override_opt_outs: bool,
    /// Drain even when the evicted pods' replacements do not fit on the nodes that stay
    /// schedulable (they would stay Pending)
    #[arg(long, help_heading = KDRAIN, display_order = 23, conflicts_with = "wait_for_capacity")]
    pub ignore_capacity: bool,
    /// Nodes whose replacements have no room now wait for it instead of refusing the drain:
    /// every target is cordoned first; when a wave ends, kdrain reads the cluster again and
    /// starts the waiting nodes whose replacements fit then (drained nodes made schedulable
    /// again count as room), re-reading at most every 5s; --timeout bounds each wait, after
    /// which they end with no room, nothing evicted (exit 4). `plan` then exits 0 and lists
    /// them under "waits for room"
    #[arg(long, help_heading = KDRAIN, display_order = 24)]
    pub wait_for_capacity: bool,
    /// For a Deployment whose budget can never let its pods on these nodes be evicted: restart
    /// its rollout after the cordon (as kubectl rollout restart) so new pods start elsewhere
    /// first; only with maxSurge >= 1 and maxUnavailable 0. Repeat or comma-separate
    #[arg(long, help_heading = KDRAIN, display_order = 25, value_name = "NAMESPACE/DEPLOYMENT", value_delimiter = ',')]
    pub surge: Vec<String>,
}

/// `--dry-run[=none|client|server]`, the same flag with kubectl's spellings on drain, cordon and
/// uncordon.
#[derive(Debug, Clone, Copy, Args)]
pub struct DryRunFlag {
    /// None, client (only read, print what would happen) or server (send writes with dryRun=All);
    /// the bare flag means client
    #[arg(
        long = "dry-run",
        display_order = 4,
        num_args = 0..=1,
        require_equals = true,
        default_value = "none",
        default_missing_value = "unchanged",
        value_parser = parse_dry_run,
        value_name = "MODE",
    )]
    pub mode: DryRunArg,
}

impl DryRunFlag {
    /// The library's dry-run mode.
    pub fn to_library(self) -> kdrain::DryRun {
        self.mode.to_library()
    }
}

impl DryRunArg {
    /// The library's dry-run mode.
    pub fn to_library(self) -> kdrain::DryRun {
        match self {
            DryRunArg::None => kdrain::DryRun::None,
            DryRunArg::Client => kdrain::DryRun::Client,
            DryRunArg::Server => kdrain::DryRun::Server,
        }
    }
}

impl DrainArgs {
    /// The engine options these flags ask for (kubectl's 0 and -1 mean "none").
    pub fn options(&self) -> kdrain::DrainOptions {
        kdrain::DrainOptions {
            force: self.force,
            ignore_daemonsets: self.ignore_daemonsets,
            delete_emptydir_data: self.delete_emptydir_data,
            grace_period: (self.grace_period >= 0).then_some(self.grace_period),
            timeout: (!self.timeout.is_zero()).then_some(self.timeout),
            pod_selector: self.pod_selector.clone().filter(|s| !s.is_empty()),
            disable_eviction: self.disable_eviction,
            skip_wait_for_delete_timeout: (self.skip_wait_for_delete_timeout > 0)
                .then(|| Duration::from_secs(self.skip_wait_for_delete_timeout)),
            chunk_size: self.chunk_size,
            dry_run: self.dry_run.to_library(),
            override_opt_outs: self.override_opt_outs,
            uncordon_on_failure: self.uncordon_on_failure,
            parallel_nodes: self.parallel,
            ignore_capacity: self.ignore_capacity,
            wait_for_capacity: self.wait_for_capacity,
            surge: self.surge.clone(),
            ..kdrain::DrainOptions::default()
        }
    }
}

/// Flags of `cordon` / `uncordon`.
#[derive(Debug, Clone, Args)]
pub struct CordonArgs {
    /// The nodes
    #[command(flatten)]
    pub target: TargetArgs,
    /// --dry-run
    #[command(flatten)]
    pub dry_run: DryRunFlag,
}

/// Flags of `demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Use this scenario file instead of the built-in one (kubesim scenario YAML)
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// The node to drain (default: the scenario's first node)
    #[arg(long, value_name = "NODE")]
    pub node: Option<String>,
    /// Drain through the controller: run it in the process, create a NodeDrain and follow it
    #[arg(long)]
    pub controller: bool,
    /// Not for `demo`: its cluster runs in the process (kept out of its help; refused if given)
    #[arg(long, hide = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Not for `demo`, as --kubeconfig
    #[arg(long, hide = true, value_name = "NAME")]
    pub context: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kdrain").chain(args.iter().copied()))
    }

    fn drain(args: &[&str]) -> DrainArgs {
        match parse(args).unwrap().command {
            Command::Drain(d) => d,
            other => panic!("not drain: {other:?}"),
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn kubectl_defaults() {
        let d = drain(&["drain", "n1"]);
        assert!(!d.force && !d.ignore_daemonsets && !d.delete_emptydir_data);
        assert_eq!(d.grace_period, -1);
        assert_eq!(d.timeout, Duration::ZERO);
        assert_eq!(d.pod_selector, None);
        assert!(!d.disable_eviction);
        assert_eq!(d.skip_wait_for_delete_timeout, 0);
        assert_eq!(d.chunk_size, 500);
        assert_eq!(d.dry_run.mode, DryRunArg::None);
        assert_eq!(d.parallel, 1);
        assert_eq!(d.target.target().unwrap(), Target::Names(vec!["n1".into()]));
    }

    #[test]
    fn dry_run_forms() {
        assert_eq!(
            drain(&["drain", "--dry-run", "n1"]).dry_run.mode,
            DryRunArg::Client
        );
        assert_eq!(
            drain(&["drain", "--dry-run", "n1"]).target.nodes,
            vec!["n1".to_string()]
        );
        assert_eq!(
            drain(&["drain", "--dry-run=server", "n1"]).dry_run.mode,
            DryRunArg::Server
        );
        assert_eq!(
            drain(&["drain", "--dry-run=client", "n1"]).dry_run.mode,
            DryRunArg::Client
        );
        assert_eq!(
            drain(&["drain", "--dry-run=none", "n1"]).dry_run.mode,
            DryRunArg::None
        );
        let err = parse(&["drain", "--dry-run=maybe", "n1"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("Must be \"none\", \"server\", or \"client\"")
        );
    }

    #[test]
    fn durations_and_numbers() {
        let d = drain(&[
            "drain",
            "n1",
            "--timeout=1h30m",
            "--grace-period=-1",
            "--chunk-size=2",
            "--skip-wait-for-delete-timeout=30",
            "--parallel",
            "3",
        ]);
        assert_eq!(d.timeout, Duration::from_secs(5400));
        assert_eq!(d.chunk_size, 2);
        assert_eq!(d.skip_wait_for_delete_timeout, 30);
        assert_eq!(d.parallel, 3);
        assert_eq!(
            drain(&["drain", "n1", "--grace-period", "-1"]).grace_period,
            -1
        );
        assert!(parse(&["drain", "n1", "--timeout=soon"]).is_err());
        assert!(parse(&["drain", "n1", "--parallel=0"]).is_err());
    }

    #[test]
    fn flags_map_to_engine_options() {
        let o = drain(&["drain", "n1"]).options();
        assert_eq!(o, kdrain::DrainOptions::kubectl());
        let o = drain(&[
            "drain",
            "n1",
            "--force",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--grace-period=10",
            "--timeout=90s",
            "--pod-selector=app=web",
            "--disable-eviction",
            "--skip-wait-for-delete-timeout=20",
            "--chunk-size=0",
            "--dry-run=server",
            "--parallel=2",
            "--uncordon-on-failure",
            "--override-opt-outs",
        ])
        .options();
        assert!(o.force && o.ignore_daemonsets && o.delete_emptydir_data && o.disable_eviction);
        assert_eq!(o.grace_period, Some(10));
        assert_eq!(o.timeout, Some(Duration::from_secs(90)));
        assert_eq!(o.pod_selector.as_deref(), Some("app=web"));
        assert_eq!(
            o.skip_wait_for_delete_timeout,
            Some(Duration::from_secs(20))
        );
        assert_eq!(o.chunk_size, 0);
        assert_eq!(o.dry_run, kdrain::DryRun::Server);
        assert_eq!(o.parallel_nodes, 2);
        assert!(o.uncordon_on_failure && o.override_opt_outs);
    }

    #[test]
    fn names_and_selector_conflict() {
        let d = drain(&["drain", "n1", "-l", "pool=a"]);
        assert_eq!(
            d.target.target().unwrap_err().message,
            "cannot specify both a node name and a --selector option"
        );
        let d = drain(&["drain", "--selector", "pool=a"]);
        assert_eq!(
            d.target.target().unwrap(),
            Target::Selector("pool=a".into())
        );
        assert!(drain(&["drain"]).target.target().is_err());
    }

    #[test]
    fn global_flags_anywhere() {
        let cli = parse(&[
            "drain",
            "n1",
            "--kubeconfig",
            "/x",
            "--context=c",
            "-o",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.global.kubeconfig, Some(PathBuf::from("/x")));
        assert_eq!(cli.global.context.as_deref(), Some("c"));
        assert_eq!(cli.global.output, Some(OutputFormat::Json));
    }
}
