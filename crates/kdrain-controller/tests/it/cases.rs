//! The controller's shared cases (crates/controller-cases) on kubesim: each case on its own
//! simulator, controllers run in the test process with leader election on a Lease in
//! `default` (3 s leases), each serving /metrics on a port of its own. `cargo xtask e2e --only
//! controller` runs the same cases on the real control plane.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use kdrain_controller::leader::{self, Election};
use kdrain_controller::metrics::Metrics;
use kdrain_controller::server::{self, Health};
use kdrain_controller_cases::{Case, Cluster, Query};
use kubesim::{Scenario, Sim};
use tokio::task::JoinHandle;

struct Instance {
    stop: tokio::sync::oneshot::Sender<()>,
    task: JoinHandle<()>,
    server: JoinHandle<std::io::Result<()>>,
    addr: SocketAddr,
}

/// One case's simulator and the controllers it runs.
pub struct SimCluster {
    sim: Sim,
    instances: Mutex<HashMap<String, Instance>>,
}

impl SimCluster {
    async fn start(case: Case) -> SimCluster {
        let scenario = Scenario::from_yaml_str(case.scenario()).expect("scenario");
        let sim = Sim::start(scenario).await.expect("kubesim starts");
        sim.install_crd(&kdrain_controller::crd::crd_yaml())
            .expect("the CRD installs");
        let c = SimCluster {
            sim,
            instances: Mutex::new(HashMap::new()),
        };
        if !case.own_controller() {
            c.start_controller("controller-0")
                .await
                .expect("controller");
        }
        c
    }

    async fn shutdown(self) {
        let ids: Vec<String> = self.instances.lock().unwrap().keys().cloned().collect();
        for id in ids {
            let _ = self.stop_controller(&id).await;
        }
        self.sim.shutdown().await;
    }

    fn take(&self, id: &str) -> Option<Instance> {
        self.instances.lock().unwrap().remove(id)
    }
}

impl Cluster for SimCluster {
    fn client(&self) -> kube::Client {
        self.sim.client()
    }

    fn lease_namespace(&self) -> &str {
        "default"
    }

    async fn start_controller(&self, id: &str) -> Result<()> {
        let metrics = Arc::new(Metrics::new());
        let listener = server::bind("127.0.0.1:0".parse()?).await?;
        let addr = listener.local_addr()?;
        let health = Health {
            metrics: metrics.clone(),
            ready: Arc::new(AtomicBool::new(true)),
        };
        let server = tokio::spawn(server::serve(listener, health));
        let client = self.sim.client();
        let settings = kdrain_controller::Settings {
            instance: Some(id.to_string()),
            ..Default::default()
        };
        let election = Election {
            namespace: "default".into(),
            identity: id.into(),
            lease_seconds: 3,
            renew_before_seconds: 1,
        };
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let work_client = client.clone();
        let work_metrics = metrics.clone();
        let task = tokio::spawn(async move {
            let work = move || {
                kdrain_controller::run(
                    work_client.clone(),
                    settings.clone(),
                    work_metrics.clone(),
                    std::future::pending(),
                )
            };
            let stop = async move {
                let _ = rx.await;
            };
            if let Err(e) = leader::lead(client, election, metrics, work, stop).await {
                panic!("leader election: {e}");
            }
        });
        self.instances.lock().unwrap().insert(
            id.to_string(),
            Instance {
                stop,
                task,
                server,
                addr,
            },
        );
        Ok(())
    }

    async fn kill_controller(&self, id: &str) -> Result<()> {
        let i = self.take(id).context("no such controller")?;
        i.task.abort();
        i.server.abort();
        let _ = i.task.await;
        Ok(())
    }

    async fn stop_controller(&self, id: &str) -> Result<()> {
        let Some(i) = self.take(id) else {
            return Ok(());
        };
        let _ = i.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(30), i.task).await;
        i.server.abort();
        Ok(())
    }

    async fn http_get(&self, id: &str, path: &str) -> Result<(u16, String)> {
        let addr = self
            .instances
            .lock()
            .unwrap()
            .get(id)
            .map(|i| i.addr)
            .context("no such controller")?;
        kdrain_controller_cases::support::http_get(addr, path).await
    }

    async fn requests(&self, q: Query<'_>) -> Result<u64> {
        Ok(self
            .sim
            .requests()
            .iter()
            .filter(|r| {
                r.verb == q.verb && r.resource == q.resource && r.subresource == q.subresource
            })
            .filter(|r| q.code.is_none_or(|c| r.code == c))
            .map(|r| r.count)
            .sum())
    }

    async fn findings(&self, _namespace: &str, _targets: &[&str]) -> Result<Vec<String>> {
        Ok(self
            .sim
            .violations()
            .into_iter()
            .map(|v| format!("{}: {}", v.kind, v.message))
            .collect())
    }
}

async fn run(case: Case) {
    let c = SimCluster::start(case).await;
    let result = case.run(&c).await;
    c.shutdown().await;
    match result {
        Ok(line) => eprintln!("{}: {line}", case.id()),
        Err(e) => panic!("{}: {e:#}", case.id()),
    }
}

#[tokio::test]
async fn idle_fills_the_plan_and_changes_nothing() {
    run(Case::IdleFillsThePlan).await
}

#[tokio::test]
async fn stages_go_idle_cordon_drain_complete() {
    run(Case::StagesInOrder).await
}

#[tokio::test]
async fn complete_uncordons_only_what_the_drain_cordoned() {
    run(Case::CompleteUncordonsOnlyItsOwn).await
}

#[tokio::test]
async fn two_nodedrains_sharing_a_budget_never_break_it() {
    run(Case::SharedBudget).await
}

#[tokio::test]
async fn a_deleted_nodedrain_stops_and_restores() {
    run(Case::DeletedRestores).await
}

#[tokio::test]
async fn the_schema_rejects_what_it_can_express() {
    run(Case::SchemaRejects).await
}

#[tokio::test]
async fn what_the_schema_cannot_check_is_refused_with_one_line() {
    run(Case::RefusedWithOneLine).await
}

#[tokio::test]
async fn a_node_claimed_twice_refuses_the_later_drain_naming_the_other() {
    run(Case::ClaimedTwice).await
}

#[tokio::test]
async fn a_plan_that_cannot_complete_is_refused_before_any_change() {
    run(Case::PlanRefused).await
}

#[tokio::test]
async fn events_are_aggregated_not_one_per_retry() {
    run(Case::EventsAggregated).await
}

#[tokio::test]
async fn metrics_after_a_drain() {
    run(Case::MetricsAfterADrain).await
}

#[tokio::test]
async fn a_restarted_controller_resumes_the_drain() {
    run(Case::RestartResumes).await
}

#[tokio::test]
async fn the_standby_takes_over_when_the_leader_is_killed_mid_drain() {
    run(Case::Failover).await
}

/// Every case has its test above (a new case without one would run on the real control plane
/// only).
#[test]
fn every_case_runs_here() {
    let source = include_str!("cases.rs");
    for case in Case::ALL {
        assert!(
            source.contains(&format!("run(Case::{case:?})")),
            "no test runs {case:?}"
        );
    }
}
