//! The `Loop` engine on every runtime from one body each: count, hooks and
//! their order, stop during a sleep, cancel during a body, restart,
//! reconnection after a handled error, and `change_interval`. Exact
//! instants on the mock runtime, coarse ones elsewhere.

#[path = "../support/mod.rs"]
mod support;

use machina_test::cross_runtime;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use machina_core::loops::{Loop, LoopEnd, LoopError};
use machina_core::rt::{MissedTick, Runtime};
use machina_core::schedule::Schedule;
use support::{Log, entries, log, push};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A loop whose hooks record themselves in `events`.
fn recorded(rt: &Runtime, schedule: Schedule, events: &Log) -> machina_core::loops::LoopBuilder {
    let (before, after, error) = (events.clone(), events.clone(), events.clone());
    Loop::builder(rt, "recorded", schedule)
        .before_loop(move |_| {
            let e = before.clone();
            async move { push(&e, "before") }
        })
        .after_loop(move |lp: Loop| {
            let e = after.clone();
            async move {
                push(
                    &e,
                    if lp.is_being_cancelled() {
                        "after (cancelled)"
                    } else {
                        "after"
                    },
                );
            }
        })
        .on_error(move |_, err| {
            let e = error.clone();
            async move { push(&e, format!("error: {err}")) }
        })
}

