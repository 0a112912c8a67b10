//! Work cut short: dynamic starts and stops whose futures are dropped, a
//! failed start's background tasks, a loop whose service stop timed out,
//! concurrent stops, a rollback bounded by the shutdown timeout, panics in
//! the main future and in hooks.

use super::failures::{Probe, signal_at, signals, stop_hangs};
use super::*;

/// Holds a `DropFlag` in a background task that never ends; its start
/// takes `start_ms`, and fails if `fail` (after spawning the task).
pub(super) struct Holder {
    pub(super) rt: Runtime,
    pub(super) flag: Arc<AtomicBool>,
    pub(super) start_ms: u64,
    pub(super) fail: bool,
    pub(super) stop_ms: u64,
}

impl Holder {
    pub(super) fn new(rt: &Runtime) -> (Self, Arc<AtomicBool>) {
        let flag = Arc::new(AtomicBool::new(false));
        let holder = Holder {
            rt: rt.clone(),
            flag: flag.clone(),
            start_ms: 0,
            fail: false,
            stop_ms: 0,
        };
        (holder, flag)
    }
}

impl Service for Holder {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let flag = DropFlag(self.flag.clone());
            ctx.spawn(async move {
                let _flag = flag;
                std::future::pending::<()>().await;
                Ok(())
            });
            self.rt.sleep(ms(self.start_ms)).await;
            if self.fail {
                return Err("cannot start".into());
            }
            Ok(())
        })
    }

    fn stop(self: Arc<Self>, _ctx: StopContext) -> ServiceFuture {
        Box::pin(async move {
            self.rt.sleep(ms(self.stop_ms)).await;
            Ok(())
        })
    }
}

#[test]
fn a_failed_start_cancels_the_tasks_the_failing_service_spawned() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let (holder, flag) = Holder::new(&rt);
    let stack = Supervisor::builder(&rt)
        .service(
            "bad",
            Holder {
                fail: true,
                ..holder
            },
            &[],
        )
        .build()
        .unwrap();
    let cancelled = mock
        .block_on(async {
            assert!(stack.start().await.is_err());
            flag.load(Ordering::SeqCst)
        })
        .unwrap();
    assert!(cancelled, "its task was gone when start returned");
}

#[test]
fn an_abandoned_dynamic_stop_aborts_the_service_and_forgets_it() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let stack = Supervisor::builder(&rt).build().unwrap();
    let (holder, flag) = Holder::new(&rt);
    mock.block_on(async {
        stack
            .start_service(
                "jobs",
                Holder {
                    stop_ms: 10_000,
                    ..holder
                },
                &[],
            )
            .await
            .unwrap();
        // The stop hangs; its future is dropped after 10 ms.
        assert!(
            rt.timeout(ms(10), stack.stop_service("jobs"))
                .await
                .is_err()
        );
    })
    .unwrap();
    mock.run_until_stalled().unwrap();
    assert!(
        flag.load(Ordering::SeqCst),
        "the background task was aborted"
    );
    assert!(stack.not_stopped().is_empty(), "{:?}", stack.not_stopped());
    let (again, _) = Holder::new(&rt);
    mock.block_on(async { stack.start_service("jobs", again, &[]).await })
        .unwrap()
        .expect("the name is free again");
}

#[test]
fn an_abandoned_dynamic_start_aborts_the_start_and_forgets_the_service() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let stack = Supervisor::builder(&rt).build().unwrap();
    let (holder, flag) = Holder::new(&rt);
    mock.block_on(async {
        let slow = Holder {
            start_ms: 10_000,
            ..holder
        };
        assert!(
            rt.timeout(ms(10), stack.start_service("slow", slow, &[]))
                .await
                .is_err()
        );
    })
    .unwrap();
    mock.run_until_stalled().unwrap();
    assert!(
        flag.load(Ordering::SeqCst),
        "its start and task were aborted"
    );
    assert!(stack.running_services().is_empty());
    let (again, _) = Holder::new(&rt);
    mock.block_on(async { stack.start_service("slow", again, &[]).await })
        .unwrap()
        .expect("the name is free again");
}

#[test]
fn a_full_stop_waits_for_a_dynamic_stop_under_way() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let stack = Arc::new(
        Supervisor::builder(&rt)
            .service("db", Scripted::new("db", &rt, &log), &[])
            .build()
            .unwrap(),
    );
    let slow_cache = Scripted {
        stop_ms: 40,
        ..Scripted::new("cache", &rt, &log)
    };
    mock.block_on(async {
        stack.start().await.unwrap();
        stack
            .start_service("cache", slow_cache, &["db"])
            .await
            .unwrap();
        let dynamic = {
            let stack = stack.clone();
            rt.spawn(async move { stack.stop_service("cache").await.map(|r| r.stopped) })
                .unwrap()
        };
        rt.sleep(ms(1)).await;
        let full = stack.stop().await;
        assert_eq!(full.stopped, ["db"]);
        assert_eq!(dynamic.await.unwrap().unwrap(), ["cache"]);
    })
    .unwrap();
    let log = entries(&log);
    let at = |e: &str| log.iter().position(|l| l == e).unwrap();
    assert!(at("stopped cache") < at("stopped db"), "{log:?}");
}

