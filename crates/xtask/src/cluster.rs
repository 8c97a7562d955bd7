//! `cargo xtask control-plane up` / `down`: etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler and kwok on 127.0.0.1, with generated PKI, Node,RBAC authorization and a
//! JSON-lines audit log at level Metadata.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};

use crate::gobuild::check_cache;
use crate::pki::{Pki, kubeconfig, stored_identity};

/// The kwok Stage configuration for pods (delays from annotations).
pub const POD_STAGES: &str = include_str!("kwok-pod-stages.yaml");
/// Pod annotation: seconds from creation on a node to Ready.
pub const READY_ANNOTATION: &str = "kwok.kdrain.dev/ready-seconds";
/// Pod annotation: seconds from deletion to gone (capped by the grace period).
pub const TERMINATION_ANNOTATION: &str = "kwok.kdrain.dev/termination-seconds";

const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n";

/// How long each component may take to become healthy.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Options of `up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Where to write the admin kubeconfig (default: `<run dir>/kubeconfig`).
    pub kubeconfig: Option<PathBuf>,
    /// Where the API server writes its audit log (default: `<run dir>/audit.jsonl`).
    pub audit_log: Option<PathBuf>,
    /// First of the six consecutive loopback ports used.
    pub port_base: u16,
    /// The cluster's directory.
    pub dir: PathBuf,
    /// The binaries.
    pub bin: PathBuf,
    /// The controller-manager's client rate limit (its `--kube-api-qps`, burst twice that);
    /// `None` keeps the upstream default (20 requests/s, burst 30) that a real cluster has
    /// unless its operator raised it. Every controller writes through a client of this rate.
    pub controller_qps: Option<u32>,
}

/// A started component, as recorded in the state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Proc {
    /// Component name.
    pub name: String,
    /// Process id.
    pub pid: u32,
    /// The binary it runs (checked before `down` signals the pid).
    pub binary: PathBuf,
    /// Its log file.
    pub log: PathBuf,
}

/// What `up` started: written to `<run dir>/state.json`, read by `down`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Started processes, in start order.
    pub procs: Vec<Proc>,
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// The audit log.
    pub audit_log: PathBuf,
    /// API server URL.
    pub server: String,
    /// The cluster's directory.
    pub dir: PathBuf,
}

/// A failure naming the component and its log file.
#[derive(Debug)]
pub struct ComponentError {
    /// The one line to print.
    pub line: String,
}

impl std::fmt::Display for ComponentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line)
    }
}

impl std::error::Error for ComponentError {}

fn component_error(line: String) -> anyhow::Error {
    anyhow::Error::new(ComponentError { line })
}

struct Ports {
    etcd: u16,
    etcd_peer: u16,
    apiserver: u16,
    controller_manager: u16,
    scheduler: u16,
    kwok: u16,
}

impl Ports {
    fn from_base(base: u16) -> Result<Ports> {
        if base.checked_add(5).is_none() || base < 1024 {
            return Err(component_error(format!(
                "--port-base {base} is out of range: give a port from 1024 to 65530"
            )));
        }
        Ok(Ports {
            etcd: base,
            etcd_peer: base + 1,
            apiserver: base + 2,
            controller_manager: base + 3,
            scheduler: base + 4,
            kwok: base + 5,
        })
    }
}

/// Whether the six ports from `base` can be bound on 127.0.0.1 now.
pub fn ports_free(base: u16) -> bool {
    (base..base + 6).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
}

