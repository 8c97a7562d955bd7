//! A kubesim scenario materialised on the real control plane through its API.
//!
//! Pods land on the nodes the scenario names (with kubesim's own round-robin for the rest),
//! while the real controllers and the scheduler stay in charge of replacements:
//! - bare pods are created with `spec.nodeName`;
//! - a ReplicaSet's pods are created first, bound to their nodes, with the ReplicaSet's labels,
//!   then the ReplicaSet, which adopts them (it counts them and creates nothing);
//! - a Deployment: the same with a ReplicaSet named `<name>-<hash>` whose template is the
//!   Deployment's plus `pod-template-hash`; the Deployment controller adopts that ReplicaSet as
//!   its current one (it compares templates ignoring the hash label);
//! - a StatefulSet: created once with 0 replicas to learn its update revision, deleted, then its
//!   pods `<name>-<i>` are created with that `controller-revision-hash` and their identity labels,
//!   and the StatefulSet again with its replicas: it adopts them and replaces none;
//! - a DaemonSet is left to its controller (restricted to the scenario's nodes by a node label);
//! - mirror pods are created with the node's own credentials (`system:node:<name>`), as a
//!   kubelet does.
//!
//! Replacements are created by the controllers and placed by the scheduler. kwok runs every pod:
//! the annotations `kwok.kdrain.dev/ready-seconds` and `kwok.kdrain.dev/termination-seconds`
//! carry the scenario's `readySeconds` and `terminationSeconds`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use kubesim::{IntOrPercent, Scenario, WorkloadKind};
use serde_json::{Value, json};

use crate::cluster::{READY_ANNOTATION, TERMINATION_ANNOTATION, client_for};
use crate::pki::{Pki, kubeconfig};

/// How long the materialised cluster may take to settle, at least.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a cluster of `pods` pods may take to settle, and how often to look: the
/// ReplicaSet controller adopts the pods written here one write each, through the
/// controller-manager's client limit (20 writes/s upstream), so 11,000 pods take about 9
/// minutes; and each look lists every pod, so it is spaced out on big clusters.
fn settle_pace(pods: usize) -> (Duration, Duration) {
    let timeout = SETTLE_TIMEOUT.max(Duration::from_secs(60 + pods as u64 / 12));
    let every = Duration::from_millis(200).max(Duration::from_millis(pods as u64 / 10));
    (timeout, every)
}

/// kubesim's placement: round robin over the preferred nodes (or all nodes), skipping full ones.
struct Placer {
    names: Vec<String>,
    used: HashMap<String, usize>,
    cap: HashMap<String, usize>,
    cursor: usize,
}

impl Placer {
    fn place(&mut self, preferred: &[String], turn: usize) -> Option<String> {
        let list: &[String] = if preferred.is_empty() {
            &self.names
        } else {
            preferred
        };
        if list.is_empty() {
            return None;
        }
        let start = if preferred.is_empty() {
            self.cursor
        } else {
            turn
        };
        for i in 0..list.len() {
            let n = &list[(start + i) % list.len()];
            let used = self.used.get(n).copied().unwrap_or(0);
            if used < self.cap.get(n).copied().unwrap_or(110) {
                *self.used.entry(n.clone()).or_default() += 1;
                if preferred.is_empty() {
                    self.cursor = (start + i + 1) % list.len();
                }
                return Some(n.clone());
            }
        }
        None
    }
}

/// A short random suffix of lowercase letters and digits, as the API server generates.
fn suffix(n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..n)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect()
}

fn secs(v: f64) -> String {
    format!("{v}")
}

