//! A run's life: `count`, `current_loop`, `next_iteration`, start, stop,
//! cancel, restart, `is_running`, `failed`, and what the run's handle
//! gives.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

/// Marks `body dropped` (with the instant) if a body's future is dropped
/// before it ends.
struct Unfinished {
    rec: Recorder,
    finished: bool,
}

impl Unfinished {
    fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.finished {
            self.rec.mark("body dropped");
        }
    }
}

/// A body that marks `body`, then sleeps `long`, then marks `body end`;
/// dropped before that, it marks `body dropped`.
fn droppable_body(
    rec: &Recorder,
    long: Duration,
) -> impl Fn(Loop) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync + 'static {
    let rec = rec.clone();
    move |lp: Loop| {
        let mut guard = Unfinished {
            rec: rec.clone(),
            finished: false,
        };
        Box::pin(async move {
            guard.rec.mark("body");
            push(&guard.rec.loops, lp.current_loop());
            guard.rec.rt.sleep(long).await;
            guard.rec.mark("body end");
            guard.finish();
        })
    }
}

#[test]
fn without_a_count_the_loop_runs_until_stopped() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = Loop::builder(&rt, "forever", after(secs(10))).build(timed_body(&rec, |_| secs(0)));
    assert_eq!(lp.count(), None);
    let run = lp.start().unwrap();
    advance_to(&mock, t0, secs(95));
    assert!(lp.is_running());
    assert_eq!(lp.remaining(), None);
    assert_eq!(lp.current_loop(), 10);
    assert_eq!(
        rec.starts(),
        all_secs([0, 10, 20, 30, 40, 50, 60, 70, 80, 90])
    );
    lp.stop();
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Stopped);
    assert_eq!(rec.since_t0(), secs(95));
}

#[test]
fn count_zero_runs_no_iteration_but_the_hooks() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = rec
        .hooks(Loop::builder(&rt, "none", after(secs(10))).count(0))
        .build(timed_body(&rec, |_| secs(1)));
    let run = lp.start().unwrap();
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Completed);
    assert_eq!(rec.events(), [ev("before", 0), ev("after", 0)]);
    assert_eq!(mock.elapsed(), Duration::ZERO);
    assert!(!lp.is_running());
}

#[test]
fn count_n_completes_right_after_the_nth_body() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = Loop::builder(&rt, "three", after(secs(5)))
        .count(3)
        .build(timed_body(&rec, |_| secs(1)));
    assert_eq!(lp.count(), Some(3));
    assert_eq!(lp.remaining(), Some(3));
    let run = lp.start().unwrap();
    advance_to(&mock, t0, secs(2));
    assert_eq!(lp.remaining(), Some(2));
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Completed);
    assert_eq!(rec.starts(), all_secs([0, 6, 12]));
    assert_eq!(rec.since_t0(), secs(13), "no sleep after the last body");
    assert!(!lp.is_running());
    assert!(!lp.failed());
}

#[test]
fn current_loop_counts_finished_iterations_and_is_zero_after_the_end() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = Loop::builder(&rt, "counter", after(secs(10)))
        .count(3)
        .build(timed_body(&rec, |_| secs(2)));
    assert_eq!(lp.current_loop(), 0);
    let run = lp.start().unwrap();
    advance_to(&mock, t0, secs(1));
    assert_eq!(lp.current_loop(), 0, "during the first body");
    advance_to(&mock, t0, secs(5));
    assert_eq!(
        lp.current_loop(),
        1,
        "during the sleep after the first body"
    );
    advance_to(&mock, t0, secs(13));
    assert_eq!(lp.current_loop(), 1, "during the second body");
    finish(&mock, run).unwrap();
    assert_eq!(rec.loops(), [0, 1, 2]);
    assert_eq!(lp.current_loop(), 0);
}

