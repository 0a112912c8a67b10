//! [`ConcurrentGroup`]: a [`GroupPolicy`] shared by many callers, with a
//! first-come first-served queue of waiters.
//!
//! This file owns the shared state and the non-blocking paths; waiting is
//! in `acquire.rs` and giving slots back is in `permit.rs`.

use std::fmt;
use std::task::Waker;
use std::time::{Duration, Instant};

use super::acquire::Acquire;
use super::config::Limits;
use super::error::{AcquireError, LimitError};
use super::gcra::{AtomicBucket, Step};
use super::permit::Permit;
use super::policy::GroupPolicy;
use super::queue::{Grants, WaitQueue};
use super::slots::Slots;
use super::sync::{Arc, AtomicU64, CacheLine, Mutex, Ordering, lock};
use crate::decision::{Decision, Reason, Refusal};
use crate::rt::{FastClock, Runtime};

/// Counters of one group since it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct GroupStats {
    /// Permits handed out.
    pub acquired: u64,
    /// Permits that had to wait in the queue first.
    pub waited: u64,
    /// Total time those waits took.
    pub wait_time: Duration,
    /// `try_acquire` calls refused.
    pub rejected: u64,
    /// Waits abandoned before a permit (cancelled or timed out).
    pub abandoned: u64,
}

pub(crate) struct GroupState {
    pub(crate) policy: GroupPolicy,
    /// Waiters by ticket: the smallest ticket is served first.
    pub(crate) waiters: WaitQueue,
    /// The counters kept under the lock; refusals are an atomic of the
    /// group, and the starts of a group on slots are counted beside its
    /// slots (see [`Slots`]).
    pub(crate) stats: GroupStats,
    /// Tickets of waiters a release handed its slot to (taken out of the
    /// queue, the slot still taken), until they collect it (see
    /// [`GroupInner::release`]).
    pub(crate) granted: Grants,
}

impl GroupState {
    /// The waker of the waiter now at the head of the queue, to wake once
    /// the lock is released.
    pub(crate) fn head_waker(&self) -> Option<Waker> {
        self.waiters.head_waker()
    }

    /// Whether any caller waits to start: queued, or handed a slot it has
    /// not yet collected (it has not started).
    pub(crate) fn anyone_waiting(&self) -> bool {
        !self.waiters.is_empty() || !self.granted.is_empty()
    }

    /// Whether a caller older than `ticket` waits to start.
    pub(crate) fn has_older_than(&self, ticket: u64) -> bool {
        self.waiters.has_older_than(ticket) || self.granted.has_older_than(ticket)
    }

    /// Callers waiting to start (see [`anyone_waiting`](Self::anyone_waiting)).
    pub(crate) fn waiting(&self) -> usize {
        self.waiters.len() + self.granted.len()
    }
}

/// A group's shared state. What calls write — the lock and its state,
/// the token bucket, the count of refusals — is on cache lines of its own
/// (see [`CacheLine`]), apart from what every call only reads and from
/// the reference count (the slots' word and the starts are in their own
/// allocation, see [`Slots`]). The alignment, which the `CacheLine`
/// fields would force anyway, keeps the reference count off the first
/// field's line.
#[repr(align(64))]
pub(crate) struct GroupInner {
    pub(crate) name: Box<str>,
    pub(crate) runtime: Runtime,
    pub(crate) state: CacheLine<Mutex<GroupState>>,
    /// Whether decisions depend on the clock: a start window or a rate
    /// (fixed at creation).
    timed: bool,
    /// When the group was made: the `now` handed to a policy without a
    /// window, which never reads it.
    made_at: Instant,
    /// The runtime's fast counter, if it has one: the instants the
    /// policy decides on are read from it (see
    /// [`clock_now`](Self::clock_now)).
    fast: Option<&'static FastClock>,
    /// The group's place in the order groups were made: the order groups
    /// are locked (and released) together, the same on every run.
    order: u64,
    /// For a group without a window of starts whose rate (if any) fits
    /// one atomic word: its in-flight slots, taken and given back without
    /// the lock while nobody waits (see `slots.rs`). `None`: the policy
    /// under the lock decides.
    slots: Option<Arc<Slots>>,
    /// The token bucket of a group on slots with a rate (see `gcra.rs`).
    bucket: Option<CacheLine<AtomicBucket>>,
    /// `try_acquire` refusals (`GroupStats::rejected`).
    rejected: CacheLine<AtomicU64>,
}

