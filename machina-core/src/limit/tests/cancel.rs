//! Cancel safety: dropping a waiting acquire, dropping a permit, aborting a
//! task and panicking inside a call never leak a slot, a token or a place
//! in the queue.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

#[test]
fn dropping_a_waiting_acquire_gives_up_its_place_and_nothing_else() {
    let (mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::new().max_in_flight(1));
    let starts = log();
    let holder = call(&rt, t0, &[&api], 0, (0, 100), &starts);
    let quitter = {
        let (rt2, api) = (rt.clone(), api.clone());
        rt.spawn(async move {
            rt2.sleep_until(t0 + ms(10)).await;
            let outcome = rt2.timeout(ms(40), api.acquire()).await;
            (outcome.is_err(), since(&rt2, t0))
        })
        .unwrap()
    };
    let patient = call(&rt, t0, &[&api], 2, (20, 0), &starts);

    mock.advance(ms(30)).unwrap();
    assert_eq!((api.in_flight(), api.waiting()), (1, 2));
    mock.advance(ms(20)).unwrap();
    assert_eq!((api.in_flight(), api.waiting()), (1, 1));
    assert_eq!(join_all(&mock, vec![quitter]), [(true, 50)]);
    assert_eq!(join_all(&mock, vec![holder, patient]), [0, 100]);
    assert_eq!((api.in_flight(), api.waiting()), (0, 0));
    let stats = api.stats();
    assert_eq!((stats.acquired, stats.abandoned, stats.waited), (2, 1, 1));
}

#[test]
fn an_acquire_dropped_before_its_first_poll_changes_nothing() {
    let (_mock, rt, _t0) = setup();
    let api = group(&rt, "api", Limits::new().max_in_flight(1));
    drop(api.acquire());
    let unpolled = acquire_all(std::slice::from_ref(&api)).unwrap();
    drop(unpolled);
    assert_eq!((api.in_flight(), api.waiting()), (0, 0));
    assert_eq!(api.stats(), GroupStats::default());
    assert!(api.try_acquire().is_ok());
}

#[test]
fn a_caller_stuck_on_b_does_not_hold_back_a_newcomer_to_a() {
    // The older caller needs `a` and `b` and waits for `b`; `a` is free. A
    // newcomer to `a` alone starts at once: a waiter is queued only in the
    // groups it waits for. (Before, it waited in `a`'s queue too, and the
    // newcomer started only when the older caller gave up at 50.)
    let (mock, rt, t0) = setup();
    let a = group(&rt, "a", Limits::new().max_in_flight(1));
    let b = group(&rt, "b", Limits::new().max_in_flight(1));
    let starts = log();
    let b_holder = call(&rt, t0, &[&b], 0, (0, 100), &starts);
    let older = {
        let (rt2, a, b) = (rt.clone(), a.clone(), b.clone());
        rt.spawn(async move {
            rt2.sleep_until(t0 + ms(10)).await;
            let outcome = rt2.timeout(ms(40), acquire_all(&[a, b]).unwrap()).await;
            outcome.is_err()
        })
        .unwrap()
    };
    let newcomer = call(&rt, t0, &[&a], 2, (20, 10), &starts);
    mock.advance(ms(20)).unwrap();
    assert_eq!((a.waiting(), b.waiting()), (0, 1));
    assert_eq!(
        a.in_flight(),
        1,
        "the newcomer runs while the older caller waits for b"
    );
    assert_eq!(join_all(&mock, vec![older]), [true]);
    assert_eq!(join_all(&mock, vec![newcomer, b_holder]), [20, 0]);
    assert_eq!(
        (a.waiting(), b.waiting(), a.in_flight(), b.in_flight()),
        (0, 0, 0, 0)
    );
}

#[test]
fn cancelling_the_head_waiting_for_a_token_hands_the_token_to_the_next() {
    let (mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::new().max_starts(1, ms(300)));
    drop(api.try_acquire().unwrap());
    let head = {
        let (rt2, api) = (rt.clone(), api.clone());
        rt.spawn(async move {
            rt2.sleep_until(t0 + ms(10)).await;
            rt2.timeout(ms(190), api.acquire()).await.is_err()
        })
        .unwrap()
    };
    let starts = log();
    let next = call(&rt, t0, &[&api], 1, (20, 0), &starts);
    mock.advance(ms(199)).unwrap();
    assert_eq!(api.waiting(), 2);
    mock.advance(ms(1)).unwrap();
    assert_eq!(api.waiting(), 1);
    assert_eq!(mock.pending_timers(), 1, "the new head sleeps until 300");
    assert_eq!(join_all(&mock, vec![head]), [true]);
    assert_eq!(join_all(&mock, vec![next]), [300]);
    assert_eq!(api.starts_in_window(), 1);
}

