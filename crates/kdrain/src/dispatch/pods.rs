//! What the pod watches say: pods going, terminating, completing, and pods that land on a node
//! during its drain (selected like the plan's, DaemonSet owners looked up).

use std::collections::HashSet;

use k8s_openapi::api::core::v1::Pod;

use super::core::{Command, Core};
use super::track::{St, new_track};
use crate::events::Event;
use crate::plan::{Action, pod_ref};
use crate::report::{FailureKind, PodOutcome};
use crate::select::{self, DaemonSetLookup};
use crate::watch::{Change, Seen};

impl Core {
    pub(super) fn on_pods(&mut self, s: Seen<Pod>) {
        let node = s.source;
        match s.change {
            Change::Upsert(p) => self.upsert_pod(node, p),
            Change::Removed(p) => {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                self.parked
                    .retain(|(_, q)| q.metadata.uid.as_ref() != Some(&uid));
                if self.tracks.get(&uid).is_some_and(|t| t.is_target()) {
                    self.finish(&uid, PodOutcome::Gone);
                }
            }
            Change::Relisted(pods) => {
                let present: HashSet<String> =
                    pods.iter().filter_map(|p| p.metadata.uid.clone()).collect();
                let gone: Vec<String> = self
                    .tracks
                    .iter()
                    .filter(|(uid, t)| {
                        t.node == node && t.is_target() && !t.done() && !present.contains(*uid)
                    })
                    .map(|(uid, _)| uid.clone())
                    .collect();
                for uid in gone {
                    self.finish(&uid, PodOutcome::Gone);
                }
                self.parked.retain(|(n, q)| {
                    *n != node || q.metadata.uid.as_ref().is_some_and(|u| present.contains(u))
                });
                for p in pods {
                    self.upsert_pod(node, p);
                }
            }
            Change::Refused(error) => self.watch_refused("pods", error),
        }
    }

    pub(super) fn upsert_pod(&mut self, node: usize, p: Pod) {
        if let Some(field) = crate::model::missing_identity(&p) {
            tracing::warn!(node = %self.nodes[node].name, "ignoring a pod without {field} from the API server");
            return;
        }
        let uid = p.metadata.uid.clone().unwrap_or_default();
        if self.ignored.contains(&uid) {
            return;
        }
        if let Some(t) = self.tracks.get_mut(&uid) {
            t.pod = p;
            if t.done() || !t.is_target() {
                return;
            }
            if let Some(dt) = t.pod.metadata.deletion_timestamp.as_ref()
                && !t.terminating_seen
            {
                t.terminating_seen = true;
                let left = dt.0.duration_since(self.now.wall).as_secs_f64().max(0.0);
                let pod = t.r.clone();
                if matches!(t.st(), St::Waiting(w) if !w.cause.is_budget()) && t.accepted.is_none()
                {
                    // terminating namespace: the namespace controller deletes it; just wait
                    t.unblock(self.now.instant);
                    self.tracks.set_st_of(&uid, St::Following);
                }
                self.emit(Event::Terminating {
                    node: self.nodes[node].name.clone(),
                    pod,
                    grace_left_seconds: left,
                });
            }
            let t = &self.tracks[&uid];
            if t.action == Action::Wait && select::is_finished(&t.pod) {
                let uid = uid.clone();
                self.tracks.get_mut(&uid).expect("track").reason = "completed".into();
                self.finish(&uid, PodOutcome::Skipped);
            }
            return;
        }
        // A pod we have not seen: it landed on the node during the drain.
        let labels = p.metadata.labels.clone().unwrap_or_default();
        if self.nodes[node].outcome.is_some()
            || self
                .pod_selector
                .as_ref()
                .is_some_and(|s| !s.matches(&labels))
        {
            self.ignored.insert(uid);
            return;
        }
        let lookup = if select::is_daemonset_pod(&p) && !select::is_finished(&p) {
            match self.daemonset_lookup(node, &p) {
                Some(l) => Some(l),
                None => {
                    // selected once the lookup answers
                    self.parked
                        .retain(|(_, q)| q.metadata.uid.as_ref() != Some(&uid));
                    self.parked.push((node, p));
                    return;
                }
            }
        } else {
            None
        };
        let sel = select::select_pod(
            &p,
            &self.opts,
            self.now.wall,
            &|_| lookup.clone().unwrap_or(DaemonSetLookup::Found),
            &self.filters,
        );
        let r = pod_ref(&p);
        let st = match sel.action {
            Action::Evict | Action::Delete => St::Queued,
            Action::Wait => St::Following,
            Action::Skip => St::Done(PodOutcome::Skipped),
            Action::Refuse => St::Done(PodOutcome::Failed {
                error: sel.reason.clone(),
                kind: FailureKind::Refused,
            }),
        };
        self.seq += 1;
        let t = new_track(
            uid.clone(),
            node,
            p,
            sel.action,
            sel.reason.clone(),
            st.clone(),
            self.seq,
        );
        let ix = self.tracks.insert(t);
        self.tracks.at_mut(ix).protected_until = sel.protected_until;
        self.nodes[node].order.push(ix);
        self.nodes[node].open.push(ix);
        match st {
            St::Queued | St::Following => {
                self.emit(Event::Warning {
                    node: self.nodes[node].name.clone(),
                    message: format!(
                        "pod {r} landed on the node during the drain; draining it too"
                    ),
                });
                self.hold_if_protected(ix);
            }
            St::Done(PodOutcome::Skipped) => self.emit(Event::Skipped {
                node: self.nodes[node].name.clone(),
                pod: r,
                reason: sel.reason,
            }),
            St::Done(PodOutcome::Failed { error, kind }) => self.emit(Event::PodFailed {
                node: self.nodes[node].name.clone(),
                pod: r,
                error,
                kind,
            }),
            _ => {}
        }
    }

