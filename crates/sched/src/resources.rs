//! Resource amounts as the scheduler counts them: a pod's effective requests
//! (`k8s.io/component-helpers/resource.PodRequests`: containers summed, init containers as a
//! maximum, restartable init containers (sidecars) added, plus the pod overhead) and a node's
//! allocatable. CPU is counted in millicores, everything else in whole units (bytes, pods).

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{Node, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;

use crate::quantity::{Quantity, QuantityError};

/// The CPU resource name.
pub const CPU: &str = "cpu";
/// The memory resource name.
pub const MEMORY: &str = "memory";
/// The ephemeral storage resource name.
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
/// The pod count resource name.
pub const PODS: &str = "pods";

/// A quantity that does not parse, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {error}")]
pub struct ResourceError {
    /// Where: `container app requests cpu`, `allocatable memory`.
    pub place: String,
    /// The parse error.
    pub error: QuantityError,
}

/// Resource amounts by name, in scheduler units (CPU millicores; other resources whole units).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Resources(pub BTreeMap<String, i128>);

/// The amount of `q` for resource `name` in scheduler units.
pub fn amount(name: &str, q: Quantity) -> i128 {
    if name == CPU { q.milli() } else { q.value() }
}

fn parse_list(
    list: Option<&BTreeMap<String, K8sQuantity>>,
    place: &str,
) -> Result<Resources, ResourceError> {
    let mut out = Resources::default();
    for (name, q) in list.into_iter().flatten() {
        let parsed = Quantity::parse(&q.0).map_err(|error| ResourceError {
            place: format!("{place} {name}"),
            error,
        })?;
        out.0.insert(name.clone(), amount(name, parsed));
    }
    Ok(out)
}

impl Resources {
    /// The amount of one resource (0 when absent).
    pub fn get(&self, name: &str) -> i128 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// Add `other` resource by resource.
    pub fn add(&mut self, other: &Resources) {
        for (k, v) in &other.0 {
            let e = self.0.entry(k.clone()).or_default();
            *e = e.saturating_add(*v);
        }
    }

    /// Subtract `other` resource by resource.
    pub fn sub(&mut self, other: &Resources) {
        for (k, v) in &other.0 {
            let e = self.0.entry(k.clone()).or_default();
            *e = e.saturating_sub(*v);
        }
    }

    /// Keep the larger amount of each resource.
    pub fn max_with(&mut self, other: &Resources) {
        for (k, v) in &other.0 {
            let e = self.0.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    /// Whether every amount is zero.
    pub fn is_zero(&self) -> bool {
        self.0.values().all(|v| *v == 0)
    }
}

/// A pod's effective requests, as the scheduler computes them: the sum over containers, at
/// least the largest init container (with the sidecars started before it), restartable init
/// containers (sidecars) added to the sum, plus `spec.overhead`.
pub fn pod_requests(spec: &PodSpec) -> Result<Resources, ResourceError> {
    let mut reqs = Resources::default();
    for c in &spec.containers {
        let r = parse_list(
            c.resources.as_ref().and_then(|r| r.requests.as_ref()),
            &format!("container {} requests", c.name),
        )?;
        reqs.add(&r);
    }
    let mut sidecars = Resources::default();
    let mut init_max = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let r = parse_list(
            c.resources.as_ref().and_then(|r| r.requests.as_ref()),
            &format!("init container {} requests", c.name),
        )?;
        let effective = if c.restart_policy.as_deref() == Some("Always") {
            reqs.add(&r);
            sidecars.add(&r);
            sidecars.clone()
        } else {
            let mut t = r;
            t.add(&sidecars);
            t
        };
        init_max.max_with(&effective);
    }
    reqs.max_with(&init_max);
    let overhead = parse_list(spec.overhead.as_ref(), "overhead")?;
    reqs.add(&overhead);
    reqs.0.retain(|_, v| *v != 0);
    Ok(reqs)
}

/// A node's `status.allocatable` (falling back to `status.capacity`, as the kubelet reports
/// allocatable equal to capacity when nothing is reserved).
pub fn allocatable(node: &Node) -> Result<Resources, ResourceError> {
    let status = node.status.as_ref();
    let list = status
        .and_then(|s| s.allocatable.as_ref())
        .or_else(|| status.and_then(|s| s.capacity.as_ref()));
    parse_list(list, "allocatable")
}

/// An amount for people: `2.5 CPU`, `1.5Gi memory`, `3 pods`, `2 nvidia.com/gpu`.
pub struct Amount<'a>(pub &'a str, pub i128);

impl fmt::Display for Amount<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Amount(name, v) = *self;
        match name {
            CPU => {
                let q = Quantity::from_nanos(v * 1_000_000);
                write!(f, "{q} CPU")
            }
            MEMORY | EPHEMERAL_STORAGE => write!(f, "{} {name}", bytes(v)),
            _ => write!(f, "{v} {name}"),
        }
    }
}

