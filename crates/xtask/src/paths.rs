//! Where things live: the workspace, the binary cache and the running cluster's directory.

use std::path::{Path, PathBuf};

/// Kubernetes release the control plane is built from (closest served to the installed kubectl).
pub const K8S_VERSION: &str = "v1.33.13";
/// etcd release.
pub const ETCD_VERSION: &str = "v3.6.17";
/// kwok release (its k8s libraries are 0.33, like the control plane's).
pub const KWOK_VERSION: &str = "v0.7.0";

/// Environment variable overriding the binary cache directory (the `bin` directory itself).
pub const CACHE_ENV: &str = "KDRAIN_CONTROL_PLANE_BIN";
/// Environment variable overriding the running cluster's directory.
pub const RUN_ENV: &str = "KDRAIN_CONTROL_PLANE_DIR";

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..");
    root.canonicalize().unwrap_or(root)
}

/// The wrapper Go modules, committed under tools/control-plane/.
pub fn go_modules_dir() -> PathBuf {
    workspace_root().join("tools").join("control-plane")
}

/// `~/.cache/kdrain/control-plane/<k8s-version>/bin`, or `$KDRAIN_CONTROL_PLANE_BIN`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache
        .join("kdrain")
        .join("control-plane")
        .join(K8S_VERSION)
        .join("bin")
}

/// The running cluster's directory (PKI, data, logs, pids): `target/control-plane`, or
/// `$KDRAIN_CONTROL_PLANE_DIR`.
pub fn run_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(RUN_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    workspace_root().join("target").join("control-plane")
}
