//! What placement keeps of each pod bound to a node. The capacity check reads every pod of the
//! cluster (B4: 110,000), so a pod's summary is small ([`Resident`]: 88 bytes, a UUID kept in
//! them; labels, requests and names shared, kept once by [`Interner`]), and the
//! summaries are stored in fixed-size chunks ([`Residents`]) that are filled up exactly: a
//! vector growing by doubling kept up to twice the room, and held the old and the new buffer at
//! once while it grew (16.8 MB of 77 MB peak heap for B4, heaptrack).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, PodSpec};
use sched::resources::{self, Resources};

use crate::budget;

/// A pod's UID: 16 bytes when it is a UUID as the API server writes them (lowercase, with
/// hyphens), else its text. A whole cluster's residents keep theirs without an allocation each.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Uid {
    /// A UUID's bytes.
    Uuid([u8; 16]),
    /// Any other UID, as written.
    Text(Box<str>),
}

impl Default for Uid {
    fn default() -> Self {
        Uid::Text(Box::from(""))
    }
}

impl From<&str> for Uid {
    fn from(s: &str) -> Uid {
        parse_uuid(s).map_or_else(|| Uid::Text(s.into()), Uid::Uuid)
    }
}

/// The bytes of `8-4-4-4-12` lowercase hexadecimal digits, so that [`Uid`]'s text is the same.
fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 16];
    let mut digits = b.iter().copied().filter(|&c| c != b'-');
    for byte in &mut out {
        *byte = (digit(digits.next()?)? << 4) | digit(digits.next()?)?;
    }
    Some(out)
}

impl std::fmt::Display for Uid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Uid::Text(t) => f.write_str(t),
            Uid::Uuid(b) => {
                for (i, byte) in b.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// A pod's required pod anti-affinity terms and host ports: most pods have neither, so a
/// resident keeps them behind one pointer, none when both are empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Constraints {
    /// Required pod anti-affinity terms.
    pub anti_affinity: Vec<PodAffinityTerm>,
    /// Host ports in use, as (protocol, port).
    pub host_ports: Vec<(String, i32)>,
}

/// What placement keeps of a pod bound to a node (a whole cluster's pods are read page by
/// page and only this is kept).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resident {
    /// UID.
    pub uid: Uid,
    /// Namespace (shared like the labels).
    pub namespace: Arc<str>,
    /// The node it is bound to (shared like the labels).
    pub node: Arc<str>,
    /// Labels (shared by the pods that have the same: a Deployment's pods read from a large
    /// cluster keep one copy).
    pub labels: Arc<BTreeMap<String, String>>,
    /// Effective requests (shared like the labels).
    pub requests: Arc<Resources>,
    /// Required pod anti-affinity terms and host ports, if any.
    pub constraints: Option<Box<Constraints>>,
    /// Being deleted (topology spread does not count it, as the scheduler does not).
    pub terminating: bool,
}

fn host_ports(spec: &PodSpec) -> Vec<(String, i32)> {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|h| *h > 0)?;
            Some((p.protocol.clone().unwrap_or_else(|| "TCP".into()), port))
        })
        .collect()
}

/// The pod's required pod anti-affinity terms.
pub(crate) fn required_anti_affinity(spec: &PodSpec) -> Vec<PodAffinityTerm> {
    spec.affinity
        .as_ref()
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .clone()
        })
        .unwrap_or_default()
}

/// Keeps one copy of equal label sets and requests while a cluster's pods are read.
#[derive(Default)]
pub(crate) struct Interner {
    labels: HashSet<Arc<BTreeMap<String, String>>>,
    requests: HashSet<Arc<Resources>>,
    names: HashSet<Arc<str>>,
}

impl Interner {
    /// `r` with its labels, requests, namespace and node replaced by the copies already kept,
    /// if equal.
    pub(crate) fn intern(&mut self, mut r: Resident) -> Resident {
        r.labels = share(&mut self.labels, r.labels);
        r.requests = share(&mut self.requests, r.requests);
        r.namespace = share(&mut self.names, r.namespace);
        r.node = share(&mut self.names, r.node);
        r
    }
}

fn share<T: std::hash::Hash + Eq + ?Sized>(set: &mut HashSet<Arc<T>>, v: Arc<T>) -> Arc<T> {
    if let Some(kept) = set.get(&v) {
        return kept.clone();
    }
    set.insert(v.clone());
    v
}

impl Resident {
    /// Required pod anti-affinity terms.
    pub fn anti_affinity(&self) -> &[PodAffinityTerm] {
        self.constraints
            .as_deref()
            .map_or(&[], |c| c.anti_affinity.as_slice())
    }

    /// Host ports in use, as (protocol, port).
    pub fn host_ports(&self) -> &[(String, i32)] {
        self.constraints
            .as_deref()
            .map_or(&[], |c| c.host_ports.as_slice())
    }

