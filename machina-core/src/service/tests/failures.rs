//! Failure paths of the supervisor and the entrypoint: panics, stop
//! reasons, stop errors, forced exits that keep their report, background
//! tasks awaited on stop, a start interrupted by a signal.

use futures::channel::mpsc;

use super::*;

/// Does what its closures say, and records every stop with its reason.
pub(super) struct Probe {
    pub(super) name: &'static str,
    pub(super) log: Log,
    pub(super) start: fn(ServiceContext, Runtime) -> ServiceFuture,
    pub(super) stop: fn(Runtime) -> ServiceFuture,
    pub(super) rt: Runtime,
}

impl Probe {
    pub(super) fn new(name: &'static str, rt: &Runtime, log: &Log) -> Self {
        Probe {
            name,
            log: log.clone(),
            start: |_, _| Box::pin(async { Ok(()) }),
            stop: |_| Box::pin(async { Ok(()) }),
            rt: rt.clone(),
        }
    }
}

impl Service for Probe {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        (self.start)(ctx, self.rt.clone())
    }

    fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
        let reason = ctx.reason().clone();
        self.log
            .lock()
            .unwrap()
            .push(format!("stop {} {reason:?}", self.name));
        (self.stop)(self.rt.clone())
    }
}

/// A `Probe` stop that hangs for an hour.
pub(super) fn stop_hangs(rt: Runtime) -> ServiceFuture {
    Box::pin(async move {
        rt.sleep(Duration::from_secs(3600)).await;
        Ok(())
    })
}

pub(super) fn signals() -> (mpsc::UnboundedSender<()>, Signals) {
    let (tx, rx) = mpsc::unbounded::<()>();
    (tx, Box::pin(rx))
}

/// Sends a shutdown request at each of `at` (virtual milliseconds).
pub(super) fn signal_at(rt: &Runtime, tx: mpsc::UnboundedSender<()>, at: &'static [u64]) {
    let rt2 = rt.clone();
    rt.spawn(async move {
        let t0 = rt2.now();
        for &ms_at in at {
            rt2.sleep_until(t0 + ms(ms_at)).await;
            let _ = tx.unbounded_send(());
        }
        std::future::pending::<()>().await;
    })
    .unwrap()
    .detach();
}

#[test]
fn a_panicking_start_is_a_failed_start_and_is_rolled_back() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let stack = Supervisor::builder(&rt)
        .service("db", Probe::new("db", &rt, &log), &[])
        .service(
            "api",
            Probe {
                start: |_, _| Box::pin(async { panic!("config missing") }),
                ..Probe::new("api", &rt, &log)
            },
            &["db"],
        )
        .build()
        .unwrap();
    let error = mock.block_on(stack.start()).unwrap().unwrap_err();
    assert_eq!(error.service, "api");
    assert!(
        error.error.to_string().contains("config missing"),
        "{error}"
    );
    assert_eq!(error.rolled_back, ["db"]);
    assert_eq!(
        entries(&log),
        ["stop db StartFailed { service: \"api\" }"],
        "the panicking service's own stop is not called"
    );
}

#[test]
fn a_panic_after_ready_and_a_panicking_background_task_bring_the_stack_down() {
    for panics_in_background in [false, true] {
        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let log: Log = Arc::default();
        let start: fn(ServiceContext, Runtime) -> ServiceFuture = if panics_in_background {
            |ctx, rt| {
                Box::pin(async move {
                    ctx.spawn(async move {
                        rt.sleep(ms(40)).await;
                        panic!("worker lost its mind")
                    });
                    Ok(())
                })
            }
        } else {
            |ctx, rt| {
                Box::pin(async move {
                    ctx.ready();
                    rt.sleep(ms(40)).await;
                    panic!("worker lost its mind")
                })
            }
        };
        let ep = Entrypoint::builder(&rt)
            .service("base", Probe::new("base", &rt, &log), &[])
            .service(
                "worker",
                Probe {
                    start,
                    ..Probe::new("worker", &rt, &log)
                },
                &["base"],
            )
            .build()
            .unwrap();
        let outcome = mock.block_on(ep.run_forever()).unwrap();
        assert_eq!(outcome.exit_code, 1, "background: {panics_in_background}");
        assert_eq!(mock.elapsed(), ms(40));
        assert_eq!(
            entries(&log),
            [
                "stop worker TaskFailed { service: \"worker\" }",
                "stop base TaskFailed { service: \"worker\" }",
            ]
        );
    }
}

