//! facet's scenarios on virtual time: order, parallel starts, diamonds,
//! rollback, background failures, stop timeouts, graph errors.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::rt::Runtime;
use crate::testing::MockRuntime;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

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

    fn stop(self: Arc<Self>, _reason: StopReason) -> ServiceFuture {
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
mod shutdown;

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
        assert_eq!(stack.started(), ["cache", "db", "api"]);
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
    assert!(stack.started().is_empty());
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
        assert_eq!(stack.started(), ["worker", "after"]);
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

mod entrypoint {
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
}

mod restarts {
    use super::*;

    /// A service whose background task fails its first `failures` runs (or
    /// every run), recording when each run starts.
    struct Flaky {
        rt: Runtime,
        runs: Arc<Mutex<Vec<u128>>>,
        failures: Option<usize>,
        policy: RestartPolicy,
    }

    impl Service for Flaky {
        fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
            Box::pin(async move {
                let t0 = self.rt.now();
                let this = self.clone();
                ctx.spawn_restarting(self.policy, move || {
                    let this = this.clone();
                    async move {
                        let run = {
                            let mut runs = this.runs.lock().unwrap();
                            runs.push((this.rt.now() - t0).as_millis());
                            runs.len()
                        };
                        if this.failures.is_none_or(|f| run <= f) {
                            return Err(format!("run {run} failed").into());
                        }
                        std::future::pending::<()>().await;
                        Ok(())
                    }
                });
                Ok(())
            })
        }
    }

    fn stack(rt: &Runtime, failures: Option<usize>) -> (Supervisor, Arc<Mutex<Vec<u128>>>) {
        let runs = Arc::new(Mutex::new(Vec::new()));
        let flaky = Flaky {
            rt: rt.clone(),
            runs: runs.clone(),
            failures,
            policy: RestartPolicy::OnFailure {
                backoff: ms(100),
                max_restarts: 2,
            },
        };
        (
            Supervisor::builder(rt)
                .service("flaky", flaky, &[])
                .build()
                .unwrap(),
            runs,
        )
    }

    #[test]
    fn a_failing_task_is_restarted_with_a_growing_backoff() {
        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let (stack, runs) = stack(&rt, Some(2));
        mock.block_on(async { stack.start().await.unwrap() })
            .unwrap();
        mock.advance(Duration::from_secs(5)).unwrap();
        assert_eq!(
            *runs.lock().unwrap(),
            [0, 100, 300],
            "backoff 100 ms, then 200 ms"
        );
        mock.block_on(async {
            let report = stack.stop().await;
            assert_eq!(report.stopped, ["flaky"]);
        })
        .unwrap();
    }

    #[test]
    fn once_the_restarts_are_spent_the_failure_is_reported() {
        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let (stack, runs) = stack(&rt, None);
        let (service, error) = mock
            .block_on(async {
                stack.start().await.unwrap();
                stack.failure().await.unwrap()
            })
            .unwrap();
        assert_eq!(service, "flaky");
        assert_eq!(error.to_string(), "run 3 failed");
        assert_eq!(*runs.lock().unwrap(), [0, 100, 300]);
        assert_eq!(mock.elapsed(), ms(300));
    }
}

mod plugins {
    use super::*;

    /// A plugin that brings a service of its own and hooks around it.
    struct Audit {
        log: Log,
        rt: Runtime,
    }

    impl Plugin for Audit {
        fn register(self: Box<Self>, entrypoint: EntrypointBuilder) -> EntrypointBuilder {
            let (a, b) = (self.log.clone(), self.log.clone());
            entrypoint
                .service("audit", Scripted::new("audit", &self.rt, &self.log), &[])
                .pre_start(move |services| {
                    let log = a.clone();
                    async move {
                        log.lock()
                            .unwrap()
                            .push(format!("audit sees {:?}", services.services()))
                    }
                })
                .post_stop(move |_| {
                    let log = b.clone();
                    async move { log.lock().unwrap().push("audit done".to_owned()) }
                })
        }
    }