cross_runtime! {
    /// `count` runs, with `current_loop` counting up and back to 0.
    async fn count_runs_then_ends(rt: Runtime, env: Env) {
        let events = log();
        let e = events.clone();
        let lp = recorded(&rt, Schedule::after("20ms").unwrap(), &events)
            .count(3)
            .build(move |lp: Loop| {
                let e = e.clone();
                async move { push(&e, format!("body {}", lp.current_loop())) }
            });
        assert_eq!(lp.next_iteration(), None);
        let start = rt.now();
        let end = lp.start().unwrap().await.unwrap().unwrap();
        assert_eq!(end, LoopEnd::Completed);
        env.assert_elapsed(rt.now() - start, ms(40));
        assert_eq!(entries(&events), ["before", "body 0", "body 1", "body 2", "after"]);
        assert_eq!(lp.current_loop(), 0);
        assert_eq!(lp.next_iteration(), None);
        assert!(!lp.is_running());

        let none = Loop::builder(&rt, "none", Schedule::after("1s").unwrap())
            .count(0)
            .build(|_lp: Loop| async {
                if true {
                    panic!("no iteration expected");
                }
            });
        assert_eq!(none.start().unwrap().await.unwrap().unwrap(), LoopEnd::Completed);
    }

    /// A stop during the sleep ends the loop at once, without another run;
    /// start while running is refused.
    async fn stop_during_the_sleep_ends_at_once(rt: Runtime, env: Env) {
        let events = log();
        let e = events.clone();
        let lp = recorded(&rt, Schedule::fixed_rate("10s", MissedTick::Burst).unwrap(), &events)
            .build(move |_lp: Loop| {
                let e = e.clone();
                async move { push(&e, "body") }
            });
        let run = lp.start().unwrap();
        assert!(matches!(lp.start(), Err(LoopError::AlreadyRunning { .. })));
        rt.sleep(ms(30)).await;
        assert!(lp.next_iteration().is_some());
        let start = rt.now();
        lp.stop();
        assert_eq!(lp.next_iteration(), None);
        assert_eq!(run.await.unwrap().unwrap(), LoopEnd::Stopped);
        env.assert_about(rt.now() - start, ms(0), ms(200));
        assert_eq!(entries(&events), ["before", "body", "after"]);
    }

    /// Cancel drops the running body and runs after_loop with
    /// is_being_cancelled; restart then starts a fresh run.
    async fn cancel_drops_the_body_and_restart_starts_again(rt: Runtime, env: Env) {
        let events = log();
        let dropped = Arc::new(AtomicBool::new(false));
        let (e, d) = (events.clone(), dropped.clone());
        let lp = recorded(&rt, Schedule::after("1ms").unwrap(), &events)
            .build(move |lp: Loop| {
                let (e, d) = (e.clone(), d.clone());
                async move {
                    struct OnDrop(Arc<AtomicBool>);
                    impl Drop for OnDrop {
                        fn drop(&mut self) {
                            self.0.store(true, Ordering::SeqCst);
                        }
                    }
                    let _guard = OnDrop(d);
                    push(&e, "body");
                    lp.runtime().sleep(Duration::from_secs(3600)).await;
                    push(&e, "body finished");
                }
            });
        let run = lp.start().unwrap();
        rt.sleep(ms(20)).await;
        lp.cancel();
        assert_eq!(run.await.unwrap().unwrap(), LoopEnd::Cancelled);
        assert!(dropped.load(Ordering::SeqCst));
        assert!(!lp.is_being_cancelled());
        assert_eq!(entries(&events), ["before", "body", "after (cancelled)"]);

        events.lock().unwrap().clear();
        let rerun = lp.restart().await.unwrap();
        rt.sleep(ms(20)).await;
        assert!(lp.is_running());
        let again = lp.restart().await.unwrap();
        assert_eq!(rerun.await.unwrap().unwrap(), LoopEnd::Cancelled);
        rt.sleep(ms(20)).await;
        lp.cancel();
        assert_eq!(again.await.unwrap().unwrap(), LoopEnd::Cancelled);
        assert_eq!(
            entries(&events),
            ["before", "body", "after (cancelled)", "before", "body", "after (cancelled)"]
        );
    }

    /// A handled error is retried without counting; an unhandled one ends
    /// the loop: failed, on_error, after_loop.
    async fn handled_errors_retry_and_others_end_the_loop(rt: Runtime, env: Env) {
        let attempts = Arc::new(AtomicU32::new(0));
        let a = attempts.clone();
        let flaky = Loop::builder(&rt, "flaky", Schedule::after("1ms").unwrap())
            .count(2)
            .reconnect_base(ms(5))
            .build(move |_lp: Loop| {
                let a = a.clone();
                async move {
                    if a.fetch_add(1, Ordering::SeqCst) == 0 {
                        Err(std::io::Error::other("connection reset"))
                    } else {
                        Ok(())
                    }
                }
            });
        assert_eq!(flaky.start().unwrap().await.unwrap().unwrap(), LoopEnd::Completed);
        assert_eq!(attempts.load(Ordering::SeqCst), 3, "one retry, two counted runs");
        assert!(!flaky.failed());

        let events = log();
        let broken = recorded(&rt, Schedule::after("1ms").unwrap(), &events)
            .build(|_lp: Loop| async { Err::<(), _>(std::fmt::Error) });
        let err = broken.start().unwrap().await.unwrap().unwrap_err();
        assert_eq!(err.to_string(), "an error occurred when formatting an argument");
        assert!(broken.failed());
        assert_eq!(
            entries(&events),
            ["before", "error: an error occurred when formatting an argument", "after"]
        );
    }

    /// change_interval reschedules a sleep in progress.
    async fn change_interval_reschedules_the_sleep(rt: Runtime, env: Env) {
        let starts = log();
        let s = starts.clone();
        let t0 = rt.now();
        let lp = Loop::builder(&rt, "adjustable", Schedule::fixed_rate("10s", MissedTick::Burst).unwrap())
            .count(2)
            .build(move |lp: Loop| {
                let s = s.clone();
                async move { push(&s, format!("{}", (lp.runtime().now() - t0).as_millis() / 10)) }
            });
        let run = lp.start().unwrap();
        rt.sleep(ms(20)).await;
        assert!(lp.change_interval("1x").is_err());
        lp.change_interval(ms(50)).unwrap();
        assert_eq!(run.await.unwrap().unwrap(), LoopEnd::Completed);
        env.assert_about(rt.now() - t0, ms(50), ms(200));
        if env.is_virtual() {
            assert_eq!(entries(&starts), ["0", "5"]);
        }
        assert_eq!(lp.schedule().interval(), ms(50));
    }
}
