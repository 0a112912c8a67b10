//! Dropping the runtime, calendar time, blocking work and panics.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

// ---------------------------------------------------------------------------
// 9. Dropping the runtime
// ---------------------------------------------------------------------------

#[test]
fn spawn_after_drop_reports_shutdown() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    drop(mock);
    let shutdown = SpawnError::Shutdown { executor: "mock" };
    assert_eq!(rt.spawn(async {}).unwrap_err(), shutdown);
    assert_eq!(rt.spawn_named("late", async {}).unwrap_err(), shutdown);
    assert_eq!(rt.spawn_blocking(|| ()).unwrap_err(), shutdown);
    assert_eq!(
        rt.spawner().spawn_detached(Box::pin(async {})),
        Err(shutdown.clone())
    );
    assert_eq!(rt.label(), "mock");
}

#[test]
fn dropping_the_runtime_cancels_pending_tasks_and_drops_their_futures() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();

    let sleeper_dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(sleeper_dropped.clone());
    let rt2 = rt.clone();
    let sleeping = rt
        .spawn(async move {
            let _flag = flag;
            rt2.sleep(secs(3600)).await;
            "never"
        })
        .unwrap();
    let done = rt.spawn(async { 7 }).unwrap();
    mock.run_until_stalled().unwrap();
    assert_eq!(mock.pending_timers(), 1);

    let unpolled_dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(unpolled_dropped.clone());
    let unpolled = rt
        .spawn(async move {
            let _flag = flag;
            0
        })
        .unwrap();
    assert_eq!(mock.live_tasks(), ["task#1", "task#3"]);
    assert!(!sleeper_dropped.load(Ordering::SeqCst));

    drop(mock);
    assert!(sleeper_dropped.load(Ordering::SeqCst));
    assert!(unpolled_dropped.load(Ordering::SeqCst));
    assert!(sleeping.is_finished());
    assert!(matches!(
        futures::executor::block_on(sleeping),
        Err(JoinError::Cancelled)
    ));
    assert!(matches!(
        futures::executor::block_on(unpolled),
        Err(JoinError::Cancelled)
    ));
    assert_eq!(futures::executor::block_on(done).unwrap(), 7);
    assert_eq!(
        rt.spawn(async {}).unwrap_err(),
        SpawnError::Shutdown { executor: "mock" }
    );
}

/// On drop, tries to spawn on `rt` and records what happened.
struct SpawnOnDrop {
    rt: Runtime,
    outcome: Log<Result<(), SpawnError>>,
}

impl Drop for SpawnOnDrop {
    fn drop(&mut self) {
        let outcome = self.rt.spawn(async {}).map(|h| h.detach());
        push(&self.outcome, outcome);
    }
}

#[test]
fn destructors_run_by_the_drop_may_spawn_wake_and_unregister() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let outcome = log();
    let guard = SpawnOnDrop {
        rt: rt.clone(),
        outcome: outcome.clone(),
    };
    let (tx, rx) = oneshot::channel::<()>();
    let rt2 = rt.clone();
    // Holds a registered sleep and a sender whose drop wakes the other task.
    detach(&rt, async move {
        let _guard = guard;
        let _tx = tx;
        rt2.sleep(secs(60)).await;
    });
    let received = rt.spawn(rx).unwrap();
    mock.run_until_stalled().unwrap();
    assert_eq!(mock.pending_timers(), 1);
    drop(mock);
    assert_eq!(
        entries(&outcome),
        [Err(SpawnError::Shutdown { executor: "mock" })]
    );
    // The receiving task was dropped, whether or not the sender went first.
    assert!(matches!(
        futures::executor::block_on(received),
        Err(JoinError::Cancelled)
    ));
}

// ---------------------------------------------------------------------------
// 10. Calendar time
// ---------------------------------------------------------------------------

#[test]
fn start_time_sets_the_virtual_calendar_and_moves_with_sleeps() {
    const DAY: u64 = 86_400;
    // 2026-03-14T23:00:00Z.
    let day = 1_773_446_400 / DAY;
    let start = SystemTime::UNIX_EPOCH + secs(day * DAY + 23 * 3600);
    let mock = MockRuntime::builder().start_time(start).build();
    let rt = mock.runtime();
    assert_eq!(mock.calendar_now(), start);
    assert_eq!(rt.calendar_now(), start);
    let after = mock
        .block_on({
            let rt = rt.clone();
            async move {
                rt.sleep(Duration::from_secs(90 * 60)).await;
                rt.calendar_now()
            }
        })
        .unwrap();
    assert_eq!(after, start + secs(90 * 60));
    let since_epoch = after
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(since_epoch / DAY, day + 1, "crossed midnight");
    assert_eq!(since_epoch % DAY, 30 * 60, "at 00:30");
    assert_eq!(mock.calendar_now(), after);

    mock.advance(ms(250)).unwrap();
    assert_eq!(rt.calendar_now(), start + secs(90 * 60) + ms(250));
}

