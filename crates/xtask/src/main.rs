//! Developer tasks (`cargo xtask ...`, alias in .cargo/config.toml):
//!
//! - `control-plane build`: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
//!   kwok built from source through the Go module proxy into a cache keyed by version;
//! - `control-plane up [--kubeconfig PATH] [--audit-log PATH]` / `down`: a real control plane on
//!   127.0.0.1;
//! - `e2e`: the real-cluster tier.

mod capacity;
mod controller_e2e;
mod e2e;
mod everyday;
mod faults;
mod rbac;
mod rbac_controller;

use control_plane::{cluster, gobuild, materialise, observer, paths, pki};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cluster::{ComponentError, UpOptions};

#[derive(Debug, Parser)]
#[command(name = "xtask", about = "kdrain developer tasks")]
struct Cli {
    #[command(subcommand)]
    command: Top,
}

#[derive(Debug, Subcommand)]
enum Top {
    /// Build, start or stop a real Kubernetes control plane.
    #[command(subcommand, name = "control-plane")]
    ControlPlane(ControlPlane),
    /// The real-cluster tier: kubectl drain and kdrain drain on every shipped scenario that fits,
    /// each on a fresh control plane, plus kdrain on kubesim for the differential report.
    E2e {
        /// Also the full-size B1-B3 benchmark scenarios.
        #[arg(long)]
        full: bool,
        /// Only the cases whose id contains this (repeatable).
        #[arg(long)]
        only: Vec<String>,
        /// The kdrain binary (default: built from this workspace).
        #[arg(long)]
        kdrain: Option<PathBuf>,
        /// The kubectl binary.
        #[arg(long, default_value = "kubectl")]
        kubectl: PathBuf,
        /// First of six consecutive loopback ports for the control plane (default: the first
        /// free ones from 17390, in steps of 10).
        #[arg(long)]
        port_base: Option<u16>,
        /// Directory for the report and the drain logs (default: target/e2e).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ControlPlane {
    /// Build the five binaries from source (Go module proxy) into the cache, unless already there.
    Build {
        /// Rebuild even when the cache is complete and current.
        #[arg(long)]
        force: bool,
    },
    /// Start the control plane on 127.0.0.1 and wait until it is healthy.
    Up {
        /// Where to write the admin kubeconfig (default: `<run dir>/kubeconfig`).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Where the API server writes its JSON-lines audit log (default: `<run dir>/audit.jsonl`).
        #[arg(long)]
        audit_log: Option<PathBuf>,
        /// First of six consecutive loopback ports (etcd, etcd peer, API server,
        /// controller-manager, scheduler, kwok).
        #[arg(long, default_value_t = 17380)]
        port_base: u16,
        /// The controller-manager's client rate limit in requests/s (its --kube-api-qps; burst
        /// twice that). Default: the upstream 20/s (burst 30), which the disruption controller's
        /// budget status writes reach on a drain of hundreds of pods.
        #[arg(long, value_name = "QPS", value_parser = clap::value_parser!(u32).range(1..))]
        controller_qps: Option<u32>,
    },
    /// Stop the processes `up` started.
    Down,
    /// Create a kubesim scenario's objects on the running control plane and wait until they settle.
    Load {
        /// The scenario file (e.g. scenarios/demo.yaml).
        scenario: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("xtask: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(cli));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(c) = e.downcast_ref::<ComponentError>() {
                eprintln!("xtask: {c}");
                ExitCode::from(3)
            } else {
                eprintln!("xtask: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Top::ControlPlane(ControlPlane::Build { force }) => {
            gobuild::build(force)?;
        }
        Top::ControlPlane(ControlPlane::Up {
            kubeconfig,
            audit_log,
            port_base,
            controller_qps,
        }) => {
            let opts = UpOptions {
                kubeconfig,
                audit_log,
                port_base,
                dir: paths::run_dir(),
                bin: paths::bin_dir(),
                controller_qps,
            };
            let cluster = cluster::up(&opts).await?;
            println!("{}", cluster.state.kubeconfig.display());
        }
        Top::E2e {
            full,
            only,
            kdrain,
            kubectl,
            port_base,
            out,
        } => {
            let root = paths::workspace_root();
            let kdrain = match kdrain {
                Some(k) => k,
                None => build_kdrain(&root)?,
            };
            let out = out.unwrap_or_else(|| root.join("target").join("e2e"));
            let port_base = match port_base {
                Some(p) => p,
                None => cluster::free_port_base(17390)?,
            };
            let opts = e2e::E2eOptions {
                full,
                only,
                kdrain,
                kubectl,
                up: UpOptions {
                    kubeconfig: None,
                    audit_log: None,
                    port_base,
                    dir: out.join("cluster"),
                    bin: paths::bin_dir(),
                    controller_qps: None,
                },
                out,
            };
            e2e::run(opts).await?;
        }
        Top::ControlPlane(ControlPlane::Down) => cluster::down(&paths::run_dir())?,
        Top::ControlPlane(ControlPlane::Load { scenario }) => {
            let sc = kubesim::Scenario::from_file(&scenario)?;
            let dir = paths::run_dir();
            let Some(state) = cluster::read_state(&dir) else {
                anyhow::bail!(
                    "no control plane is running from {}; run `cargo xtask control-plane up` first",
                    dir.display()
                );
            };
            let client = cluster::client_for(&std::fs::read_to_string(&state.kubeconfig)?).await?;
            let pki = pki::Pki {
                dir: state.dir.join("pki"),
            };
            materialise::materialise(&client, &pki, &state.server, &sc).await?;
        }
    }
    Ok(())
}

/// Build the kdrain binary of this workspace (a no-op when up to date) and return its path, as
/// cargo reports it (so a `CARGO_TARGET_DIR` or a configured target directory is followed).
fn build_kdrain(root: &std::path::Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = std::process::Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--locked",
            "-p",
            "kdrain-cli",
            "--bin",
            "kdrain",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !out.status.success() {
        anyhow::bail!(
            "building kdrain failed ({}); pass --kdrain PATH to use a built binary",
            out.status
        );
    }
    built_executable(&String::from_utf8_lossy(&out.stdout), "kdrain").ok_or_else(|| {
        anyhow::anyhow!(
            "cargo built kdrain but did not say where; pass --kdrain PATH to use a built binary"
        )
    })
}

/// The path of the executable `name` in cargo's `--message-format=json` output.
fn built_executable(messages: &str, name: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::built_executable;
    use std::path::PathBuf;

    #[test]
    fn the_built_binary_is_where_cargo_says_not_under_a_fixed_target() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"kdrain","kind":["lib"]},"executable":null}
{"reason":"compiler-artifact","target":{"name":"kdrain","kind":["bin"]},"executable":"/tmp/elsewhere/debug/kdrain"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            built_executable(messages, "kdrain"),
            Some(PathBuf::from("/tmp/elsewhere/debug/kdrain"))
        );
        assert_eq!(built_executable(messages, "kubesim"), None);
    }
}
