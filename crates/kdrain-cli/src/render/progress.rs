//! The live view on a terminal: per node a bar of pods gone out of pods to go, and under it one
//! line per pod that is blocked (by which budget, "needs X has Y", since when) or terminating
//! (grace left). A summary table follows at the end.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kdrain::{DrainError, Event, PodRef, Report};

use super::{Renderer, dry_run_suffix, exit_code, needs_has};
use crate::duration::format_short;

/// What a shown pod is doing.
enum PodState {
    Blocked {
        budget: Option<String>,
        cause: String,
        /// kdrain itself holds the pod back (no request sent), pacing the budget.
        held_back: bool,
        since: jiff::Timestamp,
        retry_at: Instant,
    },
    Terminating {
        grace_deadline: Instant,
        since: Instant,
    },
}

struct PodView {
    node: String,
    pod: PodRef,
    line: ProgressBar,
    state: PodState,
}

struct NodeView {
    name: String,
    bar: ProgressBar,
    /// UIDs of the pods that must leave (from the plan).
    to_go: HashSet<String>,
    gone: u64,
    in_flight: HashSet<String>,
    /// Keys of the pod lines shown under this node, in display order.
    lines: Vec<String>,
    finished: bool,
}

/// Draws bars with indicatif on stderr; the summary goes to stdout.
pub struct ProgressRenderer {
    multi: MultiProgress,
    header: ProgressBar,
    title: String,
    started: Instant,
    nodes: Vec<NodeView>,
    pods: HashMap<String, PodView>,
    /// Ctrl-C asked the drain to stop; it is winding down.
    stopping: bool,
}

/// Pod lines shown under one node; more are counted in the node's bar as "+N more".
const MAX_POD_LINES: usize = 6;

fn node_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:.bold} [{bar:30.green/white}] {pos}/{len} pods gone{msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn line_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn key(pod: &PodRef) -> String {
    format!("{}/{}/{}", pod.namespace, pod.name, pod.uid)
}

impl ProgressRenderer {
    /// A live view titled `title` (e.g. "draining node/n1").
    pub fn new(title: &str) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let header = multi.add(ProgressBar::new_spinner().with_style(line_style()));
        header.set_message(format!("kdrain: {title}"));
        ProgressRenderer {
            multi,
            header,
            title: title.to_string(),
            started: Instant::now(),
            nodes: Vec::new(),
            pods: HashMap::new(),
            stopping: false,
        }
    }

    fn node(&mut self, name: &str) -> &mut NodeView {
        if let Some(i) = self.nodes.iter().position(|n| n.name == name) {
            return &mut self.nodes[i];
        }
        let after = self
            .nodes
            .last()
            .map(|n| {
                n.lines
                    .last()
                    .and_then(|k| self.pods.get(k))
                    .map(|p| p.line.clone())
                    .unwrap_or_else(|| n.bar.clone())
            })
            .unwrap_or_else(|| self.header.clone());
        let bar = self
            .multi
            .insert_after(&after, ProgressBar::new(0).with_style(node_style()));
        self.nodes.push(NodeView {
            name: name.to_string(),
            bar,
            to_go: HashSet::new(),
            gone: 0,
            in_flight: HashSet::new(),
            lines: Vec::new(),
            finished: false,
        });
        // Every node's name is padded to the longest, so the bars line up.
        let width = self
            .nodes
            .iter()
            .map(|n| n.name.len())
            .max()
            .unwrap_or(0)
            .max(8);
        for n in &self.nodes {
            n.bar.set_prefix(format!("node/{:<width$}", n.name));
        }
        self.nodes.last_mut().expect("just pushed")
    }

    fn println(&self, line: &str) {
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }

    /// Shows (or updates) the line of one pod under its node.
    fn show_pod(&mut self, node: &str, pod: &PodRef, state: PodState) {
        let k = key(pod);
        if let Some(view) = self.pods.get_mut(&k) {
            view.state = state;
        } else {
            let anchor = {
                let n = self.node(node);
                n.lines
                    .last()
                    .cloned()
                    .map_or_else(|| Err(n.bar.clone()), Ok)
            };
            let anchor = match anchor {
                Ok(last_key) => self
                    .pods
                    .get(&last_key)
                    .map(|p| p.line.clone())
                    .unwrap_or_else(|| self.node(node).bar.clone()),
                Err(bar) => bar,
            };
            // Past a few lines per node the screen would overflow; the node's bar still
            // counts every blocked and terminating pod.
            let line = if self.node(node).lines.len() < MAX_POD_LINES {
                let line = self
                    .multi
                    .insert_after(&anchor, ProgressBar::new_spinner().with_style(line_style()));
                self.node(node).lines.push(k.clone());
                line
            } else {
                ProgressBar::hidden()
            };
            self.pods.insert(
                k.clone(),
                PodView {
                    node: node.to_string(),
                    pod: pod.clone(),
                    line,
                    state,
                },
            );
        }
        self.refresh_pod(&k);
    }

    fn hide_pod(&mut self, pod: &PodRef) {
        let k = key(pod);
        if let Some(view) = self.pods.remove(&k) {
            view.line.finish_and_clear();
            self.multi.remove(&view.line);
            let node = view.node.clone();
            self.node(&node).lines.retain(|l| l != &k);
        }
    }

    fn refresh_pod(&self, k: &str) {
        let Some(view) = self.pods.get(k) else { return };
        let now = Instant::now();
        let text = match &view.state {
            PodState::Blocked {
                budget,
                cause,
                held_back,
                since,
                retry_at,
            } => {
                let by = budget
                    .as_deref()
                    .map(|b| format!("by budget {b}"))
                    .unwrap_or_else(|| "by the server".to_string());
                let mut why = needs_has(cause).unwrap_or_else(|| cause.clone());
                if *held_back {
                    why.push_str(" (held back, no request sent)");
                }
                let blocked_for = (jiff::Timestamp::now().as_millisecond() - since.as_millisecond())
                    .max(0) as f64
                    / 1000.0;
                let retry = retry_at.saturating_duration_since(now).as_secs_f64();
                let next = if retry > 0.0 {
                    format!("retry in {}", format_short(retry))
                } else {
                    "retry when the budget allows".to_string()
                };
                format!(
                    "    blocked      {} {by}: {why} · since {} · {next}",
                    view.pod,
                    format_short(blocked_for)
                )
            }
            PodState::Terminating {
                grace_deadline,
                since,
            } => {
                let left = grace_deadline.saturating_duration_since(now).as_secs_f64();
                format!(
                    "    terminating  {} · for {} · grace left {}",
                    view.pod,
                    format_short(now.duration_since(*since).as_secs_f64()),
                    format_short(left)
                )
            }
        };
        view.line.set_message(text);
    }

    fn refresh_node(&mut self, name: &str) {
        let (blocked, terminating): (Vec<_>, Vec<_>) = self
            .pods
            .values()
            .filter(|p| p.node == name)
            .partition(|p| matches!(p.state, PodState::Blocked { .. }));
        let (blocked, terminating) = (blocked.len(), terminating.len());
        let n = self.node(name);
        if n.finished {
            return;
        }
        let hidden = (blocked + terminating).saturating_sub(n.lines.len());
        let mut parts = Vec::new();
        if !n.in_flight.is_empty() {
            parts.push(format!("{} evicting", n.in_flight.len()));
        }
        if terminating > 0 {
            parts.push(format!("{terminating} terminating"));
        }
        if blocked > 0 {
            parts.push(format!("{blocked} blocked"));
        }
        if hidden > 0 {
            parts.push(format!("+{hidden} more not shown"));
        }
        let msg = if parts.is_empty() {
            String::new()
        } else {
            format!(" · {}", parts.join(" · "))
        };
        n.bar.set_message(msg);
    }
}

