//! Reconnection: which error kinds are retried, the seeded exponential
//! backoff between retries, and what a failed iteration does to the count
//! and the schedule; errors of other kinds and panics end the run.

use std::future::pending;

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;
use crate::call::AttemptTimedOut;
use crate::loops::ReconnectBackoff;
use crate::rt::{Elapsed, RuntimeRng};

/// The delays the loop's backoff gives on a runtime seeded with `seed`,
/// for failures at `failures` (since `t0`), computed apart from the loop.
fn expected_delays(seed: u64, base: Duration, t0: Instant, failures: &[Duration]) -> Vec<Duration> {
    let mut backoff = ReconnectBackoff::new(base, RuntimeRng::from_seed(seed));
    failures.iter().map(|&at| backoff.delay(t0 + at)).collect()
}

/// Runs a one-iteration loop, configured by `configure` and then
/// `configure_loop`, whose first call fails with `error()`: whether that
/// error was retried. Checks the run's end either way.
fn retried_with(
    configure: impl FnOnce(LoopBuilder) -> LoopBuilder,
    configure_loop: impl FnOnce(&Loop),
    error: fn() -> BoxError,
) -> bool {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let builder = rec.hooks(Loop::builder(&rt, "kinds", after(secs(10))).count(1));
    let lp = configure(builder).build(failing_body(&rec, move |n| (n == 0).then(error)));
    configure_loop(&lp);
    let run = lp.start().unwrap();
    let text = error().to_string();
    match finish(&mock, run) {
        Ok(end) => {
            assert_eq!(end, LoopEnd::Completed, "{text}");
            assert_eq!(rec.starts().len(), 2, "{text}: one retry");
            assert_eq!(
                rec.loops(),
                [0, 0],
                "{text}: the retry is the same iteration"
            );
            assert!(
                rec.errors().is_empty(),
                "{text}: on_error is not for handled errors"
            );
            assert!(!lp.failed(), "{text}");
            true
        }
        Err(err) => {
            assert_eq!(err.to_string(), text);
            assert_eq!(
                rec.events(),
                [
                    ev("before", 0),
                    ev("body", 0),
                    ev("on_error", 0),
                    ev("after", 0)
                ],
                "{text}: ends at once"
            );
            assert!(lp.failed(), "{text}");
            false
        }
    }
}

fn retried(configure: impl FnOnce(LoopBuilder) -> LoopBuilder, error: fn() -> BoxError) -> bool {
    retried_with(configure, |_| {}, error)
}

fn same(builder: LoopBuilder) -> LoopBuilder {
    builder
}

fn wrapped_io() -> BoxError {
    Wrapped(std::io::Error::other("reset")).into()
}

fn elapsed() -> BoxError {
    Elapsed::new(secs(1)).into()
}

fn attempt_timed_out() -> BoxError {
    AttemptTimedOut { limit: secs(1) }.into()
}

fn flaky() -> BoxError {
    Flaky.into()
}

#[test]
fn by_default_io_errors_and_timeouts_are_retried_and_nothing_else() {
    assert!(retried(same, io_error));
    assert!(retried(same, wrapped_io), "found through the source chain");
    assert!(retried(same, elapsed));
    assert!(retried(same, attempt_timed_out));
    assert!(!retried(same, flaky));
    assert!(!retried(same, || fatal("boom")));
}

#[test]
fn the_builder_adds_and_removes_handled_kinds() {
    assert!(retried(|b| b.handle::<Flaky>(), flaky));
    assert!(retried(
        |b| b.handle_if(|e| e.to_string().contains("429")),
        || fatal("429 slow down")
    ));
    assert!(!retried(
        |b| b.handle_if(|e| e.to_string().contains("429")),
        || fatal("500")
    ));
    assert!(!retried(|b| b.remove::<std::io::Error>(), io_error));
    assert!(!retried(|b| b.remove::<std::io::Error>(), wrapped_io));
    assert!(
        retried(|b| b.remove::<std::io::Error>(), elapsed),
        "only that kind goes"
    );
    for error in [io_error, elapsed, attempt_timed_out] {
        assert!(!retried(LoopBuilder::clear_handled, error));
    }
    assert!(retried(|b| b.clear_handled().handle::<Flaky>(), flaky));
    assert!(!retried(|b| b.clear_handled().handle::<Flaky>(), io_error));
}

#[test]
fn the_loop_adds_and_removes_handled_kinds() {
    assert!(retried_with(same, |lp| lp.handle::<Flaky>(), flaky));
    assert!(!retried_with(
        same,
        |lp| assert!(lp.remove::<std::io::Error>()),
        io_error
    ));
    assert!(!retried_with(
        |b| b.remove::<std::io::Error>(),
        |lp| assert!(!lp.remove::<std::io::Error>(), "was not handled"),
        io_error
    ));
    assert!(!retried_with(same, Loop::clear_handled, elapsed));
}

#[test]
fn with_reconnect_off_handled_kinds_end_the_loop_too() {
    for error in [io_error, wrapped_io, elapsed, attempt_timed_out] {
        assert!(!retried(|b| b.reconnect(false), error));
    }
    assert!(!retried(|b| b.reconnect(false).handle::<Flaky>(), flaky));
    assert!(retried(|b| b.reconnect(false).reconnect(true), io_error));
}

