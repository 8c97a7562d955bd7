//! The bad-input and fault checks of `control-plane up`/`down`, run by `cargo xtask e2e` through
//! this very program (as a user runs it): `down` without `up`, a port in use, a half-built
//! binary, and a component that exits during start-up. Each must print one line naming the
//! component and its log file (or the binary), exit non-zero (0 for `down`), and leave nothing
//! running.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cluster::ports_free;
use crate::gobuild::{BINARIES, Stamp};

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

fn xtask(args: &[&str], run_dir: &Path, bin: &Path) -> Result<Outcome> {
    let exe = std::env::current_exe().context("cannot find this program")?;
    let out = Command::new(exe)
        .args(args)
        .env(crate::paths::RUN_ENV, run_dir)
        .env(crate::paths::CACHE_ENV, bin)
        .output()?;
    Ok(Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// A bin directory of links to the real binaries, with `replace` swapped for the given content
/// and the build record written for the result (`record_real_size`: the record keeps the real
/// binary's size, so the swapped file looks half-written).
fn fake_bin(
    dir: &Path,
    real: &Path,
    replace: &str,
    content: &[u8],
    record_real_size: bool,
) -> Result<PathBuf> {
    let bin = dir.join(format!("bin-{replace}"));
    std::fs::create_dir_all(&bin)?;
    let text = std::fs::read_to_string(real.join("build.json"))?;
    let mut stamp: Stamp = serde_json::from_str(&text)?;
    for name in BINARIES {
        let path = bin.join(name);
        let _ = std::fs::remove_file(&path);
        if name == replace {
            std::fs::write(&path, content)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
            if !record_real_size {
                for (n, size) in &mut stamp.binaries {
                    if n == name {
                        *size = content.len() as u64;
                    }
                }
            }
        } else {
            std::os::unix::fs::symlink(real.join(name), &path)?;
        }
    }
    std::fs::write(bin.join("build.json"), serde_json::to_string(&stamp)?)?;
    Ok(bin)
}

fn one_line(s: &str) -> bool {
    s.lines().filter(|l| !l.trim().is_empty()).count() == 1
}

/// Run the checks; returns one line per check for the report.
pub fn run(real_bin: &Path, work: &Path, port_base: u16) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    let dir = work.join("faults");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let run_dir = dir.join("cluster");
    let port = port_base.to_string();

    // `down` without `up`.
    let o = xtask(&["control-plane", "down"], &run_dir, real_bin)?;
    if o.code != 0 || !o.stdout.contains("no control plane is running") {
        bail!("down without up: exit {} and {:?}", o.code, o.stdout);
    }
    lines.push(format!("down without up: exit 0, \"{}\"", o.stdout.trim()));

    // A port in use: the API server's.
    let holder = TcpListener::bind(("127.0.0.1", port_base + 2))
        .with_context(|| format!("cannot hold port {}", port_base + 2))?;
    let o = xtask(
        &["control-plane", "up", "--port-base", &port],
        &run_dir,
        real_bin,
    )?;
    drop(holder);
    if o.code == 0
        || !one_line(&o.stderr)
        || !o.stderr.contains("kube-apiserver")
        || !o.stderr.contains("in use")
        || !o.stderr.contains("kube-apiserver.log")
        || !ports_free(port_base)
    {
        bail!(
            "up with a port in use: exit {}, stderr {:?}",
            o.code,
            o.stderr
        );
    }
    lines.push(format!(
        "port in use: exit {}, \"{}\"",
        o.code,
        o.stderr.trim()
    ));

    // A half-built binary (shorter than the build recorded).
    let bin = fake_bin(&dir, real_bin, "kwok", b"\x7fELF truncated", true)?;
    let o = xtask(
        &["control-plane", "up", "--port-base", &port],
        &run_dir,
        &bin,
    )?;
    if o.code == 0
        || !one_line(&o.stderr)
        || !o.stderr.contains("kwok")
        || !o.stderr.contains("half-built")
        || !ports_free(port_base)
    {
        bail!(
            "up with a half-built binary: exit {}, stderr {:?}",
            o.code,
            o.stderr
        );
    }
    lines.push(format!(
        "half-built binary: exit {}, \"{}\"",
        o.code,
        o.stderr.trim()
    ));

    // A component that exits during start-up (the scheduler, after etcd, the API server and the
    // controller-manager have started: all of them must be stopped again).
    let script = b"#!/bin/sh\necho 'simulated start-up failure' >&2\nexit 1\n";
    let bin = fake_bin(&dir, real_bin, "kube-scheduler", script, false)?;
    let o = xtask(
        &["control-plane", "up", "--port-base", &port],
        &run_dir,
        &bin,
    )?;
    let state_left = run_dir.join("state.json").exists();
    if o.code == 0
        || !one_line(&o.stderr)
        || !o.stderr.contains("kube-scheduler exited during start-up")
        || !o.stderr.contains("kube-scheduler.log")
        || state_left
        || !ports_free(port_base)
    {
        bail!(
            "up with a component exiting at start-up: exit {}, stderr {:?}, state file left: {state_left}",
            o.code,
            o.stderr
        );
    }
    lines.push(format!(
        "component exits at start-up: exit {}, \"{}\", ports free again",
        o.code,
        o.stderr.trim()
    ));
    Ok(lines)
}