    #[test]
    fn a_plugin_adds_its_service_and_hooks_at_build_time() {
        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let log: Log = Arc::default();
        let ep = Entrypoint::builder(&rt)
            .service("db", Scripted::new("db", &rt, &log), &[])
            .plugin(Audit {
                log: log.clone(),
                rt: rt.clone(),
            })
            .build()
            .unwrap();
        let outcome = mock.block_on(ep.run(async {})).unwrap();
        assert_eq!(outcome.exit_code, 0);
        let log = entries(&log);
        assert_eq!(log.first().unwrap(), "audit sees [\"db\", \"audit\"]");
        assert!(
            log.contains(&"ready audit".to_owned()) && log.contains(&"stopped audit".to_owned())
        );
        assert_eq!(log.last().unwrap(), "audit done");
    }
}

mod dynamic {
    use super::*;

    fn running_stack(mock: &MockRuntime, log: &Log) -> Supervisor {
        let rt = mock.runtime();
        let stack = Supervisor::builder(&rt)
            .service("db", Scripted::new("db", &rt, log), &[])
            .build()
            .unwrap();
        mock.block_on(async { stack.start().await.unwrap() })
            .unwrap();
        stack
    }

    #[test]
    fn a_service_added_to_a_running_stack_starts_and_stops_with_it() {
        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let log = Log::default();
        let stack = running_stack(&mock, &log);
        let cache = Scripted {
            start_ms: 30,
            keep_running: true,
            ..Scripted::new("cache", &rt, &log)
        };
        let t0 = rt.now();
        mock.block_on(async { stack.start_service("cache", cache, &["db"]).await })
            .unwrap()
            .unwrap();
        assert_eq!(rt.now() - t0, ms(30), "returns when it is ready");
        assert_eq!(stack.started(), ["db", "cache"]);
        let report = mock.block_on(async { stack.stop().await }).unwrap();
        assert_eq!(report.stopped, ["cache", "db"], "the added one stops first");
    }