/// The ways a waiting caller can be cancelled.
#[derive(Debug, Clone, Copy)]
enum Cancel {
    /// Its acquire future is dropped (here by a `Runtime::timeout`).
    DropAcquire,
    /// Its task is aborted.
    AbortTask,
    /// `acquire_timeout` gives up.
    AcquireTimeout,
}

/// Spawns a caller that arrives at `arrival` and is cancelled at `cancel`
/// (both ms after `t0`) while it waits, in the way `how`; the handle gives
/// whether it ever got a permit.
fn cancelled_waiter(
    rt: &Runtime,
    t0: Instant,
    api: &ConcurrentGroup,
    (arrival, cancel): (u64, u64),
    how: Cancel,
) -> JoinHandle<bool> {
    let (rt2, api) = (rt.clone(), api.clone());
    let waiter = rt
        .spawn(async move {
            rt2.sleep_until(t0 + ms(arrival)).await;
            let patience = ms(cancel - arrival);
            match how {
                Cancel::DropAcquire => rt2.timeout(patience, api.acquire()).await.is_ok(),
                Cancel::AbortTask => {
                    let _permit = api.acquire().await;
                    true
                }
                Cancel::AcquireTimeout => match api.acquire_timeout(patience).await {
                    Ok(_) => true,
                    Err(err) => {
                        let expected = AcquireError::TimedOut {
                            groups: "api".to_owned(),
                            waited: patience,
                        };
                        assert_eq!(err, expected);
                        false
                    }
                },
            }
        })
        .unwrap();
    if let Cancel::AbortTask = how {
        let (rt2, abort) = (rt.clone(), waiter.abort_handle());
        rt.spawn(async move {
            rt2.sleep_until(t0 + ms(cancel)).await;
            abort.abort();
        })
        .unwrap()
        .detach();
    }
    waiter
}

#[test]
fn a_waiter_cancelled_while_waiting_for_a_token_leaks_no_slot_unlike_exmachina() {
    // exmachina takes the concurrency slot first, then waits for a time
    // token, and loses the slot when cancelled in between. One slot, one
    // start per second: the first call ends at 10; B arrives at 20, has a
    // free slot but no token until 1000, and is cancelled at 500. If B kept
    // the slot, C could never start.
    for how in [
        Cancel::DropAcquire,
        Cancel::AbortTask,
        Cancel::AcquireTimeout,
    ] {
        let (mock, rt, t0) = setup();
        let limits = Limits::new().max_in_flight(1).max_starts(1, ms(1000));
        let api = group(&rt, "api", limits);
        let starts = log();
        let first = call(&rt, t0, &[&api], 0, (0, 10), &starts);
        let b = cancelled_waiter(&rt, t0, &api, (20, 500), how);
        let c = call(&rt, t0, &[&api], 2, (600, 100), &starts);

        mock.advance(ms(499)).unwrap();
        assert_eq!((api.in_flight(), api.waiting()), (0, 1), "{how:?}");
        mock.advance(ms(1)).unwrap();
        assert_eq!((api.in_flight(), api.waiting()), (0, 0), "{how:?}");
        assert_eq!(api.next_start(), Some(t0 + ms(1000)), "{how:?}");
        assert_eq!(mock.pending_timers(), 1, "{how:?}: only C's arrival");

        let outcome = mock.block_on(b).unwrap();
        match how {
            Cancel::AbortTask => assert!(outcome.unwrap_err().is_cancelled()),
            _ => assert!(!outcome.unwrap(), "{how:?}"),
        }
        assert_eq!(join_all(&mock, vec![first, c]), [0, 1000], "{how:?}");
        assert_eq!((api.in_flight(), api.waiting()), (0, 0), "{how:?}");
        assert_eq!(api.stats().abandoned, 1, "{how:?}");
    }
}

#[test]
fn a_waiter_cancelled_while_waiting_for_a_token_leaks_no_slot_with_others_running() {
    // Two slots, one held by a long call; the cancelled waiter must not
    // keep the other, or C would wait for the long call to end at 5000.
    for how in [
        Cancel::DropAcquire,
        Cancel::AbortTask,
        Cancel::AcquireTimeout,
    ] {
        let (mock, rt, t0) = setup();
        let limits = Limits::new().max_in_flight(2).max_starts(1, ms(1000));
        let api = group(&rt, "api", limits);
        let starts = log();
        let long = call(&rt, t0, &[&api], 0, (0, 5000), &starts);
        let b = cancelled_waiter(&rt, t0, &api, (10, 500), how);
        let c = call(&rt, t0, &[&api], 2, (600, 100), &starts);
        mock.advance(ms(500)).unwrap();
        assert_eq!((api.in_flight(), api.waiting()), (1, 0), "{how:?}");
        mock.advance(ms(500)).unwrap();
        assert_eq!((api.in_flight(), api.waiting()), (2, 0), "{how:?}");
        drop(mock.block_on(b).unwrap());
        assert_eq!(join_all(&mock, vec![long, c]), [0, 1000], "{how:?}");
        assert_eq!((api.in_flight(), api.waiting()), (0, 0), "{how:?}");
    }
}

