//! [`CircuitBreaker`]: the shared breaker around calls — a
//! [`BreakerMachine`] fed the runtime's clock and random generator, with a
//! `call` wrapper and a guard form.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::state::{Admission, BreakerMachine, BreakerSettings, BreakerStats, CircuitState};
use super::tally::SuccessTally;
use crate::call::{AsDynError, CallError, CallStack};
use crate::decision::{Decision, Reason, Refusal};
use crate::error::ErrorMatcher;
use crate::rt::{CoarseClock, Runtime};

type LastFailure = Arc<str>;

/// `Inner::pass_until` while every call simply passes, whatever the time.
const PASS_ALWAYS: u64 = u64::MAX;

/// How many times finer than a window's bucket the runtime's coarse clock
/// must be for successes to be counted by it.
const COARSE_BELOW_BUCKET: u128 = 10;

/// A breaker that could never work, refused by
/// [`BreakerBuilder::build`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BreakerConfigError {
    /// `error_ratio` was outside (0, 1].
    #[error(
        "invalid circuit breaker: error_ratio {0} is outside (0, 1]; 0.2 trips at 20% failures"
    )]
    ErrorRatio(f64),
    /// A duration that must not be zero was.
    #[error("invalid circuit breaker: {0} is zero; give it a duration such as 5s")]
    ZeroDuration(&'static str),
}

/// A call refused by an open breaker: it was not run. Its source is the
/// [`Refusal`] (reason and the instant recovery starts, when broken).
#[derive(Debug, Clone, thiserror::Error)]
#[error("circuit breaker {name:?} is {}{}{}", match state { CircuitState::Broken => "broken", _ => "recovering and let this call pass by" }, retry_in.map(|d| format!("; recovery starts in {d:?}")).unwrap_or_default(), last_failure.as_ref().map(|e| format!("; last failure: {e}")).unwrap_or_default())]
pub struct CircuitOpen {
    /// The breaker's name.
    pub name: Arc<str>,
    /// The state that refused.
    pub state: CircuitState,
    /// Until recovery starts, when broken.
    pub retry_in: Option<Duration>,
    /// The last counted failure, as text.
    pub last_failure: Option<LastFailure>,
    /// The refusal in the shared vocabulary.
    #[source]
    pub refusal: Refusal,
}

/// Configures a [`CircuitBreaker`].
#[derive(Clone)]
#[must_use = "call .build() to get the breaker"]
pub struct BreakerBuilder {
    name: String,
    settings: BreakerSettings,
    counts: ErrorMatcher,
}

impl BreakerBuilder {
    /// Trips when at least this share of the window's calls failed
    /// (aiomisc `error_ratio`; default 0.5).
    pub fn error_ratio(mut self, ratio: f64) -> Self {
        self.settings.error_ratio = ratio;
        self
    }

    /// The statistics window (aiomisc `response_time`; default 10 s).
    pub fn response_time(mut self, window: Duration) -> Self {
        self.settings.response_time = window;
        self
    }

    /// How long it stays broken (default 5 s).
    pub fn broken_time(mut self, time: Duration) -> Self {
        self.settings.broken_time = time;
        self
    }

    /// How long recovery lasts (default: `broken_time`).
    pub fn recovery_time(mut self, time: Duration) -> Self {
        self.settings.recovery_time = time;
        self
    }

    /// After recovering it cannot trip for this long (default:
    /// `broken_time`).
    pub fn passing_time(mut self, time: Duration) -> Self {
        self.settings.passing_time = time;
        self
    }

    /// Calls the window must hold before it may trip (default 5).
    pub fn min_calls(mut self, calls: u64) -> Self {
        self.settings.min_calls = calls;
        self
    }

