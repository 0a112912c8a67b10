//! [`Entrypoint::run`]: the phases of a program — `pre_start`, the start
//! (interrupted by a signal or a background failure), `post_start` and the
//! main future, then the shutdown within its timeout — and how it ended.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::time::Duration;

use futures::future::{Either, select};
use futures::{FutureExt, StreamExt};

use super::super::supervisor::{CutShort, StopReason, panic_error};
use super::hooks::run_hooks;
use super::{Entrypoint, FORCED_EXIT_CODE, Outcome, Signals};
use crate::error::BoxError;
use crate::rt::instant_after;
use crate::service::StartOutcome;

/// The next shutdown request; a stream that has ended never requests one.
async fn next_signal(signals: &mut Signals) {
    if signals.next().await.is_none() {
        futures::future::pending::<()>().await;
    }
}

/// What ended the wait for a signal or a background failure.
enum Interrupt {
    Signal,
    Failure(Option<(String, BoxError)>),
}

/// After a forced exit, `post_stop` still runs if it had not begun, for
/// at most this long (or the shutdown timeout, if shorter).
const POST_STOP_AFTER_FORCE: Duration = Duration::from_secs(1);

impl Entrypoint {
    /// Starts the services, runs `main` until it ends (or a signal comes, or
    /// a background task fails), then stops the services; see the module
    /// docs for the hooks and exit codes.
    pub async fn run<F: Future>(mut self, main: F) -> Outcome<F::Output> {
        // Started before the logging, whose subscriber then reports to it;
        // flushed at the end of the shutdown, closed when dropped.
        #[cfg(feature = "sentry")]
        let sentry = self.start_sentry();
        #[cfg(all(feature = "logging", not(feature = "sentry")))]
        let sentry = false;
        // Held to the end of the run: dropping it flushes the log.
        #[cfg(feature = "logging")]
        let _log = self.logging.as_ref().and_then(|config| {
            match config.clone().report_to_sentry(sentry).install() {
                Ok(guard) => guard,
                Err(error) => {
                    eprintln!("logging not set up: {error}");
                    None
                }
            }
        });
        let supervisor = self.supervisor.clone();
        // `pre_start` and the start, both cut short by a shutdown request
        // or a background failure. A failed start is rolled back like any
        // shutdown: bounded by the shutdown timeout, cut short by a signal.
        let mut interrupted = None;
        let started = {
            let (signals, by) = (&mut self.signals, &mut interrupted);
            let interrupt = async {
                let signal = pin!(next_signal(signals));
                let failure = pin!(supervisor.failure());
                *by = Some(match select(signal, failure).await {
                    Either::Left(_) => Interrupt::Signal,
                    Either::Right((failure, _)) => Interrupt::Failure(failure),
                });
            };
            let mut interrupt = pin!(interrupt.fuse());
            let pre_start = pin!(run_hooks(&self.hooks.pre_start, &self.names, &supervisor));
            match select(pre_start, interrupt.as_mut()).await {
                Either::Left(((), _)) => supervisor.start_without_rollback(interrupt).await,
                Either::Right(_) => Ok(StartOutcome::Interrupted),
            }
        };
        match (started, interrupted) {
            (Ok(StartOutcome::All), _) => {}
            (Ok(_), Some(Interrupt::Failure(Some((service, error))))) => {
                tracing::error!(%service, %error, "a background task failed during the start; stopping");
                let reason = StopReason::TaskFailed {
                    service: service.clone(),
                };
                return self
                    .shut_down(reason, None, Some((service, error)), false)
                    .await;
            }
            (Ok(_), _) => {
                tracing::info!("shutdown requested during the start; stopping what started");
                return self.shut_down(StopReason::Signal, None, None, false).await;
            }
            (Err((service, error)), _) => {
                tracing::error!(%service, %error, "start failed; rolling back");
                let reason = StopReason::StartFailed {
                    service: service.clone(),
                };
                return self
                    .shut_down(reason, None, Some((service, error)), false)
                    .await;
            }
        }
        // `post_start`, then the main future; either is cut short by a
        // signal or a background failure, and a panic in main still stops
        // the services.
        let (value, reason, failure) = {
            let hooks = self.hooks.clone();
            let post_start_then_main = async {
                run_hooks(
                    &hooks.post_start,
                    &supervisor.running_services(),
                    &supervisor,
                )
                .await;
                AssertUnwindSafe(main).catch_unwind().await
            };
            let main = pin!(post_start_then_main);
            let failure = pin!(supervisor.failure());
            let signal = pin!(next_signal(&mut self.signals));
            match select(main, select(signal, failure)).await {
                Either::Left((Ok(value), _)) => (Some(value), StopReason::Shutdown, None),
                Either::Left((Err(payload), _)) => {
                    let error = panic_error(payload);
                    tracing::error!(%error, "the main future panicked; stopping");
                    (None, StopReason::Shutdown, Some(("main".to_owned(), error)))
                }
                Either::Right((Either::Left(_), _)) => {
                    tracing::info!("shutdown requested");
                    (None, StopReason::Signal, None)
                }
                Either::Right((Either::Right((failure, _)), _)) => {
                    let service = match &failure {
                        Some((service, error)) => {
                            tracing::error!(%service, %error, "a background task failed; stopping");
                            service.clone()
                        }
                        None => String::new(),
                    };
                    (None, StopReason::TaskFailed { service }, failure)
                }
            }
        };
        // A request that came as main ended (main may itself wait for
        // Ctrl+C, which the stream sees too) began this shutdown; it must
        // not count as a second one and force the exit.
        while let Some(Some(())) = self.signals.next().now_or_never() {}
        self.shut_down(reason, value, failure, true).await
    }

