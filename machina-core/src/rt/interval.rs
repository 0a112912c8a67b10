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
    period: Duration,
    missed: MissedTick,
    next: Instant,
    /// The deadline of the last tick delivered.
    last: Option<Instant>,
    /// One timer, re-armed for every tick.
    sleep: Option<Sleep>,
    /// Whether `sleep` is armed for `next`.
    armed: bool,
}

impl Interval {
    pub(crate) fn new(
        runtime: Runtime,
        start: Instant,
        period: Duration,
        missed: MissedTick,
    ) -> Result<Self, IntervalError> {
        if period.is_zero() {
            return Err(IntervalError::ZeroPeriod);
        }
        Ok(Interval {
            runtime,
            period,
            missed,
            next: start,
            last: None,
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
            if now >= self.next {
                return Poll::Ready(self.fire(Some(now)));
            }
            match self.sleep.as_mut() {
                Some(sleep) => sleep.reset(self.next),
                None => self.sleep = Some(self.runtime.sleep_until(self.next)),
            }
            self.armed = true;
        }
    }

    /// Delivers the tick due at `self.next` and schedules the following
    /// one. `now` is read here only when the policy needs it (a burst never
    /// looks at the clock).
    fn fire(&mut self, now: Option<Instant>) -> Instant {
        let deadline = self.next;
        if self.missed == MissedTick::Burst {
            self.next = instant_after(deadline, self.period);
            self.last = Some(deadline);
            return deadline;
        }
        let now = now.unwrap_or_else(|| self.runtime.now());
        let late = now.saturating_duration_since(deadline);
        // The grid's anchor: the deadline, or for a late tick under Delay
        // the instant the grid restarts from.
        let mut anchor = deadline;
        self.next = match self.missed {
            MissedTick::Delay if late > self.runtime.lateness_tolerance() => {
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
            _ => instant_after(deadline, self.period),
        };
        self.last = Some(anchor);
        deadline
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
        if period.is_zero() {
            return Err(IntervalError::ZeroPeriod);
        }
        self.period = period;
        if let Some(last) = self.last {
            self.reset_at(instant_after(last, period));
        }
        Ok(())
    }

    /// Restarts the grid: the next tick is due one period from now.
    pub fn reset(&mut self) {
        self.reset_at(instant_after(self.runtime.now(), self.period));
    }

    /// Restarts the grid: the next tick is due at `deadline`.
    pub fn reset_at(&mut self, deadline: Instant) {
        self.next = deadline;
        // Move an armed timer now, so no stale deadline stays registered.
        if self.armed
            && let Some(sleep) = self.sleep.as_mut()
        {
            sleep.reset(deadline);
        }
    }

    /// The deadline of the next tick.
    pub fn next_deadline(&self) -> Instant {
        self.next
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The policy for missed ticks.
    pub fn missed_tick(&self) -> MissedTick {
        self.missed
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
            .field("period", &self.period)
            .field("missed", &self.missed)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}
