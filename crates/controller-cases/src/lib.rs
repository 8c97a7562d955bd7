//! The controller's test cases, written once against [`Cluster`]: kdrain-controller's tests run
//! each on its own kubesim (the controller in the test process), and `cargo xtask e2e --only
//! controller` runs them on the real control plane (the manifests of deploy/controller applied
//! through the API server, `kdrain controller` run as a process with its ServiceAccount's token).
//!
//! Each [`Case`] brings its scenario (kubesim's YAML). The scenarios use disjoint node names and
//! namespaces, and their pods stay on their case's nodes (a `case` node label and the workloads'
//! `nodeSelector`), so the real tier can materialise several scenarios on one control plane and
//! run their cases side by side under one controller ([`Case::own_controller`] is false); cases
//! that start, kill or measure controllers run with controllers of their own. The queries a case
//! makes about the controller's requests and the invariant findings are scoped to its namespace
//! and its nodes for that reason (kubesim serves one case only, so there everything is the
//! case's).
//!
//! Cases return `Err` with what went wrong (never panic), and on success a short line for the
//! report (the failover case's timeline, for example).

#![deny(missing_docs)]
#![allow(async_fn_in_trait)]

mod bad_specs;
mod budgets;
mod failover;
mod lifecycle;
mod observability;
mod stages;
pub mod support;

use anyhow::Result;

/// Requests the controller sent, counted by the cluster.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// Kubernetes verb (`create`, `patch`, `list`...).
    pub verb: &'a str,
    /// Plural resource (`pods`, `nodes`).
    pub resource: &'a str,
    /// Subresource (`eviction`) or "".
    pub subresource: &'a str,
    /// Only requests answered with this code.
    pub code: Option<u16>,
    /// Only requests about objects in this namespace (namespaced resources) or with one of
    /// these names (cluster-scoped ones). kubesim serves one case only and ignores the scope.
    pub scope: Scope<'a>,
}

/// Which objects a [`Query`] or a findings check is about.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Objects in this namespace.
    Namespace(&'a str),
    /// Cluster-scoped objects with these names.
    Names(&'a [&'a str]),
}

/// A cluster the cases run on, with the controller's NodeDrain CRD installed.
pub trait Cluster: Sync {
    /// A client with an administrator's rights: the cases' own requests.
    fn client(&self) -> kube::Client;
    /// The namespace of the controllers' leader-election Lease.
    fn lease_namespace(&self) -> &str;
    /// Starts controller instance `id` (leader election on the Lease; it leads when no other
    /// instance holds it).
    async fn start_controller(&self, id: &str) -> Result<()>;
    /// Ends instance `id` at once, as SIGKILL would: nothing is cleaned up, the Lease is not
    /// released.
    async fn kill_controller(&self, id: &str) -> Result<()>;
    /// Stops instance `id` as SIGTERM would (the Lease is released).
    async fn stop_controller(&self, id: &str) -> Result<()>;
    /// GETs `path` (`/metrics`, `/healthz`, `/readyz`) from instance `id`: (code, body).
    async fn http_get(&self, id: &str, path: &str) -> Result<(u16, String)>;
    /// How many requests the controller sent that match `q`.
    async fn requests(&self, q: Query<'_>) -> Result<u64>;
    /// The invariant findings (budget below desired, a DaemonSet or mirror pod removed, a pod
    /// removed from a node not drained) about objects in `namespace`, for a drain of `targets`.
    async fn findings(&self, namespace: &str, targets: &[&str]) -> Result<Vec<String>>;
}

/// One case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// Stage Idle plans, fills the status and changes nothing.
    IdleFillsThePlan,
    /// Idle → Cordon → Drain → Complete, each stage's phase and changes.
    StagesInOrder,
    /// Complete uncordons only what the NodeDrain cordoned.
    CompleteUncordonsOnlyItsOwn,
    /// Two NodeDrains on different nodes under one budget never break it.
    SharedBudget,
    /// A deleted NodeDrain stops its drain and restores what it cordoned.
    DeletedRestores,
    /// The CRD's schema and validation rules reject what they can express.
    SchemaRejects,
    /// What the schema cannot check is Refused with one line, nothing changed.
    RefusedWithOneLine,
    /// A node claimed by two NodeDrains: the later one is Refused naming the other.
    ClaimedTwice,
    /// A plan that cannot complete is Refused before any change.
    PlanRefused,
    /// Events on the NodeDrain and its Node, one per budget and needs/has, not one per retry.
    EventsAggregated,
    /// /metrics after a drain (a controller of its own, so the counts are the case's).
    MetricsAfterADrain,
    /// A controller killed mid-drain and started again resumes the drain.
    RestartResumes,
    /// The leader SIGKILLed mid-drain: the standby takes over and finishes.
    Failover,
}

