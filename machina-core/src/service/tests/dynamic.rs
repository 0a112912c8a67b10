//! Changing a running stack: adding and removing services, refusals, and
//! the hooks fired through the entrypoint.

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
    assert_eq!(stack.running_services(), ["db", "cache"]);
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
    assert_eq!(stack.running_services(), ["db"]);
    assert_eq!(
        entries(&log).last().map(String::as_str),
        Some("stopped api")
    );

    // The name is free again.
    mock.block_on(async { stack.start_service("api", api, &["db"]).await })
        .unwrap()
        .unwrap();
    assert_eq!(stack.running_services(), ["db", "api"]);
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
    assert_eq!(stack.running_services(), ["db"], "db untouched");
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
            supervisor.running_services()
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
