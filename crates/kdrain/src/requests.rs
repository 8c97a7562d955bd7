//! Counts the requests a drain sends, by kind (`"create pods/eviction"`), for the report.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A shared request counter; a node's counter also feeds the drain-wide one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Requests {
    own: Arc<Mutex<BTreeMap<String, u64>>>,
    parent: Option<Arc<Mutex<BTreeMap<String, u64>>>>,
}

impl Requests {
    /// A counter whose counts also go to `self`.
    pub(crate) fn child(&self) -> Requests {
        Requests {
            own: Arc::default(),
            parent: Some(self.own.clone()),
        }
    }

    /// Counts one request of a kind, e.g. `("create", "pods/eviction")`.
    pub(crate) fn count(&self, verb: &str, resource: &str) {
        let key = format!("{verb} {resource}");
        *self
            .own
            .lock()
            .expect("counter lock")
            .entry(key.clone())
            .or_default() += 1;
        if let Some(p) = &self.parent {
            *p.lock().expect("counter lock").entry(key).or_default() += 1;
        }
    }

    /// The counts so far.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, u64> {
        self.own.lock().expect("counter lock").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_counts_feed_the_parent() {
        let all = Requests::default();
        let n1 = all.child();
        n1.count("create", "pods/eviction");
        n1.count("create", "pods/eviction");
        all.count("list", "poddisruptionbudgets");
        assert_eq!(n1.snapshot()["create pods/eviction"], 2);
        assert_eq!(all.snapshot().len(), 2);
        assert_eq!(all.snapshot()["create pods/eviction"], 2);
    }
}
