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
        /// Write a kubeconfig pointing at the server to this path.
        #[arg(long)]
        write_kubeconfig: Option<PathBuf>,
    },
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
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
            if let Some(path) = &write_kubeconfig {
                sim.write_kubeconfig(path)
                    .with_context(|| format!("cannot write kubeconfig {}", path.display()))?;
            }
            println!("{}", sim.url());
            wait_for_signal().await;
            sim.shutdown().await;
        }
    }
    Ok(())
}