/// The pod template of a workload, as kubesim builds it, plus kwok's timing annotations.
fn pod_template(w: &kubesim::Workload, labels: &BTreeMap<String, String>) -> Value {
    let mut annotations = w.pod_annotations.clone();
    annotations.insert(READY_ANNOTATION.into(), secs(w.ready_seconds));
    annotations.insert(
        TERMINATION_ANNOTATION.into(),
        secs(w.termination_seconds.min(w.grace_period_seconds as f64)),
    );
    let mut spec = json!({
        "containers": [{"name":"app","image":"registry.k8s.io/pause:3.10","imagePullPolicy":"IfNotPresent"}],
        "terminationGracePeriodSeconds": w.grace_period_seconds,
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "dnsPolicy": "ClusterFirst",
    });
    if w.empty_dir {
        spec["volumes"] = json!([{"name":"scratch","emptyDir":{}}]);
        spec["containers"][0]["volumeMounts"] = json!([{"name":"scratch","mountPath":"/scratch"}]);
    }
    if let Some(p) = &w.priority_class_name {
        spec["priorityClassName"] = json!(p);
    }
    if !w.requests.is_empty() {
        spec["containers"][0]["resources"] = json!({"requests": w.requests});
    }
    if !w.node_selector.is_empty() {
        spec["nodeSelector"] = json!(w.node_selector);
    }
    if let Some(a) = &w.affinity {
        spec["affinity"] = a.clone();
    }
    if !w.tolerations.is_empty() {
        spec["tolerations"] = json!(w.tolerations);
    }
    if !w.topology_spread_constraints.is_empty() {
        spec["topologySpreadConstraints"] = json!(w.topology_spread_constraints);
    }
    json!({"metadata": {"labels": labels, "annotations": annotations}, "spec": spec})
}

/// One of the scenario's first pods. They are Ready from the start, as on kubesim, whose
/// `readySeconds` is the time a new pod (a replacement) takes: the pod itself says 0 s to kwok,
/// its workload's template keeps `readySeconds` for the replacements.
fn pod_from(template: &Value, name: &str, ns: &str, node: &str) -> Value {
    let mut pod = json!({"apiVersion":"v1","kind":"Pod","metadata": template["metadata"].clone(), "spec": template["spec"].clone()});
    pod["metadata"]["annotations"][READY_ANNOTATION] = json!("0");
    pod["metadata"]["name"] = json!(name);
    pod["metadata"]["namespace"] = json!(ns);
    pod["spec"]["nodeName"] = json!(node);
    pod
}

async fn create<K>(api: &Api<K>, obj: Value) -> Result<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let typed: K =
        serde_json::from_value(obj.clone()).with_context(|| format!("invalid object {obj}"))?;
    api.create(&PostParams::default(), &typed)
        .await
        .with_context(|| {
            format!(
                "cannot create {} {}",
                obj["kind"].as_str().unwrap_or("object"),
                obj["metadata"]["name"].as_str().unwrap_or("")
            )
        })
}

fn selector_json(sel: &Option<Value>) -> Value {
    match sel {
        None => Value::Null,
        Some(Value::Object(m))
            if !m.is_empty()
                && m.keys()
                    .all(|k| k == "matchLabels" || k == "matchExpressions") =>
        {
            Value::Object(m.clone())
        }
        Some(Value::Object(m)) => json!({"matchLabels": m}),
        Some(other) => other.clone(),
    }
}

fn int_or_percent(v: &IntOrPercent) -> Value {
    match v {
        IntOrPercent::Int(i) => json!(i),
        IntOrPercent::Str(s) => json!(s),
    }
}

/// What the materialiser created, for the checks after a drain.
#[derive(Debug, Default)]
pub struct Materialised {
    /// Pods expected once everything has settled.
    pub expected_pods: usize,
    /// Namespaces that are Terminating.
    pub terminating: Vec<String>,
}

