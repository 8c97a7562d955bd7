//! `kdrain`: drain Kubernetes nodes like `kubectl drain`, with live progress, a plan, and many
//! nodes at once. This file only wires the pieces together, top to bottom: parse the command
//! line, check every input, connect, hand the work to the `kdrain` library, render its events.

mod args;
mod config;
mod controller_cmd;
#[cfg(feature = "demo")]
mod demo;
mod duration;
mod exit;
mod follow;
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
        Command::Schema { what: _ } => {
            use std::io::Write;
            let schema = render::json::schema();
            let text = serde_json::to_string_pretty(&schema).expect("a schema is JSON");
            // a closed pipe (`| head`) is not an error worth a panic
            let _ = writeln!(std::io::stdout(), "{text}");
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

/// Parses arguments; a usage error is one short block (the problem, clap's suggestion or the
/// accepted values, and where the help is) and exit 2. Help and version print as usual.
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
                    let args: Vec<String> = std::env::args().skip(1).collect();
                    eprintln!("{}", usage_block(&error.render().to_string(), &args));
                    std::process::exit(exit::USAGE);
                }
            }
        }
    }
}

/// clap's error without its usage line, blank lines and generic pointer: the `error:` line,
/// its tip or possible values, and `see `kdrain SUBCOMMAND --help``.
fn usage_block(rendered: &str, args: &[String]) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut in_usage = false;
    for line in rendered.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("Usage:") {
            in_usage = true;
            continue;
        }
        if trimmed.is_empty() {
            in_usage = false;
            continue;
        }
        // clap's "to pass '--x' as a value, use '-- --x'" misleads for a mistyped flag
        if in_usage
            || trimmed.starts_with("For more information, try")
            || trimmed.starts_with("tip: to pass ")
        {
            continue;
        }
        if lines.is_empty() {
            lines.push(trimmed.to_string());
        } else {
            lines.push(format!("  {trimmed}"));
        }
    }
    if lines.is_empty() {
        lines.push("error: bad usage".to_string());
    }
    let command = Cli::command();
    let sub = args.iter().find_map(|a| {
        command
            .get_subcommands()
            .find(|c| c.get_name() == a)
            .map(|c| c.get_name().to_string())
    });
    let help = match sub {
        Some(sub) => format!("kdrain {sub} --help"),
        None => "kdrain --help".to_string(),
    };
    lines.push(format!("  see `{help}`"));
    lines.join("\n")
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
        render::json::print(&render::json::ResultLine::new(
            jiff::Timestamp::now(),
            exit::code_for(error),
            false,
            Some(message.clone()),
            None,
        ));
    }
    eprintln!("error: {message}");
}

async fn run(global: &GlobalArgs, command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Drain(args) => drain(global, &args).await,
        Command::Plan(args) => plan(global, &args).await,
        Command::Cordon(args) => cordon(global, &args, true).await,
        Command::Uncordon(args) => cordon(global, &args, false).await,
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo::run(global, &args).await,
        Command::Controller(args) => controller_cmd::controller(global, &args).await,
        Command::Request(args) => controller_cmd::request(global, &args).await,
        Command::Completions { .. } | Command::Schema { .. } => {
            unreachable!("handled before the runtime starts")
        }
    }
}

/// `kdrain drain`: validate everything, connect, resolve nodes, then let the library drain.
async fn drain(global: &GlobalArgs, args: &DrainArgs) -> anyhow::Result<i32> {
    let target = args.target.target()?;
    let options = args.options();
    check_inputs(&target, &options)?;
    let cluster = config::connect(global.kubeconfig.as_deref(), global.context.as_deref()).await?;
    let (resolved, mut preface) = mpsc::unbounded_channel::<kdrain::Stamped>();
    let resolver = Drainer::new(cluster.client.clone(), options.clone()).with_events(resolved);
    let nodes = resolve_nodes(&resolver, &target).await?;
    // `nodes_resolved` (for -l) is shown first, as `plan` shows it
    let mut shown_first = Vec::new();
    while let Ok(event) = preface.try_recv() {
        shown_first.push(event);
    }
    let mode = render::choose(global.output);
    let (code, _report) = drain_with(cluster.client, options, nodes, mode, shown_first).await?;
    Ok(code)
}

