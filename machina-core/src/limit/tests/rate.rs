//! The token bucket (`Limits::rate(n, per).burst(b)`): starts on an exact
//! grid with no drift, bursts after a quiet spell, combined with an
//! in-flight limit and a window, and its configuration errors.

use super::*;
use crate::decision::Decision;
use crate::limit::GroupPolicy;

/// `n` callers queued at once on `group`, each starting as soon as it may
/// and ending at once; gives their starts in ms.
fn saturate(
    mock: &MockRuntime,
    rt: &Runtime,
    t0: Instant,
    group: &ConcurrentGroup,
    n: usize,
) -> Vec<u64> {
    let starts = log();
    let handles: Vec<_> = (0..n)
        .map(|id| call(rt, t0, &[group], id, (0, 0), &starts))
        .collect();
    join_all(mock, handles)
}

#[test]
fn fifty_per_second_without_burst_starts_on_a_20_ms_grid_for_minutes() {
    let (mock, rt, t0) = setup();
    let api = group(
        &rt,
        "api",
        Limits::rate(50, Duration::from_secs(1)).burst(0),
    );
    // 3 minutes of saturated demand: 9 000 starts, every one on the grid.
    let starts = saturate(&mock, &rt, t0, &api, 9_000);
    let grid: Vec<u64> = (0..9_000).map(|k| 20 * k).collect();
    assert_eq!(starts, grid);
    assert_eq!(api.stats().acquired, 9_000);
}

#[test]
fn a_rate_that_does_not_divide_a_nanosecond_never_drifts() {
    // 3 per second: 333 333 333.3… ns apart. Start k is at the ceiling of
    // k/3 s, never a nanosecond early and never more than one late.
    let (mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::rate(3, Duration::from_secs(1)));
    let handles: Vec<_> = (0..3_000)
        .map(|_| {
            let (rt2, api) = (rt.clone(), api.clone());
            rt.spawn(async move {
                let _permit = api.acquire().await;
                (rt2.now() - t0).as_nanos()
            })
            .unwrap()
        })
        .collect();
    let starts = join_all(&mock, handles);
    for (k, start) in starts.iter().enumerate() {
        let exact = (k as u128 * 1_000_000_000).div_ceil(3);
        assert_eq!(*start, exact, "start {k}");
    }
}

#[test]
fn a_burst_lets_extra_starts_go_at_once_after_a_quiet_spell() {
    let (mock, rt, t0) = setup();
    let api = group(
        &rt,
        "api",
        Limits::rate(10, Duration::from_secs(1)).burst(2),
    );
    // 3 at once (1 + burst 2), then one every 100 ms.
    assert_eq!(saturate(&mock, &rt, t0, &api, 6), [0, 0, 0, 100, 200, 300]);
    // Quiet for a second: the burst is back, and no more than it.
    mock.block_on(rt.sleep(Duration::from_secs(1))).unwrap();
    let t1 = rt.now();
    let starts = log();
    let handles: Vec<_> = (0..5)
        .map(|id| call(&rt, t1, &[&api], id, (0, 0), &starts))
        .collect();
    assert_eq!(join_all(&mock, handles), [0, 0, 0, 100, 200]);
}

#[test]
fn the_rate_combines_with_in_flight_and_a_window() {
    let (mock, rt, t0) = setup();
    // One every 100 ms, but at most 2 in flight for 250 ms each, and at
    // most 3 per second.
    let api = group(
        &rt,
        "api",
        Limits::rate(10, Duration::from_secs(1))
            .max_in_flight(2)
            .max_starts(3, Duration::from_secs(1)),
    );
    let starts = log();
    let handles: Vec<_> = (0..6)
        .map(|id| call(&rt, t0, &[&api], id, (0, 250), &starts))
        .collect();
    // 0, 100 (rate); 250 (a slot frees at 250); then the window: each
    // token returns a second after its start.
    assert_eq!(join_all(&mock, handles), [0, 100, 250, 1000, 1100, 1250]);
}

#[test]
fn a_refusal_says_rate_and_the_instant_of_the_next_start() {
    let (_mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::rate(50, Duration::from_secs(1)));
    let first = api.try_acquire().unwrap();
    let refused = api.try_acquire().unwrap_err();
    assert_eq!(
        (refused.reason, refused.until),
        (Reason::Rate, Some(t0 + ms(20)))
    );
    assert_eq!(api.next_start(), Some(t0 + ms(20)));
    drop(first);
    assert_eq!(
        api.limits().rate_limit(),
        Some((50, Duration::from_secs(1), 0))
    );
}