    /// The DaemonSet that controls a pod, if known; otherwise asks for it (once) and gives None.
    fn daemonset_lookup(&mut self, node: usize, p: &Pod) -> Option<DaemonSetLookup> {
        let key = daemonset_key(p);
        if let Some(l) = self.ds_cache.get(&key) {
            return Some(l.clone());
        }
        if self.ds_pending.insert(key.clone()) {
            self.out.push(Command::LookUpDaemonSet {
                node,
                namespace: key.0,
                name: key.1,
            });
        }
        None
    }

    /// A DaemonSet lookup answered: the pods waiting for it are taken in.
    pub(super) fn on_daemonset(
        &mut self,
        namespace: String,
        name: String,
        lookup: DaemonSetLookup,
    ) {
        let key = (namespace, name);
        self.ds_pending.remove(&key);
        self.ds_cache.insert(key.clone(), lookup);
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|(_, p)| daemonset_key(p) == key);
        self.parked = waiting;
        for (node, p) in ready {
            self.upsert_pod(node, p);
        }
    }

    /// True while a pod waits for its DaemonSet's lookup.
    pub(super) fn is_parked(&self, uid: &str) -> bool {
        self.parked
            .iter()
            .any(|(_, p)| p.metadata.uid.as_deref() == Some(uid))
    }

    pub(super) fn skip_stale_terminating(&mut self) {
        let Some(limit) = self.opts.skip_wait_for_delete_timeout else {
            return;
        };
        let now = self.now.wall;
        let stale: Vec<String> = self
            .live()
            .filter(|(_, t)| t.is_target() && matches!(t.st(), St::Following | St::Waiting(_)))
            .filter(|(_, t)| {
                select::seconds_since_deletion(&t.pod, now)
                    .is_some_and(|s| s.floor() > limit.as_secs() as f64)
            })
            .map(|(u, _)| u.clone())
            .collect();
        for uid in stale {
            let t = self.tracks.get_mut(&uid).expect("track");
            t.reason = format!(
                "deletionTimestamp older than {} seconds, skipping",
                limit.as_secs()
            );
            self.finish(&uid, PodOutcome::Skipped);
        }
    }
}

/// The (namespace, name) of the DaemonSet that controls a pod.
fn daemonset_key(p: &Pod) -> (String, String) {
    (
        p.metadata.namespace.clone().unwrap_or_default(),
        select::controller_of(p)
            .map(|o| o.name.clone())
            .unwrap_or_default(),
    )
}
