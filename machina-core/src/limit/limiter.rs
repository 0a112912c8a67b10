//! [`Limiter`]: what a call stack's group layer needs from a group — try
//! to start, wait to start, give the slot back — so that a local
//! [`ConcurrentGroup`] and a group kept elsewhere (a Redis-backed one, say)
//! are interchangeable in a [`CallStack`](crate::call::CallStack) and in a
//! bot.
//!
//! [`Group`] is how a stack holds either kind: local groups keep their
//! allocation-free, all-or-nothing path; any other [`Limiter`] is called
//! through the trait.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::config::Limits;
use super::error::LimitError;
use super::group::{ConcurrentGroup, GroupInner};
use super::permit::Permit;
use crate::decision::{Reason, Refusal};
use crate::error::BoxError;
use crate::rt::Runtime;

/// A boxed future a [`Limiter`] answers with.
pub type LimitFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a [`Limiter`] gave no permit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LimiterError {
    /// The limits do not allow a start now; the [`Refusal`] says why and
    /// the earliest instant one could succeed.
    #[error("concurrent group {group:?} refused: {refusal}")]
    Refused {
        /// The group's name.
        group: String,
        /// Why, and until when.
        #[source]
        refusal: Refusal,
    },
    /// The limiter could not decide (its store was unreachable, say). It
    /// is a refusal too ([`Reason::Unavailable`](crate::decision::Reason::Unavailable)):
    /// the call did not run, and only a retry rule naming
    /// `LimiterError` retries it.
    #[error("concurrent group {group:?} could not decide: {error}")]
    Unavailable {
        /// The group's name.
        group: String,
        /// What went wrong.
        error: BoxError,
        /// The refusal in the shared vocabulary.
        #[source]
        refusal: Refusal,
    },
}

/// A group that limits when calls may start.
///
/// `try_acquire` decides once; `acquire` waits until a start is allowed
/// (and must be cancel-safe: dropping the future takes nothing). Both hand
/// back a [`Permit`], whose drop gives the slot back (for a limiter of
/// your own, through [`Permit::from_lease`]).
///
/// # Examples
///
/// A limiter of your own, allowing one call at a time through a local
/// group it wraps:
///
/// ```
/// use machina_core::limit::{ConcurrentGroup, LimitFuture, Limiter, LimiterError, Limits, Permit};
/// use machina_core::testing::MockRuntime;
///
/// #[derive(Debug)]
/// struct OneAtATime(ConcurrentGroup);
///
/// impl Limiter for OneAtATime {
///     fn name(&self) -> &str { "one" }
///     fn try_acquire(&self) -> LimitFuture<'_, Result<Permit, LimiterError>> {
///         Box::pin(async move { Limiter::try_acquire(&self.0).await })
///     }
///     fn acquire(&self) -> LimitFuture<'_, Result<Permit, LimiterError>> {
///         Box::pin(async move { Ok(self.0.acquire().await) })
///     }
/// }
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// let one = OneAtATime(ConcurrentGroup::new(&rt, "one", Limits::new().max_in_flight(1)).unwrap());
/// mock.block_on(async {
///     let permit = one.acquire().await.unwrap();
///     assert!(matches!(one.try_acquire().await, Err(LimiterError::Refused { .. })));
///     drop(permit);
///     assert!(one.try_acquire().await.is_ok());
/// }).unwrap();
/// ```
pub trait Limiter: Send + Sync + fmt::Debug + 'static {
    /// The group's name (for errors, logs and stats).
    fn name(&self) -> &str;

    /// Starts a call now if the limits allow it.
    fn try_acquire(&self) -> LimitFuture<'_, Result<Permit, LimiterError>>;

    /// Waits until a call may start; cancel-safe.
    fn acquire(&self) -> LimitFuture<'_, Result<Permit, LimiterError>>;
}

impl LimiterError {
    /// A limiter that could not decide because of `error`.
    pub fn unavailable(group: impl Into<String>, error: impl Into<BoxError>) -> Self {
        LimiterError::Unavailable {
            group: group.into(),
            error: error.into(),
            refusal: Refusal::new(Reason::Unavailable, None),
        }
    }

    /// The refusal in the shared vocabulary.
    pub fn refusal(&self) -> Refusal {
        match self {
            LimiterError::Refused { refusal, .. } | LimiterError::Unavailable { refusal, .. } => {
                *refusal
            }
        }
    }
}

impl Limiter for ConcurrentGroup {
    fn name(&self) -> &str {
        ConcurrentGroup::name(self)
    }

