//! Integration tests: the controller against a real in-process kubesim over HTTP (the real kube
//! client, the CRD of deploy/controller/crd.yaml installed through the API).

mod budgets;
mod capacity;
mod cases;
mod rbac;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kdrain_controller::metrics::Metrics;
use kdrain_controller::{NodeDrain, Phase, Settings};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kubesim::{Scenario, Sim};
use tokio::task::JoinHandle;

/// Every wait in the tests is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(60);

/// A simulated cluster with the CRD installed and a controller running in-process.
pub struct Cluster {
    pub sim: Sim,
    pub api: Api<NodeDrain>,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    controller: Option<(tokio::sync::oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Cluster {
    /// Starts kubesim from `yaml`, installs the CRD and starts a controller.
    pub async fn start(yaml: &str) -> Cluster {
        Self::start_with(yaml, Settings::default()).await
    }

    /// [`Cluster::start`] with controller settings.
    pub async fn start_with(yaml: &str, settings: Settings) -> Cluster {
        let scenario = Scenario::from_yaml_str(yaml).expect("scenario");
        let sim = Sim::start(scenario).await.expect("kubesim starts");
        sim.install_crd(&kdrain_controller::crd::crd_yaml())
            .expect("the CRD installs");
        let api = Api::all(sim.client());
        let mut c = Cluster {
            sim,
            api,
            metrics: Arc::new(Metrics::new()),
            settings,
            controller: None,
        };
        c.start_controller();
        c
    }

    /// Starts the controller (again).
    pub fn start_controller(&mut self) {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let run = kdrain_controller::run(
            self.sim.client(),
            self.settings.clone(),
            self.metrics.clone(),
            async move {
                let _ = rx.await;
            },
        );
        self.controller = Some((tx, tokio::spawn(run)));
    }

    /// Ends the controller at once, as a killed process would (nothing is cleaned up).
    pub async fn kill_controller(&mut self) {
        if let Some((_, handle)) = self.controller.take() {
            handle.abort();
            let _ = handle.await;
        }
    }

    /// Creates a NodeDrain from the YAML of its spec.
    pub async fn create(&self, name: &str, spec_yaml: &str) -> Result<NodeDrain, kube::Error> {
        let spec = serde_yaml::from_str(spec_yaml).expect("spec YAML");
        self.api
            .create(&PostParams::default(), &NodeDrain::new(name, spec))
            .await
    }

    /// Creates a NodeDrain from the YAML of its spec as given, without the Rust types' checks
    /// (for what only the server's schema rejects).
    pub async fn create_raw(&self, name: &str, spec_yaml: &str) -> Result<(), kube::Error> {
        use kube::core::{ApiResource, DynamicObject};
        let ar = ApiResource::erase::<NodeDrain>(&());
        let api: Api<DynamicObject> = Api::all_with(self.sim.client(), &ar);
        let spec: serde_json::Value = serde_yaml::from_str(spec_yaml).expect("spec YAML");
        let mut obj = DynamicObject::new(name, &ar);
        obj.data = serde_json::json!({ "spec": spec });
        api.create(&PostParams::default(), &obj).await.map(|_| ())
    }

    /// Sets the stage of NodeDrain `name`.
    pub async fn set_stage(&self, name: &str, stage: &str) {
        let body = serde_json::json!({"spec": {"stage": stage}});
        self.api
            .patch(name, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .expect("stage patched");
    }

    /// Waits until NodeDrain `name` satisfies `pred` (panics with its last state after LIMIT).
    pub async fn wait(
        &self,
        name: &str,
        what: &str,
        pred: impl Fn(&NodeDrain) -> bool,
    ) -> NodeDrain {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let nd = self.api.get_opt(name).await.expect("get nodedrain");
            if let Some(nd) = &nd
                && pred(nd)
            {
                return nd.clone();
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "NodeDrain {name}: not {what} within {LIMIT:?}; last: {}",
                    serde_json::to_string_pretty(&nd.map(|n| n.status)).unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until NodeDrain `name` is in `phase`.
    pub async fn wait_phase(&self, name: &str, phase: Phase) -> NodeDrain {
        self.wait(name, &format!("{phase:?}"), |nd| {
            phase_of(nd) == Some(phase)
        })
        .await
    }

    /// Node `name`.
    pub async fn node(&self, name: &str) -> Node {
        Api::<Node>::all(self.sim.client())
            .get(name)
            .await
            .expect("node")
    }

    /// The names of the pods on node `name` (not terminating).
    pub async fn pods_on(&self, name: &str) -> Vec<String> {
        kdrain_controller_cases::support::pods_on_node(&self.sim.client(), name)
            .await
            .expect("pods")
    }

    /// Requests the simulator answered for `verb` `resource` (subresource) with `code`.
    pub fn requests(
        &self,
        verb: &str,
        resource: &str,
        subresource: &str,
        code: Option<u16>,
    ) -> u64 {
        self.sim
            .requests()
            .iter()
            .filter(|r| r.verb == verb && r.resource == resource && r.subresource == subresource)
            .filter(|r| code.is_none_or(|c| r.code == c))
            .map(|r| r.count)
            .sum()
    }

    /// Stops the controller and the simulator.
    pub async fn shutdown(mut self) {
        if let Some((tx, handle)) = self.controller.take() {
            let _ = tx.send(());
            let _ = tokio::time::timeout(LIMIT, handle).await;
        }
        self.sim.shutdown().await;
    }
}

// The NodeDrain readers the shared cases use serve these tests too.
pub use kdrain_controller_cases::support::{condition, cordon_state_of as cordon_state, phase_of};

/// Records every distinct phase NodeDrain `name` goes through, in order, from a watch.
pub fn record_phases(api: &Api<NodeDrain>, name: &str) -> Arc<std::sync::Mutex<Vec<Phase>>> {
    use futures::StreamExt;
    use kube::runtime::watcher;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let stream = watcher::watcher(api.clone(), cfg);
    let out = seen.clone();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            let objs = match ev {
                Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => vec![o],
                _ => vec![],
            };
            for o in objs {
                if let Some(p) = phase_of(&o) {
                    let mut v = out.lock().unwrap();
                    if v.last() != Some(&p) {
                        v.push(p);
                    }
                }
            }
        }
    });
    seen
}
