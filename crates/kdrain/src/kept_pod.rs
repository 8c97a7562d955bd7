//! The pods kdrain keeps: every pod it reads through a LIST or a watch (the plan's LISTs of the
//! target nodes, the dispatcher's watch events, catch-up and final LISTs, relists after a 410) is
//! read from the API's JSON straight into what kdrain reads of a pod: its metadata without
//! `managedFields`, its whole spec, and of its status only the phase, the conditions (Ready and
//! when it last changed) and the start time. The rest of a running pod's status (container
//! statuses, IPs, QoS class...) and its managed fields are most of its JSON on a real cluster:
//! the parser skips them, they are never allocated. [`ReadPod`] is that reading; turned into a
//! k8s-openapi [`Pod`] it is the pod kdrain keeps.

use std::collections::BTreeMap;

use k8s_openapi::Resource;
use k8s_openapi::api::core::v1::{Pod, PodCondition, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::Deserialize;

/// A pod as kdrain reads it: [`Pod`]'s JSON, only what kdrain keeps of it deserialized.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "Wire")]
pub(crate) struct ReadPod(Pod);

impl From<ReadPod> for Pod {
    fn from(read: ReadPod) -> Pod {
        read.0
    }
}

/// The JSON of a pod, as [`ReadPod`] reads it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    api_version: Option<String>,
    kind: Option<String>,
    metadata: Option<Meta>,
    spec: Option<PodSpec>,
    status: Option<Status>,
}

/// `ObjectMeta` without `managedFields`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    annotations: Option<BTreeMap<String, String>>,
    creation_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
    deletion_timestamp: Option<Time>,
    finalizers: Option<Vec<String>>,
    generate_name: Option<String>,
    generation: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    name: Option<String>,
    namespace: Option<String>,
    owner_references: Option<Vec<OwnerReference>>,
    resource_version: Option<String>,
    self_link: Option<String>,
    uid: Option<String>,
}

/// What kdrain reads of a pod's status.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    phase: Option<String>,
    conditions: Option<Vec<PodCondition>>,
    start_time: Option<Time>,
}

impl TryFrom<Wire> for ReadPod {
    type Error = String;

    /// Refuses what is not a pod, as k8s-openapi's `Pod` does (an object of a LIST's items may
    /// leave out its `apiVersion` and `kind`).
    fn try_from(w: Wire) -> Result<ReadPod, String> {
        for (got, want) in [(&w.api_version, Pod::API_VERSION), (&w.kind, Pod::KIND)] {
            if let Some(got) = got.as_deref().filter(|g| *g != want) {
                return Err(format!("invalid value: string {got:?}, expected {want}"));
            }
        }
        let metadata = w.metadata.map(Meta::into_meta).unwrap_or_default();
        let status = w.status.map(|s| PodStatus {
            phase: s.phase,
            conditions: s.conditions,
            start_time: s.start_time,
            ..Default::default()
        });
        Ok(ReadPod(Pod {
            metadata,
            spec: w.spec,
            status,
        }))
    }
}

