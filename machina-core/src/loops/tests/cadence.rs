//! The pure [`Cadence`] on plain instants: no runtime, no clock — each
//! step is given the instant it happens at, and the answer is exact.

use std::time::{Duration, Instant, SystemTime};

use super::{ms, secs};
use crate::loops::{Cadence, Next, ReconnectBackoff, RunOutcome};
use crate::rt::{MissedTick, RuntimeRng};
use crate::schedule::Schedule;
use crate::testing::MockRuntime;

/// The instant the steps count from: a mock runtime's clock, so the test
/// never reads the wall clock (any instant would do: the cadence is pure).
fn origin() -> Instant {
    MockRuntime::new().now()
}

/// A calendar that must not be read (the schedule is not a cron one).
fn no_calendar() -> SystemTime {
    panic!("only a cron schedule reads calendar time")
}

fn start(schedule: Schedule, count: Option<u64>, t0: Instant) -> (Cadence, Next) {
    let backoff = ReconnectBackoff::new(secs(1), RuntimeRng::from_seed(7));
    Cadence::start(&schedule, count, backoff, Duration::ZERO, t0, no_calendar).unwrap()
}

/// Runs the iteration due now: it falls due at `at` and ends `took` later
/// with `outcome`; returns (its lateness, the answer).
fn run(
    cadence: &mut Cadence,
    at: Instant,
    took: Duration,
    outcome: RunOutcome,
) -> (Option<Duration>, Next) {
    let due = cadence.fall_due(at);
    (
        due.lateness,
        cadence.finish(outcome, at + took, no_calendar),
    )
}

#[test]
fn after_waits_the_interval_from_each_end_and_stops_at_the_count() {
    let t0 = origin();
    let (mut c, first) = start(Schedule::After(secs(5)), Some(3), t0);
    assert_eq!(first, Next::At(t0));
    assert_eq!(
        run(&mut c, t0, secs(2), RunOutcome::Succeeded),
        (Some(Duration::ZERO), Next::At(t0 + secs(7)))
    );
    // Woken 1 s late: that is the lateness, and the next wait counts from
    // the end.
    assert_eq!(
        run(&mut c, t0 + secs(8), secs(1), RunOutcome::Succeeded),
        (Some(secs(1)), Next::At(t0 + secs(14)))
    );
    assert_eq!(
        run(&mut c, t0 + secs(14), ms(0), RunOutcome::Succeeded),
        (Some(Duration::ZERO), Next::End)
    );
    assert_eq!(c.completed(), 3);
    assert_eq!(c.next_due(), None);
}

#[test]
fn a_count_of_zero_ends_before_the_first_run() {
    let t0 = origin();
    let (c, first) = start(Schedule::After(secs(1)), Some(0), t0);
    assert_eq!(first, Next::End);
    assert_eq!(c.next_due(), None);
}

#[test]
fn burst_runs_every_missed_slot_back_to_back_then_keeps_the_grid() {
    let t0 = origin();
    let (mut c, _) = start(Schedule::FixedRate(secs(10), MissedTick::Burst), None, t0);
    // The first run overruns two slots (10 s and 20 s).
    assert_eq!(
        run(&mut c, t0, secs(25), RunOutcome::Succeeded).1,
        Next::At(t0 + secs(10))
    );
    // Both missed slots run at once, each late by what it missed.
    assert_eq!(
        run(&mut c, t0 + secs(25), ms(0), RunOutcome::Succeeded),
        (Some(secs(15)), Next::At(t0 + secs(20)))
    );
    assert_eq!(
        run(&mut c, t0 + secs(25), ms(0), RunOutcome::Succeeded),
        (Some(secs(5)), Next::At(t0 + secs(30)))
    );
    assert_eq!(
        run(&mut c, t0 + secs(30), ms(0), RunOutcome::Succeeded),
        (Some(Duration::ZERO), Next::At(t0 + secs(40)))
    );
}

#[test]
fn delay_restarts_the_grid_from_a_late_run() {
    let t0 = origin();
    let (mut c, _) = start(Schedule::FixedRate(secs(10), MissedTick::Delay), None, t0);
    assert_eq!(
        run(&mut c, t0, secs(13), RunOutcome::Succeeded).1,
        Next::At(t0 + secs(10))
    );
    // Delivered 3 s late: the grid restarts from 13 s.
    assert_eq!(
        run(&mut c, t0 + secs(13), secs(1), RunOutcome::Succeeded),
        (Some(secs(3)), Next::At(t0 + secs(23)))
    );
    // While running, the next due instant is the grid's next tick.
    c.fall_due(t0 + secs(23));
    assert_eq!(c.next_due(), Some(t0 + secs(33)));
}

