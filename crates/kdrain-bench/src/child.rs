//! Runs a drain command as a child process and measures its CPU time and peak RSS.
//!
//! The child runs under GNU `/usr/bin/time`, which reads the kernel's rusage of the child when it is
//! reaped (user + system CPU seconds, maximum resident set size), the same numbers wait4 gives. Without
//! `/usr/bin/time` the command still runs, and CPU and RSS are reported as unknown.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::process::Command;

/// GNU time, used for rusage.
const GNU_TIME: &str = "/usr/bin/time";

/// How a drain command is started.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// Program to run.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment variables set on top of a cleaned environment (HOME, PATH, …).
    pub env: Vec<(String, String)>,
    /// Directory for stdout, stderr and the rusage file.
    pub dir: PathBuf,
}

/// What the child did.
#[derive(Debug, Clone, Default)]
pub struct ChildOutcome {
    /// Exit code (None when killed by a signal or by the harness).
    pub exit_code: Option<i32>,
    /// The harness killed it at the deadline.
    pub killed_at_deadline: bool,
    /// User + system CPU seconds.
    pub cpu_seconds: Option<f64>,
    /// Peak resident set size in bytes.
    pub max_rss_bytes: Option<u64>,
    /// The last lines of stdout and stderr, for diagnosis.
    pub output_tail: String,
}

/// Parses GNU time's output written with `-f "%U %S %M"`: user s, system s, max RSS KiB.
pub fn parse_rusage(text: &str) -> Option<(f64, u64)> {
    // GNU time prints "Command exited with non-zero status N" before the format line; take the last line.
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let mut parts = line.split_whitespace();
    let user: f64 = parts.next()?.parse().ok()?;
    let system: f64 = parts.next()?.parse().ok()?;
    let rss_kib: u64 = parts.next()?.parse().ok()?;
    Some((user + system, rss_kib * 1024))
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Starts the child; `wait` finishes it.
pub struct RunningChild {
    child: tokio::process::Child,
    spec: ChildSpec,
    measured: bool,
}

impl RunningChild {
    /// Spawns the command (under GNU time when it is installed), in its own process group.
    pub fn spawn(spec: ChildSpec) -> Result<Self> {
        let measured = Path::new(GNU_TIME).exists();
        let stdout = std::fs::File::create(spec.dir.join("stdout.txt"))?;
        let stderr = std::fs::File::create(spec.dir.join("stderr.txt"))?;
        let mut command = if measured {
            let mut c = Command::new(GNU_TIME);
            c.arg("-f")
                .arg("%U %S %M")
                .arg("-o")
                .arg(spec.dir.join("rusage.txt"))
                .arg(&spec.program);
            c
        } else {
            Command::new(&spec.program)
        };
        command
            .args(&spec.args)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", spec.program.display()))?;
        Ok(RunningChild {
            child,
            spec,
            measured,
        })
    }

    /// Waits for the child to exit, killing its process group after `limit`.
    pub async fn wait(mut self, limit: Duration) -> Result<ChildOutcome> {
        let mut outcome = ChildOutcome::default();
        let status = match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                outcome.killed_at_deadline = true;
                if let Some(pid) = self.child.id() {
                    // The whole group: GNU time and the drain command under it.
                    let _ = std::process::Command::new("kill")
                        .arg("-KILL")
                        .arg("--")
                        .arg(format!("-{pid}"))
                        .status();
                }
                self.child.wait().await?
            }
        };
        outcome.exit_code = status.code();
        if self.measured {
            let text =
                std::fs::read_to_string(self.spec.dir.join("rusage.txt")).unwrap_or_default();
            if let Some((cpu, rss)) = parse_rusage(&text) {
                outcome.cpu_seconds = Some(cpu);
                outcome.max_rss_bytes = Some(rss);
            }
        }
        outcome.output_tail = format!(
            "stdout:\n{}\nstderr:\n{}",
            tail(&self.spec.dir.join("stdout.txt"), 5),
            tail(&self.spec.dir.join("stderr.txt"), 10)
        );
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gnu_time_format() {
        assert_eq!(parse_rusage("0.25 0.5 51200\n"), Some((0.75, 52_428_800)));
        let failed = "Command exited with non-zero status 1\n1.50 0.50 1024\n";
        assert_eq!(parse_rusage(failed), Some((2.0, 1_048_576)));
        assert_eq!(parse_rusage("Command terminated by signal 9\n"), None);
        assert_eq!(parse_rusage(""), None);
    }

    #[tokio::test]
    async fn measures_a_real_child() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ChildSpec {
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), "echo hello; exit 3".into()],
            env: vec![],
            dir: dir.path().to_path_buf(),
        };
        let outcome = RunningChild::spawn(spec)
            .unwrap()
            .wait(Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(outcome.exit_code, Some(3));
        assert!(!outcome.killed_at_deadline);
        assert!(outcome.output_tail.contains("hello"));
        if Path::new(GNU_TIME).exists() {
            assert!(outcome.max_rss_bytes.unwrap() > 0);
        }
    }

    #[tokio::test]
    async fn kills_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ChildSpec {
            program: PathBuf::from("/bin/sleep"),
            args: vec!["30".into()],
            env: vec![],
            dir: dir.path().to_path_buf(),
        };
        let outcome = tokio::time::timeout(
            Duration::from_secs(20),
            RunningChild::spawn(spec)
                .unwrap()
                .wait(Duration::from_millis(200)),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(outcome.killed_at_deadline);
        assert_eq!(outcome.exit_code, None);
    }
}
