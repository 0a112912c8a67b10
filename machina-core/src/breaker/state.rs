//! The breaker's pure state machine: fed `now` (and a uniform draw for the
//! recovery ramp), it admits or rejects calls and takes their outcomes.

use std::time::{Duration, Instant};

use super::window::Window;
use crate::decision::{Decision, Reason, Refusal};
use crate::rt::instant_after;

/// The state of a circuit breaker (aiomisc's three states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CircuitState {
    /// Calls pass; outcomes are counted in the window.
    Passing,
    /// Calls are rejected at once.
    Broken,
    /// A growing share of calls is let through to probe the dependency.
    Recovering,
}

/// A call let through by [`BreakerMachine::enter`]: the state it was
/// admitted in, and which period of that state. Its outcome counts only
/// if the machine is still in that very period when it is reported — not
/// in a later period of the same state (after a trip and a recovery, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Admission {
    state: CircuitState,
    period: u64,
}

impl Admission {
    pub(crate) fn new(state: CircuitState, period: u64) -> Self {
        Admission { state, period }
    }

    /// The state the call was admitted in.
    pub fn state(&self) -> CircuitState {
        self.state
    }

    /// The period the call was admitted in.
    pub(crate) fn period(&self) -> u64 {
        self.period
    }
}

/// The numbers of a breaker; see [`BreakerBuilder`](super::BreakerBuilder).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSettings {
    /// Failure share (0, 1] that trips the breaker.
    pub error_ratio: f64,
    /// The statistics window.
    pub response_time: Duration,
    /// How long it stays broken.
    pub broken_time: Duration,
    /// How long recovery lasts.
    pub recovery_time: Duration,
    /// After recovering, it cannot trip for this long.
    pub passing_time: Duration,
    /// Calls the window must hold before the breaker may trip.
    pub min_calls: u64,
}

/// Counters of a breaker since it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BreakerStats {
    /// Calls let through while passing, counted as they end (their
    /// outcome reported, or the call abandoned): a call still in flight is
    /// not counted yet.
    pub passing: u64,
    /// Calls rejected while broken (including the one that tripped it).
    pub broken_rejected: u64,
    /// Calls let through while recovering.
    pub recovering_admitted: u64,
    /// Calls rejected while recovering.
    pub recovering_rejected: u64,
    /// Times the breaker went to `Broken`.
    pub trips: u64,
}

/// The decision core of a circuit breaker.
///
/// # The rules
///
/// - **Passing → Broken**: when a call enters, if the window (the last
///   `response_time`, in 10 buckets) holds at least `min_calls` finished
///   calls and at least `error_ratio` of them failed, the breaker trips and
///   that call is rejected. (Unlike aiomisc, whose bucket arithmetic can
///   never trip on one call per bucket, the rule is on the window's totals.)
///   Within `passing_time` after a recovery it does not trip.
///   [`CircuitBreaker`](super::CircuitBreaker) evaluates this rule when an
///   outcome arrives and admits calls without looking at the clock while it
///   does not hold, so a ratio that rises only because older successes leave
///   the window is noticed with the next outcome, not the next entry.
/// - **Broken**: every call is rejected for `broken_time`, then
///   **Recovering** begins.
/// - **Recovering**: the first call is admitted as a probe, so the instant
///   a Broken refusal names (its `until`, [`CircuitOpen::retry_in`](super::CircuitOpen))
///   admits a try; after it, a call is admitted with probability
///   `2^(Δ/recovery_time) − 1`, Δ the time since recovery began (aiomisc's
///   ramp, which alone would admit nothing at that instant), decided by a
///   uniform draw in `[0, 1)`. Back to **Broken** as
///   soon as the failures among the calls admitted in this recovery reach
///   `error_ratio / 2` of them; to **Passing** once `recovery_time` has
///   passed without that. The calm period after a recovery runs
///   `passing_time` from the instant the recovery ended.
/// - An outcome counts only in the period its call was admitted in (see
///   [`Admission`]).
/// - A call let through while passing is counted in
///   [`BreakerStats::passing`] when it ends: hand its outcome to
///   [`record`](Self::record), or [`abandon`](Self::abandon) it.
#[derive(Debug, Clone)]
pub struct BreakerMachine {
    settings: BreakerSettings,
    state: CircuitState,
    since: Instant,
    calm_until: Option<Instant>,
    window: Window,
    recovering: (u64, u64),
    /// Whether this recovery has admitted its probe.
    probed: bool,
    stats: BreakerStats,
    /// Bumped at every change of state.
    period: u64,
}

