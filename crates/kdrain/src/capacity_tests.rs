//! Unit tests of the capacity check ([`crate::capacity`], [`crate::placement`]) on synthetic
//! nodes and pods.

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use crate::budget::tests::{pdb, with_status};
use crate::capacity::ClusterView;
use crate::options::DrainOptions;
use crate::placement::Resident;
use crate::plan::{self, BudgetVerdict, NodeInput};
use crate::select::DaemonSetLookup;

/// A Ready node with `cpu` and `memory` allocatable, 110 pods, and extra JSON merged in.
pub(crate) fn node(name: &str, cpu: &str, extra: Value) -> Node {
    let mut n = json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {
            "allocatable": {"cpu": cpu, "memory": "16Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    });
    merge(&mut n, extra);
    serde_json::from_value(n).expect("node")
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// A pod of Deployment `app` (ReplicaSet `app-abc`) in `ns` on `node` requesting `cpu`.
pub(crate) fn web(ns: &str, app: &str, i: usize, node: &str, cpu: &str, extra: Value) -> Pod {
    let mut p = json!({
        "metadata": {
            "name": format!("{app}-abc-{i}"), "namespace": ns, "uid": format!("uid-{ns}-{app}-{i}"),
            "labels": {"app": app, "pod-template-hash": "abc"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{app}-abc"),
                                 "uid": "rs", "controller": true}],
        },
        "spec": {"nodeName": node, "containers": [{"name": "app", "resources": {"requests": {"cpu": cpu}}}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    });
    merge(&mut p, extra);
    serde_json::from_value(p).expect("pod")
}

pub(crate) fn view(nodes: Vec<Node>, pods: &[Pod]) -> ClusterView {
    ClusterView {
        nodes,
        residents: std::sync::Arc::new(pods.iter().map(|p| Resident::of(p).unwrap()).collect()),
        errors: Vec::new(),
        pending: Vec::new(),
        nodes_resource_version: String::new(),
    }
}

pub(crate) fn found(_: &Pod) -> DaemonSetLookup {
    DaemonSetLookup::Found
}

/// The plan for draining `targets` of the cluster `pods` (every pod everywhere), with the
/// capacity check applied.
/// The plan's inputs for draining `targets`: each node with the pods bound to it.
pub(crate) fn inputs_for(pods: &[Pod], targets: &[&str]) -> Vec<NodeInput> {
    targets
        .iter()
        .map(|t| NodeInput {
            node: t.to_string(),
            cordoned: false,
            pods: pods
                .iter()
                .filter(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some(t))
                .cloned()
                .collect(),
        })
        .collect()
}

fn plan_for(
    opts: &DrainOptions,
    nodes: Vec<Node>,
    pods: &[Pod],
    targets: &[&str],
    pdbs: &[k8s_openapi::api::policy::v1::PodDisruptionBudget],
) -> plan::Plan {
    let inputs = inputs_for(pods, targets);
    let mut p = plan::build(opts, &inputs, pdbs, &found, &[], jiff::Timestamp::now());
    crate::fit::apply(&mut p, opts, &inputs, &view(nodes, pods));
    p
}

fn three_nodes() -> Vec<Node> {
    vec![
        node("n1", "8", json!({})),
        node("n2", "2", json!({})),
        node("n3", "2", json!({})),
    ]
}

#[test]
fn replacements_that_do_not_fit_refuse_the_plan_with_one_actionable_line() {
    // n2 has 0.5 CPU taken, n3 1 CPU: 2.5 CPU free for 3 replacements of 2 CPU each.
    let pods = vec![
        web("shop", "web", 0, "n1", "2", json!({})),
        web("shop", "web", 1, "n1", "2", json!({})),
        web("shop", "web", 2, "n1", "2", json!({})),
        web("shop", "other", 0, "n2", "500m", json!({})),
        web("shop", "other", 1, "n3", "1", json!({})),
    ];
    let p = plan_for(&DrainOptions::default(), three_nodes(), &pods, &["n1"], &[]);
    assert_eq!(
        p.errors,
        vec![
            "shop/web: 3 replacements need 6 CPU, the 2 schedulable nodes have 2.5 CPU free; add capacity or drain fewer nodes at once"
        ]
    );
    assert!(p.short_of_room());
    let cap = p.capacity.as_ref().unwrap();
    assert_eq!(cap.schedulable_nodes, vec!["n2", "n3"]);
    assert_eq!(cap.workloads.len(), 1);
    let w = &cap.workloads[0];
    assert_eq!(
        (w.kind.as_str(), w.key().as_str()),
        ("Deployment", "shop/web")
    );
    assert_eq!(w.placed, 0);
    assert_eq!(
        p.nodes[0].pods[0].placement.as_deref(),
        Some(
            "no room for its replacement: 0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
        )
    );

    // With --ignore-capacity the same shortage is a warning and the plan can complete.
    let opts = DrainOptions {
        ignore_capacity: true,
        ..Default::default()
    };
    let p = plan_for(&opts, three_nodes(), &pods, &["n1"], &[]);
    assert!(p.can_complete(), "{:?}", p.errors);
    assert!(!p.short_of_room());
    assert_eq!(
        p.warnings,
        vec![
            "shop/web: 3 replacements need 6 CPU, the 2 schedulable nodes have 2.5 CPU free; add capacity or drain fewer nodes at once (ignored: --ignore-capacity)"
        ]
    );
}

#[test]
fn when_every_node_is_drained_nothing_has_anywhere_to_go() {
    let pods = vec![
        web("shop", "web", 0, "n1", "100m", json!({})),
        web("shop", "web", 1, "n2", "100m", json!({})),
        web("shop", "api", 0, "n3", "100m", json!({})),
    ];
    let opts = DrainOptions {
        parallel_nodes: 3,
        ..Default::default()
    };
    let p = plan_for(&opts, three_nodes(), &pods, &["n1", "n2", "n3"], &[]);
    assert_eq!(
        p.errors,
        vec![
            "shop/api: 1 replacement has nowhere to go: no node stays schedulable (every node is drained, cordoned or not Ready); add nodes or drain fewer at once",
            "shop/web: 2 replacements have nowhere to go: no node stays schedulable (every node is drained, cordoned or not Ready); add nodes or drain fewer at once",
        ]
    );
    assert!(p.capacity.as_ref().unwrap().schedulable_nodes.is_empty());
}

#[test]
fn replacements_are_placed_together_largest_first() {
    // 4 + 3 CPU free. Largest first: both 3-CPU pods go (n2 then n3), leaving 1 CPU for the
    // four 0.5-CPU pods: two fit, two do not.
    let nodes = vec![
        node("n1", "16", json!({})),
        node("n2", "4", json!({})),
        node("n3", "3", json!({})),
    ];
    let mut pods = vec![
        web("shop", "big", 0, "n1", "3", json!({})),
        web("shop", "big", 1, "n1", "3", json!({})),
    ];
    for i in 0..4 {
        pods.push(web("shop", "small", i, "n1", "500m", json!({})));
    }
    let p = plan_for(&DrainOptions::default(), nodes, &pods, &["n1"], &[]);
    let cap = p.capacity.as_ref().unwrap();
    let big = cap.workloads.iter().find(|w| w.name == "big").unwrap();
    assert!(big.fits());
    assert_eq!(
        big.nodes,
        [("n2".to_string(), 1), ("n3".to_string(), 1)].into()
    );
    let small = cap.workloads.iter().find(|w| w.name == "small").unwrap();
    assert_eq!(small.placed, 2);
    assert_eq!(
        p.errors,
        vec![
            "shop/small: 2 of 4 replacements do not fit: they need 2 CPU and the 2 schedulable nodes have 7 CPU free, but other replacements take it or it is split across nodes; add capacity or drain fewer nodes at once"
        ]
    );
}

#[test]
fn cordoned_and_not_ready_nodes_take_nothing() {
    let nodes = vec![
        node("n1", "8", json!({})),
        node("n2", "8", json!({"spec": {"unschedulable": true}})),
        node(
            "n3",
            "8",
            json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
        ),
        node("n4", "8", json!({})),
    ];
    let pods = vec![web("default", "web", 0, "n1", "1", json!({}))];
    let p = plan_for(&DrainOptions::default(), nodes, &pods, &["n1"], &[]);
    assert!(p.can_complete(), "{:?}", p.errors);
    assert_eq!(p.capacity.as_ref().unwrap().schedulable_nodes, vec!["n4"]);
    assert_eq!(
        p.nodes[0].pods[0].placement.as_deref(),
        Some("replacement fits on n4")
    );
}

#[test]
fn selectors_affinity_and_taints() {
    let nodes = vec![
        node("n1", "8", json!({"metadata": {"labels": {"pool": "a"}}})),
        node(
            "n2",
            "8",
            json!({"metadata": {"labels": {"pool": "b"}},
                   "spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}}),
        ),
        node("n3", "8", json!({"metadata": {"labels": {"pool": "c"}}})),
    ];
    let wants_b = json!({"spec": {"nodeSelector": {"pool": "b"}}});
    let tolerates = json!({"spec": {"nodeSelector": {"pool": "b"},
        "tolerations": [{"key": "dedicated", "operator": "Exists"}]}});
    let affinity_c = json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["c"]}]}]}}}}});
    let pods = vec![
        web("default", "picky", 0, "n1", "1", wants_b),
        web("default", "db", 0, "n1", "1", tolerates),
        web("default", "cee", 0, "n1", "1", affinity_c),
    ];
    let p = plan_for(&DrainOptions::default(), nodes, &pods, &["n1"], &[]);
    assert_eq!(
        p.errors,
        vec![
            "default/picky: 1 replacement fits no schedulable node (0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {dedicated: db}, 1 node(s) were unschedulable); add matching nodes or drain fewer nodes at once"
        ]
    );
    let placement: Vec<Option<&str>> = p.nodes[0]
        .pods
        .iter()
        .map(|p| p.placement.as_deref())
        .collect();
    assert_eq!(placement[1], Some("replacement fits on n2"));
    assert_eq!(placement[2], Some("replacement fits on n3"));
}

