//! The decision script against the local policy it mirrors: the same
//! limits, the same arrivals and releases on one clock (the script is
//! handed `now` instead of reading Redis' `TIME`), the same answers —
//! granted, or refused for the same reason with the same wait.

use std::time::{Duration, Instant};

use machina_core::decision::Reason;
use machina_core::limit::{GroupPolicy, Limits, Permit};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::{RedisGroup, Refused};
use crate::Redis;
use crate::testing::RedisServer;

/// One step of a schedule: time passes, then a call arrives or one of the
/// running calls ends.
#[derive(Debug, Clone)]
enum Step {
    Arrive { after_ms: u64 },
    End { after_ms: u64, which: usize },
}

fn limits() -> impl Strategy<Value = Limits> {
    // Rates whose interval is a whole number of microseconds, so that both
    // sides compute it exactly.
    let rate = prop_oneof![
        Just(None),
        (
            prop::sample::select(vec![1u32, 2, 4, 5, 8, 10, 20, 25, 50]),
            0u32..3
        )
            .prop_map(Some)
    ];
    (
        prop::option::of(1u32..4),
        prop::option::of((1u32..5, 100u64..1000)),
        rate,
    )
        .prop_map(|(in_flight, starts, rate)| {
            let mut limits = match rate {
                Some((n, burst)) => Limits::rate(n, Duration::from_secs(1)).burst(burst),
                None => Limits::new(),
            };
            if let Some(max) = in_flight {
                limits = limits.max_in_flight(max);
            }
            if let Some((n, window_ms)) = starts {
                limits = limits.max_starts(n, Duration::from_millis(window_ms));
            }
            limits
        })
}

fn schedule() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            3 => (0u64..300).prop_map(|after_ms| Step::Arrive { after_ms }),
            1 => (0u64..300, 0usize..8).prop_map(|(after_ms, which)| Step::End { after_ms, which }),
        ],
        1..25,
    )
}

/// The number of leases Redis holds for `group`.
async fn leases_in_redis(redis: &Redis, group: &RedisGroup) -> usize {
    let mut connection = redis.connection().await.unwrap();
    redis::cmd("ZCARD")
        .arg(&group.keys().leases)
        .query_async(&mut connection)
        .await
        .unwrap()
}

/// Ends a call: the permit's release is sent in a task, so wait until
/// Redis has it (leases are kept only under an in-flight cap).
async fn end(redis: &Redis, group: &RedisGroup, permit: Permit, still_held: usize) {
    drop(permit);
    let still_held = if group.limits().in_flight_limit().is_some() {
        still_held
    } else {
        0
    };
    for _ in 0..500 {
        if leases_in_redis(redis, group).await == still_held {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the release never reached Redis");
}

async fn compare(
    redis: &Redis,
    case: usize,
    limits: Limits,
    steps: &[Step],
) -> Result<(), TestCaseError> {
    let rt = machina_tokio::runtime().unwrap();
    let group = RedisGroup::builder(redis, &rt, &format!("case{case}"), limits)
        .lease_ttl(Duration::from_secs(3600))
        .build()
        .unwrap();
    let mut policy = GroupPolicy::new(limits).unwrap();
    let t0 = Instant::now();
    // Virtual time near the real one, so that nothing expires early.
    let base_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let mut elapsed = Duration::ZERO;
    let mut running: Vec<Permit> = Vec::new();
    for step in steps {
        match *step {
            Step::Arrive { after_ms } => {
                elapsed += Duration::from_millis(after_ms);
                let now = t0 + elapsed;
                let local = policy.try_acquire(now);
                let shared = group
                    .try_acquire_at(base_us + elapsed.as_micros() as u64)
                    .await
                    .unwrap();
                match (local, shared) {
                    (Ok(()), Ok(permit)) => running.push(permit),
                    (Err(refusal), Err(Refused { reason, wait })) => {
                        prop_assert_eq!(refusal.reason, reason, "at {:?}", elapsed);
                        if reason != Reason::InFlight {
                            let local_wait = refusal.until.unwrap() - now;
                            let gap = local_wait.abs_diff(wait);
                            prop_assert!(
                                gap <= Duration::from_micros(1),
                                "at {:?}: local waits {:?}, Redis {:?}",
                                elapsed,
                                local_wait,
                                wait
                            );
                        }
                    }
                    (local, shared) => {
                        return Err(TestCaseError::fail(format!(
                            "at {elapsed:?}: local {local:?}, Redis {:?}",
                            shared.map(|_| "granted")
                        )));
                    }
                }
            }
            Step::End { after_ms, which } => {
                if running.is_empty() {
                    continue;
                }
                elapsed += Duration::from_millis(after_ms);
                let permit = running.remove(which % running.len());
                policy.release();
                end(redis, &group, permit, running.len()).await;
            }
        }
    }
    for permit in running.drain(..) {
        drop(permit);
    }
    Ok(())
}

#[test]
fn the_script_decides_as_the_local_policy_on_the_same_arrivals() {
    let server = RedisServer::start().unwrap();
    let redis = Redis::open(server.url()).unwrap().prefix("props");
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new(Config::with_cases(cases));
    let case = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&(limits(), schedule()), |(limits, steps)| {
            let case = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio_rt.block_on(compare(&redis, case, limits, &steps))
        })
        .unwrap();
}
