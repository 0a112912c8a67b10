//! Shutdown edges: failures of a service that is being stopped, changes
//! refused while the stack closes, hooks bounded by the shutdown timeout,
//! a background failure during the start, restarting tasks awaited, what
//! a forced exit aborts, and the outcome's record of the failure.

use futures::channel::oneshot;

use super::abandoned::Holder;
use super::failures::{Probe, signal_at, signals, stop_hangs};
use super::*;

/// Its background task ends with an error as soon as the service's stop
/// closes the channel it listens on (and the stop waits a little, so the
/// task sees it before being cancelled).
struct Listener {
    rt: Runtime,
    close: Mutex<Option<oneshot::Sender<()>>>,
}

impl Service for Listener {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        let (tx, rx) = oneshot::channel::<()>();
        *self.close.lock().unwrap() = Some(tx);
        ctx.spawn(async move {
            let _ = rx.await;
            Err("connection closed".into())
        });
        Box::pin(async { Ok(()) })
    }

    fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
        let reason = ctx.reason().clone();
        assert_eq!(reason, StopReason::Removed);
        drop(self.close.lock().unwrap().take());
        Box::pin(async move {
            self.rt.sleep(ms(5)).await;
            Ok(())
        })
    }
}

#[test]
fn a_task_failing_because_its_service_stops_is_not_a_failure_of_the_stack() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let stack = Supervisor::builder(&rt).build().unwrap();
    let failure = mock
        .block_on(async {
            let listener = Listener {
                rt: rt.clone(),
                close: Mutex::new(None),
            };
            stack
                .start_service("listener", listener, &[])
                .await
                .unwrap();
            let report = stack.stop_service("listener").await.unwrap();
            assert_eq!(report.stopped, ["listener"]);
            assert!(report.is_clean(), "told StopReason::Removed: {report:?}");
            rt.timeout(ms(1), stack.failure()).await
        })
        .unwrap();
    assert!(failure.is_err(), "no failure reported: {failure:?}");
}

#[test]
fn changes_are_refused_while_the_stack_closes_or_a_dependent_is_starting() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let stack = Arc::new(
        Supervisor::builder(&rt)
            .service("db", Scripted::new("db", &rt, &log), &[])
            .build()
            .unwrap(),
    );
    mock.block_on(async {
        stack.start().await.unwrap();
        // "api" needs "db" and takes 50 ms to start: "db" cannot go now.
        let slow_api = Scripted {
            start_ms: 50,
            ..Scripted::new("api", &rt, &log)
        };
        let starting = {
            let stack = stack.clone();
            rt.spawn(async move { stack.start_service("api", slow_api, &["db"]).await })
                .unwrap()
        };
        rt.sleep(ms(10)).await;
        let refused = stack.stop_service("db").await.unwrap_err();
        assert!(
            matches!(&refused, ChangeError::Needed { dependents, .. } if dependents == &["api"]),
            "{refused}"
        );
        starting.await.unwrap().unwrap();
        stack.stop().await;
        // Closed: nothing is added any more.
        let late = stack
            .start_service("late", Scripted::new("late", &rt, &log), &[])
            .await
            .unwrap_err();
        assert!(matches!(late, ChangeError::ShuttingDown(_)), "{late}");
        assert!(stack.running_services().is_empty());
    })
    .unwrap();
}

#[test]
fn an_empty_stage_does_not_merge_its_neighbours() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let at = |name, start_ms| -> Arc<dyn Service> {
        Arc::new(Scripted {
            start_ms,
            ..Scripted::new(name, &rt, &log)
        })
    };
    let stack = Supervisor::builder(&rt)
        .stages(vec![
            vec![("db", at("db", 30))],
            vec![],
            vec![("api", at("api", 5))],
        ])
        .build()
        .unwrap();
    mock.block_on(async { stack.start().await.unwrap() })
        .unwrap();
    assert_eq!(
        entries(&log),
        ["starting db", "ready db", "starting api", "ready api"]
    );
}

#[test]
fn hanging_hooks_are_bounded_by_the_shutdown_timeout() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let hang = rt.clone();
    let ep = Entrypoint::builder(&rt)
        .service("db", Probe::new("db", &rt, &log), &[])
        .pre_stop(move |_| {
            let hang = hang.clone();
            async move { hang.sleep(Duration::from_secs(3600)).await }
        })
        .shutdown_timeout(ms(40))
        .build()
        .unwrap();
    let outcome = mock.block_on(ep.run(async {})).unwrap();
    assert_eq!(outcome.exit_code, FORCED_EXIT_CODE);
    assert_eq!(mock.elapsed(), ms(40));
    assert_eq!(outcome.not_stopped, ["db"]);
}

