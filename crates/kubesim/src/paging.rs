//! Paged LISTs (R-4): the continue token (the real server's shape plus a snapshot id) and the
//! registry of open snapshots, which bounds how many there are and how long an idle one lives.
//!
//! A snapshot costs no copy of the objects: a page at an older resourceVersion is read from the
//! live store corrected by the watch history (`State::changed_since`). The registry only records
//! which snapshots are still open, so it can expire them like the real server's compaction.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::error::{ApiError, ApiResult};
use crate::meta::Key;

/// Most snapshots open at once; opening one more closes the one idle longest.
pub const MAX_SNAPSHOTS: usize = 512;

/// The only token version the real server knows.
const TOKEN_VERSION: &str = "meta.k8s.io/v1";

/// A continue token: `{"v":"meta.k8s.io/v1","rv":N,"start":"<key>\u0000"}` as the real server
/// encodes it, plus `id`, the snapshot it reads (absent in tokens kubesim did not issue).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContinueToken {
    /// Token version.
    #[serde(default)]
    pub v: String,
    /// The list's resourceVersion; -1 means "continue from the live store" (after expiry).
    #[serde(default)]
    pub rv: i64,
    /// The first key the next page may hold (the last key served followed by NUL).
    #[serde(default)]
    pub start: String,
    /// The snapshot this token reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

/// How a list is scoped, which decides how keys are written in tokens (relative to the list's
/// key prefix, as the real server does).
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    /// The resource is namespaced.
    pub namespaced: bool,
    /// The list is limited to one namespace.
    pub in_namespace: bool,
}

impl Scope {
    fn relative(self, key: &Key) -> String {
        if self.namespaced && !self.in_namespace {
            format!("{}/{}", key.0, key.1)
        } else {
            key.1.clone()
        }
    }
}

impl ContinueToken {
    /// A token for the page after `last` (the last key served) of a list at `rv`.
    pub fn after(rv: u64, last: &Key, scope: Scope, id: Option<u64>) -> Self {
        ContinueToken {
            v: TOKEN_VERSION.into(),
            rv: rv as i64,
            start: format!("{}\u{0}", scope.relative(last)),
            id,
        }
    }

    /// The token the server hands out when this one has expired: same start, rv -1, which
    /// continues from the live store (inconsistently with the earlier pages).
    pub fn inconsistent(&self) -> Self {
        ContinueToken {
            v: TOKEN_VERSION.into(),
            rv: -1,
            start: self.start.clone(),
            id: None,
        }
    }

    /// The wire form: unpadded base64url of the JSON.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Parse a token, with the real server's 400 `invalid continue token: ...` messages.
    pub fn decode(s: &str) -> ApiResult<Self> {
        let bad = |m: String| ApiError::bad_request(format!("invalid continue token: {m}"));
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|e| {
                bad(format!(
                    "continue key is not valid: {}",
                    go_base64_error(&e)
                ))
            })?;
        let tok: ContinueToken = serde_json::from_slice(&raw)
            .map_err(|e| bad(format!("continue key is not valid: {e}")))?;
        if tok.v != TOKEN_VERSION {
            return Err(bad(format!(
                "continue key is not valid: server does not recognize this encoded version {}",
                tok.v
            )));
        }
        if tok.rv == 0 {
            return Err(bad(format!(
                "continue key is not valid: incorrect encoded start resourceVersion (version {TOKEN_VERSION})"
            )));
        }
        if tok.start.is_empty() {
            return Err(bad(format!(
                "continue key is not valid: encoded start key empty (version {TOKEN_VERSION})"
            )));
        }
        let traversal = tok
            .start
            .trim_start_matches('/')
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..");
        if traversal {
            return Err(bad(format!("continue key is not valid: {}", tok.start)));
        }
        Ok(tok)
    }

    /// The first store key the next page may hold. A start ending in NUL is the successor of
    /// the key before it, which in key order is that key's name followed by NUL.
    pub fn start_key(&self, scope: Scope, ns: Option<&str>) -> Key {
        let start = self.start.trim_start_matches('/');
        match (scope.namespaced, scope.in_namespace) {
            (true, false) => match start.split_once('/') {
                Some((ns, name)) => (ns.to_string(), name.to_string()),
                None => (start.to_string(), String::new()),
            },
            (true, true) => (ns.unwrap_or("").to_string(), start.to_string()),
            (false, _) => (String::new(), start.to_string()),
        }
    }
}