    /// Counts only errors of type `E` (or with an `E` in their source
    /// chain) as failures; several calls count any of the types. Without
    /// any, **every** error counts (aiomisc's `cutout` with no exception
    /// types never trips; this one does).
    pub fn counts<E: Error + 'static>(mut self) -> Self {
        self.counts.add_type::<E>();
        self
    }

    /// Counts errors for which `predicate` holds (aiomisc
    /// `exception_inspector`); combines with [`counts`](Self::counts) as
    /// "any of".
    pub fn counts_if(
        mut self,
        predicate: impl Fn(&(dyn Error + 'static)) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.counts.add_when(predicate);
        self
    }

    /// Counts the errors `matcher` matches; combines with
    /// [`counts`](Self::counts) and [`counts_if`](Self::counts_if) as
    /// "any of".
    pub fn counting(mut self, matcher: &ErrorMatcher) -> Self {
        self.counts.add_when({
            let matcher = matcher.clone();
            move |e| matcher.matches(e)
        });
        self
    }

    /// The breaker.
    ///
    /// # Errors
    /// [`BreakerConfigError`] for a ratio outside (0, 1] or a zero window,
    /// broken or recovery time.
    pub fn build(self, runtime: &Runtime) -> Result<CircuitBreaker, BreakerConfigError> {
        let s = self.settings;
        if !(s.error_ratio > 0.0 && s.error_ratio <= 1.0) {
            return Err(BreakerConfigError::ErrorRatio(s.error_ratio));
        }
        for (name, value) in [
            ("response_time", s.response_time),
            ("broken_time", s.broken_time),
            ("recovery_time", s.recovery_time),
        ] {
            if value.is_zero() {
                return Err(BreakerConfigError::ZeroDuration(name));
            }
        }
        let counts = if self.counts.is_empty() {
            ErrorMatcher::any()
        } else {
            self.counts
        };
        let now = runtime.now();
        let machine = BreakerMachine::new(s, now);
        let (epoch, bucket_nanos) = machine.window_geometry();
        let tally = SuccessTally::new(epoch, bucket_nanos);
        tally.roll(now, 0);
        let success_clock = SuccessClock::choose(runtime, epoch, bucket_nanos);
        Ok(CircuitBreaker {
            inner: Arc::new(Inner {
                name: self.name.into(),
                runtime: runtime.clone(),
                counts,
                state: Mutex::new(Shared {
                    machine,
                    last_failure: None,
                }),
                tally,
                success_clock,
                pass_until: AtomicU64::new(PASS_ALWAYS),
                abandoned_passing: AtomicU64::new(0),
                period: AtomicU64::new(0),
            }),
        })
    }
}

impl fmt::Debug for BreakerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerBuilder")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .field("counts", &self.counts)
            .finish()
    }
}

struct Shared {
    machine: BreakerMachine,
    last_failure: Option<LastFailure>,
}

struct Inner {
    name: Arc<str>,
    runtime: Runtime,
    counts: ErrorMatcher,
    state: Mutex<Shared>,
    /// Until when (ns since the window's epoch, exclusive) the machine
    /// says a call would simply pass: [`PASS_ALWAYS`] while the window
    /// holds no failure (then only an outcome under the lock can change
    /// it, and entering needs neither the clock nor the lock); the end of
    /// the current bucket when it holds failures (an old success leaving
    /// the window may bring it to the trip condition); 0 when a call must
    /// go the slow way. Recomputed whenever the machine is consulted.
    pass_until: AtomicU64,
    /// Calls let through while passing and abandoned without an outcome,
    /// not yet added to the machine's counters.
    abandoned_passing: AtomicU64,
    /// The machine's period, for calls admitted on the fast path.
    period: AtomicU64,
    /// Successes of calls admitted while passing, counted without the
    /// lock and folded into the machine's window under it.
    tally: SuccessTally,
    /// The clock a success is counted by.
    success_clock: SuccessClock,
}

