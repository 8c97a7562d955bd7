//! The live view fits the terminal: `kdrain demo` in a real terminal (tmux) 80 and 110 columns
//! wide, and one resized from 110 to 80 while it runs. Every row on the screen must be the start
//! of a line kdrain drew (or the indented continuation of a line it wrapped at a word): a row
//! that begins in the middle of a line is the terminal wrapping a line that was too wide.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::demo::{Tmux, live_shape, redact};
use crate::readme;

/// How rows of the demo's screen may begin.
const ROW_STARTS: [&str; 12] = [
    "kubesim is serving ",
    "node/",
    "kdrain: ",
    "Warning: ",
    "    blocked      ",
    "    terminating  ",
    "NODE ",
    "n1 ",
    "1 node(s) in ",
    "kubesim invariant log: ",
    "[exit ",
    "selector matched ",
];

/// The rows of `screen` that are neither a line start nor a word-wrapped continuation
/// ("  " then a word).
fn stray_rows(screen: &str) -> Vec<String> {
    screen
        .lines()
        .map(str::trim_end)
        .filter(|row| !row.is_empty())
        .filter(|row| {
            let continuation =
                row.starts_with("  ") && row[2..].chars().next().is_some_and(|c| c != ' ');
            !continuation && !ROW_STARTS.iter().any(|s| row.starts_with(s))
        })
        .map(str::to_string)
        .collect()
}

/// Runs the demo in a `columns`-wide tmux pane (resized to `resize_to` once the view shows a
/// blocked pod, if given) and returns every distinct screen seen, the last one after exit.
fn screens(columns: u16, resize_to: Option<u16>) -> Vec<String> {
    let bin = assert_cmd::cargo::cargo_bin("kdrain");
    let tmux = Tmux {
        // one server per test: the tests run in parallel
        socket: format!(
            "kdrain-width-{}-{columns}-{}",
            std::process::id(),
            resize_to.unwrap_or(0)
        ),
    };
    let shell = format!("{} demo; echo \"[exit $?]\"; sleep 120", bin.display());
    let started = tmux
        .cmd()
        .args(["new-session", "-d", "-s", "demo", "-x"])
        .arg(columns.to_string())
        .args(["-y", "40"])
        .arg(shell)
        .status()
        .expect("start tmux");
    assert!(started.success());
    let deadline = Instant::now() + Duration::from_secs(50);
    let mut seen: Vec<String> = Vec::new();
    let mut resized = resize_to.is_none();
    // screens before the resize are not checked against the new width
    let mut before_resize = resize_to.is_some();
    while Instant::now() < deadline {
        let screen = tmux.capture();
        if !resized && screen.contains("    blocked ") {
            let to = resize_to.expect("a size");
            let ok = tmux
                .cmd()
                .args(["resize-window", "-t", "demo", "-x"])
                .arg(to.to_string())
                .status()
                .expect("tmux resize-window");
            assert!(ok.success());
            resized = true;
            before_resize = false;
            seen.clear();
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        if before_resize {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let done = screen.contains("[exit ");
        if seen.last() != Some(&screen) {
            seen.push(screen);
        }
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    seen
}

fn tmux_missing() -> bool {
    let missing = Command::new("tmux").arg("-V").output().is_err();
    if missing {
        println!("note: tmux is not installed; skipping the terminal width check");
    }
    missing
}

async fn check(columns: u16, resize_to: Option<u16>) -> Vec<String> {
    let seen = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || screens(columns, resize_to)),
    )
    .await
    .expect("the demo finished in time")
    .expect("watcher thread");
    let last = seen.last().expect("a screen");
    assert!(last.contains("[exit 0]"), "{last}");
    assert!(last.contains("kdrain: drained node/n1 in "), "{last}");
    let live: Vec<&String> = seen
        .iter()
        .filter(|s| s.contains("    blocked ") && s.contains("    terminating "))
        .collect();
    assert!(
        !live.is_empty(),
        "no frame with a blocked and a terminating pod"
    );
    for screen in &seen {
        // After a resize the terminal reflows what was drawn before it; the view itself (from
        // its header down) is what must fit.
        let view = match resize_to {
            Some(_) => screen
                .rfind("\nkdrain: ")
                .map_or(screen.as_str(), |i| &screen[i + 1..]),
            None => screen.as_str(),
        };
        let stray = stray_rows(view);
        assert!(
            stray.is_empty(),
            "rows wrapped by the terminal {stray:?} in\n{screen}"
        );
    }
    // a budget wait says what it waits for, with no retry countdown
    let blocked_rows: Vec<&str> = live
        .iter()
        .flat_map(|s| s.lines())
        .filter(|l| l.starts_with("    blocked "))
        .collect();
    assert!(
        blocked_rows
            .iter()
            .all(|l| l.contains(" · waits for budget web: needs ") && !l.contains("retry in")),
        "{blocked_rows:#?}"
    );
    seen
}

#[tokio::test]
async fn the_live_view_fits_80_columns() {
    if !tmux_missing() {
        check(80, None).await;
    }
}

/// Also keeps the README's samples of the live view (110 columns) true: they must match this
/// run (timings, port and generated names aside); `KDRAIN_UPDATE_README=1` rewrites them from it.
#[tokio::test]
async fn the_live_view_fits_110_columns() {
    if tmux_missing() {
        return;
    }
    let seen = check(110, None).await;
    let frames: Vec<&String> = seen
        .iter()
        .filter(|s| s.contains("    blocked ") && s.contains("    terminating "))
        .collect();
    // a frame from the middle of the drain, when some pods are gone and some still wait
    let live = frames[frames.len() / 2];
    let live = rows(live, "kubesim is serving ");
    let end = rows(seen.last().expect("a screen"), "kdrain: drained ");
    let end: Vec<String> = end
        .into_iter()
        .filter(|r| !r.starts_with("[exit "))
        .collect();
    if readme::updating() {
        readme::write("live-110", &live);
        readme::write("end-110", &end);
        return;
    }
    let text = readme::text();
    let hint = "the README's sample differs from the demo; rewrite it with KDRAIN_UPDATE_README=1 cargo test -p kdrain-cli --test it live_view";
    let readme_live = readme::sample(&text, "live-110").join("\n");
    assert_eq!(
        live_shape(&readme_live),
        live_shape(&live.join("\n")),
        "{hint}"
    );
    let readme_end = readme::sample(&text, "end-110").join("\n");
    assert_eq!(redact(&readme_end), redact(&end.join("\n")), "{hint}");
    // the request count is exact: the README said 14 while a run made 21
    let requests = |text: &str| {
        text.lines()
            .find(|l| l.ends_with(" API request(s)"))
            .map(str::to_string)
            .and_then(|l| l.rsplit(' ').nth(2).map(str::to_string))
    };
    assert_eq!(requests(&readme_end), requests(&end.join("\n")), "{hint}");
}

/// The rows of `screen` from the first one starting with `from`, trimmed, blank ones left out.
fn rows(screen: &str, from: &str) -> Vec<String> {
    screen
        .lines()
        .map(str::trim_end)
        .skip_while(|r| !r.starts_with(from))
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn the_live_view_refits_when_the_terminal_shrinks() {
    if !tmux_missing() {
        check(110, Some(80)).await;
    }
}
