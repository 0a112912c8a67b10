//! [`CallError`]: the one way a call through a stack ends without a value
//! — the operation's own error, or which layer stopped it and why.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::decision::{Reason, Refusal};
use crate::error::{BoxError, find_in_chain};

/// An operation's error seen as `dyn Error`, so layers can match it: every
/// `E: Error + 'static`, and [`BoxError`] itself.
///
/// The marker `M` only tells the two cases apart (`Box<dyn Error>` is not
/// itself an `Error`); it is inferred, never written.
pub trait AsDynError<M>: fmt::Debug + Send + 'static {
    /// The error as a trait object.
    fn dyn_error(&self) -> &(dyn Error + 'static);
}

/// [`AsDynError`]'s marker for `E: Error`.
#[derive(Debug)]
pub enum Direct {}

/// [`AsDynError`]'s marker for [`BoxError`].
#[derive(Debug)]
pub enum Boxed {}

impl<E: Error + Send + 'static> AsDynError<Direct> for E {
    fn dyn_error(&self) -> &(dyn Error + 'static) {
        self
    }
}

impl AsDynError<Boxed> for BoxError {
    fn dyn_error(&self) -> &(dyn Error + 'static) {
        &**self
    }
}

/// How a [`CallError`] sees its operation error as `dyn Error`.
pub(crate) type View<E> = fn(&E) -> &(dyn Error + 'static);

pub(crate) fn view<E: AsDynError<M>, M>() -> View<E> {
    |e| e.dyn_error()
}

/// The error an attempt ends with when it runs past the stack's
/// per-attempt timeout (aiomisc `attempt_timeout`). Retry rules and
/// backoff filters match it by type; a `Loop` reconnects after it by
/// default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("attempt timed out after {limit:?}")]
pub struct AttemptTimedOut {
    /// The per-attempt limit.
    pub limit: Duration,
}

/// Which layer of a stack stopped a call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layer {
    /// A concurrent group (by name).
    Group(Arc<str>),
    /// A circuit breaker (by name).
    Breaker(Arc<str>),
    /// The retry rules.
    Retry,
    /// The per-attempt timeout.
    AttemptTimeout,
    /// The overall deadline.
    Deadline,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::Group(name) => write!(f, "concurrent group {name:?}"),
            Layer::Breaker(name) => write!(f, "circuit breaker {name:?}"),
            Layer::Retry => f.write_str("retry"),
            Layer::AttemptTimeout => f.write_str("attempt timeout"),
            Layer::Deadline => f.write_str("deadline"),
        }
    }
}

/// How a call through a [`CallStack`](super::CallStack) ended without a
/// value: see [`kind`](Self::kind). `Display` of a `Failed` or `Refused`
/// call is the underlying error's own message, and that error is the
/// `source()`, so matching by type through the chain finds it.
///
/// # Examples
///
/// ```
/// use machina_core::call::{CallErrorKind, CallStack};
/// use machina_core::decision::Reason;
/// use machina_core::testing::MockRuntime;
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// let err = mock
///     .block_on(CallStack::new().run(&rt, || async { Err::<(), _>(std::io::Error::other("boom")) }))
///     .unwrap()
///     .unwrap_err();
/// assert_eq!(err.to_string(), "boom");
/// assert_eq!(err.attempts(), 1);
/// assert!(matches!(err.kind(), CallErrorKind::Failed { reason: Reason::NoRuleMatches, .. }));
/// ```
pub struct CallError<E> {
    kind: CallErrorKind<E>,
    view: View<E>,
}

/// The ways a call can end without a value.
#[derive(Debug)]
#[non_exhaustive]
pub enum CallErrorKind<E> {
    /// The operation ran and failed, and no layer tries it again: no retry
    /// rule matched, the rules or the budget are spent, or a give-up
    /// predicate said so (`reason`).
    Failed {
        /// The last attempt's error.
        error: E,
        /// Attempts made.
        attempts: u32,
        /// Why it was not retried.
        reason: Reason,
    },
    /// A layer refused the last attempt: the operation did not run then.
    /// `error` is the layer's own error type (a breaker's
    /// [`CircuitOpen`](crate::breaker::CircuitOpen), a limiter's
    /// [`LimiterError`](crate::limit::LimiterError)), with the
    /// [`Refusal`] in its source chain.
    Refused {
        /// Which layer.
        layer: Layer,
        /// Its error.
        error: BoxError,
        /// Attempts made (refused ones included).
        attempts: u32,
    },
    /// The last attempt ran past the per-attempt timeout.
    TimedOut {
        /// The per-attempt limit.
        limit: Duration,
        /// Attempts made.
        attempts: u32,
        /// Why it was not retried.
        reason: Reason,
    },
    /// The overall deadline passed, during an attempt or a wait, or
    /// before the next attempt could begin.
    DeadlineExceeded {
        /// The deadline.
        deadline: Duration,
        /// Attempts started.
        attempts: u32,
        /// How the last finished attempt ended; `None` when none had.
        last: Option<Box<CallError<E>>>,
    },
}