/// `kdrain plan`: reads only, prints the plan, exit status says whether the drain can complete.
async fn plan(global: &GlobalArgs, args: &DrainArgs) -> anyhow::Result<i32> {
    let target = args.target.target()?;
    let options = args.options();
    check_inputs(&target, &options)?;
    let cluster = config::connect(global.kubeconfig.as_deref(), global.context.as_deref()).await?;
    let (events, mut received) = mpsc::unbounded_channel::<kdrain::Stamped>();
    let cluster_client = cluster.client.clone();
    let drainer = Drainer::new(cluster.client, options).with_events(events);
    let nodes = resolve_nodes(&drainer, &target).await?;
    let plan = match drainer.plan(&nodes).await {
        Ok(plan) => plan,
        Err(error) => {
            return Err(name_every_unknown(&cluster_client, &nodes, error)
                .await
                .into());
        }
    };
    let planned_at = jiff::Timestamp::now();
    let code = render::plan::exit_code(&plan);
    if global.output == Some(OutputFormat::Json) {
        // The same vocabulary as `drain`: the events up to `planned`, then the result line.
        while let Ok(event) = received.try_recv() {
            render::json::print(&render::json::EventLine::new(&event));
        }
        let error = (!plan.can_complete()).then(|| render::plan::verdict(&plan));
        render::json::print(&render::json::ResultLine::new(
            planned_at,
            code,
            plan.can_complete(),
            error,
            None,
        ));
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
    let drainer = Drainer::new(cluster.client.clone(), options);
    let nodes = resolve_nodes(&drainer, &target).await?;
    if nodes.len() > 1 {
        // Bad input changes nothing: every node is looked up before the first is cordoned.
        let unknown = unknown_nodes(&cluster.client, &nodes).await?;
        if !unknown.is_empty() {
            return Err(not_found(unknown).into());
        }
    }
    let (events, mut received) = mpsc::unbounded_channel::<kdrain::Stamped>();
    let drainer = drainer.with_events(events);
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
            // The engine's own `cordoned` / `uncordoned` event, dated when it happened.
            while let Ok(event) = received.try_recv() {
                render::json::print(&render::json::EventLine::new(&event));
            }
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

/// The named nodes that do not exist, in the order given.
async fn unknown_nodes(client: &kube::Client, nodes: &[String]) -> Result<Vec<String>, DrainError> {
    let api: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
    let mut unknown = Vec::new();
    for node in nodes {
        let found = api.get_opt(node).await.map_err(|source| DrainError::Api {
            context: format!("getting node {node:?}"),
            source,
        })?;
        if found.is_none() {
            unknown.push(node.clone());
        }
    }
    Ok(unknown)
}

/// The error for unknown nodes: kdrain's one-node message, or all of them named.
fn not_found(mut unknown: Vec<String>) -> DrainError {
    if unknown.len() == 1 {
        DrainError::NodeNotFound {
            node: unknown.remove(0),
        }
    } else {
        DrainError::NodesNotFound { nodes: unknown }
    }
}

/// The engine stops at the first unknown node; when several nodes were named, the others are
/// looked up too so that the error names every unknown one (only on this error path).
async fn name_every_unknown(
    client: &kube::Client,
    nodes: &[String],
    error: DrainError,
) -> DrainError {
    if !matches!(error, DrainError::NodeNotFound { .. }) || nodes.len() < 2 {
        return error;
    }
    match unknown_nodes(client, nodes).await {
        Ok(unknown) if !unknown.is_empty() => not_found(unknown),
        _ => error,
    }
}

fn describe_nodes(nodes: &[String]) -> String {
    match nodes {
        [one] => format!("node/{one}"),
        many => format!("{} nodes", many.len()),
    }
}

/// Runs the drain on its own task and renders its events as they come (also used by the demo),
/// after `shown_first` (events of the node resolution).
/// Ctrl-C asks the engine to stop cleanly; the events keep being shown until it has, then the
/// pods left are named and the exit status is 130. A second Ctrl-C quits at once.
pub(crate) async fn drain_with(
    client: kube::Client,
    options: kdrain::DrainOptions,
    nodes: Vec<String>,
    mode: Mode,
    shown_first: Vec<kdrain::Stamped>,
) -> anyhow::Result<(i32, Option<Report>)> {
    let presses = interrupt::presses();
    let (events, receiver) = mpsc::unbounded_channel::<kdrain::Stamped>();
    let lookup = client.clone();
    let all_nodes = nodes.clone();
    let drainer = Drainer::new(client, options).with_events(events);
    let mut renderer = render::renderer(mode, &format!("draining {}", describe_nodes(&nodes)));
    let (stop_switch, stop) = interrupt::stop_switch();
    let mut task = tokio::spawn(async move { drainer.drain_until(&nodes, stop).await });
    let mut pending = render::Pending::default();
    for event in &shown_first {
        pending.observe(&event.event);
        renderer.stamped(event);
    }
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
    let result: Result<Report, DrainError> = match output.context("the drain task panicked")? {
        Err(error) => Err(name_every_unknown(&lookup, &all_nodes, error).await),
        ok => ok,
    };
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
