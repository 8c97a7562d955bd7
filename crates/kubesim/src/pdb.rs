//! PodDisruptionBudget arithmetic shared by the disruption controller, the eviction handler
//! and the invariant ledger (rules C-2 to C-5).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::meta;
use crate::pdb_index::Member;
use crate::resources::{DEPLOYMENTS, PODS, REPLICASETS, STATEFULSETS};
use crate::store::State;

/// How long an eviction's `disruptedPods` entry is honoured (C-4).
pub const DELETION_TIMEOUT_SECS: i64 = 120;

/// The numbers of a PDB's status.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Budget {
    /// expectedPods.
    pub expected: i64,
    /// desiredHealthy.
    pub desired: i64,
    /// currentHealthy.
    pub healthy: i64,
    /// disruptionsAllowed.
    pub allowed: i64,
    /// Pruned disruptedPods map (pod name → RFC 3339 time).
    pub disrupted: BTreeMap<String, String>,
    /// Earliest expiry among the kept disruptedPods entries.
    pub next_expiry: Option<jiff::Timestamp>,
}

/// An IntOrString value: integer or "N%". Err when a string has no `%` (C-2).
fn int_or_percent(v: &Value, total: i64) -> Result<i64, String> {
    match v {
        Value::Number(n) => Ok(n.as_i64().unwrap_or(0)),
        Value::String(s) => {
            let Some(p) = s.strip_suffix('%') else {
                return Err(format!(
                    "invalid value for IntOrString: invalid type: string is not a percentage: {s:?}"
                ));
            };
            let p: i64 = p
                .parse()
                .map_err(|_| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            Ok((p * total + 99) / 100)
        }
        _ => Err("invalid value for IntOrString".to_string()),
    }
}

fn is_percent(v: &Value) -> bool {
    v.as_str().is_some()
}

/// The scale of one controller owner of a budget's pods (C-3); `pod_name` names a pod it owns
/// in the error.
fn owner_scale(st: &State, kind: &str, uid: &str, pod_name: &str) -> Result<i64, String> {
    let owner = st.get_by_uid(uid);
    Ok(match (kind, owner) {
        ("ReplicaSet", Some((REPLICASETS, rs))) => {
            match meta::controller_ref(&rs).filter(|r| r["kind"] == "Deployment") {
                Some(dref) => match st.get_by_uid(dref["uid"].as_str().unwrap_or("")) {
                    Some((DEPLOYMENTS, d)) => d["spec"]["replicas"].as_i64().unwrap_or(1),
                    _ => rs["spec"]["replicas"].as_i64().unwrap_or(1),
                },
                None => rs["spec"]["replicas"].as_i64().unwrap_or(1),
            }
        }
        ("StatefulSet", Some((STATEFULSETS, s))) => s["spec"]["replicas"].as_i64().unwrap_or(1),
        ("ReplicaSet" | "StatefulSet" | "ReplicationController", _) => {
            return Err(format!("found no controllers for pod {pod_name:?}"));
        }
        (_, _) => return Err("the server could not find the requested resource".to_string()),
    })
}

/// Sum of the owning controllers' scale for the given pods (C-3). `owners` (the members'
/// distinct owners, kept by the PDB index) answers without visiting every pod when each owner
/// UID comes with one kind and all of them resolve; otherwise the pods are visited in name
/// order, each owner once, and the first one that fails names its first pod.
fn expected_scale(
    st: &State,
    pods: &BTreeMap<String, Member>,
    owners: Option<&BTreeMap<(String, String), usize>>,
) -> Result<i64, String> {
    if let Some(owners) = owners {
        let mut uids: Vec<&str> = owners.keys().map(|(_, u)| u.as_str()).collect();
        uids.sort_unstable();
        uids.dedup();
        if uids.len() == owners.len() {
            let sum: Result<i64, String> = owners
                .keys()
                .map(|(kind, uid)| owner_scale(st, kind, uid, ""))
                .sum();
            if let Ok(sum) = sum {
                return Ok(sum);
            }
        }
    }
    let mut scales: HashMap<&str, i64> = HashMap::new();
    for (pod_name, m) in pods {
        let Some((kind, uid)) = &m.controller else {
            continue;
        };
        if scales.contains_key(uid.as_str()) {
            continue;
        }
        scales.insert(uid, owner_scale(st, kind, uid, pod_name)?);
    }
    Ok(scales.values().sum())
}

/// Compute a PDB's status numbers from the live state (C-2..C-5). Err is a sync error (fail-safe, C-7).
pub fn compute(st: &State, pdb: &Value, now: jiff::Timestamp) -> Result<Budget, String> {
    let ns = meta::namespace(pdb);
    let empty = BTreeMap::new();
    let pods = st.pdbs.members(ns, meta::name(pdb)).unwrap_or(&empty);
    let owners = st.pdbs.owners(ns, meta::name(pdb));
    let spec = &pdb["spec"];
    let (expected, desired) = if !spec["maxUnavailable"].is_null() {
        let expected = expected_scale(st, pods, owners)?;
        let m = int_or_percent(&spec["maxUnavailable"], expected)?;
        (expected, (expected - m).max(0))
    } else if !spec["minAvailable"].is_null() {
        if is_percent(&spec["minAvailable"]) {
            let expected = expected_scale(st, pods, owners)?;
            (expected, int_or_percent(&spec["minAvailable"], expected)?)
        } else {
            (pods.len() as i64, int_or_percent(&spec["minAvailable"], 0)?)
        }
    } else {
        (0, 0)
    };
    let mut disrupted = BTreeMap::new();
    let mut next_expiry: Option<jiff::Timestamp> = None;
    if let Some(m) = pdb["status"]["disruptedPods"].as_object() {
        for (pod_name, t) in m {
            let Some(ts) = t.as_str().and_then(meta::parse_time) else {
                continue;
            };
            let terminating = match pods.get(pod_name) {
                Some(member) => member.terminating,
                None => match st.get(PODS, ns, pod_name) {
                    Some(p) => meta::is_terminating(&p),
                    None => continue,
                },
            };
            if terminating {
                continue;
            }
            let expiry = ts + jiff::SignedDuration::from_secs(DELETION_TIMEOUT_SECS);
            if expiry <= now {
                continue;
            }
            next_expiry = Some(next_expiry.map_or(expiry, |e: jiff::Timestamp| e.min(expiry)));
            disrupted.insert(pod_name.clone(), t.as_str().unwrap_or("").to_string());
        }
    }
    // the members Ready and not terminating, less those listed as disrupted
    let listed = disrupted
        .keys()
        .filter(|n| pods.get(n.as_str()).is_some_and(Member::healthy))
        .count();
    let healthy = (st.pdbs.healthy(ns, meta::name(pdb)) - listed) as i64;
    let allowed = if expected <= 0 {
        0
    } else {
        (healthy - desired).max(0)
    };
    Ok(Budget {
        expected,
        desired,
        healthy,
        allowed,
        disrupted,
        next_expiry,
    })
}

/// Live count of a PDB's Ready, non-terminating member pods (for the invariant ledger).
pub fn live_healthy(st: &State, pdb: &Value) -> i64 {
    st.pdbs.healthy(meta::namespace(pdb), meta::name(pdb)) as i64
}
