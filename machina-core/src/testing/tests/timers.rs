//! Timer order, exact clock jumps, dropped sleeps and deadlock reports.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

// ---------------------------------------------------------------------------
// 2. Timer order and exact clock jumps
// ---------------------------------------------------------------------------

#[test]
fn equal_deadlines_fire_in_registration_order() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let start = mock.now();
    let deadline = start + secs(5);
    let fired = log();
    // Task i registers its sleep after yielding 4 - i times, so the timers
    // are registered in the reverse of spawn order.
    for i in 0..5u32 {
        let (rt2, fired) = (rt.clone(), fired.clone());
        detach(&rt, async move {
            for _ in 0..(4 - i) {
                yield_now().await;
            }
            rt2.sleep_until(deadline).await;
            push(&fired, (i, rt2.now() - start));
        });
    }
    mock.run_until_stalled().unwrap();
    assert_eq!(mock.pending_timers(), 5);
    assert!(entries(&fired).is_empty());
    mock.block_on(async {}).unwrap();
    assert_eq!(
        mock.elapsed(),
        Duration::ZERO,
        "a ready main future must not move the clock"
    );
    mock.advance(secs(5)).unwrap();
    assert_eq!(
        entries(&fired),
        [
            (4, secs(5)),
            (3, secs(5)),
            (2, secs(5)),
            (1, secs(5)),
            (0, secs(5))
        ]
    );
    assert_eq!(mock.pending_timers(), 0);
}

#[test]
fn different_deadlines_fire_in_deadline_order_at_exact_instants() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let start = mock.now();
    let fired = log();
    let handles: Vec<_> = [3u64, 1, 2, 1]
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let (rt2, fired) = (rt.clone(), fired.clone());
            rt.spawn(async move {
                rt2.sleep(secs(s)).await;
                push(&fired, (i, rt2.now() - start));
                rt2.now() - start
            })
            .unwrap()
        })
        .collect();
    let ends = mock
        .block_on(async move {
            let mut ends = Vec::new();
            for h in handles {
                ends.push(h.await.unwrap());
            }
            ends
        })
        .unwrap();
    assert_eq!(
        entries(&fired),
        [(1, secs(1)), (3, secs(1)), (2, secs(2)), (0, secs(3))]
    );
    assert_eq!(ends, [secs(3), secs(1), secs(2), secs(1)]);
    assert_eq!(mock.elapsed(), secs(3));
    assert_eq!(mock.now() - start, secs(3));
}

#[test]
fn clock_jumps_exactly_to_each_deadline_in_block_on() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let start = mock.now();
    let seen = mock
        .block_on(async move {
            let mut seen = Vec::new();
            for step in [ms(1), secs(7), Duration::from_nanos(1), secs(3600)] {
                rt.sleep(step).await;
                seen.push(rt.now() - start);
            }
            seen
        })
        .unwrap();
    assert_eq!(
        seen,
        [
            ms(1),
            ms(7001),
            ms(7001) + Duration::from_nanos(1),
            ms(3_607_001) + Duration::from_nanos(1)
        ]
    );
    assert_eq!(mock.elapsed(), ms(3_607_001) + Duration::from_nanos(1));
}

#[test]
fn equal_deadlines_fire_in_registration_order_when_slots_are_reused() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let start = mock.now();
    // Five timers registered and dropped in order leave their places free
    // to be reused in the opposite order.
    let mut dropped: Vec<_> = (0..5).map(|_| rt.sleep(secs(100))).collect();
    for s in &mut dropped {
        assert!((&mut *s).now_or_never().is_none());
    }
    drop(dropped);
    assert_eq!(mock.pending_timers(), 0);
    let fired = log();
    for i in 0..5 {
        let (rt2, fired) = (rt.clone(), fired.clone());
        detach(&rt, async move {
            rt2.sleep_until(start + secs(5)).await;
            push(&fired, i);
        });
    }
    mock.run_until_stalled().unwrap();
    assert_eq!(mock.pending_timers(), 5);
    mock.advance(secs(100)).unwrap();
    assert_eq!(entries(&fired), [0, 1, 2, 3, 4]);
    assert_eq!(mock.elapsed(), secs(100));
}