impl BreakerMachine {
    /// A machine in `Passing`, its window starting at `now`.
    pub fn new(settings: BreakerSettings, now: Instant) -> Self {
        BreakerMachine {
            settings,
            state: CircuitState::Passing,
            since: now,
            calm_until: None,
            window: Window::new(now, settings.response_time),
            recovering: (0, 0),
            probed: false,
            stats: BreakerStats::default(),
            period: 0,
        }
    }

    /// Applies the transitions that time alone makes (Broken → Recovering
    /// → Passing) and returns the state at `now`.
    pub fn state(&mut self, now: Instant) -> CircuitState {
        loop {
            match self.state {
                CircuitState::Broken
                    if now >= instant_after(self.since, self.settings.broken_time) =>
                {
                    self.since = instant_after(self.since, self.settings.broken_time);
                    self.state = CircuitState::Recovering;
                    self.recovering = (0, 0);
                    self.probed = false;
                    self.period += 1;
                }
                CircuitState::Recovering
                    if now >= instant_after(self.since, self.settings.recovery_time) =>
                {
                    let ended = instant_after(self.since, self.settings.recovery_time);
                    self.state = CircuitState::Passing;
                    self.since = ended;
                    self.calm_until = Some(instant_after(ended, self.settings.passing_time));
                    self.window.clear();
                    self.period += 1;
                }
                state => return state,
            }
        }
    }

    /// The time until a broken breaker starts recovering (zero otherwise).
    pub fn time_to_recovery(&mut self, now: Instant) -> Duration {
        match self.state(now) {
            CircuitState::Broken => {
                instant_after(self.since, self.settings.broken_time).saturating_duration_since(now)
            }
            _ => Duration::ZERO,
        }
    }

    /// Decides on a call entering at `now`; `draw` gives a uniform number
    /// in `[0, 1)` when the recovery ramp needs one.
    ///
    /// [`Decision::Proceed`] admits the call in the state
    /// [`current`](Self::current) returns; report its outcome with that
    /// state to [`record`](Self::record), or [`abandon`](Self::abandon) a
    /// call that ends without one (either counts a call let through while
    /// passing in [`BreakerStats::passing`]). A refusal is
    /// [`Decision::WaitUntil`] with [`Reason::Broken`] (until recovery
    /// starts) or [`Reason::Recovering`] (no instant: the next call may be
    /// picked).
    pub fn enter(&mut self, now: Instant, draw: impl FnOnce() -> f64) -> Decision {
        match self.state(now) {
            CircuitState::Passing => {
                let calm = self.calm_until.is_some_and(|until| now < until);
                let (calls, failures) = self.window.totals(now);
                let s = self.settings;
                if !calm
                    && calls >= s.min_calls.max(1)
                    && failures as f64 >= s.error_ratio * calls as f64
                {
                    self.trip(now);
                    self.stats.broken_rejected += 1;
                    return Decision::WaitUntil(Refusal::new(
                        Reason::Broken,
                        Some(instant_after(now, s.broken_time)),
                    ));
                }
                Decision::Proceed
            }
            CircuitState::Broken => {
                self.stats.broken_rejected += 1;
                Decision::WaitUntil(Refusal::new(
                    Reason::Broken,
                    Some(instant_after(self.since, self.settings.broken_time)),
                ))
            }
            CircuitState::Recovering => {
                let progress = (now - self.since).as_secs_f64()
                    / self
                        .settings
                        .recovery_time
                        .as_secs_f64()
                        .max(f64::MIN_POSITIVE);
                let share = 2f64.powf(progress.min(1.0)) - 1.0;
                if draw() < share || !self.probed {
                    self.probed = true;
                    self.stats.recovering_admitted += 1;
                    Decision::Proceed
                } else {
                    self.stats.recovering_rejected += 1;
                    Decision::WaitUntil(Refusal::new(Reason::Recovering, None))
                }
            }
        }
    }

