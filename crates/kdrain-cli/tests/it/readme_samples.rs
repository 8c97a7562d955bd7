//! The README's samples of error lines are what kdrain prints: each command below runs the real
//! binary, and the README's blocks `errors` and `usage` must match its stderr line for line
//! (`KDRAIN_UPDATE_README=1` rewrites them). The Ctrl-C sample is kept by
//! `resilience::ctrl_c_stops_cleanly_says_what_is_left_and_exits_130`.

use crate::common::{BASIC, cluster, run_raw};
use crate::readme;

/// A kubeconfig in `$HOME/.kube/config` with two contexts whose server refuses connections.
const UNREACHABLE: &str = r#"apiVersion: v1
kind: Config
clusters:
- name: dev
  cluster: {server: "https://127.0.0.1:1"}
contexts:
- name: kind-dev
  context: {cluster: dev, user: me}
- name: staging
  context: {cluster: dev, user: me}
current-context: kind-dev
users:
- name: me
  user: {token: not-used}
"#;

/// The README shows the home directory as `/home/me`.
const README_HOME: &str = "/home/me";

/// Runs `kdrain ARGS` with `$HOME` at `home`, no `KUBECONFIG`, and returns its stderr lines with
/// `home` shown as the README's home; checks the exit code.
async fn stderr_of(home: &std::path::Path, args: &[&str], code: i32) -> Vec<String> {
    let env = vec![
        ("HOME".to_string(), home.display().to_string()),
        ("KUBECONFIG".to_string(), String::new()),
    ];
    let r = run_raw(args.iter().map(|a| a.to_string()).collect(), env).await;
    assert_eq!(r.code, code, "kdrain {args:?}: {}", r.stderr);
    assert!(
        r.stdout.is_empty(),
        "bad input prints nothing on stdout: {}",
        r.stdout
    );
    r.stderr
        .lines()
        .map(|l| l.replace(&home.display().to_string(), README_HOME))
        .collect()
}

#[tokio::test]
async fn the_readmes_error_lines_are_what_kdrain_prints() {
    let home = tempfile::tempdir().expect("temp dir");
    let kube = home.path().join(".kube");
    std::fs::create_dir_all(&kube).expect("~/.kube");
    std::fs::write(kube.join("config"), UNREACHABLE).expect("kubeconfig");
    let c = cluster(BASIC).await;
    let kubesim = c.kubeconfig.display().to_string();

    let mut lines = Vec::new();
    let cases: [(&[&str], i32); 4] = [
        (&["drain", "n1", "--context", "prod"], 2),
        (&["drain", "n1"], 6),
        (&["drain", "n1", "-l", "pool=a"], 2),
        (&["drain", "n9", "n8", "--kubeconfig", &kubesim], 2),
    ];
    for (args, code) in cases {
        let err = stderr_of(home.path(), args, code).await;
        assert_eq!(err.len(), 1, "one line for bad input: {err:#?}");
        lines.extend(err);
    }
    assert!(c.all_writes().is_empty(), "bad input changes nothing");
    readme::keep("errors", &lines, str::to_string, "the_readmes_error_lines");
}

#[tokio::test]
async fn the_readmes_usage_errors_are_what_kdrain_prints() {
    let home = tempfile::tempdir().expect("temp dir");
    let mut lines = Vec::new();
    let cases: [&[&str]; 2] = [
        &["drain", "n1", "--ignore-daemonset"],
        &["drain", "n1", "-o", "yaml"],
    ];
    for args in cases {
        lines.extend(stderr_of(home.path(), args, 2).await);
    }
    readme::keep("usage", &lines, str::to_string, "the_readmes_usage_errors");
}