/// The clock [`CircuitBreaker::tally_takes`] reads for a success: the
/// runtime's coarse clock where its resolution is at most a tenth of a
/// window bucket (a success counted a tick early is harmless), else the
/// precise one. The coarse forms hold `shift`, what turns the coarse
/// clock's count (ns since its anchor) into ns since the window's epoch:
/// signed, since the window may have started before the process's coarse
/// clock was first used and anchored.
#[derive(Debug, Clone, Copy)]
enum SuccessClock {
    /// The process's coarse clock, read directly: the runtime's coarse
    /// time is it for good ([`Runtime::coarse_clock`]).
    Process {
        clock: &'static CoarseClock,
        shift: i64,
    },
    /// The runtime's coarse time, asked of its timer each time (it may
    /// leave the real clock: a tokio clock that can be paused), the
    /// precise one while it has none.
    Timer { shift: i64 },
    /// The runtime's precise clock.
    Precise,
}

impl SuccessClock {
    fn choose(runtime: &Runtime, epoch: Instant, bucket_nanos: u64) -> Self {
        let fine = u128::from(bucket_nanos)
            >= runtime.coarse_resolution().as_nanos() * COARSE_BELOW_BUCKET;
        // Where a coarse clock's count starts, in the window's terms.
        let shift = |clock: &CoarseClock| {
            let anchor = clock.anchor();
            match epoch.checked_duration_since(anchor) {
                Some(after) => i64::try_from(after.as_nanos()).ok().map(|n| -n),
                None => i64::try_from((anchor - epoch).as_nanos()).ok(),
            }
        };
        if !fine {
            return SuccessClock::Precise;
        }
        match runtime.coarse_clock() {
            Some(clock) => shift(clock).map(|shift| SuccessClock::Process { clock, shift }),
            // `coarse_nanos` counts from the global clock's anchor.
            None => shift(CoarseClock::global()).map(|shift| SuccessClock::Timer { shift }),
        }
        .unwrap_or(SuccessClock::Precise)
    }
}

/// A circuit breaker (aiomisc `CircuitBreaker`): see
/// [`BreakerMachine`] for the rules. Clones share one breaker.
///
/// # Examples
///
/// ```
/// use machina_core::breaker::{CircuitBreaker, CircuitState};
/// use machina_core::call::CallErrorKind;
/// use machina_core::testing::MockRuntime;
/// use std::time::Duration;
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// let breaker = CircuitBreaker::builder("github")
///     .error_ratio(0.5)
///     .min_calls(2)
///     .broken_time(Duration::from_secs(5))
///     .build(&rt)
///     .unwrap();
/// mock.block_on(async {
///     for _ in 0..2 {
///         let failed = breaker.call(async { Err::<(), _>(std::io::Error::other("503")) }).await;
///         assert!(matches!(failed.unwrap_err().kind(), CallErrorKind::Failed { .. }));
///     }
///     // 2 of 2 calls failed: the next call trips the breaker and is refused.
///     let refused = breaker.call(async { Ok::<_, std::io::Error>(1) }).await;
///     assert!(refused.unwrap_err().is_refused());
///     assert_eq!(breaker.state(), CircuitState::Broken);
/// }).unwrap();
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

