//! `kubesim`: serve a simulated Kubernetes cluster from a scenario file.

use std::net::SocketAddr;
use std::path::PathBuf;

mod bench;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kubesim",
    version,
    about = "A Kubernetes API simulator for kubectl and kube-rs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure the simulator on a scenario: load time, memory, LIST and eviction latency.
    Bench {
        /// Scenario YAML file.
        #[arg(long, default_value = "scenarios/big.yaml")]
        scenario: PathBuf,
        /// Number of LIST and eviction samples.
        #[arg(long, default_value_t = 50)]
        samples: usize,
    },
    /// Serve the cluster described by a scenario until Ctrl-C or SIGTERM.
    Serve {
        /// Scenario YAML file.
        #[arg(long)]
        scenario: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: SocketAddr,
        /// Serve HTTPS with a CA generated at start-up (the written kubeconfig carries the CA).
        #[arg(long)]
        tls: bool,
        /// Write the kubeconfig pointing at the server to this path (default: a file in the
        /// temporary directory, removed when the server stops).
        #[arg(long, value_name = "PATH")]
        write_kubeconfig: Option<PathBuf>,
    },
}

/// Listens for Ctrl-C and SIGTERM from now on (a signal sent as soon as the first lines are
/// printed is not lost) and returns the future that ends when one comes.
#[cfg(unix)]
fn signals() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

/// Listens for Ctrl-C and returns the future that ends when it comes.
#[cfg(not(unix))]
fn signals() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Where the kubeconfig is and the line to paste into a shell to use it.
fn kubeconfig_lines(path: &std::path::Path, temporary: bool) -> String {
    let lifetime = if temporary {
        " (removed when the server stops)"
    } else {
        ""
    };
    format!(
        "# kubeconfig written to {}{lifetime}; to use it with kubectl or kdrain:\nexport KUBECONFIG={}",
        path.display(),
        shell_quote(&path.display().to_string())
    )
}

/// `text` quoted for a POSIX shell when it needs it.
fn shell_quote(text: &str) -> String {
    let plain = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%".contains(c));
    if plain && !text.is_empty() {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("KUBESIM_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Bench { scenario, samples } => bench::run(&scenario, samples).await?,
        Command::Serve {
            scenario,
            addr,
            tls,
            write_kubeconfig,
        } => {
            let sc = kubesim::Scenario::from_file(&scenario)?;
            let sim = kubesim::Sim::start_with(sc, kubesim::SimOptions { addr, tls }).await?;
            let temporary = write_kubeconfig.is_none();
            let path = write_kubeconfig.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("kubesim-{}.kubeconfig", std::process::id()))
            });
            sim.write_kubeconfig(&path)
                .with_context(|| format!("cannot write kubeconfig {}", path.display()))?;
            // An absolute path, so the export line works from any directory.
            let path = std::path::absolute(&path).unwrap_or(path);
            let stop = signals();
            // The URL stays the first line, for scripts that read it.
            println!("{}", sim.url());
            println!("{}", kubeconfig_lines(&path, temporary));
            stop.await;
            sim.shutdown().await;
            if temporary {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    Ok(())
}