#[test]
fn next_iteration_is_none_before_the_start_after_a_stop_and_after_the_end() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = Loop::builder(&rt, "next", after(secs(10))).build(timed_body(&rec, |_| secs(4)));
    assert_eq!(lp.next_iteration(), None, "before the start");
    let run = lp.start().unwrap();
    assert_eq!(
        next_at(&lp, t0),
        Some(secs(0)),
        "the first iteration is due now"
    );
    advance_to(&mock, t0, secs(2));
    assert_eq!(next_at(&lp, t0), None, "unknown during an After body");
    advance_to(&mock, t0, secs(6));
    assert_eq!(next_at(&lp, t0), Some(secs(14)), "during the sleep");
    advance_to(&mock, t0, secs(15));
    lp.stop();
    assert_eq!(next_at(&lp, t0), None, "once a stop is requested");
    advance_to(&mock, t0, secs(17));
    assert!(lp.is_running(), "the body is still finishing");
    assert_eq!(next_at(&lp, t0), None, "still none while the body finishes");
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Stopped);
    assert_eq!(rec.since_t0(), secs(18));
    assert_eq!(lp.next_iteration(), None, "after the end");
}

#[test]
fn next_iteration_is_none_once_a_stop_is_requested_during_a_fixed_rate_body() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = Loop::builder(&rt, "next", fixed(secs(10), MissedTick::Burst))
        .build(timed_body(&rec, |_| secs(4)));
    let run = lp.start().unwrap();
    advance_to(&mock, t0, secs(12));
    assert_eq!(
        next_at(&lp, t0),
        Some(secs(20)),
        "known during a fixed-rate body"
    );
    lp.stop();
    assert_eq!(next_at(&lp, t0), None);
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Stopped);
    assert_eq!(rec.at("body end"), all_secs([4, 14]));
    assert_eq!(lp.next_iteration(), None);
}

#[test]
fn start_while_running_is_refused_and_leaves_the_run_alone() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = Loop::builder(&rt, "ticker", after(secs(10)))
        .count(3)
        .build(timed_body(&rec, |_| secs(1)));
    let run = lp.start().unwrap();
    advance_to(&mock, t0, secs(5));
    let err = lp.start().unwrap_err();
    assert_eq!(
        err,
        LoopError::AlreadyRunning {
            name: "ticker".to_owned()
        }
    );
    assert!(
        err.to_string().contains("\"ticker\" is already running"),
        "{err}"
    );
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Completed);
    assert_eq!(rec.starts(), all_secs([0, 11, 22]));

    // Once it ended, it starts again, from iteration 0.
    let again = lp.start().unwrap();
    assert_eq!(finish(&mock, again).unwrap(), LoopEnd::Completed);
    assert_eq!(rec.starts(), all_secs([0, 11, 22, 23, 34, 45]));
    assert_eq!(rec.loops(), [0, 1, 2, 0, 1, 2]);
}

#[test]
fn stop_during_a_body_lets_it_finish_and_starts_no_more() {
    for schedule in [after(secs(10)), fixed(secs(10), MissedTick::Burst)] {
        let (mock, rt, t0) = setup();
        let rec = Recorder::new(&rt, t0);
        let lp =
            Loop::builder(&rt, "graceful", schedule.clone()).build(timed_body(&rec, |_| secs(5)));
        let run = lp.start().unwrap();
        advance_to(&mock, t0, secs(2));
        lp.stop();
        assert!(lp.is_running(), "{schedule:?}");
        assert_eq!(
            finish(&mock, run).unwrap(),
            LoopEnd::Stopped,
            "{schedule:?}"
        );
        assert_eq!(
            rec.since_t0(),
            secs(5),
            "{schedule:?}: ends when the body does"
        );
        assert_eq!(
            rec.events(),
            [ev("body", 0), ev("body end", 5)],
            "{schedule:?}"
        );
        assert!(!lp.is_running());
        assert_eq!(lp.current_loop(), 0);
        mock.advance(secs(100)).unwrap();
        assert_eq!(
            rec.starts(),
            all_secs([0]),
            "{schedule:?}: no further iteration"
        );
    }
}