#[test]
fn a_waiter_that_wakes_late_keeps_the_grid_a_newcomer_after_a_pause_does_not() {
    let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
    let mut p = GroupPolicy::new(Limits::rate(50, Duration::from_secs(1))).unwrap();
    p.commit(t0);
    // Refused at 5 ms, told 20 ms; it wakes 3 ms late (a real timer).
    assert_eq!(
        p.decide(t0 + ms(5)),
        Decision::WaitUntil(Refusal::new(Reason::Rate, Some(t0 + ms(20))))
    );
    assert!(p.decide(t0 + ms(23)).is_proceed());
    p.commit(t0 + ms(23));
    // The next start is still due at 40, not 43: no drift.
    assert_eq!(p.next_window_opening(t0 + ms(24)), t0 + ms(40));
    // Nobody waits now; a newcomer after a pause starts a fresh grid and
    // gains nothing from the pause.
    assert!(p.decide(t0 + ms(100)).is_proceed());
    p.commit(t0 + ms(100));
    assert_eq!(p.next_window_opening(t0 + ms(100)), t0 + ms(120));
    // A newcomer just after the TAT (never told to wait) does not shorten
    // the next interval either.
    assert!(p.decide(t0 + ms(125)).is_proceed());
    p.commit(t0 + ms(125));
    assert_eq!(p.next_window_opening(t0 + ms(125)), t0 + ms(145));
    // A waiter that wakes more than an interval late (a stall) restarts
    // the grid at its start: nothing is caught up.
    assert!(!p.decide(t0 + ms(130)).is_proceed());
    p.commit(t0 + ms(172));
    assert_eq!(p.next_window_opening(t0 + ms(172)), t0 + ms(192));
}

#[test]
fn rates_that_could_never_admit_a_call_are_refused() {
    let (_mock, rt, _t0) = setup();
    let err =
        ConcurrentGroup::new(&rt, "api", Limits::rate(0, Duration::from_secs(1))).unwrap_err();
    assert!(matches!(err, LimitError::ZeroRate { n: 0, .. }), "{err}");
    assert!(err.to_string().contains("rate of 0 per 1s"), "{err}");
    let err = ConcurrentGroup::new(&rt, "api", Limits::rate(5, Duration::ZERO)).unwrap_err();
    assert!(matches!(err, LimitError::ZeroRate { .. }), "{err}");
    let err = ConcurrentGroup::new(&rt, "api", Limits::new().burst(3)).unwrap_err();
    assert_eq!(
        err,
        LimitError::BurstWithoutRate {
            group: "api".into()
        }
    );
    assert!(err.to_string().contains("Limits::rate(n, per).burst(b)"));
}

#[test]
fn a_refused_try_promises_nothing() {
    // 1 per second. A try at 0.5 s is refused; the bucket then sits idle.
    // A newcomer at 1.9 s restarts the grid: the next start is due at
    // 2.9 s, not at 2.0 s as if someone had waited for the 1 s slot.
    let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
    let mut p = GroupPolicy::new(Limits::rate(1, Duration::from_secs(1))).unwrap();
    p.try_acquire(t0).unwrap();
    assert!(p.try_acquire(t0 + ms(500)).is_err());
    p.try_acquire(t0 + ms(1900)).unwrap();
    assert_eq!(p.next_window_opening(t0 + ms(1900)), t0 + ms(2900));
}

#[test]
fn a_caller_stuck_on_a_slot_still_times_the_rate_of_a_group_it_heads() {
    // `a` is held; `b` allows 1 start per second. The older caller needs
    // both and is first in line in `b`; a newcomer to `b` alone queues
    // behind it. When b's next start comes (1 s), the older caller looks,
    // gives way, and the newcomer starts then — not when `a` frees.
    let (mock, rt, t0) = setup();
    let a = group(&rt, "a", Limits::new().max_in_flight(1));
    let b = group(&rt, "b", Limits::rate(1, Duration::from_secs(1)));
    let a_held = a.try_acquire().unwrap();
    drop(b.try_acquire().unwrap());
    let starts = log();
    let older = call(&rt, t0, &[&a, &b], 0, (100, 0), &starts);
    let newcomer = call(&rt, t0, &[&b], 1, (200, 0), &starts);
    assert_eq!(join_all(&mock, vec![newcomer]), [1000]);
    drop(a_held);
    assert_eq!(join_all(&mock, vec![older]), [2000]);
}

#[test]
fn huge_windows_and_breaker_times_do_not_overflow() {
    let (_mock, rt, _t0) = setup();
    let api = group(&rt, "api", Limits::new().max_starts(1, Duration::MAX));
    drop(api.try_acquire().unwrap());
    let refused = api.try_acquire().unwrap_err();
    assert_eq!(refused.reason, Reason::Window);
    let breaker = crate::breaker::CircuitBreaker::builder("slow")
        .min_calls(1)
        .broken_time(Duration::MAX)
        .recovery_time(Duration::MAX)
        .passing_time(Duration::MAX)
        .build(&rt)
        .unwrap();
    breaker
        .enter()
        .unwrap()
        .failure(&std::io::Error::other("down"));
    assert!(breaker.enter().is_err());
    assert!(breaker.time_to_recovery() > Duration::from_secs(86_400 * 365));
}

