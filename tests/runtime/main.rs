//! The runtime boundary, checked on every runtime from one body each:
//! spawn and join, abort, panics, detaching, timeouts, sleeps, intervals
//! under each missed-tick policy, blocking work and the seeded RNG.

#[path = "../support/mod.rs"]
mod support;

use machina_test::cross_runtime;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::oneshot;
use machina_core::rt::{IntervalError, JoinError, MissedTick, Runtime};

const MS: Duration = Duration::from_millis(1);

/// Sets a flag when dropped: proves a task's future was dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Sleeps in small steps until `flag` is set, for at most `limit`.
async fn wait_for(rt: &Runtime, flag: &AtomicBool, limit: Duration) -> bool {
    let start = rt.now();
    while !flag.load(Ordering::SeqCst) {
        if rt.now() - start > limit {
            return false;
        }
        rt.sleep(MS).await;
    }
    true
}

cross_runtime! {
    /// A spawned task's value comes back through its handle.
    async fn spawn_and_join(rt: Runtime, env: Env) {
        let handle = rt.spawn(async { 40 + 2 }).unwrap();
        assert_eq!(handle.await.unwrap(), 42);

        let named = rt.spawn_named("answer", async { "named" }).unwrap();
        assert_eq!(named.await.unwrap(), "named");

        let handles: Vec<_> = (0..100u64)
            .map(|i| {
                let rt2 = rt.clone();
                rt.spawn(async move {
                    rt2.sleep(Duration::from_millis(i % 5)).await;
                    i
                })
                .unwrap()
            })
            .collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        assert_eq!(sum, (0..100).sum::<u64>());
    }

    /// Aborting a waiting task drops its future and reports Cancelled.
    async fn abort_reports_cancelled(rt: Runtime, env: Env) {
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let rt2 = rt.clone();
        let handle = rt
            .spawn(async move {
                let _flag = flag;
                rt2.sleep(Duration::from_secs(3600)).await;
                "never"
            })
            .unwrap();
        rt.sleep(MS).await;
        assert!(!handle.is_finished());
        handle.abort();
        let abort_handle = handle.abort_handle();
        let err = handle.await.unwrap_err();
        assert!(err.is_cancelled(), "{err}");
        assert!(matches!(err, JoinError::Cancelled));
        assert!(abort_handle.is_finished());
        // The future is dropped before the handle reports the end.
        assert!(dropped.load(Ordering::SeqCst));

        let finished_dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(finished_dropped.clone());
        let value = rt
            .spawn(async move {
                let _flag = flag;
                "done"
            })
            .unwrap()
            .await
            .unwrap();
        assert_eq!(value, "done");
        assert!(finished_dropped.load(Ordering::SeqCst), "dropped before the join returned");
    }

    /// A panic becomes Panicked with its message; the runtime lives on.
    async fn panic_reports_panicked_and_runtime_survives(rt: Runtime, env: Env) {
        let handle = rt.spawn(async { panic!("boom in a task") }).unwrap();
        let err: JoinError = handle.await.unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.panic_payload().unwrap().message(), "boom in a task");
        assert!(err.to_string().contains("boom in a task"));
        let JoinError::Panicked(payload) = err else { unreachable!() };
        let raw = payload.into_inner();
        assert_eq!(raw.downcast_ref::<&str>(), Some(&"boom in a task"));

        let formatted = rt.spawn(async { panic!("code {}", 7) }).unwrap();
        assert_eq!(formatted.await.unwrap_err().panic_payload().unwrap().message(), "code 7");

        // Still alive: new tasks run, timers fire.
        let rt2 = rt.clone();
        let after = rt.spawn(async move {
            rt2.sleep(MS).await;
            "alive"
        });
        assert_eq!(after.unwrap().await.unwrap(), "alive");
    }

    /// Dropping a handle detaches: the task runs to its end.
    async fn dropping_a_handle_detaches(rt: Runtime, env: Env) {
        let (tx, rx) = oneshot::channel();
        let rt2 = rt.clone();
        let handle = rt
            .spawn(async move {
                rt2.sleep(Duration::from_millis(20)).await;
                tx.send("finished anyway").unwrap();
            })
            .unwrap();
        drop(handle);
        assert_eq!(rx.await.unwrap(), "finished anyway");

        let (tx, rx) = oneshot::channel();
        rt.spawn(async move { tx.send(1).unwrap() }).unwrap().detach();
        assert_eq!(rx.await.unwrap(), 1);
    }

    /// abort_on_drop turns dropping into cancelling.
    async fn abort_on_drop_cancels(rt: Runtime, env: Env) {
        let dropped = Arc::new(AtomicBool::new(false));
        let ran_to_end = Arc::new(AtomicBool::new(false));
        let (flag, end) = (DropFlag(dropped.clone()), ran_to_end.clone());
        let rt2 = rt.clone();
        let handle = rt
            .spawn(async move {
                let _flag = flag;
                rt2.sleep(Duration::from_millis(50)).await;
                end.store(true, Ordering::SeqCst);
            })
            .unwrap()
            .abort_on_drop();
        rt.sleep(MS).await;
        drop(handle);
        assert!(wait_for(&rt, &dropped, Duration::from_secs(2)).await);
        rt.sleep(Duration::from_millis(80)).await;
        assert!(!ran_to_end.load(Ordering::SeqCst));
    }

    /// timeout: a quick future wins; a slow one elapses at the limit.
    async fn timeout_success_and_elapse(rt: Runtime, env: Env) {
        assert_eq!(rt.timeout(Duration::from_secs(5), async { 7 }).await.unwrap(), 7);

        let start = rt.now();
        let outcome = rt
            .timeout(Duration::from_millis(20), rt.sleep(Duration::from_secs(3600)))
            .await;
        let err = outcome.unwrap_err();
        assert_eq!(err.limit(), Duration::from_millis(20));
        assert!(err.to_string().contains("timed out"));
        env.assert_elapsed(rt.now() - start, Duration::from_millis(20));

        let start = rt.now();
        let deadline = start + Duration::from_millis(15);
        let v = rt.timeout_at(deadline, async { "in time" }).await.unwrap();
        assert_eq!(v, "in time");
        assert!(rt.timeout_at(deadline, rt.sleep(Duration::from_secs(9))).await.is_err());
        env.assert_elapsed(rt.now() - start, Duration::from_millis(15));
    }

    /// Sleeps end in deadline order, no earlier than asked; a deadline in
    /// the past completes at once.
    async fn sleeps_end_in_deadline_order(rt: Runtime, env: Env) {
        let order = Arc::new(Mutex::new(Vec::new()));
        let start = rt.now();
        let handles: Vec<_> = [60u64, 20, 40]
            .into_iter()
            .map(|ms| {
                let (rt2, order) = (rt.clone(), order.clone());
                rt.spawn(async move {
                    rt2.sleep(Duration::from_millis(ms)).await;
                    order.lock().unwrap().push(ms);
                    rt2.now() - start
                })
                .unwrap()
            })
            .collect();
        let mut ends = Vec::new();
        for h in handles {
            ends.push(h.await.unwrap());
        }
        assert_eq!(*order.lock().unwrap(), [20, 40, 60]);
        env.assert_elapsed(ends[0], Duration::from_millis(60));
        env.assert_elapsed(ends[1], Duration::from_millis(20));
        env.assert_elapsed(ends[2], Duration::from_millis(40));

        let before = rt.now();
        let past = before.checked_sub(Duration::from_secs(1)).unwrap_or(before);
        rt.sleep_until(past).await;
        rt.sleep(Duration::ZERO).await;
        env.assert_about(rt.now() - before, Duration::ZERO, Duration::from_millis(50));
        // An absurd duration does not overflow.
        let forever = rt.timeout(MS, rt.sleep(Duration::MAX)).await;
        assert!(forever.is_err());
    }

    /// Burst: missed ticks are delivered back to back on the original grid.
    async fn interval_burst_catches_up(rt: Runtime, env: Env) {
        let p = Duration::from_millis(20);
        let mut ticks = rt.interval(p, MissedTick::Burst).unwrap();
        let start = ticks.tick().await;
        env.assert_about(rt.now() - start, Duration::ZERO, Duration::from_millis(50));
        rt.sleep(p * 5 / 2).await; // a slow tick body: 2.5 periods
        let mut got = Vec::new();
        for _ in 0..3 {
            let deadline = ticks.tick().await;
            got.push((deadline - start, rt.now() - start));
        }
        // Deadlines never drift, whatever the delivery delay.
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [p, p * 2, p * 3]);
        // The first two are delivered at once (late), the third on time.
        env.assert_elapsed(got[0].1, p * 5 / 2);
        env.assert_elapsed(got[1].1, p * 5 / 2);
        env.assert_elapsed(got[2].1, p * 3);
        assert_eq!(ticks.next_deadline() - start, p * 4);
    }

    /// Delay: after a late tick, the grid restarts one period later.
    async fn interval_delay_restarts_the_grid(rt: Runtime, env: Env) {
        let p = Duration::from_millis(20);
        let mut ticks = rt.interval(p, MissedTick::Delay).unwrap();
        let start = ticks.tick().await;
        rt.sleep(p * 5 / 2).await;
        let late = ticks.tick().await;
        let delivered = rt.now();
        assert_eq!(late - start, p);
        env.assert_elapsed(delivered - start, p * 5 / 2);
        let next = ticks.tick().await;
        let after = ticks.tick().await;
        // The new grid starts from the late delivery: one period after the
        // instant the interval saw (a little before `delivered`).
        assert!(next - start >= p * 7 / 2, "{:?}", next - start);
        assert!(next <= delivered + p);
        env.assert_about(after - next, p, Duration::from_millis(200));
        if env.is_virtual() {
            assert_eq!(next - start, p * 7 / 2);
            assert_eq!(after - start, p * 9 / 2);
        }
    }

    /// Skip: one late tick, then the next deadline of the original grid.
    async fn interval_skip_drops_missed_ticks(rt: Runtime, env: Env) {
        let p = Duration::from_millis(40);
        let mut ticks = rt.interval(p, MissedTick::Skip).unwrap();
        let start = ticks.tick().await;
        rt.sleep(p * 5 / 2).await;
        let late = ticks.tick().await;
        let delivered = rt.now() - start;
        assert_eq!(late - start, p);
        let next = ticks.tick().await - start;
        let after = ticks.tick().await - start;
        // Back on the original grid, strictly after the late delivery.
        assert_eq!(next.as_nanos() % p.as_nanos(), 0, "{next:?} is on the grid");
        assert!(next > delivered);
        assert_eq!(after - next, p);
        if env.is_virtual() {
            assert_eq!(delivered, p * 5 / 2);
            assert_eq!(next, p * 3);
        }
    }

    /// `reset` restarts the grid from now, `interval_at` starts later, and
    /// an interval is also a `Stream` of deadlines.
    async fn interval_reset_start_and_stream(rt: Runtime, env: Env) {
        use futures::StreamExt;
        let p = Duration::from_millis(20);
        let mut ticks = rt.interval(p, MissedTick::Burst).unwrap();
        assert_eq!(ticks.period(), p);
        assert_eq!(ticks.missed_tick(), MissedTick::Burst);
        let start = ticks.tick().await;
        rt.sleep(p / 2).await;
        ticks.reset();
        let after_reset = ticks.next().await.unwrap();
        env.assert_elapsed(after_reset - start, p * 3 / 2);
        assert_eq!(ticks.next_deadline() - after_reset, p);

        let begin = rt.now();
        let mut later = rt.interval_at(begin + p * 2, p, MissedTick::Skip).unwrap();
        assert_eq!(later.tick().await - begin, p * 2);
        env.assert_elapsed(rt.now() - begin, p * 2);
    }

    /// A zero period is refused with a clear error.
    async fn interval_rejects_a_zero_period(rt: Runtime, env: Env) {
        let err = rt.interval(Duration::ZERO, MissedTick::Burst).unwrap_err();
        assert_eq!(err, IntervalError::ZeroPeriod);
        assert!(err.to_string().contains("zero"));
        assert!(rt.interval_at(rt.now(), Duration::ZERO, MissedTick::Skip).is_err());
    }

    /// Blocking work runs, returns its value, and a panic is contained.
    async fn spawn_blocking_runs_and_contains_panics(rt: Runtime, env: Env) {
        let counter = Arc::new(AtomicUsize::new(0));
        let c = counter.clone();
        let value = rt
            .spawn_blocking(move || {
                c.fetch_add(1, Ordering::SeqCst);
                (1..=10u64).product::<u64>()
            })
            .unwrap()
            .await
            .unwrap();
        assert_eq!(value, 3_628_800);
        assert_eq!(counter.load(Ordering::SeqCst), 1);

        let err = rt.spawn_blocking(|| panic!("blocking boom")).unwrap().await;
        let err: JoinError = err.unwrap_err();
        assert_eq!(err.panic_payload().unwrap().message(), "blocking boom");
        assert_eq!(rt.spawn_blocking(|| 5).unwrap().await.unwrap(), 5);
    }

    /// A seeded generator gives the same stream on every runtime.
    async fn seeded_rng_is_reproducible(rt: Runtime, env: Env) {
        let draw = |rt: &Runtime| -> Vec<u64> { (0..5).map(|_| rt.rng().below(1_000_000)).collect() };
        let a = draw(&rt.with_rng_seed(42));
        let b = draw(&rt.with_rng_seed(42));
        let c = draw(&rt.with_rng_seed(43));
        assert_eq!(a, b);
        assert_ne!(a, c);
        // The seeded handle still spawns and sleeps on the same executor.
        let seeded = rt.with_rng_seed(1);
        assert_eq!(seeded.label(), rt.label());
        assert_eq!(seeded.spawn(async { 3 }).unwrap().await.unwrap(), 3);
    }

    /// Calendar time moves with the runtime's clock.
    async fn system_time_moves_with_the_clock(rt: Runtime, env: Env) {
        let before = rt.calendar_now();
        rt.sleep(Duration::from_millis(30)).await;
        let moved = rt.calendar_now().duration_since(before).unwrap();
        env.assert_elapsed(moved, Duration::from_millis(30));
    }
}
