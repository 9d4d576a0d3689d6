//! A model call outlives a client that hangs up: the provider bills a call it has started whether
//! or not anyone reads the answer, so the call goes on in the background and is billed for what
//! the upstream reports, as LiteLLM lets its call run and logs it. It stays bounded: the
//! deployment's `timeout` and the router's retries end it as they would have with the client
//! still there. A stream cut by its client is different: its answer had started, so dropping it
//! stops the upstream and bills what was generated up to then (`relay`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

/// Calls running on after their client left, counted so that a shutdown can wait for them (and
/// bill them) as it waits for the requests of open connections. One count per process: it is
/// the process that must not exit under them.
static RUNNING_ON: AtomicUsize = AtomicUsize::new(0);
static ALL_FINISHED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Resolves once no call is running on without its client.
pub(crate) async fn all_finished() {
    loop {
        let notified = ALL_FINISHED.notified();
        tokio::pin!(notified);
        // Registered before the count is read, so a call ending in between still wakes us.
        notified.as_mut().enable();
        if RUNNING_ON.load(Ordering::Acquire) == 0 {
            return;
        }
        notified.await;
    }
}

/// One call counted in [`RUNNING_ON`] while it lives.
struct RunningOn;

impl RunningOn {
    fn start() -> RunningOn {
        RUNNING_ON.fetch_add(1, Ordering::AcqRel);
        RunningOn
    }
}

impl Drop for RunningOn {
    fn drop(&mut self) {
        if RUNNING_ON.fetch_sub(1, Ordering::AcqRel) == 1 {
            ALL_FINISHED.notify_waiters();
        }
    }
}

/// Runs `F` to its end even if this future is dropped before it finishes (the connection that
/// awaited it closed): the rest then runs as a task of its own and its output is dropped.
pub(crate) struct Outlive<F: Future + Send + 'static>
where
    F::Output: Send + 'static,
{
    /// Boxed so that it can move to a task of its own when the client goes; `None` once done.
    call: Option<Pin<Box<F>>>,
}

impl<F: Future + Send + 'static> Outlive<F>
where
    F::Output: Send + 'static,
{
    pub(crate) fn new(call: F) -> Self {
        Outlive { call: Some(Box::pin(call)) }
    }
}

impl<F: Future + Send + 'static> Future for Outlive<F>
where
    F::Output: Send + 'static,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(call) = self.call.as_mut() else {
            panic!("Outlive polled after it finished");
        };
        let out = std::task::ready!(call.as_mut().poll(cx));
        self.call = None;
        Poll::Ready(out)
    }
}

impl<F: Future + Send + 'static> Drop for Outlive<F>
where
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        if let Some(rest) = self.call.take() {
            // Outside a runtime (it is shutting down) there is nothing left to run it on.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let counted = RunningOn::start();
                runtime.spawn(async move {
                    rest.await;
                    drop(counted);
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Outlive;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_dropped_call_still_finishes() {
        let finished = Arc::new(AtomicBool::new(false));
        let done = finished.clone();
        let call = Outlive::new(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            done.store(true, Ordering::SeqCst);
        });
        // The client gives up long before the call ends.
        assert!(tokio::time::timeout(Duration::from_millis(5), call).await.is_err());
        assert!(!finished.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(finished.load(Ordering::SeqCst), "the call ran on after its client left");
    }

    #[tokio::test]
    async fn shutdown_can_wait_for_calls_that_run_on() {
        let finished = Arc::new(AtomicBool::new(false));
        let done = finished.clone();
        let call = Outlive::new(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            done.store(true, Ordering::SeqCst);
        });
        assert!(tokio::time::timeout(Duration::from_millis(5), call).await.is_err());
        tokio::time::timeout(Duration::from_secs(5), super::all_finished()).await.expect("the call ended");
        assert!(finished.load(Ordering::SeqCst), "all_finished waited for the call that ran on");
    }

    #[tokio::test]
    async fn a_finished_call_gives_its_output() {
        assert_eq!(Outlive::new(async { 7 }).await, 7);
    }
}
