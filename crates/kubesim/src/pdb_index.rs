//! Which pods each PodDisruptionBudget selects, kept current on every pod and PDB write so the
//! eviction handler and the disruption controller never scan a namespace.

use std::collections::{BTreeMap, HashMap};

use selectors::LabelSelector;
use serde_json::Value;

use crate::{labels, meta};

/// What the disruption arithmetic needs to know about a member pod, kept so it never has to
/// unpack stored pods.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Has a `Ready=True` condition.
    pub ready: bool,
    /// Has a deletionTimestamp.
    pub terminating: bool,
    /// Controller owner (kind, uid), if any.
    pub controller: Option<(String, String)>,
}

impl Member {
    fn of(pod: &Value) -> Member {
        Member {
            ready: meta::is_ready(pod),
            terminating: meta::is_terminating(pod),
            controller: meta::controller_ref(pod).map(|r| {
                (
                    r["kind"].as_str().unwrap_or("").to_string(),
                    r["uid"].as_str().unwrap_or("").to_string(),
                )
            }),
        }
    }
}

/// One PDB's parsed selector and its member pods.
pub struct PdbEntry {
    /// Parsed selector; None when the PDB's selector is invalid (such PDBs match nothing, E-4).
    pub selector: Option<LabelSelector>,
    /// The pods (in the PDB's namespace, by name) the selector matches.
    members: BTreeMap<String, Member>,
    /// How many members each controller owner (kind, uid) has, so the budget arithmetic
    /// looks each owner up once instead of once per pod.
    owners: BTreeMap<(String, String), usize>,
    /// How many members are Ready and not terminating, kept with `members` so a budget's
    /// status does not count them pod by pod at every sync.
    healthy: usize,
}

impl Member {
    /// Ready and not terminating: counts as healthy for a budget.
    pub fn healthy(&self) -> bool {
        self.ready && !self.terminating
    }
}

impl PdbEntry {
    fn put(&mut self, name: &str, m: Member) {
        if let Some((kind, uid)) = &m.controller {
            *self.owners.entry((kind.clone(), uid.clone())).or_default() += 1;
        }
        self.healthy += usize::from(m.healthy());
        if let Some(old) = self.members.insert(name.to_string(), m) {
            self.forget(&old);
        }
    }

    fn take(&mut self, name: &str) {
        if let Some(old) = self.members.remove(name) {
            self.forget(&old);
        }
    }

    /// Takes a member that left out of the counts (healthy, and its owner's).
    fn forget(&mut self, m: &Member) {
        self.healthy -= usize::from(m.healthy());
        let Some(owner) = &m.controller else { return };
        if let Some(n) = self.owners.get_mut(owner) {
            *n -= 1;
            if *n == 0 {
                self.owners.remove(owner);
            }
        }
    }
}

/// PDB entries by namespace and name.
#[derive(Default)]
pub struct PdbIndex {
    by_ns: HashMap<String, BTreeMap<String, PdbEntry>>,
}

impl PdbIndex {
    /// Build an entry for `pdb` from the pods of its namespace.
    pub fn build_entry(pdb: &Value, pods: &[&Value]) -> PdbEntry {
        let selector = labels::from_json(&pdb["spec"]["selector"]);
        let mut entry = PdbEntry {
            selector: None,
            members: BTreeMap::new(),
            owners: BTreeMap::new(),
            healthy: 0,
        };
        if let Some(sel) = &selector {
            for p in pods
                .iter()
                .filter(|p| labels::matches(sel, &meta::labels(p)))
            {
                entry.put(meta::name(p), Member::of(p));
            }
        }
        entry.selector = selector;
        entry
    }

    /// Store an entry.
    pub fn set(&mut self, ns: &str, name: &str, entry: PdbEntry) {
        self.by_ns
            .entry(ns.to_string())
            .or_default()
            .insert(name.to_string(), entry);
    }

    /// Forget a PDB.
    pub fn remove(&mut self, ns: &str, name: &str) {
        if let Some(m) = self.by_ns.get_mut(ns) {
            m.remove(name);
        }
    }

