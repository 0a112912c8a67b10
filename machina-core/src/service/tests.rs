//! facet's scenarios on virtual time: order, parallel starts, diamonds,
//! rollback, background failures, stop timeouts, graph errors.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::rt::Runtime;
use crate::testing::MockRuntime;

use crate::test_kit::ms;

type Log = Arc<Mutex<Vec<String>>>;

/// A scripted service: takes `start_ms` to start (then fails if
/// `fail_start`), optionally keeps running after `ready()`, takes
/// `stop_ms` to stop, and logs what happens.
#[derive(Clone)]
struct Scripted {
    name: &'static str,
    rt: Runtime,
    log: Log,
    start_ms: u64,
    stop_ms: u64,
    fail_start: bool,
    keep_running: bool,
    background_fails_at: Option<u64>,
    dropped: Arc<AtomicBool>,
}

struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Scripted {
    fn new(name: &'static str, rt: &Runtime, log: &Log) -> Self {
        Scripted {
            name,
            rt: rt.clone(),
            log: log.clone(),
            start_ms: 0,
            stop_ms: 0,
            fail_start: false,
            keep_running: false,
            background_fails_at: None,
            dropped: Arc::default(),
        }
    }

    fn note(&self, what: &str) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{what} {}", self.name));
    }
}

impl Service for Scripted {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let _flag = DropFlag(self.dropped.clone());
            self.note("starting");
            self.rt.sleep(ms(self.start_ms)).await;
            if self.fail_start {
                self.note("failed");
                return Err(format!("{} cannot start", self.name).into());
            }
            if let Some(at) = self.background_fails_at {
                let rt = self.rt.clone();
                ctx.spawn(async move {
                    rt.sleep(ms(at)).await;
                    Err("background job died".into())
                });
            }
            self.note("ready");
            if self.keep_running {
                ctx.ready();
                self.rt.sleep(Duration::from_secs(3600)).await;
            }
            Ok(())
        })
    }

    fn stop(self: Arc<Self>, _ctx: StopContext) -> ServiceFuture {
        Box::pin(async move {
            self.rt.sleep(ms(self.stop_ms)).await;
            self.note("stopped");
            Ok(())
        })
    }

    fn graceful_shutdown_timeout(&self) -> Option<Duration> {
        (self.stop_ms > 0).then(|| ms(50))
    }
}

mod abandoned;
mod failures;
mod plan;
mod shutdown;
mod stats_reporter;
mod systemd;

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

#[test]
fn independent_services_start_in_parallel_dependents_after() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let db = Scripted {
        start_ms: 100,
        ..Scripted::new("db", &rt, &log)
    };
    let cache = Scripted {
        start_ms: 50,
        ..Scripted::new("cache", &rt, &log)
    };
    let api = Scripted::new("api", &rt, &log);
    let stack = Supervisor::builder(&rt)
        .service("db", db, &[])
        .service("cache", cache, &[])
        .service("api", api, &["db", "cache"])
        .build()
        .unwrap();
    mock.block_on(async {
        stack.start().await.unwrap();
        assert_eq!(
            mock.elapsed(),
            ms(100),
            "db and cache in parallel, then api at once"
        );
        assert_eq!(stack.running_services(), ["cache", "db", "api"]);
        let report = stack.stop().await;
        assert_eq!(report.stopped, ["api", "db", "cache"]);
    })
    .unwrap();
    assert_eq!(
        entries(&log),
        [
            "starting db",
            "starting cache",
            "ready cache",
            "ready db",
            "starting api",
            "ready api",
            "stopped api",
            "stopped db",
            "stopped cache"
        ]
    );
}