#[test]
fn a_removed_dependency_fails_its_dependent_instead_of_panicking() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let slow_b = Scripted {
        start_ms: 10_000,
        ..Scripted::new("b", &rt, &log)
    };
    let stack = Supervisor::builder(&rt)
        .service("a", Scripted::new("a", &rt, &log), &[])
        .service("b", slow_b, &["a"])
        .build()
        .unwrap();
    let error = mock
        .block_on(async {
            let interrupted = stack.start_until(rt.sleep(ms(10))).await.unwrap();
            assert_eq!(interrupted, StartOutcome::Interrupted);
            stack.stop_service("a").await.unwrap();
            stack.start().await.unwrap_err()
        })
        .unwrap();
    assert_eq!(error.service, "b");
    assert!(
        error.error.to_string().contains("\"a\" was removed"),
        "{error}"
    );
}

#[test]
fn a_stop_past_its_timeout_does_not_leave_a_periodic_loop_running() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let runs = Arc::new(Mutex::new((0u32, 0u32)));
    let (count, clock) = (runs.clone(), rt.clone());
    // Each run takes an hour; the stop waits for the run in progress, past
    // the 50 ms stop timeout: then the run is cancelled with the service.
    let service = PeriodicService::new("long", Duration::from_secs(1), move || {
        let (count, clock) = (count.clone(), clock.clone());
        async move {
            count.lock().unwrap().0 += 1;
            clock.sleep(Duration::from_secs(3600)).await;
            count.lock().unwrap().1 += 1;
            Ok::<(), crate::error::BoxError>(())
        }
    })
    .unwrap();
    let stack = Supervisor::builder(&rt)
        .service("long", service, &[])
        .stop_timeout(ms(50))
        .build()
        .unwrap();
    let report = mock
        .block_on(async {
            stack.start().await.unwrap();
            rt.sleep(ms(10)).await;
            stack.stop().await
        })
        .unwrap();
    assert_eq!(report.timed_out, ["long"]);
    mock.advance(Duration::from_secs(3 * 3600)).unwrap();
    assert_eq!(*runs.lock().unwrap(), (1, 0), "cancelled, and no run after");
    assert_eq!(mock.pending_timers(), 0, "the loop is gone");
}

#[test]
fn a_recurring_wait_of_duration_max_means_until_stopped() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let runs = Arc::new(AtomicBool::new(false));
    let ran = runs.clone();
    let service = RecurringService::new(
        "idle",
        |_| async { Strategy::Run(Duration::MAX) },
        move || {
            ran.store(true, Ordering::SeqCst);
            async { Ok::<(), crate::error::BoxError>(()) }
        },
    );
    let stack = Supervisor::builder(&rt)
        .service("idle", service, &[])
        .build()
        .unwrap();
    mock.block_on(async { stack.start().await.unwrap() })
        .unwrap();
    mock.advance(Duration::from_secs(86_400)).unwrap();
    assert!(!runs.load(Ordering::SeqCst), "still waiting");
    let failure = mock.block_on(rt.timeout(ms(1), stack.failure())).unwrap();
    assert!(failure.is_err(), "no failure: {failure:?}");
    let report = mock.block_on(async { stack.stop().await }).unwrap();
    assert_eq!(report.stopped, ["idle"]);
    assert!(report.is_clean());
}

/// `db`, whose stop hangs for an hour, and `api` on it, whose start fails
/// after 20 ms.
fn failing_over_a_hanging_stop(rt: &Runtime, log: &Log) -> EntrypointBuilder {
    Entrypoint::builder(rt)
        .service(
            "db",
            Probe {
                stop: stop_hangs,
                ..Probe::new("db", rt, log)
            },
            &[],
        )
        .service(
            "api",
            Probe {
                start: |_, rt| {
                    Box::pin(async move {
                        rt.sleep(ms(20)).await;
                        Err("no config".into())
                    })
                },
                ..Probe::new("api", rt, log)
            },
            &["db"],
        )
}

#[test]
fn the_rollback_of_a_failed_start_is_bounded_by_the_shutdown_timeout() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let ep = failing_over_a_hanging_stop(&rt, &log)
        .shutdown_timeout(ms(30))
        .build()
        .unwrap();
    let outcome = mock.block_on(ep.run_forever()).unwrap();
    assert_eq!(outcome.exit_code, FORCED_EXIT_CODE);
    assert_eq!(
        mock.elapsed(),
        ms(50),
        "20 ms start, then 30 ms of rollback"
    );
    assert_eq!(outcome.not_stopped, ["db"]);
    assert_eq!(entries(&log), ["stop db StartFailed { service: \"api\" }"]);

    // A signal during the rollback cuts it short too.
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let (tx, rx) = signals();
    signal_at(&rt, tx, &[25]);
    let ep = failing_over_a_hanging_stop(&rt, &log)
        .signals(rx)
        .build()
        .unwrap();
    let outcome = mock.block_on(ep.run_forever()).unwrap();
    assert_eq!(outcome.exit_code, FORCED_EXIT_CODE);
    assert_eq!(mock.elapsed(), ms(25));
}

#[test]
fn a_panicking_main_future_or_hook_still_stops_the_services() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let seen = log.clone();
    let ep = Entrypoint::builder(&rt)
        .service("db", Probe::new("db", &rt, &log), &[])
        .post_start(|_| async { panic!("hook bug") })
        .post_stop(move |hook| {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push(format!("post_stop {:?}", hook.services()))
            }
        })
        .build()
        .unwrap();
    let outcome = mock
        .block_on(ep.run(async {
            panic!("main bug");
        }))
        .unwrap();
    assert_eq!((outcome.value, outcome.exit_code), (None, 1));
    assert_eq!(
        entries(&log),
        ["stop db Shutdown", "post_stop [\"db\"]"],
        "the hook's panic did not stop the run; main's stopped the services"
    );
}
