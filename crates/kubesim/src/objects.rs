//! Builders of the JSON objects the simulator creates itself: nodes, namespaces, pods from
//! templates, workloads and budgets, and their simulated Running/Ready status.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::meta;

/// How a simulated pod behaves (from its workload in the scenario).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodParams {
    /// Seconds the app takes to stop once asked (capped by the grace period).
    pub termination_seconds: f64,
    /// Seconds from start to Ready.
    pub ready_seconds: f64,
}

impl Default for PodParams {
    fn default() -> Self {
        PodParams {
            termination_seconds: 0.0,
            ready_seconds: 0.0,
        }
    }
}

/// A Node object.
pub fn node(
    name: &str,
    labels: &BTreeMap<String, String>,
    max_pods: usize,
    unschedulable: bool,
    index: usize,
) -> Value {
    let mut l = labels.clone();
    l.insert("kubernetes.io/hostname".into(), name.into());
    l.insert("kubernetes.io/os".into(), "linux".into());
    let now = meta::now_rfc3339();
    let ip = format!(
        "10.{}.{}.{}",
        (index >> 16) & 255,
        (index >> 8) & 255,
        index & 255
    );
    let mut spec = json!({"podCIDR": format!("10.244.{}.0/24", index % 256)});
    if unschedulable {
        spec["unschedulable"] = json!(true);
        spec["taints"] = json!([{"key":"node.kubernetes.io/unschedulable","effect":"NoSchedule","timeAdded":now}]);
    }
    let cap =
        json!({"cpu":"8","memory":"32Gi","pods": max_pods.to_string(),"ephemeral-storage":"100Gi"});
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": l},
        "spec": spec,
        "status": {
            "capacity": cap, "allocatable": cap,
            "conditions": [{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status",
                            "lastHeartbeatTime":now,"lastTransitionTime":now}],
            "addresses": [{"type":"InternalIP","address":ip},{"type":"Hostname","address":name}],
            "nodeInfo": {"kubeletVersion":"v1.32.9","containerRuntimeVersion":"containerd://1.7.24","osImage":"kubesim",
                         "operatingSystem":"linux","architecture":"amd64","kernelVersion":"6.1.0","machineID":"","systemUUID":"","bootID":"",
                         "kubeProxyVersion":"v1.32.9"}
        }
    })
}

/// A Namespace object.
pub fn namespace(name: &str) -> Value {
    json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":name,"labels":{"kubernetes.io/metadata.name":name}}})
}

/// A pod template for a workload.
pub fn pod_template(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    grace: i64,
    empty_dir: bool,
    priority_class: Option<&str>,
) -> Value {
    let mut spec = json!({
        "containers": [{"name":"app","image":"registry.k8s.io/pause:3.10","imagePullPolicy":"IfNotPresent"}],
        "terminationGracePeriodSeconds": grace,
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "dnsPolicy": "ClusterFirst",
    });
    if empty_dir {
        spec["volumes"] = json!([{"name":"scratch","emptyDir":{}}]);
        spec["containers"][0]["volumeMounts"] = json!([{"name":"scratch","mountPath":"/scratch"}]);
    }
    if let Some(p) = priority_class {
        spec["priorityClassName"] = json!(p);
    }
    let mut md = json!({"labels": labels});
    if !annotations.is_empty() {
        md["annotations"] = json!(annotations);
    }
    json!({"metadata": md, "spec": spec})
}

/// A new pod (not yet stored) from a template, owned by `owner` if given.
pub fn pod_from_template(
    template: &Value,
    name: &str,
    ns: &str,
    owner: Option<&Value>,
    node: Option<&str>,
) -> Value {
    let mut md = template["metadata"].clone();
    if !md.is_object() {
        md = json!({});
    }
    md["name"] = json!(name);
    md["namespace"] = json!(ns);
    if let Some(o) = owner {
        md["ownerReferences"] = json!([meta::owner_ref(o)]);
    }
    let mut spec = template["spec"].clone();
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    json!({"apiVersion":"v1","kind":"Pod","metadata":md,"spec":spec})
}

fn container_statuses(pod: &Value, ready: bool, started_at: &str) -> Value {
    let cs: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": ready, "started": true,
                           "restartCount": 0, "containerID": format!("containerd://{}", meta::random_suffix(12)),
                           "state": {"running": {"startedAt": started_at}}})
                })
                .collect()
        })
        .unwrap_or_default();
    Value::Array(cs)
}

/// Pod status of a running pod, Ready or not.
pub fn running_status(pod: &Value, ready: bool, node_ip: &str, pod_ip: &str) -> Value {
    let now = meta::now_rfc3339();
    let start = pod["status"]["startTime"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| now.clone());
    let r = if ready { "True" } else { "False" };
    let mut conds = vec![
        json!({"type":"PodReadyToStartContainers","status":"True","lastTransitionTime":start}),
        json!({"type":"Initialized","status":"True","lastTransitionTime":start}),
        json!({"type":"Ready","status":r,"lastTransitionTime":now}),
        json!({"type":"ContainersReady","status":r,"lastTransitionTime":now}),
        json!({"type":"PodScheduled","status":"True","lastTransitionTime":start}),
    ];
    if let Some(dt) = pod["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "DisruptionTarget"))
    {
        conds.push(dt.clone());
    }
    json!({
        "phase": "Running",
        "conditions": conds,
        "hostIP": node_ip, "hostIPs": [{"ip": node_ip}],
        "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
        "startTime": start,
        "containerStatuses": container_statuses(pod, ready, &start),
        "qosClass": "BestEffort",
    })
}

/// A random pod IP.
pub fn pod_ip() -> String {
    format!("10.244.{}.{}", fastrand::u8(..), fastrand::u8(1..255))
}

/// Internal IP of a node.
pub fn node_ip(node: &Value) -> String {
    node["status"]["addresses"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
        .and_then(|x| x["address"].as_str())
        .unwrap_or("10.0.0.1")
        .to_string()
}

/// A workload object (Deployment, ReplicaSet, StatefulSet, DaemonSet).
pub fn workload(
    kind: &str,
    name: &str,
    ns: &str,
    replicas: Option<i64>,
    selector: &BTreeMap<String, String>,
    template: &Value,
) -> Value {
    let mut spec = json!({"selector": {"matchLabels": selector}, "template": template});
    if let Some(r) = replicas {
        spec["replicas"] = json!(r);
    }
    if kind == "StatefulSet" {
        spec["serviceName"] = json!(name);
        spec["podManagementPolicy"] = json!("OrderedReady");
    }
    json!({"apiVersion":"apps/v1","kind":kind,"metadata":{"name":name,"namespace":ns,"labels":selector},"spec":spec})
}