#[test]
fn a_rate_with_an_in_flight_limit_and_no_window_waits_for_both() {
    // On the lock-free path (10 per second is 100 ms, a whole number of
    // nanoseconds): one every 100 ms, at most 2 in flight for 250 ms each.
    let (mock, rt, t0) = setup();
    let api = group(
        &rt,
        "api",
        Limits::rate(10, Duration::from_secs(1)).max_in_flight(2),
    );
    let starts = log();
    let handles = calls(&rt, t0, &[&api], &[(0, 250); 6], &starts);
    // 0, 100 (rate); 250 (a slot frees); 350 (the next slot, and the rate
    // allows 350); 500, 600.
    assert_eq!(join_all(&mock, handles), [0, 100, 250, 350, 500, 600]);
    assert_eq!((api.in_flight(), api.waiting()), (0, 0));
    assert_eq!(api.counted_waiters(), 0);
    assert_eq!(api.stats().acquired, 6);
}

#[test]
fn a_rate_waiter_that_gives_up_takes_no_token_and_a_newcomer_queues_behind_waiters() {
    let (mock, rt, t0) = setup();
    let api = group(&rt, "api", Limits::rate(10, Duration::from_secs(1)));
    drop(api.try_acquire().unwrap());
    mock.block_on(async {
        // Due at 100 ms: it gives up at 50.
        assert!(rt.timeout(ms(50), api.acquire()).await.is_err());
    })
    .unwrap();
    assert_eq!((api.waiting(), api.counted_waiters()), (0, 0));
    assert_eq!(api.next_start(), Some(t0 + ms(100)));
    // A waiter queues for 100 ms; a try meanwhile is refused for the
    // queue, not let through.
    let starts = log();
    let waiter = call(&rt, t0, &[&api], 0, (60, 0), &starts);
    mock.advance(ms(20)).unwrap();
    assert_eq!(api.waiting(), 1);
    assert_eq!(api.try_acquire().unwrap_err().reason, Reason::Queue);
    assert_eq!(join_all(&mock, vec![waiter]), [100]);
    assert_eq!(api.stats().abandoned, 1);
}

#[test]
fn a_caller_of_two_groups_waits_for_the_rate_of_one_and_the_slot_of_the_other() {
    let (mock, rt, t0) = setup();
    let rated = group(&rt, "rated", Limits::rate(10, Duration::from_secs(1)));
    let db = group(&rt, "db", Limits::new().max_in_flight(1));
    let starts = log();
    let handles = calls(
        &rt,
        t0,
        &[&rated, &db],
        &[(0, 150), (0, 150), (0, 0)],
        &starts,
    );
    // 0; the second waits for db's slot (150, the rate allows 100); the
    // third for db again (300).
    assert_eq!(join_all(&mock, handles), [0, 150, 300]);
    assert_eq!(rated.stats().acquired, 3);
    assert_eq!((rated.in_flight(), db.in_flight()), (0, 0));
}

/// One step of [`the_lock_free_bucket_decides_as_the_policy_does`].
#[derive(Debug, Clone)]
enum Step {
    /// Move the clock on this many ms, then try a start.
    Try(u64),
    /// End the oldest call still running.
    End,
}

use proptest::prelude::*;

proptest! {
    /// A group on the lock-free bucket and the pure policy (exact 128-bit
    /// arithmetic), fed the same tries at the same instants, say the same:
    /// the same starts, the same refusals, the same instants.
    #[test]
    fn the_lock_free_bucket_decides_as_the_policy_does(
        n in 1u32..20,
        burst in 0u32..4,
        in_flight in proptest::option::of(1u32..4),
        steps in proptest::collection::vec(
            prop_oneof![
                3 => (0u64..120).prop_map(Step::Try),
                1 => Just(Step::End),
            ],
            1..80,
        ),
    ) {
        // n per n × 100 ms: a whole number of nanoseconds, 100 ms apart.
        let mut limits = Limits::rate(n, ms(100) * n).burst(burst);
        if let Some(max) = in_flight {
            limits = limits.max_in_flight(max);
        }
        let (mock, rt, t0) = setup();
        let api = group(&rt, "api", limits);
        let mut policy = GroupPolicy::new(limits).unwrap();
        let mut running = std::collections::VecDeque::new();
        for step in steps {
            match step {
                Step::Try(after) => {
                    mock.advance(ms(after)).unwrap();
                    let now = rt.now();
                    let group_said = api.try_acquire();
                    let policy_said = policy.try_acquire(now);
                    prop_assert_eq!(group_said.as_ref().err(), policy_said.as_ref().err());
                    if let Ok(permit) = group_said {
                        running.push_back(permit);
                    }
                }
                Step::End => {
                    if let Some(permit) = running.pop_front() {
                        drop(permit);
                        policy.release();
                    }
                }
            }
            prop_assert_eq!(api.in_flight(), policy.in_flight());
            let now = rt.now();
            let expected = match policy.peek(now) {
                Decision::Proceed => Some(now),
                Decision::WaitUntil(refusal) => refusal.until,
                Decision::GiveUp(_) => None,
            };
            prop_assert_eq!(api.next_start(), expected);
        }
        prop_assert!(rt.now() >= t0);
    }
}