#[test]
fn a_background_failure_during_the_start_interrupts_it() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let slow = Scripted {
        start_ms: 3_600_000,
        ..Scripted::new("slow", &rt, &log)
    };
    let flaky = Scripted {
        background_fails_at: Some(30),
        ..Scripted::new("flaky", &rt, &log)
    };
    let ep = Entrypoint::builder(&rt)
        .service("flaky", flaky, &[])
        .service("slow", slow, &["flaky"])
        .build()
        .unwrap();
    let outcome = mock.block_on(ep.run_forever()).unwrap();
    assert_eq!(outcome.exit_code, 1);
    assert_eq!(mock.elapsed(), ms(30), "no wait for the slow start");
    let (service, error) = outcome.failure.expect("the failure is kept");
    assert_eq!(service, "flaky");
    assert_eq!(error.to_string(), "background job died");
    assert_eq!(outcome.stop_report.stopped, ["flaky"]);
}

#[test]
fn the_outcome_keeps_a_failed_start_and_a_main_panic() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let ep = Entrypoint::builder(&rt)
        .service(
            "api",
            Scripted {
                fail_start: true,
                ..Scripted::new("api", &rt, &log)
            },
            &[],
        )
        .build()
        .unwrap();
    let outcome = mock.block_on(ep.run(async {})).unwrap();
    let (service, error) = outcome.failure.unwrap();
    assert_eq!((service.as_str(), outcome.exit_code), ("api", 1));
    assert_eq!(error.to_string(), "api cannot start");

    let ep = Entrypoint::builder(&rt).build().unwrap();
    let outcome = mock.block_on(ep.run(async { panic!("main bug") })).unwrap();
    let (service, error) = outcome.failure.unwrap();
    assert_eq!(service, "main");
    assert!(error.to_string().contains("main bug"), "{error}");

    let ep = Entrypoint::builder(&rt).build().unwrap();
    let outcome = mock.block_on(ep.run(async { 3 })).unwrap();
    assert!(outcome.failure.is_none());
    assert_eq!((outcome.value, outcome.exit_code), (Some(3), 0));
}

#[test]
fn a_restarting_task_is_cancelled_and_awaited_with_its_service() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    struct Restarting(Arc<AtomicBool>);
    impl Service for Restarting {
        fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
            let flag = self.0.clone();
            ctx.spawn_restarting(RestartPolicy::default(), move || {
                let flag = DropFlag(flag.clone());
                async move {
                    let _flag = flag;
                    std::future::pending::<()>().await;
                    Ok(())
                }
            });
            Box::pin(async { Ok(()) })
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let stack = Supervisor::builder(&rt)
        .service("jobs", Restarting(dropped.clone()), &[])
        .build()
        .unwrap();
    let when_stopped = mock
        .block_on(async {
            stack.start().await.unwrap();
            stack.stop().await;
            dropped.load(Ordering::SeqCst)
        })
        .unwrap();
    assert!(when_stopped, "the run was gone when stop returned");
}

#[test]
fn a_forced_exit_aborts_what_the_services_not_reached_still_run() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let (base, base_task_dropped) = Holder::new(&rt);
    let (tx, rx) = signals();
    signal_at(&rt, tx, &[10, 20]);
    let ep = Entrypoint::builder(&rt)
        .service("base", base, &[])
        .service(
            "stuck",
            Probe {
                stop: stop_hangs,
                ..Probe::new("stuck", &rt, &log)
            },
            &["base"],
        )
        .signals(rx)
        .build()
        .unwrap();
    let outcome = mock.block_on(ep.run_forever()).unwrap();
    assert_eq!(outcome.exit_code, FORCED_EXIT_CODE);
    assert_eq!(outcome.not_stopped, ["stuck", "base"]);
    mock.run_until_stalled().unwrap();
    assert!(base_task_dropped.load(Ordering::SeqCst), "aborted");
}

#[test]
fn a_refused_start_through_the_entrypoint_fires_no_hook() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let ep = super::entrypoint::hooks(Entrypoint::builder(&rt), &log)
        .build()
        .unwrap();
    let control = ep.services();
    let rt2 = rt.clone();
    let log2 = log.clone();
    mock.block_on(ep.run(async move {
        let refused = control
            .start_service("api", Scripted::new("api", &rt2, &log2), &["db"])
            .await
            .unwrap_err();
        assert!(matches!(refused, ChangeError::Graph(_)), "{refused}");
    }))
    .unwrap();
    assert!(
        !entries(&log).iter().any(|e| e.contains("[\"api\"]")),
        "{:?}",
        entries(&log)
    );
}

/// Hangs for an hour in `what` (a hook) — for the bounded-phase tests.
fn hang(
    rt: &Runtime,
) -> impl Fn(HookContext) -> futures::future::BoxFuture<'static, ()> + Send + Sync + 'static {
    let rt = rt.clone();
    move |_| {
        let rt = rt.clone();
        Box::pin(async move { rt.sleep(Duration::from_secs(3600)).await })
    }
}

#[test]
fn a_hanging_post_stop_keeps_the_report_of_what_stopped() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let ep = Entrypoint::builder(&rt)
        .service(
            "db",
            Probe {
                stop: |_| Box::pin(async { Err("flush failed".into()) }),
                ..Probe::new("db", &rt, &log)
            },
            &[],
        )
        .post_stop(hang(&rt))
        .shutdown_timeout(ms(40))
        .build()
        .unwrap();
    let outcome = mock.block_on(ep.run(async {})).unwrap();
    // Every service stopped: not a forced exit; the stop error makes it 1.
    assert_eq!(outcome.exit_code, 1);
    assert_eq!(mock.elapsed(), ms(40), "post_stop is not run again");
    assert_eq!(outcome.stop_report.stopped, ["db"]);
    assert_eq!(outcome.stop_report.errors.len(), 1);
    assert!(outcome.not_stopped.is_empty());
}

