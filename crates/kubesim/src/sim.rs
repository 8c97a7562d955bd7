//! A running simulator: the shared state, the HTTP server and the controllers, plus the
//! in-process API other crates use (URL, kubeconfig, kube client, counters, faults).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::controllers::Controllers;
use crate::faults::{Fault, FaultSet};
use crate::ledger::{Ledger, RequestCount, Violation};
use crate::objects::PodParams;
use crate::scenario::{Scenario, ScenarioError, Settings};
use crate::store::Store;

/// State shared by the HTTP handlers and the controllers.
pub struct Shared {
    /// The object store.
    pub store: Store,
    /// Counters and invariant log.
    pub ledger: Ledger,
    /// Active fault rules.
    pub faults: FaultSet,
    /// Scenario settings.
    pub settings: Settings,
    /// Becomes true when the simulator shuts down (ends watch streams).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The address the server listens on.
    pub addr: SocketAddr,
    /// Simulated pod behaviour by owner or pod UID.
    pub params: Mutex<HashMap<String, PodParams>>,
    /// Authentication and authorization, when the scenario has an `auth` section.
    pub authz: Option<crate::auth::Authz>,
    /// Open snapshots of paged LISTs (continue tokens, R-4).
    pub snapshots: crate::paging::Snapshots,
    /// How many watch streams are open now (a stream closes when its client goes away, at its
    /// timeout or at shutdown).
    pub open_watches: Arc<std::sync::atomic::AtomicUsize>,
}

/// Errors starting a simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Requested address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The scenario is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// A CustomResourceDefinition given to [`Sim::install_crd`] is not valid.
    #[error("invalid CustomResourceDefinition: {0}")]
    Crd(String),
}

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Address to listen on (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Serve HTTPS with a CA generated at start-up.
    pub tls: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: false,
        }
    }
}

/// A running simulator. Dropping it (or [`Sim::shutdown`]) stops the server.
pub struct Sim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    ca: Option<(String, Vec<u8>)>,
    server: Option<JoinHandle<()>>,
    controllers: Option<JoinHandle<()>>,
}

impl Sim {
    /// Start on 127.0.0.1 with a free port.
    pub async fn start(scenario: Scenario) -> Result<Sim, SimError> {
        Self::start_on(scenario, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Start on the given address.
    pub async fn start_on(scenario: Scenario, addr: SocketAddr) -> Result<Sim, SimError> {
        Self::start_with(scenario, SimOptions { addr, tls: false }).await
    }

    /// Start with explicit options (address, TLS).
    pub async fn start_with(scenario: Scenario, options: SimOptions) -> Result<Sim, SimError> {
        let addr = options.addr;
        scenario.validate()?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| SimError::Bind { addr, source })?;
        let material = match options.tls {
            true => Some(crate::tls::TlsMaterial::generate(local.ip())?),
            false => None,
        };
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let store = Store::new(scenario.settings.watch_history);
        let mut params = HashMap::new();
        let t0 = std::time::Instant::now();
        let unplaced = crate::builder::load(&scenario, &mut store.lock(), &mut params);
        for crd in &scenario.crds {
            crate::crd::install(&mut store.lock(), crd.clone())
                .map_err(|e| SimError::Crd(e.message))?;
        }
        tracing::debug!(elapsed = ?t0.elapsed(), "scenario loaded");
        let faults = FaultSet::default();
        faults.set(scenario.faults.clone());
        let shared = Arc::new(Shared {
            store,
            ledger: Ledger::default(),
            faults,
            settings: scenario.settings.clone(),
            shutdown: shutdown.clone(),
            addr: local,
            params: Mutex::new(params),
            authz: scenario.auth.as_ref().map(crate::auth::Authz::new),
            snapshots: crate::paging::Snapshots::new(Duration::from_secs_f64(
                scenario.settings.list_snapshot_seconds,
            )),
            open_watches: Arc::default(),
        });
        let mut ctl = Controllers::new(shared.clone());
        ctl.resync(Some(&unplaced));
        ctl.step();
        tracing::debug!(elapsed = ?t0.elapsed(), "controllers synced");
        let controllers = tokio::spawn(ctl.run());
        let app = axum::Router::new()
            .fallback(crate::api::handle)
            .with_state(shared.clone());
        let mut sig = shutdown;
        let stopped = async move {
            let _ = sig.wait_for(|v| *v).await;
        };
        let (server, ca) = if let Some(material) = material {
            let tls_listener = material.listener(listener);
            let server = tokio::spawn(async move {
                if let Err(e) = axum::serve(tls_listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
                {
                    tracing::warn!(error = %e, "kubesim server stopped with an error");
                }
            });
            (server, Some((material.ca_pem, material.ca_der)))
        } else {
            let server = tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
                {
                    tracing::warn!(error = %e, "kubesim server stopped with an error");
                }
            });
            (server, None)
        };
        tracing::debug!(%local, "kubesim serving");
        Ok(Sim {
            shared,
            addr: local,
            stop,
            ca,
            server: Some(server),
            controllers: Some(controllers),
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, e.g. `http://127.0.0.1:PORT` (`https://` when serving TLS).
    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The generated CA certificate (PEM) when serving TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca.as_ref().map(|(pem, _)| pem.as_str())
    }

    /// A kubeconfig with cluster, context and user all named `kubesim` (with the CA when serving
    /// TLS), using the admin token.
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig_yaml_with_token(crate::auth::ADMIN_TOKEN)
    }

    /// A kubeconfig like [`Sim::kubeconfig_yaml`] for another bearer token (scenario `auth` users).
    pub fn kubeconfig_yaml_with_token(&self, token: &str) -> String {
        let ca = match &self.ca {
            Some((pem, _)) => {
                use base64::Engine;
                format!(
                    "\n    certificate-authority-data: {}",
                    base64::engine::general_purpose::STANDARD.encode(pem)
                )
            }
            None => String::new(),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kubesim\n  cluster:\n    server: {}{ca}\ncontexts:\n- name: kubesim\n  context:\n    cluster: kubesim\n    user: kubesim\n    namespace: default\ncurrent-context: kubesim\nusers:\n- name: kubesim\n  user:\n    token: {token}\npreferences: {{}}\n",
            self.url()
        )
    }

    /// Write [`Sim::kubeconfig_yaml`] to a file.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// Write [`Sim::kubeconfig_yaml_with_token`] to a file.
    pub fn write_kubeconfig_with_token(&self, path: &Path, token: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml_with_token(token))
    }