impl GroupInner {
    /// The instant a decision needs: the clock for a group with a window
    /// or a rate; without either, no clock read at all (a fixed instant the policy
    /// ignores), which keeps the uncontended path cheap.
    #[inline]
    pub(crate) fn decision_now(&self) -> Instant {
        if self.timed {
            self.clock_now()
        } else {
            self.made_at
        }
    }

    /// The clock the policy decides on: the runtime's fast counter as an
    /// instant ([`FastClock::now`]) where it has one — within a fraction of
    /// a microsecond of its `now()`, at a fraction of the cost where
    /// `clock_gettime` is dear — else the runtime's `now()` (the mock
    /// runtime's virtual clock, exact). One scale for every decision of
    /// the group, the lock-free and the waiting ones alike, so that a
    /// window opens at the same instant for both; a waiter woken by its
    /// timer decides at no earlier than the instant it slept for (see
    /// `acquire.rs`), so the counter's error never sends it back to sleep.
    #[inline]
    pub(crate) fn clock_now(&self) -> Instant {
        match self.fast {
            Some(clock) => clock.now(),
            None => self.runtime.now(),
        }
    }

    /// The order in which groups are locked together: the order they were
    /// made in — fixed, and unlike addresses the same on every run, so a
    /// seeded mock run wakes waiters in the same order every time.
    pub(crate) fn lock_order(group: &Arc<Self>) -> u64 {
        group.order
    }

    /// A start without the lock, for a group on slots while nobody waits:
    /// `None` when the lock is needed (a policy group, or waiters). The
    /// in-flight slot is checked first, then the rate.
    #[inline]
    pub(crate) fn start_without_lock(&self) -> Option<Result<(), Refusal>> {
        let slots = self.slots.as_ref()?;
        if slots.anyone_waiting() {
            return None;
        }
        if !slots.try_take_first() {
            return Some(Err(Refusal::new(Reason::InFlight, None)));
        }
        if let Some(bucket) = &self.bucket
            && let Err(wait) = bucket.try_start_at(bucket.now(&self.runtime))
        {
            // The slot goes back (and to a waiter that queued meanwhile).
            self.release();
            let until = self.clock_now() + wait;
            return Some(Err(Refusal::new(Reason::Rate, Some(until))));
        }
        slots.count_start();
        Some(Ok(()))
    }

    /// What the limits say about a start at `now`, without starting it
    /// (`promise`: a refused caller will wait for the instant named; see
    /// [`GroupPolicy::decide`]). Under the lock.
    pub(crate) fn decide(&self, state: &mut GroupState, now: Instant, promise: bool) -> Decision {
        match &self.slots {
            Some(slots) if !slots.free() => {
                Decision::WaitUntil(Refusal::new(Reason::InFlight, None))
            }
            Some(_) => match self
                .bucket
                .as_ref()
                .and_then(|bucket| bucket.blocked_for(bucket.at(now), promise))
            {
                Some(wait) => Decision::WaitUntil(Refusal::new(Reason::Rate, Some(now + wait))),
                None => Decision::Proceed,
            },
            None if promise => state.policy.decide(now),
            None => state.policy.peek(now),
        }
    }

    /// Starts a call that [`decide`](Self::decide) let through. Under the
    /// lock.
    ///
    /// # Errors
    /// For a group on slots: a slot or the bucket's last token was taken
    /// without the lock since the look (nothing is taken then; with
    /// `promise`, a caller refused by the rate is taken to wait for the
    /// instant named).
    pub(crate) fn commit(
        &self,
        state: &mut GroupState,
        now: Instant,
        promise: bool,
    ) -> Result<Commit, Refusal> {
        match &self.slots {
            Some(slots) => {
                if !slots.try_take() {
                    return Err(Refusal::new(Reason::InFlight, None));
                }
                let step = match &self.bucket {
                    Some(bucket) => {
                        match bucket.commit_at(bucket.at(now), promise) {
                            Ok(step) => Some(step),
                            Err(wait) => {
                                // Under the lock: whoever waits is woken by the
                                // caller committing, who is first in line.
                                slots.give_back();
                                return Err(Refusal::new(Reason::Rate, Some(now + wait)));
                            }
                        }
                    }
                    None => None,
                };
                slots.count_start();
                Ok(Commit(step))
            }
            None => {
                state.policy.commit(now);
                state.stats.acquired += 1;
                Ok(Commit(None))
            }
        }
    }

