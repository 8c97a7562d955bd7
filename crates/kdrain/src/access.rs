//! The permission check before the first write: kdrain asks the API server
//! (SelfSubjectAccessReview) whether its credentials allow every request a drain will send, so a
//! missing right stops the drain before the cordon instead of half-way through it. When the
//! server cannot answer those reviews (not served, forbidden, failing), the rights are tried
//! with the drain's own requests made harmless (`dryRun=All` writes, watches closed at once), so
//! the promise holds there too. Rights the plan's reads have just exercised (its LISTs of pods
//! and budgets) are not asked about again.

use std::collections::BTreeMap;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::{ListParams, PostParams, WatchParams};
use kube::core::Status;

use crate::cordon;
use crate::error::{DrainError, is_namespace_terminating};
use crate::events::PodRef;
use crate::evict::{self, Attempt};
use crate::options::{DrainOptions, DryRun};
use crate::requests::Requests;
use crate::{retry, select};

/// One right a drain needs: a verb on a resource (with its API group and subresource),
/// cluster-wide or in one namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Need {
    /// Kubernetes verb, e.g. `create`.
    pub verb: &'static str,
    /// API group ("" for core).
    pub group: &'static str,
    /// Plural resource, e.g. `pods`.
    pub resource: &'static str,
    /// Subresource or "".
    pub sub: &'static str,
    /// The namespace, or None for cluster-wide.
    pub namespace: Option<String>,
}

impl Need {
    fn new(verb: &'static str, group: &'static str, resource: &'static str) -> Need {
        Need {
            verb,
            group,
            resource,
            sub: "",
            namespace: None,
        }
    }

    fn sub(mut self, sub: &'static str) -> Need {
        self.sub = sub;
        self
    }

    fn r#in(mut self, ns: &str) -> Need {
        self.namespace = Some(ns.to_string());
        self
    }

    /// `pods/eviction`, `poddisruptionbudgets`...
    fn full_resource(&self) -> String {
        if self.sub.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}/{}", self.resource, self.sub)
        }
    }

    /// Removing pods and reading DaemonSets happen per namespace: a RoleBinding may grant them
    /// where the pods are. Everything else must be cluster-wide.
    fn is_namespaced(&self) -> bool {
        matches!(
            (self.verb, self.resource, self.sub),
            ("create", "pods", "eviction") | ("delete", "pods", "") | ("get", "daemonsets", "")
        )
    }

    /// The right, refused by the server to `how` (a harmless request sent to find out).
    fn refused(&self, server: &str, how: &str) -> DrainError {
        DrainError::Forbidden {
            verb: self.verb.to_string(),
            resource: self.full_resource(),
            namespace: self.namespace.clone(),
            message: format!("{server}; found with {how}, before any change"),
        }
    }

    fn forbidden(&self) -> DrainError {
        let scope = match &self.namespace {
            Some(ns) => format!("in namespace {ns}"),
            None => "cluster-wide".to_string(),
        };
        DrainError::Forbidden {
            verb: self.verb.to_string(),
            resource: self.full_resource(),
            namespace: self.namespace.clone(),
            message: format!(
                "the API server's access review denies {} on {} {scope}; checked before any change",
                self.verb,
                self.full_resource()
            ),
        }
    }
}

/// What one review answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allowed,
    Denied,
    /// The review itself failed (not served, forbidden, unreachable): kdrain carries on.
    Unknown,
}

async fn review(client: &kube::Client, need: &Need, req: &Requests) -> Verdict {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let asked = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(need.verb.to_string()),
                group: Some(need.group.to_string()),
                resource: Some(need.resource.to_string()),
                subresource: Some(need.sub.to_string()).filter(|s| !s.is_empty()),
                namespace: need.namespace.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    req.count("create", "selfsubjectaccessreviews");
    match api.create(&PostParams::default(), &asked).await {
        Ok(r) => match r.status {
            Some(s) if s.allowed => Verdict::Allowed,
            Some(s) if s.denied == Some(true) || !s.allowed => Verdict::Denied,
            _ => Verdict::Unknown,
        },
        Err(e) => {
            tracing::debug!(?need, "access review failed, carrying on: {e}");
            Verdict::Unknown
        }
    }
}

