//! Periodic ticks on absolute deadlines: [`Interval`] and the
//! [`MissedTick`] policy for ticks that could not be delivered on time.
//!
//! The k-th deadline is `start + k·period`, computed from the start and
//! never from the time a tick was delivered, so an interval does not drift.
//! Only [`MissedTick::Delay`] moves the grid, and only after a real overrun.

use std::future::poll_fn;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::Runtime;
use super::timer::{Sleep, instant_after};

/// What an [`Interval`] does when ticks were missed because its consumer
/// was late (a slow tick body, a busy executor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum MissedTick {
    /// Deliver every missed tick back to back until caught up, then carry
    /// on with the original grid (discord.ext.tasks' behaviour).
    #[default]
    Burst,
    /// Deliver one late tick now and restart the grid from it: the next
    /// tick is one `period` after the late one (exmachina's `entire` mode).
    Delay,
    /// Deliver one late tick now, drop the other missed ones and carry on
    /// with the next deadline of the original grid.
    Skip,
}

/// Why an interval could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntervalError {
    /// The period was zero, which would tick forever without sleeping.
    #[error("invalid interval period: zero; use a period of at least 1ns, such as 1s or 500ms")]
    ZeroPeriod,
}

/// Ticks at `start + k·period`, made by
/// [`Runtime::interval`](super::Runtime::interval).
///
/// The first tick completes at `start` (at once for `Runtime::interval`).
/// [`tick`](Interval::tick) returns the *scheduled* deadline of the tick, not
/// the time it was delivered.
///
/// # Examples
///
/// ```
/// use machina_core::rt::MissedTick;
/// use machina_core::testing::MockRuntime;
/// use std::time::Duration;
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// let offsets = mock.block_on(async move {
///     let start = rt.now();
///     let mut ticks = rt.interval(Duration::from_secs(1), MissedTick::Burst).unwrap();
///     let mut seen = Vec::new();
///     for _ in 0..3 {
///         seen.push(ticks.tick().await - start);
///     }
///     seen
/// }).unwrap();
/// assert_eq!(offsets, [Duration::ZERO, Duration::from_secs(1), Duration::from_secs(2)]);
/// ```
pub struct Interval {
    runtime: Runtime,
    grid: Grid,
    /// One timer, re-armed for every tick.
    sleep: Option<Sleep>,
    /// Whether `sleep` is armed for the grid's next deadline.
    armed: bool,
}

/// The pure part of an [`Interval`]: the grid of deadlines and what a
/// late tick does to it, fed the time rather than reading a clock (the
/// loops' cadence uses it too).
#[derive(Debug, Clone)]
pub(crate) struct Grid {
    period: Duration,
    missed: MissedTick,
    /// How late a tick may be before [`MissedTick::Delay`] restarts the
    /// grid (the runtime's timer granularity).
    tolerance: Duration,
    next: Instant,
    /// The anchor of the last tick delivered: its deadline, or for a late
    /// tick under `Delay` the instant the grid restarted from.
    last: Option<Instant>,
}

impl Grid {
    /// A grid whose first deadline is `start`.
    pub(crate) fn new(
        start: Instant,
        period: Duration,
        missed: MissedTick,
        tolerance: Duration,
    ) -> Result<Self, IntervalError> {
        if period.is_zero() {
            return Err(IntervalError::ZeroPeriod);
        }
        Ok(Grid {
            period,
            missed,
            tolerance,
            next: start,
            last: None,
        })
    }

    /// The deadline of the next tick.
    pub(crate) fn next(&self) -> Instant {
        self.next
    }

    /// Delivers the tick due at [`next`](Self::next), delivered at `now`
    /// (not before it), and schedules the following one; returns the
    /// delivered tick's deadline. `Burst` never looks at `now`.
    pub(crate) fn fire(&mut self, now: Instant) -> Instant {
        let deadline = self.next;
        let late = now.saturating_duration_since(deadline);
        let mut anchor = deadline;
        self.next = match self.missed {
            MissedTick::Burst => instant_after(deadline, self.period),
            MissedTick::Delay if late > self.tolerance => {
                anchor = now;
                instant_after(now, self.period)
            }
            MissedTick::Skip => {
                // The first grid point strictly after `now`.
                let periods = late.as_nanos() / self.period.as_nanos() + 1;
                let skip = self
                    .period
                    .saturating_mul(u32::try_from(periods).unwrap_or(u32::MAX));
                instant_after(deadline, skip)
            }
            MissedTick::Delay => instant_after(deadline, self.period),
        };
        self.last = Some(anchor);
        deadline
    }

