//! kubectl's exact output lines, so scripts that parse `kubectl drain` keep working.
//! One deliberate difference: a pod's retry line is printed when its cause changes,
//! not every time the eviction is retried.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;

use kdrain::{DrainError, Event, PodRef, Report, WaitsFor};

use super::{Renderer, dry_run_suffix, exit_code};
use crate::duration::format_go_duration;

/// Writes kubectl-compatible lines: results on stdout, warnings and errors on stderr.
pub struct TextRenderer {
    out: Box<dyn Write + Send>,
    err: Box<dyn Write + Send>,
    /// Pods whose eviction was accepted (they print `pod/NAME evicted` when gone).
    evicted: HashSet<String>,
    /// Pods deleted with DELETE (they print `pod/NAME deleted` when gone).
    deleted: HashSet<String>,
    /// Pods seen gone before their eviction's answer arrived (the engine sends `Evicted` after
    /// `Gone` then): `pod/NAME evicted` is printed when the answer comes.
    gone_unanswered: HashSet<String>,
    /// The cause last printed for each blocked pod (see `Event::Blocked` below).
    last_block: HashMap<String, String>,
    /// Pods whose next eviction attempt gets an `evicting pod` line again (their cause changed).
    announce_retry: HashSet<String>,
    /// Per-pod errors by node, for kubectl's pending-pods blocks.
    pod_errors: BTreeMap<String, Vec<String>>,
    /// Nodes where the server denied a pod's eviction or delete for lack of permission.
    denied_nodes: std::collections::BTreeSet<String>,
    /// Nodes that failed, in order, with the errors to list at the end.
    failed_nodes: Vec<(String, Vec<String>)>,
    /// kubectl's error groups from the plan, by node.
    refused: BTreeMap<String, Vec<String>>,
    /// Node order as seen in events.
    nodes: Vec<String>,
    /// Ctrl-C asked the drain to stop: nodes ending now are told about by `interrupted`.
    stopping: bool,
    /// Failure blocks of nodes where the server denied a pod's removal for lack of
    /// permission, held back: the drain then fails as [`DrainError::Forbidden`], told in one
    /// clear line instead (printed as usual if the drain ends otherwise).
    denied: Vec<FailureBlock>,
}

/// kubectl's failure block for one node, kept until the drain's result is known.
struct FailureBlock {
    /// The node.
    node: String,
    /// The errors to list under "There are pending nodes to be drained".
    errors: Vec<String>,
    /// The stderr lines of the block.
    lines: Vec<String>,
}

impl Default for TextRenderer {
    fn default() -> Self {
        Self::new()
    }
}

impl TextRenderer {
    /// A renderer writing to the process's stdout and stderr.
    pub fn new() -> Self {
        Self::with_writers(Box::new(std::io::stdout()), Box::new(std::io::stderr()))
    }

    /// A renderer writing to the given streams (used by tests).
    pub fn with_writers(out: Box<dyn Write + Send>, err: Box<dyn Write + Send>) -> Self {
        TextRenderer {
            out,
            err,
            evicted: HashSet::new(),
            deleted: HashSet::new(),
            gone_unanswered: HashSet::new(),
            last_block: HashMap::new(),
            announce_retry: HashSet::new(),
            pod_errors: BTreeMap::new(),
            denied_nodes: Default::default(),
            failed_nodes: Vec::new(),
            refused: BTreeMap::new(),
            nodes: Vec::new(),
            stopping: false,
            denied: Vec::new(),
        }
    }

    fn stdout(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }

    fn stderr(&mut self, line: &str) {
        let _ = writeln!(self.err, "{line}");
        let _ = self.err.flush();
    }

    fn see_node(&mut self, node: &str) {
        if !self.nodes.iter().any(|n| n == node) {
            self.nodes.push(node.to_string());
        }
    }

    fn key(pod: &PodRef) -> String {
        format!("{}/{}/{}", pod.namespace, pod.name, pod.uid)
    }

    /// kubectl's refusal groups for a node (`cannot delete <msg>: ns/a, ns/b`), from the plan.
    fn refusal_errors(&self, node: &str) -> Vec<String> {
        self.refused.get(node).cloned().unwrap_or_default()
    }