    /// The summary of a pod; an error names a request that does not parse.
    pub fn of(pod: &Pod) -> Result<Resident, String> {
        let empty = PodSpec::default();
        let m = &pod.metadata;
        Resident::from_spec(
            pod.spec.as_ref().unwrap_or(&empty),
            m.uid.clone().unwrap_or_default(),
            m.namespace.clone(),
            m.name.as_deref(),
            m.labels.clone().unwrap_or_default(),
            m.deletion_timestamp.is_some(),
        )
    }

    /// The summary of a pod from its spec and the metadata kept (`name` only names it in the
    /// error).
    pub(crate) fn from_spec(
        spec: &PodSpec,
        uid: String,
        namespace: Option<String>,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
        terminating: bool,
    ) -> Result<Resident, String> {
        let requests = resources::pod_requests(spec)
            .map_err(|e| format!("pod {}: {e}", budget::key_of(namespace.as_deref(), name)))?;
        let constraints = Constraints {
            anti_affinity: required_anti_affinity(spec),
            host_ports: host_ports(spec),
        };
        let any = !constraints.anti_affinity.is_empty() || !constraints.host_ports.is_empty();
        Ok(Resident {
            uid: Uid::from(uid.as_str()),
            namespace: namespace.unwrap_or_default().into(),
            node: spec.node_name.as_deref().unwrap_or_default().into(),
            labels: Arc::new(labels),
            requests: Arc::new(requests),
            constraints: any.then(|| Box::new(constraints)),
            terminating,
        })
    }
}

/// Residents per chunk: each chunk is allocated once, at this size.
const CHUNK: usize = 4096;

/// The residents read from a cluster, indexed from 0 in the order pushed, stored in chunks of
/// [`CHUNK`] allocated once each (at most one chunk is not full).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Residents {
    chunks: Vec<Vec<Resident>>,
    len: usize,
}

impl Residents {
    /// Adds `r` at index [`Residents::len`].
    pub fn push(&mut self, r: Resident) {
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks.last_mut().expect("a chunk").push(r);
        self.len += 1;
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// None at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Resident `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&Resident> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    /// Every resident, in index order.
    pub fn iter(&self) -> impl Iterator<Item = &Resident> {
        self.chunks.iter().flatten()
    }
}

impl std::ops::Index<usize> for Residents {
    type Output = Resident;

    fn index(&self, i: usize) -> &Resident {
        self.get(i).expect("resident index in range")
    }
}

impl FromIterator<Resident> for Residents {
    fn from_iter<I: IntoIterator<Item = Resident>>(iter: I) -> Self {
        let mut out = Residents::default();
        for r in iter {
            out.push(r);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(i: usize) -> Resident {
        Resident {
            uid: Uid::from(i.to_string().as_str()),
            ..Default::default()
        }
    }

    #[test]
    fn a_uuid_is_kept_in_16_bytes_and_reads_the_same() {
        let text = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
        let uid = Uid::from(text);
        assert!(matches!(uid, Uid::Uuid(_)));
        assert_eq!(uid.to_string(), text);
        assert_eq!(uid, Uid::from(text));
        assert_ne!(uid, Uid::from("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f1"));
        // anything else is kept as written (uppercase too, so the text stays the same)
        for other in [
            "uid-shop-web-0",
            "",
            "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fg",
            "0f1e2d3c4b5a-6978-8796-a5b4c3d2e1f0-",
        ] {
            let uid = Uid::from(other);
            assert_eq!(uid, Uid::Text(other.into()), "{other}");
            assert_eq!(uid.to_string(), other);
        }
        assert_eq!(Uid::default(), Uid::from(""));
        // a resident without anti-affinity or host ports allocates nothing for them
        assert!(named(1).constraints.is_none());
        assert!(named(1).anti_affinity().is_empty() && named(1).host_ports().is_empty());
        // the size the module's header states (B4 keeps 110,000 of them)
        assert_eq!(std::mem::size_of::<Resident>(), 88);
    }

    #[test]
    fn residents_keep_their_order_across_chunks() {
        let n = 2 * CHUNK + 3;
        let all: Residents = (0..n).map(named).collect();
        assert_eq!(all.len(), n);
        assert!(!all.is_empty());
        assert_eq!(all.chunks.len(), 3);
        assert!(all.chunks.iter().all(|c| c.capacity() == CHUNK));
        for i in [0, CHUNK - 1, CHUNK, 2 * CHUNK, n - 1] {
            assert_eq!(all[i].uid.to_string(), i.to_string());
        }
        assert_eq!(all.get(n), None);
        let uids: Vec<usize> = all
            .iter()
            .map(|r| r.uid.to_string().parse().unwrap())
            .collect();
        assert_eq!(uids, (0..n).collect::<Vec<_>>());
        assert!(Residents::default().is_empty());
    }
}
