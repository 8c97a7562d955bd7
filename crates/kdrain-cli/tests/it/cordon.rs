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
