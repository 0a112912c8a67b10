//! Intervals under each missed-tick policy, with exact instants.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

// ---------------------------------------------------------------------------
// 11. Intervals
// ---------------------------------------------------------------------------

/// Five ticks of a 10 s interval whose body takes 25 s on the 2nd tick only:
/// (scheduled deadline, delivery instant) of each, from the start.
fn overrun_schedule(missed: MissedTick) -> Vec<(Duration, Duration)> {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let start = mock.now();
    mock.block_on(async move {
        let mut interval = rt.interval(secs(10), missed).unwrap();
        let mut seen = Vec::new();
        for i in 0..5 {
            let deadline = interval.tick().await;
            seen.push((deadline - start, rt.now() - start));
            if i == 1 {
                rt.sleep(secs(25)).await;
            }
        }
        seen
    })
    .unwrap()
}

fn pairs(list: [(u64, u64); 5]) -> Vec<(Duration, Duration)> {
    list.iter().map(|&(d, at)| (secs(d), secs(at))).collect()
}

#[test]
fn interval_burst_delivers_missed_ticks_back_to_back() {
    assert_eq!(
        overrun_schedule(MissedTick::Burst),
        pairs([(0, 0), (10, 10), (20, 35), (30, 35), (40, 40)])
    );
}

#[test]
fn interval_delay_restarts_the_grid_from_the_late_tick() {
    assert_eq!(
        overrun_schedule(MissedTick::Delay),
        pairs([(0, 0), (10, 10), (20, 35), (45, 45), (55, 55)])
    );
}

#[test]
fn interval_skip_drops_missed_ticks_and_keeps_the_grid() {
    assert_eq!(
        overrun_schedule(MissedTick::Skip),
        pairs([(0, 0), (10, 10), (20, 35), (40, 40), (50, 50)])
    );
}

#[test]
fn interval_sleep_unregisters_when_the_interval_is_dropped() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let mut interval = rt.interval(secs(10), MissedTick::Burst).unwrap();
    assert!(
        interval.tick().now_or_never().is_some(),
        "first tick at once"
    );
    assert_eq!(mock.pending_timers(), 0);
    assert!(interval.tick().now_or_never().is_none());
    assert_eq!(mock.pending_timers(), 1);
    // Dropping the tick future keeps the interval's sleep (cancel-safe) ...
    assert!(interval.tick().now_or_never().is_none());
    assert_eq!(mock.pending_timers(), 1);
    // ... resetting replaces it ...
    interval.reset();
    assert_eq!(mock.pending_timers(), 0);
    assert!(interval.tick().now_or_never().is_none());
    assert_eq!(mock.pending_timers(), 1);
    // ... and dropping the interval removes it.
    drop(interval);
    assert_eq!(mock.pending_timers(), 0);
    assert_eq!(
        mock.block_on(pending::<()>()),
        Err(MockError::Deadlock {
            at: Duration::ZERO,
            live_tasks: Vec::new(),
        })
    );
}

#[test]
fn aborting_a_task_that_ticks_unregisters_its_interval() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let rt2 = rt.clone();
    let ticker = rt
        .spawn(async move {
            let mut interval = rt2.interval(secs(1), MissedTick::Skip).unwrap();
            loop {
                interval.tick().await;
            }
        })
        .unwrap();
    mock.advance(ms(2500)).unwrap();
    assert_eq!(mock.pending_timers(), 1);
    ticker.abort();
    mock.run_until_stalled().unwrap();
    assert_eq!(mock.pending_timers(), 0);
    assert!(mock.live_tasks().is_empty());
    assert_eq!(mock.elapsed(), ms(2500));
    assert!(matches!(
        ticker.now_or_never(),
        Some(Err(JoinError::Cancelled))
    ));
}
