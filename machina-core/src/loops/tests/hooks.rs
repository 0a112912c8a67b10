//! `before_loop`, `after_loop` and `on_error`: which run, in what order and
//! at what instant for every way a run ends, and what they see.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

/// A loop with the recording hooks and a body of `work` per iteration,
/// started; `control` is called at 2 s (during the 1st body, which takes
/// 4 s) unless it is `None`.
fn hooked_run(
    schedule: Schedule,
    count: Option<u64>,
    control: Option<fn(&Loop)>,
) -> (Recorder, Result<LoopEnd, SharedError>) {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let mut builder = Loop::builder(&rt, "hooked", schedule);
    if let Some(count) = count {
        builder = builder.count(count);
    }
    let lp = rec.hooks(builder).build(timed_body(&rec, |_| secs(4)));
    let run = lp.start().unwrap();
    if let Some(control) = control {
        advance_to(&mock, t0, secs(2));
        control(&lp);
    }
    let end = finish(&mock, run);
    assert!(!lp.is_running());
    assert!(!lp.is_being_cancelled(), "only true during after_loop");
    (rec, end)
}

#[test]
fn a_completed_run_runs_before_loop_the_bodies_then_after_loop() {
    let (rec, end) = hooked_run(fixed(secs(10), MissedTick::Burst), Some(2), None);
    assert_eq!(end.unwrap(), LoopEnd::Completed);
    assert_eq!(
        rec.events(),
        [
            ev("before", 0),
            ev("body", 0),
            ev("body end", 4),
            ev("body", 10),
            ev("body end", 14),
            ev("after", 14),
        ]
    );
}

#[test]
fn a_stopped_run_finishes_its_body_then_runs_after_loop() {
    let (rec, end) = hooked_run(after(secs(10)), None, Some(Loop::stop));
    assert_eq!(end.unwrap(), LoopEnd::Stopped);
    assert_eq!(
        rec.events(),
        [
            ev("before", 0),
            ev("body", 0),
            ev("body end", 4),
            ev("after", 4)
        ]
    );
}

#[test]
fn a_cancelled_run_drops_its_body_then_runs_after_loop_while_being_cancelled() {
    let (rec, end) = hooked_run(after(secs(10)), None, Some(Loop::cancel));
    assert_eq!(end.unwrap(), LoopEnd::Cancelled);
    assert_eq!(
        rec.events(),
        [ev("before", 0), ev("body", 0), ev("after (cancelling)", 2)]
    );
}

#[test]
fn a_stop_or_cancel_during_the_sleep_runs_after_loop_at_once() {
    for (control, end, after_event) in [
        (Loop::stop as fn(&Loop), LoopEnd::Stopped, "after"),
        (Loop::cancel, LoopEnd::Cancelled, "after (cancelling)"),
    ] {
        let (mock, rt, t0) = setup();
        let rec = Recorder::new(&rt, t0);
        let lp = rec
            .hooks(Loop::builder(&rt, "sleepy", after(secs(10))))
            .build(timed_body(&rec, |_| secs(4)));
        let run = lp.start().unwrap();
        advance_to(&mock, t0, secs(7));
        control(&lp);
        assert_eq!(finish(&mock, run).unwrap(), end);
        assert_eq!(
            rec.events(),
            [
                ev("before", 0),
                ev("body", 0),
                ev("body end", 4),
                ev(after_event, 7)
            ]
        );
    }
}

#[test]
fn an_unhandled_error_runs_on_error_then_after_loop() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = rec
        .hooks(Loop::builder(&rt, "fragile", after(secs(10))))
        .build(failing_body(&rec, |n| (n == 1).then(|| fatal("boom"))));
    let run = lp.start().unwrap();
    let err = finish(&mock, run).unwrap_err();
    assert_eq!(
        rec.events(),
        [
            ev("before", 0),
            ev("body", 0),
            ev("body", 10),
            ev("on_error", 10),
            ev("after", 10)
        ]
    );
    let seen = rec.errors();
    assert_eq!(seen.len(), 1);
    assert!(
        Arc::ptr_eq(&seen[0], &err),
        "on_error gets the error the handle gives"
    );
    assert!(seen[0].downcast_ref::<Fatal>().is_some());
}

/// Panics with `message`; returns `()` as far as the compiler knows, so a
/// body ending with it has the output type `()` rather than `!`.
fn panic_in_body(message: &'static str) {
    std::panic::panic_any(message)
}

#[test]
fn a_panicking_body_runs_on_error_with_the_panic_then_after_loop() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let body_rec = rec.clone();
    let lp = rec
        .hooks(Loop::builder(&rt, "panicky", after(secs(10))))
        .build(move |_: Loop| {
            let rec = body_rec.clone();
            async move {
                rec.mark("body");
                rec.rt.sleep(secs(3)).await;
                panic_in_body("boom");
            }
        });
    let run = lp.start().unwrap();
    let err = finish(&mock, run).unwrap_err();
    assert_eq!(
        rec.events(),
        [
            ev("before", 0),
            ev("body", 0),
            ev("on_error", 3),
            ev("after", 3)
        ]
    );
    assert_eq!(
        err.downcast_ref::<LoopPanicked>(),
        Some(&LoopPanicked {
            what: "body",
            name: "panicky".to_owned(),
            message: "boom".to_owned(),
        })
    );
    assert!(Arc::ptr_eq(&rec.errors()[0], &err));
}

