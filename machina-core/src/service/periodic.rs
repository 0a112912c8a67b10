//! [`PeriodicService`]: a callback run every interval, or at the times a
//! cron pattern matches, as a service (aiomisc `PeriodicService` and
//! `CronService`), on the one [`Loop`] engine.
//!
//! Runs never overlap: each waits for the previous one, then sleeps the
//! interval (`Schedule::After`). A failing run is logged and the schedule
//! goes on; errors of allow-listed types are ignored silently.

use std::error::Error;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::supervisor::{Service, ServiceContext, ServiceFuture, StopContext};
use crate::error::BoxError;
use crate::loops::Loop;
use crate::schedule::{IntoInterval, Schedule, ScheduleError};

type Callback = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>> + Send + Sync,
>;
type Ignore = Arc<dyn Fn(&(dyn Error + 'static)) -> bool + Send + Sync>;

/// A callback run every interval; see the module docs.
///
/// # Examples
///
/// ```
/// use machina_core::service::{PeriodicService, Supervisor};
/// use machina_core::testing::MockRuntime;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let runs = Arc::new(AtomicU32::new(0));
/// let counter = runs.clone();
/// let reporter = PeriodicService::new("reporter", "10s", move || {
///     let counter = counter.clone();
///     async move { counter.fetch_add(1, Ordering::SeqCst); Ok::<(), std::io::Error>(()) }
/// }).unwrap().delay(Duration::from_secs(5));
/// let mock = MockRuntime::new();
/// let stack = Supervisor::builder(&mock.runtime()).service("reporter", reporter, &[]).build().unwrap();
/// mock.block_on(async { stack.start().await.unwrap() }).unwrap();
/// mock.advance(Duration::from_secs(26)).unwrap(); // runs at 5, 15 and 25 s
/// assert_eq!(runs.load(Ordering::SeqCst), 3);
/// mock.block_on(async { stack.stop().await }).unwrap();
/// ```
pub struct PeriodicService {
    name: String,
    schedule: Schedule,
    delay: Duration,
    callback: Callback,
    ignore: Vec<Ignore>,
    running: Mutex<Option<Loop>>,
}

impl PeriodicService {
    /// Runs `callback` every `interval` (a `Duration` or a string such as
    /// `"30s"`).
    ///
    /// # Errors
    /// [`ScheduleError`] for a malformed interval.
    pub fn new<F, Fut, E>(
        name: impl Into<String>,
        interval: impl IntoInterval,
        callback: F,
    ) -> Result<Self, ScheduleError>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let interval = interval.into_interval()?;
        Ok(PeriodicService::with_schedule(
            name,
            Schedule::After(interval),
            callback,
        ))
    }

    /// Runs `callback` at the calendar times the cron `pattern` matches in
    /// time zone `zone` (aiomisc `CronService`); an invalid pattern or zone
    /// is refused here, at registration.
    ///
    /// # Errors
    /// [`ScheduleError::Cron`] for a bad pattern or zone.
    pub fn cron<F, Fut, E>(
        name: impl Into<String>,
        pattern: &str,
        zone: &str,
        callback: F,
    ) -> Result<Self, ScheduleError>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Ok(PeriodicService::with_schedule(
            name,
            Schedule::cron(pattern, zone)?,
            callback,
        ))
    }

    /// Runs `callback` on any [`Schedule`].
    pub fn with_schedule<F, Fut, E>(
        name: impl Into<String>,
        schedule: Schedule,
        callback: F,
    ) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        PeriodicService {
            name: name.into(),
            schedule,
            delay: Duration::ZERO,
            callback: Arc::new(move || {
                let run = callback();
                Box::pin(async move { run.await.map_err(Into::into) })
            }),
            ignore: Vec::new(),
            running: Mutex::new(None),
        }
    }

    /// Waits `delay` before the first run (aiomisc `delay`).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Ignores errors of type `E` silently (no log).
    pub fn ignore<E: Error + 'static>(mut self) -> Self {
        self.ignore.push(Arc::new(|e| {
            std::iter::successors(Some(e), |&e| e.source()).any(|e| e.is::<E>())
        }));
        self
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Loop>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Service for PeriodicService {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let (callback, ignore, name) = (
                self.callback.clone(),
                self.ignore.clone(),
                self.name.clone(),
            );
            let delay = self.delay;
            let lp = Loop::builder(ctx.runtime(), self.name.clone(), self.schedule.clone())
                .clear_handled()
                .before_loop(move |lp: Loop| async move {
                    if !delay.is_zero() {
                        lp.runtime().sleep(delay).await;
                    }
                })
                .build(move |_lp: Loop| {
                    let (run, ignore, name) = (callback(), ignore.clone(), name.clone());
                    async move {
                        if let Err(error) = run.await
                            && !ignore.iter().any(|i| i(&*error))
                        {
                            tracing::error!(service = %name, %error, "periodic run failed; the schedule goes on");
                        }
                    }
                });
            // Aborted with the start task if a stop runs past its timeout,
            // so the loop never outlives the service.
            let run = lp.start()?.abort_on_drop();
            *self.slot() = Some(lp);
            ctx.ready();
            // Stay alive with the loop; stopping the service stops it. A
            // panic in the callback ends the loop with an error, which
            // brings the stack down like any background failure.
            until_loop_ends(run).await
        })
    }

    fn stop(self: Arc<Self>, _ctx: StopContext) -> ServiceFuture {
        Box::pin(async move {
            let lp = self.slot().take();
            if let Some(lp) = lp {
                lp.stop();
                lp.wait_until_done().await;
            }
            Ok(())
        })
    }
}

