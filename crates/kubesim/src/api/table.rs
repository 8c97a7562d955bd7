//! `as=Table` answers for `kubectl get` (D-0.4): the columns kubectl prints for the simulated kinds.

use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::custom_table;
use super::list::to_metadata;
use crate::crd::CrdDef;
use crate::meta;
use crate::resources::{
    CRDS, DAEMONSETS, DEPLOYMENTS, EVENTS, NAMESPACES, NODES, PDBS, PODS, REPLICASETS, ResId,
    STATEFULSETS,
};

/// Whether the client's preferred representation is a Table.
pub fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .map(|a| a.split(',').next().unwrap_or("").contains("as=Table"))
        .unwrap_or(false)
}

/// kubectl's short age format.
fn age(o: &Value) -> String {
    since(&o["metadata"]["creationTimestamp"])
}

/// The time since a timestamp in kubectl's short format (`<unknown>` when absent).
fn since(ts: &Value) -> String {
    let Some(t) = ts.as_str().and_then(meta::parse_time) else {
        return "<unknown>".into();
    };
    let s = (jiff::Timestamp::now().as_second() - t.as_second()).max(0);
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn col(name: &str, ty: &str, priority: i64) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": ty, "format": format, "description": name, "priority": priority})
}

fn num(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "N/A".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A column's type and priority (1 = shown only by `-o wide`), as kubectl reads them.
type ColKind = (&'static str, i64);
const STR: ColKind = ("string", 0);
const INT: ColKind = ("integer", 0);
const WIDE: ColKind = ("string", 1);

// One resource per line reads as the table kubectl prints; rustfmt would spread it one column per line.
#[rustfmt::skip]
fn columns(res: ResId) -> Vec<Value> {
    let spec: &[(&str, ColKind)] = match res {
        PODS => &[("Name", STR), ("Ready", STR), ("Status", STR), ("Restarts", STR), ("Age", STR), ("IP", WIDE), ("Node", WIDE), ("Nominated Node", WIDE), ("Readiness Gates", WIDE)],
        NODES => &[("Name", STR), ("Status", STR), ("Roles", STR), ("Age", STR), ("Version", STR)],
        PDBS => &[("Name", STR), ("Min Available", STR), ("Max Unavailable", STR), ("Allowed Disruptions", INT), ("Age", STR)],
        DEPLOYMENTS => &[("Name", STR), ("Ready", STR), ("Up-to-date", INT), ("Available", INT), ("Age", STR)],
        REPLICASETS => &[("Name", STR), ("Desired", INT), ("Current", INT), ("Ready", INT), ("Age", STR)],
        STATEFULSETS => &[("Name", STR), ("Ready", STR), ("Age", STR)],
        DAEMONSETS => &[("Name", STR), ("Desired", INT), ("Current", INT), ("Ready", INT), ("Up-to-date", INT), ("Available", INT), ("Age", STR)],
        NAMESPACES => &[("Name", STR), ("Status", STR), ("Age", STR)],
        CRDS => &[("Name", STR), ("Created At", ("date", 0))],
        EVENTS => &[("Last Seen", STR), ("Type", STR), ("Reason", STR), ("Object", STR), ("Subobject", WIDE), ("Source", WIDE), ("Message", STR), ("First Seen", WIDE), ("Count", WIDE), ("Name", WIDE)],
        _ => &[("Name", STR), ("Age", STR)],
    };
    spec.iter().map(|&(name, (ty, priority))| col(name, ty, priority)).collect()
}

fn pod_status(p: &Value) -> String {
    if meta::is_terminating(p) {
        return "Terminating".into();
    }
    match meta::phase(p) {
        "Succeeded" => "Completed".into(),
        "" => "Pending".into(),
        other => other.into(),
    }
}

/// kubectl's READINESS GATES cell: "<none>", or how many of the pod's gates have a True
/// condition out of how many gates (the first condition of each gate's type counts).
fn readiness_gates(pod: &Value) -> String {
    let Some(gates) = pod["spec"]["readinessGates"]
        .as_array()
        .filter(|g| !g.is_empty())
    else {
        return "<none>".into();
    };
    let conditions = pod["status"]["conditions"].as_array();
    let ready = gates
        .iter()
        .filter(|g| {
            conditions
                .and_then(|cs| cs.iter().find(|c| c["type"] == g["conditionType"]))
                .is_some_and(|c| c["status"] == "True")
        })
        .count();
    format!("{ready}/{}", gates.len())
}

fn cells(res: ResId, o: &Value) -> Vec<Value> {
    let s = &o["status"];
    let name = json!(meta::name(o));
    match res {
        CRDS => vec![name, o["metadata"]["creationTimestamp"].clone()],
        PODS => {
            let total = o["spec"]["containers"].as_array().map_or(0, |c| c.len());
            let ready = s["containerStatuses"]
                .as_array()
                .map_or(0, |c| c.iter().filter(|c| c["ready"] == true).count());
            let restarts: i64 = s["containerStatuses"]
                .as_array()
                .map_or(0, |c| c.iter().map(|c| num(&c["restartCount"])).sum());
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(o)),
                json!(restarts.to_string()),
                json!(age(o)),
                json!(s["podIP"].as_str().unwrap_or("<none>")),
                json!(o["spec"]["nodeName"].as_str().unwrap_or("<none>")),
                json!(
                    s["nominatedNodeName"]
                        .as_str()
                        .filter(|n| !n.is_empty())
                        .unwrap_or("<none>")
                ),
                json!(readiness_gates(o)),
            ]
        }
        NODES => {
            let ready = s["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            let mut status = if ready {
                "Ready".to_string()
            } else {
                "NotReady".to_string()
            };
            if o["spec"]["unschedulable"] == true {
                status.push_str(",SchedulingDisabled");
            }
            vec![
                name,
                json!(status),
                json!("<none>"),
                json!(age(o)),
                json!(s["nodeInfo"]["kubeletVersion"].as_str().unwrap_or("")),
            ]
        }
        PDBS => vec![
            name,
            json!(text(&o["spec"]["minAvailable"])),
            json!(text(&o["spec"]["maxUnavailable"])),
            json!(num(&s["disruptionsAllowed"])),
            json!(age(o)),
        ],
        DEPLOYMENTS => vec![
            name,
            json!(format!(
                "{}/{}",
                num(&s["readyReplicas"]),
                o["spec"]["replicas"].as_i64().unwrap_or(1)
            )),
            json!(num(&s["updatedReplicas"])),
            json!(num(&s["availableReplicas"])),
            json!(age(o)),
        ],
        REPLICASETS => vec![
            name,
            json!(o["spec"]["replicas"].as_i64().unwrap_or(1)),
            json!(num(&s["replicas"])),
            json!(num(&s["readyReplicas"])),
            json!(age(o)),
        ],
        STATEFULSETS => vec![
            name,
            json!(format!(
                "{}/{}",
                num(&s["readyReplicas"]),
                o["spec"]["replicas"].as_i64().unwrap_or(1)
            )),
            json!(age(o)),
        ],
        DAEMONSETS => vec![
            name,
            json!(num(&s["desiredNumberScheduled"])),
            json!(num(&s["currentNumberScheduled"])),
            json!(num(&s["numberReady"])),
            json!(num(&s["updatedNumberScheduled"])),
            json!(num(&s["numberAvailable"])),
            json!(age(o)),
        ],
        NAMESPACES => vec![
            name,
            json!(s["phase"].as_str().unwrap_or("Active")),
            json!(age(o)),
        ],
        EVENTS => event_cells(o),
        _ => vec![name, json!(age(o))],
    }
}