    /// Undoes a [`commit`](Self::commit) of a slot group (an all-or-nothing
    /// start that another group refused): the slot, and the bucket's token
    /// unless a start followed it; a policy group is never undone (its
    /// commits come last, and cannot fail).
    pub(crate) fn uncommit(&self, commit: Commit) {
        if let Some(slots) = &self.slots {
            slots.give_back();
            slots.uncount_start();
        }
        if let (Some(bucket), Commit(Some(step))) = (&self.bucket, commit) {
            bucket.undo(step);
        }
    }

    /// Whether this group is on slots and one of them is free now.
    pub(crate) fn on_slots_free(&self) -> bool {
        self.slots.as_ref().is_some_and(|s| s.free())
    }

    /// Whether this group is on slots (its commit can fail).
    pub(crate) fn on_slots(&self) -> bool {
        self.slots.is_some()
    }

    /// Counts a `try_acquire` refusal.
    pub(crate) fn count_rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Gives back a call's slot, and wakes the head of the queue if anyone
    /// waits.
    ///
    /// A group on slots hands the slot directly to a head waiting for it
    /// alone: the slot stays taken, the waiter leaves the queue with a
    /// grant and starts at its next poll without deciding again. So every
    /// release wakes a different waiter, and freed slots do not wait for
    /// the head to be polled before the next waiter is woken.
    #[inline]
    pub(crate) fn release(&self) {
        match &self.slots {
            // Nobody waits: the slot given back is all (inline).
            Some(slots) if !slots.give_back() => {}
            _ => self.release_to_waiters(),
        }
    }

    /// [`release`](Self::release) once the slot is given back (if the
    /// group is on slots) and someone may wait: under the lock.
    #[inline(never)]
    fn release_to_waiters(&self) {
        let next = match &self.slots {
            Some(slots) => {
                let mut state = lock(&self.state);
                // Taken back for the head (it fails only if another caller
                // took the slot since: then the head looks for itself). A
                // group with a rate does not hand slots on: its head needs
                // a token too.
                if self.bucket.is_none() && state.waiters.head_takes_handoff() && slots.try_take() {
                    slots.count_start();
                    state.waiters.pop_head_for_grant().map(|(ticket, waker)| {
                        state.granted.push(ticket);
                        waker
                    })
                } else {
                    state.head_waker()
                }
            }
            None => {
                let mut state = lock(&self.state);
                state.policy.release();
                state.head_waker()
            }
        };
        if let Some(waker) = next {
            waker.wake();
        }
    }

    /// Gives back a slot handed to a waiter that left without collecting
    /// it (its wait was cancelled).
    pub(crate) fn return_grant(&self) {
        if let Some(slots) = &self.slots {
            slots.uncount_start();
        }
        self.release();
    }

    /// Calls holding a slot now (a slot handed to a waiter counts once
    /// it has started).
    pub(crate) fn in_flight(&self, state: &GroupState) -> u32 {
        match &self.slots {
            Some(slots) => slots.taken().saturating_sub(state.granted.len() as u32),
            None => state.policy.in_flight(),
        }
    }
}

/// What [`GroupInner::commit`] took beyond a slot: the bucket's step, to
/// undo with the slot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Commit(Option<Step>);

/// The right to run one call in one group, borrowing the group (see
/// [`ConcurrentGroup::try_acquire_guard`]): its slot is given back when it
/// is dropped, like a [`Permit`]'s.
#[must_use = "dropping a GroupGuard ends the call's slot at once"]
pub struct GroupGuard<'a> {
    group: &'a GroupInner,
}