#[test]
fn a_retry_is_not_on_the_schedule_and_does_not_count() {
    let t0 = origin();
    let (mut c, _) = start(
        Schedule::FixedRate(secs(10), MissedTick::Burst),
        Some(2),
        t0,
    );
    let (_, retry) = run(&mut c, t0, secs(1), RunOutcome::Retry);
    let Next::At(retry_at) = retry else {
        panic!("a retry is due")
    };
    // discord's first reconnect delay is within [0, 2·base].
    assert!(
        retry_at >= t0 + secs(1) && retry_at <= t0 + secs(3),
        "{retry_at:?}"
    );
    assert!(c.is_retrying());
    assert_eq!(c.completed(), 0);
    // The retry has no lateness and does not move the grid: after it
    // succeeds, the next run is the grid's 10 s slot.
    assert_eq!(
        run(&mut c, retry_at, ms(500), RunOutcome::Succeeded),
        (None, Next::At(t0 + secs(10)))
    );
    assert_eq!(c.completed(), 1);
    assert_eq!(
        run(&mut c, t0 + secs(10), ms(0), RunOutcome::Succeeded).1,
        Next::End
    );
}

#[test]
fn retries_back_off_within_the_growing_bound() {
    let t0 = origin();
    let (mut c, _) = start(Schedule::After(secs(0)), None, t0);
    let mut now = t0;
    for k in 1..=6u32 {
        let (_, next) = run(&mut c, now, Duration::ZERO, RunOutcome::Retry);
        let Next::At(at) = next else {
            panic!("a retry is due")
        };
        assert!(at - now <= secs(1 << k), "delay {k}: {:?}", at - now);
        now = at;
    }
}

#[test]
fn a_new_interval_applies_at_once_while_waiting_and_never_to_a_retry() {
    let t0 = origin();
    let (mut c, _) = start(Schedule::After(secs(10)), None, t0);
    run(&mut c, t0, secs(2), RunOutcome::Succeeded);
    // Waiting for 12 s; the interval becomes 3 s: due 3 s after the end.
    assert_eq!(c.change_interval(secs(3)), Ok(Some(t0 + secs(5))));
    assert_eq!(c.next_due(), Some(t0 + secs(5)));
    // A retry's due instant does not move.
    let (_, retry) = run(&mut c, t0 + secs(5), Duration::ZERO, RunOutcome::Retry);
    let Next::At(retry_at) = retry else {
        panic!("a retry is due")
    };
    assert_eq!(c.change_interval(secs(60)), Ok(Some(retry_at)));
    // After the retry succeeds, the new interval is the one used.
    assert_eq!(
        run(&mut c, retry_at, secs(1), RunOutcome::Succeeded).1,
        Next::At(retry_at + secs(61))
    );
}

#[test]
fn a_new_period_restarts_the_grid_from_the_last_tick() {
    let t0 = origin();
    let (mut c, _) = start(Schedule::FixedRate(secs(10), MissedTick::Burst), None, t0);
    run(&mut c, t0, secs(1), RunOutcome::Succeeded);
    run(&mut c, t0 + secs(10), secs(1), RunOutcome::Succeeded);
    // Waiting for 20 s; a 4 s period counts from the last tick at 10 s.
    assert_eq!(c.change_interval(secs(4)), Ok(Some(t0 + secs(14))));
    assert_eq!(
        c.change_interval(Duration::ZERO),
        Err(crate::rt::IntervalError::ZeroPeriod),
        "a zero period is refused and changes nothing"
    );
    assert_eq!(c.next_due(), Some(t0 + secs(14)));
}

#[test]
fn a_cron_schedule_waits_for_the_next_calendar_match() {
    let t0 = origin();
    // 2026-01-01T00:00:30Z: the next minute starts in 30 s.
    let calendar0 = SystemTime::UNIX_EPOCH + secs(1_767_225_630);
    let schedule = Schedule::cron("0 * * * * *", "UTC").unwrap();
    let backoff = ReconnectBackoff::new(secs(1), RuntimeRng::from_seed(1));
    let (mut c, first) = Cadence::start(&schedule, Some(2), backoff, Duration::ZERO, t0, || {
        calendar0
    })
    .unwrap();
    assert_eq!(first, Next::At(t0 + secs(30)));
    c.fall_due(t0 + secs(30));
    // The run takes 75 s: the match at +90 s is skipped; the next is +150 s.
    let end = t0 + secs(105);
    let next = c.finish(RunOutcome::Succeeded, end, || calendar0 + secs(105));
    assert_eq!(next, Next::At(t0 + secs(150)));
    c.fall_due(t0 + secs(150));
    assert_eq!(
        c.finish(RunOutcome::Succeeded, t0 + secs(151), no_calendar),
        Next::End,
        "the count ends it without reading the calendar"
    );
}