    fn node_failed(&mut self, node: &str, error: &str, pending: &[PodRef]) {
        let mut errors = self.pod_errors.remove(node).unwrap_or_default();
        if errors.is_empty() {
            errors = self.refusal_errors(node);
        }
        if errors.is_empty() {
            errors.push(error.to_string());
        }
        let joined = join_errors(&errors);
        let mut lines = Vec::new();
        if !pending.is_empty() {
            lines.push(format!(
                "There are pending pods in node {node:?} when an error occurred: {joined}"
            ));
            lines.extend(pending.iter().map(|pod| format!("pod/{}", pod.name)));
        }
        lines.push(format!(
            "error: unable to drain node {node:?} due to error: {joined}, continuing command..."
        ));
        let block = FailureBlock {
            node: node.to_string(),
            errors,
            lines,
        };
        if self.denied_nodes.contains(node) {
            self.denied.push(block);
        } else {
            self.print_block(block);
        }
    }

    fn print_block(&mut self, block: FailureBlock) {
        for line in &block.lines {
            self.stderr(line);
        }
        self.failed_nodes.push((block.node, block.errors));
    }
}

/// kubectl's formatting of an aggregate error: one error as is, several in brackets.
fn join_errors(errors: &[String]) -> String {
    if errors.len() == 1 {
        errors[0].clone()
    } else {
        format!("[{}]", errors.join(", "))
    }
}

