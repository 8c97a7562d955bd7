//! Small helpers to read and write object metadata held as `serde_json::Value`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Store key of an object: (namespace or "", name).
pub type Key = (String, String);

/// `metadata.name`.
pub fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

/// `metadata.namespace` ("" when absent).
pub fn namespace(o: &Value) -> &str {
    o["metadata"]["namespace"].as_str().unwrap_or("")
}

/// `metadata.uid`.
pub fn uid(o: &Value) -> &str {
    o["metadata"]["uid"].as_str().unwrap_or("")
}

/// `metadata.resourceVersion`.
pub fn rv(o: &Value) -> &str {
    o["metadata"]["resourceVersion"].as_str().unwrap_or("")
}

/// Store key of an object.
pub fn key(o: &Value) -> Key {
    (namespace(o).to_string(), name(o).to_string())
}

/// `metadata.labels` as a map (empty when absent).
pub fn labels(o: &Value) -> BTreeMap<String, String> {
    string_map(&o["metadata"]["labels"])
}

/// A JSON object of strings as a map (non-strings are skipped).
pub fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The controller owner reference (`controller: true`), if any.
pub fn controller_ref(o: &Value) -> Option<&Value> {
    o["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))
}

/// Whether `metadata.deletionTimestamp` is set.
pub fn is_terminating(o: &Value) -> bool {
    !o["metadata"]["deletionTimestamp"].is_null()
}

/// `status.phase` of a pod ("" when absent).
pub fn phase(o: &Value) -> &str {
    o["status"]["phase"].as_str().unwrap_or("")
}

/// Whether a pod's phase is Succeeded or Failed.
pub fn is_terminal(o: &Value) -> bool {
    matches!(phase(o), "Succeeded" | "Failed")
}

/// Whether a pod has a `Ready` condition with status `True`.
pub fn is_ready(o: &Value) -> bool {
    o["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .unwrap_or(false)
}

/// `spec.nodeName` of a pod ("" when unscheduled).
pub fn node_name(o: &Value) -> &str {
    o["spec"]["nodeName"].as_str().unwrap_or("")
}

/// Current time as `metav1.Time` (RFC 3339, UTC, whole seconds).
pub fn now_rfc3339() -> String {
    fmt_time(jiff::Timestamp::now())
}

/// Format a timestamp as `metav1.Time`.
pub fn fmt_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parse a `metav1.Time`.
pub fn parse_time(s: &str) -> Option<jiff::Timestamp> {
    s.parse().ok()
}

/// A random RFC 4122 version-4 UID.
pub fn new_uid() -> String {
    let a = fastrand::u128(..);
    let b =
        (a & !(0xf000u128 << 64) & !(0xc000u128 << 48)) | (0x4000u128 << 64) | (0x8000u128 << 48);
    let h = format!("{b:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Random suffix as the apiserver's `generateName` uses (5 characters).
pub fn random_suffix(n: usize) -> String {
    (0..n)
        .map(|_| NAME_ALPHABET[fastrand::usize(..NAME_ALPHABET.len())] as char)
        .collect()
}

/// A stable hash string (like `pod-template-hash`) of a JSON value.
pub fn stable_hash(v: &Value) -> String {
    let s = v.to_string();
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    let mut out = String::new();
    for _ in 0..10 {
        out.push(NAME_ALPHABET[(h % NAME_ALPHABET.len() as u64) as usize] as char);
        h /= NAME_ALPHABET.len() as u64;
    }
    out
}

/// An owner reference with `controller: true` to `owner`.
pub fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Set (or replace) a condition in `status.conditions` by type; keeps `lastTransitionTime` when the status is unchanged.
pub fn set_condition(o: &mut Value, cond: Value) {
    if !o["status"].is_object() {
        o["status"] = json!({});
    }
    if !o["status"]["conditions"].is_array() {
        o["status"]["conditions"] = json!([]);
    }
    let list = o["status"]["conditions"].as_array_mut().expect("array");
    if let Some(existing) = list.iter_mut().find(|c| c["type"] == cond["type"]) {
        let mut cond = cond;
        if existing["status"] == cond["status"] && !existing["lastTransitionTime"].is_null() {
            cond["lastTransitionTime"] = existing["lastTransitionTime"].clone();
        }
        *existing = cond;
    } else {
        list.push(cond);
    }
}
