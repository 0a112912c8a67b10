//! [`Pool`]: a generic async pool of reusable instances (connections,
//! clients) made by a [`Manager`] (aiomisc `PoolBase`).
//!
//! - At most `max_size` instances exist at once; callers beyond that wait
//!   first come, first served (the pool's slots are a
//!   [`ConcurrentGroup`], so waiting is
//!   fair and cancel-safe).
//! - An idle instance is checked before it is handed out; one that fails
//!   the check is destroyed and the next one (or a new one) is tried.
//! - With `recycle`, an instance older than a jittered age (±10 %) is
//!   destroyed when it comes back rather than kept.
//! - The guard returns its instance when dropped, also on panic or
//!   cancellation.
//! - [`Pool::close`] destroys the idle instances, and the others as they
//!   come back.
//!
//! Why not wrap `deadpool`: its managed pool is close to this one, but its
//! timeouts run on one of its own runtime features (tokio, async-std or
//! smol), not on a Machina [`Runtime`], so they cannot follow the mock
//! runtime's virtual clock, and our tests of waits and recycling would
//! need real time; its recycling is a check by the manager, not an age
//! limit; and its waiters are not our fair, cancel-safe concurrent group.
//! The cost of our own: see `BENCHMARKS.md` (acquire + release against
//! deadpool's).

use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::limit::{ConcurrentGroup, Limits, Permit};
use crate::rt::Runtime;

/// Makes, checks and destroys a pool's instances.
pub trait Manager: Send + Sync + 'static {
    /// What the pool holds.
    type Item: Send + 'static;
    /// What creating or checking can fail with.
    type Error: Error + Send + Sync + 'static;

    /// Makes a new instance.
    fn create(&self) -> impl Future<Output = Result<Self::Item, Self::Error>> + Send;

    /// Checks an idle instance before it is handed out; an error destroys
    /// it. The default accepts every instance.
    fn check(&self, item: &mut Self::Item) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = item;
        async { Ok(()) }
    }

    /// Disposes of an instance. The default drops it.
    fn destroy(&self, item: Self::Item) -> impl Future<Output = ()> + Send {
        drop(item);
        async {}
    }
}

/// Why a pool could not be made or give an instance.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError<E> {
    /// `max_size` was zero.
    #[error("invalid pool: max_size is 0; use at least 1")]
    ZeroSize,
    /// No instance within the acquire timeout.
    #[error("no pool instance within {0:?}")]
    Timeout(Duration),
    /// The pool is closed.
    #[error("the pool is closed")]
    Closed,
    /// The manager could not create an instance.
    #[error("could not create a pool instance: {0}")]
    Create(#[source] E),
}

struct Idle<T> {
    item: T,
    created: Instant,
}

struct State<T> {
    idle: VecDeque<Idle<T>>,
    /// Instances that exist (idle or lent out).
    size: usize,
    closed: bool,
}

struct Inner<M: Manager> {
    manager: M,
    runtime: Runtime,
    slots: ConcurrentGroup,
    max_size: usize,
    recycle: Option<Duration>,
    state: Mutex<State<M::Item>>,
}

/// A pool of `M::Item`s; see the module docs. Clones share one pool.
///
/// # Examples
///
/// ```
/// use machina_core::pool::{Manager, Pool};
/// use machina_core::testing::MockRuntime;
///
/// struct Connections;
/// impl Manager for Connections {
///     type Item = String;
///     type Error = std::io::Error;
///     async fn create(&self) -> Result<String, std::io::Error> {
///         Ok("connection".to_owned())
///     }
/// }
///
/// let mock = MockRuntime::new();
/// let pool = Pool::builder(Connections, 2).build(&mock.runtime()).unwrap();
/// mock.block_on(async {
///     let conn = pool.acquire().await.unwrap();
///     assert_eq!(*conn, "connection");
///     drop(conn); // back to the pool
///     assert_eq!((pool.size(), pool.idle()), (1, 1));
/// }).unwrap();
/// ```
pub struct Pool<M: Manager> {
    inner: Arc<Inner<M>>,
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            inner: self.inner.clone(),
        }
    }
}

/// Configures a [`Pool`].
#[must_use = "call .build(runtime) to get the pool"]
pub struct PoolBuilder<M> {
    manager: M,
    max_size: usize,
    recycle: Option<Duration>,
}