#[test]
fn handled_errors_are_retried_after_a_seeded_backoff_without_counting() {
    let seed = 7;
    let (mock, rt, t0) = setup_seeded(seed);
    let rec = Recorder::new(&rt, t0);
    let calls = Arc::new(AtomicUsize::new(0));
    let body_rec = rec.clone();
    let lp = rec
        .hooks(Loop::builder(&rt, "flaky", after(secs(10))).count(2))
        .build(move |lp: Loop| {
            let rec = body_rec.clone();
            let call = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                rec.body_started(&lp);
                match call {
                    0 => Err(io_error()),
                    2 => {
                        rec.rt.timeout(secs(1), pending::<()>()).await?;
                        Ok(())
                    }
                    _ => Ok::<(), BoxError>(()),
                }
            }
        });
    // The 1st call fails at 0 s; the 3rd times out at d1 + 11 s.
    let d1 = expected_delays(seed, secs(1), t0, &[secs(0)])[0];
    let delays = expected_delays(seed, secs(1), t0, &[secs(0), d1 + secs(11)]);
    let d2 = delays[1];
    assert!(d1 <= secs(2) && d2 <= secs(4), "{delays:?}");
    assert!(!d1.is_zero());

    let run = lp.start().unwrap();
    advance_to(&mock, t0, d1 / 2);
    assert_eq!(
        next_at(&lp, t0),
        Some(d1),
        "the retry is the next iteration"
    );
    assert_eq!(lp.current_loop(), 0);
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Completed);

    assert_eq!(
        rec.starts(),
        [secs(0), d1, d1 + secs(10), d1 + secs(11) + d2]
    );
    assert_eq!(rec.loops(), [0, 0, 1, 1], "failed calls do not count");
    assert_eq!(rec.at("after"), [d1 + secs(11) + d2]);
    assert!(rec.errors().is_empty());
    assert!(!lp.failed());
}

/// Runs a loop on a runtime seeded with `seed`, with a 1 ms reconnect
/// base, `After(interval)` and `count` iterations, whose calls for which
/// `fails` holds fail with an I/O error. Gives the start of every call.
fn starts_with_failures(
    seed: u64,
    interval: Duration,
    count: u64,
    fails: fn(usize) -> bool,
) -> Vec<Duration> {
    let (mock, rt, t0) = setup_seeded(seed);
    let rec = Recorder::new(&rt, t0);
    let lp = Loop::builder(&rt, "streak", after(interval))
        .count(count)
        .reconnect_base(ms(1))
        .build(failing_body(&rec, move |n| fails(n).then(io_error)));
    let run = lp.start().unwrap();
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Completed);
    rec.starts()
}

/// The delay after each failing call: the gap to the next call (bodies
/// take no time).
fn delays_after(starts: &[Duration], fails: fn(usize) -> bool) -> (Vec<Duration>, Vec<Duration>) {
    let failures: Vec<_> = (0..starts.len() - 1).filter(|&n| fails(n)).collect();
    let at = failures.iter().map(|&n| starts[n]).collect();
    let delays = failures
        .iter()
        .map(|&n| starts[n + 1] - starts[n])
        .collect();
    (at, delays)
}

#[test]
fn backoff_bounds_double_up_to_the_cap_and_replay_with_the_seed() {
    fn first_twelve(n: usize) -> bool {
        n < 12
    }
    let starts = starts_with_failures(11, secs(10), 1, first_twelve);
    assert_eq!(starts.len(), 13);
    let (failures, delays) = delays_after(&starts, first_twelve);
    for (k, delay) in (1..).zip(&delays) {
        let bound = ms(1) * (1 << u32::min(k, 10));
        assert!(*delay <= bound, "delay {k} is {delay:?}, above {bound:?}");
    }
    let t0 = MockRuntime::new().now();
    assert_eq!(delays, expected_delays(11, ms(1), t0, &failures));
    assert_eq!(
        starts_with_failures(11, secs(10), 1, first_twelve),
        starts,
        "same seed, same instants"
    );
    assert_ne!(
        starts_with_failures(12, secs(10), 1, first_twelve),
        starts,
        "another seed"
    );
}

#[test]
fn backoff_starts_again_after_a_quiet_spell() {
    // Ten failures in a row, a success, then one more failure after the
    // interval: more than base·2¹¹ = 2.048 s after the previous failure with
    // a 10 s interval, less with a 1 s one (the 10th delay is ≤ 1.024 s).
    fn streak_then_one(n: usize) -> bool {
        n < 10 || n == 11
    }
    let t0 = MockRuntime::new().now();
    let seed = 5;
    let mut last_delays = Vec::new();
    for interval in [secs(10), secs(1)] {
        let starts = starts_with_failures(seed, interval, 2, streak_then_one);
        assert_eq!(starts.len(), 13);
        assert_eq!(starts[11] - starts[10], interval);
        let (failures, delays) = delays_after(&starts, streak_then_one);
        assert_eq!(
            delays,
            expected_delays(seed, ms(1), t0, &failures),
            "{interval:?}"
        );
        last_delays.push(delays[10]);
    }
    assert!(last_delays[0] <= ms(2), "reset: {last_delays:?}");
    assert!(last_delays[1] > ms(2), "no reset: {last_delays:?}");
}

