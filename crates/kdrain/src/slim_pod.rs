//! The capacity read's pods, read slim: of a pod bound to a node only what placement keeps
//! ([`Resident`]) is deserialized from the LIST's JSON, instead of a whole k8s-openapi `Pod`
//! (status, container statuses, timestamps) per pod of the cluster. A pod not bound to a node
//! yet is read whole: placing it needs its whole spec. Both go through the same
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

use crate::placement::Resident;

#[derive(Deserialize)]
struct Slim {
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

/// Reads one pod of a LIST's items.
pub(crate) fn read(raw: &RawValue) -> Result<Read, serde_json::Error> {
    let slim: Slim = serde_json::from_str(raw.get())?;
    let bound = slim.spec.as_ref().is_some_and(|s| s.node_name.is_some());
    if !bound {
        return Ok(match slim.metadata.deletion_timestamp {
            None => Read::Pending(Box::new(serde_json::from_str(raw.get())?)),
            Some(_) => Read::Gone,
        });
    }
    let m = slim.metadata;
    let spec = slim.spec.map(SlimSpec::into_spec).unwrap_or_default();
    Ok(Read::Bound(Resident::from_spec(
        &spec,
        m.uid.unwrap_or_default(),
        m.namespace,
        m.name.as_deref(),
        m.labels.unwrap_or_default(),
        m.deletion_timestamp.is_some(),
    )))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn raw(v: &serde_json::Value) -> Box<RawValue> {
        RawValue::from_string(v.to_string()).unwrap()
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
