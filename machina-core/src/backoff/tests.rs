//! Backoff on virtual time: exact attempt instants, deadlines that include
//! pauses, per-attempt timeouts, filters and configuration errors.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::call::CallErrorKind;
use crate::decision::Reason;
use crate::testing::MockRuntime;

use crate::test_kit::ms;

#[derive(Debug, thiserror::Error)]
#[error("transient: {0}")]
struct Transient(u32);

#[derive(Debug, thiserror::Error)]
#[error("fatal")]
struct Fatal;

/// Runs `backoff` over an op whose n-th attempt (from 0) sleeps
/// `durations[n]` (the last one repeats) and then fails with `Transient(n)`,
/// or succeeds with `n` when `succeed_on == Some(n)`. Returns the outcome,
/// the virtual instants the attempts started at, and the total time.
fn drive(
    backoff: &Backoff,
    durations: &'static [u64],
    succeed_on: Option<u32>,
) -> (Result<u32, CallError<Transient>>, Vec<Duration>, Duration) {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let outcome = mock
        .block_on({
            let starts = starts.clone();
            let rt2 = rt.clone();
            async move {
                let t0 = rt2.now();
                let mut n = 0u32;
                backoff
                    .run(&rt2, || {
                        let (rt3, starts) = (rt2.clone(), starts.clone());
                        let this = n;
                        n += 1;
                        async move {
                            starts.lock().unwrap().push(rt3.now() - t0);
                            let d = durations[(this as usize).min(durations.len() - 1)];
                            rt3.sleep(ms(d)).await;
                            if succeed_on == Some(this) {
                                Ok(this)
                            } else {
                                Err(Transient(this))
                            }
                        }
                    })
                    .await
            }
        })
        .unwrap();
    let starts = starts.lock().unwrap().clone();
    (outcome, starts, mock.elapsed())
}

#[test]
fn success_on_the_first_attempt_never_waits() {
    let backoff = Backoff::builder().pause(ms(100)).build().unwrap();
    let (outcome, starts, elapsed) = drive(&backoff, &[0], Some(0));
    assert_eq!(outcome.unwrap(), 0);
    assert_eq!(starts, [ms(0)]);
    assert_eq!(elapsed, ms(0));
}

#[test]
fn pauses_separate_attempts_until_one_succeeds() {
    let backoff = Backoff::builder()
        .pause(ms(100))
        .max_tries(5)
        .build()
        .unwrap();
    let (outcome, starts, elapsed) = drive(&backoff, &[10], Some(2));
    assert_eq!(outcome.unwrap(), 2);
    assert_eq!(starts, [ms(0), ms(110), ms(220)]);
    assert_eq!(elapsed, ms(230));
}

#[test]
fn max_tries_caps_attempts_and_returns_the_last_error() {
    let backoff = Backoff::builder()
        .pause(ms(50))
        .max_tries(3)
        .build()
        .unwrap();
    let (outcome, starts, _) = drive(&backoff, &[0], None);
    let err = outcome.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            CallErrorKind::Failed {
                attempts: 3,
                reason: Reason::RetriesExhausted,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.operation_error().unwrap().to_string(), "transient: 2");
    assert_eq!(starts, [ms(0), ms(50), ms(100)]);
    let once = Backoff::builder()
        .max_tries(1)
        .pause(ms(50))
        .build()
        .unwrap();
    let (outcome, starts, elapsed) = drive(&once, &[0], None);
    assert_eq!(outcome.unwrap_err().attempts(), 1);
    assert_eq!(
        (starts.len(), elapsed),
        (1, ms(0)),
        "no pause after the last try"
    );
}

#[test]
fn an_attempt_past_its_timeout_is_cancelled_and_retried() {
    let backoff = Backoff::builder()
        .attempt_timeout(ms(100))
        .pause(ms(50))
        .max_tries(3)
        .retry_on::<Fatal>() // a filter does not stop timeouts from retrying
        .build()
        .unwrap();
    let (outcome, starts, elapsed) = drive(&backoff, &[1000], None);
    let err = outcome.unwrap_err();
    assert!(matches!(
        err.kind(),
        CallErrorKind::TimedOut {
            attempts: 3,
            reason: Reason::RetriesExhausted,
            limit,
        } if *limit == ms(100)
    ));
    assert_eq!(starts, [ms(0), ms(150), ms(300)]);
    assert_eq!(elapsed, ms(400));
}