    /// Changes the period; the grid restarts one new period after the last
    /// tick's anchor (before the first tick, the next deadline stays).
    pub(crate) fn set_period(&mut self, period: Duration) -> Result<(), IntervalError> {
        if period.is_zero() {
            return Err(IntervalError::ZeroPeriod);
        }
        self.period = period;
        if let Some(last) = self.last {
            self.next = instant_after(last, period);
        }
        Ok(())
    }
}

impl Interval {
    pub(crate) fn new(
        runtime: Runtime,
        start: Instant,
        period: Duration,
        missed: MissedTick,
    ) -> Result<Self, IntervalError> {
        let grid = Grid::new(start, period, missed, runtime.lateness_tolerance())?;
        Ok(Interval {
            runtime,
            grid,
            sleep: None,
            armed: false,
        })
    }

    /// Waits for the next tick and returns its scheduled deadline.
    ///
    /// Cancel-safe: dropping the future before it completes loses no tick.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick; the building block of [`tick`](Self::tick).
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        loop {
            if self.armed {
                if let Some(sleep) = self.sleep.as_mut()
                    && std::pin::Pin::new(sleep).poll(cx).is_pending()
                {
                    return Poll::Pending;
                }
                self.armed = false;
                return Poll::Ready(self.fire(None));
            }
            let now = self.runtime.now();
            if now >= self.grid.next() {
                return Poll::Ready(self.fire(Some(now)));
            }
            let next = self.grid.next();
            match self.sleep.as_mut() {
                Some(sleep) => sleep.reset(next),
                None => self.sleep = Some(self.runtime.sleep_until(next)),
            }
            self.armed = true;
        }
    }

    /// Delivers the next tick. `now` is read here only when the policy
    /// needs it (a burst never looks at the clock).
    fn fire(&mut self, now: Option<Instant>) -> Instant {
        let now = match (now, self.grid.missed) {
            (Some(now), _) => now,
            (None, MissedTick::Burst) => self.grid.next(),
            (None, _) => self.runtime.now(),
        };
        self.grid.fire(now)
    }

    /// Changes the period. The grid restarts from the last tick delivered
    /// (from its deadline, or for a late tick under
    /// [`MissedTick::Delay`] from when it was delivered): the next tick is
    /// due one new period after it (or, before the first tick, stays where
    /// it was).
    ///
    /// # Errors
    /// [`IntervalError::ZeroPeriod`] for a zero period; nothing changes.
    pub fn set_period(&mut self, period: Duration) -> Result<(), IntervalError> {
        self.grid.set_period(period)?;
        let next = self.grid.next();
        self.reset_at(next);
        Ok(())
    }

    /// Restarts the grid: the next tick is due one period from now.
    pub fn reset(&mut self) {
        self.reset_at(instant_after(self.runtime.now(), self.grid.period));
    }

    /// Restarts the grid: the next tick is due at `deadline`.
    pub fn reset_at(&mut self, deadline: Instant) {
        self.grid.next = deadline;
        // Move an armed timer now, so no stale deadline stays registered.
        if self.armed
            && let Some(sleep) = self.sleep.as_mut()
        {
            sleep.reset(deadline);
        }
    }

    /// The deadline of the next tick.
    pub fn next_deadline(&self) -> Instant {
        self.grid.next()
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        self.grid.period
    }

    /// The policy for missed ticks.
    pub fn missed_tick(&self) -> MissedTick {
        self.grid.missed
    }
}

impl futures::Stream for Interval {
    type Item = Instant;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Instant>> {
        self.get_mut().poll_tick(cx).map(Some)
    }
}

impl std::fmt::Debug for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interval")
            .field("period", &self.grid.period)
            .field("missed", &self.grid.missed)
            .field("next", &self.grid.next)
            .finish_non_exhaustive()
    }
}
