//! The entrypoint on virtual time: hooks in order, signals, the shutdown
//! timeout, a failed start, a background failure.

use futures::channel::mpsc;

use super::*;

pub(super) fn hooks(builder: EntrypointBuilder, log: &Log) -> EntrypointBuilder {
    let (a, b, c, d) = (log.clone(), log.clone(), log.clone(), log.clone());
    builder
        .pre_start(move |s| {
            let log = a.clone();
            async move {
                log.lock()
                    .unwrap()
                    .push(format!("pre_start {:?}", s.services()))
            }
        })
        .post_start(move |s| {
            let log = b.clone();
            async move {
                log.lock()
                    .unwrap()
                    .push(format!("post_start {:?}", s.services()))
            }
        })
        .pre_stop(move |s| {
            let log = c.clone();
            async move {
                log.lock()
                    .unwrap()
                    .push(format!("pre_stop {:?}", s.services()))
            }
        })
        .post_stop(move |s| {
            let log = d.clone();
            async move {
                log.lock()
                    .unwrap()
                    .push(format!("post_stop {:?}", s.services()))
            }
        })
}

#[test]
fn main_ends_then_services_stop_with_hooks_in_order() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let ep = hooks(Entrypoint::builder(&rt), &log)
        .service("db", Scripted::new("db", &rt, &log), &[])
        .service("api", Scripted::new("api", &rt, &log), &["db"])
        .build()
        .unwrap();
    let rt2 = rt.clone();
    let outcome = mock
        .block_on(ep.run(async move {
            rt2.sleep(ms(100)).await;
            "main done"
        }))
        .unwrap();
    assert_eq!((outcome.value, outcome.exit_code), (Some("main done"), 0));
    assert_eq!(
        entries(&log),
        [
            "pre_start [\"db\", \"api\"]",
            "starting db",
            "ready db",
            "starting api",
            "ready api",
            "post_start [\"db\", \"api\"]",
            "pre_stop [\"db\", \"api\"]",
            "stopped api",
            "stopped db",
            "post_stop [\"api\", \"db\"]",
        ]
    );
}

#[test]
fn a_signal_stops_the_services_and_a_second_one_forces_the_exit() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let (tx, rx) = mpsc::unbounded::<()>();
    let ep = Entrypoint::builder(&rt)
        .service("fast", Scripted::new("fast", &rt, &log), &[])
        .service(
            "stuck",
            Scripted {
                stop_ms: 10_000,
                ..Scripted::new("stuck", &rt, &log)
            },
            &["fast"],
        )
        .shutdown_timeout(Duration::from_secs(60))
        .signals(Box::pin(rx))
        .build()
        .unwrap();
    let rt2 = rt.clone();
    let sender = rt
        .spawn(async move {
            rt2.sleep(ms(200)).await;
            tx.unbounded_send(()).unwrap(); // first: graceful
            rt2.sleep(ms(20)).await;
            tx.unbounded_send(()).unwrap(); // second: force
        })
        .unwrap();
    let outcome = mock.block_on(ep.run_forever()).unwrap();
    mock.block_on(sender).unwrap().unwrap();
    assert_eq!(outcome.exit_code, FORCED_EXIT_CODE);
    assert_eq!(
        outcome.not_stopped,
        ["stuck", "fast"],
        "stuck was being stopped; fast not yet"
    );
    assert_eq!(mock.elapsed(), ms(220));
}

#[test]
fn the_shutdown_timeout_forces_the_exit() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let ep = Entrypoint::builder(&rt)
        .service(
            "stuck",
            Scripted {
                stop_ms: 10_000,
                ..Scripted::new("stuck", &rt, &log)
            },
            &[],
        )
        .shutdown_timeout(ms(30))
        .build()
        .unwrap();
    let outcome = mock.block_on(ep.run(async {})).unwrap();
    assert_eq!(outcome.exit_code, FORCED_EXIT_CODE);
    assert_eq!(mock.elapsed(), ms(30));
}

#[test]
fn a_failed_start_runs_post_stop_with_what_was_rolled_back() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let ep = hooks(Entrypoint::builder(&rt), &log)
        .service("db", Scripted::new("db", &rt, &log), &[])
        .service(
            "api",
            Scripted {
                fail_start: true,
                ..Scripted::new("api", &rt, &log)
            },
            &["db"],
        )
        .build()
        .unwrap();
    let outcome = mock.block_on(ep.run(async { "never" })).unwrap();
    assert_eq!((outcome.value, outcome.exit_code), (None, 1));
    let log = entries(&log);
    assert!(
        !log.iter()
            .any(|e| e.starts_with("post_start") || e.starts_with("pre_stop"))
    );
    assert_eq!(log.last().unwrap(), "post_stop [\"db\"]");
}

#[test]
fn a_background_failure_stops_the_stack_with_exit_code_1() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let ep = Entrypoint::builder(&rt)
        .service(
            "jobs",
            Scripted {
                background_fails_at: Some(50),
                ..Scripted::new("jobs", &rt, &log)
            },
            &[],
        )
        .build()
        .unwrap();
    let outcome = mock.block_on(ep.run_forever()).unwrap();
    assert_eq!(outcome.exit_code, 1);
    assert_eq!(outcome.stop_report.stopped, ["jobs"]);
    assert_eq!(mock.elapsed(), ms(50));
}

/// Never finishes stopping.
struct StuckStop;

impl Service for StuckStop {
    fn start(self: Arc<Self>, _ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async { Ok(()) })
    }

    fn stop(self: Arc<Self>, _ctx: StopContext) -> ServiceFuture {
        Box::pin(std::future::pending())
    }

    fn graceful_shutdown_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(3600))
    }
}

#[test]
fn the_shutdown_timeout_handed_in_from_the_environment_wins_over_the_builder() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let env = EnvConfig::from_lookup(|name| {
        (name == EnvConfig::SHUTDOWN_TIMEOUT).then(|| "250ms".to_owned())
    });
    let ep = Entrypoint::builder(&rt)
        .shutdown_timeout(Duration::from_secs(10))
        .env(env)
        .service("stuck", StuckStop, &[])
        .build()
        .unwrap();
    let outcome = mock.block_on(ep.run(async {})).unwrap();
    assert_eq!(outcome.exit_code, FORCED_EXIT_CODE);
    assert_eq!(outcome.not_stopped, ["stuck"]);
    assert_eq!(outcome.stop_report.cut_short, Some(CutShort::Deadline));
    assert_eq!(mock.elapsed(), ms(250));
}

#[test]
fn without_settings_handed_in_the_entrypoint_reads_no_environment() {
    // Whatever this process's environment holds, a builder given no
    // `EnvConfig` keeps its own timeout.
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let ep = Entrypoint::builder(&rt)
        .shutdown_timeout(ms(400))
        .service("stuck", StuckStop, &[])
        .build()
        .unwrap();
    let outcome = mock.block_on(ep.run(async {})).unwrap();
    assert_eq!(outcome.exit_code, FORCED_EXIT_CODE);
    assert_eq!(mock.elapsed(), ms(400));
}
