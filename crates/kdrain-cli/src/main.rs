//! `kdrain`: drain Kubernetes nodes like `kubectl drain`, with live progress, a plan, and many
//! nodes at once. This file only wires the pieces together, top to bottom: parse the command
//! line, check every input, connect, hand the work to the `kdrain` library, render its events.

mod args;
mod config;
mod demo;
mod duration;
mod exit;
mod interrupt;
mod render;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use kdrain::{DrainError, Drainer, Report};
use tokio::sync::mpsc;

use args::{Cli, Command, CordonArgs, DrainArgs, GlobalArgs, OutputFormat, Target};
use exit::CliError;
use render::Mode;

fn main() {
    let cli = parse_command_line();
    init_logging(cli.global.verbose);
    let code = match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "kdrain", &mut std::io::stdout());
            exit::OK
        }
        command => {
            let runtime = tokio::runtime::Runtime::new().expect("cannot start the async runtime");
            match runtime.block_on(run(&cli.global, command)) {
                Ok(code) => code,
                Err(error) => {
                    report_error(&cli.global, &error);
                    exit::code_for(&error)
                }
            }
        }
    };
    std::process::exit(code);
}

/// Parses arguments; a usage error is one `error:` line and exit 2 (help and version print as usual).
fn parse_command_line() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            match error.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => error.exit(),
                _ => {
                    let rendered = error.render().to_string();
                    let first = rendered
                        .lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("error: bad usage");
                    eprintln!("{first}");
                    std::process::exit(exit::USAGE);
                }
            }
        }
    }
}

/// Debug logs go to stderr, off unless -v or RUST_LOG asks for them.
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "off",
        1 => "kdrain=info",
        2 => "kdrain=debug,kube=debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Prints a failure as one line (or as a JSON result object with `-o json`).
fn report_error(global: &GlobalArgs, error: &anyhow::Error) {
    let message = config::one_line(&format!("{error:#}"));
    if global.output == Some(OutputFormat::Json) {
        let line = render::json::ResultLine {
            event: "result",
            exit_code: exit::code_for(error),
            succeeded: false,
            error: Some(message.clone()),
            report: None,
        };
        println!("{}", serde_json::to_string(&line).unwrap_or_default());
    }
    eprintln!("error: {message}");
}

async fn run(global: &GlobalArgs, command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Drain(args) => drain(global, &args).await,
        Command::Plan(args) => plan(global, &args).await,
        Command::Cordon(args) => cordon(global, &args, true).await,
        Command::Uncordon(args) => cordon(global, &args, false).await,
        Command::Demo(args) => demo::run(global, &args).await,
        Command::Completions { .. } => unreachable!("handled before the runtime starts"),
    }
}

/// `kdrain drain`: validate everything, connect, resolve nodes, then let the library drain.
async fn drain(global: &GlobalArgs, args: &DrainArgs) -> anyhow::Result<i32> {
    let target = args.target.target()?;
    let options = args.options();
    check_inputs(&target, &options)?;
    let cluster = config::connect(global.kubeconfig.as_deref(), global.context.as_deref()).await?;
    let resolver = Drainer::new(cluster.client.clone(), options.clone());
    let nodes = resolve_nodes(&resolver, &target).await?;
    let mode = render::choose(global.output);
    let (code, _report) = drain_with(cluster.client, options, nodes, mode).await?;
    Ok(code)
}

/// `kdrain plan`: reads only, prints the plan, exit status says whether the drain can complete.
async fn plan(global: &GlobalArgs, args: &DrainArgs) -> anyhow::Result<i32> {
    let target = args.target.target()?;
    let options = args.options();
    check_inputs(&target, &options)?;
    let cluster = config::connect(global.kubeconfig.as_deref(), global.context.as_deref()).await?;
    let drainer = Drainer::new(cluster.client, options);
    let nodes = resolve_nodes(&drainer, &target).await?;
    let plan = drainer.plan(&nodes).await?;
    let code = render::plan::exit_code(&plan);
    if global.output == Some(OutputFormat::Json) {
        let line = render::plan::PlanLine {
            event: "plan",
            exit_code: code,
            can_complete: plan.can_complete(),
            plan: &plan,
        };
        println!("{}", serde_json::to_string(&line)?);
    } else {
        print!("{}", render::plan::text(&plan));
    }
    Ok(code)
}