impl GroupGuard<'_> {
    /// The name of the group it holds a slot in.
    pub fn group(&self) -> &str {
        &self.group.name
    }
}

impl Drop for GroupGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.group.release();
    }
}

impl fmt::Debug for GroupGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupGuard")
            .field("group", &self.group())
            .finish()
    }
}

/// A named limit shared by the calls that belong to it: at most
/// `max_in_flight` calls at once, and at most `max_starts` starts in any
/// sliding `window` (see [`GroupPolicy`] for the window's exact meaning).
///
/// Waiters are served first come, first served: a freed slot or token
/// goes to the oldest waiter, and a new caller cannot overtake the queue.
/// Dropping a waiting [`Acquire`], dropping a [`Permit`] and panicking
/// while holding one all give everything back.
///
/// Cloning is cheap; clones share one group.
///
/// # Examples
///
/// ```
/// use machina_core::limit::{ConcurrentGroup, Limits};
/// use machina_core::testing::MockRuntime;
/// use std::time::Duration;
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// // exmachina's README group: 4 in flight, 3 starts per second.
/// let group = ConcurrentGroup::new(
///     &rt,
///     "limit",
///     Limits::new().max_in_flight(4).max_starts(3, Duration::from_secs(1)),
/// ).unwrap();
/// let starts = mock.block_on(async move {
///     let t0 = rt.now();
///     let mut starts = Vec::new();
///     for _ in 0..5 {
///         let permit = group.acquire().await;
///         starts.push((rt.now() - t0).as_millis());
///         drop(permit);
///     }
///     starts
/// }).unwrap();
/// assert_eq!(starts, [0, 0, 0, 1000, 1000]);
/// ```
#[derive(Clone)]
pub struct ConcurrentGroup {
    pub(crate) inner: Arc<GroupInner>,
}

