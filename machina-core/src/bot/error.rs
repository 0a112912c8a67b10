//! Errors of the bot: registration mistakes caught at build time, calls by
//! name that do not fit, executes that fail, and runs that end with emit
//! errors.

use crate::call::CallError;
use crate::error::BoxError;
use crate::limit::LimitError;
use crate::loops::SharedError;
use crate::rt::SpawnError;

/// A mistake in how a bot is put together or called.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BotError {
    /// Two items of one kind share a name.
    #[error("duplicate {kind} name {name:?}: names must be unique per kind")]
    Duplicate {
        /// `"emit"`, `"execute"` or `"concurrent group"`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A name refers to nothing registered.
    #[error("unknown {kind} {name:?}{}", if known.is_empty() { String::new() } else { format!("; registered: {}", known.join(", ")) })]
    Unknown {
        /// `"emit"`, `"execute"` or `"concurrent group"`.
        kind: &'static str,
        /// The name.
        name: String,
        /// The names that are registered.
        known: Vec<String>,
    },
    /// An execute was called by name with the wrong argument or result
    /// type.
    #[error("execute {name:?} takes {expected} but was called as {found}")]
    TypeMismatch {
        /// The execute's name.
        name: String,
        /// `fn(Args) -> Output` as registered.
        expected: String,
        /// `fn(Args) -> Output` as called.
        found: String,
    },
    /// A concurrent group's limits were refused.
    #[error(transparent)]
    Group(#[from] LimitError),
    /// The executor refused a task.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// An emit's body asked for the bot after every handle to the bot
    /// (its `Machina`, its executes) was dropped.
    #[error("the bot of emit {emit:?} was dropped")]
    Dropped {
        /// The emit asking.
        emit: String,
    },
    /// A startup hook failed; the bot did not start its emits.
    #[error("startup hook failed: {0}")]
    Startup(BoxError),
    /// Emits ended with errors (the other emits ran on).
    #[error("{} emit(s) ended with an error: {}", .0.len(), .0.iter().map(|(n, e)| format!("{n}: {e}")).collect::<Vec<_>>().join("; "))]
    EmitsFailed(Vec<(String, SharedError)>),
}

/// How a call of an execute ended without a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecuteError {
    /// The call failed: the handler's last error (after whatever retries
    /// its rules allowed), or the layer that stopped it.
    #[error("execute {name:?} failed: {source}")]
    Failed {
        /// The execute's name.
        name: String,
        /// How the call ended.
        source: CallError<BoxError>,
    },
    /// The handler panicked; the bot runs on.
    #[error("execute {name:?} panicked: {message}")]
    Panicked {
        /// The execute's name.
        name: String,
        /// The panic message.
        message: String,
    },
    /// The call was cancelled (by shutdown, or by aborting its task).
    #[error("execute {name:?} was cancelled")]
    Cancelled {
        /// The execute's name.
        name: String,
    },
}

impl ExecuteError {
    /// The handler's own error, if it failed with one.
    pub fn source_error(&self) -> Option<&BoxError> {
        match self {
            ExecuteError::Failed { source, .. } => source.operation_error(),
            _ => None,
        }
    }

    /// How the call ended, if it failed (rather than panicked or was
    /// cancelled).
    pub fn call_error(&self) -> Option<&CallError<BoxError>> {
        match self {
            ExecuteError::Failed { source, .. } => Some(source),
            _ => None,
        }
    }
}