    /// The shutdown: `pre_stop` (if `pre_stop`), the supervisor's
    /// [`shutdown`](crate::service::Supervisor::shutdown) for `reason`,
    /// `post_stop` — all within the shutdown timeout, which a signal cuts
    /// short; then says how it went.
    async fn shut_down<T>(
        mut self,
        reason: StopReason,
        value: Option<T>,
        mut failure: Option<(String, BoxError)>,
        pre_stop: bool,
    ) -> Outcome<T> {
        let supervisor = self.supervisor.clone();
        let hooks = self.hooks.clone();
        let deadline = instant_after(self.runtime.now(), self.shutdown_timeout);
        // `pre_stop`, cut short like the rest; a cut leaves the services
        // to a shutdown that stops none of them.
        let mut cut = false;
        if pre_stop {
            let running = supervisor.running_services();
            let hooks = pin!(run_hooks(&hooks.pre_stop, &running, &supervisor));
            let limit = pin!(self.runtime.sleep_until(deadline));
            let signal = pin!(next_signal(&mut self.signals));
            cut = matches!(select(hooks, select(limit, signal)).await, Either::Right(_));
        }
        let interrupt: Pin<Box<dyn Future<Output = ()> + '_>> = if cut {
            Box::pin(std::future::ready(()))
        } else {
            Box::pin(next_signal(&mut self.signals))
        };
        let stop_report = supervisor.shutdown(reason, deadline, interrupt).await;
        let mut exit_code = i32::from(failure.is_some());
        let (not_stopped, flush_by) = match stop_report.cut_short {
            None => {
                // Every service stopped: `post_stop`, within what is left.
                let hooks = pin!(run_hooks(
                    &hooks.post_stop,
                    &stop_report.stopped,
                    &supervisor
                ));
                let limit = pin!(self.runtime.sleep_until(deadline));
                let signal = pin!(next_signal(&mut self.signals));
                if let Either::Right((why, _)) = select(hooks, select(limit, signal)).await {
                    // Not a forced exit: the report decides the code.
                    tracing::warn!(
                        "{} while post_stop hooks ran; they were cut off",
                        cut_why(&why)
                    );
                }
                if !stop_report.is_clean() {
                    exit_code = exit_code.max(1);
                }
                (Vec::new(), deadline)
            }
            Some(why) => {
                let why = match why {
                    CutShort::Deadline => "the shutdown timed out",
                    _ => "a shutdown request came during the shutdown",
                };
                let not_stopped = stop_report.not_stopped.clone();
                tracing::error!(?not_stopped, "{why}; forcing exit");
                // On standard error as well: whatever the logging set-up,
                // this must be seen.
                eprintln!("machina: {why}; forcing exit; not stopped: {not_stopped:?}");
                exit_code = FORCED_EXIT_CODE;
                // `post_stop` still runs, briefly.
                let bound = self.shutdown_timeout.min(POST_STOP_AFTER_FORCE);
                let until = instant_after(self.runtime.now(), bound);
                let hooks = pin!(run_hooks(
                    &hooks.post_stop,
                    &stop_report.stopped,
                    &supervisor
                ));
                let _ = select(hooks, pin!(self.runtime.sleep_until(until))).await;
                (not_stopped, until)
            }
        };
        #[cfg(feature = "sentry")]
        self.flush_sentry(flush_by).await;
        #[cfg(not(feature = "sentry"))]
        let _ = flush_by;
        // Background failures that came in during the shutdown (not from
        // the services being stopped, whose failures are theirs).
        for (service, error) in supervisor.take_failures() {
            tracing::error!(%service, %error, "a background task failed during the shutdown");
            exit_code = exit_code.max(1);
            failure.get_or_insert((service, error));
        }
        Outcome {
            value,
            exit_code,
            stop_report,
            not_stopped,
            failure,
        }
    }
}

/// What cut a `post_stop` short, in words.
fn cut_why<A, B>(why: &Either<A, B>) -> &'static str {
    match why {
        Either::Left(_) => "the shutdown timed out",
        Either::Right(_) => "a shutdown request came during the shutdown",
    }
}

#[cfg(feature = "sentry")]
impl Entrypoint {
    /// Starts the Sentry client, if one is configured; whether events now
    /// go to Sentry.
    fn start_sentry(&mut self) -> bool {
        let Some(config) = &self.sentry else {
            return false;
        };
        match config.init() {
            Ok(guard) => {
                let enabled = guard.as_ref().is_some_and(|g| g.is_enabled());
                self.sentry_guard = guard;
                enabled
            }
            Err(error) => {
                eprintln!("Sentry not set up: {error}");
                false
            }
        }
    }

    /// Sends what Sentry has queued, by `until` at the latest.
    async fn flush_sentry(&self, until: std::time::Instant) {
        let Some(guard) = &self.sentry_guard else {
            return;
        };
        let left = until.saturating_duration_since(self.runtime.now());
        if !guard.flush(&self.runtime, left).await {
            eprintln!(
                "machina: Sentry's queue was not sent within {left:?}; some reports are lost"
            );
        }
    }
}