async fn review_all(client: &kube::Client, needs: &[Need], req: &Requests) -> Vec<Verdict> {
    join_all(needs.iter().map(|n| review(client, n, req))).await
}

/// The cluster-wide rights a drain of nodes with `opts` needs, in the order they are reported.
fn cluster_needs(opts: &DrainOptions) -> Vec<Need> {
    let mut v = vec![
        Need::new("patch", "", "nodes"),
        Need::new("list", "", "pods"),
        Need::new("watch", "", "pods"),
    ];
    if opts.disable_eviction {
        v.push(Need::new("delete", "", "pods"));
    } else {
        v.push(Need::new("create", "", "pods").sub("eviction"));
        v.push(Need::new("list", "policy", "poddisruptionbudgets"));
        v.push(Need::new("watch", "policy", "poddisruptionbudgets"));
    }
    v.push(Need::new("get", "apps", "daemonsets"));
    v
}

/// The rights of [`cluster_needs`] that the plan's own reads have not already exercised: the
/// LIST of each node's pods was sent with these credentials (a refusal there stopped the drain
/// before this check), and so was the LIST of budgets when `budgets_listed` (a refused one
/// only left a warning, so that right is still asked for). Asking the server again about a
/// request it has just served tells nothing new, and costs a request.
fn unproven_needs(opts: &DrainOptions, budgets_listed: bool) -> Vec<Need> {
    cluster_needs(opts)
        .into_iter()
        .filter(|n| match (n.verb, n.resource) {
            ("list", "pods") => false,
            ("list", "poddisruptionbudgets") => !budgets_listed,
            _ => true,
        })
        .collect()
}

