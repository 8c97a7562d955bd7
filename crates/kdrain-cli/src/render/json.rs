//! `-o json`: one JSON object per line for every engine event, then one final result object,
//! so tools can follow a drain with `jq` or a log pipeline. `drain` and `plan` speak the same
//! vocabulary (`planned` ... `result`); every line carries `schema_version` and `time`, and
//! `kdrain schema events` prints the JSON Schema of every line (generated from these types).

use std::io::Write;

use kdrain::{DrainError, Event, Report, Stamped};
use schemars::JsonSchema;
use serde::Serialize;

use super::{Renderer, exit_code};

/// The version of the line format, on every line. Raised when a field changes meaning or goes.
pub const SCHEMA_VERSION: u32 = 1;

/// One event line: `{"schema_version":1,"time":"…","event":"…",…}`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EventLine<'a> {
    /// The line format's version.
    #[schemars(extend("const" = SCHEMA_VERSION))]
    pub schema_version: u32,
    /// The event, with the time it happened in the engine.
    #[serde(flatten)]
    pub event: &'a Stamped,
}

impl<'a> EventLine<'a> {
    /// The line for one event.
    pub fn new(event: &'a Stamped) -> Self {
        EventLine {
            schema_version: SCHEMA_VERSION,
            event,
        }
    }
}

/// The final line of `drain` and `plan`:
/// `{"schema_version":1,"time":"…","event":"result","exit_code":N,"succeeded":bool,"error":…,"report":…}`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ResultLine<'a> {
    /// The line format's version.
    #[schemars(extend("const" = SCHEMA_VERSION))]
    pub schema_version: u32,
    /// When the command's work ended (the engine's `done` time when there was one): RFC 3339,
    /// UTC, to the millisecond.
    #[serde(serialize_with = "time")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub time: jiff::Timestamp,
    /// Always `"result"`, so readers can tell it from the events.
    #[schemars(extend("const" = "result"))]
    pub event: &'static str,
    /// The process exit status.
    pub exit_code: i32,
    /// `drain`: every node drained. `plan`: the drain can complete.
    pub succeeded: bool,
    /// Why not, as one line, when the command failed.
    pub error: Option<String>,
    /// The drain's report, when it ran far enough to have one (never for `plan`, whose plan is
    /// the `planned` event).
    pub report: Option<&'a Report>,
}

impl<'a> ResultLine<'a> {
    /// A result line dated `time`.
    pub fn new(
        time: jiff::Timestamp,
        exit_code: i32,
        succeeded: bool,
        error: Option<String>,
        report: Option<&'a Report>,
    ) -> Self {
        ResultLine {
            schema_version: SCHEMA_VERSION,
            time,
            event: "result",
            exit_code,
            succeeded,
            error,
            report,
        }
    }
}

/// `{"schema_version":1,"time":"…","event":"stopping"}`: the first Ctrl-C was pressed.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StoppingLine {
    /// The line format's version.
    #[schemars(extend("const" = SCHEMA_VERSION))]
    pub schema_version: u32,
    /// When Ctrl-C was pressed.
    #[serde(serialize_with = "time")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub time: jiff::Timestamp,
    /// Always `"stopping"`.
    #[schemars(extend("const" = "stopping"))]
    pub event: &'static str,
}

/// Every line `-o json` prints, for the published schema.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // built only to describe the lines
enum OutputLine<'a> {
    /// An engine event (also `cordon`/`uncordon`'s `cordoned`/`uncordoned` lines).
    Event(EventLine<'a>),
    /// The final line of `drain` and `plan`.
    Result(ResultLine<'a>),
    /// Ctrl-C was pressed once.
    Stopping(StoppingLine),
}

/// The JSON Schema (draft 2020-12) of every line `-o json` prints.
pub fn schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(OutputLine<'static>);
    schema.insert(
        "title".into(),
        "kdrain -o json output line".to_string().into(),
    );
    schema.to_value()
}

fn time<S: serde::Serializer>(t: &jiff::Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&kdrain::events::rfc3339_ms(t))
}

/// Prints one line of JSON on stdout.
pub fn print(value: &impl Serialize) {
    let mut out = std::io::stdout().lock();
    match serde_json::to_string(value) {
        Ok(text) => {
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
        Err(e) => eprintln!("error: cannot encode an event as JSON: {e}"),
    }
}

/// Writes each event as one line of JSON on stdout.
#[derive(Default)]
pub struct JsonRenderer {
    /// When the engine said it was done, for the result line.
    done_at: Option<jiff::Timestamp>,
}

impl JsonRenderer {
    /// A renderer writing to stdout.
    pub fn new() -> Self {
        Self::default()
    }

    fn result_time(&self) -> jiff::Timestamp {
        self.done_at.unwrap_or_else(jiff::Timestamp::now)
    }
}

/// Builds the final line for a finished drain.
pub fn result_line(result: &Result<Report, DrainError>, time: jiff::Timestamp) -> ResultLine<'_> {
    let exit_code = exit_code(result);
    match result {
        Ok(report) => ResultLine::new(time, exit_code, report.succeeded(), None, Some(report)),
        Err(e) => ResultLine::new(
            time,
            exit_code,
            false,
            Some(crate::config::one_line(&e.to_string())),
            e.report(),
        ),
    }
}

impl Renderer for JsonRenderer {
    fn event(&mut self, event: &Event) {
        self.stamped(&Stamped::now(event.clone()));
    }

    fn stamped(&mut self, stamped: &Stamped) {
        if matches!(stamped.event, Event::Done { .. }) {
            self.done_at = Some(stamped.time);
        }
        print(&EventLine::new(stamped));
    }

    fn stopping(&mut self) {
        print(&StoppingLine {
            schema_version: SCHEMA_VERSION,
            time: jiff::Timestamp::now(),
            event: "stopping",
        });
        eprintln!("{}", super::STOPPING);
    }

    fn interrupted(&mut self, interruption: &super::Interruption<'_>) {
        let lines = interruption.lines();
        print(&ResultLine::new(
            self.result_time(),
            super::INTERRUPTED,
            false,
            Some(lines.join("; ")),
            interruption.report,
        ));
        for text in lines {
            eprintln!("{text}");
        }
    }

    fn finish(&mut self, result: &Result<Report, DrainError>) -> i32 {
        let line = result_line(result, self.result_time());
        print(&line);
        // The one-line error goes to stderr as in every mode, so a terminal user sees it.
        if let Some(error) = &line.error {
            eprintln!("error: {error}");
        }
        exit_code(result)
    }
}
