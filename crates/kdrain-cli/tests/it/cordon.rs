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

#[tokio::test]
async fn https_cluster_with_its_ca_and_with_a_wrong_one() {
    use kubesim::{Scenario, Sim, SimOptions};
    let sim = Sim::start_with(
        Scenario::from_yaml_str(BASIC).unwrap(),
        SimOptions {
            tls: true,
            ..SimOptions::default()
        },
    )
    .await
    .expect("kubesim with TLS");
    assert!(sim.url().starts_with("https://"));
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    sim.write_kubeconfig(&good).unwrap();
    let r = crate::common::run_raw(
        vec![
            "cordon".into(),
            "n1".into(),
            "--kubeconfig".into(),
            good.display().to_string(),
        ],
        vec![],
    )
    .await;
    assert_eq!(
        (r.code, r.out_lines()),
        (0, vec!["node/n1 cordoned"]),
        "{}",
        r.stderr
    );

    // Same server, but the kubeconfig trusts no CA: the TLS check fails before anything is sent.
    let text = std::fs::read_to_string(&good).unwrap();
    let bad_text: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("certificate-authority-data"))
        .collect::<Vec<_>>()
        .join("\n");
    let bad = dir.path().join("bad");
    std::fs::write(&bad, bad_text).unwrap();
    let r = crate::common::run_raw(
        vec![
            "uncordon".into(),
            "n1".into(),
            "--kubeconfig".into(),
            bad.display().to_string(),
        ],
        vec![],
    )
    .await;
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert_eq!(r.err_lines().len(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("cannot reach the Kubernetes API at https://"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("check certificate-authority(-data) in the kubeconfig"),
        "{}",
        r.stderr
    );
    let api: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(sim.client());
    let n1 = api.get("n1").await.unwrap();
    assert_eq!(
        n1.spec.unwrap().unschedulable,
        Some(true),
        "still cordoned: the failed run changed nothing"
    );
}
