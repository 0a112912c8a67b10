//! The circuit breaker, call aggregation, the pool and select/cancel on
//! every runtime from one body each.

#[path = "../support/mod.rs"]
mod support;

use machina_test::cross_runtime;

use std::time::Duration;

use machina_core::aggregate::{AggregateError, Aggregator};
use machina_core::breaker::{CircuitBreaker, CircuitOpen, CircuitState};
use machina_core::call::CallErrorKind;
use machina_core::pool::{Manager, Pool, PoolError};
use machina_core::rt::{Losers, cancel_all, select_tasks};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A manager of numbered instances.
struct Numbers(std::sync::atomic::AtomicUsize);

impl Manager for Numbers {
    type Item = usize;
    type Error = std::io::Error;

    async fn create(&self) -> Result<usize, std::io::Error> {
        Ok(self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
    }
}

cross_runtime! {
    /// The breaker trips on failures, refuses while broken, and after
    /// broken_time plus recovery_time passes calls again.
    async fn breaker_trips_and_recovers(rt: Runtime, env: Env) {
        let breaker = CircuitBreaker::builder("dep")
            .min_calls(2)
            .error_ratio(0.5)
            .broken_time(ms(30))
            .recovery_time(ms(30))
            .passing_time(ms(10))
            .build(&rt)
            .unwrap();
        for _ in 0..2 {
            let failed = breaker.call(async { Err::<(), _>(std::io::Error::other("down")) }).await;
            assert!(matches!(failed.unwrap_err().kind(), CallErrorKind::Failed { .. }));
        }
        let refused = breaker.call(async { Ok::<_, std::io::Error>(()) }).await.unwrap_err();
        let CallErrorKind::Refused { error, .. } = refused.kind() else { panic!("expected a refusal") };
        let open = error.downcast_ref::<CircuitOpen>().expect("the breaker's refusal");
        assert_eq!(open.state, CircuitState::Broken);
        assert!(open.to_string().contains("last failure: down"), "{open}");
        rt.sleep(ms(70)).await;
        assert_eq!(breaker.state(), CircuitState::Passing);
        assert_eq!(breaker.call(async { Ok::<_, std::io::Error>(7) }).await.unwrap(), 7);
        assert_eq!(breaker.stats().trips, 1);
    }

    /// Successes count in the window on every runtime's clock (on a real
    /// one, by the coarse clock, without the lock): three successes keep
    /// failures under half of the calls until a fourth failure of eight.
    async fn breaker_weighs_failures_against_the_successes_counted(rt: Runtime, _env: Env) {
        let breaker = CircuitBreaker::builder("dep")
            .min_calls(4)
            .error_ratio(0.5)
            // Buckets of a second: fine enough for the coarse clock, and
            // long enough that a starved test thread does not see its
            // successes leave the window.
            .response_time(Duration::from_secs(10))
            .build(&rt)
            .unwrap();
        let fail = || async { Err::<(), _>(std::io::Error::other("down")) };
        for _ in 0..3 {
            breaker.enter().expect("passing").success();
        }
        for _ in 0..2 {
            breaker.call(fail()).await.unwrap_err();
        }
        // 2 failures in 5 calls, then 3 in 7: under half (without the
        // successes, 2 of 2 would have tripped it).
        breaker.enter().expect("2 of 5 failed").success();
        breaker.call(fail()).await.unwrap_err();
        breaker.enter().expect("3 of 7 failed").failure(&std::io::Error::other("down"));
        // 4 of 8: the next call trips it.
        let open = breaker.enter().unwrap_err();
        assert_eq!(open.state, CircuitState::Broken);
        let stats = breaker.stats();
        assert_eq!((stats.passing, stats.broken_rejected, stats.trips), (8, 1, 1));
    }

    /// Concurrent calls within the leeway share one batch; a failure
    /// reaches every caller.
    async fn aggregator_batches_concurrent_calls(rt: Runtime, env: Env) {
        let agg = Aggregator::new(&rt, ms(20), Some(8), |ids: Vec<u32>| async move {
            if ids.contains(&13) {
                return Err(std::io::Error::other("unlucky batch"));
            }
            Ok(ids.iter().map(|i| i + 100).collect())
        })
        .unwrap();
        let start = rt.now();
        let results = futures::future::join_all((0..5).map(|i| agg.call(i))).await;
        let values: Vec<u32> = results.into_iter().map(Result::unwrap).collect();
        assert_eq!(values, [100, 101, 102, 103, 104]);
        env.assert_elapsed(rt.now() - start, ms(20));

        let full = futures::future::join_all((10..18).map(|i| agg.call(i))).await;
        assert!(full.iter().all(|r| matches!(r, Err(AggregateError::Failed(_)))));
    }

    /// Waiters get returned instances in turn; the pool never exceeds its
    /// size; a timed-out wait gives up cleanly.
    async fn pool_lends_and_takes_back(rt: Runtime, env: Env) {
        let pool = Pool::builder(Numbers(Default::default()), 2).build(&rt).unwrap();
        let a = pool.acquire().await.unwrap();
        let b = pool.acquire().await.unwrap();
        assert!(matches!(pool.acquire_timeout(ms(10)).await, Err(PoolError::Timeout(_))));
        let waiter = {
            let pool = pool.clone();
            rt.spawn(async move { *pool.acquire().await.unwrap() }).unwrap()
        };
        rt.sleep(ms(5)).await;
        let first = *a;
        drop(a);
        assert_eq!(waiter.await.unwrap(), first);
        drop(b);
        assert_eq!((pool.size(), pool.idle()), (2, 2));
        assert_eq!(pool.close(ms(100)).await, 0);
    }

    /// The first task to end wins a race; the losers are cancelled and
    /// awaited.
    async fn select_and_cancel_tasks(rt: Runtime, env: Env) {
        let spawn = |d: u64| {
            let rt2 = rt.clone();
            rt.spawn(async move {
                rt2.sleep(ms(d)).await;
                d
            })
            .unwrap()
        };
        let (winner, rest) = select_tasks(vec![spawn(500), spawn(10), spawn(800)], Losers::Cancel)
            .await
            .unwrap();
        assert_eq!((winner.index, winner.value.unwrap()), (1, 10));
        assert!(rest.is_empty());
        let outcomes = cancel_all(vec![spawn(1000), spawn(2000)]).await;
        assert!(outcomes.iter().all(|o| o.as_ref().unwrap_err().is_cancelled()));
    }
}
