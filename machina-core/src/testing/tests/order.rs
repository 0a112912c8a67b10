//! Ready order: first come, first served, across spawns, wakes, threads and nested runtimes.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

// ---------------------------------------------------------------------------
// 1. Ready order without a seed
// ---------------------------------------------------------------------------

#[test]
fn ready_tasks_run_in_spawn_order_without_seed() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let order = log();
    for i in 0..5 {
        let order = order.clone();
        detach(&rt, async move { push(&order, i) });
    }
    assert!(entries(&order).is_empty(), "spawning must not run anything");
    mock.run_until_stalled().unwrap();
    assert_eq!(entries(&order), [0, 1, 2, 3, 4]);
    assert_eq!(mock.elapsed(), Duration::ZERO);
    assert!(mock.live_tasks().is_empty());
}

#[test]
fn tasks_spawned_by_a_task_run_after_those_already_ready() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let order = log();
    for i in 0..3 {
        let (rt2, order) = (rt.clone(), order.clone());
        detach(&rt, async move {
            push(&order, format!("{i}"));
            if i == 0 {
                let order = order.clone();
                detach(&rt2, async move { push(&order, "0a".to_owned()) });
            }
        });
    }
    mock.run_until_stalled().unwrap();
    assert_eq!(entries(&order), ["0", "1", "2", "0a"]);
}

#[test]
fn block_on_polls_main_first_then_its_tasks_in_spawn_order() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let order = log();
    let seen = mock
        .block_on({
            let order = order.clone();
            async move {
                let handles: Vec<_> = (0..5)
                    .map(|i| {
                        let order = order.clone();
                        rt.spawn(async move { push(&order, i) }).unwrap()
                    })
                    .collect();
                push(&order, 100);
                for h in handles {
                    h.await.unwrap();
                }
                entries(&order)
            }
        })
        .unwrap();
    assert_eq!(seen, [100, 0, 1, 2, 3, 4]);
}

// ---------------------------------------------------------------------------
// 5. run_until_stalled
// ---------------------------------------------------------------------------

#[test]
fn run_until_stalled_runs_ready_tasks_without_moving_the_clock() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let start = mock.now();
    let seen = log();
    {
        let (rt2, seen) = (rt.clone(), seen.clone());
        detach(&rt, async move {
            push(&seen, rt2.now() - start);
            yield_now().await;
            push(&seen, rt2.now() - start);
            rt2.sleep(secs(1)).await;
            push(&seen, rt2.now() - start);
        });
    }
    mock.run_until_stalled().unwrap();
    assert_eq!(entries(&seen), [Duration::ZERO, Duration::ZERO]);
    assert_eq!(mock.elapsed(), Duration::ZERO);
    assert_eq!(mock.pending_timers(), 1);
    assert_eq!(mock.live_tasks(), ["task#1"]);

    mock.run_until_stalled().unwrap();
    assert_eq!(entries(&seen).len(), 2);
    assert_eq!(mock.elapsed(), Duration::ZERO);

    mock.advance(secs(1)).unwrap();
    assert_eq!(entries(&seen), [Duration::ZERO, Duration::ZERO, secs(1)]);
    assert!(mock.live_tasks().is_empty());
}

#[test]
fn a_wake_from_outside_is_run_by_the_next_run_until_stalled() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let (tx, rx) = oneshot::channel();
    let got = log();
    {
        let got = got.clone();
        detach(&rt, async move { push(&got, rx.await.unwrap()) });
    }
    mock.run_until_stalled().unwrap();
    assert!(entries(&got).is_empty());
    std::thread::spawn(move || tx.send(9).unwrap())
        .join()
        .unwrap();
    mock.run_until_stalled().unwrap();
    assert_eq!(entries(&got), [9]);
    assert_eq!(mock.elapsed(), Duration::ZERO);
}

#[test]
fn tasks_made_ready_while_idle_run_in_the_order_they_became_ready() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let order = log();
    let (tx, rx) = oneshot::channel::<()>();
    {
        let order = order.clone();
        detach(&rt, async move {
            rx.await.unwrap();
            push(&order, "woken");
        });
    }
    mock.run_until_stalled().unwrap();
    {
        let order = order.clone();
        detach(&rt, async move { push(&order, "spawned first") });
    }
    std::thread::spawn(move || tx.send(()).unwrap())
        .join()
        .unwrap();
    {
        let order = order.clone();
        detach(&rt, async move { push(&order, "spawned last") });
    }
    mock.run_until_stalled().unwrap();
    assert_eq!(entries(&order), ["spawned first", "woken", "spawned last"]);
}

#[test]

fn a_task_woken_by_another_thread_during_a_poll_keeps_its_place_in_line() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let order = log();
    let (tx, rx) = oneshot::channel::<()>();
    {
        let order = order.clone();
        detach(&rt, async move {
            rx.await.unwrap();
            push(&order, "woken second");
        });
    }
    mock.run_until_stalled().unwrap();
    {
        let (rt2, order) = (rt.clone(), order.clone());
        detach(&rt, async move {
            let first = order.clone();
            detach(&rt2, async move { push(&first, "spawned first") });
            std::thread::spawn(move || tx.send(()).unwrap())
                .join()
                .unwrap();
            push(&order, "poller");
        });
    }
    mock.run_until_stalled().unwrap();
    assert_eq!(entries(&order), ["poller", "spawned first", "woken second"]);
}

#[test]

fn a_task_woken_by_a_nested_runtime_keeps_its_place_in_line() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let order = log();
    let (tx, rx) = oneshot::channel::<()>();
    {
        let order = order.clone();
        detach(&rt, async move {
            rx.await.unwrap();
            push(&order, "woken second");
        });
    }
    mock.run_until_stalled().unwrap();
    {
        let (rt2, order) = (rt.clone(), order.clone());
        detach(&rt, async move {
            let first = order.clone();
            detach(&rt2, async move { push(&first, "spawned first") });
            let inner = MockRuntime::new();
            inner.block_on(async move { tx.send(()).unwrap() }).unwrap();
            push(&order, "poller");
        });
    }
    mock.run_until_stalled().unwrap();
    assert_eq!(entries(&order), ["poller", "spawned first", "woken second"]);
}

#[test]
fn wakes_between_runs_stay_with_their_own_runtime() {
    let a = MockRuntime::new();
    let b = MockRuntime::new();
    let (rta, rtb) = (a.runtime(), b.runtime());
    let ran_on = log();
    let (tx, rx) = oneshot::channel::<()>();
    {
        let ran_on = ran_on.clone();
        detach(&rta, async move {
            rx.await.unwrap();
            push(&ran_on, "a");
        });
    }
    a.run_until_stalled().unwrap();
    // Woken on this thread while `a` is idle, then `b` runs here.
    tx.send(()).unwrap();
    {
        let ran_on = ran_on.clone();
        detach(&rtb, async move { push(&ran_on, "b") });
    }
    b.run_until_stalled().unwrap();
    assert_eq!(entries(&ran_on), ["b"], "b must not run a's task");
    assert_eq!(a.live_tasks(), ["task#1"]);
    a.run_until_stalled().unwrap();
    assert_eq!(entries(&ran_on), ["b", "a"]);
    assert!(a.live_tasks().is_empty());
}
