//! Concurrent groups and retry on every runtime from one body each:
//! waiting for a slot, waiting for the window, cancelling a wait, and a
//! retried call with and without a group.

#[path = "../support/mod.rs"]
mod support;

use machina_test::cross_runtime;

mod nginx;
mod rate;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use machina_core::call::CallStack;
use machina_core::decision::Reason;
use machina_core::limit::{AcquireError, ConcurrentGroup, Limits};
use machina_core::retry::{Retry, Rule};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Debug, thiserror::Error)]
#[error("flaky attempt {0}")]
struct Flaky(u32);

cross_runtime! {
    /// A caller waits for a held slot and gets it when it is released.
    async fn acquire_waits_for_a_released_slot(rt: Runtime, env: Env) {
        let group = ConcurrentGroup::new(&rt, "one", Limits::new().max_in_flight(1)).unwrap();
        let held = group.try_acquire().unwrap();
        assert_eq!(group.try_acquire().unwrap_err().reason, Reason::InFlight);
        let start = rt.now();
        let (rt2, g2) = (rt.clone(), group.clone());
        let waiter = rt
            .spawn(async move {
                let _permit = g2.acquire().await;
                rt2.now()
            })
            .unwrap();
        rt.sleep(ms(30)).await;
        assert_eq!(group.waiting(), 1);
        drop(held);
        let got_it = waiter.await.unwrap();
        env.assert_elapsed(got_it - start, ms(30));
        assert_eq!(group.in_flight(), 0);
        assert_eq!(group.waiting(), 0);
    }

    /// The third start in a 2-per-50 ms window waits for the first token.
    async fn acquire_waits_for_the_window(rt: Runtime, env: Env) {
        let group = ConcurrentGroup::new(&rt, "rate", Limits::new().max_starts(2, ms(50))).unwrap();
        let start = rt.now();
        let mut starts = Vec::new();
        for _ in 0..3 {
            let permit = group.acquire().await;
            starts.push(rt.now() - start);
            drop(permit);
        }
        env.assert_about(starts[0], ms(0), ms(40));
        env.assert_about(starts[1], ms(0), ms(40));
        // The window decides on the runtime's fast counter where it has
        // one: within a fraction of a microsecond of `rt.now()`.
        env.assert_elapsed_on_counter(starts[2], ms(50));
    }

    /// A wait that times out leaves nothing behind; the next caller is
    /// served at once when the slot frees.
    async fn a_cancelled_wait_leaks_nothing(rt: Runtime, env: Env) {
        let group = ConcurrentGroup::new(
            &rt,
            "both",
            Limits::new().max_in_flight(1).max_starts(5, ms(1000)),
        )
        .unwrap();
        let held = group.acquire().await;
        let err = group.acquire_timeout(ms(20)).await.unwrap_err();
        assert!(matches!(err, AcquireError::TimedOut { .. }));
        assert!(err.to_string().contains("both"));
        assert_eq!(group.waiting(), 0);

        let (g2, rt2) = (group.clone(), rt.clone());
        let aborted = rt.spawn(async move { drop(g2.acquire().await); rt2.now() }).unwrap();
        rt.sleep(ms(5)).await;
        aborted.abort();
        assert!(aborted.await.unwrap_err().is_cancelled());
        assert_eq!(group.waiting(), 0);

        drop(held);
        let start = rt.now();
        let _again = group.acquire().await;
        env.assert_about(rt.now() - start, ms(0), ms(40));
        assert_eq!(group.in_flight(), 1);
        assert_eq!(group.starts_in_window(), 2, "the cancelled waits spent no token");
    }

    /// A failing call is retried with the rule's waits until it succeeds.
    async fn a_retried_call_succeeds(rt: Runtime, env: Env) {
        let retry = Retry::new().rule(Rule::fixed(ms(20)).on::<Flaky>().retries(3));
        let attempts = Arc::new(AtomicU32::new(0));
        let start = rt.now();
        let value = retry
            .call(&rt, || {
                let attempts = attempts.clone();
                async move {
                    let n = attempts.fetch_add(1, Ordering::SeqCst);
                    if n < 2 { Err(Flaky(n)) } else { Ok(n) }
                }
            })
            .await
            .unwrap();
        assert_eq!(value, 2);
        env.assert_elapsed(rt.now() - start, ms(40));

        let exhausted = retry
            .call(&rt, || async { Err::<(), _>(Flaky(9)) })
            .await
            .unwrap_err();
        assert_eq!(exhausted.to_string(), "flaky attempt 9");
    }

    /// In a group, every attempt is a new start: the retry waits for the
    /// window as well as for its rule.
    async fn a_retried_call_respects_its_group(rt: Runtime, env: Env) {
        let group = ConcurrentGroup::new(&rt, "api", Limits::new().max_starts(1, ms(60))).unwrap();
        let retry = Retry::new().rule(Rule::fixed(ms(10)).retries(2));
        let attempts = Arc::new(AtomicU32::new(0));
        let start = rt.now();
        let outcome = CallStack::new()
            .group(group.clone())
            .retry(retry)
            .run(&rt, || {
                let attempts = attempts.clone();
                async move {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    Err::<(), _>(Flaky(0))
                }
            })
            .await;
        assert!(outcome.is_err());
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
        // Starts at 0, 60 and 120 ms: the window, not the 10 ms rule, paces them.
        env.assert_elapsed_on_counter(rt.now() - start, ms(120));
        assert_eq!(group.in_flight(), 0);
    }
}