/// Starts of the calls of a 3-iteration loop on `schedule` whose 2nd call
/// fails with a handled error, and the backoff delay after it.
fn one_failure(schedule: Schedule) -> (Vec<Duration>, Vec<u64>, Duration) {
    let seed = 3;
    let (mock, rt, t0) = setup_seeded(seed);
    let rec = Recorder::new(&rt, t0);
    let lp = Loop::builder(&rt, "hiccup", schedule)
        .count(3)
        .build(failing_body(&rec, |n| (n == 1).then(io_error)));
    let run = lp.start().unwrap();
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Completed);
    let delay = expected_delays(seed, secs(1), t0, &[secs(10)])[0];
    assert!(!delay.is_zero() && delay <= secs(2), "{delay:?}");
    (rec.starts(), rec.loops(), delay)
}

#[test]
fn a_failed_iteration_does_not_advance_a_fixed_rate_schedule() {
    let (starts, loops, d) = one_failure(fixed(secs(10), MissedTick::Burst));
    assert_eq!(starts, [secs(0), secs(10), secs(10) + d, secs(20)]);
    assert_eq!(loops, [0, 1, 1, 2]);
}

#[test]
fn a_failed_iteration_does_not_advance_an_after_schedule() {
    let (starts, loops, d) = one_failure(after(secs(10)));
    assert_eq!(starts, [secs(0), secs(10), secs(10) + d, secs(20) + d]);
    assert_eq!(loops, [0, 1, 1, 2]);
}

#[test]
fn a_stop_or_cancel_during_the_backoff_ends_at_once_without_a_retry() {
    for (control, end, after_event) in [
        (Loop::stop as fn(&Loop), LoopEnd::Stopped, "after"),
        (Loop::cancel, LoopEnd::Cancelled, "after (cancelling)"),
    ] {
        let seed = 9;
        let (mock, rt, t0) = setup_seeded(seed);
        let rec = Recorder::new(&rt, t0);
        let lp = rec
            .hooks(Loop::builder(&rt, "patient", after(secs(10))).reconnect_base(secs(10)))
            .build(failing_body(&rec, |n| (n == 0).then(io_error)));
        let delay = expected_delays(seed, secs(10), t0, &[secs(0)])[0];
        assert!(delay >= secs(2), "{delay:?}");
        let run = lp.start().unwrap();
        advance_to(&mock, t0, secs(1));
        assert_eq!(next_at(&lp, t0), Some(delay));
        control(&lp);
        assert_eq!(lp.next_iteration(), None);
        assert_eq!(finish(&mock, run).unwrap(), end);
        assert_eq!(
            rec.events(),
            [ev("before", 0), ev("body", 0), ev(after_event, 1)],
            "{end:?}"
        );
        assert!(!lp.failed());
        assert_eq!(mock.pending_timers(), 0);
    }
}

#[test]
fn a_panicking_body_ends_the_loop_and_the_runtime_lives_on() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    // A neighbour ticking every 5 s on the same runtime.
    let (rt2, rec2) = (rt.clone(), rec.clone());
    rt.spawn(async move {
        for _ in 0..4 {
            rt2.sleep(secs(5)).await;
            rec2.mark("neighbour");
        }
    })
    .unwrap()
    .detach();
    let body_rec = rec.clone();
    let lp = rec
        .hooks(Loop::builder(&rt, "panicky", after(secs(10))).handle_if(|_| true))
        .build(move |lp: Loop| {
            let rec = body_rec.clone();
            async move {
                rec.mark("body");
                if lp.current_loop() == 1 {
                    panic!("index out of bounds");
                }
            }
        });
    let run = lp.start().unwrap();
    let err = finish(&mock, run).unwrap_err();
    assert_eq!(
        err.downcast_ref::<LoopPanicked>(),
        Some(&LoopPanicked {
            what: "body",
            name: "panicky".to_owned(),
            message: "index out of bounds".to_owned(),
        }),
        "never retried, even when every error kind is handled"
    );
    assert_eq!(
        err.to_string(),
        "body of loop \"panicky\" panicked: index out of bounds"
    );
    assert!(lp.failed());
    assert!(!lp.is_running());

    mock.advance(secs(15)).unwrap();
    let (rt3, rec3) = (rt.clone(), rec.clone());
    let after_panic = mock.block_on(async move {
        rt3.sleep(secs(1)).await;
        rec3.since_t0()
    });
    assert_eq!(after_panic.unwrap(), secs(26), "the runtime still runs");
    assert_eq!(
        rec.events(),
        [
            ev("before", 0),
            ev("body", 0),
            ev("neighbour", 5),
            ev("body", 10),
            ev("on_error", 10),
            ev("after", 10),
            ev("neighbour", 10),
            ev("neighbour", 15),
            ev("neighbour", 20),
        ]
    );
}
