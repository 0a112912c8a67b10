//! Stopping: the whole stack in reverse order of readiness, or one service
//! ([`Supervisor::stop_service`] builds on [`Supervisor::stop_one`]).
//!
//! Stops run one at a time (a full stop waits for a dynamic one), so a
//! service is never stopped while a dependent of it is still stopping.
//! Each outcome is recorded as soon as it is known, so a shutdown cut
//! short (its future dropped) still reports what did stop; and a stop that
//! is cut short aborts the service's tasks rather than leaving them
//! running unowned.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures::FutureExt;

use super::{Launched, StopReason, StopReport, Supervisor, lock, panic_error};
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
    /// Stops every started service in reverse order of readiness: its
    /// `stop` (bounded by its timeout), then its background work; the
    /// services are told [`StopReason::Shutdown`].
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
        // One at a time from the end, so that a stop cut short leaves the
        // services not yet stopped listed, and what did stop reported.
        loop {
            let next = self.running().pop();
            let Some(started) = next else { break };
            self.stop_one(started, reason.clone(), &self.progress, false)
                .await;
        }
        self.take_stop_report()
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
        let stopping = AssertUnwindSafe(started.service.clone().stop(reason)).catch_unwind();
        lock(&self.stopping).push(name.clone());
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
