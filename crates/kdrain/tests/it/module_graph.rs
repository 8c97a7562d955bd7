//! The library's modules form a one-way graph: the shared vocabulary (`model`) at the bottom,
//! options → select → budget → plan → dispatch/evict/watch → report → events, the drainer on
//! top. A module's edges are the `crate::<module>` paths in its code (test modules and comments
//! left out); this test fails, naming the circle, when a change closes one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name → the modules its code names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&src).expect("src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            for sub in std::fs::read_dir(&path).expect("module dir") {
                files.push((path.clone(), sub.expect("entry").path()));
            }
        } else {
            files.push((path.clone(), path));
        }
    }
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (top, file) in files {
        let name = top
            .file_stem()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let is_test = file.to_string_lossy().contains("tests") || name.ends_with("_tests");
        if file.extension().is_none_or(|e| e != "rs") || is_test || name == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("source");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let edges = g.entry(name.clone()).or_default();
        for line in code.lines() {
            let line = line.split("//").next().unwrap_or_default();
            for part in line.split("crate::").skip(1) {
                let module: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if module != name && !module.is_empty() {
                    edges.insert(module);
                }
            }
        }
    }
    let known: BTreeSet<String> = g.keys().cloned().collect();
    for edges in g.values_mut() {
        edges.retain(|m| known.contains(m));
    }
    g
}

/// A circle through `from`, if any (depth-first search back to it).
fn circle(g: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    fn walk(
        g: &BTreeMap<String, BTreeSet<String>>,
        at: &str,
        goal: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in &g[at] {
            if next == goal {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(g, next, goal, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![from.to_string()];
    let mut seen = BTreeSet::new();
    walk(g, from, from, &mut path, &mut seen).then_some(path)
}

#[test]
fn the_library_has_no_module_circles() {
    let g = graph();
    assert!(
        g.contains_key("dispatch") && g.contains_key("model"),
        "{g:?}"
    );
    assert!(
        g["model"].is_empty(),
        "model is the bottom: {:?}",
        g["model"]
    );
    let circles: Vec<String> = g
        .keys()
        .filter_map(|m| circle(&g, m))
        .map(|c| format!("{} -> {}", c.join(" -> "), c[0]))
        .collect();
    assert!(circles.is_empty(), "module circles: {circles:#?}");
}