impl ConcurrentGroup {
    /// A group named `name` enforcing `limits`, waiting on `runtime`'s
    /// clock.
    ///
    /// # Errors
    /// [`LimitError`] for an empty name or limits that could never admit a
    /// call.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::limit::{ConcurrentGroup, LimitError, Limits};
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let rt = MockRuntime::new().runtime();
    /// let api = ConcurrentGroup::new(&rt, "api", Limits::new().max_starts(3, Duration::from_secs(1)))?;
    /// assert_eq!(api.limits().starts_limit(), Some((3, Duration::from_secs(1))));
    ///
    /// let never = ConcurrentGroup::new(&rt, "db", Limits::new().max_in_flight(0)).unwrap_err();
    /// assert_eq!(never, LimitError::ZeroInFlight { group: "db".to_owned() });
    /// assert!(never.to_string().contains("leave it unset for no limit"));
    /// assert_eq!(ConcurrentGroup::new(&rt, "", Limits::new()).unwrap_err(), LimitError::EmptyName);
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn new(
        runtime: &Runtime,
        name: impl Into<String>,
        limits: Limits,
    ) -> Result<Self, LimitError> {
        let name = name.into();
        if name.is_empty() {
            return Err(LimitError::EmptyName);
        }
        limits.validate(&name)?;
        let policy = GroupPolicy::new(limits)?;
        let made_at = runtime.now();
        // Without a window, a group whose rate fits one atomic word (or
        // that has none) takes its starts without the lock.
        let bucket = limits
            .rate_limit()
            .filter(|_| !policy.windowed())
            .and_then(|(n, per, burst)| {
                AtomicBucket::new(n, per, burst, made_at, runtime.fast_clock())
            })
            .map(CacheLine);
        let on_slots = !policy.windowed() && (limits.rate_limit().is_none() || bucket.is_some());
        let slots =
            on_slots.then(|| Arc::new(Slots::new(limits.in_flight_limit().unwrap_or(u32::MAX))));
        let waiters = WaitQueue::new(slots.clone());
        Ok(ConcurrentGroup {
            inner: Arc::new(GroupInner {
                name: name.into_boxed_str(),
                runtime: runtime.clone(),
                timed: policy.timed(),
                made_at,
                fast: runtime.fast_clock(),
                order: {
                    static NEXT: std::sync::atomic::AtomicU64 =
                        std::sync::atomic::AtomicU64::new(0);
                    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                },
                slots,
                bucket,
                rejected: CacheLine(AtomicU64::new(0)),
                state: CacheLine(Mutex::new(GroupState {
                    policy,
                    waiters,
                    stats: GroupStats::default(),
                    granted: Grants::default(),
                })),
            }),
        })
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The limits the group enforces.
    pub fn limits(&self) -> Limits {
        lock(&self.inner.state).policy.limits()
    }

    /// Starts a call now if both limits allow it and nobody is waiting.
    ///
    /// # Errors
    /// The [`Refusal`]: what blocks, and the earliest instant a start could
    /// succeed when a clock can tell.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::decision::Reason;
    /// use machina_core::limit::{ConcurrentGroup, Limits};
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let second = Duration::from_secs(1);
    /// let rt = MockRuntime::new().runtime();
    /// let api = ConcurrentGroup::new(&rt, "api", Limits::new().max_in_flight(1).max_starts(2, second))?;
    /// let first = api.try_acquire()?;
    /// // The one slot is held: no clock can tell when it comes back.
    /// let busy = api.try_acquire().unwrap_err();
    /// assert_eq!((busy.reason, busy.until), (Reason::InFlight, None));
    /// drop(first);
    /// drop(api.try_acquire()?);
    /// // Both starts of this second are spent: the window says when.
    /// let spent = api.try_acquire().unwrap_err();
    /// assert_eq!((spent.reason, spent.until), (Reason::Window, Some(rt.now() + second)));
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit, Refusal> {
        self.try_start().map(|()| Permit::one(self.inner.clone()))
    }

    /// [`try_acquire`](Self::try_acquire) with a permit that borrows the
    /// group: no reference count is taken per call, for a caller that
    /// holds the group for the permit's whole life (as tokio's
    /// `Semaphore::try_acquire` borrows its semaphore).
    ///
    /// # Errors
    /// As [`try_acquire`](Self::try_acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::limit::{ConcurrentGroup, Limits};
    /// use machina_core::testing::MockRuntime;
    ///
    /// let rt = MockRuntime::new().runtime();
    /// let db = ConcurrentGroup::new(&rt, "db", Limits::new().max_in_flight(1))?;
    /// let guard = db.try_acquire_guard()?;
    /// assert_eq!((db.in_flight(), guard.group()), (1, "db"));
    /// assert!(db.try_acquire_guard().is_err());
    /// drop(guard);
    /// assert_eq!(db.in_flight(), 0);
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    #[inline]
    pub fn try_acquire_guard(&self) -> Result<GroupGuard<'_>, Refusal> {
        self.try_start().map(|()| GroupGuard { group: &self.inner })
    }

    /// Starts a call now if the group admits it: without the lock when it
    /// can, else under it (both `try_acquire` forms; inlined into each, so
    /// that the lock-free start costs no call).
    #[inline(always)]
    fn try_start(&self) -> Result<(), Refusal> {
        match self.inner.start_without_lock() {
            Some(Ok(())) => Ok(()),
            Some(Err(refused)) => {
                self.inner.count_rejected();
                Err(refused)
            }
            None => self.try_start_locked(),
        }
    }

    /// Starts a call now under the group's lock if the group admits it
    /// (the `try_acquire` forms, when the lock-free start cannot decide).
    fn try_start_locked(&self) -> Result<(), Refusal> {
        let inner = &*self.inner;
        let now = inner.decision_now();
        let mut state = lock(&inner.state);
        let refused = if !state.anyone_waiting() {
            match inner.decide(&mut state, now, false) {
                Decision::Proceed => match inner.commit(&mut state, now, false) {
                    Ok(_) => return Ok(()),
                    Err(refused) => refused,
                },
                Decision::WaitUntil(refused) => refused,
                Decision::GiveUp(reason) => Refusal::new(reason, None),
            }
        } else {
            Refusal::new(Reason::Queue, None)
        };
        inner.count_rejected();
        Err(refused)
    }

