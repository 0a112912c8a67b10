//! The breaker on virtual time: tripping by ratio and minimum calls, the
//! broken period, the seeded recovery ramp, re-breaking, the calm period,
//! what counts as a failure, and its interplay with retry.

use std::time::Duration;

use super::*;
use crate::call::{CallError, CallErrorKind};
use crate::error::BoxError;
use crate::retry::{Retry, Rule};
use crate::rt::RuntimeRng;
use crate::testing::MockRuntime;

use crate::test_kit::secs;

use crate::test_kit::ms;

#[derive(Debug, thiserror::Error)]
#[error("HTTP {0}")]
struct Http(u16);

#[derive(Debug, thiserror::Error)]
#[error("validation")]
struct Validation;

fn breaker(mock: &MockRuntime) -> CircuitBreaker {
    CircuitBreaker::builder("api")
        .error_ratio(0.5)
        .min_calls(4)
        .response_time(secs(10))
        .broken_time(secs(5))
        .recovery_time(secs(10))
        .passing_time(secs(3))
        .build(&mock.runtime())
        .unwrap()
}

fn fail(b: &CircuitBreaker) {
    b.enter().unwrap().failure(&Http(503));
}

fn succeed(b: &CircuitBreaker) {
    b.enter().unwrap().success();
}

#[test]
fn trips_on_the_ratio_only_once_min_calls_are_in_the_window() {
    let mock = MockRuntime::new();
    let b = breaker(&mock);
    for _ in 0..3 {
        fail(&b);
    }
    // 3 of 3 failed, but fewer than min_calls: still passing.
    assert_eq!(b.state(), CircuitState::Passing);
    succeed(&b);
    // 3 of 4 failed ≥ 50%: the next call trips it and is itself rejected.
    let open = b.enter().unwrap_err();
    assert_eq!(open.state, CircuitState::Broken);
    assert_eq!(open.retry_in, Some(secs(5)));
    assert!(
        open.to_string().contains("last failure: HTTP 503"),
        "{open}"
    );
    assert_eq!(b.state(), CircuitState::Broken);
    let stats = b.stats();
    assert_eq!(
        (stats.passing, stats.broken_rejected, stats.trips),
        (4, 1, 1)
    );
}

#[test]
fn one_failure_per_bucket_is_enough_to_trip() {
    let mock = MockRuntime::new();
    let b = CircuitBreaker::builder("sparse")
        .error_ratio(1.0)
        .min_calls(3)
        .response_time(secs(10))
        .build(&mock.runtime())
        .unwrap();
    for _ in 0..3 {
        fail(&b);
        mock.advance(secs(1)).unwrap();
    }
    assert!(
        b.enter().is_err(),
        "3 failures in 3 different buckets trip it"
    );
}

#[test]
fn old_failures_leave_the_window() {
    let mock = MockRuntime::new();
    let b = breaker(&mock);
    for _ in 0..4 {
        fail(&b);
    }
    mock.advance(secs(11)).unwrap();
    assert!(
        b.enter().is_ok(),
        "the failures are older than response_time"
    );
}

#[test]
fn broken_rejects_until_broken_time_then_recovery_ramps_up() {
    let mock = MockRuntime::new();
    let b = breaker(&mock);
    for _ in 0..4 {
        fail(&b);
    }
    assert!(b.enter().is_err()); // trips at t = 0
    mock.advance(secs(2)).unwrap();
    let open = b.enter().unwrap_err();
    assert_eq!(open.retry_in, Some(secs(3)));
    assert_eq!(b.time_to_recovery(), secs(3));
    mock.advance(secs(3)).unwrap();
    assert_eq!(b.state(), CircuitState::Recovering);
    assert_eq!(b.time_to_recovery(), Duration::ZERO);

    // The first call of the recovery is a probe and passes whatever its
    // draw; then the ramp: at Δ into a 10 s recovery a call passes when a
    // uniform draw is below 2^(Δ/10s) − 1. The mock runtime's generator is
    // seeded with 0, and nothing else has drawn from it.
    let rng = RuntimeRng::from_seed(0);
    let mut expected = Vec::new();
    let mut got = Vec::new();
    for step in 0..10u64 {
        let delta = ms(step * 1000 + 500);
        let share = 2f64.powf(delta.as_secs_f64() / 10.0) - 1.0;
        let draw = rng.next_f64();
        expected.push(step == 0 || draw < share);
        if step == 0 {
            mock.advance(ms(500)).unwrap();
        } else {
            mock.advance(secs(1)).unwrap();
        }
        match b.enter() {
            Ok(guard) => {
                guard.success();
                got.push(true);
            }
            Err(open) => {
                assert_eq!(open.state, CircuitState::Recovering);
                got.push(false);
            }
        }
    }
    assert_eq!(got, expected);
    assert!(got.iter().any(|&a| a) && got.iter().any(|&a| !a), "{got:?}");
    let stats = b.stats();
    assert_eq!(
        stats.recovering_admitted + stats.recovering_rejected,
        10,
        "{stats:?}"
    );
    // Recovery time over without failures: passing again.
    mock.advance(secs(1)).unwrap();
    assert_eq!(b.state(), CircuitState::Passing);
}

