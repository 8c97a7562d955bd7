//! `kubesim bench`: the simulator's own figures on a scenario: load time, resident memory, and
//! the latency of a LIST of one node's pods and of an eviction, over real HTTP.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// Resident memory of this process in MiB (Linux), if known.
fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut v: Vec<Duration>) -> String {
    v.sort();
    format!(
        "| {name} | {} | {:.2} ms | {:.2} ms | {:.2} ms |",
        v.len(),
        percentile(&v, 0.5).as_secs_f64() * 1e3,
        percentile(&v, 0.9).as_secs_f64() * 1e3,
        v.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    )
}

async fn get_json(client: &kube::Client, path: &str) -> Result<Value> {
    let req = http::Request::get(path).body(Vec::new())?;
    Ok(serde_json::from_str(&client.request_text(req).await?)?)
}

/// Run the benchmark and print a markdown report.
pub async fn run(scenario: &Path, samples: usize) -> Result<()> {
    let rss_before = rss_mib();
    let sc = kubesim::Scenario::from_file(scenario)?;
    let t0 = Instant::now();
    let sim = kubesim::Sim::start(sc).await?;
    let load = t0.elapsed();
    let rss_loaded = rss_mib();
    let client = sim.client();
    let nodes = get_json(&client, "/api/v1/nodes").await?;
    let names: Vec<String> = nodes["items"]
        .as_array()
        .context("node list")?
        .iter()
        .filter_map(|n| n["metadata"]["name"].as_str().map(String::from))
        .collect();
    if names.is_empty() {
        bail!("the scenario has no nodes");
    }
    let mut lists = Vec::new();
    let mut victims: Vec<(String, String)> = Vec::new();
    for i in 0..samples {
        let node = &names[(i * 7919) % names.len()];
        let path = format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{node}&limit=500");
        let req = http::Request::get(&path).body(Vec::new())?;
        let t = Instant::now();
        let text = client.request_text(req).await?;
        lists.push(t.elapsed());
        let list: Value = serde_json::from_str(&text)?;
        // Cordon the node first, as a drain would, so the invariant log stays meaningful.
        let cordon = http::Request::patch(format!("/api/v1/nodes/{node}"))
            .header("content-type", "application/strategic-merge-patch+json")
            .body(br#"{"spec":{"unschedulable":true}}"#.to_vec())?;
        client.request_text(cordon).await?;
        // Prefer ReplicaSet pods (budgets usually leave room for one of them), rotating through the list.
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let owned_by = |p: &Value, kind: &str| p["metadata"]["ownerReferences"][0]["kind"] == kind;
        let pick = items
            .iter()
            .cycle()
            .skip(i % items.len().max(1))
            .take(items.len())
            .find(|p| owned_by(p, "ReplicaSet"))
            .or_else(|| {
                items.iter().find(|p| {
                    !owned_by(p, "DaemonSet")
                        && p["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_null()
                })
            });
        if let Some(p) = pick {
            victims.push((
                p["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_string(),
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    let mut evictions = Vec::new();
    let mut codes = std::collections::BTreeMap::new();
    for (ns, name) in &victims {
        let body = json!({"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":name,"namespace":ns}});
        let req = http::Request::post(format!("/api/v1/namespaces/{ns}/pods/{name}/eviction"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body)?)?;
        let t = Instant::now();
        let code = match client.request_text(req).await {
            Ok(_) => 201,
            Err(kube::Error::Api(s)) => s.code,
            Err(e) => return Err(e.into()),
        };
        evictions.push(t.elapsed());
        *codes.entry(code).or_insert(0u32) += 1;
    }
    let rss_after = rss_mib();
    let rows = sim.requests().len();
    let mib = |m: Option<f64>| m.map_or("n/a".to_string(), |m| format!("{m:.0} MiB"));
    println!("## kubesim on {}\n", scenario.display());
    println!("| figure | value |\n|---|---|");
    println!("| nodes | {} |", names.len());
    println!(
        "| load (scenario to serving) | {:.2} s |",
        load.as_secs_f64()
    );
    println!("| resident memory before load | {} |", mib(rss_before));
    println!("| resident memory after load | {} |", mib(rss_loaded));
    println!("| resident memory after the runs | {} |", mib(rss_after));
    println!("\n| request | samples | median | p90 | max |\n|---|---|---|---|---|");
    println!("{}", summary("LIST one node's pods", lists));
    println!("{}", summary("eviction", evictions));
    println!(
        "\nEviction answers by code: {codes:?}; request counter rows: {rows}; violations: {}.",
        sim.violations().len()
    );
    sim.shutdown().await;
    Ok(())
}
