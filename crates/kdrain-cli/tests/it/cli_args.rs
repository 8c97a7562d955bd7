//! The command line itself: help, exit-code documentation, completions, usage errors.

use crate::common::run_raw;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn help_documents_kubectl_flags_and_exit_codes() {
    let r = run_raw(args(&["drain", "--help"]), vec![]).await;
    assert_eq!(r.code, 0);
    for flag in [
        "--force",
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--grace-period",
        "--timeout",
        "--pod-selector",
        "--disable-eviction",
        "--skip-wait-for-delete-timeout",
        "--chunk-size",
        "--dry-run",
        "--selector",
        "--kubeconfig",
        "--context",
        "--parallel",
        "--uncordon-on-failure",
        "--output",
        "--override-opt-outs",
        "--ignore-capacity",
    ] {
        assert!(r.stdout.contains(flag), "help lacks {flag}");
    }
    for code in [
        "0  drained",
        "2  usage",
        "3  blocked by disruption budgets",
        "4  pods left",
        "5  permission denied",
        "6  cluster unreachable",
        "7  no room",
    ] {
        assert!(
            r.stdout.contains(code),
            "help lacks exit code line {code:?}"
        );
    }
    let top = run_raw(args(&["--help"]), vec![]).await;
    assert!(top.stdout.contains("Exit codes:"));
    for sub in ["drain", "plan", "cordon", "uncordon", "completions", "demo"] {
        assert!(top.stdout.contains(sub), "top help lacks {sub}");
    }
}

#[tokio::test]
async fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let r = run_raw(args(&["completions", shell]), vec![]).await;
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        assert!(
            r.stdout.contains("kdrain"),
            "{shell} script names the command"
        );
        assert!(
            r.stdout.contains("ignore-daemonsets"),
            "{shell} script completes drain flags"
        );
    }
    let r = run_raw(args(&["completions", "tcsh"]), vec![]).await;
    assert_eq!(r.code, 2);
}

#[tokio::test]
async fn node_name_and_selector_is_kubectls_usage_error() {
    let r = run_raw(
        args(&[
            "drain",
            "n1",
            "-l",
            "pool=a",
            "--kubeconfig",
            "/nonexistent",
        ]),
        vec![],
    )
    .await;
    assert_eq!(r.code, 2);
    assert_eq!(
        r.err_lines(),
        vec!["error: cannot specify both a node name and a --selector option"]
    );
    assert!(r.stdout.is_empty());
}

#[tokio::test]
async fn no_node_is_a_usage_error() {
    let r = run_raw(args(&["drain", "--kubeconfig", "/nonexistent"]), vec![]).await;
    assert_eq!(r.code, 2);
    assert_eq!(r.err_lines().len(), 1);
    assert!(
        r.stderr
            .contains("name at least one node or give --selector")
    );
}

#[tokio::test]
async fn malformed_duration_and_dry_run_are_one_line_usage_errors() {
    for (flag, expect) in [
        ("--timeout=5x", "unknown unit"),
        ("--timeout=soon", "90s, 5m, 1h30m"),
        (
            "--dry-run=maybe",
            "Must be \"none\", \"server\", or \"client\"",
        ),
        ("--grace-period=abc", "--grace-period"),
        ("--chunk-size=-3", "--chunk-size"),
        ("--parallel=0", "--parallel"),
    ] {
        let r = run_raw(args(&["drain", "n1", flag]), vec![]).await;
        assert_eq!(r.code, 2, "{flag}");
        assert_eq!(
            r.err_lines(),
            [r.err_lines()[0], "  see `kdrain drain --help`"],
            "{flag}: {}",
            r.stderr
        );
        assert!(r.err_lines()[0].contains(expect), "{flag}: {}", r.stderr);
    }
}