/// Create the scenario's objects and wait until every pod is Ready and every budget and
/// workload status is current.
pub async fn materialise(
    client: &Client,
    pki: &Pki,
    server: &str,
    sc: &Scenario,
) -> Result<Materialised> {
    let started = Instant::now();
    let mut out = Materialised::default();
    // Nodes.
    let nodes: Api<Node> = Api::all(client.clone());
    let mut placer = Placer {
        names: Vec::new(),
        used: HashMap::new(),
        cap: HashMap::new(),
        cursor: 0,
    };
    let mut ds_labels: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for w in sc
        .workloads
        .iter()
        .filter(|w| w.kind == WorkloadKind::DaemonSet)
    {
        if !w.nodes.is_empty() {
            ds_labels.insert(w.name.clone(), w.nodes.clone());
        }
    }
    for spec in &sc.nodes {
        let names: Vec<String> = match (&spec.name, &spec.name_prefix) {
            (Some(n), _) => vec![n.clone()],
            (None, Some(p)) => (0..spec.count.unwrap_or(1))
                .map(|i| format!("{p}{i}"))
                .collect(),
            _ => vec![],
        };
        for n in names {
            let mut labels = spec.labels.clone();
            labels.insert("kubernetes.io/hostname".into(), n.clone());
            labels.insert("kubernetes.io/os".into(), "linux".into());
            labels.insert("type".into(), "kwok".into());
            for (ds, on) in &ds_labels {
                if on.contains(&n) {
                    labels.insert(format!("ds.kdrain.dev/{ds}"), "true".into());
                }
            }
            if spec.not_ready {
                bail!(
                    "node {n}: notReady nodes are not supported on the real control plane (kwok keeps its nodes Ready)"
                );
            }
            let mut cap = json!({"cpu":"8","memory":"32Gi","pods": spec.max_pods.to_string(),"ephemeral-storage":"100Gi"});
            for (k, v) in &spec.allocatable {
                cap[k] = json!(v);
            }
            let taints: Vec<Value> = spec
                .taints
                .iter()
                .map(|t| json!({"key": t.key, "value": t.value, "effect": t.effect}))
                .collect();
            let node = json!({"apiVersion":"v1","kind":"Node","metadata":{"name": n, "labels": labels},
                "spec": {"unschedulable": spec.unschedulable, "taints": taints},
                "status": {"capacity": cap, "allocatable": cap}});
            create(&nodes, node).await?;
            nodes
                .patch_status(
                    &n,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"capacity": cap, "allocatable": cap}})),
                )
                .await
                .with_context(|| format!("cannot set the capacity of node {n}"))?;
            placer.cap.insert(n.clone(), spec.max_pods);
            placer.names.push(n);
        }
    }
    // Namespaces (Terminating ones are deleted once their content exists).
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut wanted: Vec<(String, bool)> = Vec::new();
    let referenced = sc
        .namespaces
        .iter()
        .map(|n| (n.name.clone(), n.terminating))
        .chain(sc.workloads.iter().map(|w| (w.namespace.clone(), false)))
        .chain(sc.mirror_pods.iter().map(|m| (m.namespace.clone(), false)))
        .chain(sc.pdbs.iter().map(|p| (p.namespace.clone(), false)));
    for (name, term) in referenced {
        match wanted.iter_mut().find(|(n, _)| *n == name) {
            Some(e) => e.1 |= term,
            None => wanted.push((name, term)),
        }
    }
    for (name, _) in &wanted {
        if namespaces.get_opt(name).await?.is_none() {
            create(
                &namespaces,
                json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name": name}}),
            )
            .await?;
        }
    }
    // Pods need their namespace's default ServiceAccount, which a controller creates.
    for (name, _) in &wanted {
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while sas.get_opt("default").await?.is_none() {
            if Instant::now() > deadline {
                bail!(
                    "namespace {name} got no default ServiceAccount (is the controller-manager running?)"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Priority classes the scenario names (system-* ones exist already).
    let pcs: Api<PriorityClass> = Api::all(client.clone());
    for pc in sc
        .workloads
        .iter()
        .filter_map(|w| w.priority_class_name.as_ref())
    {
        if !pc.starts_with("system-") && pcs.get_opt(pc).await?.is_none() {
            create(&pcs, json!({"apiVersion":"scheduling.k8s.io/v1","kind":"PriorityClass","metadata":{"name": pc},"value": 1000})).await?;
        }
    }
    // Budgets.
    for p in &sc.pdbs {
        let mut spec = json!({"selector": selector_json(&p.selector)});
        if let Some(v) = &p.max_unavailable {
            spec["maxUnavailable"] = int_or_percent(v);
        }
        if let Some(v) = &p.min_available {
            spec["minAvailable"] = int_or_percent(v);
        }
        if let Some(pol) = &p.unhealthy_pod_eviction_policy {
            spec["unhealthyPodEvictionPolicy"] = json!(pol);
        }
        let api: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &p.namespace);
        create(&api, json!({"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":p.name,"namespace":p.namespace},"spec":spec})).await?;
    }
    // Mirror pods, with the node's own identity.
    let ca = pki.ca_pem()?;
    for m in &sc.mirror_pods {
        let node = nodes.get(&m.node).await?;
        let uid = node.metadata.uid.clone().unwrap_or_default();
        let id = pki.client(&format!("system:node:{}", m.node), Some("system:nodes"))?;
        let node_client = client_for(&kubeconfig(
            server,
            &ca,
            &id,
            &format!("system:node:{}", m.node),
        ))
        .await?;
        let api: Api<Pod> = Api::namespaced(node_client, &m.namespace);
        let pod = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name": m.name, "namespace": m.namespace,
            "labels": {"component": m.name},
            "annotations": {"kubernetes.io/config.mirror": suffix(10), "kubernetes.io/config.source": "file", "kubernetes.io/config.hash": suffix(10)},
            "ownerReferences": [{"apiVersion":"v1","kind":"Node","name": m.node,"uid": uid,"controller": true}]},
            "spec": {"nodeName": m.node, "priorityClassName": "system-node-critical", "priority": 2000001000,
                "containers": [{"name":"app","image":"registry.k8s.io/pause:3.10","imagePullPolicy":"IfNotPresent"}],
                "terminationGracePeriodSeconds": 30, "enableServiceLinks": false}});
        create(&api, pod).await?;
        *placer.used.entry(m.node.clone()).or_default() += 1;
        out.expected_pods += 1;
    }
    for w in &sc.workloads {
        let labels = if w.labels.is_empty() {
            BTreeMap::from([("app".to_string(), w.name.clone())])
        } else {
            w.labels.clone()
        };
        let ns = w.namespace.as_str();
        let tpl = pod_template(w, &labels);
        let n = w.replicas.max(0) as usize;
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        match w.kind {
            WorkloadKind::Deployment => {
                let hash = suffix(10);
                let mut rs_labels = labels.clone();
                rs_labels.insert("pod-template-hash".into(), hash.clone());
                let mut rs_tpl = tpl.clone();
                rs_tpl["metadata"]["labels"] = json!(rs_labels);
                let rs_name = format!("{}-{hash}", w.name);
                for i in 0..n {
                    let node = place(&mut placer, &w.nodes, i, &w.name)?;
                    create(
                        &pods,
                        pod_from(&rs_tpl, &format!("{rs_name}-{}", suffix(5)), ns, &node),
                    )
                    .await?;
                }
                let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
                create(&rss, json!({"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name": rs_name,"namespace": ns,"labels": rs_labels},
                    "spec":{"replicas": w.replicas,"selector":{"matchLabels": rs_labels},"template": rs_tpl}})).await?;
                let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
                create(&api, json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name": w.name,"namespace": ns,"labels": labels},
                    "spec":{"replicas": w.replicas,"selector":{"matchLabels": labels},"template": tpl}})).await?;
                out.expected_pods += n;
            }
            WorkloadKind::ReplicaSet => {
                for i in 0..n {
                    let node = place(&mut placer, &w.nodes, i, &w.name)?;
                    create(
                        &pods,
                        pod_from(&tpl, &format!("{}-{}", w.name, suffix(5)), ns, &node),
                    )
                    .await?;
                }
                let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
                create(&rss, json!({"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name": w.name,"namespace": ns,"labels": labels},
                    "spec":{"replicas": w.replicas,"selector":{"matchLabels": labels},"template": tpl}})).await?;
                out.expected_pods += n;
            }
            WorkloadKind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
                let set = |replicas: i64| {
                    json!({"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name": w.name,"namespace": ns,"labels": labels},
                    "spec":{"replicas": replicas,"serviceName": w.name,"podManagementPolicy":"OrderedReady","selector":{"matchLabels": labels},"template": tpl}})
                };
                let revision = statefulset_revision(&api, &w.name, set(0)).await?;
                for i in 0..n {
                    let node = place(&mut placer, &w.nodes, i, &w.name)?;
                    let name = format!("{}-{i}", w.name);
                    let mut pod = pod_from(&tpl, &name, ns, &node);
                    pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] = json!(name);
                    pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] =
                        json!(i.to_string());
                    pod["metadata"]["labels"]["controller-revision-hash"] = json!(revision);
                    pod["spec"]["hostname"] = json!(name);
                    pod["spec"]["subdomain"] = json!(w.name);
                    create(&pods, pod).await?;
                }
                create(&api, set(w.replicas)).await?;
                out.expected_pods += n;
            }
            WorkloadKind::DaemonSet => {
                let mut t = tpl.clone();
                let targets = if w.nodes.is_empty() {
                    placer.names.clone()
                } else {
                    if !t["spec"]["nodeSelector"].is_object() {
                        t["spec"]["nodeSelector"] = json!({});
                    }
                    t["spec"]["nodeSelector"][format!("ds.kdrain.dev/{}", w.name)] = json!("true");
                    w.nodes.clone()
                };
                for node in &targets {
                    *placer.used.entry(node.clone()).or_default() += 1;
                }
                let api: Api<DaemonSet> = Api::namespaced(client.clone(), ns);
                create(&api, json!({"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name": w.name,"namespace": ns,"labels": labels},
                    "spec":{"selector":{"matchLabels": labels},"template": t}})).await?;
                out.expected_pods += targets.len();
            }
            WorkloadKind::Pod => {
                for i in 0..n {
                    let node = place(&mut placer, &w.nodes, i, &w.name)?;
                    let name = if n == 1 {
                        w.name.clone()
                    } else {
                        format!("{}-{i}", w.name)
                    };
                    create(&pods, pod_from(&tpl, &name, ns, &node)).await?;
                }
                out.expected_pods += n;
            }
        }
    }
    settle(client, out.expected_pods).await?;
    for (name, term) in &wanted {
        if *term {
            terminate_namespace(client, name).await?;
            out.terminating.push(name.clone());
        }
    }
    eprintln!(
        "scenario materialised in {:.1} s: {} nodes, {} pods",
        started.elapsed().as_secs_f64(),
        placer.names.len(),
        out.expected_pods
    );
    Ok(out)
}