impl<M: Manager> PoolBuilder<M> {
    /// Destroys instances older than about `age` (±10 %, so that a pool's
    /// instances do not all expire at once) when they come back.
    pub fn recycle(mut self, age: Duration) -> Self {
        self.recycle = Some(age);
        self
    }

    /// The pool.
    ///
    /// # Errors
    /// [`PoolError::ZeroSize`] for a zero `max_size`.
    pub fn build(self, runtime: &Runtime) -> Result<Pool<M>, PoolError<M::Error>> {
        if self.max_size == 0 {
            return Err(PoolError::ZeroSize);
        }
        let max = u32::try_from(self.max_size).unwrap_or(u32::MAX);
        // The only limit a group refuses is a zero in-flight count, checked
        // just above.
        let slots = ConcurrentGroup::new(runtime, "pool", Limits::new().max_in_flight(max))
            .map_err(|_| PoolError::ZeroSize)?;
        Ok(Pool {
            inner: Arc::new(Inner {
                manager: self.manager,
                runtime: runtime.clone(),
                slots,
                max_size: self.max_size,
                recycle: self.recycle,
                state: Mutex::new(State {
                    idle: VecDeque::new(),
                    size: 0,
                    closed: false,
                }),
            }),
        })
    }
}

impl<M: Manager> fmt::Debug for PoolBuilder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("max_size", &self.max_size)
            .field("recycle", &self.recycle)
            .finish_non_exhaustive()
    }
}

impl<M: Manager> Pool<M> {
    /// Starts configuring a pool of at most `max_size` instances made by
    /// `manager`.
    pub fn builder(manager: M, max_size: usize) -> PoolBuilder<M> {
        PoolBuilder {
            manager,
            max_size,
            recycle: None,
        }
    }

    fn state(&self) -> MutexGuard<'_, State<M::Item>> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Instances that exist (idle or lent out); never more than `max_size`.
    pub fn size(&self) -> usize {
        self.state().size
    }

    /// Idle instances.
    pub fn idle(&self) -> usize {
        self.state().idle.len()
    }

    /// The most instances the pool makes.
    pub fn max_size(&self) -> usize {
        self.inner.max_size
    }

    /// Waits for an instance: an idle one that passes its check, or a new
    /// one. Waiters are served first come, first served.
    ///
    /// # Errors
    /// [`PoolError::Closed`] once closed, [`PoolError::Create`] if the
    /// manager fails to create one.
    pub async fn acquire(&self) -> Result<Pooled<M>, PoolError<M::Error>> {
        let permit = self.inner.slots.acquire().await;
        loop {
            let idle = {
                let mut state = self.state();
                if state.closed {
                    return Err(PoolError::Closed);
                }
                match state.idle.pop_front() {
                    Some(idle) => Some(idle),
                    None => {
                        // This slot may create: the permit bounds `size`.
                        state.size += 1;
                        None
                    }
                }
            };
            // Counts the instance being checked or created as existing; if
            // this future is dropped half-way (or the check fails, or the
            // creation fails), the guard takes it off the count.
            let reserved = Reserved {
                pool: self,
                armed: true,
            };
            match idle {
                Some(mut idle) => match self.inner.manager.check(&mut idle.item).await {
                    Ok(()) => {
                        reserved.disarm();
                        return Ok(self.lend(idle.item, idle.created, permit));
                    }
                    Err(error) => {
                        tracing::debug!(%error, "pool instance failed its check; destroying it");
                        self.inner.manager.destroy(idle.item).await;
                    }
                },
                None => {
                    let created = self.inner.runtime.now();
                    let item = self
                        .inner
                        .manager
                        .create()
                        .await
                        .map_err(PoolError::Create)?;
                    reserved.disarm();
                    return Ok(self.lend(item, created, permit));
                }
            }
        }
    }

    /// [`acquire`](Self::acquire) with a time limit.
    ///
    /// # Errors
    /// [`PoolError::Timeout`] when no instance came in time, or as for
    /// `acquire`.
    pub async fn acquire_timeout(&self, limit: Duration) -> Result<Pooled<M>, PoolError<M::Error>> {
        self.inner
            .runtime
            .timeout(limit, self.acquire())
            .await
            .unwrap_or(Err(PoolError::Timeout(limit)))
    }