/// Required anti-affinity on the hostname: one replica per node.
fn spread_out() -> Value {
    json!({"spec": {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "web"}}}]}}}})
}

#[test]
fn pod_anti_affinity_by_hostname() {
    let nodes = vec![
        node("n1", "8", json!({})),
        node("n2", "8", json!({})),
        node("n3", "8", json!({})),
        node("n4", "8", json!({})),
    ];
    // web runs on n1..n3; draining n1 leaves n4 as the only node without a web pod.
    let pods: Vec<Pod> = (1..=3)
        .map(|i| web("default", "web", i, &format!("n{i}"), "100m", spread_out()))
        .collect();
    let p = plan_for(&DrainOptions::default(), nodes.clone(), &pods, &["n1"], &[]);
    assert!(p.can_complete(), "{:?}", p.errors);
    assert_eq!(
        p.nodes[0].pods[0].placement.as_deref(),
        Some("replacement fits on n4")
    );
    // Draining n1 and n4's neighbour n2 too: two replacements, one free node.
    let p = plan_for(&DrainOptions::default(), nodes, &pods, &["n1", "n2"], &[]);
    assert_eq!(
        p.errors,
        vec![
            "default/web: 1 of 2 replacements do not fit (0/4 nodes are available: 2 node(s) didn't match pod anti-affinity rules, 2 node(s) were unschedulable); add matching nodes or drain fewer nodes at once"
        ]
    );
}