#[test]
fn hanging_pre_start_and_post_start_hooks_yield_to_a_signal() {
    for hook_before_start in [true, false] {
        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let log: Log = Arc::default();
        let (tx, rx) = signals();
        signal_at(&rt, tx, &[100]);
        let builder = Entrypoint::builder(&rt)
            .service("db", Probe::new("db", &rt, &log), &[])
            .signals(rx);
        let builder = if hook_before_start {
            builder.pre_start(hang(&rt))
        } else {
            builder.post_start(hang(&rt))
        };
        let outcome = mock
            .block_on(builder.build().unwrap().run_forever())
            .unwrap();
        assert_eq!(outcome.exit_code, 0);
        assert_eq!(mock.elapsed(), ms(100));
        let stops: &[&str] = if hook_before_start {
            &[]
        } else {
            &["stop db Signal"]
        };
        assert_eq!(entries(&log), stops, "pre_start hook: {hook_before_start}");
    }
}

#[test]
fn a_dynamic_start_that_becomes_ready_during_a_full_stop_is_refused() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let stack = Arc::new(Supervisor::builder(&rt).build().unwrap());
    let (late, late_task_dropped) = Holder::new(&rt);
    let late = Holder {
        start_ms: 50,
        ..late
    };
    let outcome = mock
        .block_on(async {
            let starting = {
                let stack = stack.clone();
                rt.spawn(async move { stack.start_service("late", late, &[]).await })
                    .unwrap()
            };
            rt.sleep(ms(10)).await;
            let report = stack.stop().await;
            assert!(report.stopped.is_empty());
            starting.await.unwrap()
        })
        .unwrap();
    assert!(
        matches!(outcome, Err(ChangeError::ShuttingDown(_))),
        "{outcome:?}"
    );
    assert!(stack.running_services().is_empty(), "nothing left running");
    mock.run_until_stalled().unwrap();
    assert!(
        late_task_dropped.load(Ordering::SeqCst),
        "its task was cancelled"
    );
    let refused = mock
        .block_on(async { stack.stop_service("late").await })
        .unwrap()
        .unwrap_err();
    assert!(matches!(refused, ChangeError::ShuttingDown(_)), "{refused}");
    drop(log);
}

#[test]
fn a_background_failure_during_the_shutdown_is_reported() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    // "jobs" fails 30 ms in; the shutdown starts at 10 ms and spends 50 ms
    // stopping "api" first.
    let jobs = Scripted {
        background_fails_at: Some(30),
        ..Scripted::new("jobs", &rt, &log)
    };
    let api = Scripted {
        stop_ms: 50,
        ..Scripted::new("api", &rt, &log)
    };
    let ep = Entrypoint::builder(&rt)
        .service("jobs", jobs, &[])
        .service("api", api, &["jobs"])
        .shutdown_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let rt2 = rt.clone();
    let outcome = mock
        .block_on(ep.run(async move { rt2.sleep(ms(10)).await }))
        .unwrap();
    assert_eq!(outcome.exit_code, 1);
    let (service, error) = outcome.failure.expect("reported");
    assert_eq!(
        (service.as_str(), error.to_string().as_str()),
        ("jobs", "background job died")
    );
}

#[test]
fn a_hook_that_panics_before_returning_its_future_is_contained() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let ep = Entrypoint::builder(&rt)
        .service("db", Probe::new("db", &rt, &log), &[])
        .pre_stop(|hook| {
            assert!(hook.services().is_empty(), "a bug in the hook itself");
            async {}
        })
        .build()
        .unwrap();
    let outcome = mock.block_on(ep.run(async { 4 })).unwrap();
    assert_eq!((outcome.value, outcome.exit_code), (Some(4), 0));
    assert_eq!(
        entries(&log),
        ["stop db Shutdown"],
        "the services still stopped"
    );
}

#[test]
fn a_signal_that_comes_as_main_ends_is_not_a_second_one() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let (tx, rx) = signals();
    let slow_stop = Probe {
        stop: |rt| {
            Box::pin(async move {
                rt.sleep(ms(50)).await;
                Ok(())
            })
        },
        ..Probe::new("db", &rt, &log)
    };
    let ep = Entrypoint::builder(&rt)
        .service("db", slow_stop, &[])
        .signals(rx)
        .build()
        .unwrap();
    // Main ends on the same Ctrl+C the entrypoint's stream also receives.
    let outcome = mock
        .block_on(ep.run(async move {
            tx.unbounded_send(()).unwrap();
            std::mem::forget(tx);
            "done"
        }))
        .unwrap();
    assert_eq!((outcome.value, outcome.exit_code), (Some("done"), 0));
    assert_eq!(outcome.stop_report.stopped, ["db"]);
}