impl<E> CallError<E> {
    pub(crate) fn new(kind: CallErrorKind<E>, view: View<E>) -> Self {
        CallError { kind, view }
    }

    /// What happened.
    pub fn kind(&self) -> &CallErrorKind<E> {
        &self.kind
    }

    /// What happened, by value.
    pub fn into_kind(self) -> CallErrorKind<E> {
        self.kind
    }

    /// Attempts made (or started, for a deadline).
    pub fn attempts(&self) -> u32 {
        match &self.kind {
            CallErrorKind::Failed { attempts, .. }
            | CallErrorKind::Refused { attempts, .. }
            | CallErrorKind::TimedOut { attempts, .. }
            | CallErrorKind::DeadlineExceeded { attempts, .. } => *attempts,
        }
    }

    /// The operation's own error from the last attempt that returned one
    /// (through a deadline's last outcome too).
    pub fn operation_error(&self) -> Option<&E> {
        match &self.kind {
            CallErrorKind::Failed { error, .. } => Some(error),
            CallErrorKind::DeadlineExceeded {
                last: Some(last), ..
            } => last.operation_error(),
            _ => None,
        }
    }

    /// The operation's own error, by value.
    pub fn into_operation_error(self) -> Option<E> {
        match self.kind {
            CallErrorKind::Failed { error, .. } => Some(error),
            CallErrorKind::DeadlineExceeded {
                last: Some(last), ..
            } => last.into_operation_error(),
            _ => None,
        }
    }

    /// The refusal that stopped the call, when a layer did.
    pub fn refusal(&self) -> Option<Refusal> {
        match &self.kind {
            CallErrorKind::Refused { error, .. } => find_in_chain::<Refusal>(&**error).copied(),
            _ => None,
        }
    }

    /// Which layer stopped the call: `None` when the operation's own error
    /// ended it.
    pub fn layer(&self) -> Option<Layer> {
        match &self.kind {
            CallErrorKind::Failed { .. } => None,
            CallErrorKind::Refused { layer, .. } => Some(layer.clone()),
            CallErrorKind::TimedOut { .. } => Some(Layer::AttemptTimeout),
            CallErrorKind::DeadlineExceeded { .. } => Some(Layer::Deadline),
        }
    }

    /// Whether a layer refused the call (it did not run on its last try).
    pub fn is_refused(&self) -> bool {
        matches!(self.kind, CallErrorKind::Refused { .. })
    }

    /// The error as `dyn Error` (what layers and error matchers see).
    pub fn as_dyn_error(&self) -> &(dyn Error + 'static)
    where
        E: fmt::Debug + 'static,
    {
        self
    }
}

impl<E: fmt::Debug> fmt::Debug for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.kind, f)
    }
}

impl<E> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            CallErrorKind::Failed { error, .. } => fmt::Display::fmt((self.view)(error), f),
            CallErrorKind::Refused { error, .. } => fmt::Display::fmt(&**error, f),
            CallErrorKind::TimedOut {
                limit, attempts, ..
            } => write!(
                f,
                "attempt timed out after {limit:?} ({attempts} attempt(s) made)"
            ),
            CallErrorKind::DeadlineExceeded {
                deadline,
                attempts,
                last,
            } => {
                write!(
                    f,
                    "deadline of {deadline:?} passed after {attempts} attempt(s); last error: "
                )?;
                match last {
                    Some(last) => fmt::Display::fmt(last, f),
                    None => f.write_str("none (no attempt had finished)"),
                }
            }
        }
    }
}

impl<E: fmt::Debug + 'static> Error for CallError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.kind {
            CallErrorKind::Failed { error, .. } => Some((self.view)(error)),
            CallErrorKind::Refused { error, .. } => Some(&**error),
            CallErrorKind::TimedOut { .. } => None,
            CallErrorKind::DeadlineExceeded { last, .. } => {
                last.as_deref().map(|l| l as &(dyn Error + 'static))
            }
        }
    }
}
