//! Hostile scenario files: `Scenario::from_yaml_str` on arbitrary text and on valid scenarios
//! broken at random (keys deleted or renamed, values of the wrong type, huge or negative
//! numbers, bad percentages) never panics, and either loads or says what is wrong and where.

use kubesim::Scenario;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_yaml::Value;

/// A scenario that uses every section and most fields.
const BASE: &str = r#"
settings:
  watchHistory: 100
  bookmarkSeconds: 5
  disruptionDelaySeconds: 0.1
  namespaceDeletionDelaySeconds: 0.2
nodes:
  - {name: n1, labels: {pool: a}, maxPods: 20, unschedulable: false}
  - {namePrefix: pool-b-, count: 3, labels: {pool: b}}
namespaces:
  - {name: shop, terminating: false}
workloads:
  - kind: Deployment
    name: web
    namespace: shop
    replicas: 3
    labels: {app: web}
    nodes: [n1, pool-b-0]
    terminationSeconds: 0.5
    gracePeriodSeconds: 30
    readySeconds: 1
    emptyDir: true
    priorityClassName: high
    podAnnotations: {note: x}
  - {kind: StatefulSet, name: db, replicas: 2, nodes: [pool-b-1]}
  - {kind: DaemonSet, name: agent, namespace: kube-system}
  - {kind: Pod, name: bare, nodes: [n1]}
mirrorPods:
  - {name: etcd-n1, namespace: kube-system, node: n1}
pdbs:
  - {name: web, namespace: shop, selector: {app: web}, maxUnavailable: "25%", unhealthyPodEvictionPolicy: AlwaysAllow}
  - name: db
    selector: {matchExpressions: [{key: app, operator: In, values: [db]}]}
    minAvailable: 1
faults:
  - {verb: create, resource: pods/eviction, status: 429, probability: 0.5, retryAfterSeconds: 1, latencyMs: 10, watchCutSeconds: 2}
auth:
  users: [{name: ops, token: secret-token}]
  roles: [{name: drainer, rules: [{verbs: [get, list], resources: [pods]}]}]
  bindings: [{user: ops, role: drainer, namespace: shop}]
"#;

/// The largest generated-node count the mutations use (see `huge_node_count_...` below).
const SANE_COUNT: u64 = 1000;

/// One step along a path into the YAML tree.
#[derive(Debug, Clone)]
enum Step {
    Key(Value),
    Item(usize),
}