/// Waits for a service's loop to end: `Ok` once it stopped or completed,
/// its error (a panic in the callback) otherwise.
pub(super) async fn until_loop_ends(run: crate::loops::LoopRun) -> Result<(), BoxError> {
    match run.await {
        Ok(Ok(_end)) => Ok(()),
        Ok(Err(error)) => Err(Box::new(error)),
        Err(join) => Err(Box::new(join)),
    }
}

impl std::fmt::Debug for PeriodicService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeriodicService")
            .field("name", &self.name)
            .field("schedule", &self.schedule)
            .field("delay", &self.delay)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::service::Supervisor;
    use crate::testing::MockRuntime;

    #[derive(Debug, thiserror::Error)]
    #[error("expected hiccup")]
    struct Hiccup;

    #[test]
    fn runs_never_overlap_errors_do_not_stop_it_and_stop_ends_it() {
        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let starts = Arc::new(Mutex::new(Vec::new()));
        let (log, clock) = (starts.clone(), rt.clone());
        let t0 = rt.now();
        let calls = Arc::new(AtomicU32::new(0));
        let n = calls.clone();
        let service = PeriodicService::new("poller", Duration::from_secs(10), move || {
            let (log, clock, n) = (log.clone(), clock.clone(), n.clone());
            async move {
                log.lock().unwrap().push((clock.now() - t0).as_secs());
                clock.sleep(Duration::from_secs(3)).await; // a 3 s run
                match n.fetch_add(1, Ordering::SeqCst) {
                    1 => Err(BoxError::from(std::io::Error::other("disk full"))),
                    2 => Err(BoxError::from(Hiccup)),
                    _ => Ok(()),
                }
            }
        })
        .unwrap()
        .delay(Duration::from_secs(2))
        .ignore::<Hiccup>();
        let stack = Supervisor::builder(&rt)
            .service("poller", service, &[])
            .build()
            .unwrap();
        mock.block_on(async { stack.start().await.unwrap() })
            .unwrap();
        let ((), events) = crate::test_kit::log_capture::capture(|| {
            mock.advance(Duration::from_secs(60)).unwrap()
        });
        // First run at 2 s; each then takes 3 s and is followed by 10 s.
        assert_eq!(*starts.lock().unwrap(), [2, 15, 28, 41, 54]);
        // The second run's error is logged; the third's, allow-listed, not.
        let errors: Vec<String> = events
            .iter()
            .filter(|e| e.level == tracing::Level::ERROR)
            .map(|e| {
                format!(
                    "{} {}",
                    e.field("service").unwrap_or("?"),
                    e.field("error").unwrap_or("?")
                )
            })
            .collect();
        assert_eq!(errors, ["poller disk full"]);
        let report = mock.block_on(async { stack.stop().await }).unwrap();
        assert_eq!(report.stopped, ["poller"]);
        let after = starts.lock().unwrap().len();
        mock.advance(Duration::from_secs(60)).unwrap();
        assert_eq!(starts.lock().unwrap().len(), after, "no run after stop");
        assert!(PeriodicService::new("bad", "1x", || async { Ok::<(), BoxError>(()) }).is_err());
    }

    #[test]
    fn a_cron_service_runs_on_the_calendar_and_refuses_bad_specs() {
        use std::time::SystemTime;
        // 2026-01-01T00:00:10Z on the mock's calendar clock.
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_610);
        let mock = MockRuntime::builder().start_time(start).build();
        let rt = mock.runtime();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, clock) = (seen.clone(), rt.clone());
        let service = PeriodicService::cron("report", "*/5 * * * *", "UTC", move || {
            let (log, clock) = (log.clone(), clock.clone());
            async move {
                let at = clock.calendar_now().duration_since(start).unwrap();
                log.lock().unwrap().push(at.as_secs());
                Ok::<(), BoxError>(())
            }
        })
        .unwrap();
        let stack = Supervisor::builder(&rt)
            .service("report", service, &[])
            .build()
            .unwrap();
        mock.block_on(async { stack.start().await.unwrap() })
            .unwrap();
        mock.advance(Duration::from_secs(16 * 60)).unwrap();
        // Whole five-minute marks after 00:00:10: 00:05, 00:10, 00:15.
        assert_eq!(*seen.lock().unwrap(), [290, 590, 890]);
        mock.block_on(async { stack.stop().await }).unwrap();
        let err = PeriodicService::cron("bad", "* * *", "UTC", || async { Ok::<(), BoxError>(()) })
            .unwrap_err();
        assert!(matches!(err, ScheduleError::Cron(_)), "{err:?}");
        let err = PeriodicService::cron("bad", "* * * * *", "Nowhere/Else", || async {
            Ok::<(), BoxError>(())
        })
        .unwrap_err();
        assert!(err.to_string().contains("Nowhere/Else"), "{err}");
    }

    #[test]
    fn a_panicking_run_brings_the_stack_down_instead_of_silently_stopping() {
        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let calls = Arc::new(AtomicU32::new(0));
        let n = calls.clone();
        let service = PeriodicService::new("poller", Duration::from_secs(10), move || {
            let n = n.clone();
            async move {
                if n.fetch_add(1, Ordering::SeqCst) == 2 {
                    panic!("index out of range");
                }
                Ok::<(), BoxError>(())
            }
        })
        .unwrap();
        let stack = Supervisor::builder(&rt)
            .service("poller", service, &[])
            .build()
            .unwrap();
        let (service, error) = mock
            .block_on(async {
                stack.start().await.unwrap();
                stack.failure().await.unwrap()
            })
            .unwrap();
        assert_eq!(service, "poller");
        assert!(error.to_string().contains("index out of range"), "{error}");
        assert_eq!(mock.elapsed(), Duration::from_secs(20), "the third run");
        mock.block_on(async { stack.stop().await }).unwrap();
    }
}
