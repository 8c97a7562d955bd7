//! The live view on a terminal: per node a bar of pods gone out of pods to go, and under it one
//! line per pod that is blocked (what it waits for: a budget with its "needs X has Y", since
//! when, a retry time only where one exists) or terminating (grace left). Every line is fitted
//! to the terminal's width (the least useful parts go first) and refitted when it is resized;
//! every time shown is read from one clock per frame. A summary table follows at the end.

use std::collections::{HashMap, HashSet};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::{SignedDuration, Timestamp};
use kdrain::{DrainError, Event, PodRef, Report, Stamped, WaitsFor};

use super::fit::{self, Part};
use super::{Renderer, dry_run_suffix, exit_code};
use crate::duration::format_short;

/// What a shown pod is doing.
enum PodState {
    Blocked {
        /// What it waits for, in words ("waits for budget web: needs 3 has 4").
        waits: String,
        /// kdrain itself holds the pod back (no request sent), pacing the budget.
        held_back: bool,
        since: Timestamp,
        /// When the next attempt is due, for waits that have one (throttling, errors).
        retry_at: Option<Timestamp>,
    },
    Terminating {
        grace_deadline: Timestamp,
        since: Timestamp,
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
    line: ProgressBar,
    /// UIDs of the pods that must leave (from the plan).
    to_go: HashSet<String>,
    gone: u64,
    in_flight: HashSet<String>,
    /// Keys of the pod lines shown under this node, in display order.
    lines: Vec<String>,
    /// How the node ended ("drained at 6.0s", "FAILED: ..."), once it has.
    ended: Option<String>,
}

/// Draws the view with indicatif on stderr; the summary goes to stdout.
pub struct ProgressRenderer {
    multi: MultiProgress,
    header: ProgressBar,
    title: String,
    /// What is drained ("node/n1", "3 nodes"), for the last header line.
    what: String,
    started: Timestamp,
    /// When the event being shown happened (the engine's time).
    at: Timestamp,
    /// The width the lines were last fitted to.
    columns: usize,
    nodes: Vec<NodeView>,
    pods: HashMap<String, PodView>,
    /// Ctrl-C asked the drain to stop; it is winding down.
    stopping: bool,
}

/// Pod lines shown under one node; more are counted in the node's line as "+N more".
const MAX_POD_LINES: usize = 6;

fn line_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn key(pod: &PodRef) -> String {
    format!("{}/{}/{}", pod.namespace, pod.name, pod.uid)
}

/// Seconds from `from` to `to` (0 when `to` is earlier).
fn secs(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64().max(0.0)
}

fn later(t: Timestamp, seconds: f64) -> Timestamp {
    let d = SignedDuration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(SignedDuration::ZERO);
    t.checked_add(d).unwrap_or(t)
}

/// What a blocked pod waits for, in a few words.
fn waits_for(
    waits_for: WaitsFor,
    pod: &PodRef,
    budget: Option<&str>,
    healthy: Option<kdrain::Healthy>,
    cause: &str,
) -> String {
    match (waits_for, budget) {
        (WaitsFor::Budget, Some(b)) => match healthy {
            Some(h) => format!("waits for budget {b}: needs {} has {}", h.needs, h.has),
            None => format!("waits for budget {b}"),
        },
        (WaitsFor::SeveralBudgets, Some(b)) => {
            format!("under several budgets ({b}): waits for that to change")
        }
        (WaitsFor::Throttling, _) => "throttled by the API server (429)".to_string(),
        (WaitsFor::NamespaceTermination, _) => {
            format!("waits for namespace {} to delete it", pod.namespace)
        }
        _ => crate::config::one_line(cause),
    }
}

impl ProgressRenderer {
    /// A live view titled `title` (e.g. "draining node/n1").
    pub fn new(title: &str) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let header = multi.add(ProgressBar::new_spinner().with_style(line_style()));
        let now = Timestamp::now();
        let mut view = ProgressRenderer {
            multi,
            header,
            title: title.to_string(),
            what: title.strip_prefix("draining ").unwrap_or(title).to_string(),
            started: now,
            at: now,
            columns: fit::terminal_width(),
            nodes: Vec::new(),
            pods: HashMap::new(),
            stopping: false,
        };
        view.redraw(now);
        view
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
                    .unwrap_or_else(|| n.line.clone())
            })
            .unwrap_or_else(|| self.header.clone());
        let line = self
            .multi
            .insert_after(&after, ProgressBar::new_spinner().with_style(line_style()));
        self.nodes.push(NodeView {
            name: name.to_string(),
            line,
            to_go: HashSet::new(),
            gone: 0,
            in_flight: HashSet::new(),
            lines: Vec::new(),
            ended: None,
        });
        self.nodes.last_mut().expect("just pushed")
    }

    /// Prints a line above the view, wrapped at words to the terminal's width.
    fn println(&self, line: &str) {
        for part in fit::wrap(line, self.columns, "  ") {
            if self.multi.is_hidden() {
                eprintln!("{part}");
            } else {
                let _ = self.multi.println(part);
            }
        }
    }

    /// Shows (or updates) the line of one pod under its node.
    fn show_pod(&mut self, node: &str, pod: &PodRef, state: PodState) {
        let k = key(pod);
        if let Some(view) = self.pods.get_mut(&k) {
            view.state = state;
            return;
        }
        let anchor = {
            let n = self.node(node);
            n.lines
                .last()
                .cloned()
                .map_or_else(|| Err(n.line.clone()), Ok)
        };
        let anchor = match anchor {
            Ok(last_key) => self
                .pods
                .get(&last_key)
                .map(|p| p.line.clone())
                .unwrap_or_else(|| self.node(node).line.clone()),
            Err(line) => line,
        };
        // Past a few lines per node the screen would overflow; the node's line still counts
        // every blocked and terminating pod.
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
            k,
            PodView {
                node: node.to_string(),
                pod: pod.clone(),
                line,
                state,
            },
        );
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

    /// Redraws every line for the time `now` (one clock for the whole frame), fitted to the
    /// terminal's current width.
    fn redraw(&mut self, now: Timestamp) {
        self.columns = fit::terminal_width();
        self.header.set_message(self.header_line(now));
        for n in &self.nodes {
            n.line.set_message(self.node_line(n));
        }
        for view in self.pods.values() {
            view.line.set_message(self.pod_line(view, now));
        }
    }

    fn header_line(&self, now: Timestamp) -> String {
        let mut parts = vec![Part::new(format_short(secs(self.started, now)), 9)];
        if self.stopping {
            parts.push(Part::new("stopping (Ctrl-C again quits at once)", 8));
        }
        fit::fit(&format!("kdrain: {}", self.title), &parts, self.columns)
    }

    fn pod_line(&self, view: &PodView, now: Timestamp) -> String {
        match &view.state {
            PodState::Blocked {
                waits,
                held_back,
                since,
                retry_at,
            } => {
                let mut parts = vec![Part::new(waits.clone(), 9)];
                if *held_back {
                    parts.push(Part::new("held back, no request sent", 2));
                }
                parts.push(Part::new(
                    format!("since {}", format_short(secs(*since, now))),
                    5,
                ));
                if let Some(at) = retry_at {
                    parts.push(Part::new(
                        format!("retry in {}", format_short(secs(now, *at))),
                        7,
                    ));
                }
                fit::fit(
                    &format!("    blocked      {}", view.pod),
                    &parts,
                    self.columns,
                )
            }
            PodState::Terminating {
                grace_deadline,
                since,
            } => {
                let parts = [
                    Part::new(format!("for {}", format_short(secs(*since, now))), 4),
                    Part::new(
                        format!("grace left {}", format_short(secs(now, *grace_deadline))),
                        6,
                    ),
                ];
                fit::fit(
                    &format!("    terminating  {}", view.pod),
                    &parts,
                    self.columns,
                )
            }
        }
    }

    fn node_line(&self, n: &NodeView) -> String {
        let name_width = self
            .nodes
            .iter()
            .map(|n| n.name.len())
            .max()
            .unwrap_or(0)
            .max(8);
        let prefix = format!("node/{:<name_width$}", n.name);
        let length = n.to_go.len() as u64;
        let counts = format!("{}/{length} pods gone", n.gone.min(length));
        let mut parts = Vec::new();
        if let Some(ended) = &n.ended {
            parts.push(Part::new(ended.clone(), 9));
        } else {
            let (mut blocked, mut terminating) = (0usize, 0usize);
            for p in self.pods.values().filter(|p| p.node == n.name) {
                match p.state {
                    PodState::Blocked { .. } => blocked += 1,
                    PodState::Terminating { .. } => terminating += 1,
                }
            }
            if !n.in_flight.is_empty() {
                parts.push(Part::new(format!("{} evicting", n.in_flight.len()), 6));
            }
            if terminating > 0 {
                parts.push(Part::new(format!("{terminating} terminating"), 7));
            }
            if blocked > 0 {
                parts.push(Part::new(format!("{blocked} blocked"), 8));
            }
            let hidden = (blocked + terminating).saturating_sub(n.lines.len());
            if hidden > 0 {
                parts.push(Part::new(format!("+{hidden} more not shown"), 5));
            }
        }
        let rest: usize = parts.iter().map(|p| fit::width(&p.text) + 3).sum();
        let fixed = fit::width(&prefix) + fit::width(&counts) + 4;
        let cells = self.columns.saturating_sub(fixed + rest).clamp(10, 30);
        let position = if n.ended.is_some() && n.gone < length && self.ended_drained(n) {
            length
        } else {
            n.gone
        };
        let head = format!("{prefix} {} {counts}", fit::bar(position, length, cells));
        fit::fit(&head, &parts, self.columns)
    }

    fn ended_drained(&self, n: &NodeView) -> bool {
        n.ended.as_deref().is_some_and(|e| e.starts_with("drained"))
    }

    fn elapsed_at(&self, t: Timestamp) -> String {
        format_short(secs(self.started, t))
    }
}