impl Renderer for TextRenderer {
    fn event(&mut self, event: &Event) {
        match event {
            Event::Cordoned {
                node,
                already,
                dry_run,
            } => {
                self.see_node(node);
                let what = if *already {
                    "already cordoned"
                } else {
                    "cordoned"
                };
                self.stdout(&format!("node/{node} {what}{}", dry_run_suffix(*dry_run)));
            }
            Event::Uncordoned { node, already } => {
                let what = if *already {
                    "already uncordoned"
                } else {
                    "uncordoned"
                };
                self.stdout(&format!("node/{node} {what}"));
            }
            Event::Planned { plan } => {
                for node_plan in &plan.nodes {
                    if !node_plan.errors.is_empty() {
                        self.refused
                            .insert(node_plan.node.clone(), node_plan.errors.clone());
                    }
                }
            }
            Event::Warning { message, .. } => {
                if message.starts_with("Warning:") {
                    self.stderr(message);
                } else {
                    self.stderr(&format!("Warning: {message}"));
                }
            }
            Event::EvictionSent {
                pod,
                attempt,
                dry_run,
                ..
            } => {
                let key = Self::key(pod);
                if *attempt <= 1 || self.announce_retry.remove(&key) {
                    self.stdout(&format!("evicting pod {pod}{}", dry_run_suffix(*dry_run)));
                }
            }
            Event::DeleteSent { pod, dry_run, .. } => {
                if dry_run.is_dry() {
                    // kubectl prints nothing per pod for a dry-run delete; say what would happen.
                    self.stdout(&format!(
                        "pod/{} deleted{}",
                        pod.name,
                        dry_run_suffix(*dry_run)
                    ));
                } else {
                    self.deleted.insert(Self::key(pod));
                }
            }
            Event::Evicted { pod, .. } => {
                let key = Self::key(pod);
                if self.gone_unanswered.remove(&key) {
                    self.stdout(&format!("pod/{} evicted", pod.name));
                } else {
                    self.evicted.insert(key);
                }
            }
            Event::Blocked {
                pod,
                waits_for,
                budget,
                cause,
                message,
                retry_in_seconds,
                ..
            } => {
                let key = Self::key(pod);
                let text = if message.is_empty() { cause } else { message };
                let terminating_namespace = *waits_for == WaitsFor::NamespaceTermination;
                // One line per change of cause. A wait for the same budget is one cause, whether
                // its counts move ("has 2", then "has 1") or the server refused the request
                // rather than kdrain holding it back: on a parallel drain both happen.
                let now = match (waits_for, budget) {
                    (WaitsFor::Budget | WaitsFor::SeveralBudgets, Some(budget)) => {
                        format!("budget|{budget}")
                    }
                    _ => format!("{waits_for:?}|{text}"),
                };
                if self.last_block.get(&key) != Some(&now) {
                    let retry = std::time::Duration::from_secs_f64(retry_in_seconds.max(0.0));
                    let retry = std::time::Duration::from_millis(retry.as_millis() as u64);
                    let line = if terminating_namespace {
                        // kubectl's own wording for a 403 NamespaceTerminating.
                        format!(
                            "error when evicting pod {:?} from terminating namespace {:?} (will retry after {})",
                            pod.name,
                            pod.namespace,
                            format_go_duration(retry)
                        )
                    } else {
                        format!(
                            "error when evicting pods/{:?} -n {:?} (will retry after {}): {text}",
                            pod.name,
                            pod.namespace,
                            format_go_duration(retry)
                        )
                    };
                    self.stderr(&line);
                    self.last_block.insert(key.clone(), now);
                    self.announce_retry.insert(key);
                }
            }
            Event::Gone { pod, .. } => {
                let key = Self::key(pod);
                let evicted = self.evicted.remove(&key);
                if self.deleted.remove(&key) {
                    self.stdout(&format!("pod/{} deleted", pod.name));
                } else if evicted {
                    self.stdout(&format!("pod/{} evicted", pod.name));
                } else {
                    self.gone_unanswered.insert(key.clone());
                }
                self.last_block.remove(&key);
                self.announce_retry.remove(&key);
            }
            Event::PodFailed {
                node, error, kind, ..
            } => {
                if *kind == kdrain::FailureKind::PermissionDenied {
                    self.denied_nodes.insert(node.clone());
                }
                self.pod_errors
                    .entry(node.clone())
                    .or_default()
                    .push(error.clone());
            }
            Event::NodeDrained { node, dry_run } => {
                self.see_node(node);
                self.stdout(&format!("node/{node} drained{}", dry_run_suffix(*dry_run)));
            }
            Event::NodeFailed {
                node,
                error,
                pending,
            } => {
                self.see_node(node);
                if self.stopping {
                    // not kubectl's failure block: the interruption lines name what is left
                    self.pod_errors.remove(node);
                } else {
                    self.node_failed(node, error, pending);
                }
            }
            Event::WaitingForRoom { nodes, reason } => {
                self.stderr(&format!(
                    "waiting for room: {} ({reason}; --wait-for-capacity)",
                    nodes.join(", ")
                ));
            }
            Event::WatchRefused {
                resource,
                error,
                fallback,
            } => {
                self.stderr(&format!(
                    "Warning: cannot watch {resource}: {error}; {fallback}"
                ));
            }
            Event::RolloutRestarted { name, dry_run, .. } => {
                self.stdout(&format!(
                    "deployment.apps/{name} restarted (--surge){}",
                    dry_run_suffix(*dry_run)
                ));
            }
            // kubectl has no waves: its output stays kubectl's (the plan and -o json show them)
            Event::NodesResolved { .. }
            | Event::WaveStarted { .. }
            | Event::Terminating { .. }
            | Event::Skipped { .. }
            | Event::Done { .. } => {}
            // events added to the library later print nothing until handled
            _ => {}
        }
    }

    fn stopping(&mut self) {
        self.stopping = true;
        self.stderr(super::STOPPING);
    }

    fn interrupted(&mut self, interruption: &super::Interruption<'_>) {
        for line in interruption.lines() {
            self.stderr(&line);
        }
    }