impl CircuitBreaker {
    /// Starts configuring a breaker named `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::breaker::{BreakerConfigError, CircuitBreaker};
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let rt = MockRuntime::new().runtime();
    /// // aiomisc: CircuitBreaker(error_ratio=0.2, response_time=20, broken_time=5)
    /// let github = CircuitBreaker::builder("github")
    ///     .error_ratio(0.2)
    ///     .response_time(Duration::from_secs(20))
    ///     .broken_time(Duration::from_secs(5))
    ///     .counts::<std::io::Error>()
    ///     .build(&rt)?;
    /// assert_eq!(github.name(), "github");
    ///
    /// let never = CircuitBreaker::builder("x").error_ratio(0.0).build(&rt).unwrap_err();
    /// assert_eq!(never, BreakerConfigError::ErrorRatio(0.0));
    /// let stuck = CircuitBreaker::builder("x").broken_time(Duration::ZERO).build(&rt).unwrap_err();
    /// assert_eq!(stuck, BreakerConfigError::ZeroDuration("broken_time"));
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn builder(name: impl Into<String>) -> BreakerBuilder {
        let broken = Duration::from_secs(5);
        BreakerBuilder {
            name: name.into(),
            settings: BreakerSettings {
                error_ratio: 0.5,
                response_time: Duration::from_secs(10),
                broken_time: broken,
                recovery_time: broken,
                passing_time: broken,
                min_calls: 5,
            },
            counts: ErrorMatcher::none(),
        }
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The state now.
    ///
    /// # Examples
    ///
    /// Tripped, broken for `broken_time`, recovering for `recovery_time`,
    /// passing again — on the runtime's clock:
    ///
    /// ```
    /// use machina_core::breaker::{CircuitBreaker, CircuitState};
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let secs = Duration::from_secs;
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let db = CircuitBreaker::builder("db")
    ///     .min_calls(2)
    ///     .broken_time(secs(5))
    ///     .recovery_time(secs(10))
    ///     .build(&rt)?;
    /// mock.block_on(async {
    ///     for _ in 0..3 {
    ///         let _ = db.call(async { Err::<(), _>(std::io::Error::other("down")) }).await;
    ///     }
    /// })?;
    /// assert_eq!(db.state(), CircuitState::Broken);
    /// assert_eq!(db.time_to_recovery(), secs(5));
    /// mock.advance(secs(5))?;
    /// assert_eq!(db.state(), CircuitState::Recovering);
    /// mock.advance(secs(10))?;
    /// assert_eq!(db.state(), CircuitState::Passing);
    /// let stats = db.stats();
    /// // Two calls passed and failed; the third tripped the breaker and was refused.
    /// assert_eq!((stats.passing, stats.broken_rejected, stats.trips), (2, 1, 1));
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn state(&self) -> CircuitState {
        let now = self.inner.runtime.now();
        self.shared().machine.state(now)
    }

    /// Time until a broken breaker starts recovering (zero otherwise).
    pub fn time_to_recovery(&self) -> Duration {
        let now = self.inner.runtime.now();
        self.shared().machine.time_to_recovery(now)
    }

    /// The counters.
    ///
    /// `passing` counts a call when it ends (see [`BreakerStats::passing`]),
    /// so that letting a call through costs no write to shared memory.
    pub fn stats(&self) -> BreakerStats {
        let abandoned = self.inner.abandoned_passing.swap(0, Ordering::Relaxed);
        let mut shared = self.shared();
        self.fold(&mut shared);
        shared.machine.add_passing(abandoned);
        shared.machine.stats()
    }

    /// Asks to run a call: a guard to report its outcome on, or a refusal.
    ///
    /// # Errors
    /// [`CircuitOpen`] when the breaker refuses the call.
    ///
    /// # Examples
    ///
    /// The guard form, for work that is not one future; only the errors
    /// the breaker [`counts`](BreakerBuilder::counts) are failures:
    ///
    /// ```
    /// use machina_core::breaker::{CircuitBreaker, CircuitState};
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// #[error("HTTP {0}")]
    /// struct Http(u16);
    ///
    /// let rt = MockRuntime::new().runtime();
    /// let api = CircuitBreaker::builder("api").min_calls(2).counts::<std::io::Error>().build(&rt)?;
    /// for _ in 0..2 {
    ///     // The server answered, if not kindly: not a failure of the link.
    ///     api.enter()?.failure(&Http(404));
    /// }
    /// for _ in 0..2 {
    ///     api.enter()?.failure(&std::io::Error::other("connection reset"));
    /// }
    /// // 2 of the 4 calls failed, half of them: the next call trips it.
    /// let open = api.enter().unwrap_err();
    /// assert_eq!((open.state, open.retry_in), (CircuitState::Broken, Some(Duration::from_secs(5))));
    /// assert_eq!(
    ///     open.to_string(),
    ///     r#"circuit breaker "api" is broken; recovery starts in 5s; last failure: connection reset"#,
    /// );
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    #[inline]
    pub fn enter(&self) -> Result<BreakerGuard<'_>, CircuitOpen> {
        let admitted = self.admit()?;
        Ok(BreakerGuard {
            breaker: self,
            admitted,
            reported: false,
        })
    }