#[test]
fn services_are_told_why_they_stop() {
    // The main future ends: Shutdown.
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let ep = Entrypoint::builder(&rt)
        .service("db", Probe::new("db", &rt, &log), &[])
        .build()
        .unwrap();
    assert_eq!(mock.block_on(ep.run(async {})).unwrap().exit_code, 0);
    assert_eq!(entries(&log), ["stop db Shutdown"]);

    // A signal: Signal.
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let (tx, rx) = signals();
    signal_at(&rt, tx, &[100]);
    let ep = Entrypoint::builder(&rt)
        .service("db", Probe::new("db", &rt, &log), &[])
        .signals(rx)
        .build()
        .unwrap();
    assert_eq!(mock.block_on(ep.run_forever()).unwrap().exit_code, 0);
    assert_eq!(entries(&log), ["stop db Signal"]);
    assert_eq!(mock.elapsed(), ms(100));
}

#[test]
fn stop_errors_and_panics_are_collected_logged_and_make_the_exit_code_1() {
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
        .service(
            "api",
            Probe {
                stop: |_| Box::pin(async { panic!("stop exploded") }),
                ..Probe::new("api", &rt, &log)
            },
            &["db"],
        )
        .service("web", Probe::new("web", &rt, &log), &["api"])
        .build()
        .unwrap();
    let outcome = mock.block_on(ep.run(async { 5 })).unwrap();
    assert_eq!((outcome.value, outcome.exit_code), (Some(5), 1));
    let report = &outcome.stop_report;
    assert_eq!(
        report.stopped,
        ["web", "api", "db"],
        "every service stopped"
    );
    let errors: Vec<(String, String)> = report
        .errors
        .iter()
        .map(|(s, e)| (s.clone(), e.to_string()))
        .collect();
    assert_eq!(
        errors,
        [
            ("api".to_owned(), "task panicked: stop exploded".to_owned()),
            ("db".to_owned(), "flush failed".to_owned()),
        ]
    );
    assert!(!report.is_clean());
}

#[test]
fn a_forced_exit_keeps_what_stopped_and_names_what_did_not() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let (tx, rx) = signals();
    // Graceful at 200 ms; forced at 220 ms, while "stuck" is stopping.
    signal_at(&rt, tx, &[200, 220]);
    let post_stop = Arc::new(Mutex::new(Vec::new()));
    let seen = post_stop.clone();
    let ep = Entrypoint::builder(&rt)
        .service("base", Probe::new("base", &rt, &log), &[])
        .service(
            "stuck",
            Probe {
                stop: stop_hangs,
                ..Probe::new("stuck", &rt, &log)
            },
            &["base"],
        )
        .service("fast", Probe::new("fast", &rt, &log), &["stuck"])
        .signals(rx)
        .shutdown_timeout(Duration::from_secs(60))
        .post_stop(move |hook| {
            let seen = seen.clone();
            async move { seen.lock().unwrap().extend(hook.services().to_vec()) }
        })
        .build()
        .unwrap();
    let outcome = mock.block_on(ep.run_forever()).unwrap();
    assert_eq!(outcome.exit_code, FORCED_EXIT_CODE);
    assert_eq!(mock.elapsed(), ms(220));
    assert_eq!(outcome.stop_report.stopped, ["fast"], "kept, not lost");
    assert_eq!(outcome.not_stopped, ["stuck", "base"], "the hung one first");
    assert_eq!(*post_stop.lock().unwrap(), ["fast"]);
}

#[test]
fn background_tasks_are_cancelled_and_awaited_before_stop_returns() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let dropped = Arc::new(AtomicBool::new(false));
    struct Holder(Arc<AtomicBool>);
    impl Service for Holder {
        fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
            let flag = DropFlag(self.0.clone());
            ctx.spawn(async move {
                let _flag = flag;
                std::future::pending::<()>().await;
                Ok(())
            });
            Box::pin(async { Ok(()) })
        }
    }
    let stack = Supervisor::builder(&rt)
        .service("holder", Holder(dropped.clone()), &[])
        .build()
        .unwrap();
    let dropped_when_stopped = mock
        .block_on(async {
            stack.start().await.unwrap();
            assert!(!dropped.load(Ordering::SeqCst));
            stack.stop().await;
            dropped.load(Ordering::SeqCst)
        })
        .unwrap();
    assert!(dropped_when_stopped, "the task was gone when stop returned");
}