/// Every path to a value in the tree (the root excluded).
fn paths(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                prefix.push(Step::Key(k.clone()));
                out.push(prefix.clone());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter().enumerate() {
                prefix.push(Step::Item(i));
                out.push(prefix.clone());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

/// The container holding the last step of `path`.
fn parent_mut<'a>(root: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let mut at = root;
    for step in &path[..path.len() - 1] {
        at = match (step, at) {
            (Step::Key(k), Value::Mapping(map)) => map.get_mut(k)?,
            (Step::Item(i), Value::Sequence(items)) => items.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(at)
}

/// Values of the wrong type or out of range, as a hostile or careless author writes them.
fn hostile_values() -> Vec<Value> {
    let yaml = |s: &str| serde_yaml::from_str::<Value>(s).expect("literal parses");
    vec![
        Value::Null,
        Value::Bool(true),
        Value::String(String::new()),
        Value::String("x".into()),
        Value::String("line\nbreak \u{0} \u{202e}".into()),
        yaml("-1"),
        yaml("0"),
        yaml("99999999999"),
        yaml("-99999999999"),
        yaml("9223372036854775807"),
        yaml("-9223372036854775808"),
        yaml("18446744073709551615"),
        yaml("1e300"),
        yaml("-0.5"),
        yaml(".nan"),
        yaml(".inf"),
        yaml("-.inf"),
        Value::String("abc%".into()),
        Value::String("150%".into()),
        Value::String("-5%".into()),
        Value::String("%".into()),
        Value::String("1.5%".into()),
        Value::String("99999999999999999999%".into()),
        yaml("[]"),
        yaml("[1, [2, {a: b}]]"),
        yaml("{}"),
        yaml("{x: 1}"),
    ]
}

/// One way to break a scenario.
#[derive(Debug, Clone)]
enum Mutation {
    /// Remove the key (or list item) at the chosen path.
    Delete(Index),
    /// Rename the key at the chosen path (to an unknown or wrongly cased name).
    Rename(Index, &'static str),
    /// Replace the value at the chosen path.
    Replace(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::Delete),
        (
            any::<Index>(),
            prop::sample::select(vec!["bogus", "Name", "replica", "maxpods", ""])
        )
            .prop_map(|(i, k)| Mutation::Rename(i, k)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, v)| Mutation::Replace(i, v)),
    ]
}

/// Applies `m` to `root`. Huge generated-node counts are left out: see the ignored test below.
fn apply(root: &mut Value, m: &Mutation) {
    let mut all = Vec::new();
    paths(root, &mut Vec::new(), &mut all);
    if all.is_empty() {
        return;
    }
    let pick = |i: &Index| all[i.index(all.len())].clone();
    match m {
        Mutation::Delete(i) => {
            let path = pick(i);
            match (path.last(), parent_mut(root, &path)) {
                (Some(Step::Key(k)), Some(Value::Mapping(map))) => {
                    map.remove(k);
                }
                (Some(Step::Item(n)), Some(Value::Sequence(items))) if *n < items.len() => {
                    items.remove(*n);
                }
                _ => {}
            }
        }
        Mutation::Rename(i, to) => {
            let path = pick(i);
            if let (Some(Step::Key(k)), Some(Value::Mapping(map))) =
                (path.last(), parent_mut(root, &path))
                && let Some(v) = map.remove(k)
            {
                map.insert(Value::String((*to).to_string()), v);
            }
        }
        Mutation::Replace(i, v) => {
            let path = pick(i);
            let values = hostile_values();
            let mut new = values[v.index(values.len())].clone();
            if let Some(Step::Key(Value::String(k))) = path.last()
                && k == "count"
                && new.as_u64().is_some_and(|n| n > SANE_COUNT)
            {
                new = Value::Number(SANE_COUNT.into());
            }
            match (path.last(), parent_mut(root, &path)) {
                (Some(Step::Key(k)), Some(Value::Mapping(map))) => {
                    map.insert(k.clone(), new);
                }
                (Some(Step::Item(n)), Some(Value::Sequence(items))) if *n < items.len() => {
                    items[*n] = new;
                }
                _ => {}
            }
        }
    }
}

/// An error must say it is about the scenario and point at the problem: a location in the
/// file, or the section and object at fault.
fn check_error(input: &str, message: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        message.starts_with("invalid scenario: "),
        "{message}\n--- input:\n{input}"
    );
    let detail = &message["invalid scenario: ".len()..];
    prop_assert!(!detail.trim().is_empty(), "{message}\n--- input:\n{input}");
    let points = [
        "line ",
        "nodes[",
        "nodes: ",
        "node ",
        "workload ",
        "workloads[",
        "workloads: ",
        "settings.",
        "faults[",
        "mirror pod ",
        "pdb ",
    ];
    prop_assert!(
        points.iter().any(|p| detail.contains(p)),
        "the message does not say where the problem is: {message}\n--- input:\n{input}"
    );
    Ok(())
}

#[test]
fn the_base_scenario_loads() {
    let scenario = Scenario::from_yaml_str(BASE).expect("base loads");
    assert_eq!(
        scenario.node_names(),
        vec!["n1", "pool-b-0", "pool-b-1", "pool-b-2"]
    );
}

#[test]
fn known_bad_inputs_name_their_problem() {
    let cases = [
        (
            "workloads: [{kind: Pod, name: x, replicas: -3}]",
            "workloads[0] (x).replicas: -3 must not be negative",
        ),
        ("nodes: [{count: 2}]", "nodes[0]: needs name or namePrefix"),
        // serde_yaml itself leaves the location out when it is the very first key.
        ("bogus: 1\nnodes: []", "unknown field `bogus`"),
        ("bogus: 1\nnodes: []", "at line 1 column 1"),
        ("nodes: [{name: a, count: 2}]", "count needs namePrefix"),
        ("nodes: [{name: a}, {name: a}]", "node a is declared twice"),
        ("nodes: [{namePrefix: a, count: -1}]", "count"),
        ("nodes: [{namePrefix: a, count: x}]", "count"),
        (
            "workloads: [{kind: Pod, name: x, replicas: 99999999999999999999}]",
            "replicas",
        ),
        (
            "pdbs: [{name: p, minAvailable: 1, maxUnavailable: 1}]",
            "not both",
        ),
        (
            "pdbs: [{name: p, minAvailable: [1]}]",
            "pdbs[0].minAvailable",
        ),
        ("settings: {watchHistory: -1}", "watchHistory"),
        ("faults: [{status: 99999}]", "status"),
        ("nodes: {name: n1}", "nodes"),
    ];
    for (input, wanted) in cases {
        let message = Scenario::from_yaml_str(input).expect_err(input).to_string();
        assert!(message.contains(wanted), "{input}: {message}");
    }
}

#[test]
fn huge_node_count_is_refused_without_allocating() {
    let input = "nodes: [{namePrefix: pool-, count: 99999999999}]";
    let message = Scenario::from_yaml_str(input).expect_err(input).to_string();
    assert!(message.contains("count"), "{message}");
    assert!(message.contains("100000"), "names the limit: {message}");
}

/// Load `input`, expecting an error that mentions every one of `needles`.
fn refused(input: &str, needles: &[&str]) {
    let message = Scenario::from_yaml_str(input).expect_err(input).to_string();
    assert!(message.starts_with("invalid scenario: "), "{message}");
    for n in needles {
        assert!(message.contains(n), "{input}: {message:?} lacks {n:?}");
    }
}

#[test]
fn hostile_sizes_are_refused_naming_the_key_and_the_limit() {
    refused(
        "nodes: [{name: n1}]\nworkloads: [{kind: Deployment, name: web, replicas: 99999999999}]",
        &["workloads[0] (web).replicas", "99999999999", "1000000"],
    );
    // Many entries under the per-entry limit still add up.
    refused(
        "nodes: [{namePrefix: a-, count: 60000}, {namePrefix: b-, count: 60000}]",
        &["nodes", "120000", "100000"],
    );
    // Pods in total: replicas of all workloads plus a DaemonSet pod per node.
    refused(
        "nodes: [{namePrefix: n-, count: 100000}]\nworkloads:\n  \
         - {kind: Deployment, name: a, replicas: 1000000}\n  \
         - {kind: DaemonSet, name: ds}",
        &["workloads[1] (ds)", "1100000 pods", "1000000"],
    );
    refused(
        "workloads: [{kind: Pod, name: p, replicas: -1}]",
        &["workloads[0] (p).replicas", "negative"],
    );
}

#[test]
fn the_big_benchmark_scenario_is_within_the_limits() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/big.yaml");
    let sc = Scenario::from_file(&path).expect("scenarios/big.yaml loads");
    assert_eq!(sc.node_names().len(), 1000);
}