#[test]
fn default_start_time_is_2026_01_01_midnight_utc() {
    let mock = MockRuntime::new();
    let expected = SystemTime::UNIX_EPOCH + secs(1_767_225_600);
    assert_eq!(mock.calendar_now(), expected);
    assert_eq!(mock.runtime().calendar_now(), expected);
}

// ---------------------------------------------------------------------------
// 12. spawn_blocking
// ---------------------------------------------------------------------------

#[test]
fn spawn_blocking_runs_inline_as_a_task_named_blocking() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let order = log();
    {
        let order = order.clone();
        detach(&rt, async move { push(&order, "before") });
    }
    let handle = {
        let order = order.clone();
        rt.spawn_blocking(move || {
            push(&order, "blocking");
            std::thread::current().id()
        })
        .unwrap()
    };
    {
        let order = order.clone();
        detach(&rt, async move { push(&order, "after") });
    }
    assert_eq!(mock.live_tasks(), ["task#1", "blocking#2", "task#3"]);
    assert!(
        entries(&order).is_empty(),
        "blocking work waits for its turn"
    );
    assert!(!handle.is_finished());

    mock.run_until_stalled().unwrap();
    assert_eq!(entries(&order), ["before", "blocking", "after"]);
    assert!(mock.live_tasks().is_empty());
    assert_eq!(mock.elapsed(), Duration::ZERO);
    let ran_on = handle.now_or_never().expect("finished").unwrap();
    assert_eq!(ran_on, std::thread::current().id(), "run inline");
}

#[test]
fn spawn_blocking_value_and_panic_reach_the_handle() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let (value, err) = mock
        .block_on(async move {
            let value = rt.spawn_blocking(|| 6 * 7).unwrap().await.unwrap();
            let err = rt
                .spawn_blocking(|| -> u8 { panic!("blocking boom") })
                .unwrap()
                .await
                .unwrap_err();
            (value, err)
        })
        .unwrap();
    assert_eq!(value, 42);
    assert_eq!(err.panic_payload().unwrap().message(), "blocking boom");
    assert_eq!(mock.elapsed(), Duration::ZERO);
}

// ---------------------------------------------------------------------------
// 13. Panics
// ---------------------------------------------------------------------------

#[test]
fn panicking_raw_task_does_not_take_the_runtime_down() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let ran = log();
    rt.spawner()
        .spawn_detached(Box::pin(async { panic!("raw task panic") }))
        .unwrap();
    {
        let ran = ran.clone();
        rt.spawner()
            .spawn_detached(Box::pin(async move { push(&ran, "raw after") }))
            .unwrap();
    }
    mock.run_until_stalled().unwrap();
    assert_eq!(entries(&ran), ["raw after"]);
    assert!(mock.live_tasks().is_empty());

    // A raw task that panics after a timer, in the middle of an advance.
    {
        let rt2 = rt.clone();
        rt.spawner()
            .spawn_detached(Box::pin(async move {
                rt2.sleep(secs(1)).await;
                panic!("raw task panic at 1s");
            }))
            .unwrap();
        let (rt2, ran) = (rt.clone(), ran.clone());
        detach(&rt, async move {
            rt2.sleep(secs(2)).await;
            push(&ran, "timer after");
        });
    }
    mock.advance(secs(3)).unwrap();
    assert_eq!(entries(&ran), ["raw after", "timer after"]);
    assert_eq!(mock.elapsed(), secs(3));
    assert!(mock.live_tasks().is_empty());

    let value = mock
        .block_on(async move { rt.spawn(async { 1 }).unwrap().await.unwrap() })
        .unwrap();
    assert_eq!(value, 1);
}

#[test]
fn panicking_spawned_task_reports_panicked() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let err = mock
        .block_on(async move {
            let handle: JoinHandle<()> = rt.spawn(async { panic!("task boom") }).unwrap();
            handle.await.unwrap_err()
        })
        .unwrap();
    assert!(err.is_panic());
    assert_eq!(err.panic_payload().unwrap().message(), "task boom");
    assert!(mock.live_tasks().is_empty());
}