/// The first base from `from` (in steps of 10, 50 tries) whose six ports are free: another
/// worktree's e2e run on this machine may hold the default ones.
pub fn free_port_base(from: u16) -> Result<u16> {
    (0..50)
        .map(|i| from.saturating_add(i * 10))
        .find(|b| *b <= 65530 && ports_free(*b))
        .ok_or_else(|| {
            component_error(format!(
                "no six consecutive free loopback ports from {from} to {}; pass --port-base N",
                from.saturating_add(490)
            ))
        })
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

/// Read the state file, if any.
pub fn read_state(dir: &Path) -> Option<State> {
    let text = std::fs::read_to_string(state_path(dir)).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_state(state: &State) -> Result<()> {
    std::fs::write(state_path(&state.dir), serde_json::to_string_pretty(state)?)
        .with_context(|| format!("cannot write {}", state_path(&state.dir).display()))
}

/// Whether `pid` is alive and still runs `binary` (so a recycled pid is never signalled).
fn runs(pid: u32, binary: &Path) -> bool {
    let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
        return false;
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // A zombie (state Z) has exited already.
    let zombie = status
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
    !zombie
        && (exe == binary
            || exe.to_string_lossy().trim_end_matches(" (deleted)") == binary.to_string_lossy())
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
}

/// Stop the recorded processes, newest first: SIGTERM, then SIGKILL after 10 s. Returns the
/// names of those that were running.
pub fn stop_procs(procs: &[Proc]) -> Vec<String> {
    let mut stopped = Vec::new();
    for p in procs.iter().rev() {
        if !runs(p.pid, &p.binary) {
            continue;
        }
        signal(p.pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while runs(p.pid, &p.binary) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if runs(p.pid, &p.binary) {
            signal(p.pid, nix::sys::signal::Signal::SIGKILL);
        }
        stopped.push(p.name.clone());
    }
    stopped
}

/// A running control plane started by this process (its children are reaped on stop).
pub struct Cluster {
    /// What was started.
    pub state: State,
    children: Vec<std::process::Child>,
}

impl Cluster {
    /// Stop every component and reap the children.
    pub fn stop(mut self) {
        stop_procs(&self.state.procs);
        for c in &mut self.children {
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(state_path(&self.state.dir));
    }
}

fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn spawn(
    st: &mut State,
    children: &mut Vec<std::process::Child>,
    bin: &Path,
    name: &str,
    args: &[String],
) -> Result<()> {
    let binary = bin.join(name);
    let log = st.dir.join("logs").join(format!("{name}.log"));
    let out = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let err = out.try_clone()?;
    let child = Command::new(&binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| {
            component_error(format!(
                "{name} cannot start ({e}): {} is not a runnable binary; run `cargo xtask control-plane build --force` (log: {})",
                binary.display(),
                log.display()
            ))
        })?;
    st.procs.push(Proc {
        name: name.to_string(),
        pid: child.id(),
        binary: binary.canonicalize().unwrap_or(binary),
        log,
    });
    children.push(child);
    write_state(st)
}

/// If the named component has exited, the error naming it and its log.
fn exited(children: &mut [std::process::Child], st: &State, name: &str) -> Option<anyhow::Error> {
    let i = st.procs.iter().position(|p| p.name == name)?;
    match children[i].try_wait() {
        Ok(Some(status)) => Some(component_error(format!(
            "{name} exited during start-up ({status}); see its log {}",
            st.procs[i].log.display()
        ))),
        _ => None,
    }
}

/// A client from a kubeconfig's text.
pub async fn client_for(kubeconfig_yaml: &str) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig_yaml)?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    Ok(kube::Client::try_from(config)?)
}

/// GET `path` through `client`; true on a 2xx answer with body "ok".
async fn healthy(client: &kube::Client, path: &str) -> bool {
    let req = http::Request::get(path).body(Vec::new());
    match req {
        Ok(req) => matches!(client.request_text(req).await, Ok(body) if body.trim() == "ok"),
        Err(_) => false,
    }
}

fn insecure_client(url: &str) -> Result<kube::Client> {
    let mut config = kube::Config::new(url.parse()?);
    config.accept_invalid_certs = true;
    Ok(kube::Client::try_from(config)?)
}

/// Wait until `check` passes, failing early when the component exits.
async fn wait_for<F, Fut>(
    children: &mut [std::process::Child],
    st: &State,
    name: &str,
    mut check: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(e) = exited(children, st, name) {
            return Err(e);
        }
        if check().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            let log = st
                .procs
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.log.display().to_string())
                .unwrap_or_default();
            return Err(component_error(format!(
                "{name} did not become healthy within {} s; see its log {log}",
                START_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Start the control plane. On any failure everything started is stopped again.
pub async fn up(opts: &UpOptions) -> Result<Cluster> {
    if let Err(why) = check_cache(&opts.bin) {
        return Err(component_error(format!(
            "cannot start the control plane: {why}; run `cargo xtask control-plane build`"
        )));
    }
    if let Some(old) = read_state(&opts.dir) {
        let live: Vec<&Proc> = old
            .procs
            .iter()
            .filter(|p| runs(p.pid, &p.binary))
            .collect();
        if !live.is_empty() {
            let names: Vec<String> = live
                .iter()
                .map(|p| format!("{} (pid {})", p.name, p.pid))
                .collect();
            return Err(component_error(format!(
                "a control plane is already running from {}: {}; run `cargo xtask control-plane down` first",
                opts.dir.display(),
                names.join(", ")
            )));
        }
    }
    let ports = Ports::from_base(opts.port_base)?;
    let logs = opts.dir.join("logs");
    for (name, port) in [
        ("etcd", ports.etcd),
        ("etcd", ports.etcd_peer),
        ("kube-apiserver", ports.apiserver),
        ("kube-controller-manager", ports.controller_manager),
        ("kube-scheduler", ports.scheduler),
        ("kwok", ports.kwok),
    ] {
        if !port_free(port) {
            return Err(component_error(format!(
                "{name} cannot start: 127.0.0.1:{port} is in use (its log would be {}); stop what uses it or pass --port-base",
                logs.join(format!("{name}.log")).display()
            )));
        }
    }
    // A fresh directory: no data or certificates from an earlier cluster.
    if opts.dir.exists() {
        std::fs::remove_dir_all(&opts.dir)
            .with_context(|| format!("cannot clear {}", opts.dir.display()))?;
    }
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let pki = Pki::generate(&opts.dir.join("pki"))?;
    let server = format!("https://127.0.0.1:{}", ports.apiserver);
    let kubeconfig_path = opts
        .kubeconfig
        .clone()
        .unwrap_or_else(|| opts.dir.join("kubeconfig"));
    let audit_log = opts
        .audit_log
        .clone()
        .unwrap_or_else(|| opts.dir.join("audit.jsonl"));
    let ca = pki.ca_pem()?;
    let mut kubeconfigs = std::collections::HashMap::new();
    for (id, user) in [
        ("admin", "kdrain-admin"),
        ("controller-manager", "system:kube-controller-manager"),
        ("scheduler", "system:kube-scheduler"),
        ("kwok", "kwok"),
    ] {
        let text = kubeconfig(&server, &ca, &stored_identity(&pki, id)?, user);
        let path = opts.dir.join(format!("{id}.kubeconfig"));
        std::fs::write(&path, &text)?;
        kubeconfigs.insert(id, (path, text));
    }
    std::fs::write(opts.dir.join("audit-policy.yaml"), AUDIT_POLICY)?;
    std::fs::write(opts.dir.join("kwok-stages.yaml"), POD_STAGES)?;
    let mut st = State {
        procs: Vec::new(),
        kubeconfig: kubeconfig_path.clone(),
        audit_log: audit_log.clone(),
        server: server.clone(),
        dir: opts.dir.clone(),
    };
    let mut children = Vec::new();
    let started = Instant::now();
    let result = start_all(opts, &ports, &pki, &kubeconfigs, &mut st, &mut children).await;
    if let Err(e) = result {
        stop_procs(&st.procs);
        for c in &mut children {
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(state_path(&opts.dir));
        return Err(e);
    }
    let admin = &kubeconfigs["admin"].1;
    if let Some(parent) = kubeconfig_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&kubeconfig_path, admin)
        .with_context(|| format!("cannot write {}", kubeconfig_path.display()))?;
    write_state(&st)?;
    eprintln!(
        "control plane up in {:.1} s: {server}, kubeconfig {}, audit log {}",
        started.elapsed().as_secs_f64(),
        kubeconfig_path.display(),
        audit_log.display()
    );
    Ok(Cluster {
        state: st,
        children,
    })
}

async fn start_all(
    opts: &UpOptions,
    ports: &Ports,
    pki: &Pki,
    kubeconfigs: &std::collections::HashMap<&str, (PathBuf, String)>,
    st: &mut State,
    children: &mut Vec<std::process::Child>,
) -> Result<()> {
    let d = |p: PathBuf| p.display().to_string();
    let etcd_url = format!("http://127.0.0.1:{}", ports.etcd);
    let peer_url = format!("http://127.0.0.1:{}", ports.etcd_peer);
    spawn(
        st,
        children,
        &opts.bin,
        "etcd",
        &[
            "--name=node0".into(),
            format!("--data-dir={}", d(opts.dir.join("etcd-data"))),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=node0={peer_url}"),
            "--listen-metrics-urls=".into(),
            "--unsafe-no-fsync=true".into(),
            "--quota-backend-bytes=8589934592".into(),
            "--log-level=warn".into(),
        ],
    )?;
    let etcd_addr: SocketAddr = ([127, 0, 0, 1], ports.etcd).into();
    wait_for(children, st, "etcd", || async move {
        TcpStream::connect_timeout(&etcd_addr, Duration::from_millis(200)).is_ok()
    })
    .await?;
    let audit = d(st.audit_log.clone());
    if let Some(parent) = st.audit_log.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    spawn(
        st,
        children,
        &opts.bin,
        "kube-apiserver",
        &[
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={}", ports.apiserver),
            format!("--tls-cert-file={}", d(pki.file("apiserver.crt"))),
            format!("--tls-private-key-file={}", d(pki.file("apiserver.key"))),
            format!("--client-ca-file={}", d(pki.ca_crt())),
            "--authorization-mode=Node,RBAC".into(),
            "--enable-admission-plugins=NodeRestriction".into(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", d(pki.file("sa.pub"))),
            format!(
                "--service-account-signing-key-file={}",
                d(pki.file("sa.key"))
            ),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--allow-privileged=true".into(),
            "--endpoint-reconciler-type=none".into(),
            format!(
                "--audit-policy-file={}",
                d(opts.dir.join("audit-policy.yaml"))
            ),
            format!("--audit-log-path={audit}"),
            "--audit-log-format=json".into(),
            "--audit-log-mode=blocking".into(),
            "--profiling=false".into(),
        ],
    )?;
    let admin = client_for(&kubeconfigs["admin"].1).await?;
    wait_for(children, st, "kube-apiserver", || {
        let c = admin.clone();
        async move { healthy(&c, "/readyz").await }
    })
    .await?;
    let kcm_cfg = d(kubeconfigs["controller-manager"].0.clone());
    spawn(
        st,
        children,
        &opts.bin,
        "kube-controller-manager",
        &[
            format!("--kubeconfig={kcm_cfg}"),
            "--leader-elect=false".into(),
            "--controllers=*".into(),
            "--use-service-account-credentials=true".into(),
            format!("--root-ca-file={}", d(pki.ca_crt())),
            format!(
                "--service-account-private-key-file={}",
                d(pki.file("sa.key"))
            ),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={}", ports.controller_manager),
        ]
        .into_iter()
        .chain(opts.controller_qps.into_iter().flat_map(|qps| {
            [
                format!("--kube-api-qps={qps}"),
                format!("--kube-api-burst={}", qps.saturating_mul(2)),
            ]
        }))
        .collect::<Vec<_>>(),
    )?;
    let sched_cfg = d(kubeconfigs["scheduler"].0.clone());
    spawn(
        st,
        children,
        &opts.bin,
        "kube-scheduler",
        &[
            format!("--kubeconfig={sched_cfg}"),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={}", ports.scheduler),
        ],
    )?;
    spawn(
        st,
        children,
        &opts.bin,
        "kwok",
        &[
            format!("--kubeconfig={}", d(kubeconfigs["kwok"].0.clone())),
            format!("--config={}", d(opts.dir.join("kwok-stages.yaml"))),
            "--manage-all-nodes=true".into(),
            "--node-lease-duration-seconds=40".into(),
            format!("--server-address=127.0.0.1:{}", ports.kwok),
        ],
    )?;
    for (name, url) in [
        (
            "kube-controller-manager",
            format!("https://127.0.0.1:{}", ports.controller_manager),
        ),
        (
            "kube-scheduler",
            format!("https://127.0.0.1:{}", ports.scheduler),
        ),
        ("kwok", format!("http://127.0.0.1:{}", ports.kwok)),
    ] {
        let c = insecure_client(&url).map_err(|e| anyhow!("{name}: {e:#}"))?;
        wait_for(children, st, name, || {
            let c = c.clone();
            async move { healthy(&c, "/healthz").await }
        })
        .await?;
    }
    Ok(())
}

/// `down`: stop what `up` recorded. Without a record it says so and succeeds.
pub fn down(dir: &Path) -> Result<()> {
    let Some(state) = read_state(dir) else {
        println!(
            "no control plane is running from {} (nothing to stop)",
            dir.display()
        );
        return Ok(());
    };
    let stopped = stop_procs(&state.procs);
    let _ = std::fs::remove_file(state_path(dir));
    if stopped.is_empty() {
        println!(
            "the control plane recorded in {} was not running any more",
            dir.display()
        );
    } else {
        println!("stopped {}", stopped.join(", "));
    }
    Ok(())
}