/// Checks, before the cordon, that the credentials allow every request a drain of `nodes`
/// sends, but those the plan's reads already made ([`unproven_needs`]; `budgets_listed`: the
/// plan's LIST of budgets was served). Rights granted only in some namespaces (a RoleBinding)
/// are checked in the namespaces of the pods on the nodes (`found`, from the plan's LIST of
/// each node). Returns the first missing right as [`DrainError::Forbidden`].
///
/// Rights the access reviews cannot answer (reviews not served, forbidden, failing) are tried
/// with the requests themselves, sent so that they change nothing: see [`probe`].
pub(crate) async fn preflight(
    client: &kube::Client,
    opts: &DrainOptions,
    nodes: &[Node],
    found: &OnNodes,
    budgets_listed: bool,
    req: &Requests,
) -> Result<(), DrainError> {
    let needs = unproven_needs(opts, budgets_listed);
    let verdicts = review_all(client, &needs, req).await;
    let mut per_namespace = Vec::new();
    let mut unanswered = Vec::new();
    for (need, verdict) in needs.into_iter().zip(verdicts) {
        match verdict {
            Verdict::Allowed => {}
            Verdict::Unknown => unanswered.push(need),
            Verdict::Denied if need.is_namespaced() => per_namespace.push(need),
            Verdict::Denied => return Err(need.forbidden()),
        }
    }
    if per_namespace.is_empty() && unanswered.is_empty() {
        return Ok(());
    }
    let mut needs = Vec::new();
    for need in per_namespace {
        let namespaces = if need.resource == "daemonsets" {
            found.daemonsets.keys().cloned().collect::<Vec<_>>()
        } else {
            found.removed.keys().cloned().collect()
        };
        needs.extend(namespaces.iter().map(|ns| need.clone().r#in(ns)));
    }
    let verdicts = review_all(client, &needs, req).await;
    for (need, verdict) in needs.into_iter().zip(verdicts) {
        match verdict {
            Verdict::Allowed => {}
            Verdict::Denied => return Err(need.forbidden()),
            Verdict::Unknown => unanswered.push(need),
        }
    }
    if unanswered.is_empty() {
        return Ok(());
    }
    tracing::debug!(
        ?unanswered,
        "access reviews gave no answer: trying the requests with dryRun=All"
    );
    probe(client, opts, nodes, found, &unanswered, req).await
}

/// What a drain of some nodes would touch, from one LIST of each node's pods: per namespace,
/// one pod the drain would remove and one DaemonSet it would look up.
#[derive(Debug, Default)]
pub(crate) struct OnNodes {
    /// Namespace → one pod of it the drain would remove (evict or delete).
    removed: BTreeMap<String, PodRef>,
    /// Namespace → the name of one DaemonSet whose pod runs on the nodes.
    daemonsets: BTreeMap<String, String>,
    /// A node and the resourceVersion of its pod list, to start a watch from.
    watch_from: Option<(String, String)>,
}

impl OnNodes {
    /// What the drain would touch, from the pods of each node's LIST that the pod selector
    /// selects (the plan's inputs) and the LIST's resourceVersion.
    pub(crate) fn from_inputs(inputs: &[crate::plan::NodeInput], rvs: &[String]) -> OnNodes {
        let mut found = OnNodes::default();
        // namespace -> (the pod is not terminating, the pod)
        let mut candidates: BTreeMap<String, (bool, PodRef)> = BTreeMap::new();
        for (input, rv) in inputs.iter().zip(rvs) {
            if found.watch_from.is_none() {
                found.watch_from = Some((input.node.clone(), rv.clone()));
            }
            for p in &input.pods {
                if crate::model::missing_identity(p).is_some() {
                    continue;
                }
                let ns = p.metadata.namespace.clone().unwrap_or_default();
                if select::is_daemonset_pod(p) {
                    if !select::is_finished(p)
                        && let Some(owner) = select::controller_of(p)
                    {
                        found
                            .daemonsets
                            .entry(ns)
                            .or_insert_with(|| owner.name.clone());
                    }
                    continue;
                }
                if select::is_mirror_pod(p) {
                    continue;
                }
                let pod = PodRef {
                    namespace: ns.clone(),
                    name: p.metadata.name.clone().unwrap_or_default(),
                    uid: p.metadata.uid.clone().unwrap_or_default(),
                };
                // the first live pod of each namespace (a terminating one only if none is live)
                let live = p.metadata.deletion_timestamp.is_none();
                match candidates.get(&ns) {
                    Some((true, _)) => {}
                    Some((false, _)) if !live => {}
                    _ => {
                        candidates.insert(ns, (live, pod));
                    }
                }
            }
        }
        found.removed = candidates.into_iter().map(|(ns, (_, p))| (ns, p)).collect();
        found
    }
}

/// What one probe learned.
#[derive(Debug)]
enum Probed {
    /// The server authorized the request (whatever it answered after that).
    Passed,
    /// 403 for lack of permission, with the server's message.
    Refused(String),
    /// No clear answer (transport failure, server error): the real request will tell.
    Inconclusive,
}

/// Tries each right in `needs` with the request the drain would send, made harmless: the
/// cordon PATCH, one eviction (or DELETE) per namespace with pods to remove, all with
/// `dryRun=All` (a real API server authorizes them like the real writes and persists nothing),
/// a watch of pods and of budgets that is closed as soon as the server answers, one LIST of
/// budgets (one item, for the watch's resourceVersion), one GET of a DaemonSet per namespace.
/// The pod LIST (and the budget LIST, when the plan's was served) are not among `needs`: the
/// plan sent them ([`unproven_needs`]). A 403 stops the drain as [`DrainError::Forbidden`]
/// before the cordon; any other answer lets it go on.
async fn probe(
    client: &kube::Client,
    opts: &DrainOptions,
    nodes: &[Node],
    found: &OnNodes,
    needs: &[Need],
    req: &Requests,
) -> Result<(), DrainError> {
    let mut pdb_rv: Option<String> = None;
    for need in needs {
        match (need.verb, need.resource, need.sub) {
            ("patch", "nodes", "") => {
                // only nodes not cordoned yet get the patch (cordon sends nothing for the others)
                let tried = join_all(
                    nodes
                        .iter()
                        .map(|n| cordon::cordon(client, n, DryRun::Server, req)),
                )
                .await;
                for r in tried {
                    match r {
                        Ok(_) => {}
                        Err(DrainError::Forbidden { message, .. }) => {
                            return Err(need.refused(&message, "a dry-run cordon"));
                        }
                        Err(e) => tracing::debug!("the dry-run cordon failed, carrying on: {e}"),
                    }
                }
            }
            ("watch", "pods", "") => {
                let Some((node, rv)) = &found.watch_from else {
                    continue;
                };
                let api: Api<Pod> = Api::all(client.clone());
                let fields = format!("spec.nodeName={node}");
                let probed = watch_answer(client, &api, Some(&fields), rv, req, "pods").await;
                if let Probed::Refused(m) = probed {
                    return Err(need.refused(&m, "a watch closed at once"));
                }
            }
            ("create", "pods", "eviction") | ("delete", "pods", "") => {
                let pods: Vec<&PodRef> = match &need.namespace {
                    Some(ns) => found.removed.get(ns).into_iter().collect(),
                    None => found.removed.values().collect(),
                };
                let tried = join_all(pods.iter().map(|p| async {
                    let answer = if need.verb == "delete" {
                        evict::delete(client, p, opts.grace_period, DryRun::Server, req).await
                    } else {
                        evict::evict(client, p, opts.grace_period, DryRun::Server, req).await
                    };
                    (*p, answer)
                }))
                .await;
                if let Some((p, Attempt::Forbidden { message })) = tried
                    .into_iter()
                    .find(|(_, a)| matches!(a, Attempt::Forbidden { .. }))
                {
                    let how = if need.verb == "delete" {
                        "a dry-run DELETE"
                    } else {
                        "a dry-run eviction"
                    };
                    return Err(need.clone().r#in(&p.namespace).refused(&message, how));
                }
            }
            ("list", "poddisruptionbudgets", "") | ("watch", "poddisruptionbudgets", "") => {
                let api: Api<PodDisruptionBudget> = Api::all(client.clone());
                let rv = match &pdb_rv {
                    Some(rv) => rv.clone(),
                    None => {
                        let one = ListParams::default().limit(1);
                        let listed = retry::idempotent("list budgets", || {
                            req.count("list", "poddisruptionbudgets");
                            api.list(&one)
                        })
                        .await;
                        match listed {
                            Ok(l) => l.metadata.resource_version.unwrap_or_default(),
                            Err(kube::Error::Api(s))
                                if s.code == 403 && !is_namespace_terminating(&s) =>
                            {
                                let list = Need::new("list", "policy", "poddisruptionbudgets");
                                return Err(list.refused(&s.message, "a LIST of one budget"));
                            }
                            Err(e) => {
                                tracing::debug!("listing budgets failed, carrying on: {e}");
                                String::new()
                            }
                        }
                    }
                };
                pdb_rv = Some(rv.clone());
                if need.verb == "watch" {
                    let probed =
                        watch_answer(client, &api, None, &rv, req, "poddisruptionbudgets").await;
                    if let Probed::Refused(m) = probed {
                        return Err(need.refused(&m, "a watch closed at once"));
                    }
                }
            }
            ("get", "daemonsets", "") => {
                let daemonsets: Vec<(&String, &String)> = match &need.namespace {
                    Some(ns) => found.daemonsets.get_key_value(ns).into_iter().collect(),
                    None => found.daemonsets.iter().collect(),
                };
                let tried = join_all(
                    daemonsets
                        .iter()
                        .map(|(ns, name)| get_daemonset(client, ns, name, req)),
                )
                .await;
                if let Some(((ns, _), Probed::Refused(m))) = daemonsets
                    .iter()
                    .zip(tried)
                    .find(|(_, p)| matches!(p, Probed::Refused(_)))
                {
                    return Err(need.clone().r#in(ns).refused(&m, "a GET of one DaemonSet"));
                }
            }
            _ => tracing::debug!(?need, "no probe for this right"),
        }
    }
    Ok(())
}

/// GETs one DaemonSet (a read, as the plan does).
async fn get_daemonset(client: &kube::Client, ns: &str, name: &str, req: &Requests) -> Probed {
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), ns);
    let got = retry::idempotent("get daemonset", || {
        req.count("get", "daemonsets");
        api.get(name)
    })
    .await;
    match got {
        Ok(_) => Probed::Passed,
        Err(kube::Error::Api(s)) if s.code == 403 && !is_namespace_terminating(&s) => {
            Probed::Refused(s.message)
        }
        Err(kube::Error::Api(_)) => Probed::Passed,
        Err(e) => {
            tracing::debug!("the DaemonSet probe failed, carrying on: {e}");
            Probed::Inconclusive
        }
    }
}

/// Starts a watch (from `rv`, ending on the server after one second) and closes it as soon as
/// the answer's status arrives: a 2xx proves the right, a 403 refuses it. Nothing is read from
/// the stream.
async fn watch_answer<K: kube::Resource>(
    client: &kube::Client,
    api: &Api<K>,
    fields: Option<&str>,
    rv: &str,
    req: &Requests,
    resource: &str,
) -> Probed {
    let mut wp = WatchParams::default().timeout(1);
    if let Some(f) = fields {
        wp = wp.fields(f);
    }
    let request = match kube::core::Request::new(api.resource_url()).watch(&wp, rv) {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!("cannot build the watch probe: {e}");
            return Probed::Inconclusive;
        }
    };
    req.count("watch", resource);
    let answer = tokio::time::timeout(
        retry::ATTEMPT_TIMEOUT,
        client.send(request.map(kube::client::Body::from)),
    )
    .await;
    let res = match answer {
        Ok(Ok(res)) => res,
        Ok(Err(e)) => {
            tracing::debug!("the watch probe failed, carrying on: {e}");
            return Probed::Inconclusive;
        }
        Err(_) => return Probed::Inconclusive,
    };
    let code = res.status().as_u16();
    if code != 403 {
        // the stream (if any) is closed here, unread
        return if (200..300).contains(&code) {
            Probed::Passed
        } else {
            Probed::Inconclusive
        };
    }
    let body = tokio::time::timeout(retry::ATTEMPT_TIMEOUT, res.into_body().collect_bytes())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let status: Option<Status> = serde_json::from_slice(&body).ok();
    match status {
        Some(s) if is_namespace_terminating(&s) => Probed::Passed,
        Some(s) if !s.message.is_empty() => Probed::Refused(s.message),
        _ => Probed::Refused(String::from_utf8_lossy(&body).trim().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_follow_the_options() {
        let mut opts = DrainOptions::kubectl();
        let names = |v: Vec<Need>| -> Vec<String> {
            v.iter()
                .map(|n| format!("{} {}", n.verb, n.full_resource()))
                .collect()
        };
        assert_eq!(
            names(cluster_needs(&opts)),
            [
                "patch nodes",
                "list pods",
                "watch pods",
                "create pods/eviction",
                "list poddisruptionbudgets",
                "watch poddisruptionbudgets",
                "get daemonsets"
            ]
        );
        opts.disable_eviction = true;
        assert_eq!(
            names(cluster_needs(&opts)),
            [
                "patch nodes",
                "list pods",
                "watch pods",
                "delete pods",
                "get daemonsets"
            ]
        );
        // the plan's LISTs were served: the pod LIST always (else no check), the budgets' when
        // listed
        opts.disable_eviction = false;
        assert_eq!(
            names(unproven_needs(&opts, true)),
            [
                "patch nodes",
                "watch pods",
                "create pods/eviction",
                "watch poddisruptionbudgets",
                "get daemonsets"
            ]
        );
        assert_eq!(
            names(unproven_needs(&opts, false)),
            [
                "patch nodes",
                "watch pods",
                "create pods/eviction",
                "list poddisruptionbudgets",
                "watch poddisruptionbudgets",
                "get daemonsets"
            ]
        );
        opts.disable_eviction = true;
        assert_eq!(
            names(unproven_needs(&opts, false)),
            ["patch nodes", "watch pods", "delete pods", "get daemonsets"]
        );
        let e = Need::new("create", "", "pods")
            .sub("eviction")
            .r#in("shop")
            .forbidden();
        assert_eq!(e.kind(), crate::error::ErrorKind::PermissionDenied);
        assert!(
            e.to_string()
                .starts_with("permission denied: needs create on pods/eviction in namespace shop"),
            "{e}"
        );
    }
}
