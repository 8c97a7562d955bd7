//! `kdrain demo`: plain text when piped, and the live progress view as a person sees it in a
//! real terminal (tmux), kept as a snapshot with timings redacted.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{count_ending, count_starting, mask, run_raw};

#[tokio::test]
async fn demo_without_a_terminal_prints_kubectl_lines_and_the_report() {
    let r = run_raw(vec!["demo".into()], vec![]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let out = r.out_lines();
    assert_eq!(out[0], "node/n1 cordoned");
    assert!(out.contains(&"node/n1 drained"), "{out:?}");
    assert_eq!(count_starting(&out, "evicting pod "), 6, "{out:?}");
    assert_eq!(count_ending(&out, " evicted"), 6, "{out:?}");
    assert!(
        out.iter()
            .any(|l| l.starts_with("NODE") && l.contains("RESULT")),
        "summary table: {out:?}"
    );
    assert!(
        out.iter()
            .any(|l| l.starts_with("n1") && l.contains("drained")),
        "{out:?}"
    );
    assert!(out.contains(&"kubesim invariant log: no violations (no budget broken, no DaemonSet or mirror pod removed)"));
    assert!(
        r.stderr
            .contains("kubesim is serving a demo cluster at http://127.0.0.1:")
    );
    assert!(
        r.stderr
            .contains("Warning: deleting Pods that declare no controller: default/debug-shell")
    );
    assert!(
        r.stderr.contains("error when evicting pods/\"web-"),
        "the web budget holds one pod back for a moment: {}",
        r.stderr
    );
}

#[tokio::test]
async fn demo_json_ends_with_a_result() {
    let r = run_raw(vec!["demo".into(), "-o".into(), "json".into()], vec![]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let last: serde_json::Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "result");
    assert_eq!(last["succeeded"], true);
    assert_eq!(last["report"]["nodes"][0]["outcome"]["outcome"], "drained");
}

#[tokio::test]
async fn demo_controller_drains_through_a_nodedrain() {
    let r = run_raw(vec!["demo".into(), "--controller".into()], vec![]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let out = r.out_lines();
    assert_eq!(
        out[0],
        "nodedrain.kdrain.io/demo-n1 created; the controller drains it in this process"
    );
    assert!(
        out.iter()
            .any(|l| l.starts_with("demo-n1  Drained   nodes 1/1   pods gone 6/6")),
        "{out:?}"
    );
    assert!(out.contains(&"controller metrics:"), "{out:?}");
    assert!(
        out.contains(&"  kdrain_evictions_total{code=\"201\"} 6"),
        "{out:?}"
    );
    assert!(
        out.contains(&"  kdrain_drains_total{result=\"drained\"} 1"),
        "{out:?}"
    );
    assert!(
        !out.iter().any(|l| l.contains("kdrain_active_drains")),
        "the stopped controller works on nothing: {out:?}"
    );
    assert_eq!(
        out.last(),
        Some(
            &"kubesim invariant log: no violations (no budget broken, no DaemonSet or mirror pod removed)"
        )
    );
}

/// Replaces what changes between runs: durations, ports, request totals, generated pod names.
pub(crate) fn redact(screen: &str) -> String {
    let mut lines = Vec::new();
    for line in screen.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let mut words: Vec<String> = Vec::new();
        for word in line.split_whitespace() {
            let w = mask(
                word,
                &[
                    "web",
                    "api",
                    "cache",
                    "node-exporter",
                    "shop/web",
                    "shop/api",
                    "shop/cache",
                ],
            );
            let w = mask(&w, &["monitoring/node-exporter"]);
            let w = if let Some(i) = w.find("127.0.0.1:") {
                let tail: String = w[i + 10..]
                    .chars()
                    .skip_while(|c| c.is_ascii_digit())
                    .collect();
                format!("{}127.0.0.1:<port>{tail}", &w[..i])
            } else {
                w
            };
            words.push(if is_duration(&w) {
                "<t>".to_string()
            } else {
                w
            });
        }
        let mut text = words.join(" ");
        if let Some(i) = text.find(" API request(s)") {
            let head = text[..i]
                .rsplit_once(' ')
                .map(|(h, _)| h.to_string())
                .unwrap_or_default();
            text = format!("{head} <n>{}", &text[i..]);
        }
        lines.push(text);
    }
    lines.join("\n")
}

/// `6.0s`, `850ms`, `1m05s`, `12s` (possibly followed by punctuation).
fn is_duration(word: &str) -> bool {
    let w = word.trim_end_matches([',', ')', ';']);
    let digits: String = w
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    if digits.is_empty() || !digits.chars().next().unwrap().is_ascii_digit() {
        return false;
    }
    let unit = &w[digits.len()..];
    matches!(unit, "s" | "ms" | "m" | "h")
        || (unit.starts_with('m')
            && unit.ends_with('s')
            && unit[1..unit.len() - 1].chars().all(|c| c.is_ascii_digit()))
        || (unit.starts_with('h')
            && unit.ends_with('m')
            && unit[1..unit.len() - 1].chars().all(|c| c.is_ascii_digit()))
}

/// The shape of the live view in one frame: header, node bar, one blocked line and one
/// terminating line, with numbers, bar fill and pod names made stable.
pub(crate) fn live_shape(screen: &str) -> String {
    let collapse = |l: &str| {
        l.split_whitespace()
            .map(|w| if is_duration(w) { "<t>" } else { w })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let digits = |l: &str| {
        let mut out = String::new();
        let mut in_number = false;
        for c in l.chars() {
            if c.is_ascii_digit() || (in_number && c == '.') {
                if !in_number {
                    out.push('N');
                }
                in_number = true;
            } else {
                in_number = false;
                out.push(c);
            }
        }
        out
    };
    let mut shape = Vec::new();
    if let Some(l) = screen.lines().find(|l| l.starts_with("kdrain: draining")) {
        shape.push(digits(&collapse(l)));
    }
    if let Some(l) = screen
        .lines()
        .find(|l| l.starts_with("node/n1") && l.contains("pods gone"))
    {
        let l = collapse(l);
        let (open, close) = (l.find('[').unwrap_or(0), l.find(']').unwrap_or(0));
        let l = format!("{}[bar]{}", &l[..open], &l[close + 1..]);
        let end = l
            .find("pods gone")
            .map(|i| i + "pods gone".len())
            .unwrap_or(l.len());
        shape.push(digits(&l[..end]));
    }
    for kind in ["blocked", "terminating"] {
        if let Some(l) = screen.lines().find(|l| l.trim_start().starts_with(kind)) {
            let mut words: Vec<String> = collapse(l).split(' ').map(str::to_string).collect();
            if words.len() > 1 {
                words[1] = "<pod>".into();
            }
            shape.push(format!("    {}", digits(&words.join(" "))));
        }
    }
    shape.join("\n")
}

/// A private tmux server (its own socket), killed when dropped.
pub(crate) struct Tmux {
    pub(crate) socket: String,
}

impl Tmux {
    pub(crate) fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-L").arg(&self.socket);
        c
    }

    pub(crate) fn capture(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "demo"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

#[tokio::test]
async fn demo_progress_view_in_a_real_terminal() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("note: tmux is not installed; skipping the terminal check of `kdrain demo`");
        return;
    }
    let bin = assert_cmd::cargo::cargo_bin("kdrain");
    let tmux = Tmux {
        socket: format!("kdrain-it-{}", std::process::id()),
    };
    // The pane stays open after kdrain exits so the final screen can be read.
    let shell = format!("{} demo; echo \"[exit $?]\"; sleep 120", bin.display());
    let started = tmux
        .cmd()
        .args(["new-session", "-d", "-s", "demo", "-x", "200", "-y", "40"])
        .arg(shell)
        .status()
        .expect("start tmux");
    assert!(started.success());

    let watch = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(50);
        let (mut saw_bar, mut saw_blocked, mut saw_terminating) = (false, false, false);
        let mut during = Vec::new();
        let mut last = String::new();
        while Instant::now() < deadline {
            let screen = tmux.capture();
            if screen.contains("[exit ") {
                last = screen;
                break;
            }
            if screen.contains("pods gone") && screen.contains("node/n1 ") && screen.contains('[') {
                saw_bar = true;
            }
            let blocked = screen.contains("blocked ")
                && screen.contains("waits for budget web: needs ")
                && screen.contains(" since ");
            let terminating = screen.contains("terminating ") && screen.contains("grace left ");
            saw_blocked |= blocked;
            saw_terminating |= terminating;
            if blocked && terminating {
                during.push(screen.clone());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        (saw_bar, saw_blocked, saw_terminating, during, last)
    });
    let (saw_bar, saw_blocked, saw_terminating, during, last) =
        tokio::time::timeout(Duration::from_secs(60), watch)
            .await
            .expect("the demo finished in time")
            .expect("watcher thread");
    assert!(saw_bar, "a progress bar of pods gone was shown");
    assert!(
        saw_blocked,
        "a blocked pod line with budget, needs/has and since was shown"
    );
    assert!(
        saw_terminating,
        "a terminating pod line with grace left was shown"
    );
    assert!(last.contains("[exit 0]"), "demo exited 0:\n{last}");
    let frame = redact(
        during
            .first()
            .expect("a frame with both a blocked and a terminating pod"),
    );
    assert!(
        frame.contains("blocked shop/web-* · waits for budget web: needs "),
        "{frame}"
    );
    insta::assert_snapshot!("demo_live_view", live_shape(&during[0]));
    insta::assert_snapshot!("demo_final_screen", redact(&last));
}

#[tokio::test]
async fn demo_with_own_scenario_and_node() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiny.yaml");
    std::fs::write(
        &file,
        "nodes: [{name: a}, {name: b}]\nworkloads:\n  - {kind: Deployment, name: web, replicas: 2, nodes: [a, b], terminationSeconds: 0.1}\n",
    )
    .unwrap();
    let path = file.display().to_string();
    let r = run_raw(
        vec![
            "demo".into(),
            "--scenario".into(),
            path.clone(),
            "--node".into(),
            "b".into(),
        ],
        vec![],
    )
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let out: Vec<String> = r.out_lines().iter().map(|l| mask(l, &["web"])).collect();
    assert_eq!(
        &out[..4],
        &[
            "node/b cordoned",
            "evicting pod default/web-*",
            "pod/web-* evicted",
            "node/b drained"
        ]
    );

    let r = run_raw(
        vec![
            "demo".into(),
            "--scenario".into(),
            dir.path().join("none.yaml").display().to_string(),
        ],
        vec![],
    )
    .await;
    assert_eq!(r.code, 2);
    assert_eq!(r.err_lines().len(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("cannot load scenario"), "{}", r.stderr);
}

/// The demo cluster exists only in the process: an unknown --node gets its node names, not a
/// `kubectl get nodes` hint, and nothing else is printed.
#[tokio::test]
async fn demo_with_an_unknown_node_names_the_demo_nodes() {
    let r = run_raw(vec!["demo".into(), "--node".into(), "n9".into()], vec![]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(
        r.err_lines(),
        [
            "error: node \"n9\" is not in the demo cluster; pick one of its nodes with --node: n1, n2, n3"
        ]
    );
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}