impl Renderer for ProgressRenderer {
    fn stamped(&mut self, stamped: &Stamped) {
        self.at = stamped.time;
        self.event(&stamped.event);
    }

    fn event(&mut self, event: &Event) {
        let at = self.at;
        match event {
            Event::NodesResolved { nodes } => {
                self.println(&format!(
                    "selector matched {} node(s): {}",
                    nodes.len(),
                    nodes.join(", ")
                ));
            }
            Event::RolloutRestarted {
                namespace,
                name,
                dry_run,
            } => {
                let dry = if dry_run.is_dry() { " (dry run)" } else { "" };
                self.println(&format!(
                    "surge: restarted the rollout of deployment {namespace}/{name}{dry}; its old pods go once the new ones are Ready"
                ));
            }
            Event::WaveStarted {
                wave,
                of,
                nodes,
                waiting_for_room,
            } => {
                let more = if waiting_for_room.is_empty() {
                    String::new()
                } else {
                    format!(" ({} wait for room)", waiting_for_room.join(", "))
                };
                self.println(&format!("wave {wave} of {of}{more}: {}", nodes.join(", ")));
            }
            Event::WatchRefused {
                resource,
                error,
                fallback,
            } => {
                self.println(&format!(
                    "Warning: cannot watch {resource}: {error}; {fallback}"
                ));
            }
            Event::WaitingForRoom { nodes, reason } => {
                self.println(&format!(
                    "waiting for room: {} ({reason})",
                    nodes.join(", ")
                ));
            }
            Event::Planned { plan } => {
                for np in &plan.nodes {
                    let to_go: HashSet<String> = np
                        .pods
                        .iter()
                        .filter(|p| p.action.is_target())
                        .map(|p| p.uid.clone())
                        .collect();
                    self.node(&np.node).to_go = to_go;
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
                n.to_go.insert(pod.uid.clone());
                n.in_flight.insert(pod.uid.clone());
            }
            Event::Blocked {
                node,
                pod,
                waits_for: why,
                budget,
                healthy,
                cause,
                message,
                retry_in_seconds,
                since,
            } => {
                self.node(node).in_flight.remove(&pod.uid);
                let state = PodState::Blocked {
                    waits: waits_for(*why, pod, budget.as_deref(), *healthy, cause),
                    held_back: message.contains("no request sent"),
                    since: *since,
                    retry_at: why.has_retry_time().then(|| later(at, *retry_in_seconds)),
                };
                self.show_pod(node, pod, state);
            }
            Event::Evicted { node, pod } => {
                self.node(node).in_flight.remove(&pod.uid);
                self.hide_pod(pod);
            }
            Event::Terminating {
                node,
                pod,
                grace_left_seconds,
            } => {
                self.node(node).in_flight.remove(&pod.uid);
                let since = match self.pods.get(&key(pod)).map(|p| &p.state) {
                    Some(PodState::Terminating { since, .. }) => *since,
                    _ => at,
                };
                self.show_pod(
                    node,
                    pod,
                    PodState::Terminating {
                        grace_deadline: later(at, *grace_left_seconds),
                        since,
                    },
                );
            }
            Event::Gone { node, pod } => {
                self.hide_pod(pod);
                let n = self.node(node);
                n.in_flight.remove(&pod.uid);
                if n.to_go.contains(&pod.uid) {
                    n.gone += 1;
                }
            }
            Event::PodFailed {
                node, pod, error, ..
            } => {
                self.node(node).in_flight.remove(&pod.uid);
                self.hide_pod(pod);
                self.println(&format!("pod {pod} failed: {error}"));
            }
            Event::NodeDrained { node, dry_run } => {
                let elapsed = self.elapsed_at(at);
                let n = self.node(node);
                n.in_flight.clear();
                n.ended = Some(format!("drained{} at {elapsed}", dry_run_suffix(*dry_run)));
            }
            Event::NodeFailed { node, error, .. } => {
                let ended = if self.stopping {
                    "interrupted".to_string()
                } else {
                    format!("FAILED: {}", crate::config::one_line(error))
                };
                let n = self.node(node);
                n.in_flight.clear();
                n.ended = Some(ended);
            }
            Event::Skipped { .. } | Event::Done { .. } => {}
            // events added to the library later show nothing until handled
            _ => {}
        }
        self.redraw(Timestamp::now().max(at));
    }

    fn tick(&mut self) {
        self.redraw(Timestamp::now());
    }

    fn stopping(&mut self) {
        self.stopping = true;
        self.tick();
        self.println(super::STOPPING);
    }

    fn interrupted(&mut self, interruption: &super::Interruption<'_>) {
        let now = Timestamp::now();
        for (_, view) in self.pods.drain() {
            view.line.finish_and_clear();
            self.multi.remove(&view.line);
        }
        for n in &mut self.nodes {
            if n.ended.is_none() {
                n.ended = Some("interrupted".to_string());
            }
        }
        self.redraw(now);
        for n in &self.nodes {
            n.line.abandon();
        }
        self.header.abandon_with_message(fit::fit(
            &format!("kdrain: {} interrupted", self.what),
            &[Part::new(format!("after {}", self.elapsed_at(now)), 9)],
            self.columns,
        ));
        if let Some(report) = interruption.report {
            print!("{}", super::summary::table(report));
        }
        for line in interruption.lines() {
            eprintln!("{line}");
        }
    }

    fn finish(&mut self, result: &Result<Report, DrainError>) -> i32 {
        let now = Timestamp::now();
        for (_, view) in self.pods.drain() {
            view.line.finish_and_clear();
            self.multi.remove(&view.line);
        }
        self.redraw(now);
        for n in &self.nodes {
            n.line.abandon();
        }
        let succeeded = matches!(result, Ok(report) if report.succeeded());
        let last = if succeeded {
            format!("kdrain: drained {} in {}", self.what, self.elapsed_at(now))
        } else {
            format!(
                "kdrain: {} not drained after {}",
                self.what,
                self.elapsed_at(now)
            )
        };
        self.header
            .finish_with_message(fit::truncate(&last, self.columns));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> PodRef {
        PodRef {
            namespace: "shop".into(),
            name: "web-1".into(),
            uid: "u1".into(),
        }
    }

    #[test]
    fn blocked_pods_say_what_they_wait_for() {
        let h = Some(kdrain::Healthy { needs: 3, has: 4 });
        assert_eq!(
            waits_for(WaitsFor::Budget, &pod(), Some("web"), h, "ignored"),
            "waits for budget web: needs 3 has 4"
        );
        assert_eq!(
            waits_for(WaitsFor::Budget, &pod(), Some("web"), None, "ignored"),
            "waits for budget web"
        );
        assert_eq!(
            waits_for(WaitsFor::Throttling, &pod(), None, None, "x"),
            "throttled by the API server (429)"
        );
        assert_eq!(
            waits_for(WaitsFor::Error, &pod(), None, None, "error 503:\n  down"),
            "error 503: down"
        );
    }
}
