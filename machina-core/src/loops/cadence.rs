//! [`Cadence`]: when a loop's runs are due. A pure state machine — fed
//! the time and each run's outcome, it answers the next due instant or
//! the end — so that every scheduling rule (the count, the three
//! schedules, missed ticks, retries after a handled error, a new interval)
//! is decided here and tested on plain instants; the task in `engine.rs`
//! only waits for what it answers.

use std::time::{Duration, Instant, SystemTime};

use super::kinds::ReconnectBackoff;
use crate::rt::{Grid, IntervalError, instant_after};
use crate::schedule::{CronSchedule, Schedule};

/// What a [`Cadence`] answers: when the next run is due, or that there is
/// none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The next run is due at this instant (now or in the past: at once).
    At(Instant),
    /// No further run: the count is done, or a calendar pattern never
    /// matches again.
    End,
}

/// A run that fell due, from [`Cadence::fall_due`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// When the run was due.
    pub scheduled: Instant,
    /// How late it starts against `scheduled`; `None` for the retry of a
    /// failed run, which is not on the schedule.
    pub lateness: Option<Duration>,
}

/// How a run ended, as far as the schedule is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// The body succeeded: it counts toward the count, and the next run is
    /// the schedule's.
    Succeeded,
    /// The body failed with a handled error: the same run is tried again
    /// after a reconnect backoff delay, without counting and without moving
    /// the schedule.
    Retry,
}

/// How the next due instant follows from the schedule.
#[derive(Debug, Clone)]
enum Plan {
    /// `interval` after the end of the last successful run.
    After {
        interval: Duration,
        last_end: Option<Instant>,
    },
    /// The fixed-rate grid, with its missed-tick policy.
    Grid(Grid),
    /// The next calendar match.
    Cron(CronSchedule),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the scheduled run due at `at`.
    Waiting { at: Instant },
    /// Waiting to run a failed run again at `at`.
    Retrying { at: Instant },
    /// A run is under way (`retry`: it is a retry).
    Running { retry: bool },
    /// No further run.
    Ended,
}

/// When a loop's runs are due: the scheduling rules of a
/// [`Loop`](super::Loop) as a pure state machine.
///
/// It never reads a clock: each step is given the instant it happens at
/// (and, for a cron schedule, a way to read calendar time then). The steps
/// are [`start`](Self::start), then for each run [`fall_due`](Self::fall_due)
/// when its due instant has come and [`finish`](Self::finish) when it
/// ended; [`change_interval`](Self::change_interval) at any point.
///
/// # Examples
///
/// A fixed-rate schedule of 10 s whose second run overran by 15 s: under
/// [`MissedTick::Skip`](crate::rt::MissedTick::Skip) the missed slot at
/// 20 s is dropped and the grid carries on at 30 s.
///
/// ```
/// use machina_core::loops::{Cadence, Next, RunOutcome, ReconnectBackoff};
/// use machina_core::rt::{MissedTick, RuntimeRng};
/// use machina_core::schedule::Schedule;
/// use machina_core::testing::MockRuntime;
/// use std::time::{Duration, SystemTime};
///
/// let s = Duration::from_secs;
/// let t0 = MockRuntime::new().now(); // any instant: the cadence reads no clock
/// let schedule = Schedule::fixed_rate("10s", MissedTick::Skip).unwrap();
/// let backoff = ReconnectBackoff::new(s(1), RuntimeRng::from_seed(1));
/// let calendar = || SystemTime::UNIX_EPOCH; // not read: no cron here
/// let (mut cadence, first) =
///     Cadence::start(&schedule, Some(3), backoff, Duration::ZERO, t0, calendar).unwrap();
/// assert_eq!(first, Next::At(t0));
/// cadence.fall_due(t0);
/// assert_eq!(cadence.finish(RunOutcome::Succeeded, t0 + s(1), calendar), Next::At(t0 + s(10)));
/// cadence.fall_due(t0 + s(10));
/// // The second run ends 25 s in: the slot at 20 s was missed.
/// assert_eq!(cadence.finish(RunOutcome::Succeeded, t0 + s(25), calendar), Next::At(t0 + s(20)));
/// let due = cadence.fall_due(t0 + s(25));
/// assert_eq!(due.lateness, Some(s(5)));
/// // The count of 3 is done.
/// assert_eq!(cadence.finish(RunOutcome::Succeeded, t0 + s(26), calendar), Next::End);
/// ```
#[derive(Debug, Clone)]
pub struct Cadence {
    plan: Plan,
    count: Option<u64>,
    completed: u64,
    phase: Phase,
    backoff: ReconnectBackoff,
}

impl Cadence {
    /// Starts the cadence of `schedule` at `now`, ending after `count`
    /// successful runs (or never) and retrying failed runs after
    /// `backoff`'s delays; answers with when the first run is due: at once,
    /// or for a cron schedule at the first match after `calendar()`
    /// ([`Next::End`] for a count of zero or a pattern that never
    /// matches). `tolerance` is how late a fixed-rate tick may be before
    /// [`MissedTick::Delay`](crate::rt::MissedTick::Delay) restarts the
    /// grid (a runtime's [`lateness_tolerance`](crate::Runtime::lateness_tolerance)).
    ///
    /// # Errors
    /// [`IntervalError::ZeroPeriod`] for a fixed-rate schedule of period
    /// zero (which [`Schedule::fixed_rate`] already refuses).
    pub fn start(
        schedule: &Schedule,
        count: Option<u64>,
        backoff: ReconnectBackoff,
        tolerance: Duration,
        now: Instant,
        calendar: impl FnOnce() -> SystemTime,
    ) -> Result<(Self, Next), IntervalError> {
        let plan = match schedule {
            Schedule::After(interval) => Plan::After {
                interval: *interval,
                last_end: None,
            },
            Schedule::FixedRate(period, missed) => {
                Plan::Grid(Grid::new(now, *period, *missed, tolerance)?)
            }
            Schedule::Cron(cron) => Plan::Cron(cron.clone()),
        };
        let mut cadence = Cadence {
            plan,
            count,
            completed: 0,
            phase: Phase::Ended,
            backoff,
        };
        let next = if cadence.count_done() {
            cadence.end()
        } else {
            match &cadence.plan {
                Plan::Cron(cron) => {
                    let cron = cron.clone();
                    cadence.wait_for_match(cron, now, calendar())
                }
                Plan::After { .. } | Plan::Grid(_) => cadence.wait(now),
            }
        };
        Ok((cadence, next))
    }