fn place(placer: &mut Placer, preferred: &[String], turn: usize, workload: &str) -> Result<String> {
    match placer.place(preferred, turn) {
        Some(n) => Ok(n),
        None => bail!("workload {workload}: no node has room for another pod (maxPods)"),
    }
}

/// The update revision the StatefulSet controller computes for this StatefulSet: created with 0
/// replicas, read, deleted (its ControllerRevision orphaned, to be adopted by the real one).
async fn statefulset_revision(api: &Api<StatefulSet>, name: &str, obj: Value) -> Result<String> {
    create(api, obj).await?;
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let revision = loop {
        let s = api.get(name).await?;
        if let Some(r) = s.status.as_ref().and_then(|st| st.update_revision.clone()) {
            break r;
        }
        if Instant::now() > deadline {
            bail!("statefulset {name}: the controller computed no update revision");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    api.delete(name, &DeleteParams::orphan()).await?;
    while api.get_opt(name).await?.is_some() {
        if Instant::now() > deadline {
            bail!("statefulset {name}: the probe object was not deleted");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(revision)
}

/// Delete a namespace while keeping it (a finalizer holds it in Terminating).
async fn terminate_namespace(client: &Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["kdrain.dev/e2e-hold"]}})),
    )
    .await?;
    api.delete(name, &DeleteParams::default()).await?;
    // The namespace controller marks the content deleted a few seconds later (after its
    // discovery); a drain that lists the pods before that sees them as live, and its evictions
    // are refused for ever (403 NamespaceTerminating, even once the pods are gone).
    let pods: Api<Pod> = Api::namespaced(client.clone(), name);
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let live = pods
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .count();
        if live == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("namespace {name}: the namespace controller did not delete its {live} pods");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Wait until `expected` pods are Ready, workloads report them, and budgets are current.