#[test]
fn a_shared_dependency_starts_once_and_stops_after_its_last_dependent() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let stack = Supervisor::builder(&rt)
        .service("db", Scripted::new("db", &rt, &log), &[])
        .service(
            "left",
            Scripted {
                start_ms: 10,
                ..Scripted::new("left", &rt, &log)
            },
            &["db"],
        )
        .service(
            "right",
            Scripted {
                start_ms: 20,
                ..Scripted::new("right", &rt, &log)
            },
            &["db"],
        )
        .service("top", Scripted::new("top", &rt, &log), &["left", "right"])
        .build()
        .unwrap();
    mock.block_on(async {
        stack.start().await.unwrap();
        stack.stop().await;
    })
    .unwrap();
    let log = entries(&log);
    assert_eq!(log.iter().filter(|e| *e == "starting db").count(), 1);
    assert_eq!(log.iter().filter(|e| *e == "stopped db").count(), 1);
    let pos = |e: &str| log.iter().position(|x| x == e).unwrap();
    assert!(
        pos("stopped top") < pos("stopped right") && pos("stopped right") < pos("stopped left")
    );
    assert!(pos("stopped left") < pos("stopped db"));
}

#[test]
fn a_failed_start_in_a_chain_rolls_back_what_started() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let stack = Supervisor::builder(&rt)
        .service("a", Scripted::new("a", &rt, &log), &[])
        .service("b", Scripted::new("b", &rt, &log), &["a"])
        .service(
            "c",
            Scripted {
                fail_start: true,
                ..Scripted::new("c", &rt, &log)
            },
            &["b"],
        )
        .build()
        .unwrap();
    let err = mock.block_on(stack.start()).unwrap().unwrap_err();
    assert_eq!(err.service, "c");
    assert_eq!(err.error.to_string(), "c cannot start");
    assert_eq!(err.rolled_back, ["b", "a"]);
    let log = entries(&log);
    assert!(
        !log.contains(&"stopped c".to_owned()),
        "the failing one is not stopped"
    );
    assert!(stack.running_services().is_empty());
}

#[test]
fn a_failure_in_a_parallel_group_cancels_slow_siblings() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let slow = Scripted {
        start_ms: 1000,
        ..Scripted::new("slow", &rt, &log)
    };
    let slow_dropped = slow.dropped.clone();
    let stack = Supervisor::builder(&rt)
        .stages(vec![
            vec![(
                "base",
                Arc::new(Scripted::new("base", &rt, &log)) as Arc<dyn Service>,
            )],
            vec![
                ("slow", Arc::new(slow) as Arc<dyn Service>),
                (
                    "broken",
                    Arc::new(Scripted {
                        start_ms: 10,
                        fail_start: true,
                        ..Scripted::new("broken", &rt, &log)
                    }),
                ),
            ],
        ])
        .build()
        .unwrap();
    let err = mock.block_on(stack.start()).unwrap().unwrap_err();
    assert_eq!(err.service, "broken");
    assert_eq!(err.rolled_back, ["base"]);
    assert!(
        slow_dropped.load(Ordering::SeqCst),
        "the slow sibling's start was cancelled"
    );
    assert_eq!(mock.elapsed(), ms(10), "no waiting for the slow sibling");
    assert!(!entries(&log).contains(&"stopped slow".to_owned()));
}

#[test]
fn a_service_may_be_ready_and_keep_running_until_stopped() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let worker = Scripted {
        keep_running: true,
        ..Scripted::new("worker", &rt, &log)
    };
    let dropped = worker.dropped.clone();
    let stack = Supervisor::builder(&rt)
        .service("worker", worker, &[])
        .service("after", Scripted::new("after", &rt, &log), &["worker"])
        .build()
        .unwrap();
    mock.block_on(async {
        stack.start().await.unwrap();
        assert_eq!(stack.running_services(), ["worker", "after"]);
        assert!(!dropped.load(Ordering::SeqCst), "still running after ready");
        stack.stop().await;
        assert!(
            dropped.load(Ordering::SeqCst),
            "its remaining start was cancelled on stop"
        );
    })
    .unwrap();
}

