//! `cargo xtask control-plane build`: etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler and kwok built from source through the Go module proxy, once, into a cache
//! keyed by version.
//!
//! Three wrapper modules are committed under tools/control-plane/ (kubernetes, etcd, kwok),
//! each with its go.mod and go.sum. `k8s.io/kubernetes` cannot be built with `go install`
//! because its go.mod replaces every staging module (`k8s.io/api`, ...) with a local path; the
//! wrapper replaces each one with its published `v0.<minor>.<patch>` release instead. That list
//! is derived here from the downloaded go.mod, and the committed go.mod is checked against it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::paths::{ETCD_VERSION, K8S_VERSION, KWOK_VERSION, bin_dir, go_modules_dir};

/// One `go build` of one wrapper module.
struct Group {
    /// Directory under tools/control-plane/.
    module: &'static str,
    /// (binary name, Go package).
    binaries: &'static [(&'static str, &'static str)],
    /// What it is built from, for the messages.
    from: String,
    /// Whether the Kubernetes version is stamped with ldflags.
    stamp_k8s_version: bool,
}

fn groups() -> Vec<Group> {
    vec![
        Group {
            module: "etcd",
            binaries: &[("etcd", "go.etcd.io/etcd/server/v3")],
            from: format!("go.etcd.io/etcd/server/v3@{ETCD_VERSION}"),
            stamp_k8s_version: false,
        },
        Group {
            module: "kubernetes",
            binaries: &[
                ("kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver"),
                (
                    "kube-controller-manager",
                    "k8s.io/kubernetes/cmd/kube-controller-manager",
                ),
                ("kube-scheduler", "k8s.io/kubernetes/cmd/kube-scheduler"),
            ],
            from: format!("k8s.io/kubernetes@{K8S_VERSION}"),
            stamp_k8s_version: true,
        },
        Group {
            module: "kwok",
            binaries: &[("kwok", "sigs.k8s.io/kwok/cmd/kwok")],
            from: format!("sigs.k8s.io/kwok/cmd/kwok@{KWOK_VERSION}"),
            stamp_k8s_version: false,
        },
    ]
}

/// Every binary the control plane needs, in start order.
pub const BINARIES: [&str; 5] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
];

/// The record written into the cache after a complete build: what it was built from and the
/// size of each binary, so that a stale cache or a half-written binary is recognised.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Stamp {
    /// Hash of the versions and of every wrapper module's go.mod and go.sum.
    pub inputs: String,
    /// Binary name and size in bytes.
    pub binaries: Vec<(String, u64)>,
}

const STAMP_FILE: &str = "build.json";

/// 64-bit FNV-1a, enough to tell whether the build inputs changed.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What the cached binaries must have been built from.
fn inputs_key() -> Result<String> {
    let mut all =
        format!("{K8S_VERSION} {ETCD_VERSION} {KWOK_VERSION} cgo=0 trimpath\n").into_bytes();
    for g in groups() {
        for f in ["go.mod", "go.sum"] {
            let path = go_modules_dir().join(g.module).join(f);
            all.extend(
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
            );
        }
    }
    Ok(format!("{:016x}", fnv1a(&all)))
}

/// Check the cache: `Ok(())` when every binary is there, complete, and built from the current
/// inputs; otherwise the reason, phrased for a message.
pub fn check_cache(bin: &Path) -> std::result::Result<(), String> {
    let stamp_path = bin.join(STAMP_FILE);
    let text = std::fs::read_to_string(&stamp_path)
        .map_err(|_| format!("no complete build in {}", bin.display()))?;
    let stamp: Stamp = serde_json::from_str(&text)
        .map_err(|_| format!("unreadable build record {}", stamp_path.display()))?;
    let key = inputs_key().map_err(|e| format!("{e:#}"))?;
    if stamp.inputs != key {
        return Err(format!(
            "the binaries in {} were built from other versions or go.sum (stale cache)",
            bin.display()
        ));
    }
    for name in BINARIES {
        let path = bin.join(name);
        let recorded = stamp
            .binaries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| *s);
        match (std::fs::metadata(&path), recorded) {
            (Ok(m), Some(size)) if m.len() == size && m.is_file() => {}
            (Ok(_), _) => {
                return Err(format!(
                    "{} is incomplete or was changed after the build (half-built binary)",
                    path.display()
                ));
            }
            (Err(_), _) => return Err(format!("{} is missing", path.display())),
        }
    }
    Ok(())
}

