//! Turns the engine's events into output: kubectl's lines, a live progress view, or JSON lines.
//! Nothing here decides anything about the drain; it only shows what the library reports.

pub mod fit;
pub mod json;
pub mod plan;
pub mod progress;
pub mod summary;
pub mod text;

use std::io::IsTerminal;
use std::time::Duration;

use kdrain::{DrainError, Event, Report, Stamped};
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
    /// Shows one event with the time it happened (renderers that print times override this).
    fn stamped(&mut self, stamped: &Stamped) {
        self.event(&stamped.event);
    }
    /// Called a few times a second so live views can update clocks.
    fn tick(&mut self) {}
    /// Shows the end of the command and returns its exit code.
    fn finish(&mut self, result: &Result<Report, DrainError>) -> i32;
    /// The user pressed Ctrl-C once: the drain is stopping (nothing more is sent, answers to
    /// requests in flight are awaited). Events keep coming until it has stopped.
    fn stopping(&mut self) {
        eprintln!("{STOPPING}");
    }
    /// The drain was interrupted: stop drawing, say what is left and how to undo the cordon.
    fn interrupted(&mut self, interruption: &Interruption<'_>) {
        for line in interruption.lines() {
            eprintln!("{line}");
        }
    }
}

/// Printed on the first Ctrl-C.
pub const STOPPING: &str = "stopping: nothing more is sent; waiting for the answers to requests in flight (press Ctrl-C again to quit at once)";

/// What the events tell while a drain runs: target pods not yet seen gone, and which nodes are
/// cordoned. Kept so that a drain quit at once (second Ctrl-C, no report) can still say what it
/// leaves behind, and so that the undo hint names only nodes still cordoned.
#[derive(Debug, Default)]
pub struct Pending {
    /// Node name -> pods (`ns/name`, uid) still to go, in plan order.
    by_node: Vec<(String, Vec<(String, String)>)>,
    /// Nodes seen cordoned (really, not in a dry run) and not uncordoned since, in order.
    cordoned: Vec<String>,
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
            Event::Cordoned { node, dry_run, .. }
                if !dry_run.is_dry() && !self.cordoned.contains(node) =>
            {
                self.cordoned.push(node.clone());
            }
            Event::Uncordoned { node, .. } => self.cordoned.retain(|n| n != node),
            _ => {}
        }
    }

    /// `(node, ["ns/name", ...])` for every node with pods left.
    pub fn left(&self) -> Vec<(String, Vec<String>)> {
        self.by_node
            .iter()
            .filter(|(_, pods)| !pods.is_empty())
            .map(|(n, pods)| (n.clone(), pods.iter().map(|(p, _)| p.clone()).collect()))
            .collect()
    }
}

/// Everything the renderers say about an interrupted drain.
#[derive(Debug)]
pub struct Interruption<'a> {
    /// Nodes still cordoned (by this run or before it), for the undo hint.
    pub cordoned: Vec<String>,
    /// `(node, ["ns/name (why)", ...])` for every node with pods left.
    pub left: Vec<(String, Vec<String>)>,
    /// The engine's report, when the drain stopped cleanly (none after a second Ctrl-C).
    pub report: Option<&'a Report>,
}

impl<'a> Interruption<'a> {
    /// A clean stop: the pods left come from the engine's report.
    pub fn from_report(report: &'a Report, pending: &Pending) -> Self {
        let left = report
            .nodes
            .iter()
            .map(|n| {
                let pods: Vec<String> = n
                    .pending()
                    .map(|p| format!("{} ({})", p.pod, why_left(p)))
                    .collect();
                (n.node.clone(), pods)
            })
            .filter(|(_, pods)| !pods.is_empty())
            .collect();
        Interruption {
            cordoned: pending.cordoned.clone(),
            left,
            report: Some(report),
        }
    }

    /// Quit at once: the pods left are those the events had not yet reported gone.
    pub fn from_events(pending: &Pending) -> Self {
        Interruption {
            cordoned: pending.cordoned.clone(),
            left: pending.left(),
            report: None,
        }
    }

