//! Nested and concurrent calls into a running mock runtime.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

// ---------------------------------------------------------------------------
// 7. Reentrancy
// ---------------------------------------------------------------------------

/// Runs `outer` while a task of `mock` calls `block_on`, `advance` and
/// `run_until_stalled` on the same runtime; returns what those calls gave.
fn nested_calls(outer: impl FnOnce(&MockRuntime)) -> Vec<Result<(), MockError>> {
    let mock = Arc::new(MockRuntime::new());
    let rt = mock.runtime();
    let results = log();
    {
        let (inner, results) = (mock.clone(), results.clone());
        detach(&rt, async move {
            push(&results, inner.block_on(async {}));
            push(&results, inner.advance(secs(1)));
            push(&results, inner.run_until_stalled());
        });
    }
    outer(&mock);
    assert_eq!(
        mock.elapsed(),
        Duration::ZERO,
        "the nested advance must not move the clock"
    );
    assert!(mock.live_tasks().is_empty());
    // The outer call released the runtime.
    assert_eq!(mock.run_until_stalled(), Ok(()));
    assert_eq!(mock.block_on(async { 1 }), Ok(1));
    assert_eq!(Arc::strong_count(&mock), 1, "the task's clone was dropped");
    entries(&results)
}

#[test]
fn nested_calls_from_a_task_report_already_running() {
    let expected = vec![Err(MockError::AlreadyRunning); 3];
    assert_eq!(nested_calls(|m| m.run_until_stalled().unwrap()), expected);
    // The main future yields once, so that the task runs before it ends.
    assert_eq!(nested_calls(|m| m.block_on(yield_now()).unwrap()), expected);
    assert_eq!(
        nested_calls(|m| m.advance(Duration::ZERO).unwrap()),
        expected
    );
}

#[test]
fn nested_calls_from_the_main_future_report_already_running() {
    let mock = MockRuntime::new();
    let results = mock
        .block_on(async {
            [
                mock.block_on(async {}),
                mock.advance(secs(1)),
                mock.run_until_stalled(),
            ]
        })
        .unwrap();
    assert_eq!(results.to_vec(), vec![Err(MockError::AlreadyRunning); 3]);
    assert_eq!(mock.elapsed(), Duration::ZERO);
    assert!(mock.block_on(async {}).is_ok());
}

#[test]
fn calls_from_another_thread_while_running_report_already_running() {
    let mock = MockRuntime::new();
    let results = mock
        .block_on(async {
            std::thread::scope(|s| {
                s.spawn(|| {
                    [
                        mock.block_on(async {}),
                        mock.advance(secs(1)),
                        mock.run_until_stalled(),
                    ]
                })
                .join()
                .unwrap()
            })
        })
        .unwrap();
    assert_eq!(results.to_vec(), vec![Err(MockError::AlreadyRunning); 3]);
    assert_eq!(mock.elapsed(), Duration::ZERO);
}

#[test]
fn another_mock_runtime_may_run_inside_a_task() {
    let outer = MockRuntime::new();
    let rt = outer.runtime();
    let order = log();
    {
        let (rt2, order) = (rt.clone(), order.clone());
        detach(&rt, async move {
            // Ready on the outer runtime before the inner one starts: it must
            // run on the outer runtime, after this task's poll, not inside
            // the inner block_on.
            let sibling = order.clone();
            detach(&rt2, async move { push(&sibling, "outer sibling") });
            let inner = MockRuntime::new();
            let irt = inner.runtime();
            let inner_order = order.clone();
            let v = inner.block_on(async move {
                irt.sleep(secs(4)).await;
                push(&inner_order, "inner main");
                4
            });
            assert_eq!(v, Ok(4));
            assert_eq!(inner.elapsed(), secs(4));
            push(&order, "outer task");
        });
    }
    outer.run_until_stalled().unwrap();
    assert_eq!(
        entries(&order),
        ["inner main", "outer task", "outer sibling"]
    );
    assert!(outer.live_tasks().is_empty());
    assert_eq!(outer.elapsed(), Duration::ZERO);
}

#[test]
fn a_mock_runtime_inside_a_task_hands_its_value_back() {
    let outer = MockRuntime::new();
    let rt = outer.runtime();
    let value = outer
        .block_on(async move {
            rt.spawn(async {
                let inner = MockRuntime::new();
                let irt = inner.runtime();
                let v = inner.block_on(async move {
                    irt.sleep(secs(4)).await;
                    4
                });
                (v, inner.elapsed())
            })
            .unwrap()
            .await
            .unwrap()
        })
        .unwrap();
    assert_eq!(value, (Ok(4), secs(4)));
    assert_eq!(outer.elapsed(), Duration::ZERO);
}
