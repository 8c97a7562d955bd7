//! The table of simulated resource types: names, groups, scope and discovery facts.

/// Index of a resource type in [`RESOURCES`]; used as the store's table number.
pub type ResId = usize;

/// Static description of one simulated resource type.
#[derive(Debug)]
pub struct Resource {
    /// Plural lower-case name used in URLs (`pods`).
    pub plural: &'static str,
    /// Singular name (`pod`).
    pub singular: &'static str,
    /// Kind (`Pod`).
    pub kind: &'static str,
    /// API group ("" for core).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Whether the kind has `metadata.generation` bumped on spec changes (U-4).
    pub generational: bool,
    /// Whether PUT without `resourceVersion` is allowed (U-2).
    pub unconditional_update: bool,
    /// Short names for discovery.
    pub short_names: &'static [&'static str],
    /// Subresources served (`status`, `eviction`, `scale`).
    pub subresources: &'static [&'static str],
    /// Discovery categories (`all` for the kinds `kubectl get all` lists).
    pub categories: &'static [&'static str],
    /// Field selector keys this kind supports besides `metadata.name`/`metadata.namespace`.
    pub field_keys: &'static [&'static str],
}

impl Resource {
    /// `apiVersion` string (`v1`, `apps/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

const VERBS_ALL: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Verbs served on every main resource.
pub fn verbs() -> &'static [&'static str] {
    VERBS_ALL
}

const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.host",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];

const EVENT_FIELDS: &[&str] = &[
    "involvedObject.name",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "type",
    "source",
];

/// Every simulated resource type.
pub static RESOURCES: &[Resource] = &[
    Resource {
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        group: "",
        version: "v1",
        namespaced: false,
        generational: false,
        unconditional_update: true,
        short_names: &["ns"],
        subresources: &["status"],
        categories: &[],
        field_keys: &["status.phase"],
    },
    Resource {
        plural: "nodes",
        singular: "node",
        kind: "Node",
        group: "",
        version: "v1",
        namespaced: false,
        generational: false,
        unconditional_update: true,
        short_names: &["no"],
        subresources: &["status"],
        categories: &[],
        field_keys: &["spec.unschedulable"],
    },
    Resource {
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        group: "",
        version: "v1",
        namespaced: true,
        generational: false,
        unconditional_update: true,
        short_names: &["po"],
        subresources: &["status", "eviction"],
        categories: &["all"],
        field_keys: POD_FIELDS,
    },
    Resource {
        plural: "events",
        singular: "event",
        kind: "Event",
        group: "",
        version: "v1",
        namespaced: true,
        generational: false,
        unconditional_update: true,
        short_names: &["ev"],
        subresources: &[],
        categories: &[],
        field_keys: EVENT_FIELDS,
    },
    Resource {
        plural: "poddisruptionbudgets",
        singular: "poddisruptionbudget",
        kind: "PodDisruptionBudget",
        group: "policy",
        version: "v1",
        namespaced: true,
        generational: true,
        unconditional_update: false,
        short_names: &["pdb"],
        subresources: &["status"],
        categories: &[],
        field_keys: &[],
    },
    Resource {
        plural: "daemonsets",
        singular: "daemonset",
        kind: "DaemonSet",
        group: "apps",
        version: "v1",
        namespaced: true,
        generational: true,
        unconditional_update: false,
        short_names: &["ds"],
        subresources: &["status"],
        categories: &["all"],
        field_keys: &[],
    },
    Resource {
        plural: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        group: "apps",
        version: "v1",
        namespaced: true,
        generational: true,
        unconditional_update: false,
        short_names: &["rs"],
        subresources: &["status", "scale"],
        categories: &["all"],
        field_keys: &["status.replicas"],
    },
    Resource {
        plural: "deployments",
        singular: "deployment",
        kind: "Deployment",
        group: "apps",
        version: "v1",
        namespaced: true,
        generational: true,
        unconditional_update: false,
        short_names: &["deploy"],
        subresources: &["status", "scale"],
        categories: &["all"],
        field_keys: &[],
    },
    Resource {
        plural: "statefulsets",
        singular: "statefulset",
        kind: "StatefulSet",
        group: "apps",
        version: "v1",
        namespaced: true,
        generational: true,
        unconditional_update: false,
        short_names: &["sts"],
        subresources: &["status", "scale"],
        categories: &["all"],
        field_keys: &[],
    },
    Resource {
        plural: "leases",
        singular: "lease",
        kind: "Lease",
        group: "coordination.k8s.io",
        version: "v1",
        namespaced: true,
        generational: false,
        unconditional_update: true,
        short_names: &[],
        subresources: &[],
        categories: &[],
        field_keys: &[],
    },
    Resource {
        plural: "customresourcedefinitions",
        singular: "customresourcedefinition",
        kind: "CustomResourceDefinition",
        group: "apiextensions.k8s.io",
        version: "v1",
        namespaced: false,
        generational: true,
        unconditional_update: false,
        short_names: &["crd", "crds"],
        subresources: &["status"],
        categories: &["api-extensions"],
        field_keys: &[],
    },
    // The core Events seen through events.k8s.io/v1 (no table of its own: `api::events_v1`).
    Resource {
        plural: "events",
        singular: "event",
        kind: "Event",
        group: "events.k8s.io",
        version: "v1",
        namespaced: true,
        generational: false,
        unconditional_update: true,
        short_names: &["ev"],
        subresources: &[],
        categories: &[],
        field_keys: EVENT_FIELDS,
    },
];