    /// The decision for one call. While the breaker is plainly passing it
    /// costs two atomic loads, inline (the call is counted when it ends);
    /// otherwise
    /// [`admit_slow`](Self::admit_slow) reads the clock and, if need be,
    /// asks the machine under the lock.
    #[inline]
    pub(crate) fn admit(&self) -> Result<Admission, CircuitOpen> {
        // The period first: if the machine moves on after this, the
        // outcome is of an earlier period and will be ignored.
        let period = self.inner.period.load(Ordering::Acquire);
        let pass_until = self.inner.pass_until.load(Ordering::Acquire);
        if pass_until == PASS_ALWAYS {
            return Ok(Admission::new(CircuitState::Passing, period));
        }
        self.admit_slow(period, pass_until)
    }

    /// [`admit`](Self::admit) when the window holds a failure or the
    /// breaker is not plainly passing.
    #[inline(never)]
    fn admit_slow(&self, period: u64, pass_until: u64) -> Result<Admission, CircuitOpen> {
        let now = self.inner.runtime.now();
        if pass_until > self.inner.tally.elapsed(now) {
            return Ok(Admission::new(CircuitState::Passing, period));
        }
        let rng = self.inner.runtime.rng();
        let mut shared = self.shared();
        self.fold(&mut shared);
        let decision = shared.machine.enter(now, || rng.next_f64());
        self.publish(&mut shared, now);
        match decision {
            Decision::Proceed => Ok(shared.machine.admission()),
            Decision::WaitUntil(refusal) => Err(CircuitOpen {
                name: self.inner.name.clone(),
                state: if refusal.reason == Reason::Broken {
                    CircuitState::Broken
                } else {
                    CircuitState::Recovering
                },
                retry_in: refusal.until.map(|at| at.saturating_duration_since(now)),
                last_failure: shared.last_failure.clone(),
                refusal,
            }),
            Decision::GiveUp(reason) => Err(CircuitOpen {
                name: self.inner.name.clone(),
                state: CircuitState::Broken,
                retry_in: None,
                last_failure: shared.last_failure.clone(),
                refusal: Refusal::new(reason, None),
            }),
        }
    }