#[test]
fn stop_during_the_sleep_ends_at_once_without_another_run() {
    for schedule in [after(secs(10)), fixed(secs(10), MissedTick::Burst)] {
        let (mock, rt, t0) = setup();
        let rec = Recorder::new(&rt, t0);
        let lp =
            Loop::builder(&rt, "graceful", schedule.clone()).build(timed_body(&rec, |_| secs(0)));
        let run = lp.start().unwrap();
        advance_to(&mock, t0, secs(13));
        lp.stop();
        assert_eq!(
            finish(&mock, run).unwrap(),
            LoopEnd::Stopped,
            "{schedule:?}"
        );
        assert_eq!(rec.since_t0(), secs(13), "{schedule:?}: at once");
        assert_eq!(rec.starts(), all_secs([0, 10]), "{schedule:?}");
        assert!(!lp.is_running());
    }
}

#[test]
fn a_body_can_stop_its_own_loop() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let inner = timed_body(&rec, |_| secs(1));
    let lp = Loop::builder(&rt, "self-stop", after(secs(10))).build(move |lp: Loop| {
        if lp.current_loop() == 1 {
            lp.stop();
        }
        inner(lp)
    });
    let run = lp.start().unwrap();
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Stopped);
    assert_eq!(
        rec.events(),
        [
            ev("body", 0),
            ev("body end", 1),
            ev("body", 11),
            ev("body end", 12)
        ]
    );
}

#[test]
fn stop_right_after_start_runs_no_body() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = rec
        .hooks(Loop::builder(&rt, "early", after(secs(10))))
        .build(timed_body(&rec, |_| secs(1)));
    let run = lp.start().unwrap();
    lp.stop();
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Stopped);
    assert_eq!(rec.events(), [ev("before", 0), ev("after", 0)]);
}

#[test]

fn cancel_right_after_start_runs_no_body() {
    for schedule in [after(secs(10)), fixed(secs(10), MissedTick::Burst)] {
        let (mock, rt, t0) = setup();
        let rec = Recorder::new(&rt, t0);
        let lp = rec
            .hooks(Loop::builder(&rt, "early", schedule.clone()))
            .build(timed_body(&rec, |_| secs(1)));
        let run = lp.start().unwrap();
        lp.cancel();
        assert_eq!(
            finish(&mock, run).unwrap(),
            LoopEnd::Cancelled,
            "{schedule:?}"
        );
        assert_eq!(
            rec.events(),
            [ev("before", 0), ev("after (cancelling)", 0)],
            "{schedule:?}: cancel is at least as strong as stop"
        );
    }
}

#[test]

fn stop_at_the_instant_an_iteration_is_due_starts_no_more_runs() {
    for schedule in [after(secs(10)), fixed(secs(10), MissedTick::Burst)] {
        let (mock, rt, t0) = setup();
        let rec = Recorder::new(&rt, t0);
        let lp = Loop::builder(&rt, "tie", schedule.clone()).build(timed_body(&rec, |_| secs(0)));
        // A controller whose timer, registered first, fires first at 10 s.
        let (rt2, lp2, rec2) = (rt.clone(), lp.clone(), rec.clone());
        rt.spawn(async move {
            rt2.sleep_until(t0 + secs(10)).await;
            rec2.mark("stop");
            lp2.stop();
        })
        .unwrap()
        .detach();
        mock.run_until_stalled().unwrap();
        let run = lp.start().unwrap();
        assert_eq!(
            finish(&mock, run).unwrap(),
            LoopEnd::Stopped,
            "{schedule:?}"
        );
        assert_eq!(
            rec.events(),
            [ev("body", 0), ev("body end", 0), ev("stop", 10)],
            "{schedule:?}: no body may start once stop() has returned"
        );
    }
}