#[test]
fn a_panicking_before_loop_runs_no_body_but_on_error_and_after_loop() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let before = rec.clone();
    let lp = rec
        .hooks(Loop::builder(&rt, "unready", after(secs(10))))
        .before_loop(move |_: Loop| {
            let rec = before.clone();
            async move {
                rec.mark("before");
                rec.rt.sleep(secs(1)).await;
                panic!("no token");
            }
        })
        .build(timed_body(&rec, |_| secs(1)));
    let run = lp.start().unwrap();
    let err = finish(&mock, run).unwrap_err();
    assert_eq!(
        rec.events(),
        [ev("before", 0), ev("on_error", 1), ev("after", 1)]
    );
    let panicked = err.downcast_ref::<LoopPanicked>().unwrap();
    assert_eq!(panicked.what, "before_loop");
    assert_eq!(panicked.message, "no token");
    assert_eq!(
        err.to_string(),
        "before_loop of loop \"unready\" panicked: no token"
    );
    assert!(lp.failed());
}

#[test]
fn a_cancel_during_before_loop_drops_it_and_runs_no_body() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let dropped = Arc::new(AtomicBool::new(false));
    let (before, flag) = (rec.clone(), dropped.clone());
    let lp = rec
        .hooks(Loop::builder(&rt, "warming", after(secs(10))))
        .before_loop(move |_: Loop| {
            let (rec, flag) = (before.clone(), DropFlag(flag.clone()));
            async move {
                let _flag = flag;
                rec.mark("before");
                rec.rt.sleep(secs(5)).await;
                rec.mark("before end");
            }
        })
        .build(timed_body(&rec, |_| secs(1)));
    let run = lp.start().unwrap();
    advance_to(&mock, t0, secs(2));
    lp.cancel();
    assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Cancelled);
    assert!(is_set(&dropped));
    assert_eq!(rec.events(), [ev("before", 0), ev("after (cancelling)", 2)]);
}

#[test]
fn the_hooks_run_again_for_every_run() {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let lp = rec
        .hooks(Loop::builder(&rt, "twice", after(secs(10))).count(1))
        .build(timed_body(&rec, |_| secs(1)));
    for _ in 0..2 {
        let run = lp.start().unwrap();
        assert_eq!(finish(&mock, run).unwrap(), LoopEnd::Completed);
    }
    assert_eq!(
        rec.events(),
        [
            ev("before", 0),
            ev("body", 0),
            ev("body end", 1),
            ev("after", 1),
            ev("before", 1),
            ev("body", 1),
            ev("body end", 2),
            ev("after", 2),
        ]
    );
}

/// What the hooks see of `failed` and `is_being_cancelled` when a run
/// ends by `how`.
fn flags_seen_by_hooks(how: &'static str) -> Vec<(&'static str, bool, bool)> {
    let (mock, rt, _t0) = setup();
    let seen = log();
    let (on_error, after_loop, body) = (seen.clone(), seen.clone(), seen.clone());
    let lp = Loop::builder(&rt, how, after(secs(10)))
        .count(2)
        .on_error(move |lp: Loop, _| {
            let seen = on_error.clone();
            async move { push(&seen, ("on_error", lp.failed(), lp.is_being_cancelled())) }
        })
        .after_loop(move |lp: Loop| {
            let seen = after_loop.clone();
            async move { push(&seen, ("after", lp.failed(), lp.is_being_cancelled())) }
        })
        .build(move |lp: Loop| {
            let seen = body.clone();
            async move {
                push(&seen, ("body", lp.failed(), lp.is_being_cancelled()));
                match how {
                    "failed" => Err(fatal("boom")),
                    _ => Ok(()),
                }
            }
        });
    let run = lp.start().unwrap();
    mock.advance(secs(5)).unwrap();
    match how {
        "stopped" => lp.stop(),
        "cancelled" => lp.cancel(),
        _ => {}
    }
    let _ = finish(&mock, run);
    entries(&seen)
}

#[test]
fn hooks_see_failed_after_an_error_and_being_cancelled_after_a_cancel_only() {
    let body = ("body", false, false);
    assert_eq!(
        flags_seen_by_hooks("completed"),
        [body, body, ("after", false, false)]
    );
    assert_eq!(
        flags_seen_by_hooks("stopped"),
        [body, ("after", false, false)]
    );
    assert_eq!(
        flags_seen_by_hooks("cancelled"),
        [body, ("after", false, true)]
    );
    assert_eq!(
        flags_seen_by_hooks("failed"),
        [body, ("on_error", true, false), ("after", true, false)]
    );
}

/// The error-level events logged while a loop named `name` fails with
/// "fatal: boom", with or without a custom `on_error`.
fn error_events(name: &'static str, custom_on_error: bool) -> Vec<String> {
    let (mock, rt, t0) = setup();
    let rec = Recorder::new(&rt, t0);
    let mut builder = Loop::builder(&rt, name, after(secs(10)));
    if custom_on_error {
        builder = rec.hooks(builder);
    }
    let lp = builder.build(failing_body(&rec, |_| Some(fatal("boom"))));
    let run = lp.start().unwrap();
    let (end, events) = crate::test_kit::log_capture::capture(|| finish(&mock, run));
    assert!(end.is_err());
    assert!(lp.failed());
    events
        .into_iter()
        .filter(|e| e.level == tracing::Level::ERROR)
        .map(|e| e.text())
        .collect()
}

#[test]
fn the_default_on_error_is_a_tracing_error_event() {
    let events = error_events("reporter", false);
    assert_eq!(events.len(), 1, "{events:?}");
    let text = &events[0];
    assert!(
        text.contains("message=loop ended with an error; "),
        "{text}"
    );
    assert!(text.contains("loop=reporter; "), "{text}");
    assert!(text.contains("error=fatal: boom; "), "{text}");
}

#[test]
fn a_custom_on_error_replaces_the_default_event() {
    assert_eq!(error_events("quiet", true), Vec::<String>::new());
}
