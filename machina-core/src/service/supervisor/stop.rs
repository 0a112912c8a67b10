//! Stopping: the whole stack, dependents first, or one service
//! ([`Supervisor::stop_service`] builds on [`Supervisor::stop_one`]).
//!
//! A full stop stops a service as soon as every service that depends on
//! it has stopped, and services with no dependency between them stop at
//! the same time (facet stops a parallel group in parallel): a stack
//! started as `X, [Y, Z], W` stops `W`, then `Y` and `Z` together, then
//! `X`, so a shutdown under a timeout takes the longest stop of a stage,
//! not the sum. A full stop waits for a dynamic one to finish, so a
//! service is never stopped while a dependent of it is still stopping.
//! Each outcome is recorded as soon as it is known, so a shutdown cut
//! short (its future dropped) still reports what did stop; and a stop that
//! is cut short aborts the service's tasks rather than leaving them
//! running unowned.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::future::{Either, select};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};

use super::{
    CutShort, Launched, StopContext, StopReason, StopReport, Supervisor, lock, panic_error,
};
use crate::rt::JoinHandle;

impl Launched {
    /// Aborts the start task and the background tasks (they end at their
    /// next poll); see [`wait`](Self::wait).
    pub(super) fn abort_all(&self) {
        // From here on the service spawns nothing new (see
        // `ServiceContext::spawn`), so the tasks aborted below are all.
        self.stopping.store(true, Ordering::SeqCst);
        self.task.abort();
        for task in lock(&self.tasks).iter() {
            task.abort();
        }
    }

    /// Waits until the start task and every background task has ended
    /// (their futures dropped).
    async fn wait(self) {
        let tasks: Vec<JoinHandle<()>> = lock(&self.tasks).drain(..).collect();
        for task in tasks {
            let _ = task.await;
        }
        let _ = self.task.await;
    }

    /// Cancels everything the service runs and waits until it has ended.
    pub(super) async fn cancel(self) {
        self.abort_all();
        self.wait().await;
    }
}

/// A service taken for a full stop whose stop has not begun: dropped
/// unpolled, it aborts the service's tasks.
struct Unstopped(Option<Launched>);

impl Drop for Unstopped {
    fn drop(&mut self) {
        if let Some(launched) = &self.0 {
            launched.abort_all();
            tracing::warn!(service = %launched.name, "stop abandoned before it began; the service's tasks were aborted");
        }
    }
}

/// A stop under way. Dropped before [`finish`](Self::finish) (the stop's
/// future abandoned), it aborts the service's tasks, takes its name off
/// the list of services stopping, and for a dynamic stop forgets the
/// service, so nothing is left half-stopped.
struct StopGuard<'s> {
    supervisor: &'s Supervisor,
    name: Arc<str>,
    launched: Option<Launched>,
    forget: bool,
    done: bool,
}

impl StopGuard<'_> {
    fn finish(mut self) {
        self.clear();
        self.done = true;
    }

    fn clear(&mut self) {
        let mut life = self.supervisor.life();
        life.stopping.retain(|n| !Arc::ptr_eq(n, &self.name));
        if self.forget {
            life.forget(&self.name);
        }
    }
}

impl Drop for StopGuard<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(launched) = &self.launched {
            launched.abort_all();
        }
        tracing::warn!(service = %self.name, "stop abandoned; the service's tasks were aborted");
        self.clear();
    }
}

/// Where a stop's outcome goes: the stack's report (a full stop, which a
/// shutdown cut short still reads) or the caller's own (a dynamic stop).
pub(super) enum ReportTo<'a> {
    Stack,
    Own(&'a Mutex<StopReport>),
}

impl Supervisor {
    /// Stops every started service, dependents first and independent
    /// services at the same time (see the module docs): its `stop`
    /// (bounded by its timeout), then its background work; the services
    /// are told [`StopReason::Shutdown`]. Waits as long as the stops take;
    /// [`shutdown`](Self::shutdown) bounds the whole.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::service::{Service, ServiceContext, ServiceFuture, StopContext, Supervisor};
    /// use machina_core::testing::MockRuntime;
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// /// Takes 100 ms to stop.
    /// struct Slow;
    /// impl Service for Slow {
    ///     fn start(self: Arc<Self>, _ctx: ServiceContext) -> ServiceFuture {
    ///         Box::pin(async { Ok(()) })
    ///     }
    ///     fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
    ///         Box::pin(async move {
    ///             ctx.runtime().sleep(Duration::from_millis(100)).await;
    ///             Ok(())
    ///         })
    ///     }
    /// }
    ///
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let stack = Supervisor::builder(&rt)
    ///     .service("db", Slow, &[])
    ///     .service("api", Slow, &["db"])
    ///     .service("jobs", Slow, &["db"])
    ///     .build()
    ///     .unwrap();
    /// let took = mock.block_on(async move {
    ///     stack.start().await.unwrap();
    ///     let t0 = rt.now();
    ///     let report = stack.stop().await;
    ///     assert_eq!(report.stopped.len(), 3);
    ///     rt.now() - t0
    /// }).unwrap();
    /// // api and jobs stop together, then db: two stages of 100 ms.
    /// assert_eq!(took, Duration::from_millis(200));
    /// ```
    pub async fn stop(&self) -> StopReport {
        self.stop_all(StopReason::Shutdown).await
    }

