//! Turns the engine's events into output: kubectl's lines, a live progress view, or JSON lines.
//! Nothing here decides anything about the drain; it only shows what the library reports.

pub mod json;
pub mod plan;
pub mod progress;
pub mod summary;
pub mod text;

use std::io::IsTerminal;
use std::time::Duration;

use kdrain::{DrainError, Event, Report};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::args::OutputFormat;

/// How output is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// kubectl's exact lines.
    Text,
    /// Live progress bars (only on a terminal).
    Progress,
    /// One JSON object per line.
    Json,
}

/// Picks the mode: `-o` wins; otherwise progress when both stdout and stderr are terminals.
pub fn choose(output: Option<OutputFormat>) -> Mode {
    match output {
        Some(OutputFormat::Text) => Mode::Text,
        Some(OutputFormat::Json) => Mode::Json,
        None if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() => {
            Mode::Progress
        }
        None => Mode::Text,
    }
}

/// Something that shows drain events as they arrive.
pub trait Renderer {
    /// Shows one event.
    fn event(&mut self, event: &Event);
    /// Called a few times a second so live views can update clocks.
    fn tick(&mut self) {}
    /// Shows the end of the command and returns its exit code.
    fn finish(&mut self, result: &Result<Report, DrainError>) -> i32;
    /// The user pressed Ctrl-C: stop drawing, say what state the nodes are left in.
    fn interrupted(&mut self, nodes: &[String], pending: &Pending) {
        for line in interrupted_lines(nodes, pending) {
            eprintln!("{line}");
        }
    }
}

/// Target pods not yet seen gone, by node, as the events tell it (kept so that an
/// interrupted drain can say what it leaves behind).
#[derive(Debug, Default)]
pub struct Pending {
    /// Node name -> pods (`ns/name`, uid) still to go, in plan order.
    by_node: Vec<(String, Vec<(String, String)>)>,
}

impl Pending {
    /// Updates the bookkeeping with one event.
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::Planned { plan } => {
                for node in &plan.nodes {
                    let pods = node
                        .pods
                        .iter()
                        .filter(|p| p.action.is_target())
                        .map(|p| (format!("{}/{}", p.namespace, p.name), p.uid.clone()))
                        .collect();
                    self.by_node.retain(|(n, _)| n != &node.node);
                    self.by_node.push((node.node.clone(), pods));
                }
            }
            Event::Gone { node, pod } => {
                if let Some((_, pods)) = self.by_node.iter_mut().find(|(n, _)| n == node) {
                    pods.retain(|(_, uid)| uid != &pod.uid);
                }
            }
            _ => {}
        }
    }

    /// `(node, ["ns/name", ...])` for every node with pods left.
    pub fn left(&self) -> Vec<(&str, Vec<&str>)> {
        self.by_node
            .iter()
            .filter(|(_, pods)| !pods.is_empty())
            .map(|(n, pods)| (n.as_str(), pods.iter().map(|(p, _)| p.as_str()).collect()))
            .collect()
    }
}

/// The lines printed when a drain is interrupted: what stopped, what is left, how to undo.
pub fn interrupted_lines(nodes: &[String], pending: &Pending) -> Vec<String> {
    let mut lines = vec![format!(
        "interrupted: the drain stopped; cordoned nodes stay cordoned (undo with `kdrain uncordon {}`)",
        nodes.join(" ")
    )];
    for (node, pods) in pending.left() {
        lines.push(format!("pods left on node/{node}: {}", pods.join(", ")));
    }
    lines
}

/// Exit status after Ctrl-C (128 + SIGINT), as shells report it.
pub const INTERRUPTED: i32 = 130;

/// Builds the renderer for a mode. `title` names the run in the progress view.
pub fn renderer(mode: Mode, title: &str) -> Box<dyn Renderer + Send> {
    match mode {
        Mode::Text => Box::new(text::TextRenderer::new()),
        Mode::Progress => Box::new(progress::ProgressRenderer::new(title)),
        Mode::Json => Box::new(json::JsonRenderer::new()),
    }
}

/// Feeds events to the renderer until the sender side is dropped (the drain finished).
/// Returns false if the user pressed Ctrl-C first.
pub async fn pump(
    renderer: &mut (dyn Renderer + Send),
    mut events: UnboundedReceiver<Event>,
    pending: &mut Pending,
) -> bool {
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            maybe = events.recv() => match maybe {
                Some(event) => {
                    pending.observe(&event);
                    renderer.event(&event);
                }
                None => return true,
            },
            _ = ticker.tick() => renderer.tick(),
            _ = &mut ctrl_c => return false,
        }
    }
}

/// The exit code for a finished drain.
pub fn exit_code(result: &Result<Report, DrainError>) -> i32 {
    match result {
        Ok(report) if report.succeeded() => crate::exit::OK,
        Ok(report) => kdrain::DrainError::Incomplete {
            report: Box::new(report.clone()),
        }
        .exit_code(),
        Err(error) => error.exit_code(),
    }
}

/// kubectl's ` (dry run)` / ` (server dry run)` suffix.
pub fn dry_run_suffix(dry_run: kdrain::DryRun) -> &'static str {
    match dry_run {
        kdrain::DryRun::None => "",
        kdrain::DryRun::Client => " (dry run)",
        kdrain::DryRun::Server => " (server dry run)",
    }
}

/// "needs 2 has 1" from a budget cause such as
/// "The disruption budget web needs 2 healthy pods and has 1 currently".
pub fn needs_has(cause: &str) -> Option<String> {
    let after_needs = cause.split(" needs ").nth(1)?;
    let needs: String = after_needs
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let after_has = after_needs.split(" has ").nth(1)?;
    let has: String = after_has
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    if needs.is_empty() || has.is_empty() {
        return None;
    }
    Some(format!("needs {needs} has {has}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_has_from_cause() {
        assert_eq!(
            needs_has("The disruption budget web needs 2 healthy pods and has 1 currently")
                .as_deref(),
            Some("needs 2 has 1")
        );
        assert_eq!(needs_has("still being processed"), None);
    }

    #[test]
    fn suffixes() {
        assert_eq!(dry_run_suffix(kdrain::DryRun::None), "");
        assert_eq!(dry_run_suffix(kdrain::DryRun::Client), " (dry run)");
        assert_eq!(dry_run_suffix(kdrain::DryRun::Server), " (server dry run)");
    }
}
