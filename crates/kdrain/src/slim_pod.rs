//! The capacity read's pods, read slim: of a pod bound to a node only what placement keeps
//! ([`Resident`]) is deserialized from the LIST's JSON, in one pass over each page, instead of
//! a whole k8s-openapi `Pod` (status, container statuses, timestamps) per pod of the cluster.
//! A pod not bound to a node yet is read whole from the page's text: placing it needs its whole
//! spec. Both go through the same
//! [`Resident::from_spec`] and the same request arithmetic as a whole `Pod`, so the verdicts
//! do not depend on how the pod was read.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerPort, Pod, PodAntiAffinity, PodSpec, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Deserialize;
use serde::de::IgnoredAny;

use serde_json::value::RawValue;

use crate::resident::{Interner, Resident, Residents};
use crate::watch::raw_items;

/// A pod read slim: what [`read`] deserializes of each item of a LIST.
#[derive(Deserialize)]
pub(crate) struct Slim {
    #[serde(default)]
    metadata: SlimMeta,
    #[serde(default)]
    spec: Option<SlimSpec>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SlimMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    deletion_timestamp: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SlimSpec {
    node_name: Option<String>,
    #[serde(default)]
    containers: Option<Vec<SlimContainer>>,
    init_containers: Option<Vec<SlimContainer>>,
    overhead: Option<BTreeMap<String, Quantity>>,
    affinity: Option<SlimAffinity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SlimContainer {
    #[serde(default)]
    name: String,
    resources: Option<SlimResources>,
    restart_policy: Option<String>,
    ports: Option<Vec<ContainerPort>>,
}

#[derive(Deserialize)]
struct SlimResources {
    requests: Option<BTreeMap<String, Quantity>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SlimAffinity {
    pod_anti_affinity: Option<PodAntiAffinity>,
}

impl SlimContainer {
    fn into_container(self) -> Container {
        Container {
            name: self.name,
            resources: self.resources.map(|r| ResourceRequirements {
                requests: r.requests,
                ..Default::default()
            }),
            restart_policy: self.restart_policy,
            ports: self.ports,
            ..Default::default()
        }
    }
}

impl SlimSpec {
    /// A `PodSpec` holding only what placement reads of a bound pod.
    fn into_spec(self) -> PodSpec {
        let containers = |cs: Option<Vec<SlimContainer>>| {
            cs.map(|cs| cs.into_iter().map(SlimContainer::into_container).collect())
        };
        PodSpec {
            node_name: self.node_name,
            containers: containers(self.containers).unwrap_or_default(),
            init_containers: containers(self.init_containers),
            overhead: self.overhead,
            affinity: self.affinity.map(|a| Affinity {
                pod_anti_affinity: a.pod_anti_affinity,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// What the capacity read keeps of the pods, page by page.
#[derive(Default)]
pub(crate) struct Sink {
    /// The pods bound to a node, summarized.
    pub(crate) residents: Residents,
    /// One line per pod whose requests do not parse.
    pub(crate) errors: Vec<String>,
    /// The pods not bound yet (not being deleted), whole.
    pub(crate) pending: Vec<Pod>,
    /// The first pod that could not be read whole.
    pub(crate) unreadable: Option<serde_json::Error>,
    interner: Interner,
}

impl Sink {
    /// Takes one page: `page` its items read slim, `json` the page's JSON, from which a pod not
    /// bound yet is read whole (the page's items split once, only when a page has such a pod).
    pub(crate) fn page(&mut self, json: &[u8], page: Vec<Slim>) {
        let mut raw: Option<Result<Vec<Box<RawValue>>, String>> = None;
        for (i, slim) in page.into_iter().enumerate() {
            let whole = || {
                let items = raw.get_or_insert_with(|| raw_items(json).map_err(|e| e.to_string()));
                match items.as_ref().map(|items| items.get(i)) {
                    Ok(Some(item)) => serde_json::from_str(item.get()),
                    Ok(None) => Err(serde::de::Error::custom("the page's item is missing")),
                    Err(e) => Err(serde::de::Error::custom(e)),
                }
            };
            match slim.into_read(whole) {
                Ok(Read::Bound(Ok(r))) => self.residents.push(self.interner.intern(r)),
                Ok(Read::Bound(Err(e))) => self.errors.push(e),
                Ok(Read::Pending(pod)) => self.pending.push(*pod),
                Ok(Read::Gone) => {}
                Err(e) => {
                    self.unreadable.get_or_insert(e);
                }
            }
        }
    }
}

/// One pod of the capacity read.
#[derive(Debug)]
pub(crate) enum Read {
    /// Bound to a node: its summary, or the line naming a request that does not parse.
    Bound(Result<Resident, String>),
    /// Not bound yet and not being deleted: it takes room first.
    Pending(Box<Pod>),
    /// Not bound and being deleted: it will take no room.
    Gone,
}

impl Slim {
    /// What the capacity read keeps of the pod; `whole` reads the same item as a whole `Pod`
    /// (called only for a pod not bound to a node yet and not being deleted).
    pub(crate) fn into_read(
        self,
        whole: impl FnOnce() -> Result<Pod, serde_json::Error>,
    ) -> Result<Read, serde_json::Error> {
        let bound = self.spec.as_ref().is_some_and(|s| s.node_name.is_some());
        if !bound {
            return Ok(match self.metadata.deletion_timestamp {
                None => Read::Pending(Box::new(whole()?)),
                Some(_) => Read::Gone,
            });
        }
        Ok(Read::Bound(self.into_resident()))
    }

    fn into_resident(self) -> Result<Resident, String> {
        let m = self.metadata;
        let spec = self.spec.map(SlimSpec::into_spec).unwrap_or_default();
        Resident::from_spec(
            &spec,
            m.uid.unwrap_or_default(),
            m.namespace,
            m.name.as_deref(),
            m.labels.unwrap_or_default(),
            m.deletion_timestamp.is_some(),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn raw(v: &serde_json::Value) -> Box<RawValue> {
        RawValue::from_string(v.to_string()).unwrap()
    }

    /// One pod of a LIST's items, as the capacity read reads it.
    fn read(raw: &RawValue) -> Result<Read, serde_json::Error> {
        let slim: Slim = serde_json::from_str(raw.get())?;
        slim.into_read(|| serde_json::from_str(raw.get()))
    }

    #[test]
    fn a_bound_pod_read_slim_gives_the_summary_of_the_whole_pod() {
        let pod = json!({
            "metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1",
                         "labels": {"app": "web"}, "deletionTimestamp": "2026-12-04T08:00:00Z",
                         "creationTimestamp": "2026-12-04T07:00:00Z"},
            "spec": {
                "nodeName": "n1",
                "containers": [
                    {"name": "app", "image": "x", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1"}},
                     "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 53, "hostPort": 53, "protocol": "UDP"}]},
                    {"name": "log", "resources": {"requests": {"cpu": "100m"}}}
                ],
                "initContainers": [
                    {"name": "init", "resources": {"requests": {"cpu": "2"}}},
                    {"name": "proxy", "restartPolicy": "Always", "resources": {"requests": {"memory": "128Mi"}}}
                ],
                "overhead": {"cpu": "10m"},
                "tolerations": [{"operator": "Exists"}],
                "affinity": {
                    "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "Exists"}]}]}},
                    "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}
                }
            },
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-04T07:00:01Z"}]}
        });
        let whole: Pod = serde_json::from_value(pod.clone()).unwrap();
        let Read::Bound(slim) = read(&raw(&pod)).unwrap() else {
            panic!("a bound pod")
        };
        let slim = slim.unwrap();
        assert_eq!(slim, Resident::of(&whole).unwrap());
        assert_eq!(slim.host_ports().len(), 2);
        assert_eq!(slim.anti_affinity().len(), 1);
        assert!(slim.terminating);
        assert_eq!(&*slim.node, "n1");
    }

    #[test]
    fn a_request_that_does_not_parse_is_named_as_for_the_whole_pod() {
        let pod = json!({
            "metadata": {"name": "bad", "namespace": "shop"},
            "spec": {"nodeName": "n1", "containers": [{"name": "app", "resources": {"requests": {"cpu": "lots"}}}]}
        });
        let whole: Pod = serde_json::from_value(pod.clone()).unwrap();
        let Read::Bound(slim) = read(&raw(&pod)).unwrap() else {
            panic!("a bound pod")
        };
        assert_eq!(slim.unwrap_err(), Resident::of(&whole).unwrap_err());
    }

    #[test]
    fn a_page_is_read_slim_and_its_pending_pods_whole() {
        let bound = json!({"metadata": {"name": "b", "namespace": "shop", "uid": "u-b"},
                           "spec": {"nodeName": "n1", "containers": [{"name": "app", "resources": {"requests": {"cpu": "1"}}}]}});
        let bad = json!({"metadata": {"name": "bad", "namespace": "shop"},
                         "spec": {"nodeName": "n1", "containers": [{"name": "app", "resources": {"requests": {"cpu": "lots"}}}]}});
        let pending = json!({"metadata": {"name": "p", "namespace": "shop", "uid": "u-p"},
                             "spec": {"containers": [{"name": "app"}], "nodeSelector": {"disk": "ssd"}},
                             "status": {"phase": "Pending"}});
        let mut leaving = pending.clone();
        leaving["metadata"]["deletionTimestamp"] = json!("2026-12-04T08:00:00Z");
        let page = json!({"kind": "PodList", "metadata": {"resourceVersion": "7"},
                          "items": [bound, pending, bad, leaving]});
        let text = page.to_string();
        let slim: Vec<Slim> = serde_json::from_value(page["items"].clone()).unwrap();
        let mut sink = Sink::default();
        sink.page(text.as_bytes(), slim);
        let bound: Pod = serde_json::from_value(bound).unwrap();
        assert_eq!(sink.residents.len(), 1);
        assert_eq!(sink.residents[0], Resident::of(&bound).unwrap());
        let whole: Pod = serde_json::from_value(pending).unwrap();
        assert_eq!(sink.pending, [whole]);
        assert_eq!(sink.errors.len(), 1);
        assert!(
            sink.errors[0].starts_with("pod shop/bad: "),
            "{:?}",
            sink.errors
        );
        assert!(sink.unreadable.is_none());
    }

    #[test]
    fn a_pod_not_bound_is_read_whole_unless_it_is_being_deleted() {
        let pending = json!({
            "metadata": {"name": "p", "namespace": "shop"},
            "spec": {"containers": [{"name": "app"}], "nodeSelector": {"disk": "ssd"}}
        });
        let Read::Pending(pod) = read(&raw(&pending)).unwrap() else {
            panic!("a pending pod")
        };
        assert_eq!(
            *pod,
            serde_json::from_value::<Pod>(pending.clone()).unwrap()
        );
        let mut leaving = pending;
        leaving["metadata"]["deletionTimestamp"] = json!("2026-12-04T08:00:00Z");
        assert!(matches!(read(&raw(&leaving)).unwrap(), Read::Gone));
        assert!(read(&raw(&json!({"metadata": 3}))).is_err());
    }
}