#[test]
fn existing_pods_anti_affinity_keeps_replacements_away() {
    let nodes = vec![node("n1", "8", json!({})), node("n2", "8", json!({}))];
    // A db pod on n2 refuses web pods next to it.
    let db = web(
        "default",
        "db",
        0,
        "n2",
        "100m",
        json!({"spec": {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "web"}}}]}}}}),
    );
    let pods = vec![web("default", "web", 0, "n1", "100m", json!({})), db];
    let p = plan_for(&DrainOptions::default(), nodes, &pods, &["n1"], &[]);
    assert_eq!(
        p.nodes[0].pods[0].placement.as_deref(),
        Some(
            "no room for its replacement: 0/2 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules, 1 node(s) were unschedulable. preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
        )
    );
}

#[test]
fn topology_spread_by_zone_and_by_hostname_counts_drained_domains() {
    let zone = |z: &str| json!({"metadata": {"labels": {"topology.kubernetes.io/zone": z}}});
    let nodes = vec![
        node("a1", "8", zone("a")),
        node("a2", "8", zone("a")),
        node("b1", "8", zone("b")),
    ];
    let by_zone = json!({"spec": {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]}});
    // web: 1 in zone a (a1), 2 in zone b. Draining a1: zone a has 0, b has 2, so the
    // replacement must go to zone a (a2): skew there 0 + 1 - 0 = 1.
    let pods = vec![
        web("default", "web", 0, "a1", "100m", by_zone.clone()),
        web("default", "web", 1, "b1", "100m", by_zone.clone()),
        web("default", "web", 2, "b1", "100m", by_zone.clone()),
    ];
    let p = plan_for(&DrainOptions::default(), nodes.clone(), &pods, &["a1"], &[]);
    assert_eq!(
        p.nodes[0].pods[0].placement.as_deref(),
        Some("replacement fits on a2")
    );
    // Draining a1 and a2: zone a still is a domain (with 0 pods), zone b has 2: no node can
    // take the replacement (b1 would make the skew 3).
    let p = plan_for(&DrainOptions::default(), nodes, &pods, &["a1", "a2"], &[]);
    assert_eq!(
        p.nodes[0].pods[0].placement.as_deref(),
        Some(
            "no room for its replacement: 0/3 nodes are available: 1 node(s) didn't match pod topology spread constraints, 2 node(s) were unschedulable. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
        )
    );

    // By hostname with maxSkew 1: a drained node is an empty domain, so a node that already
    // runs one web pod cannot take another.
    let by_host = json!({"spec": {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]}});
    let nodes = three_nodes();
    let pods = vec![
        web("default", "web", 0, "n1", "100m", by_host.clone()),
        web("default", "web", 1, "n2", "100m", by_host.clone()),
        web("default", "web", 2, "n3", "100m", by_host),
    ];
    let p = plan_for(&DrainOptions::default(), nodes, &pods, &["n1"], &[]);
    assert!(!p.can_complete());
    assert!(
        p.errors[0].contains("2 node(s) didn't match pod topology spread constraints"),
        "{:?}",
        p.errors
    );
}