#[test]
fn the_deadline_counts_attempts_and_pauses_and_keeps_the_last_error() {
    let backoff = Backoff::builder()
        .deadline(ms(500))
        .pause(ms(100))
        .build()
        .unwrap();
    let (outcome, starts, elapsed) = drive(&backoff, &[30], None);
    let err = outcome.unwrap_err();
    // Attempts at 0, 130, 260, 390 fail 30 ms in; at 420 a 100 ms pause
    // would reach the 500 ms deadline, so the call ends there.
    assert_eq!(starts, [ms(0), ms(130), ms(260), ms(390)]);
    assert_eq!(elapsed, ms(420));
    assert!(matches!(
        err.kind(),
        CallErrorKind::DeadlineExceeded { attempts: 4, .. }
    ));
    assert_eq!(err.operation_error().unwrap().to_string(), "transient: 3");
    assert!(
        err.to_string().contains("last error: transient: 3"),
        "{err}"
    );
}

#[test]
fn the_deadline_cuts_a_running_attempt_short() {
    let backoff = Backoff::builder()
        .deadline(ms(300))
        .pause(ms(20))
        .build()
        .unwrap();
    // First attempt fails after 10 ms; the second would take 10 s.
    let (outcome, starts, elapsed) = drive(&backoff, &[10, 10_000], None);
    let err = outcome.unwrap_err();
    assert_eq!(starts, [ms(0), ms(30)]);
    assert_eq!(elapsed, ms(300), "cut exactly at the deadline");
    assert!(matches!(
        err.kind(),
        CallErrorKind::DeadlineExceeded { attempts: 2, .. }
    ));
    assert_eq!(err.operation_error().unwrap().to_string(), "transient: 0");

    let (outcome, _, elapsed) = drive(&backoff, &[10_000], None);
    let err = outcome.unwrap_err();
    assert!(matches!(
        err.kind(),
        CallErrorKind::DeadlineExceeded { last: None, .. }
    ));
    assert!(err.to_string().contains("no attempt had finished"), "{err}");
    assert_eq!(elapsed, ms(300));
}

#[test]
fn the_deadline_beats_an_attempt_timeout_that_ends_later() {
    let backoff = Backoff::builder()
        .attempt_timeout(ms(200))
        .deadline(ms(250))
        .build()
        .unwrap();
    let (outcome, starts, elapsed) = drive(&backoff, &[10_000], None);
    let err = outcome.unwrap_err();
    // 0..200 times out (retryable), 200..250 is cut by the deadline.
    assert_eq!(starts, [ms(0), ms(200)]);
    assert_eq!(elapsed, ms(250));
    let CallErrorKind::DeadlineExceeded {
        attempts: 2,
        last: Some(last),
        ..
    } = err.kind()
    else {
        panic!("expected the deadline, got {err:?}");
    };
    assert!(matches!(last.kind(), CallErrorKind::TimedOut { .. }));
}

#[test]
fn errors_outside_the_filter_are_not_retried() {
    let backoff = Backoff::builder()
        .retry_on::<Fatal>()
        .pause(ms(10))
        .build()
        .unwrap();
    let (outcome, starts, _) = drive(&backoff, &[0], None);
    let err = outcome.unwrap_err();
    assert!(matches!(
        err.kind(),
        CallErrorKind::Failed {
            attempts: 1,
            reason: Reason::NoRuleMatches,
            ..
        }
    ));
    assert_eq!(starts.len(), 1);

    let by_predicate = Backoff::builder()
        .retry_if(|e| e.downcast_ref::<Transient>().is_some_and(|t| t.0 < 1))
        .max_tries(10)
        .build()
        .unwrap();
    let (outcome, starts, _) = drive(&by_predicate, &[0], None);
    assert_eq!(starts.len(), 2, "retried Transient(0), not Transient(1)");
    assert!(matches!(
        outcome.unwrap_err().kind(),
        CallErrorKind::Failed {
            attempts: 2,
            reason: Reason::NoRuleMatches,
            ..
        }
    ));
}