impl Renderer for ProgressRenderer {
    fn event(&mut self, event: &Event) {
        match event {
            Event::NodesResolved { nodes } => {
                self.println(&format!(
                    "selector matched {} node(s): {}",
                    nodes.len(),
                    nodes.join(", ")
                ));
            }
            Event::Planned { plan } => {
                for np in &plan.nodes {
                    let to_go: HashSet<String> = np
                        .pods
                        .iter()
                        .filter(|p| {
                            matches!(
                                p.action,
                                kdrain::Action::Evict
                                    | kdrain::Action::Delete
                                    | kdrain::Action::Wait
                            )
                        })
                        .map(|p| p.uid.clone())
                        .collect();
                    let n = self.node(&np.node);
                    n.bar.set_length(to_go.len() as u64);
                    n.to_go = to_go;
                }
            }
            Event::Warning { message, .. } => {
                let line = if message.starts_with("Warning:") {
                    message.clone()
                } else {
                    format!("Warning: {message}")
                };
                self.println(&line);
            }
            Event::Cordoned {
                node,
                already,
                dry_run,
            } => {
                self.node(node);
                let what = if *already {
                    "already cordoned"
                } else {
                    "cordoned"
                };
                self.println(&format!("node/{node} {what}{}", dry_run_suffix(*dry_run)));
            }
            Event::Uncordoned { node, already } => {
                let what = if *already {
                    "already uncordoned"
                } else {
                    "uncordoned"
                };
                self.println(&format!("node/{node} {what}"));
            }
            Event::EvictionSent { node, pod, .. } | Event::DeleteSent { node, pod, .. } => {
                let n = self.node(node);
                if !n.to_go.contains(&pod.uid) {
                    n.to_go.insert(pod.uid.clone());
                    n.bar.inc_length(1);
                }
                n.in_flight.insert(pod.uid.clone());
                let node = node.clone();
                self.refresh_node(&node);
            }
            Event::Blocked {
                node,
                pod,
                budget,
                cause,
                message,
                retry_in_seconds,
                since,
                ..
            } => {
                self.node(node).in_flight.remove(&pod.uid);
                let retry = Duration::from_secs_f64(retry_in_seconds.max(0.0));
                self.show_pod(
                    node,
                    pod,
                    PodState::Blocked {
                        budget: budget.clone(),
                        cause: cause.clone(),
                        held_back: message.contains("no request sent"),
                        since: *since,
                        retry_at: Instant::now() + retry,
                    },
                );
                let node = node.clone();
                self.refresh_node(&node);
            }
            Event::Evicted { node, pod } => {
                self.node(node).in_flight.remove(&pod.uid);
                self.hide_pod(pod);
                let node = node.clone();
                self.refresh_node(&node);
            }
            Event::Terminating {
                node,
                pod,
                grace_left_seconds,
            } => {
                self.node(node).in_flight.remove(&pod.uid);
                let now = Instant::now();
                let since = match self.pods.get(&key(pod)).map(|p| &p.state) {
                    Some(PodState::Terminating { since, .. }) => *since,
                    _ => now,
                };
                self.show_pod(
                    node,
                    pod,
                    PodState::Terminating {
                        grace_deadline: now + Duration::from_secs_f64(grace_left_seconds.max(0.0)),
                        since,
                    },
                );
                let node = node.clone();
                self.refresh_node(&node);
            }
            Event::Gone { node, pod } => {
                self.hide_pod(pod);
                let n = self.node(node);
                n.in_flight.remove(&pod.uid);
                if n.to_go.contains(&pod.uid) {
                    n.gone += 1;
                    n.bar.set_position(n.gone);
                }
                let node = node.clone();
                self.refresh_node(&node);
            }
            Event::PodFailed { node, pod, error } => {
                self.node(node).in_flight.remove(&pod.uid);
                self.hide_pod(pod);
                self.println(&format!("pod {pod} failed: {error}"));
                let node = node.clone();
                self.refresh_node(&node);
            }
            Event::NodeDrained { node, dry_run } => {
                let elapsed = format_short(self.started.elapsed().as_secs_f64());
                let n = self.node(node);
                n.finished = true;
                n.in_flight.clear();
                let len = n.bar.length().unwrap_or(0);
                n.bar.set_position(if dry_run.is_dry() {
                    len
                } else {
                    n.gone.max(len)
                });
                n.bar.finish_with_message(format!(
                    " · drained{} at {elapsed}",
                    dry_run_suffix(*dry_run)
                ));
            }
            Event::NodeFailed { node, error, .. } => {
                let stopping = self.stopping;
                let n = self.node(node);
                n.finished = true;
                n.in_flight.clear();
                if stopping {
                    n.bar.abandon_with_message(" · interrupted");
                } else {
                    let short = crate::config::one_line(error);
                    n.bar.abandon_with_message(format!(" · FAILED: {short}"));
                }
            }
            Event::Skipped { .. } | Event::Done { .. } => {}
        }
    }