    /// The state as last computed (no time transitions applied): right
    /// after [`enter`](Self::enter) proceeds, the state the call was
    /// admitted in.
    pub fn current(&self) -> CircuitState {
        self.state
    }

    /// The admission of a call [`enter`](Self::enter) just let through:
    /// hand it back to [`record`](Self::record) with the outcome.
    pub fn admission(&self) -> Admission {
        Admission::new(self.state, self.period)
    }

    /// Which period the machine is in (bumped at every change of state).
    pub fn period(&self) -> u64 {
        self.period
    }

    /// Takes the outcome of the call `admitted`, finished at `now`. An
    /// outcome from an earlier period — before a change of state, even if
    /// the machine is back in the same state — is ignored. Answers whether
    /// the machine is passing with no failure in its window (then a success
    /// cannot change what [`would_pass`](Self::would_pass) says).
    pub fn record(&mut self, now: Instant, admitted: Admission, failed: bool) -> bool {
        self.count_ended(admitted, 1);
        let state = self.state(now);
        if admitted.period != self.period {
            return false;
        }
        match (state, admitted.state) {
            (CircuitState::Passing, CircuitState::Passing) => {
                return self.window.record(now, failed);
            }
            (CircuitState::Recovering, CircuitState::Recovering) => {
                self.recovering.0 += 1;
                self.recovering.1 += u64::from(failed);
                let (calls, failures) = self.recovering;
                if failures as f64 >= self.settings.error_ratio / 2.0 * calls as f64 && failures > 0
                {
                    self.trip(now);
                }
            }
            _ => {}
        }
        false
    }

    /// The call `admitted` was abandoned (cancelled) without an outcome:
    /// it is counted among the calls let through, not in the window.
    pub fn abandon(&mut self, admitted: Admission) {
        self.count_ended(admitted, 1);
    }

    /// Counts `calls` admitted as `admitted` that ended, in the counters
    /// of the calls let through while passing.
    fn count_ended(&mut self, admitted: Admission, calls: u64) {
        if admitted.state == CircuitState::Passing {
            self.stats.passing += calls;
        }
    }

    /// Whether, as of `now`, a call entering would simply pass: passing,
    /// not within the calm period, and the window not at the trip
    /// condition. While this holds, the breaker may admit calls without
    /// consulting the machine (or the clock) until the next outcome comes
    /// in; see [`CircuitBreaker`](super::CircuitBreaker).
    pub fn would_pass(&mut self, now: Instant) -> bool {
        if self.state(now) != CircuitState::Passing
            || self.calm_until.is_some_and(|until| now < until)
        {
            return false;
        }
        let (calls, failures) = self.window.totals(now);
        let s = &self.settings;
        !(calls >= s.min_calls.max(1) && failures as f64 >= s.error_ratio * calls as f64)
    }

    /// The window's epoch and bucket length (ns), for a success tally
    /// kept outside the machine.
    pub(crate) fn window_geometry(&self) -> (Instant, u64) {
        self.window.geometry()
    }

    /// From when (ns since the window's epoch) the window holds no
    /// failure.
    pub(crate) fn window_clean_from(&self) -> u64 {
        self.window.clean_from()
    }

    /// Adds `calls` successes of calls admitted while passing and counted
    /// outside the machine in bucket `stamp`; ignored unless the breaker
    /// is still passing (a trip since then cleared the window they belong
    /// to).
    pub(crate) fn add_successes(&mut self, stamp: u64, calls: u64) {
        if self.state == CircuitState::Passing {
            self.window.add_successes(stamp, calls);
        }
    }

    /// Counts `calls` let through while passing that ended outside the
    /// machine (successes the shared breaker's tally counted, abandoned
    /// calls).
    pub(crate) fn add_passing(&mut self, calls: u64) {
        self.stats.passing += calls;
    }

    fn trip(&mut self, now: Instant) {
        self.state = CircuitState::Broken;
        self.since = now;
        self.window.clear();
        self.stats.trips += 1;
        self.period += 1;
    }

    /// The counters.
    pub fn stats(&self) -> BreakerStats {
        self.stats
    }

    /// The settings.
    pub fn settings(&self) -> &BreakerSettings {
        &self.settings
    }
}
