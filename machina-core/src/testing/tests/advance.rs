//! `advance` and the virtual time limit.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

// ---------------------------------------------------------------------------
// 4. advance
// ---------------------------------------------------------------------------

#[test]
fn advance_steps_through_every_intermediate_deadline() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let start = mock.now();
    let wakes = log();
    {
        let (rt2, wakes) = (rt.clone(), wakes.clone());
        detach(&rt, async move {
            loop {
                rt2.sleep(secs(1)).await;
                push(&wakes, rt2.now() - start);
            }
        });
    }
    mock.advance(secs(10)).unwrap();
    assert_eq!(entries(&wakes), (1..=10).map(secs).collect::<Vec<_>>());
    assert_eq!(mock.elapsed(), secs(10));
    assert_eq!(mock.pending_timers(), 1);

    mock.advance(ms(500)).unwrap();
    assert_eq!(mock.elapsed(), ms(10_500));
    assert_eq!(entries(&wakes).len(), 10);

    mock.advance(ms(500)).unwrap();
    assert_eq!(mock.elapsed(), secs(11));
    assert_eq!(entries(&wakes).len(), 11);
    assert_eq!(entries(&wakes)[10], secs(11));
}

#[test]
fn advance_without_timers_moves_the_clock_exactly() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let start = mock.now();
    mock.advance(ms(500)).unwrap();
    assert_eq!(mock.elapsed(), ms(500));
    assert_eq!(rt.now() - start, ms(500));
    assert_eq!(mock.now() - start, ms(500));
    mock.advance(Duration::ZERO).unwrap();
    assert_eq!(mock.elapsed(), ms(500));
}

#[test]
fn advance_runs_ready_tasks_and_chained_timers_at_their_instants() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let start = mock.now();
    let seen = log();
    {
        let (rt2, seen) = (rt.clone(), seen.clone());
        detach(&rt, async move {
            push(&seen, ("outer", rt2.now() - start));
            rt2.sleep(secs(3)).await;
            push(&seen, ("outer", rt2.now() - start));
            let (rt3, seen2) = (rt2.clone(), seen.clone());
            // Spawned at 3s; its timer at 5s lies inside the same advance.
            detach(&rt2, async move {
                rt3.sleep(secs(2)).await;
                push(&seen2, ("inner", rt3.now() - start));
            });
        });
    }
    // Advance(0) still runs what is ready.
    mock.advance(Duration::ZERO).unwrap();
    assert_eq!(entries(&seen), [("outer", Duration::ZERO)]);
    mock.advance(secs(5)).unwrap();
    assert_eq!(
        entries(&seen),
        [
            ("outer", Duration::ZERO),
            ("outer", secs(3)),
            ("inner", secs(5))
        ]
    );
    assert_eq!(mock.elapsed(), secs(5));
    assert!(mock.live_tasks().is_empty());
}

// ---------------------------------------------------------------------------
// 6. time_limit
// ---------------------------------------------------------------------------

#[test]
fn time_limit_stops_a_runaway_interval() {
    let mock = MockRuntime::builder().time_limit(secs(10)).build();
    let rt = mock.runtime();
    let ticks = Arc::new(AtomicUsize::new(0));
    let counted = ticks.clone();
    let outcome: Result<(), MockError> = mock.block_on(async move {
        let mut interval = rt.interval(secs(1), MissedTick::Burst).unwrap();
        loop {
            interval.tick().await;
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    assert_eq!(
        outcome,
        Err(MockError::TimeLimit {
            limit: secs(10),
            next: secs(11),
        })
    );
    // Ticks at 0, 1, ..., 10 s: the one at the limit still fires.
    assert_eq!(ticks.load(Ordering::SeqCst), 11);
    assert_eq!(mock.elapsed(), secs(10));
    let message = outcome.unwrap_err().to_string();
    assert!(message.contains("time limit"), "{message}");
}

#[test]
fn a_timer_exactly_at_the_time_limit_fires() {
    let mock = MockRuntime::builder().time_limit(secs(10)).build();
    let rt = mock.runtime();
    mock.block_on(async move { rt.sleep(secs(10)).await })
        .unwrap();
    assert_eq!(mock.elapsed(), secs(10));
}

#[test]
fn advance_past_the_time_limit_errors_without_moving_the_clock() {
    let mock = MockRuntime::builder().time_limit(secs(10)).build();
    assert_eq!(
        mock.advance(secs(11)),
        Err(MockError::TimeLimit {
            limit: secs(10),
            next: secs(11),
        })
    );
    assert_eq!(mock.elapsed(), Duration::ZERO);
    mock.advance(secs(10)).unwrap();
    assert_eq!(mock.elapsed(), secs(10));
    assert_eq!(
        mock.advance(Duration::from_nanos(1)),
        Err(MockError::TimeLimit {
            limit: secs(10),
            next: secs(10) + Duration::from_nanos(1),
        })
    );
    assert_eq!(mock.elapsed(), secs(10));
}