impl Meta {
    fn into_meta(self) -> ObjectMeta {
        ObjectMeta {
            annotations: self.annotations,
            creation_timestamp: self.creation_timestamp,
            deletion_grace_period_seconds: self.deletion_grace_period_seconds,
            deletion_timestamp: self.deletion_timestamp,
            finalizers: self.finalizers,
            generate_name: self.generate_name,
            generation: self.generation,
            labels: self.labels,
            managed_fields: None,
            name: self.name,
            namespace: self.namespace,
            owner_references: self.owner_references,
            resource_version: self.resource_version,
            self_link: self.self_link,
            uid: self.uid,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The pod kdrain keeps, made from a pod read whole: what [`ReadPod`] must equal.
    fn pruned(mut pod: Pod) -> Pod {
        pod.metadata.managed_fields = None;
        pod.status = pod.status.map(|s| PodStatus {
            phase: s.phase,
            conditions: s.conditions,
            start_time: s.start_time,
            ..Default::default()
        });
        pod
    }

    fn read(v: &serde_json::Value) -> Result<Pod, serde_json::Error> {
        serde_json::from_str::<ReadPod>(&v.to_string()).map(Pod::from)
    }

    /// A running pod as a real API server writes it, status and managed fields included.
    fn running() -> serde_json::Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "web-1", "namespace": "shop", "uid": "u-1", "resourceVersion": "42",
                "generateName": "web-", "generation": 1, "selfLink": "/api/v1/namespaces/shop/pods/web-1",
                "labels": {"app": "web"}, "annotations": {"kdrain.io/do-not-disrupt": "true"},
                "creationTimestamp": "2026-12-04T07:00:00Z",
                "deletionTimestamp": "2026-12-04T08:00:00Z", "deletionGracePeriodSeconds": 30,
                "finalizers": ["example.com/keep"],
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc",
                                     "uid": "rs-1", "controller": true, "blockOwnerDeletion": true}],
                "managedFields": [{"manager": "kubelet", "operation": "Update", "apiVersion": "v1",
                                   "time": "2026-12-04T07:00:01Z", "fieldsType": "FieldsV1",
                                   "fieldsV1": {"f:status": {"f:conditions": {}}}, "subresource": "status"}]
            },
            "spec": {
                "nodeName": "n1", "terminationGracePeriodSeconds": 45,
                "containers": [{"name": "app", "image": "web:1",
                                "resources": {"requests": {"cpu": "500m"}}}],
                "volumes": [{"name": "scratch", "emptyDir": {}}],
                "tolerations": [{"operator": "Exists"}]
            },
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-04T07:00:09Z"},
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-12-04T07:00:00Z"}
                ],
                "startTime": "2026-12-04T07:00:01Z",
                "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}],
                "podIP": "10.1.0.7", "podIPs": [{"ip": "10.1.0.7"}], "qosClass": "Burstable",
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "image": "web:1",
                                       "imageID": "sha256:0", "containerID": "containerd://0",
                                       "started": true, "state": {"running": {"startedAt": "2026-12-04T07:00:02Z"}}}],
                "initContainerStatuses": []
            }
        })
    }

    #[test]
    fn a_pod_read_slim_is_the_whole_pod_pruned() {
        for v in [
            running(),
            json!({"metadata": {"name": "bare", "namespace": "ns", "uid": "u"}}),
            json!({"metadata": null, "spec": null, "status": null}),
            json!({"status": {"phase": "Pending"}, "metadata": {"name": "p"}, "spec": {"containers": []}}),
            json!({"status": {"conditions": [{"type": "Ready"}]}}),
            json!({}),
        ] {
            let whole: Pod = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(read(&v).unwrap(), pruned(whole), "{v}");
        }
    }

    #[test]
    fn every_field_kdrain_reads_survives_and_the_rest_is_gone() {
        let whole: Pod = serde_json::from_value(running()).unwrap();
        let kept = read(&running()).unwrap();
        // what the plan, the budgets, the opt-out and the dispatcher read
        assert_eq!(kept.metadata.name, whole.metadata.name);
        assert_eq!(kept.metadata.namespace, whole.metadata.namespace);
        assert_eq!(kept.metadata.uid, whole.metadata.uid);
        assert_eq!(
            kept.metadata.resource_version,
            whole.metadata.resource_version
        );
        assert_eq!(kept.metadata.labels, whole.metadata.labels);
        assert_eq!(kept.metadata.annotations, whole.metadata.annotations);
        assert_eq!(
            kept.metadata.owner_references,
            whole.metadata.owner_references
        );
        assert_eq!(
            kept.metadata.creation_timestamp,
            whole.metadata.creation_timestamp
        );
        assert_eq!(
            kept.metadata.deletion_timestamp,
            whole.metadata.deletion_timestamp
        );
        assert_eq!(
            kept.metadata.deletion_grace_period_seconds,
            whole.metadata.deletion_grace_period_seconds
        );
        assert_eq!(kept.metadata.finalizers, whole.metadata.finalizers);
        assert_eq!(kept.spec, whole.spec);
        let (k, w) = (kept.status.unwrap(), whole.status.unwrap());
        assert_eq!(k.phase.as_deref(), Some("Running"));
        assert_eq!(k.conditions, w.conditions);
        assert_eq!(k.start_time, w.start_time);
        assert_eq!(
            crate::plan::ready_after_start(&read(&running()).unwrap()),
            Some(8.0)
        );
        // what nothing reads is not kept
        assert!(kept.metadata.managed_fields.is_none());
        assert!(w.container_statuses.is_some() && k.container_statuses.is_none());
        assert!(k.host_ips.is_none() && k.pod_ips.is_none() && k.pod_ip.is_none());
        assert!(k.qos_class.is_none() && k.init_container_statuses.is_none());
    }

    #[test]
    fn what_is_not_a_pod_is_refused_as_the_whole_pod_refuses_it() {
        for v in [
            json!({"kind": "Node", "metadata": {"name": "n1"}}),
            json!({"apiVersion": "apps/v1", "kind": "Pod"}),
            json!({"metadata": 3}),
            json!({"status": {"phase": 3}}),
            json!([]),
        ] {
            assert!(serde_json::from_value::<Pod>(v.clone()).is_err(), "{v}");
            assert!(read(&v).is_err(), "{v}");
        }
    }
}