    /// Whether the breaker counts `error` as a failure.
    pub fn counts(&self, error: &(dyn Error + 'static)) -> bool {
        self.inner.counts.matches(error)
    }

    /// Publishes what the fast path needs: the period, and whether a call
    /// would simply pass.
    /// Also points the success tally at the bucket of `now` while the
    /// machine is passing, and closes it otherwise.
    fn publish(&self, shared: &mut Shared, now: Instant) {
        let tally = &self.inner.tally;
        let clean_from = shared.machine.window_clean_from();
        let pass_until = if !shared.machine.would_pass(now) {
            0
        } else if clean_from <= tally.elapsed(now) {
            PASS_ALWAYS
        } else {
            tally.bucket_end(now)
        };
        self.inner
            .period
            .store(shared.machine.period(), Ordering::Release);
        self.inner.pass_until.store(pass_until, Ordering::Release);
        if shared.machine.current() == CircuitState::Passing {
            tally.roll(now, clean_from);
        } else {
            // Successes counted since the fold: let through while
            // passing, but of a window now cleared.
            let late = tally.close();
            shared.machine.add_passing(late);
        }
    }

    /// Adds the successes the tally counted to the machine's window and
    /// its count of calls let through while passing: done first in every
    /// section that consults the machine.
    fn fold(&self, shared: &mut Shared) {
        let (stamp, successes) = self.inner.tally.take();
        shared.machine.add_successes(stamp, successes);
        shared.machine.add_passing(successes);
    }

    /// A call admitted as `admitted` was abandoned without an outcome: not
    /// in the window, but among the calls let through while passing.
    #[cold]
    pub(crate) fn abandon(&self, admitted: Admission) {
        if admitted.state() == CircuitState::Passing {
            self.inner.abandoned_passing.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts how an admitted call ended. A success of a call admitted in
    /// this passing period, while the window holds no failure, cannot
    /// trip the breaker: it is counted in the tally, inline and without
    /// the lock, and reaches the window before anything reads it; every
    /// other outcome goes to [`record`](Self::record).
    #[inline]
    pub(crate) fn report(&self, admitted: Admission, failure: Option<&(dyn Error + 'static)>) {
        if failure.is_none() && self.tally_takes(admitted) {
            return;
        }
        self.record(admitted, failure);
    }

    /// Counts a success in the tally if the call was admitted in this
    /// passing period and now falls in the bucket counted. Where the
    /// runtime's coarse clock is fine enough for the window's buckets it
    /// is read instead of the precise one: a success counted a tick early
    /// is harmless.
    #[inline]
    fn tally_takes(&self, admitted: Admission) -> bool {
        if admitted.state() != CircuitState::Passing
            || admitted.period() != self.inner.period.load(Ordering::Acquire)
        {
            return false;
        }
        let runtime = &self.inner.runtime;
        let tally = &self.inner.tally;
        match self.inner.success_clock {
            SuccessClock::Process { clock, shift } => {
                tally.try_count_at(clock.elapsed_nanos().saturating_add_signed(shift))
            }
            SuccessClock::Timer { shift } => match runtime.coarse_nanos() {
                Some(nanos) => tally.try_count_at(nanos.saturating_add_signed(shift)),
                None => tally.try_count(runtime.now()),
            },
            SuccessClock::Precise => tally.try_count(runtime.now()),
        }
    }

    /// An outcome the tally did not take: under the lock.
    #[inline(never)]
    fn record(&self, admitted: Admission, failure: Option<&(dyn Error + 'static)>) {
        let failed = failure.is_some_and(|e| self.counts(e));
        // An error the breaker does not count is a success, for the
        // tally too.
        if !failed && failure.is_some() && self.tally_takes(admitted) {
            return;
        }
        let now = self.inner.runtime.now();
        let mut shared = self.shared();
        if failed && let Some(error) = failure {
            shared.last_failure = Some(error.to_string().into());
        }
        self.fold(&mut shared);
        shared.machine.record(now, admitted, failed);
        self.publish(&mut shared, now);
    }

    /// Runs `call` if the breaker admits it, and counts its outcome: a
    /// [`CallStack`] with this breaker as its only layer.
    ///
    /// # Errors
    /// [`CallErrorKind::Refused`](crate::call::CallErrorKind::Refused) (with a [`CircuitOpen`]) if refused — the
    /// call is not run — or [`CallErrorKind::Failed`](crate::call::CallErrorKind::Failed) with the call's own
    /// error.
    pub async fn call<T, E, M, F>(&self, call: F) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
        E: AsDynError<M>,
    {
        let mut call = Some(call);
        CallStack::new()
            .breaker(self.clone())
            .run(&self.inner.runtime, || {
                let call = call.take();
                async move {
                    match call {
                        Some(call) => call.await,
                        None => unreachable!("a stack without retry makes one attempt"),
                    }
                }
            })
            .await
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.inner.name)
            .field("state", &self.state())
            .finish()
    }
}

/// An admitted call: report how it ended with
/// [`success`](Self::success) or [`failure`](Self::failure). A guard
/// dropped without either (a cancelled call) is not counted in the window,
/// only among the calls let through ([`BreakerStats::passing`]).
#[must_use = "report the call's outcome with .success() or .failure(&err)"]
pub struct BreakerGuard<'a> {
    breaker: &'a CircuitBreaker,
    admitted: Admission,
    reported: bool,
}

impl BreakerGuard<'_> {
    /// The call succeeded.
    #[inline]
    pub fn success(mut self) {
        self.breaker.report(self.admitted, None);
        self.reported = true;
    }

    /// The call failed with `error` (counted if the breaker counts it).
    pub fn failure(mut self, error: &(dyn Error + 'static)) {
        // Marked reported once counted: if the breaker's predicate or the
        // error's `Display` panics first, the drop abandons the call.
        self.breaker.report(self.admitted, Some(error));
        self.reported = true;
    }

    /// The state the call was admitted in.
    pub fn admitted_in(&self) -> CircuitState {
        self.admitted.state()
    }
}

impl Drop for BreakerGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if !self.reported {
            self.breaker.abandon(self.admitted);
        }
    }
}

impl fmt::Debug for BreakerGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerGuard")
            .field("breaker", &self.breaker.inner.name)
            .field("admitted", &self.admitted)
            .field("reported", &self.reported)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MockRuntime;

