//! Building a [`Drainer`]: the options checked once (the pod selector parsed, kubectl's zeros
//! said as `None`), the client built without the kube client's own retry layer.

use crate::dispatch::BudgetLedger;
use crate::drainer::Drainer;
use crate::error::DrainError;
use crate::events::EventSender;
use crate::options::DrainOptions;
use crate::select::PodFilter;

/// Builds a [`Drainer`]; [`DrainerBuilder::build`] checks the options once, before any request.
///
/// ```
/// # #[tokio::main]
/// # async fn main() {
/// # let sim = kubesim::Sim::start(kubesim::Scenario::from_yaml_str("nodes: [{name: n1}]").unwrap()).await.unwrap();
/// # let client = sim.client();
/// use kdrain::{DrainOptions, Drainer};
///
/// let (tx, _rx) = tokio::sync::mpsc::unbounded_channel::<kdrain::Stamped>();
/// let drainer = Drainer::builder(client)
///     .options(DrainOptions { ignore_daemonsets: true, ..DrainOptions::kubectl() })
///     .events(tx)
///     .build()
///     .expect("valid options");
/// assert!(drainer.options().ignore_daemonsets);
///
/// // bad input is found here, before anything is sent
/// let bad = Drainer::builder(sim.client())
///     .options(DrainOptions { pod_selector: Some("app in (".into()), ..DrainOptions::kubectl() })
///     .build();
/// assert!(matches!(bad, Err(kdrain::DrainError::Options(_))));
/// # }
/// ```
#[must_use]
pub struct DrainerBuilder {
    client: kube::Client,
    options: DrainOptions,
    events: Option<EventSender>,
    filters: Vec<PodFilter>,
    budgets: Option<BudgetLedger>,
}

impl DrainerBuilder {
    pub(crate) fn new(client: kube::Client) -> Self {
        DrainerBuilder {
            client,
            options: DrainOptions::kubectl(),
            events: None,
            filters: Vec::new(),
            budgets: None,
        }
    }

    /// The drain options (default: [`DrainOptions::kubectl`]).
    pub fn options(mut self, options: DrainOptions) -> Self {
        self.options = options;
        self
    }

    /// Sends progress events to `tx` (see [`Drainer::with_events`]).
    pub fn events(mut self, tx: impl Into<EventSender>) -> Self {
        self.events = Some(tx.into());
        self
    }

    /// Adds a custom filter (see [`Drainer::with_filter`]).
    pub fn filter(mut self, filter: PodFilter) -> Self {
        self.filters.push(filter);
        self
    }

    /// Counts evictions spent under disruption budgets in `ledger`, shared with every other
    /// drain built with a clone of it: an eviction in flight (or accepted and not yet counted
    /// by the budget's status) in any of them counts against its budget for all, so drains
    /// running side by side in one process never spend the same allowance twice (without it,
    /// each drain counts its own and learns of the others from the server's 429s). One drain of
    /// several nodes needs none: its nodes already share one dispatcher.
    pub fn shared_budgets(mut self, ledger: BudgetLedger) -> Self {
        self.budgets = Some(ledger);
        self
    }

    /// The drainer, or [`DrainError::Options`] naming what is wrong with the options.
    pub fn build(self) -> Result<Drainer, DrainError> {
        let mut drainer = Drainer::new(self.client, self.options);
        if let Err(e) = &drainer.checked {
            return Err(DrainError::Options(e.clone()));
        }
        drainer.events = self.events;
        drainer.filters = self.filters;
        drainer.budgets = self.budgets;
        Ok(drainer)
    }
}

impl Drainer {
    /// A builder for a drainer using `client` (built with `default_retry = false`; see
    /// [`Drainer::client_from_config`]).
    pub fn builder(client: kube::Client) -> DrainerBuilder {
        DrainerBuilder::new(client)
    }

    /// A client from a `kube::Config` with the kube client's own retry layer off
    /// (`default_retry = false`): kdrain owns every retry and wait, and the client's layer
    /// would otherwise hide 429s for minutes.
    pub fn client_from_config(mut config: kube::Config) -> Result<kube::Client, DrainError> {
        config.default_retry = false;
        kube::Client::try_from(config).map_err(|source| DrainError::Api {
            context: "building the Kubernetes client".to_string(),
            source,
        })
    }
}