#[test]
fn a_dropped_earlier_timer_neither_fires_nor_stops_the_clock() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let start = mock.now();
    let mut early = rt.sleep(secs(1));
    assert!((&mut early).now_or_never().is_none());
    drop(early);
    // This timer may take the place the dropped one had.
    let polls = log();
    let sleep = rt.sleep(secs(5));
    detach(
        &rt,
        sleep_recording_polls(rt.clone(), sleep, start, polls.clone()),
    );
    mock.run_until_stalled().unwrap();
    assert_eq!(mock.pending_timers(), 1);
    mock.advance(secs(3)).unwrap();
    assert_eq!(entries(&polls), [Duration::ZERO], "no wake at 1s");
    mock.advance(secs(3)).unwrap();
    assert_eq!(entries(&polls), [Duration::ZERO, secs(5)]);
    assert_eq!(mock.pending_timers(), 0);
    assert!(mock.live_tasks().is_empty());
}

#[test]
fn many_dropped_timers_leave_the_others_in_order() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let start = mock.now();
    let fired = log();
    let deadline = |i: u64| secs(i * 7 % 13 + 1);
    let handles: Vec<_> = (0..200u64)
        .map(|i| {
            let (rt2, fired) = (rt.clone(), fired.clone());
            rt.spawn(async move {
                rt2.sleep(deadline(i)).await;
                push(&fired, (i, rt2.now() - start));
            })
            .unwrap()
        })
        .collect();
    mock.run_until_stalled().unwrap();
    assert_eq!(mock.pending_timers(), 200);
    for (i, h) in handles.iter().enumerate() {
        if i % 4 != 0 {
            h.abort();
        }
    }
    mock.run_until_stalled().unwrap();
    assert_eq!(mock.pending_timers(), 50);
    assert_eq!(mock.live_tasks().len(), 50);
    mock.advance(secs(13)).unwrap();
    let mut expected: Vec<_> = (0..200).step_by(4).map(|i| (i, deadline(i))).collect();
    expected.sort_by_key(|&(i, d)| (d, i));
    assert_eq!(entries(&fired), expected);
    assert_eq!(mock.pending_timers(), 0);
    for (i, h) in handles.into_iter().enumerate() {
        let outcome = h.now_or_never().expect("finished");
        assert_eq!(outcome.is_ok(), i % 4 == 0, "task {i}: {outcome:?}");
    }
}

#[test]
fn a_sleep_first_polled_elsewhere_wakes_the_task_that_awaits_it() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let start = mock.now();
    let mut sleep = rt.sleep(secs(2));
    // Registered with a waker that wakes nothing.
    assert!((&mut sleep).now_or_never().is_none());
    assert_eq!(mock.pending_timers(), 1);
    let rt2 = rt.clone();
    let handle = rt
        .spawn(async move {
            sleep.await;
            rt2.now() - start
        })
        .unwrap();
    mock.run_until_stalled().unwrap();
    assert_eq!(mock.pending_timers(), 1, "the same timer, with a new waker");
    mock.advance(secs(2)).unwrap();
    assert_eq!(handle.now_or_never().expect("woken").unwrap(), secs(2));
}

#[test]
fn sleep_with_a_past_or_zero_deadline_is_ready_at_once() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    mock.advance(secs(2)).unwrap();
    assert_eq!(rt.sleep(Duration::ZERO).now_or_never(), Some(()));
    assert_eq!(rt.sleep_until(rt.now() - secs(1)).now_or_never(), Some(()));
    assert_eq!(mock.pending_timers(), 0);
    assert_eq!(mock.elapsed(), secs(2));
}

// ---------------------------------------------------------------------------
// 3. Dropped sleeps and deadlocks
// ---------------------------------------------------------------------------

#[test]
fn dropped_sleep_unregisters_its_timer() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let unpolled = rt.sleep(secs(1));
    assert_eq!(mock.pending_timers(), 0, "a sleep registers on first poll");
    let mut a = rt.sleep(secs(1));
    let mut b = rt.sleep(secs(2));
    let mut c = rt.sleep(secs(2));
    for s in [&mut a, &mut b, &mut c] {
        assert!((&mut *s).now_or_never().is_none());
    }
    assert_eq!(mock.pending_timers(), 3);
    // Polling again does not register twice.
    assert!((&mut b).now_or_never().is_none());
    assert_eq!(mock.pending_timers(), 3);
    drop(b);
    assert_eq!(mock.pending_timers(), 2);
    drop(unpolled);
    assert_eq!(mock.pending_timers(), 2);
    drop(a);
    drop(c);
    assert_eq!(mock.pending_timers(), 0);
}