    fn lend(&self, item: M::Item, created: Instant, permit: Permit) -> Pooled<M> {
        let expires = self.inner.recycle.map(|age| {
            let jitter = self.inner.runtime.rng().next_f64() * 0.2 + 0.9;
            created + age.mul_f64(jitter)
        });
        Pooled {
            pool: self.clone(),
            item: Some(item),
            created,
            expires,
            _permit: permit,
        }
    }

    /// Takes an instance back: keeps it idle, or destroys it if it is past
    /// its age or the pool is closed.
    fn give_back(&self, item: M::Item, created: Instant, expires: Option<Instant>) {
        let expired = expires.is_some_and(|at| self.inner.runtime.now() >= at);
        {
            let mut state = self.state();
            if !expired && !state.closed {
                state.idle.push_back(Idle { item, created });
                return;
            }
            state.size -= 1;
        }
        self.destroy_later(item);
    }

    fn destroy_later(&self, item: M::Item) {
        let pool = self.clone();
        let spawned = self.inner.runtime.spawn_named("pool-destroy", async move {
            pool.inner.manager.destroy(item).await;
        });
        match spawned {
            Ok(handle) => handle.detach(),
            Err(error) => tracing::warn!(%error, "could not destroy a pool instance; dropping it"),
        }
    }

    /// Refuses new acquisitions, destroys the idle instances now and the
    /// lent ones as they come back, waiting up to `timeout` for them.
    /// Returns how many were still lent out when the time ran out.
    pub async fn close(&self, timeout: Duration) -> usize {
        let idle: Vec<Idle<M::Item>> = {
            let mut state = self.state();
            state.closed = true;
            state.size -= state.idle.len();
            state.idle.drain(..).collect()
        };
        for entry in idle {
            self.inner.manager.destroy(entry.item).await;
        }
        let deadline = self.inner.runtime.now() + timeout;
        loop {
            let left = self.size();
            if left == 0 || self.inner.runtime.now() >= deadline {
                return left;
            }
            // Returns are not signalled; look again shortly (close is rare).
            let step = (deadline - self.inner.runtime.now()).min(Duration::from_millis(10));
            self.inner.runtime.sleep(step).await;
        }
    }
}

impl<M: Manager> fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Pool")
            .field("max_size", &self.inner.max_size)
            .field("size", &state.size)
            .field("idle", &state.idle.len())
            .field("closed", &state.closed)
            .finish()
    }
}

/// Takes one instance off the pool's count when dropped armed.
struct Reserved<'a, M: Manager> {
    pool: &'a Pool<M>,
    armed: bool,
}

impl<M: Manager> Reserved<'_, M> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl<M: Manager> Drop for Reserved<'_, M> {
    fn drop(&mut self) {
        if self.armed {
            self.pool.state().size -= 1;
        }
    }
}

/// An instance lent by a [`Pool`]; it goes back when dropped.
pub struct Pooled<M: Manager> {
    pool: Pool<M>,
    item: Option<M::Item>,
    created: Instant,
    expires: Option<Instant>,
    _permit: Permit,
}

impl<M: Manager> Pooled<M> {
    /// Destroys the instance instead of returning it (after an error that
    /// left it unusable).
    pub fn discard(mut self) {
        if let Some(item) = self.item.take() {
            self.pool.state().size -= 1;
            self.pool.destroy_later(item);
        }
    }
}

impl<M: Manager> Deref for Pooled<M> {
    type Target = M::Item;

    fn deref(&self) -> &M::Item {
        self.item
            .as_ref()
            .expect("a Pooled holds its item until dropped")
    }
}

impl<M: Manager> DerefMut for Pooled<M> {
    fn deref_mut(&mut self) -> &mut M::Item {
        self.item
            .as_mut()
            .expect("a Pooled holds its item until dropped")
    }
}

impl<M: Manager> Drop for Pooled<M> {
    fn drop(&mut self) {
        if let Some(item) = self.item.take() {
            self.pool.give_back(item, self.created, self.expires);
        }
    }
}

impl<M: Manager> fmt::Debug for Pooled<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pooled")
            .field("created", &self.created)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests;