    /// The run due now has come, at `now` (not before the due instant):
    /// moves the fixed-rate grid past it (per its missed-tick policy) and
    /// says when it was due and how late it starts.
    pub fn fall_due(&mut self, now: Instant) -> Due {
        match self.phase {
            Phase::Retrying { at } => {
                self.phase = Phase::Running { retry: true };
                Due {
                    scheduled: at,
                    lateness: None,
                }
            }
            Phase::Waiting { at } => {
                let scheduled = match &mut self.plan {
                    Plan::Grid(grid) => grid.fire(now.max(at)),
                    Plan::After { .. } | Plan::Cron(_) => at,
                };
                self.phase = Phase::Running { retry: false };
                Due {
                    scheduled,
                    lateness: Some(now.saturating_duration_since(scheduled)),
                }
            }
            // Not waiting for anything: a run that was not scheduled.
            Phase::Running { .. } | Phase::Ended => Due {
                scheduled: now,
                lateness: None,
            },
        }
    }

    /// The run under way ended at `end` with `outcome`; answers when the
    /// next one is due (`calendar` is read only for a cron schedule).
    pub fn finish(
        &mut self,
        outcome: RunOutcome,
        end: Instant,
        calendar: impl FnOnce() -> SystemTime,
    ) -> Next {
        if self.phase == Phase::Ended {
            return Next::End;
        }
        if outcome == RunOutcome::Retry {
            let at = instant_after(end, self.backoff.delay(end));
            self.phase = Phase::Retrying { at };
            return Next::At(at);
        }
        self.completed += 1;
        if self.count_done() {
            return self.end();
        }
        match &mut self.plan {
            Plan::After { interval, last_end } => {
                *last_end = Some(end);
                let at = instant_after(end, *interval);
                self.wait(at)
            }
            Plan::Grid(grid) => {
                let at = grid.next();
                self.wait(at)
            }
            Plan::Cron(cron) => {
                let cron = cron.clone();
                self.wait_for_match(cron, end, calendar())
            }
        }
    }

    /// A new interval or period. A fixed-rate grid restarts one new period
    /// after its last tick; an `After` schedule waits the new interval
    /// from the end of the last run. Takes effect at once while waiting for
    /// a scheduled run, else at the next one. Answers the next due instant
    /// if it is known (`None` during a run or a retry's wait, whose due
    /// instant does not move).
    ///
    /// # Errors
    /// [`IntervalError::ZeroPeriod`] for a zero fixed-rate period; a cron
    /// schedule has no interval and ignores it.
    pub fn change_interval(
        &mut self,
        interval: Duration,
    ) -> Result<Option<Instant>, IntervalError> {
        let waiting = matches!(self.phase, Phase::Waiting { .. });
        let at = match &mut self.plan {
            Plan::After {
                interval: current,
                last_end,
            } => {
                *current = interval;
                last_end.map(|end| instant_after(end, interval))
            }
            Plan::Grid(grid) => {
                grid.set_period(interval)?;
                Some(grid.next())
            }
            Plan::Cron(_) => None,
        };
        match (waiting, at) {
            (true, Some(at)) => {
                self.phase = Phase::Waiting { at };
                Ok(Some(at))
            }
            _ => Ok(self.waiting_for()),
        }
    }

    /// The instant the cadence waits for (a scheduled run or a retry), or
    /// during a fixed-rate run the next tick of the grid; `None` otherwise.
    pub fn next_due(&self) -> Option<Instant> {
        match (self.phase, &self.plan) {
            (Phase::Waiting { at } | Phase::Retrying { at }, _) => Some(at),
            (Phase::Running { .. }, Plan::Grid(grid)) => Some(grid.next()),
            _ => None,
        }
    }

    /// Whether the wait under way is for the retry of a failed run.
    pub fn is_retrying(&self) -> bool {
        matches!(self.phase, Phase::Retrying { .. })
    }

    /// Successful runs so far.
    pub fn completed(&self) -> u64 {
        self.completed
    }

    fn waiting_for(&self) -> Option<Instant> {
        match self.phase {
            Phase::Waiting { at } | Phase::Retrying { at } => Some(at),
            _ => None,
        }
    }

    fn count_done(&self) -> bool {
        self.count.is_some_and(|count| self.completed >= count)
    }

    fn end(&mut self) -> Next {
        self.phase = Phase::Ended;
        Next::End
    }

    fn wait(&mut self, at: Instant) -> Next {
        self.phase = Phase::Waiting { at };
        Next::At(at)
    }

    /// Waits for the first match of `cron` strictly after calendar time
    /// `calendar`, which is instant `now`.
    fn wait_for_match(&mut self, cron: CronSchedule, now: Instant, calendar: SystemTime) -> Next {
        match cron.next_after(calendar) {
            Some(next) => {
                let wait = next.duration_since(calendar).unwrap_or_default();
                self.wait(instant_after(now, wait))
            }
            None => self.end(),
        }
    }
}