    fn built(runtime: &Runtime, window: Duration) -> CircuitBreaker {
        CircuitBreaker::builder("clock")
            .response_time(window)
            .build(runtime)
            .unwrap()
    }

    #[test]
    fn a_success_reads_the_process_coarse_clock_where_the_clock_never_pauses() {
        let rt = crate::test_kit::system_clock_runtime();
        let breaker = built(&rt, Duration::from_secs(10));
        let SuccessClock::Process { clock, shift } = breaker.inner.success_clock else {
            panic!("{:?}", breaker.inner.success_clock);
        };
        assert!(std::ptr::eq(clock, CoarseClock::global()));
        // Now, in the window's terms: about its start (the coarse clock
        // may lag the precise instant the window starts at), whether or
        // not the clock was anchored before the breaker was made.
        let now = clock.elapsed_nanos().saturating_add_signed(shift);
        assert!(now < 1_000_000_000, "{now} ns into the window");
        let since = i128::from(clock.elapsed_nanos()) + i128::from(shift);
        assert!(since > -1_000_000_000, "{since} ns before the window");
    }

    #[test]
    fn a_window_finer_than_ten_coarse_ticks_reads_the_precise_clock() {
        let rt = crate::test_kit::system_clock_runtime();
        let fine = rt.coarse_resolution() * 10;
        // Buckets are a tenth of the window: one coarse tick each.
        let breaker = built(&rt, fine);
        assert!(matches!(breaker.inner.success_clock, SuccessClock::Precise));
    }

    #[test]
    fn virtual_time_is_never_read_on_the_process_clock() {
        let rt = MockRuntime::new().runtime();
        let breaker = built(&rt, Duration::from_secs(10));
        assert!(!matches!(
            breaker.inner.success_clock,
            SuccessClock::Process { .. }
        ));
    }

    #[test]
    fn passing_counts_every_call_let_through_across_threads() {
        // Four threads enter, succeed, fail and abandon calls on one
        // breaker while it trips (and, on virtual time that never moves,
        // stays broken): once every call has ended, each entry is counted
        // exactly once.
        let mock = MockRuntime::new();
        let breaker = CircuitBreaker::builder("threads")
            .min_calls(50)
            .error_ratio(0.15)
            .build(&mock.runtime())
            .unwrap();
        let failure = std::io::Error::other("down");
        const THREADS: u64 = 4;
        const CALLS: u64 = 5_000;
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let (breaker, failure) = (&breaker, &failure);
                scope.spawn(move || {
                    for n in 0..CALLS {
                        let Ok(guard) = breaker.enter() else { continue };
                        match (n + thread) % 10 {
                            0..=4 => guard.success(),
                            5 => drop(guard),
                            // Failures only after a while, so that
                            // successes are tallied first: the ratio
                            // reaches 15 % late in the second half.
                            _ if n > CALLS / 2 => guard.failure(failure),
                            _ => guard.success(),
                        }
                    }
                });
            }
        });
        let stats = breaker.stats();
        assert_eq!(stats.trips, 1, "{stats:?}");
        assert_eq!(
            stats.passing
                + stats.broken_rejected
                + stats.recovering_admitted
                + stats.recovering_rejected,
            THREADS * CALLS,
            "{stats:?}"
        );
    }
}
