//! The spawning half of the runtime boundary: the [`Spawn`] trait an adapter
//! implements, and the error it reports when it cannot take a task.
//!
//! This module owns only the object-safe trait. Join handles, panics and
//! cancellation are layered on top by [`Runtime`](super::Runtime) in
//! `join.rs`, once, for every executor.

use std::future::Future;
use std::pin::Pin;

use tracing::Instrument;

use super::task::Task;

/// A boxed, type-erased task as an executor receives it.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Blocking work as an executor's blocking pool receives it.
pub type BlockingFn = Box<dyn FnOnce() + Send + 'static>;

/// Why an executor refused a task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The executor behind this runtime has been shut down or dropped.
    #[error(
        "cannot spawn: the {executor} executor has shut down; keep it alive for as long as tasks are spawned on it"
    )]
    Shutdown {
        /// Which executor it was (`"mock"`, `"smol"`, ...).
        executor: &'static str,
    },
    /// The executor refused the task for another reason.
    #[error("cannot spawn on the {executor} executor: {reason}")]
    Rejected {
        /// Which executor it was.
        executor: &'static str,
        /// What the executor said.
        reason: String,
    },
}

/// The spawning half of an executor, as the core sees it.
///
/// Implementations must be cheap to call from any thread. The trait is
/// object-safe: the core holds it as `Arc<dyn Spawn>`.
///
/// # Examples
///
/// An executor that runs every task on a fresh thread (a toy, but a
/// complete implementation):
///
/// ```
/// use machina_core::rt::{BlockingFn, BoxFuture, Spawn, SpawnError};
///
/// #[derive(Debug)]
/// struct ThreadPerTask;
///
/// impl Spawn for ThreadPerTask {
///     fn spawn_detached(&self, task: BoxFuture) -> Result<(), SpawnError> {
///         std::thread::spawn(move || futures::executor::block_on(task));
///         Ok(())
///     }
///     fn spawn_blocking(&self, f: BlockingFn) -> Result<(), SpawnError> {
///         std::thread::spawn(f);
///         Ok(())
///     }
/// }
/// # let _: &dyn Spawn = &ThreadPerTask;
/// ```
pub trait Spawn: Send + Sync + 'static {
    /// Runs `task` to completion in the background.
    ///
    /// The executor must never cancel the task on its own account while it
    /// is alive; dropping whatever handle it returned internally detaches.
    fn spawn_detached(&self, task: BoxFuture) -> Result<(), SpawnError>;

    /// Runs `task` like [`spawn_detached`](Spawn::spawn_detached), under a
    /// human-readable name used in logs and (on the mock runtime) deadlock
    /// reports.
    ///
    /// The default wraps the task in a `tracing` span named `task` with a
    /// `name` field when a subscriber wants that span, and spawns it as is
    /// otherwise.
    fn spawn_detached_named(&self, name: &str, task: BoxFuture) -> Result<(), SpawnError> {
        let span = tracing::debug_span!("task", name = %name);
        if span.is_disabled() {
            return self.spawn_detached(task);
        }
        self.spawn_detached(Box::pin(task.instrument(span)))
    }

    /// Runs a spawned [`Task`] to completion in the background, like
    /// [`spawn_detached`](Spawn::spawn_detached).
    ///
    /// [`Runtime::spawn`](super::Runtime::spawn) hands every task here. The
    /// default boxes it for `spawn_detached`; an executor that can store a
    /// concrete future in its own task (tokio's `spawn`, smol's, ...)
    /// should override this to spawn `task` as it is: that saves an
    /// allocation per task.
    fn spawn_task(&self, task: Task) -> Result<(), SpawnError> {
        self.spawn_detached(Box::pin(task))
    }

    /// [`spawn_task`](Spawn::spawn_task) under a name, like
    /// [`spawn_detached_named`](Spawn::spawn_detached_named).
    ///
    /// The default wraps the task in a `tracing` span named `task` when a
    /// subscriber wants that span (boxing it for `spawn_detached`), and
    /// hands it to [`spawn_task`](Spawn::spawn_task) as it is otherwise. An
    /// executor that overrides `spawn_detached_named` to keep the names
    /// (as the mock runtime does, for its deadlock reports) should
    /// override this too: named tasks come here, not there.
    fn spawn_task_named(&self, name: &str, task: Task) -> Result<(), SpawnError> {
        let span = tracing::debug_span!("task", name = %name);
        if span.is_disabled() {
            return self.spawn_task(task);
        }
        self.spawn_detached(Box::pin(task.instrument(span)))
    }

    /// Runs blocking work off the async worker threads.
    fn spawn_blocking(&self, f: BlockingFn) -> Result<(), SpawnError>;
}
