//! HTTPS with a generated CA: kube-rs and kubectl trust the CA from the kubeconfig.

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kubesim::{Scenario, Sim, SimOptions};

use crate::common::kubectl_in;

#[tokio::test]
async fn serves_https_with_a_generated_ca() {
    let sc = Scenario::from_yaml_str("nodes: [{name: n1}]").unwrap();
    let s = Sim::start_with(
        sc,
        SimOptions {
            tls: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(s.url().starts_with("https://127.0.0.1:"));
    assert!(
        s.ca_pem()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert!(s.kubeconfig_yaml().contains("certificate-authority-data: "));
    let nodes: Api<Node> = Api::all(s.client());
    assert_eq!(
        nodes.get("n1").await.unwrap().metadata.name.as_deref(),
        Some("n1")
    );
    // A client that does not trust the CA is refused.
    let untrusting = kube::Client::try_from(kube::Config::new(s.url().parse().unwrap())).unwrap();
    assert!(Api::<Node>::all(untrusting).get("n1").await.is_err());
    // kubectl with the written kubeconfig.
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    s.write_kubeconfig(&kc).unwrap();
    let out = kubectl_in(dir.path(), &["cordon", "n1"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "node/n1 cordoned\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