#[test]
fn cancel_drops_a_body_awaiting_a_long_sleep() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = Loop::builder(&rt, "abort", after(secs(10))).build(droppable_body(&rec, secs(100)));
    let run = lp.start().unwrap();
    advance_to(&mock, t0, secs(2));
    assert_eq!(rec.events(), [ev("body", 0)]);
    lp.cancel();
    mock.run_until_stalled().unwrap();
    assert_eq!(
        rec.events(),
        [ev("body", 0), ev("body dropped", 2)],
        "the body is dropped at once and never ends"
    );
    assert!(!lp.is_running());
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Cancelled);
    assert_eq!(rec.since_t0(), secs(2));
    assert_eq!(lp.current_loop(), 0);
    assert_eq!(lp.next_iteration(), None);
    assert!(!lp.is_being_cancelled(), "only during after_loop");
    assert_eq!(mock.pending_timers(), 0, "the body's sleep went with it");
}

#[test]
fn cancel_during_the_sleep_ends_at_once() {
    for schedule in [after(secs(10)), fixed(secs(10), MissedTick::Burst)] {
        let (mock, rt, t0) = setup();
        let rec = Recorder::new(&rt, t0);
        let lp = Loop::builder(&rt, "abort", schedule.clone()).build(timed_body(&rec, |_| secs(1)));
        let run = lp.start().unwrap();
        advance_to(&mock, t0, secs(4));
        lp.cancel();
        assert_eq!(lp.next_iteration(), None, "{schedule:?}");
        assert_eq!(
            finish(&mock, run).unwrap(),
            LoopEnd::Cancelled,
            "{schedule:?}"
        );
        assert_eq!(rec.since_t0(), secs(4), "{schedule:?}");
        assert_eq!(rec.starts(), all_secs([0]), "{schedule:?}");
        assert_eq!(mock.pending_timers(), 0, "{schedule:?}");
    }
}

#[test]
fn stop_and_cancel_do_nothing_when_not_running() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = Loop::builder(&rt, "idle", after(secs(10)))
        .count(1)
        .build(timed_body(&rec, |_| secs(1)));
    lp.stop();
    lp.cancel();
    assert!(!lp.is_running());
    assert!(!lp.is_being_cancelled());
    assert_eq!(lp.next_iteration(), None);
    // Neither request lingers into the next run.
    let run = lp.start().unwrap();
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Completed);
    assert_eq!(rec.starts(), all_secs([0]));
}

#[test]
fn restart_cancels_the_running_body_and_starts_a_new_run() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = rec
        .hooks(Loop::builder(&rt, "restartable", after(secs(10))))
        .build(droppable_body(&rec, secs(5)));
    let first = lp.start().unwrap();
    advance_to(&mock, t0, secs(17));
    assert_eq!(lp.current_loop(), 1);
    let second = mock.block_on(lp.restart()).unwrap().unwrap();
    assert_eq!(
        mock.block_on(first).unwrap().unwrap().unwrap(),
        LoopEnd::Cancelled
    );
    assert!(lp.is_running());
    advance_to(&mock, t0, secs(20));
    assert_eq!(lp.current_loop(), 0, "the new run counts from 0");
    lp.stop();
    assert_eq!(finish(&mock, second).unwrap(), LoopEnd::Stopped);
    assert_eq!(
        rec.events(),
        [
            ev("before", 0),
            ev("body", 0),
            ev("body end", 5),
            ev("body", 15),
            ev("body dropped", 17),
            ev("after (cancelling)", 17),
            ev("before", 17),
            ev("body", 17),
            ev("body end", 22),
            ev("after", 22),
        ]
    );
    assert_eq!(rec.loops(), [0, 1, 0]);
}

#[test]
fn restart_starts_a_loop_that_was_not_running() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = Loop::builder(&rt, "cold", after(secs(10)))
        .count(2)
        .build(timed_body(&rec, |_| secs(1)));
    advance_to(&mock, t0, secs(3));
    let run = mock.block_on(lp.restart()).unwrap().unwrap();
    assert!(lp.is_running());
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Completed);
    assert_eq!(rec.starts(), all_secs([3, 14]));
}

