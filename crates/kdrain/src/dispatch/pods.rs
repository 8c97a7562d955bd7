//! What the pod watches say: pods going, terminating, completing, and pods that land on a node
//! during its drain (selected like the plan's, DaemonSet owners looked up).

use std::collections::HashSet;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::time::Instant;

use super::Dispatcher;
use super::track::{St, new_track};
use crate::events::Event;
use crate::plan::{Action, pod_ref};
use crate::report::PodOutcome;
use crate::requests::Requests;
use crate::select::{self, DaemonSetLookup};
use crate::watch::{Change, Seen};

impl Dispatcher {
    pub(super) async fn on_pods(&mut self, s: Seen<Pod>) {
        let node = s.source;
        match s.change {
            Change::Upsert(p) => self.upsert_pod(node, p).await,
            Change::Removed(p) => {
                let uid = p.metadata.uid.clone().unwrap_or_default();
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
                for p in pods {
                    self.upsert_pod(node, p).await;
                }
            }
        }
    }
    pub(super) async fn upsert_pod(&mut self, node: usize, p: Pod) {
        if let Some(field) = crate::drainer::missing_identity(&p) {
            tracing::warn!(node = %self.nodes[node].name, "ignoring a pod without {field} from the API server");
            return;
        }
        let uid = p.metadata.uid.clone().unwrap_or_default();
        if self.ignored.contains(&uid) {
            return;
        }
        let node_name = self.nodes[node].name.clone();
        if let Some(t) = self.tracks.get_mut(&uid) {
            t.pod = p;
            if t.done() || !t.is_target() {
                return;
            }
            if let Some(dt) = t.pod.metadata.deletion_timestamp.as_ref()
                && !t.terminating_seen
            {
                t.terminating_seen = true;
                let left =
                    dt.0.duration_since(jiff::Timestamp::now())
                        .as_secs_f64()
                        .max(0.0);
                let pod = t.r.clone();
                if t.st == St::Retry && !t.by_budget && t.accepted.is_none() {
                    // terminating namespace: the namespace controller deletes it; just wait
                    t.st = St::Following;
                    t.unblock(Instant::now());
                }
                self.sh.emit(Event::Terminating {
                    node: node_name,
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
                .sh
                .pod_selector
                .as_ref()
                .is_some_and(|s| !s.matches(&labels))
        {
            self.ignored.insert(uid);
            return;
        }
        let lookup = if select::is_daemonset_pod(&p) && !select::is_finished(&p) {
            Some(self.daemonset_lookup(node, &p).await)
        } else {
            None
        };
        let sel = select::select_pod(
            &p,
            &self.sh.opts,
            jiff::Timestamp::now(),
            &|_| lookup.clone().unwrap_or(DaemonSetLookup::Found),
            &self.sh.filters,
        );
        let r = pod_ref(&p);
        let st = match sel.action {
            Action::Evict | Action::Delete => St::Queued,
            Action::Wait => St::Following,
            Action::Skip => St::Done(PodOutcome::Skipped),
            Action::Refuse => St::Done(PodOutcome::Failed {
                error: sel.reason.clone(),
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
                self.sh.emit(Event::Warning {
                    node: node_name,
                    message: format!(
                        "pod {r} landed on the node during the drain; draining it too"
                    ),
                });
                self.hold_if_protected(ix);
            }
            St::Done(PodOutcome::Skipped) => self.sh.emit(Event::Skipped {
                node: node_name,
                pod: r,
                reason: sel.reason,
            }),
            St::Done(PodOutcome::Failed { error }) => self.sh.emit(Event::PodFailed {
                node: node_name,
                pod: r,
                error,
            }),
            _ => {}
        }
    }
    pub(super) async fn daemonset_lookup(&mut self, node: usize, p: &Pod) -> DaemonSetLookup {
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let name = select::controller_of(p)
            .map(|o| o.name.clone())
            .unwrap_or_default();
        if let Some(l) = self.sh.ds_cache.get(&(ns.clone(), name.clone())) {
            return l.clone();
        }
        let l = lookup_daemonset(&self.sh.client, &ns, &name, &self.nodes[node].req).await;
        self.sh.ds_cache.insert((ns, name), l.clone());
        l
    }
    pub(super) fn skip_stale_terminating(&mut self) {
        let Some(limit) = self
            .sh
            .opts
            .skip_wait_for_delete_timeout
            .filter(|d| !d.is_zero())
        else {
            return;
        };
        let now = jiff::Timestamp::now();
        let stale: Vec<String> = self
            .live()
            .filter(|(_, t)| t.is_target() && matches!(t.st, St::Following | St::Retry))
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

/// GETs the DaemonSet that controls a pod (as kubectl does) and says whether it exists.
pub(crate) async fn lookup_daemonset(
    client: &kube::Client,
    ns: &str,
    name: &str,
    req: &Requests,
) -> DaemonSetLookup {
    use k8s_openapi::api::apps::v1::DaemonSet;
    let api = Api::<DaemonSet>::namespaced(client.clone(), ns);
    let got = crate::retry::idempotent("get daemonset", || {
        req.count("get", "daemonsets");
        api.get(name)
    })
    .await;
    match got {
        Ok(_) => DaemonSetLookup::Found,
        Err(kube::Error::Api(s)) if s.code == 404 => DaemonSetLookup::NotFound {
            message: if s.message.is_empty() {
                format!("daemonsets.apps \"{name}\" not found")
            } else {
                s.message
            },
        },
        Err(kube::Error::Api(s)) => DaemonSetLookup::Error { message: s.message },
        Err(e) => DaemonSetLookup::Error {
            message: e.to_string(),
        },
    }
}