/// Go's wording for a base64 error (`illegal base64 data at input byte N`).
fn go_base64_error(e: &base64::DecodeError) -> String {
    let at = match e {
        base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _) => {
            *at
        }
        _ => 0,
    };
    format!("illegal base64 data at input byte {at}")
}

struct Open {
    rv: u64,
    last_used: Instant,
}

struct Registry {
    next_id: u64,
    open: HashMap<u64, Open>,
}

/// The open snapshots of paged LISTs: each is a resourceVersion and the last time a page of it
/// was served. One idle longer than the TTL, or pushed out by [`MAX_SNAPSHOTS`] newer ones, is
/// expired, and its tokens get 410 Expired.
pub struct Snapshots {
    ttl: Duration,
    registry: Mutex<Registry>,
}

impl Snapshots {
    /// An empty registry expiring snapshots idle for longer than `ttl`.
    pub fn new(ttl: Duration) -> Self {
        // Ids start from the clock so tokens from an earlier simulator on the same port do not
        // name this one's snapshots, and stay below 2^52 so JSON tools read them exactly.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| (d.as_nanos() % (1 << 52)) as u64)
            .unwrap_or(1);
        Snapshots {
            ttl,
            registry: Mutex::new(Registry {
                next_id: seed | 1,
                open: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open a snapshot at `rv`; returns the id its tokens carry.
    pub fn open(&self, rv: u64, now: Instant) -> u64 {
        let ttl = self.ttl;
        let mut reg = self.lock();
        reg.open
            .retain(|_, o| now.saturating_duration_since(o.last_used) <= ttl);
        if reg.open.len() >= MAX_SNAPSHOTS
            && let Some(oldest) = reg
                .open
                .iter()
                .min_by_key(|(_, o)| o.last_used)
                .map(|(id, _)| *id)
        {
            reg.open.remove(&oldest);
        }
        let id = reg.next_id;
        reg.next_id = reg.next_id.wrapping_add(1);
        reg.open.insert(id, Open { rv, last_used: now });
        id
    }

    /// Whether snapshot `id` at `rv` is still open; if so its idle time restarts from `now`.
    pub fn touch(&self, id: u64, rv: u64, now: Instant) -> bool {
        let ttl = self.ttl;
        let mut reg = self.lock();
        let Some(o) = reg.open.get_mut(&id) else {
            return false;
        };
        if o.rv != rv {
            return false;
        }
        if now.saturating_duration_since(o.last_used) > ttl {
            reg.open.remove(&id);
            return false;
        }
        o.last_used = now;
        true
    }

    /// Expire every open snapshot; returns how many there were.
    pub fn expire_all(&self) -> usize {
        let mut reg = self.lock();
        let n = reg.open.len();
        reg.open.clear();
        n
    }

    /// How many snapshots are open (expired ones not yet swept may still count).
    pub fn len(&self) -> usize {
        self.lock().open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Scope = Scope {
        namespaced: true,
        in_namespace: false,
    };

    fn key(ns: &str, name: &str) -> Key {
        (ns.to_string(), name.to_string())
    }

    #[test]
    fn tokens_have_the_real_servers_shape() {
        let t = ContinueToken::after(42, &key("default", "a-3"), ALL, None);
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t.encode())
            .unwrap();
        assert_eq!(
            String::from_utf8(raw).unwrap(),
            r#"{"v":"meta.k8s.io/v1","rv":42,"start":"default/a-3\u0000"}"#
        );
        let one_ns = Scope {
            namespaced: true,
            in_namespace: true,
        };
        let t = ContinueToken::after(7, &key("default", "a-3"), one_ns, Some(9));
        assert_eq!(t.start, "a-3\u{0}");
        let back = ContinueToken::decode(&t.encode()).unwrap();
        assert_eq!(back, t);
        assert_eq!(
            back.start_key(one_ns, Some("default")),
            key("default", "a-3\u{0}")
        );
        let nodes = Scope {
            namespaced: false,
            in_namespace: false,
        };
        let t = ContinueToken::after(7, &key("", "n1"), nodes, None);
        assert_eq!(t.start_key(nodes, None), key("", "n1\u{0}"));
    }

    #[test]
    fn the_start_key_sorts_right_after_the_last_key_served() {
        let t = ContinueToken::after(3, &key("default", "a"), ALL, None);
        let start = t.start_key(ALL, None);
        assert!(start > key("default", "a"));
        assert!(start < key("default", "a-0"));
        assert!(start < key("default-x", ""));
    }

    #[test]
    fn bad_tokens_get_the_real_servers_messages() {
        let msg = |s: &str| ContinueToken::decode(s).unwrap_err().message;
        let enc = |j: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(j);
        assert_eq!(
            msg("a!b"),
            "invalid continue token: continue key is not valid: illegal base64 data at input byte 1"
        );
        assert!(
            msg(&enc("[1]")).starts_with("invalid continue token: continue key is not valid: ")
        );
        assert_eq!(
            msg(&enc(r#"{"v":"x","rv":1,"start":"a"}"#)),
            "invalid continue token: continue key is not valid: server does not recognize this encoded version x"
        );
        assert_eq!(
            msg(&enc(r#"{"v":"meta.k8s.io/v1","rv":0,"start":"a"}"#)),
            "invalid continue token: continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        );
        assert_eq!(
            msg(&enc(r#"{"v":"meta.k8s.io/v1","rv":1,"start":""}"#)),
            "invalid continue token: continue key is not valid: encoded start key empty (version meta.k8s.io/v1)"
        );
        assert_eq!(
            msg(&enc(r#"{"v":"meta.k8s.io/v1","rv":1,"start":"../x"}"#)),
            "invalid continue token: continue key is not valid: ../x"
        );
        assert_eq!(ContinueToken::decode("garbage").unwrap_err().code, 400);
        let minus_one = enc(r#"{"v":"meta.k8s.io/v1","rv":-1,"start":"default/a\u0000"}"#);
        assert_eq!(ContinueToken::decode(&minus_one).unwrap().rv, -1);
    }

    #[test]
    fn snapshots_expire_when_idle_past_the_ttl_or_pushed_out() {
        let snaps = Snapshots::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let a = snaps.open(5, t0);
        assert!(snaps.touch(a, 5, t0 + Duration::from_secs(50)));
        assert!(
            snaps.touch(a, 5, t0 + Duration::from_secs(100)),
            "touch restarts the idle time"
        );
        assert!(
            !snaps.touch(a, 6, t0 + Duration::from_secs(100)),
            "wrong rv"
        );
        assert!(snaps.touch(a, 5, t0 + Duration::from_secs(100)));
        assert!(!snaps.touch(a, 5, t0 + Duration::from_secs(161)));
        assert!(
            !snaps.touch(a, 5, t0 + Duration::from_secs(100)),
            "gone once expired"
        );
        let b = snaps.open(5, t0);
        assert!(!snaps.touch(b, 5, t0 + Duration::from_secs(61)));
        let first = snaps.open(1, t0);
        for i in 0..MAX_SNAPSHOTS as u64 {
            snaps.open(i, t0 + Duration::from_millis(i + 1));
        }
        assert_eq!(snaps.len(), MAX_SNAPSHOTS);
        assert!(
            !snaps.touch(first, 1, t0),
            "the one idle longest is pushed out"
        );
        assert_eq!(snaps.expire_all(), MAX_SNAPSHOTS);
        assert_eq!(snaps.len(), 0);
    }
}
