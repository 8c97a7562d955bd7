//! Exit codes and the one error type the command reports with, so scripts can tell a blocked
//! drain from a typo from an unreachable cluster without parsing text.

use std::fmt;

/// The drain (or command) did everything it was asked to.
pub const OK: i32 = 0;
/// Something failed that has no more specific code.
pub const FAILED: i32 = 1;
/// Usage error or bad input (unknown node or context, malformed selector or duration, bad kubeconfig).
pub const USAGE: i32 = 2;
/// Disruption budgets still blocked evictions when the timeout ran out (or, for `plan`, never let them pass).
pub const BLOCKED_BY_BUDGETS: i32 = 3;
/// Pods are left on the node that could not be evicted (refused by filters, failed, or not gone in time).
pub const PODS_LEFT: i32 = 4;
/// The API server denied a request (the message names the verb and resource needed).
pub const PERMISSION_DENIED: i32 = 5;
/// The API server could not be reached.
pub const UNREACHABLE: i32 = 6;
/// The evicted pods' replacements would not fit on the nodes that stay schedulable: refused
/// before any change (`--ignore-capacity` drains anyway).
pub const NO_ROOM: i32 = 7;

/// The table printed at the end of `--help`, kept next to the constants it describes.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
    0  drained (or: the command did what it was asked)
    1  failed for another reason
    2  usage error or bad input (unknown node or context, bad selector, duration or kubeconfig); nothing was changed
    3  blocked by disruption budgets when --timeout ran out (plan: a budget can never let the pods go)
    4  pods left that could not be evicted (plan: pods kdrain refuses to evict without a flag; wins over 3; --wait-for-capacity: no room came back before --timeout)
    5  permission denied (the message names the verb and resource needed)
    6  cluster unreachable
    7  no room: the evicted pods' replacements would not fit on the nodes that stay schedulable; nothing was changed (--ignore-capacity drains anyway; --wait-for-capacity waits for room, plan exits 0)
  130  interrupted (Ctrl-C); cordoned nodes stay cordoned";

/// An error the command prints as one `error: ...` line and exits with `code`.
#[derive(Debug)]
pub struct CliError {
    /// The process exit status to use.
    pub code: i32,
    /// One line naming the problem and the fix.
    pub message: String,
}

impl CliError {
    /// Builds an error with an explicit exit code.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A usage / bad-input error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(USAGE, message)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Picks the exit code for any error that reached `main`.
pub fn code_for(error: &anyhow::Error) -> i32 {
    if let Some(cli) = error.downcast_ref::<CliError>() {
        return cli.code;
    }
    if let Some(drain) = error.downcast_ref::<kdrain::DrainError>() {
        return for_kind(drain.kind());
    }
    FAILED
}

/// The exit code of each kind of library error.
pub fn for_kind(kind: kdrain::ErrorKind) -> i32 {
    use kdrain::ErrorKind as K;
    match kind {
        K::BadInput => USAGE,
        K::BlockedByBudgets => BLOCKED_BY_BUDGETS,
        K::PodsLeft => PODS_LEFT,
        K::PermissionDenied => PERMISSION_DENIED,
        K::Unreachable => UNREACHABLE,
        K::NoRoom => NO_ROOM,
        _ => FAILED,
    }
}
