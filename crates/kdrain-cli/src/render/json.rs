//! `-o json`: one JSON object per line for every engine event, then one final result object,
//! so tools can follow a drain with `jq` or a log pipeline.

use std::io::Write;

use kdrain::{DrainError, Event, Report};
use serde::Serialize;

use super::{Renderer, exit_code};

/// Writes each event as one line of JSON on stdout.
pub struct JsonRenderer {
    out: Box<dyn Write + Send>,
}

impl Default for JsonRenderer {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonRenderer {
    /// A renderer writing to stdout.
    pub fn new() -> Self {
        JsonRenderer {
            out: Box::new(std::io::stdout()),
        }
    }

    fn line(&mut self, value: &impl serde::Serialize) {
        match serde_json::to_string(value) {
            Ok(text) => {
                let _ = writeln!(self.out, "{text}");
                let _ = self.out.flush();
            }
            Err(e) => eprintln!("error: cannot encode an event as JSON: {e}"),
        }
    }
}

/// The final line: `{"event":"result","exit_code":N,"succeeded":bool,"error":...,"report":...}`.
#[derive(Debug, Serialize)]
pub struct ResultLine<'a> {
    /// Always `"result"`, so readers can tell it from the events.
    pub event: &'static str,
    /// The process exit status.
    pub exit_code: i32,
    /// Every node drained.
    pub succeeded: bool,
    /// The error, as one line, when the drain failed.
    pub error: Option<String>,
    /// The report, when the drain ran far enough to have one.
    pub report: Option<&'a Report>,
}

/// `kdrain cordon|uncordon -o json`: one line per node.
#[derive(Debug, Serialize)]
pub struct CordonLine<'a> {
    /// `"cordoned"` or `"uncordoned"`.
    pub event: &'static str,
    /// The node.
    pub node: &'a str,
    /// Nothing had to change.
    pub already: bool,
    /// Dry-run mode of the request.
    pub dry_run: kdrain::DryRun,
}

/// Builds the final line for a finished drain.
pub fn result_line(result: &Result<Report, DrainError>) -> ResultLine<'_> {
    let exit_code = exit_code(result);
    match result {
        Ok(report) => ResultLine {
            event: "result",
            exit_code,
            succeeded: report.succeeded(),
            error: None,
            report: Some(report),
        },
        Err(e) => ResultLine {
            event: "result",
            exit_code,
            succeeded: false,
            error: Some(crate::config::one_line(&e.to_string())),
            report: e.report(),
        },
    }
}

impl Renderer for JsonRenderer {
    fn event(&mut self, event: &Event) {
        self.line(event);
    }

    fn stopping(&mut self) {
        self.line(&serde_json::json!({ "event": "stopping" }));
        eprintln!("{}", super::STOPPING);
    }

    fn interrupted(&mut self, interruption: &super::Interruption<'_>) {
        let lines = interruption.lines();
        let line = ResultLine {
            event: "result",
            exit_code: super::INTERRUPTED,
            succeeded: false,
            error: Some(lines.join("; ")),
            report: interruption.report,
        };
        self.line(&line);
        for text in lines {
            eprintln!("{text}");
        }
    }

    fn finish(&mut self, result: &Result<Report, DrainError>) -> i32 {
        let line = result_line(result);
        self.line(&line);
        // The one-line error goes to stderr as in every mode, so a terminal user sees it.
        if let Some(error) = &line.error {
            eprintln!("error: {error}");
        }
        exit_code(result)
    }
}