#[test]
fn spread_over_pods_that_leave_together_is_named_order_dependent() {
    // Two web pods leave zone a together (seen on the real scheduler: the first replacement
    // may be bound while the other pod still counts in zone a).
    let zone = |z: &str| json!({"metadata": {"labels": {"topology.kubernetes.io/zone": z}}});
    let nodes = vec![
        node("a1", "8", zone("a")),
        node("a2", "8", zone("a")),
        node("b1", "8", zone("b")),
    ];
    let by_zone = json!({"spec": {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]}});
    let pods = vec![
        web("default", "web", 0, "a1", "100m", by_zone.clone()),
        web("default", "web", 1, "a1", "100m", by_zone.clone()),
        web("default", "web", 2, "b1", "100m", by_zone.clone()),
        // Another app's pod leaving with them, alone under its own constraint.
        web(
            "default",
            "api",
            0,
            "a1",
            "100m",
            json!({"spec": {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "api"}}}]}}),
        ),
    ];
    let p = plan_for(&DrainOptions::default(), nodes, &pods, &["a1"], &[]);
    let placement = |name: &str| {
        p.nodes[0]
            .pods
            .iter()
            .find(|x| x.name == name)
            .and_then(|x| x.placement.clone())
            .unwrap()
    };
    assert_eq!(
        placement("web-abc-0"),
        "replacement fits on a2; placement not checked: uses topology spread by topology.kubernetes.io/zone while 1 other pod it counts leaves too (the result depends on the order of the evictions)"
    );
    assert_eq!(placement("api-abc-0"), "replacement fits on a2");
}

