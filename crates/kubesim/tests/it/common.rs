//! Shared helpers: start a simulator from YAML, a raw HTTP/1.1 client for exact wire checks,
//! and bounded polling.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kubesim::{Scenario, Sim};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Upper bound for any wait in a test.
pub const WAIT: Duration = Duration::from_secs(20);

/// Start a simulator from scenario YAML.
pub async fn sim(yaml: &str) -> Sim {
    let sc = Scenario::from_yaml_str(yaml).expect("scenario");
    Sim::start(sc).await.expect("sim starts")
}

/// A raw HTTP response.
#[derive(Debug)]
pub struct Raw {
    pub code: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("JSON body ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&b[..pos]).unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = pos + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}

/// Send one request with `Connection: close` and read the whole response.
pub async fn raw(
    sim: &Sim,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Raw {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(sim.addr())
            .await
            .expect("connect");
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            sim.addr(),
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        s.write_all(body).await.expect("write body");
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.expect("read");
        buf
    };
    let buf = tokio::time::timeout(WAIT, fut)
        .await
        .expect("raw request timed out");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let code: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        })
        .collect();
    let mut body = buf[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Raw {
        code,
        headers,
        body,
    }
}

/// JSON request helper.
pub async fn raw_json(sim: &Sim, method: &str, path: &str, body: &Value) -> Raw {
    let b = serde_json::to_vec(body).unwrap();
    raw(
        sim,
        method,
        path,
        &[("Content-Type", "application/json")],
        &b,
    )
    .await
}

/// Poll `check` every 50 ms until it returns Some, panicking after [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let r = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(v) = check().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    r.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The name of the first pod whose name starts with `prefix`.
pub async fn pod_with_prefix(pods: &Api<Pod>, prefix: &str) -> Pod {
    pods.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|p| p.metadata.name.as_deref().unwrap_or("").starts_with(prefix))
        .unwrap_or_else(|| panic!("no pod starting with {prefix}"))
}

/// The pods of the `default` namespace, through the real kube client.
pub fn default_pods(s: &Sim) -> Api<Pod> {
    Api::namespaced(s.client(), "default")
}

/// The names of every pod `pods` lists, in list order.
pub async fn pod_names(pods: &Api<Pod>) -> Vec<String> {
    pods.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| p.metadata.name.unwrap())
        .collect()
}

/// `GET path` over raw HTTP, answered as JSON.
pub async fn get_json(sim: &Sim, path: &str) -> Value {
    get_raw(sim, path).await.json()
}

/// Delete options that set only the grace period.
pub fn grace(seconds: u32) -> kube::api::DeleteParams {
    kube::api::DeleteParams {
        grace_period_seconds: Some(seconds),
        ..Default::default()
    }
}

/// `GET path` over raw HTTP, with no headers.
pub async fn get_raw(sim: &Sim, path: &str) -> Raw {
    raw(sim, "GET", path, &[], b"").await
}

/// Runs `kubectl ARGS` with `dir/kubeconfig`, its cache and HOME in `dir`, waited for at most 60 s.
pub async fn kubectl_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(dir.join("kubeconfig"))
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .args(args)
            .env("HOME", dir)
            .env_remove("KUBECONFIG")
            .output(),
    )
    .await
    .unwrap()
    .unwrap()
}