/// `kdrain cordon` / `kdrain uncordon`: kubectl's lines, one per node.
async fn cordon(global: &GlobalArgs, args: &CordonArgs, cordon: bool) -> anyhow::Result<i32> {
    let target = args.target.target()?;
    let options = kdrain::DrainOptions {
        dry_run: args.dry_run.to_library(),
        ..kdrain::DrainOptions::kubectl()
    };
    check_inputs(&target, &options)?;
    let cluster = config::connect(global.kubeconfig.as_deref(), global.context.as_deref()).await?;
    let drainer = Drainer::new(cluster.client, options);
    let nodes = resolve_nodes(&drainer, &target).await?;
    let suffix = render::dry_run_suffix(args.dry_run.to_library());
    for node in &nodes {
        let result = if cordon {
            drainer.cordon(node).await?
        } else {
            drainer.uncordon(node).await?
        };
        let verb = if cordon { "cordoned" } else { "uncordoned" };
        let already = if result.already { "already " } else { "" };
        if global.output == Some(OutputFormat::Json) {
            let line = render::json::CordonLine {
                event: verb,
                node,
                already: result.already,
                dry_run: args.dry_run.to_library(),
            };
            println!("{}", serde_json::to_string(&line)?);
        } else {
            println!("node/{node} {already}{verb}{suffix}");
        }
    }
    Ok(exit::OK)
}

/// Checks everything that can be checked without the cluster: selectors and options.
fn check_inputs(target: &Target, options: &kdrain::DrainOptions) -> Result<(), CliError> {
    if let Target::Selector(selector) = target {
        selectors::LabelSelector::parse(selector).map_err(|e| {
            CliError::usage(format!(
                "invalid --selector {selector:?}: {e}; use a label selector such as pool=a,zone!=b"
            ))
        })?;
    }
    options
        .validate()
        .map_err(|e| CliError::usage(config::one_line(&e.to_string())))
}

/// Names as given, or the nodes a selector matches (none matching is an error, as in kubectl).
async fn resolve_nodes(drainer: &Drainer, target: &Target) -> anyhow::Result<Vec<String>> {
    match target {
        Target::Names(names) => Ok(names.clone()),
        Target::Selector(selector) => {
            let nodes = drainer.resolve_nodes(selector).await?;
            if nodes.is_empty() {
                return Err(CliError::usage(format!(
                    "no nodes match --selector {selector:?}; check the labels with `kubectl get nodes --show-labels`"
                ))
                .into());
            }
            Ok(nodes)
        }
    }
}

fn describe_nodes(nodes: &[String]) -> String {
    match nodes {
        [one] => format!("node/{one}"),
        many => format!("{} nodes", many.len()),
    }
}

/// Runs the drain on its own task and renders its events as they come (also used by the demo).
/// Ctrl-C asks the engine to stop cleanly; the events keep being shown until it has, then the
/// pods left are named and the exit status is 130. A second Ctrl-C quits at once.
pub(crate) async fn drain_with(
    client: kube::Client,
    options: kdrain::DrainOptions,
    nodes: Vec<String>,
    mode: Mode,
) -> anyhow::Result<(i32, Option<Report>)> {
    let presses = interrupt::presses();
    let (events, receiver) = mpsc::unbounded_channel();
    let drainer = Drainer::new(client, options).with_events(events);
    let mut renderer = render::renderer(mode, &format!("draining {}", describe_nodes(&nodes)));
    let (stop_switch, stop) = interrupt::stop_switch();
    let mut task = tokio::spawn(async move { drainer.drain_until(&nodes, stop).await });
    let mut pending = render::Pending::default();
    let pumped = render::pump(
        renderer.as_mut(),
        receiver,
        presses,
        stop_switch,
        &mut pending,
        &mut task,
    )
    .await;
    let (output, stopped) = match pumped {
        render::Pumped::Finished { output, stopped } => (output, stopped),
        render::Pumped::Quit => {
            task.abort();
            renderer.interrupted(&render::Interruption::from_events(&pending));
            return Ok((render::INTERRUPTED, None));
        }
    };
    let result: Result<Report, DrainError> = output.context("the drain task panicked")?;
    if stopped && let Err(DrainError::Incomplete { report }) = &result {
        // Stopped on request: not a failure to explain, but what is left and how to undo.
        renderer.interrupted(&render::Interruption::from_report(report, &pending));
        return Ok((render::INTERRUPTED, Some(report.as_ref().clone())));
    }
    let code = renderer.finish(&result);
    let report = match &result {
        Ok(r) => Some(r.clone()),
        Err(e) => e.report().cloned(),
    };
    Ok((code, report))
}