#[test]
fn constraints_not_evaluated_are_named_and_bare_pods_are_lost() {
    let nodes = vec![node("n1", "8", json!({})), node("n2", "8", json!({}))];
    let with_pvc = json!({"spec": {
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}],
        "affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "cache"}}}]}}}});
    let mut bare = web("default", "debug", 0, "n1", "100m", json!({}));
    bare.metadata.owner_references = None;
    let pods = vec![web("default", "db", 0, "n1", "1", with_pvc), bare];
    let opts = DrainOptions {
        force: true,
        ..Default::default()
    };
    let p = plan_for(&opts, nodes, &pods, &["n1"], &[]);
    assert!(p.can_complete(), "{:?}", p.errors);
    assert_eq!(
        p.nodes[0].pods[0].placement.as_deref(),
        Some(
            "replacement fits on n2; placement not checked: uses pod affinity, PersistentVolumeClaim data-db-0"
        )
    );
    assert_eq!(
        p.nodes[0].pods[1].placement.as_deref(),
        Some("lost: nothing replaces it")
    );
    let cap = p.capacity.as_ref().unwrap();
    assert_eq!(cap.lost, vec!["default/debug-abc-0"]);
    assert_eq!(
        cap.workloads[0].not_checked,
        vec!["pod affinity", "PersistentVolumeClaim data-db-0"]
    );
}

#[test]
fn quantities_that_do_not_parse_are_named() {
    let nodes = vec![node("n1", "8", json!({})), node("n2", "lots", json!({}))];
    let pods = vec![web("default", "web", 0, "n1", "1", json!({}))];
    let p = plan_for(&DrainOptions::default(), nodes, &pods, &["n1"], &[]);
    assert_eq!(
        p.errors,
        vec![
            "cannot check room for the replacements: node n2: allocatable cpu: quantity \"lots\" is not a valid quantity (expected a number with an optional suffix such as 500m, 2, 1.5Gi or 1e3); fix the object or use --ignore-capacity"
        ]
    );
    assert!(p.short_of_room());
    let bad = web("default", "web", 1, "n1", "1 cpu", json!({}));
    assert_eq!(
        Resident::of(&bad).unwrap_err(),
        "pod default/web-abc-1: container app requests cpu: quantity \"1 cpu\" is not a valid quantity (expected a number with an optional suffix such as 500m, 2, 1.5Gi or 1e3)"
    );
}

#[test]
fn a_budget_whose_pods_cannot_be_replaced_blocks_for_ever() {
    let mut nodes = three_nodes();
    nodes[1] = node("n2", "1", json!({}));
    nodes[2] = node("n3", "1", json!({}));
    let pods: Vec<Pod> = (0..3)
        .map(|i| web("default", "web", i, "n1", "2", json!({})))
        .collect();
    let b = with_status(
        pdb("web", &[("app", "web")], Some(IntOrString::Int(1)), None),
        1,
        3,
        2,
        3,
    );
    let p = plan_for(&DrainOptions::default(), nodes, &pods, &["n1"], &[b]);
    let BudgetVerdict::Never { reason } = &p.budgets[0].verdict else {
        panic!("{:?}", p.budgets[0].verdict);
    };
    assert_eq!(
        reason,
        "it allows 1 of the 3 pods now and the replacements of 3 pods cannot be placed (default/web), so it will block for ever"
    );
    assert!(p.errors.iter().any(|e| e.starts_with(
        "disruption budget default/web can never allow evicting default/web-abc-0, default/web-abc-1, default/web-abc-2: it allows 1 of the 3"
    )));
}

#[test]
fn leaving_pods_free_their_room_and_only_replaced_pods_are_placed() {
    // n2 is full of pods that leave too (both nodes drained) except one that stays.
    let nodes = vec![
        node("n1", "2", json!({})),
        node("n2", "2", json!({})),
        node("n3", "2", json!({})),
    ];
    let pods = vec![
        web("default", "a", 0, "n1", "1500m", json!({})),
        web("default", "b", 0, "n2", "1500m", json!({})),
        web("default", "c", 0, "n3", "500m", json!({})),
    ];
    let p = plan_for(&DrainOptions::default(), nodes, &pods, &["n1", "n2"], &[]);
    let cap = p.capacity.unwrap();
    // 1.5 CPU free on n3: one of the two 1.5-CPU replacements fits.
    assert_eq!(cap.workloads.iter().filter(|w| w.fits()).count(), 1);
    assert_eq!(cap.schedulable_nodes, vec!["n3"]);
}

#[test]
fn slim_nodes_give_the_same_plan_as_whole_nodes() {
    // what the capacity read keeps of a node (crate::capacity::slim_node) is all the check reads:
    // a node's images, addresses, system info and annotations go, its verdicts stay
    let info = json!({"kubeletVersion": "v1.33.0", "containerRuntimeVersion": "containerd://1.7", "osImage": "x",
                      "operatingSystem": "linux", "architecture": "amd64", "kernelVersion": "6.1",
                      "machineID": "", "systemUUID": "", "bootID": "", "kubeProxyVersion": ""});
    let whole = vec![
        node(
            "n1",
            "8",
            json!({"metadata": {"annotations": {"a": "b"}},
            "status": {"images": [{"names": ["img"], "sizeBytes": 1}], "nodeInfo": info,
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}}),
        ),
        node(
            "n2",
            "4",
            json!({"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}),
        ),
        node("n3", "4", json!({"spec": {"unschedulable": true}})),
        node(
            "n4",
            "4",
            json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
        ),
        node(
            "n5",
            "1",
            json!({"metadata": {"labels": {"zone": "z1"}}, "status": {"nodeInfo": info}}),
        ),
    ];
    let slim: Vec<Node> = whole
        .iter()
        .cloned()
        .map(crate::capacity::slim_node)
        .collect();
    let kept = slim[0].status.as_ref().unwrap();
    assert!(kept.images.is_none() && kept.node_info.is_none() && kept.addresses.is_none());
    assert!(slim[0].metadata.annotations.is_none());
    assert_eq!(slim[4].metadata.labels, whole[4].metadata.labels);
    assert_eq!(slim[1].spec, whole[1].spec);
    assert_eq!(
        slim[3].status.as_ref().unwrap().conditions,
        whole[3].status.as_ref().unwrap().conditions
    );
    let pods = vec![
        web("shop", "web", 0, "n1", "2", json!({})),
        web("shop", "web", 1, "n1", "1", json!({})),
        web("shop", "db", 0, "n5", "500m", json!({})),
    ];
    let opts = DrainOptions::default();
    let from_whole = plan_for(&opts, whole, &pods, &["n1"], &[]).capacity;
    let from_slim = plan_for(&opts, slim, &pods, &["n1"], &[]).capacity;
    assert_eq!(from_slim, from_whole);
    let cap = from_slim.unwrap();
    // n3 cordoned and n4 not Ready take nothing; n2's taint refuses the replacements, and n5
    // has 0.5 CPU free
    assert_eq!(cap.schedulable_nodes, ["n2", "n5"]);
    assert_eq!(cap.short().count(), 1);
}
