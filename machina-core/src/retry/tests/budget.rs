//! [`RetryBudget`] under `Retry`: each top-level call is deposited, and a
//! retry beyond the share is refused with `BudgetExhausted`.

#[allow(unused_imports, reason = "each area uses part of the shared prelude")]
use super::*;

/// Runs `calls` calls of `retry` one after the other, each failing at
/// every attempt; returns how many attempts each made.
fn attempts_per_call(mock: &MockRuntime, retry: &Retry, calls: usize) -> Vec<usize> {
    let rt = mock.runtime();
    mock.block_on(async {
        let mut counts = Vec::new();
        for _ in 0..calls {
            let attempts = Attempts::new(&rt, failures(10));
            let result = retry.call(&rt, || attempts.clone().attempt()).await;
            assert!(result.is_err());
            counts.push(attempts.starts().len());
        }
        counts
    })
    .unwrap()
}

#[test]
fn a_retry_beyond_the_share_gives_up_with_budget_exhausted() {
    let budget = RetryBudget::new(0.5, secs(60), 0).unwrap();
    let retry = Retry::new()
        .rule(Rule::fixed(secs(1)).retries(5))
        .budget(budget.clone());
    let mut state = retry.start(RuntimeRng::from_seed(0));
    assert_eq!(
        on_budget(&retry, &mut state, &DiskError),
        D::GiveUp(Reason::BudgetExhausted),
        "no call deposited, no minimum: no retry"
    );
    assert_eq!(state.retries_used(), [0], "a refused retry is not charged");
    for _ in 0..4 {
        budget.deposit(t0());
    }
    let mut state = retry.start(RuntimeRng::from_seed(0));
    assert_eq!(
        retry_wait(on_budget(&retry, &mut state, &DiskError)),
        secs(1)
    );
    assert_eq!(
        retry_wait(on_budget(&retry, &mut state, &DiskError)),
        secs(1)
    );
    assert_eq!(
        on_budget(&retry, &mut state, &DiskError),
        D::GiveUp(Reason::BudgetExhausted),
        "50% of 4 calls is 2 retries, though the rule has 3 left"
    );
    assert_eq!(state.attempts(), 3);
}

#[test]
fn calls_beyond_the_share_are_not_retried() {
    let mock = MockRuntime::new();
    let budget = RetryBudget::new(0.5, secs(60), 0).unwrap();
    let retry = Retry::new()
        .rule(Rule::fixed(secs(1)).retries(1))
        .budget(budget);
    // Each call is deposited before it runs: after n calls, n/2 retries
    // are allowed, so every second call gets its retry.
    assert_eq!(attempts_per_call(&mock, &retry, 6), [1, 2, 1, 2, 1, 2]);
}

#[test]
fn each_top_level_call_is_deposited_once() {
    let mock = MockRuntime::new();
    let budget = RetryBudget::new(0.2, secs(60), 0).unwrap();
    let retry = Retry::new()
        .rule(Rule::fixed(secs(1)).retries(3))
        .budget(budget.clone());
    for _ in 0..10 {
        let (result, starts) = call(&mock, &retry, [ok()]);
        assert_eq!((result.unwrap(), starts.len()), ("done", 1));
    }
    let granted = (0..10).filter(|_| budget.try_withdraw(t0())).count();
    assert_eq!(granted, 2, "20% of 10 calls");
}

#[test]
fn errors_no_rule_matches_do_not_spend_the_budget() {
    let mock = MockRuntime::new();
    let budget = RetryBudget::new(0.0, secs(60), 1).unwrap();
    let retry = Retry::new()
        .rule(Rule::fixed(secs(1)).on::<HttpError>().retries(3))
        .budget(budget);
    let (_, starts) = call(&mock, &retry, [fail(disk())]);
    assert_eq!(starts.len(), 1);
    // The one retry of the minimum is still there.
    assert_eq!(attempts_per_call(&mock, &retry, 2), [2, 1]);
}

#[test]
fn the_budget_comes_back_once_the_window_has_passed() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let budget = RetryBudget::new(0.0, secs(10), 1).unwrap();
    let retry = Retry::new()
        .rule(Rule::fixed(secs(1)).retries(3))
        .budget(budget);
    // One retry per 10 s window, at 0 s and 1 s.
    assert_eq!(attempts_per_call(&mock, &retry, 2), [2, 1]);
    mock.block_on(rt.sleep(secs(9))).unwrap();
    assert_eq!(mock.elapsed(), secs(10));
    assert_eq!(attempts_per_call(&mock, &retry, 2), [2, 1]);
}

#[test]
fn clones_of_a_budget_share_it_across_retries() {
    let mock = MockRuntime::new();
    let budget = RetryBudget::new(0.0, secs(60), 2).unwrap();
    let a = Retry::new()
        .rule(Rule::fixed(secs(1)).retries(1))
        .budget(budget.clone());
    let b = Retry::new()
        .rule(Rule::fixed(secs(1)).retries(5))
        .budget(budget);
    assert_eq!(attempts_per_call(&mock, &a, 1), [2]);
    assert_eq!(attempts_per_call(&mock, &b, 1), [2], "one retry left of 2");
    assert_eq!(attempts_per_call(&mock, &a, 1), [1]);
}
