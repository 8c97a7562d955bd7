//! Ctrl-C during a drain. The first press asks the engine to stop cleanly (nothing more is sent,
//! answers to requests in flight are awaited, the report names every pod left); a second press
//! quits at once for someone who cannot wait for that.

use tokio::sync::{mpsc, oneshot};

/// Listens for Ctrl-C from now on and reports every press on the returned channel.
///
/// The handler is installed before this returns, so a press that comes while the drain is still
/// reading or cordoning is not lost (and does not kill the process with the default action).
pub fn presses() -> mpsc::UnboundedReceiver<()> {
    let (tx, rx) = mpsc::unbounded_channel();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::interrupt()) {
            Ok(mut interrupts) => {
                tokio::spawn(async move {
                    while interrupts.recv().await.is_some() {
                        if tx.send(()).is_err() {
                            return;
                        }
                    }
                });
            }
            Err(error) => tracing::warn!("cannot listen for Ctrl-C: {error}"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                if tx.send(()).is_err() {
                    return;
                }
            }
        });
    }
    rx
}

/// A stop request for [`kdrain::Drainer::drain_until`]: the returned future completes when the
/// sender is used, and never if the sender is dropped unused (dropping it is not a request).
pub fn stop_switch() -> (
    oneshot::Sender<()>,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (tx, rx) = oneshot::channel::<()>();
    let stop = async move {
        if rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    (tx, stop)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn the_stop_future_completes_only_when_asked() {
        let (tx, stop) = stop_switch();
        tx.send(()).expect("receiver alive");
        tokio::time::timeout(Duration::from_secs(5), stop)
            .await
            .expect("stop completes once asked");

        let (tx, stop) = stop_switch();
        drop(tx);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), stop)
                .await
                .is_err(),
            "dropping the switch is not a stop request"
        );
    }
}
