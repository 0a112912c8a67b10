//! [`ServiceContext`]: what a service gets while it starts — its name, the
//! shared [`Context`], the runtime, readiness, and background tasks (with
//! a [`RestartPolicy`]) whose failures bring the stack down.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::channel::{mpsc, oneshot};

use super::panic_error;
use crate::error::BoxError;
use crate::rt::{JoinHandle, Runtime};
use crate::service::context::Context;
use crate::waits::Wait;

/// What a background task of a service does when it fails.
///
/// # Examples
///
/// ```
/// use machina_core::service::RestartPolicy;
/// use machina_core::waits::Wait;
/// use std::time::Duration;
///
/// // 100 ms, 200 ms, 400 ms … (at most 6.4 s), five times.
/// let policy = RestartPolicy::on_failure(Duration::from_millis(100), 5);
/// assert_eq!(policy, RestartPolicy::OnFailure {
///     waits: Wait::Exponential {
///         base: Duration::from_millis(100),
///         factor: 2,
///         cap: Duration::from_millis(6400),
///     },
///     max_restarts: 5,
/// });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RestartPolicy {
    /// The failure brings the whole stack down (facet's behaviour).
    #[default]
    Never,
    /// Run the task again after each wait of `waits`, up to `max_restarts`
    /// times; a failure after that brings the stack down.
    OnFailure {
        /// The waits before each restart.
        waits: Wait,
        /// How many restarts are allowed.
        max_restarts: u32,
    },
}

impl RestartPolicy {
    /// Restarts after `backoff`, doubling each time (at most 64×), up to
    /// `max_restarts` times.
    pub fn on_failure(backoff: Duration, max_restarts: u32) -> Self {
        RestartPolicy::OnFailure {
            waits: Wait::Exponential {
                base: backoff,
                factor: 2,
                cap: backoff.saturating_mul(64),
            },
            max_restarts,
        }
    }
}

/// What a service gets while it starts: its name, the shared [`Context`],
/// the runtime, a way to say it is ready, and background tasks.
pub struct ServiceContext {
    pub(super) name: Arc<str>,
    pub(super) context: Context,
    pub(super) runtime: Runtime,
    pub(super) ready: Arc<Mutex<Option<oneshot::Sender<()>>>>,
    pub(super) tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    pub(super) failures: FailureSink,
    pub(super) readiness: super::Readiness,
}

/// Where a service's failures go: to the supervisor, unless the service is
/// being stopped — a task that fails because its service's stop closed
/// what it used is the stop's doing, so it is only logged.
#[derive(Clone)]
pub(super) struct FailureSink {
    pub(super) name: Arc<str>,
    pub(super) stopping: Arc<AtomicBool>,
    pub(super) tx: mpsc::UnboundedSender<(Arc<str>, BoxError)>,
}

impl FailureSink {
    pub(super) fn report(&self, error: BoxError) {
        if self.stopping.load(Ordering::SeqCst) {
            tracing::debug!(service = %self.name, %error, "a task failed while its service stopped; not a failure of the stack");
            return;
        }
        let _ = self.tx.unbounded_send((self.name.clone(), error));
    }
}

impl ServiceContext {
    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The values shared by all services.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Whether the whole stack is ready (every service running, none
    /// stopping): what a `/readyz` endpoint reports.
    pub fn readiness(&self) -> super::Readiness {
        self.readiness.clone()
    }

    /// Declares the service ready; the rest of its `start` runs on in the
    /// background.
    pub fn ready(&self) {
        if let Some(tx) = self.ready.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(());
        }
    }

    /// Runs `task` in the background for as long as the service runs; if it
    /// fails (an error or a panic), the whole stack is brought down. When
    /// the service stops, the task is cancelled and awaited; once its stop
    /// has begun, a task spawned is dropped at once.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let failures = self.failures.clone();
        let guarded = async move {
            let failure = match AssertUnwindSafe(task).catch_unwind().await {
                Ok(Ok(())) => return,
                Ok(Err(error)) => error,
                Err(payload) => panic_error(payload),
            };
            failures.report(failure);
        };
        // A service being stopped starts nothing new: its tasks are about
        // to be aborted, and one added after that would run unowned.
        // Checked under the lock the abort takes, before spawning, so such
        // a task never runs at all.
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if self.failures.stopping.load(Ordering::SeqCst) {
            tracing::debug!(service = %self.name, "a task spawned while its service stops was dropped");
            return;
        }
        match self.runtime.spawn_named(&self.name, guarded) {
            Ok(handle) => {
                // A service that spawns many short tasks must not pile up
                // handles of finished ones.
                tasks.retain(|t| !t.is_finished());
                tasks.push(handle);
            }
            Err(error) => {
                drop(tasks);
                self.failures.report(Box::new(error));
            }
        }
    }
}

impl ServiceContext {
    /// Runs the task that `make` produces in the background, under
    /// `policy`: with [`RestartPolicy::OnFailure`], a failed (or panicked)
    /// run is replaced by a fresh one from `make` after a backoff; once the
    /// restarts are used up, the failure brings the stack down.
    pub fn spawn_restarting<M, F>(&self, policy: RestartPolicy, mut make: M)
    where
        M: FnMut() -> F + Send + 'static,
        F: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let runtime = self.runtime.clone();
        let name = self.name.clone();
        self.spawn(async move {
            let mut restarts = 0u32;
            let mut waits = match policy {
                RestartPolicy::OnFailure { waits, .. } => Some(waits.waits(runtime.rng().clone())),
                RestartPolicy::Never => None,
            };
            loop {
                // Each run inside this task, so stopping the service
                // cancels and awaits the run in progress too.
                let run = AssertUnwindSafe(async { make().await }).catch_unwind();
                let error: BoxError = match run.await {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(error)) => error,
                    Err(payload) => panic_error(payload),
                };
                match (policy, waits.as_mut()) {
                    (RestartPolicy::OnFailure { max_restarts, .. }, Some(waits))
                        if restarts < max_restarts =>
                    {
                        let wait = waits.next().unwrap_or_default();
                        restarts += 1;
                        tracing::warn!(service = %name, %error, restart = restarts, ?wait, "background task failed; restarting");
                        runtime.sleep(wait).await;
                    }
                    _ => return Err(error),
                }
            }
        });
    }
}

impl fmt::Debug for ServiceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceContext")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