    fn finish(&mut self, result: &Result<Report, DrainError>) -> i32 {
        // Denied for lack of permission: the one line below says which right is missing.
        let denied = std::mem::take(&mut self.denied);
        let forbidden = matches!(result, Err(DrainError::Forbidden { .. }));
        if !forbidden {
            for block in denied {
                self.print_block(block);
            }
        }
        // A refused plan that the engine reported without per-node events: kubectl's block per node.
        if let Err(DrainError::PlanRefused { .. }) = result
            && self.failed_nodes.is_empty()
        {
            let nodes: Vec<String> = self.refused.keys().cloned().collect();
            for node in nodes {
                let errors = self.refusal_errors(&node);
                self.stderr(&format!(
                    "error: unable to drain node {node:?} due to error: {}, continuing command...",
                    join_errors(&errors)
                ));
                self.failed_nodes.push((node, errors));
            }
        }
        if !self.failed_nodes.is_empty() {
            self.stderr("There are pending nodes to be drained:");
            let failed = std::mem::take(&mut self.failed_nodes);
            for (node, _) in &failed {
                self.stderr(&format!(" {node}"));
            }
            for (_, errors) in &failed {
                for error in errors {
                    self.stderr(error);
                }
            }
            self.failed_nodes = failed;
        }
        if forbidden || self.failed_nodes.is_empty() {
            match result {
                Ok(report) if !report.succeeded() => {
                    let e = DrainError::Incomplete {
                        report: Box::new(report.clone()),
                    };
                    self.stderr(&format!("error: {e}"));
                }
                Ok(_) => {}
                Err(e) => self.stderr(&format!(
                    "error: {}",
                    crate::config::one_line(&e.to_string())
                )),
            }
        }
        exit_code(result)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use kdrain::DryRun;

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn pod(name: &str) -> PodRef {
        PodRef {
            namespace: "shop".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
        }
    }

    fn renderer() -> (TextRenderer, Buf, Buf) {
        let (out, err) = (Buf::default(), Buf::default());
        let r = TextRenderer::with_writers(Box::new(out.clone()), Box::new(err.clone()));
        (r, out, err)
    }

    fn blocked(p: &PodRef, cause: &str) -> Event {
        Event::Blocked {
            node: "n1".into(),
            pod: p.clone(),
            waits_for: kdrain::WaitsFor::Budget,
            budget: Some("web".into()),
            healthy: None,
            cause: cause.into(),
            message: "Cannot evict pod as it would violate the pod's disruption budget.".into(),
            retry_in_seconds: 5.0,
            since: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    fn sent(p: &PodRef, attempt: u32) -> Event {
        Event::EvictionSent {
            node: "n1".into(),
            pod: p.clone(),
            attempt,
            dry_run: DryRun::None,
        }
    }

    #[test]
    fn retry_line_only_when_the_cause_changes() {
        let (mut r, out, err) = renderer();
        let web = pod("web-1");
        let needs = "The disruption budget web needs 2 healthy pods and has 2 currently";
        r.event(&sent(&web, 1));
        r.event(&blocked(&web, needs));
        r.event(&sent(&web, 2));
        r.event(&blocked(&web, needs));
        r.event(&sent(&web, 3));
        r.event(&blocked(&web, needs));
        r.event(&sent(&web, 4));
        r.event(&blocked(
            &web,
            "The disruption budget web needs 2 healthy pods and has 1 currently",
        ));
        r.event(&sent(&web, 5));
        r.event(&Event::Evicted {
            node: "n1".into(),
            pod: web.clone(),
        });
        r.event(&Event::Gone {
            node: "n1".into(),
            pod: web.clone(),
        });
        // the budget's counts changed, the printed line would not: printed once
        assert_eq!(
            out.text(),
            "evicting pod shop/web-1\nevicting pod shop/web-1\npod/web-1 evicted\n"
        );
        let line = "error when evicting pods/\"web-1\" -n \"shop\" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.\n";
        assert_eq!(err.text(), line);
    }

    /// On a parallel drain a pod is held back by kdrain, refused by the server, then held back
    /// again, all for the same budget: one cause, one line.
    #[test]
    fn one_retry_line_per_budget_however_the_wait_is_reported() {
        let (mut r, _out, err) = renderer();
        let web = pod("web-1");
        let held = |has: u32| Event::Blocked {
            node: "n1".into(),
            pod: web.clone(),
            waits_for: WaitsFor::Budget,
            budget: Some("web".into()),
            healthy: None,
            cause: format!(
                "The disruption budget web needs 5 healthy pods and has {has} currently"
            ),
            message: "waiting for the budget to allow a disruption (no request sent)".into(),
            retry_in_seconds: 5.0,
            since: jiff::Timestamp::UNIX_EPOCH,
        };
        r.event(&held(5));
        r.event(&sent(&web, 1));
        r.event(&blocked(
            &web,
            "The disruption budget web needs 5 healthy pods and has 5 currently",
        ));
        r.event(&held(4));
        r.event(&held(5));
        assert_eq!(err.text().lines().count(), 1, "{}", err.text());
        // another cause is a new line
        r.event(&Event::Blocked {
            node: "n1".into(),
            pod: web.clone(),
            waits_for: WaitsFor::Throttling,
            budget: None,
            healthy: None,
            cause: "the server asked to retry later (429): slow down".into(),
            message: "slow down".into(),
            retry_in_seconds: 1.0,
            since: jiff::Timestamp::UNIX_EPOCH,
        });
        assert_eq!(err.text().lines().count(), 2, "{}", err.text());
    }

    #[test]
    fn an_answer_after_the_pod_is_gone_still_says_evicted() {
        let (mut r, out, _) = renderer();
        let p = pod("web-2");
        r.event(&sent(&p, 1));
        r.event(&Event::Gone {
            node: "n1".into(),
            pod: p.clone(),
        });
        r.event(&Event::Evicted {
            node: "n1".into(),
            pod: p,
        });
        assert_eq!(out.text(), "evicting pod shop/web-2\npod/web-2 evicted\n");
    }

    #[test]
    fn deleted_pods_say_deleted() {
        let (mut r, out, _) = renderer();
        let p = pod("db-0");
        r.event(&Event::DeleteSent {
            node: "n1".into(),
            pod: p.clone(),
            dry_run: DryRun::None,
        });
        r.event(&Event::Evicted {
            node: "n1".into(),
            pod: p.clone(),
        });
        r.event(&Event::Gone {
            node: "n1".into(),
            pod: p,
        });
        assert_eq!(out.text(), "pod/db-0 deleted\n");
    }

    #[test]
    fn failed_node_prints_kubectls_block() {
        let (mut r, _, err) = renderer();
        let (a, b) = (pod("a"), pod("b"));
        r.event(&Event::PodFailed {
            node: "n1".into(),
            pod: a.clone(),
            error: "error when evicting pods/\"a\" -n \"shop\": boom".into(),
            kind: kdrain::FailureKind::Rejected,
        });
        r.event(&Event::PodFailed {
            node: "n1".into(),
            pod: b.clone(),
            error: "error when evicting pods/\"b\" -n \"shop\": bang".into(),
            kind: kdrain::FailureKind::Rejected,
        });
        r.event(&Event::NodeFailed {
            node: "n1".into(),
            error: "pods left".into(),
            pending: vec![a, b],
        });
        let code = r.finish(&Err(DrainError::NodeNotFound { node: "x".into() }));
        assert_eq!(code, 2);
        let agg = "[error when evicting pods/\"a\" -n \"shop\": boom, error when evicting pods/\"b\" -n \"shop\": bang]";
        assert_eq!(
            err.text(),
            format!(
                "There are pending pods in node \"n1\" when an error occurred: {agg}\npod/a\npod/b\n\
                 error: unable to drain node \"n1\" due to error: {agg}, continuing command...\n\
                 There are pending nodes to be drained:\n n1\n\
                 error when evicting pods/\"a\" -n \"shop\": boom\nerror when evicting pods/\"b\" -n \"shop\": bang\n"
            )
        );
    }

    #[test]
    fn suffixes_and_already() {
        let (mut r, out, _) = renderer();
        r.event(&Event::Cordoned {
            node: "n1".into(),
            already: true,
            dry_run: DryRun::Server,
        });
        r.event(&Event::NodeDrained {
            node: "n1".into(),
            dry_run: DryRun::Client,
        });
        r.event(&Event::Uncordoned {
            node: "n2".into(),
            already: false,
        });
        assert_eq!(
            out.text(),
            "node/n1 already cordoned (server dry run)\nnode/n1 drained (dry run)\nnode/n2 uncordoned\n"
        );
    }
}