/// Bytes with a binary suffix and at most one decimal (`1.5Gi`, `512Mi`, `100`).
pub fn bytes(v: i128) -> String {
    const UNITS: [(&str, i128); 5] = [
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    for (suffix, unit) in UNITS {
        if v.abs() >= unit {
            let tenths = (v * 10 + unit / 2) / unit;
            return if tenths % 10 == 0 {
                format!("{}{suffix}", tenths / 10)
            } else {
                format!("{}.{}{suffix}", tenths / 10, (tenths % 10).abs())
            };
        }
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, NodeStatus, ResourceRequirements};

    fn container(name: &str, reqs: &[(&str, &str)], sidecar: bool) -> Container {
        Container {
            name: name.into(),
            resources: Some(ResourceRequirements {
                requests: Some(
                    reqs.iter()
                        .map(|(k, v)| (k.to_string(), K8sQuantity(v.to_string())))
                        .collect(),
                ),
                ..Default::default()
            }),
            restart_policy: sidecar.then(|| "Always".to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn containers_add_init_containers_take_the_maximum_sidecars_add() {
        let spec = PodSpec {
            containers: vec![
                container("a", &[("cpu", "500m"), ("memory", "1Gi")], false),
                container("b", &[("cpu", "250m")], false),
            ],
            init_containers: Some(vec![
                container("migrate", &[("cpu", "2"), ("memory", "100Mi")], false),
                container("proxy", &[("cpu", "100m"), ("memory", "64Mi")], true),
                container("late", &[("cpu", "1900m")], false),
            ]),
            overhead: Some([("cpu".to_string(), K8sQuantity("10m".into()))].into()),
            ..Default::default()
        };
        let r = pod_requests(&spec).unwrap();
        // containers 750m + sidecar 100m = 850m; init max: migrate 2000m, late 1900m + 100m
        // = 2000m; so 2000m, plus 10m overhead.
        assert_eq!(r.get(CPU), 2010);
        // containers 1Gi + sidecar 64Mi vs init 100Mi
        assert_eq!(r.get(MEMORY), (1 << 30) + (64 << 20));
    }

    #[test]
    fn unparsable_requests_name_the_container() {
        let spec = PodSpec {
            containers: vec![container("app", &[("cpu", "two")], false)],
            ..Default::default()
        };
        assert_eq!(
            pod_requests(&spec).unwrap_err().to_string(),
            "container app requests cpu: quantity \"two\" is not a valid quantity (expected a number with an optional suffix such as 500m, 2, 1.5Gi or 1e3)"
        );
    }

    #[test]
    fn allocatable_falls_back_to_capacity() {
        let mut node = Node {
            status: Some(NodeStatus {
                capacity: Some([("cpu".to_string(), K8sQuantity("4".into()))].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(allocatable(&node).unwrap().get(CPU), 4000);
        node.status.as_mut().unwrap().allocatable =
            Some([("cpu".to_string(), K8sQuantity("3500m".into()))].into());
        assert_eq!(allocatable(&node).unwrap().get(CPU), 3500);
    }

    #[test]
    fn amounts_for_people() {
        assert_eq!(Amount(CPU, 2500).to_string(), "2.5 CPU");
        assert_eq!(Amount(CPU, 6000).to_string(), "6 CPU");
        assert_eq!(Amount(MEMORY, 3 << 29).to_string(), "1.5Gi memory");
        assert_eq!(Amount(PODS, 3).to_string(), "3 pods");
        assert_eq!(bytes(512), "512");
        assert_eq!(bytes(512 << 20), "512Mi");
    }
}