async fn settle(client: &Client, expected: usize) -> Result<()> {
    let (timeout, every) = settle_pace(expected);
    let deadline = Instant::now() + timeout;
    let pods: Api<Pod> = Api::all(client.clone());
    let pdbs: Api<PodDisruptionBudget> = Api::all(client.clone());
    let deployments: Api<Deployment> = Api::all(client.clone());
    let statefulsets: Api<StatefulSet> = Api::all(client.clone());
    let mut why;
    loop {
        let list = pods.list(&ListParams::default()).await?;
        let ready = list.items.iter().filter(|p| is_ready(p)).count();
        why = format!("{ready} of {expected} pods Ready");
        let mut done = ready == expected && list.items.len() == expected;
        if done {
            for d in deployments.list(&ListParams::default()).await?.items {
                let want = d.spec.replicas.unwrap_or(1);
                let st = d.status.unwrap_or_default();
                if st.observed_generation != d.metadata.generation
                    || st.updated_replicas.unwrap_or(0) != want
                    || st.available_replicas.unwrap_or(0) != want
                    || st.replicas.unwrap_or(0) != want
                {
                    why = format!(
                        "deployment {} not rolled out",
                        d.metadata.name.unwrap_or_default()
                    );
                    done = false;
                }
            }
            for s in statefulsets.list(&ListParams::default()).await?.items {
                let want = s.spec.replicas.unwrap_or(1);
                let st = s.status.unwrap_or_default();
                if st.observed_generation != s.metadata.generation
                    || st.ready_replicas.unwrap_or(0) != want
                    || st.current_revision != st.update_revision
                {
                    why = format!(
                        "statefulset {} not ready",
                        s.metadata.name.unwrap_or_default()
                    );
                    done = false;
                }
            }
            let budgets = pdbs.list(&ListParams::default()).await?.items;
            // The pods each budget selects (label selectors only; None for expressions).
            let selected = |p: &PodDisruptionBudget| -> Option<Vec<&Pod>> {
                let ns = p.metadata.namespace.clone().unwrap_or_default();
                let sel = p.spec.as_ref()?.selector.as_ref()?;
                if sel.match_expressions.is_some() {
                    return None;
                }
                let want = sel.match_labels.clone().unwrap_or_default();
                Some(
                    list.items
                        .iter()
                        .filter(|pod| pod.metadata.namespace.as_deref() == Some(&ns))
                        .filter(|pod| {
                            let have = pod.metadata.labels.clone().unwrap_or_default();
                            want.iter().all(|(k, v)| have.get(k) == Some(v))
                        })
                        .collect(),
                )
            };
            let mut budgets_of: HashMap<String, usize> = HashMap::new();
            for p in &budgets {
                for pod in selected(p).unwrap_or_default() {
                    *budgets_of
                        .entry(pod.metadata.uid.clone().unwrap_or_default())
                        .or_default() += 1;
                }
            }
            for p in &budgets {
                // A pod under two budgets makes the disruption controller update only one of
                // them when the pod changes (it picks one): the other's count may stay stale.
                let healthy = selected(p)
                    .filter(|pods| {
                        pods.iter().all(|pod| {
                            budgets_of.get(pod.metadata.uid.as_deref().unwrap_or("")) == Some(&1)
                        })
                    })
                    .map(|pods| pods.iter().filter(|pod| is_ready(pod)).count() as i32);
                let st = p.status.clone().unwrap_or_default();
                if st.observed_generation != p.metadata.generation
                    || healthy.is_some_and(|h| Some(h) != st.current_healthy)
                {
                    why = format!(
                        "budget {} not processed",
                        p.metadata.name.clone().unwrap_or_default()
                    );
                    done = false;
                }
            }
        }
        if done {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the scenario did not settle within {} s: {why}",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::settle_pace;
    use std::time::Duration;

    #[test]
    fn big_clusters_get_time_to_settle_and_are_looked_at_less_often() {
        assert_eq!(
            settle_pace(100),
            (Duration::from_secs(120), Duration::from_millis(200))
        );
        let (timeout, every) = settle_pace(11_000);
        assert_eq!(timeout, Duration::from_secs(60 + 916));
        assert_eq!(every, Duration::from_millis(1_100));
    }
}