#[test]
fn a_signal_during_the_start_interrupts_it() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let (tx, rx) = signals();
    signal_at(&rt, tx, &[100]);
    let slow = Scripted {
        start_ms: 3_600_000,
        ..Scripted::new("slow", &rt, &log)
    };
    let slow_dropped = slow.dropped.clone();
    let ep = super::entrypoint::hooks(Entrypoint::builder(&rt), &log)
        .service("db", Probe::new("db", &rt, &log), &[])
        .service("slow", slow, &["db"])
        .service("api", Probe::new("api", &rt, &log), &["slow"])
        .signals(rx)
        .build()
        .unwrap();
    let outcome = mock.block_on(ep.run_forever()).unwrap();
    assert_eq!(outcome.exit_code, 0);
    assert_eq!(mock.elapsed(), ms(100), "no wait for the slow start");
    assert!(
        slow_dropped.load(Ordering::SeqCst),
        "its start was cancelled"
    );
    assert_eq!(outcome.stop_report.stopped, ["db"]);
    assert_eq!(
        entries(&log),
        [
            "pre_start [\"db\", \"slow\", \"api\"]",
            "starting slow",
            "stop db Signal",
            "post_stop [\"db\"]",
        ]
    );
}

#[test]
fn a_sibling_that_was_ready_is_stopped_when_another_fails() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let quick = Scripted {
        start_ms: 10,
        ..Scripted::new("quick", &rt, &log)
    };
    let slow = Scripted {
        start_ms: 500,
        ..Scripted::new("slow", &rt, &log)
    };
    let slow_dropped = slow.dropped.clone();
    let bad = Scripted {
        start_ms: 50,
        fail_start: true,
        ..Scripted::new("bad", &rt, &log)
    };
    let stack = Supervisor::builder(&rt)
        .stages(vec![vec![
            ("quick", Arc::new(quick) as Arc<dyn Service>),
            ("slow", Arc::new(slow)),
            ("bad", Arc::new(bad)),
        ]])
        .build()
        .unwrap();
    let error = mock.block_on(stack.start()).unwrap().unwrap_err();
    assert_eq!(error.service, "bad");
    assert_eq!(error.rolled_back, ["quick"]);
    assert!(slow_dropped.load(Ordering::SeqCst));
    assert_eq!(mock.elapsed(), ms(50));
    let log = entries(&log);
    assert!(log.contains(&"stopped quick".to_owned()), "{log:?}");
    assert!(
        !log.iter()
            .any(|e| e == "stopped bad" || e == "stopped slow")
    );
}

#[test]
fn stages_start_in_sequence_and_in_parallel_within_a_stage() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let at = |name, ms_| -> Arc<dyn Service> {
        Arc::new(Scripted {
            start_ms: ms_,
            ..Scripted::new(name, &rt, &log)
        })
    };
    let stack = Supervisor::builder(&rt)
        .stages(vec![
            vec![("db", at("db", 30)), ("queue", at("queue", 10))],
            vec![("api", at("api", 5))],
        ])
        .build()
        .unwrap();
    mock.block_on(async {
        let t0 = rt.now();
        stack.start().await.unwrap();
        assert_eq!(rt.now() - t0, ms(35), "30 ms stage, then 5 ms");
        stack.stop().await
    })
    .unwrap();
    assert_eq!(
        entries(&log),
        [
            "starting db",
            "starting queue",
            "ready queue",
            "ready db",
            "starting api",
            "ready api",
            "stopped api",
            "stopped db",
            "stopped queue",
        ]
    );
}

#[test]
fn hooks_see_the_shared_context_and_the_supervisor() {
    const PORT: Key<u16> = Key::new("port");
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let seen = log.clone();
    let ep = Entrypoint::builder(&rt)
        .service(
            "web",
            Probe {
                start: |ctx, _| {
                    Box::pin(async move {
                        ctx.context().set(PORT, 8080);
                        Ok(())
                    })
                },
                ..Probe::new("web", &rt, &log)
            },
            &[],
        )
        .post_start(move |hook| {
            let seen = seen.clone();
            async move {
                let port = hook.context().try_get(PORT).map(|p| *p);
                let running = hook.supervisor().running_services();
                seen.lock()
                    .unwrap()
                    .push(format!("port {port:?} running {running:?}"));
            }
        })
        .build()
        .unwrap();
    mock.block_on(ep.run(async {})).unwrap();
    assert_eq!(
        entries(&log),
        ["port Some(8080) running [\"web\"]", "stop web Shutdown"]
    );
}