    /// [`stop`](Self::stop), telling the services `reason`.
    pub async fn stop_because(&self, reason: StopReason) -> StopReport {
        self.stop_all(reason).await
    }

    /// The shutdown of the whole stack, bounded: [`stop_because`](Self::stop_because)
    /// `reason`, unless `deadline` passes or `interrupt` completes first
    /// (both are looked at before any stop begins). Cut short, the stop
    /// under way is abandoned, everything still running is aborted, and
    /// the report names what did stop, what did not
    /// ([`not_stopped`](StopReport::not_stopped)) and why
    /// ([`cut_short`](StopReport::cut_short)). This is what the
    /// [`Entrypoint`](crate::service::Entrypoint) calls, with its shutdown
    /// timeout and the next shutdown request.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::service::{CutShort, Service, ServiceContext, ServiceFuture, StopContext, StopReason, Supervisor};
    /// use machina_core::testing::MockRuntime;
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// /// Never finishes stopping.
    /// struct Stuck;
    /// impl Service for Stuck {
    ///     fn start(self: Arc<Self>, _ctx: ServiceContext) -> ServiceFuture {
    ///         Box::pin(async { Ok(()) })
    ///     }
    ///     fn stop(self: Arc<Self>, _ctx: StopContext) -> ServiceFuture {
    ///         Box::pin(std::future::pending())
    ///     }
    ///     fn graceful_shutdown_timeout(&self) -> Option<Duration> {
    ///         Some(Duration::from_secs(3600))
    ///     }
    /// }
    ///
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let stack = Supervisor::builder(&rt).service("stuck", Stuck, &[]).build().unwrap();
    /// let report = mock.block_on(async move {
    ///     stack.start().await.unwrap();
    ///     let deadline = rt.now() + Duration::from_secs(5);
    ///     stack.shutdown(StopReason::Signal, deadline, std::future::pending()).await
    /// }).unwrap();
    /// assert_eq!(report.cut_short, Some(CutShort::Deadline));
    /// assert_eq!(report.not_stopped, ["stuck"]);
    /// assert_eq!(mock.elapsed(), Duration::from_secs(5));
    /// ```
    pub async fn shutdown(
        &self,
        reason: StopReason,
        deadline: Instant,
        interrupt: impl Future<Output = ()>,
    ) -> StopReport {
        // Boxed, so that a cut can drop it (which abandons the stops under
        // way and aborts those services' tasks).
        let mut stops = Box::pin(self.stop_all(reason));
        let limit = pin!(self.runtime.sleep_until(deadline));
        let interrupt = pin!(interrupt);
        let mut cut = pin!(select(limit, interrupt));
        // The cut is polled first, so that a deadline already past or an
        // interrupt already there stops nothing.
        let why = futures::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(why) = cut.as_mut().poll(cx) {
                return std::task::Poll::Ready(Err(why));
            }
            stops.as_mut().poll(cx).map(Ok)
        })
        .await;
        let why = match why {
            Ok(report) => return report,
            Err(Either::Left(_)) => CutShort::Deadline,
            Err(Either::Right(_)) => CutShort::Interrupted,
        };
        // Named before the stops under way are dropped (which takes their
        // services off the list).
        let not_stopped = self.not_stopped();
        drop(stops);
        self.abort_remaining();
        let mut report = self.take_stop_report();
        report.not_stopped = not_stopped;
        report.cut_short = Some(why);
        report
    }

    pub(super) async fn stop_all(&self, reason: StopReason) -> StopReport {
        self.life().closing = true;
        let _turn = self.stop_turn.lock().await;
        let mut stops = FuturesUnordered::new();
        let mut under_way: Vec<Arc<str>> = Vec::new();
        loop {
            for launched in self.take_stoppable(&under_way) {
                under_way.push(launched.name.clone());
                let name = launched.name.clone();
                // Until its stop is first polled, the service is owned by
                // this guard: dropped unpolled (the shutdown cut short), it
                // aborts the service's tasks instead of detaching them.
                let mut unstopped = Unstopped(Some(launched));
                let reason = reason.clone();
                stops.push(async move {
                    if let Some(launched) = unstopped.0.take() {
                        self.stop_one(launched, reason, ReportTo::Stack, false)
                            .await;
                    }
                    name
                });
            }
            match stops.next().await {
                Some(done) => under_way.retain(|n| !Arc::ptr_eq(n, &done)),
                None => break,
            }
        }
        self.take_stop_report()
    }

    /// Takes out of the running list every service that no running service
    /// and no stop `under_way` depends on (the plan's
    /// `stoppable_now`), newest first. If some are running but none
    /// qualifies (which the graph's checks rule out), the newest is taken,
    /// so that a stop never leaves a service running.
    fn take_stoppable(&self, under_way: &[Arc<str>]) -> Vec<Launched> {
        let mut life = self.life();
        if life.running.is_empty() {
            // Nothing left to take (each stop that ends asks again).
            return Vec::new();
        }
        let names: Vec<Arc<str>> = {
            let running: Vec<&str> = life.running.iter().map(|l| &*l.name).collect();
            let under_way: Vec<&str> = under_way.iter().map(|n| &**n).collect();
            life.plan
                .stoppable_now(&running, &under_way)
                .into_iter()
                .map(Arc::from)
                .collect()
        };
        let mut taken = Vec::new();
        for name in names {
            if let Some(i) = life.running.iter().position(|l| l.name == name) {
                taken.push(life.running.remove(i));
            }
        }
        if taken.is_empty() && under_way.is_empty() {
            taken.extend(life.running.pop());
        }
        // Listed as stopping from now on (see `not_stopped`).
        let names: Vec<Arc<str>> = taken.iter().map(|l| l.name.clone()).collect();
        life.stopping.extend(names);
        taken
    }

    /// Stops one started service: its `stop` bounded by its timeout, then
    /// its background work; the outcome goes into `report` as soon as it
    /// is known. The caller holds the stop turn.
    pub(super) async fn stop_one(
        &self,
        started: Launched,
        reason: StopReason,
        report: ReportTo<'_>,
        forget: bool,
    ) {
        let name = started.name.clone();
        let limit = started
            .service
            .graceful_shutdown_timeout()
            .unwrap_or(self.stop_timeout);
        started.stopping.store(true, Ordering::SeqCst);
        let ctx = StopContext {
            name: name.clone(),
            reason,
            context: self.context.clone(),
            runtime: self.runtime.clone(),
        };
        let stopping = AssertUnwindSafe(started.service.clone().stop(ctx)).catch_unwind();
        {
            let mut life = self.life();
            if !life.stopping.iter().any(|n| Arc::ptr_eq(n, &name)) {
                life.stopping.push(name.clone());
            }
        }
        let mut guard = StopGuard {
            supervisor: self,
            name: name.clone(),
            launched: Some(started),
            forget,
            done: false,
        };
        let outcome = self.runtime.timeout(limit, stopping).await;
        self.record(&report, |report| match outcome {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => {
                tracing::error!(service = %name, %error, "service stop failed");
                report.errors.push((name.to_string(), error));
            }
            Ok(Err(payload)) => {
                let error = panic_error(payload);
                tracing::error!(service = %name, %error, "service stop panicked");
                report.errors.push((name.to_string(), error));
            }
            Err(_) => {
                tracing::warn!(service = %name, ?limit, "service did not stop in time");
                report.timed_out.push(name.to_string());
            }
        });
        if let Some(launched) = guard.launched.take() {
            launched.abort_all();
            launched.wait().await;
        }
        self.record(&report, |report| report.stopped.push(name.to_string()));
        guard.finish();
    }

    fn record(&self, to: &ReportTo<'_>, write: impl FnOnce(&mut StopReport)) {
        match to {
            ReportTo::Stack => write(&mut self.life().report),
            ReportTo::Own(report) => write(&mut lock(report)),
        }
    }

    /// Aborts what every service still running runs (start remainders and
    /// background tasks), without stopping them: the last resort of a
    /// shutdown cut short, so nothing keeps working after it.
    pub(crate) fn abort_remaining(&self) {
        for launched in self.life().running.iter() {
            launched.abort_all();
        }
    }

    /// The services not yet stopped: those whose stop is under way, then
    /// those still running (newest first, the order they would stop in).
    pub(crate) fn not_stopped(&self) -> Vec<String> {
        let life = self.life();
        let mut names: Vec<String> = life.stopping.iter().map(ToString::to_string).collect();
        names.extend(life.running.iter().rev().map(|s| s.name.to_string()));
        names
    }

    /// What the stops since the last take reported, taken out.
    pub(crate) fn take_stop_report(&self) -> StopReport {
        std::mem::take(&mut self.life().report)
    }
}