    /// Waits for a slot and a start token, first come first served.
    ///
    /// Cancel-safe: dropping the future before it completes takes nothing
    /// and lets the next waiter go ahead.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::limit::{ConcurrentGroup, Limits};
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let ms = Duration::from_millis;
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let db = ConcurrentGroup::new(&rt, "db", Limits::new().max_in_flight(1))?;
    /// mock.block_on(async {
    ///     let held = db.acquire().await;
    ///     // A waiter that gives up leaves nothing behind in the queue.
    ///     assert!(rt.timeout(ms(100), db.acquire()).await.is_err());
    ///     assert_eq!(db.waiting(), 0);
    ///     drop(held);
    ///     let _next = db.acquire().await; // at once
    /// })?;
    /// assert_eq!(mock.elapsed(), ms(100));
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn acquire(&self) -> Acquire {
        Acquire::one(self.inner.clone())
    }

    /// Like [`acquire`](Self::acquire), giving up after `limit`.
    ///
    /// # Errors
    /// [`AcquireError::TimedOut`] when no permit came within `limit`.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::limit::{ConcurrentGroup, Limits};
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let api = ConcurrentGroup::new(&rt, "api", Limits::new().max_starts(1, Duration::from_secs(1)))?;
    /// let gave_up = mock.block_on(async {
    ///     let _first = api.acquire().await;
    ///     api.acquire_timeout(Duration::from_millis(250)).await.unwrap_err()
    /// })?;
    /// assert_eq!(gave_up.to_string(), "gave up waiting for concurrent group api after 250ms");
    /// assert_eq!(api.stats().abandoned, 1);
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub async fn acquire_timeout(&self, limit: Duration) -> Result<Permit, AcquireError> {
        let runtime = &self.inner.runtime;
        runtime
            .timeout(limit, self.acquire())
            .await
            .map_err(|_| AcquireError::TimedOut {
                groups: self.inner.name.to_string(),
                waited: limit,
            })
    }

    /// Calls holding a slot now.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::limit::{ConcurrentGroup, Limits};
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let api = ConcurrentGroup::new(&rt, "api", Limits::new().max_in_flight(2))?;
    /// for _ in 0..3 {
    ///     let (rt2, api) = (rt.clone(), api.clone());
    ///     rt.spawn(async move {
    ///         let _permit = api.acquire().await;
    ///         rt2.sleep(Duration::from_secs(1)).await;
    ///     })?
    ///     .detach();
    /// }
    /// mock.run_until_stalled()?;
    /// assert_eq!((api.in_flight(), api.waiting()), (2, 1));
    /// mock.advance(Duration::from_secs(1))?;
    /// assert_eq!((api.in_flight(), api.waiting()), (1, 0));
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn in_flight(&self) -> u32 {
        let state = lock(&self.inner.state);
        self.inner.in_flight(&state)
    }

    /// Callers waiting for a permit now (a caller a released slot was
    /// handed to counts until its task runs and takes it; its slot counts
    /// in [`in_flight`](Self::in_flight) from then).
    pub fn waiting(&self) -> usize {
        lock(&self.inner.state).waiting()
    }

    /// Waiters counted in the slots' word (a group on slots), else
    /// [`waiting`](Self::waiting): tests check the two agree.
    #[cfg(test)]
    pub(crate) fn counted_waiters(&self) -> usize {
        match &self.inner.slots {
            Some(slots) => slots.waiters() as usize,
            None => self.waiting(),
        }
    }

    /// Starts inside the current window.
    pub fn starts_in_window(&self) -> u32 {
        let now = self.inner.clock_now();
        lock(&self.inner.state).policy.starts_in_window(now)
    }