/// Found while writing the guide: waiting exactly the `retry_in` a broken
/// breaker names used to be refused again at once, as the ramp admits
/// nothing at the instant recovery begins.
#[test]
fn a_call_at_the_instant_a_broken_breaker_names_is_let_through() {
    let mock = MockRuntime::new();
    let b = breaker(&mock);
    for _ in 0..4 {
        fail(&b);
    }
    let open = b.enter().unwrap_err();
    let wait = open.retry_in.expect("a broken breaker names an instant");
    mock.advance(wait).unwrap();
    let probe = b.enter().expect("the probe at the named instant passes");
    probe.success();
    // Only the first call is a probe: right after it, the ramp (at share 0)
    // lets nothing by.
    let ramp = b.enter().unwrap_err();
    assert_eq!(ramp.state, CircuitState::Recovering);
    assert_eq!(ramp.retry_in, None);
}

#[test]
fn a_failed_probe_breaks_it_again_and_the_calm_period_holds_after_recovery() {
    let mock = MockRuntime::with_seed(3);
    let b = CircuitBreaker::builder("api")
        .error_ratio(0.5)
        .min_calls(1)
        .broken_time(secs(5))
        .recovery_time(secs(1))
        .passing_time(secs(3))
        .build(&mock.runtime())
        .unwrap();
    fail(&b);
    assert!(b.enter().is_err());
    mock.advance(secs(5)).unwrap();
    // Late in recovery almost every call passes; the first admitted probe
    // fails and breaks it again.
    mock.advance(ms(999)).unwrap();
    let guard = loop {
        if let Ok(guard) = b.enter() {
            break guard;
        }
    };
    guard.failure(&Http(500));
    assert_eq!(b.state(), CircuitState::Broken);
    assert_eq!(b.stats().trips, 2);

    // This time recovery passes; then failures within passing_time do not
    // trip it, and after it they do.
    mock.advance(secs(5) + secs(1)).unwrap();
    assert_eq!(b.state(), CircuitState::Passing);
    for _ in 0..5 {
        fail(&b);
    }
    assert!(b.enter().is_ok(), "calm for passing_time after a recovery");
    mock.advance(secs(3)).unwrap();
    assert!(b.enter().is_err(), "and trips once it is over");
}

#[test]
fn only_counted_errors_trip_it_and_by_default_every_error_counts() {
    let mock = MockRuntime::new();
    let b = CircuitBreaker::builder("api")
        .min_calls(2)
        .counts::<Http>()
        .build(&mock.runtime())
        .unwrap();
    for _ in 0..10 {
        b.enter().unwrap().failure(&Validation);
    }
    assert_eq!(
        b.state(),
        CircuitState::Passing,
        "validation errors do not count"
    );
    fail(&b);
    fail(&b);
    // 2 counted failures of 12 calls: below 50%.
    assert!(b.enter().is_ok());

    let any = CircuitBreaker::builder("any")
        .min_calls(2)
        .build(&mock.runtime())
        .unwrap();
    any.enter().unwrap().failure(&Validation);
    any.enter().unwrap().failure(&Validation);
    assert!(any.enter().is_err(), "no filter: every error counts");
}

#[test]
fn an_abandoned_guard_is_not_counted_in_the_window() {
    let mock = MockRuntime::new();
    let b = breaker(&mock);
    for _ in 0..10 {
        drop(b.enter().unwrap());
    }
    assert_eq!(b.state(), CircuitState::Passing);
    for _ in 0..4 {
        fail(&b);
    }
    // 4 failures of 4 reported calls (the abandoned ones do not dilute it).
    assert!(b.enter().is_err());
    // Yet they were let through: counted as they ended.
    assert_eq!(b.stats().passing, 14);
}

