//! Plain-text output (not a terminal): kubectl's exact lines, and every drain flag's effect.

use crate::common::{ALL_FLAGS, BASIC, cluster, mask, sorted};

fn with_flags<'a>(base: &[&'a str]) -> Vec<&'a str> {
    let mut v = base.to_vec();
    v.extend(ALL_FLAGS);
    v
}

#[tokio::test]
async fn full_drain_prints_kubectls_lines() {
    let c = cluster(BASIC).await;
    let r = c.run(&with_flags(&["drain", "n1"])).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let out = r.out_lines();
    assert_eq!(out.first(), Some(&"node/n1 cordoned"));
    assert_eq!(out.last(), Some(&"node/n1 drained"));
    let masked: Vec<String> = out.iter().map(|l| mask(l, &["web", "cache"])).collect();
    let masked: Vec<&str> = masked.iter().map(String::as_str).collect();
    assert_eq!(
        sorted(&masked),
        vec![
            "evicting pod default/bare-pod",
            "evicting pod default/cache-*",
            "evicting pod default/web-*",
            "node/n1 cordoned",
            "node/n1 drained",
            "pod/bare-pod evicted",
            "pod/cache-* evicted",
            "pod/web-* evicted",
        ]
    );
    // Each evicted pod's line comes after its evicting line.
    let err = r.err_lines();
    assert_eq!(err.len(), 1, "{}", r.stderr);
    assert!(err[0].starts_with("Warning: "), "{}", err[0]);
    assert!(
        err[0].contains("deleting Pods that declare no controller: default/bare-pod"),
        "{}",
        err[0]
    );
    assert!(
        err[0].contains("ignoring DaemonSet-managed Pods: kube-system/fluentd-"),
        "{}",
        err[0]
    );
    assert!(c.cordoned("n1").await);
    let left = c.pods_on("n1").await;
    assert_eq!(
        left.len(),
        2,
        "only the DaemonSet and mirror pods stay: {left:?}"
    );
    assert!(c.sim.violations().is_empty(), "{:?}", c.sim.violations());
}