/// Every scenario shipped in the repository (benchmarks included) is within the limits.
#[test]
fn every_shipped_scenario_loads() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("scenarios dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios"),
        &mut files,
    );
    assert!(files.len() >= 3, "{files:?}");
    for f in &files {
        Scenario::from_file(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}

#[test]
fn bad_float_seconds_are_refused_at_load() {
    for key in [
        "bookmarkSeconds",
        "disruptionDelaySeconds",
        "namespaceDeletionDelaySeconds",
    ] {
        for value in [".inf", "-.inf", ".nan", "-1", "1e12"] {
            refused(
                &format!("settings: {{{key}: {value}}}"),
                &[&format!("settings.{key}"), "seconds"],
            );
        }
    }
    for key in ["terminationSeconds", "readySeconds"] {
        for value in [".inf", "-.inf", ".nan", "-0.5", "1e300"] {
            refused(
                &format!("workloads: [{{kind: Pod, name: p, {key}: {value}}}]"),
                &[&format!("workloads[0] (p).{key}"), "seconds"],
            );
        }
    }
    for value in [".inf", ".nan", "-1"] {
        refused(
            &format!("faults: [{{verb: watch, resource: pods, watchCutSeconds: {value}}}]"),
            &["faults[0].watchCutSeconds", "seconds"],
        );
        refused(
            &format!("faults: [{{verb: get, resource: pods, status: 500, probability: {value}}}]"),
            &["faults[0].probability", "from 0 to 1"],
        );
    }
    refused(
        "workloads: [{kind: Pod, name: p, gracePeriodSeconds: -5}]",
        &["workloads[0] (p).gracePeriodSeconds", "negative"],
    );
    // A huge grace period is what a real server accepts: it loads.
    Scenario::from_yaml_str(
        "workloads: [{kind: Pod, name: p, gracePeriodSeconds: 9223372036854775807}]",
    )
    .expect("a huge grace period loads");
}

#[test]
fn bad_budget_numbers_name_the_field_and_the_accepted_forms() {
    for (key, value) in [
        ("minAvailable", "[1]"),
        ("minAvailable", "{a: 1}"),
        ("maxUnavailable", "1.5"),
        ("maxUnavailable", "true"),
        ("minAvailable", "\"abc%\""),
        ("minAvailable", "\"%\""),
        ("maxUnavailable", "\"150%\""),
        ("maxUnavailable", "\"99999999999999999999%\""),
        ("minAvailable", "-1"),
        ("maxUnavailable", "99999999999"),
    ] {
        refused(
            &format!("pdbs: [{{name: b, selector: {{app: x}}, {key}: {value}}}]"),
            &[&format!("pdbs[0].{key}"), "integer", "\"100%\""],
        );
    }
    // A string without `%` loads: the disruption controller fails safe on it (C-7).
    let sc = Scenario::from_yaml_str(
        "pdbs: [{name: a, minAvailable: \"0%\"}, {name: b, maxUnavailable: \"100%\"}, {name: c, minAvailable: 0}, {name: d, maxUnavailable: \"1\"}]",
    )
    .expect("valid budget numbers load");
    assert_eq!(sc.pdbs.len(), 4);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(input in any::<String>()) {
        if let Err(e) = Scenario::from_yaml_str(&input) {
            prop_assert!(e.to_string().starts_with("invalid scenario: "), "{}", e);
        }
    }

    #[test]
    fn yaml_shaped_text_never_panics(
        input in "(nodes|workloads|pdbs|settings|faults|auth|mirrorPods|namespaces|x)?:? ?[\\[\\]{}:, \\-\\n a-z0-9%.\"]{0,80}"
    ) {
        if let Err(e) = Scenario::from_yaml_str(&input) {
            prop_assert!(e.to_string().starts_with("invalid scenario: "), "{}", e);
        }
    }

    #[test]
    fn broken_scenarios_load_or_say_what_is_wrong(
        mutations in prop::collection::vec(mutation(), 1..4)
    ) {
        let mut root: Value = serde_yaml::from_str(BASE).expect("base parses");
        for m in &mutations {
            apply(&mut root, m);
        }
        let input = serde_yaml::to_string(&root).expect("serializes");
        if let Err(e) = Scenario::from_yaml_str(&input) {
            check_error(&input, &e.to_string())?;
        }
    }
}