impl Case {
    /// Every case.
    pub const ALL: [Case; 13] = [
        Case::IdleFillsThePlan,
        Case::StagesInOrder,
        Case::CompleteUncordonsOnlyItsOwn,
        Case::SharedBudget,
        Case::DeletedRestores,
        Case::SchemaRejects,
        Case::RefusedWithOneLine,
        Case::ClaimedTwice,
        Case::PlanRefused,
        Case::EventsAggregated,
        Case::MetricsAfterADrain,
        Case::RestartResumes,
        Case::Failover,
    ];

    /// A short name (also the case's namespace).
    pub fn id(self) -> &'static str {
        match self {
            Case::IdleFillsThePlan => "idle",
            Case::StagesInOrder => "stages",
            Case::CompleteUncordonsOnlyItsOwn => "complete",
            Case::SharedBudget => "shared",
            Case::DeletedRestores => "deleted",
            Case::SchemaRejects => "schema",
            Case::RefusedWithOneLine => "refused",
            Case::ClaimedTwice => "claimed",
            Case::PlanRefused => "planrefused",
            Case::EventsAggregated => "events",
            Case::MetricsAfterADrain => "metrics",
            Case::RestartResumes => "restart",
            Case::Failover => "failover",
        }
    }

    /// The scenario the case runs on (kubesim's YAML).
    pub fn scenario(self) -> &'static str {
        match self {
            Case::IdleFillsThePlan => stages::IDLE,
            Case::StagesInOrder => stages::STAGES,
            Case::CompleteUncordonsOnlyItsOwn => stages::COMPLETE,
            Case::SharedBudget => budgets::SHARED,
            Case::DeletedRestores => lifecycle::DELETED,
            Case::SchemaRejects => bad_specs::SCHEMA,
            Case::RefusedWithOneLine => bad_specs::REFUSED,
            Case::ClaimedTwice => bad_specs::CLAIMED,
            Case::PlanRefused => bad_specs::PLAN_REFUSED,
            Case::EventsAggregated => observability::EVENTS,
            Case::MetricsAfterADrain => observability::METRICS,
            Case::RestartResumes => lifecycle::RESTART,
            Case::Failover => failover::FAILOVER,
        }
    }

    /// Whether the case starts and stops controllers itself. The others expect one running
    /// controller, which may also serve other cases at the same time.
    pub fn own_controller(self) -> bool {
        matches!(
            self,
            Case::MetricsAfterADrain | Case::RestartResumes | Case::Failover
        )
    }

    /// Runs the case on `c`; returns a line for the report.
    pub async fn run<C: Cluster>(self, c: &C) -> Result<String> {
        match self {
            Case::IdleFillsThePlan => stages::idle_fills_the_plan(c).await,
            Case::StagesInOrder => stages::stages_in_order(c).await,
            Case::CompleteUncordonsOnlyItsOwn => stages::complete_uncordons_only_its_own(c).await,
            Case::SharedBudget => budgets::shared_budget(c).await,
            Case::DeletedRestores => lifecycle::deleted_restores(c).await,
            Case::SchemaRejects => bad_specs::schema_rejects(c).await,
            Case::RefusedWithOneLine => bad_specs::refused_with_one_line(c).await,
            Case::ClaimedTwice => bad_specs::claimed_twice(c).await,
            Case::PlanRefused => bad_specs::plan_refused(c).await,
            Case::EventsAggregated => observability::events_aggregated(c).await,
            Case::MetricsAfterADrain => observability::metrics_after_a_drain(c).await,
            Case::RestartResumes => lifecycle::restart_resumes(c).await,
            Case::Failover => failover::failover(c).await,
        }
    }
}