#[test]
fn a_failing_background_task_is_reported() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let stack = Supervisor::builder(&rt)
        .service(
            "jobs",
            Scripted {
                background_fails_at: Some(300),
                ..Scripted::new("jobs", &rt, &log)
            },
            &[],
        )
        .build()
        .unwrap();
    mock.block_on(async {
        stack.start().await.unwrap();
        let (service, error) = stack.failure().await.unwrap();
        assert_eq!(
            (service.as_str(), error.to_string().as_str()),
            ("jobs", "background job died")
        );
        assert_eq!(mock.elapsed(), ms(300));
        let report = stack.stop().await;
        assert_eq!(report.stopped, ["jobs"]);
    })
    .unwrap();
}

#[test]
fn a_stop_past_its_timeout_is_reported_and_the_rest_still_stop() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let stack = Supervisor::builder(&rt)
        .service("base", Scripted::new("base", &rt, &log), &[])
        .service(
            "stuck",
            Scripted {
                stop_ms: 10_000,
                ..Scripted::new("stuck", &rt, &log)
            },
            &["base"],
        )
        .build()
        .unwrap();
    mock.block_on(async {
        stack.start().await.unwrap();
        let report = stack.stop().await;
        assert_eq!(report.timed_out, ["stuck"]);
        assert_eq!(report.stopped, ["stuck", "base"]);
        assert_eq!(
            mock.elapsed(),
            ms(50),
            "the stuck stop was cut at its 50 ms timeout"
        );
    })
    .unwrap();
    assert!(entries(&log).contains(&"stopped base".to_owned()));
}

#[test]
fn bad_graphs_are_refused_before_anything_starts() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let s = |n| Scripted::new(n, &rt, &log);
    let dup = Supervisor::builder(&rt)
        .service("a", s("a"), &[])
        .service("a", s("a"), &[])
        .build();
    assert_eq!(dup.unwrap_err(), GraphError::Duplicate("a".into()));
    let unknown = Supervisor::builder(&rt)
        .service("a", s("a"), &["ghost"])
        .build();
    assert!(
        unknown
            .unwrap_err()
            .to_string()
            .contains("depends on \"ghost\"")
    );
    let cycle = Supervisor::builder(&rt)
        .service("a", s("a"), &["b"])
        .service("b", s("b"), &["c"])
        .service("c", s("c"), &["a"])
        .build()
        .unwrap_err();
    let GraphError::Cycle(path) = &cycle else {
        panic!("{cycle}")
    };
    assert_eq!(path.first(), path.last());
    assert_eq!(path.len(), 4);
    assert!(entries(&log).is_empty(), "nothing started");
}

mod entrypoint;

mod restarts;

mod plugins;

mod dynamic;

/// Takes `stop_ms` to stop and logs when (virtual ms) its stop began and
/// ended.
struct SlowStop {
    name: &'static str,
    rt: Runtime,
    t0: std::time::Instant,
    stop_ms: u64,
    log: Log,
}

impl Service for SlowStop {
    fn start(self: Arc<Self>, _ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async { Ok(()) })
    }

    fn stop(self: Arc<Self>, _ctx: StopContext) -> ServiceFuture {
        Box::pin(async move {
            let began = (self.rt.now() - self.t0).as_millis();
            self.rt.sleep(ms(self.stop_ms)).await;
            let ended = (self.rt.now() - self.t0).as_millis();
            self.log
                .lock()
                .unwrap()
                .push(format!("{} {began}..{ended}", self.name));
            Ok(())
        })
    }

    fn graceful_shutdown_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(10))
    }
}