    fn try_acquire(&self) -> LimitFuture<'_, Result<Permit, LimiterError>> {
        let outcome = ConcurrentGroup::try_acquire(self).map_err(|refusal| LimiterError::Refused {
            group: self.name().to_owned(),
            refusal,
        });
        Box::pin(std::future::ready(outcome))
    }

    fn acquire(&self) -> LimitFuture<'_, Result<Permit, LimiterError>> {
        let acquire = ConcurrentGroup::acquire(self);
        Box::pin(async move { Ok(acquire.await) })
    }
}

/// A slot held in a [`Limiter`] that is not a local group; released when
/// the [`Permit`] holding it drops.
pub trait Lease: Send + Sync + fmt::Debug {
    /// Gives the slot back. Called once, from the permit's drop (so it must
    /// not block: hand slow work to a task).
    fn release(self: Box<Self>);
}

/// A group in a call stack or a bot: a local [`ConcurrentGroup`], or any
/// other [`Limiter`].
///
/// # Examples
///
/// ```
/// use machina_core::limit::{ConcurrentGroup, Group, Limits};
/// use machina_core::testing::MockRuntime;
///
/// let mock = MockRuntime::new();
/// let local = ConcurrentGroup::new(&mock.runtime(), "api", Limits::new().max_in_flight(2)).unwrap();
/// let group = Group::from(local);
/// assert_eq!(group.name(), "api");
/// assert!(group.as_local().is_some());
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Group {
    /// A group in this process.
    Local(ConcurrentGroup),
    /// Any other limiter.
    Shared(Arc<dyn Limiter>),
}

impl Group {
    /// Any limiter as a group.
    pub fn shared(limiter: impl Limiter) -> Self {
        Group::Shared(Arc::new(limiter))
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        match self {
            Group::Local(g) => g.name(),
            Group::Shared(l) => l.name(),
        }
    }

    /// The local group, if this is one.
    pub fn as_local(&self) -> Option<&ConcurrentGroup> {
        match self {
            Group::Local(g) => Some(g),
            Group::Shared(_) => None,
        }
    }

    /// Whether `other` is this very group (not merely one with the same
    /// name).
    pub fn same_group(&self, other: &Group) -> bool {
        match (self, other) {
            (Group::Local(a), Group::Local(b)) => {
                GroupInner::lock_order(&a.inner) == GroupInner::lock_order(&b.inner)
            }
            (Group::Shared(a), Group::Shared(b)) => {
                std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
            }
            _ => false,
        }
    }

    /// The group as a [`Limiter`].
    pub fn limiter(&self) -> &dyn Limiter {
        match self {
            Group::Local(g) => g,
            Group::Shared(l) => &**l,
        }
    }
}

/// What a bot can register as a group: [`Limits`] (a local
/// [`ConcurrentGroup`] is made), an existing [`ConcurrentGroup`] or
/// [`Group`], or a shared [`Limiter`].
pub trait IntoGroup {
    /// What registration hands back.
    type Handle;

    /// The group to register under `name`, and its handle.
    ///
    /// # Errors
    /// [`LimitError`] for limits that could never admit a call, or a
    /// group whose own name is not `name`.
    fn into_group(self, runtime: &Runtime, name: &str)
    -> Result<(Group, Self::Handle), LimitError>;
}

fn check_name(group: &str, name: &str) -> Result<(), LimitError> {
    if group == name {
        Ok(())
    } else {
        Err(LimitError::NameMismatch {
            group: group.to_owned(),
            name: name.to_owned(),
        })
    }
}

impl IntoGroup for Limits {
    type Handle = ConcurrentGroup;

    fn into_group(
        self,
        runtime: &Runtime,
        name: &str,
    ) -> Result<(Group, ConcurrentGroup), LimitError> {
        let group = ConcurrentGroup::new(runtime, name, self)?;
        Ok((Group::Local(group.clone()), group))
    }
}

impl IntoGroup for ConcurrentGroup {
    type Handle = ConcurrentGroup;

    fn into_group(self, _: &Runtime, name: &str) -> Result<(Group, ConcurrentGroup), LimitError> {
        check_name(self.name(), name)?;
        Ok((Group::Local(self.clone()), self))
    }
}

impl IntoGroup for Group {
    type Handle = Group;

    fn into_group(self, _: &Runtime, name: &str) -> Result<(Group, Group), LimitError> {
        check_name(self.name(), name)?;
        Ok((self.clone(), self))
    }
}

impl IntoGroup for Arc<dyn Limiter> {
    type Handle = Group;

    fn into_group(self, runtime: &Runtime, name: &str) -> Result<(Group, Group), LimitError> {
        Group::Shared(self).into_group(runtime, name)
    }
}

impl From<ConcurrentGroup> for Group {
    fn from(group: ConcurrentGroup) -> Self {
        Group::Local(group)
    }
}

impl From<Arc<dyn Limiter>> for Group {
    fn from(limiter: Arc<dyn Limiter>) -> Self {
        Group::Shared(limiter)
    }
}