#[test]
fn dropping_a_permit_frees_its_slot_at_that_instant() {
    let (mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::new().max_in_flight(1));
    let permit = api.try_acquire().unwrap();
    assert_eq!(permit.groups(), ["api"]);
    let starts = log();
    let waiter = call(&rt, t0, &[&api], 0, (0, 0), &starts);
    mock.advance(ms(70)).unwrap();
    assert!(entries(&starts).is_empty());
    drop(permit);
    assert_eq!(api.in_flight(), 0);
    mock.run_until_stalled().unwrap();
    assert_eq!(entries(&starts), [(0, 70)]);
    assert_eq!(join_all(&mock, vec![waiter]), [70]);
}

fn fail() {
    panic!("the call failed");
}

#[test]
fn a_call_that_panics_gives_its_slots_back_as_it_unwinds() {
    let (mock, rt, t0) = setup();
    let limits = Limits::new().max_in_flight(1).max_starts(2, ms(1000));
    let a = group(&rt, "a", limits);
    let b = group(&rt, "b", Limits::new().max_in_flight(1));
    let panicking = {
        let (rt2, a, b) = (rt.clone(), a.clone(), b.clone());
        rt.spawn(async move {
            let _permit = acquire_all(&[a, b]).unwrap().await;
            rt2.sleep(ms(50)).await;
            fail();
        })
        .unwrap()
    };
    let starts = log();
    let in_a = call(&rt, t0, &[&a], 1, (10, 0), &starts);
    let in_b = call(&rt, t0, &[&b], 2, (20, 0), &starts);
    mock.advance(ms(49)).unwrap();
    assert_eq!((a.in_flight(), b.in_flight()), (1, 1));
    assert_eq!((a.waiting(), b.waiting()), (1, 1));
    let outcome = mock.block_on(panicking).unwrap();
    let err: JoinError = outcome.unwrap_err();
    assert_eq!(err.panic_payload().unwrap().message(), "the call failed");
    assert_eq!(join_all(&mock, vec![in_a, in_b]), [50, 50]);
    assert_eq!((a.in_flight(), b.in_flight()), (0, 0));
    assert_eq!(a.starts_in_window(), 2, "a panic returns no token early");
}

#[test]
fn aborting_a_running_call_frees_its_slot_at_the_abort() {
    let (mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::new().max_in_flight(1));
    let starts = log();
    let running = call(&rt, t0, &[&api], 0, (0, 1000), &starts);
    let waiter = call(&rt, t0, &[&api], 1, (10, 0), &starts);
    mock.advance(ms(40)).unwrap();
    assert_eq!((api.in_flight(), api.waiting()), (1, 1));
    running.abort();
    mock.run_until_stalled().unwrap();
    assert_eq!(since(&rt, t0), 40);
    assert!(mock.block_on(running).unwrap().unwrap_err().is_cancelled());
    assert_eq!(join_all(&mock, vec![waiter]), [40]);
    assert_eq!(entries(&starts), [(0, 0), (1, 40)]);
    assert_eq!((api.in_flight(), api.waiting()), (0, 0));
}

#[test]
fn acquire_timeout_gives_up_at_its_deadline_and_leaves_nothing_queued() {
    let (mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::new().max_in_flight(1));
    let holder = api.try_acquire().unwrap();
    let (err, at) = mock
        .block_on({
            let (rt, api) = (rt.clone(), api.clone());
            async move {
                let err = api.acquire_timeout(ms(50)).await.unwrap_err();
                (err, since(&rt, t0))
            }
        })
        .unwrap();
    assert_eq!(at, 50);
    assert_eq!(
        err,
        AcquireError::TimedOut {
            groups: "api".to_owned(),
            waited: ms(50),
        }
    );
    assert_eq!(
        err.to_string(),
        "gave up waiting for concurrent group api after 50ms"
    );
    assert_eq!((api.in_flight(), api.waiting()), (1, 0));
    assert_eq!(mock.pending_timers(), 0, "no timer left behind");
    assert_eq!(api.stats().abandoned, 1);
    drop(holder);
    assert!(api.try_acquire().is_ok(), "nobody is left in the queue");
}

#[test]
fn acquire_timeout_succeeds_when_the_token_returns_exactly_at_the_deadline() {
    let (mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::new().max_starts(1, ms(300)));
    drop(api.try_acquire().unwrap());
    let at = mock
        .block_on({
            let (rt, api) = (rt.clone(), api.clone());
            async move {
                let permit = api.acquire_timeout(ms(300)).await.unwrap();
                drop(permit);
                since(&rt, t0)
            }
        })
        .unwrap();
    assert_eq!(at, 300);
    assert_eq!(api.stats().abandoned, 0);
    assert_eq!(api.stats().acquired, 2);
}