#[test]
fn block_on_ignores_a_dropped_hour_long_sleep() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    mock.block_on({
        let rt = rt.clone();
        async move {
            let mut long = rt.sleep(secs(3600));
            assert!(
                poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut long).poll(cx).is_pending()))
                    .await
            );
            drop(long);
            rt.sleep(secs(1)).await;
        }
    })
    .unwrap();
    assert_eq!(mock.elapsed(), secs(1));
    assert_eq!(mock.pending_timers(), 0);
    // Nothing is left to wake: a waiting main future deadlocks at 1s, it
    // does not jump to the hour mark first.
    assert_eq!(
        mock.block_on(pending::<()>()),
        Err(MockError::Deadlock {
            at: secs(1),
            live_tasks: Vec::new(),
        })
    );
    assert_eq!(mock.elapsed(), secs(1));
}

#[test]
fn timeout_unregisters_its_timer_when_the_future_wins() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let outcome = mock
        .block_on({
            let rt = rt.clone();
            async move { rt.timeout(secs(3600), rt.sleep(secs(1))).await }
        })
        .unwrap();
    assert_eq!(outcome, Ok(()));
    assert_eq!(mock.elapsed(), secs(1));
    assert_eq!(mock.pending_timers(), 0);

    let outcome = mock
        .block_on({
            let rt = rt.clone();
            async move { rt.timeout(secs(2), rt.sleep(secs(3600))).await }
        })
        .unwrap();
    assert_eq!(outcome.unwrap_err().limit(), secs(2));
    assert_eq!(mock.elapsed(), secs(3));
    assert_eq!(mock.pending_timers(), 0);
}

#[test]
fn deadlock_names_the_live_tasks() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let (tx, rx) = oneshot::channel::<()>();
    let rt2 = rt.clone();
    rt.spawn_named("stuck-worker", async move {
        let _tx = tx;
        rt2.sleep(secs(5)).await;
        pending::<()>().await;
    })
    .unwrap()
    .detach();
    detach(&rt, pending());
    let err = mock.block_on(rx).unwrap_err();
    let MockError::Deadlock { at, live_tasks } = &err else {
        panic!("expected a deadlock, got {err:?}");
    };
    assert_eq!(*at, secs(5));
    assert_eq!(live_tasks.len(), 2, "{live_tasks:?}");
    assert!(live_tasks[0].starts_with("stuck-worker#"), "{live_tasks:?}");
    assert_eq!(*live_tasks, ["stuck-worker#1", "task#2"]);
    assert_eq!(mock.live_tasks(), *live_tasks);
    let message = err.to_string();
    assert!(message.contains("deadlock"), "{message}");
    assert!(message.contains("stuck-worker#1"), "{message}");
    assert_eq!(mock.elapsed(), secs(5));
}

#[test]
fn tasks_left_ready_when_block_on_returns_run_on_the_next_call() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let ran = log();
    let value = mock
        .block_on({
            let (rt, ran) = (rt.clone(), ran.clone());
            async move {
                detach(&rt, async move { push(&ran, "spawned by main") });
                "main done"
            }
        })
        .unwrap();
    assert_eq!(value, "main done");
    assert!(
        entries(&ran).is_empty(),
        "block_on returns as soon as main is ready"
    );
    assert_eq!(mock.live_tasks(), ["task#1"]);
    mock.run_until_stalled().unwrap();
    assert_eq!(entries(&ran), ["spawned by main"]);
    assert!(mock.live_tasks().is_empty());
}

#[test]
fn a_panic_in_the_main_future_leaves_the_runtime_usable() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let ran = log();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (rt, ran) = (rt.clone(), ran.clone());
        mock.block_on(async move {
            detach(&rt, async move { push(&ran, "spawned by main") });
            panic!("main future boom");
        })
    }));
    assert!(outcome.is_err());
    assert_eq!(mock.live_tasks(), ["task#1"]);
    assert_eq!(mock.run_until_stalled(), Ok(()));
    assert_eq!(entries(&ran), ["spawned by main"]);
}

#[test]
fn pending_main_future_with_nothing_else_is_a_deadlock_at_zero() {
    let mock = MockRuntime::new();
    assert_eq!(
        mock.block_on(pending::<u8>()),
        Err(MockError::Deadlock {
            at: Duration::ZERO,
            live_tasks: Vec::new(),
        })
    );
    // The runtime is usable afterwards.
    assert_eq!(mock.block_on(async { 5 }), Ok(5));
}