    /// A kube client configuration for this simulator (admin token), with the client's own retries off.
    pub fn kube_config(&self) -> kube::Config {
        self.kube_config_with_token(crate::auth::ADMIN_TOKEN)
    }

    /// Like [`Sim::kube_config`] for another bearer token.
    pub fn kube_config_with_token(&self, token: &str) -> kube::Config {
        let mut c = kube::Config::new(self.url().parse().expect("valid URL"));
        c.default_retry = false;
        if let Some((_, der)) = &self.ca {
            c.root_cert = Some(vec![der.clone()]);
        }
        c.default_namespace = "default".into();
        if let Ok(auth) = serde_json::from_value(serde_json::json!({ "token": token })) {
            c.auth_info = auth;
        }
        c
    }

    /// A kube client for this simulator (admin token).
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.kube_config()).expect("kube client for kubesim")
    }

    /// A kube client using another bearer token.
    pub fn client_with_token(&self, token: &str) -> kube::Client {
        kube::Client::try_from(self.kube_config_with_token(token)).expect("kube client for kubesim")
    }

    /// Request counters.
    pub fn requests(&self) -> Vec<RequestCount> {
        self.shared.ledger.requests()
    }

    /// Zero the request counters.
    pub fn reset_requests(&self) {
        self.shared.ledger.reset_requests()
    }

    /// The invariant log.
    pub fn violations(&self) -> Vec<Violation> {
        self.shared.ledger.violations()
    }

    /// Replace the fault rules.
    pub fn set_faults(&self, faults: Vec<Fault>) {
        self.shared.faults.set(faults)
    }

    /// The current fault rules.
    pub fn faults(&self) -> Vec<Fault> {
        self.shared.faults.get()
    }

    /// Install (create, or replace the spec of) a CustomResourceDefinition given as YAML or JSON
    /// (one document, e.g. a committed `crd.yaml`), validated as the API validates it and
    /// established at once: its resources are served when this returns. Returns the CRD's name.
    pub fn install_crd(&self, yaml: &str) -> Result<String, SimError> {
        let crd: serde_json::Value =
            serde_yaml::from_str(yaml).map_err(|e| SimError::Crd(e.to_string()))?;
        let mut st = self.shared.store.lock();
        let stored = crate::crd::install(&mut st, crd).map_err(|e| SimError::Crd(e.message))?;
        Ok(crate::meta::name(&stored).to_string())
    }

    /// Expire every open paged-LIST snapshot now, as the real server's compaction would: each
    /// outstanding continue token then gets 410 Expired with a fresh, inconsistent token.
    /// Returns how many snapshots were open.
    pub fn expire_list_snapshots(&self) -> usize {
        self.shared.snapshots.expire_all()
    }

    /// How many paged-LIST snapshots are open (only lists that had more than one page open one).
    pub fn open_list_snapshots(&self) -> usize {
        self.shared.snapshots.len()
    }

    /// How many watch streams are open now. A stream whose client went away is seen closed
    /// when the server next writes to it (an event or a bookmark).
    pub fn open_watches(&self) -> usize {
        self.shared
            .open_watches
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stop the server and controllers, waiting briefly for connections to close.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(s) = self.server.take() {
            let abort = s.abort_handle();
            if tokio::time::timeout(Duration::from_secs(3), s)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        if let Some(c) = self.controllers.take() {
            c.abort();
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(s) = self.server.take() {
            s.abort();
        }
        if let Some(c) = self.controllers.take() {
            c.abort();
        }
    }
}
