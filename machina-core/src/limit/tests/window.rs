//! The sliding window on start times: a start's token returns exactly one
//! window after that start, however long the call runs.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

#[test]
fn the_issue_example_starts_at_0_100_300_400_however_long_calls_run() {
    // 2 starts per 300 ms; arrivals at 0, 100, 150, 160 ms. The hold times
    // show that tokens return from the start, not from the end of a call.
    for hold in [0, 50, 299, 300, 10_000] {
        let (mock, rt, t0) = setup();
        let api = group(&rt, "api", Limits::new().max_starts(2, ms(300)));
        let starts = log();
        let schedule = [0, 100, 150, 160].map(|arrival| (arrival, hold));
        let handles = calls(&rt, t0, &[&api], &schedule, &starts);
        assert_eq!(
            join_all(&mock, handles),
            [0, 100, 300, 400],
            "hold {hold} ms"
        );
        assert_eq!(entries(&starts), [(0, 0), (1, 100), (2, 300), (3, 400)]);
        assert_eq!((api.in_flight(), api.waiting()), (0, 0));
    }
}

#[test]
fn one_start_per_window_spaces_a_burst_exactly_one_window_apart() {
    let (mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::new().max_starts(1, ms(100)));
    let starts = log();
    let handles = calls(&rt, t0, &[&api], &[(0, 0); 5], &starts);
    assert_eq!(join_all(&mock, handles), [0, 100, 200, 300, 400]);
}

#[test]
fn a_token_returns_at_the_window_edge_and_not_a_nanosecond_before() {
    let (mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::new().max_starts(2, ms(300)));
    let first = api.try_acquire().unwrap();
    mock.advance(ms(100)).unwrap();
    let second = api.try_acquire().unwrap();
    drop((first, second));
    assert_eq!(api.in_flight(), 0, "dropping permits returns no token");
    assert_eq!(api.starts_in_window(), 2);

    mock.advance(ms(199)).unwrap();
    let refused = api.try_acquire().unwrap_err();
    assert_eq!(refused.reason, Reason::Window);
    assert_eq!(refused.until, Some(t0 + ms(300)));
    assert_eq!(api.next_start(), Some(t0 + ms(300)));

    mock.advance(ms(1) - Duration::from_nanos(1)).unwrap();
    assert_eq!(api.try_acquire().unwrap_err().until, Some(t0 + ms(300)));
    assert_eq!(api.starts_in_window(), 2);

    mock.advance(Duration::from_nanos(1)).unwrap();
    assert_eq!(since(&rt, t0), 300);
    assert_eq!(
        api.starts_in_window(),
        1,
        "the token of the start at 0 is back"
    );
    assert_eq!(api.next_start(), Some(t0 + ms(300)));
    let third = api.try_acquire().unwrap();
    assert_eq!(api.try_acquire().unwrap_err().until, Some(t0 + ms(400)));
    drop(third);
    mock.advance(ms(100)).unwrap();
    assert_eq!(api.starts_in_window(), 1);
    assert!(api.try_acquire().is_ok());
}

#[test]
fn in_flight_and_window_limit_together_as_in_exmachina_readme() {
    // 4 in flight, 3 starts per second; eight calls at 0 ms holding 2.5 s.
    // 0,0,0: three tokens. 1000: a token is back, a slot is free.
    // 2500: the three first calls end; no start lies in (1500, 2500], so
    // three start. 3500: the call started at 1000 ends; its token is back.
    let (mock, rt, t0) = setup();
    let limits = Limits::new().max_in_flight(4).max_starts(3, ms(1000));
    let api = group(&rt, "api", limits);
    let starts = log();
    let handles = calls(&rt, t0, &[&api], &[(0, 2500); 8], &starts);
    assert_eq!(
        join_all(&mock, handles),
        [0, 0, 0, 1000, 2500, 2500, 2500, 3500]
    );
}

#[test]
fn introspection_follows_slots_tokens_and_waiters_over_time() {
    let (mock, rt, t0) = setup();
    let limits = Limits::new().max_in_flight(2).max_starts(2, ms(300));
    let api = group(&rt, "api", limits);
    assert_eq!(api.next_start(), Some(t0));
    let starts = log();
    // Starts at 0 and 50 (two tokens); 300 (a slot frees at 200, the token
    // of the start at 0 returns at 300); 350 (the slot and the token of the
    // start at 50 both come back at 350).
    let handles = calls(
        &rt,
        t0,
        &[&api],
        &[(0, 200), (50, 300), (100, 100), (120, 100)],
        &starts,
    );

    mock.advance(ms(120)).unwrap();
    assert_eq!(api.in_flight(), 2);
    assert_eq!(api.waiting(), 2);
    assert_eq!(api.starts_in_window(), 2);
    assert_eq!(api.next_start(), None, "others are waiting");

    // 200: the call started at 0 ends; the head still lacks a token.
    mock.advance(ms(80)).unwrap();
    assert_eq!((api.in_flight(), api.waiting()), (1, 2));
    assert_eq!(api.starts_in_window(), 2);

    // 300: the token of the start at 0 returns; the head starts.
    mock.advance(ms(100)).unwrap();
    assert_eq!(entries(&starts).last(), Some(&(2, 300)));
    assert_eq!((api.in_flight(), api.waiting()), (2, 1));
    assert_eq!(api.starts_in_window(), 2);

    // 350: the call started at 50 ends and its token returns; the last
    // waiter starts at once.
    mock.advance(ms(50)).unwrap();
    assert_eq!(entries(&starts).last(), Some(&(3, 350)));
    assert_eq!((api.in_flight(), api.waiting()), (2, 0));
    assert_eq!(api.next_start(), None, "every slot is held");

    // 400: the call started at 300 ends; the window is still full.
    mock.advance(ms(50)).unwrap();
    assert_eq!(api.in_flight(), 1);
    assert_eq!(api.starts_in_window(), 2);
    assert_eq!(api.next_start(), Some(t0 + ms(600)));

    assert_eq!(join_all(&mock, handles), [0, 50, 300, 350]);
    assert_eq!(api.in_flight(), 0);
    mock.advance(ms(150)).unwrap();
    assert_eq!(since(&rt, t0), 600);
    assert_eq!(api.starts_in_window(), 1);
    assert_eq!(api.next_start(), Some(t0 + ms(600)));
    mock.advance(ms(50)).unwrap();
    assert_eq!(api.starts_in_window(), 0);
}

#[test]
fn a_zero_window_means_no_rate_limit() {
    let (mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::new().max_starts(1, Duration::ZERO));
    assert_eq!(api.limits().starts_limit(), None);
    let starts = log();
    let handles = calls(&rt, t0, &[&api], &[(0, 10); 20], &starts);
    assert_eq!(join_all(&mock, handles), [0; 20]);
    assert_eq!(api.starts_in_window(), 0);
}
