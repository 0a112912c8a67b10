//! The non-blocking API, introspection, counters, and clear errors for
//! groups that could never admit a call.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

#[test]
fn bad_groups_are_refused_at_construction_with_a_clear_error() {
    let (_mock, rt, _t0) = setup();
    let err = ConcurrentGroup::new(&rt, "", Limits::new()).unwrap_err();
    assert_eq!(err, LimitError::EmptyName);
    assert_eq!(
        err.to_string(),
        "invalid concurrent group name: it is empty; give every group a unique name"
    );
    let err = ConcurrentGroup::new(&rt, "", Limits::new().max_in_flight(0)).unwrap_err();
    assert_eq!(err, LimitError::EmptyName, "the name is checked first");

    let err = ConcurrentGroup::new(&rt, "api", Limits::new().max_in_flight(0)).unwrap_err();
    assert_eq!(
        err,
        LimitError::ZeroInFlight {
            group: "api".to_owned()
        }
    );
    assert!(
        err.to_string().contains("\"api\": max_in_flight is 0"),
        "{err}"
    );

    let err = ConcurrentGroup::new(&rt, "api", Limits::new().max_starts(0, ms(500))).unwrap_err();
    assert_eq!(
        err,
        LimitError::ZeroStarts {
            group: "api".to_owned(),
            window: ms(500)
        }
    );
    assert!(err.to_string().contains("0 starts per 500ms"), "{err}");

    let limits = Limits::new().max_in_flight(0).max_starts(0, ms(1));
    assert!(matches!(
        ConcurrentGroup::new(&rt, "db", limits),
        Err(LimitError::ZeroInFlight { .. })
    ));

    let err = acquire_all(&[]).unwrap_err();
    assert_eq!(err, LimitError::NoGroups);
    assert_eq!(
        err.to_string(),
        "no concurrent group given: acquire_all needs at least one group"
    );
}

#[test]
fn limits_that_admit_calls_are_accepted() {
    let (_mock, rt, _t0) = setup();
    for limits in [
        Limits::new(),
        Limits::new().max_in_flight(1),
        Limits::new().max_starts(1, Duration::from_nanos(1)),
        Limits::new().max_starts(0, Duration::ZERO),
        Limits::new()
            .max_in_flight(u32::MAX)
            .max_starts(u32::MAX, ms(1)),
    ] {
        let g = ConcurrentGroup::new(&rt, "ok", limits).unwrap();
        assert_eq!(g.limits(), limits);
        assert_eq!(g.name(), "ok");
    }
}

#[test]
fn try_acquire_says_what_blocks_and_until_when() {
    let (mock, rt, t0) = setup();
    let limits = Limits::new().max_in_flight(1).max_starts(2, ms(100));
    let api = group(&rt, "api", limits);
    let first = api.try_acquire().unwrap();
    let refused = api.try_acquire().unwrap_err();
    assert_eq!(
        refused,
        Refusal {
            reason: Reason::InFlight,
            until: None
        }
    );
    assert_eq!(refused.to_string(), "every in-flight slot is taken");
    drop(first);
    mock.advance(ms(10)).unwrap();
    drop(api.try_acquire().unwrap());
    let refused = api.try_acquire().unwrap_err();
    assert_eq!(
        refused,
        Refusal {
            reason: Reason::Window,
            until: Some(t0 + ms(100))
        }
    );
    assert_eq!(
        refused.to_string(),
        "every start of the current window is spent"
    );
    assert_eq!(api.stats().rejected, 2);
}

#[test]
fn try_acquire_refuses_with_queue_while_others_wait_even_when_free() {
    let (mock, rt, t0) = setup();
    let a = group(&rt, "a", Limits::new().max_in_flight(1));
    let b = group(&rt, "b", Limits::new().max_in_flight(1));
    let a_held = a.try_acquire().unwrap();
    // A call in `a` waits for it.
    let starts = log();
    let waiter = call(&rt, t0, &[&a], 0, (0, 0), &starts);
    mock.run_until_stalled().unwrap();
    assert_eq!((a.in_flight(), a.waiting()), (1, 1));
    // The slot is free, but the waiter (woken, not yet run) comes first.
    drop(a_held);
    let queue = Refusal {
        reason: Reason::Queue,
        until: None,
    };
    assert_eq!(a.try_acquire().unwrap_err(), queue);
    assert_eq!(queue.to_string(), "other callers are waiting first");
    assert_eq!(
        try_acquire_all(std::slice::from_ref(&a)).unwrap_err(),
        queue
    );
    assert_eq!(
        try_acquire_all(&[a.clone(), b.clone()]).unwrap_err().reason,
        Reason::Queue
    );
    assert_eq!(a.next_start(), None, "others are waiting");
    assert_eq!(a.in_flight(), 0, "refusals take nothing");
    assert_eq!(b.in_flight(), 0, "refusals take nothing");
    assert_eq!(join_all(&mock, vec![waiter]), [0]);
    assert!(a.try_acquire().is_ok(), "the queue is empty again");
}

