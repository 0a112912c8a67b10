//! When bodies run: `After` sleeps after each body, `FixedRate` keeps an
//! absolute grid, and the three missed-tick policies after an overrun.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

/// Runs five iterations on `schedule`, the 2nd body (current_loop 1)
/// taking 25 s and the others none. Gives the start of every body,
/// `next_iteration` during each, and when the run ended.
fn overrun(schedule: Schedule) -> (Vec<Duration>, Vec<Option<Duration>>, Duration) {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = Loop::builder(&rt, "overrun", schedule)
        .count(5)
        .build(timed_body(
            &rec,
            |n| if n == 1 { secs(25) } else { secs(0) },
        ));
    let run = lp.start().unwrap();
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Completed);
    (rec.starts(), rec.nexts(), rec.since_t0())
}

fn some_secs<const N: usize>(list: [u64; N]) -> Vec<Option<Duration>> {
    list.into_iter().map(|s| Some(secs(s))).collect()
}

/// The last body's `next_iteration` (a slot the counted run never reaches)
/// is left out of the comparison.
fn but_last(mut nexts: Vec<Option<Duration>>) -> Vec<Option<Duration>> {
    nexts.pop();
    nexts
}

#[test]
fn after_sleeps_the_interval_after_every_body_even_a_slow_one() {
    let (starts, nexts, end) = overrun(after(secs(10)));
    assert_eq!(starts, all_secs([0, 10, 45, 55, 65]));
    assert_eq!(
        nexts, [None; 5],
        "with After the next start is unknown while a body runs"
    );
    assert_eq!(
        end,
        secs(65),
        "the run ends right after the 5th body, without a sleep"
    );
}

#[test]
fn fixed_rate_burst_runs_missed_slots_back_to_back() {
    let (starts, nexts, end) = overrun(fixed(secs(10), MissedTick::Burst));
    // Slots 20 and 30 were missed during the 25 s body: both run at 35.
    assert_eq!(starts, all_secs([0, 10, 35, 35, 40]));
    assert_eq!(but_last(nexts), some_secs([10, 20, 30, 40]));
    assert_eq!(end, secs(40));
}

#[test]
fn fixed_rate_delay_restarts_the_grid_after_an_overrun() {
    let (starts, nexts, end) = overrun(fixed(secs(10), MissedTick::Delay));
    assert_eq!(starts, all_secs([0, 10, 35, 45, 55]));
    assert_eq!(but_last(nexts), some_secs([10, 20, 45, 55]));
    assert_eq!(end, secs(55));
}

#[test]
fn fixed_rate_skip_drops_missed_slots_and_keeps_the_grid() {
    let (starts, nexts, end) = overrun(fixed(secs(10), MissedTick::Skip));
    assert_eq!(starts, all_secs([0, 10, 35, 40, 50]));
    assert_eq!(but_last(nexts), some_secs([10, 20, 40, 50]));
    assert_eq!(end, secs(50));
}

/// Four iterations of 3 s bodies on `schedule`, started 7 s after `t0`;
/// gives the body starts and `next_iteration` at 12 s (during a sleep).
fn three_second_bodies(schedule: Schedule) -> (Vec<Duration>, Option<Duration>) {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = Loop::builder(&rt, "steady", schedule)
        .count(4)
        .build(timed_body(&rec, |_| secs(3)));
    advance_to(&mock, t0, secs(7));
    let run = lp.start().unwrap();
    advance_to(&mock, t0, secs(12));
    let during_sleep = next_at(&lp, t0);
    finish(&mock, run).unwrap();
    (rec.starts(), during_sleep)
}

#[test]
fn fixed_rate_is_anchored_to_its_start_and_does_not_drift() {
    for missed in [MissedTick::Burst, MissedTick::Delay, MissedTick::Skip] {
        let (starts, next) = three_second_bodies(fixed(secs(10), missed));
        assert_eq!(starts, all_secs([7, 17, 27, 37]), "{missed:?}");
        assert_eq!(next, Some(secs(17)), "{missed:?}");
    }
}

#[test]
fn after_counts_the_interval_from_the_end_of_each_body() {
    let (starts, next) = three_second_bodies(after(secs(10)));
    assert_eq!(starts, all_secs([7, 20, 33, 46]));
    assert_eq!(next, Some(secs(20)), "the 1st body ended at 10 s");
}

#[test]
fn after_zero_runs_bodies_back_to_back() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = Loop::builder(&rt, "eager", after(secs(0)))
        .count(3)
        .build(timed_body(&rec, |_| secs(2)));
    let run = lp.start().unwrap();
    finish(&mock, run).unwrap();
    assert_eq!(rec.starts(), all_secs([0, 2, 4]));
    assert_eq!(rec.at("body end"), all_secs([2, 4, 6]));
}

#[test]
fn next_iteration_during_a_fixed_rate_sleep_is_the_next_slot() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = Loop::builder(&rt, "grid", fixed(secs(10), MissedTick::Burst))
        .build(timed_body(&rec, |_| secs(1)));
    let run = lp.start().unwrap();
    for (at, next) in [(5, 10), (10, 20), (15, 20), (29, 30)] {
        advance_to(&mock, t0, secs(at));
        assert_eq!(next_at(&lp, t0), Some(secs(next)), "at {at} s");
    }
    lp.stop();
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Stopped);
    assert_eq!(rec.starts(), all_secs([0, 10, 20]));
}
