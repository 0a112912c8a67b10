//! `change_interval`: a new interval takes effect from the start of the
//! last iteration (fixed rate) or the end of the last body (`After`),
//! reschedules a sleep in progress, and invalid values change nothing.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;
use crate::schedule::ScheduleError;

/// Runs a loop on `schedule` whose bodies take `work(current_loop)`;
/// changes the interval to `new` at `at` seconds, then stops it at
/// `until` seconds. Gives the body starts and `next_iteration` right after
/// the change.
fn change_at(
    schedule: Schedule,
    work: fn(u64) -> Duration,
    (at, new): (u64, Duration),
    until: u64,
) -> (Vec<Duration>, Option<Duration>) {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = Loop::builder(&rt, "retimed", schedule).build(timed_body(&rec, work));
    let run = lp.start().unwrap();
    advance_to(&mock, t0, secs(at));
    lp.change_interval(new).unwrap();
    assert_eq!(lp.schedule().interval(), new);
    mock.run_until_stalled().unwrap();
    let next = next_at(&lp, t0);
    advance_to(&mock, t0, secs(until));
    lp.stop();
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Stopped);
    (rec.starts(), next)
}

fn one_second(_: u64) -> Duration {
    secs(1)
}

fn first_takes_five(n: u64) -> Duration {
    if n == 0 { secs(5) } else { secs(1) }
}

#[test]
fn fixed_rate_change_during_the_sleep_counts_from_the_last_start() {
    let burst = fixed(secs(10), MissedTick::Burst);
    let (starts, next) = change_at(burst.clone(), one_second, (3, secs(4)), 13);
    assert_eq!(
        next,
        Some(secs(4)),
        "the pending 10 s slot moves to 0 + 4 s"
    );
    assert_eq!(starts, all_secs([0, 4, 8, 12]));

    let (starts, next) = change_at(burst, one_second, (3, secs(20)), 41);
    assert_eq!(
        next,
        Some(secs(20)),
        "a longer interval postpones the sleep"
    );
    assert_eq!(starts, all_secs([0, 20, 40]));
}

#[test]
fn fixed_rate_change_keeps_its_missed_tick_policy() {
    for missed in [MissedTick::Burst, MissedTick::Delay, MissedTick::Skip] {
        let (mock, rt, t0) = setup();
        let rec = Recorder::new(&rt, t0);
        let lp = Loop::builder(&rt, "policy", fixed(secs(10), missed))
            .build(timed_body(&rec, one_second));
        let run = lp.start().unwrap();
        advance_to(&mock, t0, secs(3));
        lp.change_interval("4s").unwrap();
        assert_eq!(lp.schedule(), fixed(secs(4), missed));
        advance_to(&mock, t0, secs(9));
        lp.stop();
        finish(&mock, run).unwrap();
        assert_eq!(rec.starts(), all_secs([0, 4, 8]), "{missed:?}");
    }
}

#[test]
fn after_change_during_the_sleep_counts_from_the_end_of_the_last_body() {
    let (starts, next) = change_at(after(secs(10)), one_second, (3, secs(4)), 16);
    assert_eq!(next, Some(secs(5)), "the 1st body ended at 1 s");
    assert_eq!(starts, all_secs([0, 5, 10, 15]));

    let (starts, next) = change_at(after(secs(10)), one_second, (3, secs(20)), 43);
    assert_eq!(
        next,
        Some(secs(21)),
        "a longer interval postpones the sleep"
    );
    assert_eq!(starts, all_secs([0, 21, 42]));

    let (starts, next) = change_at(after(secs(10)), one_second, (3, secs(1)), 6);
    assert_eq!(next, None, "already due at 2 s: the body runs at once");
    assert_eq!(starts, all_secs([0, 3, 5]));
}