#[test]
fn next_start_is_now_when_free_the_window_edge_or_unknown() {
    let (mock, rt, t0) = setup();
    let api = group(
        &rt,
        "api",
        Limits::new().max_in_flight(1).max_starts(1, ms(100)),
    );
    assert_eq!(api.next_start(), Some(t0));
    let permit = api.try_acquire().unwrap();
    assert_eq!(api.next_start(), None, "a running call must end first");
    mock.advance(ms(30)).unwrap();
    drop(permit);
    assert_eq!(api.next_start(), Some(t0 + ms(100)));
    mock.advance(ms(70)).unwrap();
    assert_eq!(api.next_start(), Some(t0 + ms(100)));
    mock.advance(ms(5)).unwrap();
    assert_eq!(api.next_start(), Some(t0 + ms(105)));
}

#[test]
fn stats_count_acquired_waited_rejected_and_abandoned() {
    let (mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::new().max_in_flight(1));
    let starts = log();
    // Starts at 0 without waiting; 100 after waiting 90; 150 after 130.
    let handles = calls(&rt, t0, &[&api], &[(0, 100), (10, 50), (20, 0)], &starts);
    let side = {
        let (rt2, api) = (rt.clone(), api.clone());
        rt.spawn(async move {
            rt2.sleep_until(t0 + ms(30)).await;
            let refused = api.try_acquire().is_err();
            let timed_out = api.acquire_timeout(ms(5)).await.is_err();
            (refused, timed_out)
        })
        .unwrap()
    };
    assert_eq!(join_all(&mock, vec![side]), [(true, true)]);
    assert_eq!(join_all(&mock, handles), [0, 100, 150]);
    let stats = api.stats();
    assert_eq!(stats.acquired, 3);
    assert_eq!(stats.waited, 2);
    assert_eq!(stats.wait_time, ms(90 + 130));
    assert_eq!(stats.rejected, 1);
    assert_eq!(stats.abandoned, 1);
}

#[test]
fn debug_output_shows_the_state() {
    let (mock, rt, _t0) = setup();
    let api = group(&rt, "api", Limits::new().max_in_flight(1));
    let permit = api.try_acquire().unwrap();
    let shown = format!("{api:?}");
    assert!(shown.contains("name: \"api\""), "{shown}");
    assert!(shown.contains("in_flight: 1"), "{shown}");
    assert!(shown.contains("waiting: 0"), "{shown}");
    assert_eq!(format!("{permit:?}"), "Permit { groups: [\"api\"] }");
    let mut waiting = Box::pin(api.acquire());
    let polled = mock
        .block_on(futures::future::poll_fn(|cx| {
            std::task::Poll::Ready(waiting.as_mut().poll(cx).is_pending())
        }))
        .unwrap();
    assert!(polled);
    assert!(format!("{waiting:?}").contains("queued: true"));
    assert_eq!(api.waiting(), 1);
    drop(waiting);
    assert_eq!(api.waiting(), 0);
}

#[test]
fn a_borrowed_guard_holds_and_hands_on_its_slot_like_a_permit() {
    let (mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::new().max_in_flight(1));
    let guard = api.try_acquire_guard().unwrap();
    assert_eq!(guard.group(), "api");
    assert_eq!(
        api.try_acquire_guard().unwrap_err().reason,
        Reason::InFlight
    );
    let starts = log();
    let waiter = call(&rt, t0, &[&api], 0, (0, 10), &starts);
    mock.advance(ms(30)).unwrap();
    assert_eq!((api.in_flight(), api.waiting()), (1, 1));
    // While someone waits, a guard is refused for the queue, as a permit.
    assert_eq!(api.try_acquire_guard().unwrap_err().reason, Reason::Queue);
    drop(guard);
    assert_eq!(join_all(&mock, vec![waiter]), [30]);
    assert_eq!(api.in_flight(), 0);
    let stats = api.stats();
    assert_eq!((stats.acquired, stats.rejected, stats.waited), (2, 2, 1));
}
