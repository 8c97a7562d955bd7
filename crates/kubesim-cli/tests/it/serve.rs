//! `kubesim serve` end to end.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(30);

fn scenario(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("scenario.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// `kubesim ARGS SCENARIO --write-kubeconfig KUBECONFIG`, stdout piped, killed when dropped.
fn serve(args: &[&str], scenario: &Path, kubeconfig: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubesim"));
    cmd.args(args)
        .arg(scenario)
        .arg("--write-kubeconfig")
        .arg(kubeconfig)
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// The first line the child prints (the server URL), waited for at most `WAIT`.
async fn first_line(child: &mut Child) -> String {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}

async fn http_get(url: &str, path: &str) -> String {
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn serve_prints_the_url_writes_a_kubeconfig_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(
        dir.path(),
        "nodes: [{name: n1}]\nworkloads: [{kind: Pod, name: p}]\n",
    );
    let kc = dir.path().join("kubeconfig");
    let mut child = serve(&["serve", "--scenario"], &sc, &kc)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || {
        tokio::time::timeout(WAIT, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    };
    let url = next().await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    // where the kubeconfig is, and the line to paste
    assert_eq!(
        next().await,
        format!(
            "# kubeconfig written to {}; to use it with kubectl or kdrain:",
            kc.display()
        )
    );
    assert_eq!(next().await, format!("export KUBECONFIG={}", kc.display()));
    let kubeconfig = std::fs::read_to_string(&kc).unwrap();
    assert!(
        kubeconfig.contains(&format!("server: {url}")),
        "{kubeconfig}"
    );
    assert!(kubeconfig.contains("current-context: kubesim"));
    let version = http_get(&url, "/version").await;
    assert!(version.starts_with("HTTP/1.1 200"), "{version}");
    assert!(version.contains("\"minor\":\"32\""), "{version}");
    let pod = http_get(&url, "/api/v1/namespaces/default/pods/p").await;
    assert!(pod.contains("\"phase\":\"Running\""), "{pod}");
    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn unknown_scenario_keys_are_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "nodes: [{name: n1, maxpods: 3}]\n");
    let out = tokio::time::timeout(
        WAIT,
        Command::new(env!("CARGO_BIN_EXE_kubesim"))
            .args(["serve", "--scenario"])
            .arg(&sc)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid scenario") && err.contains("unknown field `maxpods`"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn tls_serving_writes_the_ca_into_the_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "nodes: [{name: n1}]\n");
    let kc = dir.path().join("kubeconfig");
    let mut child = serve(&["serve", "--tls", "--scenario"], &sc, &kc)
        .spawn()
        .unwrap();
    let url = first_line(&mut child).await;
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let kubeconfig = std::fs::read_to_string(&kc).unwrap();
    assert!(
        kubeconfig.contains("certificate-authority-data: "),
        "{kubeconfig}"
    );
    child.kill().await.unwrap();
}

/// Without --write-kubeconfig the kubeconfig goes to a temporary file, named with the line to
/// paste, and is removed when the server stops.
#[tokio::test]
async fn serve_without_a_path_writes_a_temporary_kubeconfig_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "nodes: [{name: n1}]\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubesim"))
        .args(["serve", "--scenario"])
        .arg(&sc)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || {
        tokio::time::timeout(WAIT, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    };
    let url = next().await;
    let said = next().await;
    assert!(
        said.ends_with(" (removed when the server stops); to use it with kubectl or kdrain:"),
        "{said}"
    );
    let export = next().await;
    let path = export
        .strip_prefix("export KUBECONFIG=")
        .expect("an export line");
    assert!(std::path::Path::new(path).is_absolute(), "{path}");
    assert!(said.contains(path), "{said}");
    let kubeconfig = std::fs::read_to_string(path).unwrap();
    assert!(
        kubeconfig.contains(&format!("server: {url}")),
        "{kubeconfig}"
    );
    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!std::path::Path::new(path).exists(), "removed at exit");
}