#[test]
fn a_change_during_a_body_applies_to_the_next_sleep() {
    // Fixed rate: the next start is 0 + 4 s, already past when the 5 s
    // body ends, so it runs at once; the grid then follows the new period.
    let burst = fixed(secs(10), MissedTick::Burst);
    let (starts, _) = change_at(burst, first_takes_five, (2, secs(4)), 13);
    assert_eq!(starts, all_secs([0, 5, 8, 12]));

    // After: 4 s from the end of the body, at 5 s.
    let (starts, next) = change_at(after(secs(10)), first_takes_five, (2, secs(4)), 15);
    assert_eq!(next, None, "unknown while an After body runs");
    assert_eq!(starts, all_secs([0, 9, 14]));
}

#[test]
fn invalid_intervals_are_refused_and_change_nothing() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let schedule = fixed(secs(10), MissedTick::Burst);
    let lp = Loop::builder(&rt, "strict", schedule.clone()).build(timed_body(&rec, one_second));
    let run = lp.start().unwrap();
    advance_to(&mock, t0, secs(3));

    let err = lp.change_interval("1x").unwrap_err();
    assert!(
        matches!(&err, ScheduleError::Interval(e) if e.input() == "1x"),
        "{err:?}"
    );
    assert!(err.to_string().contains("unknown unit \"x\""), "{err}");
    for zero in [lp.change_interval(Duration::ZERO), lp.change_interval("0s")] {
        assert_eq!(zero, Err(ScheduleError::ZeroPeriod));
    }
    assert_eq!(lp.schedule(), schedule);
    mock.run_until_stalled().unwrap();
    assert_eq!(next_at(&lp, t0), Some(secs(10)));

    advance_to(&mock, t0, secs(25));
    lp.stop();
    finish(&mock, run).unwrap();
    assert_eq!(
        rec.starts(),
        all_secs([0, 10, 20]),
        "the old interval still holds"
    );
}

#[test]
fn after_refuses_malformed_strings_but_accepts_zero() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = Loop::builder(&rt, "lenient", after(secs(10)))
        .count(3)
        .build(timed_body(&rec, one_second));
    let err = lp.change_interval("10").unwrap_err();
    assert!(err.to_string().contains("\"10\" has no unit"), "{err}");
    assert_eq!(lp.schedule(), after(secs(10)));
    lp.change_interval(Duration::ZERO).unwrap();
    assert_eq!(lp.schedule(), after(secs(0)));
    let run = lp.start().unwrap();
    finish(&mock, run).unwrap();
    assert_eq!(rec.starts(), all_secs([0, 1, 2]), "back to back");
}

#[test]
fn a_change_before_the_start_sets_the_schedule_of_the_run() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = Loop::builder(&rt, "planned", fixed(secs(10), MissedTick::Skip))
        .count(3)
        .build(timed_body(&rec, one_second));
    lp.change_interval("1m30s").unwrap();
    assert_eq!(lp.schedule(), fixed(secs(90), MissedTick::Skip));
    lp.change_interval(String::from("2s")).unwrap();
    let text = String::from("1m");
    lp.change_interval(&text).unwrap();
    assert_eq!(lp.schedule(), fixed(secs(60), MissedTick::Skip));
    let run = lp.start().unwrap();
    finish(&mock, run).unwrap();
    assert_eq!(rec.starts(), all_secs([0, 60, 120]));
}

#[test]

fn delay_change_after_an_overrun_counts_from_the_late_start() {
    // Period 10 s, Delay: the 2nd body takes 25 s, so the 3rd runs late at
    // 35 s and the grid restarts there (next at 45 s). A longer interval
    // set at 37 s must not bring the next run forward.
    let delay = fixed(secs(10), MissedTick::Delay);
    let work = |n: u64| if n == 1 { secs(25) } else { secs(0) };
    let (starts, next) = change_at(delay.clone(), work, (37, secs(20)), 56);
    assert_eq!(next, Some(secs(55)), "35 s + 20 s");
    assert_eq!(starts, all_secs([0, 10, 35, 55]));

    let (starts, next) = change_at(delay, work, (37, secs(4)), 44);
    assert_eq!(next, Some(secs(39)), "35 s + 4 s");
    assert_eq!(starts, all_secs([0, 10, 35, 39, 43]));
}
