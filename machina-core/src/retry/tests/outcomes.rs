//! What `Retry::call` returns, and what its success path costs.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

#[test]
fn success_at_once_makes_one_attempt_and_never_sleeps() {
    let mock = MockRuntime::new();
    let budget = RetryBudget::new(0.0, secs(60), 1).unwrap();
    let retry = Retry::new()
        .rule(Rule::fixed(secs(1)).retries(3))
        .rule(Rule::exponential_jitter(secs(1), secs(10)).unlimited())
        .budget(budget.clone());
    let (result, starts) = call(&mock, &retry, [ok()]);
    assert_eq!(result.unwrap(), "done");
    assert_eq!(starts, [Duration::ZERO]);
    assert_eq!(mock.elapsed(), Duration::ZERO);
    assert_eq!(mock.pending_timers(), 0);
    // Nothing was withdrawn from the budget: its one retry is still there.
    assert!(budget.try_withdraw(t0()));
    assert!(!budget.try_withdraw(t0()));
}

#[test]
fn success_after_retries_returns_the_value() {
    let mock = MockRuntime::new();
    let retry = Retry::new().rule(Rule::fixed(secs(3)).retries(5));
    let (result, starts) = call(&mock, &retry, [fail(http(503)), fail(disk()), ok()]);
    assert_eq!(result.unwrap(), "done");
    assert_eq!(starts, [0, 3, 6].map(secs));
    assert_eq!(mock.elapsed(), secs(6));
}

#[test]
fn the_last_error_is_returned_unchanged() {
    let mock = MockRuntime::new();
    let retry = Retry::new().rule(Rule::fixed(secs(1)).on::<HttpError>().retries(2));
    let script = [
        fail(http(503)),
        fail(http(502)),
        fail(http_after(504, secs(9))),
    ];
    let (result, _) = call(&mock, &retry, script);
    let error = result.unwrap_err();
    assert_eq!(
        error.downcast_ref::<HttpError>(),
        Some(&HttpError {
            status: 504,
            retry_after: Some(secs(9))
        })
    );
    // A typed error from the operation arrives as the same value, boxed.
    let rt = mock.runtime();
    let mut tries = 0;
    let result = mock
        .block_on(retry.call(&rt, || {
            tries += 1;
            let status = 500 + tries;
            async move {
                Err::<(), _>(HttpError {
                    status,
                    retry_after: None,
                })
            }
        }))
        .unwrap();
    assert_eq!(tries, 3);
    // The typed error comes back typed.
    assert_eq!(result.unwrap_err().operation_error().unwrap().status, 503);
}

#[test]
fn a_retry_can_be_used_from_many_calls_at_once() {
    // `Retry` is shared by reference: calls borrow it, none consumes it.
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let retry = Retry::new().rule(Rule::fixed(secs(2)).retries(1));
    let a = Attempts::new(&rt, [fail(http(503)), ok()]);
    let b = Attempts::new(&rt, [fail(http(503)), fail(http(503))]);
    let (ra, rb) = mock
        .block_on(futures::future::join(
            retry.call(&rt, || a.clone().attempt()),
            retry.call(&rt, || b.clone().attempt()),
        ))
        .unwrap();
    assert_eq!(ra.unwrap(), "done");
    assert!(rb.is_err());
    assert_eq!(
        (a.starts(), b.starts()),
        (vec![secs(0), secs(2)], vec![secs(0), secs(2)])
    );
}