    fn tick(&mut self) {
        let keys: Vec<String> = self.pods.keys().cloned().collect();
        for k in keys {
            self.refresh_pod(&k);
        }
        let stopping = if self.stopping {
            " · stopping (Ctrl-C again quits at once)"
        } else {
            ""
        };
        self.header.set_message(format!(
            "kdrain: {} · {}{stopping}",
            self.title,
            format_short(self.started.elapsed().as_secs_f64())
        ));
    }

    fn stopping(&mut self) {
        self.stopping = true;
        self.tick();
        self.println(super::STOPPING);
    }

    fn interrupted(&mut self, interruption: &super::Interruption<'_>) {
        for (_, view) in self.pods.drain() {
            view.line.finish_and_clear();
            self.multi.remove(&view.line);
        }
        for n in &self.nodes {
            if !n.bar.is_finished() {
                n.bar.abandon_with_message(" · interrupted");
            }
        }
        self.header.abandon_with_message(format!(
            "kdrain: {} · interrupted at {}",
            self.title,
            format_short(self.started.elapsed().as_secs_f64())
        ));
        if let Some(report) = interruption.report {
            print!("{}", super::summary::table(report));
        }
        for line in interruption.lines() {
            eprintln!("{line}");
        }
    }

    fn finish(&mut self, result: &Result<Report, DrainError>) -> i32 {
        for (_, view) in self.pods.drain() {
            view.line.finish_and_clear();
            self.multi.remove(&view.line);
        }
        for n in &self.nodes {
            if !n.bar.is_finished() {
                n.bar.abandon();
            }
        }
        self.header.finish_with_message(format!(
            "kdrain: {} · finished in {}",
            self.title,
            format_short(self.started.elapsed().as_secs_f64())
        ));
        let report = match result {
            Ok(report) => Some(report),
            Err(e) => e.report(),
        };
        if let Some(report) = report {
            print!("{}", super::summary::table(report));
        }
        match result {
            Ok(report) if !report.succeeded() => {
                let e = DrainError::Incomplete {
                    report: Box::new(report.clone()),
                };
                eprintln!("error: {e}");
            }
            Ok(_) => {}
            Err(e) => eprintln!("error: {}", crate::config::one_line(&e.to_string())),
        }
        exit_code(result)
    }
}
