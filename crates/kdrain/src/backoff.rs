//! Every backoff kdrain uses, in one place: exponential with jitter, each named for what it
//! paces, so the delays can be read and compared side by side.

use std::time::Duration;

use backon::BackoffBuilder;

/// A sequence of delays; `next()` gives the next one (`None` when the retries are used up).
pub(crate) type Backoff = backon::ExponentialBackoff;

/// Reads and cordon patches ([`crate::retry`]): from `first` up to 20 × `first`, at most
/// `retries` times.
pub(crate) fn request(first: Duration, retries: usize) -> Backoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(first)
        .with_max_delay(first * 20)
        .with_jitter()
        .with_max_times(retries)
        .build()
}

/// Re-opening a pod watch or re-listing after an error ([`crate::watch`]): 100 ms up to 5 s,
/// for as long as the drain runs.
pub(crate) fn rewatch() -> Backoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build()
}

/// The longest [`rewatch`] delay.
pub(crate) const REWATCH_MAX: Duration = Duration::from_secs(5);

/// A pod's eviction after a transient error (5xx, a broken connection): 200 ms up to 10 s, for
/// as long as the drain runs. The jitter comes from `seed`, so the dispatcher's core stays
/// deterministic under test.
pub(crate) fn eviction(seed: u64) -> Backoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(EVICTION_MAX)
        .with_jitter()
        .with_jitter_seed(seed)
        .without_max_times()
        .build()
}

/// The longest [`eviction`] delay.
pub(crate) const EVICTION_MAX: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_backoff_stops_after_its_retries_and_stays_in_bounds() {
        let first = Duration::from_millis(100);
        let delays: Vec<Duration> = request(first, 5).collect();
        assert_eq!(delays.len(), 5);
        // jitter adds up to one more delay on top of the exponential one
        assert!(
            delays.iter().all(|d| *d >= first && *d <= first * 40),
            "{delays:?}"
        );
    }

    #[test]
    fn eviction_backoff_is_reproducible_from_its_seed() {
        let a: Vec<Duration> = eviction(7).take(6).collect();
        let b: Vec<Duration> = eviction(7).take(6).collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|d| *d <= EVICTION_MAX * 2), "{a:?}");
    }
}