    #[test]
    fn stopping_one_service_leaves_the_rest_running_and_it_can_come_back() {
        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let log = Log::default();
        let stack = running_stack(&mock, &log);
        let api = Scripted {
            keep_running: true,
            stop_ms: 10,
            ..Scripted::new("api", &rt, &log)
        };
        let dropped = api.dropped.clone();
        mock.block_on(async { stack.start_service("api", api.clone(), &["db"]).await })
            .unwrap()
            .unwrap();
        let err = mock
            .block_on(async { stack.stop_service("db").await })
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&err, ChangeError::Needed { dependents, .. } if dependents == &["api"]),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("still needed by [\"api\"]"),
            "{err}"
        );

        let report = mock
            .block_on(async { stack.stop_service("api").await })
            .unwrap()
            .unwrap();
        assert_eq!(report.stopped, ["api"]);
        assert!(report.timed_out.is_empty());
        assert!(
            dropped.load(Ordering::SeqCst),
            "its running start was cancelled"
        );
        assert_eq!(stack.started(), ["db"]);
        assert_eq!(
            entries(&log).last().map(String::as_str),
            Some("stopped api")
        );

        // The name is free again.
        mock.block_on(async { stack.start_service("api", api, &["db"]).await })
            .unwrap()
            .unwrap();
        assert_eq!(stack.started(), ["db", "api"]);
        mock.block_on(async { stack.stop().await }).unwrap();
    }

    #[test]
    fn bad_changes_are_refused_and_a_failed_start_leaves_the_stack_as_it_was() {
        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let log = Log::default();
        let stack = running_stack(&mock, &log);
        let svc = |name| Scripted::new(name, &rt, &log);
        let change = |name: &'static str, deps: &'static [&'static str]| {
            let service = svc(name);
            mock.block_on(async { stack.start_service(name, service, deps).await })
                .unwrap()
        };
        assert!(
            matches!(change("db", &[]), Err(ChangeError::Graph(GraphError::Duplicate(n))) if n == "db")
        );
        assert!(matches!(
            change("api", &["queue"]),
            Err(ChangeError::Graph(GraphError::UnknownDependency { missing, .. })) if missing == "queue"
        ));
        let err = mock
            .block_on(async { stack.stop_service("nope").await })
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&err, ChangeError::NotRunning(n) if n == "nope"),
            "{err:?}"
        );

        let broken = Scripted {
            fail_start: true,
            ..svc("broken")
        };
        let err = mock
            .block_on(async { stack.start_service("broken", broken, &["db"]).await })
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&err, ChangeError::Start(e) if e.service == "broken" && e.rolled_back.is_empty()),
            "{err:?}"
        );
        assert_eq!(stack.started(), ["db"], "db untouched");
        // A failed start does not keep the name.
        assert!(change("broken", &["db"]).is_ok());
        mock.block_on(async { stack.stop().await }).unwrap();
    }

    #[test]
    fn a_dependency_that_is_registered_but_not_running_is_refused() {
        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let log = Log::default();
        let stack = Supervisor::builder(&rt)
            .service("db", Scripted::new("db", &rt, &log), &[])
            .build()
            .unwrap();
        let api = Scripted::new("api", &rt, &log);
        let err = mock
            .block_on(async { stack.start_service("api", api, &["db"]).await })
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&err, ChangeError::DependencyNotRunning { dependency, .. } if dependency == "db"),
            "{err:?}"
        );
        assert!(entries(&log).is_empty(), "nothing started");
    }

    #[test]
    fn the_main_future_adds_services_and_shutdown_stops_them_first() {
        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let log = Log::default();
        let ep = Entrypoint::builder(&rt)
            .service("db", Scripted::new("db", &rt, &log), &[])
            .build()
            .unwrap();
        let supervisor = ep.supervisor().clone();
        let worker = Scripted {
            keep_running: true,
            ..Scripted::new("worker", &rt, &log)
        };
        let outcome = mock
            .block_on(ep.run(async move {
                supervisor
                    .start_service("worker", worker, &["db"])
                    .await
                    .unwrap();
                supervisor.started()
            }))
            .unwrap();
        assert_eq!(outcome.exit_code, 0);
        assert_eq!(
            outcome.value,
            Some(vec!["db".to_owned(), "worker".to_owned()])
        );
        let stops: Vec<_> = entries(&log)
            .into_iter()
            .filter(|e| e.starts_with("stopped"))
            .collect();
        assert_eq!(stops, ["stopped worker", "stopped db"]);
    }

    #[test]
    fn changes_through_the_entrypoint_fire_its_hooks() {
        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let log = Log::default();
        let ep = super::entrypoint::hooks(Entrypoint::builder(&rt), &log)
            .service("db", Scripted::new("db", &rt, &log), &[])
            .build()
            .unwrap();
        let services = ep.services();
        let (rt2, log2) = (rt.clone(), log.clone());
        let outcome = mock
            .block_on(ep.run(async move {
                let mark = |what: &str| log2.lock().unwrap().push(what.to_owned());
                mark("-- main");
                let cache = Scripted::new("cache", &rt2, &log2);
                services
                    .start_service("cache", cache, &["db"])
                    .await
                    .unwrap();
                mark("-- refused");
                assert!(services.stop_service("db").await.is_err());
                assert!(services.stop_service("nope").await.is_err());
                let broken = Scripted {
                    fail_start: true,
                    ..Scripted::new("broken", &rt2, &log2)
                };
                assert!(services.start_service("broken", broken, &[]).await.is_err());
                mark("-- stop");
                services.stop_service("cache").await.unwrap();
                mark("-- end");
            }))
            .unwrap();
        assert_eq!(outcome.exit_code, 0);
        let seen = entries(&log);
        let main = seen.iter().position(|l| l == "-- main").unwrap();
        assert_eq!(
            seen[main..],
            [
                "-- main",
                "pre_start [\"cache\"]",
                "starting cache",
                "ready cache",
                "post_start [\"cache\"]",
                "-- refused",
                "pre_start [\"broken\"]",
                "starting broken",
                "failed broken",
                "-- stop",
                "pre_stop [\"cache\"]",
                "stopped cache",
                "post_stop [\"cache\"]",
                "-- end",
                "pre_stop [\"db\"]",
                "stopped db",
                "post_stop [\"db\"]",
            ]
        );
    }
}
