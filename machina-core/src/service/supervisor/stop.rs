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

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};

use super::{Launched, StopContext, StopReason, StopReport, Supervisor, lock, panic_error};
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
        lock(&self.supervisor.stopping).retain(|n| !Arc::ptr_eq(n, &self.name));
        if self.forget {
            self.supervisor.forget(&self.name);
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

impl Supervisor {
    /// Stops every started service, dependents first and independent
    /// services at the same time (see the module docs): its `stop`
    /// (bounded by its timeout), then its background work; the services
    /// are told [`StopReason::Shutdown`].
    pub async fn stop(&self) -> StopReport {
        self.stop_with(StopReason::Shutdown).await
    }

    /// [`stop`](Self::stop), telling the services `reason`.
    pub async fn stop_because(&self, reason: StopReason) -> StopReport {
        self.stop_with(reason).await
    }

    pub(super) async fn stop_with(&self, reason: StopReason) -> StopReport {
        self.closing.store(true, Ordering::SeqCst);
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
                        self.stop_one(launched, reason, &self.progress, false).await;
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
    /// and no stop `under_way` depends on, newest first. If some are running
    /// but none qualifies (which the graph's checks should rule out), the
    /// newest is taken, so that a stop never leaves a service running.
    fn take_stoppable(&self, under_way: &[Arc<str>]) -> Vec<Launched> {
        let entries = self.entries();
        let deps_of = |name: &str| {
            entries
                .iter()
                .find(|e| &*e.name == name)
                .map(|e| e.deps.clone())
                .unwrap_or_default()
        };
        let mut running = self.running();
        let needed: Vec<String> = running
            .iter()
            .map(|l| &*l.name)
            .chain(under_way.iter().map(|n| &**n))
            .flat_map(deps_of)
            .collect();
        let mut taken = Vec::new();
        let mut i = running.len();
        while i > 0 {
            i -= 1;
            if !needed.iter().any(|d| *d == *running[i].name) {
                taken.push(running.remove(i));
            }
        }
        if taken.is_empty() && under_way.is_empty() {
            taken.extend(running.pop());
        }
        // Listed as stopping from now on (see `not_stopped`).
        lock(&self.stopping).extend(taken.iter().map(|l| l.name.clone()));
        taken
    }

    /// Stops one started service: its `stop` bounded by its timeout, then
    /// its background work; the outcome goes into `report` as soon as it
    /// is known. The caller holds the stop turn.
    pub(super) async fn stop_one(
        &self,
        started: Launched,
        reason: StopReason,
        report: &Mutex<StopReport>,
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
            let mut listed = lock(&self.stopping);
            if !listed.iter().any(|n| Arc::ptr_eq(n, &name)) {
                listed.push(name.clone());
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
        {
            let mut report = lock(report);
            match outcome {
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
            }
        }
        if let Some(launched) = guard.launched.take() {
            launched.abort_all();
            launched.wait().await;
        }
        lock(report).stopped.push(name.to_string());
        guard.finish();
    }

    /// Aborts what every service still running runs (start remainders and
    /// background tasks), without stopping them: the last resort of a
    /// forced exit, so nothing keeps working after it.
    pub fn abort_remaining(&self) {
        for launched in self.running().iter() {
            launched.abort_all();
        }
    }

    /// The services not yet stopped: those whose stop is under way, then
    /// those still running (newest first, the order they would stop in).
    pub fn not_stopped(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.stopping)
            .iter()
            .map(ToString::to_string)
            .collect();
        names.extend(self.running().iter().rev().map(|s| s.name.to_string()));
        names
    }

    /// What the stops since the last take reported, taken out: after a
    /// shutdown was cut short (its future dropped), the stops that did
    /// finish are still accounted for.
    pub fn take_stop_report(&self) -> StopReport {
        std::mem::take(&mut *lock(&self.progress))
    }
}