/// The cells of an Event as the real event printer fills them (`printEvent`).
fn event_cells(o: &Value) -> Vec<Value> {
    let first = if o["firstTimestamp"].is_string() {
        since(&o["firstTimestamp"])
    } else {
        since(&o["eventTime"])
    };
    let mut last = if o["lastTimestamp"].is_string() {
        since(&o["lastTimestamp"])
    } else {
        first.clone()
    };
    let mut count = o["count"].as_i64().unwrap_or(0);
    if o["series"].is_object() {
        last = since(&o["series"]["lastObservedTime"]);
        count = num(&o["series"]["count"]);
    } else if count == 0 {
        count = 1;
    }
    let io = &o["involvedObject"];
    let kind = io["kind"].as_str().unwrap_or("").to_lowercase();
    let target = match io["name"].as_str() {
        Some(n) if !n.is_empty() => format!("{kind}/{n}"),
        _ => kind,
    };
    let (component, host) = (
        o["source"]["component"].as_str().unwrap_or(""),
        o["source"]["host"].as_str().unwrap_or(""),
    );
    let source = if component.is_empty() && host.is_empty() {
        let (c, i) = (
            o["reportingComponent"].as_str().unwrap_or(""),
            o["reportingInstance"].as_str().unwrap_or(""),
        );
        if i.is_empty() {
            c.to_string()
        } else {
            format!("{c}, {i}")
        }
    } else if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    vec![
        json!(last),
        json!(o["type"].as_str().unwrap_or("")),
        json!(o["reason"].as_str().unwrap_or("")),
        json!(target),
        json!(io["fieldPath"].as_str().unwrap_or("")),
        json!(source),
        json!(o["message"].as_str().unwrap_or("").trim()),
        json!(first),
        json!(count),
        json!(meta::name(o)),
    ]
}

/// A `meta.k8s.io/v1 Table` of the given objects (of a custom resource when `crd` is given).
pub fn table(res: ResId, crd: Option<&CrdDef>, objects: &[&Value], list_meta: Value) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let cells = match crd {
                Some(d) => custom_table::cells(d, o, since),
                None => cells(res, o),
            };
            json!({"cells": cells, "object": to_metadata(o)})
        })
        .collect();
    let columns = match crd {
        Some(d) => custom_table::columns(d),
        None => columns(res),
    };
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": columns, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_gates_count_true_conditions_of_the_gates() {
        assert_eq!(readiness_gates(&json!({"spec": {}})), "<none>");
        let pod = json!({
            "spec": {"readinessGates": [{"conditionType": "a"}, {"conditionType": "b"}, {"conditionType": "c"}]},
            "status": {"conditions": [
                {"type": "a", "status": "True"},
                {"type": "b", "status": "False"},
                {"type": "Ready", "status": "True"}
            ]}
        });
        assert_eq!(readiness_gates(&pod), "1/3");
    }
}