/// clap's error blocks keep what clap knew (the suggestion, the accepted values), without the
/// usage dump: the problem, the hint, and which help to read. Exit 2.
#[tokio::test]
async fn usage_errors_keep_clap_hints_in_one_short_block() {
    let cases: [(&[&str], &[&str]); 5] = [
        (
            &["drain", "n1", "--ignore-daemonset"],
            &[
                "error: unexpected argument '--ignore-daemonset' found",
                "  tip: a similar argument exists: '--ignore-daemonsets'",
                "  see `kdrain drain --help`",
            ],
        ),
        (
            &["drain", "n1", "-o", "yaml"],
            &[
                "error: invalid value 'yaml' for '--output <FORMAT>'",
                "  [possible values: text, json]",
                "  see `kdrain drain --help`",
            ],
        ),
        (
            &["completions", "tcsh"],
            &[
                "error: invalid value 'tcsh' for '<SHELL>'",
                "  [possible values: bash, elvish, fish, powershell, zsh]",
                "  tip: a similar value exists: 'zsh'",
                "  see `kdrain completions --help`",
            ],
        ),
        (
            &["plan", "n1", "--grace-period", "abc"],
            &[
                "error: invalid value 'abc' for '--grace-period <SECONDS>': give whole seconds, e.g. 30 (negative: each pod's own grace period; 0: at once, with --force)",
                "  see `kdrain plan --help`",
            ],
        ),
        (
            &["--bogus"],
            &[
                "error: unexpected argument '--bogus' found",
                "  see `kdrain --help`",
            ],
        ),
    ];
    for (argv, expected) in cases {
        let r = run_raw(args(argv), vec![]).await;
        assert_eq!(r.code, 2, "{argv:?}");
        assert_eq!(r.err_lines(), expected, "{argv:?}");
        assert!(r.stdout.is_empty(), "{argv:?}");
    }
}

#[tokio::test]
async fn version_prints() {
    let r = run_raw(args(&["--version"]), vec![]).await;
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("kdrain "));
}

/// `drain --help`: kubectl's flags in kubectl's (alphabetical) order, kdrain's own and the
/// global options each under their own heading, the exit-code table aligned; `demo --help`
/// offers no kubeconfig options.
#[tokio::test]
async fn help_groups_flags_and_aligns_exit_codes() {
    let r = run_raw(args(&["drain", "--help"]), vec![]).await;
    assert_eq!(r.code, 0);
    let text = &r.stdout;
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle} missing in\n{text}"))
    };
    let kubectl = [
        "--chunk-size",
        "--delete-emptydir-data",
        "--disable-eviction",
        "--dry-run",
        "--force",
        "--grace-period",
        "--ignore-daemonsets",
        "--pod-selector",
        "--selector",
        "--skip-wait-for-delete-timeout",
        "--timeout",
    ];
    let positions: Vec<usize> = kubectl.iter().map(|f| at(&format!(" {f}"))).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    let options = at("\nOptions:\n");
    let own = at("\nkdrain options (not in kubectl):\n");
    let global = at("\nGlobal options:\n");
    assert!(options < positions[0] && positions[10] < own && own < global);
    for f in [
        "--parallel",
        "--uncordon-on-failure",
        "--override-opt-outs",
        "--ignore-capacity",
    ] {
        let p = at(f);
        assert!(own < p && p < global, "{f}");
    }
    for f in ["--kubeconfig", "--context", "--output", "--verbose"] {
        assert!(at(f) > global, "{f}");
    }
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "Exit codes:")
        .skip(1)
        .collect();
    assert_eq!(table.len(), 9, "{text}");
    for row in &table {
        assert_eq!(&row[5..7], "  ", "{row:?}");
        assert!(row[..5].trim().parse::<u8>().is_ok(), "{row:?}");
        assert!(row.as_bytes()[7].is_ascii_lowercase(), "{row:?}");
    }

    let demo = run_raw(args(&["demo", "--help"]), vec![]).await;
    assert_eq!(demo.code, 0);
    assert!(!demo.stdout.contains("--kubeconfig"), "{}", demo.stdout);
    assert!(!demo.stdout.contains("--context"), "{}", demo.stdout);
    let r = run_raw(args(&["demo", "--kubeconfig", "/x"]), vec![]).await;
    assert_eq!(r.code, 2);
    assert_eq!(r.err_lines().len(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("--kubeconfig and --context do not apply"));
}
