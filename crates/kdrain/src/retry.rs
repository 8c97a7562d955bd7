//! Bounded retries of idempotent requests (reads, the cordon and uncordon patches) when the
//! answer says "try again": 429 and 5xx from an overloaded or restarting API server, and
//! connections that broke. Without them one unlucky request would fail a whole drain before it
//! started. Evictions have their own retry logic in the dispatcher.

use std::future::Future;
use std::time::Duration;

/// Attempts for one idempotent request (the first one included).
pub(crate) const ATTEMPTS: usize = 6;

/// How long one attempt may wait for its answer before it counts as a broken connection (a
/// safety net for a server that accepts requests and never answers; clients should also set
/// `read_timeout`).
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest Retry-After honoured here; a server asking for more gets the error back.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// When a retry may help: `Some(minimum wait)` (the server's Retry-After, or zero).
pub(crate) fn transient(e: &kube::Error) -> Option<Duration> {
    match e {
        kube::Error::Api(s) => match s.code {
            429 | 500 | 502 | 503 | 504 => {
                let ra = s
                    .details
                    .as_ref()
                    .map(|d| u64::from(d.retry_after_seconds))
                    .unwrap_or(0);
                let ra = Duration::from_secs(ra);
                (ra <= MAX_RETRY_AFTER).then_some(ra)
            }
            _ => None,
        },
        // the connection broke or the stream was cut: the request may simply be sent again
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            Some(Duration::ZERO)
        }
        _ => None,
    }
}

/// Runs `f` until it succeeds, fails for good, or [`ATTEMPTS`] are used up, backing off
/// exponentially with jitter (100 ms to 2 s) and never sooner than the server's Retry-After.
/// Only for requests that may safely be sent twice.
pub(crate) async fn idempotent<T, F, Fut>(what: &str, f: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    with_backoff(what, Duration::from_millis(100), f).await
}

async fn with_backoff<T, F, Fut>(what: &str, first: Duration, mut f: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut backoff = crate::backoff::request(first, ATTEMPTS - 1);
    loop {
        let e = match tokio::time::timeout(ATTEMPT_TIMEOUT, f()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => e,
            Err(_) => kube::Error::Service(Box::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
            ))),
        };
        let Some(at_least) = transient(&e) else {
            return Err(e);
        };
        let Some(wait) = backoff.next() else {
            return Err(e);
        };
        tracing::debug!(what, "retrying after a transient error: {e}");
        tokio::time::sleep(wait.max(at_least)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, retry_after: u32) -> kube::Error {
        let mut s = kube::core::Status::failure("x", "y").with_code(code);
        if retry_after > 0 {
            s.details = Some(
                serde_json::from_value(serde_json::json!({ "retryAfterSeconds": retry_after }))
                    .unwrap(),
            );
        }
        kube::Error::Api(Box::new(s))
    }

    #[test]
    fn which_errors_are_worth_a_retry() {
        assert_eq!(transient(&api(503, 0)), Some(Duration::ZERO));
        assert_eq!(transient(&api(429, 1)), Some(Duration::from_secs(1)));
        assert_eq!(transient(&api(429, 60)), None, "too long to wait here");
        assert_eq!(transient(&api(404, 0)), None);
        assert_eq!(transient(&api(403, 0)), None);
        let bad_json = serde_json::from_str::<u8>("{").unwrap_err();
        assert_eq!(transient(&kube::Error::SerdeError(bad_json)), None);
    }

    #[tokio::test]
    async fn gives_up_after_the_attempts() {
        let ms = Duration::from_millis(1);
        let mut calls = 0;
        let r: Result<(), _> = with_backoff("test", ms, || {
            calls += 1;
            async { Err(api(500, 0)) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, ATTEMPTS);
        let mut calls = 0;
        let r = with_backoff("test", ms, || {
            calls += 1;
            let n = calls;
            async move { if n < 3 { Err(api(503, 0)) } else { Ok(n) } }
        })
        .await;
        assert_eq!(r.unwrap(), 3);
        let mut calls = 0;
        let r: Result<(), _> = with_backoff("test", ms, || {
            calls += 1;
            async { Err(api(404, 0)) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 1, "a 404 is final");
    }
}