#[test]
fn is_running_holds_from_start_to_the_end_of_the_run() {
    let (mock, rt, t0) = setup();
    let seen = log();
    let seen2 = seen.clone();
    let lp = Loop::builder(&rt, "running", after(secs(10)))
        .count(2)
        .after_loop({
            let seen = seen.clone();
            move |lp: Loop| {
                let seen = seen.clone();
                async move { push(&seen, ("after_loop", lp.is_running())) }
            }
        })
        .build(move |lp: Loop| {
            let seen = seen2.clone();
            async move { push(&seen, ("body", lp.is_running())) }
        });
    assert!(!lp.is_running());
    let run = lp.start().unwrap();
    assert!(lp.is_running(), "at once after start");
    advance_to(&mock, t0, secs(5));
    assert!(lp.is_running(), "during the sleep");
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Completed);
    assert!(!lp.is_running());
    assert_eq!(
        entries(&seen),
        [("body", true), ("body", true), ("after_loop", true)]
    );
}

#[test]
fn failed_marks_an_unhandled_error_until_the_next_start() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let fail_first_run = Arc::new(AtomicBool::new(true));
    let flag = fail_first_run.clone();
    let lp = Loop::builder(&rt, "fragile", after(secs(10)))
        .count(2)
        .build(failing_body(&rec, move |n| {
            (n == 1 && flag.load(Ordering::SeqCst)).then(|| fatal("disk full"))
        }));
    assert!(!lp.failed());
    let run = lp.start().unwrap();
    let err = finish(&mock, run).unwrap_err();
    assert_eq!(err.to_string(), "fatal: disk full");
    assert!(
        err.downcast_ref::<Fatal>().is_some(),
        "the body's own error"
    );
    assert!(lp.failed());
    assert!(!lp.is_running());
    assert_eq!(rec.starts(), all_secs([0, 10]));
    assert_eq!(rec.since_t0(), secs(10));

    fail_first_run.store(false, Ordering::SeqCst);
    let run = lp.start().unwrap();
    assert!(!lp.failed(), "cleared by the start");
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Completed);
    assert!(!lp.failed());

    for end in ["stop", "cancel"] {
        let run = lp.start().unwrap();
        advance_to(&mock, t0, rec.since_t0() + secs(5));
        if end == "stop" {
            lp.stop()
        } else {
            lp.cancel()
        }
        assert!(finish(&mock, run).is_ok(), "{end}");
        assert!(!lp.failed(), "{end}");
    }
}

#[test]
fn the_handle_resolves_to_how_the_run_ended() {
    let ends = [
        ("completed", Ok(LoopEnd::Completed)),
        ("stopped", Ok(LoopEnd::Stopped)),
        ("cancelled", Ok(LoopEnd::Cancelled)),
        ("failed", Err("fatal: boom".to_owned())),
    ];
    for (how, expected) in ends {
        let (mock, rt, t0) = setup();
        let rec = Recorder::new(&rt, t0);
        let lp = Loop::builder(&rt, how, after(secs(10)))
            .count(3)
            .build(failing_body(&rec, move |n| {
                (how == "failed" && n == 1).then(|| fatal("boom"))
            }));
        let run = lp.start().unwrap();
        advance_to(&mock, t0, secs(5));
        match how {
            "stopped" => lp.stop(),
            "cancelled" => lp.cancel(),
            _ => {}
        }
        let outcome = finish(&mock, run).map_err(|e| e.to_string());
        assert_eq!(outcome, expected, "{how}");
    }
}

#[test]
fn a_start_the_executor_refuses_is_an_error_and_leaves_the_loop_idle() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = Loop::builder(&rt, "orphan", after(secs(10))).build(timed_body(&rec, |_| secs(1)));
    drop(mock);
    let err = lp.start().unwrap_err();
    assert!(
        matches!(&err, LoopError::Spawn { name, .. } if name == "orphan"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("loop \"orphan\" could not start"),
        "{err}"
    );
    assert!(!lp.is_running());
    assert_eq!(lp.next_iteration(), None);
    assert!(
        matches!(lp.start(), Err(LoopError::Spawn { .. })),
        "refused again, not AlreadyRunning"
    );
}