#[test]
fn a_parallel_stage_stops_in_parallel_so_a_stop_takes_the_longest_not_the_sum() {
    // Started as X, [Y, Z], W: stopped W, then Y and Z together, then X.
    // Each stop takes 100 ms: 300 ms in all, not 400.
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let t0 = rt.now();
    let slow = |name| SlowStop {
        name,
        rt: rt.clone(),
        t0,
        stop_ms: 100,
        log: log.clone(),
    };
    let stack = Supervisor::builder(&rt)
        .stages(vec![
            vec![("x", Arc::new(slow("x")) as Arc<dyn Service>)],
            vec![
                ("y", Arc::new(slow("y")) as Arc<dyn Service>),
                ("z", Arc::new(slow("z")) as Arc<dyn Service>),
            ],
            vec![("w", Arc::new(slow("w")) as Arc<dyn Service>)],
        ])
        .build()
        .unwrap();
    let report = mock
        .block_on(async {
            stack.start().await.unwrap();
            stack.stop().await
        })
        .unwrap();
    assert_eq!(mock.elapsed(), ms(300));
    let mut lines = entries(&log);
    lines[1..3].sort();
    assert_eq!(
        lines,
        ["w 0..100", "y 100..200", "z 100..200", "x 200..300"]
    );
    assert_eq!(report.stopped.len(), 4);
    assert_eq!(
        (report.stopped[0].as_str(), report.stopped[3].as_str()),
        ("w", "x")
    );
    assert!(report.is_clean());
}

#[test]
fn a_service_stops_as_soon_as_its_dependents_have_not_after_a_whole_stage() {
    // A diamond (top needs left and right, both need base) beside a slow
    // service no one depends on: each stop starts the moment the last of
    // its dependents has stopped, and the slow one runs alongside.
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let t0 = rt.now();
    let slow = |name, stop_ms| SlowStop {
        name,
        rt: rt.clone(),
        t0,
        stop_ms,
        log: log.clone(),
    };
    let stack = Supervisor::builder(&rt)
        .service("base", slow("base", 10), &[])
        .service("left", slow("left", 30), &["base"])
        .service("right", slow("right", 70), &["base"])
        .service("top", slow("top", 20), &["left", "right"])
        .service("aside", slow("aside", 500), &[])
        .build()
        .unwrap();
    mock.block_on(async {
        stack.start().await.unwrap();
        stack.stop().await
    })
    .unwrap();
    let mut lines = entries(&log);
    lines.sort();
    assert_eq!(
        lines,
        [
            "aside 0..500",
            "base 90..100",
            "left 20..50",
            "right 20..90",
            "top 0..20"
        ]
    );
    assert_eq!(mock.elapsed(), ms(500));
}

/// Reads, when stopped, a value another service shared and its own name
/// and reason, and flushes on the runtime's clock.
struct ReadsAtStop(Log);

const SHARED: crate::service::Key<&'static str> = crate::service::Key::new("shared");

impl Service for ReadsAtStop {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        ctx.context().set(SHARED, "from start");
        Box::pin(async { Ok(()) })
    }

    fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
        Box::pin(async move {
            ctx.runtime().sleep(ms(30)).await;
            let value = ctx.context().try_get(SHARED).map(|v| *v);
            self.0
                .lock()
                .unwrap()
                .push(format!("{} {:?} {:?}", ctx.name(), ctx.reason(), value));
            Ok(())
        })
    }
}

#[test]
fn stop_gets_its_name_the_reason_the_shared_context_and_the_runtime() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let log: Log = Arc::default();
    let stack = Supervisor::builder(&rt)
        .service("reader", ReadsAtStop(log.clone()), &[])
        .build()
        .unwrap();
    mock.block_on(async {
        stack.start().await.unwrap();
        stack
            .start_service("again", ReadsAtStop(log.clone()), &[])
            .await
            .unwrap();
        stack.stop_service("again").await.unwrap();
        stack.stop_because(StopReason::Signal).await;
    })
    .unwrap();
    assert_eq!(
        entries(&log),
        [
            "again Removed Some(\"from start\")",
            "reader Signal Some(\"from start\")"
        ]
    );
    assert_eq!(
        mock.elapsed(),
        ms(60),
        "each stop flushed for 30 ms of virtual time"
    );
}