fn go(dir: &Path) -> Command {
    let mut c = Command::new("go");
    c.current_dir(dir)
        .env("CGO_ENABLED", "0")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-buildvcs=false -mod=readonly");
    c
}

fn run(mut c: Command, what: &str) -> Result<()> {
    let status = c
        .status()
        .with_context(|| format!("cannot run {what}: is Go installed and on PATH?"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn output(mut c: Command, what: &str) -> Result<String> {
    let out = c
        .output()
        .with_context(|| format!("cannot run {what}: is Go installed and on PATH?"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The staging modules `k8s.io/kubernetes`'s own go.mod replaces with `./staging/src/...`.
pub fn staging_modules(gomod: &str) -> BTreeSet<String> {
    gomod
        .lines()
        .filter_map(|l| {
            let l = l.trim().trim_start_matches("replace").trim();
            let (left, right) = l.split_once("=>")?;
            let right = right.trim();
            if !right.starts_with("./staging/") {
                return None;
            }
            let module = left.split_whitespace().next()?;
            module.starts_with("k8s.io/").then(|| module.to_string())
        })
        .collect()
}

#[derive(Deserialize)]
struct Download {
    #[serde(rename = "GoMod")]
    go_mod: PathBuf,
}

#[derive(Deserialize)]
struct ModEdit {
    #[serde(rename = "Replace", default)]
    replace: Vec<Replace>,
}

#[derive(Deserialize)]
struct Replace {
    #[serde(rename = "Old")]
    old: ModVer,
    #[serde(rename = "New")]
    new: ModVer,
}

#[derive(Deserialize)]
struct ModVer {
    #[serde(rename = "Path")]
    path: String,
    #[serde(rename = "Version", default)]
    version: String,
}

/// Derive the staging replace list from the downloaded go.mod of `k8s.io/kubernetes` and make
/// the wrapper's go.mod agree with it (rewriting it and its go.sum when it does not).
fn sync_kubernetes_replaces(dir: &Path) -> Result<()> {
    let mut dl = go(dir);
    dl.args([
        "mod",
        "download",
        "-json",
        &format!("k8s.io/kubernetes@{K8S_VERSION}"),
    ]);
    let info: Download = serde_json::from_str(&output(dl, "go mod download k8s.io/kubernetes")?)
        .context("cannot read `go mod download -json`")?;
    let upstream = std::fs::read_to_string(&info.go_mod)
        .with_context(|| format!("cannot read {}", info.go_mod.display()))?;
    let wanted = staging_modules(&upstream);
    if wanted.is_empty() {
        bail!(
            "found no staging replace directives in {}; the wrapper module cannot be derived",
            info.go_mod.display()
        );
    }
    let staging = format!("v0.{}", K8S_VERSION.trim_start_matches("v1."));
    let mut edit = go(dir);
    edit.args(["mod", "edit", "-json"]);
    let current: ModEdit = serde_json::from_str(&output(edit, "go mod edit -json")?)
        .context("cannot read `go mod edit -json`")?;
    let have: BTreeSet<String> = current
        .replace
        .iter()
        .filter(|r| r.new.path == r.old.path && r.new.version == staging)
        .map(|r| r.old.path.clone())
        .collect();
    let all_replaced: BTreeSet<String> =
        current.replace.iter().map(|r| r.old.path.clone()).collect();
    if have == wanted && all_replaced == wanted {
        println!(
            "  {} staging modules replaced with their {staging} releases, as derived from k8s.io/kubernetes@{K8S_VERSION}'s go.mod",
            wanted.len()
        );
        return Ok(());
    }
    println!(
        "  tools/control-plane/kubernetes/go.mod does not match the {} staging modules of k8s.io/kubernetes@{K8S_VERSION}: rewriting it (commit the change)",
        wanted.len()
    );
    let mut edit = go(dir);
    edit.args(["mod", "edit"]);
    for old in all_replaced.difference(&wanted) {
        edit.arg(format!("-dropreplace={old}"));
    }
    for m in &wanted {
        edit.arg(format!("-replace={m}={m}@{staging}"));
    }
    run(edit, "go mod edit")?;
    let mut tidy = go(dir);
    tidy.env("GOFLAGS", "-buildvcs=false -mod=mod")
        .args(["mod", "tidy"]);
    run(tidy, "go mod tidy")
}

/// `-ldflags` for the Kubernetes binaries: what `hack/lib/version.sh` stamps, so `/version` and
/// `kubectl version` report the release.
fn k8s_ldflags() -> String {
    let minor = K8S_VERSION.split('.').nth(1).unwrap_or("0");
    let date = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let mut ld = String::from("-s -w");
    for pkg in [
        "k8s.io/component-base/version",
        "k8s.io/client-go/pkg/version",
    ] {
        for (var, value) in [
            ("gitVersion", K8S_VERSION),
            ("gitMajor", "1"),
            ("gitMinor", minor),
            ("gitTreeState", "clean"),
            ("buildDate", &date),
        ] {
            ld.push_str(&format!(" -X {pkg}.{var}={value}"));
        }
    }
    ld
}

/// Build whatever is missing or stale. Prints what it builds and how long it took.
pub fn build(force: bool) -> Result<PathBuf> {
    let bin = bin_dir();
    let start = Instant::now();
    if !force {
        match check_cache(&bin) {
            Ok(()) => {
                println!(
                    "control plane {K8S_VERSION} (etcd {ETCD_VERSION}, kwok {KWOK_VERSION}) is up to date in {} ({:.1} s)",
                    bin.display(),
                    start.elapsed().as_secs_f64()
                );
                return Ok(bin);
            }
            Err(why) => println!("building the control plane: {why}"),
        }
    }
    let mut v = go(&go_modules_dir());
    v.arg("version");
    let version = output(v, "go version")?;
    println!("  with {}", version.trim());
    std::fs::create_dir_all(&bin).with_context(|| format!("cannot create {}", bin.display()))?;
    // The record goes first: an interrupted build leaves no record, so `up` refuses it.
    let _ = std::fs::remove_file(bin.join(STAMP_FILE));
    let partial = bin.join(".partial");
    std::fs::create_dir_all(&partial)?;
    for g in groups() {
        let dir = go_modules_dir().join(g.module);
        let names: Vec<&str> = g.binaries.iter().map(|(n, _)| *n).collect();
        println!("building {} from {} ...", names.join(", "), g.from);
        let t = Instant::now();
        if g.module == "kubernetes" {
            sync_kubernetes_replaces(&dir)?;
        }
        let ldflags = if g.stamp_k8s_version {
            k8s_ldflags()
        } else {
            "-s -w".to_string()
        };
        let mut c = go(&dir);
        c.args(["build", "-trimpath", "-ldflags", &ldflags, "-o"]);
        // One package: the output file is named here (etcd's package path ends in `v3`);
        // several: they go into the directory under their own names.
        if let [(name, _)] = g.binaries {
            c.arg(partial.join(name));
        } else {
            c.arg(format!("{}/", partial.display()));
        }
        c.args(g.binaries.iter().map(|(_, pkg)| *pkg));
        run(c, &format!("go build of {}", names.join(", ")))?;
        for name in &names {
            std::fs::rename(partial.join(name), bin.join(name))
                .with_context(|| format!("cannot move {name} into {}", bin.display()))?;
        }
        println!(
            "  built {} in {:.0} s",
            names.join(", "),
            t.elapsed().as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir(&partial);
    let mut binaries = Vec::new();
    for name in BINARIES {
        binaries.push((name.to_string(), std::fs::metadata(bin.join(name))?.len()));
    }
    let stamp = Stamp {
        inputs: inputs_key()?,
        binaries,
    };
    std::fs::write(bin.join(STAMP_FILE), serde_json::to_string_pretty(&stamp)?)?;
    println!(
        "control plane {K8S_VERSION} built into {} in {:.0} s",
        bin.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_modules_are_the_local_replaces_only() {
        let gomod = "module k8s.io/kubernetes\n\nreplace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n\tk8s.io/client-go => ./staging/src/k8s.io/client-go\n\tgithub.com/x/y => github.com/x/y v1.0.0\n)\nreplace k8s.io/kms => ./staging/src/k8s.io/kms\n";
        let got: Vec<String> = staging_modules(gomod).into_iter().collect();
        assert_eq!(got, ["k8s.io/api", "k8s.io/client-go", "k8s.io/kms"]);
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
