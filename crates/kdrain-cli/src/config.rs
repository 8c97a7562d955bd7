//! Builds the Kubernetes client the way kubectl finds its cluster (--kubeconfig, $KUBECONFIG,
//! ~/.kube/config, then in-cluster), and checks it can be used before anything is changed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};

use crate::exit::{CliError, PERMISSION_DENIED, UNREACHABLE};

/// How long the reachability check waits for `/version` before calling the cluster unreachable.
const REACHABILITY_TIMEOUT: Duration = Duration::from_secs(10);

/// A client that has been shown to reach its API server.
pub struct Cluster {
    /// The client (built with `default_retry = false`: the drain engine owns every retry).
    pub client: Client,
}

/// Where the configuration came from, for error messages.
enum Source {
    File(PathBuf),
    Env(String),
    InCluster,
}

/// Loads the configuration, builds the client and checks the server answers.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<Cluster, CliError> {
    let (mut config, _source) = load_config(kubeconfig, context).await?;
    // The engine retries 429s itself (budget waits, progress, timeouts); kube's retry layer
    // would hide them for minutes.
    config.default_retry = false;
    config.connect_timeout = Some(Duration::from_secs(5));
    // Audit logs and API priority and fairness attribute requests by their User-Agent, as
    // `kubectl/v1.33.1 (linux/amd64)` is for kubectl.
    config
        .headers
        .push((http::header::USER_AGENT, user_agent()));
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| {
        CliError::usage(format!(
            "cannot build a client for {server}: {e}; check the cluster and user entries of your kubeconfig"
        ))
    })?;
    check_reachable(&client, &server).await?;
    tracing::info!(%server, "connected");
    Ok(Cluster { client })
}

/// `kdrain/<version> (<os>/<arch>)`, the shape kubectl and client-go send.
pub fn user_agent() -> http::HeaderValue {
    let value = format!(
        "kdrain/v{} ({}/{})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        go_arch(std::env::consts::ARCH)
    );
    http::HeaderValue::from_str(&value).unwrap_or(http::HeaderValue::from_static("kdrain"))
}

/// Rust's architecture names as Go (and so kubectl) spells them.
fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

async fn load_config(
    explicit: Option<&Path>,
    context: Option<&str>,
) -> Result<(Config, Source), CliError> {
    let (kubeconfig, source) = match explicit {
        Some(path) => (read_file(path)?, Source::File(path.to_path_buf())),
        None => match std::env::var("KUBECONFIG") {
            Ok(value) if !value.trim().is_empty() => {
                let kc = Kubeconfig::read().map_err(|e| {
                    CliError::usage(format!(
                        "cannot load kubeconfig from $KUBECONFIG ({value}): {}; fix the file or pass --kubeconfig PATH",
                        describe_kubeconfig_error(&e)
                    ))
                })?;
                (kc, Source::Env(value))
            }
            _ => match default_kubeconfig_path().filter(|p| p.exists()) {
                Some(path) => (read_file(&path)?, Source::File(path)),
                None => return in_cluster(context),
            },
        },
    };
    let where_from = match &source {
        Source::File(p) => p.display().to_string(),
        Source::Env(v) => format!("$KUBECONFIG ({v})"),
        Source::InCluster => "in-cluster config".to_string(),
    };
    if let Some(wanted) = context
        && !kubeconfig.contexts.iter().any(|c| c.name == wanted)
    {
        let available: Vec<&str> = kubeconfig
            .contexts
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return Err(CliError::usage(format!(
            "context \"{wanted}\" not found in kubeconfig {where_from} (available: {}); pick one with --context",
            if available.is_empty() {
                "none".to_string()
            } else {
                available.join(", ")
            }
        )));
    }
    if context.is_none()
        && kubeconfig
            .current_context
            .as_deref()
            .unwrap_or("")
            .is_empty()
    {
        return Err(CliError::usage(format!(
            "kubeconfig {where_from} has no current-context; pass --context NAME or run `kubectl config use-context NAME`"
        )));
    }
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| {
            CliError::usage(format!(
                "cannot use kubeconfig {where_from}: {}; fix the context, cluster and user entries",
                describe_kubeconfig_error(&e)
            ))
        })?;
    Ok((config, source))
}

fn in_cluster(context: Option<&str>) -> Result<(Config, Source), CliError> {
    if let Some(name) = context {
        return Err(CliError::usage(format!(
            "--context \"{name}\" given but no kubeconfig found ($KUBECONFIG is unset and ~/.kube/config does not exist); pass --kubeconfig PATH"
        )));
    }
    Config::incluster()
        .map(|c| (c, Source::InCluster))
        .map_err(|e| {
            CliError::usage(format!(
                "no kubeconfig found ($KUBECONFIG is unset, ~/.kube/config does not exist) and not running in a cluster ({e}); pass --kubeconfig PATH"
            ))
        })
}

fn read_file(path: &Path) -> Result<Kubeconfig, CliError> {
    Kubeconfig::read_from(path).map_err(|e| {
        CliError::usage(format!(
            "cannot read kubeconfig {}: {}; pass a readable kubeconfig with --kubeconfig PATH",
            path.display(),
            describe_kubeconfig_error(&e)
        ))
    })
}

fn describe_kubeconfig_error(error: &KubeconfigError) -> String {
    match error {
        KubeconfigError::ReadConfig(io, _) => io.to_string(),
        other => one_line(&other.to_string()),
    }
}

fn default_kubeconfig_path() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".kube").join("config"))
}

async fn check_reachable(client: &Client, server: &str) -> Result<(), CliError> {
    match tokio::time::timeout(REACHABILITY_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(kube::Error::Api(status))) if status.code == 401 || status.code == 403 => {
            Err(CliError::new(
                PERMISSION_DENIED,
                format!(
                    "the API server at {server} refused our credentials ({} {}): {}; check the user entry of your kubeconfig",
                    status.code, status.reason, status.message
                ),
            ))
        }
        Ok(Err(e)) => {
            let chain = one_line(&error_chain(&e));
            let fix = if chain.contains("certificate")
                || chain.contains("TLS")
                || chain.contains("tls")
            {
                "the server's TLS certificate is not trusted: check certificate-authority(-data) in the kubeconfig's cluster entry"
            } else {
                "check that the cluster is up and that --kubeconfig/--context point at it"
            };
            Err(CliError::new(
                UNREACHABLE,
                format!("cannot reach the Kubernetes API at {server}: {chain}; {fix}"),
            ))
        }
        Err(_) => Err(CliError::new(
            UNREACHABLE,
            format!(
                "the Kubernetes API at {server} did not answer within {}s; check that the cluster is up and that --kubeconfig/--context point at it",
                REACHABILITY_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// The error and its sources joined with ": " (hyper hides the useful part, like
/// "Connection refused", in the source chain).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}

/// Collapses a multi-line message into one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_agent_names_kdrain_its_version_and_platform_like_kubectl() {
        let ua = user_agent();
        let ua = ua.to_str().unwrap();
        let version = format!("kdrain/v{} (", env!("CARGO_PKG_VERSION"));
        assert!(ua.starts_with(&version), "{ua}");
        assert!(ua.ends_with(')'), "{ua}");
        let platform = &ua[version.len()..ua.len() - 1];
        let (os, arch) = platform.split_once('/').unwrap();
        assert_eq!(os, std::env::consts::OS);
        assert!(
            !arch.is_empty() && arch != "x86_64" && arch != "aarch64",
            "{ua}"
        );
    }
}