    /// The earliest instant a new caller could start: now when a permit is
    /// free; when the window opens if only the window blocks; `None` when it
    /// depends on a running call ending or on waiters ahead.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::limit::{ConcurrentGroup, Limits};
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let ms = Duration::from_millis;
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let api = ConcurrentGroup::new(&rt, "api", Limits::new().max_starts(2, ms(1000)))?;
    /// let t0 = rt.now();
    /// assert_eq!(api.next_start(), Some(t0));
    /// drop(api.try_acquire()?);
    /// mock.advance(ms(400))?;
    /// drop(api.try_acquire()?);
    /// assert_eq!(api.starts_in_window(), 2);
    /// // The first start's token comes back one window after it.
    /// assert_eq!(api.next_start(), Some(t0 + ms(1000)));
    /// mock.advance(ms(600))?;
    /// assert_eq!(api.starts_in_window(), 1);
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn next_start(&self) -> Option<Instant> {
        let now = self.inner.clock_now();
        let mut state = lock(&self.inner.state);
        if state.anyone_waiting() {
            return None;
        }
        match self.inner.decide(&mut state, now, false) {
            Decision::Proceed => Some(now),
            Decision::WaitUntil(refusal) => refusal.until,
            Decision::GiveUp(_) => None,
        }
    }

    /// The group's counters.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::limit::{ConcurrentGroup, Limits};
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let api = ConcurrentGroup::new(&rt, "api", Limits::new().max_starts(1, Duration::from_secs(1)))?;
    /// mock.block_on(async {
    ///     drop(api.acquire().await);
    ///     assert!(api.try_acquire().is_err());
    ///     drop(api.acquire().await); // waits for the next window
    /// })?;
    /// let stats = api.stats();
    /// assert_eq!((stats.acquired, stats.rejected, stats.waited), (2, 1, 1));
    /// assert_eq!(stats.wait_time, Duration::from_secs(1));
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn stats(&self) -> GroupStats {
        let mut stats = lock(&self.inner.state).stats;
        stats.acquired += self.inner.slots.as_ref().map_or(0, |slots| slots.started());
        stats.rejected = self.inner.rejected.load(Ordering::Relaxed);
        stats
    }
}

impl fmt::Debug for ConcurrentGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.inner.state);
        f.debug_struct("ConcurrentGroup")
            .field("name", &self.inner.name)
            .field("limits", &state.policy.limits())
            .field("in_flight", &self.inner.in_flight(&state))
            .field("waiting", &state.waiting())
            .finish()
    }
}

/// Waits until a call can start in **every** group of `groups` at once:
/// it starts in all of them or in none, so a refusal by one never spends a
/// token of another. Groups are locked in one global order, so callers with
/// overlapping sets cannot deadlock; a caller queues in each group and is
/// served when it is first in line in all of them.
///
/// # Errors
/// [`LimitError::NoGroups`] for an empty list.
///
/// # Examples
///
/// ```
/// use machina_core::limit::{ConcurrentGroup, Limits, acquire_all};
/// use machina_core::testing::MockRuntime;
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// let api = ConcurrentGroup::new(&rt, "api", Limits::new().max_in_flight(2)).unwrap();
/// let db = ConcurrentGroup::new(&rt, "db", Limits::new().max_in_flight(1)).unwrap();
/// mock.block_on(async {
///     let both = acquire_all(&[api.clone(), db.clone()]).unwrap().await;
///     assert_eq!((api.in_flight(), db.in_flight()), (1, 1));
///     // db is full: a call needing both cannot start, and takes nothing.
///     assert!(machina_core::limit::try_acquire_all(&[api.clone(), db.clone()]).is_err());
///     assert_eq!(api.in_flight(), 1);
///     drop(both);
/// }).unwrap();
/// ```
pub fn acquire_all(groups: &[ConcurrentGroup]) -> Result<Acquire, LimitError> {
    match groups {
        [] => Err(LimitError::NoGroups),
        [one] => Ok(Acquire::one(one.inner.clone())),
        _ => Ok(Acquire::new(
            groups.iter().map(|g| g.inner.clone()).collect(),
        )),
    }
}

/// Starts a call in every group of `groups` now, or in none.
///
/// # Errors
/// The [`Refusal`] of the first group (in lock order) that refuses; with
/// an empty list, a call starts with no limit at all.
pub fn try_acquire_all(groups: &[ConcurrentGroup]) -> Result<Permit, Refusal> {
    match groups {
        [] => Ok(Permit::none()),
        [one] => one.try_acquire(),
        _ => Acquire::new(groups.iter().map(|g| g.inner.clone()).collect()).try_now(),
    }
}
