//! Many nodes at once: `-l` with `--parallel 3` and one budget shared by all three nodes.

use crate::common::{cluster, count_ending, count_starting};

const POOL: &str = r#"
nodes:
  - {name: a1, labels: {pool: a}}
  - {name: a2, labels: {pool: a}}
  - {name: a3, labels: {pool: a}}
  - {name: spare, labels: {pool: b}}
workloads:
  - {kind: Deployment, name: web, replicas: 6, labels: {app: web}, nodes: [a1, a2, a3], terminationSeconds: 0.2, readySeconds: 0.3}
  - {kind: StatefulSet, name: db, replicas: 3, labels: {app: db}, nodes: [a1, a2, a3], terminationSeconds: 0.2, readySeconds: 0.3}
  - {kind: DaemonSet, name: agent, namespace: kube-system, labels: {app: agent}}
pdbs:
  - {name: web, namespace: default, selector: {app: web}, maxUnavailable: 1}
  - {name: db, namespace: default, selector: {app: db}, minAvailable: 2}
"#;

#[tokio::test]
async fn three_nodes_in_parallel_never_break_the_shared_budget() {
    let c = cluster(POOL).await;
    let r = c
        .run(&[
            "drain",
            "-l",
            "pool=a",
            "--parallel",
            "3",
            "--ignore-daemonsets",
            "--timeout=40s",
        ])
        .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let out = r.out_lines();
    assert_eq!(
        &out[..3],
        &["node/a1 cordoned", "node/a2 cordoned", "node/a3 cordoned"],
        "all cordoned first"
    );
    for n in ["a1", "a2", "a3"] {
        assert!(
            out.contains(&format!("node/{n} drained").as_str()),
            "{n} drained: {out:?}"
        );
        assert!(c.cordoned(n).await);
        let left = c.pods_on(n).await;
        assert!(
            left.iter().all(|p| p.starts_with("kube-system/agent-")),
            "{n}: {left:?}"
        );
    }
    assert_eq!(
        c.sim.violations(),
        vec![],
        "no budget broken, no DaemonSet pod removed"
    );
    assert_eq!(count_starting(&out, "evicting pod "), 9, "{out:?}");
    assert_eq!(count_ending(&out, " evicted"), 9, "{out:?}");
    // one retry line per pod and cause (the retry delay masked), even with three nodes
    // competing for the same budgets
    let mut seen = std::collections::BTreeMap::new();
    for line in r.err_lines() {
        if let Some(start) = line.find(" (will retry after ")
            && let Some(end) = line[start..].find(')')
        {
            let masked = format!("{}{}", &line[..start], &line[start + end + 1..]);
            *seen.entry(masked).or_insert(0) += 1;
        }
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "{repeated:#?}\n{}", r.stderr);
}
