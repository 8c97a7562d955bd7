//! The same drain run by the real `kubectl` and by `kdrain` on two identical kubesim clusters:
//! stdout and stderr must match once generated pod names are masked and the order of parallel
//! evictions is normalised.

use crate::common::{BASIC, cluster, mask};

const NAMES: [&str; 3] = ["web", "cache", "fluentd"];

fn normalise(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| mask(l, &NAMES))
        .map(|l| match l.strip_prefix("Warning: ") {
            // kubectl joins its warning groups in Go map order, which is random.
            Some(groups) => {
                let mut parts: Vec<&str> = groups.split("; ").collect();
                parts.sort();
                format!("Warning: {}", parts.join("; "))
            }
            None => l,
        })
        // kubectl's error groups also come in map order, and the first one gets the doubled
        // "cannot delete"; compare the groups, not their order.
        .map(|l| l.replace("cannot delete cannot delete ", "cannot delete "))
        .map(|l| match (l.find('['), l.rfind(']')) {
            (Some(open), Some(close)) if open < close => {
                let inner = &l[open + 1..close];
                let inner = inner.strip_prefix("cannot delete ").unwrap_or(inner);
                let mut groups: Vec<&str> = inner.split(", cannot delete ").collect();
                groups.sort();
                format!(
                    "{}[cannot delete {}]{}",
                    &l[..open + 1],
                    groups.join(", cannot delete "),
                    &l[close..]
                )
            }
            _ => l,
        })
        .collect();
    lines.sort();
    lines
}

async fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["--kubeconfig".to_string(), kubeconfig.display().to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    let job = tokio::task::spawn_blocking(move || {
        std::process::Command::new("kubectl").args(&all).output()
    });
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), job)
        .await
        .expect("kubectl finished in time")
        .unwrap()
        .expect("run kubectl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn same_lines_as_kubectl() {
    if std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        println!("note: kubectl is not installed; skipping the side-by-side comparison");
        return;
    }
    let cases: [(&[&str], i32, i32); 9] = [
        (
            &[
                "drain",
                "-l",
                "pool=a",
                "--force",
                "--ignore-daemonsets",
                "--delete-emptydir-data",
            ],
            0,
            0,
        ),
        (&["cordon", "n1"], 0, 0),
        (&["uncordon", "n1"], 0, 0),
        (&["drain", "n1"], 1, 4),
        (
            &[
                "drain",
                "n1",
                "--force",
                "--ignore-daemonsets",
                "--delete-emptydir-data",
            ],
            0,
            0,
        ),
        (
            &[
                "drain",
                "n1",
                "--force",
                "--ignore-daemonsets",
                "--delete-emptydir-data",
                "--dry-run=client",
            ],
            0,
            0,
        ),
        (
            &[
                "drain",
                "n1",
                "--force",
                "--ignore-daemonsets",
                "--delete-emptydir-data",
                "--dry-run=server",
            ],
            0,
            0,
        ),
        (&["drain", "n1", "--pod-selector", "app=web"], 0, 0),
        (
            &[
                "drain",
                "n1",
                "--force",
                "--ignore-daemonsets",
                "--delete-emptydir-data",
                "--disable-eviction",
            ],
            0,
            0,
        ),
    ];
    for (args, kubectl_code, kdrain_code) in cases {
        let (k, d) = (cluster(BASIC).await, cluster(BASIC).await);
        let (code, out, err) = kubectl(&k.kubeconfig, args).await;
        let r = d.run(args).await;
        assert_eq!(code, kubectl_code, "kubectl {args:?}: {err}");
        assert_eq!(r.code, kdrain_code, "kdrain {args:?}: {}", r.stderr);
        // The one difference by design: a drain refused by its plan changes nothing, so kdrain
        // does not cordon the node that kubectl cordons before refusing (and leaves cordoned).
        let out = if kdrain_code == 4 {
            let node = args[1];
            assert!(k.cordoned(node).await, "kubectl cordons before refusing");
            assert!(!d.cordoned(node).await, "kdrain refuses before any change");
            let cordoned = format!("node/{node} cordoned\n");
            assert!(out.contains(&cordoned), "{out}");
            out.replacen(&cordoned, "", 1)
        } else {
            out
        };
        assert_eq!(normalise(&r.stdout), normalise(&out), "stdout of {args:?}");
        assert_eq!(normalise(&r.stderr), normalise(&err), "stderr of {args:?}");
    }
}