#[test]
fn a_call_cancelled_mid_flight_is_counted_as_let_through_once_dropped() {
    use futures::FutureExt;
    let mock = MockRuntime::new();
    let b = breaker(&mock);
    let guard = b.enter().unwrap();
    assert_eq!(b.stats().passing, 0, "a call in flight is not counted yet");
    guard.success();
    assert_eq!(b.stats().passing, 1);
    let mut cancelled = Box::pin(b.call(std::future::pending::<Result<(), std::io::Error>>()));
    assert!(
        (&mut cancelled).now_or_never().is_none(),
        "admitted and running"
    );
    assert_eq!(b.stats().passing, 1);
    drop(cancelled);
    assert_eq!(b.stats().passing, 2);
    // Not in the window: one success and two failures are 3 calls, under
    // min_calls (counted as a success, it would make 4, half failed).
    for _ in 0..2 {
        fail(&b);
    }
    assert!(b.enter().is_ok(), "3 calls in the window");
}

#[test]
fn call_runs_only_when_admitted() {
    let mock = MockRuntime::new();
    let b = CircuitBreaker::builder("api")
        .min_calls(1)
        .build(&mock.runtime())
        .unwrap();
    mock.block_on(async {
        let failed = b.call(async { Err::<u8, _>(Http(502)) }).await.unwrap_err();
        assert!(matches!(
            failed.kind(),
            CallErrorKind::Failed {
                error: Http(502),
                ..
            }
        ));
        let mut ran = false;
        let refused = b
            .call(async {
                ran = true;
                Ok::<_, Http>(1)
            })
            .await;
        assert!(matches!(refused, Err(ref e) if e.is_refused()));
        let _: Option<&CallError<Http>> = refused.as_ref().err();
        assert!(!ran, "a refused call is not run");
    })
    .unwrap();
}

#[test]
fn a_refusal_is_retried_only_by_a_rule_that_names_it() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let b = CircuitBreaker::builder("api")
        .min_calls(1)
        .build(&rt)
        .unwrap();
    b.enter().unwrap().failure(&Http(500));
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let op = || async {
        attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        b.call(async { Ok::<(), Http>(()) })
            .await
            .map_err(BoxError::from)
    };
    let catch_all = Retry::new().rule(Rule::fixed(secs(1)).retries(3));
    let err = mock.block_on(catch_all.call(&rt, op)).unwrap().unwrap_err();
    assert!(err.to_string().contains("is broken"), "{err}");
    assert_eq!(
        attempts.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "not retried"
    );

    let named = Retry::new().rule(Rule::fixed(secs(1)).on::<CircuitOpen>().retries(10));
    attempts.store(0, std::sync::atomic::Ordering::SeqCst);
    mock.block_on(named.call(&rt, op)).unwrap().unwrap();
    // Broken for 5 s, then recovery lets a call through as the ramp rises.
    assert!(attempts.load(std::sync::atomic::Ordering::SeqCst) >= 6);
}

#[test]
fn configurations_that_could_never_work_are_refused() {
    let rt = MockRuntime::new().runtime();
    let err = CircuitBreaker::builder("x")
        .error_ratio(0.0)
        .build(&rt)
        .unwrap_err();
    assert_eq!(err, BreakerConfigError::ErrorRatio(0.0));
    assert!(
        CircuitBreaker::builder("x")
            .error_ratio(1.5)
            .build(&rt)
            .is_err()
    );
    assert!(
        CircuitBreaker::builder("x")
            .error_ratio(f64::NAN)
            .build(&rt)
            .is_err()
    );
    let err = CircuitBreaker::builder("x")
        .broken_time(Duration::ZERO)
        .build(&rt)
        .unwrap_err();
    assert!(err.to_string().contains("broken_time is zero"), "{err}");
    assert!(
        CircuitBreaker::builder("x")
            .response_time(Duration::ZERO)
            .build(&rt)
            .is_err()
    );
}

/// Found by `circuit_props`: the fast path said "passes" for as long as no
/// outcome came, but an old success leaving the window can bring it to
/// the trip condition with no outcome at all.
#[test]
fn an_old_success_leaving_the_window_can_trip_it() {
    let ms = Duration::from_millis;
    let mock = MockRuntime::new();
    let b = CircuitBreaker::builder("api")
        .error_ratio(1.0)
        .min_calls(1)
        .response_time(ms(38))
        .build(&mock.runtime())
        .unwrap();
    succeed(&b); // t = 0, bucket 0
    mock.advance(ms(15)).unwrap();
    fail(&b); // 1 failure of 2 calls: below 100%
    assert!(b.enter().is_ok(), "still passing at 15 ms");
    mock.advance(ms(23)).unwrap();
    // At 38 ms bucket 0 has left: 1 failure of 1 call.
    let open = b.enter().unwrap_err();
    assert_eq!(open.state, CircuitState::Broken);
}