/// Table index of Namespaces.
pub const NAMESPACES: ResId = 0;
/// Table index of Nodes.
pub const NODES: ResId = 1;
/// Table index of Pods.
pub const PODS: ResId = 2;
/// Table index of Events.
pub const EVENTS: ResId = 3;
/// Table index of PodDisruptionBudgets.
pub const PDBS: ResId = 4;
/// Table index of DaemonSets.
pub const DAEMONSETS: ResId = 5;
/// Table index of ReplicaSets.
pub const REPLICASETS: ResId = 6;
/// Table index of Deployments.
pub const DEPLOYMENTS: ResId = 7;
/// Table index of StatefulSets.
pub const STATEFULSETS: ResId = 8;

/// Table index of CustomResourceDefinitions.
pub const CRDS: ResId = 10;
/// events.k8s.io/v1 Events: served from the table of [`EVENTS`].
pub const EVENTS_V1: ResId = 11;

/// Look a built-in resource up by group and plural name (custom resources: `crd::Served`).
pub fn find(group: &str, version: &str, plural: &str) -> Option<ResId> {
    RESOURCES
        .iter()
        .position(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The descriptions of custom resources, shared by every simulator in the process and never
/// removed: one entry per distinct description (group, version, names, scope, status
/// subresource), so their number is bounded by the distinct CRDs a process ever serves. Which of
/// them a simulator serves, and the rest of each CRD, is per simulator (`crd::Served`).
static CUSTOM: std::sync::RwLock<Vec<&'static Resource>> = std::sync::RwLock::new(Vec::new());

/// The description of a resource type, built-in or custom.
pub fn get(res: ResId) -> &'static Resource {
    if let Some(r) = RESOURCES.get(res) {
        return r;
    }
    let custom = CUSTOM.read().unwrap_or_else(|p| p.into_inner());
    custom
        .get(res - RESOURCES.len())
        .copied()
        .unwrap_or(&RESOURCES[NAMESPACES])
}

/// Whether a resource type is a custom resource (served for a CRD).
pub fn is_custom(res: ResId) -> bool {
    res >= RESOURCES.len()
}

/// The type of a custom resource with these names, scope and subresources: the same type for
/// the same description (so a simulator's objects keep their table while the CRD is updated
/// without changing them).
pub fn intern_custom(
    group: &str,
    version: &str,
    plural: &str,
    singular: &str,
    kind: &str,
    namespaced: bool,
    status: bool,
) -> ResId {
    let same = |r: &Resource| {
        r.group == group
            && r.version == version
            && r.plural == plural
            && r.singular == singular
            && r.kind == kind
            && r.namespaced == namespaced
            && r.subresources.contains(&"status") == status
    };
    let mut custom = CUSTOM.write().unwrap_or_else(|p| p.into_inner());
    if let Some(i) = custom.iter().position(|r| same(r)) {
        return RESOURCES.len() + i;
    }
    let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
    let r: &'static Resource = Box::leak(Box::new(Resource {
        plural: leak(plural),
        singular: leak(singular),
        kind: leak(kind),
        group: leak(group),
        version: leak(version),
        namespaced,
        generational: true,
        unconditional_update: false,
        short_names: &[],
        subresources: if status { &["status"] } else { &[] },
        categories: &[],
        field_keys: &[],
    }));
    custom.push(r);
    RESOURCES.len() + custom.len() - 1
}

/// All group/versions served, core first.
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}