    /// The lines printed when a drain is interrupted: what stopped, what is left, how to undo.
    pub fn lines(&self) -> Vec<String> {
        let how = if self.report.is_some() {
            "the drain stopped"
        } else {
            "quit at once; answers to requests in flight were not awaited"
        };
        let first = if self.cordoned.is_empty() {
            format!("interrupted: {how}; no node is left cordoned by this run")
        } else {
            format!(
                "interrupted: {how}; cordoned nodes stay cordoned (undo with `kdrain uncordon {}`)",
                self.cordoned.join(" ")
            )
        };
        let mut lines = vec![first];
        for (node, pods) in &self.left {
            lines.push(format!("pods left on node/{node}: {}", pods.join(", ")));
        }
        if self.left.is_empty() && self.report.is_some() {
            lines.push("no pods left: every pod that had to go is gone".to_string());
        }
        lines
    }
}

/// Why a pod is still on its node, in a few words.
fn why_left(pod: &kdrain::PodReport) -> String {
    match &pod.outcome {
        kdrain::PodOutcome::Blocked => match &pod.blocked_by {
            Some(by) => format!("blocked by {}", crate::config::one_line(by)),
            None => "blocked".to_string(),
        },
        kdrain::PodOutcome::Failed { error, .. } => {
            let inner = error
                .strip_prefix("interrupted (")
                .and_then(|rest| rest.strip_suffix(')'))
                .unwrap_or(error);
            crate::config::one_line(inner)
        }
        _ => "not seen gone".to_string(),
    }
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

/// How [`pump`] ended.
#[derive(Debug)]
pub enum Pumped<T> {
    /// The drain task ended (`stopped`: after a Ctrl-C asked it to stop).
    Finished {
        /// What the task returned (or its panic).
        output: Result<T, tokio::task::JoinError>,
        /// Ctrl-C was pressed and the stop request sent.
        stopped: bool,
    },
    /// Ctrl-C was pressed a second time: the caller quits without waiting.
    Quit,
}

/// Feeds events to the renderer until the drain `task` ends, then shows the events it sent last.
/// The first Ctrl-C press (from `presses`) fires `stop` and keeps rendering; a second one
/// returns [`Pumped::Quit`] at once.
pub async fn pump<T>(
    renderer: &mut (dyn Renderer + Send),
    mut events: UnboundedReceiver<Stamped>,
    mut presses: UnboundedReceiver<()>,
    stop: tokio::sync::oneshot::Sender<()>,
    pending: &mut Pending,
    task: &mut tokio::task::JoinHandle<T>,
) -> Pumped<T> {
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stop = Some(stop);
    let mut presses_open = true;
    let mut show = |renderer: &mut (dyn Renderer + Send), stamped: Stamped| {
        pending.observe(&stamped.event);
        renderer.stamped(&stamped);
    };
    loop {
        tokio::select! {
            // events first, so that everything sent before the task ended is shown in order
            biased;
            Some(event) = events.recv() => show(renderer, event),
            output = &mut *task => {
                while let Ok(event) = events.try_recv() {
                    show(renderer, event);
                }
                return Pumped::Finished { output, stopped: stop.is_none() };
            }
            press = presses.recv(), if presses_open => match press {
                Some(()) => match stop.take() {
                    Some(switch) => {
                        let _ = switch.send(());
                        renderer.stopping();
                    }
                    None => return Pumped::Quit,
                },
                None => presses_open = false,
            },
            _ = ticker.tick() => renderer.tick(),
        }
    }
}

/// The exit code for a finished drain.
pub fn exit_code(result: &Result<Report, DrainError>) -> i32 {
    match result {
        Ok(report) if report.succeeded() => crate::exit::OK,
        Ok(report) => crate::exit::for_kind(kdrain::error::report_kind(report)),
        Err(error) => crate::exit::for_kind(error.kind()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_report(name: &str, outcome: kdrain::PodOutcome, by: Option<&str>) -> kdrain::PodReport {
        kdrain::PodReport {
            pod: kdrain::PodRef {
                namespace: "shop".into(),
                name: name.into(),
                uid: format!("uid-{name}"),
            },
            action: kdrain::Action::Evict,
            reason: String::new(),
            attempts: 1,
            first_attempt: None,
            accepted: None,
            gone: None,
            blocked_by: by.map(str::to_string),
            blocked_seconds: 0.0,
            outcome,
        }
    }

    fn report(pods: Vec<kdrain::PodReport>) -> Report {
        Report {
            nodes: vec![kdrain::NodeReport {
                node: "n1".into(),
                was_cordoned: false,
                seconds: 1.0,
                pods,
                requests: Default::default(),
                outcome: kdrain::NodeOutcome::PodsLeft,
            }],
            started: jiff::Timestamp::UNIX_EPOCH,
            seconds: 1.0,
            requests: Default::default(),
        }
    }

    fn cordoned(node: &str) -> Event {
        Event::Cordoned {
            node: node.into(),
            already: false,
            dry_run: kdrain::DryRun::None,
        }
    }

    #[test]
    fn interruption_names_every_pod_left_and_why() {
        let mut pending = Pending::default();
        pending.observe(&cordoned("n1"));
        let report = report(vec![
            pod_report("gone", kdrain::PodOutcome::Gone, None),
            pod_report("web-1", kdrain::PodOutcome::Blocked, Some("web")),
            pod_report(
                "db-0",
                kdrain::PodOutcome::Failed {
                    error: "interrupted (waiting for it to terminate)".into(),
                    kind: kdrain::FailureKind::Interrupted,
                },
                None,
            ),
        ]);
        let lines = Interruption::from_report(&report, &pending).lines();
        assert_eq!(
            lines,
            vec![
                "interrupted: the drain stopped; cordoned nodes stay cordoned (undo with `kdrain uncordon n1`)",
                "pods left on node/n1: shop/web-1 (blocked by web), shop/db-0 (waiting for it to terminate)",
            ]
        );
    }

    #[test]
    fn interruption_after_uncordon_and_with_nothing_left() {
        let mut pending = Pending::default();
        pending.observe(&cordoned("n1"));
        pending.observe(&Event::Cordoned {
            node: "n2".into(),
            already: false,
            dry_run: kdrain::DryRun::Server,
        });
        pending.observe(&Event::Uncordoned {
            node: "n1".into(),
            already: false,
        });
        let report = report(vec![pod_report("gone", kdrain::PodOutcome::Gone, None)]);
        assert_eq!(
            Interruption::from_report(&report, &pending).lines(),
            vec![
                "interrupted: the drain stopped; no node is left cordoned by this run",
                "no pods left: every pod that had to go is gone",
            ]
        );
    }

    #[test]
    fn quitting_at_once_names_what_the_events_had_not_seen_gone() {
        let mut pending = Pending::default();
        pending.observe(&cordoned("n1"));
        pending.observe(&cordoned("n2"));
        let gone = kdrain::PodRef {
            namespace: "shop".into(),
            name: "a".into(),
            uid: "uid-a".into(),
        };
        pending.by_node = vec![(
            "n1".into(),
            vec![
                ("shop/a".into(), "uid-a".into()),
                ("shop/b".into(), "uid-b".into()),
            ],
        )];
        pending.observe(&Event::Gone {
            node: "n1".into(),
            pod: gone,
        });
        assert_eq!(
            Interruption::from_events(&pending).lines(),
            vec![
                "interrupted: quit at once; answers to requests in flight were not awaited; cordoned nodes stay cordoned (undo with `kdrain uncordon n1 n2`)",
                "pods left on node/n1: shop/b",
            ]
        );
    }

    #[test]
    fn suffixes() {
        assert_eq!(dry_run_suffix(kdrain::DryRun::None), "");
        assert_eq!(dry_run_suffix(kdrain::DryRun::Client), " (dry run)");
        assert_eq!(dry_run_suffix(kdrain::DryRun::Server), " (server dry run)");
    }
}