#[test]
fn giveup_stops_at_once() {
    let backoff = Backoff::builder()
        .giveup(|e| e.to_string().contains("transient: 1"))
        .max_tries(10)
        .build()
        .unwrap();
    let (outcome, starts, _) = drive(&backoff, &[0], None);
    let err = outcome.unwrap_err();
    assert!(matches!(
        err.kind(),
        CallErrorKind::Failed {
            attempts: 2,
            reason: Reason::GiveUpPredicate,
            ..
        }
    ));
    assert_eq!(err.to_string(), "transient: 1");
    assert_eq!(starts.len(), 2);
}

#[test]
fn giveup_is_asked_only_when_another_attempt_would_be_made() {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let backoff = Backoff::builder()
        .giveup({
            let asked = asked.clone();
            move |e| {
                asked.lock().unwrap().push(e.to_string());
                false
            }
        })
        .max_tries(3)
        .build()
        .unwrap();
    let (outcome, starts, _) = drive(&backoff, &[0], None);
    assert_eq!(starts.len(), 3);
    assert!(matches!(
        outcome.unwrap_err().kind(),
        CallErrorKind::Failed {
            reason: Reason::RetriesExhausted,
            ..
        }
    ));
    // After attempts 1 and 2 (a retry would follow), never after the
    // last allowed one (aiomisc checks max_tries first).
    assert_eq!(*asked.lock().unwrap(), ["transient: 0", "transient: 1"]);

    // Nor for an error that is not retried at all.
    asked.lock().unwrap().clear();
    let filtered = Backoff::builder()
        .retry_on::<Fatal>()
        .giveup({
            let asked = asked.clone();
            move |e| {
                asked.lock().unwrap().push(e.to_string());
                true
            }
        })
        .build()
        .unwrap();
    let (outcome, _, _) = drive(&filtered, &[0], None);
    assert!(matches!(
        outcome.unwrap_err().kind(),
        CallErrorKind::Failed {
            reason: Reason::NoRuleMatches,
            ..
        }
    ));
    assert!(asked.lock().unwrap().is_empty());
}

#[test]
fn pauses_can_follow_any_wait_sequence() {
    let backoff = Backoff::builder()
        .pauses(crate::waits::Wait::Fibonacci { base: ms(100) })
        .max_tries(5)
        .build()
        .unwrap();
    let (_, starts, _) = drive(&backoff, &[0], None);
    assert_eq!(starts, [0, 100, 200, 400, 700].map(ms));
}

#[test]
fn configurations_that_could_never_work_are_refused() {
    let err = Backoff::builder().max_tries(0).build().unwrap_err();
    assert_eq!(err, BackoffConfigError::ZeroMaxTries);
    assert!(err.to_string().contains("max_tries is 0"));
    assert_eq!(
        Backoff::builder()
            .attempt_timeout(Duration::ZERO)
            .build()
            .unwrap_err(),
        BackoffConfigError::ZeroAttemptTimeout
    );
    assert_eq!(
        Backoff::builder()
            .deadline(Duration::ZERO)
            .build()
            .unwrap_err(),
        BackoffConfigError::ZeroDeadline
    );
}

#[test]
fn retry_async_retries_every_error_up_to_max_tries() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let attempts = Arc::new(Mutex::new(0u32));
    let outcome = mock
        .block_on({
            let attempts = attempts.clone();
            let rt = rt.clone();
            async move {
                retry_async(&rt, NonZeroU32::new(4).unwrap(), ms(250), || {
                    let attempts = attempts.clone();
                    async move {
                        let mut n = attempts.lock().unwrap();
                        *n += 1;
                        if *n < 3 { Err(Transient(*n)) } else { Ok(*n) }
                    }
                })
                .await
            }
        })
        .unwrap();
    assert_eq!(outcome.unwrap(), 3);
    assert_eq!(mock.elapsed(), ms(500));
}