    /// Update memberships after a pod write. An entry holds exactly the pods its selector
    /// matches, so a pod leaves only the entries its previous labels matched (a new pod, or one
    /// whose labels did not change, leaves none).
    pub fn pod_changed(&mut self, old: Option<&Value>, new: Option<&Value>) {
        let Some(any) = new.or(old) else { return };
        let Some(pdbs) = self.by_ns.get_mut(meta::namespace(any)) else {
            return;
        };
        let name = meta::name(any);
        let labels = new.map(meta::labels);
        let same_labels = matches!((old, new), (Some(o), Some(n))
            if o["metadata"]["labels"] == n["metadata"]["labels"]);
        let old_labels = old.filter(|_| !same_labels).map(meta::labels);
        let info = new.map(Member::of);
        for entry in pdbs.values_mut() {
            let Some(sel) = &entry.selector else {
                continue;
            };
            let member = labels.as_ref().is_some_and(|l| labels::matches(sel, l));
            let was = if same_labels {
                member
            } else {
                old_labels.as_ref().is_some_and(|l| labels::matches(sel, l))
            };
            if member && let Some(i) = &info {
                entry.put(name, i.clone());
            } else if was {
                entry.take(name);
            }
        }
    }

    /// Names of the PDBs in `ns` whose selector matches a pod with these labels.
    pub fn matching(&self, ns: &str, pod_labels: &BTreeMap<String, String>) -> Vec<String> {
        self.by_ns
            .get(ns)
            .map(|m| {
                m.iter()
                    .filter(|(_, e)| {
                        e.selector
                            .as_ref()
                            .is_some_and(|s| labels::matches(s, pod_labels))
                    })
                    .map(|(n, _)| n.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Member pods of one PDB.
    pub fn members(&self, ns: &str, name: &str) -> Option<&BTreeMap<String, Member>> {
        self.by_ns.get(ns)?.get(name).map(|e| &e.members)
    }

    /// How many of one PDB's members are Ready and not terminating.
    pub fn healthy(&self, ns: &str, name: &str) -> usize {
        self.by_ns
            .get(ns)
            .and_then(|m| m.get(name))
            .map_or(0, |e| e.healthy)
    }

    /// The controller owners (kind, uid) of one PDB's members, with how many members each has.
    pub fn owners(&self, ns: &str, name: &str) -> Option<&BTreeMap<(String, String), usize>> {
        self.by_ns.get(ns)?.get(name).map(|e| &e.owners)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(name: &str, app: &str, ready: bool, terminating: bool) -> Value {
        let mut p = json!({
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": app}},
            "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
        });
        if terminating {
            p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        p
    }

    /// The kept count equals a recount of the members after every change.
    fn check(ix: &PdbIndex, want: usize) {
        let recount = ix
            .members("shop", "web")
            .map_or(0, |m| m.values().filter(|m| m.healthy()).count());
        assert_eq!(ix.healthy("shop", "web"), recount);
        assert_eq!(ix.healthy("shop", "web"), want);
    }

    #[test]
    fn the_healthy_count_follows_readiness_deletion_labels_and_removal() {
        let pdb = json!({"metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}}});
        let (a, b) = (pod("a", "web", true, false), pod("b", "web", false, false));
        let mut ix = PdbIndex::default();
        ix.set("shop", "web", PdbIndex::build_entry(&pdb, &[&a, &b]));
        check(&ix, 1);
        let b_ready = pod("b", "web", true, false);
        ix.pod_changed(Some(&b), Some(&b_ready));
        check(&ix, 2);
        // written again unchanged: counted once
        ix.pod_changed(Some(&b_ready), Some(&b_ready));
        check(&ix, 2);
        let a_going = pod("a", "web", true, true);
        ix.pod_changed(Some(&a), Some(&a_going));
        check(&ix, 1);
        ix.pod_changed(Some(&a_going), None);
        check(&ix, 1);
        // relabelled out of the selector, then back in
        let b_other = pod("b", "db", true, false);
        ix.pod_changed(Some(&b_ready), Some(&b_other));
        check(&ix, 0);
        ix.pod_changed(Some(&b_other), Some(&b_ready));
        check(&ix, 1);
        // a new pod, and one of another app
        ix.pod_changed(None, Some(&pod("c", "web", true, false)));
        ix.pod_changed(None, Some(&pod("d", "db", true, false)));
        check(&ix, 2);
    }
}
