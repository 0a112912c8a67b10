//! Groups and retry in one stack: the retry wraps the whole call once,
//! each attempt is a new start in every group, and the slot is free while
//! waiting.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

fn group(rt: &Runtime, name: &str, limits: Limits) -> ConcurrentGroup {
    ConcurrentGroup::new(rt, name, limits).unwrap()
}

/// Runs `script` through a stack of `groups` and `retry`; returns the
/// result and the start of every attempt (when it held its permits).
fn call_limited(
    mock: &MockRuntime,
    retry: &Retry,
    groups: &[ConcurrentGroup],
    script: impl IntoIterator<Item = Outcome>,
) -> (Outcome, Vec<Duration>) {
    let rt = mock.runtime();
    let attempts = Attempts::new(&rt, script);
    let result = mock
        .block_on(
            CallStack::new()
                .groups(groups.iter().cloned())
                .retry(retry.clone())
                .run(&rt, || attempts.clone().attempt()),
        )
        .unwrap()
        .map_err(op_error);
    assert_eq!(attempts.left(), 0, "fewer attempts than scripted");
    (result, attempts.starts())
}

#[test]
fn with_two_groups_a_rule_of_k_retries_makes_k_plus_1_attempts() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let api = group(&rt, "api", Limits::new().max_in_flight(2));
    let db = group(&rt, "db", Limits::new().max_in_flight(1));
    for k in [0, 1, 3] {
        let retry = Retry::new().rule(Rule::fixed(secs(1)).retries(k));
        let t0 = mock.elapsed();
        let (result, starts) = call_limited(
            &mock,
            &retry,
            &[api.clone(), db.clone()],
            failures(k as usize + 1),
        );
        assert!(result.is_err());
        assert_eq!(starts, (0..=u64::from(k)).map(secs).collect::<Vec<_>>());
        assert_eq!(mock.elapsed() - t0, secs(u64::from(k)));
    }
    // 1 + 2 + 4 attempts, each holding both groups once.
    assert_eq!((api.stats().acquired, db.stats().acquired), (7, 7));
    assert_eq!((api.in_flight(), db.in_flight()), (0, 0));
}

#[test]
fn every_attempt_is_a_new_start_against_the_window() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let api = group(&rt, "api", Limits::new().max_starts(1, secs(10)));
    let retry = Retry::new().rule(Rule::fixed(secs(1)).retries(2));
    let (result, starts) = call_limited(&mock, &retry, std::slice::from_ref(&api), failures(3));
    assert!(result.is_err());
    // Each retry is due 1 s after its failure, then waits for a token.
    assert_eq!(starts, [0, 10, 20].map(secs));
    assert_eq!(mock.elapsed(), secs(20));
    let stats = api.stats();
    assert_eq!((stats.acquired, stats.waited), (3, 2));
    assert_eq!(stats.wait_time, secs(18), "9 s in the queue per retry");
}

#[test]
fn every_attempt_spends_a_token_in_every_group() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let api = group(&rt, "api", Limits::new().max_starts(1, secs(10)));
    let db = group(&rt, "db", Limits::new().max_starts(1, secs(15)));
    let retry = Retry::new().rule(Rule::fixed(secs(1)).retries(2));
    let mut script = failures(2);
    script.push(ok());
    let (result, starts) = call_limited(&mock, &retry, &[api.clone(), db], script);
    assert_eq!(result.unwrap(), "done");
    // db's window is the longer one: starts at 0, 15 and 30 s. api's
    // token from 15 s is back at 25 s, db's at 30 s.
    assert_eq!(starts, [0, 15, 30].map(secs));
    assert_eq!(api.starts_in_window(), 1, "the start at 30 s");
}

#[test]
fn the_slot_is_free_while_waiting_to_retry() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let api = group(&rt, "api", Limits::new().max_in_flight(1));
    let retry = Retry::new().rule(Rule::fixed(secs(5)).retries(1));
    // Each attempt runs for 1 s: the first fails at 1 s, its retry is due
    // at 6 s.
    let attempts = Attempts::busy(&rt, secs(1), [fail(http(503)), ok()]);
    let caller = {
        let (rt2, api, attempts) = (rt.clone(), api.clone(), attempts.clone());
        rt.spawn(async move {
            CallStack::new()
                .group(api)
                .retry(retry)
                .run(&rt2, || attempts.clone().attempt())
                .await
        })
        .unwrap()
    };
    let other = {
        let (rt2, api) = (rt.clone(), api.clone());
        rt.spawn(async move {
            let t0 = rt2.now();
            rt2.sleep(ms(500)).await;
            let during_attempt = api.in_flight();
            rt2.sleep_until(t0 + secs(3)).await;
            let while_waiting = (api.in_flight(), api.waiting());
            // Another caller gets the slot at once, and holds it past the
            // moment the retry is due.
            let permit = api
                .try_acquire()
                .expect("the slot is free while the call waits to retry");
            let acquired_at = rt2.now() - t0;
            rt2.sleep(secs(5)).await;
            drop(permit);
            (during_attempt, while_waiting, acquired_at)
        })
        .unwrap()
    };
    let (result, observed) = mock
        .block_on(async { (caller.await.unwrap(), other.await.unwrap()) })
        .unwrap();
    assert_eq!(result.unwrap(), "done");
    assert_eq!(observed, (1, (0, 0), secs(3)));
    // The retry, due at 6 s, started when the other caller left at 8 s.
    assert_eq!(attempts.starts(), [0, 8].map(secs));
    assert_eq!(mock.elapsed(), secs(9));
    assert_eq!(api.in_flight(), 0);
}

#[test]
fn success_takes_one_permit_and_no_time() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let api = group(
        &rt,
        "api",
        Limits::new().max_in_flight(1).max_starts(1, secs(10)),
    );
    let retry = Retry::new().rule(Rule::fixed(secs(1)).retries(3));
    let (result, starts) = call_limited(&mock, &retry, std::slice::from_ref(&api), [ok()]);
    assert_eq!(result.unwrap(), "done");
    assert_eq!(starts, [Duration::ZERO]);
    assert_eq!(mock.elapsed(), Duration::ZERO);
    assert_eq!((api.stats().acquired, api.in_flight()), (1, 0));
}

#[test]
fn with_no_groups_it_is_a_plain_call() {
    let mock = MockRuntime::new();
    let retry = Retry::new().rule(Rule::fixed(secs(2)).retries(2));
    let (result, starts) = call_limited(&mock, &retry, &[], failures(3));
    assert!(result.is_err());
    assert_eq!(starts, [0, 2, 4].map(secs));
}
