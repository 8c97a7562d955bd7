//! The real control plane as a library: build the binaries (`gobuild`), start and stop them on
//! 127.0.0.1 (`cluster`, `pki`), materialise a kubesim scenario on them (`materialise`) and observe
//! a client's requests and the invariants from the audit log and watches (`observer`). Used by
//! `cargo xtask` and by `kdrain-bench --cluster real`.

pub mod cluster;
pub mod gobuild;
pub mod materialise;
pub mod observer;
pub mod paths;
pub mod pki;
