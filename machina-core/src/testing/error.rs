//! Errors the mock runtime reports instead of hanging.

use std::time::Duration;

/// Why the mock runtime stopped before the work it was given was done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MockError {
    /// Nothing can ever happen again: the main future is waiting, no task is
    /// ready and no timer is pending.
    #[error(
        "deadlock at {at:?} of virtual time: the main future is waiting, no task is ready and no timer is pending; live tasks: {live_tasks:?}"
    )]
    Deadlock {
        /// Virtual time since the runtime was made.
        at: Duration,
        /// The tasks that were still alive, as `<name>#<id>` (unnamed
        /// ones as `task#<id>`).
        live_tasks: Vec<String>,
    },
    /// The next timer lies beyond the runtime's time limit, which usually
    /// means a loop that never ends.
    #[error(
        "virtual time limit of {limit:?} reached (next timer due at {next:?}); does a loop never end? raise it with MockRuntime::builder().time_limit(..)"
    )]
    TimeLimit {
        /// The configured limit.
        limit: Duration,
        /// When the next timer was due.
        next: Duration,
    },
    /// `block_on`, `advance` or `run_until_stalled` was called while the
    /// runtime was already running (from one of its own tasks, or from two
    /// threads at once).
    #[error(
        "the mock runtime is already running: block_on, advance and run_until_stalled cannot be nested or called from two threads at once"
    )]
    AlreadyRunning,
}
