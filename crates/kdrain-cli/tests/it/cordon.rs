//! `kdrain cordon` / `kdrain uncordon`: kubectl's lines and effects.

use crate::common::{BASIC, cluster};

#[tokio::test]
async fn cordon_and_uncordon_like_kubectl() {
    let c = cluster(BASIC).await;
    let r = c.run(&["cordon", "n1"]).await;
    assert_eq!((r.code, r.out_lines()), (0, vec!["node/n1 cordoned"]));
    assert!(c.cordoned("n1").await);
    let r = c.run(&["cordon", "n1"]).await;
    assert_eq!(
        (r.code, r.out_lines()),
        (0, vec!["node/n1 already cordoned"])
    );
    assert_eq!(
        c.count("patch", "nodes", ""),
        1,
        "already cordoned: no PATCH"
    );
    let r = c.run(&["uncordon", "n1"]).await;
    assert_eq!((r.code, r.out_lines()), (0, vec!["node/n1 uncordoned"]));
    assert!(!c.cordoned("n1").await);
    let r = c.run(&["uncordon", "n1"]).await;
    assert_eq!(
        (r.code, r.out_lines()),
        (0, vec!["node/n1 already uncordoned"])
    );
}

#[tokio::test]
async fn cordon_by_selector_and_dry_run() {
    let c = cluster(BASIC).await;
    let r = c.run(&["cordon", "-l", "pool=a", "--dry-run=server"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.out_lines(),
        vec![
            "node/n1 cordoned (server dry run)",
            "node/n2 cordoned (server dry run)"
        ]
    );
    assert!(!c.cordoned("n1").await && !c.cordoned("n2").await);
    let r = c.run(&["cordon", "-l", "pool=a"]).await;
    assert_eq!(r.out_lines(), vec!["node/n1 cordoned", "node/n2 cordoned"]);
    assert!(c.cordoned("n1").await && c.cordoned("n2").await && !c.cordoned("n3").await);
    let r = c.run(&["cordon", "-l", "pool=zzz"]).await;
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no nodes match --selector \"pool=zzz\""),
        "{}",
        r.stderr
    );
}

#[tokio::test]
async fn cordon_unknown_node() {
    let c = cluster(BASIC).await;
    let r = c.run(&["cordon", "nx"]).await;
    assert_eq!(r.code, 2);
    assert_eq!(r.err_lines().len(), 1);
    assert!(r.stderr.contains("\"nx\" not found"), "{}", r.stderr);
}

#[tokio::test]
async fn explicit_context_and_json_output() {
    let c = cluster(BASIC).await;
    let r = c
        .run(&["cordon", "n1", "--context", "kubesim", "-o", "json"])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["event"], "cordoned");
    assert_eq!(v["node"], "n1");
    assert_eq!(v["already"], false);
    assert!(c.cordoned("n1").await);
}

#[tokio::test]
async fn works_as_a_kubectl_plugin() {
    if std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        println!("note: kubectl is not installed; skipping the plugin check");
        return;
    }
    let c = cluster(BASIC).await;
    let bin_dir = tempfile::tempdir().unwrap();
    let link = bin_dir.path().join("kubectl-kdrain");
    std::os::unix::fs::symlink(assert_cmd::cargo::cargo_bin("kdrain"), &link).unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let kubeconfig = c.kubeconfig.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("kubectl")
            .args(["kdrain", "cordon", "n1", "--kubeconfig"])
            .arg(&kubeconfig)
            .env("PATH", path)
            .output()
            .expect("run kubectl")
    });
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), out)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "node/n1 cordoned\n");
    assert!(c.cordoned("n1").await);
}
